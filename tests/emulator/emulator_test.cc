// Wire-level tests of the Gemini emulator: a real server on a loopback port, driven by a raw
// socket client (tests/emulator/test_http.h), so framing is checked byte for byte.
#include "emulator/emulator.h"

#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <vips/vips8>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "emulator/gemini_wire.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/emulator/test_http.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::emulator {
namespace {

namespace json = boost::json;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;
using ::vision_gateway::emulator::testing::FormatRequest;
using ::vision_gateway::emulator::testing::GenerateBody;
using ::vision_gateway::emulator::testing::HttpResult;
using ::vision_gateway::emulator::testing::IoU;
using ::vision_gateway::emulator::testing::MakePlainPng;
using ::vision_gateway::emulator::testing::MakeShapesImage;
using ::vision_gateway::emulator::testing::SendHttp;
using ::vision_gateway::emulator::testing::TestConnection;
using ::vision_gateway::emulator::testing::TestImage;
using ::vision_gateway::testing::IsOk;

constexpr char kKey[] = "test-key-123";
constexpr char kGenerate[] = "/v1beta/models/gemini-3-flash-preview:generateContent";
constexpr char kStream[] = "/v1beta/models/gemini-3-flash-preview:streamGenerateContent?alt=sse";
constexpr char kCount[] = "/v1beta/models/gemini-3-flash-preview:countTokens";

json::value Parse(std::string_view text) {
  json::error_code ec;
  json::value value = json::parse(json::string_view(text.data(), text.size()), ec);
  EXPECT_FALSE(ec) << "not JSON: " << text.substr(0, 300);
  return value;
}

std::string Str(const json::value& value) {
  return value.is_string() ? std::string(value.get_string()) : "";
}

const json::object& Candidate(const json::value& response) {
  return response.at("candidates").at(0).as_object();
}

std::string CandidateText(const json::value& response) {
  std::string text;
  for (const auto& part : Candidate(response).at("content").at("parts").as_array()) {
    text += Str(part.at("text"));
  }
  return text;
}

// Splits an SSE body into its JSON payloads, checking the exact framing on the way.
std::vector<std::string> SsePayloads(const std::string& body) {
  std::vector<std::string> payloads;
  size_t at = 0;
  while (at < body.size()) {
    const size_t end = body.find("\r\n\r\n", at);
    EXPECT_NE(end, std::string::npos) << "unterminated event at " << at;
    if (end == std::string::npos) break;
    const std::string event = body.substr(at, end - at);
    EXPECT_THAT(event, StartsWith("data: "));
    EXPECT_EQ(event.find('\n'), std::string::npos) << "payload must be one line";
    payloads.push_back(event.substr(6));
    at = end + 4;
  }
  return payloads;
}

struct Box {
  int ymin, xmin, ymax, xmax;
};

Box TruthBox(const std::vector<uint8_t>& mask, int width, int height) {
  int x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      if (!mask[static_cast<size_t>(y) * width + x]) continue;
      x0 = std::min(x0, x);
      y0 = std::min(y0, y);
      x1 = std::max(x1, x);
      y1 = std::max(y1, y);
    }
  }
  return Box{y0 * 1000 / height, x0 * 1000 / width, ((y1 + 1) * 1000 + height - 1) / height,
             ((x1 + 1) * 1000 + width - 1) / width};
}

Box BoxOfItem(const json::value& item) {
  const auto& box = item.at("box_2d").as_array();
  return Box{static_cast<int>(box.at(0).to_number<double>()),
             static_cast<int>(box.at(1).to_number<double>()),
             static_cast<int>(box.at(2).to_number<double>()),
             static_cast<int>(box.at(3).to_number<double>())};
}

void ExpectBoxNear(const Box& actual, const Box& truth) {
  EXPECT_NEAR(actual.ymin, truth.ymin, 1);
  EXPECT_NEAR(actual.xmin, truth.xmin, 1);
  EXPECT_NEAR(actual.ymax, truth.ymax, 1);
  EXPECT_NEAR(actual.xmax, truth.xmax, 1);
}

class EmulatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EmulatorOptions options;
    options.api_key = kKey;
    absl::StatusOr<std::unique_ptr<Emulator>> started = Emulator::Start(options);
    ASSERT_THAT(started, IsOk());
    emulator_ = *std::move(started);
    image_ = MakeShapesImage();
    ASSERT_FALSE(image_.png.empty());
  }

  absl::StatusOr<HttpResult> Post(std::string_view target, std::string_view body,
                                  HeaderList extra = {}) {
    HeaderList headers = {{"x-goog-api-key", kKey}, {"Content-Type", "application/json"}};
    for (auto& header : extra) headers.push_back(std::move(header));
    return SendHttp(emulator_->port(), "POST", target, headers, body);
  }

  // POSTs and returns the parsed JSON of a 200 answer.
  json::value PostOk(std::string_view target, std::string_view body) {
    absl::StatusOr<HttpResult> result = Post(target, body);
    EXPECT_THAT(result, IsOk());
    if (!result.ok()) return json::value();
    EXPECT_EQ(result->status, 200) << result->body;
    return Parse(result->body);
  }

  std::unique_ptr<Emulator> emulator_;
  TestImage image_;
};

TEST_F(EmulatorTest, BaseUrlNamesTheBoundPort) {
  EXPECT_GT(emulator_->port(), 0);
  EXPECT_EQ(emulator_->base_url(), absl::StrCat("http://127.0.0.1:", emulator_->port()));
}

TEST_F(EmulatorTest, CaptionNamesImageSizeAndShapeColours) {
  absl::StatusOr<HttpResult> result =
      Post(kGenerate, GenerateBody(image_.png, "Describe the \"zebra\" in this image."));
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->Header("Content-Type"), "application/json; charset=UTF-8");
  EXPECT_TRUE(result->complete);
  EXPECT_THAT(result->body, StartsWith("{\n  \"candidates\": [\n    {\n"));  // pretty, 2 spaces
  const json::value response = Parse(result->body);
  const std::string text = CandidateText(response);
  EXPECT_EQ(text, "A 320x240 image showing a red shape and a blue shape on a light background.");
  EXPECT_THAT(text, Not(HasSubstr("zebra")));
  EXPECT_EQ(Str(Candidate(response).at("finishReason")), "STOP");
  EXPECT_EQ(Str(Candidate(response).at("content").at("role")), "model");
  EXPECT_EQ(Str(response.at("modelVersion")), "gemini-3-flash-preview");
  EXPECT_FALSE(Str(response.at("responseId")).empty());
}

