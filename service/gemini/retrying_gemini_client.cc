#include "service/gemini/retrying_gemini_client.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "service/common/error_reasons.h"
#include "service/common/status_details.h"

namespace vision_gateway::gemini {
namespace {

struct Shared {
  Shared(std::shared_ptr<GeminiClient> inner_client, RetryOptions retry_options,
         std::shared_ptr<Timer> retry_timer, telemetry::Telemetry& retry_telemetry)
      : inner(std::move(inner_client)),
        options(retry_options),
        timer(std::move(retry_timer)),
        telemetry(retry_telemetry),
        budget(options.budget_ratio, options.budget_min_retries, options.budget_window),
        backoff(options) {}

  const std::shared_ptr<GeminiClient> inner;
  const RetryOptions options;
  const std::shared_ptr<Timer> timer;
  telemetry::Telemetry& telemetry;
  RetryBudget budget;
  Backoff backoff;
};

// Gemini asked to wait longer than the caller's deadline leaves, or than the gateway waits
// (`why`): the caller decides.
absl::Status CallerDecides(const absl::Status& last, absl::Duration asked,
                            const std::string& why) {
  absl::Status out = absl::ResourceExhaustedError(absl::StrFormat(
      "Gemini asks to retry in %s, %s: %s", absl::FormatDuration(asked), why, last.message()));
  for (const char* type : {"google.rpc.QuotaFailure", "google.rpc.Help", "google.rpc.ErrorInfo"}) {
    const std::string url = absl::StrCat(kTypeUrlPrefix, type);
    if (auto payload = last.GetPayload(url)) out.SetPayload(url, *payload);
  }
  return WithOutcome(WithRetryInfo(std::move(out), asked), reasons::kUpstreamRateLimited);
}

// One logical call: attempts, waits between them, cancellation. Subclasses launch an attempt and
// deliver the final result. Attempts never overlap: the next starts after the previous ended.
class RetryCall : public PendingCall, public std::enable_shared_from_this<RetryCall> {
 public:
  // Every attempt gets the call's options (deadline, telemetry record) as they were given.
  // `operation` names the call in the retry metrics (a string literal).
  RetryCall(std::shared_ptr<Shared> shared, const char* operation, CallOptions options)
      : shared_(std::move(shared)),
        operation_(operation),
        options_(std::move(options)),
        deadline_(options_.deadline) {}

  void Begin() {
    shared_->budget.RecordCall(shared_->timer->Now());
    StartAttempt();
  }

  void Cancel() override {
    std::shared_ptr<PendingCall> attempt;
    Timer::Id wait = 0;
    Timer::Id attempt_timer = 0;
    absl::Time wait_start;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || cancelled_) return;
      cancelled_ = true;
      attempt = attempt_;
      wait = std::exchange(wait_timer_, 0);
      wait_start = wait_start_;
      attempt_timer = std::exchange(attempt_timer_, 0);
    }
    if (attempt_timer != 0) shared_->timer->Cancel(attempt_timer);
    if (wait != 0 && shared_->timer->Cancel(wait)) {
      RecordWait(wait_start);
      Finish(absl::CancelledError("Gemini call cancelled"));
      return;
    }
    if (attempt) attempt->Cancel();
  }

 protected:
  // Starts one attempt; its end must reach OnAttemptDone exactly once (possibly before Launch
  // returns). `last` is true for the final permitted attempt (the request may be moved).
  virtual std::shared_ptr<PendingCall> Launch(CallOptions options, bool last) = 0;
  // The call's one result.
  virtual void Deliver(absl::Status status) = 0;

