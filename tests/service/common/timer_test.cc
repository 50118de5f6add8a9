// The thread-backed Timer (service/common/timer.h), the one timer facility of the service: retry
// backoff, upload resume backoff, polling a PROCESSING file, the file hash cache's clock.
#include "service/common/timer.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace vision_gateway {
namespace {

// Holds the timer's one thread inside a callback until Release(): whatever is queued meanwhile is
// decided by the timer's own logic (order, cancellation), not by how fast a loaded machine runs
// the test against the wall clock.
class TimerThreadGate {
 public:
  explicit TimerThreadGate(Timer& timer) {
    timer.RunAt(absl::InfinitePast(), [this] {
      entered_.Notify();
      release_.WaitForNotification();
    });
    entered_.WaitForNotification();
  }
  void Release() { release_.Notify(); }

 private:
  absl::Notification entered_;
  absl::Notification release_;
};

TEST(ThreadTimerTest, RunsCallbacksInTimeOrderNotInsertionOrder) {
  std::shared_ptr<Timer> timer = MakeThreadTimer();
  TimerThreadGate gate(*timer);
  absl::Mutex mu;
  std::vector<int> order;
  absl::Notification last;
  // Queued latest first while the timer's thread is busy; all are due when it is free again.
  const absl::Time base = absl::UnixEpoch();
  timer->RunAt(base + absl::Milliseconds(30), [&] {
    {
      absl::MutexLock lock(&mu);
      order.push_back(3);
    }
    last.Notify();
  });
  timer->RunAt(base + absl::Milliseconds(20), [&] {
    absl::MutexLock lock(&mu);
    order.push_back(2);
  });
  timer->RunAt(base + absl::Milliseconds(10), [&] {
    absl::MutexLock lock(&mu);
    order.push_back(1);
  });
  gate.Release();
  ASSERT_TRUE(last.WaitForNotificationWithTimeout(absl::Seconds(10)));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(ThreadTimerTest, NeverRunsBeforeItsTime) {
  std::shared_ptr<Timer> timer = MakeThreadTimer();
  absl::Notification ran;
  absl::Time ran_at;
  const absl::Time when = absl::Now() + absl::Milliseconds(20);
  timer->RunAt(when, [&] {
    ran_at = absl::Now();
    ran.Notify();
  });
  ASSERT_TRUE(ran.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_GE(ran_at, when);
}

TEST(ThreadTimerTest, PastTimesRunAtOnceButNeverInsideRunAt) {
  std::shared_ptr<Timer> timer = MakeThreadTimer();
  absl::Notification ran;
  // Run inside RunAt would mean on the caller's thread. (A flag cleared after RunAt returns
  // cannot tell: the timer thread may legitimately run the callback before the caller clears it.)
  const std::thread::id caller = std::this_thread::get_id();
  std::thread::id ran_on;
  timer->RunAt(absl::InfinitePast(), [&] {
    ran_on = std::this_thread::get_id();
    ran.Notify();
  });
  ASSERT_TRUE(ran.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_NE(ran_on, caller);
}

TEST(ThreadTimerTest, CancelledCallbackNeverRuns) {
  std::shared_ptr<Timer> timer = MakeThreadTimer();
  TimerThreadGate gate(*timer);
  std::atomic<bool> cancelled_ran{false};
  absl::Notification later;
  // Already due, but the timer's thread is held: it cannot have started.
  const Timer::Id id = timer->RunAt(absl::UnixEpoch(), [&] { cancelled_ran = true; });
  EXPECT_NE(id, 0u);
  EXPECT_TRUE(timer->Cancel(id));
  EXPECT_FALSE(timer->Cancel(id));  // already gone
  // Due after the cancelled one: when it has run, the cancelled one would have run before it.
  timer->RunAt(absl::UnixEpoch() + absl::Milliseconds(1), [&] { later.Notify(); });
  gate.Release();
  ASSERT_TRUE(later.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_FALSE(cancelled_ran);
}

TEST(ThreadTimerTest, CancelAfterRunningReturnsFalse) {
  std::shared_ptr<Timer> timer = MakeThreadTimer();
  absl::Notification ran;
  const Timer::Id id = timer->RunAt(absl::InfinitePast(), [&] { ran.Notify(); });
  ASSERT_TRUE(ran.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_FALSE(timer->Cancel(id));
}

TEST(ThreadTimerTest, DestructionDropsPendingCallbacksUnrun) {
  auto flag = std::make_shared<bool>(false);
  std::weak_ptr<bool> captured = flag;
  {
    std::shared_ptr<Timer> timer = MakeThreadTimer();
    timer->RunAt(absl::Now() + absl::Hours(1), [flag] { *flag = true; });
    flag.reset();
    EXPECT_FALSE(captured.expired());  // held by the pending callback
  }
  // Destroyed, not run: the capture is gone.
  EXPECT_TRUE(captured.expired());
}

TEST(ThreadTimerTest, MayBeDestroyedFromItsOwnCallback) {
  std::shared_ptr<Timer> timer = MakeThreadTimer();
  absl::Notification done;
  Timer* raw = timer.get();
  raw->RunAt(absl::InfinitePast(), [&timer, &done] {
    timer.reset();  // the last reference, on the timer's own thread
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(timer, nullptr);
}

}  // namespace
}  // namespace vision_gateway
