#include "service/vision/batch_service.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/timestamp.pb.h"
#include "service/common/status_details.h"
#include "service/vision/batch_key.h"
#include "service/vision/file_service.h"
#include "service/vision/upstream_errors.h"

namespace vision_gateway::vision {
namespace {

constexpr int kMaxPageSize = 100;
constexpr int kDefaultPageSize = 10;
constexpr char kListTokenPrefix[] = "vgb1.";

void SetTime(absl::Time t, google::protobuf::Timestamp* out) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return;
  const int64_t nanos = absl::ToUnixNanos(t);
  int64_t seconds = nanos / 1'000'000'000;
  int64_t rest = nanos % 1'000'000'000;
  if (rest < 0) {
    rest += 1'000'000'000;
    --seconds;
  }
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(rest));
}

v1::BatchJob::State StateOf(std::string_view state) {
  if (state == "BATCH_STATE_PENDING") return v1::BatchJob::STATE_PENDING;
  if (state == "BATCH_STATE_RUNNING") return v1::BatchJob::STATE_RUNNING;
  if (state == "BATCH_STATE_SUCCEEDED") return v1::BatchJob::STATE_SUCCEEDED;
  if (state == "BATCH_STATE_FAILED") return v1::BatchJob::STATE_FAILED;
  if (state == "BATCH_STATE_CANCELLED") return v1::BatchJob::STATE_CANCELLED;
  if (state == "BATCH_STATE_EXPIRED") return v1::BatchJob::STATE_EXPIRED;
  return v1::BatchJob::STATE_UNSPECIFIED;
}

absl::Status BatchErrorForCaller(absl::Status upstream, const std::string& name) {
  if (upstream.code() == absl::StatusCode::kNotFound ||
      upstream.code() == absl::StatusCode::kPermissionDenied) {
    return BatchNotFound(name);
  }
  return ToCallerStatus(std::move(upstream));
}

// A position in Gemini's list of jobs: its page token and how many of that page were consumed.
struct ListPosition {
  std::string upstream_token;
  int skip = 0;
};

std::string EncodeListPosition(const ListPosition& position) {
  std::string token;
  absl::WebSafeBase64Escape(
      absl::StrCat(kListTokenPrefix, position.skip, ".", position.upstream_token), &token);
  return token;
}

absl::StatusOr<ListPosition> DecodeListPosition(const std::string& token) {
  ListPosition position;
  if (token.empty()) return position;
  const absl::Status bad = absl::InvalidArgumentError(
      "page_token: not a next_page_token from ListBatches");
  std::string text;
  if (token.size() > 4096 || !absl::WebSafeBase64Unescape(token, &text) ||
      !absl::StartsWith(text, kListTokenPrefix)) {
    return bad;
  }
  std::string_view rest = std::string_view(text).substr(sizeof(kListTokenPrefix) - 1);
  const std::size_t dot = rest.find('.');
  if (dot == std::string_view::npos ||
      !absl::SimpleAtoi(absl::string_view(rest.data(), dot), &position.skip) ||
      position.skip < 0 || position.skip >= kMaxPageSize) {
    return bad;
  }
  position.upstream_token = std::string(rest.substr(dot + 1));
  return position;
}

// Reads Gemini's pages of kMaxPageSize jobs and keeps those visible to the caller, until
// page_size are found, the list ends, or kMaxBatchListScanPages were read.
class BatchLister : public std::enable_shared_from_this<BatchLister> {
 public:
  BatchLister(BatchContext context, int page_size, ListPosition start, absl::Time deadline,
              std::shared_ptr<StagedCall> call,
              absl::AnyInvocable<void(absl::StatusOr<v1::ListBatchesResponse>)> done)
      : context_(std::move(context)),
        page_size_(page_size),
        position_(std::move(start)),
        deadline_(deadline),
        call_(std::move(call)),
        done_(std::move(done)) {}

  void Page() {
    if (call_->cancelled()) return Done(absl::CancelledError("cancelled"));
    auto self = shared_from_this();
    call_->SetStage(context_.batches->ListBatches(
        kMaxPageSize, position_.upstream_token,
        gemini::CallOptions{.deadline = deadline_, .record = context_.record},
        [self](absl::StatusOr<gemini::ListBatchesResponse> page) {
          self->OnPage(std::move(page));
        }));
  }

