// Observability through the whole stack: request ids, trace context, the server-timing trailer,
// the access log, the metrics, and that no log line ever carries the upstream key.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "emulator/gemini_wire.h"
#include "gmock/gmock.h"
#include "service/common/log.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/log_capture.h"
#include "tests/testing/test_images.h"

namespace vision_gateway::testing {
namespace {

namespace v1 = ::vision::v1;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

constexpr char kTraceparent[] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

constexpr char kCaptionMethod[] = "/vision.v1.VisionService/Caption";
constexpr char kDetectMethod[] = "/vision.v1.VisionService/Detect";

std::string RedSquarePng() {
  return MakePng(320, 240, {255, 255, 255}, {220, 20, 20}, 40, 30, 140, 110);
}

struct CallResult {
  grpc::Status status;
  int messages = 0;
  std::string text;
  std::multimap<std::string, std::string> initial;
  std::multimap<std::string, std::string> trailers;
  absl::Duration elapsed;
};

std::multimap<std::string, std::string> Copy(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  std::multimap<std::string, std::string> out;
  for (const auto& [k, v] : metadata) {
    out.emplace(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
  }
  return out;
}

std::string One(const std::multimap<std::string, std::string>& metadata, const std::string& key) {
  auto it = metadata.find(key);
  return it == metadata.end() ? "" : it->second;
}

// Reads both numbers of "gateway;dur=1.234, upstream;dur=5.678" (ms).
bool ParseServerTiming(const std::string& value, double* gateway, double* upstream) {
  std::vector<std::string> parts = absl::StrSplit(value, ", ");
  if (parts.size() != 2) return false;
  return absl::StartsWith(parts[0], "gateway;dur=") && absl::StartsWith(parts[1], "upstream;dur=") &&
         absl::SimpleAtod(parts[0].substr(12), gateway) &&
         absl::SimpleAtod(parts[1].substr(13), upstream);
}

class TelemetryTest : public GatewayTest {
 protected:
  CallResult Caption(const v1::CaptionRequest& request,
                     const std::vector<std::pair<std::string, std::string>>& metadata = {}) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    for (const auto& [k, v] : metadata) context.AddMetadata(k, v);
    CallResult result;
    const absl::Time start = absl::Now();
    auto reader = stub_->Caption(&context, request);
    v1::CaptionResponse response;
    while (reader->Read(&response)) {
      ++result.messages;
      result.text += response.text();
    }
    result.status = reader->Finish();
    result.elapsed = absl::Now() - start;
    result.initial = Copy(context.GetServerInitialMetadata());
    result.trailers = Copy(context.GetServerTrailingMetadata());
    return result;
  }

  CallResult Detect(const v1::DetectRequest& request) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    CallResult result;
    auto reader = stub_->Detect(&context, request);
    v1::DetectResponse response;
    while (reader->Read(&response)) ++result.messages;
    result.status = reader->Finish();
    result.trailers = Copy(context.GetServerTrailingMetadata());
    return result;
  }

  v1::CaptionRequest CaptionOf(const std::string& png) {
    v1::CaptionRequest request;
    request.add_images()->set_content(png);
    return request;
  }

  v1::DetectRequest DetectOf(const std::string& png) {
    v1::DetectRequest request;
    request.mutable_image()->set_content(png);
    return request;
  }

  // The value of one series in the exposition ("name{labels}"), or -1.
  double Metric(const std::string& series) {
    const std::string text = metrics_->Scrape();
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      if (absl::StartsWith(line, series + " ")) {
        double value = -1;
        if (absl::SimpleAtod(line.substr(series.size() + 1), &value)) return value;
      }
    }
    return -1;
  }
};

TEST_F(TelemetryTest, CallerRequestIdIsReturnedAndLogged) {
  LogCapture logs;
  CallResult result = Caption(CaptionOf(RedSquarePng()), {{"x-request-id", "frontend-7f3a/42"}});
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(One(result.initial, "x-request-id"), "frontend-7f3a/42");
  const auto lines = logs.AccessLines(kCaptionMethod);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr(" request_id=frontend-7f3a/42"));
}

