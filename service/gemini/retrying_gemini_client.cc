#include "service/gemini/retrying_gemini_client.h"

#include <algorithm>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "service/gemini/async_retry_loop.h"
#include "service/gemini/json_codec.h"

namespace vision_gateway::gemini {
namespace {

// What every retried call of both stubs shares: one budget, one jitter generator.
struct Shared {
  Shared(RetryOptions retry_options, std::shared_ptr<Timer> retry_timer,
         telemetry::Telemetry& retry_telemetry)
      : options(retry_options),
        timer(std::move(retry_timer)),
        telemetry(retry_telemetry),
        budget(std::make_shared<RetryBudget>(options.budget_ratio, options.budget_min_retries,
                                             options.budget_window)),
        backoff(std::make_shared<Backoff>(options)) {}

  const RetryOptions options;
  const std::shared_ptr<Timer> timer;
  telemetry::Telemetry& telemetry;
  const std::shared_ptr<RetryBudget> budget;
  const std::shared_ptr<Backoff> backoff;
};

// The loop options of one call; the loop keeps `shared` (its timer) alive.
RetryLoopOptions LoopOptions(const std::shared_ptr<const Shared>& shared, const char* operation,
                             Idempotency idempotency) {
  return RetryLoopOptions{
      .operation = operation,
      .idempotency = idempotency,
      .retry = RetryPolicy{.max_attempts = shared->options.max_attempts},
      .backoff = shared->backoff,
      .budget = shared->budget,
      .max_retry_delay = shared->options.max_retry_delay,
      .attempt_timeout = shared->options.attempt_timeout,
      .timer = shared->timer.get(),
      .telemetry = &shared->telemetry,
      .keep_alive = shared,
  };
}

// The request as the attempts send it: encoded once into a shared buffer that every attempt
// sends (the typed request, with its raw image bytes, is let go as soon as it is encoded), so a
// call holds one copy of its images however many attempts it takes. A request that does not
// encode is left as it is: the stub underneath reports the error, without a retry.
template <typename Request>
Request Encoded(Request request) {
  if (request.encoded_body != nullptr) return request;
  absl::StatusOr<std::string> body;
  if constexpr (std::is_same_v<Request, GenerateContentRequest>) {
    body = EncodeGenerateContentRequest(request);
  } else {
    body = EncodeCountTokensRequest(request);
  }
  if (!body.ok()) return request;
  Request encoded;
  encoded.encoded_body = GrowingBuffer::Of(*std::move(body));
  return encoded;
}

// Sends one attempt of a call whose result is a T; `last` as in AsyncRetryLoop::Attempt.
template <typename T>
using Send = absl::AnyInvocable<std::shared_ptr<PendingCall>(
    bool last, absl::AnyInvocable<void(absl::StatusOr<T>)> done)>;

// A call with a result: the attempt that succeeds keeps it for the caller.
template <typename T>
std::shared_ptr<PendingCall> RetryCall(const std::shared_ptr<const Shared>& shared,
                                       const char* operation, Idempotency idempotency,
                                       const CallOptions& options, Send<T> send,
                                       absl::AnyInvocable<void(absl::StatusOr<T>)> done) {
  auto result = std::make_shared<std::optional<T>>();
  return AsyncRetryLoop::Start(
      LoopOptions(shared, operation, idempotency), options,
      [send = std::move(send), result](int, bool last,
                                       AsyncRetryLoop::AttemptDone attempt_done) mutable {
        return send(last, [result, attempt_done = std::move(attempt_done)](
                              absl::StatusOr<T> value) mutable {
          if (!value.ok()) return attempt_done(value.status());
          *result = *std::move(value);
          attempt_done(absl::OkStatus());
        });
      },
      [result, done = std::move(done)](absl::Status status) mutable {
        if (!done) return;
        if (status.ok() && result->has_value()) return done(**std::move(result));
        done(status.ok() ? absl::InternalError("Gemini call ended without a result") : status);
      });
}

// A stream: retried only while none of it has reached the caller.
class StreamRetry {
 public:
  StreamRetry(std::string model, GenerateContentRequest request, StreamObserver observer)
      : model_(std::move(model)), request_(std::move(request)), observer_(std::move(observer)) {}

