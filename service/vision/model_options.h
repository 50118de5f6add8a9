// ModelOptions (vision.v1) → Gemini model id and generationConfig, with per-task defaults.
#ifndef VISION_GATEWAY_SERVICE_VISION_MODEL_OPTIONS_H_
#define VISION_GATEWAY_SERVICE_VISION_MODEL_OPTIONS_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "service/gemini/types.h"
#include "service/vision/v1.h"

namespace vision_gateway::vision {

// What a task asks for when the caller leaves a setting unset.
struct TaskDefaults {
  std::optional<float> temperature;
  // Thinking as little as the model allows (Detect/Segment): budget 0 on Gemini 2.x models,
  // thinking level MINIMAL on Gemini 3 and later.
  bool minimal_thinking = false;
};

// The model id to call: options.model, else default_model. INVALID_ARGUMENT unless it is a plain
// id ("gemini-2.5-flash" or "models/gemini-2.5-flash"; letters, digits, '.', '-', '_').
absl::StatusOr<std::string> ResolveModel(const v1::ModelOptions& options,
                                         const std::string& default_model);

// Validates the options (temperature in [0, 2], max_output_tokens > 0, thinking_budget >= -1, not
// both thinking_budget and thinking_level) and builds the generationConfig.
absl::StatusOr<gemini::GenerationConfig> ToGenerationConfig(const v1::ModelOptions& options,
                                                            const std::string& model,
                                                            const TaskDefaults& defaults);

// vision.v1.Usage from Gemini's usageMetadata.
v1::Usage ToUsage(const gemini::UsageMetadata& usage);

// "MEDIA_RESOLUTION_LOW" ...; "" for unspecified.
const char* MediaResolutionName(v1::MediaResolution r);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_MODEL_OPTIONS_H_
