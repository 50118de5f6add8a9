#include "service/gemini/retry_policy.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "service/common/error_reasons.h"
#include "service/common/status_details.h"

namespace vision_gateway::gemini {

bool IsTransient(const absl::Status& status) {
  if (status.ok()) return false;
  const std::string outcome = GetOutcome(status);
  return outcome == reasons::kUpstreamRateLimited || outcome == reasons::kUpstreamInternal ||
         outcome == reasons::kUpstreamUnavailable || outcome == reasons::kUpstreamTimeout ||
         outcome == reasons::kUpstreamUnreachable;
}

std::optional<absl::Duration> AskedDelay(const absl::Status& status) {
  return GetRetryDelay(status);
}

RetryBudget::RetryBudget(double ratio, int min_retries, absl::Duration window)
    : ratio_(ratio),
      min_retries_(min_retries),
      window_(window > absl::ZeroDuration() ? window : absl::Seconds(10)) {}

void RetryBudget::Roll(absl::Time now) {
  if (bucket_start_ == absl::InfinitePast()) {
    bucket_start_ = now;
    return;
  }
  if (now < bucket_start_ + window_) return;
  const bool adjacent = now < bucket_start_ + 2 * window_;
  previous_calls_ = adjacent ? calls_ : 0;
  previous_retries_ = adjacent ? retries_ : 0;
  calls_ = 0;
  retries_ = 0;
  bucket_start_ = adjacent ? bucket_start_ + window_ : now;
}

double RetryBudget::Weighted(double previous, double current, absl::Time now) const {
  const double into = absl::FDivDuration(now - bucket_start_, window_);
  return previous * std::max(0.0, 1.0 - into) + current;
}

void RetryBudget::RecordCall(absl::Time now) {
  absl::MutexLock lock(&mu_);
  Roll(now);
  calls_ += 1;
}

bool RetryBudget::TryRetry(absl::Time now) {
  absl::MutexLock lock(&mu_);
  Roll(now);
  const double allowed = std::max(static_cast<double>(min_retries_),
                                  ratio_ * Weighted(previous_calls_, calls_, now));
  if (Weighted(previous_retries_, retries_, now) + 1 > allowed) return false;
  retries_ += 1;
  return true;
}

Backoff::Backoff(const RetryOptions& options)
    : initial_(options.initial_backoff),
      max_(options.max_backoff),
      multiplier_(options.multiplier),
      rng_(options.seed != 0 ? options.seed : std::random_device{}()) {}

absl::Duration Backoff::Delay(int retry) {
  double cap_seconds = absl::ToDoubleSeconds(initial_) * std::pow(multiplier_, std::max(0, retry - 1));
  cap_seconds = std::min(cap_seconds, absl::ToDoubleSeconds(max_));
  if (!(cap_seconds > 0)) return absl::ZeroDuration();
  absl::MutexLock lock(&mu_);
  std::uniform_real_distribution<double> uniform(0.0, cap_seconds);
  return absl::Seconds(uniform(rng_));
}

absl::Duration ExponentialBackoff::Delay(int retry) {
  const double seconds = absl::ToDoubleSeconds(initial_) *
                         std::pow(multiplier_, std::min(std::max(0, retry - 1), 60));
  return std::min(absl::Seconds(seconds), max_);
}

}  // namespace vision_gateway::gemini
