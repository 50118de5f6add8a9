#include "service/common/growing_buffer.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace vision_gateway {
namespace {

// Storage of exactly `size` bytes, reusing `storage`'s allocation when it is large enough
// (shrinking a string keeps its capacity; only bytes past its old size are zero-filled).
std::string Sized(std::string storage, std::size_t size) {
  if (storage.capacity() < size) storage = std::string();
  storage.resize(size);
  return storage;
}

}  // namespace

GrowingBuffer::GrowingBuffer(std::size_t size, std::string storage)
    : size_(size), storage_(Sized(std::move(storage), size)), base_(storage_.data()) {}

std::shared_ptr<GrowingBuffer> GrowingBuffer::Of(std::string bytes) {
  const std::size_t size = bytes.size();
  auto buffer = std::make_shared<GrowingBuffer>(size, std::move(bytes));
  absl::MutexLock lock(&buffer->mu_);
  buffer->filled_ = size;
  return buffer;
}

std::size_t GrowingBuffer::Append(std::string_view bytes) {
  std::size_t at;
  std::size_t n;
  {
    absl::MutexLock lock(&mu_);
    if (abandoned_) return 0;
    at = filled_;
    n = std::min(bytes.size(), size_ - filled_);
  }
  if (n == 0) return 0;
  // Outside the lock: readers only look below filled_, and only the producer moves it.
  std::memcpy(base_ + at, bytes.data(), n);
  std::vector<absl::AnyInvocable<void()>> wakers;
  {
    absl::MutexLock lock(&mu_);
    filled_ = at + n;
    wakers = TakeWakers();
  }
  for (auto& wake : wakers) wake();
  return n;
}

void GrowingBuffer::Abandon() {
  std::vector<absl::AnyInvocable<void()>> wakers;
  {
    absl::MutexLock lock(&mu_);
    abandoned_ = true;
    wakers = TakeWakers();
  }
  for (auto& wake : wakers) wake();
}

std::vector<absl::AnyInvocable<void()>> GrowingBuffer::TakeWakers() {
  std::vector<absl::AnyInvocable<void()>> wakers;
  wakers.swap(wakers_);
  return wakers;
}

std::size_t GrowingBuffer::filled() const {
  absl::MutexLock lock(&mu_);
  return filled_;
}

bool GrowingBuffer::abandoned() const {
  absl::MutexLock lock(&mu_);
  return abandoned_;
}

std::string_view GrowingBuffer::View() const { return std::string_view(base_, filled()); }

void GrowingBuffer::WhenMore(std::size_t have, absl::AnyInvocable<void()> wake) {
  {
    absl::MutexLock lock(&mu_);
    if (filled_ <= have && filled_ < size_ && !abandoned_) {
      wakers_.push_back(std::move(wake));
      return;
    }
  }
  wake();
}

std::string GrowingBuffer::TakeStorage() {
  absl::MutexLock lock(&mu_);
  filled_ = 0;
  abandoned_ = true;
  return std::move(storage_);
}

}  // namespace vision_gateway
