#include "service/vision/model_options.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "service/vision/cost_guard.h"
#include "service/vision/model_catalog.h"

namespace vision_gateway::vision {
namespace {

const char* ThinkingLevelName(v1::ThinkingLevel l) {
  switch (l) {
    case v1::THINKING_LEVEL_MINIMAL:
      return "MINIMAL";
    case v1::THINKING_LEVEL_LOW:
      return "LOW";
    case v1::THINKING_LEVEL_MEDIUM:
      return "MEDIUM";
    case v1::THINKING_LEVEL_HIGH:
      return "HIGH";
    default:
      return "";
  }
}

bool IsModelIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

}  // namespace

absl::StatusOr<std::string> ResolveModel(const v1::ModelOptions& options,
                                         const std::string& default_model) {
  absl::string_view model = options.model().empty() ? default_model : options.model();
  absl::ConsumePrefix(&model, "models/");
  if (model.empty() || model.size() > 128) {
    return absl::InvalidArgumentError("options.model: must be a Gemini model id, e.g. gemini-2.5-flash");
  }
  for (char c : model) {
    if (!IsModelIdChar(c)) {
      return absl::InvalidArgumentError(
          "options.model: may contain only letters, digits, '.', '-' and '_'");
    }
  }
  return std::string(model);
}

absl::StatusOr<std::string> ChooseModel(const v1::ModelOptions& request_options,
                                        const VisionOptions& options, bool segment) {
  const std::string& fallback =
      segment && !options.segment_model.empty() ? options.segment_model : options.default_model;
  auto model = ResolveModel(request_options, fallback);
  if (!model.ok()) return model.status();
  if (absl::Status s = CheckModelAllowed(*model, options.cost); !s.ok()) return s;
  if (options.catalog != nullptr) {
    if (absl::Status s = options.catalog->Check(*model, options.cost.allowed_models); !s.ok()) {
      return s;
    }
  }
  return model;
}

absl::StatusOr<gemini::GenerationConfig> ToGenerationConfig(const v1::ModelOptions& options,
                                                            const std::string& model,
                                                            const TaskDefaults& defaults) {
  gemini::GenerationConfig config;
  if (options.has_temperature()) {
    const float t = options.temperature();
    if (!(t >= 0.0f && t <= 2.0f)) {
      return absl::InvalidArgumentError("options.temperature: must be between 0 and 2");
    }
    config.temperature = t;
  } else if (FamilyOf(model).task_temperature) {
    config.temperature = defaults.temperature;
  }
  if (options.has_max_output_tokens()) {
    if (options.max_output_tokens() <= 0) {
      return absl::InvalidArgumentError("options.max_output_tokens: must be positive");
    }
    config.max_output_tokens = options.max_output_tokens();
  }
  config.media_resolution = MediaResolutionName(options.media_resolution());

  const bool has_level = options.thinking_level() != v1::THINKING_LEVEL_UNSPECIFIED;
  if (options.has_thinking_budget() && has_level) {
    return absl::InvalidArgumentError(
        "options: set thinking_budget or thinking_level, not both (Gemini rejects the pair)");
  }
  if (options.has_thinking_budget()) {
    if (options.thinking_budget() < -1) {
      return absl::InvalidArgumentError(
          "options.thinking_budget: must be -1 (dynamic), 0 (off) or a positive token count");
    }
    config.thinking_config.emplace().thinking_budget = options.thinking_budget();
  } else if (has_level) {
    config.thinking_config.emplace().thinking_level = ThinkingLevelName(options.thinking_level());
  } else if (defaults.minimal_thinking) {
    // "As little as the model allows": FitToModel makes it the model's lowest budget or level.
    switch (FamilyOf(model).thinking) {
      case ThinkingControl::kLevel:
        config.thinking_config.emplace().thinking_level = "MINIMAL";
        break;
      case ThinkingControl::kBudget:
        config.thinking_config.emplace().thinking_budget = 0;
        break;
      case ThinkingControl::kNone:
        break;
    }
  }
  return config;
}

absl::StatusOr<FittedConfig> ModelConfigFor(const v1::ModelOptions& options,
                                            const std::string& model,
                                            const TaskDefaults& defaults,
                                            const CostLimits& limits) {
  auto config = ToGenerationConfig(options, model, defaults);
  if (!config.ok()) return config.status();
  if (absl::Status s = ApplyCostCaps(model, limits, *config); !s.ok()) return s;
  return FitToModel(model, *std::move(config));
}

gemini::CacheControl ToCacheControl(v1::CacheControl cache) {
  switch (cache) {
    case v1::CACHE_CONTROL_BYPASS:
      return gemini::CacheControl::kBypass;
    case v1::CACHE_CONTROL_REFRESH:
      return gemini::CacheControl::kRefresh;
    default:
      return gemini::CacheControl::kUse;
  }
}

v1::Usage ToUsage(const gemini::UsageMetadata& usage) {
  v1::Usage out;
  out.set_prompt_tokens(usage.prompt_token_count);
  out.set_output_tokens(usage.candidates_token_count);
  out.set_thinking_tokens(usage.thoughts_token_count);
  out.set_total_tokens(usage.total_token_count);
  return out;
}

const char* MediaResolutionName(v1::MediaResolution r) {
  switch (r) {
    case v1::MEDIA_RESOLUTION_LOW:
      return "MEDIA_RESOLUTION_LOW";
    case v1::MEDIA_RESOLUTION_MEDIUM:
      return "MEDIA_RESOLUTION_MEDIUM";
    case v1::MEDIA_RESOLUTION_HIGH:
      return "MEDIA_RESOLUTION_HIGH";
    case v1::MEDIA_RESOLUTION_ULTRA_HIGH:
      return "MEDIA_RESOLUTION_ULTRA_HIGH";
    default:
      return "";
  }
}

}  // namespace vision_gateway::vision
