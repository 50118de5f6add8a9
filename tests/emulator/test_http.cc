#include "tests/emulator/test_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "emulator/scene.h"

namespace vision_gateway::emulator::testing {

std::string HttpResult::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, absl::string_view(name.data(), name.size()))) return value;
  }
  return "";
}

absl::StatusOr<TestConnection> TestConnection::Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  timeval timeout{20, 0};  // a hung server fails the test instead of hanging it
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("connect failed: ", std::strerror(errno)));
  }
  return TestConnection(fd);
}

TestConnection::TestConnection(TestConnection&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), buffer_(std::move(other.buffer_)) {}

TestConnection::~TestConnection() { Close(); }

void TestConnection::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

absl::Status TestConnection::Send(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("send failed: ", std::strerror(errno)));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> TestConnection::Fill() {
  char chunk[65536];
  for (;;) {
    const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      return true;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    if (errno == ECONNRESET) return false;
    return absl::DeadlineExceededError(absl::StrCat("recv failed: ", std::strerror(errno)));
  }
}

absl::StatusOr<std::string> TestConnection::ReadUntil(std::string_view marker) {
  while (buffer_.find(marker) == std::string::npos) {
    absl::StatusOr<bool> more = Fill();
    if (!more.ok()) return more.status();
    if (!*more) return absl::UnavailableError("connection closed before the marker");
  }
  return buffer_;
}

absl::StatusOr<HttpResult> TestConnection::ReadResponse() {
  HttpResult result;
  size_t header_end;
  while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    absl::StatusOr<bool> more = Fill();
    if (!more.ok()) return more.status();
    if (!*more) return absl::UnavailableError("connection closed before a response header");
  }
  std::vector<std::string> lines = absl::StrSplit(buffer_.substr(0, header_end), "\r\n");
  buffer_.erase(0, header_end + 4);
  std::vector<std::string> status_line = absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  if (status_line.size() < 2 || !absl::SimpleAtoi(status_line[1], &result.status)) {
    return absl::InternalError(absl::StrCat("bad status line: ", lines[0]));
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == std::string::npos) return absl::InternalError("bad header line");
    result.headers.emplace_back(lines[i].substr(0, colon),
                                std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1))));
  }
  result.chunked = absl::EqualsIgnoreCase(result.Header("transfer-encoding"), "chunked");
  if (result.chunked) {
    for (;;) {
      size_t line_end;
      while ((line_end = buffer_.find("\r\n")) == std::string::npos) {
        absl::StatusOr<bool> more = Fill();
        if (!more.ok()) return more.status();
        if (!*more) return result;  // truncated: complete stays false
      }
      const std::string size_text = buffer_.substr(0, buffer_.find_first_of(";\r"));
      size_t size = 0;
      if (!absl::SimpleHexAtoi(size_text, &size)) return absl::InternalError("bad chunk size");
      if (size == 0) {
        while (buffer_.find("\r\n\r\n", line_end) == std::string::npos) {
          absl::StatusOr<bool> more = Fill();
          if (!more.ok()) return more.status();
          if (!*more) return result;
        }
        buffer_.erase(0, buffer_.find("\r\n\r\n", line_end) + 4);
        result.complete = true;
        return result;
      }
      while (buffer_.size() < line_end + 2 + size + 2) {
        absl::StatusOr<bool> more = Fill();
        if (!more.ok()) return more.status();
        if (!*more) return result;
      }
      std::string payload = buffer_.substr(line_end + 2, size);
      result.body += payload;
      result.chunks.push_back(std::move(payload));
      buffer_.erase(0, line_end + 2 + size + 2);
    }
  }
  const std::string length_text = result.Header("content-length");
  if (!length_text.empty()) {
    size_t length = 0;
    if (!absl::SimpleAtoi(length_text, &length)) return absl::InternalError("bad length");
    while (buffer_.size() < length) {
      absl::StatusOr<bool> more = Fill();
      if (!more.ok()) return more.status();
      if (!*more) {
        result.body = buffer_;
        return result;
      }
    }
    result.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    result.complete = true;
    return result;
  }
  for (;;) {
    absl::StatusOr<bool> more = Fill();
    if (!more.ok()) return more.status();
    if (!*more) break;
  }
  result.body = std::move(buffer_);
  buffer_.clear();
  result.complete = true;
  return result;
}

