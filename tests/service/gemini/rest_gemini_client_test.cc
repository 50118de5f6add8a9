#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "boost/json.hpp"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"
#include "service/common/error_reasons.h"
#include "service/common/status_details.h"
#include "service/gemini/gemini_client.h"
#include "service/gemini/json_codec.h"
#include "service/gemini/types.h"
#include "tests/service/gemini/fake_http_client.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::gemini {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::vision_gateway::testing::FakeHttpClient;
using ::vision_gateway::testing::IsOk;
using ::vision_gateway::testing::ScriptedResponse;
using ::vision_gateway::testing::StatusIs;

constexpr char kApiKey[] = "AIzaSy-test-key-DO-NOT-LEAK-0123456789";
constexpr char kBaseUrl[] = "http://127.0.0.1:8123";
constexpr char kModel[] = "gemini-2.5-flash";

std::string Event(std::string_view json) { return absl::StrCat("data: ", std::string(json), "\r\n\r\n"); }

std::string Chunk(std::string_view text, std::string_view finish_reason = "") {
  GenerateContentResponse r;
  Candidate& c = r.candidates.emplace_back();
  c.content.role = "model";
  c.content.parts.push_back(Part{.text = std::string(text)});
  c.finish_reason = std::string(finish_reason);
  r.usage_metadata = UsageMetadata{.prompt_token_count = 4, .total_token_count = 4};
  r.model_version = kModel;
  r.response_id = "resp-1";
  return EncodeGenerateContentResponse(r);
}

// Three events as Gemini frames them (CRLF), finishReason on the last only.
std::string ThreeEventBody() {
  return Event(Chunk("Hello")) + Event(Chunk(", wor")) + Event(Chunk("ld!", "STOP"));
}

GenerateContentRequest SimpleRequest() {
  GenerateContentRequest request;
  Part image;
  image.inline_data = Blob{.mime_type = "image/png", .data = std::string("\x89PNG\r\n", 6)};
  request.contents.push_back(Content{.role = "user", .parts = {image, Part{.text = "Caption."}}});
  return request;
}

std::string HeaderValue(const http::Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, absl::string_view(name.data(), name.size()))) return v;
  }
  return "<absent>";
}

struct StreamResult {
  std::vector<GenerateContentResponse> chunks;
  std::vector<absl::Status> done;
  std::vector<std::string> texts() const {
    std::vector<std::string> out;
    for (const auto& c : chunks) out.push_back(AnswerText(c));
    return out;
  }
};

class RestGeminiClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    http_ = std::make_shared<FakeHttpClient>();
    GeminiOptions options;
    options.base_url = kBaseUrl;
    options.api_key = kApiKey;
    absl::StatusOr<std::unique_ptr<GeminiClient>> client = MakeGeminiClient(options, http_);
    ASSERT_THAT(client, IsOk());
    client_ = *std::move(client);
  }

  // Every status the client returned must be free of the API key (message and details).
  void TearDown() override {
    for (const absl::Status& s : statuses_) ExpectNoKey(s);
  }

  static void ExpectNoKey(const absl::Status& s) {
    EXPECT_THAT(std::string(s.message()), Not(HasSubstr(kApiKey)));
    s.ForEachPayload([](absl::string_view, const absl::Cord& payload) {
      EXPECT_THAT(std::string(payload), Not(HasSubstr(kApiKey)));
    });
  }

  StreamObserver Observe(const std::shared_ptr<StreamResult>& result) {
    StreamObserver observer;
    observer.on_chunk = [result](GenerateContentResponse r) { result->chunks.push_back(std::move(r)); };
    observer.on_done = [this, result](absl::Status s) {
      statuses_.push_back(s);
      result->done.push_back(std::move(s));
    };
    return observer;
  }

  std::shared_ptr<StreamResult> RunStream(ScriptedResponse script,
                                          const std::string& model = kModel) {
    http_->Enqueue(std::move(script));
    auto result = std::make_shared<StreamResult>();
    auto call = client_->StreamGenerateContent(model, SimpleRequest(), CallOptions(), Observe(result));
    http_->RunUntilIdle();
    return result;
  }

  template <typename T>
  absl::StatusOr<T> Finish(absl::StatusOr<T>* slot, int* calls) {
    http_->RunUntilIdle();
    EXPECT_EQ(*calls, 1);
    statuses_.push_back(slot->status());
    return *slot;
  }

  absl::StatusOr<GenerateContentResponse> RunGenerate(ScriptedResponse script) {
    http_->Enqueue(std::move(script));
    absl::StatusOr<GenerateContentResponse> out = absl::UnknownError("not called");
    int calls = 0;
    client_->GenerateContent(kModel, SimpleRequest(), CallOptions(),
                             [&](absl::StatusOr<GenerateContentResponse> r) {
                               ++calls;
                               out = std::move(r);
                             });
    return Finish(&out, &calls);
  }

  std::shared_ptr<FakeHttpClient> http_;
  std::unique_ptr<GeminiClient> client_;
  std::vector<absl::Status> statuses_;
};