  static std::shared_ptr<PendingCall> Start(const std::shared_ptr<const Shared>& shared,
                                            std::shared_ptr<GenerateStub> inner,
                                            std::string model, GenerateContentRequest request,
                                            const CallOptions& options, StreamObserver observer) {
    auto state = std::make_shared<StreamRetry>(std::move(model), Encoded(std::move(request)),
                                               std::move(observer));
    auto loop = AsyncRetryLoop::Create(
        LoopOptions(shared, "streamGenerateContent", Idempotency::kNonIdempotent), options,
        [state, inner = std::move(inner), options](int, bool last,
                                                    AsyncRetryLoop::AttemptDone done) {
          return Attempt(state, *inner, options, last, std::move(done));
        },
        [state](absl::Status status) { state->Done(std::move(status)); });
    state->loop_ = loop;
    loop->Run();
    return loop;
  }

 private:
  static std::shared_ptr<PendingCall> Attempt(const std::shared_ptr<StreamRetry>& state,
                                              GenerateStub& inner, const CallOptions& options,
                                              bool last, AsyncRetryLoop::AttemptDone done) {
    GenerateContentRequest request = last ? std::move(state->request_) : state->request_;
    StreamObserver attempt{
        .on_chunk =
            [state](GenerateContentResponse chunk) {
              std::shared_ptr<AsyncRetryLoop> loop = state->loop_.lock();
              if (loop == nullptr || !loop->MarkDelivered()) return;
              if (state->observer_.on_chunk) state->observer_.on_chunk(std::move(chunk));
            },
        .on_done = std::move(done),
    };
    return inner.StreamGenerateContent(state->model_, std::move(request), options,
                                       std::move(attempt));
  }

  void Done(absl::Status status) {
    auto on_done = std::move(observer_.on_done);
    observer_.on_chunk = nullptr;
    request_ = GenerateContentRequest();
    if (on_done) on_done(std::move(status));
  }

  const std::string model_;
  GenerateContentRequest request_;
  StreamObserver observer_;
  std::weak_ptr<AsyncRetryLoop> loop_;
};

class RetryingGenerateStub final : public GenerateStub {
 public:
  RetryingGenerateStub(std::shared_ptr<GenerateStub> inner, std::shared_ptr<const Shared> shared)
      : inner_(std::move(inner)), shared_(std::move(shared)) {}

  std::shared_ptr<PendingCall> StreamGenerateContent(const std::string& model,
                                                     GenerateContentRequest request,
                                                     CallOptions options,
                                                     StreamObserver observer) override {
    return StreamRetry::Start(shared_, inner_, model, std::move(request), options,
                              std::move(observer));
  }

  std::shared_ptr<PendingCall> GenerateContent(
      const std::string& model, GenerateContentRequest request, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<GenerateContentResponse>)> done) override {
    return RetryCall<GenerateContentResponse>(
        shared_, "generateContent", Idempotency::kNonIdempotent, options,
        [inner = inner_, model, options, request = Encoded(std::move(request))](
            bool last, auto attempt_done) mutable {
          GenerateContentRequest sent = last ? std::move(request) : request;
          return inner->GenerateContent(model, std::move(sent), options, std::move(attempt_done));
        },
        std::move(done));
  }

  // Free and without effect at Gemini: idempotent.
  std::shared_ptr<PendingCall> CountTokens(
      const std::string& model, CountTokensRequest request, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<CountTokensResponse>)> done) override {
    return RetryCall<CountTokensResponse>(
        shared_, "countTokens", Idempotency::kIdempotent, options,
        [inner = inner_, model, options, request = Encoded(std::move(request))](
            bool last, auto attempt_done) mutable {
          CountTokensRequest sent = last ? std::move(request) : request;
          return inner->CountTokens(model, std::move(sent), options, std::move(attempt_done));
        },
        std::move(done));
  }

