#include "service/metrics/prometheus_telemetry.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace vision_gateway::metrics {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

constexpr int kNumCodes = 17;

// Abseil's string_view is its own type in this build.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }
constexpr char kUnknown[] = "unknown";
constexpr char kUpstreamAuthFailed[] = "UPSTREAM_AUTH_FAILED";
// Callers kept apart in the per-caller metrics; later ones count as "other".
constexpr int kMaxCallers = 256;
constexpr char kOtherCaller[] = "other";
// Upstream operations whose series exist from the start (for the first known model).
constexpr const char* kInitialOperations[] = {"streamGenerateContent", "generateContent",
                                              "countTokens"};

// Whole calls: from a few ms (validation errors) to minutes (long generations).
const Histogram::BucketBoundaries& CallBuckets() {
  static const auto* const buckets = new Histogram::BucketBoundaries{
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
  return *buckets;
}

// The gateway's own time per call: tens of microseconds to a second.
const Histogram::BucketBoundaries& OverheadBuckets() {
  static const auto* const buckets = new Histogram::BucketBoundaries{
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
  return *buckets;
}

int CodeIndex(absl::StatusCode code) {
  const int index = static_cast<int>(code);
  return index >= 0 && index < kNumCodes ? index : static_cast<int>(absl::StatusCode::kUnknown);
}

std::string RpcTypeLabel(telemetry::RpcType type) {
  return std::string(telemetry::RpcTypeName(type));
}

// "/pkg.Service/Method" -> {"pkg.Service", "Method"}; nullopt when not of that shape or unsafe.
bool SplitMethod(std::string_view full, std::string* service, std::string* method) {
  if (full.empty() || full.front() != '/' || full.size() > 256) return false;
  full.remove_prefix(1);
  const std::size_t slash = full.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == full.size()) return false;
  for (const char c : full) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '/';
    if (!ok) return false;
  }
  *service = std::string(full.substr(0, slash));
  *method = std::string(full.substr(slash + 1));
  return method->find('/') == std::string::npos;
}

// An ErrorInfo reason as a label: UPPER_SNAKE, bounded.
bool IsReasonLabel(std::string_view reason) {
  if (reason.empty() || reason.size() > 64) return false;
  for (const char c : reason) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

// Process metrics, read from /proc at collection time (the names the Go and Python clients use).
std::vector<prometheus::MetricFamily> ProcessFamilies() {
  std::vector<prometheus::MetricFamily> out;
  auto add = [&](const char* name, const char* help, prometheus::MetricType type, double value) {
    prometheus::MetricFamily family;
    family.name = name;
    family.help = help;
    family.type = type;
    prometheus::ClientMetric metric;
    if (type == prometheus::MetricType::Counter) {
      metric.counter.value = value;
    } else {
      metric.gauge.value = value;
    }
    family.metric.push_back(std::move(metric));
    out.push_back(std::move(family));
  };
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // Fields after the command (which is in parentheses and may hold spaces).
  const std::size_t close = stat.rfind(')');
  if (close != std::string::npos) {
    std::vector<absl::string_view> fields =
        absl::StrSplit(absl::string_view(stat).substr(close + 2), ' ', absl::SkipEmpty());
    // fields[0] is field 3 (state): field N is fields[N - 3].
    auto field = [&](int n) -> double {
      double value = 0;
      if (n - 3 < static_cast<int>(fields.size())) {
        (void)absl::SimpleAtod(fields[n - 3], &value);
      }
      return value;
    };
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    add("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
        prometheus::MetricType::Counter, (field(14) + field(15)) / ticks);
    add("process_threads", "Number of OS threads in the process.", prometheus::MetricType::Gauge,
        field(20));
    add("process_virtual_memory_bytes", "Virtual memory size in bytes.",
        prometheus::MetricType::Gauge, field(23));
    add("process_resident_memory_bytes", "Resident memory size in bytes.",
        prometheus::MetricType::Gauge, field(24) * page);
    double boot_time = 0;
    std::ifstream proc_stat("/proc/stat");
    for (std::string line; std::getline(proc_stat, line);) {
      if (line.rfind("btime ", 0) == 0) (void)absl::SimpleAtod(line.substr(6), &boot_time);
    }
    add("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
        prometheus::MetricType::Gauge, boot_time + field(22) / ticks);
  }
  std::error_code error;
  double fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", error);
       !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
    ++fds;
  }
  add("process_open_fds", "Number of open file descriptors.", prometheus::MetricType::Gauge, fds);
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    add("process_max_fds", "Maximum number of open file descriptors.",
        prometheus::MetricType::Gauge, static_cast<double>(limit.rlim_cur));
  }
  return out;
}

}  // namespace

