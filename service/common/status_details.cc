#include "service/common/status_details.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "google/rpc/error_details.pb.h"

namespace vision_gateway {

void AddDetail(absl::Status& status, const google::protobuf::Message& detail) {
  if (status.ok()) return;
  status.SetPayload(absl::StrCat(kTypeUrlPrefix, detail.GetDescriptor()->full_name()),
                    absl::Cord(detail.SerializeAsString()));
}

bool GetDetail(const absl::Status& status, google::protobuf::Message& detail) {
  auto payload =
      status.GetPayload(absl::StrCat(kTypeUrlPrefix, detail.GetDescriptor()->full_name()));
  return payload.has_value() && detail.ParseFromString(std::string(*payload));
}

absl::Status WithErrorInfo(absl::Status status, std::string_view reason,
                           const std::map<std::string, std::string>& metadata) {
  google::rpc::ErrorInfo info;
  info.set_reason(std::string(reason));
  info.set_domain("vision-gateway");
  for (const auto& [k, v] : metadata) (*info.mutable_metadata())[k] = v;
  AddDetail(status, info);
  return status;
}

absl::Status WithRetryInfo(absl::Status status, absl::Duration retry_delay) {
  google::rpc::RetryInfo info;
  const int64_t nanos = absl::ToInt64Nanoseconds(retry_delay);
  info.mutable_retry_delay()->set_seconds(nanos / 1000000000);
  info.mutable_retry_delay()->set_nanos(static_cast<int32_t>(nanos % 1000000000));
  AddDetail(status, info);
  return status;
}

std::optional<absl::Duration> GetRetryDelay(const absl::Status& status) {
  google::rpc::RetryInfo info;
  if (!GetDetail(status, info)) return std::nullopt;
  return absl::Seconds(info.retry_delay().seconds()) + absl::Nanoseconds(info.retry_delay().nanos());
}

absl::Status WithOutcome(absl::Status status, std::string_view reason) {
  if (!status.ok()) status.SetPayload(kOutcomePayloadUrl, absl::Cord(absl::string_view(reason.data(), reason.size())));
  return status;
}

std::string GetOutcome(const absl::Status& status) {
  auto payload = status.GetPayload(kOutcomePayloadUrl);
  return payload.has_value() ? std::string(*payload) : std::string();
}

}  // namespace vision_gateway
