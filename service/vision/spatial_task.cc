#include "service/vision/spatial_task.h"

#include <deque>
#include <exception>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "service/common/error_reasons.h"
#include "service/common/log.h"
#include "service/common/status_details.h"
#include "service/image/image_probe.h"
#include "service/vision/file_id.h"
#include "service/vision/memory_upload.h"
#include "service/vision/spatial_request.h"
#include "service/vision/spatial_results.h"

namespace vision_gateway::vision {
namespace {

// One Detect or Segment call: prepares the image, starts the model's stream and runs the result
// pipeline (spatial_results.h) over it, one step at a time.
template <typename Response>
class SpatialCall final : public gemini::PendingCall,
                          public std::enable_shared_from_this<SpatialCall<Response>> {
 public:
  SpatialCall(gemini::GenerateStub& gemini, ThreadPool& cpu, SpatialParams params,
              absl::Time deadline, TaskCallbacks<Response> callbacks,
              std::shared_ptr<telemetry::CallRecord> record)
      : gemini_(gemini),
        cpu_(cpu),
        params_(std::move(params)),
        deadline_(deadline),
        callbacks_(std::move(callbacks)),
        record_(std::move(record)),
        results_(params_, callbacks_, record_, [this] { CancelUpstream(); }) {}

  // On the CPU pool. A call cancelled or past its deadline while it waited in the queue skips
  // the image preparation. An exception (bad_alloc...) fails this call, not the process.
  void Run(std::string image_bytes) {
    try {
      RunPrepared(std::move(image_bytes));
    } catch (const std::exception& e) {
      FailBeforeUpstream(e.what());
    } catch (...) {
      FailBeforeUpstream("unknown exception");
    }
  }

  void FailBeforeUpstream(const char* what) {
    {
      absl::MutexLock lock(&mu_);
      if (upstream_started_) return;  // the upstream call will end the task
      upstream_started_ = true;
    }
    LogError("Detect/Segment preparation failed: %s", what);
    callbacks_.on_done(WithErrorInfo(
        absl::InternalError("the gateway could not prepare the image (out of memory?); retry"),
        reasons::kInternalError));
  }

  void RunPrepared(std::string image_bytes) {
    bool skip;
    {
      absl::MutexLock lock(&mu_);
      skip = cancelled_;
    }
    if (skip) {
      MarkUpstreamStarted();
      callbacks_.on_done(absl::CancelledError("cancelled"));
      return;
    }
    if (absl::Now() >= deadline_) {
      MarkUpstreamStarted();
      callbacks_.on_done(WithOutcome(
          absl::DeadlineExceededError("the deadline passed while the image waited to be prepared"),
          reasons::kDeadlineExceeded));
      return;
    }
    image::PrepareOptions prepare{.max_pixels = params_.max_pixels,
                                  .max_dimension = params_.max_dimension};
    auto prepared = image::PrepareImage(std::move(image_bytes), prepare);
    if (!prepared.ok()) {
      MarkUpstreamStarted();
      callbacks_.on_done(absl::Status(prepared.status().code(),
                                      absl::StrCat("image: ", prepared.status().message())));
      return;
    }
    bool cancelled;
    {
      absl::MutexLock lock(&mu_);
      cancelled = cancelled_;
    }
    if (cancelled) {
      MarkUpstreamStarted();
      callbacks_.on_done(absl::CancelledError("cancelled"));
      return;
    }
    results_.SetImageSize(prepared->width, prepared->height);
    Response info;
    info.mutable_image_info()->set_width(prepared->width);
    info.mutable_image_info()->set_height(prepared->height);
    info.mutable_image_info()->set_mime_type(
        std::string(image::MimeTypeOf(prepared->source_format)));
    callbacks_.on_response(std::move(info));

    if (params_.files.has_value() && params_.max_inline_bytes > 0 &&
        static_cast<int64_t>(prepared->bytes.size()) > params_.max_inline_bytes) {
      // Over the inline limit: through the Files API (reusing a file with the same bytes).
      auto self = this->shared_from_this();
      UploadBytes(params_.files->WithRecord(record_), std::move(prepared->bytes),
                  prepared->mime_type, prepared->sent_width, prepared->sent_height, deadline_, pre_,
                  [self](absl::StatusOr<gemini::File> file) {
                    if (!file.ok()) {
                      self->pre_->Clear();
                      return self->callbacks_.on_done(file.status());
                    }
                    gemini::Part part;
                    part.file_data =
                        gemini::FileData{.mime_type = file->mime_type, .file_uri = file->uri};
                    self->StartStream(std::move(part));
                  });
      return;
    }
    gemini::Part image_part;
    image_part.inline_data =
        gemini::Blob{.mime_type = prepared->mime_type, .data = std::move(prepared->bytes)};
    StartStream(std::move(image_part));
  }

  // A file reference: the size comes from the gateway's file id (unknown for other files).
  void RunFile() {
    const FileIdInfo id = DecodeFileId(params_.file_name);
    results_.SetImageSize(id.width, id.height);
    auto self = this->shared_from_this();
    AwaitActiveFile(params_.files->WithRecord(record_), params_.file_name, deadline_, pre_,
                    [self, id](absl::StatusOr<gemini::File> file) {
                      if (!file.ok()) {
                      self->pre_->Clear();
                      return self->callbacks_.on_done(file.status());
                    }
                      Response info;
                      v1::ImageInfo* image_info = info.mutable_image_info();
                      image_info->set_width(id.width);
                      image_info->set_height(id.height);
                      image_info->set_mime_type(file->mime_type);
                      image_info->set_size_unknown(id.width == 0);
                      self->callbacks_.on_response(std::move(info));
                      gemini::Part part;
                      part.file_data =
                          gemini::FileData{.mime_type = file->mime_type, .file_uri = file->uri};
                      self->StartStream(std::move(part));
                    });
  }

 private:
  void StartStream(gemini::Part image_part) {
    pre_->Clear();
    image_part.media_resolution = params_.part_media_resolution;
    auto& parts = params_.upstream.contents.front().parts;
    parts.insert(parts.begin(), std::move(image_part));

    auto self = this->shared_from_this();
    gemini::StreamObserver observer{
        .on_chunk =
            [self](gemini::GenerateContentResponse chunk) {
              self->Post([self, chunk = std::move(chunk)] { self->results_.OnChunk(chunk); });
            },
        .on_done =
            [self](absl::Status status) {
              self->Post([self, status = std::move(status)]() mutable {
                self->OnDone(std::move(status));
              });
            },
    };
    MarkUpstreamStarted();
    std::shared_ptr<gemini::PendingCall> upstream;
    std::string thrown = "unknown exception";
    bool threw = true;
    try {
      upstream = gemini_.StreamGenerateContent(
          params_.model, std::move(params_.upstream),
          gemini::CallOptions{.deadline = deadline_,
                              .record = record_,
                              .cache = params_.cache,
                              .task = params_.segment ? "segment" : "detect"},
          std::move(observer));
      threw = false;
    } catch (const std::exception& e) {
      thrown = e.what();
    } catch (...) {
    }
    if (threw) {
      // Starting the upstream call threw (bad_alloc while encoding the request body, ...): no
      // upstream call exists to end this one, so it ends the way an upstream failure does.
      LogError("Detect/Segment: starting the Gemini call failed: %s", thrown);
      Post([self] {
        self->OnDone(WithErrorInfo(
            absl::InternalError("the gateway could not send the request (out of memory?); retry"),
            reasons::kInternalError));
      });
      return;
    }
    bool cancel;
    {
      absl::MutexLock lock(&mu_);
      // The call may already be over (an immediate failure, or a fast upstream): then keep no
      // reference to it, or the two would keep each other alive.
      if (!upstream_finished_) upstream_ = upstream;
      cancel = cancelled_ && !upstream_finished_;
    }
    if (cancel) upstream->Cancel();
  }

  void MarkUpstreamStarted() {
    absl::MutexLock lock(&mu_);
    upstream_started_ = true;
  }

 public:
  void Cancel() override {
    std::shared_ptr<gemini::PendingCall> upstream;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      upstream = upstream_;
    }
    pre_->Cancel();
    if (upstream) upstream->Cancel();
  }

