// GeminiClient over the HTTP layer: one HTTP exchange per call, no retries (a decorator's job).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/strings/numbers.h"
#include "service/common/error_reasons.h"
#include "service/common/secret_redaction.h"
#include "service/common/status_details.h"
#include "service/gemini/error_envelope.h"
#include "service/gemini/gemini_client.h"
#include "service/gemini/json_codec.h"
#include "service/gemini/rest_call.h"
#include "service/http/http_client.h"
#include "service/http/sse_splitter.h"

namespace vision_gateway::gemini {
namespace {

constexpr char kApiClientHeader[] = "vision-gateway/0.1";
constexpr char kKeyHeader[] = "x-goog-api-key";

// The value of a header this client set itself (names as written here).
std::string HeaderValue(const http::Request& request, std::string_view name) {
  for (const auto& [key, value] : request.headers) {
    if (key == name) return value;
  }
  return "";
}

constexpr std::size_t kMaxModelIdBytes = 128;

// "models/gemini-2.5-flash" or "gemini-2.5-flash" -> "gemini-2.5-flash"; only [A-Za-z0-9._-].
absl::StatusOr<std::string> ModelId(std::string_view model) {
  if (model.starts_with("models/")) model.remove_prefix(7);
  bool all_dots = true;
  for (const char c : model) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(
          "invalid Gemini model id: only letters, digits, '.', '_' and '-' are allowed");
    }
    if (c != '.') all_dots = false;
  }
  if (model.empty() || model.size() > kMaxModelIdBytes || all_dots) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid Gemini model id: must be 1 to ", kMaxModelIdBytes, " characters, not only dots"));
  }
  return std::string(model);
}

bool IsHeaderSafe(std::string_view value);

bool IsSuccess(int http_status) { return http_status >= 200 && http_status < 300; }

absl::Status BadResponse(absl::Status status) {
  return WithOutcome(std::move(status), reasons::kUpstreamBadResponse);
}

// A prompt Gemini refused to answer (a 200 with promptFeedback.blockReason and no candidates).
absl::Status BlockedStatus(const std::string& block_reason) {
  return WithOutcome(
      WithErrorInfo(absl::InvalidArgumentError(absl::StrCat(
                        "Gemini blocked the prompt (", block_reason.substr(0, 64),
                        "); change the images or the prompt")),
                    reasons::kContentBlocked, {{"block_reason", block_reason.substr(0, 64)}}),
      reasons::kContentBlocked);
}

// The status of a failed HTTP exchange, as the call's caller should read it: a timeout is the
// caller's DEADLINE_EXCEEDED when their own deadline has passed, else the gateway's default bound
// (UPSTREAM_TIMEOUT).
absl::Status TransportStatus(absl::Status status, absl::Time caller_deadline) {
  if (status.code() == absl::StatusCode::kDeadlineExceeded && absl::Now() >= caller_deadline) {
    return WithOutcome(std::move(status), reasons::kDeadlineExceeded);
  }
  return status;
}

class FinishedCall final : public PendingCall {
 public:
  void Cancel() override {}
};

absl::Status CancelledStatus() { return absl::CancelledError("Gemini call cancelled"); }

// One streamGenerateContent call. HTTP callbacks of one call never run concurrently (they run on
// the call's strand); Cancel() may come from any thread.
class StreamCall final : public PendingCall, public std::enable_shared_from_this<StreamCall> {
 public:
  StreamCall(StreamObserver observer, std::string api_key, absl::Time caller_deadline)
      : observer_(std::move(observer)),
        api_key_(std::move(api_key)),
        caller_deadline_(caller_deadline) {}

  void Start(http::HttpClient& http, http::Request request) {
    std::shared_ptr<StreamCall> self = shared_from_this();
    http::StreamHandler handler;
    handler.on_head = [self](const http::ResponseHead& head) { self->OnHead(head); };
    handler.on_body = [self](std::string_view bytes) { self->OnBody(bytes); };
    handler.on_done = [self](absl::Status status) { self->OnHttpDone(std::move(status)); };
    slot_.Set(http.Stream(std::move(request), std::move(handler)));
  }

  void Cancel() override {
    cancelled_.store(true);
    slot_.Cancel();
  }

 private:
  void OnHead(const http::ResponseHead& head) {
    http_status_ = head.status;
    if (!IsSuccess(http_status_)) error_headers_ = head.headers;
  }

