// Internal to service/gemini: what every REST stub (generate/files, batches) needs around one
// HTTP exchange — holding the HTTP call for a Cancel() from any thread, and Gemini's HTTP errors
// with the Retry-After header folded into RetryInfo.
#ifndef VISION_GATEWAY_SERVICE_GEMINI_REST_CALL_H_
#define VISION_GATEWAY_SERVICE_GEMINI_REST_CALL_H_

#include <memory>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "service/http/http_client.h"

namespace vision_gateway::gemini::internal {

// A non-2xx answer as a status: the error envelope of `body`, with a RetryInfo from a Retry-After
// header (delta-seconds, at most a day) when Gemini gave none in the body.
absl::Status HttpErrorStatus(int http_status, std::string_view body, const http::Headers& headers);

// Holds the HTTP call so that Cancel() can reach it from any thread, even when it comes before
// Stream()/Fetch() returned, and drops it once the HTTP layer reported completion (its handler
// holds a reference back to the owner).
class HttpCallSlot {
 public:
  void Set(std::shared_ptr<http::Call> call);
  void Cancel();
  void Done();

 private:
  absl::Mutex mu_;
  std::shared_ptr<http::Call> call_ ABSL_GUARDED_BY(mu_);
  bool cancel_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace vision_gateway::gemini::internal

#endif  // VISION_GATEWAY_SERVICE_GEMINI_REST_CALL_H_