class PrometheusTelemetry::Impl {
 public:
  class MethodMetrics final : public telemetry::RpcMetrics {
   public:
    MethodMetrics(Impl& impl, const std::string& type, const std::string& service,
                  const std::string& method)
        : impl_(impl), method_label_(method) {
      const prometheus::Labels labels{
          {"grpc_type", type}, {"grpc_service", service}, {"grpc_method", method}};
      started_ = &impl.started_.Add(labels);
      received_ = &impl.received_.Add(labels);
      sent_ = &impl.sent_.Add(labels);
      seconds_ = &impl.seconds_.Add(labels, CallBuckets());
      for (int code = 0; code < kNumCodes; ++code) {
        prometheus::Labels with_code = labels;
        with_code["grpc_code"] =
            std::string(telemetry::GrpcCodeName(static_cast<absl::StatusCode>(code)));
        handled_[code] = &impl.handled_.Add(with_code);
      }
      overhead_ = &impl.overhead_.Add({{"grpc_method", method}}, OverheadBuckets());
      objects_ = &impl.objects_.Add({{"grpc_method", method}});
      // The reason alerts watch starts at 0, so that increase() sees its first occurrence.
      // (The caller holds impl.mu_.)
      impl.errors_by_key_.emplace(
          absl::StrCat(method, "/", kUpstreamAuthFailed),
          &impl.errors_.Add({{"grpc_method", method}, {"reason", kUpstreamAuthFailed}}));
      for (int r = 0; r < telemetry::kNumDropReasons; ++r) {
        dropped_[r] = &impl.dropped_.Add(
            {{"grpc_method", method},
             {"reason", std::string(telemetry::DropReasonName(static_cast<telemetry::DropReason>(r)))}});
      }
    }

    void Started() override { started_->Increment(); }
    void MessageReceived() override { received_->Increment(); }
    void MessageSent() override { sent_->Increment(); }
    void Handled(absl::StatusCode code, absl::Duration duration) override {
      handled_[CodeIndex(code)]->Increment();
      seconds_->Observe(absl::ToDoubleSeconds(duration));
    }
    void GatewayOverhead(absl::Duration overhead) override {
      overhead_->Observe(absl::ToDoubleSeconds(overhead));
    }
    void ObjectsEmitted(int64_t count) override {
      if (count > 0) objects_->Increment(static_cast<double>(count));
    }
    void ItemsDropped(telemetry::DropReason reason, int64_t count) override {
      if (count > 0) dropped_[static_cast<int>(reason)]->Increment(static_cast<double>(count));
    }
    void ErrorReason(std::string_view reason) override { impl_.ErrorReason(method_label_, reason); }
    void CallerDone(std::string_view caller, absl::StatusCode code,
                    const std::array<int64_t, telemetry::kNumTokenKinds>& tokens) override {
      impl_.CallerDone(method_label_, caller, code, tokens);
    }

   private:
    Impl& impl_;
    const std::string method_label_;
    Counter* started_;
    Counter* received_;
    Counter* sent_;
    Histogram* seconds_;
    std::array<Counter*, kNumCodes> handled_;
    Histogram* overhead_;
    Counter* objects_;
    std::array<Counter*, telemetry::kNumDropReasons> dropped_;
  };

