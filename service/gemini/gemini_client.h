// The Gemini stubs the vision layer depends on (and tests fake), one per Gemini service:
// GenerateStub (generate_stub.h: the models resource), FilesStub (files_stub.h) and BatchesStub
// (batches_stub.h). The REST
// client implements both over one HTTP client; decorators wrap each stub on its own
// (instrumented_gemini_client.h, retrying_gemini_client.h) and main.cc composes them.
#ifndef VISION_GATEWAY_SERVICE_GEMINI_GEMINI_CLIENT_H_
#define VISION_GATEWAY_SERVICE_GEMINI_GEMINI_CLIENT_H_

#include <chrono>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/statusor.h"
#include "service/gemini/api_key.h"
#include "service/gemini/batches_stub.h"
#include "service/gemini/files_stub.h"
#include "service/gemini/generate_stub.h"
#include "service/gemini/pending_call.h"

namespace vision_gateway::http {
class HttpClient;
}

namespace vision_gateway::gemini {

struct GeminiOptions {
  // Scheme, host and optional port; no trailing path. http:// only for loopback (emulator, tests).
  std::string base_url = "https://generativelanguage.googleapis.com";
  // API version path segment.
  std::string api_version = "v1beta";
  // Sent as x-goog-api-key; never logged nor put in errors. A fixed string or a source that can
  // change at run time (api_key_file.h); each upstream request reads it once, when it starts.
  ApiKey api_key;
  // Bound for a call whose caller gave no deadline (CallOptions::deadline infinite). A call with a
  // deadline is bounded by it alone, however far away it is.
  std::chrono::milliseconds default_timeout{120000};
};

// One object serving both stubs: the REST client, and test fakes.
class GeminiClient : public GenerateStub, public FilesStub {};

// The stubs a service uses, one per Gemini service. Built from one object serving both (the REST
// client, a fake) or from two decorated stacks.
struct GeminiStubs {
  GeminiStubs() = default;
  GeminiStubs(std::shared_ptr<GenerateStub> generate_stub, std::shared_ptr<FilesStub> files_stub)
      : generate(std::move(generate_stub)), files(std::move(files_stub)) {}
  template <typename Both,
            typename = std::enable_if_t<std::is_base_of_v<GenerateStub, Both> &&
                                        std::is_base_of_v<FilesStub, Both>>>
  GeminiStubs(std::shared_ptr<Both> both)  // NOLINT(google-explicit-constructor)
      : generate(both), files(both) {}
  template <typename Both,
            typename = std::enable_if_t<std::is_base_of_v<GenerateStub, Both> &&
                                        std::is_base_of_v<FilesStub, Both>>>
  GeminiStubs(std::unique_ptr<Both> both)  // NOLINT(google-explicit-constructor)
      : GeminiStubs(std::shared_ptr<Both>(std::move(both))) {}

  std::shared_ptr<GenerateStub> generate;
  std::shared_ptr<FilesStub> files;
  // The Batch API (batches_stub.h); null in a service that offers no batch jobs.
  std::shared_ptr<BatchesStub> batches;
};

// The REST implementation of both stubs over the HTTP client.
absl::StatusOr<std::unique_ptr<GeminiClient>> MakeGeminiClient(
    GeminiOptions options, std::shared_ptr<http::HttpClient> http);

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_GEMINI_CLIENT_H_
