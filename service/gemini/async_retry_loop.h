// The one retry loop of every upstream operation: the retrying stubs' calls (generate, stream,
// countTokens, models.list, files.get/list/delete, upload start/query/cancel), the resumable
// upload's chunk resume (vision/resumable_upload.h) and the poll of a PROCESSING file
// (vision/file_service.h). Each gives it its policies; the loop runs attempts one after the
// other, waits between them on the Timer, and ends the call exactly once.
//
// A failed attempt is retried when all of these hold:
//   - the retry policy calls it retryable (default: IsTransient, retry_policy.h), or the attempt
//     itself marked it RetryableFailure; an attempt can also mark a failure FinalFailure;
//   - the idempotency rule allows sending the request again (below);
//   - attempts are left (RetryPolicy::max_attempts; 0: no count, the deadline bounds it);
//   - for a stream, nothing has reached the caller yet (MarkDelivered);
//   - the wait fits: the wait is the backoff policy's delay, never shorter than the delay Gemini
//     asked for (RetryInfo / Retry-After). An asked delay that reaches past the caller's
//     deadline, or is longer than max_retry_delay (--max_retry_delay_s), fails the call at once
//     with RESOURCE_EXHAUSTED and Gemini's own RetryInfo: the caller decides
//     (UPSTREAM_RATE_LIMITED). A backoff that reaches past the deadline returns the last failure;
//   - the retry budget (if any) has room: an outage does not become a retry storm.
//
// The idempotency rule (README "Retries and idempotency"). Idempotent requests (every GET,
// countTokens, an upload's query and cancel, a file's delete) are sent again after any retryable
// failure. A non-idempotent request — generateContent and streamGenerateContent (Gemini bills
// what it generates) and an upload's start (it opens a session) — is sent again only when Gemini
// cannot have acted on it:
//   - Gemini answered with an error (429, 500, 502, 503, 504, 408): its answer says it did not;
//   - the connection failed before the whole request was written (refused, reset or timed out
//     while connecting or writing): Gemini never had the request.
// It is NOT sent again when the whole request was written and the connection then failed or
// timed out before an answer (the HTTP layer's wire fact http::RequestWritten): Gemini may be
// generating, and billing, an answer nobody will read, so the failure goes to the caller, who
// decides. The one exception is the operator's own attempt timeout (RetryOptions::
// attempt_timeout, off by default), which abandons and re-sends an attempt that produced nothing.
// A stream is never re-sent once an event has reached the caller.
//
// Threads: Cancel() and MarkDelivered() from any thread; attempts start on the thread that
// started the loop or a timer thread; `done` runs once, on whichever thread ends the call.
#ifndef VISION_GATEWAY_SERVICE_GEMINI_ASYNC_RETRY_LOOP_H_
#define VISION_GATEWAY_SERVICE_GEMINI_ASYNC_RETRY_LOOP_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/common/timer.h"
#include "service/gemini/pending_call.h"
#include "service/gemini/retry_policy.h"
#include "service/telemetry/telemetry.h"

namespace vision_gateway::gemini {

enum class Idempotency {
  // Sending it twice does no more than sending it once.
  kIdempotent,
  // It may have an effect Gemini bills or keeps: sent again only when Gemini cannot have acted.
  kNonIdempotent,
};

// The idempotency rule (above): true when a request of this kind may be sent again after
// `failure` (whether the failure is worth a retry is the retry policy's question).
bool MaySendAgain(const absl::Status& failure, Idempotency idempotency);

// Which failures are worth another attempt, and how many attempts a call gets.
struct RetryPolicy {
  // Attempts per call, the first included; 0: no count (the deadline bounds the call).
  int max_attempts = 4;
  // Null: IsTransient.
  std::function<bool(const absl::Status&)> retryable;
};

// An attempt's own verdict on its failure, over the retry policy's (the loop removes the mark
// before the failure goes anywhere): retry it (a file still PROCESSING, an upload chunk Gemini
// acknowledged only in part), or end the call with it.
absl::Status RetryableFailure(absl::Status status);
absl::Status FinalFailure(absl::Status status);

struct RetryLoopOptions {
  // Names the call in the retry metrics (Telemetry::UpstreamRetry; a string literal); empty: its
  // retries are not counted.
  const char* operation = "";
  Idempotency idempotency = Idempotency::kIdempotent;
  RetryPolicy retry;
  std::shared_ptr<BackoffPolicy> backoff;  // required
  std::shared_ptr<RetryBudget> budget;     // null: no budget
  // Longest wait Gemini may ask for (see above).
  absl::Duration max_retry_delay = absl::InfiniteDuration();
  // An attempt that has produced nothing (no result; for a stream, no first event) after this
  // long is abandoned and retried (UPSTREAM_TIMEOUT). Zero: no attempt timeout.
  absl::Duration attempt_timeout = absl::ZeroDuration();
  // Both outlive every loop started with these options (keep_alive may hold them).
  Timer* timer = nullptr;
  telemetry::Telemetry* telemetry = nullptr;  // null: none
  std::shared_ptr<const void> keep_alive;
};

class AsyncRetryLoop final : public PendingCall,
                             public std::enable_shared_from_this<AsyncRetryLoop> {
 public:
  // Ends one attempt, exactly once (possibly before the Attempt returned): OK when the call
  // succeeded (its result is the attempt's to keep), else the failure.
  using AttemptDone = absl::AnyInvocable<void(absl::Status)>;
  // Starts attempt `number` (1-based). `last`: no retry can follow, so the attempt may move
  // what it sends instead of copying it.
  using Attempt =
      absl::AnyInvocable<std::shared_ptr<PendingCall>(int number, bool last, AttemptDone done)>;

  // Runs the first attempt now. `call`: the caller's deadline bounds every wait, and the time
  // waited before retries is added to call.record (upstream time, not the gateway's). `done`
  // gets the last attempt's status (or CANCELLED, or the caller-decides RESOURCE_EXHAUSTED).
  static std::shared_ptr<AsyncRetryLoop> Start(RetryLoopOptions options, CallOptions call,
                                               Attempt attempt,
                                               absl::AnyInvocable<void(absl::Status)> done);
  // The same in two steps, for an attempt that needs the loop (a stream's MarkDelivered):
  // Create, then Run once.
  static std::shared_ptr<AsyncRetryLoop> Create(RetryLoopOptions options, CallOptions call,
                                                Attempt attempt,
                                                absl::AnyInvocable<void(absl::Status)> done);
  void Run();

  // Stops a waiting or running attempt; `done` then gets CANCELLED (if it had not run).
  void Cancel() override;

  // A stream's first event is about to reach the caller: no retry after this. False when the
  // call is already over (drop the event).
  bool MarkDelivered();

  AsyncRetryLoop(RetryLoopOptions options, CallOptions call, Attempt attempt,
                 absl::AnyInvocable<void(absl::Status)> done);

 private:
  void StartAttempt();
  void OnAttemptDone(absl::Status status);
  void OnAttemptTimeout(int number);
  void OnWaitOver();
  void RecordWait(absl::Time start);
  void Finish(absl::Status status);

  const RetryLoopOptions options_;
  const CallOptions call_;
  Attempt attempt_fn_;
  absl::AnyInvocable<void(absl::Status)> done_;
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
  bool launching_ ABSL_GUARDED_BY(mu_) = false;  // attempt_fn_ is running
};

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_ASYNC_RETRY_LOOP_H_
