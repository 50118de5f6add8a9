// The global bound on concurrent calls (--max_concurrent_calls). A call holds a permit (one unit of
// a Semaphore, so a permit outliving the limiter never writes to freed memory) from its start
// until its reactor is deleted (after gRPC's OnDone and after its upstream task ended), so
// upstream requests in flight never exceed the bound either. Beyond it a call is refused at once
// with RESOURCE_EXHAUSTED, ErrorInfo SERVER_OVERLOADED and a RetryInfo — no queueing.
#ifndef VISION_GATEWAY_SERVICE_SERVER_CALL_LIMITER_H_
#define VISION_GATEWAY_SERVICE_SERVER_CALL_LIMITER_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "service/common/semaphore.h"

namespace vision_gateway::server {

class CallLimiter {
 public:
  // `max_calls` ≤ 0: unbounded. `retry_after` goes into the refusal's RetryInfo.
  CallLimiter(int max_calls, absl::Duration retry_after)
      : max_calls_(max_calls), retry_after_(retry_after), calls_(max_calls) {}

  // A permit while under the bound; an empty one (false) when full.
  Semaphore::Permit TryAcquire() { return calls_.TryAcquire(1); }

  // The refusal a caller gets when TryAcquire returned null.
  absl::Status Refusal() const;

  int active() const { return static_cast<int>(calls_.in_use()); }

 private:
  const int max_calls_;
  const absl::Duration retry_after_;
  Semaphore calls_;
};

}  // namespace vision_gateway::server

#endif  // VISION_GATEWAY_SERVICE_SERVER_CALL_LIMITER_H_
