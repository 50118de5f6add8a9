// Makes a request's image parts ready for Gemini: file references are checked (waiting while
// PROCESSING, see file_service.h) and get their Gemini URI and MIME type; inline images that push
// the request over VisionOptions::max_inline_request_bytes are uploaded (largest first, reusing a
// file with the same SHA-256) and referenced instead. Callers see no difference except speed.
#ifndef VISION_GATEWAY_SERVICE_VISION_FILE_PARTS_H_
#define VISION_GATEWAY_SERVICE_VISION_FILE_PARTS_H_

#include <memory>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/gemini/types.h"
#include "service/vision/file_service.h"

namespace vision_gateway::vision {

// A part for a caller's file reference, to be completed by ResolveParts: file_uri holds the
// "files/<id>" name until then.
gemini::Part FileReferencePart(const std::string& name);

// True when ResolveParts has anything to do for these parts.
bool NeedsResolving(const std::vector<gemini::Part>& parts, const VisionOptions& options);

// Resolves file references and moves oversized inline images to files, one at a time, in order.
// `done` gets the parts back, ready to send.
void ResolveParts(const FilesContext& context, std::vector<gemini::Part> parts,
                  absl::Time deadline, std::shared_ptr<StagedCall> call,
                  absl::AnyInvocable<void(absl::StatusOr<std::vector<gemini::Part>>)> done);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_FILE_PARTS_H_
