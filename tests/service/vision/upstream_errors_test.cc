#include "service/vision/upstream_errors.h"

#include <set>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"
#include "service/common/error_reasons.h"
#include "service/common/status_details.h"
#include "service/gemini/error_envelope.h"

namespace vision_gateway::vision {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

google::rpc::ErrorInfo InfoOf(const absl::Status& s) {
  google::rpc::ErrorInfo info;
  EXPECT_TRUE(GetDetail(s, info)) << s;
  return info;
}

struct Case {
  const char* name;
  absl::Status upstream;
  absl::StatusCode code;
  const char* reason;
};

absl::Status Tagged(absl::Status s, const char* outcome) { return WithOutcome(std::move(s), outcome); }

TEST(ErrorTableTest, EveryOutcomeMapsToItsDocumentedCode) {
  using absl::StatusCode;
  namespace r = reasons;
  const Case cases[] = {
      {"400", gemini::StatusFromHttpError(400, R"({"error":{"code":400,"message":"bad field","status":"INVALID_ARGUMENT"}})"),
       StatusCode::kInvalidArgument, r::kUpstreamInvalidArgument},
      {"400 failed precondition", gemini::StatusFromHttpError(400, R"({"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}})"),
       StatusCode::kFailedPrecondition, r::kUpstreamFailedPrecondition},
      {"400 key", gemini::StatusFromHttpError(400, R"({"error":{"code":400,"message":"API key not valid","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}})"),
       StatusCode::kInternal, r::kUpstreamAuthFailed},
      {"401", gemini::StatusFromHttpError(401, ""), StatusCode::kInternal, r::kUpstreamAuthFailed},
      {"403", gemini::StatusFromHttpError(403, R"({"error":{"code":403,"message":"denied","status":"PERMISSION_DENIED"}})"),
       StatusCode::kInternal, r::kUpstreamAuthFailed},
      {"404", gemini::StatusFromHttpError(404, R"({"error":{"code":404,"message":"models/x is not found","status":"NOT_FOUND"}})"),
       StatusCode::kNotFound, r::kUpstreamNotFound},
      {"429", gemini::StatusFromHttpError(429, R"({"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}})"),
       StatusCode::kResourceExhausted, r::kUpstreamRateLimited},
      {"500", gemini::StatusFromHttpError(500, R"({"error":{"code":500,"message":"oops","status":"INTERNAL"}})"),
       StatusCode::kUnavailable, r::kUpstreamInternal},
      {"502 plain text", gemini::StatusFromHttpError(502, "<html>Bad Gateway</html>"), StatusCode::kUnavailable,
       r::kUpstreamUnavailable},
      {"503", gemini::StatusFromHttpError(503, R"({"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}})"),
       StatusCode::kUnavailable, r::kUpstreamUnavailable},
      {"504", gemini::StatusFromHttpError(504, ""), StatusCode::kUnavailable, r::kUpstreamTimeout},
      {"409", gemini::StatusFromHttpError(409, ""), StatusCode::kInternal, r::kUpstreamError},
      {"unreachable", Tagged(absl::UnavailableError("cannot connect to 10.1.2.3:443: refused"), r::kUpstreamUnreachable),
       StatusCode::kUnavailable, r::kUpstreamUnreachable},
      {"lost", Tagged(absl::UnavailableError("closed"), r::kUpstreamConnectionLost), StatusCode::kUnavailable,
       r::kUpstreamConnectionLost},
      {"tls", Tagged(absl::UnavailableError("TLS handshake with gemini.internal:443 failed: certificate verify failed"), r::kUpstreamTls),
       StatusCode::kUnavailable, r::kUpstreamTls},
      {"too large", Tagged(absl::ResourceExhaustedError("response body from h:443 exceeds 1 bytes"), r::kUpstreamResponseTooLarge),
       StatusCode::kUnavailable, r::kUpstreamResponseTooLarge},
      {"bad response", Tagged(absl::InternalError("malformed"), r::kUpstreamBadResponse), StatusCode::kUnavailable,
       r::kUpstreamBadResponse},
      {"timeout", Tagged(absl::DeadlineExceededError("timed out after 120000 ms"), r::kUpstreamTimeout),
       StatusCode::kUnavailable, r::kUpstreamTimeout},
      {"caller deadline", Tagged(absl::DeadlineExceededError("deadline exceeded while reading"), r::kDeadlineExceeded),
       StatusCode::kDeadlineExceeded, r::kDeadlineExceeded},
      {"local invalid", absl::InvalidArgumentError("images: at least one image is required"),
       StatusCode::kInvalidArgument, r::kInvalidRequest},
      {"cancelled", absl::CancelledError("c"), StatusCode::kCancelled, r::kCancelled},
      {"model output", WithErrorInfo(absl::InternalError("no array"), r::kModelOutputInvalid),
       StatusCode::kInternal, r::kModelOutputInvalid},
      {"overloaded", WithErrorInfo(absl::ResourceExhaustedError("busy"), r::kServerOverloaded),
       StatusCode::kResourceExhausted, r::kServerOverloaded},
      {"unknown", absl::UnknownError("?"), StatusCode::kInternal, r::kInternalError},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const absl::Status out = ToCallerStatus(c.upstream);
    EXPECT_EQ(out.code(), c.code) << out;
    const google::rpc::ErrorInfo info = InfoOf(out);
    EXPECT_EQ(info.reason(), c.reason);
    EXPECT_EQ(info.domain(), "vision-gateway");
    // Idempotent.
    EXPECT_EQ(ToCallerStatus(out), out);
    // No private tag and no host in a transport message.
    EXPECT_THAT(std::string(out.message()), Not(HasSubstr(":443")));
  }
}