  absl::Status HttpError() const {
    return internal::HttpErrorStatus(http_status_, error_body_, error_headers_);
  }

  void OnBody(std::string_view bytes) {
    if (finished_.load() || cancelled_.load()) return;
    if (!IsSuccess(http_status_)) {
      const std::size_t room = kMaxErrorBodyBytes - error_body_.size();
      error_body_.append(bytes.substr(0, room));
      // Enough to report the error: stop reading a huge error body.
      if (bytes.size() > room) Fail(HttpError());
      return;
    }
    absl::Status fed =
        splitter_.Feed(bytes, [this](const http::SseEvent& event) { OnEvent(event); });
    if (!fed.ok()) Fail(BadResponse(std::move(fed)));
  }

  void OnEvent(const http::SseEvent& event) {
    if (finished_.load() || cancelled_.load()) return;
    if (!event.raw.empty()) {
      // Text outside SSE fields: Gemini's way of reporting an error after a 200.
      absl::Status error = StatusFromErrorJson(event.raw);
      if (error.ok()) error = BadResponse(absl::InternalError("malformed stream event from Gemini"));
      Fail(std::move(error));
      return;
    }
    if (event.data.empty()) return;
    // Cheap pre-check: an error object inside a data field (a "error" key, not escaped text).
    if (event.data.find("\"error\"") != std::string::npos) {
      absl::Status error = StatusFromErrorJson(event.data);
      if (!error.ok()) {
        Fail(std::move(error));
        return;
      }
    }
    absl::StatusOr<GenerateContentResponse> chunk = DecodeGenerateContentResponse(event.data);
    if (!chunk.ok()) {
      Fail(BadResponse(chunk.status()));
      return;
    }
    for (const Candidate& c : chunk->candidates) {
      if (!c.finish_reason.empty()) saw_finish_ = true;
    }
    if (chunk->prompt_feedback && !chunk->prompt_feedback->block_reason.empty()) {
      Fail(BlockedStatus(chunk->prompt_feedback->block_reason));
      return;
    }
    if (cancelled_.load() || !observer_.on_chunk) return;
    observer_.on_chunk(*std::move(chunk));
  }

  void OnHttpDone(absl::Status status) {
    slot_.Done();
    if (finished_.load()) return;
    if (cancelled_.load()) return Finish(CancelledStatus());
    if (http_status_ == 0) {
      return Finish(status.ok() ? BadResponse(absl::InternalError(
                                      "Gemini call ended without a response"))
                                : TransportStatus(std::move(status), caller_deadline_));
    }
    if (!IsSuccess(http_status_)) return Finish(HttpError());
    if (!status.ok()) return Finish(TransportStatus(std::move(status), caller_deadline_));
    splitter_.Finish([this](const http::SseEvent& event) { OnEvent(event); });
    if (finished_.load()) return;
    if (!saw_finish_) {
      return Finish(WithOutcome(
          absl::UnavailableError("Gemini stream ended before the model finished"),
          reasons::kUpstreamConnectionLost));
    }
    Finish(absl::OkStatus());
  }

  // Ends the call with `status` and stops the HTTP exchange.
  void Fail(absl::Status status) {
    Finish(std::move(status));
    slot_.Cancel();
  }

  // Exactly once.
  void Finish(absl::Status status) {
    if (finished_.exchange(true)) return;
    if (cancelled_.load()) status = CancelledStatus();
    auto on_done = std::move(observer_.on_done);
    if (on_done) on_done(RedactSecret(std::move(status), api_key_));
  }

  StreamObserver observer_;
  const std::string api_key_;
  const absl::Time caller_deadline_;
  internal::HttpCallSlot slot_;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> finished_{false};
  // Touched only from HTTP callbacks.
  int http_status_ = 0;
  http::Headers error_headers_;
  std::string error_body_;
  http::SseSplitter splitter_;
  bool saw_finish_ = false;
};

// One exchange whose whole response comes through Fetch: start, cancel, finish exactly once with
// the key redacted from any error. Subclasses say how a response becomes T.
template <typename T, typename Self>
class FetchCall : public PendingCall, public std::enable_shared_from_this<Self> {
 public:
  using Done = absl::AnyInvocable<void(absl::StatusOr<T>)>;