  struct UpstreamMetrics {
    std::array<Counter*, kNumCodes> requests{};
    Histogram* seconds = nullptr;
    Histogram* first_byte = nullptr;
  };

  // Scrape-time values: probes and process metrics.
  class Sampled final : public prometheus::Collectable {
   public:
    std::vector<prometheus::MetricFamily> Collect() const override {
      std::vector<prometheus::MetricFamily> out = ProcessFamilies();
      absl::MutexLock lock(&mu_);
      auto gauge = [&](const char* name, const char* help, double value) {
        prometheus::MetricFamily family{name, help, prometheus::MetricType::Gauge, {}};
        prometheus::ClientMetric metric;
        metric.gauge.value = value;
        family.metric.push_back(std::move(metric));
        out.push_back(std::move(family));
      };
      const auto& queued = probes_[static_cast<int>(Probe::kQueuedCpuWork)];
      gauge("vision_gateway_cpu_work_queued",
            "Image preparation work waiting for a CPU pool thread.", queued ? queued() : 0);
      const auto& limit = probes_[static_cast<int>(Probe::kConcurrencyLimit)];
      gauge("vision_gateway_concurrency_limit",
            "Most calls served at once (--max_concurrent_calls); 0 when unlimited.",
            limit ? limit() : 0);
      const auto& unlisted = probes_[static_cast<int>(Probe::kUnlistedConfiguredModels)];
      gauge("vision_gateway_configured_models_unlisted",
            "Models the configuration names (--default_model, --segment_model, "
            "--allowed_models) that Gemini's models list does not hold (retired or unknown).",
            unlisted ? unlisted() : 0);
      return out;
    }
    void Set(Probe probe, std::function<double()> read) {
      absl::MutexLock lock(&mu_);
      probes_[static_cast<int>(probe)] = std::move(read);
    }

   private:
    mutable absl::Mutex mu_;
    std::array<std::function<double()>, 3> probes_ ABSL_GUARDED_BY(mu_);
  };

