// What vision task tests feed and collect: a model answer as one GenerateContentResponse, and the
// typed messages and final status a task delivers through its TaskCallbacks.
#ifndef VISION_GATEWAY_TESTS_TESTING_TASK_RESULTS_H_
#define VISION_GATEWAY_TESTS_TESTING_TASK_RESULTS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "service/gemini/types.h"
#include "service/vision/caption_task.h"

namespace vision_gateway::testing {

// One chunk of a model answer: `text`, `finish` (empty: not the last chunk), fixed usage
// (270 prompt + 40 output tokens) and `model_version`.
inline gemini::GenerateContentResponse AnswerChunk(const std::string& text,
                                                   const std::string& finish,
                                                   const std::string& model_version) {
  gemini::GenerateContentResponse r;
  gemini::Candidate& c = r.candidates.emplace_back();
  c.content.parts.emplace_back().text = text;
  c.finish_reason = finish;
  r.usage_metadata = gemini::UsageMetadata{.prompt_token_count = 270,
                                           .candidates_token_count = 40,
                                           .total_token_count = 310};
  r.model_version = model_version;
  return r;
}

// The messages a task delivered, its final status, and a notification when it ended.
template <typename Response>
struct Collected {
  std::vector<Response> responses;
  absl::Status status;
  absl::Notification done;
  vision::TaskCallbacks<Response> Callbacks() {
    return {.on_response = [this](Response r) { responses.push_back(std::move(r)); },
            .on_done =
                [this](absl::Status s) {
                  status = std::move(s);
                  done.Notify();
                }};
  }
};

}  // namespace vision_gateway::testing

#endif  // VISION_GATEWAY_TESTS_TESTING_TASK_RESULTS_H_