  void Start(http::HttpClient& http, http::Request request) {
    std::shared_ptr<Self> self = this->shared_from_this();
    slot_.Set(http.Fetch(std::move(request), [self](absl::StatusOr<http::Response> response) {
      self->OnHttpDone(std::move(response));
    }));
  }

  void Cancel() override {
    cancelled_.store(true);
    slot_.Cancel();
  }

 protected:
  FetchCall(Done done, std::string api_key) : done_(std::move(done)), api_key_(std::move(api_key)) {}

  // The response as the caller's result (not called once the call was cancelled).
  virtual absl::StatusOr<T> Result(absl::StatusOr<http::Response> response) = 0;

 private:
  void OnHttpDone(absl::StatusOr<http::Response> response) {
    slot_.Done();
    if (finished_.exchange(true)) return;
    absl::StatusOr<T> result =
        cancelled_.load() ? absl::StatusOr<T>(CancelledStatus()) : Result(std::move(response));
    if (!result.ok()) result = RedactSecret(result.status(), api_key_);
    auto done = std::move(done_);
    if (done) done(std::move(result));
  }

  Done done_;
  const std::string api_key_;
  internal::HttpCallSlot slot_;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> finished_{false};
};

// One generateContent or countTokens call.
template <typename T>
class UnaryCall final : public FetchCall<T, UnaryCall<T>> {
 public:
  using Decoder = absl::StatusOr<T> (*)(std::string_view, const JsonCodecOptions&);
  using Done = typename FetchCall<T, UnaryCall<T>>::Done;

  UnaryCall(Decoder decoder, Done done, std::string api_key, absl::Time caller_deadline)
      : FetchCall<T, UnaryCall<T>>(std::move(done), std::move(api_key)),
        decoder_(decoder),
        caller_deadline_(caller_deadline) {}

 private:
  absl::StatusOr<T> Result(absl::StatusOr<http::Response> response) override {
    if (!response.ok()) return TransportStatus(response.status(), caller_deadline_);
    if (!IsSuccess(response->head.status)) {
      return internal::HttpErrorStatus(response->head.status, response->body,
                                       response->head.headers);
    }
    if (response->body.find("\"error\"") != std::string::npos) {
      absl::Status error = StatusFromErrorJson(response->body);
      if (!error.ok()) return error;
    }
    absl::StatusOr<T> decoded = decoder_(response->body, JsonCodecOptions());
    if (!decoded.ok()) return BadResponse(decoded.status());
    if constexpr (std::is_same_v<T, GenerateContentResponse>) {
      if (decoded->prompt_feedback && !decoded->prompt_feedback->block_reason.empty()) {
        return BlockedStatus(decoded->prompt_feedback->block_reason);
      }
    }
    return decoded;
  }

  Decoder decoder_;
  const absl::Time caller_deadline_;
};

// One Files API exchange, turned into T by `convert` when the HTTP status is 2xx (non-2xx bodies
// map through the error envelope, plain text included).
template <typename T>
class FilesCall final : public FetchCall<T, FilesCall<T>> {
 public:
  using Convert = absl::AnyInvocable<absl::StatusOr<T>(http::Response&)>;
  using Done = typename FetchCall<T, FilesCall<T>>::Done;

  FilesCall(Convert convert, Done done, std::string api_key)
      : FetchCall<T, FilesCall<T>>(std::move(done), std::move(api_key)),
        convert_(std::move(convert)) {}

 private:
  absl::StatusOr<T> Result(absl::StatusOr<http::Response> response) override {
    if (!response.ok()) return response.status();
    if (!IsSuccess(response->head.status)) {
      return StatusFromHttpError(response->head.status, response->body);
    }
    return convert_(*response);
  }

  Convert convert_;
};

constexpr std::size_t kMaxUploadUrlBytes = 4096;

int64_t HeaderInt(const http::Headers& headers, std::string_view name, int64_t fallback) {
  const std::string_view text = http::FindHeader(headers, name);
  int64_t value = 0;
  if (text.empty() || !absl::SimpleAtoi(absl::string_view(text.data(), text.size()), &value) ||
      value < 0) {
    return fallback;
  }
  return value;
}

