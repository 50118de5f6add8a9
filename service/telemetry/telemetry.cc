#include "service/telemetry/telemetry.h"

namespace vision_gateway::telemetry {

std::string_view RpcTypeName(RpcType type) {
  switch (type) {
    case RpcType::kUnary:
      return "unary";
    case RpcType::kClientStream:
      return "client_stream";
    case RpcType::kServerStream:
      return "server_stream";
    case RpcType::kBidiStream:
      return "bidi_stream";
  }
  return "unary";
}

std::string_view TokenKindName(TokenKind kind) {
  switch (kind) {
    case TokenKind::kPrompt:
      return "prompt";
    case TokenKind::kOutput:
      return "output";
    case TokenKind::kThinking:
      return "thinking";
  }
  return "prompt";
}

std::string_view DropReasonName(DropReason reason) {
  switch (reason) {
    case DropReason::kMalformed:
      return "malformed";
    case DropReason::kOverLimit:
      return "over_limit";
    case DropReason::kInvalidBox:
      return "invalid_box";
    case DropReason::kEmptyBox:
      return "empty_box";
    case DropReason::kDegenerateMask:
      return "degenerate_mask";
  }
  return "malformed";
}

std::string_view BatchEventName(BatchEvent event) {
  switch (event) {
    case BatchEvent::kJobCreated:
      return "job_created";
    case BatchEvent::kItem:
      return "item";
    case BatchEvent::kResultLine:
      return "result_line";
    case BatchEvent::kItemFailed:
      return "item_failed";
  }
  return "unknown";
}

std::string_view CacheEventName(CacheEvent event) {
  switch (event) {
    case CacheEvent::kHit:
      return "hit";
    case CacheEvent::kCoalesced:
      return "coalesced";
    case CacheEvent::kMiss:
      return "miss";
    case CacheEvent::kBypass:
      return "bypass";
    case CacheEvent::kRefresh:
      return "refresh";
    case CacheEvent::kStore:
      return "store";
    case CacheEvent::kTooLarge:
      return "too_large";
    case CacheEvent::kError:
      return "error";
  }
  return "error";
}

std::string_view GrpcCodeName(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return "OK";
    case absl::StatusCode::kCancelled:
      return "Canceled";
    case absl::StatusCode::kUnknown:
      return "Unknown";
    case absl::StatusCode::kInvalidArgument:
      return "InvalidArgument";
    case absl::StatusCode::kDeadlineExceeded:
      return "DeadlineExceeded";
    case absl::StatusCode::kNotFound:
      return "NotFound";
    case absl::StatusCode::kAlreadyExists:
      return "AlreadyExists";
    case absl::StatusCode::kPermissionDenied:
      return "PermissionDenied";
    case absl::StatusCode::kResourceExhausted:
      return "ResourceExhausted";
    case absl::StatusCode::kFailedPrecondition:
      return "FailedPrecondition";
    case absl::StatusCode::kAborted:
      return "Aborted";
    case absl::StatusCode::kOutOfRange:
      return "OutOfRange";
    case absl::StatusCode::kUnimplemented:
      return "Unimplemented";
    case absl::StatusCode::kInternal:
      return "Internal";
    case absl::StatusCode::kUnavailable:
      return "Unavailable";
    case absl::StatusCode::kDataLoss:
      return "DataLoss";
    case absl::StatusCode::kUnauthenticated:
      return "Unauthenticated";
    default:
      return "Unknown";
  }
}

namespace {

class NoRpcMetrics final : public RpcMetrics {
 public:
  void Started() override {}
  void MessageReceived() override {}
  void MessageSent() override {}
  void Handled(absl::StatusCode, absl::Duration) override {}
  void GatewayOverhead(absl::Duration) override {}
  void ObjectsEmitted(int64_t) override {}
  void ItemsDropped(DropReason, int64_t) override {}
  void ErrorReason(std::string_view) override {}
  void CallerDone(std::string_view, absl::StatusCode,
                  const std::array<int64_t, kNumTokenKinds>&) override {}
};

class NoTelemetryImpl final : public Telemetry {
 public:
  RpcMetrics& Rpc(std::string_view, RpcType) override { return rpc_; }
  void CallsInFlight(int) override {}
  void UpstreamAttemptDone(const UpstreamAttempt&) override {}
  void UpstreamRetry(std::string_view, absl::Duration) override {}
  void Tokens(std::string_view, TokenKind, int64_t) override {}
  void UploadBytes(int64_t) override {}
  void SetProbe(Probe, std::function<double()>) override {}

 private:
  NoRpcMetrics rpc_;
};

}  // namespace

Telemetry& NoTelemetry() {
  static NoTelemetryImpl* const instance = new NoTelemetryImpl();
  return *instance;
}

}  // namespace vision_gateway::telemetry
