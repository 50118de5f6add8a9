#include "service/server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/server_builder.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "service/common/log.h"
#include "service/common/timer.h"
#include "google/protobuf/descriptor.h"
#include "grpc/health/v1/health.pb.h"
#include "absl/time/clock.h"
#include "service/server/caller_auth_processor.h"
#include "service/server/telemetry_interceptor.h"
#include "service/server/vision_service.h"
#include "service/vision/model_family.h"

namespace vision_gateway::server {

int ChannelArgMs(absl::Duration d) {
  if (d >= absl::Milliseconds(INT_MAX)) return INT_MAX;
  return static_cast<int>(std::max<int64_t>(absl::ToInt64Milliseconds(d), 0));
}

namespace {

constexpr char kReflectionPluginName[] = "proto_server_reflection";

// Drops the reflection plugin from one server (InitProtoReflectionServerBuilderPlugin registers
// it for every server the process builds).
class WithoutReflection final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                  [](const std::unique_ptr<grpc::ServerBuilderPlugin>& p) {
                                    return p->name() == kReflectionPluginName;
                                  }),
                   plugins->end());
  }
};

// A readable PEM file holding `marker` (e.g. "CERTIFICATE"), so that a wrong path or file fails
// at start-up rather than at every handshake.
absl::Status CheckPemFile(const std::string& flag, const std::string& path,
                          const std::string& marker) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  const std::string pem = text.str();
  if (pem.find("-----BEGIN ") == std::string::npos || pem.find(marker) == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", path, " holds no PEM ", marker));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const std::optional<TlsOptions>& tls,
    std::shared_ptr<grpc::experimental::CertificateProviderInterface>* provider) {
  if (!tls) return grpc::InsecureServerCredentials();
  if (tls->cert_file.empty() || tls->key_file.empty()) {
    return absl::InvalidArgumentError("TLS needs both --tls_cert_file and --tls_key_file");
  }
  if (absl::Status s = CheckPemFile("--tls_cert_file", tls->cert_file, "CERTIFICATE"); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckPemFile("--tls_key_file", tls->key_file, "PRIVATE KEY"); !s.ok()) {
    return s;
  }
  const bool mtls = !tls->client_ca_file.empty();
  if (mtls) {
    if (absl::Status s = CheckPemFile("--tls_client_ca_file", tls->client_ca_file, "CERTIFICATE");
        !s.ok()) {
      return s;
    }
  }
  const auto interval =
      static_cast<unsigned int>(std::max<int64_t>(1, absl::ToInt64Seconds(tls->reload_interval)));
  if (mtls) {
    *provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
        tls->key_file, tls->cert_file, tls->client_ca_file, interval);
  } else {
    *provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
        tls->key_file, tls->cert_file, interval);
  }
  grpc::experimental::TlsServerCredentialsOptions options(*provider);
  options.watch_identity_key_cert_pairs();
  if (mtls) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  // gRPC 1.51's TLS credentials negotiate TLS 1.2 or 1.3 only (its minimum is fixed at 1.2;
  // tests/e2e/tls_test.sh shows a TLS 1.1 client refused).
  std::shared_ptr<grpc::ServerCredentials> credentials =
      grpc::experimental::TlsServerCredentials(options);
  if (credentials == nullptr) return absl::InternalError("cannot create TLS server credentials");
  return credentials;
}

// The models the configuration names: the default, Segment's default, the allowlist.
std::vector<std::string> ConfiguredModels(const vision::VisionOptions& options) {
  std::vector<std::string> models = {options.default_model};
  if (!options.segment_model.empty()) models.push_back(options.segment_model);
  models.insert(models.end(), options.cost.allowed_models.begin(),
                options.cost.allowed_models.end());
  return models;
}