 private:
  // Runs the model-output work of this call in arrival order. Detect's per-object work is small
  // and runs inline on the I/O thread that delivered the chunk; Segment's (base64, PNG decode,
  // resize, threshold, encode, RLE) runs on the CPU pool, one step at a time per call, so it never
  // stalls the other streams of an I/O thread. An exception in a step fails the call.
  void Post(absl::AnyInvocable<void()> step) {
    if constexpr (!kIsSegment<Response>) {
      RunStep(step);
    } else {
      bool start;
      {
        absl::MutexLock lock(&mu_);
        steps_.push_back(std::move(step));
        start = !draining_;
        draining_ = true;
      }
      if (start) cpu_.ScheduleContinuation([self = this->shared_from_this()] { self->Drain(); });
    }
  }

  void Drain() {
    while (true) {
      absl::AnyInvocable<void()> step;
      {
        absl::MutexLock lock(&mu_);
        if (steps_.empty()) {
          draining_ = false;
          return;
        }
        step = std::move(steps_.front());
        steps_.pop_front();
      }
      RunStep(step);
    }
  }

  void RunStep(absl::AnyInvocable<void()>& step) {
    const char* what = nullptr;
    std::string detail;
    try {
      step();
      return;
    } catch (const std::exception& e) {
      detail = e.what();
      what = detail.c_str();
    } catch (...) {
      what = "unknown exception";
    }
    results_.OnStepFailed(what);
  }

