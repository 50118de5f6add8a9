#include "service/gemini/types.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"

namespace vision_gateway::gemini {

std::string AnswerText(const GenerateContentResponse& response) {
  std::string text;
  if (response.candidates.empty()) return text;
  for (const Part& part : response.candidates.front().content.parts) {
    if (part.thought) continue;
    text += part.text;
  }
  return text;
}

std::string Sha256HashFromHex(std::string_view hex) {
  return absl::Base64Escape(absl::AsciiStrToLower(absl::string_view(hex.data(), hex.size())));
}

std::string HexFromSha256Hash(std::string_view sha256_hash) {
  if (sha256_hash.size() > 128) return "";
  std::string hex;
  if (!absl::Base64Unescape(absl::string_view(sha256_hash.data(), sha256_hash.size()), &hex)) {
    return "";
  }
  if (hex.size() != 64) return "";
  hex = absl::AsciiStrToLower(hex);
  const bool is_hex = std::all_of(hex.begin(), hex.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
  return is_hex ? hex : "";
}

}  // namespace vision_gateway::gemini