// Reads Gemini's models list (waiting up to discovery.start_wait), reports configured models it
// does not hold loudly, and refreshes it from then on.
std::shared_ptr<vision::ModelCatalog> StartDiscovery(const ModelDiscoveryOptions& discovery,
                                                     std::shared_ptr<gemini::GenerateStub> gemini,
                                                     const vision::VisionOptions& vision) {
  auto catalog = vision::ModelCatalog::Create(std::move(gemini), MakeThreadTimer(),
                                              discovery.catalog);
  struct First {
    absl::Notification done;
    absl::Status status;
  };
  auto first = std::make_shared<First>();
  catalog->Refresh([first](absl::Status status) {
    first->status = std::move(status);
    first->done.Notify();
  });
  if (!first->done.WaitForNotificationWithTimeout(discovery.start_wait)) {
    LogWarning("model discovery: Gemini's models list did not arrive within %s; model ids are "
               "not checked until a refresh succeeds",
               absl::FormatDuration(discovery.start_wait));
  } else if (!first->status.ok()) {
    LogWarning("model discovery: reading Gemini's models list failed (%s); model ids are not "
               "checked until a refresh succeeds",
               first->status.message());
  } else if (auto list = catalog->List()) {
    LogInfo("model discovery: Gemini lists %d models that generate content%s",
            static_cast<int>(list->models.size()), list->complete ? "" : " (list incomplete)");
    for (const std::string& model : catalog->Unlisted(ConfiguredModels(vision))) {
      const absl::Status check = catalog->Check(model, vision.cost.allowed_models);
      LogError("model discovery: configured model %s is NOT in Gemini's models list (retired or "
               "unknown): calls using it fail with NOT_FOUND. %s",
               model, check.message());
    }
  }
  catalog->StartPeriodic();
  return catalog;
}

}  // namespace

absl::StatusOr<std::unique_ptr<VisionServer>> VisionServer::Start(
    ServerOptions options, gemini::GeminiStubs gemini) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  // Reflection describes services from the generated descriptor pool, and gRPC's built-in health
  // service (upb-encoded) puts nothing there: this use keeps health.pb.cc linked, so its
  // descriptor is registered and reflection can describe grpc.health.v1.Health too.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();

  std::unique_ptr<VisionServer> server(new VisionServer());
  auto credentials = MakeServerCredentials(options.tls, &server->certificates_);
  if (!credentials.ok()) return credentials.status();
  server->telemetry_ =
      options.telemetry != nullptr ? options.telemetry : &telemetry::NoTelemetry();
  options.vision.reroutes = std::make_shared<vision::RerouteReporter>(server->telemetry_);
  if (options.discovery.enabled) {
    server->catalog_ = StartDiscovery(options.discovery, gemini.generate, options.vision);
    options.vision.catalog = server->catalog_;
    const std::vector<std::string> configured = ConfiguredModels(options.vision);
    server->telemetry_->SetProbe(
        telemetry::Telemetry::Probe::kUnlistedConfiguredModels,
        [catalog = std::weak_ptr<vision::ModelCatalog>(server->catalog_), configured] {
          auto held = catalog.lock();
          return held == nullptr ? 0.0 : static_cast<double>(held->Unlisted(configured).size());
        });
  }
  if (options.auth) {
    auto gate = CallerGate::Create(*options.auth, options.vision);
    if (!gate.ok()) return gate.status();
    server->gate_ = *std::move(gate);
    // Under TLS, refuse calls without valid credentials before their body is read.
    if (options.tls && server->gate_->enabled()) {
      (*credentials)->SetAuthMetadataProcessor(
          MakeCallerAuthProcessor(server->gate_, std::string(kServiceName)));
    }
  }
  server->calls_ = std::make_unique<CallRegistry>();
  server->service_ = std::make_unique<VisionServiceImpl>(
      std::move(gemini), options.vision, options.limits, *server->calls_, server->gate_);

  grpc::ServerBuilder builder;
  if (!options.reflection) builder.SetOption(std::make_unique<WithoutReflection>());
  builder.AddListeningPort(options.listen_address, *credentials, &server->port_);
  builder.RegisterService(server->service_.get());
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  if (options.grpc_memory_bytes > 0) {
    grpc::ResourceQuota quota("vision-gateway");
    quota.Resize(static_cast<std::size_t>(options.grpc_memory_bytes));
    builder.SetResourceQuota(quota);
  }
  if (options.max_concurrent_streams > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams);
  }
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  // Receive windows (see ServerOptions::grpc_bdp_probe).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, options.grpc_bdp_probe ? 1 : 0);
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
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(MakeTelemetryInterceptorFactory(*server->telemetry_, *server->calls_));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen_address, " (address in use or invalid?)"));
  }
  if (!options.health_listen_address.empty()) {
    // The builder adds the default health service (enabled above); the generic service answers
    // UNIMPLEMENTED for everything else and gives the server the callback machinery it needs.
    server->health_generic_ = std::make_unique<grpc::CallbackGenericService>();
    grpc::ServerBuilder health_builder;
    health_builder.RegisterCallbackGenericService(server->health_generic_.get());
    health_builder.SetOption(std::make_unique<WithoutReflection>());
    health_builder.AddListeningPort(options.health_listen_address,
                                    grpc::InsecureServerCredentials(), &server->health_port_);
    // Probes are counted like health checks on the main port (and logged at debug level).
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        health_interceptors;
    health_interceptors.push_back(
        MakeTelemetryInterceptorFactory(*server->telemetry_, *server->calls_));
    health_builder.experimental().SetInterceptorCreators(std::move(health_interceptors));
    server->health_server_ = health_builder.BuildAndStart();
    if (server->health_server_ == nullptr || server->health_port_ == 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ",
                                                 options.health_listen_address,
                                                 " for health (address in use or invalid?)"));
    }
  }
  for (grpc::Server* s : {server->server_.get(), server->health_server_.get()}) {
    if (s == nullptr) continue;
    auto* health = s->GetHealthCheckService();
    health->SetServingStatus(kServiceName, true);
    health->SetServingStatus("", true);
    health->SetServingStatus(kLivenessName, true);
  }
  // Every method's series exist from the start (go-grpc-prometheus's InitializeMetrics).
  if (const auto* descriptor =
          google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(kServiceName)) {
    for (int i = 0; i < descriptor->method_count(); ++i) {
      const auto* method = descriptor->method(i);
      const telemetry::RpcType type =
          method->client_streaming()
              ? (method->server_streaming() ? telemetry::RpcType::kBidiStream
                                            : telemetry::RpcType::kClientStream)
              : (method->server_streaming() ? telemetry::RpcType::kServerStream
                                            : telemetry::RpcType::kUnary);
      server->telemetry_->Rpc(absl::StrCat("/", kServiceName, "/", method->name()), type);
    }
  }
  VisionServiceImpl* service = server->service_.get();
  server->telemetry_->SetProbe(telemetry::Telemetry::Probe::kQueuedCpuWork,
                               [service] { return static_cast<double>(service->queued_cpu_work()); });
  // The denominator of the saturation alert (k8s/monitoring): 0 when unlimited.
  const double concurrency_limit = std::max(0, options.limits.max_concurrent_calls);
  server->telemetry_->SetProbe(telemetry::Telemetry::Probe::kConcurrencyLimit,
                               [concurrency_limit] { return concurrency_limit; });
  return server;
}

