// The gRPC server over a fake Gemini client: streaming, status details, cancellation, validation.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/error_details.h>

#include <atomic>
#include <climits>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/common/error_reasons.h"
#include "service/common/status_details.h"
#include "service/metrics/prometheus_telemetry.h"
#include "service/server/call_limiter.h"
#include "service/server/server.h"
#include "tests/testing/fake_gemini_client.h"
#include "tests/testing/health_check.h"
#include "tests/testing/test_images.h"
#include "vision/v1/vision.grpc.pb.h"

namespace vision_gateway::server {
namespace {

namespace v1 = ::vision::v1;
using ::vision_gateway::testing::FakeGeminiClient;
using ::vision_gateway::testing::HealthStatus;
using ::vision_gateway::testing::MakePng;

gemini::GenerateContentResponse Chunk(const std::string& text, const std::string& finish = "") {
  gemini::GenerateContentResponse r;
  gemini::Candidate c;
  gemini::Part p;
  p.text = text;
  c.content.parts.push_back(p);
  c.finish_reason = finish;
  r.candidates.push_back(c);
  r.usage_metadata = gemini::UsageMetadata{.prompt_token_count = 300,
                                           .candidates_token_count = 7,
                                           .thoughts_token_count = 2,
                                           .total_token_count = 309};
  r.model_version = "gemini-2.5-flash";
  return r;
}

// The RetryInfo and ErrorInfo a refused call carries (empty messages when absent).
struct RefusalDetails {
  google::rpc::RetryInfo retry;
  google::rpc::ErrorInfo info;
};
RefusalDetails DetailsOf(const grpc::Status& status) {
  RefusalDetails out;
  google::rpc::Status details;
  EXPECT_TRUE(grpc::ExtractErrorDetails(status, &details).ok());
  for (const auto& any : details.details()) {
    if (any.Is<google::rpc::RetryInfo>()) EXPECT_TRUE(any.UnpackTo(&out.retry));
    if (any.Is<google::rpc::ErrorInfo>()) EXPECT_TRUE(any.UnpackTo(&out.info));
  }
  return out;
}

class VisionServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = std::make_shared<FakeGeminiClient>();
    ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.vision.default_model = "gemini-test";
    auto server = VisionServer::Start(options, fake_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::VisionService::NewStub(channel_);
  }
  void TearDown() override { server_->Shutdown(absl::Seconds(1)); }

  v1::CaptionRequest OneImageRequest() {
    v1::CaptionRequest request;
    request.add_images()->set_content(png_);
    return request;
  }

  std::string png_ = MakePng(32, 16, {255, 255, 255});
  std::shared_ptr<FakeGeminiClient> fake_;
  std::unique_ptr<VisionServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::VisionService::Stub> stub_;
};

TEST_F(VisionServiceTest, CaptionStreamsEachChunkAndEndsWithUsage) {
  grpc::ClientContext context;
  auto reader = stub_->Caption(&context, OneImageRequest());
  ASSERT_TRUE(fake_->WaitForCalls(1));
  auto call = fake_->calls()[0];

  // Images first, then the default prompt; the bytes arrive unchanged, type sniffed.
  ASSERT_EQ(call->request.contents.size(), 1u);
  const auto& parts = call->request.contents[0].parts;
  ASSERT_EQ(parts.size(), 2u);
  ASSERT_TRUE(parts[0].inline_data.has_value());
  EXPECT_EQ(parts[0].inline_data->mime_type, "image/png");
  EXPECT_EQ(parts[0].inline_data->data, png_);
  EXPECT_EQ(parts[1].text, "Caption this image.");
  EXPECT_EQ(call->model, "gemini-test");

  call->observer.on_chunk(Chunk("A white "));
  v1::CaptionResponse response;
  ASSERT_TRUE(reader->Read(&response));  // arrives before the stream ends
  EXPECT_EQ(response.text(), "A white ");
  EXPECT_FALSE(response.has_usage());

  call->observer.on_chunk(Chunk("square.", "STOP"));
  call->observer.on_done(absl::OkStatus());
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.text(), "square.");
  EXPECT_EQ(response.finish_reason(), "STOP");
  EXPECT_EQ(response.model_version(), "gemini-2.5-flash");
  EXPECT_EQ(response.usage().prompt_tokens(), 300);
  EXPECT_EQ(response.usage().output_tokens(), 7);
  EXPECT_EQ(response.usage().thinking_tokens(), 2);
  EXPECT_EQ(response.usage().total_tokens(), 309);
  EXPECT_FALSE(reader->Read(&response));
  EXPECT_TRUE(reader->Finish().ok());
}

