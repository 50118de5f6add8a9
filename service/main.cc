// vision-server: flags and environment → options structs, wiring, signals.
#include <malloc.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/common/log.h"
#include "service/common/timer.h"
#include "service/gemini/api_key_file.h"
#include "service/gemini/gemini_client.h"
#include "service/gemini/instrumented_gemini_client.h"
#include "service/gemini/retrying_gemini_client.h"
#include "service/http/http_client.h"
#include "service/server/caller_gate.h"
#include "service/server/leak_filter.h"
#include "service/metrics/prometheus_telemetry.h"
#include "service/server/server.h"
#include "service/vision/cost_guard.h"
#include "service/vision/file_id.h"
#include "service/vision/model_options.h"

ABSL_FLAG(std::string, listen_host, "0.0.0.0", "Address to listen on.");
ABSL_FLAG(int, port, 50051, "gRPC port (0 picks a free one). Env: VISION_GATEWAY_PORT.");
ABSL_FLAG(std::string, gemini_base_url, "https://generativelanguage.googleapis.com",
          "Gemini REST endpoint (scheme://host[:port]); http:// only for loopback "
          "(the emulator). Env: GEMINI_BASE_URL.");
ABSL_FLAG(std::string, gemini_api_key_file, "",
          "File holding the Gemini API key (else env GEMINI_API_KEY). Re-read every "
          "--gemini_api_key_poll_ms, so a rotated key (e.g. a Kubernetes Secret) applies "
          "without a restart.");
ABSL_FLAG(int, gemini_api_key_poll_ms, 5000,
          "How often --gemini_api_key_file is re-read, in ms (0: read once at start).");
ABSL_FLAG(std::string, gemini_ca_file, "",
          "PEM CA bundle to verify Gemini's certificate (default: system trust store).");
ABSL_FLAG(std::string, default_model, "gemini-3-flash-preview",
          "Model used when a request names none. Env: VISION_GATEWAY_DEFAULT_MODEL.");
ABSL_FLAG(std::string, segment_model, "",
          "Model Segment uses when a request names none (empty: --default_model). Pick one that "
          "returns masks: a model answering boxes only is reported in Summary.without_mask.");
ABSL_FLAG(int, model_refresh_s, 600,
          "Model discovery: Gemini's models list is read at start and then every this many "
          "seconds; calls naming a model it does not list fail with NOT_FOUND, and configured "
          "models it does not list are logged as errors (0: read at start only; -1: discovery "
          "off, nothing checked).");
ABSL_FLAG(int, max_receive_message_mb, 47,
          "Largest gRPC request accepted, in MiB. At most 47: inline images travel to Gemini "
          "base64-encoded (4/3 of their size) in a request body capped at 64 MiB, so a larger "
          "limit would accept requests only to refuse them after reading.");
ABSL_FLAG(int, io_threads, 2, "Threads doing upstream HTTP I/O.");
ABSL_FLAG(int, cpu_threads, 2, "Threads preparing images (decode, orientation, downscale).");
ABSL_FLAG(int, upstream_timeout_s, 120,
          "Bound for an upstream call when the caller sets no deadline (a caller's deadline "
          "rules, however far).");
// Resilience (issue #8): retries, deadlines, limits.
ABSL_FLAG(int, max_attempts, 4,
          "Attempts per upstream call, the first included (1: no retries). Transient failures "
          "(429, 500, 502, 503, 504, refused/reset before any response byte, attempt timeout) are "
          "retried with full-jitter exponential backoff, never sooner than Gemini's "
          "RetryInfo/Retry-After, within the caller's deadline.");
ABSL_FLAG(int, retry_initial_backoff_ms, 1000, "Backoff cap before the first retry, in ms.");
ABSL_FLAG(int, retry_max_backoff_ms, 30000, "Largest backoff cap between retries, in ms.");
ABSL_FLAG(double, retry_budget_ratio, 0.2,
          "Retries may be at most this fraction of the upstream calls of the last 10 s (with a "
          "floor of 10 retries), so an outage does not become a retry storm.");
ABSL_FLAG(int, max_call_duration_s, 3600,
          "How long a call without a deadline may run (all its upstream requests, retries and "
          "uploads together): then it is cancelled upstream and ends DEADLINE_EXCEEDED "
          "(ErrorInfo MAX_CALL_DURATION). A caller's own deadline always rules. 0: no limit.");
ABSL_FLAG(int, max_retry_delay_s, 60,
          "Longest wait accepted when Gemini asks for one before a retry (RetryInfo, "
          "Retry-After): a longer one fails the call at once with RESOURCE_EXHAUSTED and "
          "Gemini's RetryInfo, so the caller decides instead of holding its slot meanwhile.");
ABSL_FLAG(int, upstream_attempt_timeout_s, 0,
          "Abandon and retry an attempt that produced nothing (no response, no first stream "
          "event) for this long (0: attempts are bounded only by the deadline).");
