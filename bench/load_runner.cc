#include "bench/load_runner.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/proc_status.h"

namespace vision_gateway::bench {
namespace {

constexpr auto kLateStart = std::chrono::milliseconds(10);

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// User + system CPU time of a process, from /proc/PID/stat; negative when unreadable.
double ReadProcessCpuSeconds(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) is in parentheses and may hold spaces: skip past the last ')'.
  const size_t paren = text.rfind(')');
  if (paren == std::string::npos) return -1;
  std::vector<std::string> fields = absl::StrSplit(text.substr(paren + 2), ' ');
  // Counting from field 3 (state) at index 0: utime is field 14, stime field 15.
  int64_t utime, stime;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return -1;
  }
  return static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
}

// Voluntary + involuntary context switches of every thread of `pid` so far; -1 when unreadable.
int64_t ReadProcessContextSwitches(int pid) {
  std::error_code ec;
  std::filesystem::directory_iterator tasks(absl::StrCat("/proc/", pid, "/task"), ec);
  if (ec) return -1;
  int64_t total = 0;
  for (const auto& task : tasks) {
    std::ifstream in(task.path() / "status");
    std::string line;
    while (std::getline(in, line)) {
      absl::string_view view(line);
      if (absl::ConsumePrefix(&view, "voluntary_ctxt_switches:") ||
          absl::ConsumePrefix(&view, "nonvoluntary_ctxt_switches:")) {
        int64_t n;
        if (absl::SimpleAtoi(absl::StripAsciiWhitespace(view), &n)) total += n;
      }
    }
  }
  return total;
}

// Shared by the generator and every completion callback; kept alive by the callbacks, so that a
// request finishing after the drain timeout still has somewhere to report to.
struct RunState {
  absl::Mutex mu;
  Clock::time_point window_start;
  Clock::time_point window_end;
  bool closed_loop = false;
  std::vector<Sample> samples ABSL_GUARDED_BY(mu);  // started in the window
  int64_t warmup ABSL_GUARDED_BY(mu) = 0;
  int64_t outstanding ABSL_GUARDED_BY(mu) = 0;
  int64_t max_outstanding_seen ABSL_GUARDED_BY(mu) = 0;
};

// Starts one request. `scheduled` (open loop) is when it was due: it decides whether the request
// belongs to the warm-up or the window, so that a late start never moves it out of its phase.
// Without it (closed loop) the actual start decides.
void StartOne(LoadTarget& target, const std::shared_ptr<RunState>& state,
              std::optional<Clock::time_point> scheduled) {
  {
    absl::MutexLock lock(&state->mu);
    ++state->outstanding;
    state->max_outstanding_seen = std::max(state->max_outstanding_seen, state->outstanding);
  }
  target.Start([&target, state, scheduled](const Sample& sample) {
    bool again = false;
    {
      absl::MutexLock lock(&state->mu);
      --state->outstanding;
      const Clock::time_point phase = scheduled.value_or(sample.start);
      if (phase < state->window_start) {
        ++state->warmup;
      } else if (phase < state->window_end) {
        state->samples.push_back(sample);
      }
      again = state->closed_loop && Clock::now() < state->window_end;
    }
    if (again) StartOne(target, state, std::nullopt);
  });
}

}  // namespace

LatencySummary Summarize(std::vector<double>& values_ms) {
  LatencySummary summary;
  summary.count = static_cast<int64_t>(values_ms.size());
  if (values_ms.empty()) return summary;
  std::sort(values_ms.begin(), values_ms.end());
  auto rank = [&](double p) {
    size_t index = static_cast<size_t>(std::ceil(p / 100.0 * values_ms.size()));
    return values_ms[std::clamp<size_t>(index, 1, values_ms.size()) - 1];
  };
  double sum = 0;
  for (double v : values_ms) sum += v;
  summary.mean_ms = sum / values_ms.size();
  summary.p50_ms = rank(50);
  summary.p90_ms = rank(90);
  summary.p99_ms = rank(99);
  summary.max_ms = values_ms.back();
  return summary;
}

