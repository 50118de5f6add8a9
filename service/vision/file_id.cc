#include "service/vision/file_id.h"

#include <cstdint>
#include <vector>

#include "absl/random/random.h"
#include "service/gemini/sha256.h"

namespace vision_gateway::vision {
namespace {

constexpr std::string_view kPrefix = "g1";
constexpr std::string_view kDigits = "0123456789abcdefghijklmnopqrstuvwxyz";
constexpr std::size_t kRandomLength = 12;
constexpr std::string_view kSourceHashTag = "|vg-src-sha256=";

bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool AllAlnum(std::string_view s) {
  for (const char c : s) {
    if (!IsAlnum(c)) return false;
  }
  return true;
}

std::string Base36(int value, int digits) {
  std::string out(digits, '0');
  for (int i = digits - 1; i >= 0; --i) {
    out[i] = kDigits[value % 36];
    value /= 36;
  }
  return out;
}

int FromBase36(std::string_view text) {
  int value = 0;
  for (const char c : text) {
    value = value * 36 + (c <= '9' ? c - '0' : c - 'a' + 10);
  }
  return value;
}

}  // namespace

std::string NewFileId(int width, int height, std::string_view owner_tag) {
  if (width < 1 || height < 1 || width > kMaxFileIdDimension || height > kMaxFileIdDimension) {
    width = height = 0;
  }
  std::string id(kPrefix);
  id += '-';
  id += Base36(width, 4);
  id += Base36(height, 4);
  if (owner_tag.size() == kOwnerTagLength && AllAlnum(owner_tag)) {
    id += '-';
    id += owner_tag;
  }
  id += '-';
  thread_local absl::BitGen gen;
  for (std::size_t i = 0; i < kRandomLength; ++i) {
    id += kDigits[absl::Uniform<std::size_t>(gen, 0, kDigits.size())];
  }
  return id;
}

FileIdInfo DecodeFileId(std::string_view name_or_id) {
  FileIdInfo info;
  std::string_view id = name_or_id;
  if (id.starts_with("files/")) id.remove_prefix(6);
  if (id.size() > 40) return info;
  std::vector<std::string_view> parts;
  while (parts.size() < 5) {
    const std::size_t dash = id.find('-');
    parts.push_back(id.substr(0, dash));
    if (dash == std::string_view::npos) break;
    id.remove_prefix(dash + 1);
  }
  if (parts.size() != 3 && parts.size() != 4) return info;
  if (parts[0] != kPrefix) return info;
  if (parts[1].size() != 8 || !AllAlnum(parts[1])) return info;
  if (parts.back().size() != kRandomLength || !AllAlnum(parts.back())) return info;
  if (parts.size() == 4 && (parts[2].size() != kOwnerTagLength || !AllAlnum(parts[2]))) {
    return info;
  }
  const int width = FromBase36(std::string_view(parts[1].data(), 4));
  const int height = FromBase36(std::string_view(parts[1].data() + 4, 4));
  info.ours = true;
  if (width > 0 && height > 0) {
    info.width = width;
    info.height = height;
  }
  if (parts.size() == 4) info.owner_tag = std::string(parts[2]);
  return info;
}

std::string OwnerTagOf(std::string_view caller) {
  if (caller.empty()) return "";
  const std::string hex = gemini::Sha256::HexOf(caller);
  // 16 hex digits = 64 bits, rendered in base 36 (13 digits), of which the first 8 are kept.
  uint64_t value = 0;
  for (int i = 0; i < 16; ++i) {
    const char c = hex[i];
    value = value * 16 + static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  }
  std::string tag(kOwnerTagLength, '0');
  for (std::size_t i = 0; i < kOwnerTagLength; ++i) {
    tag[i] = kDigits[value % 36];
    value /= 36;
  }
  return tag;
}

bool IsSha256Hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string TagDisplayName(std::string_view display_name, std::string_view source_sha256) {
  static_assert(kSourceHashTag.size() + 64 == kSourceHashTagLength);
  if (!IsSha256Hex(source_sha256) ||
      display_name.size() + kSourceHashTagLength > kMaxDisplayNameBytes) {
    return std::string(display_name);
  }
  std::string out(display_name);
  out += kSourceHashTag;
  out += source_sha256;
  return out;
}

DisplayNameInfo DecodeDisplayName(std::string_view stored) {
  DisplayNameInfo info;
  if (stored.size() >= kSourceHashTagLength) {
    const std::string_view tag = stored.substr(stored.size() - kSourceHashTagLength);
    if (tag.starts_with(kSourceHashTag) && IsSha256Hex(tag.substr(kSourceHashTag.size()))) {
      info.display_name = std::string(stored.substr(0, stored.size() - kSourceHashTagLength));
      info.source_sha256 = std::string(tag.substr(kSourceHashTag.size()));
      return info;
    }
  }
  info.display_name = std::string(stored);
  return info;
}

}  // namespace vision_gateway::vision
