// Captures every log line (service/common/log.h) written while a LogCapture lives, for tests that
// check what the server logs. One at a time; restores text format and INFO level when it ends.
#ifndef VISION_GATEWAY_TESTS_INTEGRATION_LOG_CAPTURE_H_
#define VISION_GATEWAY_TESTS_INTEGRATION_LOG_CAPTURE_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "service/common/log.h"

namespace vision_gateway::testing {

// Every log line written while a LogCapture lives.
class LogCapture {
 public:
  LogCapture() { SetLogSinkForTest(&Sink); }
  ~LogCapture() {
    SetLogSinkForTest(nullptr);
    SetLogFormat(LogFormat::kText);
    SetMinLogSeverity(LogSeverity::kInfo);
    absl::MutexLock lock(&mu_);
    lines_->clear();
  }
  std::vector<std::string> Lines() const {
    absl::MutexLock lock(&mu_);
    return *lines_;
  }
  // Access-log lines (text format) of calls to `method`.
  std::vector<std::string> AccessLines(std::string_view method) const {
    std::vector<std::string> out;
    for (const std::string& line : Lines()) {
      if (absl::StrContains(line, " INFO access method=" + std::string(method) + " ") ||
          absl::StrContains(line, "\"message\":\"access\",\"method\":\"" + std::string(method) +
                                      "\"")) {
        out.push_back(line);
      }
    }
    return out;
  }

 private:
  static void Sink(std::string_view line) {
    absl::MutexLock lock(&mu_);
    lines_->emplace_back(line);
  }
  static inline absl::Mutex mu_;
  static inline std::vector<std::string>* lines_ = new std::vector<std::string>();
};

// The first piece of `secret` at least `min_length` long that occurs in `text`, or "" (a log line
// must not carry the key, nor any recognisable part of it: 6 characters, as the product hides).
inline std::string SecretFragmentIn(std::string_view text, std::string_view secret,
                                    size_t min_length = 6) {
  if (secret.size() < min_length) min_length = secret.size();
  for (size_t at = 0; at + min_length <= secret.size(); ++at) {
    const std::string_view piece = secret.substr(at, min_length);
    if (text.find(piece) != std::string_view::npos) return std::string(piece);
  }
  return "";
}

}  // namespace vision_gateway::testing

#endif  // VISION_GATEWAY_TESTS_INTEGRATION_LOG_CAPTURE_H_
