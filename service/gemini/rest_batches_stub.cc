#include "service/gemini/rest_batches_stub.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "service/common/error_reasons.h"
#include "service/common/secret_redaction.h"
#include "service/common/status_details.h"
#include "service/gemini/batch_codec.h"
#include "service/gemini/error_envelope.h"
#include "service/gemini/files_stub.h"
#include "service/gemini/rest_call.h"
#include "service/http/http_client.h"

namespace vision_gateway::gemini {
namespace {

constexpr char kApiClientHeader[] = "vision-gateway/0.1";

bool IsSuccess(int http_status) { return http_status >= 200 && http_status < 300; }

// A transport failure as the caller reads it: the caller's own deadline passing is
// DEADLINE_EXCEEDED (DEADLINE_EXCEEDED), the gateway's default bound UPSTREAM_TIMEOUT.
absl::Status TransportStatus(absl::Status status, absl::Time caller_deadline) {
  if (status.code() == absl::StatusCode::kDeadlineExceeded && absl::Now() >= caller_deadline) {
    return WithOutcome(std::move(status), reasons::kDeadlineExceeded);
  }
  return status;
}

absl::Status CancelledStatus() { return absl::CancelledError("Gemini call cancelled"); }

class FinishedCall final : public PendingCall {
 public:
  void Cancel() override {}
};

// One JSON exchange whose 2xx body becomes T through `convert`.
template <typename T>
class JsonCall final : public PendingCall, public std::enable_shared_from_this<JsonCall<T>> {
 public:
  using Convert = absl::StatusOr<T> (*)(std::string_view);
  JsonCall(Convert convert, absl::AnyInvocable<void(absl::StatusOr<T>)> done, std::string key,
           absl::Time caller_deadline)
      : convert_(convert),
        done_(std::move(done)),
        key_(std::move(key)),
        caller_deadline_(caller_deadline) {}

  void Start(http::HttpClient& http, http::Request request) {
    auto self = this->shared_from_this();
    slot_.Set(http.Fetch(std::move(request), [self](absl::StatusOr<http::Response> response) {
      self->OnDone(std::move(response));
    }));
  }

  void Cancel() override {
    cancelled_.store(true);
    slot_.Cancel();
  }

 private:
  void OnDone(absl::StatusOr<http::Response> response) {
    slot_.Done();
    if (finished_.exchange(true)) return;
    absl::StatusOr<T> result = cancelled_.load() ? absl::StatusOr<T>(CancelledStatus())
                                                 : Result(std::move(response));
    if (!result.ok()) result = RedactSecret(result.status(), key_);
    auto done = std::move(done_);
    if (done) done(std::move(result));
  }

  absl::StatusOr<T> Result(absl::StatusOr<http::Response> response) {
    if (!response.ok()) return TransportStatus(response.status(), caller_deadline_);
    if (!IsSuccess(response->head.status)) {
      return internal::HttpErrorStatus(response->head.status, response->body,
                                       response->head.headers);
    }
    return convert_(response->body);
  }

  Convert convert_;
  absl::AnyInvocable<void(absl::StatusOr<T>)> done_;
  const std::string key_;
  const absl::Time caller_deadline_;
  internal::HttpCallSlot slot_;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> finished_{false};
};

absl::StatusOr<bool> Empty(std::string_view) { return true; }

// files/{id}:download?alt=media, paced by the reader.
class DownloadCall final : public PendingCall, public std::enable_shared_from_this<DownloadCall> {
 public:
  DownloadCall(DownloadObserver observer, std::string key, absl::Time caller_deadline)
      : observer_(std::move(observer)), key_(std::move(key)), caller_deadline_(caller_deadline) {}

  void Start(http::HttpClient& http, http::Request request) {
    auto self = shared_from_this();
    http::StreamHandler handler;
    handler.on_head = [self](const http::ResponseHead& head) {
      self->http_status_ = head.status;
      if (!IsSuccess(head.status)) self->error_headers_ = head.headers;
    };
    handler.on_paced_body = [self](std::string_view piece, absl::AnyInvocable<void()> resume) {
      self->OnPiece(piece, std::move(resume));
    };
    handler.on_done = [self](absl::Status status) { self->OnDone(std::move(status)); };
    slot_.Set(http.Stream(std::move(request), std::move(handler)));
  }

  void Cancel() override {
    cancelled_.store(true);
    slot_.Cancel();
  }

