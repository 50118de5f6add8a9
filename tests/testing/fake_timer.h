// A manual Timer for policy tests: time stands still until the test advances it, and callbacks
// run on the test's thread inside Advance(), in time order. Waits of seconds take no time.
#ifndef VISION_GATEWAY_TESTS_TESTING_FAKE_TIMER_H_
#define VISION_GATEWAY_TESTS_TESTING_FAKE_TIMER_H_

#include <map>
#include <optional>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "service/common/timer.h"

namespace vision_gateway::testing {

class FakeTimer final : public Timer {
 public:
  explicit FakeTimer(absl::Time start = absl::FromUnixSeconds(1'700'000'000)) : now_(start) {}

  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_;
  }

  Id RunAt(absl::Time when, absl::AnyInvocable<void()> fn) override {
    absl::MutexLock lock(&mu_);
    const Id id = ++last_id_;
    pending_.emplace(std::make_pair(when, id), std::move(fn));
    return id;
  }

  bool Cancel(Id id) override {
    absl::AnyInvocable<void()> removed;
    {
      absl::MutexLock lock(&mu_);
      for (auto it = pending_.begin(); it != pending_.end(); ++it) {
        if (it->first.second == id) {
          removed = std::move(it->second);
          pending_.erase(it);
          break;
        }
      }
    }
    return removed != nullptr;
  }

  // Moves time forward by `d`, running every callback that falls due, at its own time.
  void Advance(absl::Duration d) {
    absl::Time target;
    {
      absl::MutexLock lock(&mu_);
      target = now_ + d;
    }
    while (true) {
      absl::AnyInvocable<void()> fn;
      {
        absl::MutexLock lock(&mu_);
        if (pending_.empty() || pending_.begin()->first.first > target) {
          now_ = target;
          return;
        }
        now_ = std::max(now_, pending_.begin()->first.first);
        fn = std::move(pending_.begin()->second);
        pending_.erase(pending_.begin());
      }
      fn();
    }
  }

  // When the earliest pending callback is due; nullopt when none is pending.
  std::optional<absl::Time> NextDue() {
    absl::MutexLock lock(&mu_);
    if (pending_.empty()) return std::nullopt;
    return pending_.begin()->first.first;
  }

  size_t Pending() {
    absl::MutexLock lock(&mu_);
    return pending_.size();
  }

 private:
  absl::Mutex mu_;
  absl::Time now_;
  Id last_id_ = 0;
  std::map<std::pair<absl::Time, Id>, absl::AnyInvocable<void()>> pending_;
};

}  // namespace vision_gateway::testing

#endif  // VISION_GATEWAY_TESTS_TESTING_FAKE_TIMER_H_
