// Every vision-server flag, and its reading into ServerConfig (server_config.h).
#include "service/config/server_config.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "service/gemini/api_key_file.h"
#include "service/server/caller_gate.h"
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


// Result cache (#21).
ABSL_FLAG(int, result_cache_mb, 0,
          "In-memory result cache (README \"Result cache\"), in MiB: identical Caption/Detect/"
          "Segment calls are answered from it without calling Gemini. 0 (the default): off.");
ABSL_FLAG(int, result_cache_ttl_s, 3600, "How long a cached result is served, in seconds.");
ABSL_FLAG(bool, result_cache_shared, false,
          "Serve one caller's cached results to every caller. Default: with authentication on, "
          "each caller sees only results of its own calls.");
ABSL_FLAG(int, result_cache_max_entry_kb, 4096,
          "Largest result cached, in KiB (its encoded answer); larger results are not cached.");
ABSL_FLAG(std::string, result_cache_redis, "",
          "HOST:PORT of a Redis 7 shared by every replica as the result cache's store (instead of "
          "--result_cache_mb; empty: none). Bounded: a Redis that is slow or down costs a call at "
          "most a few ms (the call goes upstream as on a miss) and is reconnected to with backoff.");

// Batch jobs (#20).
ABSL_FLAG(std::string, batch_spool_dir, "/tmp",
          "Where CreateBatch writes a job's JSONL request file while its items arrive (deleted "
          "when the call ends; up to 2 GiB per CreateBatch in flight).");
ABSL_FLAG(int, max_batch_items, 10000,
          "Most items per batch job (CreateBatch refuses more with INVALID_ARGUMENT), 1..1000000.");

// --- batch2 ---
ABSL_FLAG(int, batch_spool_max_mb, 4096,
          "Most MiB of CreateBatch request files in --batch_spool_dir at once, over every "
          "CreateBatch in flight (reserved as items are written, given back when the upload "
          "ends or fails); a call that would exceed it fails with RESOURCE_EXHAUSTED. 0: "
          "unbounded. Keep it under the spool volume's size (k8s: the batch-spool emptyDir).");
// --- end batch2 ---

