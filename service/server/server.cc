#include "service/server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "service/server/vision_service.h"

namespace vision_gateway::server {

namespace {

// A duration as the int milliseconds of a gRPC channel argument (INT_MAX: never).
int ChannelArgMs(absl::Duration d) {
  if (d >= absl::Milliseconds(INT_MAX)) return INT_MAX;
  return static_cast<int>(std::max<int64_t>(absl::ToInt64Milliseconds(d), 0));
}

}  // namespace

absl::StatusOr<std::unique_ptr<VisionServer>> VisionServer::Start(
    ServerOptions options, std::shared_ptr<gemini::GeminiClient> gemini) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  std::unique_ptr<VisionServer> server(new VisionServer());
  server->service_ =
      std::make_unique<VisionServiceImpl>(std::move(gemini), options.vision, options.cpu_threads);

  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen_address, grpc::InsecureServerCredentials(),
                           &server->port_);
  builder.RegisterService(server->service_.get());
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  if (options.max_connection_age <= absl::ZeroDuration() ||
      options.max_connection_age_grace <= absl::ZeroDuration() ||
      options.max_connection_idle <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "max_connection_age, max_connection_age_grace and max_connection_idle must be positive");
  }
  if (options.max_connection_age != absl::InfiniteDuration()) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                               ChannelArgMs(options.max_connection_age));
  }
  if (options.max_connection_age_grace != absl::InfiniteDuration()) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                               ChannelArgMs(options.max_connection_age_grace));
  }
  if (options.max_connection_idle != absl::InfiniteDuration()) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                               ChannelArgMs(options.max_connection_idle));
  }
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen_address, " (address in use or invalid?)"));
  }
  auto* health = server->server_->GetHealthCheckService();
  health->SetServingStatus(kServiceName, true);
  health->SetServingStatus("", true);
  health->SetServingStatus(kLivenessName, true);
  return server;
}

void VisionServer::StartDraining() {
  if (server_ == nullptr) return;
  if (auto* health = server_->GetHealthCheckService()) {
    health->SetServingStatus(kServiceName, false);
    health->SetServingStatus("", false);
  }
}

void VisionServer::Shutdown(absl::Duration grace) {
  if (server_ == nullptr) return;
  if (auto* health = server_->GetHealthCheckService()) health->Shutdown();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  server_->Wait();
  server_.reset();
}

VisionServer::~VisionServer() { Shutdown(absl::ZeroDuration()); }

}  // namespace vision_gateway::server
