// JSON codec of the Files API (upload start, File resources, files.list) and models.list, as the
// gateway uses them. Bounded by JsonCodecOptions::max_body_bytes; errors name the field's path,
// never its value.
#ifndef VISION_GATEWAY_SERVICE_GEMINI_FILES_CODEC_H_
#define VISION_GATEWAY_SERVICE_GEMINI_FILES_CODEC_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "service/gemini/json_codec_options.h"
#include "service/gemini/types.h"

namespace vision_gateway::gemini {

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

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_FILES_CODEC_H_
