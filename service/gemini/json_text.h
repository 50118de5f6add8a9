// JSON text building blocks: string literals and base64, appended in place to a body being built.
#ifndef VISION_GATEWAY_SERVICE_GEMINI_JSON_TEXT_H_
#define VISION_GATEWAY_SERVICE_GEMINI_JSON_TEXT_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace vision_gateway::gemini {

// Appends `text` as a JSON string literal (with quotes). Escapes '"', '\\' and control
// characters; valid UTF-8 passes through unchanged; each invalid UTF-8 byte becomes \ufffd.
void AppendJsonString(std::string& out, std::string_view text);
// The number of bytes AppendJsonString would append.
std::size_t JsonStringSize(std::string_view text);

// Appends standard base64 (with padding) of `bytes`, written in place into `out`.
void AppendBase64(std::string& out, std::string_view bytes);
inline constexpr std::size_t Base64Size(std::size_t n) { return (n + 2) / 3 * 4; }

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_JSON_TEXT_H_
