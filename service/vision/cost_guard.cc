#include "service/vision/cost_guard.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/common/status_details.h"
#include "service/vision/model_family.h"

namespace vision_gateway::vision {
namespace {

// MINIMAL < LOW < MEDIUM < HIGH; 0 for anything else.
int LevelRank(const std::string& level) {
  if (level == "MINIMAL") return 1;
  if (level == "LOW") return 2;
  if (level == "MEDIUM") return 3;
  if (level == "HIGH") return 4;
  return 0;
}

absl::Status OverCap(std::string message) {
  return WithErrorInfo(absl::InvalidArgumentError(std::move(message)), "COST_LIMIT_EXCEEDED");
}

}  // namespace

std::vector<std::string> DefaultAllowedModels() {
  return {"gemini-3-flash-preview", "gemini-3.1-pro-preview", "gemini-3.1-flash-lite"};
}

bool IsThinkingLevelName(const std::string& level) { return LevelRank(level) > 0; }

absl::Status CheckModelAllowed(const std::string& model, const CostLimits& limits) {
  if (limits.allowed_models.empty()) return absl::OkStatus();
  if (std::find(limits.allowed_models.begin(), limits.allowed_models.end(), model) !=
      limits.allowed_models.end()) {
    return absl::OkStatus();
  }
  const std::string allowed = absl::StrJoin(limits.allowed_models, ", ");
  return WithErrorInfo(
      absl::InvalidArgumentError(absl::StrCat("options.model: '", model,
                                              "' is not allowed on this gateway; allowed: ",
                                              allowed)),
      "MODEL_NOT_ALLOWED", {{"allowed", allowed}});
}

absl::Status ApplyCostCaps(const std::string& model, const CostLimits& limits,
                           gemini::GenerationConfig& config) {
  if (limits.max_output_tokens > 0) {
    if (!config.max_output_tokens) {
      config.max_output_tokens = limits.max_output_tokens;
    } else if (*config.max_output_tokens > limits.max_output_tokens) {
      return OverCap(absl::StrCat("options.max_output_tokens: at most ", limits.max_output_tokens,
                                  " on this gateway, got ", *config.max_output_tokens));
    }
  }
  const int max_rank = LevelRank(limits.max_thinking_level);
  const bool budget_capped = limits.max_thinking_budget >= 0;
  if (config.thinking_config) {
    gemini::ThinkingConfig& thinking = *config.thinking_config;
    if (budget_capped && thinking.thinking_budget) {
      const int32_t budget = *thinking.thinking_budget;
      if (budget == -1 || budget > limits.max_thinking_budget) {
        return OverCap(absl::StrCat(
            "options.thinking_budget: at most ", limits.max_thinking_budget,
            " on this gateway (dynamic thinking, -1, is not allowed), got ", budget));
      }
    }
    if (max_rank > 0 && LevelRank(thinking.thinking_level) > max_rank) {
      return OverCap(absl::StrCat("options.thinking_level: at most ", limits.max_thinking_level,
                                  " on this gateway, got ", thinking.thinking_level));
    }
  } else if (FamilyOf(model).thinking == ThinkingControl::kLevel) {
    if (max_rank > 0) config.thinking_config.emplace().thinking_level = limits.max_thinking_level;
  } else if (budget_capped && FamilyOf(model).thinking == ThinkingControl::kBudget) {
    config.thinking_config.emplace().thinking_budget = limits.max_thinking_budget;
  }
  return absl::OkStatus();
}

absl::Status CheckImageBytes(int64_t total_bytes, const CostLimits& limits) {
  if (limits.max_image_bytes_per_request <= 0 ||
      total_bytes <= limits.max_image_bytes_per_request) {
    return absl::OkStatus();
  }
  return OverCap(absl::StrCat("images: at most ", limits.max_image_bytes_per_request,
                              " bytes of images per request on this gateway, got ", total_bytes));
}

}  // namespace vision_gateway::vision
