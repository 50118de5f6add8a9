#include "service/vision/batch_task.h"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "service/common/error_reasons.h"
#include "service/common/growing_buffer.h"
#include "service/common/log.h"
#include "service/common/status_details.h"
#include "service/image/image_probe.h"
#include "service/vision/batch_key.h"
#include "service/vision/batch_service.h"
#include "service/vision/caption_task.h"
#include "service/vision/file_id.h"
#include "service/vision/file_parts.h"
#include "service/vision/memory_upload.h"
#include "service/vision/model_family.h"
#include "service/vision/model_options.h"
#include "service/vision/resumable_upload.h"
#include "service/vision/spatial_request.h"
#include "service/vision/upstream_errors.h"

namespace vision_gateway::vision {
namespace {

// The MIME type of a request file, as Gemini's Batch API documentation uploads it.
constexpr char kRequestFileMimeType[] = "jsonl";

absl::Status ForItem(const absl::Status& status, const std::string& key) {
  if (status.ok()) return status;
  absl::Status out(status.code(), absl::StrCat("item \"", key.substr(0, 128), "\": ",
                                               status.message()));
  status.ForEachPayload([&out](absl::string_view url, const absl::Cord& payload) {
    out.SetPayload(url, payload);
  });
  return out;
}

template <typename Request>
Request SpatialRequestOf(const v1::CreateBatchHeader& header, v1::CreateBatchItem& item) {
  Request request;
  *request.mutable_image() = std::move(*item.mutable_image());
  request.set_prompt(item.prompt().empty() ? header.prompt() : item.prompt());
  request.set_max_objects(header.max_objects());
  *request.mutable_options() = header.options();
  request.set_max_dimension(header.max_dimension());
  return request;
}

void BuildCaptionItem(const FilesContext& files, const VisionOptions& options,
                      const v1::CreateBatchHeader& header,
                      v1::CreateBatchItem item, absl::Time deadline,
                      std::shared_ptr<StagedCall> stage,
                      absl::AnyInvocable<void(absl::StatusOr<BatchItemRequest>)> done) {
  v1::CaptionRequest request;
  *request.add_images() = std::move(*item.mutable_image());
  request.set_prompt(item.prompt().empty() ? header.prompt() : item.prompt());
  *request.mutable_options() = header.options();
  auto model = ChooseModel(request.options(), options);
  if (!model.ok()) return done(model.status());
  auto fitted = ModelConfigFor(request.options(), *model, TaskDefaults{}, options.cost);
  if (!fitted.ok()) return done(fitted.status());
  auto content = BuildCaptionContent(request, options);
  if (!content.ok()) return done(content.status());
  SetPartMediaResolution(fitted->part_media_resolution, *content);
  BatchItemRequest out;
  BatchItemKey key;
  key.task = v1::BATCH_TASK_CAPTION;
  key.caller_key = item.key();
  out.line_key = EncodeBatchItemKey(key);
  out.request.generation_config = std::move(fitted->config);
  if (!NeedsResolving(content->parts, options)) {
    out.request.contents.push_back(*std::move(content));
    return done(std::move(out));
  }
  std::string role = content->role;
  ResolveParts(files, std::move(content->parts), deadline, stage,
               [out = std::move(out), role = std::move(role), done = std::move(done)](
                   absl::StatusOr<std::vector<gemini::Part>> parts) mutable {
                 if (!parts.ok()) return done(parts.status());
                 gemini::Content& ready = out.request.contents.emplace_back();
                 ready.role = std::move(role);
                 ready.parts = *std::move(parts);
                 done(std::move(out));
               });
}

// One Detect/Segment item being built.
struct SpatialItemBuild {
  SpatialParams params;
  BatchItemKey key;
  absl::AnyInvocable<void(absl::StatusOr<BatchItemRequest>)> done;

