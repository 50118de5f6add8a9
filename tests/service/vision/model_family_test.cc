// The parameter table per model family: what goes upstream for each caller option on each family
// (issue #22), and the refusals where no faithful translation exists.
#include "service/vision/model_family.h"

#include <optional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "google/rpc/error_details.pb.h"
#include "service/common/status_details.h"
#include "service/vision/model_options.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::vision {
namespace {

using ::testing::HasSubstr;
using ::vision_gateway::testing::IsOk;

// What ModelConfigFor sends for `options` on `model` (the Detect/Segment defaults when `task`).
struct Sent {
  std::optional<int32_t> budget;
  std::string level;  // "" when not sent
  bool thinking_config = false;
  std::optional<float> temperature;
  std::string request_resolution;
  std::string part_resolution;
};

absl::StatusOr<Sent> SentFor(const std::string& model, const v1::ModelOptions& options,
                             bool task = false, const CostLimits& limits = {}) {
  const TaskDefaults defaults =
      task ? TaskDefaults{.temperature = 0.5f, .minimal_thinking = true} : TaskDefaults{};
  auto fitted = ModelConfigFor(options, model, defaults, limits);
  if (!fitted.ok()) return fitted.status();
  Sent sent;
  if (fitted->config.thinking_config) {
    sent.thinking_config = true;
    sent.budget = fitted->config.thinking_config->thinking_budget;
    sent.level = fitted->config.thinking_config->thinking_level;
  }
  sent.temperature = fitted->config.temperature;
  sent.request_resolution = fitted->config.media_resolution;
  sent.part_resolution = fitted->part_media_resolution;
  return sent;
}

v1::ModelOptions Budget(int32_t budget) {
  v1::ModelOptions options;
  options.set_thinking_budget(budget);
  return options;
}

v1::ModelOptions Level(v1::ThinkingLevel level) {
  v1::ModelOptions options;
  options.set_thinking_level(level);
  return options;
}

TEST(ModelFamilyTest, IdsMapToTheirFamilies) {
  EXPECT_EQ(FamilyOf("gemini-2.5-flash").name, "gemini-2.5-flash");
  EXPECT_EQ(FamilyOf("models/gemini-2.5-flash-lite-preview-09-2025").name,
            "gemini-2.5-flash-lite");
  EXPECT_EQ(FamilyOf("gemini-2.5-pro").thinking, ThinkingControl::kBudget);
  EXPECT_EQ(FamilyOf("gemini-3-flash-preview").name, "gemini-3-flash");
  EXPECT_EQ(FamilyOf("gemini-3.1-pro-preview").levels, kLevelLow | kLevelMedium | kLevelHigh);
  EXPECT_EQ(FamilyOf("gemini-3-pro-preview").levels, kLevelLow | kLevelHigh);
  // Later generations and aliases: the levels every Gemini 3 model takes.
  EXPECT_EQ(FamilyOf("gemini-4-flash").name, "gemini-3 and later (other)");
  EXPECT_EQ(FamilyOf("gemini-flash-latest").name, "gemini-3 and later (other)");
  EXPECT_EQ(FamilyOf("gemma-3-27b-it").thinking, ThinkingControl::kNone);
  EXPECT_EQ(FamilyOf("gemini-2.0-flash").thinking, ThinkingControl::kNone);
}

// Budget 0 ("thinking off", the image-understanding page's setting for detection and
// segmentation) on every family.
TEST(ModelFamilyTest, BudgetZeroPerFamily) {
  EXPECT_EQ(SentFor("gemini-2.5-flash", Budget(0))->budget, 0);
  EXPECT_EQ(SentFor("gemini-2.5-flash", Budget(0))->level, "");
  // 2.5 Pro cannot stop thinking: its least.
  EXPECT_EQ(SentFor("gemini-2.5-pro", Budget(0))->budget, 128);
  // Level models: the lowest level each accepts, never a budget (never both).
  auto flash3 = SentFor("gemini-3-flash-preview", Budget(0));
  EXPECT_EQ(flash3->level, "MINIMAL");
  EXPECT_FALSE(flash3->budget.has_value());
  EXPECT_EQ(SentFor("gemini-3-pro-preview", Budget(0))->level, "LOW");
  EXPECT_EQ(SentFor("gemini-3.1-pro-preview", Budget(0))->level, "LOW");
  EXPECT_EQ(SentFor("gemini-flash-latest", Budget(0))->level, "LOW");
  // A model that does not think: nothing to send.
  EXPECT_FALSE(SentFor("gemini-2.0-flash", Budget(0))->thinking_config);
}

TEST(ModelFamilyTest, PositiveAndDynamicBudgetsPerFamily) {
  EXPECT_EQ(SentFor("gemini-2.5-flash", Budget(2048))->budget, 2048);
  EXPECT_EQ(SentFor("gemini-2.5-flash", Budget(100000))->budget, 24576);  // clamped
  EXPECT_EQ(SentFor("gemini-2.5-pro", Budget(64))->budget, 128);
  EXPECT_EQ(SentFor("gemini-2.5-flash", Budget(-1))->budget, -1);
  // Level models: a budget becomes the level of its size; the next accepted one up.
  EXPECT_EQ(SentFor("gemini-3-flash-preview", Budget(512))->level, "LOW");
  EXPECT_EQ(SentFor("gemini-3-flash-preview", Budget(4096))->level, "MEDIUM");
  EXPECT_EQ(SentFor("gemini-3-pro-preview", Budget(4096))->level, "HIGH");
  EXPECT_EQ(SentFor("gemini-3-flash-preview", Budget(30000))->level, "HIGH");
  // Dynamic: the model's own default, i.e. no thinkingConfig at all.
  EXPECT_FALSE(SentFor("gemini-3-flash-preview", Budget(-1))->thinking_config);
  // A model that does not think refuses real thinking, naming model and option.
  absl::Status refused = SentFor("gemini-2.0-flash", Budget(1024)).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("thinking_budget"));
  EXPECT_THAT(refused.message(), HasSubstr("gemini-2.0-flash"));
}

