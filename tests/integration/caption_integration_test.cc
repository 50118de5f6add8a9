// Caption and CountTokens through the whole stack against the emulator.
#include <grpcpp/support/error_details.h>

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "boost/json.hpp"
#include "emulator/gemini_wire.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/testing/test_images.h"

namespace vision_gateway::testing {
namespace {

namespace v1 = ::vision::v1;
namespace json = boost::json;

const Rgb kWhite{255, 255, 255};
const Rgb kRed{220, 20, 20};
const Rgb kBlue{20, 40, 220};

std::string RedSquarePng() { return MakePng(320, 240, kWhite, kRed, 40, 30, 140, 110); }
std::string BlueSquarePng() { return MakePng(200, 100, kWhite, kBlue, 20, 20, 80, 70); }

struct StreamResult {
  std::vector<v1::CaptionResponse> messages;
  grpc::Status status;
  std::string Text() const {
    std::string text;
    for (const auto& m : messages) text += m.text();
    return text;
  }
};

StreamResult RunCaption(v1::VisionService::Stub& stub, const v1::CaptionRequest& request,
                        absl::Duration timeout = absl::Seconds(20)) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  auto reader = stub.Caption(&context, request);
  StreamResult result;
  v1::CaptionResponse response;
  while (reader->Read(&response)) result.messages.push_back(response);
  result.status = reader->Finish();
  return result;
}

v1::CaptionRequest RequestWith(const std::vector<std::string>& images) {
  v1::CaptionRequest request;
  for (const auto& png : images) request.add_images()->set_content(png);
  return request;
}

// The direct, non-streaming answer for the same content, through the Gemini client.
std::string DirectCaption(gemini::GenerateStub& client, const std::vector<std::string>& images,
                          const std::string& prompt) {
  gemini::GenerateContentRequest request;
  gemini::Content content;
  content.role = "user";
  for (const auto& png : images) {
    gemini::Part part;
    part.inline_data = gemini::Blob{.mime_type = "image/png", .data = png};
    content.parts.push_back(part);
  }
  gemini::Part text;
  text.text = prompt;
  content.parts.push_back(text);
  request.contents.push_back(content);
  absl::Notification done;
  std::string answer;
  client.GenerateContent("gemini-3-flash-preview", request, {},
                         [&](absl::StatusOr<gemini::GenerateContentResponse> r) {
                           EXPECT_TRUE(r.ok()) << r.status();
                           if (r.ok()) answer = gemini::AnswerText(*r);
                           done.Notify();
                         });
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  return answer;
}

google::rpc::Status Details(const grpc::Status& status) {
  google::rpc::Status details;
  EXPECT_TRUE(grpc::ExtractErrorDetails(status, &details).ok());
  return details;
}

TEST_F(GatewayTest, CaptionStreamsThePiecesOfTheEmulatorsCaption) {
  // Events 20 ms apart: each reaches the client as its own message (pieces that arrive while a
  // write is still in flight may be merged, which keeps the text but not the count).
  emulator::EmulatorConfig config = emulator_->config();
  config.stream_event_delay = std::chrono::milliseconds(20);
  emulator_->SetConfig(config);
  const std::string png = RedSquarePng();
  StreamResult result = RunCaption(*stub_, RequestWith({png}));
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  ASSERT_GE(result.messages.size(), 3u) << "the caption should arrive in several pieces";

  const std::string text = result.Text();
  EXPECT_EQ(text, DirectCaption(*gemini_.generate, {png}, "Caption this image."));
  EXPECT_TRUE(absl::StrContains(text, "320x240")) << text;
  EXPECT_TRUE(absl::StrContains(text, "red")) << text;

  for (size_t i = 0; i + 1 < result.messages.size(); ++i) {
    EXPECT_TRUE(result.messages[i].finish_reason().empty()) << i;
    EXPECT_FALSE(result.messages[i].has_usage()) << i;
  }
  const v1::CaptionResponse& last = result.messages.back();
  EXPECT_EQ(last.finish_reason(), "STOP");
  EXPECT_FALSE(last.model_version().empty());
  EXPECT_GT(last.usage().prompt_tokens(), 258);
  EXPECT_GT(last.usage().output_tokens(), 0);
  EXPECT_EQ(last.usage().total_tokens(),
            last.usage().prompt_tokens() + last.usage().output_tokens() +
                last.usage().thinking_tokens());
}

TEST_F(GatewayTest, MultiImageCaptionDescribesEachImageInOrder) {
  StreamResult result = RunCaption(*stub_, RequestWith({RedSquarePng(), BlueSquarePng()}));
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  const std::string text = result.Text();
  const size_t red = text.find("red");
  const size_t blue = text.find("blue");
  ASSERT_NE(red, std::string::npos) << text;
  ASSERT_NE(blue, std::string::npos) << text;
  EXPECT_LT(red, blue) << text;
  EXPECT_TRUE(absl::StrContains(text, "200x100")) << text;
}

TEST_F(GatewayTest, PromptOptionsAndKeyReachTheUpstreamRequest) {
  const std::string png = RedSquarePng();
  v1::CaptionRequest request = RequestWith({png});
  request.set_prompt("Describe the colours.");
  request.mutable_options()->set_model("gemini-3.1-pro-preview");
  request.mutable_options()->set_temperature(0.25f);
  request.mutable_options()->set_max_output_tokens(500);
  request.mutable_options()->set_thinking_budget(0);
  request.mutable_options()->set_media_resolution(v1::MEDIA_RESOLUTION_LOW);
  StreamResult result = RunCaption(*stub_, request);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();

  auto requests = emulator_->Requests();
  ASSERT_EQ(requests.size(), 1u);
  const auto& upstream = requests[0];
  EXPECT_EQ(upstream.method, "POST");
  EXPECT_EQ(upstream.target, "/v1beta/models/gemini-3.1-pro-preview:streamGenerateContent?alt=sse");
  EXPECT_EQ(upstream.Header("x-goog-api-key"), kEmulatorKey);
  ASSERT_FALSE(upstream.body_truncated);

  json::object body = json::parse(upstream.body).as_object();
  const json::array& parts = body.at("contents").at(0).at("parts").as_array();
  ASSERT_EQ(parts.size(), 2u);
  const json::object& inline_data = parts[0].at("inlineData").as_object();
  EXPECT_EQ(inline_data.at("mimeType").as_string(), "image/png");
  std::string decoded;
  ASSERT_TRUE(absl::Base64Unescape(std::string(inline_data.at("data").as_string()), &decoded));
  EXPECT_EQ(decoded, png);
  EXPECT_EQ(parts[1].at("text").as_string(), "Describe the colours.");
  const json::object& config = body.at("generationConfig").as_object();
  EXPECT_NEAR(config.at("temperature").to_number<double>(), 0.25, 1e-6);
  EXPECT_EQ(config.at("maxOutputTokens").to_number<int64_t>(), 500);
  // Fitted to Gemini 3.1 Pro (README "Models"): the resolution goes on the image part, and
  // budget 0 becomes the lowest level it takes (it cannot stop thinking).
  EXPECT_FALSE(config.contains("mediaResolution"));
  EXPECT_EQ(parts[0].at("mediaResolution").at("level").as_string(), "MEDIA_RESOLUTION_LOW");
  EXPECT_EQ(config.at("thinkingConfig").at("thinkingLevel").as_string(), "LOW");
  EXPECT_FALSE(config.at("thinkingConfig").as_object().contains("thinkingBudget"));
}

TEST_F(GatewayTest, QuotaErrorKeepsCodeAndRetryInfo) {
  emulator_->Enqueue(emulator::ScriptedError(
      429, "You exceeded your current quota. Please retry in 15.2s.",
      emulator::QuotaRetryDetails("15s", "gemini-3-flash-preview")));
  StreamResult result = RunCaption(*stub_, RequestWith({RedSquarePng()}));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(absl::StrContains(result.status.error_message(), "quota"))
      << result.status.error_message();
  google::rpc::Status details = Details(result.status);
  bool has_retry = false;
  for (const auto& any : details.details()) {
    google::rpc::RetryInfo retry;
    if (any.UnpackTo(&retry)) {
      has_retry = true;
      EXPECT_EQ(retry.retry_delay().seconds(), 15);
    }
  }
  EXPECT_TRUE(has_retry);
}

TEST_F(GatewayTest, ModelNotFoundIsNotFound) {
  v1::CaptionRequest request = RequestWith({RedSquarePng()});
  request.mutable_options()->set_model("does-not-exist");
  StreamResult result = RunCaption(*stub_, request);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::NOT_FOUND)
      << result.status.error_message();
}

