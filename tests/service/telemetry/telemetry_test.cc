// Request ids, traceparent validation, the log line formats and the access-log fields.
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "boost/json.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/common/log.h"
#include "service/telemetry/access_log.h"
#include "service/telemetry/call_record.h"
#include "service/telemetry/request_id.h"

namespace vision_gateway::telemetry {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

TEST(RequestIdTest, AcceptsCommonIdShapes) {
  EXPECT_TRUE(IsValidRequestId("3f2b8c1e-9d4a-4b6f-8e2a-1c3d5e7f9a0b"));
  EXPECT_TRUE(IsValidRequestId("01HZX3J8K9Q4W5E6R7T8Y9U0IP"));
  EXPECT_TRUE(IsValidRequestId("svc/frontend:42"));
  EXPECT_TRUE(IsValidRequestId("aGVsbG8+d29ybGQ="));
  EXPECT_TRUE(IsValidRequestId(std::string(kMaxRequestIdBytes, 'a')));
}

TEST(RequestIdTest, RejectsWhatWouldBreakALogLine) {
  EXPECT_FALSE(IsValidRequestId(""));
  EXPECT_FALSE(IsValidRequestId(std::string(kMaxRequestIdBytes + 1, 'a')));
  EXPECT_FALSE(IsValidRequestId("has space"));
  EXPECT_FALSE(IsValidRequestId("quote\"d"));
  EXPECT_FALSE(IsValidRequestId("new\nline"));
  EXPECT_FALSE(IsValidRequestId("caf\xc3\xa9"));
  EXPECT_FALSE(IsValidRequestId("a=b c"));
}

TEST(RequestIdTest, GeneratedIdsAre32HexAndDistinct) {
  const std::string a = GenerateRequestId();
  const std::string b = GenerateRequestId();
  EXPECT_THAT(a, MatchesRegex("[0-9a-f]{32}"));
  EXPECT_THAT(b, MatchesRegex("[0-9a-f]{32}"));
  EXPECT_NE(a, b);
  EXPECT_TRUE(IsValidRequestId(a));
  // Every position takes every hex digit (no stuck nibble, both 64-bit halves random).
  std::vector<std::set<char>> seen(32);
  for (int i = 0; i < 2000; ++i) {
    const std::string id = GenerateRequestId();
    for (int p = 0; p < 32; ++p) seen[p].insert(id[p]);
  }
  for (int p = 0; p < 32; ++p) EXPECT_EQ(seen[p].size(), 16u) << "position " << p;
}

TEST(TraceparentTest, AcceptsW3cExamples) {
  EXPECT_TRUE(IsValidTraceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
  EXPECT_TRUE(IsValidTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
  // A later version may carry more fields after the known ones.
  EXPECT_TRUE(
      IsValidTraceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra"));
}

TEST(TraceparentTest, RejectsMalformed) {
  EXPECT_FALSE(IsValidTraceparent(""));
  EXPECT_FALSE(IsValidTraceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0"));
  EXPECT_FALSE(IsValidTraceparent("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01"));
  EXPECT_FALSE(IsValidTraceparent("00-00000000000000000000000000000000-b7ad6b7169203331-01"));
  EXPECT_FALSE(IsValidTraceparent("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01"));
  EXPECT_FALSE(IsValidTraceparent("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
  EXPECT_FALSE(IsValidTraceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x"));
  EXPECT_FALSE(IsValidTraceparent("00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01"));
  EXPECT_FALSE(
      IsValidTraceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-a\r\nb: c"));
}

TEST(LogFormatTest, ParsesFlagValues) {
  EXPECT_EQ(ParseLogFormat("text"), LogFormat::kText);
  EXPECT_EQ(ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_EQ(ParseLogFormat("yaml"), std::nullopt);
  EXPECT_EQ(ParseLogSeverity("info"), LogSeverity::kInfo);
  EXPECT_EQ(ParseLogSeverity("WARNING"), LogSeverity::kWarning);
  EXPECT_EQ(ParseLogSeverity("error"), LogSeverity::kError);
  EXPECT_EQ(ParseLogSeverity("Debug"), LogSeverity::kDebug);
  EXPECT_EQ(ParseLogSeverity("trace"), std::nullopt);
}

// Log times come from a per-thread cache of the current second: same text as a full format.
TEST(LogFormatTest, TimestampsMatchAFullFormat) {
  const absl::Time base = absl::FromUnixMillis(1'764'500'000'123);
  for (const absl::Duration step :
       {absl::ZeroDuration(), absl::Milliseconds(1), absl::Milliseconds(876), absl::Milliseconds(877),
        absl::Seconds(1), absl::Hours(30), absl::Milliseconds(-124), absl::Hours(-24 * 400)}) {
    const absl::Time t = base + step;
    EXPECT_EQ(LogTimestamp(t), absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone()))
        << step;
  }
  EXPECT_EQ(LogTimestamp(absl::FromUnixMillis(-1)), "1969-12-31T23:59:59.999Z");
}

TEST(LogFormatTest, DebugLinesOnlyAtDebugLevel) {
  EXPECT_THAT(FormatLogLine(LogFormat::kText, LogSeverity::kDebug, "access", {}),
              MatchesRegex("[0-9-]+T[0-9:.]+Z DEBUG access"));
  SetMinLogSeverity(LogSeverity::kInfo);
  EXPECT_FALSE(LogEnabled(LogSeverity::kDebug));
  EXPECT_TRUE(LogEnabled(LogSeverity::kInfo));
  SetMinLogSeverity(LogSeverity::kDebug);
  EXPECT_TRUE(LogEnabled(LogSeverity::kDebug));
  SetMinLogSeverity(LogSeverity::kInfo);
}

// Kubernetes probes call the health service every few seconds per pod: their access-log lines
// are debug-level, every other call's are info.
TEST(AccessLogTest, HealthChecksAreDebugLevel) {
  EXPECT_EQ(AccessLogSeverity("/grpc.health.v1.Health/Check"), LogSeverity::kDebug);
  EXPECT_EQ(AccessLogSeverity("/grpc.health.v1.Health/Watch"), LogSeverity::kDebug);
  EXPECT_EQ(AccessLogSeverity("/vision.v1.VisionService/Caption"), LogSeverity::kInfo);
  EXPECT_EQ(AccessLogSeverity("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"),
            LogSeverity::kInfo);
  EXPECT_EQ(AccessLogSeverity("/grpc.health.v1.HealthX/Check"), LogSeverity::kInfo);
  EXPECT_EQ(AccessLogSeverity(""), LogSeverity::kInfo);
}

TEST(LogFormatTest, TextQuotesValuesThatNeedIt) {
  const std::string line = FormatLogLine(LogFormat::kText, LogSeverity::kInfo, "access",
                                         {{"plain", "abc"},
                                          {"spaced", "a b"},
                                          {"quoted", "say \"hi\"\n"},
                                          {"n", "12", true}});
  EXPECT_THAT(line, MatchesRegex("[0-9-]+T[0-9:.]+Z INFO access .*"));
  EXPECT_THAT(line, HasSubstr(" plain=abc "));
  EXPECT_THAT(line, HasSubstr(" spaced=\"a b\" "));
  EXPECT_THAT(line, HasSubstr(" quoted=\"say \\\"hi\\\"\\x0a\" "));
  EXPECT_THAT(line, HasSubstr(" n=12"));
  EXPECT_THAT(line, Not(HasSubstr("\n")));
}

TEST(LogFormatTest, JsonIsOneValidObject) {
  const std::string line =
      FormatLogLine(LogFormat::kJson, LogSeverity::kWarning, "careful \"now\"",
                    {{"s", "tab\there\x01"}, {"n", "1.5", true}});
  boost::json::error_code error;
  const boost::json::value value = boost::json::parse(line, error);
  ASSERT_FALSE(error) << line;
  const auto& object = value.as_object();
  EXPECT_EQ(object.at("severity").as_string(), "WARN");
  EXPECT_EQ(object.at("message").as_string(), "careful \"now\"");
  EXPECT_EQ(object.at("s").as_string(), "tab\there\x01");
  EXPECT_DOUBLE_EQ(object.at("n").as_double(), 1.5);
  EXPECT_TRUE(object.contains("time"));
}

TEST(AccessLogTest, HasEveryFieldOfTheContract) {
  CallRecord record(NoTelemetry(), "req-1", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  record.AddUpstreamAttempt(absl::Milliseconds(40));
  record.AddUpstreamAttempt(absl::Milliseconds(2));
  record.AddTokens(TokenKind::kPrompt, 300);
  record.AddTokens(TokenKind::kOutput, 7);
  record.AddTokens(TokenKind::kThinking, 2);
  record.AddObjects(3);
  record.AddDropped(DropReason::kMalformed);
  record.AddDropped(DropReason::kEmptyBox, 2);
  const AccessEntry entry{.method = "/vision.v1.VisionService/Detect",
                          .peer = "ipv4:127.0.0.1:5555",
                          .code = absl::StatusCode::kResourceExhausted,
                          .reason = "RATE_LIMITED",
                          .duration = absl::Microseconds(45250),
                          .stats = record.Read(),
                          .request_id = record.request_id(),
                          .traceparent = record.traceparent(),
                          .caller = ""};
  const std::string line =
      FormatLogLine(LogFormat::kJson, LogSeverity::kInfo, kAccessLogMessage, AccessLogFields(entry));
  boost::json::error_code error;
  const boost::json::value value = boost::json::parse(line, error);
  ASSERT_FALSE(error) << line;
  const auto& o = value.as_object();
  EXPECT_EQ(o.at("message").as_string(), "access");
  EXPECT_EQ(o.at("method").as_string(), "/vision.v1.VisionService/Detect");
  EXPECT_EQ(o.at("peer").as_string(), "ipv4:127.0.0.1:5555");
  EXPECT_EQ(o.at("code").as_string(), "ResourceExhausted");
  EXPECT_EQ(o.at("reason").as_string(), "RATE_LIMITED");
  EXPECT_DOUBLE_EQ(o.at("duration_ms").to_number<double>(), 45.25);
  EXPECT_DOUBLE_EQ(o.at("upstream_ms").to_number<double>(), 42.0);
  EXPECT_EQ(o.at("attempts").to_number<int>(), 2);
  EXPECT_EQ(o.at("prompt_tokens").to_number<int>(), 300);
  EXPECT_EQ(o.at("output_tokens").to_number<int>(), 7);
  EXPECT_EQ(o.at("thinking_tokens").to_number<int>(), 2);
  EXPECT_EQ(o.at("objects").to_number<int>(), 3);
  EXPECT_EQ(o.at("dropped").to_number<int>(), 3);
  EXPECT_EQ(o.at("request_id").as_string(), "req-1");
  EXPECT_EQ(o.at("traceparent").as_string(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  EXPECT_TRUE(o.contains("time"));
}

TEST(AccessLogTest, OkCallWithoutTraceparentOmitsReasonAndTraceparent) {
  CallRecord record(NoTelemetry(), "abc", "");
  AccessEntry entry;
  entry.method = "/m/x";
  entry.peer = "p";
  entry.stats = record.Read();
  entry.request_id = "abc";
  const std::string line = FormatLogLine(LogFormat::kText, LogSeverity::kInfo, kAccessLogMessage,
                                         AccessLogFields(entry));
  EXPECT_THAT(line, HasSubstr(" access method=/m/x peer=p code=OK duration_ms=0.000 "
                              "upstream_ms=0.000 attempts=0 prompt_tokens=0 output_tokens=0 "
                              "thinking_tokens=0 objects=0 dropped=0 request_id=abc"));
  EXPECT_THAT(line, Not(HasSubstr("reason=")));
  EXPECT_THAT(line, Not(HasSubstr("traceparent=")));
  EXPECT_THAT(line, Not(HasSubstr("cache=")));
}

TEST(AccessLogTest, SaysWhatTheResultCacheDid) {
  CallRecord record(NoTelemetry(), "abc", "");
  record.SetCache(CacheEvent::kHit);
  EXPECT_TRUE(record.Read().cached());
  AccessEntry entry;
  entry.method = "/m/x";
  entry.peer = "p";
  entry.stats = record.Read();
  entry.request_id = "abc";
  const std::string line = FormatLogLine(LogFormat::kText, LogSeverity::kInfo, kAccessLogMessage,
                                         AccessLogFields(entry));
  EXPECT_THAT(line, HasSubstr(" dropped=0 cache=hit request_id=abc"));
  record.SetCache(CacheEvent::kCoalesced);
  EXPECT_TRUE(record.Read().cached());
  record.SetCache(CacheEvent::kMiss);
  EXPECT_FALSE(record.Read().cached());
  EXPECT_EQ(CacheEventName(CacheEvent::kTooLarge), "too_large");
}

TEST(GrpcCodeNameTest, SpelledAsGoGrpcPrometheus) {
  EXPECT_EQ(GrpcCodeName(absl::StatusCode::kOk), "OK");
  EXPECT_EQ(GrpcCodeName(absl::StatusCode::kCancelled), "Canceled");
  EXPECT_EQ(GrpcCodeName(absl::StatusCode::kInvalidArgument), "InvalidArgument");
  EXPECT_EQ(GrpcCodeName(absl::StatusCode::kDeadlineExceeded), "DeadlineExceeded");
  EXPECT_EQ(GrpcCodeName(absl::StatusCode::kResourceExhausted), "ResourceExhausted");
  EXPECT_EQ(GrpcCodeName(absl::StatusCode::kUnauthenticated), "Unauthenticated");
  EXPECT_EQ(GrpcCodeName(static_cast<absl::StatusCode>(99)), "Unknown");
}

}  // namespace
}  // namespace vision_gateway::telemetry
