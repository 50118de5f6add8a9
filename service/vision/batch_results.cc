#include "service/vision/batch_results.h"

#include <cmath>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "service/common/error_reasons.h"
#include "service/common/log.h"
#include "service/common/status_details.h"
#include "service/vision/batch_key.h"
#include "service/vision/caption_task.h"
#include "service/vision/file_service.h"
#include "service/vision/spatial_request.h"
#include "service/vision/spatial_results.h"
#include "service/vision/upstream_errors.h"

namespace vision_gateway::vision {
namespace {

absl::Status BadLine(const char* why) {
  return WithOutcome(absl::UnavailableError(absl::StrCat("Gemini's batch output: ", why)),
                     reasons::kUpstreamBadResponse);
}

// What the online stream layer decides about an answer before the vision task sees it: a
// blocked prompt is CONTENT_BLOCKED, an answer without a finish reason is cut short.
absl::Status CheckAnswer(const gemini::GenerateContentResponse& response) {
  if (response.prompt_feedback && !response.prompt_feedback->block_reason.empty()) {
    const std::string reason = response.prompt_feedback->block_reason.substr(0, 64);
    return WithOutcome(
        WithErrorInfo(absl::InvalidArgumentError(absl::StrCat(
                          "Gemini blocked the prompt (", reason,
                          "); change the images or the prompt")),
                      reasons::kContentBlocked, {{"block_reason", reason}}),
        reasons::kContentBlocked);
  }
  for (const gemini::Candidate& candidate : response.candidates) {
    if (!candidate.finish_reason.empty()) return absl::OkStatus();
  }
  return WithOutcome(absl::UnavailableError("Gemini's answer for the item has no finish reason"),
                     reasons::kUpstreamConnectionLost);
}

// Runs the online result pipeline of `Response` over one whole answer; nullopt results and the
// error when it failed.
template <typename Response>
absl::Status RunSpatial(const gemini::GenerateContentResponse& response, const BatchItemKey& key,
                        const std::string& model, const VisionOptions& options,
                        std::vector<Response>& out,
                        const std::shared_ptr<telemetry::CallRecord>& record) {
  SpatialParams params;
  params.segment = kIsSegment<Response>;
  params.model = model;
  params.max_objects = key.max_objects;
  params.threshold = kIsSegment<Response> ? key.threshold_milli / 1000.0 : kDefaultMaskThreshold;
  params.item_limits = SpatialItemLimits{.max_polygon_points = options.max_polygon_points,
                                         .max_mask_png_pixels = options.max_mask_png_pixels};
  params.reroutes = options.reroutes;
  absl::Status final_status = absl::InternalError("the item's answer was not finished");
  TaskCallbacks<Response> callbacks{
      .on_response = [&out](Response r) { out.push_back(std::move(r)); },
      .on_done = [&final_status](absl::Status s) { final_status = std::move(s); },
  };
  Response info;
  v1::ImageInfo* image_info = info.mutable_image_info();
  image_info->set_width(key.width);
  image_info->set_height(key.height);
  image_info->set_mime_type(key.mime_type);
  image_info->set_size_unknown(key.width == 0);
  out.push_back(std::move(info));
  SpatialResults<Response> results(params, callbacks, record, [] {});
  results.SetImageSize(key.width, key.height);
  results.OnChunk(response);
  results.OnDone(absl::OkStatus());
  return final_status;
}

}  // namespace

void BatchItemFailures::Add(const std::string& hidden_text) {
  ++count;
  if (hidden_text.empty()) return;
  if (hidden++ == 0) first_hidden = hidden_text.substr(0, 512);
}

void BatchItemFailures::LogSummary(const std::string& batch) const {
  if (count == 0) return;
  if (hidden == 0) {
    LogWarning("ReadBatchResults %s: %d items failed (each is a google.rpc.Status in its result)",
               batch, count);
    return;
  }
  LogWarning("ReadBatchResults %s: %d items failed (each is a google.rpc.Status in its result); "
             "%d with upstream details hidden from the caller, the first: %s",
             batch, count, hidden, first_hidden);
}

v1::BatchItemStatus ToBatchItemStatus(const absl::Status& status, BatchItemFailures* failures) {
  std::string hidden;
  const absl::Status caller = ToCallerStatusUnlogged(status, &hidden);
  if (failures != nullptr) failures->Add(hidden);
  v1::BatchItemStatus out;
  out.set_code(static_cast<int>(caller.code()));
  out.set_message(std::string(caller.message()));
  caller.ForEachPayload([&out](absl::string_view type_url, const absl::Cord& payload) {
    if (!absl::StartsWith(type_url, kTypeUrlPrefix)) return;
    auto* any = out.add_details();
    any->set_type_url(std::string(type_url));
    any->set_value(std::string(payload));
  });
  return out;
}

std::string ProcessBatchLine(const gemini::BatchResponseLine& line, v1::BatchTask job_task,
                             const std::string& model, const VisionOptions& options,
                             absl::FunctionRef<void(v1::BatchResult)> emit,
                             const std::shared_ptr<telemetry::CallRecord>& record,
                             BatchItemFailures* failures) {
  auto key = DecodeBatchItemKey(line.key);
  if (!key.ok() || key->task != job_task) {
    v1::BatchResult result;
    *result.mutable_error() = ToBatchItemStatus(
        BadLine("a response line whose key the gateway did not write for this job"), failures);
    emit(std::move(result));
    return "";
  }
  const auto emit_error = [&](const absl::Status& status) {
    v1::BatchResult result;
    result.set_key(key->caller_key);
    *result.mutable_error() = ToBatchItemStatus(status, failures);
    emit(std::move(result));
  };
  if (!line.response.has_value()) {
    emit_error(line.error.ok() ? BadLine("a line with neither a response nor an error")
                               : line.error);
    return key->caller_key;
  }
  if (absl::Status checked = CheckAnswer(*line.response); !checked.ok()) {
    emit_error(checked);
    return key->caller_key;
  }
  switch (job_task) {
    case v1::BATCH_TASK_CAPTION: {
      std::vector<v1::CaptionResponse> out;
      absl::Status final_status;
      CaptionStream stream(
          TaskCallbacks<v1::CaptionResponse>{
              .on_response = [&out](v1::CaptionResponse r) { out.push_back(std::move(r)); },
              .on_done = [&final_status](absl::Status s) { final_status = std::move(s); },
          },
          model, options.reroutes);
      stream.OnChunk(*line.response);
      stream.OnDone(absl::OkStatus());
      if (!final_status.ok()) {
        emit_error(final_status);
        break;
      }
      for (v1::CaptionResponse& response : out) {
        v1::BatchResult result;
        result.set_key(key->caller_key);
        *result.mutable_caption() = std::move(response);
        emit(std::move(result));
      }
      break;
    }
    case v1::BATCH_TASK_DETECT: {
      std::vector<v1::DetectResponse> out;
      absl::Status status = RunSpatial(*line.response, *key, model, options, out, record);
      if (!status.ok()) {
        emit_error(status);
        break;
      }
      for (v1::DetectResponse& response : out) {
        v1::BatchResult result;
        result.set_key(key->caller_key);
        *result.mutable_detect() = std::move(response);
        emit(std::move(result));
      }
      break;
    }
    case v1::BATCH_TASK_SEGMENT: {
      std::vector<v1::SegmentResponse> out;
      absl::Status status = RunSpatial(*line.response, *key, model, options, out, record);
      if (!status.ok()) {
        emit_error(status);
        break;
      }
      for (v1::SegmentResponse& response : out) {
        v1::BatchResult result;
        result.set_key(key->caller_key);
        *result.mutable_segment() = std::move(response);
        emit(std::move(result));
      }
      break;
    }
    default:
      break;
  }
  return key->caller_key;
}

namespace {

// One ReadBatchResults: gets the job, then turns its responses into results at the consumer's
// pace. Every step of the result work runs in Pump, one at a time, on the CPU pool.
class ResultsReader final : public gemini::PendingCall,
                            public std::enable_shared_from_this<ResultsReader> {
 public:
  ResultsReader(BatchContext context, std::string name, std::string start_after_key,
                absl::Time deadline, BatchResultsCallbacks callbacks)
      : context_(std::move(context)),
        name_(std::move(name)),
        start_after_key_(std::move(start_after_key)),
        skipping_(!start_after_key_.empty()),
        deadline_(deadline),
        callbacks_(std::move(callbacks)) {}

  void Begin() {
    auto self = shared_from_this();
    stage_->SetStage(GetVisibleBatch(
        context_, name_, deadline_,
        [self](absl::StatusOr<gemini::BatchJob> job) { self->OnJob(std::move(job)); }));
  }

  void Cancel() override {
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
    }
    stage_->Cancel();
    Schedule();
  }

