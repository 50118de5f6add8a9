// Per-caller admission: a token bucket for requests per second and a count of concurrent calls.
// Over either limit → RESOURCE_EXHAUSTED with RetryInfo (how long until a request would be
// admitted; for concurrency, a fixed short delay) and ErrorInfo reason CALLER_RATE_LIMITED or
// CALLER_CONCURRENCY_LIMITED. Caller names come from configuration (token file, client
// certificates of one CA), so the table is small; it is still capped, and callers past the cap
// share one bucket.
#ifndef VISION_GATEWAY_SERVICE_SERVER_CALLER_LIMITER_H_
#define VISION_GATEWAY_SERVICE_SERVER_CALLER_LIMITER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vision_gateway::server {

struct CallerLimits {
  // Sustained requests per second (0: unlimited).
  double requests_per_second = 0;
  // Requests that may arrive at once after a quiet period (0: max(1, requests_per_second)).
  int burst = 0;
  // Calls in flight at once (0: unlimited).
  int max_concurrent_calls = 0;
};

// Delay suggested (RetryInfo) when a caller is at its concurrency limit.
inline constexpr absl::Duration kConcurrencyRetryDelay = absl::Milliseconds(500);
// Distinct callers tracked; further callers share one overflow entry.
inline constexpr std::size_t kMaxTrackedCallers = 10000;

class CallerLimiter {
 public:
  // Holds one of a caller's concurrent-call slots until destroyed.
  class Permit {
   public:
    Permit() = default;
    Permit(Permit&&) = default;
    Permit& operator=(Permit&&) = default;
    ~Permit();

   private:
    friend class CallerLimiter;
    struct Slot;
    std::shared_ptr<Slot> slot_;
  };

  explicit CallerLimiter(std::function<absl::Time()> now = absl::Now) : now_(std::move(now)) {}

  absl::StatusOr<Permit> Admit(const std::string& caller, const CallerLimits& limits);

  // Calls of `caller` in flight (for tests).
  int InFlight(const std::string& caller);

 private:
  struct State {
    absl::Mutex mu;
    double tokens ABSL_GUARDED_BY(mu) = -1;  // -1: not started (full bucket)
    absl::Time refilled ABSL_GUARDED_BY(mu);
    int in_flight ABSL_GUARDED_BY(mu) = 0;
  };

  std::shared_ptr<State> StateFor(const std::string& caller);

  std::function<absl::Time()> now_;
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<State>> states_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vision_gateway::server

#endif  // VISION_GATEWAY_SERVICE_SERVER_CALLER_LIMITER_H_