std::string FormatRequest(std::string_view method, std::string_view target,
                          const HeaderList& headers, std::string_view body, bool keep_alive) {
  std::string request = absl::StrCat(absl::string_view(method.data(), method.size()), " ",
                                     absl::string_view(target.data(), target.size()),
                                     " HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  for (const auto& [name, value] : headers) absl::StrAppend(&request, name, ": ", value, "\r\n");
  if (!body.empty() || method == "POST") {
    absl::StrAppend(&request, "Content-Length: ", body.size(), "\r\n");
  }
  absl::StrAppend(&request, "Connection: ", keep_alive ? "keep-alive" : "close", "\r\n\r\n");
  request.append(body.data(), body.size());
  return request;
}

absl::StatusOr<HttpResult> SendHttp(int port, std::string_view method, std::string_view target,
                                    const HeaderList& headers, std::string_view body) {
  absl::StatusOr<TestConnection> connection = TestConnection::Connect(port);
  if (!connection.ok()) return connection.status();
  if (absl::Status status = connection->Send(FormatRequest(method, target, headers, body, false));
      !status.ok()) {
    return status;
  }
  return connection->ReadResponse();
}

TestImage MakeShapesImage(int width, int height) {
  TestImage image;
  image.width = width;
  image.height = height;
  const size_t n = static_cast<size_t>(width) * height;
  image.rgb.assign(3 * n, 255);
  image.red_mask.assign(n, 0);
  image.blue_mask.assign(n, 0);
  const double sx = width / 320.0;
  const double sy = height / 240.0;
  const int rx0 = static_cast<int>(40 * sx), rx1 = static_cast<int>(140 * sx);
  const int ry0 = static_cast<int>(60 * sy), ry1 = static_cast<int>(180 * sy);
  const double cx = 230 * sx, cy = 130 * sy, ax = 60 * sx, ay = 45 * sy;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const size_t i = static_cast<size_t>(y) * width + x;
      const double ex = (x + 0.5 - cx) / ax;
      const double ey = (y + 0.5 - cy) / ay;
      if (x >= rx0 && x < rx1 && y >= ry0 && y < ry1) {
        image.red_mask[i] = 1;
        image.rgb[3 * i] = 220;
        image.rgb[3 * i + 1] = 30;
        image.rgb[3 * i + 2] = 30;
      } else if (ex * ex + ey * ey <= 1.0) {
        image.blue_mask[i] = 1;
        image.rgb[3 * i] = 30;
        image.rgb[3 * i + 1] = 60;
        image.rgb[3 * i + 2] = 220;
      }
    }
  }
  absl::StatusOr<std::string> png = EncodePng(image.rgb.data(), width, height, 3);
  if (png.ok()) image.png = *std::move(png);
  return image;
}

std::string MakePlainPng(int width, int height) {
  std::vector<uint8_t> rgb(static_cast<size_t>(width) * height * 3, 250);
  absl::StatusOr<std::string> png = EncodePng(rgb.data(), width, height, 3);
  return png.ok() ? *png : std::string();
}

std::string GenerateBody(std::string_view png, std::string_view prompt,
                         std::string_view extra_members) {
  std::string escaped;
  for (char c : prompt) {
    if (c == '"' || c == '\\') escaped += '\\';
    if (c == '\n') {
      escaped += "\\n";
      continue;
    }
    escaped += c;
  }
  return absl::StrCat(
      R"({"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": ")",
      absl::Base64Escape(absl::string_view(png.data(), png.size())), R"("}}, {"text": ")", escaped,
      R"("}]}])", extra_members.empty() ? "" : ", ",
      absl::string_view(extra_members.data(), extra_members.size()), "}");
}

double IoU(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  size_t both = 0, either = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    both += (a[i] && b[i]) ? 1 : 0;
    either += (a[i] || b[i]) ? 1 : 0;
  }
  return either == 0 ? 1.0 : static_cast<double>(both) / either;
}

}  // namespace vision_gateway::emulator::testing
