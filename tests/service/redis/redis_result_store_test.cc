// The Redis result store against a real redis-server (started by the test, see
// redis_test_server.h) and against fakes that stall or misbehave.
#include "service/redis/redis_result_store.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/service/redis/redis_test_server.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::redis {
namespace {

using result_cache::ResultStore;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::vision_gateway::testing::FakeRedis;
using ::vision_gateway::testing::IsOk;
using ::vision_gateway::testing::RedisServer;
using ::vision_gateway::testing::StatusIs;

// A guard against a store that never answers: far beyond any bound under test.
constexpr absl::Duration kHang = absl::Seconds(20);
// What "fast" means for a bounded answer on a shared, noisy machine (the bound is 50 ms).
constexpr absl::Duration kFast = absl::Seconds(1);

absl::StatusOr<std::string> GetNow(ResultStore& store, const std::string& key) {
  absl::Notification done;
  absl::StatusOr<std::string> result = absl::UnknownError("done never ran");
  store.Get(key, [&](absl::StatusOr<std::string> r) {
    result = std::move(r);
    done.Notify();
  });
  if (!done.WaitForNotificationWithTimeout(kHang)) return absl::UnknownError("done never ran");
  return result;
}

absl::Status PutNow(ResultStore& store, const std::string& key, std::string value,
                    absl::Duration ttl = absl::InfiniteDuration()) {
  absl::Notification done;
  absl::Status result = absl::UnknownError("done never ran");
  store.Put(key, std::move(value), ttl, [&](absl::Status s) {
    result = std::move(s);
    done.Notify();
  });
  if (!done.WaitForNotificationWithTimeout(kHang)) return absl::UnknownError("done never ran");
  return result;
}

// A store connects in the background; until it is ready calls fail UNAVAILABLE. Polls (bounded)
// until a Get gets another answer.
// The value, or the error as text (for EXPECT_EQ).
std::string ValueOrError(const absl::StatusOr<std::string>& result) {
  return result.ok() ? *result : absl::StrCat("<error: ", result.status().ToString(), ">");
}

bool WaitUntilServing(ResultStore& store, absl::Duration limit = absl::Seconds(10)) {
  const absl::Time give_up = absl::Now() + limit;
  while (absl::Now() < give_up) {
    if (GetNow(store, "probe").status().code() != absl::StatusCode::kUnavailable) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

// Redis's total_connections_received (INFO stats); -1 if unreadable.
int64_t ConnectionsReceived(const RedisServer& redis) {
  absl::StatusOr<std::string> info = redis.Command({"INFO", "stats"});
  if (!info.ok()) return -1;
  const std::string kField = "total_connections_received:";
  const size_t at = info->find(kField);
  if (at == std::string::npos) return -1;
  const size_t end = info->find("\r\n", at);
  int64_t n = -1;
  if (!absl::SimpleAtoi(info->substr(at + kField.size(), end - at - kField.size()), &n)) return -1;
  return n;
}

RedisOptions OptionsFor(uint16_t port) {
  RedisOptions options;
  options.port = port;
  // Generous where a test checks correctness, not bounds (the machine is shared and noisy).
  options.command_timeout = absl::Seconds(2);
  options.connect_timeout = absl::Seconds(2);
  options.min_reconnect_backoff = absl::Milliseconds(10);
  options.max_reconnect_backoff = absl::Milliseconds(100);
  return options;
}

std::unique_ptr<ResultStore> MakeStore(const RedisOptions& options) {
  absl::StatusOr<std::unique_ptr<ResultStore>> store = MakeRedisResultStore(options);
  EXPECT_THAT(store, IsOk());
  return store.ok() ? *std::move(store) : nullptr;
}

std::string BinaryValue(size_t size) {
  std::string value(size, '\0');
  for (size_t i = 0; i < size; ++i) value[i] = static_cast<char>((i * 131 + i / 256) & 0xff);
  return value;
}

TEST(ParseRedisEndpointTest, AcceptsHostPortAndBracketedIpv6) {
  absl::StatusOr<RedisEndpoint> name = ParseRedisEndpoint("vision-gateway-redis:6379");
  ASSERT_THAT(name, IsOk());
  EXPECT_EQ(name->host, "vision-gateway-redis");
  EXPECT_EQ(name->port, 6379);
  absl::StatusOr<RedisEndpoint> v4 = ParseRedisEndpoint("127.0.0.1:1");
  ASSERT_THAT(v4, IsOk());
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 1);
  absl::StatusOr<RedisEndpoint> v6 = ParseRedisEndpoint("[::1]:65535");
  ASSERT_THAT(v6, IsOk());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 65535);
}

TEST(ParseRedisEndpointTest, RejectsWhatIsNotHostPort) {
  for (const char* bad :
       {"", "redis", "redis:", ":6379", "redis:0", "redis:65536", "redis:-1", "redis:63 79",
        "redis:6379x", "::1:6379", "[::1]", "[::1:6379", "red is:6379", "redis/x:6379"}) {
    EXPECT_THAT(ParseRedisEndpoint(bad),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("HOST:PORT")))
        << bad;
  }
}