TEST_F(VisionServiceTest, CaptionPassesPromptOptionsAndDeadline) {
  v1::CaptionRequest request = OneImageRequest();
  request.add_images()->set_content(png_);
  request.set_prompt("What colour is it?");
  request.mutable_options()->set_model("gemini-2.5-pro");
  request.mutable_options()->set_temperature(0.25f);
  request.mutable_options()->set_max_output_tokens(99);
  request.mutable_options()->set_thinking_budget(128);
  request.mutable_options()->set_media_resolution(v1::MEDIA_RESOLUTION_HIGH);
  grpc::ClientContext context;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  context.set_deadline(absl::ToChronoTime(deadline));
  auto reader = stub_->Caption(&context, request);
  ASSERT_TRUE(fake_->WaitForCalls(1));
  auto call = fake_->calls()[0];
  EXPECT_EQ(call->model, "gemini-2.5-pro");
  const auto& parts = call->request.contents[0].parts;
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_TRUE(parts[0].inline_data.has_value());
  EXPECT_TRUE(parts[1].inline_data.has_value());
  EXPECT_EQ(parts[2].text, "What colour is it?");
  const auto& config = *call->request.generation_config;
  EXPECT_FLOAT_EQ(*config.temperature, 0.25f);
  EXPECT_EQ(*config.max_output_tokens, 99);
  EXPECT_EQ(config.media_resolution, "MEDIA_RESOLUTION_HIGH");
  EXPECT_EQ(*config.thinking_config->thinking_budget, 128);
  EXPECT_LT(absl::AbsDuration(call->options.deadline - deadline), absl::Seconds(1));
  call->observer.on_done(absl::OkStatus());
  v1::CaptionResponse response;
  while (reader->Read(&response)) {
  }
  EXPECT_TRUE(reader->Finish().ok());
}

TEST_F(VisionServiceTest, UpstreamErrorArrivesWithCodeAndDetails) {
  grpc::ClientContext context;
  auto reader = stub_->Caption(&context, OneImageRequest());
  ASSERT_TRUE(fake_->WaitForCalls(1));
  absl::Status error = absl::ResourceExhaustedError("Gemini: quota exceeded");
  error = WithRetryInfo(error, absl::Seconds(15));
  fake_->calls()[0]->observer.on_done(error);
  v1::CaptionResponse response;
  EXPECT_FALSE(reader->Read(&response));
  grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(status.error_message(), "Gemini: quota exceeded");
  google::rpc::Status details;
  ASSERT_TRUE(grpc::ExtractErrorDetails(status, &details).ok());
  ASSERT_EQ(details.details_size(), 2);
  google::rpc::RetryInfo retry;
  google::rpc::ErrorInfo info;
  for (const auto& any : details.details()) {
    if (any.Is<google::rpc::RetryInfo>()) {
      ASSERT_TRUE(any.UnpackTo(&retry));
    }
    if (any.Is<google::rpc::ErrorInfo>()) {
      ASSERT_TRUE(any.UnpackTo(&info));
    }
  }
  EXPECT_EQ(retry.retry_delay().seconds(), 15);
  // Every error carries the gateway's ErrorInfo (an untagged RESOURCE_EXHAUSTED: overload).
  EXPECT_EQ(info.domain(), "vision-gateway");
  EXPECT_FALSE(info.reason().empty());
}

