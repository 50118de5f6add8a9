#include "service/server/leak_filter.h"

#include "google/rpc/error_details.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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


// Every detail of `status` a caller would get, decoded, plus the raw bytes of each payload (so a
// field the decoder does not name still shows).
std::string DetailsText(const absl::Status& status) {
  std::string text;
  status.ForEachPayload([&](absl::string_view type_url, const absl::Cord& payload) {
    // The type URL names googleapis.com by definition: only the type's name is shown.
    absl::StrAppend(&text, type_url.substr(type_url.rfind('/') + 1), " raw: ",
                    std::string(payload), "\n");
    google::rpc::Help help;
    google::rpc::QuotaFailure quota;
    google::rpc::BadRequest bad;
    google::rpc::LocalizedMessage localized;
    google::rpc::ErrorInfo info;
    if (absl::EndsWith(type_url, "Help") && help.ParseFromString(std::string(payload))) {
      absl::StrAppend(&text, help.ShortDebugString(), "\n");
    } else if (absl::EndsWith(type_url, "QuotaFailure") &&
               quota.ParseFromString(std::string(payload))) {
      absl::StrAppend(&text, quota.ShortDebugString(), "\n");
    } else if (absl::EndsWith(type_url, "BadRequest") &&
               bad.ParseFromString(std::string(payload))) {
      absl::StrAppend(&text, bad.ShortDebugString(), "\n");
    } else if (absl::EndsWith(type_url, "LocalizedMessage") &&
               localized.ParseFromString(std::string(payload))) {
      absl::StrAppend(&text, localized.ShortDebugString(), "\n");
    } else if (absl::EndsWith(type_url, "ErrorInfo") && info.ParseFromString(std::string(payload))) {
      absl::StrAppend(&text, info.ShortDebugString(), "\n");
    }
  });
  return text;
}

// What no detail may show: the project (number, id), Google's and the gateway's upstream hosts,
// a piece of the key.
void ExpectNoUpstreamTrace(const std::string& text) {
  for (const char* leak : {"987654321012", "my-gcp-project", "console.cloud.google.com",
                           "googleapis", "gemini.internal", "0123456789", "10.9.8.7"}) {
    EXPECT_THAT(text, Not(HasSubstr(leak))) << text;
  }
}

google::rpc::Help::Link* AddLink(google::rpc::Help& help, const std::string& url,
                                 const std::string& description = "docs") {
  auto* link = help.add_links();
  link->set_url(url);
  link->set_description(description);
  return link;
}

TEST_F(LeakFilterTest, HelpKeepsOnlyDocumentationLinksWithoutQuery) {
  absl::Status status = absl::ResourceExhaustedError("quota");
  google::rpc::Help help;
  AddLink(help,
          "https://console.cloud.google.com/apis/api/generativelanguage.googleapis.com/"
          "quotas?project=987654321012",
          "Request a higher quota limit for project 987654321012.");
  AddLink(help, "https://ai.google.dev/gemini-api/docs/rate-limits?project=987654321012#tiers",
          "Rate limits at console.cloud.google.com");
  AddLink(help, "HTTPS://AI.Google.dev/gemini-api/docs/troubleshooting");
  AddLink(help, "http://ai.google.dev/gemini-api/docs");               // not https
  AddLink(help, "https://ai.google.dev:8443/gemini-api/docs");         // a port
  AddLink(help, "https://ai.google.dev.evil.example/docs");            // another host
  AddLink(help, "https://user@ai.google.dev/docs");                    // a user
  AddLink(help, "https://ai.google.dev/projects/987654321012/quotas"); // the project in the path
  AddLink(help, absl::StrCat("https://ai.google.dev/k/", kKey));       // the key in the path
  AddDetail(status, help);

  const absl::Status out = FilterForCaller(status);
  google::rpc::Help kept;
  ASSERT_TRUE(GetDetail(out, kept));
  ASSERT_EQ(kept.links_size(), 2) << kept.ShortDebugString();
  EXPECT_EQ(kept.links(0).url(), "https://ai.google.dev/gemini-api/docs/rate-limits");
  EXPECT_EQ(kept.links(0).description(), "Rate limits at [host]");
  EXPECT_EQ(kept.links(1).url(), "https://ai.google.dev/gemini-api/docs/troubleshooting");
  ExpectNoUpstreamTrace(DetailsText(out));
}