  explicit Impl(PrometheusOptions options)
      : options_(std::move(options)),
        known_models_(options_.known_models.begin(), options_.known_models.end()),
        registry_(std::make_shared<prometheus::Registry>()),
        sampled_(std::make_shared<Sampled>()),
        started_(prometheus::BuildCounter()
                     .Name("grpc_server_started_total")
                     .Help("Total number of RPCs started on the server.")
                     .Register(*registry_)),
        handled_(prometheus::BuildCounter()
                     .Name("grpc_server_handled_total")
                     .Help("Total number of RPCs completed on the server, regardless of success "
                           "or failure.")
                     .Register(*registry_)),
        seconds_(prometheus::BuildHistogram()
                     .Name("grpc_server_handling_seconds")
                     .Help("Histogram of response latency (seconds) of gRPC that had been "
                           "application-level handled by the server.")
                     .Register(*registry_)),
        received_(prometheus::BuildCounter()
                      .Name("grpc_server_msg_received_total")
                      .Help("Total number of RPC stream messages received on the server.")
                      .Register(*registry_)),
        sent_(prometheus::BuildCounter()
                  .Name("grpc_server_msg_sent_total")
                  .Help("Total number of gRPC stream messages sent by the server.")
                  .Register(*registry_)),
        overhead_(prometheus::BuildHistogram()
                      .Name("vision_gateway_overhead_seconds")
                      .Help("Time a call spent in the gateway itself: its duration minus the time "
                            "waiting on Gemini.")
                      .Register(*registry_)),
        objects_(prometheus::BuildCounter()
                     .Name("vision_gateway_objects_emitted_total")
                     .Help("Objects (detections, masks) streamed to callers.")
                     .Register(*registry_)),
        dropped_(prometheus::BuildCounter()
                     .Name("vision_gateway_items_dropped_total")
                     .Help("Items of the model's answer that were not usable, by reason.")
                     .Register(*registry_)),
        errors_(prometheus::BuildCounter()
                    .Name("vision_gateway_errors_total")
                    .Help("Failed calls by ErrorInfo reason (domain vision-gateway).")
                    .Register(*registry_)),
        upstream_requests_(prometheus::BuildCounter()
                               .Name("vision_gateway_upstream_requests_total")
                               .Help("HTTP requests to Gemini by operation, model and outcome "
                                     "(gRPC code name; an HTTP 429 is ResourceExhausted).")
                               .Register(*registry_)),
        upstream_seconds_(prometheus::BuildHistogram()
                              .Name("vision_gateway_upstream_request_seconds")
                              .Help("Latency of HTTP requests to Gemini, to the end of the answer.")
                              .Register(*registry_)),
        upstream_first_byte_(prometheus::BuildHistogram()
                                 .Name("vision_gateway_upstream_first_byte_seconds")
                                 .Help("Time from an HTTP request to Gemini to its first answer "
                                       "data (first stream chunk).")
                                 .Register(*registry_)),
        retries_(prometheus::BuildCounter()
                     .Name("vision_gateway_upstream_retries_total")
                     .Help("Retries of requests to Gemini.")
                     .Register(*registry_)),
        backoff_(prometheus::BuildCounter()
                     .Name("vision_gateway_upstream_retry_backoff_seconds_total")
                     .Help("Time spent waiting before retries of requests to Gemini.")
                     .Register(*registry_)),
        tokens_(prometheus::BuildCounter()
                    .Name("vision_gateway_tokens_total")
                    .Help("Tokens Gemini reported, by model and kind (prompt, output, thinking).")
                    .Register(*registry_)),
        reroutes_(prometheus::BuildCounter()
                      .Name("vision_gateway_model_reroutes_total")
                      .Help("Calls Gemini answered with a model of another family than the one "
                            "asked for (modelVersion), by requested and served model.")
                      .Register(*registry_)),
        caller_calls_(prometheus::BuildCounter()
                          .Name("vision_gateway_caller_calls_total")
                          .Help("Calls of authenticated callers by method and code.")
                          .Register(*registry_)),
        caller_tokens_(prometheus::BuildCounter()
                           .Name("vision_gateway_caller_tokens_total")
                           .Help("Tokens Gemini reported for authenticated callers' calls, by kind.")
                           .Register(*registry_)),
        in_flight_(prometheus::BuildGauge()
                       .Name("vision_gateway_calls_in_flight")
                       .Help("gRPC calls being served (health checks not included).")
                       .Register(*registry_)
                       .Add({})),
        upload_bytes_(prometheus::BuildCounter()
                          .Name("vision_gateway_upload_bytes_total")
                          .Help("Bytes of files uploaded to Gemini.")
                          .Register(*registry_)
                          .Add({})),
        result_cache_(prometheus::BuildCounter()
                          .Name("vision_gateway_result_cache_events_total")
                          .Help("What the result cache did, by task (caption, detect, segment) "
                                "and event: hit, coalesced (shared a call in flight), miss, "
                                "bypass, refresh, store, too_large (not stored), error (the "
                                "store failed or was slow; the call went on without it).")
                          .Register(*registry_)),
        batch_(prometheus::BuildCounter()
                   .Name("vision_gateway_batch_events_total")
                   .Help("Batch jobs (#20) by task, model and event: job_created, item (items "
                         "in created jobs), result_line (items read back), item_failed (items "
                         "read back as an error).")
                   .Register(*registry_)) {
    registry_shared_ = registry_;
    // Series at 0 from the start (as go-grpc-prometheus's InitializeMetrics does for methods), so
    // that dashboards show them and rate()/increase() count their first events.
    if (!options_.known_models.empty()) {
      const std::string& model = options_.known_models.front();
      for (const char* operation : kInitialOperations) {
        Upstream(operation, model);
        UpstreamRetryCounters(operation);
      }
      TokenCounters(ModelLabel(model));
    }
  }

  ~Impl() {
    // Stop serving before the metrics go away.
    exposer_.reset();
  }