TEST_F(RestGeminiClientTest, StreamRequestHasUrlHeadersBodyAndDeadline) {
  http_->Enqueue(ScriptedResponse{.body = ThreeEventBody()});
  auto result = std::make_shared<StreamResult>();
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  client_->StreamGenerateContent(kModel, SimpleRequest(), CallOptions{.deadline = deadline},
                                 Observe(result));
  http_->RunUntilIdle();

  ASSERT_EQ(http_->requests().size(), 1u);
  const http::Request& req = http_->requests()[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.url, "http://127.0.0.1:8123/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
  EXPECT_EQ(HeaderValue(req.headers, "x-goog-api-key"), kApiKey);
  EXPECT_EQ(HeaderValue(req.headers, "content-type"), "application/json");
  EXPECT_EQ(HeaderValue(req.headers, "x-goog-api-client"), "vision-gateway/0.1");
  EXPECT_EQ(req.deadline, deadline);
  absl::StatusOr<std::string> expected_body = EncodeGenerateContentRequest(SimpleRequest());
  ASSERT_THAT(expected_body, IsOk());
  EXPECT_EQ(boost::json::parse(req.body), boost::json::parse(*expected_body));
  // The key travels only in its header.
  EXPECT_THAT(req.url, Not(HasSubstr(kApiKey)));
  EXPECT_THAT(req.body, Not(HasSubstr(kApiKey)));

  EXPECT_THAT(result->texts(), ElementsAre("Hello", ", wor", "ld!"));
  ASSERT_EQ(result->done.size(), 1u);
  EXPECT_THAT(result->done[0], IsOk());
}

TEST_F(RestGeminiClientTest, DefaultTimeoutBoundsTheDeadline) {
  const absl::Time before = absl::Now();
  RunStream(ScriptedResponse{.body = ThreeEventBody()});
  const absl::Time after = absl::Now();
  ASSERT_EQ(http_->requests().size(), 1u);
  const absl::Time deadline = http_->requests()[0].deadline;
  EXPECT_GE(deadline, before + absl::Seconds(120));
  EXPECT_LE(deadline, after + absl::Seconds(120));
}

TEST_F(RestGeminiClientTest, CallersDeadlineRulesBeyondTheDefault) {
  // The old code capped every call at now + 120 s; a caller's longer deadline must be kept.
  http_->Enqueue(ScriptedResponse{.body = ThreeEventBody()});
  auto result = std::make_shared<StreamResult>();
  const absl::Time deadline = absl::Now() + absl::Minutes(30);
  client_->StreamGenerateContent(kModel, SimpleRequest(), CallOptions{.deadline = deadline},
                                 Observe(result));
  http_->RunUntilIdle();
  ASSERT_EQ(http_->requests().size(), 1u);
  EXPECT_EQ(http_->requests()[0].deadline, deadline);
}

TEST_F(RestGeminiClientTest, TimeoutIsCallersDeadlineOnlyWhenTheirsPassed) {
  // The HTTP layer's timeout with the caller's deadline passed: DEADLINE_EXCEEDED.
  http_->Enqueue(ScriptedResponse{.fail_before_head = WithOutcome(
                                      absl::DeadlineExceededError("deadline exceeded while x"),
                                      reasons::kUpstreamTimeout)});
  auto passed = std::make_shared<StreamResult>();
  client_->StreamGenerateContent(kModel, SimpleRequest(),
                                 CallOptions{.deadline = absl::Now() - absl::Milliseconds(1)},
                                 Observe(passed));
  http_->RunUntilIdle();
  ASSERT_EQ(passed->done.size(), 1u);
  EXPECT_EQ(GetOutcome(passed->done[0]), reasons::kDeadlineExceeded);
  // Without a caller deadline it was the gateway's default bound: UPSTREAM_TIMEOUT.
  auto bounded = RunStream(ScriptedResponse{.fail_before_head = WithOutcome(
                                                absl::DeadlineExceededError("timed out"),
                                                reasons::kUpstreamTimeout)});
  ASSERT_EQ(bounded->done.size(), 1u);
  EXPECT_EQ(GetOutcome(bounded->done[0]), reasons::kUpstreamTimeout);
}

TEST_F(RestGeminiClientTest, RetryAfterHeaderBecomesRetryInfo) {
  auto result = RunStream(ScriptedResponse{
      .status = 503,
      .headers = {{"Retry-After", "7"}},
      .body = R"({"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}})"});
  ASSERT_EQ(result->done.size(), 1u);
  EXPECT_THAT(result->done[0], StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(GetRetryDelay(result->done[0]), absl::Seconds(7));
  EXPECT_EQ(GetOutcome(result->done[0]), reasons::kUpstreamUnavailable);
}

TEST_F(RestGeminiClientTest, MalformedAnswersAreUpstreamBadResponse) {
  auto garbage = RunStream(ScriptedResponse{.body = Event("{not json")});
  ASSERT_EQ(garbage->done.size(), 1u);
  EXPECT_EQ(GetOutcome(garbage->done[0]), reasons::kUpstreamBadResponse);
  auto truncated = RunStream(ScriptedResponse{.body = Event(Chunk("Hello"))});
  ASSERT_EQ(truncated->done.size(), 1u);
  EXPECT_EQ(GetOutcome(truncated->done[0]), reasons::kUpstreamConnectionLost);
}

TEST_F(RestGeminiClientTest, ModelMayCarryThePrefix) {
  RunStream(ScriptedResponse{.body = ThreeEventBody()}, "models/gemini-2.5-flash");
  ASSERT_EQ(http_->requests().size(), 1u);
  EXPECT_EQ(http_->requests()[0].url,
            "http://127.0.0.1:8123/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
}

TEST_F(RestGeminiClientTest, StreamSplitAtEveryByteBoundaryGivesTheSameChunks) {
  const std::string body = ThreeEventBody();
  for (std::size_t cut = 0; cut <= body.size(); ++cut) {
    auto result = RunStream(ScriptedResponse{.body = body, .split_at = {cut, cut + 7}});
    ASSERT_THAT(result->texts(), ElementsAre("Hello", ", wor", "ld!")) << "cut at " << cut;
    EXPECT_EQ(result->chunks[0].candidates[0].finish_reason, "");
    EXPECT_EQ(result->chunks[2].candidates[0].finish_reason, "STOP");
    ASSERT_EQ(result->done.size(), 1u);
    EXPECT_THAT(result->done[0], IsOk()) << "cut at " << cut;
  }
  // And one byte at a time.
  auto result =
      RunStream(ScriptedResponse{.body = body, .split_at = testing::EveryNBytes(body.size(), 1)});
  EXPECT_THAT(result->texts(), ElementsAre("Hello", ", wor", "ld!"));
  ASSERT_EQ(result->done.size(), 1u);
  EXPECT_THAT(result->done[0], IsOk());
}

TEST_F(RestGeminiClientTest, StreamWithLastEventUnterminatedStillCompletes) {
  std::string body = ThreeEventBody();
  body.resize(body.size() - 4);  // no trailing blank line
  auto result = RunStream(ScriptedResponse{.body = body});
  EXPECT_THAT(result->texts(), ElementsAre("Hello", ", wor", "ld!"));
  ASSERT_EQ(result->done.size(), 1u);
  EXPECT_THAT(result->done[0], IsOk());
}

struct MidStreamCase {
  std::string_view status;
  int code;
  absl::StatusCode expected;
  friend void PrintTo(const MidStreamCase& c, std::ostream* os) { *os << c.status; }
};

class MidStreamErrorTest : public RestGeminiClientTest,
                           public ::testing::WithParamInterface<MidStreamCase> {};

TEST_P(MidStreamErrorTest, BareErrorObjectEndsTheStreamWithItsStatus) {
  const MidStreamCase& c = GetParam();
  // Pretty-printed, no "data:" prefix, after a good event; more data after it must be ignored.
  const std::string error = absl::StrCat("{\n  \"error\": {\n    \"code\": ", c.code,
                                         ",\n    \"message\": \"stream failed\",\n    \"status\": \"",
                                         std::string(c.status), "\"\n  }\n}\r\n\r\n");
  const std::string body = Event(Chunk("partial")) + error + Event(Chunk("never", "STOP"));
  auto result = RunStream(ScriptedResponse{.body = body});
  EXPECT_THAT(result->texts(), ElementsAre("partial"));
  ASSERT_EQ(result->done.size(), 1u);
  EXPECT_THAT(result->done[0], StatusIs(c.expected, "Gemini: stream failed"));
  EXPECT_TRUE(http_->call(0).cancelled()) << "the HTTP exchange is abandoned";
}

INSTANTIATE_TEST_SUITE_P(
    Statuses, MidStreamErrorTest,
    ::testing::Values(MidStreamCase{"RESOURCE_EXHAUSTED", 429, absl::StatusCode::kResourceExhausted},
                      MidStreamCase{"UNAVAILABLE", 503, absl::StatusCode::kUnavailable},
                      MidStreamCase{"INTERNAL", 500, absl::StatusCode::kInternal}));

TEST_F(RestGeminiClientTest, ErrorObjectAtEndOfBodyWithoutBlankLine) {
  const std::string body =
      Event(Chunk("partial")) + R"({"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}})";
  auto result = RunStream(ScriptedResponse{.body = body});
  EXPECT_THAT(result->texts(), ElementsAre("partial"));
  ASSERT_EQ(result->done.size(), 1u);
  EXPECT_THAT(result->done[0], StatusIs(absl::StatusCode::kUnavailable, "Gemini: overloaded"));
}

