#include "service/image/binary_mask.h"

#include <algorithm>

namespace vision_gateway::image {

int64_t MaskArea(const BinaryMask& mask) {
  return std::count_if(mask.data.begin(), mask.data.end(), [](uint8_t v) { return v != 0; });
}

}  // namespace vision_gateway::image