TEST_F(TelemetryTest, MissingOrUnusableRequestIdIsGenerated) {
  LogCapture logs;
  CallResult plain = Caption(CaptionOf(RedSquarePng()));
  ASSERT_TRUE(plain.status.ok());
  const std::string generated = One(plain.initial, "x-request-id");
  EXPECT_THAT(generated, MatchesRegex("[0-9a-f]{32}"));

  CallResult bad = Caption(CaptionOf(RedSquarePng()), {{"x-request-id", "two words"}});
  ASSERT_TRUE(bad.status.ok());
  const std::string replaced = One(bad.initial, "x-request-id");
  EXPECT_THAT(replaced, MatchesRegex("[0-9a-f]{32}"));
  EXPECT_NE(replaced, generated);

  const auto lines = logs.AccessLines(kCaptionMethod);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], HasSubstr(" request_id=" + generated));
  EXPECT_THAT(lines[1], HasSubstr(" request_id=" + replaced));
  EXPECT_THAT(lines[1], Not(HasSubstr("two words")));
}

TEST_F(TelemetryTest, ErrorsAlsoCarryTheRequestId) {
  CallResult result = Caption(v1::CaptionRequest(), {{"x-request-id", "bad-call-1"}});
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // With no message sent, the initial metadata travels with the status.
  EXPECT_EQ(One(result.initial, "x-request-id"), "bad-call-1");
}

TEST_F(TelemetryTest, TraceparentIsForwardedUpstreamAndLogged) {
  LogCapture logs;
  CallResult result = Caption(CaptionOf(RedSquarePng()), {{"traceparent", kTraceparent}});
  ASSERT_TRUE(result.status.ok());
  CallResult invalid = Caption(CaptionOf(RedSquarePng()), {{"traceparent", "00-zz-yy-01"}});
  ASSERT_TRUE(invalid.status.ok());
  const auto requests = emulator_->Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].Header("traceparent"), kTraceparent);
  EXPECT_EQ(requests[1].Header("traceparent"), "");
  const auto lines = logs.AccessLines(kCaptionMethod);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], HasSubstr(std::string(" traceparent=") + kTraceparent));
  EXPECT_THAT(lines[1], Not(HasSubstr("traceparent=")));
}