TEST_F(EmulatorTest, SseFramingIsCrlfWithFinishReasonOnlyOnTheLastEvent) {
  const std::string body = GenerateBody(image_.png, "Describe this image.");
  const std::string unary_text = CandidateText(PostOk(kGenerate, body));
  absl::StatusOr<HttpResult> result = Post(kStream, body);
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->Header("Content-Type"), "text/event-stream");
  EXPECT_TRUE(result->chunked);
  EXPECT_TRUE(result->complete);
  // One event per chunk, each flushed on its own.
  for (const std::string& chunk : result->chunks) {
    EXPECT_THAT(chunk, StartsWith("data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": "));
    EXPECT_TRUE(absl::EndsWith(chunk, "}\r\n\r\n")) << chunk;
  }
  const std::vector<std::string> payloads = SsePayloads(result->body);
  ASSERT_GE(payloads.size(), 3u);
  EXPECT_EQ(payloads.size(), result->chunks.size());

  std::string joined;
  std::string response_id;
  int64_t last_candidates = -1;
  int64_t prompt_tokens = -1;
  for (size_t i = 0; i < payloads.size(); ++i) {
    const json::value event = Parse(payloads[i]);
    const json::object& candidate = Candidate(event);
    EXPECT_EQ(candidate.at("index").as_int64(), 0);
    const bool last = i + 1 == payloads.size();
    EXPECT_EQ(candidate.contains("finishReason"), last) << "event " << i;
    if (last) {
      EXPECT_EQ(Str(candidate.at("finishReason")), "STOP");
    }
    joined += CandidateText(event);
    const json::object& usage = event.at("usageMetadata").as_object();
    const int64_t candidates = usage.at("candidatesTokenCount").as_int64();
    EXPECT_GT(candidates, last_candidates) << "usage must be cumulative";
    last_candidates = candidates;
    if (prompt_tokens < 0) prompt_tokens = usage.at("promptTokenCount").as_int64();
    EXPECT_EQ(usage.at("promptTokenCount").as_int64(), prompt_tokens);
    EXPECT_EQ(usage.at("totalTokenCount").as_int64(), prompt_tokens + candidates);
    EXPECT_EQ(Str(event.at("modelVersion")), "gemini-3-flash-preview");
    if (response_id.empty()) response_id = Str(event.at("responseId"));
    EXPECT_EQ(Str(event.at("responseId")), response_id);
  }
  EXPECT_EQ(joined, unary_text);
  EXPECT_EQ(last_candidates, WordTokens(unary_text));
  // Compact Google style: ": " after keys, "," between members.
  EXPECT_THAT(payloads.front(), HasSubstr("\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {"));
}

TEST_F(EmulatorTest, StreamWithoutAltSseIsAJsonArray) {
  absl::StatusOr<HttpResult> result =
      Post("/v1beta/models/gemini-3-flash-preview:streamGenerateContent",
           GenerateBody(image_.png, "Describe this image."));
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->status, 200);
  EXPECT_THAT(result->Header("Content-Type"), StartsWith("application/json"));
  EXPECT_THAT(result->body, StartsWith("[{\n"));
  EXPECT_THAT(result->body, HasSubstr("\n,\r\n{"));
  const json::value array = Parse(result->body);
  ASSERT_TRUE(array.is_array());
  EXPECT_GE(array.as_array().size(), 3u);
}

TEST_F(EmulatorTest, ServesV1AsWellAsV1beta) {
  const json::value response = PostOk("/v1/models/gemini-3-flash-preview:generateContent",
                                      GenerateBody(image_.png, "Describe this image."));
  EXPECT_THAT(CandidateText(response), HasSubstr("320x240"));
  absl::StatusOr<HttpResult> stream = Post(
      "/v1/models/gemini-3-flash-preview:streamGenerateContent?alt=sse", GenerateBody(image_.png, "Hi"));
  ASSERT_THAT(stream, IsOk());
  EXPECT_EQ(stream->status, 200);
  EXPECT_FALSE(SsePayloads(stream->body).empty());
}

TEST_F(EmulatorTest, BadOrMissingKeyGets400ApiKeyInvalidEnvelope) {
  const std::string body = GenerateBody(image_.png, "Describe this image.");
  const std::string expected =
      "{\n"
      "  \"error\": {\n"
      "    \"code\": 400,\n"
      "    \"message\": \"API key not valid. Please pass a valid API key.\",\n"
      "    \"status\": \"INVALID_ARGUMENT\",\n"
      "    \"details\": [\n"
      "      {\n"
      "        \"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\",\n"
      "        \"reason\": \"API_KEY_INVALID\",\n"
      "        \"domain\": \"googleapis.com\",\n"
      "        \"metadata\": {\n"
      "          \"service\": \"generativelanguage.googleapis.com\"\n"
      "        }\n"
      "      }\n"
      "    ]\n"
      "  }\n"
      "}";
  absl::StatusOr<HttpResult> wrong = SendHttp(
      emulator_->port(), "POST", kGenerate, {{"x-goog-api-key", "not-the-key"}}, body);
  ASSERT_THAT(wrong, IsOk());
  EXPECT_EQ(wrong->status, 400);
  EXPECT_EQ(wrong->body, expected);
  EXPECT_THAT(wrong->body, Not(HasSubstr("not-the-key")));

  absl::StatusOr<HttpResult> missing = SendHttp(emulator_->port(), "POST", kStream, {}, body);
  ASSERT_THAT(missing, IsOk());
  EXPECT_EQ(missing->status, 400);
  EXPECT_EQ(missing->body, expected);

  absl::StatusOr<HttpResult> query_key = SendHttp(
      emulator_->port(), "POST", absl::StrCat(kGenerate, "?key=", kKey), {}, body);
  ASSERT_THAT(query_key, IsOk());
  EXPECT_EQ(query_key->status, 200);
}

