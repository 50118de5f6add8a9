// Hiding a secret (the Gemini API key) in text that leaves the process: log lines, statuses,
// callers' messages. An upstream message may echo the key whole, in another case, or only a
// piece of it ("key ending in ...Tk3z-emu"), so the whole key is hidden ignoring case, and so is
// every run of text that shares kSecretPieceBytes or more consecutive characters with the key.
// One implementation for every layer: the Gemini client redacts the statuses it returns, the
// server's leak filter redacts what reaches callers and the log.
#ifndef VISION_GATEWAY_SERVICE_COMMON_SECRET_REDACTION_H_
#define VISION_GATEWAY_SERVICE_COMMON_SECRET_REDACTION_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace vision_gateway {

// Pieces of a secret this long or longer are hidden wherever they appear (shorter ones are too
// common in ordinary text to be told apart from it).
inline constexpr std::size_t kSecretPieceBytes = 6;
inline constexpr char kRedactedText[] = "[redacted]";

// Replaces in `text` the secret (any case) and every run sharing >= kSecretPieceBytes
// consecutive characters with it by kRedactedText. Returns whether anything was replaced.
// An empty secret changes nothing.
bool HideSecret(std::string& text, std::string_view secret);

// Whether `text` holds the secret (any case) or a piece of it as HideSecret defines.
bool ContainsSecret(std::string_view text, std::string_view secret);

// `status` with HideSecret applied to its message and to every payload (a payload holding the
// secret is dropped: its bytes are serialized messages, not text to edit). OK stays OK.
absl::Status RedactSecret(absl::Status status, std::string_view secret);

}  // namespace vision_gateway

#endif  // VISION_GATEWAY_SERVICE_COMMON_SECRET_REDACTION_H_