TEST_F(LeakFilterTest, HelpWithOnlyForeignLinksIsDropped) {
  absl::Status status = absl::ResourceExhaustedError("quota");
  google::rpc::Help help;
  AddLink(help,
          "https://console.cloud.google.com/apis/api/generativelanguage.googleapis.com/"
          "quotas?project=987654321012");
  AddDetail(status, help);
  google::rpc::Help kept;
  EXPECT_FALSE(GetDetail(FilterForCaller(status), kept)) << kept.ShortDebugString();
}

TEST_F(LeakFilterTest, EveryForwardedDetailPassesTheMessageRule) {
  absl::Status status = absl::InvalidArgumentError("bad request");
  google::rpc::QuotaFailure quota;
  auto* violation = quota.add_violations();
  violation->set_subject("generativelanguage.googleapis.com/generate_content_free_tier_requests");
  violation->set_description("project_id: my-gcp-project, project_number:987654321012");
  AddDetail(status, quota);
  google::rpc::BadRequest bad;
  auto* field = bad.add_field_violations();
  field->set_field("projects/987654321012/locations/global");
  field->set_description(absl::StrCat("key ", kKey, " rejected by gemini.internal.example:443"));
  AddDetail(status, bad);
  google::rpc::LocalizedMessage localized;
  localized.set_locale("en-US");
  localized.set_message("Project id: my-gcp-project (project=987654321012) at 10.9.8.7:443");
  AddDetail(status, localized);
  google::rpc::ErrorInfo info;
  info.set_reason("BILLING_DISABLED");
  info.set_domain("googleapis.com");
  (*info.mutable_metadata())["quota_location"] = "projects/my-gcp-project/locations/global";
  (*info.mutable_metadata())["model"] = "gemini-2.5-flash";
  AddDetail(status, info);

  const absl::Status out = FilterForCaller(status);
  ExpectNoUpstreamTrace(DetailsText(out));
  google::rpc::QuotaFailure kept_quota;
  ASSERT_TRUE(GetDetail(out, kept_quota));
  EXPECT_EQ(kept_quota.violations(0).subject(), "[host]/generate_content_free_tier_requests");
  google::rpc::BadRequest kept_bad;
  ASSERT_TRUE(GetDetail(out, kept_bad));
  EXPECT_EQ(kept_bad.field_violations(0).field(), "projects/[number]/locations/global");
  google::rpc::LocalizedMessage kept_localized;
  ASSERT_TRUE(GetDetail(out, kept_localized));
  EXPECT_EQ(kept_localized.locale(), "en-US");
  google::rpc::ErrorInfo kept_info;
  ASSERT_TRUE(GetDetail(out, kept_info));
  EXPECT_EQ(kept_info.metadata().at("model"), "gemini-2.5-flash");
}

TEST_F(LeakFilterTest, FieldsTheFilterDoesNotNameDoNotPass) {
  // A QuotaFailure as a newer proto would serialise it: the violation (field 1) plus a field this
  // proto version does not know (field 2 at the top, field 9 in the violation), naming the
  // project. Unknown fields survive a parse and a re-serialisation unless the message is rebuilt.
  google::rpc::QuotaFailure quota;
  quota.add_violations()->set_subject("requests");
  std::string bytes = quota.SerializeAsString();
  const std::string hidden = "projects/987654321012";
  bytes += std::string("\x12") + static_cast<char>(hidden.size()) + hidden;
  absl::Status status = absl::ResourceExhaustedError("quota");
  status.SetPayload(absl::StrCat(kTypeUrlPrefix, "google.rpc.QuotaFailure"), absl::Cord(bytes));
  const absl::Status out = FilterForCaller(status);
  google::rpc::QuotaFailure kept;
  ASSERT_TRUE(GetDetail(out, kept));
  EXPECT_EQ(kept.violations(0).subject(), "requests");
  ExpectNoUpstreamTrace(DetailsText(out));
}

}  // namespace
}  // namespace vision_gateway::server
