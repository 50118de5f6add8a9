#include "service/common/thread_pool.h"

#include <exception>
#include <utility>

#include "service/common/log.h"

namespace vision_gateway {

ThreadPool::ThreadPool(int threads, std::size_t max_queued) : max_queued_(max_queued) {
  if (threads < 1) threads = 1;
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

ThreadPool::~ThreadPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

bool ThreadPool::TrySchedule(absl::AnyInvocable<void()> work) {
  {
    absl::MutexLock lock(&mu_);
    if (max_queued_ == 0 || queue_.size() < max_queued_) {
      queue_.push_back(std::move(work));
      return true;
    }
  }
  return false;  // `work` is destroyed here, outside the lock
}

void ThreadPool::ScheduleContinuation(absl::AnyInvocable<void()> work) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(work));
}

std::size_t ThreadPool::queued() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

void ThreadPool::Run() {
  while (true) {
    absl::AnyInvocable<void()> work;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queue_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, nothing left
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      work();
      work = nullptr;
    } catch (const std::exception& e) {
      LogError("CPU pool: work item threw (%s); the worker continues", e.what());
    } catch (...) {
      LogError("CPU pool: work item threw; the worker continues");
    }
  }
}

}  // namespace vision_gateway
