#include "bench/gemini_target.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/span_body.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"

namespace vision_gateway::bench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

constexpr size_t kMaxResponseBodyBytes = size_t{64} << 20;

std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          static const char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

// SSE events in a body: lines that start with "data:".
int CountSseEvents(std::string_view body) {
  int events = 0;
  size_t pos = 0;
  while (pos < body.size()) {
    if (body.substr(pos, 5) == "data:") ++events;
    const size_t newline = body.find('\n', pos);
    if (newline == std::string_view::npos) break;
    pos = newline + 1;
  }
  return events;
}

struct Shared {
  tcp::endpoint endpoint;
  std::string host_header;
  std::string path;
  std::string api_key;
  std::string body;
  std::chrono::milliseconds timeout;
};

class GeminiTarget;

// One keep-alive connection; runs one request at a time, on its own strand.
class Connection {
 public:
  Connection(net::io_context& ioc, const Shared& shared, GeminiTarget* owner)
      : shared_(shared), owner_(owner), stream_(net::make_strand(ioc)) {
    request_.method(http::verb::post);
    request_.target(shared_.path);
    request_.version(11);
    request_.set(http::field::host, shared_.host_header);
    request_.set(http::field::content_type, "application/json");
    request_.set(http::field::user_agent, "vision-bench");
    request_.set("x-goog-api-key", shared_.api_key);
    request_.keep_alive(true);
    request_.body() = http::span_body<const char>::value_type(shared_.body.data(),
                                                               shared_.body.size());
    request_.prepare_payload();
    buffer_.reserve(16 * 1024);  // else Beast reads 512 bytes at a time
  }

  // Runs one request; `done` is called once at its end. The connection must be idle.
  void Run(LoadTarget::DoneCallback done) {
    net::post(stream_.get_executor(), [this, done = std::move(done)]() mutable {
      done_ = std::move(done);
      sample_ = Sample{};
      sample_.start = Clock::now();
      stream_.expires_after(shared_.timeout);
      if (connected_) {
        Write();
        return;
      }
      stream_.async_connect(shared_.endpoint, [this](beast::error_code ec) {
        if (ec) return Fail(ec);
        connected_ = true;
        beast::error_code ignored;
        stream_.socket().set_option(tcp::no_delay(true), ignored);
        Write();
      });
    });
  }

 private:
  void Write() {
    http::async_write(stream_, request_, [this](beast::error_code ec, size_t) {
      if (ec) return Fail(ec);
      parser_.emplace();
      parser_->body_limit(kMaxResponseBodyBytes);
      Read();
    });
  }

  void Read() {
    http::async_read_some(stream_, buffer_, *parser_, [this](beast::error_code ec, size_t) {
      if (ec) return Fail(ec);
      if (!sample_.got_first && parser_->is_header_done() && !parser_->get().body().empty()) {
        sample_.first = Clock::now();
        sample_.got_first = true;
      }
      if (!parser_->is_done()) return Read();
      sample_.end = Clock::now();
      const auto& response = parser_->get();
      sample_.messages = CountSseEvents(response.body());
      if (response.result_int() != 200) {
        sample_.error = absl::StrCat("HTTP_", response.result_int());
      } else if (absl::StrContains(response.body(), "{\"error\"")) {
        sample_.error = "STREAM_ERROR";
      } else if (sample_.messages == 0) {
        sample_.error = "NO_EVENTS";
      }
      if (!response.keep_alive()) Close();
      stream_.expires_never();
      Finish();
    });
  }

  void Fail(beast::error_code ec) {
    sample_.end = Clock::now();
    sample_.error = ec == beast::error::timeout ? "TIMEOUT" : absl::StrCat("IO:", ec.message());
    Close();
    Finish();
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    buffer_.clear();
    connected_ = false;
  }

  void Finish();

  const Shared& shared_;
  GeminiTarget* owner_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::span_body<const char>> request_;
  std::optional<http::response_parser<http::string_body>> parser_;
  bool connected_ = false;
  Sample sample_;
  LoadTarget::DoneCallback done_;
};