TEST_F(GatewayTest, MidStreamErrorObjectEndsTheStreamWithItsCode) {
  emulator::ResponseChunk chunk;
  chunk.text = "A picture ";
  chunk.prompt_tokens = 300;
  chunk.candidates_tokens = 2;
  const std::string first = emulator::MakeSseEvent(
      emulator::MakeResponseJson(chunk, "gemini-3-flash-preview", "resp-1", true));
  emulator::ScriptedResponse script;
  script.stream_writes = {first, emulator::MakeErrorBody(503, "UNAVAILABLE",
                                                         "The model is overloaded.")};
  emulator_->Enqueue(script);
  StreamResult result = RunCaption(*stub_, RequestWith({RedSquarePng()}));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << result.status.error_message();
  EXPECT_TRUE(absl::StrContains(result.status.error_message(), "overloaded"));
  ASSERT_EQ(result.messages.size(), 1u);
  EXPECT_EQ(result.messages[0].text(), "A picture ");
}

TEST_F(GatewayTest, TruncatedStreamIsUnavailable) {
  emulator::ScriptedResponse script = emulator::ScriptedStream({"A ", "picture "}, "");
  script.drop_connection_after_writes = true;
  emulator_->Enqueue(script);
  StreamResult result = RunCaption(*stub_, RequestWith({RedSquarePng()}));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << result.status.error_message();
  EXPECT_EQ(result.Text(), "A picture ");
}

