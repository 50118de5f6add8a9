// The other direction of the Gemini JSON codecs: decoding requests as Gemini receives them and
// encoding responses as Gemini sends them, for round-trip tests and tooling. Not in the
// production library: it is vg_gemini_reverse_codec, linked by tests (and tools) only.
#ifndef VISION_GATEWAY_SERVICE_GEMINI_REVERSE_CODEC_H_
#define VISION_GATEWAY_SERVICE_GEMINI_REVERSE_CODEC_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "service/gemini/json_codec_options.h"
#include "service/gemini/types.h"

namespace vision_gateway::gemini {

// Accepts lowerCamelCase and snake_case keys; inlineData.data is base64 (standard or URL-safe,
// padding optional) and is decoded into Blob::data. responseJsonSchema is re-serialised compactly.
// INVALID_ARGUMENT "invalid request: ..." on bad JSON, wrong types or bad base64.
absl::StatusOr<GenerateContentRequest> DecodeGenerateContentRequest(
    std::string_view json, const JsonCodecOptions& options = {});
// {"contents": [...]} or {"generateContentRequest": {"contents": [...]}}.
absl::StatusOr<CountTokensRequest> DecodeCountTokensRequest(std::string_view json,
                                                            const JsonCodecOptions& options = {});

// Compact JSON as Gemini sends it (zero token counts and empty strings are omitted).
// EncodeGenerateContentResponse is in generate_codec.h (the result cache stores responses).
std::string EncodeCountTokensResponse(const CountTokensResponse& response);

// A File as Gemini writes it (for the emulator's round-trip tests and tooling).
std::string EncodeFile(const File& file);

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_REVERSE_CODEC_H_
