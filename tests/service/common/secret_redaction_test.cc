#include "service/common/secret_redaction.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "gtest/gtest.h"

namespace vision_gateway {
namespace {

constexpr char kKey[] = "q7Xv2mLp-9Rw4Tk3z-emu";

std::string Hidden(std::string text, std::string_view secret = kKey) {
  HideSecret(text, secret);
  return text;
}

TEST(HideSecretTest, HidesTheWholeSecretInAnyCase) {
  EXPECT_EQ(Hidden("key q7Xv2mLp-9Rw4Tk3z-emu is invalid"), "key [redacted] is invalid");
  EXPECT_EQ(Hidden("KEY Q7XV2MLP-9RW4TK3Z-EMU!"), "KEY [redacted]!");
  EXPECT_EQ(Hidden("a q7Xv2mLp-9Rw4Tk3z-emu b q7Xv2mLp-9Rw4Tk3z-emu"), "a [redacted] b [redacted]");
}

TEST(HideSecretTest, HidesEveryPieceOfSixOrMoreCharacters) {
  // What an upstream message may echo: the key's tail, its head, a middle run.
  EXPECT_EQ(Hidden("key ends k3z-emu"), "key ends [redacted]");
  EXPECT_EQ(Hidden("key starts q7Xv2m."), "key starts [redacted].");
  EXPECT_EQ(Hidden("(p-9Rw4Tk)"), "([redacted])");
  // Two pieces and the text between them survives.
  EXPECT_EQ(Hidden("k3z-emu and q7Xv2mLp"), "[redacted] and [redacted]");
  // Exactly six characters is a piece; five is not.
  EXPECT_EQ(Hidden("x Tk3z-e y"), "x [redacted] y");
  EXPECT_EQ(Hidden("x Tk3z- y"), "x Tk3z- y");
}

TEST(HideSecretTest, LeavesOtherTextAlone) {
  std::string text = "The model is overloaded. Please try again later.";
  EXPECT_FALSE(HideSecret(text, kKey));
  EXPECT_EQ(text, "The model is overloaded. Please try again later.");
  EXPECT_FALSE(HideSecret(text, ""));
  // A short secret is hidden whole only.
  EXPECT_EQ(Hidden("abc abcd", "abcd"), "abc [redacted]");
  EXPECT_EQ(Hidden("", kKey), "");
}

TEST(HideSecretTest, ContainsSecretAgreesWithHideSecret) {
  for (const std::string text : {"key ends k3z-emu", "Q7XV2MLP-9RW4TK3Z-EMU", "nothing here",
                                 "x Tk3z- y", "p-9Rw4"}) {
    std::string copy = text;
    EXPECT_EQ(ContainsSecret(text, kKey), HideSecret(copy, kKey)) << text;
  }
}

TEST(RedactSecretTest, RedactsTheMessageAndDropsPayloadsHoldingTheSecret) {
  absl::Status status = absl::InvalidArgumentError("API key not valid; key ends k3z-emu");
  status.SetPayload("type.googleapis.com/google.rpc.DebugInfo", absl::Cord("echo 9Rw4Tk3z"));
  status.SetPayload("type.googleapis.com/google.rpc.RetryInfo", absl::Cord("clean"));
  const absl::Status out = RedactSecret(status, kKey);
  EXPECT_EQ(out.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(out.message(), "API key not valid; key ends [redacted]");
  EXPECT_FALSE(out.GetPayload("type.googleapis.com/google.rpc.DebugInfo").has_value());
  ASSERT_TRUE(out.GetPayload("type.googleapis.com/google.rpc.RetryInfo").has_value());
  EXPECT_EQ(std::string(*out.GetPayload("type.googleapis.com/google.rpc.RetryInfo")), "clean");
}

TEST(RedactSecretTest, CleanAndOkStatusesPassUnchanged) {
  EXPECT_TRUE(RedactSecret(absl::OkStatus(), kKey).ok());
  absl::Status clean = absl::UnavailableError("overloaded");
  clean.SetPayload("x", absl::Cord("y"));
  EXPECT_EQ(RedactSecret(clean, kKey), clean);
  EXPECT_EQ(RedactSecret(absl::InternalError("key q7Xv2mLp-9Rw4Tk3z-emu"), "").message(),
            "key q7Xv2mLp-9Rw4Tk3z-emu");
}

}  // namespace
}  // namespace vision_gateway
