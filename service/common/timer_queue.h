// Runs callbacks at a later time on one background thread (upload resume backoff, polling a file
// that is still PROCESSING). Callbacks must be quick and must not block: they start asynchronous
// work and return.
#ifndef VISION_GATEWAY_SERVICE_COMMON_TIMER_QUEUE_H_
#define VISION_GATEWAY_SERVICE_COMMON_TIMER_QUEUE_H_

#include <cstdint>
#include <map>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vision_gateway {

class TimerQueue {
 public:
  TimerQueue();
  // Drops callbacks that have not run yet (without running them) and joins the thread.
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Runs `work` on the timer thread at `when` (at once if it has passed).
  void RunAt(absl::Time when, absl::AnyInvocable<void()> work);

 private:
  void Run();

  absl::Mutex mu_;
  std::multimap<std::pair<absl::Time, uint64_t>, absl::AnyInvocable<void()>> queue_
      ABSL_GUARDED_BY(mu_);
  uint64_t sequence_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time wake_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace vision_gateway

#endif  // VISION_GATEWAY_SERVICE_COMMON_TIMER_QUEUE_H_
