// Bounds shared by every Gemini JSON codec (generate_codec.h, files_codec.h, reverse_codec.h).
#ifndef VISION_GATEWAY_SERVICE_GEMINI_JSON_CODEC_OPTIONS_H_
#define VISION_GATEWAY_SERVICE_GEMINI_JSON_CODEC_OPTIONS_H_

#include <cstddef>

namespace vision_gateway::gemini {

inline constexpr std::size_t kDefaultMaxJsonBodyBytes = 64 * 1024 * 1024;

struct JsonCodecOptions {
  // Largest body encoded or decoded; larger inputs are rejected before any work is done.
  std::size_t max_body_bytes = kDefaultMaxJsonBodyBytes;
};

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_JSON_CODEC_OPTIONS_H_
