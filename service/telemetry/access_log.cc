#include "service/telemetry/access_log.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"

namespace vision_gateway::telemetry {

std::string FormatMillis(absl::Duration d) {
  const int64_t micros = std::max<int64_t>(0, absl::ToInt64Microseconds(d));
  return absl::StrCat(micros / 1000, ".", absl::Dec(micros % 1000, absl::kZeroPad3));
}

std::vector<LogField> AccessLogFields(const AccessEntry& e) {
  std::vector<LogField> fields;
  fields.reserve(15);
  fields.push_back({"method", std::string(e.method)});
  fields.push_back({"peer", std::string(e.peer)});
  if (!e.caller.empty()) fields.push_back({"caller", std::string(e.caller)});
  fields.push_back({"code", std::string(GrpcCodeName(e.code))});
  if (!e.reason.empty()) fields.push_back({"reason", std::string(e.reason)});
  fields.push_back({"duration_ms", FormatMillis(e.duration), true});
  fields.push_back({"upstream_ms", FormatMillis(e.stats.upstream), true});
  fields.push_back({"attempts", absl::StrCat(e.stats.attempts), true});
  fields.push_back(
      {"prompt_tokens", absl::StrCat(e.stats.tokens[static_cast<int>(TokenKind::kPrompt)]), true});
  fields.push_back(
      {"output_tokens", absl::StrCat(e.stats.tokens[static_cast<int>(TokenKind::kOutput)]), true});
  fields.push_back({"thinking_tokens",
                    absl::StrCat(e.stats.tokens[static_cast<int>(TokenKind::kThinking)]), true});
  fields.push_back({"objects", absl::StrCat(e.stats.objects), true});
  fields.push_back({"dropped", absl::StrCat(e.stats.TotalDropped()), true});
  if (e.stats.upload_bytes > 0) {
    fields.push_back({"upload_bytes", absl::StrCat(e.stats.upload_bytes), true});
  }
  if (e.stats.cache.has_value()) {
    fields.push_back({"cache", std::string(CacheEventName(*e.stats.cache))});
  }
  fields.push_back({"request_id", std::string(e.request_id)});
  if (!e.traceparent.empty()) fields.push_back({"traceparent", std::string(e.traceparent)});
  return fields;
}

bool IsHealthCheck(std::string_view method) {
  constexpr std::string_view kHealthService = "/grpc.health.v1.Health/";
  return method.substr(0, kHealthService.size()) == kHealthService;
}

LogSeverity AccessLogSeverity(std::string_view method) {
  return IsHealthCheck(method) ? LogSeverity::kDebug : LogSeverity::kInfo;
}

bool AccessLogEnabled(std::string_view method) {
  return LogEnabled(AccessLogSeverity(method));
}

void LogAccess(const AccessEntry& entry) {
  const LogSeverity severity = AccessLogSeverity(entry.method);
  if (!LogEnabled(severity)) return;
  LogLine(severity, kAccessLogMessage, AccessLogFields(entry));
}

}  // namespace vision_gateway::telemetry
