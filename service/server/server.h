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
  vision::VisionOptions vision;
};

class VisionServer {
 public:
  static absl::StatusOr<std::unique_ptr<VisionServer>> Start(
      ServerOptions options, std::shared_ptr<gemini::GeminiClient> gemini);
  ~VisionServer();

  int port() const { return port_; }

  // Stops accepting calls, marks health NOT_SERVING, lets in-flight calls finish until `grace`
  // has passed, then cancels what is left. Idempotent.
  void Shutdown(absl::Duration grace);

 private:
  VisionServer() = default;

  std::unique_ptr<VisionServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace vision_gateway::server

#endif  // VISION_GATEWAY_SERVICE_SERVER_SERVER_H_