  // Called once per gRPC call: a shared lock and a lookup by the method's name, no allocation.
  MethodMetrics& Rpc(std::string_view full_method, telemetry::RpcType type) {
    const int type_index = static_cast<int>(type);
    {
      absl::ReaderMutexLock lock(&mu_);
      auto it = methods_[type_index].find(Sv(full_method));
      if (it != methods_[type_index].end()) return *it->second;
    }
    absl::MutexLock lock(&mu_);
    auto& by_name = methods_[type_index];
    auto it = by_name.find(Sv(full_method));
    if (it != by_name.end()) return *it->second;
    std::string service;
    std::string method;
    if (method_count_ >= options_.max_methods || !SplitMethod(full_method, &service, &method)) {
      // Folded methods are not remembered by name (that would be unbounded): each of their calls
      // takes this exclusive path.
      auto& unknown = unknown_methods_[type_index];
      if (!unknown) {
        unknown = std::make_unique<MethodMetrics>(*this, RpcTypeLabel(type), kUnknown, kUnknown);
      }
      return *unknown;
    }
    auto& entry = by_name[std::string(full_method)];
    entry = std::make_unique<MethodMetrics>(*this, RpcTypeLabel(type), service, method);
    ++method_count_;
    return *entry;
  }

  void ErrorReason(const std::string& method, std::string_view reason) {
    const std::string reason_label = IsReasonLabel(reason) ? std::string(reason) : "OTHER";
    const std::string key = absl::StrCat(method, "/", reason_label);
    absl::MutexLock lock(&mu_);
    auto it = errors_by_key_.find(key);
    if (it == errors_by_key_.end()) {
      if (static_cast<int>(errors_by_key_.size()) >= options_.max_methods * 4) {
        const std::string other_key = absl::StrCat(method, "/OTHER");
        it = errors_by_key_.find(other_key);
        if (it == errors_by_key_.end()) {
          it = errors_by_key_
                   .emplace(other_key, &errors_.Add({{"grpc_method", method}, {"reason", "OTHER"}}))
                   .first;
        }
      } else {
        it = errors_by_key_
                 .emplace(key, &errors_.Add({{"grpc_method", method}, {"reason", reason_label}}))
                 .first;
      }
    }
    it->second->Increment();
  }

  struct CallerMetrics {
    // By method label, then by code (null until first used).
    absl::flat_hash_map<std::string, std::array<Counter*, kNumCodes>> calls;
    std::array<Counter*, telemetry::kNumTokenKinds> tokens{};
  };

  void CallerDone(const std::string& method, std::string_view caller, absl::StatusCode code,
                  const std::array<int64_t, telemetry::kNumTokenKinds>& tokens) {
    caller = caller.substr(0, 64);
    const int code_index = CodeIndex(code);
    Counter* calls = nullptr;
    std::array<Counter*, telemetry::kNumTokenKinds> token_counters;
    {
      // Every call of a known caller: a shared lock and lookups, no allocation.
      absl::ReaderMutexLock lock(&mu_);
      if (auto it = callers_.find(Sv(caller)); it != callers_.end()) {
        if (auto by_method = it->second->calls.find(method);
            by_method != it->second->calls.end()) {
          calls = by_method->second[code_index];
          token_counters = it->second->tokens;
        }
      }
    }
    if (calls == nullptr) {
      std::string label(caller);
      const std::string code_name(telemetry::GrpcCodeName(static_cast<absl::StatusCode>(code_index)));
      absl::MutexLock lock(&mu_);
      if (!callers_.contains(label) && static_cast<int>(callers_.size()) >= kMaxCallers) {
        label = kOtherCaller;
      }
      auto& entry = callers_[label];
      if (!entry) {
        entry = std::make_unique<CallerMetrics>();
        for (int k = 0; k < telemetry::kNumTokenKinds; ++k) {
          entry->tokens[k] = &caller_tokens_.Add(
              {{"caller", label},
               {"kind", std::string(telemetry::TokenKindName(static_cast<telemetry::TokenKind>(k)))}});
        }
      }
      auto [by_method, added] = entry->calls.try_emplace(method);
      if (added) by_method->second.fill(nullptr);
      Counter*& counter = by_method->second[code_index];
      if (counter == nullptr) {
        counter = &caller_calls_.Add(
            {{"caller", label}, {"grpc_method", method}, {"grpc_code", code_name}});
      }
      calls = counter;
      token_counters = entry->tokens;
    }
    calls->Increment();
    for (int k = 0; k < telemetry::kNumTokenKinds; ++k) {
      if (tokens[k] > 0) token_counters[k]->Increment(static_cast<double>(tokens[k]));
    }
  }

