#include "service/server/caller_auth_processor.h"

#include <grpc/grpc_security_constants.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "service/common/error_reasons.h"
#include "service/common/log.h"

namespace vision_gateway::server {
namespace {

class CallerAuthProcessor final : public grpc::AuthMetadataProcessor {
 public:
  CallerAuthProcessor(std::shared_ptr<const CallerGate> gate, std::string service)
      : gate_(std::move(gate)), prefix_(absl::StrCat("/", service, "/")) {}

  // A hash lookup: run inline on the call's thread.
  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* /*consumed_auth_metadata*/,
                       OutputMetadata* /*response_metadata*/) override {
    auto path = auth_metadata.find(":path");
    // Not a call of the guarded service (health, reflection): open.
    if (path == auth_metadata.end() ||
        !absl::StartsWith(absl::string_view(path->second.data(), path->second.size()),
                          prefix_)) {
      return grpc::Status::OK;
    }
    std::optional<absl::string_view> authorization;
    if (auto it = auth_metadata.find("authorization"); it != auth_metadata.end()) {
      authorization = absl::string_view(it->second.data(), it->second.size());
    }
    std::vector<std::string> identities;
    if (context != nullptr && context->IsPeerAuthenticated()) {
      for (const char* property : {GRPC_X509_CN_PROPERTY_NAME, GRPC_X509_SAN_PROPERTY_NAME}) {
        for (const grpc::string_ref& value : context->FindPropertyValues(property)) {
          if (identities.size() < 16) identities.emplace_back(value.data(), value.size());
        }
      }
    }
    absl::StatusOr<std::string> caller = gate_->Identify(authorization, identities);
    if (caller.ok()) return grpc::Status::OK;
    LogWarning("unauthenticated call refused before its body: %s", caller.status().message());
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        absl::StrCat(reasons::kCallerUnauthenticated, ": ",
                                     caller.status().message()));
  }

 private:
  const std::shared_ptr<const CallerGate> gate_;
  const std::string prefix_;
};

}  // namespace

std::shared_ptr<grpc::AuthMetadataProcessor> MakeCallerAuthProcessor(
    std::shared_ptr<const CallerGate> gate, std::string service) {
  return std::make_shared<CallerAuthProcessor>(std::move(gate), std::move(service));
}

}  // namespace vision_gateway::server
