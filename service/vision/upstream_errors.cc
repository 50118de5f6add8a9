#include "service/vision/upstream_errors.h"

#include "absl/strings/match.h"
#include "google/rpc/error_details.pb.h"
#include "service/common/status_details.h"

namespace vision_gateway::vision {

absl::Status ForCaller(absl::Status upstream) {
  if (upstream.ok()) return upstream;
  google::rpc::ErrorInfo info;
  const bool key_rejected = upstream.code() == absl::StatusCode::kUnauthenticated ||
                            (GetDetail(upstream, info) && absl::StartsWith(info.reason(), "API_KEY"));
  if (!key_rejected) return upstream;
  return WithErrorInfo(
      absl::InternalError("Gemini rejected the gateway's credentials; check the server's API key"),
      "UPSTREAM_AUTH_FAILED");
}

}  // namespace vision_gateway::vision
