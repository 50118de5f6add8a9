#include "service/gemini/api_key_file.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/secret_mount.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::gemini {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::vision_gateway::testing::IsOk;
using ::vision_gateway::testing::SecretMount;
using ::vision_gateway::testing::StatusIs;

constexpr char kKeyA[] = "AIzaSy-key-A-DO-NOT-LEAK-000000000000";
constexpr char kKeyB[] = "AIzaSy-key-B-DO-NOT-LEAK-111111111111";

TEST(ReadApiKeyFileTest, StripsSurroundingWhitespace) {
  SecretMount mount;
  mount.Publish(absl::StrCat("  ", kKeyA, "\n"));
  EXPECT_THAT(ReadApiKeyFile(mount.path().string()), IsOk());
  EXPECT_EQ(*ReadApiKeyFile(mount.path().string()), kKeyA);
}

TEST(ReadApiKeyFileTest, RejectsBadFilesWithoutShowingTheirContent) {
  SecretMount mount;
  const std::string path = mount.path().string();
  EXPECT_THAT(ReadApiKeyFile(path + ".missing"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("cannot open")));
  mount.Publish(" \n\t");
  EXPECT_THAT(ReadApiKeyFile(path), StatusIs(absl::StatusCode::kFailedPrecondition,
                                             HasSubstr("is empty")));
  mount.Publish(absl::StrCat(kKeyA, " ", kKeyB));
  EXPECT_THAT(ReadApiKeyFile(path),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("whitespace"), Not(HasSubstr(kKeyA)), Not(HasSubstr(kKeyB)))));
  mount.Publish(absl::StrCat(kKeyA, "\r\nx-injected: 1"));
  EXPECT_THAT(ReadApiKeyFile(path), StatusIs(absl::StatusCode::kFailedPrecondition,
                                             Not(HasSubstr(kKeyA))));
  mount.Publish(std::string(kMaxApiKeyFileBytes + 1, 'k'));
  EXPECT_THAT(ReadApiKeyFile(path), StatusIs(absl::StatusCode::kFailedPrecondition,
                                             HasSubstr("larger than")));
}

TEST(ApiKeyFileTest, OpenFailsOnAnUnusableFile) {
  SecretMount mount;
  EXPECT_THAT(ApiKeyFile::Open(mount.path().string(), absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  mount.Publish("");
  EXPECT_THAT(ApiKeyFile::Open(mount.path().string(), absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(ApiKeyFileTest, ReloadFollowsTheSecretSymlinkSwap) {
  SecretMount mount;
  mount.Publish(kKeyA);
  auto file = ApiKeyFile::Open(mount.path().string(), absl::ZeroDuration());
  ASSERT_THAT(file, IsOk());
  EXPECT_EQ((*file)->Current(), kKeyA);
  EXPECT_THAT((*file)->Reload(), IsOk());
  EXPECT_EQ((*file)->changes(), 0) << "an unchanged file is not a change";

  mount.Publish(absl::StrCat(kKeyB, "\n"));
  EXPECT_EQ((*file)->Current(), kKeyA) << "nothing changes before the file is re-read";
  EXPECT_THAT((*file)->Reload(), IsOk());
  EXPECT_EQ((*file)->Current(), kKeyB);
  EXPECT_EQ((*file)->changes(), 1);
}

TEST(ApiKeyFileTest, ABrokenUpdateKeepsTheCurrentKey) {
  SecretMount mount;
  mount.Publish(kKeyA);
  auto file = ApiKeyFile::Open(mount.path().string(), absl::ZeroDuration());
  ASSERT_THAT(file, IsOk());
  mount.Publish("");  // e.g. a Secret updated with an empty value
  EXPECT_THAT((*file)->Reload(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ((*file)->Current(), kKeyA);
  mount.Publish(kKeyB);
  EXPECT_THAT((*file)->Reload(), IsOk());
  EXPECT_EQ((*file)->Current(), kKeyB);
}

TEST(ApiKeyFileTest, ThePollingThreadPicksUpARotation) {
  SecretMount mount;
  mount.Publish(kKeyA);
  auto file = ApiKeyFile::Open(mount.path().string(), absl::Milliseconds(10));
  ASSERT_THAT(file, IsOk());
  mount.Publish(kKeyB);
  ASSERT_TRUE((*file)->WaitForChange(0, absl::Seconds(30))) << "no reload within 30 s";
  EXPECT_EQ((*file)->Current(), kKeyB);
  mount.Publish(kKeyA);
  ASSERT_TRUE((*file)->WaitForChange(1, absl::Seconds(30)));
  EXPECT_EQ((*file)->Current(), kKeyA);
}

}  // namespace
}  // namespace vision_gateway::gemini