 private:
  void OnPiece(std::string_view piece, absl::AnyInvocable<void()> resume) {
    if (!IsSuccess(http_status_)) {
      // An error body: kept (bounded) for the error table, read on without the reader.
      const std::size_t room = kMaxErrorBodyBytes - std::min(kMaxErrorBodyBytes, error_body_.size());
      error_body_.append(piece.substr(0, room));
      if (piece.size() > room) {
        Finish(internal::HttpErrorStatus(http_status_, error_body_, error_headers_));
        slot_.Cancel();
        return;
      }
      resume();
      return;
    }
    if (finished_.load() || cancelled_.load() || !observer_.on_data) return;
    observer_.on_data(piece, std::move(resume));
  }

  void OnDone(absl::Status status) {
    slot_.Done();
    if (cancelled_.load()) return Finish(CancelledStatus());
    if (http_status_ == 0) {
      return Finish(status.ok() ? WithOutcome(absl::InternalError(
                                                  "Gemini download ended without a response"),
                                              reasons::kUpstreamBadResponse)
                                : TransportStatus(std::move(status), caller_deadline_));
    }
    if (!IsSuccess(http_status_)) {
      return Finish(internal::HttpErrorStatus(http_status_, error_body_, error_headers_));
    }
    Finish(status.ok() ? status : TransportStatus(std::move(status), caller_deadline_));
  }

  void Finish(absl::Status status) {
    if (finished_.exchange(true)) return;
    auto on_done = std::move(observer_.on_done);
    if (on_done) on_done(RedactSecret(std::move(status), key_));
  }

  DownloadObserver observer_;
  const std::string key_;
  const absl::Time caller_deadline_;
  internal::HttpCallSlot slot_;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> finished_{false};
  // Touched only from HTTP callbacks (one at a time, on the call's strand).
  int http_status_ = 0;
  http::Headers error_headers_;
  std::string error_body_;
};

bool IsUrlSafeToken(std::string_view token) {
  for (const char c : token) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '=' || c == '~';
    if (!ok) return false;
  }
  return true;
}

absl::StatusOr<std::string> ModelId(std::string_view model) {
  if (model.starts_with("models/")) model.remove_prefix(7);
  bool all_dots = true;
  for (const char c : model) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return absl::InvalidArgumentError("invalid Gemini model id");
    all_dots = all_dots && c == '.';
  }
  if (model.empty() || model.size() > 128 || all_dots) {
    return absl::InvalidArgumentError("invalid Gemini model id");
  }
  return std::string(model);
}

absl::Status BadBatchName() {
  return absl::InvalidArgumentError(
      "batch name must be \"batches/<id>\" (id: 1 to 64 lowercase letters, digits or '-')");
}

class RestBatchesStub final : public BatchesStub {
 public:
  RestBatchesStub(GeminiOptions options, std::shared_ptr<http::HttpClient> http)
      : options_(std::move(options)), http_(std::move(http)) {}

