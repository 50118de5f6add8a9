// A minimal logging shim (Abseil 20220623 has no absl/log). One line per call on stderr, with a
// UTC timestamp and severity, as text or as one JSON object per line. Never log secrets: the API
// key, image bytes, prompts, request bodies.
#ifndef VISION_GATEWAY_SERVICE_COMMON_LOG_H_
#define VISION_GATEWAY_SERVICE_COMMON_LOG_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace vision_gateway {

// kDebug: high-volume lines operators rarely need, e.g. the access log of health checks.
enum class LogSeverity { kDebug, kInfo, kWarning, kError };

// kText: `2026-01-02T03:04:05.678Z INFO message key=value ...` (values with spaces, quotes or
// '=' are double-quoted with \" and \\ escaped).
// kJson: `{"time":"2026-...Z","severity":"INFO","message":"...","key":value,...}`.
enum class LogFormat { kText, kJson };

// "debug" | "info" | "warning" | "error" (case-insensitive); nullopt otherwise.
std::optional<LogSeverity> ParseLogSeverity(std::string_view name);
// "text" | "json"; nullopt otherwise.
std::optional<LogFormat> ParseLogFormat(std::string_view name);

// One key/value of a structured line. `number` values are written bare in JSON (they must be a
// JSON number), others as strings.
struct LogField {
  std::string_view key;
  std::string value;
  bool number = false;
};

void LogLine(LogSeverity severity, std::string_view message);
void LogLine(LogSeverity severity, std::string_view message, const std::vector<LogField>& fields);

// A log line's time: "2026-01-02T03:04:05.678Z" (UTC, milliseconds).
std::string LogTimestamp(absl::Time time);

// The line LogLine writes (without the newline), for tests.
std::string FormatLogLine(LogFormat format, LogSeverity severity, std::string_view message,
                          const std::vector<LogField>& fields);

// Messages below this severity are dropped (default kInfo).
void SetMinLogSeverity(LogSeverity severity);
bool LogEnabled(LogSeverity severity);
void SetLogFormat(LogFormat format);

// Where lines go (default stderr); for tests. The sink runs under a lock, one line at a time.
void SetLogSinkForTest(void (*sink)(std::string_view line));

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
