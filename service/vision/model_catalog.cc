#include "service/vision/model_catalog.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "service/common/error_reasons.h"
#include "service/common/log.h"
#include "service/common/status_details.h"
#include "service/vision/model_family.h"

namespace vision_gateway::vision {

namespace {

bool Generates(const gemini::Model& model) {
  if (model.supported_generation_methods.empty()) return true;  // not said: assume it does
  return std::find(model.supported_generation_methods.begin(),
                   model.supported_generation_methods.end(),
                   "generateContent") != model.supported_generation_methods.end();
}

}  // namespace

int EditDistance(std::string_view a, std::string_view b) {
  constexpr std::size_t kMax = 64;
  a = a.substr(0, kMax);
  b = b.substr(0, kMax);
  std::vector<int> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = static_cast<int>(j);
  for (std::size_t i = 1; i <= a.size(); ++i) {
    int diagonal = row[0];
    row[0] = static_cast<int>(i);
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const int above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// One listing: pages one after another, within the bounds, then the list is swapped in.
struct ModelCatalog::Listing : std::enable_shared_from_this<Listing> {
  std::shared_ptr<ModelCatalog> catalog;
  absl::AnyInvocable<void(absl::Status)> done;
  absl::Time deadline;
  ModelList list;
  int pages = 0;
  std::string last_token;

  void Next(const std::string& page_token) {
    bool stopped;
    {
      absl::MutexLock lock(&catalog->mu_);
      stopped = catalog->stopped_;
    }
    if (stopped) return Finish(absl::CancelledError("model discovery stopped"));
    auto self = shared_from_this();
    auto call = catalog->gemini_->ListModels(
        catalog->options_.page_size, page_token, gemini::CallOptions{.deadline = deadline},
        [self](absl::StatusOr<gemini::ListModelsResponse> page) { self->OnPage(std::move(page)); });
    absl::MutexLock lock(&catalog->mu_);
    if (done) catalog->in_flight_ = std::move(call);
  }

  void OnPage(absl::StatusOr<gemini::ListModelsResponse> page) {
    if (!page.ok()) return Finish(page.status());
    ++pages;
    for (gemini::Model& model : page->models) {
      if (list.models.size() >= catalog->options_.max_models) {
        list.complete = false;
        break;
      }
      if (!Generates(model)) continue;
      list.models.push_back(ListedModel{.id = model.Id(),
                                        .display_name = std::move(model.display_name),
                                        .input_token_limit = model.input_token_limit,
                                        .output_token_limit = model.output_token_limit,
                                        .thinking = model.thinking});
    }
    const std::string& token = page->next_page_token;
    if (!token.empty() && list.complete) {
      if (pages >= catalog->options_.max_pages || token == last_token) {
        list.complete = false;
      } else {
        last_token = token;
        return Next(token);
      }
    }
    list.read_time = absl::Now();
    if (!list.complete) {
      LogWarning("model discovery: Gemini's models list is longer than %d pages / %d models; "
                 "kept what was read, unlisted models are not refused",
                 catalog->options_.max_pages, static_cast<int>(catalog->options_.max_models));
    }
    catalog->SetList(std::move(list));
    Finish(absl::OkStatus());
  }

  void Finish(absl::Status status) {
    {
      absl::MutexLock lock(&catalog->mu_);
      catalog->in_flight_.reset();
    }
    auto callback = std::move(done);
    if (callback) callback(std::move(status));
  }
};

std::shared_ptr<ModelCatalog> ModelCatalog::Create(std::shared_ptr<gemini::GenerateStub> gemini,
                                                   std::shared_ptr<Timer> timer,
                                                   ModelCatalogOptions options) {
  return std::shared_ptr<ModelCatalog>(
      new ModelCatalog(std::move(gemini), std::move(timer), std::move(options)));
}

ModelCatalog::ModelCatalog(std::shared_ptr<gemini::GenerateStub> gemini,
                           std::shared_ptr<Timer> timer, ModelCatalogOptions options)
    : gemini_(std::move(gemini)), timer_(std::move(timer)), options_(std::move(options)) {}

ModelCatalog::~ModelCatalog() = default;

void ModelCatalog::Refresh(absl::AnyInvocable<void(absl::Status)> done) {
  auto listing = std::make_shared<Listing>();
  listing->catalog = shared_from_this();
  listing->done = std::move(done);
  listing->deadline = absl::Now() + options_.timeout;
  listing->Next("");  // CANCELLED at once after Stop()
}

void ModelCatalog::StartPeriodic() { ScheduleNext(); }

void ModelCatalog::ScheduleNext() {
  if (options_.refresh_period == absl::InfiniteDuration() ||
      options_.refresh_period <= absl::ZeroDuration()) {
    return;
  }
  std::weak_ptr<ModelCatalog> weak = weak_from_this();
  absl::MutexLock lock(&mu_);
  if (stopped_) return;
  next_ = timer_->RunAt(timer_->Now() + options_.refresh_period, [weak] {
    auto self = weak.lock();
    if (self == nullptr) return;
    self->Refresh([weak](absl::Status status) {
      auto self = weak.lock();
      if (self == nullptr) return;
      if (!status.ok() && status.code() != absl::StatusCode::kCancelled) {
        LogWarning("model discovery: refreshing Gemini's models list failed (%s); keeping the "
                   "previous list",
                   status.message());
      }
      self->ScheduleNext();
    });
  });
}

void ModelCatalog::Stop() {
  std::shared_ptr<gemini::PendingCall> in_flight;
  Timer::Id next;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    in_flight = std::move(in_flight_);
    next = std::exchange(next_, 0);
  }
  if (next != 0) timer_->Cancel(next);
  if (in_flight) in_flight->Cancel();
}

void ModelCatalog::SetList(ModelList list) {
  auto shared = std::make_shared<const ModelList>(std::move(list));
  absl::MutexLock lock(&mu_);
  list_ = std::move(shared);
}

std::shared_ptr<const ModelList> ModelCatalog::List() const {
  absl::MutexLock lock(&mu_);
  return list_;
}

absl::Status ModelCatalog::Check(const std::string& model,
                                 const std::vector<std::string>& allowed) const {
  const std::shared_ptr<const ModelList> list = List();
  if (list == nullptr || !list->complete) return absl::OkStatus();
  for (const ListedModel& listed : list->models) {
    if (listed.id == model) return absl::OkStatus();
  }
  auto is_allowed = [&allowed](const std::string& id) {
    return allowed.empty() || std::find(allowed.begin(), allowed.end(), id) != allowed.end();
  };
  const bool any_allowed = std::any_of(list->models.begin(), list->models.end(),
                                       [&](const ListedModel& m) { return is_allowed(m.id); });
  const ListedModel* closest = nullptr;
  int best = 0;
  for (const ListedModel& listed : list->models) {
    if (any_allowed && !is_allowed(listed.id)) continue;
    const int distance = EditDistance(model, listed.id);
    if (closest == nullptr || distance < best) {
      closest = &listed;
      best = distance;
    }
  }
  std::string message = absl::StrCat(
      "options.model: '", model,
      "' is not in Gemini's models list (retired, renamed or unknown)");
  std::map<std::string, std::string> metadata{{"model", model}};
  if (closest != nullptr) {
    absl::StrAppend(&message, "; the closest listed model is '", closest->id, "'");
    metadata["closest"] = closest->id;
  }
  return WithErrorInfo(absl::NotFoundError(message), reasons::kModelNotFound, metadata);
}

std::vector<std::string> ModelCatalog::Unlisted(const std::vector<std::string>& ids) const {
  std::vector<std::string> out;
  const std::shared_ptr<const ModelList> list = List();
  if (list == nullptr || !list->complete) return out;
  for (const std::string& id : ids) {
    const bool listed = std::any_of(list->models.begin(), list->models.end(),
                                    [&](const ListedModel& m) { return m.id == id; });
    if (!listed && std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  }
  return out;
}

namespace {

v1::ListModelsResponse ModelsAnswer(const ModelList& list, const VisionOptions& options) {
  v1::ListModelsResponse out;
  const std::vector<std::string>& allowed = options.cost.allowed_models;
  const std::string& segment_default =
      options.segment_model.empty() ? options.default_model : options.segment_model;
  for (const ListedModel& listed : list.models) {
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), listed.id) == allowed.end()) {
      continue;
    }
    v1::ModelInfo* info = out.add_models();
    info->set_id(listed.id);
    info->set_display_name(listed.display_name);
    info->set_input_token_limit(listed.input_token_limit);
    info->set_output_token_limit(listed.output_token_limit);
    info->set_thinking(listed.thinking);
    const ModelFamily& family = FamilyOf(listed.id);
    info->set_family(std::string(family.name));
    switch (family.thinking) {
      case ThinkingControl::kNone:
        info->set_thinking_control(v1::THINKING_CONTROL_UNSPECIFIED);
        break;
      case ThinkingControl::kBudget:
        info->set_thinking_control(v1::THINKING_CONTROL_BUDGET);
        info->set_min_thinking_budget(family.min_budget);
        info->set_max_thinking_budget(family.max_budget);
        break;
      case ThinkingControl::kLevel:
        info->set_thinking_control(v1::THINKING_CONTROL_LEVEL);
        for (const auto& [bit, level] :
             {std::pair{kLevelMinimal, v1::THINKING_LEVEL_MINIMAL},
              std::pair{kLevelLow, v1::THINKING_LEVEL_LOW},
              std::pair{kLevelMedium, v1::THINKING_LEVEL_MEDIUM},
              std::pair{kLevelHigh, v1::THINKING_LEVEL_HIGH}}) {
          if (family.levels & bit) info->add_thinking_levels(level);
        }
        break;
    }
    info->set_default_model(listed.id == options.default_model);
    info->set_segment_default(listed.id == segment_default);
  }
  if (list.complete) {
    for (const std::string& id : allowed) {
      const bool listed = std::any_of(list.models.begin(), list.models.end(),
                                      [&](const ListedModel& m) { return m.id == id; });
      if (!listed) out.add_unlisted_allowed_models(id);
    }
  }
  const int64_t nanos = absl::ToUnixNanos(list.read_time);
  out.mutable_list_time()->set_seconds(nanos / 1'000'000'000);
  out.mutable_list_time()->set_nanos(static_cast<int32_t>(nanos % 1'000'000'000));
  return out;
}

}  // namespace

void StartListModels(const VisionOptions& options,
                     absl::AnyInvocable<void(absl::StatusOr<v1::ListModelsResponse>)> done) {
  if (options.catalog == nullptr) {
    return done(absl::FailedPreconditionError("model discovery is off on this gateway"));
  }
  if (std::shared_ptr<const ModelList> list = options.catalog->List()) {
    return done(ModelsAnswer(*list, options));
  }
  options.catalog->Refresh([options, done = std::move(done)](absl::Status status) mutable {
    std::shared_ptr<const ModelList> list = options.catalog->List();
    if (list == nullptr) {
      return done(absl::UnavailableError(absl::StrCat(
          "the gateway could not read Gemini's models list yet: ", status.message())));
    }
    done(ModelsAnswer(*list, options));
  });
}

}  // namespace vision_gateway::vision
