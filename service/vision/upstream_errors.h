// What a caller should see of an upstream (Gemini) failure.
#ifndef VISION_GATEWAY_SERVICE_VISION_UPSTREAM_ERRORS_H_
#define VISION_GATEWAY_SERVICE_VISION_UPSTREAM_ERRORS_H_

#include "absl/status/status.h"

namespace vision_gateway::vision {

// Gemini rejecting the gateway's own credentials (401, or 400/403 with an ErrorInfo reason
// API_KEY_*) is not the caller's fault: it becomes INTERNAL with a fixed message and
// ErrorInfo reason UPSTREAM_AUTH_FAILED, so a caller never reads INVALID_ARGUMENT for a request
// that was fine. Everything else passes through with its details.
absl::Status ForCaller(absl::Status upstream);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_UPSTREAM_ERRORS_H_