 private:
  void OnJob(absl::StatusOr<gemini::BatchJob> job) {
    if (!job.ok()) return Finish(job.status());
    if (job->state != "BATCH_STATE_SUCCEEDED") {
      const std::string state = job->state.substr(0, 64);
      return Finish(WithErrorInfo(
          absl::FailedPreconditionError(absl::StrCat(
              "batch ", name_, " is ", state.empty() ? "in an unknown state" : state,
              "; its results can be read once it is BATCH_STATE_SUCCEEDED")),
          "BATCH_NOT_SUCCEEDED", {{"batch", name_}, {"state", state}}));
    }
    const BatchDisplayName display = DecodeBatchDisplayName(job->display_name);
    if (!display.tagged) {
      return Finish(absl::FailedPreconditionError(absl::StrCat(
          "batch ", name_, " was not created through the gateway; its results are not typed")));
    }
    task_ = display.task;
    model_ = job->model.rfind("models/", 0) == 0 ? job->model.substr(7) : job->model;
    if (!job->inlined_responses.empty() || job->responses_file.empty()) {
      {
        absl::MutexLock lock(&mu_);
        inline_lines_ = std::move(job->inlined_responses);
        download_done_ = true;
      }
      return Schedule();
    }
    auto self = shared_from_this();
    stage_->SetStage(context_.batches->DownloadFile(
        job->responses_file, gemini::CallOptions{.deadline = deadline_, .record = context_.record},
        gemini::DownloadObserver{
            .on_data =
                [self](std::string_view data, absl::AnyInvocable<void()> more) {
                  {
                    absl::MutexLock lock(&self->mu_);
                    self->piece_.assign(data.data(), data.size());
                    self->piece_pos_ = 0;
                    self->more_ = std::move(more);
                  }
                  self->Schedule();
                },
            .on_done =
                [self](absl::Status status) {
                  {
                    absl::MutexLock lock(&self->mu_);
                    self->download_done_ = true;
                    self->download_status_ = std::move(status);
                  }
                  self->Schedule();
                },
        }));
  }

