// Streaming SHA-256. The header shows no OpenSSL type: the digest lives in sha256.cc, the only
// place it is implemented (OpenSSL, with the CPU's SHA extensions where present).
//
// Not thread-safe: one hasher per stream of bytes.
#ifndef VISION_GATEWAY_SERVICE_HTTP_SHA256_H_
#define VISION_GATEWAY_SERVICE_HTTP_SHA256_H_

#include <memory>
#include <string>
#include <string_view>

namespace vision_gateway::http {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  // Adds bytes to the digest.
  void Update(std::string_view bytes);
  // The digest of everything added, as 64 lowercase hex characters. The hasher then starts over.
  std::string FinishHex();

  // One-shot convenience.
  static std::string HexOf(std::string_view bytes);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace vision_gateway::http

#endif  // VISION_GATEWAY_SERVICE_HTTP_SHA256_H_