TEST(ErrorTableTest, EveryRowHasAUniqueReason) {
  std::set<std::string> seen;
  for (const ErrorTableRow& row : ErrorTable()) {
    EXPECT_TRUE(seen.insert(std::string(row.reason)).second) << row.reason;
    EXPECT_NE(row.code, absl::StatusCode::kOk);
  }
  EXPECT_GE(seen.size(), 20u);
}

TEST(ErrorTableTest, RateLimitKeepsRetryAndQuotaDetailsButNotGeminisErrorInfo) {
  const absl::Status upstream = gemini::StatusFromHttpError(
      429,
      R"({"error":{"code":429,"message":"You exceeded your current quota","status":"RESOURCE_EXHAUSTED","details":[
        {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"m","quotaId":"q"}]},
        {"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com","consumer":"projects/1234","quota_limit_value":"10"}},
        {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"15s"}]}})");
  const absl::Status out = ToCallerStatus(upstream);
  EXPECT_EQ(out.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(GetRetryDelay(out), absl::Seconds(15));
  google::rpc::QuotaFailure quota;
  EXPECT_TRUE(GetDetail(out, quota));
  const google::rpc::ErrorInfo info = InfoOf(out);
  EXPECT_EQ(info.domain(), "vision-gateway");
  EXPECT_EQ(info.metadata().at("upstream_reason"), "RATE_LIMIT_EXCEEDED");
  EXPECT_EQ(info.metadata().at("quota_limit_value"), "10");
  EXPECT_EQ(info.metadata().count("service"), 0u);
  EXPECT_EQ(info.metadata().count("consumer"), 0u);
  EXPECT_THAT(std::string(out.message()), HasSubstr("quota"));
}

TEST(ErrorTableTest, BadRequestFieldViolationsPassThrough) {
  const absl::Status out = ToCallerStatus(gemini::StatusFromHttpError(
      400,
      R"({"error":{"code":400,"message":"Invalid JSON payload","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"generation_config.foo","description":"Unknown name"}]}]}})"));
  EXPECT_EQ(out.code(), absl::StatusCode::kInvalidArgument);
  google::rpc::BadRequest bad;
  ASSERT_TRUE(GetDetail(out, bad));
  EXPECT_EQ(bad.field_violations(0).field(), "generation_config.foo");
}

TEST(ErrorTableTest, AuthFailureSaysWhatToDoAndDropsUpstreamDetails) {
  const absl::Status out = ToCallerStatus(gemini::StatusFromHttpError(
      400,
      R"({"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"},{"@type":"type.googleapis.com/google.rpc.Help","links":[{"url":"https://x"}]}]}})"));
  EXPECT_EQ(out.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(out.message()), HasSubstr("API key"));
  google::rpc::Help help;
  EXPECT_FALSE(GetDetail(out, help));
}

TEST(ErrorTableTest, TlsFailureIsAnOperatorProblemWithoutTlsText) {
  const absl::Status out = ToCallerStatus(WithOutcome(
      absl::UnavailableError("TLS handshake with gemini.example:443 failed: certificate verify failed: "
                             "self-signed certificate"),
      reasons::kUpstreamTls));
  EXPECT_EQ(out.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(out.message()), HasSubstr("operator"));
  EXPECT_THAT(std::string(out.message()), Not(HasSubstr("gemini.example")));
  EXPECT_THAT(std::string(out.message()), Not(HasSubstr("self-signed")));
}

TEST(ErrorTableTest, ContentBlockedKeepsBlockReason) {
  const absl::Status blocked =
      WithOutcome(WithErrorInfo(absl::InvalidArgumentError("Gemini blocked the prompt (SAFETY)"),
                                reasons::kContentBlocked, {{"block_reason", "SAFETY"}}),
                  reasons::kContentBlocked);
  const absl::Status out = ToCallerStatus(blocked);
  EXPECT_EQ(out.code(), absl::StatusCode::kInvalidArgument);
  const google::rpc::ErrorInfo info = InfoOf(out);
  EXPECT_EQ(info.reason(), "CONTENT_BLOCKED");
  EXPECT_EQ(info.metadata().at("block_reason"), "SAFETY");
}

TEST(ErrorTableTest, OkStaysOk) { EXPECT_TRUE(ToCallerStatus(absl::OkStatus()).ok()); }

}  // namespace
}  // namespace vision_gateway::vision
