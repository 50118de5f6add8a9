#include "service/vision/model_family.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "service/common/error_reasons.h"
#include "service/common/log.h"
#include "service/common/status_details.h"

namespace vision_gateway::vision {
namespace {

constexpr uint8_t kAllLevels = kLevelMinimal | kLevelLow | kLevelMedium | kLevelHigh;

// Sources (late 2026): ai.google.dev thinking and Gemini 3 guides; Vertex AI model pages.
// 2.5 Pro cannot stop thinking (128..32768); 2.5 Flash 0..24576, Flash-Lite 512..24576 or 0;
// Gemini 3 Pro LOW/HIGH, 3.1 Pro LOW/MEDIUM/HIGH, 3 Flash and 3.1 Flash-Lite all four levels.
const std::vector<ModelFamily>& Table() {
  static const auto* const table = new std::vector<ModelFamily>{
      {.name = "gemini-2.0 and earlier", .prefix = "gemini-2.0"},
      {.name = "gemini-1.5", .prefix = "gemini-1.5"},
      {.name = "gemini-2.5-pro", .prefix = "gemini-2.5-pro", .thinking = ThinkingControl::kBudget,
       .min_budget = 128, .max_budget = 32768, .can_disable = false},
      {.name = "gemini-2.5-flash", .prefix = "gemini-2.5-flash",
       .thinking = ThinkingControl::kBudget, .min_budget = 1, .max_budget = 24576,
       .can_disable = true},
      {.name = "gemini-2.5-flash-lite", .prefix = "gemini-2.5-flash-lite",
       .thinking = ThinkingControl::kBudget, .min_budget = 512, .max_budget = 24576,
       .can_disable = true},
      {.name = "gemini-robotics-er-1.5", .prefix = "gemini-robotics-er-1.5",
       .thinking = ThinkingControl::kBudget, .min_budget = 1, .max_budget = 24576,
       .can_disable = true},
      {.name = "gemini-3-pro", .prefix = "gemini-3-pro", .thinking = ThinkingControl::kLevel,
       .levels = kLevelLow | kLevelHigh, .per_part_media_resolution = true,
       .task_temperature = false},
      {.name = "gemini-3.1-pro", .prefix = "gemini-3.1-pro", .thinking = ThinkingControl::kLevel,
       .levels = kLevelLow | kLevelMedium | kLevelHigh, .per_part_media_resolution = true,
       .task_temperature = false},
      {.name = "gemini-3-flash", .prefix = "gemini-3-flash", .thinking = ThinkingControl::kLevel,
       .levels = kAllLevels, .per_part_media_resolution = true, .task_temperature = false},
      {.name = "gemini-3.1-flash-lite", .prefix = "gemini-3.1-flash-lite",
       .thinking = ThinkingControl::kLevel, .levels = kAllLevels,
       .per_part_media_resolution = true, .task_temperature = false},
      // Fallbacks (no prefix): later generations and aliases; everything else.
      {.name = "gemini-3 and later (other)", .thinking = ThinkingControl::kLevel,
       .levels = kLevelLow | kLevelMedium | kLevelHigh, .per_part_media_resolution = true,
       .task_temperature = false},
      {.name = "other (no thinking)"},
  };
  return *table;
}

// A Gemini generation of 3 or more ("gemini-3...", "gemini-12..."), or a moving alias.
bool IsLaterGeneration(absl::string_view id) {
  if (absl::EndsWith(id, "-latest")) return true;
  if (!absl::ConsumePrefix(&id, "gemini-")) return absl::StartsWith(id, "gemini-robotics-er-2");
  int major = 0;
  size_t digits = 0;
  while (digits < id.size() && absl::ascii_isdigit(static_cast<unsigned char>(id[digits]))) {
    major = major * 10 + (id[digits] - '0');
    if (++digits > 3) break;
  }
  return digits > 0 && major >= 3;
}

const char* LevelName(uint8_t bit) {
  switch (bit) {
    case kLevelMinimal: return "MINIMAL";
    case kLevelLow: return "LOW";
    case kLevelMedium: return "MEDIUM";
    case kLevelHigh: return "HIGH";
    default: return "";
  }
}

uint8_t LevelBit(const std::string& name) {
  for (uint8_t bit = kLevelMinimal; bit <= kLevelHigh; bit <<= 1) {
    if (name == LevelName(bit)) return bit;
  }
  return 0;
}

uint8_t LowestLevel(uint8_t levels) {
  for (uint8_t bit = kLevelMinimal; bit <= kLevelHigh; bit <<= 1) {
    if (levels & bit) return bit;
  }
  return 0;
}

// `wanted`, else the next accepted level above it, else the highest accepted.
uint8_t LevelAtLeast(uint8_t levels, uint8_t wanted) {
  uint8_t highest = 0;
  for (uint8_t bit = kLevelMinimal; bit <= kLevelHigh; bit <<= 1) {
    if ((levels & bit) && bit >= wanted) return bit;
    if (levels & bit) highest = bit;
  }
  return highest;
}

absl::Status Refuse(const std::string& model, absl::string_view option, absl::string_view why) {
  return WithErrorInfo(
      absl::InvalidArgumentError(absl::StrCat("options.", option, ": model ", model, " ", why)),
      reasons::kModelOptionUnsupported, {{"model", model}, {"option", std::string(option)}});
}

absl::Status FitThinking(const std::string& model, const ModelFamily& family,
                         std::optional<gemini::ThinkingConfig>& thinking) {
  if (!thinking) return absl::OkStatus();
  const std::optional<int32_t> budget = thinking->thinking_budget;
  const std::string level = thinking->thinking_level;
  if (budget && !level.empty()) {
    return Refuse(model, "thinking_budget",
                  "cannot take a thinking budget and a thinking level together; set one");
  }
  const std::optional<bool> include = thinking->include_thoughts;
  auto reset = [&] {
    thinking.emplace();
    thinking->include_thoughts = include;
  };
  switch (family.thinking) {
    case ThinkingControl::kNone:
      if ((budget && (*budget == 0 || *budget == -1)) || level == "MINIMAL") {
        thinking.reset();
        return absl::OkStatus();
      }
      if (budget) return Refuse(model, "thinking_budget", "does not think; leave it unset or 0");
      if (!level.empty()) {
        return Refuse(model, "thinking_level", "does not think; leave it unset or MINIMAL");
      }
      thinking.reset();
      return absl::OkStatus();
    case ThinkingControl::kBudget: {
      const int32_t lowest = family.can_disable ? 0 : family.min_budget;
      if (!level.empty()) {
        if (level != "MINIMAL") {
          return Refuse(model, "thinking_level",
                        absl::StrCat("takes a thinking budget, not a level; set thinking_budget (",
                                     family.can_disable ? "0 or " : "", family.min_budget, "..",
                                     family.max_budget, ", -1 dynamic)"));
        }
        reset();
        thinking->thinking_budget = lowest;
        return absl::OkStatus();
      }
      if (budget) {
        int32_t fitted = *budget;
        if (fitted == 0) {
          fitted = lowest;
        } else if (fitted > 0) {
          fitted = std::clamp(fitted, family.min_budget, family.max_budget);
        }
        thinking->thinking_budget = fitted;
      }
      return absl::OkStatus();
    }
    case ThinkingControl::kLevel: {
      uint8_t fitted = 0;
      if (budget) {
        if (*budget < 0) {  // dynamic: the model's own default
          if (include) {
            reset();
          } else {
            thinking.reset();
          }
          return absl::OkStatus();
        }
        const uint8_t wanted = *budget == 0      ? LowestLevel(family.levels)
                               : *budget <= 1024 ? kLevelLow
                               : *budget <= 8192 ? kLevelMedium
                                                 : kLevelHigh;
        fitted = LevelAtLeast(family.levels, wanted);
      } else if (!level.empty()) {
        const uint8_t bit = LevelBit(level);
        if (bit != 0 && (family.levels & bit)) {
          fitted = bit;
        } else if (bit == kLevelMinimal) {
          fitted = LowestLevel(family.levels);
        } else {
          return Refuse(model, "thinking_level",
                        absl::StrCat("does not accept ", level, "; it takes ",
                                     LevelNames(family.levels)));
        }
      } else {
        return absl::OkStatus();
      }
      reset();
      thinking->thinking_level = LevelName(fitted);
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

}  // namespace

const std::vector<ModelFamily>& ModelFamilies() { return Table(); }

const ModelFamily& FamilyOf(std::string_view model_view) {
  absl::string_view id(model_view.data(), model_view.size());
  absl::ConsumePrefix(&id, "models/");
  const std::vector<ModelFamily>& table = Table();
  const ModelFamily* best = nullptr;
  for (const ModelFamily& family : table) {
    if (family.prefix.empty()) continue;
    if (absl::StartsWith(id, absl::string_view(family.prefix.data(), family.prefix.size())) &&
        (best == nullptr || family.prefix.size() > best->prefix.size())) {
      best = &family;
    }
  }
  if (best != nullptr) return *best;
  return IsLaterGeneration(id) ? table[table.size() - 2] : table.back();
}

std::string LevelNames(uint8_t levels) {
  std::vector<std::string> names;
  for (uint8_t bit = kLevelMinimal; bit <= kLevelHigh; bit <<= 1) {
    if (levels & bit) names.emplace_back(LevelName(bit));
  }
  return absl::StrJoin(names, ", ");
}

absl::StatusOr<FittedConfig> FitToModel(const std::string& model,
                                        gemini::GenerationConfig config) {
  const ModelFamily& family = FamilyOf(model);
  if (absl::Status s = FitThinking(model, family, config.thinking_config); !s.ok()) return s;
  FittedConfig fitted;
  if (!family.per_part_media_resolution && config.media_resolution == "MEDIA_RESOLUTION_ULTRA_HIGH") {
    return Refuse(model, "media_resolution",
                  "takes the media resolution per request, up to MEDIA_RESOLUTION_HIGH "
                  "(ULTRA_HIGH is per image part, Gemini 3)");
  }
  if (family.per_part_media_resolution) {
    fitted.part_media_resolution = std::exchange(config.media_resolution, std::string());
  }
  fitted.config = std::move(config);
  return fitted;
}

bool IsRerouted(std::string_view requested, std::string_view model_version) {
  if (model_version.empty()) return false;
  const ModelFamily& asked = FamilyOf(requested);
  if (asked.prefix.empty()) return false;
  return &FamilyOf(model_version) != &asked;
}

bool RerouteReporter::Check(const std::string& requested, const std::string& model_version) {
  if (!IsRerouted(requested, model_version)) return false;
  if (telemetry_ != nullptr) telemetry_->ModelRerouted(requested, model_version);
  bool first;
  {
    absl::MutexLock lock(&mu_);
    first = logged_.size() < 256 && logged_.insert(requested).second;
  }
  if (first) {
    LogWarning("Gemini rerouted calls for model %s to %s (another model family: other parameter "
               "rules and prices); reported in each answer's model_rerouted and the metric "
               "vision_gateway_model_reroutes_total",
               requested, model_version);
  }
  return true;
}

bool CheckRerouted(RerouteReporter* reporter, const std::string& requested,
                   const std::string& model_version) {
  return reporter != nullptr ? reporter->Check(requested, model_version)
                             : IsRerouted(requested, model_version);
}

void SetPartMediaResolution(const std::string& resolution, gemini::Content& content) {
  if (resolution.empty()) return;
  for (gemini::Part& part : content.parts) {
    if (part.inline_data || part.file_data) part.media_resolution = resolution;
  }
}

}  // namespace vision_gateway::vision
