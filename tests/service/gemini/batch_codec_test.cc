// The Batch API's JSON: what we send (batchGenerateContent, JSONL input lines) and what we read
// (operations, lists, responses-file lines) in the exact shapes of gemini-wire.md's addendum.
#include "service/gemini/batch_codec.h"

#include <string>

#include <boost/json.hpp>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/common/error_reasons.h"
#include "service/common/status_details.h"
#include "service/gemini/json_codec.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::gemini {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;
using ::vision_gateway::testing::IsOk;

GenerateContentRequest Request(std::string text) {
  GenerateContentRequest request;
  Content content;
  content.role = "user";
  Part part;
  part.text = std::move(text);
  content.parts.push_back(part);
  request.contents.push_back(content);
  return request;
}

json::value Parse(const std::string& text) { return json::parse(text); }

constexpr char kResponse[] =
    R"({"candidates":[{"content":{"role":"model","parts":[{"text":"a red box"}]},)"
    R"("finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":3,)"
    R"("totalTokenCount":13},"modelVersion":"gemini-3-flash-preview"})";

TEST(BatchCodecTest, EncodesInlineCreateAsTheSdkDoes) {
  CreateBatchRequest request;
  request.display_name = "tags \"2026\"";
  request.inlined_requests.push_back({.request = Request("caption"), .key = "item-1"});
  request.inlined_requests.push_back({.request = Request("again"), .key = ""});
  absl::StatusOr<std::string> body = EncodeCreateBatchRequest(request);
  ASSERT_THAT(body, IsOk());
  const json::value v = Parse(*body);
  EXPECT_EQ(v.at("batch").at("displayName"), json::value("tags \"2026\""));
  const json::array& items = v.at("batch").at("inputConfig").at("requests").at("requests").as_array();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].at("metadata").at("key"), json::value("item-1"));
  EXPECT_EQ(items[0].at("request").at("contents").at(0).at("parts").at(0).at("text"),
            json::value("caption"));
  EXPECT_FALSE(items[1].as_object().contains("metadata"));  // no key: no metadata
  absl::StatusOr<GenerateContentRequest> round =
      DecodeGenerateContentRequest(json::serialize(items[0].at("request")));
  ASSERT_THAT(round, IsOk());
  EXPECT_EQ(round->contents[0].parts[0].text, "caption");
}