TEST_F(GatewayTest, ClientCancelClosesTheUpstreamRequest) {
  std::vector<std::string> deltas(50, "word ");
  emulator::ScriptedResponse script = emulator::ScriptedStream(deltas);
  script.delay_between_writes = std::chrono::milliseconds(100);
  emulator_->Enqueue(script);

  grpc::ClientContext context;
  auto reader = stub_->Caption(&context, RequestWith({RedSquarePng()}));
  v1::CaptionResponse response;
  ASSERT_TRUE(reader->Read(&response));
  ASSERT_EQ(emulator_->OpenConnections(), 1);
  context.TryCancel();
  while (reader->Read(&response)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // Well before the remaining ~5 s of scripted stream: the gateway closed its upstream request.
  EXPECT_TRUE(emulator_->WaitForOpenConnections(0, absl::Seconds(2)).ok());
}

TEST_F(GatewayTest, CallerDeadlineBoundsTheWaitForUpstreamHeaders) {
  emulator::ScriptedResponse script = emulator::ScriptedStream({"late"});
  script.delay_before_headers = std::chrono::milliseconds(6000);
  emulator_->Enqueue(script);
  StreamResult result = RunCaption(*stub_, RequestWith({RedSquarePng()}), absl::Milliseconds(400));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The client's own deadline says DEADLINE_EXCEEDED whatever the gateway does: the proof is on
  // the server's side.
  ExpectDeadlineEndedUpstreamWork(absl::Seconds(6));
}

TEST_F(GatewayTest, CallerDeadlineEndsASlowStreamAndClosesUpstream) {
  std::vector<std::string> deltas(50, "slow ");
  emulator::ScriptedResponse script = emulator::ScriptedStream(deltas);
  script.delay_between_writes = std::chrono::milliseconds(100);
  emulator_->Enqueue(script);
  StreamResult result = RunCaption(*stub_, RequestWith({RedSquarePng()}), absl::Milliseconds(500));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_GE(result.messages.size(), 1u);  // what arrived before the deadline was delivered
  EXPECT_LT(result.messages.size(), 50u);
  // The emulator notices at its next write (100 ms), long before its 5 s script ends.
  ExpectDeadlineEndedUpstreamWork(absl::Seconds(5));
}

TEST_F(GatewayTest, CountTokensMatchesTheEmulatorAndEstimatesImages) {
  v1::CountTokensRequest request;
  request.add_images()->set_content(MakePng(960, 540, kWhite, kRed, 10, 10, 100, 100));
  request.set_prompt("Caption this image.");
  grpc::ClientContext context;
  v1::CountTokensResponse response;
  grpc::Status status = stub_->CountTokens(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.estimated_image_tokens(), 1548);
  // The emulator counts the image with the same tile rule plus a few tokens of text.
  EXPECT_GT(response.total_tokens(), 1548);
  EXPECT_LT(response.total_tokens(), 1548 + 20);
  auto requests = emulator_->Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_TRUE(absl::EndsWith(requests[0].target, ":countTokens")) << requests[0].target;
}

TEST_F(GatewayTest, ImagesBeyondGrpcDefaultLimitAreAccepted) {
  // ~5.8 MB of noise PNG: over gRPC's 4 MiB default receive limit, under the server's 64 MiB.
  const std::string big = *Encode(NoisePixels(1600, 1200, 3), ".png");
  ASSERT_GT(big.size(), 4u << 20);
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(64 << 20);
  auto stub = v1::VisionService::NewStub(grpc::CreateCustomChannel(
      "127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials(), args));
  StreamResult result = RunCaption(*stub, RequestWith({big}));
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_TRUE(absl::StrContains(result.Text(), "1600x1200")) << result.Text();
  // The bytes arrived upstream intact (base64 of ~5.8 MB; the emulator records up to 1 MiB).
  auto requests = emulator_->Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_GT(requests[0].body_size, big.size() * 4 / 3);
}

class SmallLimitGatewayTest : public GatewayTest {
 protected:
  void SetUp() override { StartStack(kEmulatorKey, /*max_receive_message_bytes=*/1 << 20); }
};

TEST_F(SmallLimitGatewayTest, RequestsOverTheConfiguredLimitAreRefused) {
  const std::string big = *Encode(NoisePixels(800, 600, 3), ".png");
  ASSERT_GT(big.size(), 1u << 20);
  StreamResult result = RunCaption(*stub_, RequestWith({big}));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(emulator_->Requests().empty());
}

class WrongKeyGatewayTest : public GatewayTest {
 protected:
  void SetUp() override { StartStack("wrong-key-7c1d"); }
};

TEST_F(WrongKeyGatewayTest, RejectedGatewayKeyIsInternalAndNeverEchoed) {
  StreamResult result = RunCaption(*stub_, RequestWith({RedSquarePng()}));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_FALSE(absl::StrContains(result.status.error_message(), "wrong-key-7c1d"));
  EXPECT_FALSE(absl::StrContains(result.status.error_details(), "wrong-key-7c1d"));
  google::rpc::Status details = Details(result.status);
  ASSERT_EQ(details.details_size(), 1);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(details.details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "UPSTREAM_AUTH_FAILED");
}

}  // namespace
}  // namespace vision_gateway::testing