TEST_F(RestGeminiClientTest, ErrorObjectInsideDataField) {
  const std::string body = Event(R"({"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}})");
  auto result = RunStream(ScriptedResponse{.body = body});
  EXPECT_THAT(result->chunks, IsEmpty());
  ASSERT_EQ(result->done.size(), 1u);
  EXPECT_THAT(result->done[0], StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST_F(RestGeminiClientTest, RawTextThatIsNotAnErrorIsMalformed) {
  auto result = RunStream(ScriptedResponse{.body = Event(Chunk("a")) + "garbage line\r\n\r\n" +
                                                   Event(Chunk("b", "STOP"))});
  EXPECT_THAT(result->texts(), ElementsAre("a"));
  ASSERT_EQ(result->done.size(), 1u);
  EXPECT_THAT(result->done[0], StatusIs(absl::StatusCode::kInternal, HasSubstr("malformed stream event")));
}

TEST_F(RestGeminiClientTest, UndecodableEventIsInternal) {
  auto result = RunStream(ScriptedResponse{
      .body = Event(Chunk("a")) + Event(R"({"candidates": [{"content": )") + Event(Chunk("b", "STOP"))});
  EXPECT_THAT(result->texts(), ElementsAre("a"));
  ASSERT_EQ(result->done.size(), 1u);
  EXPECT_THAT(result->done[0],
              StatusIs(absl::StatusCode::kInternal, HasSubstr("malformed Gemini response")));
  EXPECT_TRUE(http_->call(0).cancelled());
}

TEST_F(RestGeminiClientTest, StreamEndingWithoutFinishReasonIsTruncation) {
  auto result = RunStream(ScriptedResponse{.body = Event(Chunk("Hello")) + Event(Chunk(", wor"))});
  EXPECT_THAT(result->texts(), ElementsAre("Hello", ", wor"));
  ASSERT_EQ(result->done.size(), 1u);
  EXPECT_THAT(result->done[0], StatusIs(absl::StatusCode::kUnavailable,
                                        "Gemini stream ended before the model finished"));
  // An empty 200 body too.
  auto empty = RunStream(ScriptedResponse{.body = ""});
  ASSERT_EQ(empty->done.size(), 1u);
  EXPECT_THAT(empty->done[0], StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(RestGeminiClientTest, BlockedPromptIsContentBlockedNotSuccess) {
  auto result = RunStream(ScriptedResponse{
      .body = Event(R"({"promptFeedback": {"blockReason": "SAFETY"}, "responseId": "r"})")});
  EXPECT_THAT(result->chunks, IsEmpty());
  ASSERT_EQ(result->done.size(), 1u);
  EXPECT_THAT(result->done[0], StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("SAFETY")));
  EXPECT_EQ(GetOutcome(result->done[0]), reasons::kContentBlocked);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(GetDetail(result->done[0], info));
  EXPECT_EQ(info.reason(), "CONTENT_BLOCKED");
  EXPECT_EQ(info.metadata().at("block_reason"), "SAFETY");
}

TEST_F(RestGeminiClientTest, TransportErrorsPassThrough) {
  auto reset = RunStream(ScriptedResponse{
      .body = Event(Chunk("Hello")),
      .end_status = WithOutcome(absl::UnavailableError("connection reset"),
                                reasons::kUpstreamConnectionLost)});
  EXPECT_THAT(reset->texts(), ElementsAre("Hello"));
  ASSERT_EQ(reset->done.size(), 1u);
  EXPECT_THAT(reset->done[0], StatusIs(absl::StatusCode::kUnavailable, "connection reset"));
  EXPECT_EQ(GetOutcome(reset->done[0]), reasons::kUpstreamConnectionLost);

  auto late = RunStream(ScriptedResponse{
      .fail_before_head = absl::DeadlineExceededError("deadline passed while connecting")});
  EXPECT_THAT(late->chunks, IsEmpty());
  ASSERT_EQ(late->done.size(), 1u);
  EXPECT_THAT(late->done[0], StatusIs(absl::StatusCode::kDeadlineExceeded));

  // As the HTTP layer reports a TLS failure (http_client.cc): UNAVAILABLE tagged UPSTREAM_TLS.
  // The tag must survive the Gemini layer: it decides the caller's code, message and retries.
  auto tls = RunStream(ScriptedResponse{
      .fail_before_head = WithOutcome(
          absl::UnavailableError("TLS handshake with gemini.example:443 failed: certificate "
                                 "verify failed"),
          reasons::kUpstreamTls)});
  ASSERT_EQ(tls->done.size(), 1u);
  EXPECT_THAT(tls->done[0], StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(GetOutcome(tls->done[0]), reasons::kUpstreamTls);
}

constexpr std::string_view kQuotaBody = R"json({
  "error": {
    "code": 429,
    "message": "You exceeded your current quota.",
    "status": "RESOURCE_EXHAUSTED",
    "details": [
      {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "15s"}
    ]
  }
})json";

TEST_F(RestGeminiClientTest, StreamNon2xxIsMappedFromTheEnvelope) {
  auto result = RunStream(ScriptedResponse{
      .status = 429,
      .headers = {{"content-type", "text/event-stream"}},
      .body = std::string(kQuotaBody),
      .split_at = {10, 50, 51}});
  EXPECT_THAT(result->chunks, IsEmpty());
  ASSERT_EQ(result->done.size(), 1u);
  EXPECT_THAT(result->done[0], StatusIs(absl::StatusCode::kResourceExhausted,
                                        "Gemini: You exceeded your current quota."));
  google::rpc::RetryInfo retry;
  ASSERT_TRUE(GetDetail(result->done[0], retry));
  EXPECT_EQ(retry.retry_delay().seconds(), 15);
}

TEST_F(RestGeminiClientTest, HugeErrorBodyIsBoundedAndNotReadToTheEnd) {
  const std::string body(1024 * 1024, 'x');
  auto result = RunStream(ScriptedResponse{
      .status = 500, .body = body, .split_at = testing::EveryNBytes(body.size(), 16 * 1024)});
  ASSERT_EQ(result->done.size(), 1u);
  EXPECT_THAT(result->done[0], StatusIs(absl::StatusCode::kInternal, HasSubstr("Gemini: HTTP 500")));
  EXPECT_LE(result->done[0].message().size(), 2048u);
  EXPECT_TRUE(http_->call(0).cancelled());
  EXPECT_LT(http_->call(0).body_bytes_delivered(), body.size());
}

TEST_F(RestGeminiClientTest, KeyNeverAppearsInReturnedStatuses) {
  // A transport message that (wrongly) contains the key.
  auto transport = RunStream(ScriptedResponse{.fail_before_head = absl::UnavailableError(
                                                  absl::StrCat("connect failed for key=", kApiKey))});
  ASSERT_EQ(transport->done.size(), 1u);
  EXPECT_THAT(transport->done[0],
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("key=[redacted]")));
  ExpectNoKey(transport->done[0]);

  // An upstream envelope that echoes it in the message and in ErrorInfo metadata.
  const std::string body = absl::StrCat(
      R"({"error":{"code":400,"status":"INVALID_ARGUMENT","message":"API key )", kApiKey,
      R"( not valid.","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo",)",
      R"("reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"key":")", kApiKey,
      R"("}},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"2s"}]}})");
  auto upstream = RunStream(ScriptedResponse{.status = 400, .body = body});
  ASSERT_EQ(upstream->done.size(), 1u);
  EXPECT_THAT(upstream->done[0], StatusIs(absl::StatusCode::kInvalidArgument,
                                          "Gemini: API key [redacted] not valid."));
  ExpectNoKey(upstream->done[0]);
  google::rpc::ErrorInfo info;
  EXPECT_FALSE(GetDetail(upstream->done[0], info)) << "a detail holding the key is dropped";
  google::rpc::RetryInfo retry;
  EXPECT_TRUE(GetDetail(upstream->done[0], retry)) << "other details are kept";

  // Only a piece of it (Google's messages name a key by its tail): hidden as well.
  const std::string tail(std::string_view(kApiKey).substr(std::string_view(kApiKey).size() - 7));
  auto piece = RunStream(ScriptedResponse{
      .status = 400,
      .body = absl::StrCat(R"({"error":{"code":400,"status":"INVALID_ARGUMENT","message":)",
                           R"("API key ending in )", tail, R"( not valid."}})")});
  ASSERT_EQ(piece->done.size(), 1u);
  EXPECT_THAT(piece->done[0], StatusIs(absl::StatusCode::kInvalidArgument,
                                       "Gemini: API key ending in [redacted] not valid."));

  absl::StatusOr<GenerateContentResponse> unary = RunGenerate(ScriptedResponse{.status = 400, .body = body});
  EXPECT_THAT(unary, StatusIs(absl::StatusCode::kInvalidArgument, Not(HasSubstr(kApiKey))));
}

