// JSON codec of generateContent / streamGenerateContent / countTokens as the gateway uses them:
// the requests it sends and the responses it receives (lowerCamelCase on the wire).
//
// Encoding writes the body string directly (one reservation; image bytes are base64-encoded
// straight into it). Every input is bounded by JsonCodecOptions::max_body_bytes. Decoders ignore
// unknown fields; a field of the wrong type is an error that names the field's path, never its
// value.
#ifndef VISION_GATEWAY_SERVICE_GEMINI_GENERATE_CODEC_H_
#define VISION_GATEWAY_SERVICE_GEMINI_GENERATE_CODEC_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "service/gemini/json_codec_options.h"
#include "service/gemini/types.h"

namespace vision_gateway::gemini {

// The body of generateContent / streamGenerateContent. INVALID_ARGUMENT when a part carries more
// than one data field (text, inlineData, fileData), response_json_schema is not a JSON document,
// temperature is not finite, or the body would exceed max_body_bytes.
absl::StatusOr<std::string> EncodeGenerateContentRequest(const GenerateContentRequest& request,
                                                         const JsonCodecOptions& options = {});

// The body of countTokens: {"contents": [...]}.
absl::StatusOr<std::string> EncodeCountTokensRequest(const CountTokensRequest& request,
                                                     const JsonCodecOptions& options = {});

// Compact JSON as Gemini sends it (zero token counts and empty strings are omitted): what the
// result cache stores, and what the emulator and tests answer with.
std::string EncodeGenerateContentResponse(const GenerateContentResponse& response);

// INTERNAL "malformed Gemini response: ..." when the text is not JSON or a field has the wrong
// type; RESOURCE_EXHAUSTED when bigger than max_body_bytes.
absl::StatusOr<GenerateContentResponse> DecodeGenerateContentResponse(
    std::string_view json, const JsonCodecOptions& options = {});
absl::StatusOr<CountTokensResponse> DecodeCountTokensResponse(std::string_view json,
                                                              const JsonCodecOptions& options = {});

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_GENERATE_CODEC_H_
