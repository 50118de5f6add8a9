// The access log: one line per gRPC call, in the process's log format (text or JSON). At INFO,
// except health checks (grpc.health.v1.Health/Check and Watch: every Kubernetes probe, every few
// seconds per pod), which are written at DEBUG only (--log_level=debug); their metrics are kept.
// Fields: method, peer, caller (when authenticated), code, reason (ErrorInfo reason of a failure), duration_ms, upstream_ms,
// attempts, prompt_tokens, output_tokens, thinking_tokens, objects, dropped, request_id,
// traceparent (when the caller sent one). Never the prompt, image bytes, file names or the key.
#ifndef VISION_GATEWAY_SERVICE_TELEMETRY_ACCESS_LOG_H_
#define VISION_GATEWAY_SERVICE_TELEMETRY_ACCESS_LOG_H_

#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "service/common/log.h"
#include "service/telemetry/call_record.h"

namespace vision_gateway::telemetry {

inline constexpr char kAccessLogMessage[] = "access";

struct AccessEntry {
  std::string_view method;  // "/vision.v1.VisionService/Caption"
  std::string_view peer;    // as gRPC spells it: "ipv4:127.0.0.1:5555"
  absl::StatusCode code = absl::StatusCode::kOk;
  std::string_view reason;  // ErrorInfo reason of a failed call, or empty
  absl::Duration duration;
  CallRecord::Snapshot stats;
  std::string_view request_id;
  std::string_view traceparent;
  std::string_view caller;  // authenticated caller, or empty
};

std::vector<LogField> AccessLogFields(const AccessEntry& entry);

// Whether `method` is a grpc.health.v1 health check ("/grpc.health.v1.Health/Check", "Watch").
bool IsHealthCheck(std::string_view method);

// The severity of the access-log line of a call to `method`: kDebug for grpc.health.v1 health
// checks, kInfo otherwise.
LogSeverity AccessLogSeverity(std::string_view method);
// Whether the line of a call to `method` would be written (skip gathering its fields if not).
bool AccessLogEnabled(std::string_view method);

// A duration as milliseconds with three decimals ("12.345"; microseconds truncated; negative
// durations as "0.000"), as the log and the server-timing trailer show it.
std::string FormatMillis(absl::Duration d);

// Writes the line (if its severity is enabled).
void LogAccess(const AccessEntry& entry);

}  // namespace vision_gateway::telemetry

#endif  // VISION_GATEWAY_SERVICE_TELEMETRY_ACCESS_LOG_H_
