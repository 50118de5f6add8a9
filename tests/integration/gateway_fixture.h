// The real stack on loopback: gemini-emulator ← HTTP client ← Gemini client ← gRPC server, and a
// gRPC stub to call it. Each test gets a fresh emulator and server.
#ifndef VISION_GATEWAY_TESTS_INTEGRATION_GATEWAY_FIXTURE_H_
#define VISION_GATEWAY_TESTS_INTEGRATION_GATEWAY_FIXTURE_H_

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "emulator/emulator.h"
#include "gtest/gtest.h"
#include "service/common/timer.h"
#include "service/gemini/gemini_client.h"
#include "service/gemini/instrumented_gemini_client.h"
#include "service/gemini/rest_batches_stub.h"
#include "service/gemini/retrying_gemini_client.h"
#include "service/http/http_client.h"
#include "service/metrics/prometheus_telemetry.h"
#include "service/server/leak_filter.h"
#include "service/server/server.h"
#include "tests/testing/health_check.h"
#include "vision/v1/vision.grpc.pb.h"

namespace vision_gateway::testing {

// Random-looking, so that no 6-character piece of it is an English word a message might hold.
inline constexpr char kEmulatorKey[] = "q7Xv2mLp-9Rw4Tk3z-emu";

// What a test may change about the stack.
struct StackOptions {
  // What the gateway sends; the emulator accepts only kEmulatorKey.
  gemini::ApiKey gateway_key = kEmulatorKey;
  int max_receive_message_bytes = 47 << 20;
  // Wrap the REST client in the retrying decorator, as main.cc does.
  bool retries = false;
  gemini::RetryOptions retry;
  std::chrono::milliseconds default_timeout{120000};
  server::LimitOptions limits;
  http::HttpClientOptions http;
  // Gemini's base URL; empty: the emulator's.
  std::string base_url;
  // Model discovery as main.cc turns it on (Gemini's models list read at start).
  bool discovery = true;
  // The emulator's models list; empty: its default (emulator::DefaultModels()).
  std::vector<emulator::EmulatorModel> models;
  // When set, the HTTP client the Gemini client uses is this function's result for the real one
  // (a test decorator, e.g. one that injects faults into its callbacks).
  std::function<std::shared_ptr<http::HttpClient>(std::shared_ptr<http::HttpClient>)> wrap_http;
  // When set, the generate stub the server uses is this function's result for the composed one
  // (a decorator main.cc puts on top, e.g. the result cache).
  std::function<std::shared_ptr<gemini::GenerateStub>(std::shared_ptr<gemini::GenerateStub>)>
      wrap_generate;
  // The Batch API (the REST batches stub, composed as main.cc composes it); off: the batch RPCs
  // answer UNIMPLEMENTED.
  bool batches = false;
};

class GatewayTest : public ::testing::Test {
 protected:
  // `gateway_key` is what the gateway sends; the emulator accepts only kEmulatorKey.
  void StartStack(const gemini::ApiKey& gateway_key = kEmulatorKey,
                  int max_receive_message_bytes = 64 << 20) {
    StackOptions options;
    options.gateway_key = gateway_key;
    options.max_receive_message_bytes = max_receive_message_bytes;
    StartStackWith(options);
  }

  void StartStackWith(const StackOptions& stack) {
    emulator::EmulatorOptions emulator_options;
    emulator_options.api_key = kEmulatorKey;
    if (!stack.models.empty()) emulator_options.config.models = stack.models;
    auto emulator = emulator::Emulator::Start(emulator_options);
    ASSERT_TRUE(emulator.ok()) << emulator.status();
    emulator_ = *std::move(emulator);
    StartGateway(stack);
  }

  // A fresh gateway (HTTP client, Gemini stubs, metrics, server) on the same emulator, as a
  // replica restarted or another replica would be: nothing of the old one is kept.
  void RestartGateway() {
    StopGateway();
    StartGateway(stack_);
  }