  // A stream's first event is about to reach the caller: no retry after this. False when the
  // call is already over (drop the event).
  bool MarkDelivered() {
    Timer::Id attempt_timer;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || cancelled_) return false;
      delivered_ = true;
      attempt_timer = std::exchange(attempt_timer_, 0);
    }
    if (attempt_timer != 0) shared_->timer->Cancel(attempt_timer);
    return true;
  }

  void OnAttemptDone(absl::Status status) {
    Timer::Id attempt_timer;
    bool timed_out, cancelled, delivered;
    int attempts;
    {
      absl::MutexLock lock(&mu_);
      attempt_running_ = false;
      attempt_.reset();
      attempt_timer = std::exchange(attempt_timer_, 0);
      timed_out = attempt_timed_out_;
      cancelled = cancelled_;
      delivered = delivered_;
      attempts = attempts_;
    }
    if (attempt_timer != 0) shared_->timer->Cancel(attempt_timer);
    if (cancelled) {
      Finish(status.ok() ? status : absl::CancelledError("Gemini call cancelled"));
      return;
    }
    if (timed_out && status.code() == absl::StatusCode::kCancelled) {
      status = WithOutcome(
          absl::UnavailableError(absl::StrCat("Gemini attempt produced nothing within ",
                                              absl::FormatDuration(shared_->options.attempt_timeout))),
          reasons::kUpstreamTimeout);
    }
    const absl::Time now = shared_->timer->Now();
    if (status.code() == absl::StatusCode::kDeadlineExceeded && now < deadline_) {
      // Not the caller's deadline (their time is left): a default bound of the lower layers.
      status = WithOutcome(std::move(status), reasons::kUpstreamTimeout);
    }
    if (status.ok() || delivered || !IsTransient(status) ||
        attempts >= shared_->options.max_attempts) {
      Finish(std::move(status));
      return;
    }
    const std::optional<absl::Duration> asked = AskedDelay(status);
    if (asked && now + *asked >= deadline_) {
      Finish(CallerDecides(status, *asked, "later than the call's deadline allows"));
      return;
    }
    if (asked && *asked > shared_->options.max_retry_delay) {
      Finish(CallerDecides(
          status, *asked,
          absl::StrCat("longer than the gateway waits for a retry (",
                       absl::FormatDuration(shared_->options.max_retry_delay),
                       ", --max_retry_delay_s)")));
      return;
    }
    const absl::Duration delay =
        std::max(shared_->backoff.Delay(attempts), asked.value_or(absl::ZeroDuration()));
    if (now + delay >= deadline_ || !shared_->budget.TryRetry(now)) {
      Finish(std::move(status));
      return;
    }
    bool scheduled = false;
    {
      absl::MutexLock lock(&mu_);
      if (!cancelled_) {
        wait_start_ = now;
        wait_timer_ = shared_->timer->RunAt(
            now + delay, [self = shared_from_this()] { self->OnWaitOver(); });
        scheduled = true;
      }
    }
    if (scheduled) {
      shared_->telemetry.UpstreamRetry(operation_, delay);
      return;
    }
    Finish(absl::CancelledError("Gemini call cancelled"));
  }

 private:
  void OnWaitOver() {
    absl::Time wait_start;
    {
      absl::MutexLock lock(&mu_);
      wait_timer_ = 0;
      wait_start = wait_start_;
    }
    RecordWait(wait_start);
    StartAttempt();
  }

  // The call waited from `start` until now before a retry: Gemini's time, not the gateway's.
  void RecordWait(absl::Time start) {
    if (options_.record) {
      options_.record->AddUpstreamWait(
          std::max(absl::ZeroDuration(), shared_->timer->Now() - start));
    }
  }

  void StartAttempt() {
    int number = 0;
    bool last = false;
    bool cancelled;
    {
      absl::MutexLock lock(&mu_);
      cancelled = cancelled_;
    }
    if (cancelled) {
      Finish(absl::CancelledError("Gemini call cancelled"));
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      number = ++attempts_;
      last = number >= shared_->options.max_attempts;
      attempt_running_ = true;
      attempt_timed_out_ = false;
      if (shared_->options.attempt_timeout > absl::ZeroDuration() && !delivered_) {
        attempt_timer_ = shared_->timer->RunAt(
            shared_->timer->Now() + shared_->options.attempt_timeout,
            [self = shared_from_this(), number] { self->OnAttemptTimeout(number); });
      }
    }
    std::shared_ptr<PendingCall> attempt = Launch(options_, last);
    bool cancel = false;
    {
      absl::MutexLock lock(&mu_);
      // Store it only while it runs: a finished attempt holds no reference back.
      if (attempt_running_ && attempts_ == number) {
        attempt_ = attempt;
        cancel = cancelled_ || attempt_timed_out_;
      }
    }
    if (cancel) attempt->Cancel();
  }

  void OnAttemptTimeout(int number) {
    std::shared_ptr<PendingCall> attempt;
    {
      absl::MutexLock lock(&mu_);
      if (attempts_ != number || !attempt_running_ || delivered_ || cancelled_) return;
      attempt_timer_ = 0;
      attempt_timed_out_ = true;
      attempt = attempt_;
    }
    if (attempt) attempt->Cancel();
  }

  void Finish(absl::Status status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
    }
    Deliver(std::move(status));
  }

  const std::shared_ptr<Shared> shared_;
  const char* const operation_;
  const CallOptions options_;
  const absl::Time deadline_;
  absl::Mutex mu_;
  std::shared_ptr<PendingCall> attempt_ ABSL_GUARDED_BY(mu_);
  Timer::Id wait_timer_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time wait_start_ ABSL_GUARDED_BY(mu_);  // when the current wait_timer_ was set
  Timer::Id attempt_timer_ ABSL_GUARDED_BY(mu_) = 0;
  int attempts_ ABSL_GUARDED_BY(mu_) = 0;
  bool attempt_running_ ABSL_GUARDED_BY(mu_) = false;
  bool attempt_timed_out_ ABSL_GUARDED_BY(mu_) = false;
  bool delivered_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

