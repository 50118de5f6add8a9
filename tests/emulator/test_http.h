// Test helpers for the emulator: a tiny blocking HTTP/1.1 client over POSIX sockets (so the
// tests check the bytes on the wire, independently of Beast), request builders and images
// with known shapes.
#ifndef VISION_GATEWAY_TESTS_EMULATOR_TEST_HTTP_H_
#define VISION_GATEWAY_TESTS_EMULATOR_TEST_HTTP_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "emulator/emulator.h"

namespace vision_gateway::emulator::testing {

struct HttpResult {
  int status = 0;
  HeaderList headers;
  std::string body;                 // de-chunked
  std::vector<std::string> chunks;  // chunk payloads as framed by the server
  bool chunked = false;
  bool complete = false;  // terminating chunk / full Content-Length seen before EOF
  std::string Header(std::string_view name) const;
};

// A connected socket, closed on destruction.
class TestConnection {
 public:
  static absl::StatusOr<TestConnection> Connect(int port);
  TestConnection(TestConnection&& other) noexcept;
  TestConnection& operator=(TestConnection&&) = delete;
  ~TestConnection();

  absl::Status Send(std::string_view bytes);
  // Reads one response (to EOF when it has no length framing).
  absl::StatusOr<HttpResult> ReadResponse();
  // Reads until the bytes received so far contain `marker`; returns them (not consumed).
  absl::StatusOr<std::string> ReadUntil(std::string_view marker);
  void Close();

 private:
  explicit TestConnection(int fd) : fd_(fd) {}
  absl::StatusOr<bool> Fill();  // false at EOF
  int fd_ = -1;
  std::string buffer_;
};

std::string FormatRequest(std::string_view method, std::string_view target,
                          const HeaderList& headers, std::string_view body, bool keep_alive);

// One request on a fresh connection ("Connection: close").
absl::StatusOr<HttpResult> SendHttp(int port, std::string_view method, std::string_view target,
                                    const HeaderList& headers = {}, std::string_view body = {});

// Shapes drawn on a white RGB canvas: exact truth for geometry tests.
struct TestImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;
  std::vector<uint8_t> red_mask;   // width*height, 1 = red pixel
  std::vector<uint8_t> blue_mask;  // width*height, 1 = blue pixel
  std::string png;
};
// White 320x240 with a red rectangle x∈[40,140) y∈[60,180) and a blue ellipse centred at
// (230,130) with radii 60x45 (scaled for other sizes).
TestImage MakeShapesImage(int width = 320, int height = 240);
// A plain white image of this size, encoded as PNG.
std::string MakePlainPng(int width, int height);

// A generateContent body with one inline image and a text part.
std::string GenerateBody(std::string_view png, std::string_view prompt,
                         std::string_view extra_members = {});

double IoU(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b);

}  // namespace vision_gateway::emulator::testing

#endif  // VISION_GATEWAY_TESTS_EMULATOR_TEST_HTTP_H_
