// An API key read from a file and re-read when the file changes, without a restart.
//
// Kubernetes mounts a Secret as `<dir>/<key> -> ..data/<key>`, `..data -> ..<timestamp>/`, and
// rotates it by writing a new timestamped directory and atomically renaming the `..data` symlink.
// inotify watches on the old file break at that moment, so this class polls: every
// `poll_interval` it opens the path afresh (following the symlinks as they are now) and reads it
// (a few bytes: the cost is negligible). A changed, valid key replaces the current one; an
// unreadable, empty, oversized or malformed file is reported (without its content) and the
// current key is kept, so a half-written file never takes the service down.
#ifndef VISION_GATEWAY_SERVICE_GEMINI_API_KEY_FILE_H_
#define VISION_GATEWAY_SERVICE_GEMINI_API_KEY_FILE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/gemini/api_key.h"

namespace vision_gateway::gemini {

// Largest key file accepted (Gemini keys are 39 characters).
inline constexpr std::size_t kMaxApiKeyFileBytes = 4096;

// Reads a key file once: surrounding whitespace is stripped; the key must be non-empty and
// printable ASCII without spaces (it becomes an HTTP header value). Errors name the path and
// the problem, never the content.
absl::StatusOr<std::string> ReadApiKeyFile(const std::string& path);

class ApiKeyFile final : public ApiKeySource {
 public:
  // Reads `path` (an error if that fails) and, if `poll_interval` > 0, starts a thread that
  // re-reads it every `poll_interval`.
  static absl::StatusOr<std::shared_ptr<ApiKeyFile>> Open(std::string path,
                                                          absl::Duration poll_interval);

  ApiKeyFile(const ApiKeyFile&) = delete;
  ApiKeyFile& operator=(const ApiKeyFile&) = delete;
  ~ApiKeyFile() override;  // stops the polling thread

  std::string Current() const override;

  // Re-reads the file now. OK when the file holds a valid key (changed or not); otherwise the
  // error, and the current key stays.
  absl::Status Reload();

  // How many times the key has changed since Open().
  int64_t changes() const;
  // Waits until changes() > `seen`; false after `timeout`.
  bool WaitForChange(int64_t seen, absl::Duration timeout) const;

 private:
  ApiKeyFile(std::string path, std::string key) : path_(std::move(path)), key_(std::move(key)) {}
  void Poll(absl::Duration interval);

  const std::string path_;
  mutable absl::Mutex mu_;
  std::string key_ ABSL_GUARDED_BY(mu_);
  int64_t changes_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // The last reload error logged, so a broken file is reported once, not every poll.
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  std::thread poller_;
};

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_API_KEY_FILE_H_
