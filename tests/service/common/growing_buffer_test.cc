// GrowingBuffer: bounded appends in order, waking readers, abandonment, storage reuse, and a
// reader thread that sees exactly the bytes written while the producer writes.
#include "service/common/growing_buffer.h"

#include <atomic>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace vision_gateway {
namespace {

TEST(GrowingBufferTest, AppendsInOrderUpToItsSize) {
  GrowingBuffer buffer(10);
  EXPECT_EQ(buffer.size(), 10u);
  EXPECT_EQ(buffer.filled(), 0u);
  EXPECT_EQ(buffer.View(), "");
  EXPECT_EQ(buffer.Append("abcd"), 4u);
  EXPECT_EQ(buffer.View(), "abcd");
  EXPECT_FALSE(buffer.complete());
  // Only what fits is taken; the caller keeps the rest.
  EXPECT_EQ(buffer.Append("efghijklmn"), 6u);
  EXPECT_EQ(buffer.View(), "abcdefghij");
  EXPECT_TRUE(buffer.complete());
  EXPECT_EQ(buffer.Append("x"), 0u);
  EXPECT_EQ(buffer.View(), "abcdefghij");
}

TEST(GrowingBufferTest, OfIsCompleteWithTheBytes) {
  auto buffer = GrowingBuffer::Of("hello");
  EXPECT_TRUE(buffer->complete());
  EXPECT_EQ(buffer->View(), "hello");
  EXPECT_EQ(buffer->Append("x"), 0u);
  int woken = 0;
  buffer->WhenMore(0, [&] { ++woken; });
  EXPECT_EQ(woken, 1) << "a complete buffer wakes at once";
}

TEST(GrowingBufferTest, WhenMoreWaitsForBytesPastWhatTheReaderHas) {
  GrowingBuffer buffer(8);
  int woken = 0;
  buffer.WhenMore(0, [&] { ++woken; });
  EXPECT_EQ(woken, 0);
  buffer.Append("ab");
  EXPECT_EQ(woken, 1);
  buffer.Append("c");
  EXPECT_EQ(woken, 1) << "a waker runs once";
  buffer.WhenMore(2, [&] { ++woken; });
  EXPECT_EQ(woken, 2) << "bytes past 2 are already there";
  buffer.WhenMore(3, [&] { ++woken; });
  EXPECT_EQ(woken, 2);
  buffer.Append("");
  EXPECT_EQ(woken, 2) << "nothing appended, nothing to wake for";
  buffer.Append("d");
  EXPECT_EQ(woken, 3);
}

TEST(GrowingBufferTest, AbandonWakesReadersAndStopsAppends) {
  GrowingBuffer buffer(8);
  buffer.Append("ab");
  int woken = 0;
  buffer.WhenMore(2, [&] { ++woken; });
  buffer.Abandon();
  EXPECT_EQ(woken, 1);
  EXPECT_TRUE(buffer.abandoned());
  EXPECT_FALSE(buffer.complete());
  EXPECT_EQ(buffer.Append("cd"), 0u);
  EXPECT_EQ(buffer.View(), "ab");
  buffer.WhenMore(2, [&] { ++woken; });
  EXPECT_EQ(woken, 2) << "an abandoned buffer wakes at once";
}

TEST(GrowingBufferTest, StorageIsReusedWhenLargeEnough) {
  auto first = std::make_shared<GrowingBuffer>(1 << 20);
  first->Append(std::string(1 << 20, 'a'));
  const char* where = first->View().data();
  std::string storage = first->TakeStorage();
  EXPECT_EQ(first->filled(), 0u);
  GrowingBuffer second(1000, std::move(storage));
  second.Append("xyz");
  EXPECT_EQ(second.View().data(), where) << "the same allocation holds the next buffer";
  EXPECT_EQ(second.View(), "xyz");

  GrowingBuffer small(10);
  small.Append("0123456789");
  GrowingBuffer larger(100, small.TakeStorage());  // too small: a new allocation
  EXPECT_EQ(larger.Append(std::string(100, 'b')), 100u);
  EXPECT_EQ(larger.View(), std::string(100, 'b'));
}

// A reader on another thread follows the producer with WhenMore and sees every byte, in order.
TEST(GrowingBufferTest, AReaderThreadSeesEveryByteInOrder) {
  constexpr std::size_t kSize = 4 << 20;
  std::string source(kSize, '\0');
  for (std::size_t i = 0; i < kSize; ++i) source[i] = static_cast<char>(i * 7 + (i >> 12));
  auto buffer = std::make_shared<GrowingBuffer>(kSize);

  std::string seen;
  absl::Notification done;
  std::thread reader([&] {
    while (seen.size() < kSize) {
      absl::Notification more;
      buffer->WhenMore(seen.size(), [&more] { more.Notify(); });
      more.WaitForNotification();
      seen.append(buffer->View().substr(seen.size()));
    }
    done.Notify();
  });
  for (std::size_t at = 0; at < kSize;) {
    const std::size_t n = std::min<std::size_t>(kSize - at, 1 + (at * 31) % 70000);
    ASSERT_EQ(buffer->Append(std::string_view(source).substr(at, n)), n);
    at += n;
  }
  reader.join();
  ASSERT_TRUE(done.HasBeenNotified());
  EXPECT_TRUE(seen == source);
}

}  // namespace
}  // namespace vision_gateway