TEST(CallLimiterTest, PermitsAreCountedAndReleased) {
  CallLimiter limiter(2, absl::Seconds(1));
  auto a = limiter.TryAcquire();
  auto b = limiter.TryAcquire();
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_FALSE(limiter.TryAcquire());
  EXPECT_EQ(limiter.active(), 2);
  a.Release();
  EXPECT_EQ(limiter.active(), 1);
  EXPECT_TRUE(limiter.TryAcquire());  // acquired and released at once
  EXPECT_EQ(limiter.active(), 1);
  {
    // A permit that outlives its limiter gives its unit back to the shared state, not to freed
    // memory (the service used to be destroyed while such a permit was still held).
    auto limiter2 = std::make_unique<CallLimiter>(1, absl::Seconds(1));
    auto held = limiter2->TryAcquire();
    limiter2.reset();
  }
  CallLimiter unbounded(0, absl::Seconds(1));
  std::vector<Semaphore::Permit> many;
  for (int i = 0; i < 1000; ++i) many.push_back(unbounded.TryAcquire());
  EXPECT_TRUE(many.back());
}

// A server allowing one call at a time (--max_concurrent_calls=1), and a Caption holding it.
class VisionServiceLimitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.limits.max_concurrent_calls = 1;
    options.limits.overload_retry_after = absl::Seconds(2);
    auto server = VisionServer::Start(options, fake_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    stub_ = v1::VisionService::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials()));
    request_.add_images()->set_content(MakePng(32, 16, {255, 255, 255}));
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(1));
  }

  std::shared_ptr<FakeGeminiClient> fake_ = std::make_shared<FakeGeminiClient>();
  std::unique_ptr<VisionServer> server_;
  std::unique_ptr<v1::VisionService::Stub> stub_;
  v1::CaptionRequest request_;
};

TEST_F(VisionServiceLimitTest, CallsBeyondMaxConcurrentCallsAreRefusedAtOnce) {
  auto& fake = fake_;
  auto& stub = stub_;
  auto& request = request_;
  grpc::ClientContext first_context;
  first_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  auto first = stub->Caption(&first_context, request);
  ASSERT_TRUE(fake->WaitForCalls(1));

  // The second call is refused without reaching upstream, fast, with RetryInfo.
  grpc::ClientContext second_context;
  second_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  const absl::Time start = absl::Now();
  auto second = stub->Caption(&second_context, request);
  v1::CaptionResponse response;
  EXPECT_FALSE(second->Read(&response));
  const grpc::Status refused = second->Finish();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  const auto [retry, info] = DetailsOf(refused);
  EXPECT_EQ(info.reason(), "SERVER_OVERLOADED");
  EXPECT_EQ(retry.retry_delay().seconds(), 2);
  EXPECT_EQ(fake->calls().size(), 1u);

  fake->calls()[0]->observer.on_chunk(Chunk("done", "STOP"));
  fake->calls()[0]->observer.on_done(absl::OkStatus());
  while (first->Read(&response)) {
  }
  EXPECT_TRUE(first->Finish().ok());
}

TEST_F(VisionServiceLimitTest, UploadsCountAgainstMaxConcurrentCalls) {
  auto& fake = fake_;
  auto& stub = stub_;
  grpc::ClientContext caption_context;
  caption_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  auto caption = stub->Caption(&caption_context, request_);
  ASSERT_TRUE(fake->WaitForCalls(1));

  // The only slot is taken: an Upload is refused before it reads anything.
  grpc::ClientContext upload_context;
  upload_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  v1::File file;
  auto upload = stub->Upload(&upload_context, &file);
  v1::UploadRequest header;
  header.mutable_header()->set_size_bytes(16);
  upload->Write(header);  // may already fail: the server finished the call
  upload->WritesDone();
  const grpc::Status refused = upload->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_EQ(DetailsOf(refused).info.reason(), "SERVER_OVERLOADED");
  EXPECT_EQ(fake->calls().size(), 1u);

  fake->calls()[0]->observer.on_chunk(Chunk("done", "STOP"));
  fake->calls()[0]->observer.on_done(absl::OkStatus());
  v1::CaptionResponse response;
  while (caption->Read(&response)) {
  }
  EXPECT_TRUE(caption->Finish().ok());
}

