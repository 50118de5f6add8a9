// A byte buffer of a size fixed up front, filled in order by one producer while readers on
// other threads use what is already there: an upload chunk sent upstream as the caller's bytes
// arrive, so that receiving a chunk and sending it overlap instead of taking turns.
//
// Bytes once written never move nor change while the buffer lives: a reader may keep a view of
// [0, filled()) and send from it without a copy. The storage is one allocation made (or taken
// over from an earlier buffer, TakeStorage) at construction.
//
// Threads: Append/Abandon from the producer (one thread at a time); everything else from any
// thread. Callbacks given to WhenMore run on the producer's thread (or inline in WhenMore): they
// must not block nor call back into the producer.
#ifndef VISION_GATEWAY_SERVICE_COMMON_GROWING_BUFFER_H_
#define VISION_GATEWAY_SERVICE_COMMON_GROWING_BUFFER_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace vision_gateway {

class GrowingBuffer {
 public:
  // An empty buffer of `size` bytes. `storage` (e.g. an earlier buffer's, TakeStorage) is reused
  // when its capacity suffices: an upload then keeps one resident allocation instead of mapping
  // and faulting in fresh pages for every chunk.
  explicit GrowingBuffer(std::size_t size, std::string storage = std::string());
  // A buffer already complete with `bytes` (no copy).
  static std::shared_ptr<GrowingBuffer> Of(std::string bytes);

  GrowingBuffer(const GrowingBuffer&) = delete;
  GrowingBuffer& operator=(const GrowingBuffer&) = delete;

  std::size_t size() const { return size_; }

  // Producer: appends at most size() - filled() bytes of `bytes`; returns how many it took.
  // Wakes the readers waiting for more.
  std::size_t Append(std::string_view bytes);
  // Producer: no more bytes will come (what was to fill it failed). Waiting readers wake and
  // see abandoned().
  void Abandon();

  std::size_t filled() const;
  bool complete() const { return filled() == size_; }
  bool abandoned() const;
  // The bytes written so far, [0, filled()).
  std::string_view View() const;

  // Runs `wake` once filled() > `have`, or the buffer is complete or abandoned: at once (inline)
  // when that is already so, else from the producer's next Append/Abandon.
  void WhenMore(std::size_t have, absl::AnyInvocable<void()> wake);

  // The storage, for a next buffer, when nothing else refers to this one any more (the caller
  // holds the only reference); the buffer is empty afterwards.
  std::string TakeStorage();

 private:
  std::vector<absl::AnyInvocable<void()>> TakeWakers() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::size_t size_;
  std::string storage_;  // sized once, at construction; written only through base_
  char* const base_;

  mutable absl::Mutex mu_;
  std::size_t filled_ ABSL_GUARDED_BY(mu_) = 0;
  bool abandoned_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<absl::AnyInvocable<void()>> wakers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vision_gateway

#endif  // VISION_GATEWAY_SERVICE_COMMON_GROWING_BUFFER_H_
