#include "service/gemini/types.h"

namespace vision_gateway::gemini {

std::string AnswerText(const GenerateContentResponse& response) {
  std::string text;
  if (response.candidates.empty()) return text;
  for (const Part& part : response.candidates.front().content.parts) {
    if (part.thought) continue;
    text += part.text;
  }
  return text;
}

}  // namespace vision_gateway::gemini
