// The only Beast translation unit of the emulator (Asio/Beast themselves are compiled once in
// vg_beast_impl).
#include "emulator/http_server.h"

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace vision_gateway::emulator {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

constexpr std::size_t kWatchReadBytes = 4096;
// How often a held last piece (ScriptedResponse::hold_last_write_until) asks again.
constexpr std::chrono::milliseconds kHoldPoll{5};

bool HasHeader(const HeaderList& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (beast::iequals(key, name)) return true;
  }
  return false;
}

// Framing headers are the server's business; a script cannot set them.
bool IsFramingHeader(std::string_view name) {
  return beast::iequals(name, "content-length") || beast::iequals(name, "transfer-encoding") ||
         beast::iequals(name, "connection");
}

template <class Message>
void ApplyHeaders(const ScriptedResponse& reply, bool streaming, Message& message) {
  for (const auto& [name, value] : reply.headers) {
    if (IsFramingHeader(name)) continue;
    message.insert(name, value);
  }
  if (!HasHeader(reply.headers, "content-type")) {
    message.set(http::field::content_type,
                streaming ? "text/event-stream" : "application/json; charset=UTF-8");
  }
}

// One client connection. All handlers run on the connection's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const HttpServerOptions* options)
      : stream_(std::move(socket)), timer_(stream_.get_executor()), options_(options) {}

  ~Session() { CountClosed(); }

  void Start() {
    beast::error_code ec;
    stream_.socket().set_option(tcp::no_delay(true), ec);
    options_->on_connection(+1);
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadHeader(); });
  }

 private:
  void ReadHeader() {
    if (closed_) return;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(options_->max_header_bytes));
    parser_->body_limit(options_->max_body_bytes);
    stream_.expires_after(options_->idle_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              self->OnHeader(ec);
                            });
  }

  void OnHeader(beast::error_code ec) {
    if (closed_) return;
    if (ec == http::error::header_limit) return SendLimitResponse(431);
    if (ec == http::error::body_limit) return SendLimitResponse(413);  // from Content-Length
    if (ec) return Close();
    const auto& request = parser_->get();
    if (beast::iequals(request[http::field::expect], "100-continue")) {
      continue_.emplace(http::status::continue_, request.version());
      http::async_write(stream_, *continue_,
                        [self = shared_from_this()](beast::error_code ec, std::size_t) {
                          if (ec) return self->Close();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    if (closed_) return;
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->OnRequest(ec);
                     });
  }

  void OnRequest(beast::error_code ec) {
    if (closed_) return;
    if (ec == http::error::body_limit) return SendLimitResponse(413);
    if (ec) return Close();
    auto& message = parser_->get();
    HttpRequest request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    for (const auto& field : message) {
      request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    request.body = std::move(message.body());
    keep_alive_ = message.keep_alive();
    version_ = message.version();
    parser_.reset();

    reply_ = options_->handler(std::move(request));
    BeginResponse();
  }

  void SendLimitResponse(int status) {
    reply_ = options_->limit_response(status);
    reply_.stream_writes.clear();
    keep_alive_ = false;
    version_ = 11;
    parser_.reset();
    BeginResponse();
  }

  void BeginResponse() {
    if (reply_.status < 100 || reply_.status > 999) reply_.status = 500;
    response_done_ = false;
    stream_.expires_never();
    StartWatch();
    if (reply_.delay_before_headers.count() > 0) {
      timer_.expires_after(reply_.delay_before_headers);
      timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (ec || self->closed_) return;
        self->WriteHead();
      });
      return;
    }
    WriteHead();
  }

  // Keeps one read pending while the response is produced, to notice a client that leaves.
  void StartWatch() {
    if (watching_ || closed_) return;
    watching_ = true;
    stream_.async_read_some(buffer_.prepare(kWatchReadBytes),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->OnWatch(ec, n);
                            });
  }

  void OnWatch(beast::error_code ec, std::size_t bytes) {
    watching_ = false;
    if (closed_) return;
    if (ec) return Close();
    if (lingering_) return Drain();
    buffer_.commit(bytes);  // the start of a pipelined request; parsed after this response
    if (response_done_) ReadHeader();
  }

  void WriteHead() {
    if (closed_) return;
    if (reply_.stream_writes.empty()) {
      if (reply_.drop_connection_after_writes) return Close();
      full_.emplace();
      full_->version(version_);
      full_->result(static_cast<unsigned>(reply_.status));
      ApplyHeaders(reply_, /*streaming=*/false, *full_);
      full_->keep_alive(keep_alive_);
      full_->body() = std::move(reply_.body);
      full_->prepare_payload();
      http::async_write(stream_, *full_,
                        [self = shared_from_this()](beast::error_code ec, std::size_t) {
                          if (ec) return self->Close();
                          self->full_.reset();
                          self->FinishResponse();
                        });
      return;
    }
    chunked_ = version_ >= 11;
    if (!chunked_) keep_alive_ = false;
    head_.emplace();
    head_->version(version_);
    head_->result(static_cast<unsigned>(reply_.status));
    ApplyHeaders(reply_, /*streaming=*/true, *head_);
    head_->keep_alive(keep_alive_);
    if (chunked_) head_->chunked(true);
    head_serializer_.emplace(*head_);
    http::async_write_header(stream_, *head_serializer_,
                             [self = shared_from_this()](beast::error_code ec, std::size_t) {
                               if (ec) return self->Close();
                               self->next_piece_ = 0;
                               self->WriteNextPiece();
                             });
  }

  void WriteNextPiece() {
    if (closed_) return;
    const auto& pieces = reply_.stream_writes;
    while (next_piece_ < pieces.size() && pieces[next_piece_].empty()) ++next_piece_;
    if (next_piece_ == pieces.size()) return FinishStream();
    if (next_piece_ > 0 && reply_.delay_between_writes.count() > 0 && !delayed_) {
      delayed_ = true;
      timer_.expires_after(reply_.delay_between_writes);
      timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (ec || self->closed_) return;
        self->WriteNextPiece();
      });
      return;
    }
    if (reply_.hold_last_write_until && next_piece_ + 1 == pieces.size() &&
        !reply_.hold_last_write_until()) {
      timer_.expires_after(kHoldPoll);
      timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (ec || self->closed_) return;
        self->WriteNextPiece();
      });
      return;
    }
    delayed_ = false;
    const std::string& piece = pieces[next_piece_++];
    auto on_written = [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->Close();
      self->WriteNextPiece();
    };
    if (chunked_) {
      net::async_write(stream_, http::make_chunk(net::buffer(piece)), std::move(on_written));
    } else {
      net::async_write(stream_, net::buffer(piece), std::move(on_written));
    }
  }

  void FinishStream() {
    if (reply_.drop_connection_after_writes || !chunked_) return Close();
    net::async_write(stream_, http::make_chunk_last(),
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) return self->Close();
                       self->head_serializer_.reset();
                       self->head_.reset();
                       self->FinishResponse();
                     });
  }

  void FinishResponse() {
    if (closed_) return;
    reply_ = ScriptedResponse();
    if (!keep_alive_) {
      // Lingering close: half-close, then discard what the client still sends until it
      // closes too, so unread request bytes do not turn our FIN into a reset that could
      // destroy the response in flight.
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      lingering_ = true;
      timer_.expires_after(std::chrono::seconds(5));
      timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (!ec) self->Close();
      });
      if (!watching_) Drain();
      return;
    }
    response_done_ = true;
    if (!watching_) ReadHeader();  // else OnWatch continues
  }

  void Drain() {
    buffer_.clear();
    watching_ = true;
    stream_.async_read_some(buffer_.prepare(kWatchReadBytes),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->OnWatch(ec, n);
                            });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
    CountClosed();
  }

  void CountClosed() {
    if (counted_closed_) return;
    counted_closed_ = true;
    options_->on_connection(-1);
  }

  beast::tcp_stream stream_;
  net::steady_timer timer_;
  const HttpServerOptions* options_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  std::optional<http::response<http::string_body>> full_;
  std::optional<http::response<http::empty_body>> head_;
  std::optional<http::response_serializer<http::empty_body>> head_serializer_;
  ScriptedResponse reply_;
  std::size_t next_piece_ = 0;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool chunked_ = true;
  bool delayed_ = false;
  bool watching_ = false;
  bool response_done_ = false;
  bool lingering_ = false;
  bool closed_ = false;
  bool counted_closed_ = false;
};

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  std::unique_ptr<net::io_context> io;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  int port = 0;

  void Accept() {
    acceptor->async_accept(net::make_strand(*io), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
      if (!ec) std::make_shared<Session>(std::move(socket), &options)->Start();
      Accept();
    });
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

