#include "service/gemini/error_envelope.h"

#include <ostream>
#include <string>
#include <string_view>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"
#include "service/common/status_details.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::gemini {
namespace {

using ::testing::AllOf;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using ::vision_gateway::testing::IsOk;
using ::vision_gateway::testing::StatusIs;

struct HttpCase {
  int http_status;
  absl::StatusCode code;
  friend void PrintTo(const HttpCase& c, std::ostream* os) {
    *os << "HTTP " << c.http_status << " -> " << absl::StatusCodeToString(c.code);
  }
};

class HttpStatusMappingTest : public ::testing::TestWithParam<HttpCase> {};

TEST_P(HttpStatusMappingTest, EmptyBodyMapsByHttpStatus) {
  const HttpCase& c = GetParam();
  EXPECT_EQ(StatusCodeFromHttpStatus(c.http_status), c.code);
  EXPECT_THAT(StatusFromHttpError(c.http_status, ""),
              StatusIs(c.code, absl::StrCat("Gemini: HTTP ", c.http_status)));
}

TEST_P(HttpStatusMappingTest, EnvelopeWithoutStatusStringMapsByHttpStatus) {
  const HttpCase& c = GetParam();
  const std::string body =
      absl::StrCat(R"({"error": {"code": )", c.http_status, R"(, "message": "upstream says no"}})");
  EXPECT_THAT(StatusFromHttpError(c.http_status, body), StatusIs(c.code, "Gemini: upstream says no"));
}

INSTANTIATE_TEST_SUITE_P(
    AllCodes, HttpStatusMappingTest,
    ::testing::Values(HttpCase{400, absl::StatusCode::kInvalidArgument},
                      HttpCase{401, absl::StatusCode::kUnauthenticated},
                      HttpCase{403, absl::StatusCode::kPermissionDenied},
                      HttpCase{404, absl::StatusCode::kNotFound},
                      HttpCase{408, absl::StatusCode::kUnavailable},
                      HttpCase{409, absl::StatusCode::kAborted},
                      HttpCase{429, absl::StatusCode::kResourceExhausted},
                      HttpCase{499, absl::StatusCode::kCancelled},
                      HttpCase{500, absl::StatusCode::kInternal},
                      HttpCase{501, absl::StatusCode::kUnimplemented},
                      HttpCase{502, absl::StatusCode::kUnavailable},
                      HttpCase{503, absl::StatusCode::kUnavailable},
                      HttpCase{504, absl::StatusCode::kDeadlineExceeded},
                      HttpCase{405, absl::StatusCode::kFailedPrecondition},
                      HttpCase{413, absl::StatusCode::kFailedPrecondition},
                      HttpCase{505, absl::StatusCode::kInternal},
                      HttpCase{599, absl::StatusCode::kInternal},
                      HttpCase{302, absl::StatusCode::kUnknown},
                      HttpCase{200, absl::StatusCode::kUnknown}));

struct NameCase {
  std::string_view name;
  absl::StatusCode code;
  friend void PrintTo(const NameCase& c, std::ostream* os) { *os << c.name; }
};

class StatusNameMappingTest : public ::testing::TestWithParam<NameCase> {};

TEST_P(StatusNameMappingTest, StatusStringWinsOverHttpStatus) {
  const NameCase& c = GetParam();
  EXPECT_EQ(StatusCodeFromName(c.name), c.code);
  // 400 on the wire, but the envelope's status string decides (e.g. 400 FAILED_PRECONDITION).
  const std::string body = absl::StrCat(R"({"error": {"code": 400, "message": "m", "status": ")",
                                        std::string(c.name), R"("}})");
  EXPECT_THAT(StatusFromHttpError(400, body), StatusIs(c.code, "Gemini: m"));
  // Mid-stream objects map the same way.
  EXPECT_THAT(StatusFromErrorJson(body), StatusIs(c.code, "Gemini: m"));
}

