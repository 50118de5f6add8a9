#include "service/vision/file_id.h"

#include <cstdint>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "service/gemini/sha256.h"

namespace vision_gateway::vision {
namespace {

constexpr std::string_view kPrefix = "g1";
constexpr std::string_view kDigits = "0123456789abcdefghijklmnopqrstuvwxyz";
constexpr std::size_t kRandomLength = 12;
constexpr std::string_view kReservedMarker = "|vg-";
constexpr std::string_view kSourceTag = "|vg-src=";
// The unauthenticated tag of versions before the MAC: hidden from display names, never trusted.
constexpr std::string_view kOldSourceHashTag = "|vg-src-sha256=";
constexpr std::size_t kMacHexLength = 32;
constexpr std::string_view kTagKeyLabel = "vision-gateway file tag v1";

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

std::string HmacSha256Hex(std::string_view key, std::string_view message) {
  constexpr std::size_t kBlock = 64;
  std::string k(key);
  if (k.size() > kBlock) k = absl::HexStringToBytes(gemini::Sha256::HexOf(k));  // RFC 2104
  k.resize(kBlock, '\0');
  std::string inner_pad(kBlock, '\0'), outer_pad(kBlock, '\0');
  for (std::size_t i = 0; i < kBlock; ++i) {
    inner_pad[i] = static_cast<char>(k[i] ^ 0x36);
    outer_pad[i] = static_cast<char>(k[i] ^ 0x5c);
  }
  gemini::Sha256 inner;
  inner.Update(inner_pad);
  inner.Update(message);
  gemini::Sha256 outer;
  outer.Update(outer_pad);
  outer.Update(absl::HexStringToBytes(inner.FinishHex()));
  return outer.FinishHex();
}

std::string FileTagKeyFrom(std::string_view api_key) {
  return absl::HexStringToBytes(HmacSha256Hex(api_key, kTagKeyLabel));
}

std::string RandomFileTagKey() {
  absl::BitGen gen;
  std::string key(32, '\0');
  for (char& c : key) c = static_cast<char>(absl::Uniform<unsigned>(gen, 0, 256));
  return key;
}

bool ReservedMarkerIn(std::string_view display_name) {
  return display_name.find(kReservedMarker) != std::string_view::npos;
}

namespace {

std::string TagMac(std::string_view key, std::string_view file_name, std::string_view sha256,
                   int64_t size) {
  std::string_view name = file_name;
  if (name.starts_with("files/")) name.remove_prefix(6);
  std::string message(name);
  message += '\n';
  message += sha256;
  message += '\n';
  message += std::to_string(size);
  return HmacSha256Hex(key, message).substr(0, kMacHexLength);
}

}  // namespace

std::string TagDisplayName(std::string_view display_name, std::string_view file_name,
                           std::string_view source_sha256, int64_t source_size,
                           std::string_view key) {
  if (!IsSha256Hex(source_sha256) || source_size < 1 || key.empty()) {
    return std::string(display_name);
  }
  std::string out(display_name);
  out += kSourceTag;
  out += source_sha256;
  out += '.';
  out += std::to_string(source_size);
  out += '.';
  out += TagMac(key, file_name, source_sha256, source_size);
  if (out.size() > kMaxDisplayNameBytes) return std::string(display_name);
  return out;
}

DisplayNameInfo DecodeDisplayName(std::string_view stored, std::string_view file_name,
                                  std::string_view key) {
  DisplayNameInfo info;
  const std::size_t at = stored.rfind(kSourceTag);
  if (at != std::string_view::npos) {
    // <64 hex>.<size>.<32 hex>
    const std::string_view tag = stored.substr(at + kSourceTag.size());
    const std::size_t dot2 = tag.size() > 65 ? tag.find('.', 65) : std::string_view::npos;
    int64_t size = 0;
    if (dot2 != std::string_view::npos && tag[64] == '.' && IsSha256Hex(tag.substr(0, 64)) &&
        absl::SimpleAtoi(absl::string_view(tag.data() + 65, dot2 - 65), &size) && size > 0 &&
        tag.size() - dot2 - 1 == kMacHexLength) {
      // The gateway's tag (callers cannot write "|vg-"): hidden; trusted only when its MAC
      // verifies for this file under this key.
      info.display_name = std::string(stored.substr(0, at));
      if (!key.empty() && tag.substr(dot2 + 1) == TagMac(key, file_name, tag.substr(0, 64), size)) {
        info.source_sha256 = std::string(tag.substr(0, 64));
        info.source_size = size;
      }
      return info;
    }
  }
  // A tag of an older version: hidden, never trusted.
  if (stored.size() >= kOldSourceHashTag.size() + 64) {
    const std::string_view tag = stored.substr(stored.size() - kOldSourceHashTag.size() - 64);
    if (tag.starts_with(kOldSourceHashTag) && IsSha256Hex(tag.substr(kOldSourceHashTag.size()))) {
      info.display_name = std::string(stored.substr(0, stored.size() - tag.size()));
      return info;
    }
  }
  info.display_name = std::string(stored);
  return info;
}

}  // namespace vision_gateway::vision