  // Runs Pump on the CPU pool unless it is running.
  void Schedule() {
    {
      absl::MutexLock lock(&mu_);
      if (pumping_ || finished_) return;
      pumping_ = true;
    }
    context_.cpu->ScheduleContinuation([self = shared_from_this()] { self->Pump(); });
  }

  // What Pump does next, decided under the lock.
  enum class Step { kIdle, kContinue, kCancelled, kDeliver, kLine, kMore, kEnd };

  void Pump() {
    while (true) {
      Step step = Step::kIdle;
      v1::BatchResult result;
      std::string line;
      std::optional<gemini::BatchResponseLine> inline_line;
      absl::AnyInvocable<void()> more;
      absl::Status end_status;
      {
        absl::MutexLock lock(&mu_);
        if (finished_) {
          pumping_ = false;
          return;
        }
        if (cancelled_) {
          step = Step::kCancelled;
        } else if (waiting_) {
          step = Step::kIdle;
        } else if (!pending_.empty()) {
          result = std::move(pending_.front());
          pending_.pop_front();
          waiting_ = true;
          step = Step::kDeliver;
        } else if (!inline_lines_.empty()) {
          inline_line = std::move(inline_lines_.front());
          inline_lines_.erase(inline_lines_.begin());
          step = Step::kLine;
        } else if (piece_pos_ < piece_.size()) {
          const std::string_view rest = std::string_view(piece_).substr(piece_pos_);
          const size_t newline = rest.find('\n');
          const size_t take = newline == std::string_view::npos ? rest.size() : newline;
          if (partial_.size() + take > kMaxBatchLineBytes) {
            end_status = WithOutcome(
                absl::UnavailableError(absl::StrCat("a line of the batch's responses file is "
                                                    "longer than ",
                                                    kMaxBatchLineBytes, " bytes")),
                reasons::kUpstreamResponseTooLarge);
            step = Step::kEnd;
          } else {
            partial_.append(rest.data(), take);
            piece_pos_ += take;
            if (newline != std::string_view::npos) {
              ++piece_pos_;
              line = std::move(partial_);
              partial_.clear();
              step = Step::kLine;
            } else {
              step = Step::kContinue;  // the line goes on in the next piece
            }
          }
        } else if (more_) {
          piece_.clear();
          piece_pos_ = 0;
          more = std::move(more_);
          more_ = nullptr;
          step = Step::kMore;
        } else if (download_done_) {
          if (!partial_.empty() && download_status_.ok()) {
            line = std::move(partial_);
            partial_.clear();
            step = Step::kLine;
          } else {
            end_status = download_status_;
            step = Step::kEnd;
          }
        }
        if (step == Step::kIdle) {
          pumping_ = false;
          return;
        }
      }
      switch (step) {
        case Step::kIdle:
        case Step::kContinue:
          break;
        case Step::kCancelled:
          return Finish(absl::CancelledError("cancelled"));
        case Step::kDeliver: {
          auto self = shared_from_this();
          callbacks_.on_result(std::move(result), [self] {
            {
              absl::MutexLock lock(&self->mu_);
              self->waiting_ = false;
            }
            self->Schedule();
          });
          break;
        }
        case Step::kLine:
          if (inline_line.has_value()) {
            Process(*inline_line);
          } else if (!line.empty() && line.find_first_not_of(" \t\r") != std::string::npos) {
            auto decoded = gemini::DecodeBatchResponseLine(line);
            line.clear();
            line.shrink_to_fit();
            if (!decoded.ok()) {
              if (!skipping_) {
                CountLine(/*failed=*/true);
                v1::BatchResult bad;
                *bad.mutable_error() = ToBatchItemStatus(
                    WithOutcome(absl::UnavailableError("a line of the batch's responses file "
                                                       "is not a response"),
                                reasons::kUpstreamBadResponse),
                    &failures_);
                Queue(std::move(bad));
              }
            } else {
              Process(*decoded);
            }
          }
          break;
        case Step::kMore:
          more();
          break;
        case Step::kEnd:
          return Finish(end_status.ok() ? end_status : ToCallerStatus(end_status));
      }
    }
  }

