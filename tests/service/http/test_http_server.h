// A scriptable HTTP/1.1 test server (plain or TLS) on 127.0.0.1, port 0. Each accepted
// connection gets its own thread running blocking I/O, so a test's handler can write raw bytes
// at its own pace, stall, or wait for the client to go away. Counts accepted connections and
// requests. No Boost types here: tests that use it compile quickly.
//
// Handlers must not block forever: wait on test events with a timeout, or on
// ServerConnection::WaitForClose() (the server's destructor shuts every connection down).
#ifndef VISION_GATEWAY_TESTS_SERVICE_HTTP_TEST_HTTP_SERVER_H_
#define VISION_GATEWAY_TESTS_SERVICE_HTTP_TEST_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "service/http/http_client.h"
#include "tests/service/http/test_certs.h"

namespace vision_gateway::http::testing {

struct ServerRequest {
  std::string method;
  std::string target;
  Headers headers;
  std::string body;
};

// The server side of one connection, valid during the handler call, on the connection's thread.
class ServerConnection {
 public:
  virtual ~ServerConnection() = default;

  // Writes raw bytes; false when the connection is broken.
  virtual bool Write(std::string_view bytes) = 0;
  // Reads and discards until the client closes the connection (or it breaks). True when it did.
  virtual bool WaitForClose() = 0;
  // Ends the connection once the handler returns, without reading another request.
  void CloseAfterHandler() { close_after_handler_ = true; }
  bool close_after_handler() const { return close_after_handler_; }

  // Conveniences over Write().
  // A complete response with Content-Length; `headers` are added as given.
  bool WriteResponse(int status, const Headers& headers, std::string_view body);
  // Status line and headers with Transfer-Encoding: chunked; then WriteChunk/WriteLastChunk.
  bool WriteChunkedHead(int status, const Headers& headers);
  bool WriteChunk(std::string_view data);
  bool WriteLastChunk();

 private:
  bool close_after_handler_ = false;
};

class TestHttpServer {
 public:
  using Handler = std::function<void(const ServerRequest&, ServerConnection&)>;

  // Listens on 127.0.0.1:0; TLS with `tls` (certificate chain and key PEM) when given.
  static std::unique_ptr<TestHttpServer> Start(Handler handler,
                                               std::optional<PemIdentity> tls = std::nullopt);

  // Stops accepting, shuts down every open connection and joins all threads.
  ~TestHttpServer();

  int port() const;
  // "http://127.0.0.1:<port>" or "https://127.0.0.1:<port>".
  std::string base_url() const;
  // Connections accepted so far.
  int accept_count() const;
  // Requests read so far (on all connections).
  int request_count() const;
  // The most connections open at once, as the server saw them (a connection counts until the
  // server's side of it is closed).
  int max_open_connections() const;

 private:
  class Impl;
  explicit TestHttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vision_gateway::http::testing

#endif  // VISION_GATEWAY_TESTS_SERVICE_HTTP_TEST_HTTP_SERVER_H_
