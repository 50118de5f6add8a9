// vision-bench: load generator for any server speaking vision.v1, with a baseline mode that sends
// the same load straight to a Gemini REST endpoint (the emulator). See bench/README.md.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "bench/gemini_target.h"
#include "bench/grpc_target.h"
#include "bench/load_runner.h"
#include "bench/load_target.h"
#include "tests/testing/test_images.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051",
          "host:port of the vision.v1 server (--mode grpc) or of the Gemini REST endpoint "
          "(--mode gemini, plain HTTP).");
ABSL_FLAG(std::string, mode, "grpc",
          "grpc: vision.v1 streams; gemini: streamGenerateContent?alt=sse POSTs (baseline).");
ABSL_FLAG(std::string, rpc, "caption", "caption | detect | segment.");
ABSL_FLAG(int, concurrency, 0, "Closed loop: keep this many requests in flight.");
ABSL_FLAG(double, rate, 0, "Open loop: start this many requests per second.");
ABSL_FLAG(double, duration_s, 10, "Measurement window in seconds.");
ABSL_FLAG(double, warmup_s, 2, "Warm-up before the window (not measured).");
ABSL_FLAG(double, timeout_s, 30, "Deadline of every request.");
ABSL_FLAG(double, drain_timeout_s, 0,
          "After the window, wait this long for requests in flight (0: timeout_s + 5).");
ABSL_FLAG(int, channels, 4, "gRPC channels (HTTP/2 connections) to spread the load over.");
ABSL_FLAG(std::string, image, "", "Image file to send; empty: a generated PNG.");
ABSL_FLAG(int, image_width, 64, "Width of the generated PNG.");
ABSL_FLAG(int, image_height, 48, "Height of the generated PNG.");
ABSL_FLAG(std::string, prompt, "", "Prompt; empty: the server's (or Gemini baseline's) default.");
ABSL_FLAG(std::string, model, "",
          "Model id; empty: the server's default (grpc) or gemini-3-flash-preview (gemini).");
ABSL_FLAG(std::string, api_key, "",
          "--mode gemini: key sent as x-goog-api-key (default: env GEMINI_API_KEY, else "
          "bench-key).");
ABSL_FLAG(int, io_threads, 2, "--mode gemini: client I/O threads.");
ABSL_FLAG(std::string, gemini_body, "",
          "--mode gemini: file with the exact JSON request body to send (e.g. what the gateway "
          "sent, from the emulator's GET /emulator/requests); default: a Caption body built from "
          "--image and --prompt.");
ABSL_FLAG(int64_t, max_outstanding, 50000, "Open loop: skip starts beyond this many in flight.");
ABSL_FLAG(int, server_pid, 0, "Sample VmRSS and thread count of this process during the run.");
ABSL_FLAG(bool, json, false, "Also print the result as one JSON line.");
ABSL_FLAG(std::string, label, "", "Label copied into the JSON line.");
ABSL_FLAG(bool, fail_on_error, false,
          "Exit 1 if any request failed or did not finish (e.g. to check that all complete).");

