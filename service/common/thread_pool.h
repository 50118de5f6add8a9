// A fixed pool of worker threads for CPU work that must not run on gRPC callback threads or on
// the I/O threads (image decoding and re-encoding, mask work). The queue is bounded: work that
// does not fit is refused (TrySchedule returns false) so callers can shed load instead of pinning
// memory without bound. An exception escaping a work item is caught and logged; the worker lives
// on (work items that own a call must fail it themselves, see spatial_task.cc).
#ifndef VISION_GATEWAY_SERVICE_COMMON_THREAD_POOL_H_
#define VISION_GATEWAY_SERVICE_COMMON_THREAD_POOL_H_

#include <cstddef>
#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace vision_gateway {

class ThreadPool {
 public:
  // `max_queued`: most items waiting for a worker (0: unbounded).
  explicit ThreadPool(int threads, std::size_t max_queued = 0);
  // Runs the work already queued, then joins the threads.
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues new work (admission): false, and `work` is destroyed unrun, when the queue is full.
  [[nodiscard]] bool TrySchedule(absl::AnyInvocable<void()> work);

  // Queues the continuation of work already admitted (e.g. the next step of a call that holds
  // one of the server's bounded call slots), regardless of the bound: such items are bounded by
  // the number of admitted calls.
  void ScheduleContinuation(absl::AnyInvocable<void()> work);

  // Items waiting for a worker.
  std::size_t queued() const;


 private:
  void Run();

  const std::size_t max_queued_;
  mutable absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace vision_gateway

#endif  // VISION_GATEWAY_SERVICE_COMMON_THREAD_POOL_H_
