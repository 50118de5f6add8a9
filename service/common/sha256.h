// SHA-256 (FIPS 180-4), for digests of secrets and names outside the TLS layer: bearer tokens are
// kept only as their SHA-256, and file owner tags are derived from a caller name. (OpenSSL stays
// confined to service/http/; this is the one hash the rest of the service needs.)
#ifndef VISION_GATEWAY_SERVICE_COMMON_SHA256_H_
#define VISION_GATEWAY_SERVICE_COMMON_SHA256_H_

#include <array>
#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

namespace vision_gateway {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest Sha256(absl::string_view data);

// Lowercase hex of a digest (64 characters).
std::string ToHex(const Sha256Digest& digest);

// True when a == b, in time that does not depend on where they differ.
bool ConstantTimeEquals(const Sha256Digest& a, const Sha256Digest& b);

}  // namespace vision_gateway

#endif  // VISION_GATEWAY_SERVICE_COMMON_SHA256_H_
