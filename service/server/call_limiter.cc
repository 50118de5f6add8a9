#include "service/server/call_limiter.h"

#include "absl/strings/str_cat.h"
#include "service/common/error_reasons.h"
#include "service/common/status_details.h"

namespace vision_gateway::server {

absl::Status CallLimiter::Refusal() const {
  return WithRetryInfo(
      WithErrorInfo(absl::ResourceExhaustedError(absl::StrCat(
                        "the gateway is at its limit of ", max_calls_,
                        " concurrent calls (--max_concurrent_calls); retry after the delay in "
                        "RetryInfo or on another replica")),
                    reasons::kServerOverloaded, {{"limit", "max_concurrent_calls"}}),
      retry_after_);
}

}  // namespace vision_gateway::server
