// The global bound on concurrent calls (--max_concurrent_calls). A call holds a permit from its
// start until its reactor is deleted (after gRPC's OnDone and after its upstream task ended), so
// upstream requests in flight never exceed the bound either. Beyond it a call is refused at once
// with RESOURCE_EXHAUSTED, ErrorInfo SERVER_OVERLOADED and a RetryInfo — no queueing.
#ifndef VISION_GATEWAY_SERVICE_SERVER_CALL_LIMITER_H_
#define VISION_GATEWAY_SERVICE_SERVER_CALL_LIMITER_H_

#include <atomic>
#include <memory>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace vision_gateway::server {

class CallLimiter {
 public:
  class Permit {
   public:
    explicit Permit(CallLimiter* limiter) : limiter_(limiter) {}
    ~Permit() { limiter_->active_.fetch_sub(1, std::memory_order_acq_rel); }
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;

   private:
    CallLimiter* limiter_;
  };

  // `max_calls` ≤ 0: unbounded. `retry_after` goes into the refusal's RetryInfo.
  CallLimiter(int max_calls, absl::Duration retry_after)
      : max_calls_(max_calls), retry_after_(retry_after) {}

  // A permit while under the bound; null when full.
  std::unique_ptr<Permit> TryAcquire();

  // The refusal a caller gets when TryAcquire returned null.
  absl::Status Refusal() const;

  int active() const { return active_.load(std::memory_order_acquire); }

 private:
  const int max_calls_;
  const absl::Duration retry_after_;
  std::atomic<int> active_{0};
};

}  // namespace vision_gateway::server

#endif  // VISION_GATEWAY_SERVICE_SERVER_CALL_LIMITER_H_