absl::StatusOr<UploadStatus> UploadStatusOf(http::Response& response) {
  UploadStatus status;
  status.status = absl::AsciiStrToLower(std::string(
      http::FindHeader(response.head.headers, "x-goog-upload-status")));
  status.size_received = HeaderInt(response.head.headers, "x-goog-upload-size-received", -1);
  if (status.status == "final") {
    absl::StatusOr<File> file = DecodeWrappedFile(response.body);
    if (!file.ok()) return file.status();
    status.file = *std::move(file);
  } else if (status.status.empty()) {
    return absl::UnavailableError("Gemini upload reply had no x-goog-upload-status");
  }
  return status;
}

class RestGeminiClient final : public GeminiClient {
 public:
  RestGeminiClient(GeminiOptions options, std::shared_ptr<http::HttpClient> http)
      : options_(std::move(options)), http_(std::move(http)) {}

  std::shared_ptr<PendingCall> StreamGenerateContent(const std::string& model,
                                                     GenerateContentRequest request,
                                                     CallOptions options,
                                                     StreamObserver observer) override {
    absl::StatusOr<http::Request> http_request =
        MakeRequest(model, "streamGenerateContent?alt=sse", Body(request), options);
    if (!http_request.ok()) {
      if (observer.on_done) observer.on_done(http_request.status());
      return std::make_shared<FinishedCall>();
    }
    auto call = std::make_shared<StreamCall>(
        std::move(observer), HeaderValue(*http_request, kKeyHeader), options.deadline);
    call->Start(*http_, *std::move(http_request));
    return call;
  }

