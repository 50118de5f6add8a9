#include "service/vision/upload_header.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "service/vision/file_id.h"
#include "service/vision/vision_options.h"

namespace vision_gateway::vision {
namespace {

constexpr std::size_t kMaxMimeTypeBytes = 255;

}  // namespace

absl::StatusOr<UploadHeaderFields> CheckUploadHeader(const v1::UploadHeader& header,
                                                     int64_t max_upload_bytes) {
  const int64_t limit = std::min(max_upload_bytes, kMaxGeminiFileBytes);
  if (header.size_bytes() <= 0 || header.size_bytes() > limit) {
    return absl::InvalidArgumentError(absl::StrCat("header.size_bytes: required, 1 to ", limit,
                                                   " bytes; got ", header.size_bytes()));
  }
  if (header.display_name().size() > kMaxDisplayNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("header.display_name: at most ", kMaxDisplayNameBytes, " bytes"));
  }
  if (ReservedMarkerIn(header.display_name())) {
    // The gateway's own tags live behind it (file_id.h): a caller's name may not look like one.
    return absl::InvalidArgumentError(
        "header.display_name: must not contain \"|vg-\" (reserved for the gateway's tags)");
  }
  if (header.mime_type().size() > kMaxMimeTypeBytes) {
    return absl::InvalidArgumentError("header.mime_type: too long");
  }
  UploadHeaderFields fields;
  fields.sha256 = absl::AsciiStrToLower(header.sha256());
  if (!fields.sha256.empty() && !IsSha256Hex(fields.sha256)) {
    return absl::InvalidArgumentError("header.sha256: must be 64 hex digits (SHA-256) or empty");
  }
  fields.size_bytes = header.size_bytes();
  fields.display_name = header.display_name();
  fields.mime_type = absl::AsciiStrToLower(header.mime_type());
  return fields;
}

}  // namespace vision_gateway::vision
