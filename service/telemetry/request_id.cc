#include "service/telemetry/request_id.h"

#include <cstdint>

#include "absl/random/random.h"

namespace vision_gateway::telemetry {
namespace {

bool IsLowerHex(std::string_view text) {
  for (const char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool AllZero(std::string_view text) { return text.find_first_not_of('0') == std::string_view::npos; }

}  // namespace

bool IsValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdBytes) return false;
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '/' || c == '+' || c == '=' ||
                    c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string GenerateRequestId() {
  thread_local absl::BitGen bits;
  constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (int half = 0; half < 2; ++half) {
    uint64_t value = absl::Uniform<uint64_t>(bits);
    for (int i = 15; i >= 0; --i, value >>= 4) id[half * 16 + i] = kHex[value & 0xf];
  }
  return id;
}

bool IsValidTraceparent(std::string_view value) {
  // version(2) - trace-id(32) - parent-id(16) - flags(2) = 55 characters.
  constexpr std::size_t kLength = 55;
  if (value.size() < kLength) return false;
  const std::string_view version = value.substr(0, 2);
  if (!IsLowerHex(version) || version == "ff") return false;
  if (version == "00" ? value.size() != kLength
                      : value.size() > kLength && value[kLength] != '-') {
    return false;
  }
  if (value.size() > 512) return false;
  if (value[2] != '-' || value[35] != '-' || value[52] != '-') return false;
  const std::string_view trace_id = value.substr(3, 32);
  const std::string_view parent_id = value.substr(36, 16);
  const std::string_view flags = value.substr(53, 2);
  if (!IsLowerHex(trace_id) || !IsLowerHex(parent_id) || !IsLowerHex(flags)) return false;
  if (AllZero(trace_id) || AllZero(parent_id)) return false;
  // Later versions may append fields: keep them only if they are printable and header-safe.
  for (const char c : value.substr(kLength)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7e) return false;
  }
  return true;
}

}  // namespace vision_gateway::telemetry
