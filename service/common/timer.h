// Time for policies that wait (retry backoff, attempt timeouts): a clock and one-shot callbacks.
// Production uses a thread-backed timer; tests inject a manual one (tests/testing/fake_timer.h)
// so that waits of seconds run in no time and in a fixed order.
#ifndef VISION_GATEWAY_SERVICE_COMMON_TIMER_H_
#define VISION_GATEWAY_SERVICE_COMMON_TIMER_H_

#include <cstdint>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"

namespace vision_gateway {

class Timer {
 public:
  using Id = std::uint64_t;
  virtual ~Timer() = default;

  virtual absl::Time Now() = 0;

  // Runs `fn` once at or after `when`, on the timer's thread, never inside RunAt itself. Ids are
  // unique and never 0.
  virtual Id RunAt(absl::Time when, absl::AnyInvocable<void()> fn) = 0;

  // True when `fn` of `id` was removed before it started (it will never run); false when it has
  // run, is running, or `id` is unknown.
  virtual bool Cancel(Id id) = 0;
};

// A timer with one thread of its own. Pending callbacks are dropped (destroyed, not run) when the
// timer is destroyed.
std::shared_ptr<Timer> MakeThreadTimer();

}  // namespace vision_gateway

#endif  // VISION_GATEWAY_SERVICE_COMMON_TIMER_H_
