#include "service/gemini/rest_call.h"

#include <cstdint>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "service/common/status_details.h"
#include "service/gemini/error_envelope.h"

namespace vision_gateway::gemini::internal {
namespace {

absl::Status WithRetryAfter(absl::Status status, const http::Headers& headers) {
  if (status.ok() || GetRetryDelay(status).has_value()) return status;
  const std::string_view value = http::FindHeader(headers, "retry-after");
  int64_t seconds = 0;
  if (value.empty() || !absl::SimpleAtoi(absl::string_view(value.data(), value.size()), &seconds) ||
      seconds < 0 || seconds > 24 * 3600) {
    return status;
  }
  return WithRetryInfo(std::move(status), absl::Seconds(seconds));
}

}  // namespace

absl::Status HttpErrorStatus(int http_status, std::string_view body, const http::Headers& headers) {
  return WithRetryAfter(StatusFromHttpError(http_status, body), headers);
}

void HttpCallSlot::Set(std::shared_ptr<http::Call> call) {
  bool cancel_now = false;
  {
    absl::MutexLock lock(&mu_);
    if (done_) return;
    call_ = call;
    cancel_now = cancel_requested_;
  }
  if (cancel_now && call) call->Cancel();
}

void HttpCallSlot::Cancel() {
  std::shared_ptr<http::Call> call;
  {
    absl::MutexLock lock(&mu_);
    if (done_) return;
    cancel_requested_ = true;
    call = call_;
  }
  // Outside the lock: the HTTP layer may report completion from inside Cancel().
  if (call) call->Cancel();
}

void HttpCallSlot::Done() {
  std::shared_ptr<http::Call> call;
  absl::MutexLock lock(&mu_);
  done_ = true;
  call.swap(call_);
}

}  // namespace vision_gateway::gemini::internal
