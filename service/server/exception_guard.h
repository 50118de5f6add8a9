// One place where an exception from the code behind an RPC (bad_alloc while copying images or
// assembling an upload chunk, or any other) becomes the caller's INTERNAL / INTERNAL_ERROR and a
// log line, instead of escaping into gRPC, which would end the process.
#ifndef VISION_GATEWAY_SERVICE_SERVER_EXCEPTION_GUARD_H_
#define VISION_GATEWAY_SERVICE_SERVER_EXCEPTION_GUARD_H_

#include <exception>
#include <string>

#include "absl/status/status.h"
#include "service/common/error_reasons.h"
#include "service/common/log.h"
#include "service/common/status_details.h"

namespace vision_gateway::server {

// Runs `step`. OK when it returned; when it threw, logs "<doing> failed: <what>" and returns
// INTERNAL with ErrorInfo INTERNAL_ERROR and `message` (what the caller reads).
template <typename F>
absl::Status RunGuarded(const char* doing, const char* message, F&& step) {
  std::string what = "unknown exception";
  try {
    step();
    return absl::OkStatus();
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  LogError("%s failed: %s", doing, what);
  return WithErrorInfo(absl::InternalError(message), reasons::kInternalError);
}

}  // namespace vision_gateway::server

#endif  // VISION_GATEWAY_SERVICE_SERVER_EXCEPTION_GUARD_H_