  // The image part goes in front of the prompt, with the model's per-part resolution, as online.
  void Finish(gemini::Part part) {
    part.media_resolution = params.part_media_resolution;
    auto& parts = params.upstream.contents.front().parts;
    parts.insert(parts.begin(), std::move(part));
    done(BatchItemRequest{.line_key = EncodeBatchItemKey(key),
                          .request = std::move(params.upstream)});
  }
};

// Inline bytes, on the CPU pool: prepared as the online task prepares them (spatial_task.cc),
// then sent inline or, over the inline limit, through the Files API.
void PrepareSpatialItem(const FilesContext& files, std::shared_ptr<SpatialItemBuild> build,
                        std::string bytes, absl::Time deadline,
                        std::shared_ptr<StagedCall> stage) {
  if (stage->cancelled()) return build->done(absl::CancelledError("cancelled"));
  image::PrepareOptions prepare{.max_pixels = build->params.max_pixels,
                                .max_dimension = build->params.max_dimension};
  auto prepared = image::PrepareImage(std::move(bytes), prepare);
  if (!prepared.ok()) {
    return build->done(absl::Status(prepared.status().code(),
                                    absl::StrCat("image: ", prepared.status().message())));
  }
  build->key.width = prepared->width;
  build->key.height = prepared->height;
  build->key.mime_type = std::string(image::MimeTypeOf(prepared->source_format));
  if (build->params.max_inline_bytes > 0 &&
      static_cast<int64_t>(prepared->bytes.size()) > build->params.max_inline_bytes) {
    UploadBytes(files, std::move(prepared->bytes), prepared->mime_type, prepared->sent_width,
                prepared->sent_height, deadline, stage,
                [build](absl::StatusOr<gemini::File> file) {
                  if (!file.ok()) return build->done(file.status());
                  gemini::Part part;
                  part.file_data =
                      gemini::FileData{.mime_type = file->mime_type, .file_uri = file->uri};
                  build->Finish(std::move(part));
                });
    return;
  }
  gemini::Part part;
  part.inline_data =
      gemini::Blob{.mime_type = prepared->mime_type, .data = std::move(prepared->bytes)};
  build->Finish(std::move(part));
}

void BuildSpatialItem(const FilesContext& files, const VisionOptions& options,
                      const v1::CreateBatchHeader& header,
                      v1::CreateBatchItem item, absl::Time deadline,
                      std::shared_ptr<StagedCall> stage,
                      absl::AnyInvocable<void(absl::StatusOr<BatchItemRequest>)> done) {
  const bool segment = header.task() == v1::BATCH_TASK_SEGMENT;
  absl::StatusOr<SpatialParams> validated;
  std::string bytes;
  if (segment) {
    auto request = SpatialRequestOf<v1::SegmentRequest>(header, item);
    validated = ValidateSpatialRequest(request, true, options, &files);
    bytes = std::move(*request.mutable_image()->mutable_content());
  } else {
    auto request = SpatialRequestOf<v1::DetectRequest>(header, item);
    validated = ValidateSpatialRequest(request, false, options, &files);
    bytes = std::move(*request.mutable_image()->mutable_content());
  }
  if (!validated.ok()) return done(validated.status());
  auto threshold = MaskThresholdOf(header.threshold());
  if (!threshold.ok()) return done(threshold.status());
  auto build = std::make_shared<SpatialItemBuild>();
  build->params = *std::move(validated);
  build->key.task = header.task();
  build->key.max_objects = build->params.max_objects;
  build->key.threshold_milli = segment ? static_cast<int>(*threshold * 1000 + 0.5) : 0;
  build->key.caller_key = item.key();
  if (segment && build->key.threshold_milli < 1) build->key.threshold_milli = 1;
  build->done = std::move(done);
  if (!build->params.file_name.empty()) {
    // A file: the size comes from the gateway's file id (unknown for other files), as online.
    const FileIdInfo id = DecodeFileId(build->params.file_name);
    build->key.width = id.width;
    build->key.height = id.height;
    AwaitActiveFile(files, build->params.file_name, deadline, stage,
                    [build](absl::StatusOr<gemini::File> file) {
                      if (!file.ok()) return build->done(file.status());
                      build->key.mime_type = file->mime_type;
                      gemini::Part part;
                      part.file_data =
                          gemini::FileData{.mime_type = file->mime_type, .file_uri = file->uri};
                      build->Finish(std::move(part));
                    });
    return;
  }
  const bool queued = files.runtime->cpu()->TrySchedule(
      [files, build, bytes = std::move(bytes), deadline, stage]() mutable {
        std::string what = "unknown exception";
        try {
          PrepareSpatialItem(files, build, std::move(bytes), deadline, stage);
          return;
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        LogError("CreateBatch: preparing an image failed: %s", what);
        if (build->done) {
          build->done(WithErrorInfo(
              absl::InternalError("the gateway could not prepare the image (out of memory?)"),
              reasons::kInternalError));
        }
      });
  if (!queued) {
    build->done(WithRetryInfo(
        WithErrorInfo(absl::ResourceExhaustedError(
                          "the gateway's image preparation queue is full; retry shortly"),
                      reasons::kServerOverloaded),
        absl::Seconds(1)));
  }
}

// The request file being written: a spool file, deleted when this goes, with its bytes reserved
// from the service's spool bound as they are written.
class SpoolFile {
 public:
  ~SpoolFile() { Close(); }

  absl::Status Open(const std::string& dir, Semaphore* bound) {
    if (bound != nullptr) {
      bound_capacity_ = bound->capacity();
      reserved_ = bound->TryAcquire(0);
    }
    path_ = absl::StrCat(dir, "/vg-batch-XXXXXX");
    const int fd = mkstemp(path_.data());
    if (fd < 0) {
      LogError("CreateBatch: cannot create a spool file in %s", dir);
      path_.clear();
      return WithErrorInfo(absl::InternalError("the gateway cannot write the batch request file"),
                           reasons::kInternalError);
    }
    file_ = fdopen(fd, "w+b");
    if (file_ == nullptr) {
      close(fd);
      return WithErrorInfo(absl::InternalError("the gateway cannot write the batch request file"),
                           reasons::kInternalError);
    }
    return absl::OkStatus();
  }

  // Appends `line` and a newline. RESOURCE_EXHAUSTED when the spool bound has no room for them.
  absl::Status Append(std::string_view line) {
    const int64_t bytes = static_cast<int64_t>(line.size()) + 1;
    if (reserved_ && !reserved_.TryExtend(bytes)) {
      return WithErrorInfo(
          absl::ResourceExhaustedError(absl::StrCat(
              "the gateway's batch spool is full: the CreateBatch calls in flight hold its ",
              bound_capacity_ >> 20, " MiB of request files (--batch_spool_max_mb); this job's "
              "request file was removed and no job was created; retry later, on another "
              "replica, or split the job")),
          reasons::kServerOverloaded, {{"limit", "batch_spool_max_mb"}});
    }
    if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() ||
        std::fputc('\n', file_) == EOF) {
      return WithErrorInfo(
          absl::InternalError("the gateway could not write the batch request file (disk full?)"),
          reasons::kInternalError);
    }
    size_ += bytes;
    return absl::OkStatus();
  }

  int64_t size() const { return size_; }

  // Reads `length` bytes at `offset` into a complete buffer.
  absl::StatusOr<std::shared_ptr<GrowingBuffer>> Read(int64_t offset, int64_t length) {
    if (std::fflush(file_) != 0 || std::fseek(file_, offset, SEEK_SET) != 0) {
      return absl::InternalError("the gateway could not read the batch request file back");
    }
    auto buffer = std::make_shared<GrowingBuffer>(static_cast<std::size_t>(length));
    std::string piece(std::min<int64_t>(length, int64_t{1} << 20), '\0');
    int64_t left = length;
    while (left > 0) {
      const std::size_t want = static_cast<std::size_t>(std::min<int64_t>(left, piece.size()));
      if (std::fread(piece.data(), 1, want, file_) != want) {
        return absl::InternalError("the gateway could not read the batch request file back");
      }
      buffer->Append(std::string_view(piece.data(), want));
      left -= static_cast<int64_t>(want);
    }
    std::fseek(file_, 0, SEEK_END);
    return buffer;
  }

  void Close() {
    if (file_ != nullptr) std::fclose(file_);
    file_ = nullptr;
    if (!path_.empty()) unlink(path_.c_str());
    path_.clear();
    reserved_.Release();
  }

 private:
  int64_t bound_capacity_ = 0;
  // The bytes written, reserved from the bound (empty: unbounded).
  Semaphore::Permit reserved_;
  std::string path_;
  std::FILE* file_ = nullptr;
  int64_t size_ = 0;
};

class BatchCreate final : public BatchCreateTask,
                          public std::enable_shared_from_this<BatchCreate> {
 public:
  BatchCreate(const BatchCreateContext& context, absl::Time deadline,
              BatchCreateCallbacks callbacks)
      : context_(context), deadline_(deadline), callbacks_(std::move(callbacks)) {}

  void Begin() override { RequestRead(); }

  void OnMessage(v1::CreateBatchRequest message) override {
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
      DisarmIdleTimerLocked();
      if (done_) return;
    }
    if (!have_header_) {
      if (!message.has_header()) {
        return Fail(absl::InvalidArgumentError(
            "the first CreateBatch message must be the header (CreateBatchHeader)"));
      }
      return OnHeader(std::move(*message.mutable_header()));
    }
    if (!message.has_item()) {
      return Fail(absl::InvalidArgumentError(
          "after the header, every CreateBatch message must be an item"));
    }
    OnItem(std::move(*message.mutable_item()));
  }

