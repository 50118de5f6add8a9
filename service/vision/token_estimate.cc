#include "service/vision/token_estimate.h"

#include <algorithm>

namespace vision_gateway::vision {

int64_t EstimateImageTokens(int width, int height) {
  if (width <= 0 || height <= 0) return kTokensPerTile;
  if (width <= 384 && height <= 384) return kTokensPerTile;
  // Doc example: 960x540 → crop 360 → 3 x 2 = 6 tiles.
  const int64_t crop = std::max<int64_t>(1, static_cast<int64_t>(std::min(width, height)) * 2 / 3);
  const int64_t tiles = ((width + crop - 1) / crop) * ((height + crop - 1) / crop);
  return tiles * kTokensPerTile;
}

}  // namespace vision_gateway::vision
