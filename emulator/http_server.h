// The emulator's HTTP/1.1 server (Boost.Beast, hidden in http_server.cc). It reads bounded
// requests, hands each to a synchronous handler and writes the returned ScriptedResponse:
// delays, chunked pieces flushed one by one, dropped connections. While a response is being
// produced it keeps a read pending, so a client that goes away is noticed at once (the
// connection is closed and the open-connection count drops).
#ifndef VISION_GATEWAY_EMULATOR_HTTP_SERVER_H_
#define VISION_GATEWAY_EMULATOR_HTTP_SERVER_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "emulator/emulator.h"

namespace vision_gateway::emulator {

struct HttpRequest {
  std::string method;
  std::string target;
  HeaderList headers;
  std::string body;
};

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  int threads = 2;
  std::size_t max_body_bytes = std::size_t{128} << 20;
  std::size_t max_header_bytes = std::size_t{64} << 10;
  std::chrono::seconds idle_timeout{120};
  // Produces the response of one request. Runs on a server thread; may block briefly.
  std::function<ScriptedResponse(HttpRequest)> handler;
  // Called with +1 when a connection is accepted and -1 when it is closed.
  std::function<void(int)> on_connection;
  // Builds the body of the 413/431 answers to oversized requests.
  std::function<ScriptedResponse(int status)> limit_response;
};

class HttpServer {
 public:
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(HttpServerOptions options);
  ~HttpServer();  // Stop()s

  int port() const;
  // Closes the listener and every connection, joins the threads. Idempotent; must not be
  // called from the handler.
  void Stop();

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vision_gateway::emulator

#endif  // VISION_GATEWAY_EMULATOR_HTTP_SERVER_H_