  void OnHalfClose() override {
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
      DisarmIdleTimerLocked();
      if (done_) return;
    }
    if (!have_header_) return Fail(absl::InvalidArgumentError("header: required"));
    if (items_ == 0) return Fail(absl::InvalidArgumentError("items: at least one is required"));
    Upload();
  }

  void Cancel() override { Fail(absl::CancelledError("CreateBatch cancelled")); }

 private:
  void OnHeader(v1::CreateBatchHeader header) {
    auto model = ValidateBatchHeader(header, *context_.options);
    if (!model.ok()) return Fail(model.status());
    model_ = *std::move(model);
    header_ = std::move(header);
    have_header_ = true;
    if (absl::Status opened = spool_.Open(context_.spool_dir, context_.spool_bytes);
        !opened.ok()) {
      return Fail(opened);
    }
    RequestRead();
  }

  void OnItem(v1::CreateBatchItem item) {
    if (items_ >= context_.max_items) {
      return Fail(WithErrorInfo(
          absl::InvalidArgumentError(absl::StrCat("items: at most ", context_.max_items,
                                                  " per job (the server's --max_batch_items)")),
          reasons::kRequestTooLarge, {{"limit", "max_batch_items"}}));
    }
    if (item.key().empty() || item.key().size() > kMaxBatchKeyBytes) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
          "item ", items_, ": key must be 1..", kMaxBatchKeyBytes, " bytes")));
    }
    if (!keys_.insert(item.key()).second) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
          "item ", items_, ": key \"", item.key(), "\" is already used in this job")));
    }
    ++items_;
    const std::string key = item.key();
    auto self = shared_from_this();
    BuildBatchItem(context_.files, *context_.options, header_, std::move(item), deadline_, stage_,
                   [self, key](absl::StatusOr<BatchItemRequest> built) {
                     self->OnItemBuilt(key, std::move(built));
                   });
  }

  void OnItemBuilt(const std::string& key, absl::StatusOr<BatchItemRequest> built) {
    if (!built.ok()) return Fail(ForItem(built.status(), key));
    auto line = gemini::EncodeBatchRequestLine(built->line_key, built->request);
    if (!line.ok()) return Fail(ForItem(line.status(), key));
    if (spool_.size() + static_cast<int64_t>(line->size()) + 1 > kMaxGeminiFileBytes) {
      return Fail(WithErrorInfo(
          absl::InvalidArgumentError(absl::StrCat(
              "item \"", key, "\": the job's request file would exceed Gemini's ",
              kMaxGeminiFileBytes, "-byte file limit; split the job")),
          reasons::kRequestTooLarge, {{"limit", "batch_request_file_bytes"}}));
    }
    if (absl::Status written = spool_.Append(*line); !written.ok()) {
      spool_.Close();  // the partial file and its bytes go now, not when the call is destroyed
      return Fail(ForItem(written, key));
    }
    RequestRead();
  }

  void Upload() {
    const std::string file_name = absl::StrCat("files/", NewFileId(0, 0, context_.files.owner_tag));
    auto upload = std::make_shared<ResumableUpload>(
        context_.files.runtime->gemini(), context_.files.runtime->timer(), deadline_, context_.files.record,
        context_.files.runtime->detached(), context_.files.runtime->options().max_retry_delay);
    {
      absl::MutexLock lock(&mu_);
      if (done_) return;
      upload_ = upload;  // End() aborts it from here on
    }
    auto self = shared_from_this();
    upload->Start(
        gemini::StartUploadRequest{.size_bytes = spool_.size(),
                                   .mime_type = kRequestFileMimeType,
                                   .display_name = "vision-gateway batch requests",
                                   .name = file_name},
        [self](absl::Status started) {
          if (!started.ok()) return self->Fail(ToCallerStatus(started));
          self->context_.files.runtime->cpu()->ScheduleContinuation([self] { self->SendChunk(); });
        });
  }

  // On the CPU pool: reads the next chunk of the spool back and sends it.
  void SendChunk() {
    std::shared_ptr<ResumableUpload> upload;
    {
      absl::MutexLock lock(&mu_);
      upload = upload_;
    }
    const int64_t offset = upload->offset();
    const int64_t left = spool_.size() - offset;
    const int64_t granularity = std::max<int64_t>(upload->granularity(), 1);
    const bool last = left <= granularity;
    auto chunk = spool_.Read(offset, last ? left : granularity);
    if (!chunk.ok()) return Fail(WithErrorInfo(chunk.status(), reasons::kInternalError));
    auto self = shared_from_this();
    upload->Send(*std::move(chunk), last, [self, last](absl::StatusOr<gemini::File> file) {
      if (!file.ok()) return self->Fail(ToCallerStatus(file.status()));
      if (!last) {
        self->context_.files.runtime->cpu()->ScheduleContinuation([self] { self->SendChunk(); });
        return;
      }
      self->spool_.Close();
      self->AwaitAndCreate(*std::move(file));
    });
  }

  void AwaitAndCreate(gemini::File uploaded) {
    auto self = shared_from_this();
    AwaitActiveFile(context_.files, uploaded.name, deadline_, stage_,
                    [self](absl::StatusOr<gemini::File> file) {
                      if (!file.ok()) return self->Fail(file.status());
                      self->CreateJob(file->name);
                    });
  }

  void CreateJob(const std::string& input_file) {
    gemini::CreateBatchRequest request;
    request.display_name = EncodeBatchDisplayName(header_.display_name(), header_.task(),
                                                  context_.files.owner_tag);
    request.input_file = input_file;
    auto self = shared_from_this();
    stage_->SetStage(context_.batches->CreateBatch(
        model_, std::move(request),
        gemini::CallOptions{.deadline = deadline_, .record = context_.files.record},
        [self](absl::StatusOr<gemini::BatchJob> job) {
          if (!job.ok()) return self->Fail(ToCallerStatus(job.status()));
          const auto& record = self->context_.files.record;
          CountBatch(record, self->header_.task(), self->model_, telemetry::BatchEvent::kJobCreated,
                     1);
          CountBatch(record, self->header_.task(), self->model_, telemetry::BatchEvent::kItem,
                     self->items_);
          self->Succeed(ToV1BatchJob(*job));
        }));
  }

  void RequestRead() {
    {
      absl::MutexLock lock(&mu_);
      if (done_ || reading_) return;
      reading_ = true;
      ArmIdleTimerLocked();
    }
    callbacks_.read();
  }

  // The caller is idle only while the gateway waits for its next message.
  void ArmIdleTimerLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const absl::Duration idle = context_.files.runtime->options().upload_idle_timeout;
    if (idle <= absl::ZeroDuration()) return;
    const uint64_t read = ++reads_requested_;
    std::weak_ptr<BatchCreate> weak = weak_from_this();
    idle_timer_ = context_.files.runtime->timer().RunAt(context_.files.runtime->timer().Now() + idle, [weak, read] {
      if (auto self = weak.lock()) self->OnIdle(read);
    });
  }

  void DisarmIdleTimerLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (idle_timer_ == 0) return;
    context_.files.runtime->timer().Cancel(idle_timer_);
    idle_timer_ = 0;
  }

  void OnIdle(uint64_t read) {
    {
      absl::MutexLock lock(&mu_);
      if (done_ || !reading_ || read != reads_requested_) return;
      idle_timer_ = 0;
    }
    Fail(WithErrorInfo(absl::DeadlineExceededError(absl::StrCat(
                           "the CreateBatch caller sent nothing for ",
                           absl::FormatDuration(context_.files.runtime->options().upload_idle_timeout),
                           " (the server's --upload_idle_timeout_s); no job was created")),
                       reasons::kUploadIdle));
  }

  void Succeed(v1::BatchJob job) { End(std::move(job)); }
  void Fail(absl::Status status) { End(std::move(status)); }

  void End(absl::StatusOr<v1::BatchJob> result) {
    std::shared_ptr<ResumableUpload> upload;
    {
      absl::MutexLock lock(&mu_);
      if (done_) return;
      done_ = true;
      DisarmIdleTimerLocked();
      upload = upload_;
    }
    if (!result.ok()) {
      stage_->Cancel();
      if (upload) upload->Abort();
    }
    stage_->Clear();
    auto done = std::move(callbacks_.done);
    callbacks_.read = nullptr;
    if (done) done(std::move(result));
  }

  const BatchCreateContext context_;
  const absl::Time deadline_;
  BatchCreateCallbacks callbacks_;
  const std::shared_ptr<StagedCall> stage_ = std::make_shared<StagedCall>();

  // Touched one step at a time (each step starts only after the previous one ended).
  bool have_header_ = false;
  v1::CreateBatchHeader header_;
  std::string model_;
  int items_ = 0;
  absl::flat_hash_set<std::string> keys_;
  SpoolFile spool_;

  absl::Mutex mu_;
  // Set once under mu_ (End reads it from any thread); the steps use it after that.
  std::shared_ptr<ResumableUpload> upload_ ABSL_GUARDED_BY(mu_);

  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t reads_requested_ ABSL_GUARDED_BY(mu_) = 0;
  Timer::Id idle_timer_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

