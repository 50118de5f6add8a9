#include "service/vision/image_parts.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "service/image/image_probe.h"
#include "service/vision/token_estimate.h"

namespace vision_gateway::vision {
namespace {

bool IsFileIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

}  // namespace

absl::StatusOr<std::string> FileUri(const std::string& file, const VisionOptions& options) {
  if (absl::StartsWith(file, "https://") || absl::StartsWith(file, "http://")) {
    if (file.size() > 2048) return absl::InvalidArgumentError("file: URI too long");
    return file;
  }
  absl::string_view id = file;
  if (!absl::ConsumePrefix(&id, "files/") || id.empty() || id.size() > 40 ||
      !std::all_of(id.begin(), id.end(), IsFileIdChar)) {
    return absl::InvalidArgumentError(
        "file: must be \"files/<id>\" as returned by Upload (id: lowercase letters, digits, '-'; "
        "at most 40) or a Gemini file URI");
  }
  return absl::StrCat(options.files_base_uri, "/files/", id);
}

absl::StatusOr<gemini::Part> ToImagePart(v1::Image& image, const std::string& field,
                                         const VisionOptions& options) {
  gemini::Part part;
  switch (image.source_case()) {
    case v1::Image::kContent: {
      auto format = image::SniffFormat(image.content());
      if (!format.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(field, ": ", format.status().message()));
      }
      gemini::Blob blob;
      blob.mime_type = std::string(image::MimeTypeOf(*format));
      blob.data = std::move(*image.mutable_content());
      part.inline_data = std::move(blob);
      return part;
    }
    case v1::Image::kFile: {
      auto uri = FileUri(image.file(), options);
      if (!uri.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(field, ".", uri.status().message()));
      }
      part.file_data = gemini::FileData{.mime_type = image.mime_type(), .file_uri = *uri};
      return part;
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": set either content (image bytes) or file"));
  }
}

int64_t EstimateImageTokensOf(const v1::Image& image) {
  if (image.source_case() != v1::Image::kContent) return kTokensPerTile;
  auto size = image::ProbeSize(image.content());
  if (!size.ok()) return kTokensPerTile;
  return EstimateImageTokens(size->width, size->height);
}

}  // namespace vision_gateway::vision