namespace {

using vision_gateway::bench::LoadTarget;

std::chrono::milliseconds Millis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

absl::StatusOr<std::string> LoadImage() {
  const std::string path = absl::GetFlag(FLAGS_image);
  if (path.empty()) {
    const int width = absl::GetFlag(FLAGS_image_width);
    const int height = absl::GetFlag(FLAGS_image_height);
    if (width < 8 || height < 8 || width > 4096 || height > 4096) {
      return absl::InvalidArgumentError("--image_width/--image_height must be in [8, 4096]");
    }
    // White with a red rectangle in the middle: something the emulator's scene mode names.
    return vision_gateway::testing::MakePng(width, height, {255, 255, 255}, {230, 20, 20},
                                            width / 4, height / 4, width * 3 / 4,
                                            height * 3 / 4);
  }
  return ReadFile(path);
}

absl::StatusOr<std::unique_ptr<LoadTarget>> MakeTarget(const std::string& image) {
  const std::string mode = absl::GetFlag(FLAGS_mode);
  const auto timeout = Millis(absl::GetFlag(FLAGS_timeout_s));
  if (mode == "grpc") {
    vision_gateway::bench::GrpcTargetOptions options;
    options.target = absl::GetFlag(FLAGS_target);
    options.channels = absl::GetFlag(FLAGS_channels);
    options.rpc = absl::GetFlag(FLAGS_rpc);
    options.image = image;
    options.prompt = absl::GetFlag(FLAGS_prompt);
    options.model = absl::GetFlag(FLAGS_model);
    options.timeout = timeout;
    return vision_gateway::bench::MakeGrpcTarget(options);
  }
  if (mode == "gemini") {
    vision_gateway::bench::GeminiTargetOptions options;
    options.target = absl::GetFlag(FLAGS_target);
    options.rpc = absl::GetFlag(FLAGS_rpc);
    if (!absl::GetFlag(FLAGS_model).empty()) options.model = absl::GetFlag(FLAGS_model);
    options.api_key = absl::GetFlag(FLAGS_api_key);
    if (options.api_key.empty()) {
      const char* env = std::getenv("GEMINI_API_KEY");
      options.api_key = env != nullptr && *env != '\0' ? env : "bench-key";
    }
    options.image = image;
    options.prompt = absl::GetFlag(FLAGS_prompt);
    options.timeout = timeout;
    options.io_threads = absl::GetFlag(FLAGS_io_threads);
    if (const std::string body_file = absl::GetFlag(FLAGS_gemini_body); !body_file.empty()) {
      auto body = ReadFile(body_file);
      if (!body.ok()) return body.status();
      options.body = *std::move(body);
    }
    return vision_gateway::bench::MakeGeminiTarget(options);
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown --mode '", mode, "' (grpc, gemini)"));
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "vision-bench --target HOST:PORT (--concurrency N | --rate R) [--mode grpc|gemini] "
      "[--duration_s D] [--warmup_s W] [--server_pid PID] [--json]");
  absl::ParseCommandLine(argc, argv);

  vision_gateway::bench::RunOptions run;
  run.concurrency = absl::GetFlag(FLAGS_concurrency);
  run.rate = absl::GetFlag(FLAGS_rate);
  if ((run.concurrency > 0) == (run.rate > 0)) {
    std::fprintf(stderr, "vision-bench: give exactly one of --concurrency N or --rate R\n");
    return 2;
  }
  if (absl::GetFlag(FLAGS_duration_s) <= 0 || absl::GetFlag(FLAGS_warmup_s) < 0 ||
      absl::GetFlag(FLAGS_timeout_s) <= 0) {
    std::fprintf(stderr, "vision-bench: --duration_s and --timeout_s must be > 0, "
                         "--warmup_s >= 0\n");
    return 2;
  }
  run.duration = Millis(absl::GetFlag(FLAGS_duration_s));
  run.warmup = Millis(absl::GetFlag(FLAGS_warmup_s));
  const double drain = absl::GetFlag(FLAGS_drain_timeout_s);
  run.drain_timeout = Millis(drain > 0 ? drain : absl::GetFlag(FLAGS_timeout_s) + 5);
  run.max_outstanding = absl::GetFlag(FLAGS_max_outstanding);
  run.server_pid = absl::GetFlag(FLAGS_server_pid);

  auto image = LoadImage();
  if (!image.ok()) {
    std::fprintf(stderr, "vision-bench: %s\n", image.status().ToString().c_str());
    return 2;
  }
  auto target = MakeTarget(*image);
  if (!target.ok()) {
    std::fprintf(stderr, "vision-bench: %s\n", target.status().ToString().c_str());
    return 2;
  }

  const vision_gateway::bench::RunReport report = vision_gateway::bench::RunLoad(**target, run);
  std::fputs(vision_gateway::bench::FormatHuman(report).c_str(), stdout);
  if (absl::GetFlag(FLAGS_json)) {
    std::printf("%s\n", vision_gateway::bench::FormatJson(report, absl::GetFlag(FLAGS_label)).c_str());
  }
  std::fflush(stdout);
  if (report.unfinished > 0) {
    // Requests still in flight reference the target; do not tear it down under them.
    std::_Exit(absl::GetFlag(FLAGS_fail_on_error) ? 1 : 0);
  }
  if (absl::GetFlag(FLAGS_fail_on_error) && report.failed > 0) return 1;
  return 0;
}