ABSL_FLAG(int, max_concurrent_calls, 1024,
          "Concurrent calls (all RPC kinds); beyond it calls are refused at once with "
          "RESOURCE_EXHAUSTED + RetryInfo (ErrorInfo SERVER_OVERLOADED). Upstream requests in "
          "flight never exceed it. 0: unbounded.");
ABSL_FLAG(int, max_request_memory_mb, 128,
          "Request bytes admitted calls may hold at once, in MiB (each call counts its request "
          "message, an Upload its 8 MiB chunk; a call holds about 3x that while in flight). A "
          "call that would go over is refused at once with RESOURCE_EXHAUSTED + RetryInfo "
          "(SERVER_OVERLOADED). 0: unbounded; else at least --max_receive_message_mb.");
ABSL_FLAG(int, grpc_memory_mb, 128,
          "Memory gRPC may use for its buffers on the main port (a grpc::ResourceQuota), in MiB, "
          "so requests not yet handed to the service (also those about to be refused) are "
          "bounded too. 0: gRPC's default (unbounded).");
ABSL_FLAG(int, max_concurrent_streams, 100,
          "Calls one client connection may have open at once (HTTP/2 "
          "SETTINGS_MAX_CONCURRENT_STREAMS). 0: gRPC's default.");
ABSL_FLAG(int, max_queued_cpu_work, 64,
          "Detect/Segment calls waiting for image preparation; beyond it calls are refused "
          "(SERVER_OVERLOADED). 0: unbounded.");
ABSL_FLAG(int, max_image_mb, 47, "Largest inline image accepted, in MiB (each image).");
ABSL_FLAG(int, max_polygon_points, 10000,
          "Segment: a polygon mask with more points is dropped (rasterising is O(rows x points)).");
ABSL_FLAG(int, max_mask_pixels, 1048576,
          "Segment: a mask PNG declaring more pixels is dropped before decoding (Gemini's are "
          "256x256).");
ABSL_FLAG(int, max_upstream_response_mb, 64, "Largest Gemini response body accepted, in MiB.");
ABSL_FLAG(int, upstream_idle_timeout_s, 30,
          "Idle keep-alive connections to Gemini older than this are closed, not reused.");
ABSL_FLAG(int, max_upstream_connections_per_host, 256,
          "Connections open to one Gemini host at once (idle, in use or being opened: bounds "
          "file descriptors). Beyond it a request waits for a free one within its deadline, "
          "first come first served; more than max(1024, --max_concurrent_calls) waiting: "
          "RESOURCE_EXHAUSTED (SERVER_OVERLOADED).");
ABSL_FLAG(int, upstream_phase_timeout_s, 60,
          "Bound for each HTTP phase of a request without a deadline (the Gemini client always "
          "gives one: the caller's, or --upstream_timeout_s).");
ABSL_FLAG(int, shutdown_grace_s, 20,
          "On SIGTERM/SIGINT, after --drain_delay_s: how long in-flight calls may run before "
          "they are cancelled.");
ABSL_FLAG(int, drain_delay_s, 0,
          "On SIGTERM/SIGINT: health turns NOT_SERVING at once, new calls are still served for "
          "this many seconds (so endpoints and load balancers stop sending), then the server "
          "stops accepting. A second signal ends the delay early.");
ABSL_FLAG(int, max_connection_age_s, 0,
          "Send clients a GOAWAY after a connection has lived this long (±10% jitter), so they "
          "reconnect and spread over new replicas (0: never).");
ABSL_FLAG(int, max_connection_age_grace_s, 0,
          "After a max-age GOAWAY, how long calls on the old connection may still run before it "
          "is closed (0: no limit; calls end by their own deadline).");
ABSL_FLAG(int, max_connection_idle_s, 0,
          "Close a client connection that had no call for this long (0: never).");
ABSL_FLAG(int, max_image_megapixels, 50, "Largest decoded image accepted, in megapixels.");
ABSL_FLAG(int, max_inline_request_mb, 20,
          "Inline images of one request adding up to more than this many MiB are uploaded to "
          "the Gemini Files API and referenced instead (identical bytes reuse one file). "
          "0: never.");
// Upload and Files (issue #7).
ABSL_FLAG(int, max_upload_mb, 2048,
          "Largest Upload accepted, in MiB: 1..2048 (2048, the default, is Gemini's 2 GB per-file "
          "limit).");
ABSL_FLAG(int, max_reorient_upload_mb, 64,
          "An uploaded image whose EXIF orientation is not 1 is turned upright in memory before it "
          "goes to Gemini; larger ones are refused (INVALID_ARGUMENT), in MiB. 0: refuse them all.");
ABSL_FLAG(int, upload_idle_timeout_s, 60,
          "An Upload whose caller sends no message for this long while the gateway waits for one "
          "ends with DEADLINE_EXCEEDED (ErrorInfo UPLOAD_IDLE), cancelling the upstream session "
          "and giving back its slots, buffer and connection. 0: no bound.");
