// The inline→file switch: image bytes held in memory (an inline image too large to send inline)
// become an ACTIVE Gemini file, through the same resumable Files protocol as Upload.
#ifndef VISION_GATEWAY_SERVICE_VISION_MEMORY_UPLOAD_H_
#define VISION_GATEWAY_SERVICE_VISION_MEMORY_UPLOAD_H_

#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/gemini/types.h"
#include "service/vision/file_service.h"

namespace vision_gateway::vision {

// Uploads bytes held in memory (the inline→file switch): dedupe by hash first (among the files of
// context.owner_tag), then a resumable upload in granularity-sized chunks under a file id that
// carries context.owner_tag, then waits for ACTIVE. `done` gets the ACTIVE file.
void UploadBytes(const FilesContext& context, std::string bytes, std::string mime_type,
                 int width, int height, absl::Time deadline, std::shared_ptr<StagedCall> call,
                 absl::AnyInvocable<void(absl::StatusOr<gemini::File>)> done);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_MEMORY_UPLOAD_H_
