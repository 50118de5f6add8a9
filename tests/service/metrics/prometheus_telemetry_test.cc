// The Prometheus exporter: names, labels and values of the exposition, label bounds, and the
// HTTP endpoint.
#include "service/metrics/prometheus_telemetry.h"

#include <string>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/http/http_client.h"

namespace vision_gateway::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using telemetry::RpcType;

constexpr char kCaption[] = "/vision.v1.VisionService/Caption";

TEST(PrometheusTelemetryTest, GrpcServerMetricsUseGoGrpcPrometheusNamesAndLabels) {
  PrometheusTelemetry metrics({.known_models = {"gemini-2.5-flash"}});
  telemetry::RpcMetrics& rpc = metrics.Rpc(kCaption, RpcType::kServerStream);
  rpc.Started();
  rpc.MessageReceived();
  rpc.MessageSent();
  rpc.MessageSent();
  rpc.Handled(absl::StatusCode::kOk, absl::Milliseconds(30));
  metrics.Rpc(kCaption, RpcType::kServerStream).Started();
  metrics.Rpc(kCaption, RpcType::kServerStream)
      .Handled(absl::StatusCode::kInvalidArgument, absl::Milliseconds(1));
  const std::string text = metrics.Scrape();
  const std::string labels =
      "grpc_method=\"Caption\",grpc_service=\"vision.v1.VisionService\",grpc_type=\"server_stream\"";
  EXPECT_THAT(text, HasSubstr("grpc_server_started_total{" + labels + "} 2"));
  EXPECT_THAT(text, HasSubstr("grpc_server_msg_received_total{" + labels + "} 1"));
  EXPECT_THAT(text, HasSubstr("grpc_server_msg_sent_total{" + labels + "} 2"));
  EXPECT_THAT(text, HasSubstr("grpc_server_handled_total{grpc_code=\"OK\"," + labels + "} 1"));
  EXPECT_THAT(text,
              HasSubstr("grpc_server_handled_total{grpc_code=\"InvalidArgument\"," + labels + "} 1"));
  // Every code is present from the start (so rate() sees the first failure).
  EXPECT_THAT(text,
              HasSubstr("grpc_server_handled_total{grpc_code=\"ResourceExhausted\"," + labels + "} 0"));
  EXPECT_THAT(text, HasSubstr("grpc_server_handling_seconds_count{" + labels + "} 2"));
  EXPECT_THAT(text, HasSubstr("grpc_server_handling_seconds_bucket{" + labels + ",le=\"0.005\"} 1"));
  EXPECT_THAT(text, HasSubstr("grpc_server_handling_seconds_bucket{" + labels + ",le=\"0.05\"} 2"));
}

TEST(PrometheusTelemetryTest, MethodLabelsAreBounded) {
  PrometheusTelemetry metrics({.known_models = {}, .max_methods = 2});
  metrics.Rpc("/a.S/One", RpcType::kUnary).Started();
  metrics.Rpc("/a.S/Two", RpcType::kUnary).Started();
  metrics.Rpc("/a.S/Three", RpcType::kUnary).Started();
  metrics.Rpc("not a method", RpcType::kUnary).Started();
  const std::string text = metrics.Scrape();
  EXPECT_THAT(text, HasSubstr("grpc_method=\"One\""));
  EXPECT_THAT(text, HasSubstr("grpc_method=\"Two\""));
  EXPECT_THAT(text, Not(HasSubstr("Three")));
  EXPECT_THAT(text, Not(HasSubstr("not a method")));
  EXPECT_THAT(text, HasSubstr(
      "grpc_server_started_total{grpc_method=\"unknown\",grpc_service=\"unknown\",grpc_type=\"unary\"} 2"));
}