// ---- Batch jobs (#20) ----
ABSL_FLAG(std::string, batch_spool_dir, "/tmp",
          "Where CreateBatch writes a job's JSONL request file while its items arrive (deleted "
          "when the call ends; up to 2 GiB per CreateBatch in flight).");
ABSL_FLAG(int, max_batch_items, 10000,
          "Most items per batch job (CreateBatch refuses more with INVALID_ARGUMENT), 1..1000000.");
ABSL_FLAG(int, file_hash_cache_ttl_s, 30,
          "How long a replica trusts what it learnt about which ACTIVE file holds which SHA-256 "
          "(Upload dedupe, the inline->file switch), in seconds. 0: no cache (every lookup reads "
          "Gemini's file list).");
ABSL_FLAG(bool, grpc_bdp_probe, false,
          "Let gRPC grow each stream's receive window by bandwidth-delay probing. Off: a stream "
          "receives about one message ahead of what the server reads, so concurrent uploads stay "
          "in bounded memory; on: faster uploads over high-latency links, at a memory cost.");
ABSL_FLAG(int, default_max_dimension, 0,
          "Downscale Detect/Segment images to this longer side when the request gives none (0: off).");

// Security (issue #11): transport, callers, per-caller limits, cost guards.
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM certificate chain for the gRPC port (with --tls_key_file: TLS; else plaintext). "
          "Re-read on change.");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key for --tls_cert_file. Re-read on change.");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "PEM CA bundle: mTLS, clients must present a certificate signed by one of these CAs.");
ABSL_FLAG(int, credentials_reload_interval_s, 10,
          "How often TLS files and --auth_tokens_file are checked for changes, in seconds.");
ABSL_FLAG(bool, reflection, true, "Serve gRPC server reflection (unauthenticated).");
ABSL_FLAG(int, health_port, -1,
          "Also serve grpc.health.v1 (only) in plaintext on this port, for probes that cannot "
          "speak TLS, e.g. the kubelet's gRPC probe (-1: off; 0: any free port).");
ABSL_FLAG(std::string, auth_tokens_file, "",
          "Bearer tokens, one '<caller> <token>' per line: callers must send "
          "'authorization: Bearer <token>'. Re-read on change.");
ABSL_FLAG(bool, auth_client_cert, false,
          "With --tls_client_ca_file: a verified client certificate (CN, else SAN) names the "
          "caller.");
ABSL_FLAG(double, per_caller_rps, 0, "Requests per second per caller (0: unlimited).");
ABSL_FLAG(int, per_caller_burst, 0,
          "Requests a caller may send at once after a quiet period (0: max(1, rps)).");
ABSL_FLAG(int, per_caller_max_concurrent_calls, 0, "Calls in flight per caller (0: unlimited).");
ABSL_FLAG(std::string, caller_overrides, "",
          "Per-caller settings, 'caller:key=value,...;caller2:...'. Keys: rps, burst, concurrent, "
          "models (a|b), max_output_tokens, max_thinking_budget, max_thinking_level, max_images, "
          "max_image_bytes.");
ABSL_FLAG(std::string, allowed_models,
          "gemini-3-flash-preview,gemini-3.1-pro-preview,gemini-3.1-flash-lite",
          "Comma-separated models callers may use ('*': any).");
ABSL_FLAG(int, max_output_tokens, 0,
          "Cap on a request's max_output_tokens; requests without one get the cap (0: no cap).");
ABSL_FLAG(int, max_thinking_budget, -1,
          "Cap on a request's thinking_budget (dynamic thinking refused); requests without one get "
          "the cap on Gemini 2.x (-1: no cap).");
ABSL_FLAG(std::string, max_thinking_level, "",
          "Cap on a request's thinking_level (MINIMAL, LOW, MEDIUM, HIGH); requests without one get "
          "it on Gemini 3+ (empty: no cap).");
ABSL_FLAG(int, max_images_per_request, 3600, "Most images in one request.");
ABSL_FLAG(int64_t, max_image_bytes_per_request, 0,
          "Cap on the sum of inline image bytes in one request (0: only --max_receive_message_mb).");
// Observability (#10).
ABSL_FLAG(int, metrics_port, 9464,
          "Port of the Prometheus endpoint (HTTP GET /metrics), on --listen_host, separate from the "
          "gRPC port. 0 picks a free one; -1 turns metrics off. Env: VISION_GATEWAY_METRICS_PORT.");
ABSL_FLAG(std::string, metrics_models, "",
          "Comma-separated models that get their own `model` metric label besides the default "
          "model and the well-known Gemini models; others are counted as \"other\".");
ABSL_FLAG(std::string, log_format, "text",
          "Log lines (and the one access-log line per call) as `text` or `json`.");
ABSL_FLAG(std::string, log_level, "info",
          "Least severe log lines written: debug (adds the access log of grpc.health.v1 health "
          "checks), info (the access log of every other call), warning, error.");