INSTANTIATE_TEST_SUITE_P(
    AllNames, StatusNameMappingTest,
    ::testing::Values(NameCase{"CANCELLED", absl::StatusCode::kCancelled},
                      NameCase{"UNKNOWN", absl::StatusCode::kUnknown},
                      NameCase{"INVALID_ARGUMENT", absl::StatusCode::kInvalidArgument},
                      NameCase{"DEADLINE_EXCEEDED", absl::StatusCode::kDeadlineExceeded},
                      NameCase{"NOT_FOUND", absl::StatusCode::kNotFound},
                      NameCase{"ALREADY_EXISTS", absl::StatusCode::kAlreadyExists},
                      NameCase{"PERMISSION_DENIED", absl::StatusCode::kPermissionDenied},
                      NameCase{"RESOURCE_EXHAUSTED", absl::StatusCode::kResourceExhausted},
                      NameCase{"FAILED_PRECONDITION", absl::StatusCode::kFailedPrecondition},
                      NameCase{"ABORTED", absl::StatusCode::kAborted},
                      NameCase{"OUT_OF_RANGE", absl::StatusCode::kOutOfRange},
                      NameCase{"UNIMPLEMENTED", absl::StatusCode::kUnimplemented},
                      NameCase{"INTERNAL", absl::StatusCode::kInternal},
                      NameCase{"UNAVAILABLE", absl::StatusCode::kUnavailable},
                      NameCase{"DATA_LOSS", absl::StatusCode::kDataLoss},
                      NameCase{"UNAUTHENTICATED", absl::StatusCode::kUnauthenticated}));

TEST(ErrorEnvelopeTest, UnknownStatusStringFallsBackToHttpStatus) {
  EXPECT_EQ(StatusCodeFromName("OK"), std::nullopt);
  EXPECT_EQ(StatusCodeFromName("invalid_argument"), std::nullopt);
  EXPECT_THAT(StatusFromHttpError(503, R"({"error":{"message":"m","status":"SOMETHING_NEW"}})"),
              StatusIs(absl::StatusCode::kUnavailable, "Gemini: m"));
  EXPECT_THAT(StatusFromHttpError(429, R"({"error":{"message":"m","status":"OK"}})"),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

// gemini-wire.md §5.
constexpr std::string_view kQuota429 = R"json({"error": {"code": 429,
  "message": "You exceeded your current quota, please check your plan and billing details. Please retry in 58.934310785s.",
  "status": "RESOURCE_EXHAUSTED",
  "details": [
    {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
       "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
       "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
       "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"}, "quotaValue": "10"}]},
    {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "15s"}]}})json";

TEST(ErrorEnvelopeTest, Quota429CarriesRetryInfoQuotaFailureAndHelp) {
  const absl::Status status = StatusFromHttpError(429, kQuota429);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kResourceExhausted,
                               StartsWith("Gemini: You exceeded your current quota")));

  google::rpc::RetryInfo retry;
  ASSERT_TRUE(GetDetail(status, retry));
  EXPECT_EQ(retry.retry_delay().seconds(), 15);
  EXPECT_EQ(retry.retry_delay().nanos(), 0);

  google::rpc::QuotaFailure quota;
  ASSERT_TRUE(GetDetail(status, quota));
  ASSERT_EQ(quota.violations_size(), 1);
  EXPECT_EQ(quota.violations(0).subject(),
            "generativelanguage.googleapis.com/generate_content_free_tier_requests");
  EXPECT_EQ(quota.violations(0).description(),
            "GenerateRequestsPerMinutePerProjectPerModel-FreeTier");

  google::rpc::Help help;
  ASSERT_TRUE(GetDetail(status, help));
  ASSERT_EQ(help.links_size(), 1);
  EXPECT_EQ(help.links(0).url(), "https://ai.google.dev/gemini-api/docs/rate-limits");
  EXPECT_EQ(help.links(0).description(), "Learn more about Gemini API quotas");

  google::rpc::ErrorInfo none;
  EXPECT_FALSE(GetDetail(status, none));
}

// A bad key: 400 INVALID_ARGUMENT with ErrorInfo API_KEY_INVALID (continuedev/continue#8516),
// here in the one-element array form the non-SSE stream path uses.
constexpr std::string_view kApiKeyInvalid = R"json([{
  "error": {
    "code": 400,
    "message": "API key not valid. Please pass a valid API key.",
    "status": "INVALID_ARGUMENT",
    "details": [
      {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
       "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}},
      {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
       "message": "API key not valid. Please pass a valid API key."},
      {"@type": "type.googleapis.com/google.rpc.DebugInfo", "detail": "internal stack"}]}}])json";