namespace vision_gateway::config {
namespace {

constexpr char kDefaultBaseUrl[] = "https://generativelanguage.googleapis.com";
constexpr char kDefaultModel[] = "gemini-3-flash-preview";

// Models whose names the `model` metric label keeps (bounded; others are folded into "other").
constexpr const char* kWellKnownModels[] = {
    "gemini-3-flash-preview", "gemini-3.1-pro-preview",       "gemini-3.1-flash-lite",
    "gemini-flash-latest",    "gemini-robotics-er-2-preview", "gemini-2.5-pro",
    "gemini-2.5-flash",       "gemini-2.5-flash-lite",        "gemini-3-pro-preview",
    "gemini-robotics-er-1.5-preview"};

template <typename... Args>
absl::Status Invalid(const absl::FormatSpec<Args...>& format, const Args&... args) {
  return absl::InvalidArgumentError(absl::StrFormat(format, args...));
}

// A flag keeps its value if given on the command line; otherwise the environment variable wins
// over the built-in default.
std::string StringFlagOrEnv(const absl::Flag<std::string>& flag, const char* env_name,
                            const std::string& default_value, const EnvLookup& env) {
  std::string value = absl::GetFlag(flag);
  if (value != default_value) return value;
  std::optional<std::string> from_env = env(env_name);
  return from_env.has_value() && !from_env->empty() ? *std::move(from_env) : value;
}

absl::StatusOr<int> IntFlagOrEnv(const absl::Flag<int>& flag, const char* env_name,
                                 int default_value, const EnvLookup& env) {
  const int value = absl::GetFlag(flag);
  if (value != default_value) return value;
  std::optional<std::string> from_env = env(env_name);
  if (!from_env.has_value() || from_env->empty()) return value;
  int parsed;
  if (!absl::SimpleAtoi(*from_env, &parsed)) {
    return Invalid("$%s must be an integer, not '%s'", env_name, *from_env);
  }
  return parsed;
}

std::string ZeroMeans(absl::Duration zero_means) {
  return zero_means == absl::InfiniteDuration() ? "no limit" : "none";
}

// A non-negative seconds flag as a duration, 0 meaning `zero_means` (e.g. no limit).
absl::StatusOr<absl::Duration> SecondsFlag(const absl::Flag<int>& flag, const char* name,
                                           absl::Duration zero_means) {
  const int seconds = absl::GetFlag(flag);
  if (seconds < 0) return Invalid("--%s must not be negative (0: %s)", name, ZeroMeans(zero_means));
  return seconds == 0 ? zero_means : absl::Seconds(seconds);
}

// The key from --gemini_api_key_file (re-read while the server runs), else $GEMINI_API_KEY.
absl::StatusOr<gemini::ApiKey> ApiKeyFromFlags(const EnvLookup& env) {
  const std::string file = absl::GetFlag(FLAGS_gemini_api_key_file);
  if (!file.empty()) {
    const int poll_ms = absl::GetFlag(FLAGS_gemini_api_key_poll_ms);
    if (poll_ms < 0) return Invalid("--gemini_api_key_poll_ms must be >= 0");
    auto source = gemini::ApiKeyFile::Open(file, absl::Milliseconds(poll_ms));
    if (!source.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("--gemini_api_key_file: ", source.status().message()));
    }
    return gemini::ApiKey(std::shared_ptr<const gemini::ApiKeySource>(*std::move(source)));
  }
  const std::string value(absl::StripAsciiWhitespace(env("GEMINI_API_KEY").value_or("")));
  if (value.empty()) {
    return absl::FailedPreconditionError(
        "no Gemini API key: set GEMINI_API_KEY or --gemini_api_key_file");
  }
  return gemini::ApiKey(value);
}

absl::Status HttpFromFlags(ServerConfig& config) {
  http::HttpClientOptions& http = config.http;
  http.io_threads = absl::GetFlag(FLAGS_io_threads);
  if (http.io_threads < 1) return Invalid("--io_threads must be >= 1");
  http.ca_file = absl::GetFlag(FLAGS_gemini_ca_file);
  http.max_response_body_bytes =
      static_cast<std::size_t>(std::max(1, absl::GetFlag(FLAGS_max_upstream_response_mb))) << 20;
  http.idle_timeout =
      std::chrono::seconds(std::max(1, absl::GetFlag(FLAGS_upstream_idle_timeout_s)));
  http.default_phase_timeout =
      std::chrono::seconds(std::max(1, absl::GetFlag(FLAGS_upstream_phase_timeout_s)));
  const int connections = absl::GetFlag(FLAGS_max_upstream_connections_per_host);
  if (connections < 1) return Invalid("--max_upstream_connections_per_host must be >= 1");
  http.max_connections_per_host = static_cast<std::size_t>(connections);
  // Upstream requests in flight never exceed --max_concurrent_calls, so with this bound a request
  // is refused for the queue only if that flag is 0 (unlimited) and more than 1024 wait.
  http.max_waiting_requests_per_host =
      static_cast<std::size_t>(std::max(1024, absl::GetFlag(FLAGS_max_concurrent_calls)));
  return absl::OkStatus();
}

absl::Status RetryFromFlags(ServerConfig& config) {
  gemini::RetryOptions& retry = config.retry;
  retry.max_attempts = std::max(1, absl::GetFlag(FLAGS_max_attempts));
  retry.initial_backoff =
      absl::Milliseconds(std::max(0, absl::GetFlag(FLAGS_retry_initial_backoff_ms)));
  retry.max_backoff = absl::Milliseconds(std::max(0, absl::GetFlag(FLAGS_retry_max_backoff_ms)));
  retry.budget_ratio = std::max(0.0, absl::GetFlag(FLAGS_retry_budget_ratio));
  retry.attempt_timeout =
      absl::Seconds(std::max(0, absl::GetFlag(FLAGS_upstream_attempt_timeout_s)));
  retry.max_retry_delay = absl::Seconds(std::max(0, absl::GetFlag(FLAGS_max_retry_delay_s)));
  config.server.vision.max_retry_delay = retry.max_retry_delay;
  return absl::OkStatus();
}

// The gRPC port, message and memory bounds, concurrency and connection lifetimes.
absl::Status LimitsFromFlags(ServerConfig& config, const EnvLookup& env) {
  server::ServerOptions& options = config.server;
  absl::StatusOr<int> port = IntFlagOrEnv(FLAGS_port, "VISION_GATEWAY_PORT", 50051, env);
  if (!port.ok()) return port.status();
  if (*port < 0 || *port > 65535) return Invalid("--port must be 0..65535, not %d", *port);
  options.listen_address = absl::StrCat(config.listen_host, ":", *port);

  const int receive_mb = absl::GetFlag(FLAGS_max_receive_message_mb);
  if (receive_mb < 1 || int64_t{receive_mb} * 4 / 3 >= 64) {
    return Invalid("--max_receive_message_mb must be 1..47: a %d MiB request base64-encodes to "
                   "more than Gemini's 64 MiB request body cap",
                   receive_mb);
  }
  options.max_receive_message_bytes = receive_mb * 1024 * 1024;
  options.limits.cpu_threads = absl::GetFlag(FLAGS_cpu_threads);
  if (options.limits.cpu_threads < 1) return Invalid("--cpu_threads must be >= 1");
  options.limits.max_queued_cpu_work =
      static_cast<std::size_t>(std::max(0, absl::GetFlag(FLAGS_max_queued_cpu_work)));
  options.limits.max_concurrent_calls = std::max(0, absl::GetFlag(FLAGS_max_concurrent_calls));
  absl::StatusOr<absl::Duration> duration =
      SecondsFlag(FLAGS_max_call_duration_s, "max_call_duration_s", absl::InfiniteDuration());
  if (!duration.ok()) return duration.status();
  options.limits.max_call_duration = *duration;

  const int memory_mb = absl::GetFlag(FLAGS_max_request_memory_mb);
  if (memory_mb < 0 || (memory_mb > 0 && memory_mb < receive_mb)) {
    return Invalid("--max_request_memory_mb must be 0 (unbounded) or at least "
                   "--max_receive_message_mb (%d), so that every acceptable request can be "
                   "admitted",
                   receive_mb);
  }
  options.limits.max_request_memory_bytes = int64_t{memory_mb} << 20;
  options.grpc_memory_bytes = int64_t{std::max(0, absl::GetFlag(FLAGS_grpc_memory_mb))} << 20;
  options.max_concurrent_streams = std::max(0, absl::GetFlag(FLAGS_max_concurrent_streams));
  options.grpc_bdp_probe = absl::GetFlag(FLAGS_grpc_bdp_probe);

  struct {
    const absl::Flag<int>& flag;
    const char* name;
    absl::Duration* out;
  } const ages[] = {
      {FLAGS_max_connection_age_s, "max_connection_age_s", &options.max_connection_age},
      {FLAGS_max_connection_age_grace_s, "max_connection_age_grace_s",
       &options.max_connection_age_grace},
      {FLAGS_max_connection_idle_s, "max_connection_idle_s", &options.max_connection_idle},
  };
  for (const auto& age : ages) {
    absl::StatusOr<absl::Duration> value =
        SecondsFlag(age.flag, age.name, absl::InfiniteDuration());
    if (!value.ok()) return value.status();
    *age.out = *value;
  }
  absl::StatusOr<absl::Duration> drain =
      SecondsFlag(FLAGS_drain_delay_s, "drain_delay_s", absl::ZeroDuration());
  if (!drain.ok()) return drain.status();
  config.drain_delay = *drain;
  absl::StatusOr<absl::Duration> grace =
      SecondsFlag(FLAGS_shutdown_grace_s, "shutdown_grace_s", absl::ZeroDuration());
  if (!grace.ok()) return grace.status();
  config.shutdown_grace = *grace;
  return absl::OkStatus();
}

// Models, discovery, images, uploads and files: the vision tasks' options.
absl::Status VisionFromFlags(ServerConfig& config, const EnvLookup& env) {
  server::ServerOptions& options = config.server;
  vision::VisionOptions& vision = options.vision;
  vision.default_model =
      StringFlagOrEnv(FLAGS_default_model, "VISION_GATEWAY_DEFAULT_MODEL", kDefaultModel, env);
  vision.segment_model = absl::GetFlag(FLAGS_segment_model);
  for (const std::string* model : {&vision.default_model, &vision.segment_model}) {
    if (model->empty()) continue;
    vision::v1::ModelOptions named;
    named.set_model(*model);
    auto resolved = vision::ResolveModel(named, "");
    if (!resolved.ok()) {
      return Invalid("--default_model/--segment_model '%s': %s", *model,
                     resolved.status().message());
    }
  }
  if (const int refresh_s = absl::GetFlag(FLAGS_model_refresh_s); refresh_s >= 0) {
    options.discovery.enabled = true;
    options.discovery.catalog.refresh_period =
        refresh_s == 0 ? absl::InfiniteDuration() : absl::Seconds(refresh_s);
  } else if (refresh_s < -1) {
    return Invalid("--model_refresh_s must be -1 (off), 0 (at start only) or positive");
  }
  vision.files_base_uri = absl::StrCat(config.gemini.base_url, "/v1beta");
  vision.max_image_pixels =
      static_cast<int64_t>(absl::GetFlag(FLAGS_max_image_megapixels)) * 1'000'000;
  vision.default_max_dimension = absl::GetFlag(FLAGS_default_max_dimension);
  vision.max_inline_request_bytes = int64_t{absl::GetFlag(FLAGS_max_inline_request_mb)} << 20;
  vision.max_image_bytes = int64_t{std::max(1, absl::GetFlag(FLAGS_max_image_mb))} << 20;

  const int upload_mb = absl::GetFlag(FLAGS_max_upload_mb);
  const int reorient_mb = absl::GetFlag(FLAGS_max_reorient_upload_mb);
  const int hash_ttl_s = absl::GetFlag(FLAGS_file_hash_cache_ttl_s);
  const int idle_s = absl::GetFlag(FLAGS_upload_idle_timeout_s);
  if (idle_s < 0) return Invalid("--upload_idle_timeout_s must not be negative");
  vision.upload_idle_timeout = absl::Seconds(idle_s);
  if (upload_mb < 1 || upload_mb > 2048) {
    return Invalid("--max_upload_mb must be 1..2048 (Gemini stores files of at most 2 GB)");
  }
  if (reorient_mb < 0 || reorient_mb > upload_mb) {
    return Invalid("--max_reorient_upload_mb must be 0..--max_upload_mb");
  }
  if (hash_ttl_s < 0) return Invalid("--file_hash_cache_ttl_s must not be negative");
  vision.max_upload_bytes = int64_t{upload_mb} << 20;
  vision.max_reorient_upload_bytes = int64_t{reorient_mb} << 20;
  vision.file_hash_ttl = absl::Seconds(hash_ttl_s);
  // Upload chunks sending while their callers still send them hold a connection each: at most
  // half of them, so that slow uploaders leave the other half to the other RPCs.
  vision.max_filling_upload_chunks = absl::GetFlag(FLAGS_max_upstream_connections_per_host) / 2;
  const int max_items = absl::GetFlag(FLAGS_max_batch_items);
  if (max_items < 1 || max_items > 1'000'000) return Invalid("--max_batch_items must be 1..1000000");
  vision.max_batch_items = max_items;
  vision.batch_spool_dir = absl::GetFlag(FLAGS_batch_spool_dir);
  if (vision.batch_spool_dir.empty()) return Invalid("--batch_spool_dir must name a directory");
  // --- batch2 ---
  const int spool_mb = absl::GetFlag(FLAGS_batch_spool_max_mb);
  if (spool_mb < 0) return Invalid("--batch_spool_max_mb must be 0 (unbounded) or more");
  vision.batch_spool_max_bytes = int64_t{spool_mb} << 20;
  // --- end batch2 ---
  vision.max_polygon_points = std::max(3, absl::GetFlag(FLAGS_max_polygon_points));
  vision.max_mask_png_pixels = std::max(1, absl::GetFlag(FLAGS_max_mask_pixels));
  // Every replica derives the same key for the tags of files stored upright (file_id.h).
  vision.file_tag_key = vision::FileTagKeyFrom(config.gemini.api_key.Current());
  return absl::OkStatus();
}

// TLS, reflection, the health-only port, caller authentication, per-caller limits, cost guards.
absl::Status SecurityFromFlags(ServerConfig& config) {
  server::ServerOptions& options = config.server;
  const absl::Duration reload =
      absl::Seconds(std::max(1, absl::GetFlag(FLAGS_credentials_reload_interval_s)));
  const std::string cert = absl::GetFlag(FLAGS_tls_cert_file);
  const std::string key = absl::GetFlag(FLAGS_tls_key_file);
  const std::string client_ca = absl::GetFlag(FLAGS_tls_client_ca_file);
  if (!cert.empty() || !key.empty() || !client_ca.empty()) {
    if (cert.empty() || key.empty()) {
      return Invalid("TLS needs both --tls_cert_file and --tls_key_file");
    }
    options.tls = server::TlsOptions{cert, key, client_ca, reload};
  }
  options.reflection = absl::GetFlag(FLAGS_reflection);
  if (const int health_port = absl::GetFlag(FLAGS_health_port); health_port >= 0) {
    options.health_listen_address = absl::StrCat(config.listen_host, ":", health_port);
  }

  vision::CostLimits& cost = options.vision.cost;
  const std::string models = absl::GetFlag(FLAGS_allowed_models);
  if (models != "*") {
    cost.allowed_models = absl::StrSplit(models, ',', absl::SkipWhitespace());
    for (std::string& m : cost.allowed_models) {
      absl::string_view id = absl::StripAsciiWhitespace(m);
      absl::ConsumePrefix(&id, "models/");
      m = std::string(id);
    }
    if (cost.allowed_models.empty()) {
      return Invalid("--allowed_models is empty (use '*' to allow any model)");
    }
    if (!vision::CheckModelAllowed(options.vision.default_model, cost).ok()) {
      return Invalid("--default_model %s is not in --allowed_models",
                     options.vision.default_model);
    }
    if (!options.vision.segment_model.empty() &&
        !vision::CheckModelAllowed(options.vision.segment_model, cost).ok()) {
      return Invalid("--segment_model %s is not in --allowed_models",
                     options.vision.segment_model);
    }
  }
  cost.max_output_tokens = std::max(0, absl::GetFlag(FLAGS_max_output_tokens));
  cost.max_thinking_budget = std::max(-1, absl::GetFlag(FLAGS_max_thinking_budget));
  cost.max_thinking_level = absl::AsciiStrToUpper(absl::GetFlag(FLAGS_max_thinking_level));
  if (!cost.max_thinking_level.empty() && !vision::IsThinkingLevelName(cost.max_thinking_level)) {
    return Invalid("--max_thinking_level must be MINIMAL, LOW, MEDIUM or HIGH");
  }
  options.vision.max_images_per_request = std::max(1, absl::GetFlag(FLAGS_max_images_per_request));
  cost.max_image_bytes_per_request =
      std::max<int64_t>(0, absl::GetFlag(FLAGS_max_image_bytes_per_request));

  server::AuthOptions auth;
  auth.tokens_file = absl::GetFlag(FLAGS_auth_tokens_file);
  auth.client_cert_identity = absl::GetFlag(FLAGS_auth_client_cert);
  auth.reload_interval = reload;
  auth.limits.requests_per_second = std::max(0.0, absl::GetFlag(FLAGS_per_caller_rps));
  auth.limits.burst = std::max(0, absl::GetFlag(FLAGS_per_caller_burst));
  auth.limits.max_concurrent_calls =
      std::max(0, absl::GetFlag(FLAGS_per_caller_max_concurrent_calls));
  auto overrides = server::ParseCallerOverrides(absl::GetFlag(FLAGS_caller_overrides));
  if (!overrides.ok()) return Invalid("%s", overrides.status().message());
  auth.overrides = *std::move(overrides);
  if (auth.client_cert_identity && client_ca.empty()) {
    return Invalid("--auth_client_cert needs mTLS (--tls_client_ca_file)");
  }
  const bool authenticating = !auth.tokens_file.empty() || auth.client_cert_identity;
  if (authenticating) {
    options.auth = std::move(auth);
  } else if (auth.limits.requests_per_second > 0 || auth.limits.max_concurrent_calls > 0 ||
             !auth.overrides.empty()) {
    return Invalid("--per_caller_* and --caller_overrides need caller authentication "
                   "(--auth_tokens_file or --auth_client_cert)");
  }

  // Errors reaching callers never show the key or the upstream's host.
  config.leak_filter.secret_source = [api_key = config.gemini.api_key] {
    return api_key.Current();
  };
  const std::string host = server::UpstreamHostOf(config.gemini.base_url);
  if (!host.empty()) config.leak_filter.upstream_hosts.push_back(host);
  return absl::OkStatus();
}

absl::Status MetricsFromFlags(ServerConfig& config, const EnvLookup& env) {
  absl::StatusOr<int> port =
      IntFlagOrEnv(FLAGS_metrics_port, "VISION_GATEWAY_METRICS_PORT", 9464, env);
  if (!port.ok()) return port.status();
  if (*port < -1 || *port > 65535) {
    return Invalid("--metrics_port must be -1 (off) or 0..65535, not %d", *port);
  }
  config.metrics_port = *port;
  std::vector<std::string>& known = config.metrics.known_models;
  known = {config.server.vision.default_model};
  if (!config.server.vision.segment_model.empty()) {
    known.push_back(config.server.vision.segment_model);
  }
  for (const char* model : kWellKnownModels) known.push_back(model);
  for (absl::string_view model :
       absl::StrSplit(absl::GetFlag(FLAGS_metrics_models), ',', absl::SkipWhitespace())) {
    known.emplace_back(absl::StripAsciiWhitespace(model));
  }
  return absl::OkStatus();
}


absl::Status ResultCacheFromFlags(ServerConfig& config) {
  ResultCacheConfig& cache = config.result_cache;
  const int cache_mb = absl::GetFlag(FLAGS_result_cache_mb);
  const int ttl_s = absl::GetFlag(FLAGS_result_cache_ttl_s);
  const int max_entry_kb = absl::GetFlag(FLAGS_result_cache_max_entry_kb);
  if (cache_mb < 0 || cache_mb > (1 << 20)) {
    return Invalid("--result_cache_mb must be 0..1048576 (0: off)");
  }
  if (ttl_s < 1) return Invalid("--result_cache_ttl_s must be >= 1");
  if (max_entry_kb < 1 || max_entry_kb > (1 << 20)) {
    return Invalid("--result_cache_max_entry_kb must be 1..1048576");
  }
  cache.memory_bytes = static_cast<std::size_t>(cache_mb) << 20;
  cache.caching.ttl = absl::Seconds(ttl_s);
  cache.caching.shared = absl::GetFlag(FLAGS_result_cache_shared);
  cache.caching.max_entry_bytes = static_cast<std::size_t>(max_entry_kb) << 10;
  if (const std::string endpoint = absl::GetFlag(FLAGS_result_cache_redis); !endpoint.empty()) {
    absl::StatusOr<redis::RedisEndpoint> parsed = redis::ParseRedisEndpoint(endpoint);
    if (!parsed.ok()) return Invalid("--result_cache_redis: %s", parsed.status().message());
    redis::RedisOptions options;
    options.host = parsed->host;
    options.port = parsed->port;
    // A stored result larger than the cache takes is not stored; Redis need not take more.
    options.max_value_bytes = cache.caching.max_entry_bytes;
    cache.redis = std::move(options);
  }
  return absl::OkStatus();
}

}  // namespace

