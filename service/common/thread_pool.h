// A fixed pool of worker threads for CPU work that must not run on gRPC callback threads or on
// the I/O threads (image decoding and re-encoding).
#ifndef VISION_GATEWAY_SERVICE_COMMON_THREAD_POOL_H_
#define VISION_GATEWAY_SERVICE_COMMON_THREAD_POOL_H_

#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace vision_gateway {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  // Runs the work already queued, then joins the threads.
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Schedule(absl::AnyInvocable<void()> work);

  // Work scheduled and not yet started (for the queued-work gauge).
  std::size_t queued() const;

 private:
  void Run();

  mutable absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace vision_gateway

#endif  // VISION_GATEWAY_SERVICE_COMMON_THREAD_POOL_H_