TEST_F(TelemetryTest, ServerTimingTrailerSplitsGatewayAndUpstreamTime) {
  // Gemini takes at least 150 ms to answer: that is upstream time, not gateway time.
  emulator::ScriptedResponse slow = emulator::ScriptedStream({"A red ", "square."});
  slow.delay_before_headers = std::chrono::milliseconds(150);
  emulator_->Enqueue(slow);
  CallResult result = Caption(CaptionOf(RedSquarePng()));
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  double gateway = -1;
  double upstream = -1;
  const std::string timing = One(result.trailers, "server-timing");
  ASSERT_TRUE(ParseServerTiming(timing, &gateway, &upstream)) << timing;
  const double elapsed_ms = absl::ToDoubleMilliseconds(result.elapsed);
  EXPECT_GE(upstream, 150.0) << timing;
  EXPECT_GE(gateway, 0.0) << timing;
  EXPECT_LE(gateway + upstream, elapsed_ms) << timing;
  // Preparing a small PNG and relaying two events takes far less than the upstream wait.
  EXPECT_LT(gateway, upstream) << timing;

  // A call refused before any upstream request: all of it is gateway time.
  CallResult refused = Caption(v1::CaptionRequest());
  ASSERT_EQ(refused.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(ParseServerTiming(One(refused.trailers, "server-timing"), &gateway, &upstream));
  EXPECT_EQ(upstream, 0.0);
  EXPECT_GT(gateway, 0.0);
  EXPECT_LE(gateway, absl::ToDoubleMilliseconds(refused.elapsed));
}

TEST_F(TelemetryTest, AccessLogLineOfADetectCall) {
  LogCapture logs;
  CallResult result = Detect(DetectOf(RedSquarePng()));
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  const auto lines = logs.AccessLines(kDetectMethod);
  ASSERT_EQ(lines.size(), 1u);
  const std::string& line = lines[0];
  EXPECT_THAT(line, MatchesRegex("[0-9-]+T[0-9:.]+Z INFO access .*"));
  EXPECT_THAT(line, HasSubstr(" peer=ipv4:127.0.0.1:"));
  EXPECT_THAT(line, HasSubstr(" code=OK "));
  EXPECT_THAT(line, MatchesRegex(".* duration_ms=[0-9]+\\.[0-9]{3} upstream_ms=[0-9]+\\.[0-9]{3} "
                                 "attempts=1 prompt_tokens=[1-9][0-9]* output_tokens=[1-9][0-9]* "
                                 "thinking_tokens=0 objects=1 dropped=0 request_id=[0-9a-f]{32}"));
}

TEST_F(TelemetryTest, JsonAccessLogOfAFailedCall) {
  LogCapture logs;
  SetLogFormat(LogFormat::kJson);
  emulator_->Enqueue(emulator::ScriptedError(429, "Quota exceeded.",
                                             emulator::RetryInfoDetails("2s")));
  CallResult result = Caption(CaptionOf(RedSquarePng()), {{"x-request-id", "q-1"}});
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  const auto lines = logs.AccessLines(kCaptionMethod);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr("\"code\":\"ResourceExhausted\""));
  EXPECT_THAT(lines[0], HasSubstr("\"attempts\":1,"));
  EXPECT_THAT(lines[0], HasSubstr("\"request_id\":\"q-1\""));
  EXPECT_THAT(lines[0], Not(HasSubstr("Quota exceeded")));
}

