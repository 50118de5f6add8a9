// Files at Gemini as the vision layer sees them: the Files RPCs (get, list, delete), turning a
// caller's file reference into a usable Gemini file (waiting while it is PROCESSING), and the
// dedupe lookup by SHA-256 that Upload and the inline→file switch share.
//
// File isolation (issue #11): with authentication on, a call sees only the files of its caller:
// those whose gateway file id carries the caller's owner tag (file_id.h). Every other file,
// including files without an owner tag (uploaded while authentication was off, or outside the
// gateway), is answered exactly as a file that does not exist, before Gemini is asked, so a
// caller learns nothing about other callers' files. ListFiles filters Gemini's pages; dedupe by
// SHA-256 only ever finds the caller's own files. Without authentication every file under the
// key is visible to every call. The check is stateless (the id is the record), so it holds on
// every replica.
//
// Errors a caller sees for a file (on top of upstream_errors.h):
//   INVALID_ARGUMENT     the reference is neither "files/<id>" nor this key's Gemini file URI
//   NOT_FOUND            the file is not the caller's, or Gemini answered 403 or 404: it does not
//                        exist, belongs to another key, or expired (files expire 48 h after
//                        upload); ErrorInfo FILE_NOT_FOUND
//   FAILED_PRECONDITION  the file's processing FAILED; ErrorInfo FILE_FAILED
//   DEADLINE_EXCEEDED    it was still PROCESSING when the caller's deadline came
#ifndef VISION_GATEWAY_SERVICE_VISION_FILE_SERVICE_H_
#define VISION_GATEWAY_SERVICE_VISION_FILE_SERVICE_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/common/semaphore.h"
#include "service/common/thread_pool.h"
#include "service/common/timer.h"
#include "service/gemini/gemini_client.h"
#include "service/telemetry/call_record.h"
#include "service/vision/detached_calls.h"
#include "service/vision/v1.h"
#include "service/vision/vision_options.h"

namespace vision_gateway::vision {

// A PendingCall made of consecutive upstream calls: Cancel() reaches whichever is current, and
// a stage set after Cancel() is cancelled at once.
class StagedCall final : public gemini::PendingCall {
 public:
  void SetStage(std::shared_ptr<gemini::PendingCall> stage);
  // Drops the reference to the current stage (call when the task is over).
  void Clear();
  void Cancel() override;
  bool cancelled() const;

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<gemini::PendingCall> stage_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

// Caches which ACTIVE file holds which SHA-256 (lowercase hex), for a short time, per owner tag
// (a hit for one caller is never a hit for another). Gemini's file list is the source of truth
// (any replica, after restarts); the cache only saves list calls.
class FileHashCache {
 public:
  // `clock` (outlives this) tells the time; ttl ≤ 0 disables the cache.
  FileHashCache(absl::Duration ttl, Timer& clock) : ttl_(ttl), clock_(clock) {}
  std::optional<gemini::File> Find(const std::string& owner_tag, const std::string& sha256_hex);
  void Put(const std::string& owner_tag, const std::string& sha256_hex, const gemini::File& file);
  void Forget(const std::string& name);

 private:
  struct Entry {
    gemini::File file;
    absl::Time expires;
  };
  const absl::Duration ttl_;
  Timer& clock_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

// What every file-aware call of one service shares. The service owns one (through a
// shared_ptr) and each call's FilesContext holds it, so what the runtime owns — the Files stub,
// the timer, the options, the SHA-256 cache and the bound on filling upload chunks — lives as
// long as the last call using it, even a call that outlives its RPC. The CPU pool and the owner of
// detached calls stay the service's: the service cancels and waits for every call
// (DetachedCalls::CancelAndWait) before they go.
class FilesRuntime {
 public:
  // `cpu` and `detached` may be null (tests): images are then prepared inline, and upstream
  // requests are not tracked after their call ends.
  FilesRuntime(std::shared_ptr<gemini::FilesStub> gemini, std::shared_ptr<Timer> timer,
               VisionOptions options, ThreadPool* cpu, DetachedCalls* detached);
  FilesRuntime(const FilesRuntime&) = delete;
  FilesRuntime& operator=(const FilesRuntime&) = delete;

  gemini::FilesStub& gemini() const { return *gemini_; }
  // Backoff of upload resumes and of polling a PROCESSING file; the hash cache's clock.
  Timer& timer() const { return *timer_; }
  const VisionOptions& options() const { return options_; }
  ThreadPool* cpu() const { return cpu_; }
  DetachedCalls* detached() const { return detached_; }
  FileHashCache& hashes() const { return hashes_; }
  // Upload chunks being sent while they fill, service-wide (options().max_filling_upload_chunks).
  Semaphore& filling_upload_chunks() const { return filling_upload_chunks_; }