TEST_F(EmulatorTest, CountTokensUsesTheTileRule) {
  const std::string png = MakePlainPng(960, 540);
  const std::string text = "Describe this image.";  // 20 bytes: 5 tokens
  const std::string contents = absl::StrCat(
      R"([{"parts": [{"inlineData": {"mimeType": "image/png", "data": ")",
      absl::Base64Escape(png), R"("}}, {"text": ")", text, R"("}]}])");
  const json::value counted = PostOk(kCount, absl::StrCat(R"({"contents": )", contents, "}"));
  EXPECT_EQ(counted.at("totalTokens").as_int64(), 1548 + 5);
  EXPECT_EQ(json::serialize(counted.at("promptTokensDetails")),
            R"([{"modality":"TEXT","tokenCount":5},{"modality":"IMAGE","tokenCount":1548}])");

  const json::value wrapped = PostOk(
      kCount, absl::StrCat(R"({"generateContentRequest": {"model": "models/gemini-3-flash-preview", )"
                           R"("contents": )", contents, "}}"));
  EXPECT_EQ(wrapped.at("totalTokens").as_int64(), 1553);

  // generateContent reports the same prompt count.
  const json::value generated = PostOk(kGenerate, absl::StrCat(R"({"contents": )", contents, "}"));
  EXPECT_EQ(generated.at("usageMetadata").at("promptTokenCount").as_int64(), 1553);

  const json::value small = PostOk(kCount, GenerateBody(MakePlainPng(384, 300), "abcd"));
  EXPECT_EQ(small.at("totalTokens").as_int64(), 258 + 1);
  // 385x100: crop 66 → 6x2 tiles.
  const json::value wide = PostOk(kCount, GenerateBody(MakePlainPng(385, 100), "abcd"));
  EXPECT_EQ(wide.at("totalTokens").as_int64(), 12 * 258 + 1);
}

TEST_F(EmulatorTest, ScriptModeServesQueuedResponsesVerbatimThenSceneMode) {
  const std::string details = QuotaRetryDetails("15s", "gemini-3-flash-preview");
  emulator_->Enqueue(ScriptedError(429, "You exceeded your current quota.", details));
  EXPECT_EQ(emulator_->PendingScripted(), 1u);
  const std::string body = GenerateBody(image_.png, "Describe this image.");

  absl::StatusOr<HttpResult> limited = Post(kGenerate, body);
  ASSERT_THAT(limited, IsOk());
  EXPECT_EQ(limited->status, 429);
  EXPECT_EQ(limited->body,
            MakeErrorBody(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", details));
  const json::value error = Parse(limited->body);
  EXPECT_EQ(Str(error.at("error").at("details").at(2).at("retryDelay")), "15s");
  EXPECT_EQ(emulator_->PendingScripted(), 0u);

  absl::StatusOr<HttpResult> normal = Post(kGenerate, body);
  ASSERT_THAT(normal, IsOk());
  EXPECT_EQ(normal->status, 200);

  const std::vector<RecordedRequest> requests = emulator_->Requests();
  ASSERT_THAT(requests, SizeIs(2));
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, kGenerate);
  EXPECT_EQ(requests[0].body, body);
  EXPECT_EQ(requests[0].Header("X-GOOG-API-KEY"), kKey);
}

TEST_F(EmulatorTest, ScriptedStreamPiecesAreWrittenAsGivenIncludingBareErrorAndDrop) {
  ScriptedResponse scripted = ScriptedStream({"Hello there", " world"}, "");
  const std::string event = scripted.stream_writes[0];
  // Split the first event at arbitrary bytes; follow with a bare error object.
  scripted.stream_writes = {event.substr(0, 3), event.substr(3, 17), event.substr(20),
                            scripted.stream_writes[1],
                            "{\n  \"error\": {\n    \"code\": 500,\n    \"message\": \"boom\"\n  }\n}\n"};
  const std::vector<std::string> pieces = scripted.stream_writes;
  emulator_->Enqueue(scripted);
  absl::StatusOr<HttpResult> result = Post(kStream, GenerateBody(image_.png, "Hi"));
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->status, 200);
  EXPECT_TRUE(result->complete);
  EXPECT_EQ(result->chunks, pieces);

  ScriptedResponse dropped = ScriptedStream({"Hello", " there", " world"});
  dropped.stream_writes.pop_back();  // no finishReason event
  dropped.drop_connection_after_writes = true;
  const std::vector<std::string> sent = dropped.stream_writes;
  emulator_->Enqueue(dropped);
  absl::StatusOr<HttpResult> truncated = Post(kStream, GenerateBody(image_.png, "Hi"));
  ASSERT_THAT(truncated, IsOk());
  EXPECT_EQ(truncated->status, 200);
  EXPECT_FALSE(truncated->complete) << "no terminating chunk after a drop";
  EXPECT_EQ(truncated->chunks, sent);
  EXPECT_THAT(truncated->body, Not(HasSubstr("finishReason")));
}

TEST_F(EmulatorTest, ScriptedDropWithoutWritesClosesBeforeAnyByte) {
  ScriptedResponse scripted;
  scripted.drop_connection_after_writes = true;
  emulator_->Enqueue(scripted);
  absl::StatusOr<HttpResult> result = Post(kGenerate, GenerateBody(image_.png, "Hi"));
  EXPECT_FALSE(result.ok());
}

TEST_F(EmulatorTest, ScriptedDelayHoldsTheHeaders) {
  ScriptedResponse scripted = ScriptedText("late");
  scripted.delay_before_headers = std::chrono::milliseconds(150);
  emulator_->Enqueue(scripted);
  const absl::Time start = absl::Now();
  absl::StatusOr<HttpResult> result = Post(kGenerate, GenerateBody(image_.png, "Hi"));
  ASSERT_THAT(result, IsOk());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));
  EXPECT_EQ(CandidateText(Parse(result->body)), "late");
}

TEST_F(EmulatorTest, ClientThatLeavesDuringADelayClosesItsConnection) {
  ScriptedResponse scripted = ScriptedText("never sent");
  scripted.delay_before_headers = std::chrono::seconds(60);
  emulator_->Enqueue(scripted);
  absl::StatusOr<TestConnection> connection = TestConnection::Connect(emulator_->port());
  ASSERT_THAT(connection, IsOk());
  ASSERT_THAT(connection->Send(FormatRequest("POST", kGenerate, {{"x-goog-api-key", kKey}},
                                             GenerateBody(image_.png, "Hi"), true)),
              IsOk());
  ASSERT_THAT(emulator_->WaitForRequests(1, absl::Seconds(10)), IsOk());
  EXPECT_EQ(emulator_->OpenConnections(), 1);
  connection->Close();
  EXPECT_THAT(emulator_->WaitForOpenConnections(0, absl::Seconds(10)), IsOk());
}