TEST_F(RestGeminiClientTest, BadModelIdsAreRejectedWithoutARequest) {
  for (const std::string& model : std::vector<std::string>{
           "", "models/", "../secrets", "a/b", "models/models/x", "a?b=c", "a b", "m:generateContent",
        "..", "a%2Fb", "gemini\r\nx-evil: 1", std::string(200, 'a')}) {
    auto result = std::make_shared<StreamResult>();
    client_->StreamGenerateContent(model, SimpleRequest(), CallOptions(), Observe(result));
    // Reported at once, exactly once.
    ASSERT_EQ(result->done.size(), 1u) << model;
    EXPECT_THAT(result->done[0], StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("model id")));

    int calls = 0;
    absl::Status unary_status;
    client_->CountTokens(model, CountTokensRequest(), CallOptions(),
                         [&](absl::StatusOr<CountTokensResponse> r) {
                           ++calls;
                           unary_status = r.status();
                         });
    EXPECT_EQ(calls, 1);
    EXPECT_THAT(unary_status, StatusIs(absl::StatusCode::kInvalidArgument));
  }
  EXPECT_THAT(http_->requests(), IsEmpty());
  // Valid ids with dots, dashes and underscores pass.
  RunStream(ScriptedResponse{.body = ThreeEventBody()}, "gemini-2.5-flash-preview_05.20");
  EXPECT_EQ(http_->requests().size(), 1u);
}

