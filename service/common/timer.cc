#include "service/common/timer.h"

#include <map>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace vision_gateway {
namespace {

// Shared by the timer object and its thread, so that the timer may be destroyed from one of its
// own callbacks (the thread then finishes alone).
struct TimerState {
  using Key = std::pair<absl::Time, Timer::Id>;

  void Run() {
    absl::MutexLock lock(&mu);
    while (!stopping) {
      const absl::Time next = pending.empty() ? absl::InfiniteFuture() : pending.begin()->first.first;
      if (next > absl::Now()) {
        auto wake = [this, next]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
          return stopping || (!pending.empty() && pending.begin()->first.first < next);
        };
        mu.AwaitWithDeadline(absl::Condition(&wake), next);
        continue;
      }
      absl::AnyInvocable<void()> fn = std::move(pending.begin()->second);
      pending.erase(pending.begin());
      mu.Unlock();
      fn();
      fn = nullptr;
      mu.Lock();
    }
  }

  absl::Mutex mu;
  std::map<Key, absl::AnyInvocable<void()>> pending ABSL_GUARDED_BY(mu);
  Timer::Id last_id ABSL_GUARDED_BY(mu) = 0;
  bool stopping ABSL_GUARDED_BY(mu) = false;
};

class ThreadTimer final : public Timer {
 public:
  ThreadTimer()
      : state_(std::make_shared<TimerState>()), thread_([state = state_] { state->Run(); }) {}

  ~ThreadTimer() override {
    std::map<TimerState::Key, absl::AnyInvocable<void()>> dropped;
    {
      absl::MutexLock lock(&state_->mu);
      state_->stopping = true;
      dropped.swap(state_->pending);
    }
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();
    } else {
      thread_.join();
    }
    // `dropped` is destroyed here, outside the lock.
  }

  absl::Time Now() override { return absl::Now(); }

  Id RunAt(absl::Time when, absl::AnyInvocable<void()> fn) override {
    absl::MutexLock lock(&state_->mu);
    const Id id = ++state_->last_id;
    state_->pending.emplace(TimerState::Key{when, id}, std::move(fn));
    return id;
  }

  bool Cancel(Id id) override {
    absl::AnyInvocable<void()> removed;
    {
      absl::MutexLock lock(&state_->mu);
      for (auto it = state_->pending.begin(); it != state_->pending.end(); ++it) {
        if (it->first.second == id) {
          removed = std::move(it->second);
          state_->pending.erase(it);
          break;
        }
      }
    }
    return removed != nullptr;  // destroyed outside the lock
  }

 private:
  std::shared_ptr<TimerState> state_;
  std::thread thread_;
};

}  // namespace

std::shared_ptr<Timer> MakeThreadTimer() { return std::make_shared<ThreadTimer>(); }

}  // namespace vision_gateway
