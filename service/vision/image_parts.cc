#include "service/vision/image_parts.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "service/image/image_probe.h"
#include "service/vision/file_id.h"
#include "service/vision/file_parts.h"
#include "service/vision/file_service.h"
#include "service/vision/token_estimate.h"

namespace vision_gateway::vision {
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
      auto name = FileNameOf(image.file(), absl::StrCat(field, ".file"), options);
      if (!name.ok()) return name.status();
      return FileReferencePart(*name);
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": set either content (image bytes) or file"));
  }
}

int64_t EstimateImageTokensOf(const v1::Image& image) {
  if (image.source_case() == v1::Image::kFile) {
    // The gateway's own file ids carry the size.
    const FileIdInfo info = DecodeFileId(image.file().substr(image.file().rfind('/') + 1));
    if (info.width > 0) return EstimateImageTokens(info.width, info.height);
    return kTokensPerTile;
  }
  if (image.source_case() != v1::Image::kContent) return kTokensPerTile;
  auto size = image::ProbeSize(image.content());
  if (!size.ok()) return kTokensPerTile;
  return EstimateImageTokens(size->width, size->height);
}

}  // namespace vision_gateway::vision