  void CancelUpstream() {
    std::shared_ptr<gemini::PendingCall> upstream;
    {
      absl::MutexLock lock(&mu_);
      upstream = upstream_;
    }
    if (upstream) upstream->Cancel();
  }

  void OnDone(absl::Status status) {
    // The upstream call holds this object through its observer; drop the reference back to it so
    // that neither keeps the other alive once the call is over.
    std::shared_ptr<gemini::PendingCall> finished;
    {
      absl::MutexLock lock(&mu_);
      upstream_finished_ = true;
      finished = std::move(upstream_);
    }
    results_.OnDone(std::move(status));
  }

  gemini::GenerateStub& gemini_;
  ThreadPool& cpu_;
  SpatialParams params_;
  const absl::Time deadline_;
  TaskCallbacks<Response> callbacks_;

  // The steps before the model call (file checks, an upload of oversized bytes).
  const std::shared_ptr<StagedCall> pre_ = std::make_shared<StagedCall>();
  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<gemini::PendingCall> upstream_ ABSL_GUARDED_BY(mu_);
  bool upstream_finished_ ABSL_GUARDED_BY(mu_) = false;
  // Set once the task's outcome belongs to the upstream call (or was reported without one).
  bool upstream_started_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<absl::AnyInvocable<void()>> steps_ ABSL_GUARDED_BY(mu_);
  bool draining_ ABSL_GUARDED_BY(mu_) = false;

  const std::shared_ptr<telemetry::CallRecord> record_;
  // Used only by upstream callbacks, in order (Post), once the upstream call has started.
  SpatialResults<Response> results_;
};

template <typename Response, typename Request>
absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartSpatial(
    gemini::GenerateStub& gemini, ThreadPool& cpu, const VisionOptions& options,
    Request request, absl::Time deadline, TaskCallbacks<Response> callbacks, double threshold,
    std::shared_ptr<telemetry::CallRecord> record, const FilesContext* files) {
  auto params = ValidateSpatialRequest(request, kIsSegment<Response>, options, files);
  if (!params.ok()) return params.status();
  params->threshold = threshold;
  const bool is_file = !params->file_name.empty();
  auto call = std::make_shared<SpatialCall<Response>>(gemini, cpu, *std::move(params), deadline,
                                                      std::move(callbacks), std::move(record));
  if (is_file) {
    call->RunFile();
    return call;
  }
  const bool queued = cpu.TrySchedule(
      [call, bytes = std::move(*request.mutable_image()->mutable_content())]() mutable {
        call->Run(std::move(bytes));
      });
  if (!queued) {
    return WithRetryInfo(WithErrorInfo(absl::ResourceExhaustedError(
                                           "the gateway's image preparation queue is full; retry "
                                           "shortly"),
                                       reasons::kServerOverloaded),
                         absl::Seconds(1));
  }
  return call;
}

}  // namespace

absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartDetect(
    gemini::GenerateStub& gemini, ThreadPool& cpu, const VisionOptions& options,
    v1::DetectRequest request, absl::Time deadline, TaskCallbacks<v1::DetectResponse> callbacks,
    std::shared_ptr<telemetry::CallRecord> record, const FilesContext* files) {
  return StartSpatial(gemini, cpu, options, std::move(request), deadline, std::move(callbacks),
                      kDefaultMaskThreshold, std::move(record), files);
}

absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartSegment(
    gemini::GenerateStub& gemini, ThreadPool& cpu, const VisionOptions& options,
    v1::SegmentRequest request, absl::Time deadline,
    TaskCallbacks<v1::SegmentResponse> callbacks, std::shared_ptr<telemetry::CallRecord> record,
    const FilesContext* files) {
  auto threshold = MaskThresholdOf(request.threshold());
  if (!threshold.ok()) return threshold.status();
  return StartSpatial(gemini, cpu, options, std::move(request), deadline, std::move(callbacks),
                      *threshold, std::move(record), files);
}

}  // namespace vision_gateway::vision