  void Process(const gemini::BatchResponseLine& line) {
    if (skipping_) {
      // Only the key matters until the item after start_after_key.
      auto key = DecodeBatchItemKey(line.key);
      if (key.ok() && key->caller_key == start_after_key_) skipping_ = false;
      return;
    }
    bool failed = false;
    ProcessBatchLine(
        line, task_, model_, *context_.options,
        [this, &failed](v1::BatchResult result) {
          failed = failed || result.has_error();
          Queue(std::move(result));
        },
        context_.record, &failures_);
    CountLine(failed);
  }

  // One item read back (metrics): a result line, and whether it ended as an error.
  void CountLine(bool failed) {
    CountBatch(context_.record, task_, model_, telemetry::BatchEvent::kResultLine, 1);
    if (failed) CountBatch(context_.record, task_, model_, telemetry::BatchEvent::kItemFailed, 1);
  }

  void Queue(v1::BatchResult result) {
    absl::MutexLock lock(&mu_);
    pending_.push_back(std::move(result));
  }

  void Finish(absl::Status status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
      pumping_ = false;
      pending_.clear();
      more_ = nullptr;
    }
    failures_.LogSummary(name_);
    stage_->Clear();
    auto done = std::move(callbacks_.on_done);
    callbacks_.on_result = nullptr;
    if (done) done(std::move(status));
  }

  const BatchContext context_;
  const std::string name_;
  const std::string start_after_key_;
  bool skipping_;  // Pump only
  const absl::Time deadline_;
  BatchResultsCallbacks callbacks_;
  const std::shared_ptr<StagedCall> stage_ = std::make_shared<StagedCall>();
  v1::BatchTask task_ = v1::BATCH_TASK_UNSPECIFIED;
  std::string model_;
  // Pump only (Finish reads it once the pump is over, or before it ran).
  BatchItemFailures failures_;

  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool pumping_ ABSL_GUARDED_BY(mu_) = false;
  bool waiting_ ABSL_GUARDED_BY(mu_) = false;  // a result is out, its `next` has not run
  std::deque<v1::BatchResult> pending_ ABSL_GUARDED_BY(mu_);  // one item's results
  std::vector<gemini::BatchResponseLine> inline_lines_ ABSL_GUARDED_BY(mu_);
  std::string piece_ ABSL_GUARDED_BY(mu_);  // the downloaded piece being read
  size_t piece_pos_ ABSL_GUARDED_BY(mu_) = 0;
  std::string partial_ ABSL_GUARDED_BY(mu_);  // the line being assembled
  absl::AnyInvocable<void()> more_ ABSL_GUARDED_BY(mu_);
  bool download_done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status download_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartReadBatchResults(
    const BatchContext& context, const v1::ReadBatchResultsRequest& request, absl::Time deadline,
    BatchResultsCallbacks callbacks) {
  auto name = BatchNameOf(request.name());
  if (!name.ok()) return name.status();
  if (request.start_after_key().size() > kMaxBatchKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("start_after_key: at most ", kMaxBatchKeyBytes, " bytes"));
  }
  auto reader = std::make_shared<ResultsReader>(context, *std::move(name),
                                                request.start_after_key(), deadline,
                                                std::move(callbacks));
  reader->Begin();
  return reader;
}

}  // namespace vision_gateway::vision