TEST(MakeRedisResultStoreTest, RejectsOptionsThatCannotWork) {
  RedisOptions no_host = OptionsFor(6379);
  no_host.host = "";
  EXPECT_THAT(MakeRedisResultStore(no_host), StatusIs(absl::StatusCode::kInvalidArgument));
  RedisOptions no_timeout = OptionsFor(6379);
  no_timeout.command_timeout = absl::ZeroDuration();
  EXPECT_THAT(MakeRedisResultStore(no_timeout), StatusIs(absl::StatusCode::kInvalidArgument));
  RedisOptions no_commands = OptionsFor(6379);
  no_commands.max_in_flight = 0;
  EXPECT_THAT(MakeRedisResultStore(no_commands), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(RedisResultStoreTest, MissIsNotFound) {
  RedisServer redis;
  ASSERT_THAT(redis.Start(), IsOk());
  std::unique_ptr<ResultStore> store = MakeStore(OptionsFor(redis.port()));
  ASSERT_TRUE(WaitUntilServing(*store));
  EXPECT_THAT(GetNow(*store, "never-put"), StatusIs(absl::StatusCode::kNotFound));
}

TEST(RedisResultStoreTest, BinaryValuesRoundTripUnderThePrefix) {
  RedisServer redis;
  ASSERT_THAT(redis.Start(), IsOk());
  std::unique_ptr<ResultStore> store = MakeStore(OptionsFor(redis.port()));
  ASSERT_TRUE(WaitUntilServing(*store));

  const std::string key("k\0ey\r\n with bytes", 18);
  const std::string value = BinaryValue(50 * 1024);
  ASSERT_NE(value.find('\0'), std::string::npos);
  ASSERT_THAT(PutNow(*store, key, value), IsOk());
  absl::StatusOr<std::string> got = GetNow(*store, key);
  ASSERT_THAT(got, IsOk());
  EXPECT_TRUE(*got == value) << "the value came back changed";
  ASSERT_THAT(PutNow(*store, "empty", ""), IsOk());
  EXPECT_THAT(GetNow(*store, "empty"), IsOk());

  // Redis sees the key under the prefix, and nothing under the bare key.
  RedisOptions bare = OptionsFor(redis.port());
  bare.key_prefix = "";
  std::unique_ptr<ResultStore> unprefixed = MakeStore(bare);
  ASSERT_TRUE(WaitUntilServing(*unprefixed));
  absl::StatusOr<std::string> raw = GetNow(*unprefixed, "vg:rc:v1:" + key);
  ASSERT_THAT(raw, IsOk());
  EXPECT_TRUE(*raw == value);
  EXPECT_THAT(GetNow(*unprefixed, key), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(ValueOrError(redis.Command({"PTTL", "vg:rc:v1:empty"})), ":-1")
      << "an infinite ttl is a plain SET, without expiry";
}

TEST(RedisResultStoreTest, EntriesExpireAfterTheirTtl) {
  RedisServer redis;
  ASSERT_THAT(redis.Start(), IsOk());
  std::unique_ptr<ResultStore> store = MakeStore(OptionsFor(redis.port()));
  ASSERT_TRUE(WaitUntilServing(*store));

  ASSERT_THAT(PutNow(*store, "short", "lived", absl::Milliseconds(200)), IsOk());
  absl::StatusOr<std::string> pttl = redis.Command({"PTTL", "vg:rc:v1:short"});
  ASSERT_THAT(pttl, IsOk());
  int64_t ms = 0;
  ASSERT_TRUE(absl::SimpleAtoi(pttl->substr(1), &ms)) << *pttl;
  EXPECT_GT(ms, 0);
  EXPECT_LE(ms, 200);
  // Redis's own expiry removes it; poll (bounded) until the store misses.
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  absl::StatusOr<std::string> got = GetNow(*store, "short");
  while (got.ok() && absl::Now() < give_up) {
    EXPECT_EQ(*got, "lived");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    got = GetNow(*store, "short");
  }
  EXPECT_THAT(got, StatusIs(absl::StatusCode::kNotFound));
}

TEST(RedisResultStoreTest, FailsFastWhileRedisIsDownAndRecoversWhenItIsBack) {
  RedisServer redis;
  ASSERT_THAT(redis.Start(), IsOk());
  RedisOptions options = OptionsFor(redis.port());
  options.command_timeout = absl::Milliseconds(50);
  options.connect_timeout = absl::Milliseconds(200);
  std::unique_ptr<ResultStore> store = MakeStore(options);
  ASSERT_TRUE(WaitUntilServing(*store));
  ASSERT_THAT(PutNow(*store, "k", "before"), IsOk());

  redis.Kill();
  // Every call is answered, quickly, with an error; none blocks and the process survives the
  // writes to a closed connection.
  int unavailable = 0;
  for (int i = 0; i < 50; ++i) {
    const absl::Time start = absl::Now();
    absl::StatusOr<std::string> got = GetNow(*store, "k");
    const absl::Duration took = absl::Now() - start;
    EXPECT_THAT(got, AnyOf(StatusIs(absl::StatusCode::kUnavailable),
                           StatusIs(absl::StatusCode::kDeadlineExceeded)));
    EXPECT_LT(took, kFast) << "call " << i;
    if (got.status().code() == absl::StatusCode::kUnavailable) ++unavailable;
    absl::Status put = PutNow(*store, "k", "while down");
    EXPECT_FALSE(put.ok());
  }
  EXPECT_GT(unavailable, 0);

  ASSERT_THAT(redis.Restart(), IsOk());
  ASSERT_TRUE(WaitUntilServing(*store)) << "the store did not reconnect";
  // A new, empty Redis (no persistence): the old entry is gone, new ones work.
  EXPECT_THAT(GetNow(*store, "k"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_THAT(PutNow(*store, "k", "after"), IsOk());
  EXPECT_EQ(ValueOrError(GetNow(*store, "k")), std::string("after"));
}

TEST(RedisResultStoreTest, AConnectionResetWhileWritingFailsThePendingCallsAndReconnects) {
  // Resets the connection on the first command while the store still has megabytes to write
  // (its next write fails ECONNRESET): every call is answered with an error, and the store
  // reconnects.
  FakeRedis resetting([](int n, const std::vector<std::string>&) {
    return n == 0 ? std::string("+PONG\r\n") : std::string(FakeRedis::kReset);
  });
  RedisOptions options = OptionsFor(resetting.port());
  options.max_put_bytes_in_flight = 64 << 20;
  std::unique_ptr<ResultStore> store = MakeStore(options);
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (resetting.connections() < 3 && absl::Now() < give_up) {
    absl::Mutex mu;
    int answered = 0;
    int failed = 0;
    constexpr int kPuts = 16;
    for (int i = 0; i < kPuts; ++i) {
      store->Put(absl::StrCat("k", i), std::string(1 << 20, 'v'), absl::Seconds(5),
                 [&](absl::Status s) {
                   absl::MutexLock lock(&mu);
                   ++answered;
                   failed += !s.ok();
                 });
    }
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(
                                        +[](int* n) { return *n == kPuts; }, &answered),
                                    kHang));
    EXPECT_EQ(failed, kPuts);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_GE(resetting.connections(), 3);
}

TEST(RedisResultStoreTest, ARedisThatNeverAnswersIsDeadlineExceededWithinTheBound) {
  // Answers the store's PING, then nothing.
  FakeRedis silent([](int n, const std::vector<std::string>&) {
    return n == 0 ? std::string("+PONG\r\n") : std::string();
  });
  RedisOptions options = OptionsFor(silent.port());
  options.command_timeout = absl::Milliseconds(50);
  std::unique_ptr<ResultStore> store = MakeStore(options);
  // The first command on a connection is the one that times out; wait for the store to be ready.
  absl::StatusOr<std::string> got = absl::UnavailableError("not ready");
  absl::Duration took;
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (got.status().code() == absl::StatusCode::kUnavailable && absl::Now() < give_up) {
    const absl::Time start = absl::Now();
    got = GetNow(*store, "k");
    took = absl::Now() - start;
    if (got.status().code() == absl::StatusCode::kUnavailable) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  EXPECT_THAT(got, StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_GE(took, absl::Milliseconds(40));
  EXPECT_LT(took, kFast);
  // The stalled connection is given up and a new one opened (answering PING again).
  const absl::Time reopened_by = absl::Now() + absl::Seconds(10);
  while (silent.connections() < 2 && absl::Now() < reopened_by) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_GE(silent.connections(), 2) << "a command timeout should reopen the connection";
  // A Put is bounded the same way (or refused at once while the stalled connection is reopened).
  const absl::Time start = absl::Now();
  EXPECT_THAT(PutNow(*store, "k", "v", absl::Seconds(5)),
              AnyOf(StatusIs(absl::StatusCode::kDeadlineExceeded),
                    StatusIs(absl::StatusCode::kUnavailable)));
  EXPECT_LT(absl::Now() - start, kFast);
}

TEST(RedisResultStoreTest, ASilentServerIsNeverReady) {
  // Accepts, reads, answers nothing, not even PING: the store never uses it.
  FakeRedis mute([](int, const std::vector<std::string>&) { return std::string(); });
  RedisOptions options = OptionsFor(mute.port());
  options.connect_timeout = absl::Milliseconds(50);
  std::unique_ptr<ResultStore> store = MakeStore(options);
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (mute.connections() < 2 && absl::Now() < give_up) {
    const absl::Time start = absl::Now();
    EXPECT_THAT(GetNow(*store, "k"), StatusIs(absl::StatusCode::kUnavailable));
    EXPECT_LT(absl::Now() - start, kFast);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_GE(mute.connections(), 2) << "the store did not give up on the silent connection";
}

TEST(RedisResultStoreTest, ValuesBeyondTheBoundAreRefusedNotHeld) {
  RedisServer redis;
  ASSERT_THAT(redis.Start(), IsOk());
  std::unique_ptr<ResultStore> writer = MakeStore(OptionsFor(redis.port()));
  RedisOptions small = OptionsFor(redis.port());
  small.max_value_bytes = 1024;
  small.max_put_bytes_in_flight = 1024;
  std::unique_ptr<ResultStore> reader = MakeStore(small);
  ASSERT_TRUE(WaitUntilServing(*writer));
  ASSERT_TRUE(WaitUntilServing(*reader));

  // Put refuses at once.
  EXPECT_THAT(PutNow(*reader, "big", std::string(1025, 'x')),
              StatusIs(absl::StatusCode::kResourceExhausted));
  // A value that arrived whole is refused, and the connection stays.
  ASSERT_THAT(PutNow(*writer, "big", std::string(4096, 'x')), IsOk());
  EXPECT_THAT(GetNow(*reader, "big"), StatusIs(absl::StatusCode::kResourceExhausted));
  ASSERT_THAT(PutNow(*reader, "small", std::string(1024, 'y')), IsOk());
  EXPECT_THAT(GetNow(*reader, "small"), IsOk());
  // A value still arriving beyond the bound closes the connection (Redis counts the store's
  // new one; each INFO is a connection of its own too); the store comes back.
  ASSERT_THAT(PutNow(*writer, "huge", BinaryValue(4 << 20)), IsOk());
  const int64_t connections_before = ConnectionsReceived(redis);
  EXPECT_THAT(GetNow(*reader, "huge"), StatusIs(absl::StatusCode::kResourceExhausted));
  ASSERT_TRUE(WaitUntilServing(*reader));
  EXPECT_GE(ConnectionsReceived(redis) - connections_before, 2)
      << "the reader should have reopened its connection";
  EXPECT_EQ(ValueOrError(GetNow(*reader, "small")), std::string(1024, 'y'));
}

TEST(RedisResultStoreTest, AHostileServerCannotMakeTheStoreHoldAHugeReply) {
  // Claims a 1 GB value and streams 8 MiB of it.
  FakeRedis hostile([](int n, const std::vector<std::string>&) {
    return n == 0 ? std::string("+PONG\r\n") : "$1000000000\r\n" + std::string(8 << 20, 'x');
  });
  RedisOptions options = OptionsFor(hostile.port());
  options.max_value_bytes = 64 * 1024;
  options.max_put_bytes_in_flight = 64 * 1024;
  std::unique_ptr<ResultStore> store = MakeStore(options);
  absl::StatusOr<std::string> got = absl::UnavailableError("not ready");
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (got.status().code() == absl::StatusCode::kUnavailable && absl::Now() < give_up) {
    got = GetNow(*store, "k");
  }
  EXPECT_THAT(got, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("bound")));
}

TEST(RedisResultStoreTest, RepliesGetAndSetNeverGiveCloseTheConnection) {
  // An array for GET; for SET its OK and then a reply nobody asked for.
  FakeRedis odd([](int n, const std::vector<std::string>& args) {
    if (n == 0) return std::string("+PONG\r\n");
    if (args[0] == "GET") return std::string("*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    return std::string("+OK\r\n:7\r\n");
  });
  std::unique_ptr<ResultStore> store = MakeStore(OptionsFor(odd.port()));
  bool saw_array = false;
  bool saw_put = false;
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!(saw_array && saw_put && odd.connections() >= 3) && absl::Now() < give_up) {
    // Each odd reply closes the connection: alternate which call comes first after a reconnect.
    const absl::Time start = absl::Now();
    if (!saw_put && PutNow(*store, "k", "v").ok()) saw_put = true;
    absl::StatusOr<std::string> got = GetNow(*store, "k");
    EXPECT_THAT(got, StatusIs(absl::StatusCode::kUnavailable));
    if (absl::StrContains(got.status().message(), "array")) saw_array = true;
    EXPECT_LT(absl::Now() - start, kFast);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_TRUE(saw_array) << "a GET answered with an array should say so";
  EXPECT_TRUE(saw_put) << "the SET's own reply should still count";
  EXPECT_GE(odd.connections(), 3) << "each odd reply should close the connection";
}

TEST(RedisResultStoreTest, CommandsBeyondMaxInFlightFailAtOnce) {
  FakeRedis silent([](int n, const std::vector<std::string>&) {
    return n == 0 ? std::string("+PONG\r\n") : std::string();
  });
  RedisOptions options = OptionsFor(silent.port());
  options.command_timeout = absl::Seconds(30);
  options.max_in_flight = 4;
  std::unique_ptr<ResultStore> store = MakeStore(options);
  // A Get is accepted once the store is ready (the server then never answers it); before, it
  // fails UNAVAILABLE inline.
  struct Call {
    absl::Mutex mu;
    std::optional<absl::Status> status ABSL_GUARDED_BY(mu);
  };
  std::vector<std::shared_ptr<Call>> pending;
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (pending.size() < 4 && absl::Now() < give_up) {
    auto call = std::make_shared<Call>();
    store->Get("k", [call](absl::StatusOr<std::string> r) {
      absl::MutexLock lock(&call->mu);
      call->status = r.status();
    });
    absl::MutexLock lock(&call->mu);
    if (!call->status.has_value()) {
      pending.push_back(call);
    } else {
      EXPECT_THAT(*call->status, StatusIs(absl::StatusCode::kUnavailable));
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  const auto answered = [&] {
    int n = 0;
    for (const auto& call : pending) {
      absl::MutexLock lock(&call->mu);
      n += call->status.has_value();
    }
    return n;
  };
  ASSERT_EQ(pending.size(), 4u);
  const absl::Time start = absl::Now();
  EXPECT_THAT(GetNow(*store, "k"), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(PutNow(*store, "k", "v"), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_LT(absl::Now() - start, kFast);
  EXPECT_EQ(answered(), 0);

  // Destruction answers the pending commands CANCELLED before it returns.
  store.reset();
  EXPECT_EQ(answered(), 4);
  for (const auto& call : pending) {
    absl::MutexLock lock(&call->mu);
    EXPECT_THAT(*call->status, StatusIs(absl::StatusCode::kCancelled));
  }
}

TEST(RedisResultStoreTest, ManyConcurrentCallsFromSeveralThreads) {
  RedisServer redis;
  ASSERT_THAT(redis.Start(), IsOk());
  RedisOptions options = OptionsFor(redis.port());
  options.max_in_flight = 10000;
  std::unique_ptr<ResultStore> store = MakeStore(options);
  ASSERT_TRUE(WaitUntilServing(*store));
  constexpr int kKeys = 50;
  for (int k = 0; k < kKeys; ++k) {
    ASSERT_THAT(PutNow(*store, absl::StrCat("key", k), absl::StrCat("value", k, BinaryValue(k))),
                IsOk());
  }
  constexpr int kThreads = 4;
  constexpr int kCallsPerThread = 500;
  absl::Mutex mu;
  int answered = 0;
  int wrong = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        const int k = (t * 7 + i) % kKeys;
        store->Get(absl::StrCat("key", k), [&, k](absl::StatusOr<std::string> r) {
          absl::MutexLock lock(&mu);
          ++answered;
          if (!r.ok() || *r != absl::StrCat("value", k, BinaryValue(k))) ++wrong;
        });
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  absl::MutexLock lock(&mu);
  EXPECT_TRUE(
      mu.AwaitWithTimeout(absl::Condition(
                              +[](int* n) { return *n == kThreads * kCallsPerThread; }, &answered),
                          kHang));
  EXPECT_EQ(wrong, 0);
}

}  // namespace
}  // namespace vision_gateway::redis