// Issue #17: the request bytes admitted calls hold are bounded (--max_request_memory_mb): a call
// that would go over is refused at once, with RetryInfo, and admitted again once memory is free.
TEST(VisionServiceMemoryTest, RequestBytesBeyondTheBudgetAreRefusedAtOnce) {
  auto fake = std::make_shared<FakeGeminiClient>();
  ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.limits.max_request_memory_bytes = 1 << 20;
  options.limits.overload_retry_after = absl::Seconds(3);
  auto server = VisionServer::Start(options, fake);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::VisionService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string((*server)->port()), grpc::InsecureChannelCredentials()));
  v1::CaptionRequest big;  // 600 KiB: one fits in 1 MiB, two do not
  big.add_images()->set_content(MakePng(32, 16, {255, 255, 255}) + std::string(600 << 10, 'x'));

  grpc::ClientContext first_context;
  first_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  auto first = stub->Caption(&first_context, big);
  ASSERT_TRUE(fake->WaitForCalls(1));

  grpc::ClientContext second_context;
  second_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  auto second = stub->Caption(&second_context, big);
  v1::CaptionResponse response;
  EXPECT_FALSE(second->Read(&response));
  const grpc::Status refused = second->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), ::testing::HasSubstr("--max_request_memory_mb"));
  const auto [retry, info] = DetailsOf(refused);
  EXPECT_EQ(info.reason(), "SERVER_OVERLOADED");
  EXPECT_EQ(info.metadata().at("limit"), "max_request_memory_mb");
  EXPECT_EQ(retry.retry_delay().seconds(), 3);
  EXPECT_EQ(fake->calls().size(), 1u) << "refused before any upstream work";

  // A small request still fits beside the big one.
  grpc::ClientContext small_context;
  v1::CaptionRequest small;
  small.add_images()->set_content(MakePng(32, 16, {255, 255, 255}));
  auto third = stub->Caption(&small_context, small);
  ASSERT_TRUE(fake->WaitForCalls(2));
  for (int i : {0, 1}) {
    fake->calls()[i]->observer.on_chunk(Chunk("done", "STOP"));
    fake->calls()[i]->observer.on_done(absl::OkStatus());
  }
  while (first->Read(&response)) {
  }
  EXPECT_TRUE(first->Finish().ok());
  while (third->Read(&response)) {
  }
  EXPECT_TRUE(third->Finish().ok());

  // The first call's bytes are free again: the big request is admitted.
  grpc::ClientContext again_context;
  again_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  auto again = stub->Caption(&again_context, big);
  ASSERT_TRUE(fake->WaitForCalls(3));
  fake->calls()[2]->observer.on_chunk(Chunk("done", "STOP"));
  fake->calls()[2]->observer.on_done(absl::OkStatus());
  while (again->Read(&response)) {
  }
  EXPECT_TRUE(again->Finish().ok());
  (*server)->Shutdown(absl::Seconds(1));
}

TEST_F(VisionServiceTest, ClientCancelCancelsUpstream) {
  grpc::ClientContext context;
  auto reader = stub_->Caption(&context, OneImageRequest());
  ASSERT_TRUE(fake_->WaitForCalls(1));
  auto call = fake_->calls()[0];
  call->observer.on_chunk(Chunk("partial"));
  v1::CaptionResponse response;
  ASSERT_TRUE(reader->Read(&response));
  context.TryCancel();
  EXPECT_TRUE(call->cancelled.WaitForNotificationWithTimeout(absl::Seconds(5)));
  while (reader->Read(&response)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

// A server on loopback (default model "gemini-test") over `fake`, and a stub to it.
struct LoopbackServer {
  std::unique_ptr<VisionServer> server;
  std::unique_ptr<v1::VisionService::Stub> stub;
};
absl::StatusOr<LoopbackServer> StartLoopbackServer(ServerOptions options,
                                                   std::shared_ptr<FakeGeminiClient> fake) {
  options.listen_address = "127.0.0.1:0";
  options.vision.default_model = "gemini-test";
  auto server = VisionServer::Start(options, std::move(fake));
  if (!server.ok()) return server.status();
  auto stub = v1::VisionService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string((*server)->port()), grpc::InsecureChannelCredentials()));
  return LoopbackServer{*std::move(server), std::move(stub)};
}

v1::CaptionRequest SmallCaption() {
  v1::CaptionRequest request;
  request.add_images()->set_content(MakePng(32, 16, {255, 255, 255}));
  return request;
}

