// Upload: a client stream (UploadHeader, then chunks) → a file at Gemini, in constant memory.
//
// Flow: the header is checked (INVALID_ARGUMENT before any upstream call: header missing or not
// first, size_bytes missing / <= 0 / over the limit, a bad sha256, display_name over 512 bytes);
// with a sha256, an ACTIVE file with that hash is looked up (FindFileByHash) and returned at
// once on a hit. Then the first bytes (up to kSniffBytes) are read: the type is sniffed (it must
// be PNG, JPEG, WEBP, HEIC or HEIF; it wins over the header's mime_type) and the upright size and
// EXIF orientation are read from the header. The upload session is opened under a gateway-chosen
// name carrying the size (file_id.h), and the bytes stream through: each non-final upstream
// chunk (granularity, 8 MiB) is sent while it fills — its request goes out with the chunk's size
// as soon as the chunk starts, and the client's bytes go upstream from the chunk's buffer as they
// arrive (ResumableUpload keeps the buffer to resume from). Once the chunk is full, at most one
// more message is read and held until Gemini confirms it, so an upload holds one chunk plus one
// message and gRPC flow control slows a fast client down. (A chunk filling this way holds an
// upstream connection while its caller sends, so at most max_filling_upload_chunks do at once,
// service-wide; others are assembled whole, then sent.) SHA-256 is computed while streaming.
// The last chunk is assembled whole: at half-close the size and the hash are checked before it
// is sent with "finalize": a mismatch never finalizes, and the session is cancelled at Gemini. A header mime_type that contradicts the sniffed type is reported in the File
// (declared_mime_type). An image with EXIF orientation != 1 is read whole (up to
// max_reorient_upload_bytes), turned upright on the CPU pool and uploaded as such; the File then
// carries the stored bytes' sha256 and the client's as source_sha256 (kept in a display-name tag,
// file_id.h, so dedupe finds it by either).
//
// Errors: INVALID_ARGUMENT for header rules, a byte count different from size_bytes, a type that
// is not a supported image; DATA_LOSS when the bytes do not match the header's sha256 (ErrorInfo
// SHA256_MISMATCH); CANCELLED / DEADLINE_EXCEEDED when the call ends early (the upstream session
// is cancelled); upstream errors as everywhere.
//
// Threads: OnMessage/OnHalfClose come from gRPC one at a time, and only after the task asked for
// a read; upstream callbacks from I/O threads; Cancel from anywhere.
#ifndef VISION_GATEWAY_SERVICE_VISION_UPLOAD_TASK_H_
#define VISION_GATEWAY_SERVICE_VISION_UPLOAD_TASK_H_

#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/vision/file_service.h"
#include "service/vision/v1.h"

namespace vision_gateway::vision {

// Bytes read before the type and size are decided.
inline constexpr int64_t kSniffBytes = 512 * 1024;

struct UploadCallbacks {
  // Asks for the next message: the owner starts one read, then calls OnMessage or OnHalfClose.
  // Never called while a read is outstanding.
  absl::AnyInvocable<void()> read;
  // Exactly once. After it, `read` is never called again.
  absl::AnyInvocable<void(absl::StatusOr<v1::File>)> done;
};

class UploadTask {
 public:
  virtual ~UploadTask() = default;
  // Asks for the first read.
  virtual void Begin() = 0;
  virtual void OnMessage(v1::UploadRequest message) = 0;
  virtual void OnHalfClose() = 0;
  virtual void Cancel() = 0;
};

// Makes the task; Begin() starts it. context.owner_tag goes into the file id (file_id.h; empty
// when authentication is off), and the dedupe lookup sees only that owner's files.
std::shared_ptr<UploadTask> MakeUpload(const FilesContext& context, absl::Time deadline,
                                       UploadCallbacks callbacks);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_UPLOAD_TASK_H_