class StreamRetryCall final : public RetryCall {
 public:
  StreamRetryCall(std::shared_ptr<Shared> shared, std::string model,
                  GenerateContentRequest request, CallOptions options, StreamObserver observer)
      : RetryCall(shared, "streamGenerateContent", std::move(options)),
        shared_(std::move(shared)),
        model_(std::move(model)),
        request_(std::move(request)),
        observer_(std::move(observer)) {}

 private:
  std::shared_ptr<PendingCall> Launch(CallOptions options, bool last) override {
    auto self = std::static_pointer_cast<StreamRetryCall>(shared_from_this());
    StreamObserver attempt{
        .on_chunk =
            [self](GenerateContentResponse chunk) {
              if (!self->MarkDelivered()) return;
              if (self->observer_.on_chunk) self->observer_.on_chunk(std::move(chunk));
            },
        .on_done = [self](absl::Status status) { self->OnAttemptDone(std::move(status)); },
    };
    GenerateContentRequest request = last ? std::move(request_) : request_;
    return shared_->inner->StreamGenerateContent(model_, std::move(request), options,
                                                 std::move(attempt));
  }

  void Deliver(absl::Status status) override {
    auto on_done = std::move(observer_.on_done);
    observer_.on_chunk = nullptr;
    request_ = GenerateContentRequest();
    if (on_done) on_done(std::move(status));
  }

  const std::shared_ptr<Shared> shared_;
  const std::string model_;
  GenerateContentRequest request_;
  StreamObserver observer_;
};

// A unary call (generateContent, countTokens, models.list): each attempt sends `request` (a copy,
// but on the last permitted attempt the request itself) through `attempt`.
template <typename Request, typename Response>
class UnaryRetryCall final : public RetryCall {
 public:
  using Done = absl::AnyInvocable<void(absl::StatusOr<Response>)>;
  using Attempt =
      absl::AnyInvocable<std::shared_ptr<PendingCall>(GeminiClient&, Request, CallOptions, Done)>;

  UnaryRetryCall(std::shared_ptr<Shared> shared, const char* operation, Attempt attempt,
                 Request request, CallOptions options, Done done)
      : RetryCall(shared, operation, std::move(options)),
        shared_(std::move(shared)),
        attempt_(std::move(attempt)),
        request_(std::move(request)),
        done_(std::move(done)) {}

 private:
  std::shared_ptr<PendingCall> Launch(CallOptions options, bool last) override {
    auto self = std::static_pointer_cast<UnaryRetryCall>(shared_from_this());
    Request request = last ? std::move(request_) : request_;
    return attempt_(*shared_->inner, std::move(request), options,
                    [self](absl::StatusOr<Response> result) {
                      if (result.ok()) {
                        self->value_ = *std::move(result);
                        self->OnAttemptDone(absl::OkStatus());
                      } else {
                        self->OnAttemptDone(result.status());
                      }
                    });
  }

  void Deliver(absl::Status status) override {
    auto done = std::move(done_);
    request_ = Request();
    if (!done) return;
    if (status.ok() && value_) {
      done(*std::move(value_));
    } else {
      done(status.ok() ? absl::InternalError("Gemini call ended without a result") : status);
    }
  }

  const std::shared_ptr<Shared> shared_;
  Attempt attempt_;
  Request request_;
  Done done_;
  std::optional<Response> value_;  // set by the attempt that succeeded, before OnAttemptDone
};

// The attempt of a model method (generateContent, countTokens) for `model`.
template <typename Request, typename Response>
typename UnaryRetryCall<Request, Response>::Attempt ModelAttempt(
    std::shared_ptr<PendingCall> (GeminiClient::*method)(
        const std::string&, Request, CallOptions, absl::AnyInvocable<void(absl::StatusOr<Response>)>),
    std::string model) {
  return [method, model = std::move(model)](
             GeminiClient& inner, Request request, CallOptions options,
             absl::AnyInvocable<void(absl::StatusOr<Response>)> done) {
    return (inner.*method)(model, std::move(request), std::move(options), std::move(done));
  };
}

class RetryingGeminiClient final : public GeminiClient {
 public:
  explicit RetryingGeminiClient(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}