// A call whose client went away while a write was in flight ends for gRPC (the write fails: Finish,
// OnDone) before its upstream task does. Destroying
// the server must cancel such a task and wait for its end, since it still uses the service's
// members (its permits, the CPU pool, the timer). The fake answers the cancel later, on another
// thread, as the HTTP client does.
TEST(VisionServiceShutdownTest, DestroyingTheServerWaitsForUpstreamWorkOfCallsAlreadyGone) {
  auto fake = std::make_shared<FakeGeminiClient>();
  fake->DeferCancelCompletion();
  metrics::PrometheusTelemetry metrics{metrics::PrometheusOptions{}};
  ServerOptions options;
  options.telemetry = &metrics;
  auto started = StartLoopbackServer(std::move(options), fake);
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<VisionServer>& server = started->server;
  std::unique_ptr<v1::VisionService::Stub>& stub = started->stub;
  {
    grpc::ClientContext context;
    auto reader = stub->Caption(&context, SmallCaption());
    ASSERT_TRUE(fake->WaitForCalls(1));
    // Far more text than the stream's flow-control window, unread: a write stays in flight until
    // the client goes away, and then fails.
    for (int i = 0; i < 16; ++i) fake->calls()[0]->observer.on_chunk(Chunk(std::string(1 << 20, 'x')));
    context.TryCancel();
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  auto call = fake->calls()[0];
  ASSERT_TRUE(call->cancelled.WaitForNotificationWithTimeout(absl::Seconds(5)));
  // gRPC is done with the call (OnDone: no call in flight for the interceptor), while it still
  // holds its permit: its upstream task runs on.
  const absl::Time gone_by = absl::Now() + absl::Seconds(5);
  while (!absl::StrContains(metrics.Scrape(), "\nvision_gateway_calls_in_flight 0\n") &&
         absl::Now() < gone_by) {
    absl::SleepFor(absl::Milliseconds(2));  // polling a condition, not synchronising on time
  }
  if (!absl::StrContains(metrics.Scrape(), "\nvision_gateway_calls_in_flight 0\n")) {
    fake->CompleteCancelledCalls();  // else the server's Shutdown waits for it for ever
    FAIL() << "the call did not end for gRPC";
  }
  EXPECT_EQ(server->active_calls(), 1);
  const int cancels_before = call->cancel_requests.load();

  absl::Notification destroyed;
  std::thread destroy([&] {
    server->Shutdown(absl::ZeroDuration());
    server.reset();
    destroyed.Notify();
  });
  // The service cancels the call again as it drains, and waits for its end.
  const absl::Time until = absl::Now() + absl::Seconds(5);
  while (call->cancel_requests.load() == cancels_before && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(2));  // polling a condition, not synchronising on time
  }
  EXPECT_GT(call->cancel_requests.load(), cancels_before)
      << "the service did not cancel the call at shutdown";
  EXPECT_FALSE(destroyed.HasBeenNotified())
      << "the service was destroyed while its upstream call was still running";
  EXPECT_EQ(fake->CompleteCancelledCalls(), 1);
  destroy.join();
}

// --max_call_duration_s: a call without a deadline is ended upstream when the limit passes, and
// the caller learns why; an Upload (no deadline, caller idle) too.
TEST(VisionServiceShutdownTest, CallsWithoutADeadlineEndAtTheMaxCallDuration) {
  auto fake = std::make_shared<FakeGeminiClient>();
  ServerOptions options;
  options.limits.max_call_duration = absl::Milliseconds(300);
  auto started = StartLoopbackServer(std::move(options), fake);
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<VisionServer>& server = started->server;
  std::unique_ptr<v1::VisionService::Stub>& stub = started->stub;
  {
    grpc::ClientContext context;
    auto reader = stub->Caption(&context, SmallCaption());
    ASSERT_TRUE(fake->WaitForCalls(1));
    v1::CaptionResponse response;
    while (reader->Read(&response)) {
    }
    const grpc::Status status = reader->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
    EXPECT_EQ(DetailsOf(status).info.reason(), reasons::kMaxCallDuration);
    EXPECT_TRUE(fake->calls()[0]->cancelled.HasBeenNotified());
  }
  {
    grpc::ClientContext context;
    v1::File file;
    auto writer = stub->Upload(&context, &file);  // sends nothing: the idle timeout is 60 s
    const grpc::Status status = writer->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
    EXPECT_EQ(DetailsOf(status).info.reason(), reasons::kMaxCallDuration);
  }
  EXPECT_EQ(server->active_calls(), 0);
  server->Shutdown(absl::Seconds(1));
}

