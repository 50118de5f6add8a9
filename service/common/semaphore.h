// A counting semaphore that never blocks: TryAcquire takes `units` at once or nothing. A Permit
// gives its units back when it is destroyed (or Release()d), exactly once, and keeps the
// semaphore's state alive, so a permit that outlives its owner (a call ending after the service
// that admitted it) never writes to freed memory.
//
// Used for the request bytes held by calls in flight (--max_request_memory_mb) and the batch
// spool's bytes (--batch_spool_max_mb).
#ifndef VISION_GATEWAY_SERVICE_COMMON_SEMAPHORE_H_
#define VISION_GATEWAY_SERVICE_COMMON_SEMAPHORE_H_

#include <cstdint>
#include <memory>

namespace vision_gateway {

class Semaphore {
 public:
  // `capacity` <= 0: unbounded (every TryAcquire succeeds; units are still counted).
  explicit Semaphore(int64_t capacity);

  class Permit {
   public:
    Permit() = default;
    Permit(Permit&& other) noexcept;
    Permit& operator=(Permit&& other) noexcept;
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit() { Release(); }

    // Gives the units back (once); the permit is then empty.
    void Release();
    // Takes `units` (>= 0) more from the same semaphore, all or nothing: false (the permit keeps
    // what it held) when they are not available or the permit is empty. For a holding that
    // grows as it is used (a spool file's bytes as they are written).
    bool TryExtend(int64_t units);
    int64_t units() const { return units_; }
    // True for a permit that holds units (or came from an unbounded semaphore).
    explicit operator bool() const { return state_ != nullptr; }

   private:
    friend class Semaphore;
    struct State;
    Permit(std::shared_ptr<State> state, int64_t units)
        : state_(std::move(state)), units_(units) {}
    std::shared_ptr<State> state_;
    int64_t units_ = 0;
  };

  // A permit for `units` (>= 0), or an empty permit when they are not all available.
  Permit TryAcquire(int64_t units);

  int64_t capacity() const;
  int64_t in_use() const;

 private:
  std::shared_ptr<Permit::State> state_;
};

}  // namespace vision_gateway

#endif  // VISION_GATEWAY_SERVICE_COMMON_SEMAPHORE_H_
