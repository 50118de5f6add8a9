#include "service/server/caller_limiter.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "service/common/status_details.h"

namespace vision_gateway::server {

// Gives the slot back when the last reference (the permit) goes.
struct CallerLimiter::Permit::Slot {
  explicit Slot(std::shared_ptr<State> s) : state(std::move(s)) {}
  ~Slot() {
    absl::MutexLock lock(&state->mu);
    --state->in_flight;
  }
  std::shared_ptr<State> state;
};

CallerLimiter::Permit::~Permit() = default;

std::shared_ptr<CallerLimiter::State> CallerLimiter::StateFor(const std::string& caller) {
  absl::MutexLock lock(&mu_);
  auto it = states_.find(caller);
  if (it != states_.end()) return it->second;
  // Past the cap, unknown callers share one entry (the empty name is never a configured caller).
  const std::string& key = states_.size() < kMaxTrackedCallers ? caller : std::string();
  std::shared_ptr<State>& state = states_[key];
  if (state == nullptr) state = std::make_shared<State>();
  return state;
}

absl::StatusOr<CallerLimiter::Permit> CallerLimiter::Admit(const std::string& caller,
                                                           const CallerLimits& limits) {
  const bool rate_limited = limits.requests_per_second > 0;
  const bool concurrency_limited = limits.max_concurrent_calls > 0;
  if (!rate_limited && !concurrency_limited) return Permit();
  std::shared_ptr<State> state = StateFor(caller);
  absl::MutexLock lock(&state->mu);
  if (concurrency_limited && state->in_flight >= limits.max_concurrent_calls) {
    return WithRetryInfo(
        WithErrorInfo(absl::ResourceExhaustedError(absl::StrCat(
                          "caller '", caller, "' has ", limits.max_concurrent_calls,
                          " calls in flight, its limit; retry when one has finished")),
                      "CALLER_CONCURRENCY_LIMITED"),
        kConcurrencyRetryDelay);
  }
  if (rate_limited) {
    const double rate = limits.requests_per_second;
    const double capacity = limits.burst > 0 ? limits.burst : std::max(1.0, rate);
    const absl::Time now = now_();
    if (state->tokens < 0) {
      state->tokens = capacity;
    } else {
      const double elapsed = std::max(0.0, absl::ToDoubleSeconds(now - state->refilled));
      state->tokens = std::min(capacity, state->tokens + elapsed * rate);
    }
    state->refilled = now;
    if (state->tokens < 1.0) {
      const absl::Duration wait = absl::Seconds((1.0 - state->tokens) / rate);
      // Rounded up to whole milliseconds, so that retrying after exactly this delay succeeds.
      const absl::Duration retry = absl::Ceil(wait, absl::Milliseconds(1));
      return WithRetryInfo(
          WithErrorInfo(absl::ResourceExhaustedError(absl::StrCat(
                            "caller '", caller, "' is over its limit of ", rate,
                            " requests per second; retry in ", absl::FormatDuration(retry))),
                        "CALLER_RATE_LIMITED"),
          retry);
    }
    state->tokens -= 1.0;
  }
  Permit permit;
  if (concurrency_limited) {
    ++state->in_flight;
    permit.slot_ = std::make_shared<Permit::Slot>(state);
  }
  return permit;
}

int CallerLimiter::InFlight(const std::string& caller) {
  std::shared_ptr<State> state = StateFor(caller);
  absl::MutexLock lock(&state->mu);
  return state->in_flight;
}

}  // namespace vision_gateway::server