TEST_F(VisionServiceTest, InvalidRequestsFailBeforeCallingGemini) {
  struct Case {
    const char* name;
    v1::CaptionRequest request;
  };
  std::vector<Case> cases;
  cases.push_back({"no images", {}});
  v1::CaptionRequest not_image;
  not_image.add_images()->set_content("plain text, not an image");
  cases.push_back({"not an image", not_image});
  v1::CaptionRequest empty_image;
  empty_image.add_images();
  cases.push_back({"no source", empty_image});
  v1::CaptionRequest bad_model = OneImageRequest();
  bad_model.mutable_options()->set_model("../../etc/passwd");
  cases.push_back({"bad model", bad_model});
  v1::CaptionRequest bad_temperature = OneImageRequest();
  bad_temperature.mutable_options()->set_temperature(3.5f);
  cases.push_back({"bad temperature", bad_temperature});
  v1::CaptionRequest both_thinking = OneImageRequest();
  both_thinking.mutable_options()->set_thinking_budget(0);
  both_thinking.mutable_options()->set_thinking_level(v1::THINKING_LEVEL_LOW);
  cases.push_back({"budget and level", both_thinking});

  for (auto& c : cases) {
    grpc::ClientContext context;
    auto reader = stub_->Caption(&context, c.request);
    v1::CaptionResponse response;
    EXPECT_FALSE(reader->Read(&response)) << c.name;
    grpc::Status status = reader->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.name;
    EXPECT_FALSE(status.error_message().empty()) << c.name;
  }
  EXPECT_TRUE(fake_->calls().empty());
}

TEST_F(VisionServiceTest, CountTokensAddsTheImageEstimate) {
  v1::CountTokensRequest request;
  request.add_images()->set_content(MakePng(960, 540, {255, 255, 255}));
  request.add_images()->set_content(png_);
  v1::CountTokensResponse response;
  std::thread finisher([this] {
    ASSERT_TRUE(fake_->WaitForCalls(1));
    auto call = fake_->calls()[0];
    EXPECT_EQ(call->count_request.contents[0].parts.size(), 3u);
    call->count_done(gemini::CountTokensResponse{.total_tokens = 1811});
  });
  grpc::ClientContext context;
  grpc::Status status = stub_->CountTokens(&context, request, &response);
  finisher.join();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.total_tokens(), 1811);
  // 960x540: crop 360 → 3 x 2 tiles = 1548; 32x16: 258.
  EXPECT_EQ(response.estimated_image_tokens(), 1548 + 258);
}

TEST_F(VisionServiceTest, HealthReportsServing) {
  EXPECT_EQ(HealthStatus(channel_, "vision.v1.VisionService"), 1);
  EXPECT_EQ(HealthStatus(channel_, ""), 1);
  EXPECT_EQ(HealthStatus(channel_, VisionServer::kLivenessName), 1);
}

TEST_F(VisionServiceTest, DrainingTurnsReadinessNotServingAndStillServesNewCalls) {
  server_->StartDraining();
  EXPECT_EQ(HealthStatus(channel_, VisionServer::kServiceName), 2);
  EXPECT_EQ(HealthStatus(channel_, ""), 2);
  EXPECT_EQ(HealthStatus(channel_, VisionServer::kLivenessName), 1) << "a draining pod is alive";

  // A call started while draining is served in full.
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  auto reader = stub_->Caption(&context, OneImageRequest());
  ASSERT_TRUE(fake_->WaitForCalls(1));
  auto call = fake_->calls()[0];
  call->observer.on_chunk(Chunk("Still here.", "STOP"));
  call->observer.on_done(absl::OkStatus());
  v1::CaptionResponse response;
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.text(), "Still here.");
  EXPECT_TRUE(reader->Finish().ok());
  server_->StartDraining();  // idempotent
}

