// Scene-mode answers of the model methods: generateContent, streamGenerateContent (SSE or
// JSON array) and countTokens. Pure functions of the request, the config and the file store.
#ifndef VISION_GATEWAY_EMULATOR_GEMINI_API_H_
#define VISION_GATEWAY_EMULATOR_GEMINI_API_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "emulator/emulator.h"

namespace vision_gateway::emulator {

struct ModelCall {
  std::string api_version;  // "v1" or "v1beta"
  std::string model;        // id, without "models/"
  std::string method;       // "generateContent", "streamGenerateContent" or "countTokens"
  bool alt_sse = false;     // ?alt=sse
  std::string_view body;
  uint64_t sequence = 0;    // distinct per request; seeds the responseId
};

// The model `id` names when it is listed (not retired); null otherwise.
const EmulatorModel* FindListedModel(const EmulatorConfig& config, std::string_view id);

// GET /{version}/models (page_token/page_size as in the query; page_size 0: 50) and
// GET /{version}/models/{id}.
ScriptedResponse HandleListModels(const EmulatorConfig& config, std::string_view page_size,
                                  std::string_view page_token);
ScriptedResponse HandleGetModel(const EmulatorConfig& config, std::string_view api_version,
                                std::string_view id);

// Contents of an uploaded file referenced by a fileData part.
struct FileContent {
  std::string mime_type;
  std::shared_ptr<const std::string> bytes;
  bool active = true;
};
// Resolves a fileData fileUri ("https://.../v1beta/files/abc" or "files/abc"); nullopt when
// unknown.
using FileResolver = std::function<std::optional<FileContent>(std::string_view uri)>;

ScriptedResponse HandleModelCall(const ModelCall& call, const EmulatorConfig& config,
                                 const FileResolver& files);

// A pretty JSON error response with the standard envelope.
ScriptedResponse ErrorResponse(int code, std::string_view message,
                               std::string_view details_json = {});

// The standard Google front-end headers every generated response carries.
void AddGoogleHeaders(HeaderList& headers);

// Tokens of one image by the Gemini 2.x tiling rule (258 per 768x768 tile).
int ImageTokens(int width, int height);

}  // namespace vision_gateway::emulator

#endif  // VISION_GATEWAY_EMULATOR_GEMINI_API_H_
