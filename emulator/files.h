// The Files API of the emulator: resumable uploads (/upload/{v}/files), files.get, files.list
// and files.delete, with the wire quirks of gemini-wire.md §1.3/§4 (8 MiB chunk granularity,
// "upload, finalize", {"file": ...} wrapping, sizeBytes as a string, sha256Hash as base64 of
// the hex digest). Files are kept in memory, bounded in total size.
#ifndef VISION_GATEWAY_EMULATOR_FILES_H_
#define VISION_GATEWAY_EMULATOR_FILES_H_

#include <chrono>
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

class FileStore {
 public:
  static constexpr int64_t kChunkGranularity = int64_t{8} << 20;
  static constexpr int64_t kMaxFileBytes = int64_t{2} << 30;
  static constexpr int64_t kMaxStoredBytes = int64_t{1} << 30;  // all files + uploads

  ScriptedResponse Handle(const FileRequest& request);

  // Content of "files/<id>" (or any URI ending so), for fileData parts.
  std::optional<FileContent> Resolve(std::string_view uri) const;

  void Clear();

 private:
  struct Upload {
    std::string file_id;  // requested or generated
    std::string display_name;
    std::string mime_type;
    int64_t declared_size = -1;  // X-Goog-Upload-Header-Content-Length, -1 if absent
    std::string data;
  };
  struct File {
    std::string id;
    std::string display_name;
    std::string mime_type;
    std::shared_ptr<const std::string> bytes;
    std::string sha256_hash;  // base64 of the lowercase hex digest
    absl::Time create_time;
    absl::Time active_time;  // PROCESSING before, ACTIVE from then on
    uint64_t order = 0;      // creation order
  };

  ScriptedResponse StartUpload(const FileRequest& request);
  ScriptedResponse UploadChunk(const FileRequest& request, const std::string& upload_id);
  ScriptedResponse GetFile(const std::string& id);
  ScriptedResponse ListFiles(const FileRequest& request);
  ScriptedResponse DeleteFile(const std::string& id);
  std::string FileJson(const File& file) const;  // JSON text (compact)

  mutable absl::Mutex mu_;
  std::map<std::string, Upload> uploads_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, File> files_ ABSL_GUARDED_BY(mu_);
  int64_t stored_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t counter_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vision_gateway::emulator

#endif  // VISION_GATEWAY_EMULATOR_FILES_H_