 private:
  void OnPage(absl::StatusOr<gemini::ListBatchesResponse> page) {
    if (!page.ok()) return Done(ToCallerStatus(page.status()));
    const std::size_t count = page->batches.size();
    for (std::size_t i = static_cast<std::size_t>(position_.skip); i < count; ++i) {
      const gemini::BatchJob& job = page->batches[i];
      if (gemini::BatchIdOf(job.name).empty() ||
          !BatchVisibleTo(DecodeBatchDisplayName(job.display_name), context_.owner_tag)) {
        continue;
      }
      *out_.add_batches() = ToV1BatchJob(job);
      if (out_.batches_size() < page_size_) continue;
      if (i + 1 < count) {
        return Finish(ListPosition{position_.upstream_token, static_cast<int>(i + 1)});
      }
      break;
    }
    if (page->next_page_token.empty()) return Finish(std::nullopt);
    position_ = ListPosition{page->next_page_token, 0};
    if (out_.batches_size() >= page_size_ || ++pages_ >= kMaxBatchListScanPages) {
      return Finish(position_);
    }
    Page();
  }

  void Finish(std::optional<ListPosition> next) {
    call_->Clear();
    if (next) out_.set_next_page_token(EncodeListPosition(*next));
    Done(std::move(out_));
  }

  void Done(absl::StatusOr<v1::ListBatchesResponse> result) {
    call_->Clear();
    auto done = std::move(done_);
    if (done) done(std::move(result));
  }

  const BatchContext context_;
  const int page_size_;
  ListPosition position_;
  const absl::Time deadline_;
  std::shared_ptr<StagedCall> call_;
  absl::AnyInvocable<void(absl::StatusOr<v1::ListBatchesResponse>)> done_;
  v1::ListBatchesResponse out_;
  int pages_ = 0;
};

// Looks the job up (ownership), then runs `act` on it.
absl::StatusOr<std::shared_ptr<gemini::PendingCall>> ActOnVisibleBatch(
    const BatchContext& context, const std::string& raw_name, absl::Time deadline,
    absl::AnyInvocable<std::shared_ptr<gemini::PendingCall>(
        const std::string& name, gemini::CallOptions options,
        absl::AnyInvocable<void(absl::Status)> done)>
        act,
    absl::AnyInvocable<void(absl::Status)> done) {
  auto name = BatchNameOf(raw_name);
  if (!name.ok()) return name.status();
  auto call = std::make_shared<StagedCall>();
  auto shared_done = std::make_shared<absl::AnyInvocable<void(absl::Status)>>(std::move(done));
  call->SetStage(GetVisibleBatch(
      context, *name, deadline,
      [call, name = *name, deadline, record = context.record, act = std::move(act),
       shared_done](absl::StatusOr<gemini::BatchJob> job) mutable {
        if (!job.ok()) {
          call->Clear();
          return (*shared_done)(job.status());
        }
        call->SetStage(act(name, gemini::CallOptions{.deadline = deadline, .record = record},
                           [call, name, shared_done](absl::Status status) {
                             call->Clear();
                             (*shared_done)(status.ok() ? status
                                                        : BatchErrorForCaller(status, name));
                           }));
      }));
  return call;
}

}  // namespace

std::string_view BatchTaskLabel(v1::BatchTask task) {
  switch (task) {
    case v1::BATCH_TASK_CAPTION:
      return "caption";
    case v1::BATCH_TASK_DETECT:
      return "detect";
    case v1::BATCH_TASK_SEGMENT:
      return "segment";
    default:
      return "";
  }
}

void CountBatch(const std::shared_ptr<telemetry::CallRecord>& record, v1::BatchTask task,
                std::string_view model, telemetry::BatchEvent event, int64_t count) {
  if (record != nullptr) record->telemetry().Batch(BatchTaskLabel(task), model, event, count);
}

absl::Status BatchNotFound(const std::string& name) {
  return WithErrorInfo(
      absl::NotFoundError(absl::StrCat("batch ", name,
                                       " not found: it does not exist or is not yours")),
      "BATCH_NOT_FOUND", {{"batch", name}});
}

absl::StatusOr<std::string> BatchNameOf(const std::string& name) {
  if (gemini::BatchIdOf(name).empty()) {
    return absl::InvalidArgumentError(
        "name: must be \"batches/<id>\" (1..64 lowercase letters, digits or '-')");
  }
  return name;
}