  std::shared_ptr<PendingCall> CreateBatch(
      const std::string& model, CreateBatchRequest request, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<BatchJob>)> done) override {
    absl::StatusOr<std::string> id = ModelId(model);
    if (!id.ok()) return Fail(std::move(done), id.status());
    absl::StatusOr<std::string> body = EncodeCreateBatchRequest(request);
    if (!body.ok()) return Fail(std::move(done), body.status());
    http::Request http_request =
        Base("POST", absl::StrCat(Root(), "/models/", *id, ":batchGenerateContent"), options);
    http_request.headers.emplace_back("content-type", "application/json");
    http_request.body = *std::move(body);
    return StartJson<BatchJob>(std::move(http_request), &DecodeBatchOperation, std::move(done),
                               options);
  }

  std::shared_ptr<PendingCall> GetBatch(
      const std::string& name, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<BatchJob>)> done) override {
    const std::string id = BatchIdOf(name);
    if (id.empty()) return Fail(std::move(done), BadBatchName());
    return StartJson<BatchJob>(Base("GET", absl::StrCat(Root(), "/batches/", id), options),
                               &DecodeBatchOperation, std::move(done), options);
  }

  std::shared_ptr<PendingCall> ListBatches(
      int page_size, const std::string& page_token, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<ListBatchesResponse>)> done) override {
    if (page_size < 0 || page_size > 1000) {
      return Fail(std::move(done), absl::InvalidArgumentError("page_size out of range"));
    }
    if (page_token.size() > 1024 || !IsUrlSafeToken(page_token)) {
      return Fail(std::move(done), absl::InvalidArgumentError(
                                       "page_token: at most 1024 characters of [A-Za-z0-9-_.=~]"));
    }
    std::string url = absl::StrCat(Root(), "/batches");
    const char* sep = "?";
    if (page_size > 0) {
      absl::StrAppend(&url, sep, "pageSize=", page_size);
      sep = "&";
    }
    if (!page_token.empty()) absl::StrAppend(&url, sep, "pageToken=", page_token);
    return StartJson<ListBatchesResponse>(Base("GET", url, options), &DecodeListBatchesResponse,
                                          std::move(done), options);
  }

  std::shared_ptr<PendingCall> CancelBatch(const std::string& name, CallOptions options,
                                           absl::AnyInvocable<void(absl::Status)> done) override {
    const std::string id = BatchIdOf(name);
    auto status_done = StatusDone(std::move(done));
    if (id.empty()) return Fail<bool>(std::move(status_done), BadBatchName());
    http::Request request = Base("POST", absl::StrCat(Root(), "/batches/", id, ":cancel"), options);
    request.headers.emplace_back("content-type", "application/json");
    return StartJson<bool>(std::move(request), &Empty, std::move(status_done), options);
  }

  std::shared_ptr<PendingCall> DeleteBatch(const std::string& name, CallOptions options,
                                           absl::AnyInvocable<void(absl::Status)> done) override {
    const std::string id = BatchIdOf(name);
    auto status_done = StatusDone(std::move(done));
    if (id.empty()) return Fail<bool>(std::move(status_done), BadBatchName());
    return StartJson<bool>(Base("DELETE", absl::StrCat(Root(), "/batches/", id), options), &Empty,
                           std::move(status_done), options);
  }

  std::shared_ptr<PendingCall> DownloadFile(const std::string& name, CallOptions options,
                                            DownloadObserver observer) override {
    const std::string id = FileIdOf(name);
    if (id.empty()) {
      if (observer.on_done) {
        observer.on_done(absl::InvalidArgumentError(
            "file name must be \"files/<id>\" (id: 1 to 40 lowercase letters, digits or '-')"));
      }
      return std::make_shared<FinishedCall>();
    }
    http::Request request =
        Base("GET", absl::StrCat(Root(), "/files/", id, ":download?alt=media"), options);
    auto call = std::make_shared<DownloadCall>(std::move(observer), request.headers[0].second,
                                               options.deadline);
    call->Start(*http_, std::move(request));
    return call;
  }

 private:
  std::string Root() const { return absl::StrCat(options_.base_url, "/", options_.api_version); }

  static absl::AnyInvocable<void(absl::StatusOr<bool>)> StatusDone(
      absl::AnyInvocable<void(absl::Status)> done) {
    return [done = std::move(done)](absl::StatusOr<bool> result) mutable {
      if (done) done(result.status());
    };
  }

  template <typename T>
  static std::shared_ptr<PendingCall> Fail(absl::AnyInvocable<void(absl::StatusOr<T>)> done,
                                           absl::Status status) {
    if (done) done(std::move(status));
    return std::make_shared<FinishedCall>();
  }

  // The key is the first header (read once per request: a rotated key applies to requests that
  // start after the change); the caller's deadline rules, the default bounds a call without one.
  http::Request Base(std::string method, std::string url, const CallOptions& options) const {
    http::Request request;
    request.method = std::move(method);
    request.url = std::move(url);
    request.headers = {{"x-goog-api-key", options_.api_key.Current()},
                       {"x-goog-api-client", kApiClientHeader}};
    if (options.record != nullptr && !options.record->traceparent().empty()) {
      request.headers.emplace_back("traceparent", options.record->traceparent());
    }
    request.deadline = options.deadline != absl::InfiniteFuture()
                           ? options.deadline
                           : absl::Now() + absl::FromChrono(options_.default_timeout);
    return request;
  }

  template <typename T>
  std::shared_ptr<PendingCall> StartJson(http::Request request,
                                         typename JsonCall<T>::Convert convert,
                                         absl::AnyInvocable<void(absl::StatusOr<T>)> done,
                                         const CallOptions& options) {
    auto call = std::make_shared<JsonCall<T>>(convert, std::move(done), request.headers[0].second,
                                              options.deadline);
    call->Start(*http_, std::move(request));
    return call;
  }

  const GeminiOptions options_;
  const std::shared_ptr<http::HttpClient> http_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<BatchesStub>> MakeRestBatchesStub(
    GeminiOptions options, std::shared_ptr<http::HttpClient> http) {
  // The same checks as the REST GeminiClient (base_url, api_version, key, timeout).
  absl::StatusOr<std::unique_ptr<GeminiClient>> checked = MakeGeminiClient(options, http);
  if (!checked.ok()) return checked.status();
  while (!options.base_url.empty() && options.base_url.back() == '/') options.base_url.pop_back();
  return std::make_unique<RestBatchesStub>(std::move(options), std::move(http));
}

}  // namespace vision_gateway::gemini