TEST_F(EmulatorTest, ClientThatLeavesMidStreamClosesItsConnection) {
  ScriptedResponse scripted = ScriptedStream({"one", " two", " three"});
  scripted.delay_between_writes = std::chrono::seconds(60);
  emulator_->Enqueue(scripted);
  absl::StatusOr<TestConnection> connection = TestConnection::Connect(emulator_->port());
  ASSERT_THAT(connection, IsOk());
  ASSERT_THAT(connection->Send(FormatRequest("POST", kStream, {{"x-goog-api-key", kKey}},
                                             GenerateBody(image_.png, "Hi"), true)),
              IsOk());
  absl::StatusOr<std::string> received = connection->ReadUntil("data: ");  // the first event
  ASSERT_THAT(received, IsOk());
  EXPECT_THAT(*received, HasSubstr("text/event-stream"));
  EXPECT_EQ(emulator_->OpenConnections(), 1);
  connection->Close();
  EXPECT_THAT(emulator_->WaitForOpenConnections(0, absl::Seconds(10)), IsOk());
}

TEST_F(EmulatorTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  absl::StatusOr<TestConnection> connection = TestConnection::Connect(emulator_->port());
  ASSERT_THAT(connection, IsOk());
  const std::string body = GenerateBody(image_.png, "Describe this image.");
  for (const char* target : {kGenerate, kStream, kCount}) {
    ASSERT_THAT(connection->Send(FormatRequest("POST", target, {{"x-goog-api-key", kKey}}, body,
                                               /*keep_alive=*/true)),
                IsOk());
    absl::StatusOr<HttpResult> result = connection->ReadResponse();
    ASSERT_THAT(result, IsOk());
    EXPECT_EQ(result->status, 200) << target;
    EXPECT_TRUE(result->complete);
  }
  EXPECT_EQ(emulator_->TotalConnections(), 1);
}

TEST_F(EmulatorTest, MaxOutputTokensStopsEarlyWithMaxTokens) {
  const std::string body = GenerateBody(image_.png, "Describe this image.",
                                        R"("generationConfig": {"maxOutputTokens": 4})");
  const json::value response = PostOk(kGenerate, body);
  EXPECT_EQ(CandidateText(response), "A 320x240 image showing");
  EXPECT_EQ(Str(Candidate(response).at("finishReason")), "MAX_TOKENS");
  EXPECT_EQ(response.at("usageMetadata").at("candidatesTokenCount").as_int64(), 4);

  absl::StatusOr<HttpResult> stream = Post(kStream, body);
  ASSERT_THAT(stream, IsOk());
  const std::vector<std::string> payloads = SsePayloads(stream->body);
  ASSERT_FALSE(payloads.empty());
  EXPECT_EQ(Str(Candidate(Parse(payloads.back())).at("finishReason")), "MAX_TOKENS");
}

TEST_F(EmulatorTest, AcceptsSnakeCaseRequestKeys) {
  const std::string body = absl::StrCat(
      R"({"contents": [{"role": "user", "parts": [{"inline_data": {"mime_type": "image/png", "data": ")",
      absl::Base64Escape(image_.png),
      R"("}}, {"text": "Describe."}]}], "generation_config": {"max_output_tokens": 2}})");
  const json::value response = PostOk(kGenerate, body);
  EXPECT_EQ(CandidateText(response), "A 320x240");
}

TEST_F(EmulatorTest, RejectsMalformedRequestsWithInvalidArgument) {
  struct Case {
    std::string body;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"{\"contents\": [", "Invalid JSON payload received."},
      {"{}", "contents is not specified"},
      {R"({"contents": []})", "contents is not specified"},
      {R"({"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokenz": 3}})",
       "Unknown name \"maxOutputTokenz\" at 'generation_config': Cannot find field."},
      {R"({"contents": [{"parts": [{"text": "hi"}]}], "bogus": 1})",
       "Unknown name \"bogus\": Cannot find field."},
      {R"({"contents": [{"role": "robot", "parts": [{"text": "hi"}]}]})", "valid role"},
      {R"({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "bm90IGFuIGltYWdl"}}]}]})",
       "Unable to process input image."},
      {R"({"contents": [{"parts": [{"inlineData": {"mimeType": "image/gif", "data": "R0lG"}}]}]})",
       "Unsupported MIME type: image/gif"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<HttpResult> result = Post(kGenerate, c.body);
    ASSERT_THAT(result, IsOk());
    EXPECT_EQ(result->status, 400) << c.body;
    const json::value error = Parse(result->body);
    EXPECT_EQ(Str(error.at("error").at("status")), "INVALID_ARGUMENT") << c.body;
    EXPECT_THAT(Str(error.at("error").at("message")), HasSubstr(c.message_part)) << c.body;
  }
}

TEST_F(EmulatorTest, UnknownModelIsNotFound) {
  absl::StatusOr<HttpResult> result =
      Post("/v1beta/models/does-not-exist:generateContent", GenerateBody(image_.png, "Hi"));
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->status, 404);
  const json::value error = Parse(result->body);
  EXPECT_EQ(Str(error.at("error").at("status")), "NOT_FOUND");
  EXPECT_THAT(Str(error.at("error").at("message")),
              StartsWith("models/does-not-exist is not found for API version v1beta"));
  // Any model the list does not hold is refused, as Gemini refuses it: on every method.
  for (const char* method : {"generateContent", "streamGenerateContent?alt=sse", "countTokens"}) {
    absl::StatusOr<HttpResult> unknown = Post(absl::StrCat("/v1beta/models/gemini-9-ultra:", method),
                                              GenerateBody(image_.png, "Hi"));
    ASSERT_THAT(unknown, IsOk());
    EXPECT_EQ(unknown->status, 404) << method;
  }
}