  std::shared_ptr<PendingCall> ListModels(
      int page_size, const std::string& page_token, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<ListModelsResponse>)> done) override {
    return RetryCall<ListModelsResponse>(
        shared_, "models.list", Idempotency::kIdempotent, options,
        [inner = inner_, page_size, page_token, options](bool, auto attempt_done) {
          return inner->ListModels(page_size, page_token, options, std::move(attempt_done));
        },
        std::move(done));
  }

 private:
  const std::shared_ptr<GenerateStub> inner_;
  const std::shared_ptr<const Shared> shared_;
};

class RetryingFilesStub final : public FilesStub {
 public:
  RetryingFilesStub(std::shared_ptr<FilesStub> inner, std::shared_ptr<const Shared> shared)
      : inner_(std::move(inner)), shared_(std::move(shared)) {}

  // Opens a session at Gemini: not idempotent (a second start opens a second session).
  std::shared_ptr<PendingCall> StartUpload(
      StartUploadRequest request, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<UploadSession>)> done) override {
    return RetryCall<UploadSession>(
        shared_, "uploadStart", Idempotency::kNonIdempotent, options,
        [inner = inner_, options, request = std::move(request)](bool, auto attempt_done) {
          return inner->StartUpload(request, options, std::move(attempt_done));
        },
        std::move(done));
  }

  // Passed through: a chunk is resumed by the upload itself (vision/resumable_upload.h, on the
  // same retry loop: query how much Gemini holds, send the rest), not re-sent blindly.
  std::shared_ptr<PendingCall> UploadChunk(
      const std::string& upload_url, int64_t offset, ChunkBytes bytes, bool finalize,
      CallOptions options, absl::AnyInvocable<void(absl::StatusOr<UploadStatus>)> done) override {
    return inner_->UploadChunk(upload_url, offset, std::move(bytes), finalize, std::move(options),
                               std::move(done));
  }

  // Passed through too: the query is one step of the upload's own resume loop (retrying it here
  // as well would nest one loop in the other).
  std::shared_ptr<PendingCall> QueryUpload(
      const std::string& upload_url, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<UploadStatus>)> done) override {
    return inner_->QueryUpload(upload_url, std::move(options), std::move(done));
  }

  std::shared_ptr<PendingCall> CancelUpload(const std::string& upload_url, CallOptions options,
                                            absl::AnyInvocable<void(absl::Status)> done) override {
    return AsyncRetryLoop::Start(
        LoopOptions(shared_, "uploadCancel", Idempotency::kIdempotent), options,
        [inner = inner_, upload_url, options](int, bool, AsyncRetryLoop::AttemptDone attempt_done) {
          return inner->CancelUpload(upload_url, options, std::move(attempt_done));
        },
        std::move(done));
  }

  std::shared_ptr<PendingCall> GetFile(const std::string& name, CallOptions options,
                                       absl::AnyInvocable<void(absl::StatusOr<File>)> done) override {
    return RetryCall<File>(
        shared_, "files.get", Idempotency::kIdempotent, options,
        [inner = inner_, name, options](bool, auto attempt_done) {
          return inner->GetFile(name, options, std::move(attempt_done));
        },
        std::move(done));
  }

  std::shared_ptr<PendingCall> ListFiles(
      int page_size, const std::string& page_token, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<ListFilesResponse>)> done) override {
    return RetryCall<ListFilesResponse>(
        shared_, "files.list", Idempotency::kIdempotent, options,
        [inner = inner_, page_size, page_token, options](bool, auto attempt_done) {
          return inner->ListFiles(page_size, page_token, options, std::move(attempt_done));
        },
        std::move(done));
  }

  // Idempotent in effect: a retry that finds the file gone (404) reports success, since an
  // earlier attempt whose answer was lost may have deleted it.
  std::shared_ptr<PendingCall> DeleteFile(const std::string& name, CallOptions options,
                                          absl::AnyInvocable<void(absl::Status)> done) override {
    return AsyncRetryLoop::Start(
        LoopOptions(shared_, "files.delete", Idempotency::kIdempotent), options,
        [inner = inner_, name, options](int number, bool,
                                        AsyncRetryLoop::AttemptDone attempt_done) {
          return inner->DeleteFile(
              name, options,
              [number, attempt_done = std::move(attempt_done)](absl::Status status) mutable {
                if (number > 1 && status.code() == absl::StatusCode::kNotFound) {
                  status = absl::OkStatus();
                }
                attempt_done(std::move(status));
              });
        },
        std::move(done));
  }

 private:
  const std::shared_ptr<FilesStub> inner_;
  const std::shared_ptr<const Shared> shared_;
};

