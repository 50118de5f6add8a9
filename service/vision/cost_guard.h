// Cost guards: which models callers may use and how much one request may spend. The server fills
// CostLimits from flags (and per-caller overrides) into VisionOptions; tasks apply them while
// building the upstream request, so a request over a cap is refused before Gemini sees it.
#ifndef VISION_GATEWAY_SERVICE_VISION_COST_GUARD_H_
#define VISION_GATEWAY_SERVICE_VISION_COST_GUARD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "service/gemini/types.h"

namespace vision_gateway::vision {

struct CostLimits {
  // Model ids callers may name (without "models/"); empty: any well-formed id.
  std::vector<std::string> allowed_models;
  // Largest max_output_tokens a request may ask for; requests that set none get this value
  // (0: no cap).
  int32_t max_output_tokens = 0;
  // Largest thinking_budget; dynamic thinking (-1) is refused and requests that set no thinking
  // get this budget on budget-based models (-1: no cap).
  int32_t max_thinking_budget = -1;
  // Highest thinking level ("MINIMAL", "LOW", "MEDIUM", "HIGH"); requests that set no thinking
  // get it on level-based models (empty: no cap).
  std::string max_thinking_level;
  // Sum of inline image bytes in one request (0: no cap). (The image count is
  // VisionOptions::max_images_per_request.)
  int64_t max_image_bytes_per_request = 0;
};

// The default allowlist: current vision-capable Gemini models.
std::vector<std::string> DefaultAllowedModels();

// INVALID_ARGUMENT (ErrorInfo MODEL_NOT_ALLOWED, metadata "allowed") naming the allowed models
// unless `model` (already resolved, no "models/" prefix) is allowed.
absl::Status CheckModelAllowed(const std::string& model, const CostLimits& limits);

// Applies the output and thinking caps to a generationConfig built from the caller's options:
// INVALID_ARGUMENT (ErrorInfo COST_LIMIT_EXCEEDED) for an explicit value over a cap, the cap itself
// where the caller set nothing.
absl::Status ApplyCostCaps(const std::string& model, const CostLimits& limits,
                           gemini::GenerationConfig& config);

// INVALID_ARGUMENT (ErrorInfo COST_LIMIT_EXCEEDED) when `total_bytes` of inline images is over
// the cap.
absl::Status CheckImageBytes(int64_t total_bytes, const CostLimits& limits);

// True for a thinking level name this gateway knows ("MINIMAL" ... "HIGH").
bool IsThinkingLevelName(const std::string& level);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_COST_GUARD_H_