RunReport RunLoad(LoadTarget& target, const RunOptions& options) {
  RunReport report;
  report.server_pid = options.server_pid;
  report.window_s = std::chrono::duration<double>(options.duration).count();
  const bool closed = options.concurrency > 0;
  report.load = closed ? absl::StrCat("closed loop, ", options.concurrency, " in flight")
                       : absl::StrFormat("open loop, %.0f starts/s", options.rate);

  // Resource sampler: a baseline before any load, then every sample_interval until told to stop.
  absl::Notification stop_sampling;
  std::thread sampler;
  ProcStatus before, peak;
  int samples = 0;
  double cpu_before = -1;
  int64_t switches_before = -1;
  int64_t switches_after = -1;
  if (options.server_pid > 0) {
    cpu_before = ReadProcessCpuSeconds(options.server_pid);
    switches_before = ReadProcessContextSwitches(options.server_pid);
    before = ReadProcStatus(options.server_pid);
    peak = before;
    samples = 1;
    sampler = std::thread([&] {
      while (!stop_sampling.WaitForNotificationWithTimeout(
          absl::FromChrono(options.sample_interval))) {
        ProcStatus now = ReadProcStatus(options.server_pid);
        if (now.rss_kb < 0) continue;
        peak.rss_kb = std::max(peak.rss_kb, now.rss_kb);
        peak.threads = std::max(peak.threads, now.threads);
        ++samples;
      }
    });
  }

  auto state = std::make_shared<RunState>();
  const Clock::time_point t0 = Clock::now();
  state->window_start = t0 + options.warmup;
  state->window_end = state->window_start + options.duration;
  state->closed_loop = closed;

  int64_t window_starts = 0;
  if (closed) {
    for (int i = 0; i < options.concurrency; ++i) StartOne(target, state, std::nullopt);
    std::this_thread::sleep_until(state->window_end);
  } else {
    report.target_rate = options.rate;
    const auto period = std::chrono::duration<double>(1.0 / options.rate);
    Clock::duration max_lag{0};
    for (int64_t i = 0;; ++i) {
      const Clock::time_point due =
          t0 + std::chrono::duration_cast<Clock::duration>(period * static_cast<double>(i));
      if (due >= state->window_end) break;
      Clock::time_point now = Clock::now();
      if (now < due) {
        std::this_thread::sleep_until(due);
        now = Clock::now();
      }
      const bool in_window = due >= state->window_start;
      if (in_window) {
        max_lag = std::max(max_lag, now - due);
        if (now - due > kLateStart) ++report.late_starts;
      }
      bool full;
      {
        absl::MutexLock lock(&state->mu);
        full = state->outstanding >= options.max_outstanding;
      }
      if (full) {
        if (in_window) ++report.skipped_starts;
        continue;
      }
      if (in_window) ++window_starts;
      StartOne(target, state, due);
    }
    report.max_start_lag_ms = Ms(max_lag);
    report.achieved_rate = window_starts / report.window_s;
    // Behind: fewer starts than scheduled, or a schedule that slipped noticeably.
    report.generator_behind = report.achieved_rate < 0.98 * options.rate ||
                              report.max_start_lag_ms > 100 || report.skipped_starts > 0;
  }

  // Drain: wait for everything in flight (no new starts happen after window_end).
  {
    absl::MutexLock lock(&state->mu);
    auto drained = [&state]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) {
      return state->outstanding == 0;
    };
    state->mu.AwaitWithTimeout(absl::Condition(&drained), absl::FromChrono(options.drain_timeout));
  }

  const double wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (sampler.joinable()) {
    stop_sampling.Notify();
    sampler.join();
  }
  if (options.server_pid > 0) {
    const double cpu_after = ReadProcessCpuSeconds(options.server_pid);
    switches_after = ReadProcessContextSwitches(options.server_pid);
    if (cpu_before >= 0 && cpu_after >= cpu_before) {
      report.server_cpu_s = cpu_after - cpu_before;
      report.server_cores = report.server_cpu_s / wall_s;
    }
  }
  report.rss_kb_before = before.rss_kb;
  report.rss_kb_max = peak.rss_kb;
  report.threads_before = before.threads;
  report.threads_max = peak.threads;
  report.resource_samples = samples;

  std::vector<double> latency, first;
  int64_t messages = 0;
  {
    absl::MutexLock lock(&state->mu);
    report.unfinished = state->outstanding;
    report.warmup_requests = state->warmup;
    report.max_in_flight = state->max_outstanding_seen;
    for (const Sample& sample : state->samples) {
      if (!sample.error.empty()) {
        ++report.failed;
        ++report.failures[sample.error];
        continue;
      }
      ++report.ok;
      messages += sample.messages;
      latency.push_back(Ms(sample.end - sample.start));
      if (sample.got_first) first.push_back(Ms(sample.first - sample.start));
    }
  }
  report.target = target.Describe();  // after the run: it may report what the run used
  report.rps = report.ok / report.window_s;
  report.mean_messages = report.ok > 0 ? static_cast<double>(messages) / report.ok : 0;
  const int64_t finished = report.warmup_requests + report.ok + report.failed;
  if (report.server_cpu_s >= 0 && finished > 0) {
    report.server_cpu_ms_per_request = report.server_cpu_s * 1000 / finished;
  }
  if (switches_before >= 0 && switches_after >= switches_before && finished > 0) {
    report.server_context_switches_per_request =
        static_cast<double>(switches_after - switches_before) / finished;
  }
  report.latency = Summarize(latency);
  report.first_message = Summarize(first);
  return report;
}

