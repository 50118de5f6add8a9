// The gRPC server: VisionService + health + reflection, graceful shutdown.
#ifndef VISION_GATEWAY_SERVICE_SERVER_SERVER_H_
#define VISION_GATEWAY_SERVICE_SERVER_SERVER_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/gemini/gemini_client.h"
#include "service/server/vision_service.h"
#include "service/telemetry/telemetry.h"
#include "service/vision/model_catalog.h"
#include "service/vision/vision_options.h"

#include "service/server/caller_gate.h"

namespace grpc {
class CallbackGenericService;
class Server;
namespace experimental {
class CertificateProviderInterface;
}
}  // namespace grpc

namespace vision_gateway::server {

class VisionServiceImpl;
class CallRegistry;

// Server TLS from PEM files. The files are re-read every `reload_interval` and a changed
// certificate/key serves new connections; open connections keep theirs. TLS 1.2 is the minimum.
struct TlsOptions {
  std::string cert_file;  // certificate chain, leaf first
  std::string key_file;   // private key of the leaf
  // Non-empty: mTLS. Clients must present a certificate that chains to one of these CAs.
  std::string client_ca_file;
  absl::Duration reload_interval = absl::Seconds(10);
};

// Model discovery (issue #22): Gemini's models list, read at start and every refresh period.
struct ModelDiscoveryOptions {
  bool enabled = false;
  vision::ModelCatalogOptions catalog;
  // Start() waits this long for the first list (then serves anyway, without checking models
  // until a refresh succeeds).
  absl::Duration start_wait = absl::Seconds(20);
};

struct ServerOptions {
  // host:port; port 0 picks a free port (see VisionServer::port()).
  std::string listen_address = "0.0.0.0:50051";
  // Largest request message accepted (images travel inline).
  int max_receive_message_bytes = 47 * 1024 * 1024;
  // Workers, queue bound and concurrency bound (see vision_service.h).
  LimitOptions limits;
  // Connection lifetime (gRPC channel args). A client connection older than `max_connection_age`
  // gets a GOAWAY (gRPC adds ±10% jitter): clients reconnect, and behind a Kubernetes Service
  // the new connection may land on another pod, so load spreads over new replicas. Calls on the
  // old connection then have `max_connection_age_grace` to finish before it is closed. A
  // connection with no call for `max_connection_idle` is closed too. Infinite: off.
  absl::Duration max_connection_age = absl::InfiniteDuration();
  absl::Duration max_connection_age_grace = absl::InfiniteDuration();
  absl::Duration max_connection_idle = absl::InfiniteDuration();
  // gRPC's BDP probing grows every stream's receive window towards the estimated bandwidth-delay
  // product. Then a client uploading faster than Gemini accepts fills that window in the server's
  // memory: measured +656 MiB for 10 concurrent uploads on loopback, 60% of it gRPC's buffers
  // (README, Benchmarks). Off (default): a stream receives about one message ahead of what the
  // server reads, which keeps Upload's memory bounded by design. On: faster uploads from clients
  // on high-latency links, at that memory cost. Flag --grpc_bdp_probe.
  bool grpc_bdp_probe = false;
  // Memory gRPC may use for its buffers on the main port (grpc::ResourceQuota: under pressure it
  // shrinks flow-control windows and, beyond, cancels calls), so bytes of requests not yet handed
  // to the service (also of callers about to be refused) are bounded too. <= 0: gRPC's default
  // (unbounded). Flag --grpc_memory_mb.
  int64_t grpc_memory_bytes = int64_t{128} << 20;
  // Streams one client connection may have open at once (GRPC_ARG_MAX_CONCURRENT_STREAMS).
  // <= 0: gRPC's default. Flag --max_concurrent_streams.
  int max_concurrent_streams = 100;
  vision::VisionOptions vision;
  // Off: model ids are not checked against Gemini's list and ListModels is FAILED_PRECONDITION.
  ModelDiscoveryOptions discovery;
  // Unset: plaintext (local development, or a mesh sidecar that terminates TLS).
  std::optional<TlsOptions> tls;
  // Serve grpc.reflection (unauthenticated, like health).
  bool reflection = true;
  // Non-empty (host:port, port 0 picks one): a second, plaintext listener serving only
  // grpc.health.v1 with the same statuses, for probes that cannot speak TLS (the kubelet's
  // native gRPC probe) when the main port does.
  std::string health_listen_address;
  // Caller authentication, per-caller limits and policies. Unset: everyone is the anonymous
  // caller "", with the server-wide cost limits and no per-caller limits.
  std::optional<AuthOptions> auth;
  // Where metrics go (must outlive the server); null records none. Request ids, the
  // server-timing trailer and the access log work either way.
  telemetry::Telemetry* telemetry = nullptr;
};

// A duration as the int milliseconds of a gRPC channel argument (the connection ages and idle
// time of ServerOptions): INT_MAX (gRPC's "never") at or beyond INT_MAX ms, never negative.
int ChannelArgMs(absl::Duration d);

class VisionServer {
 public:
  static absl::StatusOr<std::unique_ptr<VisionServer>> Start(
      ServerOptions options, gemini::GeminiStubs gemini);
  ~VisionServer();

  int port() const { return port_; }
  // The plaintext health-only port (0 when there is none).
  int health_port() const { return health_port_; }
  // Calls holding a concurrency permit (--max_concurrent_calls): started and not yet ended,
  // upstream work included. 0 on an idle server.
  int active_calls() const;

  // Health service names the server registers (grpc.health.v1):
  // - kServiceName and "" (the whole server) answer SERVING until StartDraining();
  //   readiness checks and client-side health checking use them.
  // - kLivenessName answers SERVING until Shutdown(): the process is alive and serving, even
  //   while it drains (a liveness probe must not kill a draining pod).
  static constexpr char kServiceName[] = "vision.v1.VisionService";
  static constexpr char kLivenessName[] = "liveness";

  // First step of a graceful stop: health turns NOT_SERVING for kServiceName and "" (so load
  // balancers and Kubernetes endpoints stop sending new calls) while calls, new ones included,
  // are still served. Idempotent.
  void StartDraining();

  // Stops accepting calls, marks every health name NOT_SERVING, lets in-flight calls finish
  // until `grace` has passed, then cancels what is left. Idempotent.
  void Shutdown(absl::Duration grace);

 private:
  VisionServer() = default;

  std::shared_ptr<grpc::experimental::CertificateProviderInterface> certificates_;
  std::shared_ptr<CallerGate> gate_;
  std::shared_ptr<vision::ModelCatalog> catalog_;
  telemetry::Telemetry* telemetry_ = nullptr;
  std::unique_ptr<CallRegistry> calls_;
  std::unique_ptr<VisionServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::unique_ptr<grpc::CallbackGenericService> health_generic_;
  std::unique_ptr<grpc::Server> health_server_;  // health only, plaintext
  int health_port_ = 0;
};

}  // namespace vision_gateway::server

#endif  // VISION_GATEWAY_SERVICE_SERVER_SERVER_H_
