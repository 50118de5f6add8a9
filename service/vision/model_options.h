// ModelOptions (vision.v1) → Gemini model id and generationConfig, with per-task defaults.
#ifndef VISION_GATEWAY_SERVICE_VISION_MODEL_OPTIONS_H_
#define VISION_GATEWAY_SERVICE_VISION_MODEL_OPTIONS_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "service/gemini/pending_call.h"
#include "service/gemini/types.h"
#include "service/vision/cost_guard.h"
#include "service/vision/model_family.h"
#include "service/vision/v1.h"
#include "service/vision/vision_options.h"

namespace vision_gateway::vision {

// What a task asks for when the caller leaves a setting unset.
struct TaskDefaults {
  std::optional<float> temperature;
  // Thinking as little as the model allows (Detect/Segment): the lowest budget or level the
  // model's family accepts (model_family.h).
  bool minimal_thinking = false;
};

// The model id to call: options.model, else default_model. INVALID_ARGUMENT unless it is a plain
// id ("gemini-2.5-flash" or "models/gemini-2.5-flash"; letters, digits, '.', '-', '_').
absl::StatusOr<std::string> ResolveModel(const v1::ModelOptions& options,
                                         const std::string& default_model);

// The model a task calls: ResolveModel (default: options.segment_model for Segment when set, else
// options.default_model), then the allowlist (CheckModelAllowed), then Gemini's models list
// (ModelCatalog::Check: NOT_FOUND naming the closest listed model).
absl::StatusOr<std::string> ChooseModel(const v1::ModelOptions& request_options,
                                        const VisionOptions& options, bool segment = false);

// Validates the options (temperature in [0, 2], max_output_tokens > 0, thinking_budget >= -1, not
// both thinking_budget and thinking_level) and builds the generationConfig as the caller means it
// (the task's default temperature only where the model's family takes it).
absl::StatusOr<gemini::GenerationConfig> ToGenerationConfig(const v1::ModelOptions& options,
                                                            const std::string& model,
                                                            const TaskDefaults& defaults);

// ToGenerationConfig, then the cost caps (cost_guard.h), then FitToModel (model_family.h): what
// goes upstream for these options on this model.
absl::StatusOr<FittedConfig> ModelConfigFor(const v1::ModelOptions& options,
                                            const std::string& model,
                                            const TaskDefaults& defaults,
                                            const CostLimits& limits);

// The result cache control of a call (#21): UNSPECIFIED is USE.
gemini::CacheControl ToCacheControl(v1::CacheControl cache);

// vision.v1.Usage from Gemini's usageMetadata.
v1::Usage ToUsage(const gemini::UsageMetadata& usage);

// "MEDIA_RESOLUTION_LOW" ...; "" for unspecified.
const char* MediaResolutionName(v1::MediaResolution r);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_MODEL_OPTIONS_H_
