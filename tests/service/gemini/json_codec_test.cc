#include "service/gemini/json_codec.h"

#include <limits>
#include <string>
#include <string_view>

#include "boost/json.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/gemini/types.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::gemini {
namespace {

namespace json = boost::json;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::vision_gateway::testing::IsOk;
using ::vision_gateway::testing::StatusIs;

json::value Parse(std::string_view text) {
  json::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  EXPECT_FALSE(ec) << "not JSON: " << text;
  return v;
}

// Structural equality (object member order does not matter).
void ExpectSameJson(std::string_view actual, std::string_view expected) {
  EXPECT_EQ(Parse(actual), Parse(expected)) << "actual:   " << actual << "\nexpected: " << expected;
}

std::string AllByteValues() {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  return bytes;
}

GenerateContentRequest FullRequest() {
  GenerateContentRequest request;
  Content& system = request.system_instruction.emplace();
  system.parts.push_back(Part{.text = "Return bounding boxes as a JSON array."});
  Content& user = request.contents.emplace_back();
  user.role = "user";
  Part image;
  image.inline_data = Blob{.mime_type = "image/png", .data = std::string("\x89PNG\r\n\x1a\n", 8)};
  image.media_resolution = "MEDIA_RESOLUTION_HIGH";
  user.parts.push_back(image);
  Part file;
  file.file_data = FileData{.mime_type = "image/jpeg",
                            .file_uri = "https://generativelanguage.googleapis.com/v1beta/files/abc"};
  user.parts.push_back(file);
  user.parts.push_back(Part{.text = "Detect the \"cupcakes\"\n\tcaf\xc3\xa9 \xf0\x9f\x98\x80"});
  GenerationConfig& config = request.generation_config.emplace();
  config.temperature = 0.5f;
  config.max_output_tokens = 8192;
  config.response_mime_type = "application/json";
  config.response_json_schema =
      R"({"type": "array", "items": {"type": "object", "properties": {"box_2d": {"type": "array"}}}})";
  config.media_resolution = "MEDIA_RESOLUTION_MEDIUM";
  config.thinking_config = ThinkingConfig{
      .thinking_budget = 0, .thinking_level = "LOW", .include_thoughts = false};
  request.safety_settings.push_back(
      SafetySetting{.category = "HARM_CATEGORY_DANGEROUS_CONTENT", .threshold = "BLOCK_ONLY_HIGH"});
  return request;
}

TEST(JsonCodecTest, EncodeRequestMatchesExpectedJson) {
  absl::StatusOr<std::string> body = EncodeGenerateContentRequest(FullRequest());
  ASSERT_THAT(body, IsOk());
  ExpectSameJson(*body, R"json({
    "contents": [{"role": "user", "parts": [
      {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="},
       "mediaResolution": {"level": "MEDIA_RESOLUTION_HIGH"}},
      {"fileData": {"mimeType": "image/jpeg",
                    "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc"}},
      {"text": "Detect the \"cupcakes\"\n\tcafé 😀"}]}],
    "systemInstruction": {"parts": [{"text": "Return bounding boxes as a JSON array."}]},
    "generationConfig": {
      "temperature": 0.5, "maxOutputTokens": 8192, "responseMimeType": "application/json",
      "responseJsonSchema": {"type": "array", "items": {"type": "object",
                             "properties": {"box_2d": {"type": "array"}}}},
      "mediaResolution": "MEDIA_RESOLUTION_MEDIUM",
      "thinkingConfig": {"thinkingBudget": 0, "thinkingLevel": "LOW", "includeThoughts": false}},
    "safetySettings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                        "threshold": "BLOCK_ONLY_HIGH"}]})json");
}

TEST(JsonCodecTest, EncodeMinimalRequestIsCompactAndOmitsUnsetFields) {
  GenerateContentRequest request;
  request.contents.push_back(Content{.role = "user", .parts = {Part{.text = "hi"}}});
  absl::StatusOr<std::string> body = EncodeGenerateContentRequest(request);
  ASSERT_THAT(body, IsOk());
  EXPECT_EQ(*body, R"({"contents":[{"role":"user","parts":[{"text":"hi"}]}]})");
}

TEST(JsonCodecTest, EncodeThoughtPartKeepsSignature) {
  GenerateContentRequest request;
  Content& model = request.contents.emplace_back();
  model.role = "model";
  model.parts.push_back(Part{.text = "thinking", .thought = true, .thought_signature = "c2ln"});
  absl::StatusOr<std::string> body = EncodeGenerateContentRequest(request);
  ASSERT_THAT(body, IsOk());
  ExpectSameJson(*body, R"({"contents":[{"role":"model","parts":[
      {"text":"thinking","thought":true,"thoughtSignature":"c2ln"}]}]})");
}