  std::shared_ptr<PendingCall> GenerateContent(
      const std::string& model, GenerateContentRequest request, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<GenerateContentResponse>)> done) override {
    return StartUnary<GenerateContentResponse>(model, "generateContent", Body(request), options,
                                               &DecodeGenerateContentResponse, std::move(done));
  }

  std::shared_ptr<PendingCall> CountTokens(
      const std::string& model, CountTokensRequest request, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<CountTokensResponse>)> done) override {
    return StartUnary<CountTokensResponse>(model, "countTokens", Body(request), options,
                                           &DecodeCountTokensResponse, std::move(done));
  }

  std::shared_ptr<PendingCall> StartUpload(
      StartUploadRequest request, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<UploadSession>)> done) override {
    absl::StatusOr<std::string> body = EncodeStartUploadBody(request);
    if (!body.ok()) return Fail(std::move(done), body.status());
    if (request.size_bytes < 0) {
      return Fail(std::move(done), absl::InvalidArgumentError("upload size must not be negative"));
    }
    if (request.mime_type.empty() || !IsHeaderSafe(request.mime_type) ||
        request.mime_type.size() > 255) {
      return Fail(std::move(done), absl::InvalidArgumentError("upload needs a valid MIME type"));
    }
    http::Request http_request =
        Base("POST", absl::StrCat(options_.base_url, "/upload/", options_.api_version, "/files"),
             options);
    http_request.headers.emplace_back("content-type", "application/json");
    http_request.headers.emplace_back("x-goog-upload-protocol", "resumable");
    http_request.headers.emplace_back("x-goog-upload-command", "start");
    http_request.headers.emplace_back("x-goog-upload-header-content-length",
                                      absl::StrCat(request.size_bytes));
    http_request.headers.emplace_back("x-goog-upload-header-content-type", request.mime_type);
    http_request.body = *std::move(body);
    const std::string origin = options_.base_url;
    return StartFiles<UploadSession>(
        std::move(http_request),
        [origin](http::Response& response) -> absl::StatusOr<UploadSession> {
          UploadSession session;
          session.upload_url = std::string(http::FindHeader(response.head.headers,
                                                            "x-goog-upload-url"));
          if (session.upload_url.empty()) {
            return absl::InternalError("Gemini upload start reply had no x-goog-upload-url");
          }
          if (!OnOrigin(session.upload_url, origin)) {
            // Never follow: the key would go to another host.
            return absl::InternalError(
                "Gemini upload start reply named an upload URL outside the configured Gemini "
                "origin; refused");
          }
          session.chunk_granularity = HeaderInt(response.head.headers,
                                                "x-goog-upload-chunk-granularity", 8 << 20);
          if (session.chunk_granularity <= 0 || session.chunk_granularity > (int64_t{1} << 30)) {
            session.chunk_granularity = 8 << 20;
          }
          return session;
        },
        std::move(done));
  }

  std::shared_ptr<PendingCall> UploadChunk(
      const std::string& upload_url, int64_t offset, ChunkBytes bytes, bool finalize,
      CallOptions options, absl::AnyInvocable<void(absl::StatusOr<UploadStatus>)> done) override {
    if (!OnOrigin(upload_url, options_.base_url)) return Fail(std::move(done), ForeignUrl());
    if (offset < 0) return Fail(std::move(done), absl::InvalidArgumentError("negative offset"));
    http::Request request = Base("POST", upload_url, options);
    request.headers.emplace_back("x-goog-upload-command", finalize ? "upload, finalize" : "upload");
    request.headers.emplace_back("x-goog-upload-offset", absl::StrCat(offset));
    request.streamed_body = std::move(bytes.data);
    request.streamed_body_offset = bytes.offset;
    if (request.streamed_body == nullptr) request.streamed_body = GrowingBuffer::Of(std::string());
    return StartFiles<UploadStatus>(std::move(request), &UploadStatusOf, std::move(done));
  }

  std::shared_ptr<PendingCall> QueryUpload(
      const std::string& upload_url, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<UploadStatus>)> done) override {
    if (!OnOrigin(upload_url, options_.base_url)) return Fail(std::move(done), ForeignUrl());
    http::Request request = Base("POST", upload_url, options);
    request.headers.emplace_back("x-goog-upload-command", "query");
    return StartFiles<UploadStatus>(std::move(request), &UploadStatusOf, std::move(done));
  }

  std::shared_ptr<PendingCall> CancelUpload(const std::string& upload_url, CallOptions options,
                                            absl::AnyInvocable<void(absl::Status)> done) override {
    auto status_done = [done = std::move(done)](absl::StatusOr<bool> result) mutable {
      if (done) done(result.status());
    };
    if (!OnOrigin(upload_url, options_.base_url)) {
      return Fail<bool>(std::move(status_done), ForeignUrl());
    }
    http::Request request = Base("POST", upload_url, options);
    request.headers.emplace_back("x-goog-upload-command", "cancel");
    return StartFiles<bool>(
        std::move(request), [](http::Response&) -> absl::StatusOr<bool> { return true; },
        std::move(status_done));
  }

  std::shared_ptr<PendingCall> GetFile(const std::string& name, CallOptions options,
                                       absl::AnyInvocable<void(absl::StatusOr<File>)> done) override {
    const std::string id = FileIdOf(name);
    if (id.empty()) return Fail(std::move(done), BadFileName());
    http::Request request = Base(
        "GET", absl::StrCat(options_.base_url, "/", options_.api_version, "/files/", id), options);
    return StartFiles<File>(
        std::move(request),
        [](http::Response& response) { return DecodeFile(response.body); }, std::move(done));
  }

  std::shared_ptr<PendingCall> ListFiles(
      int page_size, const std::string& page_token, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<ListFilesResponse>)> done) override {
    return StartList<ListFilesResponse>(
        "files", page_size, page_token, options,
        [](http::Response& response) { return DecodeListFilesResponse(response.body); },
        std::move(done));
  }

  std::shared_ptr<PendingCall> ListModels(
      int page_size, const std::string& page_token, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<ListModelsResponse>)> done) override {
    return StartList<ListModelsResponse>(
        "models", page_size, page_token, options,
        [](http::Response& response) { return DecodeListModelsResponse(response.body); },
        std::move(done));
  }

  // One page of a paged GET (files, models).
  template <typename T>
  std::shared_ptr<PendingCall> StartList(const char* collection, int page_size,
                                         const std::string& page_token,
                                         const CallOptions& options,
                                         typename FilesCall<T>::Convert convert,
                                         absl::AnyInvocable<void(absl::StatusOr<T>)> done) {
    absl::StatusOr<std::string> url = ListUrl(collection, page_size, page_token);
    if (!url.ok()) return Fail(std::move(done), url.status());
    return StartFiles<T>(Base("GET", *url, options), std::move(convert), std::move(done));
  }

  std::shared_ptr<PendingCall> DeleteFile(const std::string& name, CallOptions options,
                                          absl::AnyInvocable<void(absl::Status)> done) override {
    auto status_done = [done = std::move(done)](absl::StatusOr<bool> result) mutable {
      if (done) done(result.status());
    };
    const std::string id = FileIdOf(name);
    if (id.empty()) return Fail<bool>(std::move(status_done), BadFileName());
    http::Request request = Base(
        "DELETE", absl::StrCat(options_.base_url, "/", options_.api_version, "/files/", id),
        options);
    return StartFiles<bool>(
        std::move(request), [](http::Response&) -> absl::StatusOr<bool> { return true; },
        std::move(status_done));
  }

 private:
  // A request's body: the encoding it already carries (shared, sent without a copy), or a new
  // one (the HTTP request's own).
  struct EncodedBody {
    std::string text;
    std::shared_ptr<GrowingBuffer> shared;
  };
  using RequestBody = absl::StatusOr<EncodedBody>;
  template <typename T>
  static RequestBody Body(const T& request) {
    if (request.encoded_body != nullptr) return EncodedBody{.shared = request.encoded_body};
    absl::StatusOr<std::string> body;
    if constexpr (std::is_same_v<T, GenerateContentRequest>) {
      body = EncodeGenerateContentRequest(request);
    } else {
      body = EncodeCountTokensRequest(request);
    }
    if (!body.ok()) return body.status();
    return EncodedBody{.text = *std::move(body)};
  }

  // {base}/{version}/{collection}?pageSize=N&pageToken=T for a list call (files, models).
  absl::StatusOr<std::string> ListUrl(const char* collection, int page_size,
                                      const std::string& page_token) const {
    if (page_size < 0 || page_size > 1000) {
      return absl::InvalidArgumentError("page_size out of range");
    }
    if (page_token.size() > 1024 || !IsUrlSafeToken(page_token)) {
      return absl::InvalidArgumentError("page_token: at most 1024 characters of [A-Za-z0-9-_.=~]");
    }
    std::string url = absl::StrCat(options_.base_url, "/", options_.api_version, "/", collection);
    std::string sep = "?";
    if (page_size > 0) {
      absl::StrAppend(&url, sep, "pageSize=", page_size);
      sep = "&";
    }
    if (!page_token.empty()) absl::StrAppend(&url, sep, "pageToken=", PercentEncode(page_token));
    return url;
  }

  template <typename T>
  std::shared_ptr<PendingCall> StartUnary(const std::string& model, std::string_view method,
                                          RequestBody body,
                                          const CallOptions& options,
                                          typename UnaryCall<T>::Decoder decoder,
                                          typename UnaryCall<T>::Done done) {
    absl::StatusOr<http::Request> http_request = MakeRequest(model, method, std::move(body), options);
    if (!http_request.ok()) {
      if (done) done(http_request.status());
      return std::make_shared<FinishedCall>();
    }
    auto call = std::make_shared<UnaryCall<T>>(
        decoder, std::move(done), HeaderValue(*http_request, kKeyHeader), options.deadline);
    call->Start(*http_, *std::move(http_request));
    return call;
  }

  template <typename T>
  static std::shared_ptr<PendingCall> Fail(absl::AnyInvocable<void(absl::StatusOr<T>)> done,
                                           absl::Status status) {
    if (done) done(std::move(status));
    return std::make_shared<FinishedCall>();
  }

  static absl::Status ForeignUrl() {
    return absl::InternalError("upload URL is not on the configured Gemini origin; refused");
  }
  static absl::Status BadFileName() {
    return absl::InvalidArgumentError(
        "file name must be \"files/<id>\" (id: 1 to 40 lowercase letters, digits or '-')");
  }

  // True when `url` is on `origin` (scheme://host[:port], no trailing slash): the same origin
  // followed by a path. Anything with spaces or control characters is refused.
  static bool OnOrigin(std::string_view url, std::string_view origin) {
    return url.size() <= kMaxUploadUrlBytes && url.size() > origin.size() &&
           url.starts_with(origin) && url[origin.size()] == '/' && IsHeaderSafe(url);
  }

  static bool IsUrlSafeToken(std::string_view token) {
    for (const char c : token) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.' || c == '=' || c == '~' || c == '+' ||
                      c == '/';
      if (!ok) return false;
    }
    return true;
  }

  static std::string PercentEncode(std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (const char c : text) {
      const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
      if (plain) {
        out.push_back(c);
      } else {
        const auto u = static_cast<unsigned char>(c);
        out.push_back('%');
        out.push_back(kHex[u >> 4]);
        out.push_back(kHex[u & 0xF]);
      }
    }
    return out;
  }

  http::Request Base(std::string method, std::string url, const CallOptions& options) const {
    http::Request request;
    request.method = std::move(method);
    request.url = std::move(url);
    request.headers = {
        // Read once per request: a rotated key applies to requests that start after the change.
        {kKeyHeader, options_.api_key.Current()},
        {"x-goog-api-client", kApiClientHeader},
    };
    request.deadline =
        std::min(options.deadline, absl::Now() + absl::FromChrono(options_.default_timeout));
    return request;
  }

  template <typename T>
  std::shared_ptr<PendingCall> StartFiles(http::Request request,
                                          typename FilesCall<T>::Convert convert,
                                          absl::AnyInvocable<void(absl::StatusOr<T>)> done) {
    std::string key = HeaderValue(request, kKeyHeader);
    auto call = std::make_shared<FilesCall<T>>(std::move(convert), std::move(done), std::move(key));
    call->Start(*http_, std::move(request));
    return call;
  }

  absl::StatusOr<http::Request> MakeRequest(const std::string& model, std::string_view method,
                                            RequestBody body,
                                            const CallOptions& options) const {
    absl::StatusOr<std::string> id = ModelId(model);
    if (!id.ok()) return id.status();
    if (!body.ok()) return body.status();
    http::Request request;
    request.method = "POST";
    request.url = absl::StrCat(options_.base_url, "/", options_.api_version, "/models/", *id, ":",
                               std::string(method));
    request.headers = {
        {"content-type", "application/json"},
        // Read once per request: a rotated key applies to requests that start after the change.
        {kKeyHeader, options_.api_key.Current()},
        {"x-goog-api-client", kApiClientHeader},
    };
    // The caller's trace context (validated by the server), so Google's side can join the trace.
    if (options.record != nullptr && !options.record->traceparent().empty()) {
      request.headers.emplace_back("traceparent", options.record->traceparent());
    }
    if (body->shared != nullptr) {
      // Sent from the shared buffer: no copy of a large inline request.
      request.streamed_body = std::move(body->shared);
    } else {
      request.body = std::move(body->text);
    }
    // The caller's deadline rules, however far; the default bounds only a call without one.
    request.deadline = options.deadline != absl::InfiniteFuture()
                           ? options.deadline
                           : absl::Now() + absl::FromChrono(options_.default_timeout);
    return request;
  }

  const GeminiOptions options_;
  const std::shared_ptr<http::HttpClient> http_;
};

