// The streaming SHA-256 the Files API needs (File.sha256Hash), for the layers above gemini/.
// Implemented in http/ (the one place that sees OpenSSL); this header exposes no OpenSSL type.
#ifndef VISION_GATEWAY_SERVICE_GEMINI_SHA256_H_
#define VISION_GATEWAY_SERVICE_GEMINI_SHA256_H_

#include "service/http/sha256.h"

namespace vision_gateway::gemini {

using Sha256 = http::Sha256;

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_SHA256_H_