TEST(ErrorEnvelopeTest, ApiKeyInvalidCarriesErrorInfo) {
  const absl::Status status = StatusFromHttpError(400, kApiKeyInvalid);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument,
                               "Gemini: API key not valid. Please pass a valid API key."));
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(GetDetail(status, info));
  EXPECT_EQ(info.reason(), "API_KEY_INVALID");
  EXPECT_EQ(info.domain(), "googleapis.com");
  EXPECT_EQ(info.metadata().at("service"), "generativelanguage.googleapis.com");
  google::rpc::LocalizedMessage localized;
  ASSERT_TRUE(GetDetail(status, localized));
  EXPECT_EQ(localized.locale(), "en-US");
  google::rpc::DebugInfo debug;
  EXPECT_FALSE(GetDetail(status, debug)) << "DebugInfo is not forwarded";
}

TEST(ErrorEnvelopeTest, FractionalRetryDelayAndBadRequest) {
  const absl::Status status = StatusFromHttpError(400, R"json({"error": {"code": 400,
    "message": "Invalid JSON payload received. Unknown name \"x\" at 'generation_config': Cannot find field.",
    "status": "INVALID_ARGUMENT",
    "details": [
      {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [
        {"field": "generation_config", "description": "Invalid JSON payload received. Unknown name \"x\""}]},
      {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}]}})json");
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Unknown name \"x\"")));
  google::rpc::BadRequest bad;
  ASSERT_TRUE(GetDetail(status, bad));
  ASSERT_EQ(bad.field_violations_size(), 1);
  EXPECT_EQ(bad.field_violations(0).field(), "generation_config");
  google::rpc::RetryInfo retry;
  ASSERT_TRUE(GetDetail(status, retry));
  EXPECT_EQ(retry.retry_delay().seconds(), 1);
  EXPECT_EQ(retry.retry_delay().nanos(), 500000000);
}

TEST(ErrorEnvelopeTest, OverloadedWithoutDetails) {
  const absl::Status status = StatusFromHttpError(
      503, R"({"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}})");
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable,
                               "Gemini: The model is overloaded. Please try again later."));
  google::rpc::RetryInfo retry;
  EXPECT_FALSE(GetDetail(status, retry));
}

TEST(ErrorEnvelopeTest, PlainTextBodyBecomesTheMessage) {
  // Upload endpoint, home-assistant/core#140904.
  EXPECT_THAT(StatusFromHttpError(400,
                                  "The client sent 821333 bytes, which is not a multiple of the "
                                  "8388608 byte chunk granularity.\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "Gemini: HTTP 400: The client sent 821333 bytes, which is not a multiple of "
                       "the 8388608 byte chunk granularity."));
  // HTML from a proxy: bounded, single line, non-ASCII replaced.
  const std::string html =
      "<html>\n  <body>Bad \xe2\x80\x9cgateway\xe2\x80\x9d</body>\n</html>" + std::string(5000, 'x');
  const absl::Status status = StatusFromHttpError(502, html);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable,
                               AllOf(StartsWith("Gemini: HTTP 502: <html> <body>Bad"),
                                     EndsWith("..."), Not(HasSubstr("\n")))));
  EXPECT_LE(status.message().size(), kMaxErrorMessageBytes + 64);
  // A JSON body that is not an error envelope is treated as text.
  EXPECT_THAT(StatusFromHttpError(500, R"({"unexpected": true})"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("unexpected")));
}

TEST(ErrorEnvelopeTest, LongUpstreamMessageIsBounded) {
  const std::string long_message(10000, 'm');
  const absl::Status status = StatusFromHttpError(
      500, absl::StrCat(R"({"error":{"code":500,"status":"INTERNAL","message":")", long_message,
                        R"("}})"));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInternal, EndsWith("...")));
  EXPECT_LE(status.message().size(), kMaxErrorMessageBytes + 16);
  // Cut at a UTF-8 boundary: no broken sequence at the end.
  std::string text;
  for (int i = 0; i < 600; ++i) text += "\xe2\x82\xac";
  const absl::Status utf8 = StatusFromHttpError(
      500, absl::StrCat(R"({"error":{"message":")", text, R"("}})"));
  const absl::string_view m = utf8.message();
  ASSERT_TRUE(absl::EndsWith(m, "..."));
  EXPECT_TRUE(absl::EndsWith(m.substr(0, m.size() - 3), "\xe2\x82\xac"));
}