bool IsHeaderSafe(std::string_view value) {
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7E) return false;
  }
  return true;
}

}  // namespace

std::string FileIdOf(std::string_view name) {
  if (!name.starts_with("files/")) return "";
  name.remove_prefix(6);
  if (name.empty() || name.size() > 40 || name.front() == '-' || name.back() == '-') return "";
  for (const char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return "";
  }
  return std::string(name);
}

absl::StatusOr<std::unique_ptr<GeminiClient>> MakeGeminiClient(
    GeminiOptions options, std::shared_ptr<http::HttpClient> http) {
  if (http == nullptr) return absl::InvalidArgumentError("Gemini client needs an HTTP client");
  while (!options.base_url.empty() && options.base_url.back() == '/') options.base_url.pop_back();
  std::string_view rest = options.base_url;
  if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else {
    return absl::InvalidArgumentError("Gemini base_url must start with https:// or http://");
  }
  if (rest.empty() || rest.find_first_of("/?#@") != std::string_view::npos ||
      !IsHeaderSafe(rest)) {
    return absl::InvalidArgumentError(
        "Gemini base_url must be scheme://host[:port] with no path, query or user info");
  }
  if (options.api_version.empty() || options.api_version.size() > 32) {
    return absl::InvalidArgumentError("Gemini api_version is empty or too long");
  }
  for (const char c : options.api_version) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
      return absl::InvalidArgumentError("Gemini api_version must be letters and digits");
    }
  }
  // Never echo the key itself.
  const std::string key = options.api_key.Current();
  if (key.empty()) return absl::InvalidArgumentError("Gemini API key is empty");
  if (!IsHeaderSafe(key)) {
    return absl::InvalidArgumentError("Gemini API key contains whitespace or control characters");
  }
  if (options.default_timeout <= std::chrono::milliseconds::zero()) {
    return absl::InvalidArgumentError("Gemini default_timeout must be positive");
  }
  return std::make_unique<RestGeminiClient>(std::move(options), std::move(http));
}

}  // namespace vision_gateway::gemini
