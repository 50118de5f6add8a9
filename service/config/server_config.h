// vision-server's configuration: every flag (absl) and environment fallback is read here, once,
// into one validated struct; main.cc only assembles the service from it. Nothing else in the
// service reads a flag or the environment (libraries take the options structs below).
//
// Reading the configuration has no side effect on the process beyond opening the API key file
// (whose poller then re-reads it): it does not log, does not touch the environment (main.cc
// scrubs GEMINI_API_KEY afterwards), and does not start servers. So a test sets flags, calls
// ServerConfigFromFlags with its own environment, and checks the struct or the error.
#ifndef VISION_GATEWAY_SERVICE_CONFIG_SERVER_CONFIG_H_
#define VISION_GATEWAY_SERVICE_CONFIG_SERVER_CONFIG_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/common/log.h"
#include "service/gemini/gemini_client.h"
#include "service/gemini/retry_policy.h"
#include "service/http/http_client.h"
#include "service/metrics/prometheus_telemetry.h"
#include "service/redis/redis_result_store.h"
#include "service/result_cache/caching_generate_stub.h"
#include "service/server/leak_filter.h"
#include "service/server/server.h"

namespace vision_gateway::config {

// One environment variable's value; nullopt when it is unset.
using EnvLookup = std::function<std::optional<std::string>(const char* name)>;

// The process environment (getenv).
EnvLookup ProcessEnvironment();

// How log lines are written (--log_format, --log_level). Read before the rest, so that errors in
// the rest are reported in the format the operator asked for.
struct LogConfig {
  LogFormat format = LogFormat::kText;
  LogSeverity min_severity = LogSeverity::kInfo;
};
absl::StatusOr<LogConfig> LogConfigFromFlags();

// The result cache (README "Result cache"): off unless a store is configured.
struct ResultCacheConfig {
  // --result_cache_mb: an in-memory LRU of this many bytes (0: none).
  std::size_t memory_bytes = 0;
  // --result_cache_redis: a Redis shared by every replica (wins over the in-memory store).
  std::optional<redis::RedisOptions> redis;
  // TTL, scope and the largest entry; main.cc adds the timer and the executor.
  result_cache::CachingOptions caching;

  bool enabled() const { return memory_bytes > 0 || redis.has_value(); }
};

struct ServerConfig {
  // --listen_host: where the gRPC port, the health-only port and the metrics port listen.
  std::string listen_host;
  // The upstream HTTP client (connection pool, TLS trust, body bounds).
  http::HttpClientOptions http;
  // The REST client: base URL (flag, else $GEMINI_BASE_URL), the API key (from
  // --gemini_api_key_file, re-read while the server runs, else $GEMINI_API_KEY), default timeout.
  gemini::GeminiOptions gemini;
  // The retry decorator's policy (attempts, backoff, budget, attempt timeout, longest RetryInfo).
  gemini::RetryOptions retry;
  // The gRPC server, its limits, security and the vision tasks' options. `telemetry` stays null:
  // main.cc points it at the exporter once that runs.
  server::ServerOptions server;
  // What errors reaching callers must never show: the API key (asked for on every error, so a
  // rotated key is covered) and the upstream host.
  server::LeakFilterOptions leak_filter;
  // The Prometheus exporter: its port (-1: no metrics; 0: any free port; flag, else
  // $VISION_GATEWAY_METRICS_PORT) and the models that keep their own label value.
  int metrics_port = -1;
  metrics::PrometheusOptions metrics;
  ResultCacheConfig result_cache;
  // Shutdown: health NOT_SERVING while still serving for `drain_delay`, then in-flight calls get
  // `shutdown_grace` before they are cancelled.
  absl::Duration drain_delay = absl::ZeroDuration();
  absl::Duration shutdown_grace = absl::ZeroDuration();
};

// Reads every flag (after absl::ParseCommandLine) and the environment through `env`. An invalid
// value is INVALID_ARGUMENT naming the flag and what it accepts; no API key (or an unreadable key
// file) is FAILED_PRECONDITION. A flag given on the command line wins over its environment
// variable, which wins over the built-in default.
absl::StatusOr<ServerConfig> ServerConfigFromFlags(const EnvLookup& env);

}  // namespace vision_gateway::config

#endif  // VISION_GATEWAY_SERVICE_CONFIG_SERVER_CONFIG_H_