TEST(ErrorEnvelopeTest, MissingMessageNamesTheStatus) {
  EXPECT_THAT(StatusFromHttpError(404, R"({"error":{"code":404,"status":"NOT_FOUND"}})"),
              StatusIs(absl::StatusCode::kNotFound, "Gemini: NOT_FOUND (HTTP 404)"));
}

TEST(ErrorEnvelopeTest, ErrorJsonRecognisesOnlyErrorObjects) {
  EXPECT_THAT(StatusFromErrorJson(""), IsOk());
  EXPECT_THAT(StatusFromErrorJson("hello"), IsOk());
  EXPECT_THAT(StatusFromErrorJson(R"({"candidates": []})"), IsOk());
  EXPECT_THAT(StatusFromErrorJson(R"({"error": null})"), IsOk());
  EXPECT_THAT(StatusFromErrorJson("[1, 2]"), IsOk());
  EXPECT_THAT(StatusFromErrorJson(R"({"error": {"code": 503)"), IsOk()) << "truncated JSON";

  // The bare object Gemini appends to a failing stream, pretty-printed.
  EXPECT_THAT(StatusFromErrorJson("{\n  \"error\": {\n    \"code\": 503,\n    \"message\": "
                                  "\"The model is overloaded.\",\n    \"status\": \"UNAVAILABLE\"\n  }\n}\n"),
              StatusIs(absl::StatusCode::kUnavailable, "Gemini: The model is overloaded."));
  // Only a code: mapped as an HTTP status.
  EXPECT_THAT(StatusFromErrorJson(R"({"error":{"code":429,"message":"slow down"}})"),
              StatusIs(absl::StatusCode::kResourceExhausted, "Gemini: slow down"));
  // Neither: UNKNOWN.
  EXPECT_THAT(StatusFromErrorJson(R"({"error":{"message":"odd"}})"),
              StatusIs(absl::StatusCode::kUnknown, "Gemini: odd"));
  EXPECT_THAT(StatusFromErrorJson(R"({"error":"flat string"})"),
              StatusIs(absl::StatusCode::kUnknown, "Gemini: flat string"));
  // Array form.
  EXPECT_THAT(StatusFromErrorJson(R"([{"error":{"code":500,"message":"x","status":"INTERNAL"}}])"),
              StatusIs(absl::StatusCode::kInternal));
}

TEST(ErrorEnvelopeTest, DetailsAreBounded) {
  std::string violations;
  for (int i = 0; i < 100; ++i) {
    absl::StrAppend(&violations, i ? "," : "", R"({"subject":"s)", i, R"(","description":"d"})");
  }
  const absl::Status status = StatusFromHttpError(
      429, absl::StrCat(R"({"error":{"status":"RESOURCE_EXHAUSTED","details":[)",
                        R"({"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[)",
                        violations, R"(]}]}})"));
  google::rpc::QuotaFailure quota;
  ASSERT_TRUE(GetDetail(status, quota));
  EXPECT_EQ(quota.violations_size(), 32);
  EXPECT_EQ(quota.violations(0).subject(), "s0");
}

TEST(ParseProtoDurationTest, AcceptsDurationStrings) {
  EXPECT_EQ(ParseProtoDuration("15s"), absl::Seconds(15));
  EXPECT_EQ(ParseProtoDuration("0s"), absl::ZeroDuration());
  EXPECT_EQ(ParseProtoDuration("1.5s"), absl::Milliseconds(1500));
  EXPECT_EQ(ParseProtoDuration("0.000000001s"), absl::Nanoseconds(1));
  EXPECT_EQ(ParseProtoDuration("58.934310785s"), absl::Seconds(58) + absl::Nanoseconds(934310785));
  for (std::string_view bad : {"", "s", "15", "-1s", "1.s", ".5s", "1.0000000001s", "1e3s", "abc",
                               "9999999999999s"}) {
    EXPECT_EQ(ParseProtoDuration(bad), std::nullopt) << bad;
  }
}

}  // namespace
}  // namespace vision_gateway::gemini
