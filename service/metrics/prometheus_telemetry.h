// The Prometheus exporter of the telemetry interface: the only folder that includes prometheus-cpp
// (Debian's prometheus-cpp-dev; the pull endpoint is its civetweb-based Exposer). This header
// shows no prometheus-cpp type.
//
// Metrics (all label values bounded):
//   grpc_server_started_total, grpc_server_handled_total, grpc_server_handling_seconds,
//   grpc_server_msg_received_total, grpc_server_msg_sent_total — as go-grpc-prometheus names and
//   labels them (grpc_type, grpc_service, grpc_method, grpc_code);
//   vision_gateway_upstream_requests_total{operation,model,outcome}
//   vision_gateway_upstream_request_seconds{operation,model}          (histogram)
//   vision_gateway_upstream_first_byte_seconds{operation,model}       (histogram)
//   vision_gateway_upstream_retries_total{operation}
//   vision_gateway_upstream_retry_backoff_seconds_total{operation}
//   vision_gateway_tokens_total{model,kind}                           kind: prompt|output|thinking
//   vision_gateway_calls_in_flight, vision_gateway_concurrency_limit, vision_gateway_cpu_work_queued
//   vision_gateway_objects_emitted_total{grpc_method}
//   vision_gateway_items_dropped_total{grpc_method,reason}
//   vision_gateway_errors_total{grpc_method,reason}                   ErrorInfo reasons
//   vision_gateway_caller_calls_total{caller,grpc_method,grpc_code}   authenticated callers only
//   vision_gateway_caller_tokens_total{caller,kind}                    (at most 256 callers)
//   vision_gateway_upload_bytes_total
//   vision_gateway_overhead_seconds{grpc_method}                      (histogram)
//   process_resident_memory_bytes, process_virtual_memory_bytes, process_cpu_seconds_total,
//   process_open_fds, process_max_fds, process_threads, process_start_time_seconds
#ifndef VISION_GATEWAY_SERVICE_METRICS_PROMETHEUS_TELEMETRY_H_
#define VISION_GATEWAY_SERVICE_METRICS_PROMETHEUS_TELEMETRY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "service/telemetry/telemetry.h"

namespace vision_gateway::metrics {

// The `model` label value of models not in PrometheusOptions::known_models.
inline constexpr char kOtherModel[] = "other";

struct PrometheusOptions {
  // Models that get their own `model` label value; every other model is counted as "other".
  std::vector<std::string> known_models;
  // Most distinct gRPC methods (and error reasons) tracked; later ones are folded into "unknown".
  int max_methods = 64;
};

class PrometheusTelemetry final : public telemetry::Telemetry {
 public:
  explicit PrometheusTelemetry(PrometheusOptions options);
  ~PrometheusTelemetry() override;

  // Serves GET /metrics on `listen_address` ("host:port"; port 0 picks a free one). At most once.
  absl::Status StartHttp(const std::string& listen_address);
  // The port StartHttp listens on (0 before).
  int port() const;

  // The Prometheus text exposition of every metric, as /metrics serves it.
  std::string Scrape() const;

  // telemetry::Telemetry
  telemetry::RpcMetrics& Rpc(std::string_view full_method, telemetry::RpcType type) override;
  void CallsInFlight(int delta) override;
  void UpstreamAttemptDone(const telemetry::UpstreamAttempt& attempt) override;
  void UpstreamRetry(std::string_view operation, absl::Duration backoff) override;
  void Tokens(std::string_view model, telemetry::TokenKind kind, int64_t count) override;
  void ModelRerouted(std::string_view requested, std::string_view served) override;
  void UploadBytes(int64_t bytes) override;
  void Batch(std::string_view task, std::string_view model, telemetry::BatchEvent event,
             int64_t count) override;
  void ResultCache(std::string_view task, telemetry::CacheEvent event) override;
  void SetProbe(Probe probe, std::function<double()> read) override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vision_gateway::metrics

#endif  // VISION_GATEWAY_SERVICE_METRICS_PROMETHEUS_TELEMETRY_H_