TEST(JsonCodecTest, EncodeRejectsPartWithTwoDataFields) {
  GenerateContentRequest request;
  Part part;
  part.text = "caption";
  part.inline_data = Blob{.mime_type = "image/png", .data = "x"};
  request.contents.push_back(Content{.role = "user", .parts = {part}});
  EXPECT_THAT(EncodeGenerateContentRequest(request),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("contents[0].parts[0]")));
}

TEST(JsonCodecTest, EncodeRejectsSchemaThatIsNotJson) {
  GenerateContentRequest request = FullRequest();
  request.generation_config->response_json_schema = R"({"type": "array",)";
  EXPECT_THAT(EncodeGenerateContentRequest(request),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("responseJsonSchema")));
  request.generation_config->response_json_schema = R"({"type": "array"} trailing)";
  EXPECT_THAT(EncodeGenerateContentRequest(request),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(JsonCodecTest, EncodeRejectsNonFiniteTemperature) {
  GenerateContentRequest request = FullRequest();
  request.generation_config->temperature = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THAT(EncodeGenerateContentRequest(request), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(JsonCodecTest, EncodeRejectsBodyOverLimit) {
  GenerateContentRequest request;
  Part image;
  image.inline_data = Blob{.mime_type = "image/png", .data = std::string(300, 'x')};
  request.contents.push_back(Content{.role = "user", .parts = {image}});
  EXPECT_THAT(EncodeGenerateContentRequest(request, JsonCodecOptions{.max_body_bytes = 400}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("exceeds")));
  EXPECT_THAT(EncodeGenerateContentRequest(request, JsonCodecOptions{.max_body_bytes = 1000}),
              IsOk());
}

TEST(JsonCodecTest, EncodeCountTokensRequestSendsOnlyContents) {
  CountTokensRequest request;
  request.contents.push_back(Content{.role = "user", .parts = {Part{.text = "count me"}}});
  absl::StatusOr<std::string> body = EncodeCountTokensRequest(request);
  ASSERT_THAT(body, IsOk());
  EXPECT_EQ(*body, R"({"contents":[{"role":"user","parts":[{"text":"count me"}]}]})");
}

TEST(JsonCodecTest, RequestRoundTripsThroughDecode) {
  GenerateContentRequest request = FullRequest();
  request.contents[0].parts[0].inline_data->data = AllByteValues();
  absl::StatusOr<std::string> body = EncodeGenerateContentRequest(request);
  ASSERT_THAT(body, IsOk());
  absl::StatusOr<GenerateContentRequest> decoded = DecodeGenerateContentRequest(*body);
  ASSERT_THAT(decoded, IsOk());

  ASSERT_EQ(decoded->contents.size(), 1u);
  const std::vector<Part>& parts = decoded->contents[0].parts;
  EXPECT_EQ(decoded->contents[0].role, "user");
  ASSERT_EQ(parts.size(), 3u);
  ASSERT_TRUE(parts[0].inline_data.has_value());
  EXPECT_EQ(parts[0].inline_data->mime_type, "image/png");
  EXPECT_EQ(parts[0].inline_data->data, AllByteValues());
  EXPECT_EQ(parts[0].media_resolution, "MEDIA_RESOLUTION_HIGH");
  ASSERT_TRUE(parts[1].file_data.has_value());
  EXPECT_EQ(parts[1].file_data->file_uri, request.contents[0].parts[1].file_data->file_uri);
  EXPECT_EQ(parts[2].text, request.contents[0].parts[2].text);
  ASSERT_TRUE(decoded->system_instruction.has_value());
  EXPECT_EQ(decoded->system_instruction->parts[0].text, "Return bounding boxes as a JSON array.");

  ASSERT_TRUE(decoded->generation_config.has_value());
  const GenerationConfig& config = *decoded->generation_config;
  EXPECT_EQ(config.temperature, 0.5f);
  EXPECT_EQ(config.max_output_tokens, 8192);
  EXPECT_EQ(config.response_mime_type, "application/json");
  EXPECT_EQ(Parse(config.response_json_schema),
            Parse(request.generation_config->response_json_schema));
  EXPECT_EQ(config.media_resolution, "MEDIA_RESOLUTION_MEDIUM");
  ASSERT_TRUE(config.thinking_config.has_value());
  EXPECT_EQ(config.thinking_config->thinking_budget, 0);
  EXPECT_EQ(config.thinking_config->thinking_level, "LOW");
  EXPECT_EQ(config.thinking_config->include_thoughts, false);
  ASSERT_EQ(decoded->safety_settings.size(), 1u);
  EXPECT_EQ(decoded->safety_settings[0].category, "HARM_CATEGORY_DANGEROUS_CONTENT");
  EXPECT_EQ(decoded->safety_settings[0].threshold, "BLOCK_ONLY_HIGH");

  // And encoding the decoded request gives the same document again.
  absl::StatusOr<std::string> again = EncodeGenerateContentRequest(*decoded);
  ASSERT_THAT(again, IsOk());
  ExpectSameJson(*again, *body);
}

TEST(JsonCodecTest, DecodeRequestAcceptsSnakeCaseAndNumericEnums) {
  // Shape of the official curl samples (proto field names) and the cookbook's numeric enums.
  absl::StatusOr<GenerateContentRequest> decoded = DecodeGenerateContentRequest(R"({
    "contents": [{"parts": [
      {"inline_data": {"mime_type": "image/jpeg", "data": "_-8"}},
      {"file_data": {"mime_type": "image/png", "file_uri": "https://x/files/1"}},
      {"text": "Caption this image."}]}],
    "system_instruction": {"parts": [{"text": "be brief"}]},
    "generation_config": {"max_output_tokens": "128", "response_mime_type": "text/plain",
                          "thinking_config": {"thinking_budget": -1, "include_thoughts": true},
                          "topP": 0.9},
    "safety_settings": [{"category": 7, "threshold": 4}],
    "tools": []})");
  ASSERT_THAT(decoded, IsOk());
  ASSERT_EQ(decoded->contents[0].parts.size(), 3u);
  EXPECT_EQ(decoded->contents[0].parts[0].inline_data->mime_type, "image/jpeg");
  EXPECT_EQ(decoded->contents[0].parts[0].inline_data->data, "\xff\xef");
  EXPECT_EQ(decoded->contents[0].parts[1].file_data->file_uri, "https://x/files/1");
  EXPECT_EQ(decoded->system_instruction->parts[0].text, "be brief");
  EXPECT_EQ(decoded->generation_config->max_output_tokens, 128);
  EXPECT_EQ(decoded->generation_config->thinking_config->thinking_budget, -1);
  EXPECT_EQ(decoded->generation_config->thinking_config->include_thoughts, true);
  EXPECT_EQ(decoded->safety_settings[0].category, "7");
  EXPECT_EQ(decoded->safety_settings[0].threshold, "4");
}

TEST(JsonCodecTest, DecodeRequestRejectsBadBase64AndWrongTypes) {
  EXPECT_THAT(DecodeGenerateContentRequest(
                  R"({"contents":[{"parts":[{"inlineData":{"mimeType":"image/png","data":"a*b="}}]}]})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("inlineData.data")));
  EXPECT_THAT(DecodeGenerateContentRequest(R"({"contents":{"parts":[]}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("contents is not an array")));
  EXPECT_THAT(DecodeGenerateContentRequest("not json"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(JsonCodecTest, DecodeCountTokensRequestAcceptsBothForms) {
  absl::StatusOr<CountTokensRequest> bare =
      DecodeCountTokensRequest(R"({"contents":[{"parts":[{"text":"a"}]}]})");
  ASSERT_THAT(bare, IsOk());
  EXPECT_EQ(bare->contents[0].parts[0].text, "a");
  absl::StatusOr<CountTokensRequest> wrapped = DecodeCountTokensRequest(
      R"({"generateContentRequest":{"model":"models/m","contents":[{"parts":[{"text":"b"}]}]}})");
  ASSERT_THAT(wrapped, IsOk());
  EXPECT_EQ(wrapped->contents[0].parts[0].text, "b");
}

// The two SSE chunks of gemini-wire.md §3 (LOU capture shape): delta text, finishReason only on
// the last, cumulative usage on both.
constexpr std::string_view kChunk1 =
    R"({"candidates": [{"content": {"parts": [{"text": "Okay, let's"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 4,"candidatesTokenCount": 49,"totalTokenCount": 2095,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 4}],"thoughtsTokenCount": 2042},"modelVersion": "gemini-2.5-flash","responseId": "IZI2acSKMoWl0-kPmYj2yQc"})";
constexpr std::string_view kChunk2 =
    R"({"candidates": [{"content": {"parts": [{"text": " etc."}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 4,"candidatesTokenCount": 52,"totalTokenCount": 2098,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 4}],"thoughtsTokenCount": 2042},"modelVersion": "gemini-2.5-flash","responseId": "IZI2acSKMoWl0-kPmYj2yQc"})";

TEST(JsonCodecTest, DecodesRecordedStreamChunks) {
  absl::StatusOr<GenerateContentResponse> first = DecodeGenerateContentResponse(kChunk1);
  ASSERT_THAT(first, IsOk());
  ASSERT_EQ(first->candidates.size(), 1u);
  EXPECT_EQ(first->candidates[0].content.role, "model");
  EXPECT_EQ(AnswerText(*first), "Okay, let's");
  EXPECT_EQ(first->candidates[0].finish_reason, "");
  EXPECT_EQ(first->candidates[0].index, 0);
  ASSERT_TRUE(first->usage_metadata.has_value());
  EXPECT_EQ(first->usage_metadata->prompt_token_count, 4);
  EXPECT_EQ(first->usage_metadata->candidates_token_count, 49);
  EXPECT_EQ(first->usage_metadata->thoughts_token_count, 2042);
  EXPECT_EQ(first->usage_metadata->total_token_count, 2095);
  EXPECT_EQ(first->model_version, "gemini-2.5-flash");
  EXPECT_EQ(first->response_id, "IZI2acSKMoWl0-kPmYj2yQc");
  EXPECT_FALSE(first->prompt_feedback.has_value());

  absl::StatusOr<GenerateContentResponse> last = DecodeGenerateContentResponse(kChunk2);
  ASSERT_THAT(last, IsOk());
  EXPECT_EQ(AnswerText(*last), " etc.");
  EXPECT_EQ(last->candidates[0].finish_reason, "STOP");
  EXPECT_EQ(last->usage_metadata->candidates_token_count, 52);
  EXPECT_EQ(last->usage_metadata->total_token_count, 2098);
  EXPECT_EQ(last->response_id, first->response_id);
}

TEST(JsonCodecTest, DecodeIgnoresUnknownFields) {
  absl::StatusOr<GenerateContentResponse> r = DecodeGenerateContentResponse(R"({
    "candidates": [{"content": {"parts": [{"text": "a", "functionCall": {"name": "f"}}],
                                "role": "model"},
                    "finishReason": "SOME_FUTURE_REASON", "safetyRatings": [{"category": "X"}],
                    "citationMetadata": {}, "avgLogprobs": -0.5}],
    "usageMetadata": {"promptTokenCount": 1, "cachedContentTokenCount": 7,
                      "toolUsePromptTokenCount": 3, "cacheTokensDetails": []},
    "serviceTier": "standard"})");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->candidates[0].finish_reason, "SOME_FUTURE_REASON");
  EXPECT_EQ(r->usage_metadata->cached_content_token_count, 7);
}

TEST(JsonCodecTest, DecodeBlockedPrompt) {
  absl::StatusOr<GenerateContentResponse> r = DecodeGenerateContentResponse(
      R"({"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
          {"category": "HARM_CATEGORY_HARASSMENT", "probability": "MEDIUM"}]}})");
  ASSERT_THAT(r, IsOk());
  EXPECT_TRUE(r->candidates.empty());
  ASSERT_TRUE(r->prompt_feedback.has_value());
  EXPECT_EQ(r->prompt_feedback->block_reason, "SAFETY");
  EXPECT_EQ(AnswerText(*r), "");
}

TEST(JsonCodecTest, DecodeWrongTypeIsInternalAndNamesTheField) {
  EXPECT_THAT(DecodeGenerateContentResponse(
                  R"({"candidates":[{"content":{"parts":[{"text":"ok"},{"text":42}]}}]})"),
              StatusIs(absl::StatusCode::kInternal,
                       HasSubstr("malformed Gemini response: candidates[0].content.parts[1].text")));
  EXPECT_THAT(DecodeGenerateContentResponse(R"({"usageMetadata":{"totalTokenCount":"many"}})"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("usageMetadata.totalTokenCount")));
  EXPECT_THAT(DecodeGenerateContentResponse(R"({"candidates":[{"index":4294967296}]})"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("candidates[0].index")));
  EXPECT_THAT(DecodeGenerateContentResponse(R"({"candidates":[{"content":{"parts":[{"thought":"yes"}]}}]})"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("thought is not a boolean")));
}

TEST(JsonCodecTest, DecodeErrorsNeverEchoThePayload) {
  const std::string secret = "SECRET-PAYLOAD-TEXT";
  EXPECT_THAT(DecodeGenerateContentResponse(R"({"modelVersion":[")" + secret + R"("]})"),
              StatusIs(absl::StatusCode::kInternal, Not(HasSubstr(secret))));
  EXPECT_THAT(DecodeGenerateContentResponse(R"({"candidates": ")" + secret + R"(" )"),
              StatusIs(absl::StatusCode::kInternal,
                       AllOf(HasSubstr("not valid JSON"), Not(HasSubstr(secret)))));
  EXPECT_THAT(DecodeGenerateContentResponse("[1,2]"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("not a JSON object")));
}

TEST(JsonCodecTest, DecodeRejectsBodyOverLimit) {
  const std::string body(2048, ' ');
  EXPECT_THAT(DecodeGenerateContentResponse(body, JsonCodecOptions{.max_body_bytes = 1024}),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(DecodeGenerateContentRequest(body, JsonCodecOptions{.max_body_bytes = 1024}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(JsonCodecTest, DecodeCountTokensResponse) {
  absl::StatusOr<CountTokensResponse> r = DecodeCountTokensResponse(R"({"totalTokens": 11,
      "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 11}],
      "contentTokens": [{"partTokens": [10], "roleTokens": 1}], "systemInstructionsTokens": {}})");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->total_tokens, 11);
  EXPECT_EQ(r->cached_content_token_count, 0);
  absl::StatusOr<CountTokensResponse> s = DecodeCountTokensResponse(R"({"totalTokens":"12"})");
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->total_tokens, 12);
  EXPECT_THAT(DecodeCountTokensResponse(R"({"totalTokens":1.5})"),
              StatusIs(absl::StatusCode::kInternal));
}

TEST(JsonCodecTest, ResponseRoundTripsThroughEncode) {
  GenerateContentResponse response;
  Candidate& c = response.candidates.emplace_back();
  c.content.role = "model";
  c.content.parts.push_back(Part{.text = "plan", .thought = true});
  c.content.parts.push_back(Part{.text = "[{\"box_2d\": [1, 2, 3, 4]}]", .thought_signature = "AbC="});
  c.finish_reason = "MAX_TOKENS";
  c.index = 0;
  response.usage_metadata = UsageMetadata{.prompt_token_count = 260,
                                          .candidates_token_count = 40,
                                          .thoughts_token_count = 12,
                                          .total_token_count = 312,
                                          .cached_content_token_count = 5};
  response.model_version = "gemini-2.5-flash";
  response.response_id = "resp-1";
  const std::string body = EncodeGenerateContentResponse(response);
  absl::StatusOr<GenerateContentResponse> back = DecodeGenerateContentResponse(body);
  ASSERT_THAT(back, IsOk());
  ASSERT_EQ(back->candidates.size(), 1u);
  ASSERT_EQ(back->candidates[0].content.parts.size(), 2u);
  EXPECT_TRUE(back->candidates[0].content.parts[0].thought);
  EXPECT_EQ(back->candidates[0].content.parts[1].text, c.content.parts[1].text);
  EXPECT_EQ(back->candidates[0].content.parts[1].thought_signature, "AbC=");
  EXPECT_EQ(back->candidates[0].finish_reason, "MAX_TOKENS");
  EXPECT_EQ(back->usage_metadata->prompt_token_count, 260);
  EXPECT_EQ(back->usage_metadata->candidates_token_count, 40);
  EXPECT_EQ(back->usage_metadata->thoughts_token_count, 12);
  EXPECT_EQ(back->usage_metadata->total_token_count, 312);
  EXPECT_EQ(back->usage_metadata->cached_content_token_count, 5);
  EXPECT_EQ(back->model_version, "gemini-2.5-flash");
  EXPECT_EQ(back->response_id, "resp-1");
  EXPECT_EQ(AnswerText(*back), c.content.parts[1].text);

  GenerateContentResponse blocked;
  blocked.prompt_feedback = PromptFeedback{.block_reason = "PROHIBITED_CONTENT"};
  ExpectSameJson(EncodeGenerateContentResponse(blocked),
                 R"({"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"}})");
  ExpectSameJson(EncodeCountTokensResponse(CountTokensResponse{.total_tokens = 11}),
                 R"({"totalTokens":11})");
}

TEST(AnswerTextTest, SkipsThoughtPartsAndUsesFirstCandidate) {
  GenerateContentResponse r;
  Candidate& first = r.candidates.emplace_back();
  first.content.parts.push_back(Part{.text = "I should look at the image. ", .thought = true});
  first.content.parts.push_back(Part{.text = "A red "});
  first.content.parts.push_back(Part{.text = "hidden", .thought = true});
  first.content.parts.push_back(Part{.text = "square."});
  Candidate& second = r.candidates.emplace_back();
  second.content.parts.push_back(Part{.text = "other candidate"});
  EXPECT_EQ(AnswerText(r), "A red square.");
  EXPECT_EQ(AnswerText(GenerateContentResponse{}), "");
}

}  // namespace
}  // namespace vision_gateway::gemini
