// HttpClient over Boost.Beast + OpenSSL (http_client.h). The pieces, each internal to
// service/http:
//   url_target.h              URL -> request target, header checks
//   tls_context_internal.h    the client's TLS policy (context, SNI, host name check)
//   connection_pool_internal.h  connections and the keep-alive pool with its per-host limits
//   runtime_internal.h        state shared by the client, its I/O threads and its calls
//   http_exchange.h           the per-request state machine
//   exchange_status_internal.h  its phases, and what a timeout or an error in one fails with
// This file wires them: the client object, Fetch over Stream, and MakeHttpClient.
#include "service/http/http_client.h"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "service/http/http_exchange.h"
#include "service/http/runtime_internal.h"
#include "service/http/tls_context_internal.h"

namespace vision_gateway::http {

absl::Status WithRequestWritten(absl::Status status) {
  if (!status.ok()) status.SetPayload(kRequestWrittenPayloadUrl, absl::Cord("1"));
  return status;
}

bool RequestWritten(const absl::Status& status) {
  return status.GetPayload(kRequestWrittenPayloadUrl).has_value();
}

std::string_view FindHeader(const Headers& headers, std::string_view name) {
  const absl::string_view wanted(name.data(), name.size());
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, wanted)) return value;
  }
  return {};
}

namespace {

using internal::IoThreads;
using internal::Runtime;

class BeastHttpClient final : public HttpClient {
 public:
  BeastHttpClient(std::shared_ptr<Runtime> runtime, int threads)
      : rt_(std::move(runtime)), threads_(rt_, threads) {}

  ~BeastHttpClient() override {
    rt_->CancelAll();
    const bool on_io_thread = threads_.Stop();
    // Callers may keep Call objects (and so the runtime) alive: don't keep sockets open for them.
    if (!on_io_thread) rt_->pool.Clear();
  }

  std::shared_ptr<Call> Stream(Request request, StreamHandler handler) override {
    return internal::StartExchange(rt_, std::move(request), std::move(handler));
  }

  std::shared_ptr<Call> Fetch(Request request,
                              absl::AnyInvocable<void(absl::StatusOr<Response>)> done) override {
    struct State {
      Response response;
      absl::AnyInvocable<void(absl::StatusOr<Response>)> done;
      std::size_t max_body = 0;
    };
    auto state = std::make_shared<State>();
    state->done = std::move(done);
    state->max_body = rt_->options.max_response_body_bytes;
    StreamHandler handler;
    handler.on_head = [state](const ResponseHead& head) {
      state->response.head = head;
      std::uint64_t length = 0;
      const std::string_view value = FindHeader(head.headers, "content-length");
      if (absl::SimpleAtoi(absl::string_view(value.data(), value.size()), &length)) {
        state->response.body.reserve(std::min<std::uint64_t>(length, state->max_body));
      }
    };
    handler.on_body = [state](std::string_view piece) {
      state->response.body.append(piece.data(), piece.size());
    };
    handler.on_done = [state](absl::Status status) {
      auto done = std::move(state->done);
      if (!done) return;
      if (status.ok()) {
        done(std::move(state->response));
      } else {
        done(std::move(status));
      }
    };
    return Stream(std::move(request), std::move(handler));
  }

 private:
  std::shared_ptr<Runtime> rt_;
  IoThreads threads_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<HttpClient>> MakeHttpClient(HttpClientOptions options) {
  const int threads = std::max(1, options.io_threads);
  if (options.default_phase_timeout <= std::chrono::milliseconds::zero()) {
    return absl::InvalidArgumentError("default_phase_timeout must be positive");
  }
  auto runtime = std::make_shared<Runtime>(std::move(options));
  if (absl::Status s = internal::ConfigureClientTlsContext(runtime->tls_context,
                                                           runtime->options.ca_file);
      !s.ok()) {
    return s;
  }
  return std::shared_ptr<HttpClient>(std::make_shared<BeastHttpClient>(std::move(runtime), threads));
}

}  // namespace vision_gateway::http
