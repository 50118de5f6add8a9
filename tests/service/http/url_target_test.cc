#include "service/http/url_target.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::http::internal {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::vision_gateway::testing::IsOk;
using ::vision_gateway::testing::StatusIs;

TEST(HttpUrlTargetTest, HttpsNameWithDefaultPort) {
  auto t = ParseTarget("https://Generativelanguage.GoogleAPIs.com/v1beta/models?pageSize=5");
  ASSERT_THAT(t, IsOk());
  EXPECT_TRUE(t->tls);
  EXPECT_EQ(t->host, "generativelanguage.googleapis.com");
  EXPECT_TRUE(t->host_is_name);
  EXPECT_EQ(t->port, 443);
  EXPECT_EQ(t->host_header, "generativelanguage.googleapis.com");  // default port left out
  EXPECT_EQ(t->authority, "generativelanguage.googleapis.com:443");
  EXPECT_EQ(t->pool_key, "https://generativelanguage.googleapis.com:443");
  EXPECT_EQ(t->target, "/v1beta/models?pageSize=5");
}

TEST(HttpUrlTargetTest, ExplicitPortGoesIntoTheHostHeader) {
  auto t = ParseTarget("http://127.0.0.1:8080/a/b");
  ASSERT_THAT(t, IsOk());
  EXPECT_FALSE(t->tls);
  EXPECT_EQ(t->host, "127.0.0.1");
  EXPECT_FALSE(t->host_is_name);  // no SNI for an address
  EXPECT_EQ(t->port, 8080);
  EXPECT_EQ(t->host_header, "127.0.0.1:8080");
  EXPECT_EQ(t->pool_key, "http://127.0.0.1:8080");
  EXPECT_EQ(t->target, "/a/b");
}

TEST(HttpUrlTargetTest, DefaultPortSpelledOutIsTheSamePoolKey) {
  auto implicit = ParseTarget("https://example.com/x");
  auto spelled = ParseTarget("https://example.com:443/y");
  ASSERT_THAT(implicit, IsOk());
  ASSERT_THAT(spelled, IsOk());
  EXPECT_EQ(implicit->pool_key, spelled->pool_key);
  EXPECT_EQ(spelled->host_header, "example.com");
}

TEST(HttpUrlTargetTest, Ipv6LoopbackIsBracketedInHeaderAndAuthorityOnly) {
  auto t = ParseTarget("http://[::1]:9000/path");
  ASSERT_THAT(t, IsOk());
  EXPECT_EQ(t->host, "::1");  // for resolve: no brackets
  EXPECT_FALSE(t->host_is_name);
  EXPECT_EQ(t->host_header, "[::1]:9000");
  EXPECT_EQ(t->authority, "[::1]:9000");
  EXPECT_EQ(t->pool_key, "http://[::1]:9000");
}

TEST(HttpUrlTargetTest, EmptyPathIsSlashAndQueryIsKeptEncoded) {
  auto bare = ParseTarget("http://localhost");
  ASSERT_THAT(bare, IsOk());
  EXPECT_EQ(bare->target, "/");
  EXPECT_EQ(bare->port, 80);
  EXPECT_EQ(bare->host_header, "localhost");

  auto query = ParseTarget("http://localhost:1/?key=a%20b&alt=sse");
  ASSERT_THAT(query, IsOk());
  EXPECT_EQ(query->target, "/?key=a%20b&alt=sse");
}

TEST(HttpUrlTargetTest, PlainHttpOnlyToLoopbackHosts) {
  for (const char* url : {"http://localhost/", "http://LOCALHOST:5/", "http://127.0.0.1/",
                          "http://127.9.8.7:1/", "http://[::1]/"}) {
    EXPECT_THAT(ParseTarget(url), IsOk()) << url;
  }
  for (const char* url : {"http://example.com/", "http://10.1.2.3/", "http://128.0.0.1/",
                          "http://[2001:db8::1]:80/", "http://localhost.example.com/"}) {
    EXPECT_THAT(ParseTarget(url),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("loopback")))
        << url;
  }
}

TEST(HttpUrlTargetTest, UnusableUrlsAreInvalidArgument) {
  for (const char* url :
       {"ftp://localhost/", "not a url", "http://user:pw@localhost/", "https://", "https:/x",
        "https://host:0/", "https://bad%20host/", "https://under$core.com/", "", "/relative"}) {
    EXPECT_THAT(ParseTarget(url), StatusIs(absl::StatusCode::kInvalidArgument)) << url;
  }
}

TEST(HttpUrlTargetTest, ErrorsNeverEchoTheQuery) {
  // A key in the query must not reach an error message (it would reach logs).
  for (const char* url : {"http://example.com/?key=secret-key", "ftp://x/?key=secret-key",
                          "https://a b/?key=secret-key"}) {
    auto t = ParseTarget(url);
    EXPECT_THAT(t, StatusIs(absl::StatusCode::kInvalidArgument, Not(HasSubstr("secret-key"))))
        << url;
  }
}

TEST(HttpHeaderChecksTest, TokensAreRfc9110Tokens) {
  EXPECT_TRUE(IsToken("GET"));
  EXPECT_TRUE(IsToken("x-goog-api-key"));
  EXPECT_TRUE(IsToken("!#$%&'*+-.^_`|~09azAZ"));
  EXPECT_FALSE(IsToken(""));
  EXPECT_FALSE(IsToken("GET /"));
  EXPECT_FALSE(IsToken("name:"));
  EXPECT_FALSE(IsToken("a\r\nb"));
  EXPECT_FALSE(IsToken("caf\xc3\xa9"));
}

TEST(HttpHeaderChecksTest, ValuesCannotSplitTheHeaderBlock) {
  EXPECT_TRUE(IsValidHeaderValue(""));
  EXPECT_TRUE(IsValidHeaderValue("application/json; charset=utf-8"));
  EXPECT_FALSE(IsValidHeaderValue("a\r\nx-injected: 1"));
  EXPECT_FALSE(IsValidHeaderValue("a\nb"));
  EXPECT_FALSE(IsValidHeaderValue(std::string("a\0b", 3)));
}

TEST(HttpHeaderChecksTest, FramingHeadersAreReservedInAnyCase) {
  for (const char* name : {"Host", "content-length", "Transfer-Encoding", "CONNECTION"}) {
    EXPECT_TRUE(IsReservedHeader(name)) << name;
  }
  for (const char* name : {"Content-Type", "User-Agent", "x-goog-api-key", "Hosts"}) {
    EXPECT_FALSE(IsReservedHeader(name)) << name;
  }
}

}  // namespace
}  // namespace vision_gateway::http::internal