// The Batch API (#20): get, list, cancel, delete and the download are idempotent; a create is
// not (it starts a job Gemini bills) and is sent again only when Gemini cannot have acted on it;
// a download is retried only while none of it has reached the reader.
class RetryingBatchesStub final : public BatchesStub {
 public:
  RetryingBatchesStub(std::shared_ptr<BatchesStub> inner, std::shared_ptr<const Shared> shared)
      : inner_(std::move(inner)), shared_(std::move(shared)) {}

  std::shared_ptr<PendingCall> CreateBatch(
      const std::string& model, CreateBatchRequest request, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<BatchJob>)> done) override {
    auto shared_request = std::make_shared<CreateBatchRequest>(std::move(request));
    return RetryCall<BatchJob>(
        shared_, "batches.create", Idempotency::kNonIdempotent, options,
        [inner = inner_, model, shared_request, options](bool last, auto attempt_done) {
          // The last attempt may move the request instead of copying it.
          CreateBatchRequest request =
              last ? std::move(*shared_request) : CreateBatchRequest(*shared_request);
          return inner->CreateBatch(model, std::move(request), options, std::move(attempt_done));
        },
        std::move(done));
  }

  std::shared_ptr<PendingCall> GetBatch(
      const std::string& name, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<BatchJob>)> done) override {
    return RetryCall<BatchJob>(
        shared_, "batches.get", Idempotency::kIdempotent, options,
        [inner = inner_, name, options](bool, auto attempt_done) {
          return inner->GetBatch(name, options, std::move(attempt_done));
        },
        std::move(done));
  }

  std::shared_ptr<PendingCall> ListBatches(
      int page_size, const std::string& page_token, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<ListBatchesResponse>)> done) override {
    return RetryCall<ListBatchesResponse>(
        shared_, "batches.list", Idempotency::kIdempotent, options,
        [inner = inner_, page_size, page_token, options](bool, auto attempt_done) {
          return inner->ListBatches(page_size, page_token, options, std::move(attempt_done));
        },
        std::move(done));
  }

  std::shared_ptr<PendingCall> CancelBatch(const std::string& name, CallOptions options,
                                           absl::AnyInvocable<void(absl::Status)> done) override {
    return AsyncRetryLoop::Start(
        LoopOptions(shared_, "batches.cancel", Idempotency::kIdempotent), options,
        [inner = inner_, name, options](int, bool, AsyncRetryLoop::AttemptDone attempt_done) {
          return inner->CancelBatch(name, options, std::move(attempt_done));
        },
        std::move(done));
  }

  // As files.delete: a retry that finds the job gone (404) reports success.
  std::shared_ptr<PendingCall> DeleteBatch(const std::string& name, CallOptions options,
                                           absl::AnyInvocable<void(absl::Status)> done) override {
    return AsyncRetryLoop::Start(
        LoopOptions(shared_, "batches.delete", Idempotency::kIdempotent), options,
        [inner = inner_, name, options](int number, bool,
                                        AsyncRetryLoop::AttemptDone attempt_done) {
          return inner->DeleteBatch(
              name, options,
              [number, attempt_done = std::move(attempt_done)](absl::Status status) mutable {
                if (number > 1 && status.code() == absl::StatusCode::kNotFound) {
                  status = absl::OkStatus();
                }
                attempt_done(std::move(status));
              });
        },
        std::move(done));
  }

  std::shared_ptr<PendingCall> DownloadFile(const std::string& name, CallOptions options,
                                            DownloadObserver observer) override {
    struct State {
      DownloadObserver observer;
      std::weak_ptr<AsyncRetryLoop> loop;
    };
    auto state = std::make_shared<State>();
    state->observer = std::move(observer);
    auto loop = AsyncRetryLoop::Create(
        LoopOptions(shared_, "files.download", Idempotency::kIdempotent), options,
        [state, inner = inner_, name, options](int, bool,
                                               AsyncRetryLoop::AttemptDone attempt_done) {
          DownloadObserver attempt;
          attempt.on_data = [state](std::string_view piece, absl::AnyInvocable<void()> more) {
            std::shared_ptr<AsyncRetryLoop> loop = state->loop.lock();
            // The call is over (cancelled, timed out): the piece is dropped with the attempt.
            if (loop == nullptr || !loop->MarkDelivered()) return;
            if (state->observer.on_data) state->observer.on_data(piece, std::move(more));
          };
          attempt.on_done = std::move(attempt_done);
          return inner->DownloadFile(name, options, std::move(attempt));
        },
        [state](absl::Status status) {
          auto on_done = std::move(state->observer.on_done);
          if (on_done) on_done(std::move(status));
        });
    state->loop = loop;
    loop->Run();
    return loop;
  }

 private:
  const std::shared_ptr<BatchesStub> inner_;
  const std::shared_ptr<const Shared> shared_;
};