TEST_F(TelemetryTest, MetricsCountCallsUpstreamRequestsAndTokens) {
  const std::string labels =
      "grpc_method=\"Caption\",grpc_service=\"vision.v1.VisionService\",grpc_type=\"server_stream\"";
  emulator_->Enqueue(emulator::ScriptedStream({"one ", "two ", "three"}, "STOP", 300));
  emulator_->Enqueue(emulator::ScriptedStream({"four ", "five"}, "STOP", 200));
  ASSERT_TRUE(Caption(CaptionOf(RedSquarePng())).status.ok());
  ASSERT_TRUE(Caption(CaptionOf(RedSquarePng())).status.ok());
  ASSERT_EQ(Caption(v1::CaptionRequest()).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  EXPECT_EQ(Metric("grpc_server_started_total{" + labels + "}"), 3);
  EXPECT_EQ(Metric("grpc_server_msg_received_total{" + labels + "}"), 3);
  EXPECT_EQ(Metric("grpc_server_handled_total{grpc_code=\"OK\"," + labels + "}"), 2);
  EXPECT_EQ(Metric("grpc_server_handled_total{grpc_code=\"InvalidArgument\"," + labels + "}"), 1);
  EXPECT_EQ(Metric("grpc_server_handling_seconds_count{" + labels + "}"), 3);
  EXPECT_GE(Metric("grpc_server_msg_sent_total{" + labels + "}"), 2);
  EXPECT_EQ(Metric("vision_gateway_upstream_requests_total{model=\"gemini-3-flash-preview\","
                   "operation=\"streamGenerateContent\",outcome=\"OK\"}"),
            2);
  EXPECT_EQ(Metric("vision_gateway_upstream_first_byte_seconds_count{model=\"gemini-3-flash-preview\","
                   "operation=\"streamGenerateContent\"}"),
            2);
  EXPECT_EQ(Metric("vision_gateway_tokens_total{kind=\"prompt\",model=\"gemini-3-flash-preview\"}"), 500);
  EXPECT_EQ(Metric("vision_gateway_tokens_total{kind=\"output\",model=\"gemini-3-flash-preview\"}"), 5);
  EXPECT_EQ(Metric("vision_gateway_overhead_seconds_count{grpc_method=\"Caption\"}"), 3);
  EXPECT_EQ(Metric("vision_gateway_calls_in_flight"), 0);
}

TEST_F(TelemetryTest, UpstreamAuthFailureIsCountedByReason) {
  emulator_->Enqueue(emulator::ScriptedError(400, "API key not valid. Please pass a valid API key.",
                                             emulator::ApiKeyInvalidDetails()));
  CallResult result = Caption(CaptionOf(RedSquarePng()));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(Metric("vision_gateway_errors_total{grpc_method=\"Caption\","
                   "reason=\"UPSTREAM_AUTH_FAILED\"}"),
            1);
  EXPECT_EQ(Metric("vision_gateway_upstream_requests_total{model=\"gemini-3-flash-preview\","
                   "operation=\"streamGenerateContent\",outcome=\"InvalidArgument\"}"),
            1);
}

// Gemini (or anything between) echoing the key back must never put it in a log line, whatever
// the fault: every script-mode fault of the emulator (status and body, headers, delays before
// the headers and between events, error object mid-stream, dropped connection, truncated stream,
// malformed, fenced or oversized answers), each carrying the key; at the most verbose log level;
// no 6-character piece of the key in any line. (Upload faults: upload_integration_test.cc.)
TEST_F(TelemetryTest, NoLogLineCarriesTheKeyUnderAnyFault) {
  const std::string key = kEmulatorKey;
  const std::string echo = "bad request for key=" + key;
  std::vector<std::pair<std::string, emulator::ScriptedResponse>> faults;
  for (int code : {400, 401, 403, 404, 429, 500, 503, 504}) {
    faults.emplace_back(absl::StrCat("http ", code), emulator::ScriptedError(code, echo));
  }
  // Only the key's tail, as Google's messages name a key ("... key ending in k3z-emu").
  faults.emplace_back("key tail echoed",
                      emulator::ScriptedError(400, "API key ending in " + key.substr(key.size() - 7),
                                              emulator::ApiKeyInvalidDetails()));
  faults.emplace_back("api key invalid", emulator::ScriptedError(400, echo,
                                                                 emulator::ApiKeyInvalidDetails()));
  faults.emplace_back("429 retry info",
                      emulator::ScriptedError(429, echo, emulator::QuotaRetryDetails("1s", key)));
  {
    emulator::ScriptedResponse r;
    r.status = 500;
    r.headers = {{"content-type", "text/plain"}};
    r.body = "plain text error " + key;
    faults.emplace_back("plain text body", r);
  }
  {
    emulator::ScriptedResponse r;
    emulator::ResponseChunk chunk;
    chunk.text = "A ";
    chunk.prompt_tokens = 3;
    chunk.candidates_tokens = 1;
    r.stream_writes = {emulator::MakeSseEvent(emulator::MakeResponseJson(chunk, "m", "id", true)),
                       emulator::MakeErrorBody(503, "UNAVAILABLE", echo)};
    faults.emplace_back("mid-stream error object", r);
  }
  {
    emulator::ScriptedResponse r = emulator::ScriptedStream({"A ", "picture"});
    r.drop_connection_after_writes = true;
    faults.emplace_back("truncated stream", r);
  }
  {
    emulator::ScriptedResponse r;
    r.drop_connection_after_writes = true;
    faults.emplace_back("dropped connection", r);
  }
  {
    emulator::ScriptedResponse r;
    r.stream_writes = {"data: {\"candidates\": [" + key + "\r\n\r\n"};
    faults.emplace_back("malformed event", r);
  }
  faults.emplace_back("stream without finish", emulator::ScriptedStream({"A ", key}, ""));
  faults.emplace_back("fenced answer",
                      emulator::ScriptedStream({"```json\n[{\"label\": \"" + key + "\"}]\n```"}));
  faults.emplace_back("not json", emulator::ScriptedStream({"Sorry, " + key}));
  {
    emulator::ScriptedResponse r = emulator::ScriptedError(503, echo);
    r.headers.emplace_back("x-debug-key", key);
    r.headers.emplace_back("retry-after", key);
    faults.emplace_back("key in response headers", r);
  }
  {
    // A stall before the headers, then a failure.
    emulator::ScriptedResponse r = emulator::ScriptedError(500, echo);
    r.delay_before_headers = std::chrono::milliseconds(300);
    faults.emplace_back("delay before headers", r);
  }
  {
    emulator::ScriptedResponse r = emulator::ScriptedStream({"A ", key, " picture"});
    r.delay_between_writes = std::chrono::milliseconds(50);
    r.drop_connection_after_writes = true;
    faults.emplace_back("slow stream then reset", r);
  }
  {
    emulator::ScriptedResponse r;
    r.status = 200;
    for (int i = 0; r.body.size() < (size_t{9} << 20); ++i) r.body += "garbage " + key + " ";
    faults.emplace_back("9 MiB garbage body", r);
  }

  for (const LogFormat format : {LogFormat::kText, LogFormat::kJson}) {
    for (const auto& [name, fault] : faults) {
      for (const bool detect : {false, true}) {
        SCOPED_TRACE(absl::StrCat(name, detect ? " (Detect)" : " (Caption)",
                                  format == LogFormat::kJson ? " json" : " text"));
        LogCapture logs;
        SetLogFormat(format);
        SetMinLogSeverity(LogSeverity::kDebug);
        emulator_->Enqueue(fault);
        if (detect) {
          Detect(DetectOf(RedSquarePng()));
        } else {
          Caption(CaptionOf(RedSquarePng()));
        }
        const auto lines = logs.Lines();
        // The call was logged (the check below is not vacuous)...
        EXPECT_EQ(logs.AccessLines(detect ? kDetectMethod : kCaptionMethod).size(), 1u);
        // ...and no line holds the key or a piece of it.
        for (const std::string& line : lines) {
          EXPECT_EQ(SecretFragmentIn(line, key), "") << line;
        }
      }
    }
  }
  EXPECT_EQ(emulator_->PendingScripted(), 0u);
  EXPECT_EQ(SecretFragmentIn(metrics_->Scrape(), key), "");
}

// Kubernetes probes call grpc.health.v1 every few seconds per pod: their access-log lines are
// debug-level (--log_level=debug), but they are counted like every call, on the main port and
// on the plaintext health-only port (--health_port).
class HealthTelemetryTest : public TelemetryTest {
 protected:
  void ConfigureServer(server::ServerOptions& options) override {
    options.health_listen_address = "127.0.0.1:0";
  }
  void TearDown() override {
    SetMinLogSeverity(LogSeverity::kInfo);
    TelemetryTest::TearDown();
  }
};

TEST_F(HealthTelemetryTest, HealthChecksAreCountedButLoggedOnlyAtDebug) {
  constexpr char kCheck[] = "/grpc.health.v1.Health/Check";
  const std::string handled =
      "grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Check\","
      "grpc_service=\"grpc.health.v1.Health\",grpc_type=\"unary\"}";
  auto main_port = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                       grpc::InsecureChannelCredentials());
  ASSERT_NE(server_->health_port(), 0);
  auto health_port = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->health_port()),
                                         grpc::InsecureChannelCredentials());
  {
    LogCapture logs;
    ASSERT_EQ(HealthStatus(main_port, "vision.v1.VisionService"), 1);
    ASSERT_EQ(HealthStatus(health_port, "liveness"), 1);
    ASSERT_TRUE(Caption(CaptionOf(RedSquarePng())).status.ok());
    EXPECT_EQ(logs.AccessLines(kCheck).size(), 0u);
    for (const std::string& line : logs.Lines()) EXPECT_THAT(line, Not(HasSubstr(kCheck)));
    // Other calls are still logged at info.
    EXPECT_EQ(logs.AccessLines(kCaptionMethod).size(), 1u);
  }
  EXPECT_EQ(Metric(handled), 2);
  {
    LogCapture logs;
    SetMinLogSeverity(LogSeverity::kDebug);
    ASSERT_EQ(HealthStatus(main_port, ""), 1);
    ASSERT_EQ(HealthStatus(health_port, ""), 1);
    std::vector<std::string> lines;
    for (const std::string& line : logs.Lines()) {
      if (absl::StrContains(line, " DEBUG access method=" + std::string(kCheck) + " ")) {
        lines.push_back(line);
      }
    }
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_THAT(lines[0], HasSubstr(" code=OK "));
    EXPECT_THAT(lines[0], MatchesRegex(".* request_id=[0-9a-f]{32}"));
  }
  EXPECT_EQ(Metric(handled), 4);
}

