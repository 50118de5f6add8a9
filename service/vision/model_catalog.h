// Model discovery (issue #22): the models Gemini lists (GET /v1beta/models, paged), read at start
// and every refresh period, so that the gateway knows which model ids exist today.
//
// - Check(model): a call naming a model Gemini does not list (retired, renamed, mistyped) fails at
//   once with NOT_FOUND (ErrorInfo MODEL_NOT_FOUND) naming the model and the closest listed one,
//   instead of reaching Gemini. Until a list was read completely (discovery failed, or the list
//   was longer than the bounds below) nothing is refused.
// - Unlisted(ids): which configured ids (default model, allowlist) Gemini does not list.
// - Models(): the list, for the ListModels RPC.
//
// Bounded: at most max_pages pages of page_size models, at most max_models models kept; a list
// longer than that is "incomplete" (kept, never used to refuse). Thread-safe; readers never wait
// for a refresh (they see the previous list).
#ifndef VISION_GATEWAY_SERVICE_VISION_MODEL_CATALOG_H_
#define VISION_GATEWAY_SERVICE_VISION_MODEL_CATALOG_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/common/timer.h"
#include "service/gemini/gemini_client.h"
#include "service/vision/v1.h"
#include "service/vision/vision_options.h"

namespace vision_gateway::vision {

struct ModelCatalogOptions {
  // How often the list is read again after the first time (InfiniteDuration: never).
  absl::Duration refresh_period = absl::Minutes(10);
  // Bound on one whole listing (all pages, the retries of each included).
  absl::Duration timeout = absl::Seconds(30);
  int page_size = 1000;  // Gemini's largest
  int max_pages = 10;
  std::size_t max_models = 5000;
};

// One model Gemini lists that can generate content (models that only embed are left out).
struct ListedModel {
  std::string id;  // without "models/"
  std::string display_name;
  int32_t input_token_limit = 0;
  int32_t output_token_limit = 0;
  bool thinking = false;
};

struct ModelList {
  std::vector<ListedModel> models;  // in Gemini's order
  bool complete = true;             // every page was read within the bounds
  absl::Time read_time;
};

class ModelCatalog : public std::enable_shared_from_this<ModelCatalog> {
 public:
  static std::shared_ptr<ModelCatalog> Create(std::shared_ptr<gemini::GenerateStub> gemini,
                                              std::shared_ptr<Timer> timer,
                                              ModelCatalogOptions options);
  ~ModelCatalog();

  // Reads the whole list now; `done` gets the outcome (the previous list is kept on failure).
  void Refresh(absl::AnyInvocable<void(absl::Status)> done);
  // Refreshes every refresh_period from now on, until Stop().
  void StartPeriodic();
  // Stops the periodic refresh and cancels a listing in flight. Idempotent.
  void Stop();

  // Replaces the list (tests, and the refresh itself).
  void SetList(ModelList list);

  // OK when `model` is listed, or no complete list was read yet. Else NOT_FOUND naming the model
  // and the closest listed id (closest among `allowed` when some allowed model is listed; empty
  // `allowed`: any).
  absl::Status Check(const std::string& model, const std::vector<std::string>& allowed) const;
  // The ids of `ids` a complete list does not hold (empty before one was read).
  std::vector<std::string> Unlisted(const std::vector<std::string>& ids) const;
  // The last list read; null before the first.
  std::shared_ptr<const ModelList> List() const;

 private:
  ModelCatalog(std::shared_ptr<gemini::GenerateStub> gemini, std::shared_ptr<Timer> timer,
               ModelCatalogOptions options);
  struct Listing;
  void ScheduleNext();

  const std::shared_ptr<gemini::GenerateStub> gemini_;
  const std::shared_ptr<Timer> timer_;
  const ModelCatalogOptions options_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const ModelList> list_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<gemini::PendingCall> in_flight_ ABSL_GUARDED_BY(mu_);
  Timer::Id next_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

// The ListModels answer for a caller whose settings are `options` (its allowlist, the defaults):
// the listed models it may use, each with its limits and thinking controls (model_family.h).
// Reads the list first when none was read yet; UNAVAILABLE when that fails, FAILED_PRECONDITION
// when discovery is off (no catalog).
void StartListModels(const VisionOptions& options,
                     absl::AnyInvocable<void(absl::StatusOr<v1::ListModelsResponse>)> done);

// Levenshtein distance (bounded: only the first 64 characters of each count), for "closest".
int EditDistance(std::string_view a, std::string_view b);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_MODEL_CATALOG_H_
