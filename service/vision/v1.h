// The public contract's messages, under the short name v1 inside the vision layer. (The proto
// package vision.v1 generates namespace ::vision::v1, which `vision` alone would not reach from
// inside vision_gateway::vision.)
#ifndef VISION_GATEWAY_SERVICE_VISION_V1_H_
#define VISION_GATEWAY_SERVICE_VISION_V1_H_

#include "vision/v1/vision.pb.h"

namespace vision_gateway::vision {
namespace v1 = ::vision::v1;
}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_V1_H_
