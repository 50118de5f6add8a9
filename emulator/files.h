// The Files API of the emulator: resumable uploads (/upload/{v}/files), files.get, files.list
// and files.delete, with the wire quirks of gemini-wire.md §1.3/§4 (8 MiB chunk granularity,
// "upload, finalize", {"file": ...} wrapping, sizeBytes as a string, sha256Hash as base64 of
// the hex digest), plus X-Goog-Upload-Command query and cancel. Uploaded bytes go to disk (one
// file per upload in a configurable directory, removed on delete, reset and exit), so several
// 1 GiB uploads are cheap; the total is bounded. Time is the wall clock plus an offset tests can
// advance (AdvanceClock): files expire 48 h after upload against it, and then read as missing
// (403), as the real API answers. Upload faults can be queued (InjectUploadFault).
#ifndef VISION_GATEWAY_EMULATOR_FILES_H_
#define VISION_GATEWAY_EMULATOR_FILES_H_

#include <chrono>
#include <deque>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "emulator/emulator.h"
#include "emulator/gemini_api.h"

namespace vision_gateway::emulator {

struct FileRequest {
  std::string method;
  bool upload = false;                // under /upload/
  std::string api_version;            // "v1beta", ...
  std::vector<std::string> segments;  // path segments after the version: {"files"[, id]}
  std::vector<std::pair<std::string, std::string>> query;
  const HeaderList* headers = nullptr;
  std::string body;
  std::string base_url;  // "http://127.0.0.1:PORT", for x-goog-upload-url
  std::chrono::milliseconds processing{0};  // EmulatorConfig::file_processing
};

struct HashState;  // files.cc: an incremental SHA-256

// The next upload request (chunk, not start/query/cancel) fails like this.
struct UploadFault {
  int status = 503;             // HTTP status of the plain-text error reply
  bool keep_bytes = false;      // store the chunk's bytes before failing (a lost reply)
  bool drop_connection = false;  // close without any reply instead
  std::string message;           // the reply's text; empty: a default
};

struct FileStoreOptions {
  std::string directory;  // empty: $TMPDIR or /tmp
  int64_t max_stored_bytes = int64_t{20} << 30;  // all files + uploads (Gemini: 20 GB/project)
  // Files read into memory for a prompt (fileData) at most this large; larger ones are not
  // analysed (the model call answers 400).
  int64_t max_prompt_file_bytes = int64_t{128} << 20;
};

class FileStore {
 public:
  static constexpr int64_t kChunkGranularity = int64_t{8} << 20;
  static constexpr int64_t kMaxFileBytes = int64_t{2} << 30;

  explicit FileStore(FileStoreOptions options = {});
  ~FileStore();  // removes its files from disk

  ScriptedResponse Handle(const FileRequest& request);

  // Content of "files/<id>" (or any URI ending so), for fileData parts.
  std::optional<FileContent> Resolve(std::string_view uri) const;

  // Stores `bytes` as a new ACTIVE file made by the service itself (source GENERATED: a batch's
  // responses file), under `id` when it is free, else a fresh id. Returns the id; 429-like
  // RESOURCE_EXHAUSTED when the store is full.
  absl::StatusOr<std::string> AddGeneratedFile(std::string id, std::string display_name,
                                               std::string mime_type, std::string_view bytes);

  // Removes "files/<id>"'s file (a generated file nobody may see any more); false when absent.
  bool Remove(const std::string& id);

  // The store's clock: the wall clock plus what AdvanceClock added (batches use it too).
  absl::Time ClockNow() const;

  void Clear();

  // Moves the store's clock forward (expiry, PROCESSING → ACTIVE).
  void AdvanceClock(absl::Duration by);
  // Files finishing processing from now on become FAILED instead of ACTIVE.
  void SetFailProcessing(bool fail);
  void InjectUploadFault(UploadFault fault);
  // Upload sessions open / files stored now.
  int OpenUploads() const;
  int FileCount() const;
  // Waits until OpenUploads() == count; false on timeout.
  bool WaitForOpenUploads(int count, absl::Duration timeout) const;

 private:
  struct Upload {
    std::string file_id;  // requested or generated
    std::string display_name;
    std::string mime_type;
    int64_t declared_size = -1;  // X-Goog-Upload-Header-Content-Length, -1 if absent
    std::string path;            // the bytes so far, on disk
    int64_t size = 0;
    std::shared_ptr<HashState> hash;  // SHA-256 of the bytes so far
  };
  struct File {
    std::string id;
    std::string display_name;
    std::string mime_type;
    std::string path;
    int64_t size = 0;
    std::string sha256_hash;  // base64 of the lowercase hex digest
    absl::Time create_time;
    absl::Time active_time;  // PROCESSING before, ACTIVE (or FAILED) from then on
    bool fails = false;
    bool generated = false;  // made by the emulator (a batch's responses file), not uploaded
    uint64_t order = 0;      // creation order
  };

  absl::Time Now() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops files past their expiration time.
  void ExpireLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ScriptedResponse StartUpload(const FileRequest& request);
  ScriptedResponse UploadChunk(const FileRequest& request, const std::string& upload_id);
  ScriptedResponse GetFile(const std::string& id);
  ScriptedResponse ListFiles(const FileRequest& request);
  ScriptedResponse DeleteFile(const std::string& id);
  // GET files/{id}:download?alt=media: the bytes, as stored.
  ScriptedResponse DownloadFile(const std::string& id, const FileRequest& request);
  std::string FileJson(const File& file) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const FileStoreOptions options_;
  mutable absl::Mutex mu_;
  absl::Duration clock_offset_ ABSL_GUARDED_BY(mu_);
  bool fail_processing_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<UploadFault> faults_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Upload> uploads_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, File> files_ ABSL_GUARDED_BY(mu_);
  int64_t stored_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t counter_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vision_gateway::emulator

#endif  // VISION_GATEWAY_EMULATOR_FILES_H_
