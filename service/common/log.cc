#include "service/common/log.h"

#include <atomic>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace vision_gateway {
namespace {

std::atomic<int> min_severity{static_cast<int>(LogSeverity::kInfo)};
std::atomic<int> log_format{static_cast<int>(LogFormat::kText)};
std::atomic<void (*)(std::string_view)> log_sink{nullptr};
absl::Mutex sink_mu;

constexpr const char* kNames[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void AppendJsonString(std::string& out, std::string_view text) {
  out.push_back('"');
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          absl::StrAppend(&out, "\\u00", absl::Hex(u, absl::kZeroPad2));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

bool NeedsQuotes(std::string_view value) {
  if (value.empty()) return true;
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '"' || c == '=' || c == '\\') return true;
  }
  return false;
}

void AppendTextValue(std::string& out, std::string_view value) {
  if (!NeedsQuotes(value)) {
    out.append(value);
    return;
  }
  out.push_back('"');
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u == 0x7f) {
      absl::StrAppend(&out, "\\x", absl::Hex(u, absl::kZeroPad2));
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

// "2026-01-02T03:04:05.678Z" for `now`. Formatting the date and time costs more than the rest of
// an access-log line: each thread keeps the text of the last second it formatted.
void AppendTimestamp(std::string& out, absl::Time now) {
  struct Cache {
    int64_t second = INT64_MIN;
    std::string text;  // "2026-01-02T03:04:05"
  };
  thread_local Cache cache;
  const int64_t millis = absl::ToUnixMillis(now);
  const int64_t second = millis >= 0 ? millis / 1000 : (millis - 999) / 1000;
  if (second != cache.second) {
    cache.second = second;
    cache.text = absl::FormatTime("%Y-%m-%dT%H:%M:%S", absl::FromUnixSeconds(second),
                                  absl::UTCTimeZone());
  }
  absl::StrAppend(&out, cache.text, ".", absl::Dec(millis - second * 1000, absl::kZeroPad3), "Z");
}

}  // namespace

std::string LogTimestamp(absl::Time time) {
  std::string out;
  AppendTimestamp(out, time);
  return out;
}

std::optional<LogSeverity> ParseLogSeverity(std::string_view name) {
  const std::string lower = absl::AsciiStrToLower(absl::string_view(name.data(), name.size()));
  if (lower == "debug") return LogSeverity::kDebug;
  if (lower == "info") return LogSeverity::kInfo;
  if (lower == "warning" || lower == "warn") return LogSeverity::kWarning;
  if (lower == "error") return LogSeverity::kError;
  return std::nullopt;
}

std::optional<LogFormat> ParseLogFormat(std::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return std::nullopt;
}

void SetMinLogSeverity(LogSeverity severity) { min_severity = static_cast<int>(severity); }
bool LogEnabled(LogSeverity severity) {
  return static_cast<int>(severity) >= min_severity.load(std::memory_order_relaxed);
}
void SetLogFormat(LogFormat format) { log_format = static_cast<int>(format); }
void SetLogSinkForTest(void (*sink)(std::string_view line)) { log_sink = sink; }

std::string FormatLogLine(LogFormat format, LogSeverity severity, std::string_view message,
                          const std::vector<LogField>& fields) {
  const absl::Time now = absl::Now();
  const char* name = kNames[static_cast<int>(severity)];
  std::string line;
  line.reserve(128 + 32 * fields.size());
  if (format == LogFormat::kJson) {
    line.append("{\"time\":\"");
    AppendTimestamp(line, now);
    absl::StrAppend(&line, "\",\"severity\":\"", name, "\",\"message\":");
    AppendJsonString(line, message);
    for (const LogField& field : fields) {
      line.push_back(',');
      AppendJsonString(line, field.key);
      line.push_back(':');
      if (field.number) {
        line.append(field.value);
      } else {
        AppendJsonString(line, field.value);
      }
    }
    line.push_back('}');
  } else {
    AppendTimestamp(line, now);
    absl::StrAppend(&line, " ", name, " ");
    line.append(message);
    for (const LogField& field : fields) {
      line.push_back(' ');
      line.append(field.key);
      line.push_back('=');
      AppendTextValue(line, field.value);
    }
  }
  return line;
}

void LogLine(LogSeverity severity, std::string_view message, const std::vector<LogField>& fields) {
  if (!LogEnabled(severity)) return;
  std::string line = FormatLogLine(static_cast<LogFormat>(log_format.load()), severity, message,
                                   fields);
  if (auto* sink = log_sink.load()) {
    absl::MutexLock lock(&sink_mu);
    sink(line);
    return;
  }
  line.push_back('\n');
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void LogLine(LogSeverity severity, std::string_view message) { LogLine(severity, message, {}); }

}  // namespace vision_gateway
