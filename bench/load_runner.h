// Drives a LoadTarget closed-loop (N requests in flight at all times) or open-loop (R request
// starts per second from a timer thread, whatever the completions), measures latency and the
// server's resources, and formats the result for people and as one JSON line.
#ifndef VISION_GATEWAY_BENCH_LOAD_RUNNER_H_
#define VISION_GATEWAY_BENCH_LOAD_RUNNER_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bench/load_target.h"

namespace vision_gateway::bench {

struct RunOptions {
  int concurrency = 0;  // > 0: closed loop with this many requests in flight
  double rate = 0;      // > 0: open loop starting this many requests per second
  std::chrono::milliseconds warmup{2000};    // measured neither for latency nor for throughput
  std::chrono::milliseconds duration{10000};  // the measurement window
  // After the window: how long to wait for requests still in flight before giving up on them.
  std::chrono::milliseconds drain_timeout{35000};
  int64_t max_outstanding = 50000;  // open loop: starts beyond this many in flight are skipped
  int server_pid = 0;                // > 0: sample VmRSS and Threads of this process
  std::chrono::milliseconds sample_interval{100};
};

struct LatencySummary {
  int64_t count = 0;
  double mean_ms = 0, p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0;
};

// Nearest-rank percentiles of `values_ms` (sorted in place).
LatencySummary Summarize(std::vector<double>& values_ms);

struct RunReport {
  std::string target;        // LoadTarget::Describe()
  std::string load;          // "closed 64" or "open 1000/s"
  double window_s = 0;       // length of the measurement window
  int64_t ok = 0;            // requests started in the window that succeeded
  int64_t failed = 0;        // ... that failed
  std::map<std::string, int64_t> failures;  // code → count (window only)
  int64_t warmup_requests = 0;
  int64_t unfinished = 0;    // still in flight when the drain timeout expired
  double rps = 0;            // ok / window_s
  LatencySummary latency;    // start → end of stream, successful requests
  LatencySummary first_message;  // start → first message, successful requests
  double mean_messages = 0;  // messages per successful stream
  int64_t max_in_flight = 0;
  // Open loop only.
  double target_rate = 0;
  double achieved_rate = 0;  // starts in the window per second
  double max_start_lag_ms = 0;  // worst delay of a start behind its schedule
  int64_t late_starts = 0;      // starts more than 10 ms behind schedule
  int64_t skipped_starts = 0;   // not started because max_outstanding were in flight
  bool generator_behind = false;
  // With server_pid.
  int server_pid = 0;
  int64_t rss_kb_before = 0, rss_kb_max = 0;
  int threads_before = 0, threads_max = 0;
  int resource_samples = 0;
  double server_cpu_s = -1;                // user + system CPU over the run (-1: unknown)
  double server_cores = 0;                 // server_cpu_s / wall time of the run
  double server_cpu_ms_per_request = 0;    // server_cpu_s / requests finished in the run
  // Context switches (voluntary + involuntary, summed over the server's threads in
  // /proc/PID/task/*/status) during the run, per request finished; -1: unknown.
  double server_context_switches_per_request = -1;
};

RunReport RunLoad(LoadTarget& target, const RunOptions& options);

std::string FormatHuman(const RunReport& report);
// One line, no newline. `label` is copied into a "label" field (may be empty).
std::string FormatJson(const RunReport& report, const std::string& label);

}  // namespace vision_gateway::bench

#endif  // VISION_GATEWAY_BENCH_LOAD_RUNNER_H_
