// LoadTarget that sends the gateway's load straight to a Gemini REST endpoint (normally the
// gemini-emulator): plain HTTP/1.1 POSTs of models/{model}:streamGenerateContent?alt=sse whose
// SSE body is read to the end, on keep-alive connections (one per request in flight). Used as the
// baseline: gateway overhead = gateway latency - direct latency at the same load.
#ifndef VISION_GATEWAY_BENCH_GEMINI_TARGET_H_
#define VISION_GATEWAY_BENCH_GEMINI_TARGET_H_

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "bench/load_target.h"

namespace vision_gateway::bench {

struct GeminiTargetOptions {
  std::string target;                // host:port or http://host:port (no TLS: loopback use)
  std::string rpc = "caption";       // only caption has a baseline so far
  std::string model = "gemini-3-flash-preview";
  std::string api_key;               // sent as x-goog-api-key; never printed
  std::string image;                 // encoded image bytes
  std::string mime_type = "image/png";
  std::string prompt;                // empty: "Caption this image."
  // When set, sent verbatim as the request body instead of the Caption body built from image
  // and prompt (any RPC: e.g. the body the gateway itself sent, recorded by the emulator).
  std::string body;
  std::chrono::milliseconds timeout{30000};  // per request: connect + write + whole body
  int io_threads = 2;
};

absl::StatusOr<std::unique_ptr<LoadTarget>> MakeGeminiTarget(const GeminiTargetOptions& options);

// The streamGenerateContent body the gateway's Caption sends for one image and a prompt:
// {"contents":[{"role":"user","parts":[{"inlineData":{...}},{"text":...}]}]}.
std::string CaptionRequestJson(const std::string& image, const std::string& mime_type,
                               const std::string& prompt);

}  // namespace vision_gateway::bench

#endif  // VISION_GATEWAY_BENCH_GEMINI_TARGET_H_
