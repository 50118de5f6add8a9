// vision-server: flags and environment → options structs, wiring, signals.
#include <signal.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/common/log.h"
#include "service/gemini/api_key_file.h"
#include "service/gemini/gemini_client.h"
#include "service/http/http_client.h"
#include "service/server/server.h"

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
ABSL_FLAG(std::string, default_model, "gemini-2.5-flash",
          "Model used when a request names none. Env: VISION_GATEWAY_DEFAULT_MODEL.");
ABSL_FLAG(int, max_receive_message_mb, 64, "Largest gRPC request accepted, in MiB.");
ABSL_FLAG(int, io_threads, 2, "Threads doing upstream HTTP I/O.");
ABSL_FLAG(int, cpu_threads, 2, "Threads preparing images (decode, orientation, downscale).");
ABSL_FLAG(int, upstream_timeout_s, 120, "Bound for an upstream call when the caller sets no deadline.");
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
ABSL_FLAG(int, default_max_dimension, 0,
          "Downscale Detect/Segment images to this longer side when the request gives none (0: off).");

namespace {

using vision_gateway::LogError;
using vision_gateway::LogInfo;

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

// The key from --gemini_api_key_file (re-read while the server runs), else $GEMINI_API_KEY.
bool GetApiKey(vision_gateway::gemini::ApiKey* key) {
  const std::string file = absl::GetFlag(FLAGS_gemini_api_key_file);
  if (!file.empty()) {
    const int poll_ms = absl::GetFlag(FLAGS_gemini_api_key_poll_ms);
    if (poll_ms < 0) {
      LogError("--gemini_api_key_poll_ms must be >= 0");
      return false;
    }
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

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("vision-server: Gemini vision tasks behind a gRPC contract");
  absl::ParseCommandLine(argc, argv);
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

  const int port = IntFlagOrEnv(FLAGS_port, "VISION_GATEWAY_PORT", 50051);
  options.listen_address = absl::StrCat(absl::GetFlag(FLAGS_listen_host), ":", port);
  options.max_receive_message_bytes = absl::GetFlag(FLAGS_max_receive_message_mb) * 1024 * 1024;
  options.cpu_threads = absl::GetFlag(FLAGS_cpu_threads);
  options.vision.default_model = StringFlagOrEnv(
      FLAGS_default_model, "VISION_GATEWAY_DEFAULT_MODEL", "gemini-2.5-flash");
  options.vision.files_base_uri = absl::StrCat(gemini_options.base_url, "/v1beta");
  options.vision.max_image_pixels =
      static_cast<int64_t>(absl::GetFlag(FLAGS_max_image_megapixels)) * 1'000'000;
  options.vision.default_max_dimension = absl::GetFlag(FLAGS_default_max_dimension);

  std::shared_ptr<vision_gateway::gemini::GeminiClient> client = *std::move(gemini);
  auto server = vision_gateway::server::VisionServer::Start(options, client);
  if (!server.ok()) {
    LogError("%s", server.status().ToString());
    return 1;
  }
  LogInfo("vision-server listening on %s:%d, Gemini at %s, default model %s",
          absl::GetFlag(FLAGS_listen_host), (*server)->port(), gemini_options.base_url,
          options.vision.default_model);

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