TEST(BatchCodecTest, EncodesFileCreateAndRefusesBadInput) {
  CreateBatchRequest request;
  request.display_name = "d";
  request.input_file = "files/abc-1";
  absl::StatusOr<std::string> body = EncodeCreateBatchRequest(request);
  ASSERT_THAT(body, IsOk());
  EXPECT_EQ(*body, R"({"batch":{"displayName":"d","inputConfig":{"fileName":"files/abc-1"}}})");

  CreateBatchRequest both = request;
  both.inlined_requests.push_back({.request = Request("x")});
  EXPECT_EQ(EncodeCreateBatchRequest(both).status().code(), absl::StatusCode::kInvalidArgument);
  CreateBatchRequest neither;
  neither.display_name = "d";
  EXPECT_EQ(EncodeCreateBatchRequest(neither).status().code(), absl::StatusCode::kInvalidArgument);
  CreateBatchRequest unnamed = request;
  unnamed.display_name.clear();
  EXPECT_EQ(EncodeCreateBatchRequest(unnamed).status().code(), absl::StatusCode::kInvalidArgument);
  CreateBatchRequest bad_file = request;
  bad_file.input_file = "files/../x";
  EXPECT_EQ(EncodeCreateBatchRequest(bad_file).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(BatchCodecTest, RequestLineRoundTrips) {
  absl::StatusOr<std::string> line = EncodeBatchRequestLine("k\n\"1\"", Request("hello"));
  ASSERT_THAT(line, IsOk());
  EXPECT_EQ(line->find('\n'), std::string::npos);  // one JSONL line, the key escaped
  const json::value v = Parse(*line);
  EXPECT_EQ(v.at("key"), json::value("k\n\"1\""));
  EXPECT_EQ(v.at("request").at("contents").at(0).at("parts").at(0).at("text"),
            json::value("hello"));
  EXPECT_EQ(EncodeBatchRequestLine(std::string(kMaxBatchKeyBytes + 1, 'k'), Request("x"))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BatchCodecTest, DecodesResponseAndErrorLines) {
  absl::StatusOr<BatchResponseLine> ok =
      DecodeBatchResponseLine(absl::StrCat(R"({"key":"a","response":)", kResponse, "}"));
  ASSERT_THAT(ok, IsOk());
  EXPECT_EQ(ok->key, "a");
  ASSERT_TRUE(ok->response.has_value());
  EXPECT_EQ(ok->response->candidates[0].content.parts[0].text, "a red box");
  EXPECT_THAT(ok->error, IsOk());
  EXPECT_EQ(DecodeGenerateContentResponse(EncodeGenerateContentResponse(*ok->response))->model_version,
            "gemini-3-flash-preview");

  absl::StatusOr<BatchResponseLine> failed = DecodeBatchResponseLine(
      R"({"key":"b","error":{"code":429,"message":"Resource has been exhausted.","status":"RESOURCE_EXHAUSTED"}})");
  ASSERT_THAT(failed, IsOk());
  EXPECT_EQ(failed->key, "b");
  EXPECT_FALSE(failed->response.has_value());
  EXPECT_EQ(failed->error.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(GetOutcome(failed->error), reasons::kUpstreamRateLimited);
  EXPECT_THAT(failed->error.message(), HasSubstr("Resource has been exhausted."));

  // A google.rpc.Status with a canonical code and no name (3 = INVALID_ARGUMENT).
  absl::StatusOr<BatchResponseLine> canonical =
      DecodeBatchResponseLine(R"({"key":"c","error":{"code":3,"message":"bad image"}})");
  ASSERT_THAT(canonical, IsOk());
  EXPECT_EQ(canonical->error.code(), absl::StatusCode::kInvalidArgument);
}

TEST(BatchCodecTest, BadLinesAreUpstreamBadResponse) {
  for (const std::string line :
       {"", "not json", "[1]", R"({"key":"a"})", R"({"key":1,"response":{}})",
        R"({"key":"a","response":{},"error":{"code":3}})", R"({"key":"a","response":[]})",
        R"({"key":"a","response":{"candidates":"x"}})", R"({"key":"a","error":"x"})"}) {
    absl::StatusOr<BatchResponseLine> decoded = DecodeBatchResponseLine(line);
    EXPECT_FALSE(decoded.ok()) << line;
    EXPECT_EQ(GetOutcome(decoded.status()), reasons::kUpstreamBadResponse) << line;
  }
  const std::string huge =
      absl::StrCat(R"({"key":"a","response":{"x":")", std::string(kMaxBatchResponseLineBytes, 'x'),
                   "\"}}");
  EXPECT_EQ(GetOutcome(DecodeBatchResponseLine(huge).status()),
            reasons::kUpstreamResponseTooLarge);
}

TEST(BatchCodecTest, DecodesOperations) {
  const std::string running = R"({"name":"batches/abc123","metadata":{
      "@type":"type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch",
      "model":"models/gemini-3-flash-preview","displayName":"nightly",
      "createTime":"2026-12-07T10:00:00.123456Z","updateTime":"2026-12-07T10:00:01Z",
      "batchStats":{"requestCount":"3","pendingRequestCount":"3"},
      "state":"BATCH_STATE_RUNNING","name":"batches/abc123",
      "inputConfig":{"fileName":"files/in-1"}}})";
  absl::StatusOr<BatchJob> job = DecodeBatchOperation(running);
  ASSERT_THAT(job, IsOk());
  EXPECT_EQ(job->name, "batches/abc123");
  EXPECT_EQ(job->display_name, "nightly");
  EXPECT_EQ(job->model, "models/gemini-3-flash-preview");
  EXPECT_EQ(job->state, "BATCH_STATE_RUNNING");
  EXPECT_EQ(job->create_time, absl::FromUnixMicros(1796637600123456));
  EXPECT_EQ(job->end_time, absl::InfinitePast());
  EXPECT_EQ(job->stats.request_count, 3);
  EXPECT_EQ(job->stats.pending_request_count, 3);
  EXPECT_EQ(job->input_file, "files/in-1");
  EXPECT_TRUE(job->responses_file.empty());

  const std::string inline_done = absl::StrCat(
      R"({"name":"batches/x","done":true,"metadata":{"state":"BATCH_STATE_SUCCEEDED",)",
      R"("batchStats":{"requestCount":2,"successfulRequestCount":"1","failedRequestCount":"1"},)",
      R"("output":{"inlinedResponses":{"inlinedResponses":[{"response":)", kResponse,
      R"(,"metadata":{"key":"k1"}},{"error":{"code":400,"message":"no","status":"INVALID_ARGUMENT"},)",
      R"("metadata":{"key":"k2"}}]}}}})");
  job = DecodeBatchOperation(inline_done);
  ASSERT_THAT(job, IsOk());
  ASSERT_EQ(job->inlined_responses.size(), 2u);
  EXPECT_EQ(job->inlined_responses[0].key, "k1");
  EXPECT_TRUE(job->inlined_responses[0].response.has_value());
  EXPECT_EQ(job->inlined_responses[1].key, "k2");
  EXPECT_EQ(job->inlined_responses[1].error.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(job->stats.failed_request_count, 1);

  // The output read from the operation's response when metadata has none; a FAILED job's error.
  job = DecodeBatchOperation(
      R"({"name":"batches/y","done":true,"metadata":{"state":"BATCH_STATE_SUCCEEDED"},)"
      R"("response":{"@type":"x","responsesFile":"files/batch-y"}})");
  ASSERT_THAT(job, IsOk());
  EXPECT_EQ(job->responses_file, "files/batch-y");
  job = DecodeBatchOperation(
      R"({"name":"batches/z","done":true,"metadata":{"state":"BATCH_STATE_FAILED"},)"
      R"("error":{"code":13,"message":"internal"}})");
  ASSERT_THAT(job, IsOk());
  EXPECT_EQ(job->error.code(), absl::StatusCode::kInternal);

  for (const std::string bad :
       {"{}", R"({"name":"batches/a"})", R"({"name":"other/a","metadata":{}})",
        R"({"name":"batches/a","metadata":{"batchStats":{"requestCount":"many"}}})",
        R"({"name":"batches/a","metadata":{"createTime":"yesterday"}})"}) {
    EXPECT_EQ(GetOutcome(DecodeBatchOperation(bad).status()), reasons::kUpstreamBadResponse)
        << bad;
  }
}

TEST(BatchCodecTest, DecodesLists) {
  absl::StatusOr<ListBatchesResponse> list = DecodeListBatchesResponse(
      R"({"operations":[{"name":"batches/b","metadata":{"state":"BATCH_STATE_PENDING"}},)"
      R"({"name":"batches/a","metadata":{"state":"BATCH_STATE_CANCELLED"}}],"nextPageToken":"t1"})");
  ASSERT_THAT(list, IsOk());
  ASSERT_EQ(list->batches.size(), 2u);
  EXPECT_EQ(list->batches[0].name, "batches/b");
  EXPECT_EQ(list->batches[1].state, "BATCH_STATE_CANCELLED");
  EXPECT_EQ(list->next_page_token, "t1");
  list = DecodeListBatchesResponse("{}");
  ASSERT_THAT(list, IsOk());
  EXPECT_TRUE(list->batches.empty());
}

TEST(BatchCodecTest, BatchIdOf) {
  EXPECT_EQ(BatchIdOf("batches/abc-123"), "abc-123");
  EXPECT_EQ(BatchIdOf("batches/"), "");
  EXPECT_EQ(BatchIdOf("batches/ABC"), "");
  EXPECT_EQ(BatchIdOf("batches/a/b"), "");
  EXPECT_EQ(BatchIdOf("files/abc"), "");
  EXPECT_EQ(BatchIdOf(absl::StrCat("batches/", std::string(65, 'a'))), "");
}

}  // namespace
}  // namespace vision_gateway::gemini