TEST(PrometheusTelemetryTest, UpstreamTokensAndModelFolding) {
  PrometheusTelemetry metrics({.known_models = {"gemini-2.5-flash"}});
  metrics.UpstreamAttemptDone({.operation = "streamGenerateContent",
                               .model = "gemini-2.5-flash",
                               .code = absl::StatusCode::kOk,
                               .latency = absl::Milliseconds(200),
                               .time_to_first_byte = absl::Milliseconds(20)});
  metrics.UpstreamAttemptDone({.operation = "streamGenerateContent",
                               .model = "models/my-secret-tuned-model",
                               .code = absl::StatusCode::kResourceExhausted,
                               .latency = absl::Milliseconds(3)});
  metrics.Tokens("gemini-2.5-flash", telemetry::TokenKind::kPrompt, 300);
  metrics.Tokens("gemini-2.5-flash", telemetry::TokenKind::kOutput, 7);
  metrics.Tokens("someone-elses-model", telemetry::TokenKind::kThinking, 5);
  metrics.UpstreamRetry("streamGenerateContent", absl::Milliseconds(500));
  metrics.UploadBytes(1234);
  metrics.CallsInFlight(3);
  metrics.CallsInFlight(-1);
  const std::string text = metrics.Scrape();
  EXPECT_THAT(text, HasSubstr("vision_gateway_upstream_requests_total{model=\"gemini-2.5-flash\","
                              "operation=\"streamGenerateContent\",outcome=\"OK\"} 1"));
  EXPECT_THAT(text, HasSubstr("vision_gateway_upstream_requests_total{model=\"other\","
                              "operation=\"streamGenerateContent\",outcome=\"ResourceExhausted\"} 1"));
  EXPECT_THAT(text, Not(HasSubstr("my-secret-tuned-model")));
  EXPECT_THAT(text, Not(HasSubstr("someone-elses-model")));
  EXPECT_THAT(text, HasSubstr("vision_gateway_upstream_request_seconds_count{model=\"gemini-2.5-flash\","
                              "operation=\"streamGenerateContent\"} 1"));
  // The failed attempt had no first byte: only one observation.
  EXPECT_THAT(text, HasSubstr("vision_gateway_upstream_first_byte_seconds_count{model=\"gemini-2.5-flash\","
                              "operation=\"streamGenerateContent\"} 1"));
  EXPECT_THAT(text, HasSubstr("vision_gateway_upstream_first_byte_seconds_count{model=\"other\","
                              "operation=\"streamGenerateContent\"} 0"));
  EXPECT_THAT(text, HasSubstr("vision_gateway_tokens_total{kind=\"prompt\",model=\"gemini-2.5-flash\"} 300"));
  EXPECT_THAT(text, HasSubstr("vision_gateway_tokens_total{kind=\"output\",model=\"gemini-2.5-flash\"} 7"));
  EXPECT_THAT(text, HasSubstr("vision_gateway_tokens_total{kind=\"thinking\",model=\"other\"} 5"));
  EXPECT_THAT(text, HasSubstr("vision_gateway_upstream_retries_total{operation=\"streamGenerateContent\"} 1"));
  EXPECT_THAT(text, HasSubstr("vision_gateway_upstream_retry_backoff_seconds_total{operation=\"streamGenerateContent\"} 0.5"));
  EXPECT_THAT(text, HasSubstr("vision_gateway_upload_bytes_total 1234"));
  EXPECT_THAT(text, HasSubstr("vision_gateway_calls_in_flight 2"));
}

TEST(PrometheusTelemetryTest, GatewayMetricsPerMethod) {
  PrometheusTelemetry metrics({});
  telemetry::RpcMetrics& rpc = metrics.Rpc("/vision.v1.VisionService/Detect", RpcType::kServerStream);
  rpc.GatewayOverhead(absl::Microseconds(300));
  rpc.ObjectsEmitted(4);
  rpc.ItemsDropped(telemetry::DropReason::kEmptyBox, 2);
  rpc.ErrorReason("UPSTREAM_AUTH_FAILED");
  rpc.ErrorReason("lower case is not a reason");
  const std::string text = metrics.Scrape();
  EXPECT_THAT(text, HasSubstr("vision_gateway_overhead_seconds_bucket{grpc_method=\"Detect\",le=\"0.00025\"} 0"));
  EXPECT_THAT(text, HasSubstr("vision_gateway_overhead_seconds_bucket{grpc_method=\"Detect\",le=\"0.0005\"} 1"));
  EXPECT_THAT(text, HasSubstr("vision_gateway_objects_emitted_total{grpc_method=\"Detect\"} 4"));
  EXPECT_THAT(text, HasSubstr("vision_gateway_items_dropped_total{grpc_method=\"Detect\",reason=\"empty_box\"} 2"));
  EXPECT_THAT(text, HasSubstr("vision_gateway_items_dropped_total{grpc_method=\"Detect\",reason=\"malformed\"} 0"));
  EXPECT_THAT(text, HasSubstr("vision_gateway_errors_total{grpc_method=\"Detect\",reason=\"UPSTREAM_AUTH_FAILED\"} 1"));
  EXPECT_THAT(text, HasSubstr("vision_gateway_errors_total{grpc_method=\"Detect\",reason=\"OTHER\"} 1"));
}

