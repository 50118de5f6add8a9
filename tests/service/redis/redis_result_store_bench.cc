// Latency of the Redis result store against a local redis-server (started here, as in the
// tests): Put then Get of one value size, one call at a time, p50/p99/max per operation.
//   redis_result_store_bench [VALUE_BYTES=51200] [CALLS=2000]
// Not a ctest: run by hand (README "Result cache: Redis" has the figures and the machine).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "service/redis/redis_result_store.h"
#include "tests/service/redis/redis_test_server.h"

namespace {

using vision_gateway::redis::MakeRedisResultStore;
using vision_gateway::redis::RedisOptions;
using vision_gateway::result_cache::ResultStore;

void Report(const char* what, std::vector<absl::Duration> samples, int failures) {
  std::sort(samples.begin(), samples.end());
  const auto at = [&](double q) {
    return absl::ToDoubleMicroseconds(samples[static_cast<size_t>(q * (samples.size() - 1))]);
  };
  std::printf("%-4s n=%zu failures=%d p50=%.0f us p99=%.0f us max=%.0f us\n", what, samples.size(),
              failures, at(0.5), at(0.99), at(1.0));
}

}  // namespace

int main(int argc, char** argv) {
  const size_t value_bytes = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 50 * 1024;
  const int calls = argc > 2 ? std::atoi(argv[2]) : 2000;
  vision_gateway::testing::RedisServer redis;
  if (absl::Status started = redis.Start(); !started.ok()) {
    std::fprintf(stderr, "redis-server: %s\n", started.ToString().c_str());
    return 1;
  }
  RedisOptions options;
  options.port = redis.port();
  absl::StatusOr<std::unique_ptr<ResultStore>> made = MakeRedisResultStore(options);
  if (!made.ok()) return 1;
  ResultStore& store = **made;
  // Wait (bounded) for the connection.
  for (int i = 0; i < 5000; ++i) {
    absl::Notification done;
    bool ready = false;
    store.Get("probe", [&](absl::StatusOr<std::string> r) {
      ready = r.status().code() != absl::StatusCode::kUnavailable;
      done.Notify();
    });
    done.WaitForNotification();
    if (ready) break;
    absl::SleepFor(absl::Milliseconds(1));
  }
  std::string value(value_bytes, '\0');
  for (size_t i = 0; i < value_bytes; ++i) value[i] = static_cast<char>(i * 131);
  std::vector<absl::Duration> puts;
  std::vector<absl::Duration> gets;
  int put_failures = 0;
  int get_failures = 0;
  for (int i = 0; i < calls; ++i) {
    const std::string key = absl::StrCat("bench", i % 100);
    absl::Notification put_done;
    const absl::Time put_start = absl::Now();
    store.Put(key, value, absl::Seconds(60), [&](absl::Status s) {
      put_failures += !s.ok();
      put_done.Notify();
    });
    put_done.WaitForNotification();
    puts.push_back(absl::Now() - put_start);
    absl::Notification get_done;
    const absl::Time get_start = absl::Now();
    store.Get(key, [&](absl::StatusOr<std::string> r) {
      get_failures += !r.ok() || r->size() != value_bytes;
      get_done.Notify();
    });
    get_done.WaitForNotification();
    gets.push_back(absl::Now() - get_start);
  }
  std::printf("value %zu bytes, %d calls each, one at a time, redis-server on loopback\n",
              value_bytes, calls);
  Report("Put", puts, put_failures);
  Report("Get", gets, get_failures);
  return 0;
}
