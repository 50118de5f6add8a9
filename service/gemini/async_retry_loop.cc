#include "service/gemini/async_retry_loop.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "service/common/error_reasons.h"
#include "service/common/status_details.h"
#include "service/http/http_client.h"

namespace vision_gateway::gemini {
namespace {

// An attempt's verdict on its failure (RetryableFailure, FinalFailure): a private payload.
constexpr char kVerdictPayloadUrl[] = "vision-gateway.internal/retry-verdict";

enum class Verdict { kPolicy, kRetry, kFinal };

Verdict TakeVerdict(absl::Status& status) {
  const auto mark = status.GetPayload(kVerdictPayloadUrl);
  if (!mark) return Verdict::kPolicy;
  status.ErasePayload(kVerdictPayloadUrl);
  return *mark == "retry" ? Verdict::kRetry : Verdict::kFinal;
}

absl::Status Marked(absl::Status status, const char* verdict) {
  if (!status.ok()) status.SetPayload(kVerdictPayloadUrl, absl::Cord(verdict));
  return status;
}

absl::Status CancelledStatus() { return absl::CancelledError("Gemini call cancelled"); }

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

}  // namespace

bool MaySendAgain(const absl::Status& failure, Idempotency idempotency) {
  return idempotency == Idempotency::kIdempotent || !http::RequestWritten(failure);
}

absl::Status RetryableFailure(absl::Status status) { return Marked(std::move(status), "retry"); }

absl::Status FinalFailure(absl::Status status) { return Marked(std::move(status), "final"); }

std::shared_ptr<AsyncRetryLoop> AsyncRetryLoop::Start(RetryLoopOptions options, CallOptions call,
                                                      Attempt attempt,
                                                      absl::AnyInvocable<void(absl::Status)> done) {
  auto loop = Create(std::move(options), std::move(call), std::move(attempt), std::move(done));
  loop->Run();
  return loop;
}

std::shared_ptr<AsyncRetryLoop> AsyncRetryLoop::Create(
    RetryLoopOptions options, CallOptions call, Attempt attempt,
    absl::AnyInvocable<void(absl::Status)> done) {
  return std::make_shared<AsyncRetryLoop>(std::move(options), std::move(call), std::move(attempt),
                                          std::move(done));
}

void AsyncRetryLoop::Run() {
  if (options_.budget) options_.budget->RecordCall(options_.timer->Now());
  StartAttempt();
}

AsyncRetryLoop::AsyncRetryLoop(RetryLoopOptions options, CallOptions call, Attempt attempt,
                               absl::AnyInvocable<void(absl::Status)> done)
    : options_(std::move(options)),
      call_(std::move(call)),
      attempt_fn_(std::move(attempt)),
      done_(std::move(done)) {}

void AsyncRetryLoop::Cancel() {
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
  if (attempt_timer != 0) options_.timer->Cancel(attempt_timer);
  if (wait != 0 && options_.timer->Cancel(wait)) {
    RecordWait(wait_start);
    Finish(CancelledStatus());
    return;
  }
  if (attempt) attempt->Cancel();
}

bool AsyncRetryLoop::MarkDelivered() {
  Timer::Id attempt_timer;
  {
    absl::MutexLock lock(&mu_);
    if (finished_ || cancelled_) return false;
    delivered_ = true;
    attempt_timer = std::exchange(attempt_timer_, 0);
  }
  if (attempt_timer != 0) options_.timer->Cancel(attempt_timer);
  return true;
}

void AsyncRetryLoop::StartAttempt() {
  int number = 0;
  bool last = false;
  {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    if (cancelled_) {
      number = -1;
    } else {
      launching_ = true;
      number = ++attempts_;
      last = options_.retry.max_attempts > 0 && number >= options_.retry.max_attempts;
      attempt_running_ = true;
      attempt_timed_out_ = false;
      if (options_.attempt_timeout > absl::ZeroDuration() && !delivered_) {
        attempt_timer_ = options_.timer->RunAt(
            options_.timer->Now() + options_.attempt_timeout,
            [self = shared_from_this(), number] { self->OnAttemptTimeout(number); });
      }
    }
  }
  if (number < 0) {
    Finish(CancelledStatus());
    return;
  }
  std::shared_ptr<PendingCall> attempt =
      attempt_fn_(number, last, [self = shared_from_this()](absl::Status status) {
        self->OnAttemptDone(std::move(status));
      });
  bool cancel = false;
  bool release = false;
  {
    absl::MutexLock lock(&mu_);
    launching_ = false;
    release = finished_;
    // Stored only while it runs: a finished attempt holds no reference back.
    if (attempt_running_ && attempts_ == number) {
      attempt_ = attempt;
      cancel = cancelled_ || attempt_timed_out_;
    }
  }
  // The call ended while this attempt was being started (see Finish).
  if (release) attempt_fn_ = nullptr;
  if (cancel && attempt) attempt->Cancel();
}

void AsyncRetryLoop::OnAttemptTimeout(int number) {
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

void AsyncRetryLoop::OnAttemptDone(absl::Status status) {
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
  if (attempt_timer != 0) options_.timer->Cancel(attempt_timer);
  const Verdict verdict = TakeVerdict(status);
  if (cancelled) {
    Finish(status.ok() ? status : CancelledStatus());
    return;
  }
  bool abandoned = false;  // by the attempt timeout: re-sent whatever its idempotency
  if (timed_out && status.code() == absl::StatusCode::kCancelled) {
    abandoned = true;
    status = WithOutcome(
        absl::UnavailableError(absl::StrCat("Gemini attempt produced nothing within ",
                                            absl::FormatDuration(options_.attempt_timeout))),
        reasons::kUpstreamTimeout);
  }
  const absl::Time now = options_.timer->Now();
  const absl::Time deadline = call_.deadline;
  if (verdict == Verdict::kPolicy && status.code() == absl::StatusCode::kDeadlineExceeded &&
      now < deadline) {
    // Not the caller's deadline (their time is left): a default bound of the lower layers.
    status = WithOutcome(std::move(status), reasons::kUpstreamTimeout);
  }
  if (status.ok() || delivered || verdict == Verdict::kFinal) {
    Finish(std::move(status));
    return;
  }
  const bool retryable =
      verdict == Verdict::kRetry ||
      ((options_.retry.retryable ? options_.retry.retryable(status) : IsTransient(status)) &&
       (abandoned || MaySendAgain(status, options_.idempotency)));
  if (!retryable || (options_.retry.max_attempts > 0 && attempts >= options_.retry.max_attempts)) {
    Finish(std::move(status));
    return;
  }
  const std::optional<absl::Duration> asked = AskedDelay(status);
  if (asked && now + *asked >= deadline) {
    Finish(CallerDecides(status, *asked, "later than the call's deadline allows"));
    return;
  }
  if (asked && *asked > options_.max_retry_delay) {
    Finish(CallerDecides(status, *asked,
                         absl::StrCat("longer than the gateway waits for a retry (",
                                      absl::FormatDuration(options_.max_retry_delay),
                                      ", --max_retry_delay_s)")));
    return;
  }
  const absl::Duration delay =
      std::max(options_.backoff->Delay(attempts), asked.value_or(absl::ZeroDuration()));
  if (now + delay >= deadline || (options_.budget && !options_.budget->TryRetry(now))) {
    Finish(std::move(status));
    return;
  }
  bool scheduled = false;
  {
    absl::MutexLock lock(&mu_);
    if (!cancelled_) {
      wait_start_ = now;
      wait_timer_ = options_.timer->RunAt(now + delay,
                                          [self = shared_from_this()] { self->OnWaitOver(); });
      scheduled = true;
    }
  }
  if (!scheduled) {
    Finish(CancelledStatus());
    return;
  }
  if (options_.telemetry != nullptr && options_.operation[0] != '\0') {
    options_.telemetry->UpstreamRetry(options_.operation, delay);
  }
}

void AsyncRetryLoop::OnWaitOver() {
  absl::Time wait_start;
  {
    absl::MutexLock lock(&mu_);
    wait_timer_ = 0;
    wait_start = wait_start_;
  }
  RecordWait(wait_start);
  StartAttempt();
}

void AsyncRetryLoop::RecordWait(absl::Time start) {
  if (call_.record) {
    call_.record->AddUpstreamWait(std::max(absl::ZeroDuration(), options_.timer->Now() - start));
  }
}

void AsyncRetryLoop::Finish(absl::Status status) {
  absl::AnyInvocable<void(absl::Status)> done;
  bool release;
  {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    finished_ = true;
    done = std::move(done_);
    release = !launching_;
  }
  // The attempt function holds what the call sends (a request body): let it go with the call,
  // here or, when an attempt is being started from inside it, once that returned.
  if (release) attempt_fn_ = nullptr;
  if (done) done(std::move(status));
}

}  // namespace vision_gateway::gemini
