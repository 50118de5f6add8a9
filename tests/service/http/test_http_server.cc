#include "tests/service/http/test_http_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace vision_gateway::http::testing {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using boost::system::error_code;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "TestHttpServer: %s\n", what.c_str());
  std::abort();
}

std::string HeaderLines(const Headers& headers) {
  std::string out;
  for (const auto& [name, value] : headers) absl::StrAppend(&out, name, ": ", value, "\r\n");
  return out;
}

template <typename Stream>
class StreamConnection final : public ServerConnection {
 public:
  explicit StreamConnection(Stream& stream) : stream_(stream) {}

  bool Write(std::string_view bytes) override {
    error_code ec;
    net::write(stream_, net::buffer(bytes.data(), bytes.size()), ec);
    return !ec;
  }

  bool WaitForClose() override {
    char buf[4096];
    for (;;) {
      error_code ec;
      stream_.read_some(net::buffer(buf), ec);
      if (ec) return true;
    }
  }

 private:
  Stream& stream_;
};

}  // namespace

bool ServerConnection::WriteResponse(int status, const Headers& headers, std::string_view body) {
  return Write(absl::StrCat("HTTP/1.1 ", status, " Test\r\nContent-Length: ", body.size(), "\r\n",
                            HeaderLines(headers), "\r\n", std::string(body)));
}

bool ServerConnection::WriteChunkedHead(int status, const Headers& headers) {
  return Write(absl::StrCat("HTTP/1.1 ", status, " Test\r\nTransfer-Encoding: chunked\r\n",
                            HeaderLines(headers), "\r\n"));
}

bool ServerConnection::WriteChunk(std::string_view data) {
  if (data.empty()) return true;  // an empty chunk would end the body
  return Write(absl::StrCat(absl::Hex(data.size()), "\r\n", std::string(data), "\r\n"));
}

bool ServerConnection::WriteLastChunk() { return Write("0\r\n\r\n"); }

class TestHttpServer::Impl {
 public:
  Impl(Handler handler, std::optional<PemIdentity> tls)
      : handler_(std::move(handler)), acceptor_(ioc_) {
    if (tls) {
      tls_.emplace(ssl::context::tls_server);
      error_code ec;
      tls_->use_certificate_chain(net::buffer(tls->cert_pem), ec);
      if (!ec) tls_->use_private_key(net::buffer(tls->key_pem), ssl::context::pem, ec);
      if (ec) Die("cannot load the server certificate: " + ec.message());
    }
    error_code ec;
    const tcp::endpoint endpoint(net::ip::make_address_v4("127.0.0.1"), 0);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) Die("cannot listen on 127.0.0.1: " + ec.message());
    port_ = acceptor_.local_endpoint().port();
    Accept();
    accept_thread_ = std::thread([this] { ioc_.run(); });
  }

  ~Impl() {
    net::post(ioc_, [this] {
      error_code ignored;
      acceptor_.close(ignored);
    });
    accept_thread_.join();
    std::vector<std::thread> threads;
    {
      absl::MutexLock lock(&mu_);
      for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
      threads = std::move(threads_);
    }
    for (auto& t : threads) t.join();
  }

  int port() const { return port_; }
  bool tls() const { return tls_.has_value(); }
  int accept_count() const { return accepts_.load(); }
  int request_count() const { return requests_.load(); }
  int max_open_connections() const {
    absl::MutexLock lock(&mu_);
    return max_open_;
  }

 private:
  void Accept() {
    acceptor_.async_accept(ioc_, [this](error_code ec, tcp::socket socket) {
      if (ec) return;  // closed
      accepts_.fetch_add(1);
      absl::MutexLock lock(&mu_);
      const int fd = socket.native_handle();
      open_fds_.insert(fd);
      max_open_ = std::max<int>(max_open_, static_cast<int>(open_fds_.size()));
      threads_.emplace_back([this, s = std::move(socket)]() mutable { ServeSocket(std::move(s)); });
      Accept();
    });
  }

  void ServeSocket(tcp::socket socket) {
    const int fd = socket.native_handle();
    if (tls_) {
      ssl::stream<tcp::socket&> stream(socket, *tls_);
      error_code ec;
      stream.handshake(ssl::stream_base::server, ec);
      if (!ec) Serve(stream);
    } else {
      Serve(socket);
    }
    {
      absl::MutexLock lock(&mu_);
      open_fds_.erase(fd);
    }
    error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

  template <typename Stream>
  void Serve(Stream& stream) {
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(64 * 1024 * 1024);
      error_code ec;
      bhttp::read(stream, buffer, parser, ec);
      if (ec) return;
      requests_.fetch_add(1);
      const auto& message = parser.get();
      ServerRequest request;
      request.method = std::string(message.method_string());
      request.target = std::string(message.target());
      for (const auto& field : message) {
        request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
      }
      request.body = message.body();
      StreamConnection<Stream> connection(stream);
      handler_(request, connection);
      if (connection.close_after_handler() || !message.keep_alive()) return;
    }
  }

  const Handler handler_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::optional<ssl::context> tls_;
  int port_ = 0;
  std::thread accept_thread_;
  std::atomic<int> accepts_{0};
  std::atomic<int> requests_{0};
  mutable absl::Mutex mu_;
  std::set<int> open_fds_ ABSL_GUARDED_BY(mu_);
  int max_open_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

std::unique_ptr<TestHttpServer> TestHttpServer::Start(Handler handler,
                                                      std::optional<PemIdentity> tls) {
  return std::unique_ptr<TestHttpServer>(
      new TestHttpServer(std::make_unique<Impl>(std::move(handler), std::move(tls))));
}

TestHttpServer::TestHttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TestHttpServer::~TestHttpServer() = default;

int TestHttpServer::port() const { return impl_->port(); }

std::string TestHttpServer::base_url() const {
  return absl::StrCat(impl_->tls() ? "https" : "http", "://127.0.0.1:", impl_->port());
}

int TestHttpServer::accept_count() const { return impl_->accept_count(); }
int TestHttpServer::request_count() const { return impl_->request_count(); }
int TestHttpServer::max_open_connections() const { return impl_->max_open_connections(); }

}  // namespace vision_gateway::http::testing