absl::StatusOr<std::string> ValidateBatchHeader(const v1::CreateBatchHeader& header,
                                                const VisionOptions& options) {
  if (header.task() != v1::BATCH_TASK_CAPTION && header.task() != v1::BATCH_TASK_DETECT &&
      header.task() != v1::BATCH_TASK_SEGMENT) {
    return absl::InvalidArgumentError("header.task: CAPTION, DETECT or SEGMENT is required");
  }
  if (header.display_name().size() > kMaxBatchDisplayNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "header.display_name: at most ", kMaxBatchDisplayNameBytes, " bytes"));
  }
  if (ReservedMarkerIn(header.display_name())) {
    return absl::InvalidArgumentError(
        "header.display_name: must not contain \"|vg-\" (reserved for the gateway's tags)");
  }
  if (header.task() == v1::BATCH_TASK_CAPTION) {
    auto model = ChooseModel(header.options(), options);
    if (!model.ok()) return model.status();
    auto fitted = ModelConfigFor(header.options(), *model, TaskDefaults{}, options.cost);
    if (!fitted.ok()) return fitted.status();
    return model;
  }
  // Detect/Segment: the online validator on the header's settings (a placeholder image).
  v1::DetectRequest probe;
  probe.mutable_image()->set_content("-");
  probe.set_prompt(header.prompt());
  probe.set_max_objects(header.max_objects());
  *probe.mutable_options() = header.options();
  probe.set_max_dimension(header.max_dimension());
  const bool segment = header.task() == v1::BATCH_TASK_SEGMENT;
  auto params = ValidateSpatialRequest(probe, segment, options, nullptr);
  if (!params.ok()) return params.status();
  if (segment) {
    auto threshold = MaskThresholdOf(header.threshold());
    if (!threshold.ok()) return threshold.status();
  }
  return params->model;
}

void BuildBatchItem(const FilesContext& files, const VisionOptions& options,
                      const v1::CreateBatchHeader& header,
                    v1::CreateBatchItem item, absl::Time deadline,
                    std::shared_ptr<StagedCall> stage,
                    absl::AnyInvocable<void(absl::StatusOr<BatchItemRequest>)> done) {
  if (header.task() == v1::BATCH_TASK_CAPTION) {
    return BuildCaptionItem(files, options, header, std::move(item), deadline, std::move(stage),
                            std::move(done));
  }
  BuildSpatialItem(files, options, header, std::move(item), deadline, std::move(stage), std::move(done));
}

std::shared_ptr<BatchCreateTask> MakeBatchCreate(const BatchCreateContext& context,
                                                 absl::Time deadline,
                                                 BatchCreateCallbacks callbacks) {
  return std::make_shared<BatchCreate>(context, deadline, std::move(callbacks));
}

}  // namespace vision_gateway::vision