  // The `model` label of `model`: a known model's name, "other" or "none" (a view of storage
  // that lives as long as this).
  std::string_view ModelLabel(std::string_view model) const {
    if (model.starts_with("models/")) model.remove_prefix(7);
    if (model.empty()) return "none";
    auto it = known_models_.find(Sv(model));
    return it != known_models_.end() ? std::string_view(*it) : kOtherModel;
  }

  // Called for every upstream exchange: a shared lock and lookups, no allocation.
  UpstreamMetrics& Upstream(std::string_view operation, std::string_view model) {
    const std::string_view model_label = ModelLabel(model);
    const std::string_view op = operation.substr(0, 64);
    {
      absl::ReaderMutexLock lock(&mu_);
      if (auto by_op = upstream_.find(Sv(op)); by_op != upstream_.end()) {
        if (auto it = by_op->second.find(Sv(model_label)); it != by_op->second.end()) {
          return *it->second;
        }
      }
    }
    absl::MutexLock lock(&mu_);
    auto& entry = upstream_[std::string(op)][std::string(model_label)];
    if (!entry) {
      entry = std::make_unique<UpstreamMetrics>();
      const prometheus::Labels labels{{"operation", std::string(op)},
                                      {"model", std::string(model_label)}};
      for (int code = 0; code < kNumCodes; ++code) {
        prometheus::Labels with_outcome = labels;
        with_outcome["outcome"] =
            std::string(telemetry::GrpcCodeName(static_cast<absl::StatusCode>(code)));
        entry->requests[code] = &upstream_requests_.Add(with_outcome);
      }
      entry->seconds = &upstream_seconds_.Add(labels, CallBuckets());
      entry->first_byte = &upstream_first_byte_.Add(labels, CallBuckets());
    }
    return *entry;
  }

  void UpstreamAttemptDone(const telemetry::UpstreamAttempt& attempt) {
    UpstreamMetrics& m = Upstream(attempt.operation, attempt.model);
    m.requests[CodeIndex(attempt.code)]->Increment();
    m.seconds->Observe(absl::ToDoubleSeconds(attempt.latency));
    if (attempt.time_to_first_byte >= absl::ZeroDuration()) {
      m.first_byte->Observe(absl::ToDoubleSeconds(attempt.time_to_first_byte));
    }
  }

  std::pair<Counter*, Counter*> UpstreamRetryCounters(std::string_view operation) {
    const std::string op(operation.substr(0, 64));
    absl::MutexLock lock(&mu_);
    auto& entry = retries_by_operation_[op];
    if (entry.first == nullptr) {
      entry.first = &retries_.Add({{"operation", op}});
      entry.second = &backoff_.Add({{"operation", op}});
    }
    return entry;
  }

  void UpstreamRetry(std::string_view operation, absl::Duration backoff) {
    auto [retries, backoff_seconds] = UpstreamRetryCounters(operation);
    retries->Increment();
    backoff_seconds->Increment(std::max(0.0, absl::ToDoubleSeconds(backoff)));
  }