TEST(PrometheusTelemetryTest, PerCallerCallsAndTokens) {
  PrometheusTelemetry metrics({});
  telemetry::RpcMetrics& rpc = metrics.Rpc(kCaption, RpcType::kServerStream);
  rpc.CallerDone("alice", absl::StatusCode::kOk, {100, 7, 0});
  rpc.CallerDone("alice", absl::StatusCode::kOk, {50, 3, 1});
  rpc.CallerDone("bob", absl::StatusCode::kResourceExhausted, {0, 0, 0});
  const std::string text = metrics.Scrape();
  EXPECT_THAT(text, HasSubstr("vision_gateway_caller_calls_total{caller=\"alice\",grpc_code=\"OK\","
                              "grpc_method=\"Caption\"} 2"));
  EXPECT_THAT(text, HasSubstr("vision_gateway_caller_calls_total{caller=\"bob\","
                              "grpc_code=\"ResourceExhausted\",grpc_method=\"Caption\"} 1"));
  EXPECT_THAT(text, HasSubstr("vision_gateway_caller_tokens_total{caller=\"alice\",kind=\"prompt\"} 150"));
  EXPECT_THAT(text, HasSubstr("vision_gateway_caller_tokens_total{caller=\"alice\",kind=\"thinking\"} 1"));
}

TEST(PrometheusTelemetryTest, CallersBeyondTheBoundAreFolded) {
  PrometheusTelemetry metrics({});
  telemetry::RpcMetrics& rpc = metrics.Rpc(kCaption, RpcType::kServerStream);
  for (int i = 0; i < 300; ++i) {
    rpc.CallerDone("caller" + std::to_string(i), absl::StatusCode::kOk, {1, 0, 0});
  }
  const std::string text = metrics.Scrape();
  EXPECT_THAT(text, HasSubstr("caller=\"caller255\""));
  EXPECT_THAT(text, Not(HasSubstr("caller=\"caller256\"")));
  EXPECT_THAT(text, HasSubstr("vision_gateway_caller_tokens_total{caller=\"other\",kind=\"prompt\"} 44"));
}

TEST(PrometheusTelemetryTest, ProbesAndProcessMetrics) {
  PrometheusTelemetry metrics({});
  metrics.SetProbe(telemetry::Telemetry::Probe::kQueuedCpuWork, [] { return 7.0; });
  std::string text = metrics.Scrape();
  EXPECT_THAT(text, HasSubstr("vision_gateway_cpu_work_queued 7"));
  EXPECT_THAT(text, HasSubstr("vision_gateway_concurrency_limit 0"));
  metrics.SetProbe(telemetry::Telemetry::Probe::kQueuedCpuWork, nullptr);
  metrics.SetProbe(telemetry::Telemetry::Probe::kConcurrencyLimit, [] { return 100.0; });
  text = metrics.Scrape();
  EXPECT_THAT(text, HasSubstr("vision_gateway_cpu_work_queued 0"));
  EXPECT_THAT(text, HasSubstr("vision_gateway_concurrency_limit 100"));
  for (const char* name : {"process_resident_memory_bytes", "process_virtual_memory_bytes",
                           "process_cpu_seconds_total", "process_open_fds", "process_max_fds",
                           "process_threads", "process_start_time_seconds"}) {
    EXPECT_THAT(text, HasSubstr(std::string("\n") + name + " ")) << name;
  }
  EXPECT_THAT(text, Not(HasSubstr("\nprocess_threads 0\n")));
  EXPECT_THAT(text, Not(HasSubstr("\nprocess_resident_memory_bytes 0\n")));
}

TEST(PrometheusTelemetryTest, ServesMetricsOverHttp) {
  PrometheusTelemetry metrics({});
  ASSERT_TRUE(metrics.StartHttp("127.0.0.1:0").ok());
  ASSERT_GT(metrics.port(), 0);
  EXPECT_FALSE(metrics.StartHttp("127.0.0.1:0").ok());
  metrics.Rpc(kCaption, RpcType::kServerStream).Started();

  auto http = http::MakeHttpClient({});
  ASSERT_TRUE(http.ok()) << http.status();
  absl::Notification done;
  absl::StatusOr<http::Response> response;
  http::Request request;
  request.url = "http://127.0.0.1:" + std::to_string(metrics.port()) + "/metrics";
  request.deadline = absl::Now() + absl::Seconds(10);
  auto call = (*http)->Fetch(request, [&](absl::StatusOr<http::Response> r) {
    response = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->head.status, 200);
  EXPECT_THAT(std::string(http::FindHeader(response->head.headers, "content-type")),
              HasSubstr("text/plain"));
  EXPECT_THAT(response->body, HasSubstr("grpc_server_started_total{grpc_method=\"Caption\""));
  EXPECT_THAT(response->body, HasSubstr("process_resident_memory_bytes"));
}

TEST(PrometheusTelemetryTest, PortInUseIsAnError) {
  PrometheusTelemetry first({});
  ASSERT_TRUE(first.StartHttp("127.0.0.1:0").ok());
  PrometheusTelemetry second({});
  const absl::Status status = second.StartHttp("127.0.0.1:" + std::to_string(first.port()));
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace vision_gateway::metrics
