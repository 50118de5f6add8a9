// The stub of Gemini's Files API (gemini-wire.md §1.3, §4): resumable uploads and the file
// resource. One stub per Gemini service (see generate_stub.h); errors as described there.
//
// Upload URLs are accepted only on the configured base_url's origin (scheme, host and port):
// the API key is never sent anywhere else. A start reply whose x-goog-upload-url points
// elsewhere is an INTERNAL error; so is an upload_url argument on another origin.
// Upload-endpoint errors may be plain text; they map like JSON envelopes (error_envelope.h).
#ifndef VISION_GATEWAY_SERVICE_GEMINI_FILES_STUB_H_
#define VISION_GATEWAY_SERVICE_GEMINI_FILES_STUB_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "service/gemini/pending_call.h"
#include "service/gemini/types.h"

namespace vision_gateway::gemini {

class FilesStub {
 public:
  virtual ~FilesStub() = default;

  // POST {base}/upload/{version}/files with X-Goog-Upload-Command: start.
  virtual std::shared_ptr<PendingCall> StartUpload(
      StartUploadRequest request, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<UploadSession>)> done) = 0;

  // POST <upload_url> with X-Goog-Upload-Command "upload" (or "upload, finalize") and
  // X-Goog-Upload-Offset. A non-final chunk's size must be a multiple of the session's
  // granularity. The reply's status is "active" (or "final" with the File).
  virtual std::shared_ptr<PendingCall> UploadChunk(
      const std::string& upload_url, int64_t offset, ChunkBytes bytes, bool finalize,
      CallOptions options, absl::AnyInvocable<void(absl::StatusOr<UploadStatus>)> done) = 0;

  // X-Goog-Upload-Command: query — how many bytes Gemini holds (size_received).
  virtual std::shared_ptr<PendingCall> QueryUpload(
      const std::string& upload_url, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<UploadStatus>)> done) = 0;

  // X-Goog-Upload-Command: cancel — drops the session and the bytes received.
  virtual std::shared_ptr<PendingCall> CancelUpload(
      const std::string& upload_url, CallOptions options,
      absl::AnyInvocable<void(absl::Status)> done) = 0;

  // GET {base}/{version}/files/{id}; `name` is "files/<id>".
  virtual std::shared_ptr<PendingCall> GetFile(
      const std::string& name, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<File>)> done) = 0;

  // GET {base}/{version}/files?pageSize=N&pageToken=T (page_size 0: Gemini's default).
  virtual std::shared_ptr<PendingCall> ListFiles(
      int page_size, const std::string& page_token, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<ListFilesResponse>)> done) = 0;

  // DELETE {base}/{version}/files/{id}.
  virtual std::shared_ptr<PendingCall> DeleteFile(const std::string& name, CallOptions options,
                                                  absl::AnyInvocable<void(absl::Status)> done) = 0;
};

// "files/<id>" with a valid id (1..40 of lowercase letters, digits, '-'; not starting or ending
// with '-'): the id. Anything else: empty.
std::string FileIdOf(std::string_view name);

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_FILES_STUB_H_
