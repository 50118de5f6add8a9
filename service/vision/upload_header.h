// The first message of an Upload, checked before any upstream call (INVALID_ARGUMENT for each
// rule it breaks): size_bytes 1 to min(max_upload_bytes, Gemini's 2 GB); display_name at most
// 512 bytes and free of the gateway's reserved "|vg-" tags (file_id.h); mime_type at most 255
// bytes; sha256 empty or 64 hex digits.
#ifndef VISION_GATEWAY_SERVICE_VISION_UPLOAD_HEADER_H_
#define VISION_GATEWAY_SERVICE_VISION_UPLOAD_HEADER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "service/vision/v1.h"

namespace vision_gateway::vision {

struct UploadHeaderFields {
  int64_t size_bytes = 0;
  std::string display_name;
  std::string mime_type;  // lower case; may be empty (the sniffed type decides)
  std::string sha256;     // lower-case hex; empty: none given
};

absl::StatusOr<UploadHeaderFields> CheckUploadHeader(const v1::UploadHeader& header,
                                                     int64_t max_upload_bytes);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_UPLOAD_HEADER_H_
