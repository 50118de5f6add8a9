#include "service/common/semaphore.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace vision_gateway {
namespace {

TEST(SemaphoreTest, TakesAllOrNothingAndGivesBackOnce) {
  Semaphore memory(10);
  Semaphore::Permit a = memory.TryAcquire(6);
  ASSERT_TRUE(a);
  EXPECT_EQ(a.units(), 6);
  EXPECT_FALSE(memory.TryAcquire(5)) << "only 4 left";
  EXPECT_EQ(memory.in_use(), 6);
  Semaphore::Permit b = memory.TryAcquire(4);
  ASSERT_TRUE(b);
  EXPECT_FALSE(memory.TryAcquire(1));
  a.Release();
  a.Release();  // once only
  EXPECT_EQ(memory.in_use(), 4);
  {
    Semaphore::Permit moved = std::move(b);
    EXPECT_FALSE(b);
    EXPECT_EQ(memory.in_use(), 4);
  }
  EXPECT_EQ(memory.in_use(), 0) << "the moved-to permit gave the units back";
  EXPECT_FALSE(memory.TryAcquire(11)) << "more than the capacity never fits";
}

TEST(SemaphoreTest, APermitGrowsAllOrNothingAndGivesEverythingBack) {
  Semaphore spool(10);
  Semaphore::Permit growing = spool.TryAcquire(0);
  ASSERT_TRUE(growing) << "an empty reservation is a permit";
  EXPECT_TRUE(growing.TryExtend(4));
  EXPECT_TRUE(growing.TryExtend(5));
  EXPECT_EQ(growing.units(), 9);
  EXPECT_FALSE(growing.TryExtend(2)) << "only 1 left";
  EXPECT_EQ(growing.units(), 9) << "a refused extension keeps what was held";
  EXPECT_EQ(spool.in_use(), 9);
  Semaphore::Permit other = spool.TryAcquire(1);
  EXPECT_TRUE(other);
  growing.Release();
  EXPECT_EQ(spool.in_use(), 1);
  EXPECT_FALSE(growing.TryExtend(1)) << "a released permit is empty";
  EXPECT_FALSE(Semaphore::Permit().TryExtend(0));
}

TEST(SemaphoreTest, UnboundedCountsButNeverRefuses) {
  Semaphore unbounded(0);
  Semaphore::Permit a = unbounded.TryAcquire(int64_t{1} << 40);
  EXPECT_TRUE(a);
  EXPECT_EQ(unbounded.in_use(), int64_t{1} << 40);
}

TEST(SemaphoreTest, APermitMayOutliveItsSemaphore) {
  Semaphore::Permit permit;
  {
    Semaphore memory(5);
    permit = memory.TryAcquire(3);
    ASSERT_TRUE(permit);
  }
  permit.Release();  // no write to freed memory (ASan: scripts/sanitize.sh)
  EXPECT_FALSE(permit);
}

TEST(SemaphoreTest, ConcurrentUsersNeverExceedTheCapacity) {
  Semaphore memory(8);
  std::atomic<int64_t> held{0}, peak{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        Semaphore::Permit p = memory.TryAcquire(3);
        if (!p) continue;
        const int64_t now = held.fetch_add(3) + 3;
        int64_t seen = peak.load();
        while (now > seen && !peak.compare_exchange_weak(seen, now)) {
        }
        held.fetch_sub(3);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(peak.load(), 6);  // two permits of 3 fit in 8, three never
  EXPECT_EQ(memory.in_use(), 0);
}

}  // namespace
}  // namespace vision_gateway