// A Kubernetes probe's Watch stream stays open for the pod's life: it is counted as started, but
// not as a call in flight (the saturation alert divides calls_in_flight by the concurrency limit,
// which health checks do not use).
TEST_F(HealthTelemetryTest, OpenWatchStreamIsNotACallInFlight) {
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                     grpc::InsecureChannelCredentials());
  grpc::GenericStub generic(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  auto next = [&cq](intptr_t want) {
    void* tag = nullptr;
    bool ok = false;
    return cq.Next(&tag, &ok) && ok && reinterpret_cast<intptr_t>(tag) == want;
  };
  auto watch = generic.PrepareCall(&context, "/grpc.health.v1.Health/Watch", &cq);
  watch->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(next(1));
  const std::string request;  // HealthCheckRequest{service: ""}: the server as a whole
  grpc::Slice slice(request);
  watch->Write(grpc::ByteBuffer(&slice, 1), reinterpret_cast<void*>(2));
  ASSERT_TRUE(next(2));
  grpc::ByteBuffer first;
  watch->Read(&first, reinterpret_cast<void*>(3));
  ASSERT_TRUE(next(3)) << "no first status on the Watch stream";

  EXPECT_EQ(Metric("grpc_server_started_total{grpc_method=\"Watch\","
                   "grpc_service=\"grpc.health.v1.Health\",grpc_type=\"server_stream\"}"),
            1);
  // Counted, it would be 1 here: the call was counted before its first message was sent. (No
  // check after another call: its count drops only when the server has cleaned it up, which may
  // be after its client saw the status.)
  EXPECT_EQ(Metric("vision_gateway_calls_in_flight"), 0);

  context.TryCancel();
  grpc::Status status;
  watch->Finish(&status, reinterpret_cast<void*>(4));
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok) && reinterpret_cast<intptr_t>(tag) != 4) {
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

// With the retrying decorator (#8) as main.cc wires it: retries are counted with their backoff,
// the access log shows every attempt, the wait before a retry is upstream time (not gateway
// overhead), and the concurrency limit is exported for the saturation alert.
class RetryTelemetryTest : public TelemetryTest {
 protected:
  void SetUp() override {
    StackOptions stack;
    stack.retries = true;
    stack.retry.max_attempts = 3;
    stack.retry.initial_backoff = absl::Milliseconds(1);
    stack.retry.max_backoff = absl::Milliseconds(5);
    stack.limits.max_concurrent_calls = 37;
    StartStackWith(stack);
  }
};

TEST_F(RetryTelemetryTest, RetryIsCountedLoggedAndNotGatewayTime) {
  LogCapture logs;
  // Gemini asks for 300 ms: the gateway waits that long between the two attempts.
  emulator_->Enqueue(emulator::ScriptedError(429, "quota", emulator::RetryInfoDetails("0.3s")));
  emulator_->Enqueue(emulator::ScriptedStream({"A red ", "square."}));
  CallResult result = Caption(CaptionOf(RedSquarePng()));
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();

  EXPECT_EQ(Metric("vision_gateway_upstream_retries_total{operation=\"streamGenerateContent\"}"), 1);
  const double backoff = Metric(
      "vision_gateway_upstream_retry_backoff_seconds_total{operation=\"streamGenerateContent\"}");
  EXPECT_GE(backoff, 0.3);
  EXPECT_LT(backoff, 0.31);
  EXPECT_EQ(Metric("vision_gateway_upstream_requests_total{model=\"gemini-3-flash-preview\","
                   "operation=\"streamGenerateContent\",outcome=\"ResourceExhausted\"}"),
            1);

  const auto lines = logs.AccessLines(kCaptionMethod);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr(" attempts=2 "));
  double gateway = -1;
  double upstream = -1;
  const std::string timing = One(result.trailers, "server-timing");
  ASSERT_TRUE(ParseServerTiming(timing, &gateway, &upstream)) << timing;
  EXPECT_GE(upstream, 300.0) << timing;
  // The 300 ms wait is not the gateway's: its own share stays far below it.
  EXPECT_LT(gateway, 150.0) << timing;
  const double overhead_sum = Metric("vision_gateway_overhead_seconds_sum{grpc_method=\"Caption\"}");
  EXPECT_GE(overhead_sum, 0.0);
  EXPECT_LT(overhead_sum, 0.15);
}