// Retired ids answer exactly as an unknown id, with Gemini's envelope and wording.
TEST_F(EmulatorTest, RetiredModelAnswersLikeGemini) {
  absl::StatusOr<HttpResult> result =
      Post("/v1beta/models/gemini-2.5-flash:generateContent", GenerateBody(image_.png, "Hi"));
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->status, 404);
  EXPECT_EQ(result->body,
            "{\n  \"error\": {\n    \"code\": 404,\n    \"message\": \"models/gemini-2.5-flash is "
            "not found for API version v1beta, or is not supported for generateContent. Call "
            "ListModels to see the list of available models and their supported methods.\",\n    "
            "\"status\": \"NOT_FOUND\"\n  }\n}");
  // A scripted answer waits for a listed model.
  emulator_->Enqueue(ScriptedText("scripted"));
  ASSERT_THAT(Post("/v1beta/models/gemini-2.5-pro:generateContent", GenerateBody(image_.png, "")),
              IsOk());
  EXPECT_EQ(emulator_->PendingScripted(), 1u);
}

TEST_F(EmulatorTest, ListsModelsInPages) {
  absl::StatusOr<HttpResult> first =
      SendHttp(emulator_->port(), "GET", "/v1beta/models?pageSize=2",
               {{"x-goog-api-key", kKey}}, "");
  ASSERT_THAT(first, IsOk());
  ASSERT_EQ(first->status, 200) << first->body;
  const json::value page = Parse(first->body);
  ASSERT_EQ(page.at("models").as_array().size(), 2u);
  const json::value& flash = page.at("models").as_array()[0];
  EXPECT_EQ(Str(flash.at("name")), "models/gemini-3-flash-preview");
  EXPECT_EQ(flash.at("inputTokenLimit").to_number<int>(), 1048576);
  EXPECT_EQ(flash.at("outputTokenLimit").to_number<int>(), 65536);
  EXPECT_TRUE(flash.at("thinking").as_bool());
  EXPECT_EQ(Str(flash.at("supportedGenerationMethods").as_array()[0]), "generateContent");
  std::vector<std::string> names = {Str(flash.at("name"))};
  std::string token = Str(page.at("nextPageToken"));
  for (int pages = 1; !token.empty() && pages < 10; ++pages) {
    absl::StatusOr<HttpResult> next = SendHttp(
        emulator_->port(), "GET", absl::StrCat("/v1/models?pageSize=2&pageToken=", token),
        {{"x-goog-api-key", kKey}}, "");
    ASSERT_THAT(next, IsOk());
    ASSERT_EQ(next->status, 200) << next->body;
    const json::value more = Parse(next->body);
    for (const json::value& model : more.at("models").as_array()) {
      names.push_back(Str(model.at("name")));
    }
    token = more.as_object().contains("nextPageToken") ? Str(more.at("nextPageToken")) : "";
  }
  // Both pages of page one were seen once each; retired ids are not listed.
  names.insert(names.begin() + 1, Str(page.at("models").as_array()[1].at("name")));
  EXPECT_THAT(names, ::testing::ElementsAre("models/gemini-3-flash-preview",
                                            "models/gemini-3.1-pro-preview",
                                            "models/gemini-3.1-flash-lite",
                                            "models/gemini-flash-latest",
                                            "models/gemini-embedding-001"));
  absl::StatusOr<HttpResult> one = SendHttp(emulator_->port(), "GET",
                                            "/v1beta/models/gemini-3.1-pro-preview",
                                            {{"x-goog-api-key", kKey}}, "");
  ASSERT_THAT(one, IsOk());
  EXPECT_EQ(one->status, 200);
  EXPECT_EQ(Str(Parse(one->body).at("displayName")), "Gemini 3.1 Pro Preview");
  absl::StatusOr<HttpResult> retired = SendHttp(emulator_->port(), "GET",
                                                "/v1beta/models/gemini-3-pro-preview",
                                                {{"x-goog-api-key", kKey}}, "");
  ASSERT_THAT(retired, IsOk());
  EXPECT_EQ(retired->status, 404);
  absl::StatusOr<HttpResult> no_key =
      SendHttp(emulator_->port(), "GET", "/v1beta/models", {}, "");
  ASSERT_THAT(no_key, IsOk());
  EXPECT_EQ(no_key->status, 400);
}

std::string ThinkingBody(const std::string& png, absl::string_view thinking) {
  return absl::StrCat(
      R"({"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": ")",
      absl::Base64Escape(png), R"("}}, {"text": "Hi"}]}], "generationConfig": {"thinkingConfig": )",
      thinking, "}}");
}

// Each model refuses the thinking settings it does not take, with a 400.
TEST_F(EmulatorTest, ModelsRefuseThinkingTheyDoNotTake) {
  EmulatorConfig config = emulator_->config();
  config.models.push_back(BudgetModel("gemini-2.5-flash"));
  config.models.push_back(BudgetModel("gemini-2.5-pro", /*pro=*/true));
  config.models.erase(std::remove_if(config.models.begin(), config.models.end(),
                                     [](const EmulatorModel& m) {
                                       return m.retired && absl::StartsWith(m.id, "gemini-2.5");
                                     }),
                      config.models.end());
  emulator_->SetConfig(config);
  auto status_of = [&](absl::string_view model, absl::string_view thinking) {
    absl::StatusOr<HttpResult> result =
        Post(absl::StrCat("/v1beta/models/", model, ":generateContent"),
             ThinkingBody(image_.png, thinking));
    return result.ok() ? result->status : -1;
  };
  const char* both = R"({"thinkingBudget": 0, "thinkingLevel": "LOW"})";
  EXPECT_EQ(status_of("gemini-3-flash-preview", both), 400);
  EXPECT_EQ(status_of("gemini-2.5-flash", both), 400);
  EXPECT_EQ(status_of("gemini-3-flash-preview", R"({"thinkingLevel": "MINIMAL"})"), 200);
  EXPECT_EQ(status_of("gemini-3.1-pro-preview", R"({"thinkingLevel": "MINIMAL"})"), 400);
  EXPECT_EQ(status_of("gemini-3.1-pro-preview", R"({"thinkingLevel": "low"})"), 200);
  EXPECT_EQ(status_of("gemini-flash-latest", R"({"thinkingLevel": "MINIMAL"})"), 400);
  EXPECT_EQ(status_of("gemini-2.5-flash", R"({"thinkingLevel": "LOW"})"), 400);
  EXPECT_EQ(status_of("gemini-2.5-flash", R"({"thinkingBudget": 0})"), 200);
  EXPECT_EQ(status_of("gemini-2.5-pro", R"({"thinkingBudget": 0})"), 400);
  EXPECT_EQ(status_of("gemini-2.5-pro", R"({"thinkingBudget": 128})"), 200);
  EXPECT_EQ(status_of("gemini-2.5-pro", R"({"thinkingBudget": 40000})"), 400);
  // Per-part media resolution: Gemini 3 only.
  const std::string per_part = absl::StrCat(
      R"({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": ")",
      absl::Base64Escape(image_.png),
      R"("}, "mediaResolution": {"level": "MEDIA_RESOLUTION_LOW"}}, {"text": "Hi"}]}]})");
  absl::StatusOr<HttpResult> g3 =
      Post("/v1beta/models/gemini-3-flash-preview:generateContent", per_part);
  ASSERT_THAT(g3, IsOk());
  EXPECT_EQ(g3->status, 200) << g3->body;
  absl::StatusOr<HttpResult> g25 = Post("/v1beta/models/gemini-2.5-flash:countTokens", per_part);
  ASSERT_THAT(g25, IsOk());
  EXPECT_EQ(g25->status, 400) << g25->body;
}