namespace {

using vision_gateway::LogError;
using vision_gateway::LogInfo;
using vision_gateway::LogWarning;

// A flag keeps its value if given on the command line; otherwise the environment variable wins
// over the built-in default.
std::string StringFlagOrEnv(const absl::Flag<std::string>& flag, const char* env,
                            const std::string& default_value) {
  std::string value = absl::GetFlag(flag);
  if (value != default_value) return value;
  const char* from_env = std::getenv(env);
  return from_env != nullptr && *from_env != '\0' ? from_env : value;
}

int IntFlagOrEnv(const absl::Flag<int>& flag, const char* env, int default_value) {
  int value = absl::GetFlag(flag);
  if (value != default_value) return value;
  int parsed;
  const char* from_env = std::getenv(env);
  return from_env != nullptr && absl::SimpleAtoi(from_env, &parsed) ? parsed : value;
}

// Removes a variable from the environment, and first overwrites its value in place: unsetenv
// alone leaves the original bytes readable in /proc/<pid>/environ.
void ScrubEnv(const char* name) {
  if (char* value = std::getenv(name); value != nullptr) {
    volatile char* p = value;
    while (*p != '\0') *p++ = '\0';
  }
  unsetenv(name);
}

// The key from --gemini_api_key_file (re-read while the server runs), else $GEMINI_API_KEY.
// Either way GEMINI_API_KEY is gone from the environment afterwards.
bool GetApiKey(vision_gateway::gemini::ApiKey* key) {
  const std::string file = absl::GetFlag(FLAGS_gemini_api_key_file);
  if (!file.empty()) {
    const int poll_ms = absl::GetFlag(FLAGS_gemini_api_key_poll_ms);
    if (poll_ms < 0) {
      LogError("--gemini_api_key_poll_ms must be >= 0");
      return false;
    }
    ScrubEnv("GEMINI_API_KEY");
    auto source = vision_gateway::gemini::ApiKeyFile::Open(file, absl::Milliseconds(poll_ms));
    if (!source.ok()) {
      LogError("--gemini_api_key_file: %s", source.status().message());
      return false;
    }
    *key = vision_gateway::gemini::ApiKey(
        std::shared_ptr<const vision_gateway::gemini::ApiKeySource>(*std::move(source)));
    return true;
  }
  const char* env = std::getenv("GEMINI_API_KEY");
  const std::string value(absl::StripAsciiWhitespace(env != nullptr ? env : ""));
  ScrubEnv("GEMINI_API_KEY");
  if (value.empty()) {
    LogError("no Gemini API key: set GEMINI_API_KEY or --gemini_api_key_file");
    return false;
  }
  *key = value;
  return true;
}

// A non-negative seconds flag as a duration, 0 meaning `zero_means`.
bool SecondsFlag(const absl::Flag<int>& flag, const char* name, absl::Duration zero_means,
                 absl::Duration* out) {
  const int seconds = absl::GetFlag(flag);
  if (seconds < 0) {
    LogError("--%s must be >= 0", name);
    return false;
  }
  *out = seconds == 0 ? zero_means : absl::Seconds(seconds);
  return true;
}

// Fills the TLS, reflection, authentication and cost-guard parts of `options` from flags.
bool ConfigureSecurity(vision_gateway::server::ServerOptions& options) {
  using vision_gateway::server::AuthOptions;
  using vision_gateway::server::TlsOptions;
  const absl::Duration reload =
      absl::Seconds(std::max(1, absl::GetFlag(FLAGS_credentials_reload_interval_s)));
  const std::string cert = absl::GetFlag(FLAGS_tls_cert_file);
  const std::string key = absl::GetFlag(FLAGS_tls_key_file);
  const std::string client_ca = absl::GetFlag(FLAGS_tls_client_ca_file);
  if (!cert.empty() || !key.empty() || !client_ca.empty()) {
    if (cert.empty() || key.empty()) {
      LogError("TLS needs both --tls_cert_file and --tls_key_file");
      return false;
    }
    options.tls = TlsOptions{cert, key, client_ca, reload};
  }
  options.reflection = absl::GetFlag(FLAGS_reflection);
  if (const int health_port = absl::GetFlag(FLAGS_health_port); health_port >= 0) {
    options.health_listen_address = absl::StrCat(absl::GetFlag(FLAGS_listen_host), ":", health_port);
  }

  vision_gateway::vision::CostLimits& cost = options.vision.cost;
  const std::string models = absl::GetFlag(FLAGS_allowed_models);
  if (models != "*") {
    cost.allowed_models = absl::StrSplit(models, ',', absl::SkipWhitespace());
    for (std::string& m : cost.allowed_models) {
      absl::string_view id = absl::StripAsciiWhitespace(m);
      absl::ConsumePrefix(&id, "models/");
      m = std::string(id);
    }
    if (cost.allowed_models.empty()) {
      LogError("--allowed_models is empty (use '*' to allow any model)");
      return false;
    }
    if (absl::Status s = vision_gateway::vision::CheckModelAllowed(options.vision.default_model,
                                                                   cost);
        !s.ok()) {
      LogError("--default_model %s is not in --allowed_models", options.vision.default_model);
      return false;
    }
    if (!options.vision.segment_model.empty() &&
        !vision_gateway::vision::CheckModelAllowed(options.vision.segment_model, cost).ok()) {
      LogError("--segment_model %s is not in --allowed_models", options.vision.segment_model);
      return false;
    }
  }
  cost.max_output_tokens = std::max(0, absl::GetFlag(FLAGS_max_output_tokens));
  cost.max_thinking_budget = std::max(-1, absl::GetFlag(FLAGS_max_thinking_budget));
  cost.max_thinking_level = absl::AsciiStrToUpper(absl::GetFlag(FLAGS_max_thinking_level));
  if (!cost.max_thinking_level.empty() &&
      !vision_gateway::vision::IsThinkingLevelName(cost.max_thinking_level)) {
    LogError("--max_thinking_level must be MINIMAL, LOW, MEDIUM or HIGH");
    return false;
  }
  options.vision.max_images_per_request = std::max(1, absl::GetFlag(FLAGS_max_images_per_request));
  cost.max_image_bytes_per_request =
      std::max<int64_t>(0, absl::GetFlag(FLAGS_max_image_bytes_per_request));

  AuthOptions auth;
  auth.tokens_file = absl::GetFlag(FLAGS_auth_tokens_file);
  auth.client_cert_identity = absl::GetFlag(FLAGS_auth_client_cert);
  auth.reload_interval = reload;
  auth.limits.requests_per_second = std::max(0.0, absl::GetFlag(FLAGS_per_caller_rps));
  auth.limits.burst = std::max(0, absl::GetFlag(FLAGS_per_caller_burst));
  auth.limits.max_concurrent_calls =
      std::max(0, absl::GetFlag(FLAGS_per_caller_max_concurrent_calls));
  auto overrides = vision_gateway::server::ParseCallerOverrides(absl::GetFlag(FLAGS_caller_overrides));
  if (!overrides.ok()) {
    LogError("%s", overrides.status().message());
    return false;
  }
  auth.overrides = *std::move(overrides);
  if (auth.client_cert_identity && client_ca.empty()) {
    LogError("--auth_client_cert needs mTLS (--tls_client_ca_file)");
    return false;
  }
  const bool authenticating = !auth.tokens_file.empty() || auth.client_cert_identity;
  if (authenticating) {
    options.auth = std::move(auth);
    if (!options.tls) {
      LogWarning("caller authentication without TLS: bearer tokens cross the network in the "
                 "clear unless a mesh sidecar encrypts the connection");
    }
  } else if (auth.limits.requests_per_second > 0 || auth.limits.max_concurrent_calls > 0 ||
             !auth.overrides.empty()) {
    LogError("--per_caller_* and --caller_overrides need caller authentication "
             "(--auth_tokens_file or --auth_client_cert)");
    return false;
  }
  return true;
}
// Models whose names the `model` metric label keeps (bounded; others are folded into "other").
constexpr const char* kWellKnownModels[] = {
    "gemini-3-flash-preview", "gemini-3.1-pro-preview",       "gemini-3.1-flash-lite",
    "gemini-flash-latest",    "gemini-robotics-er-2-preview", "gemini-2.5-pro",
    "gemini-2.5-flash",       "gemini-2.5-flash-lite",        "gemini-3-pro-preview",
    "gemini-robotics-er-1.5-preview"};

}  // namespace