TEST_F(RetryTelemetryTest, ConcurrencyLimitIsExported) {
  EXPECT_EQ(Metric("vision_gateway_concurrency_limit"), 37);
  server_->Shutdown(absl::Seconds(1));
  // A stopped server no longer reports its limit.
  EXPECT_EQ(Metric("vision_gateway_concurrency_limit"), 0);
}

// With caller authentication (#11), the caller names the call in the access log and in the
// per-caller metrics.
class CallerTelemetryTest : public TelemetryTest {
 protected:
  void ConfigureServer(server::ServerOptions& options) override {
    tokens_file_ = ::testing::TempDir() + "/telemetry-tokens-" + std::to_string(getpid());
    std::ofstream(tokens_file_) << "alice " << kAliceToken << "\n";
    server::AuthOptions auth;
    auth.tokens_file = tokens_file_;
    options.auth = auth;
  }
  void TearDown() override {
    TelemetryTest::TearDown();
    std::remove(tokens_file_.c_str());
  }
  static constexpr char kAliceToken[] = "alice-token-0123456789abcdef0123";
  std::string tokens_file_;
};

TEST_F(CallerTelemetryTest, CallerIsLoggedAndCounted) {
  LogCapture logs;
  emulator_->Enqueue(emulator::ScriptedStream({"A ", "square."}, "STOP", 120));
  CallResult alice = Caption(CaptionOf(RedSquarePng()),
                             {{"authorization", std::string("Bearer ") + kAliceToken}});
  ASSERT_TRUE(alice.status.ok()) << alice.status.error_message();
  CallResult anonymous = Caption(CaptionOf(RedSquarePng()));
  ASSERT_EQ(anonymous.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);

  const auto lines = logs.AccessLines(kCaptionMethod);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], HasSubstr(" caller=alice code=OK "));
  EXPECT_THAT(lines[1], Not(HasSubstr("caller=")));
  EXPECT_THAT(lines[1], HasSubstr(" code=Unauthenticated reason=CALLER_UNAUTHENTICATED "));
  for (const std::string& line : logs.Lines()) EXPECT_THAT(line, Not(HasSubstr(kAliceToken)));

  EXPECT_EQ(Metric("vision_gateway_caller_calls_total{caller=\"alice\",grpc_code=\"OK\","
                   "grpc_method=\"Caption\"}"),
            1);
  EXPECT_EQ(Metric("vision_gateway_caller_tokens_total{caller=\"alice\",kind=\"prompt\"}"), 120);
  EXPECT_EQ(Metric("vision_gateway_caller_tokens_total{caller=\"alice\",kind=\"output\"}"), 2);
  EXPECT_EQ(Metric("vision_gateway_errors_total{grpc_method=\"Caption\","
                   "reason=\"CALLER_UNAUTHENTICATED\"}"),
            1);
  EXPECT_THAT(metrics_->Scrape(), Not(HasSubstr(kAliceToken)));
}

}  // namespace
}  // namespace vision_gateway::testing