TEST(VisionServerOptionsTest, ConnectionDurationsMustBePositive) {
  auto fake = std::make_shared<FakeGeminiClient>();
  for (auto set : {+[](ServerOptions& o) { o.max_connection_age = absl::ZeroDuration(); },
                   +[](ServerOptions& o) { o.max_connection_age_grace = absl::Seconds(-1); },
                   +[](ServerOptions& o) { o.max_connection_idle = absl::ZeroDuration(); }}) {
    ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    set(options);
    auto server = VisionServer::Start(options, fake);
    EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  }
  ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.max_connection_age = absl::Seconds(300);
  options.max_connection_age_grace = absl::Seconds(130);
  options.max_connection_idle = absl::Hours(1000);  // beyond INT_MAX ms: clamped, not overflowed
  auto server = VisionServer::Start(options, fake);
  ASSERT_TRUE(server.ok()) << server.status();
  (*server)->Shutdown(absl::Seconds(1));
}

TEST(VisionServerOptionsTest, ConnectionDurationsBecomeChannelArgMilliseconds) {
  EXPECT_EQ(ChannelArgMs(absl::Seconds(300)), 300000);
  EXPECT_EQ(ChannelArgMs(absl::Milliseconds(INT_MAX) - absl::Milliseconds(1)), INT_MAX - 1);
  // Beyond INT_MAX ms (1000 h is 3.6e9 ms): clamped to gRPC's "never", not wrapped negative.
  EXPECT_EQ(ChannelArgMs(absl::Hours(1000)), INT_MAX);
  EXPECT_EQ(ChannelArgMs(absl::InfiniteDuration()), INT_MAX);
  EXPECT_EQ(ChannelArgMs(absl::Seconds(-1)), 0);
}

// --- Exceptions: a call whose work throws fails with INTERNAL; the server and other calls go on ---

enum class Throw { kBadAlloc, kRuntimeError, kNonStandard };

// A Gemini client that throws from its first `throws` calls to StreamGenerateContent,
// CountTokens — where the real client encodes the request body (base64 of every image: the
// gateway's largest allocation) — or StartUpload, and behaves like the fake afterwards. Detect,
// Segment and CountTokens call it on the CPU pool, Caption and Upload on the gRPC callback thread.
class ThrowingGeminiClient : public FakeGeminiClient {
 public:
  ThrowingGeminiClient(Throw what, int throws) : what_(what), throws_(throws) {}

  std::shared_ptr<gemini::PendingCall> StreamGenerateContent(
      const std::string& model, gemini::GenerateContentRequest request,
      gemini::CallOptions options, gemini::StreamObserver observer) override {
    MaybeThrow();
    return FakeGeminiClient::StreamGenerateContent(model, std::move(request), std::move(options),
                                                   std::move(observer));
  }

  std::shared_ptr<gemini::PendingCall> StartUpload(
      gemini::StartUploadRequest request, gemini::CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<gemini::UploadSession>)> done) override {
    MaybeThrow();
    return FakeGeminiClient::StartUpload(std::move(request), std::move(options), std::move(done));
  }

  std::shared_ptr<gemini::PendingCall> CountTokens(
      const std::string& model, gemini::CountTokensRequest request, gemini::CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<gemini::CountTokensResponse>)> done) override {
    MaybeThrow();
    return FakeGeminiClient::CountTokens(model, std::move(request), std::move(options),
                                         std::move(done));
  }

 private:
  void MaybeThrow() {
    if (throws_.fetch_sub(1) <= 0) return;
    switch (what_) {
      case Throw::kBadAlloc:
        throw std::bad_alloc();
      case Throw::kRuntimeError:
        throw std::runtime_error("encoding failed");
      case Throw::kNonStandard:
        throw 42;
    }
  }

  const Throw what_;
  std::atomic<int> throws_;
};

