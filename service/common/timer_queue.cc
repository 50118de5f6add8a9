#include "service/common/timer_queue.h"

#include "absl/time/clock.h"

namespace vision_gateway {

TimerQueue::TimerQueue() : thread_([this] { Run(); }) {}

TimerQueue::~TimerQueue() {
  decltype(queue_) dropped;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    dropped.swap(queue_);
  }
  thread_.join();
}

void TimerQueue::RunAt(absl::Time when, absl::AnyInvocable<void()> work) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  queue_.emplace(std::make_pair(when, ++sequence_), std::move(work));
}

void TimerQueue::Run() {
  while (true) {
    absl::AnyInvocable<void()> work;
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        if (stopping_) return;
        if (!queue_.empty() && queue_.begin()->first.first <= absl::Now()) break;
        wake_ = queue_.empty() ? absl::Now() + absl::Seconds(1) : queue_.begin()->first.first;
        // Wakes at the deadline, on Stop, or when an earlier callback is queued.
        mu_.AwaitWithDeadline(absl::Condition(
                                  +[](TimerQueue* self) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                    return self->stopping_ ||
                                           (!self->queue_.empty() &&
                                            self->queue_.begin()->first.first < self->wake_);
                                  },
                                  this),
                              wake_);
      }
      work = std::move(queue_.begin()->second);
      queue_.erase(queue_.begin());
    }
    work();
  }
}

}  // namespace vision_gateway
