#include "service/common/secret_redaction.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"

namespace vision_gateway {
namespace {

// Marks in `hide` every byte of `text` that belongs to the secret (any case) or to a run that
// shares >= kSecretPieceBytes consecutive characters with it (exact case: pieces of a key are
// case-sensitive, and a case-folded 6-character match would hide ordinary words).
bool MarkSecret(std::string_view text, std::string_view secret, std::vector<bool>& hide) {
  if (secret.empty() || text.empty()) return false;
  bool any = false;
  std::string lower_text(text);
  absl::AsciiStrToLower(&lower_text);
  std::string lower_secret(secret);
  absl::AsciiStrToLower(&lower_secret);
  for (std::size_t at = lower_text.find(lower_secret); at != std::string::npos;
       at = lower_text.find(lower_secret, at + 1)) {
    for (std::size_t i = at; i < at + secret.size(); ++i) hide[i] = true;
    any = true;
  }
  if (secret.size() < kSecretPieceBytes) return any;
  // Every common substring of length >= kSecretPieceBytes: a run of diagonal matches in the
  // text x secret grid. Both are bounded by the callers (text a few KiB, a key ~40 bytes).
  for (std::size_t t = 0; t + kSecretPieceBytes <= text.size(); ++t) {
    for (std::size_t s = 0; s + kSecretPieceBytes <= secret.size(); ++s) {
      if (text.compare(t, kSecretPieceBytes, secret.substr(s, kSecretPieceBytes)) != 0) continue;
      for (std::size_t i = t; i < t + kSecretPieceBytes; ++i) hide[i] = true;
      any = true;
    }
  }
  return any;
}

}  // namespace

bool HideSecret(std::string& text, std::string_view secret) {
  std::vector<bool> hide(text.size(), false);
  if (!MarkSecret(text, secret, hide)) return false;
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (!hide[i]) {
      out.push_back(text[i++]);
      continue;
    }
    out.append(kRedactedText);
    while (i < text.size() && hide[i]) ++i;
  }
  text = std::move(out);
  return true;
}

bool ContainsSecret(std::string_view text, std::string_view secret) {
  std::vector<bool> hide(text.size(), false);
  return MarkSecret(text, secret, hide);
}

absl::Status RedactSecret(absl::Status status, std::string_view secret) {
  if (status.ok() || secret.empty()) return status;
  std::string message(status.message());
  bool dirty = HideSecret(message, secret);
  std::vector<std::string> drop;  // type URLs of payloads holding the secret
  status.ForEachPayload([&](absl::string_view type_url, const absl::Cord& payload) {
    if (ContainsSecret(std::string(payload), secret)) drop.emplace_back(type_url);
  });
  if (!dirty && drop.empty()) return status;
  absl::Status clean(status.code(), message);
  status.ForEachPayload([&](absl::string_view type_url, const absl::Cord& payload) {
    if (std::find(drop.begin(), drop.end(), type_url) == drop.end()) {
      clean.SetPayload(type_url, payload);
    }
  });
  return clean;
}

}  // namespace vision_gateway
