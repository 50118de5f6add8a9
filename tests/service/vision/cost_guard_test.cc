#include "service/vision/cost_guard.h"
#include "service/vision/vision_options.h"

#include "google/rpc/error_details.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/common/status_details.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::vision {
namespace {

using ::testing::HasSubstr;
using ::vision_gateway::testing::IsOk;
using ::vision_gateway::testing::StatusIs;

std::string ReasonOf(const absl::Status& status) {
  google::rpc::ErrorInfo info;
  return GetDetail(status, info) ? info.reason() : "";
}

TEST(CostGuardTest, ModelAllowlist) {
  CostLimits limits;
  EXPECT_THAT(CheckModelAllowed("anything-goes", limits), IsOk());
  limits.allowed_models = {"gemini-2.5-flash", "gemini-2.5-pro"};
  EXPECT_THAT(CheckModelAllowed("gemini-2.5-pro", limits), IsOk());
  absl::Status refused = CheckModelAllowed("gemini-2.5-ultra", limits);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(refused.message(), HasSubstr("gemini-2.5-flash, gemini-2.5-pro"));
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(GetDetail(refused, info));
  EXPECT_EQ(info.reason(), "MODEL_NOT_ALLOWED");
  EXPECT_EQ(info.metadata().at("allowed"), "gemini-2.5-flash, gemini-2.5-pro");
}

TEST(CostGuardTest, DefaultAllowlistHasTheDefaultModel) {
  CostLimits limits;
  limits.allowed_models = DefaultAllowedModels();
  EXPECT_THAT(CheckModelAllowed(VisionOptions().default_model, limits), IsOk());
  EXPECT_FALSE(CheckModelAllowed("gemini-2.5-flash", limits).ok());  // shut down in 2026
}

TEST(CostGuardTest, OutputTokenCap) {
  CostLimits limits;
  limits.max_output_tokens = 1000;
  gemini::GenerationConfig unset;
  ASSERT_THAT(ApplyCostCaps("gemini-2.5-flash", limits, unset), IsOk());
  EXPECT_EQ(unset.max_output_tokens, 1000);  // the cap fills in
  gemini::GenerationConfig under;
  under.max_output_tokens = 200;
  ASSERT_THAT(ApplyCostCaps("gemini-2.5-flash", limits, under), IsOk());
  EXPECT_EQ(under.max_output_tokens, 200);
  gemini::GenerationConfig over;
  over.max_output_tokens = 1001;
  absl::Status s = ApplyCostCaps("gemini-2.5-flash", limits, over);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(s.message(), HasSubstr("at most 1000"));
  EXPECT_EQ(ReasonOf(s), "COST_LIMIT_EXCEEDED");
}

TEST(CostGuardTest, ThinkingBudgetCap) {
  CostLimits limits;
  limits.max_thinking_budget = 512;
  gemini::GenerationConfig unset;
  ASSERT_THAT(ApplyCostCaps("gemini-2.5-flash", limits, unset), IsOk());
  ASSERT_TRUE(unset.thinking_config.has_value());
  EXPECT_EQ(unset.thinking_config->thinking_budget, 512);
  for (int budget : {-1, 513}) {
    gemini::GenerationConfig c;
    c.thinking_config.emplace().thinking_budget = budget;
    EXPECT_THAT(ApplyCostCaps("gemini-2.5-flash", limits, c),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << budget;
  }
  gemini::GenerationConfig off;
  off.thinking_config.emplace().thinking_budget = 0;  // Detect/Segment's minimal thinking
  EXPECT_THAT(ApplyCostCaps("gemini-2.5-flash", limits, off), IsOk());
  EXPECT_EQ(off.thinking_config->thinking_budget, 0);
  // A level-based model without a level cap is left alone.
  gemini::GenerationConfig g3;
  ASSERT_THAT(ApplyCostCaps("gemini-3-pro-preview", limits, g3), IsOk());
  EXPECT_FALSE(g3.thinking_config.has_value());
}

TEST(CostGuardTest, ThinkingLevelCap) {
  CostLimits limits;
  limits.max_thinking_level = "LOW";
  gemini::GenerationConfig unset;
  ASSERT_THAT(ApplyCostCaps("gemini-3-pro-preview", limits, unset), IsOk());
  EXPECT_EQ(unset.thinking_config->thinking_level, "LOW");
  gemini::GenerationConfig high;
  high.thinking_config.emplace().thinking_level = "HIGH";
  EXPECT_THAT(ApplyCostCaps("gemini-3-pro-preview", limits, high),
              StatusIs(absl::StatusCode::kInvalidArgument));
  gemini::GenerationConfig minimal;
  minimal.thinking_config.emplace().thinking_level = "MINIMAL";
  EXPECT_THAT(ApplyCostCaps("gemini-3-pro-preview", limits, minimal), IsOk());
  // A budget-based model without a budget cap is left alone.
  gemini::GenerationConfig g25;
  ASSERT_THAT(ApplyCostCaps("gemini-2.5-flash", limits, g25), IsOk());
  EXPECT_FALSE(g25.thinking_config.has_value());
}

TEST(CostGuardTest, ImageBytes) {
  CostLimits limits;
  EXPECT_THAT(CheckImageBytes(int64_t{1} << 40, limits), IsOk());
  limits.max_image_bytes_per_request = 100;
  EXPECT_THAT(CheckImageBytes(100, limits), IsOk());
  absl::Status s = CheckImageBytes(101, limits);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(ReasonOf(s), "COST_LIMIT_EXCEEDED");
}

}  // namespace
}  // namespace vision_gateway::vision
