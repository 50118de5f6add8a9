// Upstream calls that outlive the RPC that started them: an upload session still opening when its
// upload was aborted (that request is not cancelled, see ResumableUpload::Start), and the
// fire-and-forget cancel of a session. Their callbacks use what the service owns (the timer, the
// Gemini client, the telemetry behind it), so the service keeps one DetachedCalls and, when it
// goes away, cancels them all and waits until each has called back: none runs after the service
// is gone. (Found by the stress test under ASan: a session opened after shutdown used the freed
// timer.)
//
//   bool started = DetachedCalls::Run(detached, [&](DetachedCalls::Ender end) {
//     return gemini.Start(..., [end](...) { ...; end(); });  // end(): the callback's last step
//   });                                                       // false: closed, nothing started
//
// end() must be the callback's last use of anything the service owns.
#ifndef VISION_GATEWAY_SERVICE_VISION_DETACHED_CALLS_H_
#define VISION_GATEWAY_SERVICE_VISION_DETACHED_CALLS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "service/common/timer.h"
#include "service/gemini/gemini_client.h"

namespace vision_gateway::vision {

// A time limit on a tracked call (--max_call_duration_s for calls without a deadline): when `at`
// passes, `fired` is set and the call is cancelled; whoever finishes the call then reports
// `status` instead of the cancellation.
struct CallExpiry {
  CallExpiry(absl::Time at, absl::Status status) : at(at), status(std::move(status)) {}
  const absl::Time at;
  const absl::Status status;
  std::atomic<bool> fired{false};
  // `result`, or `status` when the call failed (was cancelled) after the limit fired.
  absl::Status Apply(absl::Status result) const {
    return !result.ok() && fired.load(std::memory_order_acquire) ? status : result;
  }
};

class DetachedCalls {
 public:
  // `timer` (may be null: no time limits) runs the CallExpiry limits; it must outlive this.
  explicit DetachedCalls(Timer* timer = nullptr) : timer_(timer) {}
  DetachedCalls(const DetachedCalls&) = delete;
  DetachedCalls& operator=(const DetachedCalls&) = delete;
  // Closes and waits (CancelAndWait with kDestructorWait) if nobody did.
  ~DetachedCalls();

  static constexpr absl::Duration kDestructorWait = absl::Seconds(10);

  // Ends the tracking of one call (nothing when untracked).
  struct Ender {
    DetachedCalls* calls = nullptr;
    uint64_t id = 0;
    void operator()() const {
      if (calls != nullptr) calls->End(id);
    }
  };

  // Starts a call tracked by `calls` (null: untracked): `start(end)` starts it and returns its
  // PendingCall; its callback runs `end()` last. False, with nothing started, once `calls` is
  // closed. If `start` throws, the tracking is ended and the exception goes on.
  template <typename F>
  static bool Run(DetachedCalls* calls, F&& start) {
    if (calls == nullptr) {
      start(Ender{});
      return true;
    }
    const uint64_t id = calls->Begin();
    if (id == 0) return false;
    std::shared_ptr<gemini::PendingCall> call;
    try {
      call = start(Ender{calls, id});
    } catch (...) {
      calls->End(id);
      throw;
    }
    calls->Attach(id, std::move(call));
    return true;
  }

  // Reserves an id for a call about to start; 0 once closed (the call must not be started).
  uint64_t Begin();
  // How to cancel the started call of `id` (run at once when closed since Begin). A call that
  // already ended (End before Attach) is not kept.
  // With `expiry` (not null, `at` finite): cancelled at that time too, after `fired` is set.
  void Attach(uint64_t id, std::function<void()> cancel,
              std::shared_ptr<CallExpiry> expiry = nullptr);
  void Attach(uint64_t id, std::shared_ptr<gemini::PendingCall> call);
  // The call of `id` has called back. Ignores 0.
  void End(uint64_t id);

  // Refuses new calls, cancels the running ones and waits until every begun one ended, at most
  // `bound`. Returns how many had not ended by then (0: all done).
  int CancelAndWait(absl::Duration bound);

  // Calls begun and not ended (tests).
  int InFlight() const;

 private:
  struct Running {
    std::function<void()> cancel;  // empty until attached
    std::shared_ptr<CallExpiry> expiry;
    Timer::Id expiry_timer = 0;
  };
  // Shared with the time limits' timer callbacks, which may run while this is being destroyed.
  struct State {
    absl::Mutex mu;
    bool closed ABSL_GUARDED_BY(mu) = false;
    uint64_t next_id ABSL_GUARDED_BY(mu) = 1;
    // Begun and not ended.
    std::map<uint64_t, Running> running ABSL_GUARDED_BY(mu);
  };
  // The time limit of `id` passed: marks it expired and cancels it (if still running).
  static void Expire(State& state, uint64_t id);

  Timer* const timer_;
  const std::shared_ptr<State> state_ = std::make_shared<State>();
};

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_DETACHED_CALLS_H_