TEST(ModelFamilyTest, LevelsPerFamily) {
  EXPECT_EQ(SentFor("gemini-3-flash-preview", Level(v1::THINKING_LEVEL_MINIMAL))->level,
            "MINIMAL");
  EXPECT_EQ(SentFor("gemini-3.1-pro-preview", Level(v1::THINKING_LEVEL_MEDIUM))->level, "MEDIUM");
  // MINIMAL means "as little as the model allows".
  EXPECT_EQ(SentFor("gemini-3-pro-preview", Level(v1::THINKING_LEVEL_MINIMAL))->level, "LOW");
  auto minimal_on_budget = SentFor("gemini-2.5-flash", Level(v1::THINKING_LEVEL_MINIMAL));
  EXPECT_EQ(minimal_on_budget->budget, 0);
  EXPECT_EQ(minimal_on_budget->level, "");
  EXPECT_EQ(SentFor("gemini-2.5-pro", Level(v1::THINKING_LEVEL_MINIMAL))->budget, 128);
  // No faithful translation: INVALID_ARGUMENT naming the model and the option.
  absl::Status medium = SentFor("gemini-3-pro-preview", Level(v1::THINKING_LEVEL_MEDIUM)).status();
  EXPECT_EQ(medium.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(medium.message(), HasSubstr("options.thinking_level: model gemini-3-pro-preview"));
  EXPECT_THAT(medium.message(), HasSubstr("LOW, HIGH"));
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(GetDetail(medium, info));
  EXPECT_EQ(info.reason(), "MODEL_OPTION_UNSUPPORTED");
  EXPECT_EQ(info.metadata().at("model"), "gemini-3-pro-preview");
  absl::Status high_on_budget =
      SentFor("gemini-2.5-flash", Level(v1::THINKING_LEVEL_HIGH)).status();
  EXPECT_EQ(high_on_budget.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(high_on_budget.message(), HasSubstr("takes a thinking budget"));
}

// Detect/Segment ask for as little thinking as the model allows, and temperature 0.5 only where
// the family takes the task's temperature.
TEST(ModelFamilyTest, TaskDefaultsPerFamily) {
  const v1::ModelOptions none;
  auto flash25 = SentFor("gemini-2.5-flash", none, /*task=*/true);
  EXPECT_EQ(flash25->budget, 0);
  EXPECT_EQ(flash25->temperature, 0.5f);
  auto pro25 = SentFor("gemini-2.5-pro", none, true);
  EXPECT_EQ(pro25->budget, 128);
  auto flash3 = SentFor("gemini-3-flash-preview", none, true);
  EXPECT_EQ(flash3->level, "MINIMAL");
  EXPECT_FALSE(flash3->temperature.has_value());
  EXPECT_EQ(SentFor("gemini-3.1-pro-preview", none, true)->level, "LOW");
  EXPECT_FALSE(SentFor("gemini-2.0-flash", none, true)->thinking_config);
  // An explicit temperature is always sent.
  v1::ModelOptions cold;
  cold.set_temperature(0.2f);
  EXPECT_EQ(SentFor("gemini-3-flash-preview", cold, true)->temperature, 0.2f);
  // Caption has no task defaults: nothing is added.
  EXPECT_FALSE(SentFor("gemini-3-flash-preview", none)->thinking_config);
}

TEST(ModelFamilyTest, MediaResolutionPerFamily) {
  v1::ModelOptions low;
  low.set_media_resolution(v1::MEDIA_RESOLUTION_LOW);
  auto g3 = SentFor("gemini-3-flash-preview", low);
  EXPECT_EQ(g3->part_resolution, "MEDIA_RESOLUTION_LOW");
  EXPECT_EQ(g3->request_resolution, "");
  auto g25 = SentFor("gemini-2.5-flash", low);
  EXPECT_EQ(g25->part_resolution, "");
  EXPECT_EQ(g25->request_resolution, "MEDIA_RESOLUTION_LOW");
  // ULTRA_HIGH exists per image part only.
  v1::ModelOptions ultra;
  ultra.set_media_resolution(v1::MEDIA_RESOLUTION_ULTRA_HIGH);
  EXPECT_EQ(SentFor("gemini-3-flash-preview", ultra)->part_resolution,
            "MEDIA_RESOLUTION_ULTRA_HIGH");
  absl::Status refused = SentFor("gemini-2.5-flash", ultra).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("options.media_resolution: model gemini-2.5-flash"));
}

// The cost caps are applied before the translation: a level cap on a model that lacks the level
// still ends as a level the model takes.
TEST(ModelFamilyTest, CapsAreTranslatedToo) {
  CostLimits limits;
  limits.max_thinking_level = "MINIMAL";
  EXPECT_EQ(SentFor("gemini-3.1-pro-preview", v1::ModelOptions(), false, limits)->level, "LOW");
  limits = CostLimits();
  limits.max_thinking_budget = 0;
  EXPECT_EQ(SentFor("gemini-2.5-pro", v1::ModelOptions(), false, limits)->budget, 128);
}

TEST(ModelFamilyTest, ReroutingComparesFamilies) {
  EXPECT_TRUE(IsRerouted("gemini-2.5-flash", "gemini-3-flash-preview"));
  EXPECT_FALSE(IsRerouted("gemini-2.5-flash", "gemini-2.5-flash-preview-09-2025"));
  EXPECT_FALSE(IsRerouted("gemini-3-flash-preview", "gemini-3-flash-preview"));
  EXPECT_FALSE(IsRerouted("gemini-3-flash-preview", ""));
  // Aliases move by design.
  EXPECT_FALSE(IsRerouted("gemini-flash-latest", "gemini-3-flash-preview"));
}

}  // namespace
}  // namespace vision_gateway::vision