int HttpServer::port() const { return impl_->port; }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options) {
  if (!options.handler || !options.on_connection || !options.limit_response) {
    return absl::InvalidArgumentError("HttpServer needs a handler and hooks");
  }
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("invalid port ", options.port));
  }
  std::string host = options.host == "localhost" ? "127.0.0.1" : options.host;
  beast::error_code ec;
  net::ip::address address = net::ip::make_address(host, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("invalid listen address: ", host));

  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  const int threads = impl->options.threads < 1 ? 1 : impl->options.threads;
  impl->io = std::make_unique<net::io_context>(threads);
  impl->acceptor = std::make_unique<tcp::acceptor>(*impl->io);
  tcp::endpoint endpoint(address, static_cast<unsigned short>(impl->options.port));
  auto failed = [&](const char* what) {
    return absl::UnavailableError(absl::StrCat("cannot ", what, " ", host, ":",
                                               impl->options.port, ": ", ec.message()));
  };
  if (impl->acceptor->open(endpoint.protocol(), ec); ec) return failed("open");
  if (impl->acceptor->set_option(net::socket_base::reuse_address(true), ec); ec) {
    return failed("configure");
  }
  if (impl->acceptor->bind(endpoint, ec); ec) return failed("bind");
  if (impl->acceptor->listen(net::socket_base::max_listen_connections, ec); ec) {
    return failed("listen on");
  }
  impl->port = impl->acceptor->local_endpoint(ec).port();
  if (ec) return failed("query");

  impl->work.emplace(impl->io->get_executor());
  impl->Accept();
  for (int i = 0; i < threads; ++i) {
    impl->threads.emplace_back([io = impl->io.get()] { io->run(); });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::Stop() {
  if (!impl_ || !impl_->io) return;
  impl_->work.reset();
  impl_->io->stop();
  for (auto& thread : impl_->threads) thread.join();
  impl_->threads.clear();
  beast::error_code ec;
  impl_->acceptor->close(ec);
  impl_->acceptor.reset();
  impl_->io.reset();  // destroys the pending handlers, hence the sessions and their sockets
}

}  // namespace vision_gateway::emulator
