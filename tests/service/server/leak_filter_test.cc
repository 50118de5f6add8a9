#include "service/server/leak_filter.h"

#include "google/rpc/error_details.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/common/status_details.h"

namespace vision_gateway::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kKey[] = "AIzaSyD-fake-key-0123456789abcdefghij";

class LeakFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LeakFilterOptions options;
    options.secrets = {kKey, "short-secret-key-42"};
    options.upstream_hosts = {"gemini.internal.example"};
    ConfigureLeakFilter(options);
  }
  void TearDown() override { ConfigureLeakFilter({}); }
};

TEST_F(LeakFilterTest, HidesHostsAddressesPortsAndProjectNumbers) {
  const std::string filtered = FilterText(
      "Quota exceeded of service 'generativelanguage.googleapis.com' for consumer "
      "'project_number:123456789012' (projects/987654321098), backend 10.20.30.40:8443 via "
      "[2001:db8::1]:443, gemini.internal.example, localhost:9000, upstream-proxy:3128, "
      "gemini.internal.example:4433");
  for (const char* leak : {"googleapis", "123456789012", "987654321098", "10.20.30.40", "8443",
                           "2001:db8", "gemini.internal", "localhost", "9000", "3128", "4433",
                           "upstream-proxy"}) {
    EXPECT_THAT(filtered, Not(HasSubstr(leak))) << filtered;
  }
  EXPECT_THAT(filtered, HasSubstr("Quota exceeded of service"));
}

TEST_F(LeakFilterTest, HidesTheKeyAndAnyPieceOfIt) {
  EXPECT_THAT(FilterText(absl::StrCat("bad key ", kKey, " sent")),
              Not(HasSubstr("0123456789")));
  EXPECT_THAT(FilterText("tail of the key: abcdefghij."), Not(HasSubstr("abcdefgh")));
  EXPECT_THAT(FilterText("piece -secret-key-4 inside"), Not(HasSubstr("secret-key")));
  EXPECT_THAT(FilterText("another AIzaSyZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ key"),
              Not(HasSubstr("AIzaSyZZZZ")));
}

TEST_F(LeakFilterTest, KeepsTheGatewaysOwnMessages) {
  for (const char* message :
       {"options.model: 'gemini-1.5-ultra' is not allowed on this gateway; allowed: "
        "gemini-2.5-flash, gemini-2.5-pro",
        "options.max_output_tokens: at most 1000 on this gateway, got 2000",
        "images[2]: not an image (PNG, JPEG, WEBP, HEIC or HEIF)",
        "token file line 3: expected \"<caller> <token>\"",
        "Gemini: Please retry in 58.934310785s.", "caller 'alice' is over its limit"}) {
    EXPECT_EQ(FilterText(message), message);
  }
}

TEST_F(LeakFilterTest, LibraryTextIsReplacedAsAWhole) {
  absl::Status tls = FilterForCaller(absl::FailedPreconditionError(
      "TLS handshake failed: certificate verify failed (SSL routines)"));
  EXPECT_EQ(tls.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(tls.message(), Not(HasSubstr("SSL")));
  EXPECT_THAT(tls.message(), HasSubstr("gateway's log"));
  absl::Status dns = FilterForCaller(
      absl::UnavailableError("cannot resolve gemini.internal.example: Host not found"));
  EXPECT_EQ(dns.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(dns.message(), Not(HasSubstr("Host not found")));
}

TEST_F(LeakFilterTest, DetailsAreFilteredNotLost) {
  absl::Status status = absl::ResourceExhaustedError("Gemini: quota (projects/123456789012)");
  google::rpc::ErrorInfo upstream;
  upstream.set_reason("RATE_LIMIT_EXCEEDED");
  upstream.set_domain("googleapis.com");
  (*upstream.mutable_metadata())["service"] = "generativelanguage.googleapis.com";
  (*upstream.mutable_metadata())["consumer"] = "projects/123456789012";
  (*upstream.mutable_metadata())["quota_metric"] = "generate_content_requests";
  AddDetail(status, upstream);
  status = WithRetryInfo(status, absl::Seconds(15));
  google::rpc::QuotaFailure quota;
  auto* v = quota.add_violations();
  v->set_subject("project_number:123456789012");
  v->set_description("GenerateRequestsPerMinutePerProjectPerModel");
  AddDetail(status, quota);
  google::rpc::DebugInfo debug;
  debug.set_detail("at 10.0.0.1:443");
  AddDetail(status, debug);

  const absl::Status out = FilterForCaller(status);
  EXPECT_EQ(out.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(out.message(), Not(HasSubstr("123456789012")));
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(GetDetail(out, info));
  EXPECT_EQ(info.reason(), "RATE_LIMIT_EXCEEDED");
  EXPECT_EQ(info.metadata().count("service"), 0u);
  EXPECT_EQ(info.metadata().count("consumer"), 0u);
  EXPECT_EQ(info.metadata().at("quota_metric"), "generate_content_requests");
  EXPECT_THAT(info.domain(), Not(HasSubstr("googleapis")));
  google::rpc::RetryInfo retry;
  ASSERT_TRUE(GetDetail(out, retry));
  EXPECT_EQ(retry.retry_delay().seconds(), 15);
  google::rpc::QuotaFailure kept_quota;
  ASSERT_TRUE(GetDetail(out, kept_quota));
  EXPECT_EQ(kept_quota.violations(0).description(), "GenerateRequestsPerMinutePerProjectPerModel");
  EXPECT_THAT(kept_quota.violations(0).subject(), Not(HasSubstr("123456789012")));
  google::rpc::DebugInfo no_debug;
  EXPECT_FALSE(GetDetail(out, no_debug));
}

TEST_F(LeakFilterTest, GatewayErrorInfoKeepsItsMetadataKeys) {
  absl::Status status = WithErrorInfo(absl::InternalError("model output"), "MODEL_OUTPUT_INVALID",
                                      {{"excerpt", "[{\"box_2d\": [1,2"}, {"finish_reason", "STOP"}});
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(GetDetail(FilterForCaller(status), info));
  EXPECT_EQ(info.domain(), "vision-gateway");
  EXPECT_EQ(info.metadata().at("excerpt"), "[{\"box_2d\": [1,2");
  EXPECT_EQ(info.metadata().at("finish_reason"), "STOP");
}

}  // namespace
}  // namespace vision_gateway::server
