// Caller tokens, per-caller limits, the caller gate and --caller_overrides.
#include <unistd.h>

#include <fstream>
#include <string>

#include "google/rpc/error_details.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/strings/str_cat.h"
#include "service/common/status_details.h"
#include "service/server/caller_gate.h"
#include "service/server/caller_limiter.h"
#include "service/server/caller_tokens.h"
#include "service/vision/file_id.h"
#include "tests/testing/status_matchers.h"
#include "service/gemini/sha256.h"

namespace vision_gateway::server {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::vision_gateway::testing::IsOk;
using ::vision_gateway::testing::StatusIs;

constexpr char kAliceToken[] = "alice-token-0123456789abcdef";
constexpr char kBobToken[] = "bob-token-0123456789abcdef";

// Per process: copies of this binary may run at once (--gtest_repeat under load, ctest -j).
std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/" + name + "-" + std::to_string(getpid());
  std::ofstream(path, std::ios::trunc) << text;
  return path;
}

std::string ReasonOf(const absl::Status& status) {
  google::rpc::ErrorInfo info;
  return GetDetail(status, info) ? info.reason() : "";
}

TEST(CallerNameTest, BoundedCharset) {
  EXPECT_TRUE(IsValidCallerName("alice"));
  EXPECT_TRUE(IsValidCallerName("team-a.batch_2"));
  EXPECT_TRUE(IsValidCallerName(std::string(64, 'a')));
  EXPECT_FALSE(IsValidCallerName(std::string(65, 'a')));
  EXPECT_FALSE(IsValidCallerName(""));
  EXPECT_FALSE(IsValidCallerName("Alice"));
  EXPECT_FALSE(IsValidCallerName("-alice"));
  EXPECT_FALSE(IsValidCallerName("al ice"));
  EXPECT_FALSE(IsValidCallerName("alice\"}"));
}

TEST(TokenFileTest, ParsesCallersAndKeepsOnlyHashes) {
  auto entries = ParseTokenFile(absl::StrCat("# comment\n\nalice ", kAliceToken, "\n  bob\t",
                                             kBobToken, "  \r\nalice alice-second-token-000000\n"));
  ASSERT_THAT(entries, IsOk());
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].caller, "alice");
  EXPECT_EQ((*entries)[0].token_hash, gemini::Sha256::HexOf(kAliceToken));
  EXPECT_EQ((*entries)[1].caller, "bob");
  EXPECT_EQ((*entries)[1].token_hash, gemini::Sha256::HexOf(kBobToken));
}

