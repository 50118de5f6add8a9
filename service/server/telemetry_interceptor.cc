#include "service/server/telemetry_interceptor.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/interceptor.h>

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "service/telemetry/access_log.h"
#include "service/telemetry/request_id.h"

namespace vision_gateway::server {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::ServerRpcInfo;

constexpr char kErrorDomain[] = "vision-gateway";

telemetry::RpcType ToRpcType(ServerRpcInfo::Type type) {
  switch (type) {
    case ServerRpcInfo::Type::UNARY:
      return telemetry::RpcType::kUnary;
    case ServerRpcInfo::Type::CLIENT_STREAMING:
      return telemetry::RpcType::kClientStream;
    case ServerRpcInfo::Type::SERVER_STREAMING:
      return telemetry::RpcType::kServerStream;
    case ServerRpcInfo::Type::BIDI_STREAMING:
      return telemetry::RpcType::kBidiStream;
  }
  return telemetry::RpcType::kUnary;
}

std::string_view FindMetadata(
    const std::multimap<grpc::string_ref, grpc::string_ref>* metadata, std::string_view key) {
  if (metadata == nullptr) return {};
  auto it = metadata->find(grpc::string_ref(key.data(), key.size()));
  if (it == metadata->end()) return {};
  return std::string_view(it->second.data(), it->second.size());
}

// The ErrorInfo reason of our own domain in a status's details, or empty.
std::string ErrorReasonOf(const grpc::Status& status) {
  if (status.ok() || status.error_details().empty()) return {};
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) return {};
  for (const auto& any : details.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info) && info.domain() == kErrorDomain) return info.reason();
  }
  return {};
}

class TelemetryInterceptor final : public grpc::experimental::Interceptor {
 public:
  TelemetryInterceptor(ServerRpcInfo* info, telemetry::Telemetry& telemetry,
                       CallRegistry& registry)
      : info_(info),
        telemetry_(telemetry),
        registry_(registry),
        start_(absl::Now()),
        rpc_(telemetry.Rpc(info->method() != nullptr ? info->method() : "",
                           ToRpcType(info->type()))),
        in_flight_counted_(!telemetry::IsHealthCheck(info->method() != nullptr ? info->method()
                                                                                : "")) {}

  ~TelemetryInterceptor() override {
    if (record_ != nullptr) {
      registry_.Remove(info_->server_context());
      if (in_flight_counted_) telemetry_.CallsInFlight(-1);
    }
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      Begin(methods->GetRecvInitialMetadata());
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() != nullptr) {
      rpc_.MessageReceived();
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      Begin(nullptr);
      methods->GetSendInitialMetadata()->emplace(telemetry::kRequestIdHeader,
                                                 record_->request_id());
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_SEND_MESSAGE) &&
        methods->GetSendMessageStatus()) {
      rpc_.MessageSent();
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      End(methods);
    }
    methods->Proceed();
  }

 private:
  // Once, when the caller's metadata has arrived (before the handler runs).
  void Begin(const std::multimap<grpc::string_ref, grpc::string_ref>* metadata) {
    if (record_ != nullptr) return;
    std::string request_id(FindMetadata(metadata, telemetry::kRequestIdHeader));
    if (!telemetry::IsValidRequestId(request_id)) request_id = telemetry::GenerateRequestId();
    std::string traceparent(FindMetadata(metadata, telemetry::kTraceparentHeader));
    if (!telemetry::IsValidTraceparent(traceparent)) traceparent.clear();
    record_ = std::make_shared<telemetry::CallRecord>(telemetry_, std::move(request_id),
                                                      std::move(traceparent));
    registry_.Add(info_->server_context(), record_);
    if (in_flight_counted_) telemetry_.CallsInFlight(1);
    rpc_.Started();
  }

  void End(grpc::experimental::InterceptorBatchMethods* methods) {
    Begin(nullptr);
    const grpc::Status status = methods->GetSendStatus();
    const auto code = static_cast<absl::StatusCode>(status.error_code());
    const absl::Duration duration = absl::Now() - start_;
    const telemetry::CallRecord::Snapshot stats = record_->Read();
    const absl::Duration upstream = std::min(stats.upstream, duration);
    const absl::Duration gateway = duration - upstream;

    methods->GetSendTrailingMetadata()->emplace(
        kServerTimingTrailer,
        absl::StrCat("gateway;dur=", telemetry::FormatMillis(gateway),
                     ", upstream;dur=", telemetry::FormatMillis(upstream),
                     stats.cache.has_value()
                         ? absl::StrCat(", cache;desc=",
                                        std::string(telemetry::CacheEventName(*stats.cache)))
                         : std::string()));

    rpc_.Handled(code, duration);
    rpc_.GatewayOverhead(gateway);
    rpc_.ObjectsEmitted(stats.objects);
    for (int r = 0; r < telemetry::kNumDropReasons; ++r) {
      rpc_.ItemsDropped(static_cast<telemetry::DropReason>(r), stats.dropped[r]);
    }
    const std::string reason = ErrorReasonOf(status);
    if (!reason.empty()) rpc_.ErrorReason(reason);
    const std::string caller = record_->caller();
    if (!caller.empty()) rpc_.CallerDone(caller, code, stats.tokens);

    const std::string_view method = info_->method() != nullptr ? info_->method() : "";
    if (!telemetry::AccessLogEnabled(method)) return;
    const std::string peer = info_->server_context()->peer();
    telemetry::LogAccess({.method = method,
                          .peer = peer,
                          .code = code,
                          .reason = reason,
                          .duration = duration,
                          .stats = stats,
                          .request_id = record_->request_id(),
                          .traceparent = record_->traceparent(),
                          .caller = caller});
  }

  ServerRpcInfo* const info_;
  telemetry::Telemetry& telemetry_;
  CallRegistry& registry_;
  const absl::Time start_;
  telemetry::RpcMetrics& rpc_;
  // Health checks are not "calls being served": a probe's Watch stream stays open for good, and
  // they take no --max_concurrent_calls slot (calls_in_flight is the saturation alert's numerator).
  const bool in_flight_counted_;
  // Interceptor hooks of one call run one at a time.
  std::shared_ptr<telemetry::CallRecord> record_;
};

class TelemetryInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  TelemetryInterceptorFactory(telemetry::Telemetry& telemetry, CallRegistry& registry)
      : telemetry_(telemetry), registry_(registry) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(ServerRpcInfo* info) override {
    return new TelemetryInterceptor(info, telemetry_, registry_);
  }

 private:
  telemetry::Telemetry& telemetry_;
  CallRegistry& registry_;
};

}  // namespace

void CallRegistry::Add(const void* context, std::shared_ptr<telemetry::CallRecord> record) {
  absl::MutexLock lock(&mu_);
  records_[context] = std::move(record);
}

void CallRegistry::Remove(const void* context) {
  absl::MutexLock lock(&mu_);
  records_.erase(context);
}

std::shared_ptr<telemetry::CallRecord> CallRegistry::Find(const void* context) const {
  absl::MutexLock lock(&mu_);
  auto it = records_.find(context);
  return it == records_.end() ? nullptr : it->second;
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeTelemetryInterceptorFactory(telemetry::Telemetry& telemetry, CallRegistry& registry) {
  return std::make_unique<TelemetryInterceptorFactory>(telemetry, registry);
}

}  // namespace vision_gateway::server
