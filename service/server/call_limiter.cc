#include "service/server/call_limiter.h"

#include "absl/strings/str_cat.h"
#include "service/common/error_reasons.h"
#include "service/common/status_details.h"

namespace vision_gateway::server {

std::unique_ptr<CallLimiter::Permit> CallLimiter::TryAcquire() {
  const int before = active_.fetch_add(1, std::memory_order_acq_rel);
  if (max_calls_ > 0 && before >= max_calls_) {
    active_.fetch_sub(1, std::memory_order_acq_rel);
    return nullptr;
  }
  return std::make_unique<Permit>(this);
}

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
