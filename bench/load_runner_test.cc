#include "bench/load_runner.h"

#include <unistd.h>

#include <chrono>
#include <deque>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "bench/load_target.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vision_gateway::bench {
namespace {

using ::testing::HasSubstr;

// Completes every request `service_time` after it started, on one worker thread, failing every
// `fail_every`-th one (0: none) with UNAVAILABLE. Tracks the most requests in flight at once.
class FakeTarget final : public LoadTarget {
 public:
  FakeTarget(std::chrono::microseconds service_time, int fail_every)
      : service_time_(service_time), fail_every_(fail_every), worker_([this] { Work(); }) {}

  ~FakeTarget() override {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    worker_.join();
  }

  void Start(DoneCallback done) override {
    absl::MutexLock lock(&mu_);
    Sample sample;
    sample.start = Clock::now();
    ++started_;
    if (fail_every_ > 0 && started_ % fail_every_ == 0) sample.error = "UNAVAILABLE";
    queue_.emplace_back(std::move(sample), std::move(done));
    max_in_flight_ = std::max<int>(max_in_flight_, queue_.size());
  }

  std::string Describe() const override { return "fake"; }

  int max_in_flight() {
    absl::MutexLock lock(&mu_);
    return max_in_flight_;
  }

 private:
  void Work() {
    while (true) {
      std::pair<Sample, DoneCallback> next;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](FakeTarget* t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t->mu_) {
              return t->stop_ || !t->queue_.empty();
            },
            this));
        if (queue_.empty()) return;
        next = std::move(queue_.front());
        queue_.pop_front();
      }
      std::this_thread::sleep_until(next.first.start + service_time_);  // the fake's latency
      next.first.first = Clock::now();
      next.first.got_first = true;
      next.first.end = next.first.first;
      next.first.messages = 3;
      next.second(next.first);
    }
  }

  const std::chrono::microseconds service_time_;
  const int fail_every_;
  absl::Mutex mu_;
  std::deque<std::pair<Sample, DoneCallback>> queue_ ABSL_GUARDED_BY(mu_);
  int started_ ABSL_GUARDED_BY(mu_) = 0;
  int max_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread worker_;
};

TEST(SummarizeTest, NearestRankPercentiles) {
  std::vector<double> values;
  for (int i = 100; i >= 1; --i) values.push_back(i);
  const LatencySummary summary = Summarize(values);
  EXPECT_EQ(summary.count, 100);
  EXPECT_DOUBLE_EQ(summary.p50_ms, 50);
  EXPECT_DOUBLE_EQ(summary.p90_ms, 90);
  EXPECT_DOUBLE_EQ(summary.p99_ms, 99);
  EXPECT_DOUBLE_EQ(summary.max_ms, 100);
  EXPECT_DOUBLE_EQ(summary.mean_ms, 50.5);
}

TEST(SummarizeTest, EmptyAndSingle) {
  std::vector<double> none;
  EXPECT_EQ(Summarize(none).count, 0);
  std::vector<double> one = {7};
  const LatencySummary summary = Summarize(one);
  EXPECT_DOUBLE_EQ(summary.p50_ms, 7);
  EXPECT_DOUBLE_EQ(summary.p99_ms, 7);
}

TEST(RunLoadTest, ClosedLoopKeepsExactlyNInFlight) {
  FakeTarget target(std::chrono::microseconds(2000), 0);
  RunOptions options;
  options.concurrency = 3;
  options.warmup = std::chrono::milliseconds(20);
  options.duration = std::chrono::milliseconds(200);
  const RunReport report = RunLoad(target, options);
  EXPECT_EQ(target.max_in_flight(), 3);
  EXPECT_EQ(report.max_in_flight, 3);
  EXPECT_GT(report.ok, 10);
  EXPECT_EQ(report.failed, 0);
  EXPECT_EQ(report.unfinished, 0);
  EXPECT_GT(report.warmup_requests, 0);
  EXPECT_GE(report.latency.p50_ms, 2.0);  // never faster than the service time
  EXPECT_DOUBLE_EQ(report.mean_messages, 3);
  EXPECT_EQ(report.target_rate, 0);
}

TEST(RunLoadTest, OpenLoopStartsOnScheduleAndCountsFailuresByCode) {
  FakeTarget target(std::chrono::microseconds(500), 4);
  RunOptions options;
  options.rate = 400;
  options.warmup = std::chrono::milliseconds(50);
  options.duration = std::chrono::milliseconds(500);
  const RunReport report = RunLoad(target, options);
  // 400/s: 20 starts due in the warm-up, 200 in the window (a late start keeps its phase), a
  // quarter of them failing.
  EXPECT_EQ(report.warmup_requests, 20);
  EXPECT_EQ(report.ok + report.failed, 200);
  EXPECT_NEAR(report.failed, 50, 2);
  EXPECT_EQ(report.failures.size(), 1u);
  EXPECT_EQ(report.failures.at("UNAVAILABLE"), report.failed);
  EXPECT_NEAR(report.achieved_rate, 400, 8);
  EXPECT_EQ(report.target_rate, 400);
  EXPECT_EQ(report.unfinished, 0);
  EXPECT_EQ(report.latency.count, report.ok);

  const std::string json = FormatJson(report, "t1");
  EXPECT_THAT(json, HasSubstr("\"label\":\"t1\""));
  EXPECT_THAT(json, HasSubstr("\"failures\":{\"UNAVAILABLE\":"));
  EXPECT_THAT(json, HasSubstr("\"generator\":{\"target_rate\":400.00"));
  EXPECT_EQ(json.find('\n'), std::string::npos);
  EXPECT_THAT(FormatHuman(report), HasSubstr("UNAVAILABLE"));
}

TEST(RunLoadTest, SamplesTheServerProcess) {
  FakeTarget target(std::chrono::microseconds(100), 0);
  RunOptions options;
  options.concurrency = 1;
  options.warmup = std::chrono::milliseconds(0);
  options.duration = std::chrono::milliseconds(250);
  options.server_pid = static_cast<int>(getpid());  // ourselves: surely alive, with threads
  options.sample_interval = std::chrono::milliseconds(20);
  const RunReport report = RunLoad(target, options);
  EXPECT_GT(report.rss_kb_before, 0);
  EXPECT_GE(report.rss_kb_max, report.rss_kb_before);
  EXPECT_GE(report.threads_max, 2);  // this thread and the fake's worker at least
  EXPECT_GT(report.resource_samples, 3);
  EXPECT_GE(report.server_cpu_s, 0);
  EXPECT_GE(report.server_cpu_ms_per_request, 0);
  EXPECT_THAT(FormatJson(report, ""), HasSubstr("\"server\":{\"pid\":"));
}

}  // namespace
}  // namespace vision_gateway::bench
