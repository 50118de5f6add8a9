// JSON wire codec for the Gemini REST messages in types.h (lowerCamelCase on the wire).
//
// Encoding writes the body string directly (one reservation; image bytes are base64-encoded
// straight into it). Decoding uses Boost.JSON inside json_codec.cc only. Every input is bounded by
// JsonCodecOptions::max_body_bytes. Decoders ignore unknown fields; a field of the wrong type is an
// error that names the field's path, never its value.
#ifndef VISION_GATEWAY_SERVICE_GEMINI_JSON_CODEC_H_
#define VISION_GATEWAY_SERVICE_GEMINI_JSON_CODEC_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "service/gemini/types.h"

namespace vision_gateway::gemini {

inline constexpr std::size_t kDefaultMaxJsonBodyBytes = 64 * 1024 * 1024;

struct JsonCodecOptions {
  // Largest body encoded or decoded; larger inputs are rejected before any work is done.
  std::size_t max_body_bytes = kDefaultMaxJsonBodyBytes;
};

// --- Requests we send ---

// The body of generateContent / streamGenerateContent. INVALID_ARGUMENT when a part carries more
// than one data field (text, inlineData, fileData), response_json_schema is not a JSON document,
// temperature is not finite, or the body would exceed max_body_bytes.
absl::StatusOr<std::string> EncodeGenerateContentRequest(const GenerateContentRequest& request,
                                                         const JsonCodecOptions& options = {});

// The body of countTokens: {"contents": [...]}.
absl::StatusOr<std::string> EncodeCountTokensRequest(const CountTokensRequest& request,
                                                     const JsonCodecOptions& options = {});

// --- Responses we receive ---

// INTERNAL "malformed Gemini response: ..." when the text is not JSON or a field has the wrong
// type; RESOURCE_EXHAUSTED when bigger than max_body_bytes.
absl::StatusOr<GenerateContentResponse> DecodeGenerateContentResponse(
    std::string_view json, const JsonCodecOptions& options = {});
absl::StatusOr<CountTokensResponse> DecodeCountTokensResponse(std::string_view json,
                                                              const JsonCodecOptions& options = {});

// --- Files API ---

// The body of an upload start: {"file": {"displayName": ..., "name": ...}} (members only when
// set). INVALID_ARGUMENT when display_name is over 512 bytes.
absl::StatusOr<std::string> EncodeStartUploadBody(const StartUploadRequest& request);

// files.get's bare File; the finalize reply's {"file": File}; files.list's {files, nextPageToken}.
// Timestamps are RFC 3339 (any number of fractional digits); sizeBytes a decimal string or number.
absl::StatusOr<File> DecodeFile(std::string_view json, const JsonCodecOptions& options = {});
absl::StatusOr<File> DecodeWrappedFile(std::string_view json, const JsonCodecOptions& options = {});
absl::StatusOr<ListFilesResponse> DecodeListFilesResponse(std::string_view json,
                                                          const JsonCodecOptions& options = {});

// models.list's {models: [...], nextPageToken}. At most kMaxModelsPerPage models (more:
// UPSTREAM_BAD_RESPONSE-style INTERNAL "malformed" error), each name at most 256 bytes.
inline constexpr std::size_t kMaxModelsPerPage = 1000;
absl::StatusOr<ListModelsResponse> DecodeListModelsResponse(std::string_view json,
                                                            const JsonCodecOptions& options = {});

// A File as Gemini writes it (for the emulator's round-trip tests and tooling).
std::string EncodeFile(const File& file);

// --- The other direction, for round-trip tests and tooling (the emulator) ---

// Accepts lowerCamelCase and snake_case keys; inlineData.data is base64 (standard or URL-safe,
// padding optional) and is decoded into Blob::data. responseJsonSchema is re-serialised compactly.
// INVALID_ARGUMENT "invalid request: ..." on bad JSON, wrong types or bad base64.
absl::StatusOr<GenerateContentRequest> DecodeGenerateContentRequest(
    std::string_view json, const JsonCodecOptions& options = {});
// {"contents": [...]} or {"generateContentRequest": {"contents": [...]}}.
absl::StatusOr<CountTokensRequest> DecodeCountTokensRequest(std::string_view json,
                                                            const JsonCodecOptions& options = {});

// Compact JSON as Gemini sends it (zero token counts and empty strings are omitted).
std::string EncodeGenerateContentResponse(const GenerateContentResponse& response);
std::string EncodeCountTokensResponse(const CountTokensResponse& response);

// --- Building blocks ---

// Appends `text` as a JSON string literal (with quotes). Escapes '"', '\\' and control
// characters; valid UTF-8 passes through unchanged; each invalid UTF-8 byte becomes \ufffd.
void AppendJsonString(std::string& out, std::string_view text);
// The number of bytes AppendJsonString would append.
std::size_t JsonStringSize(std::string_view text);

// Appends standard base64 (with padding) of `bytes`, written in place into `out`.
void AppendBase64(std::string& out, std::string_view bytes);
inline constexpr std::size_t Base64Size(std::size_t n) { return (n + 2) / 3 * 4; }

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_JSON_CODEC_H_