TEST(TokenFileTest, RejectsMalformedLinesWithoutEchoingTokens) {
  EXPECT_THAT(ParseTokenFile("alice\n"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseTokenFile("alice short\n"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseTokenFile("Alice 0123456789abcdef0123\n"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  auto dup = ParseTokenFile(absl::StrCat("alice ", kAliceToken, "\nbob ", kAliceToken, "\n"));
  EXPECT_THAT(dup, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(dup.status().message(), HasSubstr("line 2"));
  EXPECT_THAT(dup.status().message(), Not(HasSubstr(kAliceToken)));
  auto three = ParseTokenFile(absl::StrCat("alice ", kAliceToken, " extra\n"));
  EXPECT_THAT(three.status().message(), Not(HasSubstr(kAliceToken)));
}

TEST(CallerTokensTest, MatchesAndReloadsOnChange) {
  const std::string path = WriteFile("tokens-reload", absl::StrCat("alice ", kAliceToken, "\n"));
  auto tokens = CallerTokens::Load(path);
  ASSERT_THAT(tokens, IsOk());
  EXPECT_EQ((*tokens)->Match(kAliceToken), "alice");
  EXPECT_EQ((*tokens)->Match(kBobToken), std::nullopt);
  EXPECT_EQ((*tokens)->Match(""), std::nullopt);
  EXPECT_EQ((*tokens)->Match(std::string(kAliceToken) + "x"), std::nullopt);
  EXPECT_FALSE((*tokens)->Reload());  // unchanged

  // Rotation: alice's old token goes, bob arrives.
  WriteFile("tokens-reload", absl::StrCat("bob ", kBobToken, "\n"));
  EXPECT_TRUE((*tokens)->Reload());
  EXPECT_EQ((*tokens)->Match(kAliceToken), std::nullopt);
  EXPECT_EQ((*tokens)->Match(kBobToken), "bob");

  // A broken file keeps the previous tokens.
  WriteFile("tokens-reload", "garbage\n");
  EXPECT_FALSE((*tokens)->Reload());
  EXPECT_EQ((*tokens)->Match(kBobToken), "bob");
  std::remove(path.c_str());
  EXPECT_FALSE((*tokens)->Reload());
  EXPECT_EQ((*tokens)->Match(kBobToken), "bob");
}

TEST(CallerTokensTest, LoadFailsForMissingOrEmptyFile) {
  EXPECT_THAT(CallerTokens::Load(::testing::TempDir() + "/no-such-tokens"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(CallerTokens::Load(WriteFile("tokens-empty", "# nobody\n")),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// Two caller names whose file owner tags (vision::OwnerTagOf) are the same, found by search.
constexpr char kCollidingA[] = "c776273";
constexpr char kCollidingB[] = "c1241226";

TEST(OwnerTagCollisionTest, TheTestNamesReallyCollide) {
  EXPECT_EQ(vision::OwnerTagOf(kCollidingA), vision::OwnerTagOf(kCollidingB));
  EXPECT_THAT(CheckOwnerTags({"alice", "bob", "alice"}, "test"), IsOk());
  EXPECT_THAT(CheckOwnerTags({kCollidingA, "alice", kCollidingB}, "test"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(kCollidingA), HasSubstr(kCollidingB),
                             HasSubstr("owner tag"))));
}

TEST(OwnerTagCollisionTest, TokenFileWithCollidingCallersIsRefused) {
  const std::string text =
      absl::StrCat(kCollidingA, " ", kAliceToken, "\n", kCollidingB, " ", kBobToken, "\n");
  auto parsed = ParseTokenFile(text);
  EXPECT_THAT(parsed, StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr(kCollidingA), HasSubstr(kCollidingB))));
  EXPECT_THAT(parsed.status().message(), Not(HasSubstr(kAliceToken)));
  EXPECT_THAT(CallerTokens::Load(WriteFile("tokens-collide", text)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Against a caller of --caller_overrides as well.
  EXPECT_THAT(ParseTokenFile(absl::StrCat(kCollidingA, " ", kAliceToken, "\n"), {kCollidingB}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(OwnerTagCollisionTest, ReloadWithACollisionKeepsThePreviousTokens) {
  const std::string name = "tokens-collide-reload";
  auto tokens = CallerTokens::Load(WriteFile(name, absl::StrCat(kCollidingA, " ", kAliceToken, "\n")));
  ASSERT_THAT(tokens, IsOk());
  WriteFile(name, absl::StrCat(kCollidingA, " ", kAliceToken, "\n", kCollidingB, " ", kBobToken,
                               "\n"));
  EXPECT_FALSE((*tokens)->Reload());
  EXPECT_EQ((*tokens)->Match(kAliceToken), kCollidingA);
  EXPECT_EQ((*tokens)->Match(kBobToken), std::nullopt);
}

TEST(OwnerTagCollisionTest, GateRefusesCollidingConfiguredCallers) {
  // Two overrides (certificate callers, say).
  auto overrides = ParseCallerOverrides(absl::StrCat(kCollidingA, ":rps=1;", kCollidingB, ":rps=2"));
  ASSERT_THAT(overrides, IsOk());
  AuthOptions options;
  options.client_cert_identity = true;
  options.overrides = *overrides;
  EXPECT_THAT(CallerGate::Create(options, vision::VisionOptions{}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--caller_overrides")));
  // A token file caller against an override.
  AuthOptions mixed;
  mixed.tokens_file =
      WriteFile("tokens-collide-gate", absl::StrCat(kCollidingA, " ", kAliceToken, "\n"));
  mixed.overrides = *ParseCallerOverrides(absl::StrCat(kCollidingB, ":rps=1"));
  EXPECT_THAT(CallerGate::Create(mixed, vision::VisionOptions{}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(kCollidingB)));
  // The same caller in both is fine.
  mixed.overrides = *ParseCallerOverrides(absl::StrCat(kCollidingA, ":rps=1"));
  EXPECT_THAT(CallerGate::Create(mixed, vision::VisionOptions{}), IsOk());
}

class FakeClock {
 public:
  absl::Time Now() const { return now_; }
  void Advance(absl::Duration d) { now_ += d; }

 private:
  absl::Time now_ = absl::FromUnixSeconds(1'000'000);
};

TEST(CallerLimiterTest, RateLimitWithBurstAndRetryDelay) {
  FakeClock clock;
  CallerLimiter limiter([&clock] { return clock.Now(); });
  const CallerLimits limits{.requests_per_second = 2, .burst = 3};
  for (int i = 0; i < 3; ++i) EXPECT_THAT(limiter.Admit("alice", limits), IsOk()) << i;
  auto refused = limiter.Admit("alice", limits);
  ASSERT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(ReasonOf(refused.status()), "CALLER_RATE_LIMITED");
  google::rpc::RetryInfo retry;
  ASSERT_TRUE(GetDetail(refused.status(), retry));
  EXPECT_EQ(retry.retry_delay().seconds(), 0);
  EXPECT_EQ(retry.retry_delay().nanos(), 500'000'000);  // one token at 2/s
  // Another caller has its own bucket.
  EXPECT_THAT(limiter.Admit("bob", limits), IsOk());
  clock.Advance(absl::Milliseconds(500));
  EXPECT_THAT(limiter.Admit("alice", limits), IsOk());
  EXPECT_THAT(limiter.Admit("alice", limits), StatusIs(absl::StatusCode::kResourceExhausted));
  // Refill is capped at the burst.
  clock.Advance(absl::Hours(1));
  for (int i = 0; i < 3; ++i) EXPECT_THAT(limiter.Admit("alice", limits), IsOk()) << i;
  EXPECT_THAT(limiter.Admit("alice", limits), StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(CallerLimiterTest, ConcurrencyHeldByPermits) {
  CallerLimiter limiter;
  const CallerLimits limits{.max_concurrent_calls = 2};
  auto first = limiter.Admit("alice", limits);
  auto second = limiter.Admit("alice", limits);
  ASSERT_THAT(first, IsOk());
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(limiter.InFlight("alice"), 2);
  auto third = limiter.Admit("alice", limits);
  ASSERT_THAT(third, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(ReasonOf(third.status()), "CALLER_CONCURRENCY_LIMITED");
  google::rpc::RetryInfo retry;
  EXPECT_TRUE(GetDetail(third.status(), retry));
  EXPECT_THAT(limiter.Admit("bob", limits), IsOk());

  // Moving a permit keeps the slot; destroying it frees it.
  CallerLimiter::Permit moved = *std::move(first);
  EXPECT_EQ(limiter.InFlight("alice"), 2);
  moved = CallerLimiter::Permit();
  EXPECT_EQ(limiter.InFlight("alice"), 1);
  EXPECT_THAT(limiter.Admit("alice", limits), IsOk());  // the temporary permit ends at once
  EXPECT_EQ(limiter.InFlight("alice"), 1);
}

TEST(CallerLimiterTest, CallersBeyondTheCapShareOneBucket) {
  FakeClock clock;
  CallerLimiter limiter([&clock] { return clock.Now(); });
  const CallerLimits limits{.requests_per_second = 1, .burst = 1};
  for (std::size_t i = 0; i < kMaxTrackedCallers; ++i) {
    ASSERT_THAT(limiter.Admit(absl::StrCat("caller-", i), limits), IsOk()) << i;
  }
  // The table is full: the next new callers share one bucket (one request at 1/s, burst 1), so
  // the second is refused although it never called before.
  EXPECT_THAT(limiter.Admit("late-a", limits), IsOk());
  auto refused = limiter.Admit("late-b", limits);
  ASSERT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(ReasonOf(refused.status()), "CALLER_RATE_LIMITED");
  // A caller tracked before the cap keeps its own bucket.
  clock.Advance(absl::Seconds(1));
  EXPECT_THAT(limiter.Admit("caller-7", limits), IsOk());
  EXPECT_THAT(limiter.Admit("late-c", limits), IsOk());  // the shared bucket refilled once
  EXPECT_THAT(limiter.Admit("late-a", limits), StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(CallerLimiterTest, UnlimitedByDefault) {
  CallerLimiter limiter;
  for (int i = 0; i < 1000; ++i) ASSERT_THAT(limiter.Admit("alice", CallerLimits{}), IsOk());
}

TEST(CallerOverridesTest, ParsesEveryKey) {
  auto parsed = ParseCallerOverrides(
      "alice: rps=2.5, burst=4, concurrent=3, models=gemini-2.5-pro|gemini-2.5-flash, "
      "max_output_tokens=1024, max_thinking_budget=0, max_thinking_level=low, max_images=2, "
      "max_image_bytes=1000; bob:rps=1");
  ASSERT_THAT(parsed, IsOk());
  const CallerOverrides& alice = parsed->at("alice");
  EXPECT_EQ(alice.requests_per_second, 2.5);
  EXPECT_EQ(alice.burst, 4);
  EXPECT_EQ(alice.max_concurrent_calls, 3);
  EXPECT_EQ(alice.allowed_models,
            (std::vector<std::string>{"gemini-2.5-pro", "gemini-2.5-flash"}));
  EXPECT_EQ(alice.max_output_tokens, 1024);
  EXPECT_EQ(alice.max_thinking_budget, 0);
  EXPECT_EQ(alice.max_thinking_level, "LOW");
  EXPECT_EQ(alice.max_images_per_request, 2);
  EXPECT_EQ(alice.max_image_bytes_per_request, 1000);
  EXPECT_EQ(parsed->at("bob").requests_per_second, 1);
  EXPECT_FALSE(parsed->at("bob").burst.has_value());
  EXPECT_THAT(ParseCallerOverrides(""), IsOk());
}

TEST(CallerOverridesTest, RejectsMistakes) {
  for (const char* spec : {"alice", "Alice:rps=1", "alice:rps=-1", "alice:rps=x", "alice:colour=1",
                           "alice:max_thinking_level=huge", "alice:rps=1;alice:rps=2",
                           "alice:max_images=0", "alice:models="}) {
    EXPECT_THAT(ParseCallerOverrides(spec), StatusIs(absl::StatusCode::kInvalidArgument)) << spec;
  }
}

TEST(CallerGateTest, OffMeansAnonymous) {
  auto gate = CallerGate::Create(AuthOptions{}, vision::VisionOptions{});
  ASSERT_THAT(gate, IsOk());
  EXPECT_FALSE((*gate)->enabled());
  EXPECT_EQ((*gate)->Identify(std::nullopt, {}).value(), "");
}

TEST(CallerGateTest, BearerTokens) {
  AuthOptions options;
  options.tokens_file =
      WriteFile("tokens-gate", absl::StrCat("alice ", kAliceToken, "\nbob ", kBobToken, "\n"));
  auto gate = CallerGate::Create(options, vision::VisionOptions{});
  ASSERT_THAT(gate, IsOk());
  CallerGate& g = **gate;
  EXPECT_EQ(g.Identify(absl::StrCat("Bearer ", kAliceToken), {}).value(), "alice");
  EXPECT_EQ(g.Identify(absl::StrCat("bearer  ", kBobToken, " "), {}).value(), "bob");
  for (const auto& bad : {std::optional<absl::string_view>(),
                          std::optional<absl::string_view>("Bearer wrong-token-0123456789"),
                          std::optional<absl::string_view>(kAliceToken),
                          std::optional<absl::string_view>("Basic YWxpY2U6cHc="),
                          std::optional<absl::string_view>("Bearer ")}) {
    auto status = g.Identify(bad, {});
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnauthenticated));
    EXPECT_EQ(ReasonOf(status.status()), "CALLER_UNAUTHENTICATED");
  }
  // Without cert identity configured, a certificate does not name the caller.
  EXPECT_THAT(g.Identify(std::nullopt, {"alice"}), StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(CallerGateTest, ClientCertificateNamesCaller) {
  AuthOptions options;
  options.client_cert_identity = true;
  auto gate = CallerGate::Create(options, vision::VisionOptions{});
  ASSERT_THAT(gate, IsOk());
  EXPECT_EQ((*gate)->Identify(std::nullopt, {"Not A Name", "svc-a.example"}).value(),
            "svc-a.example");
  EXPECT_THAT((*gate)->Identify(std::nullopt, {"Not A Name"}),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT((*gate)->Identify(std::nullopt, {}), StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(CallerGateTest, TokenTakesPrecedenceOverCertificate) {
  AuthOptions options;
  options.client_cert_identity = true;
  options.tokens_file = WriteFile("tokens-both", absl::StrCat("alice ", kAliceToken, "\n"));
  auto gate = CallerGate::Create(options, vision::VisionOptions{});
  ASSERT_THAT(gate, IsOk());
  EXPECT_EQ((*gate)->Identify(absl::StrCat("Bearer ", kAliceToken), {"svc-b"}).value(), "alice");
  EXPECT_EQ((*gate)->Identify(std::nullopt, {"svc-b"}).value(), "svc-b");
  // A wrong token is refused even with a good certificate.
  EXPECT_THAT((*gate)->Identify("Bearer wrong-token-0123456789", {"svc-b"}),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(CallerGateTest, PoliciesApplyOverrides) {
  AuthOptions options;
  options.client_cert_identity = true;
  options.limits.requests_per_second = 10;
  options.overrides = *ParseCallerOverrides("alice:rps=1,models=gemini-2.5-pro,max_output_tokens=64");
  vision::VisionOptions vision;
  vision.cost.allowed_models = {"gemini-2.5-flash"};
  vision.cost.max_output_tokens = 4096;
  auto gate = CallerGate::Create(options, vision);
  ASSERT_THAT(gate, IsOk());
  auto alice = (*gate)->PolicyFor("alice");
  auto bob = (*gate)->PolicyFor("bob");
  EXPECT_EQ(alice->limits.requests_per_second, 1);
  EXPECT_EQ(alice->vision.cost.allowed_models, std::vector<std::string>{"gemini-2.5-pro"});
  EXPECT_EQ(alice->vision.cost.max_output_tokens, 64);
  EXPECT_EQ(bob->limits.requests_per_second, 10);
  EXPECT_EQ(bob->vision.cost.allowed_models, std::vector<std::string>{"gemini-2.5-flash"});
  EXPECT_EQ(bob->vision.cost.max_output_tokens, 4096);
}

}  // namespace
}  // namespace vision_gateway::server
