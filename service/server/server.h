// The gRPC server: VisionService + health + reflection, graceful shutdown.
#ifndef VISION_GATEWAY_SERVICE_SERVER_SERVER_H_
#define VISION_GATEWAY_SERVICE_SERVER_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/gemini/gemini_client.h"
#include "service/vision/vision_options.h"

namespace grpc {
class Server;
}

namespace vision_gateway::server {

class VisionServiceImpl;

struct ServerOptions {
  // host:port; port 0 picks a free port (see VisionServer::port()).
  std::string listen_address = "0.0.0.0:50051";
  // Largest request message accepted (images travel inline).
  int max_receive_message_bytes = 64 * 1024 * 1024;
  // Workers for image preparation (decode, EXIF orientation, downscale).
  int cpu_threads = 2;
  // Connection lifetime (gRPC channel args). A client connection older than `max_connection_age`
  // gets a GOAWAY (gRPC adds ±10% jitter): clients reconnect, and behind a Kubernetes Service
  // the new connection may land on another pod, so load spreads over new replicas. Calls on the
  // old connection then have `max_connection_age_grace` to finish before it is closed. A
  // connection with no call for `max_connection_idle` is closed too. Infinite: off.
  absl::Duration max_connection_age = absl::InfiniteDuration();
  absl::Duration max_connection_age_grace = absl::InfiniteDuration();
  absl::Duration max_connection_idle = absl::InfiniteDuration();
  vision::VisionOptions vision;
};

class VisionServer {
 public:
  static absl::StatusOr<std::unique_ptr<VisionServer>> Start(
      ServerOptions options, std::shared_ptr<gemini::GeminiClient> gemini);
  ~VisionServer();

  int port() const { return port_; }

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

  std::unique_ptr<VisionServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace vision_gateway::server

#endif  // VISION_GATEWAY_SERVICE_SERVER_SERVER_H_