 private:
  const std::shared_ptr<gemini::FilesStub> gemini_;
  const std::shared_ptr<Timer> timer_;
  const VisionOptions options_;
  ThreadPool* const cpu_;
  DetachedCalls* const detached_;
  mutable FileHashCache hashes_;
  mutable Semaphore filling_upload_chunks_;
};

// One call's view of the files: the shared runtime, and who is calling.
struct FilesContext {
  std::shared_ptr<const FilesRuntime> runtime;
  // Whose files the call may see: the caller's owner tag (OwnerTagOf) with authentication on;
  // "" with it off (every file under the key). Files the call creates carry this tag.
  std::string owner_tag;
  // The call's telemetry record (may be null): every upstream Files call adds its time and
  // attempts to it, as the other RPCs' upstream calls do.
  std::shared_ptr<telemetry::CallRecord> record;

  // This context for one call.
  FilesContext WithRecord(std::shared_ptr<telemetry::CallRecord> call_record) const {
    FilesContext copy = *this;
    copy.record = std::move(call_record);
    return copy;
  }
};

// True when a call with `owner_tag` may see the file `name` ("files/<id>" or a bare id): always
// when `owner_tag` is empty, else only when the file's id carries exactly that tag.
bool FileVisibleTo(std::string_view name, std::string_view owner_tag);

// The caller-facing answer for a file that does not exist or is not the caller's (one answer for
// both, so existence does not leak): NOT_FOUND, ErrorInfo FILE_NOT_FOUND.
absl::Status FileNotFound(const std::string& name);

// True when `file` holds the bytes whose SHA-256 is `sha256_hex` and size `size_bytes`: Gemini's
// own hash of the stored bytes and their size say so, or the file carries a source tag the
// gateway wrote on it (verified under `tag_key`, file_id.h) for bytes it turned upright. Nothing a
// caller can write (a display name) makes a file hold other bytes.
bool FileHolds(const gemini::File& file, std::string_view sha256_hex, int64_t size_bytes,
               std::string_view tag_key);

// Gemini's File as the public contract shows it: sha256 as lowercase hex, the upright size from
// the gateway's file id (0 when unknown), source_sha256 from a tag verified under `tag_key`.
v1::File ToV1File(const gemini::File& file, std::string_view tag_key);

// "files/<id>" for "files/<id>" or this gateway's Gemini file URI ({files_base_uri}/files/<id>);
// INVALID_ARGUMENT for anything else (naming `field`).
absl::StatusOr<std::string> FileNameOf(const std::string& reference, const std::string& field,
                                       const VisionOptions& options);

// A file error as the caller sees it (the table at the top of this file).
absl::Status FileErrorForCaller(absl::Status upstream, const std::string& name);

// Gets the file and, while it is PROCESSING, polls it again with backoff (100 ms doubling to 2 s)
// until ACTIVE, FAILED or the deadline. `done` gets the ACTIVE file or a caller-facing error (a
// file not visible to context.owner_tag: FileNotFound, without asking Gemini).
void AwaitActiveFile(const FilesContext& context, const std::string& name, absl::Time deadline,
                     std::shared_ptr<StagedCall> call,
                     absl::AnyInvocable<void(absl::StatusOr<gemini::File>)> done);

// The newest ACTIVE file visible to context.owner_tag that holds the bytes whose SHA-256 is
// `sha256_hex` and whose size is `size_bytes` (FileHolds), from the cache or Gemini's file list (at
// most kMaxDedupePages pages of 100). nullopt when none; errors only for cancellation (a failed
// lookup just means "upload it").
void FindFileByHash(const FilesContext& context, const std::string& sha256_hex,
                    int64_t size_bytes, absl::Time deadline, std::shared_ptr<StagedCall> call,
                    absl::AnyInvocable<void(absl::StatusOr<std::optional<gemini::File>>)> done);
inline constexpr int kMaxDedupePages = 20;

// The Files RPCs, for the files visible to context.owner_tag. GetFile and DeleteFile answer
// FileNotFound for another caller's file without asking Gemini.
//
// ListFiles without authentication passes Gemini's pages through (page_size files per page,
// Gemini's page tokens). With authentication it reads Gemini's pages of 100 and keeps the
// caller's files: a page holds at most page_size files and may hold fewer, even none, while
// next_page_token is set (at most kMaxListScanPages of Gemini's pages are read per call); only
// an empty next_page_token means the end. Its page tokens are the gateway's own (a position in
// Gemini's list) and work on any replica.
absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartGetFile(
    const FilesContext& context, const v1::GetFileRequest& request, absl::Time deadline,
    absl::AnyInvocable<void(absl::StatusOr<v1::File>)> done);
inline constexpr int kMaxListScanPages = 10;
absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartListFiles(
    const FilesContext& context, const v1::ListFilesRequest& request, absl::Time deadline,
    absl::AnyInvocable<void(absl::StatusOr<v1::ListFilesResponse>)> done);
absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartDeleteFile(
    const FilesContext& context, const v1::DeleteFileRequest& request, absl::Time deadline,
    absl::AnyInvocable<void(absl::Status)> done);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_FILE_SERVICE_H_
