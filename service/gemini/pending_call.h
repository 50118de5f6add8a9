// What every Gemini stub call shares: the per-call options and the cancel handle of a call in
// flight (generate_stub.h, files_stub.h).
#ifndef VISION_GATEWAY_SERVICE_GEMINI_PENDING_CALL_H_
#define VISION_GATEWAY_SERVICE_GEMINI_PENDING_CALL_H_

#include <memory>

#include "absl/time/time.h"
#include "service/telemetry/call_record.h"

namespace vision_gateway::gemini {

// What a call may do with the result cache (#21; result_cache/caching_generate_stub.h). Stubs
// other than the caching one ignore it.
enum class CacheControl {
  kUse,      // answer from a stored result or an identical call in flight; store the answer
  kBypass,   // neither read nor write
  kRefresh,  // do not read; store the fresh answer
};

struct CallOptions {
  absl::Time deadline = absl::InfiniteFuture();
  // The gRPC call this upstream call serves, if any: the instrumented stubs add its attempts,
  // upstream time and tokens; the REST client forwards its W3C traceparent.
  std::shared_ptr<telemetry::CallRecord> record;
  // The result cache (#21): what this call may do with it, and the task it serves (a metric
  // label from a fixed set: "caption", "detect", "segment"; a static string).
  CacheControl cache = CacheControl::kUse;
  const char* task = "";
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