int main(int argc, char** argv) {
  // Upload moves large blocks (8 MiB chunks, ~1 MiB messages) through many threads. glibc's
  // default raises its mmap threshold after the first such block is freed, and from then on
  // serves them from per-thread arenas that keep freed memory resident. A fixed threshold keeps
  // blocks of 256 KiB and more in mmap, returned to the system when freed (bench: 10 concurrent
  // uploads +204 MiB RSS without it, +129 MiB with it; README, Benchmarks).
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  absl::SetProgramUsageMessage("vision-server: Gemini vision tasks behind a gRPC contract");
  absl::ParseCommandLine(argc, argv);
  {
    const auto format = vision_gateway::ParseLogFormat(absl::GetFlag(FLAGS_log_format));
    const auto level = vision_gateway::ParseLogSeverity(absl::GetFlag(FLAGS_log_level));
    if (!format || !level) {
      std::fprintf(stderr, "vision-server: --log_format must be text|json and --log_level "
                           "debug|info|warning|error\n");
      return 2;
    }
    vision_gateway::SetLogFormat(*format);
    vision_gateway::SetMinLogSeverity(*level);
  }
  // Debian's Abseil keeps Mutex deadlock detection on; it costs a few % of CPU per request.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // Block the stop signals before any thread starts, so that only sigwait() below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  vision_gateway::gemini::ApiKey api_key;
  if (!GetApiKey(&api_key)) return 2;
  absl::Duration drain_delay;
  absl::Duration shutdown_grace;
  vision_gateway::server::ServerOptions options;
  if (!SecondsFlag(FLAGS_drain_delay_s, "drain_delay_s", absl::ZeroDuration(), &drain_delay) ||
      !SecondsFlag(FLAGS_shutdown_grace_s, "shutdown_grace_s", absl::ZeroDuration(),
                   &shutdown_grace) ||
      !SecondsFlag(FLAGS_max_connection_age_s, "max_connection_age_s", absl::InfiniteDuration(),
                   &options.max_connection_age) ||
      !SecondsFlag(FLAGS_max_connection_age_grace_s, "max_connection_age_grace_s",
                   absl::InfiniteDuration(), &options.max_connection_age_grace) ||
      !SecondsFlag(FLAGS_max_connection_idle_s, "max_connection_idle_s", absl::InfiniteDuration(),
                   &options.max_connection_idle)) {
    return 2;
  }

  vision_gateway::http::HttpClientOptions http_options;
  http_options.io_threads = absl::GetFlag(FLAGS_io_threads);
  http_options.ca_file = absl::GetFlag(FLAGS_gemini_ca_file);
  http_options.max_response_body_bytes =
      static_cast<std::size_t>(std::max(1, absl::GetFlag(FLAGS_max_upstream_response_mb))) << 20;
  http_options.idle_timeout =
      std::chrono::seconds(std::max(1, absl::GetFlag(FLAGS_upstream_idle_timeout_s)));
  http_options.default_phase_timeout =
      std::chrono::seconds(std::max(1, absl::GetFlag(FLAGS_upstream_phase_timeout_s)));
  if (absl::GetFlag(FLAGS_max_upstream_connections_per_host) < 1) {
    LogError("--max_upstream_connections_per_host must be >= 1");
    return 2;
  }
  http_options.max_connections_per_host =
      static_cast<std::size_t>(absl::GetFlag(FLAGS_max_upstream_connections_per_host));
  // Upstream requests in flight never exceed --max_concurrent_calls, so with this bound a request
  // is refused for the queue only if that flag is 0 (unlimited) and more than 1024 wait.
  http_options.max_waiting_requests_per_host =
      static_cast<std::size_t>(std::max(1024, absl::GetFlag(FLAGS_max_concurrent_calls)));
  auto http = vision_gateway::http::MakeHttpClient(http_options);
  if (!http.ok()) {
    LogError("HTTP client: %s", http.status().ToString());
    return 1;
  }

  vision_gateway::gemini::GeminiOptions gemini_options;
  gemini_options.base_url = StringFlagOrEnv(FLAGS_gemini_base_url, "GEMINI_BASE_URL",
                                            "https://generativelanguage.googleapis.com");
  gemini_options.api_key = api_key;
  gemini_options.default_timeout = std::chrono::seconds(absl::GetFlag(FLAGS_upstream_timeout_s));
  auto gemini = vision_gateway::gemini::MakeGeminiClient(gemini_options, *http);
  if (!gemini.ok()) {
    LogError("Gemini client: %s", gemini.status().ToString());
    return 1;
  }

  const int receive_mb = absl::GetFlag(FLAGS_max_receive_message_mb);
  if (receive_mb < 1 || int64_t{receive_mb} * 4 / 3 >= 64) {
    LogError("--max_receive_message_mb must be 1..47: a %d MiB request base64-encodes to more "
             "than Gemini's 64 MiB request body cap",
             receive_mb);
    return 2;
  }
  const int port = IntFlagOrEnv(FLAGS_port, "VISION_GATEWAY_PORT", 50051);
  options.listen_address = absl::StrCat(absl::GetFlag(FLAGS_listen_host), ":", port);
  options.max_receive_message_bytes = absl::GetFlag(FLAGS_max_receive_message_mb) * 1024 * 1024;
  options.limits.cpu_threads = absl::GetFlag(FLAGS_cpu_threads);
  options.limits.max_queued_cpu_work =
      static_cast<std::size_t>(std::max(0, absl::GetFlag(FLAGS_max_queued_cpu_work)));
  options.limits.max_concurrent_calls = std::max(0, absl::GetFlag(FLAGS_max_concurrent_calls));
  if (absl::GetFlag(FLAGS_max_call_duration_s) < 0) {
    LogError("--max_call_duration_s must not be negative (0: no limit)");
    return 2;
  }
  options.limits.max_call_duration =
      absl::GetFlag(FLAGS_max_call_duration_s) == 0
          ? absl::InfiniteDuration()
          : absl::Seconds(absl::GetFlag(FLAGS_max_call_duration_s));
  {
    const int memory_mb = absl::GetFlag(FLAGS_max_request_memory_mb);
    if (memory_mb < 0 || (memory_mb > 0 && memory_mb < receive_mb)) {
      LogError("--max_request_memory_mb must be 0 (unbounded) or at least "
               "--max_receive_message_mb (%d), so that every acceptable request can be admitted",
               receive_mb);
      return 2;
    }
    options.limits.max_request_memory_bytes = int64_t{memory_mb} << 20;
    options.grpc_memory_bytes = int64_t{std::max(0, absl::GetFlag(FLAGS_grpc_memory_mb))} << 20;
    options.max_concurrent_streams = std::max(0, absl::GetFlag(FLAGS_max_concurrent_streams));
  }
  options.vision.default_model = StringFlagOrEnv(
      FLAGS_default_model, "VISION_GATEWAY_DEFAULT_MODEL", "gemini-3-flash-preview");
  options.vision.segment_model = absl::GetFlag(FLAGS_segment_model);
  for (const std::string* model : {&options.vision.default_model, &options.vision.segment_model}) {
    vision_gateway::vision::v1::ModelOptions named;
    named.set_model(*model);
    if (model->empty()) continue;
    auto resolved = vision_gateway::vision::ResolveModel(named, "");
    if (!resolved.ok()) {
      LogError("--default_model/--segment_model '%s': %s", *model, resolved.status().message());
      return 2;
    }
  }
  if (const int refresh_s = absl::GetFlag(FLAGS_model_refresh_s); refresh_s >= 0) {
    options.discovery.enabled = true;
    options.discovery.catalog.refresh_period =
        refresh_s == 0 ? absl::InfiniteDuration() : absl::Seconds(refresh_s);
  } else if (refresh_s < -1) {
    LogError("--model_refresh_s must be -1 (off), 0 (at start only) or positive");
    return 2;
  }
  options.vision.files_base_uri = absl::StrCat(gemini_options.base_url, "/v1beta");
  options.vision.max_image_pixels =
      static_cast<int64_t>(absl::GetFlag(FLAGS_max_image_megapixels)) * 1'000'000;
  options.vision.default_max_dimension = absl::GetFlag(FLAGS_default_max_dimension);
  options.vision.max_inline_request_bytes =
      int64_t{absl::GetFlag(FLAGS_max_inline_request_mb)} << 20;
  options.vision.max_image_bytes = int64_t{std::max(1, absl::GetFlag(FLAGS_max_image_mb))} << 20;
  {
    const int upload_mb = absl::GetFlag(FLAGS_max_upload_mb);
    const int reorient_mb = absl::GetFlag(FLAGS_max_reorient_upload_mb);
    const int hash_ttl_s = absl::GetFlag(FLAGS_file_hash_cache_ttl_s);
    const int idle_s = absl::GetFlag(FLAGS_upload_idle_timeout_s);
    if (idle_s < 0) {
      LogError("--upload_idle_timeout_s must not be negative");
      return 2;
    }
    options.vision.upload_idle_timeout = absl::Seconds(idle_s);
    if (upload_mb < 1 || upload_mb > 2048) {
      LogError("--max_upload_mb must be 1..2048 (Gemini stores files of at most 2 GB)");
      return 2;
    }
    if (reorient_mb < 0 || reorient_mb > upload_mb) {
      LogError("--max_reorient_upload_mb must be 0..--max_upload_mb");
      return 2;
    }
    if (hash_ttl_s < 0) {
      LogError("--file_hash_cache_ttl_s must not be negative");
      return 2;
    }
    options.vision.max_upload_bytes = int64_t{upload_mb} << 20;
    options.vision.max_reorient_upload_bytes = int64_t{reorient_mb} << 20;
    options.vision.file_hash_ttl = absl::Seconds(hash_ttl_s);
  }
  // ---- Batch jobs (#20) ----
  // The batches stub (GeminiStubs::batches) comes with the REST Batch API; until it is set the
  // batch RPCs answer UNIMPLEMENTED.
  {
    const int max_items = absl::GetFlag(FLAGS_max_batch_items);
    if (max_items < 1 || max_items > 1'000'000) {
      LogError("--max_batch_items must be 1..1000000");
      return 2;
    }
    options.vision.max_batch_items = max_items;
    options.vision.batch_spool_dir = absl::GetFlag(FLAGS_batch_spool_dir);
  }
  // Upload chunks sending while their callers still send them hold a connection each: at most
  // half of them, so that slow uploaders leave the other half to the other RPCs.
  options.vision.max_filling_upload_chunks =
      absl::GetFlag(FLAGS_max_upstream_connections_per_host) / 2;
  options.grpc_bdp_probe = absl::GetFlag(FLAGS_grpc_bdp_probe);
  options.vision.max_polygon_points = std::max(3, absl::GetFlag(FLAGS_max_polygon_points));
  options.vision.max_mask_png_pixels = std::max(1, absl::GetFlag(FLAGS_max_mask_pixels));
  // Every replica derives the same key for the tags of files stored upright (file_id.h).
  options.vision.file_tag_key = vision_gateway::vision::FileTagKeyFrom(api_key.Current());

  if (!ConfigureSecurity(options)) return 2;
  {
    // Errors reaching callers never show the key or the upstream's host.
    vision_gateway::server::LeakFilterOptions leak;
    leak.secret_source = [api_key] { return api_key.Current(); };
    const std::string host = vision_gateway::server::UpstreamHostOf(gemini_options.base_url);
    if (!host.empty()) leak.upstream_hosts.push_back(host);
    vision_gateway::server::ConfigureLeakFilter(std::move(leak));
  }


  // Metrics: the exporter outlives the server (declared first, destroyed last).
  const std::string default_model = options.vision.default_model;
  vision_gateway::metrics::PrometheusOptions metrics_options;
  metrics_options.known_models = {default_model};
  if (!options.vision.segment_model.empty()) {
    metrics_options.known_models.push_back(options.vision.segment_model);
  }
  for (const char* model : kWellKnownModels) metrics_options.known_models.push_back(model);
  for (absl::string_view model :
       absl::StrSplit(absl::GetFlag(FLAGS_metrics_models), ',', absl::SkipWhitespace())) {
    metrics_options.known_models.emplace_back(absl::StripAsciiWhitespace(model));
  }
  vision_gateway::metrics::PrometheusTelemetry metrics(std::move(metrics_options));
  const int metrics_port = IntFlagOrEnv(FLAGS_metrics_port, "VISION_GATEWAY_METRICS_PORT", 9464);
  if (metrics_port >= 0) {
    const std::string metrics_address =
        absl::StrCat(absl::GetFlag(FLAGS_listen_host), ":", metrics_port);
    if (absl::Status started = metrics.StartHttp(metrics_address); !started.ok()) {
      LogError("%s", started.ToString());
      return 1;
    }
    options.telemetry = &metrics;
  }

  // Each upstream exchange is measured right above the REST client.
  vision_gateway::gemini::GeminiStubs client =
      vision_gateway::gemini::MakeInstrumentedStubs(
          *std::move(gemini), options.telemetry != nullptr
                                  ? *options.telemetry
                                  : vision_gateway::telemetry::NoTelemetry());
  // The REST client implements the stubs; policies wrap each stub as decorators of its interface.
  vision_gateway::gemini::RetryOptions retry;
  retry.max_attempts = std::max(1, absl::GetFlag(FLAGS_max_attempts));
  retry.initial_backoff = absl::Milliseconds(std::max(0, absl::GetFlag(FLAGS_retry_initial_backoff_ms)));
  retry.max_backoff = absl::Milliseconds(std::max(0, absl::GetFlag(FLAGS_retry_max_backoff_ms)));
  retry.budget_ratio = std::max(0.0, absl::GetFlag(FLAGS_retry_budget_ratio));
  retry.attempt_timeout = absl::Seconds(std::max(0, absl::GetFlag(FLAGS_upstream_attempt_timeout_s)));
  retry.max_retry_delay = absl::Seconds(std::max(0, absl::GetFlag(FLAGS_max_retry_delay_s)));
  options.vision.max_retry_delay = retry.max_retry_delay;
  client =
      vision_gateway::gemini::MakeRetryingStubs(
          std::move(client), retry, vision_gateway::MakeThreadTimer(),
          options.telemetry != nullptr ? *options.telemetry
                                       : vision_gateway::telemetry::NoTelemetry());
  auto server = vision_gateway::server::VisionServer::Start(options, client);
  if (!server.ok()) {
    LogError("%s", server.status().ToString());
    return 1;
  }
  LogInfo("vision-server listening on %s:%d (%s%s%s), Gemini at %s, default model %s%s%s",
          absl::GetFlag(FLAGS_listen_host), (*server)->port(),
          !options.tls ? "plaintext"
          : options.tls->client_ca_file.empty() ? "TLS"
                                                : "mTLS",
          options.auth ? ", callers authenticated" : "",
          options.reflection ? ", reflection on" : "", gemini_options.base_url,
          options.vision.default_model,
          options.vision.segment_model.empty() ? "" : ", segment model ",
          options.vision.segment_model);
  // After the server started: by now every method's series exist.
  if (options.telemetry != nullptr) {
    LogInfo("metrics on http://%s:%d/metrics", absl::GetFlag(FLAGS_listen_host), metrics.port());
  }
  if ((*server)->health_port() != 0) {
    LogInfo("plaintext health-only port %s:%d", absl::GetFlag(FLAGS_listen_host),
            (*server)->health_port());
  }

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  // 1. Health NOT_SERVING at once; new calls are still served during the drain delay, while
  //    endpoints and load balancers take this replica out of rotation.
  (*server)->StartDraining();
  if (drain_delay > absl::ZeroDuration()) {
    LogInfo("signal %d: health NOT_SERVING; still serving new calls for %s (drain delay)",
            signal_number, absl::FormatDuration(drain_delay));
    const timespec delay = absl::ToTimespec(drain_delay);
    if (const int again = sigtimedwait(&stop_signals, nullptr, &delay); again > 0) {
      LogInfo("signal %d: drain delay cut short", again);
    }
  }
  // 2. Stop accepting; in-flight calls get the grace period, then are cancelled.
  LogInfo("signal %d: no longer accepting calls; draining in-flight calls for up to %s",
          signal_number, absl::FormatDuration(shutdown_grace));
  (*server)->Shutdown(shutdown_grace);
  LogInfo("stopped");
  return 0;
}
