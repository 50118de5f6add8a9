#include "service/gemini/json_text.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "service/gemini/json_writer.h"

namespace vision_gateway::gemini {
namespace {

using internal::kBase64Alphabet;

// Length of the valid UTF-8 sequence at p[0..n), or 0 when it is not valid (overlong forms,
// surrogates and code points above U+10FFFF are invalid).
std::size_t Utf8SequenceLength(const unsigned char* p, std::size_t n) {
  const unsigned c = p[0];
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;
  auto cont = [&](std::size_t i) { return i < n && (p[i] & 0xC0) == 0x80; };
  if (c < 0xE0) return cont(1) ? 2 : 0;
  if (c < 0xF0) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && p[1] < 0xA0) return 0;   // overlong
    if (c == 0xED && p[1] >= 0xA0) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (c < 0xF5) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && p[1] < 0x90) return 0;   // overlong
    if (c == 0xF4 && p[1] >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

constexpr char kHexDigits[] = "0123456789abcdef";
constexpr char kReplacementEscape[] = "\\ufffd";

}  // namespace

std::size_t JsonStringSize(std::string_view text) {
  std::size_t size = 2;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') {
      size += 2;
      ++i;
    } else if (c < 0x20) {
      size += 6;
      ++i;
    } else if (c < 0x80) {
      size += 1;
      ++i;
    } else {
      const std::size_t len = Utf8SequenceLength(p + i, n - i);
      if (len == 0) {
        size += sizeof(kReplacementEscape) - 1;
        ++i;
      } else {
        size += len;
        i += len;
      }
    }
  }
  return size;
}

void AppendJsonString(std::string& out, std::string_view text) {
  out += '"';
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t run_start = 0;  // start of the pending run of bytes copied verbatim
  auto flush = [&](std::size_t end) { out.append(text.data() + run_start, end - run_start); };
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      const std::size_t len = Utf8SequenceLength(p + i, n - i);
      if (len != 0) {
        i += len;
        continue;
      }
      flush(i);
      out += kReplacementEscape;
      run_start = ++i;
      continue;
    }
    flush(i);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: {
        const char esc[] = {'\\', 'u', '0', '0', kHexDigits[c >> 4], kHexDigits[c & 0xF]};
        out.append(esc, sizeof(esc));
      }
    }
    run_start = ++i;
  }
  flush(n);
  out += '"';
}

void AppendBase64(std::string& out, std::string_view bytes) {
  const std::size_t start = out.size();
  out.resize(start + Base64Size(bytes.size()));
  char* dst = out.data() + start;
  const auto* src = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t i = 0;
  const std::size_t n = bytes.size();
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (uint32_t{src[i]} << 16) | (uint32_t{src[i + 1]} << 8) | src[i + 2];
    *dst++ = kBase64Alphabet[(v >> 18) & 63];
    *dst++ = kBase64Alphabet[(v >> 12) & 63];
    *dst++ = kBase64Alphabet[(v >> 6) & 63];
    *dst++ = kBase64Alphabet[v & 63];
  }
  if (n - i == 1) {
    const uint32_t v = uint32_t{src[i]} << 16;
    *dst++ = kBase64Alphabet[(v >> 18) & 63];
    *dst++ = kBase64Alphabet[(v >> 12) & 63];
    *dst++ = '=';
    *dst++ = '=';
  } else if (n - i == 2) {
    const uint32_t v = (uint32_t{src[i]} << 16) | (uint32_t{src[i + 1]} << 8);
    *dst++ = kBase64Alphabet[(v >> 18) & 63];
    *dst++ = kBase64Alphabet[(v >> 12) & 63];
    *dst++ = kBase64Alphabet[(v >> 6) & 63];
    *dst++ = '=';
  }
}

}  // namespace vision_gateway::gemini