  std::shared_ptr<PendingCall> StreamGenerateContent(const std::string& model,
                                                     GenerateContentRequest request,
                                                     CallOptions options,
                                                     StreamObserver observer) override {
    auto call = std::make_shared<StreamRetryCall>(shared_, model, std::move(request),
                                                  std::move(options), std::move(observer));
    call->Begin();
    return call;
  }

  std::shared_ptr<PendingCall> GenerateContent(
      const std::string& model, GenerateContentRequest request, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<GenerateContentResponse>)> done) override {
    auto call = std::make_shared<UnaryRetryCall<GenerateContentRequest, GenerateContentResponse>>(
        shared_, "generateContent", ModelAttempt(&GeminiClient::GenerateContent, model),
        std::move(request), std::move(options), std::move(done));
    call->Begin();
    return call;
  }

  std::shared_ptr<PendingCall> CountTokens(
      const std::string& model, CountTokensRequest request, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<CountTokensResponse>)> done) override {
    auto call = std::make_shared<UnaryRetryCall<CountTokensRequest, CountTokensResponse>>(
        shared_, "countTokens", ModelAttempt(&GeminiClient::CountTokens, model),
        std::move(request), std::move(options), std::move(done));
    call->Begin();
    return call;
  }

  // The models list is retried like the model calls (it is idempotent).
  std::shared_ptr<PendingCall> ListModels(
      int page_size, const std::string& page_token, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<ListModelsResponse>)> done) override {
    std::shared_ptr<GeminiClient> inner = shared_->inner;
    // The request is the page token.
    auto call = std::make_shared<UnaryRetryCall<std::string, ListModelsResponse>>(
        shared_, "models.list",
        [page_size](GeminiClient& inner, std::string token, CallOptions attempt_options,
                    absl::AnyInvocable<void(absl::StatusOr<ListModelsResponse>)> attempt_done) {
          return inner.ListModels(page_size, token, std::move(attempt_options),
                                  std::move(attempt_done));
        },
        page_token, std::move(options), std::move(done));
    call->Begin();
    return call;
  }

  // Files API calls pass through with one attempt each: an upload resumes itself from what
  // Gemini holds (QueryUpload, in the vision layer's upload logic), and the file lookups are
  // retried by their callers' polling.
  std::shared_ptr<PendingCall> StartUpload(
      StartUploadRequest request, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<UploadSession>)> done) override {
    return shared_->inner->StartUpload(std::move(request), std::move(options), std::move(done));
  }

  std::shared_ptr<PendingCall> UploadChunk(
      const std::string& upload_url, int64_t offset, ChunkBytes bytes, bool finalize,
      CallOptions options, absl::AnyInvocable<void(absl::StatusOr<UploadStatus>)> done) override {
    return shared_->inner->UploadChunk(upload_url, offset, std::move(bytes), finalize,
                                       std::move(options), std::move(done));
  }

  std::shared_ptr<PendingCall> QueryUpload(
      const std::string& upload_url, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<UploadStatus>)> done) override {
    return shared_->inner->QueryUpload(upload_url, std::move(options), std::move(done));
  }

  std::shared_ptr<PendingCall> CancelUpload(const std::string& upload_url, CallOptions options,
                                            absl::AnyInvocable<void(absl::Status)> done) override {
    return shared_->inner->CancelUpload(upload_url, std::move(options), std::move(done));
  }

  std::shared_ptr<PendingCall> GetFile(const std::string& name, CallOptions options,
                                       absl::AnyInvocable<void(absl::StatusOr<File>)> done) override {
    return shared_->inner->GetFile(name, std::move(options), std::move(done));
  }

  std::shared_ptr<PendingCall> ListFiles(
      int page_size, const std::string& page_token, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<ListFilesResponse>)> done) override {
    return shared_->inner->ListFiles(page_size, page_token, std::move(options), std::move(done));
  }

  std::shared_ptr<PendingCall> DeleteFile(const std::string& name, CallOptions options,
                                          absl::AnyInvocable<void(absl::Status)> done) override {
    return shared_->inner->DeleteFile(name, std::move(options), std::move(done));
  }

 private:
  const std::shared_ptr<Shared> shared_;
};

}  // namespace

std::unique_ptr<GeminiClient> MakeRetryingGeminiClient(std::shared_ptr<GeminiClient> inner,
                                                       RetryOptions options,
                                                       std::shared_ptr<Timer> timer,
                                                       telemetry::Telemetry& telemetry) {
  options.max_attempts = std::max(1, options.max_attempts);
  return std::make_unique<RetryingGeminiClient>(
      std::make_shared<Shared>(std::move(inner), options, std::move(timer), telemetry));
}

}  // namespace vision_gateway::gemini
