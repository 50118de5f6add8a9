// Who is calling, and may they: caller authentication, per-caller limits and per-caller policy.
//
// With authentication on, every VisionService call must name its caller, by a bearer token
// (`authorization: Bearer <token>`, tokens from --auth_tokens_file, see caller_tokens.h) or, with
// mTLS and --auth_client_cert, by the verified client certificate (its Subject CN, else its first
// SAN that is a valid caller name). Missing or wrong credentials → UNAUTHENTICATED (ErrorInfo
// reason CALLER_UNAUTHENTICATED). Health and reflection are other services and stay open.
//
// The admitted call gets the caller's name (passed down as a plain value), the caller's policy
// (limits and VisionOptions with the caller's cost overrides) and a permit that holds one of the
// caller's concurrent-call slots until the call ends.
#ifndef VISION_GATEWAY_SERVICE_SERVER_CALLER_GATE_H_
#define VISION_GATEWAY_SERVICE_SERVER_CALLER_GATE_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/server/caller_limiter.h"
#include "service/server/caller_tokens.h"
#include "service/vision/vision_options.h"

namespace vision_gateway::server {

// One caller's settings that differ from the server-wide ones.
struct CallerOverrides {
  std::optional<double> requests_per_second;
  std::optional<int> burst;
  std::optional<int> max_concurrent_calls;
  std::optional<std::vector<std::string>> allowed_models;
  std::optional<int32_t> max_output_tokens;
  std::optional<int32_t> max_thinking_budget;
  std::optional<std::string> max_thinking_level;
  std::optional<int> max_images_per_request;
  std::optional<int64_t> max_image_bytes_per_request;
};

// Parses --caller_overrides: "caller:key=value,key=value;caller2:key=value". Keys: rps, burst,
// concurrent, models (separated by '|'), max_output_tokens, max_thinking_budget,
// max_thinking_level, max_images, max_image_bytes. Empty spec: no overrides.
absl::StatusOr<std::map<std::string, CallerOverrides>> ParseCallerOverrides(absl::string_view spec);

struct AuthOptions {
  // Bearer tokens file (empty: no token authentication).
  std::string tokens_file;
  // With mTLS: a verified client certificate names the caller.
  bool client_cert_identity = false;
  // How often the tokens file is checked for changes.
  absl::Duration reload_interval = absl::Seconds(10);
  // Every caller's limits, unless overridden.
  CallerLimits limits;
  std::map<std::string, CallerOverrides> overrides;
};

struct CallerPolicy {
  CallerLimits limits;
  vision::VisionOptions vision;
};

struct Admission {
  std::string caller;  // "" when authentication is off
  std::shared_ptr<const CallerPolicy> policy;
  CallerLimiter::Permit permit;
};

class CallerGate {
 public:
  // `vision` holds the server-wide cost limits the overrides start from.
  static absl::StatusOr<std::unique_ptr<CallerGate>> Create(AuthOptions options,
                                                           const vision::VisionOptions& vision);
  ~CallerGate();

  bool enabled() const { return tokens_ != nullptr || options_.client_cert_identity; }

  // Identifies the caller of `context` and admits the call under the caller's limits.
  absl::StatusOr<Admission> Admit(const grpc::CallbackServerContext& context);

  // The caller named by these credentials: `authorization` is the first authorization header
  // (nullopt when absent), `cert_identities` the verified client certificate's CN then SANs
  // (empty without mTLS). "" when authentication is off.
  absl::StatusOr<std::string> Identify(std::optional<absl::string_view> authorization,
                                       const std::vector<std::string>& cert_identities) const;

  // Checks the tokens file for changes now (the gate also does so every reload_interval).
  void ReloadTokens();

  std::shared_ptr<const CallerPolicy> PolicyFor(const std::string& caller) const;

 private:
  explicit CallerGate(AuthOptions options) : options_(std::move(options)) {}
  void ReloadLoop();

  AuthOptions options_;
  std::unique_ptr<CallerTokens> tokens_;
  std::shared_ptr<const CallerPolicy> default_policy_;
  std::map<std::string, std::shared_ptr<const CallerPolicy>> policies_;
  CallerLimiter limiter_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread reloader_;
};

}  // namespace vision_gateway::server

#endif  // VISION_GATEWAY_SERVICE_SERVER_CALLER_GATE_H_
