// What every Gemini stub call shares: the per-call options and the cancel handle of a call in
// flight (generate_stub.h, files_stub.h).
#ifndef VISION_GATEWAY_SERVICE_GEMINI_PENDING_CALL_H_
#define VISION_GATEWAY_SERVICE_GEMINI_PENDING_CALL_H_

#include <memory>

#include "absl/time/time.h"
#include "service/telemetry/call_record.h"

namespace vision_gateway::gemini {

struct CallOptions {
  absl::Time deadline = absl::InfiniteFuture();
  // The gRPC call this upstream call serves, if any: the instrumented stubs add its attempts,
  // upstream time and tokens; the REST client forwards its W3C traceparent.
  std::shared_ptr<telemetry::CallRecord> record;
};

// A call in flight. Cancel() is thread-safe, idempotent and harmless after completion; the
// call's completion callback then runs with CANCELLED (if it had not run yet).
class PendingCall {
 public:
  virtual ~PendingCall() = default;
  virtual void Cancel() = 0;
};

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_PENDING_CALL_H_
