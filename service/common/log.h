// A minimal logging shim (Abseil 20220623 has no absl/log). One line per call on stderr, with a
// UTC timestamp and severity. Never log secrets: the API key, image bytes, request bodies.
#ifndef VISION_GATEWAY_SERVICE_COMMON_LOG_H_
#define VISION_GATEWAY_SERVICE_COMMON_LOG_H_

#include <string_view>

#include "absl/strings/str_format.h"

namespace vision_gateway {

enum class LogSeverity { kInfo, kWarning, kError };

void LogLine(LogSeverity severity, std::string_view message);

// Messages below this severity are dropped (default kInfo).
void SetMinLogSeverity(LogSeverity severity);

template <typename... Args>
void LogInfo(const absl::FormatSpec<Args...>& format, const Args&... args) {
  LogLine(LogSeverity::kInfo, absl::StrFormat(format, args...));
}
template <typename... Args>
void LogWarning(const absl::FormatSpec<Args...>& format, const Args&... args) {
  LogLine(LogSeverity::kWarning, absl::StrFormat(format, args...));
}
template <typename... Args>
void LogError(const absl::FormatSpec<Args...>& format, const Args&... args) {
  LogLine(LogSeverity::kError, absl::StrFormat(format, args...));
}

}  // namespace vision_gateway

#endif  // VISION_GATEWAY_SERVICE_COMMON_LOG_H_