  std::array<Counter*, telemetry::kNumTokenKinds> TokenCounters(std::string_view model_label) {
    {
      absl::ReaderMutexLock lock(&mu_);
      auto it = tokens_by_model_.find(Sv(model_label));
      if (it != tokens_by_model_.end()) return it->second;
    }
    absl::MutexLock lock(&mu_);
    auto& entry = tokens_by_model_[std::string(model_label)];
    if (entry[0] == nullptr) {
      for (int k = 0; k < telemetry::kNumTokenKinds; ++k) {
        entry[k] = &tokens_.Add(
            {{"model", std::string(model_label)},
             {"kind", std::string(telemetry::TokenKindName(static_cast<telemetry::TokenKind>(k)))}});
      }
    }
    return entry;
  }

  void Tokens(std::string_view model, telemetry::TokenKind kind, int64_t count) {
    if (count <= 0) return;
    TokenCounters(ModelLabel(model))[static_cast<int>(kind)]->Increment(
        static_cast<double>(count));
  }

  // Series appear on first use (a server without a result cache shows none).
  void ResultCache(std::string_view task, telemetry::CacheEvent event) {
    static constexpr std::array<std::string_view, 3> kTasks = {"caption", "detect", "segment"};
    std::size_t t = 0;
    while (t < kTasks.size() && kTasks[t] != task) ++t;  // kTasks.size(): "other"
    const int e = static_cast<int>(event);
    Counter* counter;
    {
      absl::MutexLock lock(&cache_mu_);
      counter = result_cache_counters_[t][e];
      if (counter == nullptr) {
        counter = result_cache_counters_[t][e] = &result_cache_.Add(
            {{"task", t < kTasks.size() ? std::string(kTasks[t]) : "other"},
             {"event", std::string(telemetry::CacheEventName(event))}});
      }
    }
    counter->Increment();
  }

  void Batch(std::string_view task, std::string_view model, telemetry::BatchEvent event,
             int64_t count) {
    if (count <= 0) return;
    static constexpr std::array<std::string_view, 3> kTasks = {"caption", "detect", "segment"};
    const bool known = std::find(kTasks.begin(), kTasks.end(), task) != kTasks.end();
    absl::MutexLock lock(&mu_);
    batch_.Add({{"task", known ? std::string(task) : "other"},
                {"model", std::string(ModelLabel(model))},
                {"event", std::string(telemetry::BatchEventName(event))}})
        .Increment(static_cast<double>(count));
  }

  void ModelRerouted(std::string_view requested, std::string_view served) {
    absl::MutexLock lock(&mu_);
    reroutes_.Add({{"requested", std::string(ModelLabel(requested))},
                   {"served", std::string(ModelLabel(served))}})
        .Increment();
  }

  std::vector<prometheus::MetricFamily> CollectAll() const {
    std::vector<prometheus::MetricFamily> families = registry_->Collect();
    std::vector<prometheus::MetricFamily> sampled = sampled_->Collect();
    families.insert(families.end(), std::make_move_iterator(sampled.begin()),
                    std::make_move_iterator(sampled.end()));
    return families;
  }

