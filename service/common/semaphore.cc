#include "service/common/semaphore.h"

#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace vision_gateway {

struct Semaphore::Permit::State {
  explicit State(int64_t capacity) : capacity(capacity) {}
  const int64_t capacity;
  absl::Mutex mu;
  int64_t in_use ABSL_GUARDED_BY(mu) = 0;
};

Semaphore::Semaphore(int64_t capacity) : state_(std::make_shared<Permit::State>(capacity)) {}

Semaphore::Permit::Permit(Permit&& other) noexcept
    : state_(std::move(other.state_)), units_(std::exchange(other.units_, 0)) {}

Semaphore::Permit& Semaphore::Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    Release();
    state_ = std::move(other.state_);
    units_ = std::exchange(other.units_, 0);
  }
  return *this;
}

void Semaphore::Permit::Release() {
  if (state_ == nullptr) return;
  {
    absl::MutexLock lock(&state_->mu);
    state_->in_use -= units_;
  }
  state_.reset();
  units_ = 0;
}

bool Semaphore::Permit::TryExtend(int64_t units) {
  if (state_ == nullptr) return false;
  if (units < 0) units = 0;
  absl::MutexLock lock(&state_->mu);
  if (state_->capacity > 0 && state_->in_use + units > state_->capacity) return false;
  state_->in_use += units;
  units_ += units;
  return true;
}

Semaphore::Permit Semaphore::TryAcquire(int64_t units) {
  if (units < 0) units = 0;
  absl::MutexLock lock(&state_->mu);
  if (state_->capacity > 0 && state_->in_use + units > state_->capacity) return Permit();
  state_->in_use += units;
  return Permit(state_, units);
}

int64_t Semaphore::capacity() const { return state_->capacity; }

int64_t Semaphore::in_use() const {
  absl::MutexLock lock(&state_->mu);
  return state_->in_use;
}

}  // namespace vision_gateway