EnvLookup ProcessEnvironment() {
  return [](const char* name) -> std::optional<std::string> {
    const char* value = std::getenv(name);
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

absl::StatusOr<LogConfig> LogConfigFromFlags() {
  const auto format = ParseLogFormat(absl::GetFlag(FLAGS_log_format));
  const auto level = ParseLogSeverity(absl::GetFlag(FLAGS_log_level));
  if (!format || !level) {
    return Invalid("--log_format must be text|json and --log_level debug|info|warning|error");
  }
  return LogConfig{*format, *level};
}

absl::StatusOr<ServerConfig> ServerConfigFromFlags(const EnvLookup& env) {
  ServerConfig config;
  config.listen_host = absl::GetFlag(FLAGS_listen_host);
  absl::StatusOr<gemini::ApiKey> key = ApiKeyFromFlags(env);
  if (!key.ok()) return key.status();
  config.gemini.base_url =
      StringFlagOrEnv(FLAGS_gemini_base_url, "GEMINI_BASE_URL", kDefaultBaseUrl, env);
  config.gemini.api_key = *std::move(key);
  if (const int timeout_s = absl::GetFlag(FLAGS_upstream_timeout_s); timeout_s >= 1) {
    config.gemini.default_timeout = std::chrono::seconds(timeout_s);
  } else {
    return Invalid("--upstream_timeout_s must be >= 1");
  }
  // In this order: the security checks need the models, metrics the models too.
  absl::Status status = HttpFromFlags(config);
  if (status.ok()) status = RetryFromFlags(config);
  if (status.ok()) status = LimitsFromFlags(config, env);
  if (status.ok()) status = VisionFromFlags(config, env);
  if (status.ok()) status = SecurityFromFlags(config);
  if (status.ok()) status = MetricsFromFlags(config, env);
  if (status.ok()) status = ResultCacheFromFlags(config);
  if (!status.ok()) return status;
  return config;
}

}  // namespace vision_gateway::config