TEST_F(EmulatorTest, CaptionsEveryImageInOrder) {
  const std::string body = absl::StrCat(
      R"({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": ")",
      absl::Base64Escape(image_.png),
      R"("}}, {"inlineData": {"mimeType": "image/png", "data": ")",
      absl::Base64Escape(MakePlainPng(100, 80)), R"("}}, {"text": "Describe both."}]}]})");
  EXPECT_EQ(CandidateText(PostOk(kGenerate, body)),
            "Image 1: A 320x240 image showing a red shape and a blue shape on a light "
            "background. Image 2: A 100x80 image of a plain light background with no distinct "
            "shapes.");
}

TEST_F(EmulatorTest, CaptionFollowsExifOrientation) {
  // The same pixels saved as JPEG with EXIF orientation 6 (rotate 90° clockwise to display).
  vips::VImage image = vips::VImage::new_from_memory(image_.rgb.data(), image_.rgb.size(),
                                                     image_.width, image_.height, 3,
                                                     VIPS_FORMAT_UCHAR)
                           .copy();
  image.set("orientation", 6);
  void* buffer = nullptr;
  size_t size = 0;
  image.write_to_buffer(".jpg", &buffer, &size, vips::VImage::option()->set("Q", 95));
  const std::string jpeg(static_cast<const char*>(buffer), size);
  g_free(buffer);
  const std::string body = absl::StrCat(
      R"({"contents": [{"parts": [{"inlineData": {"mimeType": "image/jpeg", "data": ")",
      absl::Base64Escape(jpeg), R"("}}, {"text": "Describe."}]}]})");
  EXPECT_EQ(CandidateText(PostOk(kGenerate, body)),
            "A 240x320 image showing a red shape and a blue shape on a light background.");
}

TEST_F(EmulatorTest, DetectionBoxesMatchTheTruthWithinOneUnit) {
  const json::value response = PostOk(
      kGenerate, GenerateBody(image_.png,
                              "Detect the prominent items. The box_2d should be [ymin, xmin, "
                              "ymax, xmax] normalized to 0-1000.",
                              R"("generationConfig": {"responseMimeType": "application/json"})"));
  const std::string text = CandidateText(response);
  EXPECT_THAT(text, StartsWith("[\n  {\"box_2d\": ["));
  const json::value items = Parse(text);
  ASSERT_TRUE(items.is_array());
  ASSERT_EQ(items.as_array().size(), 2u) << text;
  EXPECT_EQ(Str(items.at(0).at("label")), "red");
  EXPECT_EQ(Str(items.at(1).at("label")), "blue");
  EXPECT_FALSE(items.at(0).as_object().contains("mask"));
  ExpectBoxNear(BoxOfItem(items.at(0)), Box{250, 125, 750, 438});
  ExpectBoxNear(BoxOfItem(items.at(0)), TruthBox(image_.red_mask, 320, 240));
  ExpectBoxNear(BoxOfItem(items.at(1)), TruthBox(image_.blue_mask, 320, 240));
}

TEST_F(EmulatorTest, ColourWordsInThePromptFilterObjects) {
  const std::string text = CandidateText(
      PostOk(kGenerate, GenerateBody(image_.png, "Detect the blue objects, with box_2d.")));
  const json::value items = Parse(text);
  ASSERT_EQ(items.as_array().size(), 1u);
  EXPECT_EQ(Str(items.at(0).at("label")), "blue");
  EXPECT_EQ(CandidateText(PostOk(kGenerate,
                                 GenerateBody(image_.png, "Detect green things as box_2d."))),
            "[]");
}

TEST_F(EmulatorTest, TaskComesFromSchemaThenUserTextThenSystemInstruction) {
  // The cookbook's detection recipe: boxes asked in prose, masks refused in the instruction.
  const std::string cookbook = GenerateBody(
      image_.png, "Detect the 2d bounding boxes of the red things",
      R"("systemInstruction": {"parts": [{"text": "Return bounding boxes as a JSON array with )"
      R"(labels. Never return masks or code fencing. Limit to 25 objects."}]})");
  const json::value boxes = Parse(CandidateText(PostOk(kGenerate, cookbook)));
  ASSERT_EQ(boxes.as_array().size(), 1u);
  EXPECT_EQ(Str(boxes.at(0).at("label")), "red");
  EXPECT_FALSE(boxes.at(0).as_object().contains("mask"));

  // A response schema with a "mask" property asks for segmentation whatever the prose says.
  const std::string schema = GenerateBody(
      image_.png, "Find the objects.",
      R"("generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": )"
      R"({"type": "array", "items": {"type": "object", "properties": {"box_2d": {"type": )"
      R"("array"}, "mask": {"type": "string"}, "label": {"type": "string"}}}}})");
  const json::value masks = Parse(CandidateText(PostOk(kGenerate, schema)));
  ASSERT_EQ(masks.as_array().size(), 2u);
  EXPECT_THAT(Str(masks.at(0).at("mask")), StartsWith("data:image/png;base64,"));
}

