// gemini-emulator: serves the Gemini REST API offline until SIGINT/SIGTERM.
//   gemini-emulator --port 0 [--host 127.0.0.1] [--api_key K] [--delay_ms D] ...
// Prints "gemini-emulator listening on http://HOST:PORT" once bound.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "emulator/emulator.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "Address to listen on.");
ABSL_FLAG(int, port, 0, "Port to listen on; 0 picks a free one (printed on stdout).");
ABSL_FLAG(std::string, api_key, "",
          "Accepted API key; empty accepts any non-empty key. Falls back to "
          "$GEMINI_EMULATOR_API_KEY.");
ABSL_FLAG(int, threads, 2, "Server threads.");
ABSL_FLAG(int, delay_ms, 0, "Delay before the headers of every generated response.");
ABSL_FLAG(int, stream_event_delay_ms, 0, "Delay between SSE events of generated responses.");
ABSL_FLAG(std::string, mask_format, "png", "Segmentation masks: png or polygon.");
ABSL_FLAG(bool, fence, false, "Wrap detection/segmentation JSON in ```json fences.");
ABSL_FLAG(std::string, prose_prefix, "", "Text before detection/segmentation JSON.");
ABSL_FLAG(int, stream_chunk_chars, 16, "Bytes of spatial JSON per SSE event.");
ABSL_FLAG(std::string, model_version, "", "Reported modelVersion; empty echoes the model id.");
ABSL_FLAG(int, file_processing_ms, 0,
          "Uploaded files stay PROCESSING this long before they become ACTIVE.");
ABSL_FLAG(std::string, file_dir, "",
          "Directory for uploaded bytes (one file per upload); empty: $TMPDIR or /tmp.");
ABSL_FLAG(int64_t, max_stored_file_mb, 20480,
          "Bound on all uploaded bytes kept at once, in MiB (429 beyond it).");
ABSL_FLAG(int64_t, batch_processing_ms, 100,
          "Batch jobs stay PENDING for the first half of this, RUNNING for the second, then "
          "end (on the clock POST /emulator/clock advances).");
ABSL_FLAG(bool, strict_fields, true, "Reject unknown request fields with 400, like the real API.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Offline Gemini REST API emulator (generateContent, streamGenerateContent, countTokens, "
      "files, batches). Admin: POST /emulator/script, POST|GET /emulator/config, GET /emulator/requests, "
      "POST /emulator/reset, GET /emulator/status, POST /emulator/clock {\"advance_ms\": N}, "
      "POST /emulator/upload_faults [{\"status\": 503, \"keep_bytes\": false, "
      "\"drop_connection\": false}].");
  absl::ParseCommandLine(argc, argv);

  namespace em = vision_gateway::emulator;
  em::EmulatorOptions options;
  options.host = absl::GetFlag(FLAGS_host);
  options.port = absl::GetFlag(FLAGS_port);
  options.api_key = absl::GetFlag(FLAGS_api_key);
  if (options.api_key.empty()) {
    if (const char* env = std::getenv("GEMINI_EMULATOR_API_KEY")) options.api_key = env;
  }
  options.threads = absl::GetFlag(FLAGS_threads);
  em::EmulatorConfig& config = options.config;
  config.response_delay = std::chrono::milliseconds(absl::GetFlag(FLAGS_delay_ms));
  config.stream_event_delay = std::chrono::milliseconds(absl::GetFlag(FLAGS_stream_event_delay_ms));
  const std::string mask_format = absl::GetFlag(FLAGS_mask_format);
  if (mask_format == "polygon") {
    config.mask_format = em::MaskFormat::kPolygon;
  } else if (mask_format != "png") {
    std::fprintf(stderr, "gemini-emulator: --mask_format must be png or polygon\n");
    return 2;
  }
  config.fence = absl::GetFlag(FLAGS_fence);
  config.prose_prefix = absl::GetFlag(FLAGS_prose_prefix);
  config.stream_chunk_chars = absl::GetFlag(FLAGS_stream_chunk_chars);
  config.model_version = absl::GetFlag(FLAGS_model_version);
  config.strict_fields = absl::GetFlag(FLAGS_strict_fields);
  config.file_processing = std::chrono::milliseconds(absl::GetFlag(FLAGS_file_processing_ms));
  config.batch_processing = std::chrono::milliseconds(absl::GetFlag(FLAGS_batch_processing_ms));
  options.file_directory = absl::GetFlag(FLAGS_file_dir);
  options.max_stored_file_bytes = absl::GetFlag(FLAGS_max_stored_file_mb) << 20;
  if (options.port < 0 || options.port > 65535 || config.stream_chunk_chars < 1 ||
      options.threads < 1 || config.response_delay.count() < 0 ||
      config.stream_event_delay.count() < 0 || config.file_processing.count() < 0 ||
      config.batch_processing.count() < 0 ||
      options.max_stored_file_bytes <= 0) {
    std::fprintf(stderr, "gemini-emulator: invalid flag value\n");
    return 2;
  }

  // Block the stop signals in every thread; the main thread waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<std::unique_ptr<em::Emulator>> emulator = em::Emulator::Start(options);
  if (!emulator.ok()) {
    std::fprintf(stderr, "gemini-emulator: %s\n", emulator.status().ToString().c_str());
    return 1;
  }
  std::printf("gemini-emulator listening on %s\n", (*emulator)->base_url().c_str());
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  std::fprintf(stderr, "gemini-emulator: signal %d, stopping\n", signal_number);
  (*emulator)->Stop();
  return 0;
}