  absl::Status StartHttp(const std::string& listen_address) {
    if (exposer_) return absl::FailedPreconditionError("metrics endpoint already started");
    try {
      exposer_ = std::make_unique<prometheus::Exposer>(listen_address, /*num_threads=*/1);
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("cannot serve metrics on ", listen_address, ": ", e.what()));
    }
    exposer_->RegisterCollectable(registry_shared_);
    exposer_->RegisterCollectable(sampled_);
    const std::vector<int> ports = exposer_->GetListeningPorts();
    if (ports.empty()) {
      exposer_.reset();
      return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", listen_address));
    }
    port_ = ports.front();
    return absl::OkStatus();
  }

  const PrometheusOptions options_;
  const absl::flat_hash_set<std::string> known_models_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<prometheus::Collectable> registry_shared_;
  std::shared_ptr<Sampled> sampled_;
  Family<Counter>& started_;
  Family<Counter>& handled_;
  Family<Histogram>& seconds_;
  Family<Counter>& received_;
  Family<Counter>& sent_;
  Family<Histogram>& overhead_;
  Family<Counter>& objects_;
  Family<Counter>& dropped_;
  Family<Counter>& errors_;
  Family<Counter>& upstream_requests_;
  Family<Histogram>& upstream_seconds_;
  Family<Histogram>& upstream_first_byte_;
  Family<Counter>& retries_;
  Family<Counter>& backoff_;
  Family<Counter>& tokens_;
  Family<Counter>& reroutes_;
  Family<Counter>& caller_calls_;
  Family<Counter>& caller_tokens_;
  Gauge& in_flight_;
  Counter& upload_bytes_;
  Family<Counter>& result_cache_;
  Family<Counter>& batch_;
  absl::Mutex cache_mu_;
  // By task (caption, detect, segment, other), then by telemetry::CacheEvent.
  std::array<std::array<Counter*, telemetry::kNumCacheEvents>, 4> result_cache_counters_
      ABSL_GUARDED_BY(cache_mu_){};

  absl::Mutex mu_;
  // By RpcType, then by "/pkg.Service/Method".
  std::array<absl::flat_hash_map<std::string, std::unique_ptr<MethodMetrics>>, 4> methods_
      ABSL_GUARDED_BY(mu_);
  std::array<std::unique_ptr<MethodMetrics>, 4> unknown_methods_ ABSL_GUARDED_BY(mu_);
  int method_count_ ABSL_GUARDED_BY(mu_) = 0;
  // By operation, then by model label.
  absl::flat_hash_map<std::string,
                      absl::flat_hash_map<std::string, std::unique_ptr<UpstreamMetrics>>>
      upstream_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Counter*> errors_by_key_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::pair<Counter*, Counter*>> retries_by_operation_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::array<Counter*, telemetry::kNumTokenKinds>>
      tokens_by_model_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::unique_ptr<CallerMetrics>> callers_ ABSL_GUARDED_BY(mu_);

  std::unique_ptr<prometheus::Exposer> exposer_;
  std::atomic<int> port_{0};
};

PrometheusTelemetry::PrometheusTelemetry(PrometheusOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

PrometheusTelemetry::~PrometheusTelemetry() = default;

absl::Status PrometheusTelemetry::StartHttp(const std::string& listen_address) {
  return impl_->StartHttp(listen_address);
}

int PrometheusTelemetry::port() const { return impl_->port_.load(); }

std::string PrometheusTelemetry::Scrape() const {
  return prometheus::TextSerializer().Serialize(impl_->CollectAll());
}

telemetry::RpcMetrics& PrometheusTelemetry::Rpc(std::string_view full_method,
                                                telemetry::RpcType type) {
  return impl_->Rpc(full_method, type);
}

void PrometheusTelemetry::CallsInFlight(int delta) { impl_->in_flight_.Increment(delta); }

void PrometheusTelemetry::UpstreamAttemptDone(const telemetry::UpstreamAttempt& attempt) {
  impl_->UpstreamAttemptDone(attempt);
}

void PrometheusTelemetry::UpstreamRetry(std::string_view operation, absl::Duration backoff) {
  impl_->UpstreamRetry(operation, backoff);
}

void PrometheusTelemetry::Tokens(std::string_view model, telemetry::TokenKind kind,
                                 int64_t count) {
  impl_->Tokens(model, kind, count);
}

void PrometheusTelemetry::ModelRerouted(std::string_view requested, std::string_view served) {
  impl_->ModelRerouted(requested, served);
}

void PrometheusTelemetry::Batch(std::string_view task, std::string_view model,
                                telemetry::BatchEvent event, int64_t count) {
  impl_->Batch(task, model, event, count);
}

void PrometheusTelemetry::ResultCache(std::string_view task, telemetry::CacheEvent event) {
  impl_->ResultCache(task, event);
}

void PrometheusTelemetry::UploadBytes(int64_t bytes) {
  if (bytes > 0) impl_->upload_bytes_.Increment(static_cast<double>(bytes));
}

void PrometheusTelemetry::SetProbe(Probe probe, std::function<double()> read) {
  impl_->sampled_->Set(probe, std::move(read));
}

}  // namespace vision_gateway::metrics