class ExceptionContainmentTest : public ::testing::TestWithParam<Throw> {
 protected:
  void SetUp() override {
    fake_ = std::make_shared<ThrowingGeminiClient>(GetParam(), /*throws=*/1);
    ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.vision.default_model = "gemini-test";
    options.limits.cpu_threads = 1;  // the one worker must survive the throw
    auto server = VisionServer::Start(options, fake_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    stub_ = v1::VisionService::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override { server_->Shutdown(absl::Seconds(1)); }

  static void SetDeadline(grpc::ClientContext& context) {
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  }

  // INTERNAL with ErrorInfo INTERNAL_ERROR (the error table's row for a gateway failure).
  static void ExpectInternalError(const grpc::Status& status) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL) << status.error_message();
    google::rpc::Status details;
    ASSERT_TRUE(details.ParseFromString(status.error_details()));
    google::rpc::ErrorInfo info;
    ASSERT_GE(details.details_size(), 1);
    bool found = false;
    for (const auto& any : details.details()) {
      if (any.UnpackTo(&info)) found = true;
    }
    ASSERT_TRUE(found);
    EXPECT_EQ(info.reason(), "INTERNAL_ERROR");
    EXPECT_EQ(info.domain(), "vision-gateway");
  }

  // A Detect call that completes normally (the fake answers it).
  void ExpectDetectWorks() {
    v1::DetectRequest request;
    request.mutable_image()->set_content(png_);
    grpc::ClientContext context;
    SetDeadline(context);
    auto reader = stub_->Detect(&context, request);
    ASSERT_TRUE(fake_->WaitForCalls(1));
    auto call = fake_->calls().back();
    call->observer.on_chunk(Chunk(R"([{"box_2d":[0,0,500,500],"label":"a"}])", "STOP"));
    call->observer.on_done(absl::OkStatus());
    v1::DetectResponse response;
    int detections = 0;
    while (reader->Read(&response)) detections += response.has_detection() ? 1 : 0;
    grpc::Status status = reader->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(detections, 1);
  }

  std::string png_ = MakePng(32, 16, {255, 255, 255});
  std::shared_ptr<ThrowingGeminiClient> fake_;
  std::unique_ptr<VisionServer> server_;
  std::unique_ptr<v1::VisionService::Stub> stub_;
};

INSTANTIATE_TEST_SUITE_P(Throws, ExceptionContainmentTest,
                         ::testing::Values(Throw::kBadAlloc, Throw::kRuntimeError,
                                           Throw::kNonStandard));

TEST_P(ExceptionContainmentTest, DetectWorkThrowingOnTheCpuPoolFailsOnlyThatCall) {
  v1::DetectRequest request;
  request.mutable_image()->set_content(png_);
  grpc::ClientContext context;
  SetDeadline(context);
  auto reader = stub_->Detect(&context, request);
  v1::DetectResponse response;
  while (reader->Read(&response)) {
  }
  ExpectInternalError(reader->Finish());
  ExpectDetectWorks();  // same server, same (single) CPU worker
}

TEST_P(ExceptionContainmentTest, CountTokensWorkThrowingOnTheCpuPoolFailsOnlyThatCall) {
  v1::CountTokensRequest request;
  request.add_images()->set_content(png_);
  grpc::ClientContext context;
  SetDeadline(context);
  v1::CountTokensResponse response;
  ExpectInternalError(stub_->CountTokens(&context, request, &response));
  ExpectDetectWorks();
}

TEST_P(ExceptionContainmentTest, UploadThrowingOnTheGrpcThreadFailsOnlyThatCall) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::File file;
  auto upload = stub_->Upload(&context, &file);
  v1::UploadRequest message;
  message.mutable_header()->set_size_bytes(static_cast<int64_t>(png_.size()));
  message.mutable_header()->set_display_name("a.png");
  upload->Write(message);
  message.set_chunk(png_);  // all of it: the session is opened (and throws) on this message
  upload->Write(message);
  upload->WritesDone();
  ExpectInternalError(upload->Finish());
  ExpectDetectWorks();
}

TEST_P(ExceptionContainmentTest, CaptionStartThrowingOnTheGrpcThreadFailsOnlyThatCall) {
  v1::CaptionRequest request;
  request.add_images()->set_content(png_);
  grpc::ClientContext context;
  SetDeadline(context);
  auto reader = stub_->Caption(&context, request);
  v1::CaptionResponse response;
  EXPECT_FALSE(reader->Read(&response));
  ExpectInternalError(reader->Finish());
  ExpectDetectWorks();
}

}  // namespace
}  // namespace vision_gateway::server
