// The Gemini 2.x image token rule (gemini-wire.md §6): an image with both sides <= 384 px costs
// 258 tokens; a larger one is cut into crop units of side floor(min(w, h) / 1.5), each scaled to a
// 768x768 tile costing 258: tiles = ceil(w / crop) * ceil(h / crop).
#ifndef VISION_GATEWAY_SERVICE_VISION_TOKEN_ESTIMATE_H_
#define VISION_GATEWAY_SERVICE_VISION_TOKEN_ESTIMATE_H_

#include <cstdint>

namespace vision_gateway::vision {

inline constexpr int kTokensPerTile = 258;

int64_t EstimateImageTokens(int width, int height);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_TOKEN_ESTIMATE_H_