std::shared_ptr<const Shared> MakeShared(RetryOptions options, std::shared_ptr<Timer> timer,
                                         telemetry::Telemetry& telemetry) {
  options.max_attempts = std::max(1, options.max_attempts);
  return std::make_shared<const Shared>(options, std::move(timer), telemetry);
}

}  // namespace

std::unique_ptr<GenerateStub> MakeRetryingGenerateStub(std::shared_ptr<GenerateStub> inner,
                                                       RetryOptions options,
                                                       std::shared_ptr<Timer> timer,
                                                       telemetry::Telemetry& telemetry) {
  return std::make_unique<RetryingGenerateStub>(std::move(inner),
                                                MakeShared(options, std::move(timer), telemetry));
}

std::unique_ptr<FilesStub> MakeRetryingFilesStub(std::shared_ptr<FilesStub> inner,
                                                 RetryOptions options,
                                                 std::shared_ptr<Timer> timer,
                                                 telemetry::Telemetry& telemetry) {
  return std::make_unique<RetryingFilesStub>(std::move(inner),
                                             MakeShared(options, std::move(timer), telemetry));
}

std::unique_ptr<BatchesStub> MakeRetryingBatchesStub(std::shared_ptr<BatchesStub> inner,
                                                     RetryOptions options,
                                                     std::shared_ptr<Timer> timer,
                                                     telemetry::Telemetry& telemetry) {
  return std::make_unique<RetryingBatchesStub>(std::move(inner),
                                               MakeShared(options, std::move(timer), telemetry));
}

GeminiStubs MakeRetryingStubs(GeminiStubs inner, RetryOptions options,
                              std::shared_ptr<Timer> timer, telemetry::Telemetry& telemetry) {
  // One budget and one jitter generator for every call of both stubs.
  std::shared_ptr<const Shared> shared = MakeShared(options, std::move(timer), telemetry);
  GeminiStubs stubs(std::make_unique<RetryingGenerateStub>(std::move(inner.generate), shared),
                    std::make_unique<RetryingFilesStub>(std::move(inner.files), shared));
  if (inner.batches != nullptr) {
    stubs.batches = std::make_shared<RetryingBatchesStub>(std::move(inner.batches), shared);
  }
  return stubs;
}

}  // namespace vision_gateway::gemini