  // The gateway's part of the stack, in front of emulator_.
  void StartGateway(const StackOptions& stack) {
    stack_ = stack;
    auto http = http::MakeHttpClient(stack.http);
    ASSERT_TRUE(http.ok()) << http.status();
    http_ = stack.wrap_http ? stack.wrap_http(*http) : *http;
    gemini::GeminiOptions gemini_options;
    gemini_options.base_url = stack.base_url.empty() ? emulator_->base_url() : stack.base_url;
    gemini_options.api_key = stack.gateway_key;
    gemini_options.default_timeout = stack.default_timeout;
    auto gemini = gemini::MakeGeminiClient(gemini_options, http_);
    ASSERT_TRUE(gemini.ok()) << gemini.status();
    // Wired as main.cc wires it: metrics (no HTTP endpoint; metrics_->Scrape()), the
    // instrumented client right above the REST client, and (when asked) the retrying decorator
    // above that.
    metrics_ = std::make_unique<metrics::PrometheusTelemetry>(
        metrics::PrometheusOptions{.known_models = {"gemini-3-flash-preview"}});
    gemini::GeminiStubs rest(*std::move(gemini));
    if (stack.batches) {
      auto batches = gemini::MakeRestBatchesStub(gemini_options, http_);
      ASSERT_TRUE(batches.ok()) << batches.status();
      rest.batches = *std::move(batches);
    }
    gemini_ = gemini::MakeInstrumentedStubs(std::move(rest), *metrics_);
    if (stack.retries) {
      gemini_ = gemini::MakeRetryingStubs(gemini_, stack.retry, MakeThreadTimer(), *metrics_);
    }
    if (stack.wrap_generate) gemini_.generate = stack.wrap_generate(gemini_.generate);
    // Errors reaching callers pass the leak filter set up as main.cc sets it up.
    server::LeakFilterOptions leak;
    leak.secret_source = [key = stack.gateway_key] { return key.Current(); };
    leak.upstream_hosts = {server::UpstreamHostOf(gemini_options.base_url)};
    server::ConfigureLeakFilter(std::move(leak));
    server::ServerOptions options;
    options.telemetry = metrics_.get();
    options.listen_address = "127.0.0.1:0";
    options.max_receive_message_bytes = stack.max_receive_message_bytes;
    options.limits = stack.limits;
    options.discovery.enabled = stack.discovery;
    options.discovery.start_wait = absl::Seconds(20);
    ConfigureServer(options);
    auto server = server::VisionServer::Start(options, gemini_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    // The start-up models list is not part of what a test looks at.
    if (stack.discovery) emulator_->ClearRequests();
    stub_ = ::vision::v1::VisionService::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials()));
  }

  // Waits (bounded) until the server holds no call permit: every call ended, its upstream work
  // included. Polls a condition; it does not wait for time to pass.
  bool WaitForNoActiveCalls(absl::Duration bound) {
    const absl::Time until = absl::Now() + bound;
    while (server_->active_calls() != 0) {
      if (absl::Now() >= until) return false;
      absl::SleepFor(absl::Milliseconds(2));
    }
    return true;
  }

  // What must follow a call that ended at the caller's deadline while Gemini was still busy (a
  // script that runs for `upstream_busy_for`), on the server's side, not only in the client's
  // own deadline: the upstream request was cancelled (the emulator saw its connection close) and
  // the call's permit went back, both well before the script would have ended.
  void ExpectDeadlineEndedUpstreamWork(absl::Duration upstream_busy_for) {
    const absl::Duration bound = upstream_busy_for / 2;
    EXPECT_TRUE(emulator_->WaitForOpenConnections(0, bound).ok())
        << "the upstream request outlived the caller's deadline";
    EXPECT_TRUE(WaitForNoActiveCalls(bound))
        << server_->active_calls() << " calls still hold a permit";
  }

  // Lets a test adjust the server's options (TLS, authentication, limits) before it starts.
  virtual void ConfigureServer(server::ServerOptions& /*options*/) {}

  void SetUp() override { StartStack(); }

  void StopGateway() {
    stub_.reset();
    if (server_) server_->Shutdown(absl::Seconds(2));
    server_.reset();
    gemini_ = {};
    http_.reset();
    metrics_.reset();
    server::ConfigureLeakFilter({});
  }

  void TearDown() override {
    StopGateway();
    emulator_.reset();
  }

  std::unique_ptr<metrics::PrometheusTelemetry> metrics_;
  std::unique_ptr<emulator::Emulator> emulator_;
  std::shared_ptr<http::HttpClient> http_;
  gemini::GeminiStubs gemini_;
  std::unique_ptr<server::VisionServer> server_;
  std::unique_ptr<::vision::v1::VisionService::Stub> stub_;
  StackOptions stack_;  // what the gateway was started with
};

}  // namespace vision_gateway::testing

#endif  // VISION_GATEWAY_TESTS_INTEGRATION_GATEWAY_FIXTURE_H_