std::string FormatHuman(const RunReport& r) {
  std::string out;
  absl::StrAppendFormat(&out, "target:   %s\n", r.target);
  absl::StrAppendFormat(&out, "load:     %s, window %.1f s (after warm-up)\n", r.load, r.window_s);
  absl::StrAppendFormat(&out, "requests: %d ok, %d failed, %d unfinished, %d during warm-up\n",
                        r.ok, r.failed, r.unfinished, r.warmup_requests);
  for (const auto& [code, count] : r.failures) {
    absl::StrAppendFormat(&out, "          %-22s %d\n", code, count);
  }
  absl::StrAppendFormat(&out, "rate:     %.1f ok/s, max in flight %d, %.1f messages/stream\n",
                        r.rps, r.max_in_flight, r.mean_messages);
  absl::StrAppendFormat(&out,
                        "latency:  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  "
                        "(mean %.2f, start -> end of stream)\n",
                        r.latency.p50_ms, r.latency.p90_ms, r.latency.p99_ms, r.latency.max_ms,
                        r.latency.mean_ms);
  absl::StrAppendFormat(&out, "first:    p50 %.2f ms  p99 %.2f ms  (start -> first message)\n",
                        r.first_message.p50_ms, r.first_message.p99_ms);
  if (r.target_rate > 0) {
    absl::StrAppendFormat(&out,
                          "generator: target %.1f/s, achieved %.1f/s, max start lag %.2f ms, "
                          "%d starts >10 ms late, %d skipped%s\n",
                          r.target_rate, r.achieved_rate, r.max_start_lag_ms, r.late_starts,
                          r.skipped_starts,
                          r.generator_behind ? "  ** GENERATOR FELL BEHIND: results understate "
                                               "the intended load **"
                                             : "");
  }
  if (r.server_pid > 0) {
    absl::StrAppendFormat(&out,
                          "server:   pid %d  RSS %.1f MiB before, max %.1f MiB;  threads %d "
                          "before, max %d  (%d samples)\n",
                          r.server_pid, r.rss_kb_before / 1024.0, r.rss_kb_max / 1024.0,
                          r.threads_before, r.threads_max, r.resource_samples);
    if (r.server_cpu_s >= 0) {
      absl::StrAppendFormat(&out,
                            "          CPU %.2f s over the run = %.2f cores on average, %.3f ms "
                            "per request\n",
                            r.server_cpu_s, r.server_cores, r.server_cpu_ms_per_request);
    }
    if (r.server_context_switches_per_request >= 0) {
      absl::StrAppendFormat(&out, "          %.1f context switches per request (all threads)\n",
                            r.server_context_switches_per_request);
    }
  }
  return out;
}

std::string FormatJson(const RunReport& r, const std::string& label) {
  auto quote = [](const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') out += '\\';
      if (static_cast<unsigned char>(c) < 0x20) continue;
      out += c;
    }
    return out + "\"";
  };
  auto latency = [](const LatencySummary& l) {
    return absl::StrFormat(
        R"({"count":%d,"mean_ms":%.3f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f})",
        l.count, l.mean_ms, l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms);
  };
  std::string failures = "{";
  for (const auto& [code, count] : r.failures) {
    if (failures.size() > 1) failures += ",";
    absl::StrAppend(&failures, quote(code), ":", count);
  }
  failures += "}";
  std::string out = absl::StrCat("{\"label\":", quote(label), ",\"target\":", quote(r.target),
                                 ",\"load\":", quote(r.load));
  absl::StrAppendFormat(&out,
                        ",\"window_s\":%.3f,\"ok\":%d,\"failed\":%d,\"failures\":%s,"
                        "\"unfinished\":%d,\"warmup_requests\":%d,\"rps\":%.2f,"
                        "\"max_in_flight\":%d,\"mean_messages\":%.2f",
                        r.window_s, r.ok, r.failed, failures, r.unfinished, r.warmup_requests,
                        r.rps, r.max_in_flight, r.mean_messages);
  absl::StrAppend(&out, ",\"latency\":", latency(r.latency),
                  ",\"first_message\":", latency(r.first_message));
  if (r.target_rate > 0) {
    absl::StrAppendFormat(&out,
                          ",\"generator\":{\"target_rate\":%.2f,\"achieved_rate\":%.2f,"
                          "\"max_start_lag_ms\":%.3f,\"late_starts\":%d,\"skipped_starts\":%d,"
                          "\"behind\":%s}",
                          r.target_rate, r.achieved_rate, r.max_start_lag_ms, r.late_starts,
                          r.skipped_starts, r.generator_behind ? "true" : "false");
  }
  if (r.server_pid > 0) {
    absl::StrAppendFormat(&out,
                          ",\"server\":{\"pid\":%d,\"rss_kb_before\":%d,\"rss_kb_max\":%d,"
                          "\"threads_before\":%d,\"threads_max\":%d,\"samples\":%d,"
                          "\"cpu_s\":%.3f,\"cores\":%.3f,\"cpu_ms_per_request\":%.4f,"
                          "\"context_switches_per_request\":%.2f}",
                          r.server_pid, r.rss_kb_before, r.rss_kb_max, r.threads_before,
                          r.threads_max, r.resource_samples, r.server_cpu_s, r.server_cores,
                          r.server_cpu_ms_per_request, r.server_context_switches_per_request);
  }
  out += "}";
  return out;
}

}  // namespace vision_gateway::bench