// Rasterises a mask PNG over its box back to image size (bilinear + threshold 127), as the
// Gemini docs tell clients to.
std::vector<uint8_t> PasteMask(const std::string& data_url, const Box& box, int width, int height) {
  std::vector<uint8_t> out(static_cast<size_t>(width) * height, 0);
  const std::string prefix = "data:image/png;base64,";
  EXPECT_THAT(data_url, StartsWith(prefix));
  std::string png;
  EXPECT_TRUE(absl::Base64Unescape(data_url.substr(prefix.size()), &png));
  vips::VImage mask = vips::VImage::new_from_buffer(png.data(), png.size(), "");
  EXPECT_EQ(mask.width(), 256);
  EXPECT_EQ(mask.height(), 256);
  EXPECT_EQ(mask.bands(), 1);
  EXPECT_EQ(mask.format(), VIPS_FORMAT_UCHAR);
  size_t size = 0;
  auto* raw = static_cast<uint8_t*>(mask.write_to_memory(&size));
  std::vector<uint8_t> pixels(raw, raw + size);
  g_free(raw);
  const double bx0 = box.xmin * width / 1000.0, by0 = box.ymin * height / 1000.0;
  const double bw = (box.xmax - box.xmin) * width / 1000.0;
  const double bh = (box.ymax - box.ymin) * height / 1000.0;
  auto at = [&](int u, int v) {
    u = std::clamp(u, 0, 255);
    v = std::clamp(v, 0, 255);
    return static_cast<double>(pixels[static_cast<size_t>(v) * 256 + u]);
  };
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      if (x + 0.5 < bx0 || x + 0.5 > bx0 + bw || y + 0.5 < by0 || y + 0.5 > by0 + bh) continue;
      const double u = (x + 0.5 - bx0) / bw * 256 - 0.5;
      const double v = (y + 0.5 - by0) / bh * 256 - 0.5;
      const int iu = static_cast<int>(std::floor(u)), iv = static_cast<int>(std::floor(v));
      const double fu = u - iu, fv = v - iv;
      const double value = (1 - fv) * ((1 - fu) * at(iu, iv) + fu * at(iu + 1, iv)) +
                           fv * ((1 - fu) * at(iu, iv + 1) + fu * at(iu + 1, iv + 1));
      out[static_cast<size_t>(y) * width + x] = value > 127 ? 1 : 0;
    }
  }
  return out;
}

TEST_F(EmulatorTest, SegmentationPngMasksCoverTheBlobs) {
  const std::string text = CandidateText(PostOk(
      kGenerate, GenerateBody(image_.png,
                              "Give the segmentation masks for the objects. Output a JSON list "
                              "where each entry contains the 2D bounding box in \"box_2d\", the "
                              "segmentation mask in key \"mask\", and the text label in the key "
                              "\"label\".")));
  const json::value items = Parse(text);
  ASSERT_EQ(items.as_array().size(), 2u);
  const std::vector<uint8_t>* truths[] = {&image_.red_mask, &image_.blue_mask};
  for (size_t i = 0; i < 2; ++i) {
    const Box box = BoxOfItem(items.at(i));
    ExpectBoxNear(box, TruthBox(*truths[i], 320, 240));
    const std::vector<uint8_t> pasted = PasteMask(Str(items.at(i).at("mask")), box, 320, 240);
    EXPECT_GE(IoU(pasted, *truths[i]), 0.9) << Str(items.at(i).at("label"));
  }
}

std::vector<uint8_t> RasterisePolygon(const json::array& points, int width, int height) {
  std::vector<std::pair<double, double>> polygon;
  for (const auto& point : points) {
    polygon.emplace_back(point.at(0).to_number<double>() * width / 1000.0,
                         point.at(1).to_number<double>() * height / 1000.0);
  }
  std::vector<uint8_t> out(static_cast<size_t>(width) * height, 0);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const double px = x + 0.5, py = y + 0.5;
      bool inside = false;
      for (size_t i = 0, j = polygon.size() - 1; i < polygon.size(); j = i++) {
        const auto [xi, yi] = polygon[i];
        const auto [xj, yj] = polygon[j];
        if ((yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi) inside = !inside;
      }
      out[static_cast<size_t>(y) * width + x] = inside ? 1 : 0;
    }
  }
  return out;
}

TEST_F(EmulatorTest, PolygonMasksOutlineTheBlobsXFirst) {
  EmulatorConfig config = emulator_->config();
  config.mask_format = MaskFormat::kPolygon;
  emulator_->SetConfig(config);
  const std::string text = CandidateText(
      PostOk(kGenerate, GenerateBody(image_.png, "Segment the objects with a mask each.")));
  const json::value items = Parse(text);
  ASSERT_EQ(items.as_array().size(), 2u);
  // The rectangle's outline is its four corners, x first: (40,60) → [125, 250].
  const json::array& rectangle = items.at(0).at("mask").as_array();
  ASSERT_EQ(rectangle.size(), 4u) << text;
  EXPECT_EQ(json::serialize(rectangle.at(0)), "[125,250]");  // top-left first, clockwise
  EXPECT_EQ(json::serialize(rectangle.at(1)), "[438,250]");
  const std::vector<uint8_t>* truths[] = {&image_.red_mask, &image_.blue_mask};
  for (size_t i = 0; i < 2; ++i) {
    const json::array& points = items.at(i).at("mask").as_array();
    ASSERT_GE(points.size(), 4u);
    EXPECT_GE(IoU(RasterisePolygon(points, 320, 240), *truths[i]), 0.9);
  }
}

TEST_F(EmulatorTest, SpatialJsonHonoursFenceProseAndStreamChunkSize) {
  EmulatorConfig config = emulator_->config();
  config.fence = true;
  config.prose_prefix = "Here are the objects:\n";
  config.stream_chunk_chars = 7;
  emulator_->SetConfig(config);
  const std::string body = GenerateBody(image_.png, "Detect objects as box_2d.");
  const std::string text = CandidateText(PostOk(kGenerate, body));
  EXPECT_THAT(text, StartsWith("Here are the objects:\n```json\n[\n"));
  EXPECT_TRUE(absl::EndsWith(text, "\n]\n```")) << text;

  absl::StatusOr<HttpResult> stream = Post(kStream, body);
  ASSERT_THAT(stream, IsOk());
  const std::vector<std::string> payloads = SsePayloads(stream->body);
  EXPECT_EQ(payloads.size(), (text.size() + 6) / 7);
  std::string joined;
  for (const std::string& payload : payloads) {
    const std::string delta = CandidateText(Parse(payload));
    EXPECT_LE(delta.size(), 7u);
    joined += delta;
  }
  EXPECT_EQ(joined, text);

  // maxOutputTokens truncates the JSON (4 bytes per token).
  const std::string truncated = CandidateText(PostOk(
      kGenerate, GenerateBody(image_.png, "Detect objects as box_2d.",
                              R"("generationConfig": {"maxOutputTokens": 10})")));
  EXPECT_EQ(truncated, text.substr(0, 40));
}