int VisionServer::active_calls() const {
  return service_ != nullptr ? service_->active_calls() : 0;
}

void VisionServer::StartDraining() {
  if (server_ == nullptr) return;
  for (grpc::Server* s : {server_.get(), health_server_.get()}) {
    if (s == nullptr) continue;
    if (auto* health = s->GetHealthCheckService()) {
      health->SetServingStatus(kServiceName, false);
      health->SetServingStatus("", false);
    }
  }
}

void VisionServer::Shutdown(absl::Duration grace) {
  if (server_ == nullptr) return;
  if (health_server_ != nullptr) {
    if (auto* health = health_server_->GetHealthCheckService()) health->Shutdown();
  }
  if (auto* health = server_->GetHealthCheckService()) health->Shutdown();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  server_->Wait();
  server_.reset();
  telemetry_->SetProbe(telemetry::Telemetry::Probe::kQueuedCpuWork, nullptr);
  telemetry_->SetProbe(telemetry::Telemetry::Probe::kConcurrencyLimit, nullptr);
  if (catalog_ != nullptr) {
    telemetry_->SetProbe(telemetry::Telemetry::Probe::kUnlistedConfiguredModels, nullptr);
    catalog_->Stop();
  }
  if (health_server_ != nullptr) {
    health_server_->Shutdown(absl::ToChronoTime(absl::Now()));
    health_server_->Wait();
    health_server_.reset();
  }
}

VisionServer::~VisionServer() { Shutdown(absl::ZeroDuration()); }

}  // namespace vision_gateway::server