class GeminiTarget final : public LoadTarget {
 public:
  GeminiTarget(Shared shared, int io_threads, std::string description)
      : shared_(std::move(shared)),
        work_(net::make_work_guard(ioc_)),
        description_(std::move(description)) {
    for (int i = 0; i < io_threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }

  ~GeminiTarget() override {
    work_.reset();
    ioc_.stop();
    for (auto& thread : threads_) thread.join();
  }

  void Start(DoneCallback done) override {
    Connection* connection = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (!idle_.empty()) {
        connection = idle_.back();
        idle_.pop_back();
      } else {
        all_.push_back(std::make_unique<Connection>(ioc_, shared_, this));
        connection = all_.back().get();
      }
    }
    connection->Run(std::move(done));
  }

  std::string Describe() const override {
    absl::MutexLock lock(&mu_);
    return absl::StrCat(description_, ", ", all_.size(), " keep-alive connection(s) used");
  }

  void Release(Connection* connection) {
    absl::MutexLock lock(&mu_);
    idle_.push_back(connection);
  }

 private:
  Shared shared_;
  net::io_context ioc_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
  std::string description_;
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Connection>> all_;  // guarded by mu_
  std::vector<Connection*> idle_;                 // guarded by mu_
};

void Connection::Finish() {
  Sample sample = std::move(sample_);
  LoadTarget::DoneCallback done = std::move(done_);
  // Back to the pool first, so that a closed loop reuses this connection for its next request.
  owner_->Release(this);
  done(sample);
}

}  // namespace

std::string CaptionRequestJson(const std::string& image, const std::string& mime_type,
                               const std::string& prompt) {
  return absl::StrCat(R"({"contents":[{"role":"user","parts":[{"inlineData":{"mimeType":)",
                      JsonString(mime_type), R"(,"data":")", absl::Base64Escape(image),
                      R"("}},{"text":)", JsonString(prompt.empty() ? "Caption this image." : prompt),
                      "}]}]}");
}

absl::StatusOr<std::unique_ptr<LoadTarget>> MakeGeminiTarget(const GeminiTargetOptions& options) {
  if (options.body.empty() && options.rpc != "caption") {
    // TODO(bench): build Detect/Segment bodies like vision/ does. Until then, give the body the
    // gateway sent (recorded by the emulator) with --gemini_body, as run_bench.sh does.
    return absl::UnimplementedError(absl::StrCat(
        "--mode gemini builds only Caption bodies; for --rpc ", options.rpc,
        " pass the request body with --gemini_body"));
  }
  if (options.io_threads < 1) return absl::InvalidArgumentError("io_threads must be >= 1");
  absl::string_view target(options.target.data(), options.target.size());
  if (absl::ConsumePrefix(&target, "https://")) {
    return absl::InvalidArgumentError("--mode gemini speaks plain HTTP only (loopback emulator)");
  }
  absl::ConsumePrefix(&target, "http://");
  absl::ConsumeSuffix(&target, "/");
  const size_t colon = target.rfind(':');
  int port = 0;
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(target.substr(colon + 1), &port) ||
      port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--target must be host:port, got '", options.target, "'"));
  }
  std::string host(target.substr(0, colon));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }

  net::io_context resolver_context;
  tcp::resolver resolver(resolver_context);
  beast::error_code ec;
  auto results = resolver.resolve(host, std::to_string(port), ec);
  if (ec || results.empty()) {
    return absl::UnavailableError(absl::StrCat("cannot resolve ", host, ": ", ec.message()));
  }
  // Fail early when nothing listens there.
  {
    tcp::socket probe(resolver_context);
    net::connect(probe, results, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot connect to ", options.target, ": ", ec.message()));
    }
  }

  Shared shared;
  shared.endpoint = results.begin()->endpoint();
  shared.host_header = std::string(target);
  shared.path = absl::StrCat("/v1beta/models/", options.model, ":streamGenerateContent?alt=sse");
  shared.api_key = options.api_key;
  shared.body = options.body.empty()
                    ? CaptionRequestJson(options.image, options.mime_type, options.prompt)
                    : options.body;
  shared.timeout = options.timeout;
  std::string description =
      absl::StrCat("gemini streamGenerateContent http://", std::string(target), " model ",
                   options.model, options.body.empty() ? "" : " (given body)", ", ",
                   options.io_threads, " io thread(s)");
  return std::make_unique<GeminiTarget>(std::move(shared), options.io_threads,
                                        std::move(description));
}

}  // namespace vision_gateway::bench