TEST_F(RestGeminiClientTest, UnencodableRequestFailsWithoutARequest) {
  GenerateContentRequest request = SimpleRequest();
  request.generation_config.emplace().response_json_schema = "{not json";
  auto result = std::make_shared<StreamResult>();
  client_->StreamGenerateContent(kModel, request, CallOptions(), Observe(result));
  ASSERT_EQ(result->done.size(), 1u);
  EXPECT_THAT(result->done[0], StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(http_->requests(), IsEmpty());
}

TEST_F(RestGeminiClientTest, CancelGivesCancelledAndNoFurtherChunks) {
  const std::string body = ThreeEventBody();
  const std::string first = Event(Chunk("Hello"));
  http_->Enqueue(ScriptedResponse{.body = body, .split_at = {first.size()}});
  auto result = std::make_shared<StreamResult>();
  std::shared_ptr<PendingCall> call =
      client_->StreamGenerateContent(kModel, SimpleRequest(), CallOptions(), Observe(result));
  http_->call(0).Step();  // head
  http_->call(0).Step();  // first event
  ASSERT_THAT(result->texts(), ElementsAre("Hello"));
  call->Cancel();
  call->Cancel();  // idempotent
  EXPECT_TRUE(http_->call(0).cancelled());
  http_->RunUntilIdle();
  EXPECT_THAT(result->texts(), ElementsAre("Hello"));
  ASSERT_EQ(result->done.size(), 1u);
  EXPECT_THAT(result->done[0], StatusIs(absl::StatusCode::kCancelled));
  call->Cancel();  // harmless after completion
  EXPECT_EQ(result->done.size(), 1u);
}

TEST_F(RestGeminiClientTest, CancelFromInsideOnChunkStopsTheRestOfThePiece) {
  http_->Enqueue(ScriptedResponse{.body = ThreeEventBody()});  // all three events in one piece
  auto result = std::make_shared<StreamResult>();
  std::shared_ptr<PendingCall> call;
  StreamObserver observer = Observe(result);
  auto record = std::move(observer.on_chunk);
  observer.on_chunk = [&call, record = std::move(record)](GenerateContentResponse r) mutable {
    record(std::move(r));
    call->Cancel();
  };
  call = client_->StreamGenerateContent(kModel, SimpleRequest(), CallOptions(), std::move(observer));
  http_->RunUntilIdle();
  EXPECT_THAT(result->texts(), ElementsAre("Hello"));
  ASSERT_EQ(result->done.size(), 1u);
  EXPECT_THAT(result->done[0], StatusIs(absl::StatusCode::kCancelled));
}

TEST_F(RestGeminiClientTest, CancelAfterCompletionKeepsTheResult) {
  http_->Enqueue(ScriptedResponse{.body = ThreeEventBody()});
  auto result = std::make_shared<StreamResult>();
  auto call = client_->StreamGenerateContent(kModel, SimpleRequest(), CallOptions(), Observe(result));
  http_->RunUntilIdle();
  call->Cancel();
  http_->RunUntilIdle();
  ASSERT_EQ(result->done.size(), 1u);
  EXPECT_THAT(result->done[0], IsOk());
}

TEST_F(RestGeminiClientTest, CompletedCallsAreReleased) {
  http_->Enqueue(ScriptedResponse{.body = ThreeEventBody()});
  auto result = std::make_shared<StreamResult>();
  std::weak_ptr<PendingCall> stream =
      client_->StreamGenerateContent(kModel, SimpleRequest(), CallOptions(), Observe(result));
  http_->Enqueue(ScriptedResponse{.body = R"({"totalTokens": 3})"});
  std::weak_ptr<PendingCall> unary = client_->CountTokens(
      kModel, CountTokensRequest(), CallOptions(), [](absl::StatusOr<CountTokensResponse>) {});
  EXPECT_FALSE(stream.expired()) << "the HTTP layer keeps a call alive while it runs";
  http_->RunUntilIdle();
  http_->ForgetCalls();
  EXPECT_TRUE(stream.expired());
  EXPECT_TRUE(unary.expired());
}

TEST_F(RestGeminiClientTest, GenerateContentDecodesTheBody) {
  absl::StatusOr<GenerateContentResponse> r = RunGenerate(ScriptedResponse{.body = R"({
    "candidates": [{"content": {"parts": [{"text": "thinking...", "thought": true},
                                          {"text": "A red square."}], "role": "model"},
                    "finishReason": "STOP"}],
    "usageMetadata": {"promptTokenCount": 262, "candidatesTokenCount": 5, "totalTokenCount": 267},
    "modelVersion": "gemini-2.5-flash", "responseId": "abc"})"});
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(AnswerText(*r), "A red square.");
  EXPECT_EQ(r->usage_metadata->total_token_count, 267);
  ASSERT_EQ(http_->requests().size(), 1u);
  EXPECT_EQ(http_->requests()[0].url, "http://127.0.0.1:8123/v1beta/models/gemini-2.5-flash:generateContent");
  EXPECT_EQ(HeaderValue(http_->requests()[0].headers, "x-goog-api-key"), kApiKey);
}

TEST_F(RestGeminiClientTest, GenerateContentErrors) {
  EXPECT_THAT(RunGenerate(ScriptedResponse{
                  .status = 404,
                  .body = R"({"error":{"code":404,"message":"models/x is not found for API version v1beta","status":"NOT_FOUND"}})"}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("is not found")));
  EXPECT_THAT(RunGenerate(ScriptedResponse{.body = "{\"candidates\": 3}"}),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("malformed Gemini response")));
  EXPECT_THAT(RunGenerate(ScriptedResponse{.fail_before_head = absl::UnavailableError("refused")}),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(RestGeminiClientTest, CountTokensUsesItsEndpoint) {
  http_->Enqueue(ScriptedResponse{.body = R"({"totalTokens": 11, "promptTokensDetails": []})"});
  absl::StatusOr<CountTokensResponse> out = absl::UnknownError("not called");
  int calls = 0;
  CountTokensRequest request;
  request.contents.push_back(Content{.role = "user", .parts = {Part{.text = "count"}}});
  client_->CountTokens("models/gemini-2.5-flash", request, CallOptions(),
                       [&](absl::StatusOr<CountTokensResponse> r) {
                         ++calls;
                         out = std::move(r);
                       });
  ASSERT_THAT(Finish(&out, &calls), IsOk());
  EXPECT_EQ(out->total_tokens, 11);
  ASSERT_EQ(http_->requests().size(), 1u);
  EXPECT_EQ(http_->requests()[0].url, "http://127.0.0.1:8123/v1beta/models/gemini-2.5-flash:countTokens");
  EXPECT_EQ(http_->requests()[0].body, R"({"contents":[{"role":"user","parts":[{"text":"count"}]}]})");
}

// Issue #17 (memory): a request that carries its encoding (the retrying stub's) is sent from
// that buffer, not encoded or copied again.
TEST_F(RestGeminiClientTest, AnEncodedBodyIsSentFromItsOwnBuffer) {
  http_->Enqueue(ScriptedResponse{.body = R"({"totalTokens": 3})"});
  absl::StatusOr<CountTokensResponse> out = absl::UnknownError("not called");
  int calls = 0;
  CountTokensRequest request;
  request.encoded_body =
      GrowingBuffer::Of(R"({"contents":[{"role":"user","parts":[{"text":"count"}]}]})");
  const std::shared_ptr<GrowingBuffer> buffer = request.encoded_body;
  client_->CountTokens("gemini-2.5-flash", request, CallOptions(),
                       [&](absl::StatusOr<CountTokensResponse> r) {
                         ++calls;
                         out = std::move(r);
                       });
  ASSERT_THAT(Finish(&out, &calls), IsOk());
  ASSERT_EQ(http_->requests().size(), 1u);
  EXPECT_EQ(http_->requests()[0].streamed_body, buffer);
  EXPECT_TRUE(http_->requests()[0].body.empty());
}

TEST_F(RestGeminiClientTest, CancelUnaryCall) {
  http_->Enqueue(ScriptedResponse{.body = R"({"totalTokens": 11})"});
  absl::StatusOr<CountTokensResponse> out = absl::UnknownError("not called");
  int calls = 0;
  auto call = client_->CountTokens(kModel, CountTokensRequest(), CallOptions(),
                                   [&](absl::StatusOr<CountTokensResponse> r) {
                                     ++calls;
                                     out = std::move(r);
                                   });
  call->Cancel();
  EXPECT_THAT(Finish(&out, &calls), StatusIs(absl::StatusCode::kCancelled));
}

// A key that a test changes between requests, as a rotated key file does.
class SwitchableKey final : public ApiKeySource {
 public:
  explicit SwitchableKey(std::string key) : key_(std::move(key)) {}
  std::string Current() const override {
    absl::MutexLock lock(&mu_);
    return key_;
  }
  void Set(std::string key) {
    absl::MutexLock lock(&mu_);
    key_ = std::move(key);
  }

 private:
  mutable absl::Mutex mu_;
  std::string key_ ABSL_GUARDED_BY(mu_);
};

TEST(RotatingKeyTest, EachRequestKeepsTheKeyItStartedWithAndNewRequestsUseTheNewOne) {
  constexpr char kOldKey[] = "AIzaSy-old-key-DO-NOT-LEAK-aaaaaaaaaaaa";
  constexpr char kNewKey[] = "AIzaSy-new-key-DO-NOT-LEAK-bbbbbbbbbbbb";
  auto http = std::make_shared<FakeHttpClient>();
  auto key = std::make_shared<SwitchableKey>(kOldKey);
  GeminiOptions options;
  options.base_url = kBaseUrl;
  options.api_key = ApiKey(key);
  absl::StatusOr<std::unique_ptr<GeminiClient>> client = MakeGeminiClient(options, http);
  ASSERT_THAT(client, IsOk());

  // The first request starts under the old key; upstream rejects it and echoes that key.
  http->Enqueue(ScriptedResponse{
      .status = 400,
      .body = absl::StrCat(
          R"({"error":{"code":400,"status":"INVALID_ARGUMENT","message":"API key )", kOldKey,
          R"( not valid."}})")});
  http->Enqueue(ScriptedResponse{.body = ThreeEventBody()});
  std::vector<absl::Status> done;
  auto observe = [&done] {
    StreamObserver observer;
    observer.on_chunk = [](GenerateContentResponse) {};
    observer.on_done = [&done](absl::Status s) { done.push_back(std::move(s)); };
    return observer;
  };
  (*client)->StreamGenerateContent(kModel, SimpleRequest(), CallOptions(), observe());
  key->Set(kNewKey);  // rotated while the first request is in flight
  (*client)->StreamGenerateContent(kModel, SimpleRequest(), CallOptions(), observe());
  http->RunUntilIdle();

  ASSERT_EQ(http->requests().size(), 2u);
  EXPECT_EQ(HeaderValue(http->requests()[0].headers, "x-goog-api-key"), kOldKey);
  EXPECT_EQ(HeaderValue(http->requests()[1].headers, "x-goog-api-key"), kNewKey);
  ASSERT_EQ(done.size(), 2u);
  // The error of the first request is redacted with the key that request carried.
  EXPECT_THAT(done[0], StatusIs(absl::StatusCode::kInvalidArgument, Not(HasSubstr(kOldKey))));
  EXPECT_THAT(done[1], IsOk());
}

TEST(MakeGeminiClientTest, ValidatesOptions) {
  auto http = std::make_shared<FakeHttpClient>();
  auto make = [&](auto mutate) {
    GeminiOptions o;
    o.api_key = kApiKey;
    mutate(o);
    return MakeGeminiClient(o, http);
  };
  EXPECT_THAT(make([](GeminiOptions&) {}), IsOk());
  EXPECT_THAT(make([](GeminiOptions& o) { o.base_url = "http://127.0.0.1:9/"; }), IsOk());
  EXPECT_THAT(MakeGeminiClient(GeminiOptions{.api_key = kApiKey}, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(make([](GeminiOptions& o) { o.api_key = ""; }),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(make([](GeminiOptions& o) { o.base_url = "ftp://x"; }),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(make([](GeminiOptions& o) { o.base_url = "https://host/path"; }),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(make([](GeminiOptions& o) { o.base_url = "https://user@host"; }),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(make([](GeminiOptions& o) { o.api_version = "v1beta/../x"; }),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(make([](GeminiOptions& o) { o.default_timeout = std::chrono::milliseconds(0); }),
              StatusIs(absl::StatusCode::kInvalidArgument));
  const std::string bad_key = std::string(kApiKey) + "\r\nx-injected: 1";
  EXPECT_THAT(make([&](GeminiOptions& o) { o.api_key = bad_key; }),
              StatusIs(absl::StatusCode::kInvalidArgument, Not(HasSubstr(kApiKey))));
}

}  // namespace
}  // namespace vision_gateway::gemini
