// The retry policy of Gemini calls: which failures are transient, how long to wait, and a budget
// that keeps an outage from turning into a retry storm. The one retry loop that applies them
// (with the idempotency rule) is async_retry_loop.h.
#ifndef VISION_GATEWAY_SERVICE_GEMINI_RETRY_POLICY_H_
#define VISION_GATEWAY_SERVICE_GEMINI_RETRY_POLICY_H_

#include <cstdint>
#include <optional>
#include <random>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vision_gateway::gemini {

struct RetryOptions {
  // Attempts per call, the first included (1: no retries).
  int max_attempts = 4;
  // Full-jitter exponential backoff: before retry n (1-based) wait a uniformly random time in
  // [0, min(max_backoff, initial_backoff * multiplier^(n-1))], and never less than the delay
  // Gemini asked for (RetryInfo.retryDelay or Retry-After).
  absl::Duration initial_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Seconds(30);
  double multiplier = 2.0;
  // An attempt that has produced nothing (no response; for a stream, no first event) after this
  // long is abandoned and retried (UPSTREAM_TIMEOUT). Zero: attempts are bounded only by the
  // call's deadline.
  absl::Duration attempt_timeout = absl::ZeroDuration();
  // Longest wait the gateway accepts when Gemini asks for one (RetryInfo.retryDelay,
  // Retry-After): a longer one fails the call at once with RESOURCE_EXHAUSTED and Gemini's own
  // RetryInfo, so the caller decides, instead of holding its permits and bytes meanwhile.
  // Flag --max_retry_delay_s.
  absl::Duration max_retry_delay = absl::Seconds(60);
  // Retry budget: over a sliding window of budget_window, retries may be at most
  // max(budget_min_retries, budget_ratio * calls started) — beyond it failures are returned as
  // they are.
  double budget_ratio = 0.2;
  int budget_min_retries = 10;
  absl::Duration budget_window = absl::Seconds(10);
  // Seed of the jitter generator (0: random).
  std::uint64_t seed = 0;
};

// True for the failures worth another attempt: Gemini's 429, 500, 502, 503, 504 and 408
// (outcomes UPSTREAM_RATE_LIMITED, _INTERNAL, _UNAVAILABLE, _TIMEOUT), and a connection refused
// or reset before any response byte (UPSTREAM_UNREACHABLE). Whether a request may be sent again
// after it is the idempotency rule's question (async_retry_loop.h: MaySendAgain). Not: a connection lost after response
// bytes (the request was processed and may be billed), TLS failures, malformed or oversized
// answers, the caller's own deadline or cancellation, anything the caller or the key got wrong.
bool IsTransient(const absl::Status& status);

// The delay Gemini asked for (RetryInfo, which also carries a Retry-After header); nullopt if none.
std::optional<absl::Duration> AskedDelay(const absl::Status& status);

// Counts calls and retries over a sliding window (two buckets, the older one weighted by how much
// of it still overlaps the window). Thread-safe.
class RetryBudget {
 public:
  RetryBudget(double ratio, int min_retries, absl::Duration window);

  void RecordCall(absl::Time now);
  // True (and counts the retry) when one more retry fits the budget.
  bool TryRetry(absl::Time now);

 private:
  void Roll(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  double Weighted(double previous, double current, absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const double ratio_;
  const int min_retries_;
  const absl::Duration window_;
  absl::Mutex mu_;
  absl::Time bucket_start_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  double calls_ ABSL_GUARDED_BY(mu_) = 0;
  double retries_ ABSL_GUARDED_BY(mu_) = 0;
  double previous_calls_ ABSL_GUARDED_BY(mu_) = 0;
  double previous_retries_ ABSL_GUARDED_BY(mu_) = 0;
};

// How long to wait before each retry. Thread-safe.
class BackoffPolicy {
 public:
  virtual ~BackoffPolicy() = default;
  // The wait before retry `retry` (1 for the first retry).
  virtual absl::Duration Delay(int retry) = 0;
};

// Full-jitter backoff draws (RetryOptions): the upstream calls' retries.
class Backoff final : public BackoffPolicy {
 public:
  explicit Backoff(const RetryOptions& options);
  absl::Duration Delay(int retry) override;

 private:
  const absl::Duration initial_;
  const absl::Duration max_;
  const double multiplier_;
  absl::Mutex mu_;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
};

// min(max, initial * multiplier^(retry-1)), without jitter: the waits of one caller's own
// sequence (polling a file, resuming an upload), where no crowd of callers retries in step.
class ExponentialBackoff final : public BackoffPolicy {
 public:
  ExponentialBackoff(absl::Duration initial, absl::Duration max, double multiplier = 2.0)
      : initial_(initial), max_(max), multiplier_(multiplier) {}
  absl::Duration Delay(int retry) override;

 private:
  const absl::Duration initial_;
  const absl::Duration max_;
  const double multiplier_;
};

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_RETRY_POLICY_H_