TEST_F(EmulatorTest, AdminEndpointsScriptConfigAndRecordedRequests) {
  const int port = emulator_->port();
  absl::StatusOr<HttpResult> queued = SendHttp(
      port, "POST", "/emulator/script", {},
      R"([{"status": 503, "body": {"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}},
          {"sse_events": [{"candidates": [{"content": {"parts": [{"text": "hi"}], "role": "model"}, "finishReason": "STOP", "index": 0}]}],
           "delay_between_writes_ms": 1}])");
  ASSERT_THAT(queued, IsOk());
  EXPECT_EQ(queued->status, 200) << queued->body;
  EXPECT_EQ(emulator_->PendingScripted(), 2u);

  absl::StatusOr<HttpResult> overloaded =
      SendHttp(port, "POST", absl::StrCat(kGenerate, "?key=", kKey), {}, "{}");
  ASSERT_THAT(overloaded, IsOk());
  EXPECT_EQ(overloaded->status, 503);
  EXPECT_THAT(overloaded->body, StartsWith("{\n  \"error\": {\n    \"code\": 503,"));
  absl::StatusOr<HttpResult> event = Post(kStream, "{}");
  ASSERT_THAT(event, IsOk());
  EXPECT_EQ(event->body,
            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"hi\"}],\"role\": "
            "\"model\"},\"finishReason\": \"STOP\",\"index\": 0}]}\r\n\r\n");

  absl::StatusOr<HttpResult> config =
      SendHttp(port, "POST", "/emulator/config", {}, R"({"mask_format": "polygon", "fence": true})");
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->status, 200);
  EXPECT_EQ(emulator_->config().mask_format, MaskFormat::kPolygon);
  EXPECT_TRUE(emulator_->config().fence);
  absl::StatusOr<HttpResult> bad_config =
      SendHttp(port, "POST", "/emulator/config", {}, R"({"mask_format": "svg"})");
  ASSERT_THAT(bad_config, IsOk());
  EXPECT_EQ(bad_config->status, 400);

  absl::StatusOr<HttpResult> requests = SendHttp(port, "GET", "/emulator/requests");
  ASSERT_THAT(requests, IsOk());
  EXPECT_EQ(requests->status, 200);
  EXPECT_THAT(requests->body, Not(HasSubstr(kKey)));  // the key never leaves the process
  const json::value recorded = Parse(requests->body);
  ASSERT_EQ(recorded.as_array().size(), 2u);  // admin calls are not recorded
  EXPECT_EQ(Str(recorded.at(0).at("target")),
            absl::StrCat(kGenerate, "?key=REDACTED"));
  EXPECT_EQ(Str(recorded.at(1).at("body")), "{}");

  absl::StatusOr<HttpResult> reset = SendHttp(port, "POST", "/emulator/reset", {}, "");
  ASSERT_THAT(reset, IsOk());
  EXPECT_EQ(reset->status, 200);
  EXPECT_EQ(emulator_->config().mask_format, MaskFormat::kPng);
  EXPECT_TRUE(emulator_->Requests().empty());
}

TEST(EmulatorLimitsTest, OversizedBodiesGet413) {
  EmulatorOptions options;
  options.max_body_bytes = 1000;
  absl::StatusOr<std::unique_ptr<Emulator>> emulator = Emulator::Start(options);
  ASSERT_THAT(emulator, IsOk());
  absl::StatusOr<HttpResult> result =
      SendHttp((*emulator)->port(), "POST", kGenerate, {{"x-goog-api-key", "k"}},
               std::string(5000, 'x'));
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->status, 413);
  EXPECT_THAT(result->body, HasSubstr("\"status\": \"INVALID_ARGUMENT\""));
}

TEST(EmulatorLimitsTest, RecordedBodiesAreBounded) {
  struct Bounds {
    size_t requests;
    size_t total_bytes;
  };
  // Each recorded body is cut to 10 bytes; either bound keeps the newest two records.
  for (const Bounds bounds : {Bounds{2, 1 << 20}, Bounds{100, 25}}) {
    EmulatorOptions options;
    options.max_recorded_body_bytes = 10;
    options.max_recorded_requests = bounds.requests;
    options.max_recorded_total_bytes = bounds.total_bytes;
    absl::StatusOr<std::unique_ptr<Emulator>> emulator = Emulator::Start(options);
    ASSERT_THAT(emulator, IsOk());
    for (int i = 0; i < 3; ++i) {
      ASSERT_THAT(SendHttp((*emulator)->port(), "POST", kGenerate, {{"x-goog-api-key", "k"}},
                           absl::StrCat("{\"contents\": ", i, "}")),
                  IsOk());
    }
    ASSERT_THAT((*emulator)->WaitForRequests(3, absl::Seconds(10)), IsOk());
    const std::vector<RecordedRequest> requests = (*emulator)->Requests();
    ASSERT_THAT(requests, SizeIs(2));
    EXPECT_EQ(requests[1].body, "{\"contents");
    EXPECT_TRUE(requests[1].body_truncated);
    EXPECT_EQ(requests[1].body_size, 15u);
  }
}

TEST(EmulatorLimitsTest, StopClosesOpenConnections) {
  absl::StatusOr<std::unique_ptr<Emulator>> emulator = Emulator::Start(EmulatorOptions());
  ASSERT_THAT(emulator, IsOk());
  absl::StatusOr<TestConnection> connection = TestConnection::Connect((*emulator)->port());
  ASSERT_THAT(connection, IsOk());
  ASSERT_THAT((*emulator)->WaitForOpenConnections(1, absl::Seconds(10)), IsOk());
  (*emulator)->Stop();
  EXPECT_EQ((*emulator)->OpenConnections(), 0);
  EXPECT_FALSE(connection->ReadResponse().ok());  // EOF, no response
}

}  // namespace
}  // namespace vision_gateway::emulator
