// What each Gemini model family accepts, in one table, and the translation of a caller's model
// options into what the chosen model accepts (issue #22).
//
// Gemini's parameter rules differ per family and a request the model does not accept fails with
// HTTP 400: 2.5-era models take thinkingConfig.thinkingBudget, Gemini 3 models take
// thinkingConfig.thinkingLevel (which levels depends on the model; sending both is refused),
// Gemini 3 takes mediaResolution per image part as well as per request, and Google recommends
// leaving Gemini 3's temperature at its default. The gateway never forwards an option into such a
// 400: it translates it (FitToModel) or refuses it itself with INVALID_ARGUMENT naming the model
// and the option.
//
// A model id maps to the row whose prefix is the longest one the id starts with; ids no row names
// fall back by generation ("gemini-<N>" with N >= 3, and the moving "-latest" aliases, take the
// levels every Gemini 3 model accepts; anything else is a model that does not think).
#ifndef VISION_GATEWAY_SERVICE_VISION_MODEL_FAMILY_H_
#define VISION_GATEWAY_SERVICE_VISION_MODEL_FAMILY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "service/gemini/types.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "service/telemetry/telemetry.h"

namespace vision_gateway::vision {

enum class ThinkingControl {
  kNone,    // the model does not think: no thinkingConfig
  kBudget,  // thinkingConfig.thinkingBudget (tokens; -1 dynamic)
  kLevel,   // thinkingConfig.thinkingLevel
};

// Thinking levels as bits of ModelFamily::levels.
inline constexpr uint8_t kLevelMinimal = 1 << 0;
inline constexpr uint8_t kLevelLow = 1 << 1;
inline constexpr uint8_t kLevelMedium = 1 << 2;
inline constexpr uint8_t kLevelHigh = 1 << 3;

struct ModelFamily {
  // The family's name (logs, errors, the rerouting check: two ids of one family are one model
  // line as far as parameters go).
  std::string_view name;
  // Model ids starting with this belong to the family (empty: a fallback row).
  std::string_view prefix;
  ThinkingControl thinking = ThinkingControl::kNone;
  // kBudget: accepted budgets; 0 (thinking off) only when can_disable.
  int32_t min_budget = 0;
  int32_t max_budget = 0;
  bool can_disable = false;
  // kLevel: the levels the model accepts (kLevel* bits).
  uint8_t levels = 0;
  // mediaResolution per image part (Gemini 3); else only generationConfig.mediaResolution.
  bool per_part_media_resolution = false;
  // The task's own default temperature (0.5 for Detect/Segment) is sent. False for Gemini 3,
  // whose guidance is to keep the default 1.0 (lower values can loop); a caller's explicit
  // temperature is always sent.
  bool task_temperature = true;
};

// The table, in documentation order (README "Models").
const std::vector<ModelFamily>& ModelFamilies();

// The family of a model id (with or without "models/").
const ModelFamily& FamilyOf(std::string_view model);

// "MINIMAL, LOW, MEDIUM, HIGH" for a levels mask.
std::string LevelNames(uint8_t levels);

// The request's settings once fitted to the model: the generationConfig to send and, for
// per-part families, the mediaResolution each image part carries ("" for none).
struct FittedConfig {
  gemini::GenerationConfig config;
  std::string part_media_resolution;
};

// Translates `config` (the caller's intent: thinking budget or level, media resolution; after the
// cost caps) into what `model` accepts:
//   budget family: a level MINIMAL becomes the lowest budget (0, or the model's minimum when it
//     cannot stop thinking); budgets are clamped into the model's range; 0 on a model that cannot
//     stop thinking becomes its minimum; other levels are INVALID_ARGUMENT (no faithful budget).
//   level family: budget 0 becomes the lowest level the model accepts, -1 (dynamic) sends no
//     thinkingConfig (the model's own default), a positive budget becomes the level of its size
//     (<= 1024 LOW, <= 8192 MEDIUM, else HIGH; the next accepted level up, else the highest);
//     MINIMAL on a model without it becomes its lowest level ("as little as the model allows");
//     another level the model lacks is INVALID_ARGUMENT naming the levels it takes.
//   no thinking: budget 0/-1 and MINIMAL are dropped; more thinking is INVALID_ARGUMENT.
//   media resolution: per image part on per-part families, else request-level (where ULTRA_HIGH
//     is INVALID_ARGUMENT: it exists per part only).
// Never both budget and level.
absl::StatusOr<FittedConfig> FitToModel(const std::string& model, gemini::GenerationConfig config);

// Whether an answer whose modelVersion is `model_version` came from another family than
// `requested` (Google rerouted the call). Only for requested ids a named row of the table covers:
// the fallback rows (aliases such as gemini-flash-latest, unknown generations) move by design.
bool IsRerouted(std::string_view requested, std::string_view model_version);

// Reports reroutes: IsRerouted, and when so logs it once per requested model (a warning) and
// counts it (Telemetry::ModelRerouted). One per server; thread-safe.
class RerouteReporter {
 public:
  explicit RerouteReporter(telemetry::Telemetry* telemetry) : telemetry_(telemetry) {}
  bool Check(const std::string& requested, const std::string& model_version);

 private:
  telemetry::Telemetry* const telemetry_;
  absl::Mutex mu_;
  absl::flat_hash_set<std::string> logged_ ABSL_GUARDED_BY(mu_);  // at most 256 models
};

// reporter->Check, or IsRerouted when there is no reporter.
bool CheckRerouted(RerouteReporter* reporter, const std::string& requested,
                   const std::string& model_version);

// Sets `resolution` (when not empty) on every image/file part of `content`.
void SetPartMediaResolution(const std::string& resolution, gemini::Content& content);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_MODEL_FAMILY_H_
