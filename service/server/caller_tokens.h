// Bearer tokens → caller names, from a file (typically a mounted Secret).
//
// File format: one token per line, "<caller> <token>", blank lines and lines starting with '#'
// ignored. A caller may have several tokens (for rotation); a token belongs to one caller. Caller
// names are 1-64 characters of [a-z0-9._-] starting with a letter or digit (they become metric
// labels and file owner tags, so they are short and come from configuration); two names with the
// same owner tag are refused. Tokens are 16-4096 printable ASCII characters without spaces.
//
// Only the SHA-256 of each token is kept; a presented token is hashed and compared with every
// entry in constant time. Reload() re-reads the file; a file that no longer parses keeps the
// previous tokens (and says so in the log), so a half-written Secret never locks everyone out.
#ifndef VISION_GATEWAY_SERVICE_SERVER_CALLER_TOKENS_H_
#define VISION_GATEWAY_SERVICE_SERVER_CALLER_TOKENS_H_

#include <memory>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace vision_gateway::server {

inline constexpr std::size_t kMaxCallerNameBytes = 64;
inline constexpr std::size_t kMinTokenBytes = 16;
inline constexpr std::size_t kMaxTokenBytes = 4096;

// 1-64 characters of [a-z0-9._-], the first a letter or digit.
bool IsValidCallerName(absl::string_view name);

struct TokenEntry {
  std::string caller;
  std::string token_hash;  // SHA-256 of the token, lowercase hex
};

// Refuses two different caller names whose file owner tags (vision::OwnerTagOf, the 8 characters
// in the ids of their files) are the same: they would see each other's files. `callers` may
// repeat a name. INVALID_ARGUMENT names both callers; `source` says where they came from.
absl::Status CheckOwnerTags(const std::vector<std::string>& callers, absl::string_view source);

// Parses the file's text. INVALID_ARGUMENT names the line (never the token). `other_callers`
// (e.g. the callers of --caller_overrides) join the owner-tag collision check.
absl::StatusOr<std::vector<TokenEntry>> ParseTokenFile(
    absl::string_view text, const std::vector<std::string>& other_callers = {});

class CallerTokens {
 public:
  // Reads and parses `path`; an unreadable or malformed file is an error, and so is a caller
  // whose owner tag collides with another's in the file or in `other_callers` (also on Reload).
  static absl::StatusOr<std::unique_ptr<CallerTokens>> Load(
      std::string path, std::vector<std::string> other_callers = {});

  // The caller `token` belongs to, or nullopt.
  std::optional<std::string> Match(absl::string_view token) const;

  // Re-reads the file when its content changed. Returns true when new tokens took effect.
  bool Reload();

  std::size_t size() const;

 private:
  CallerTokens(std::string path, std::vector<std::string> other_callers)
      : path_(std::move(path)), other_callers_(std::move(other_callers)) {}

  const std::string path_;
  const std::vector<std::string> other_callers_;
  mutable absl::Mutex mu_;
  std::string seen_digest_ ABSL_GUARDED_BY(mu_);  // of the file at the last look
  bool seen_unreadable_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<const std::vector<TokenEntry>> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vision_gateway::server

#endif  // VISION_GATEWAY_SERVICE_SERVER_CALLER_TOKENS_H_
