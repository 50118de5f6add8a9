#include "service/common/log.h"

#include <atomic>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace vision_gateway {
namespace {
std::atomic<int> min_severity{static_cast<int>(LogSeverity::kInfo)};
}  // namespace

void SetMinLogSeverity(LogSeverity severity) { min_severity = static_cast<int>(severity); }

void LogLine(LogSeverity severity, std::string_view message) {
  if (static_cast<int>(severity) < min_severity.load(std::memory_order_relaxed)) return;
  static constexpr const char* kNames[] = {"INFO", "WARN", "ERROR"};
  std::string line = absl::StrCat(
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()), " ",
      kNames[static_cast<int>(severity)], " ",
      absl::string_view(message.data(), message.size()), "\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace vision_gateway