v1::BatchJob ToV1BatchJob(const gemini::BatchJob& job) {
  v1::BatchJob out;
  out.set_name(job.name);
  const BatchDisplayName display = DecodeBatchDisplayName(job.display_name);
  out.set_display_name(display.display_name);
  out.set_task(display.task);
  out.set_model(absl::StartsWith(job.model, "models/") ? job.model.substr(7) : job.model);
  out.set_state(StateOf(job.state));
  out.set_item_count(job.stats.request_count);
  out.set_succeeded_count(job.stats.successful_request_count);
  out.set_failed_count(job.stats.failed_request_count);
  out.set_pending_count(job.stats.pending_request_count);
  SetTime(job.create_time, out.mutable_create_time());
  SetTime(job.update_time, out.mutable_update_time());
  SetTime(job.end_time, out.mutable_end_time());
  if (!job.error.ok()) out.set_error_message(std::string(job.error.message().substr(0, 1024)));
  return out;
}

std::shared_ptr<gemini::PendingCall> GetVisibleBatch(
    const BatchContext& context, const std::string& name, absl::Time deadline,
    absl::AnyInvocable<void(absl::StatusOr<gemini::BatchJob>)> done) {
  return context.batches->GetBatch(
      name, gemini::CallOptions{.deadline = deadline, .record = context.record},
      [name, owner_tag = context.owner_tag,
       done = std::move(done)](absl::StatusOr<gemini::BatchJob> job) mutable {
        if (!job.ok()) return done(BatchErrorForCaller(job.status(), name));
        // Gemini's answer is upstream input: the job must be the one asked for.
        if (job->name != name ||
            !BatchVisibleTo(DecodeBatchDisplayName(job->display_name), owner_tag)) {
          return done(BatchNotFound(name));
        }
        done(*std::move(job));
      });
}

absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartGetBatch(
    const BatchContext& context, const v1::GetBatchRequest& request, absl::Time deadline,
    absl::AnyInvocable<void(absl::StatusOr<v1::BatchJob>)> done) {
  auto name = BatchNameOf(request.name());
  if (!name.ok()) return name.status();
  return GetVisibleBatch(context, *name, deadline,
                         [done = std::move(done)](absl::StatusOr<gemini::BatchJob> job) mutable {
                           if (!job.ok()) return done(job.status());
                           done(ToV1BatchJob(*job));
                         });
}

absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartListBatches(
    const BatchContext& context, const v1::ListBatchesRequest& request, absl::Time deadline,
    absl::AnyInvocable<void(absl::StatusOr<v1::ListBatchesResponse>)> done) {
  if (request.page_size() < 0 || request.page_size() > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: must be 0..", kMaxPageSize, " (0: ", kDefaultPageSize, ")"));
  }
  auto position = DecodeListPosition(request.page_token());
  if (!position.ok()) return position.status();
  auto call = std::make_shared<StagedCall>();
  auto lister = std::make_shared<BatchLister>(
      context, request.page_size() == 0 ? kDefaultPageSize : request.page_size(),
      *std::move(position), deadline, call, std::move(done));
  lister->Page();
  return call;
}

absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartCancelBatch(
    const BatchContext& context, const v1::CancelBatchRequest& request, absl::Time deadline,
    absl::AnyInvocable<void(absl::Status)> done) {
  gemini::BatchesStub* batches = context.batches;
  return ActOnVisibleBatch(
      context, request.name(), deadline,
      [batches](const std::string& name, gemini::CallOptions options,
                absl::AnyInvocable<void(absl::Status)> cancelled) {
        return batches->CancelBatch(name, std::move(options), std::move(cancelled));
      },
      std::move(done));
}

absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartDeleteBatch(
    const BatchContext& context, const v1::DeleteBatchRequest& request, absl::Time deadline,
    absl::AnyInvocable<void(absl::Status)> done) {
  gemini::BatchesStub* batches = context.batches;
  return ActOnVisibleBatch(
      context, request.name(), deadline,
      [batches](const std::string& name, gemini::CallOptions options,
                absl::AnyInvocable<void(absl::Status)> deleted) {
        return batches->DeleteBatch(name, std::move(options), std::move(deleted));
      },
      std::move(done));
}

}  // namespace vision_gateway::vision
