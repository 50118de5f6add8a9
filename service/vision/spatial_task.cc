#include "service/vision/spatial_task.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "service/common/error_reasons.h"
#include "service/common/log.h"
#include "service/common/status_details.h"
#include "service/image/binary_mask.h"
#include "service/image/coco_rle.h"
#include "service/image/image_probe.h"
#include "service/image/mask_codec.h"
#include "service/image/polygon.h"
#include "service/vision/file_id.h"
#include "service/vision/geometry.h"
#include "service/vision/upload_task.h"
#include "service/vision/json_array_parser.h"
#include "service/vision/cost_guard.h"
#include "service/vision/model_family.h"
#include "service/vision/model_options.h"
#include "service/vision/spatial_item.h"
#include "service/vision/upstream_errors.h"

namespace vision_gateway::vision {
namespace {

constexpr size_t kMaxPromptBytes = 64 * 1024;
// How much of the model's text an MODEL_OUTPUT_INVALID error quotes.
constexpr size_t kExcerptBytes = 200;

// Drops a UTF-8 sequence cut off at the end of `text` (proto string fields must be valid UTF-8).
void TrimToUtf8Boundary(std::string& text) {
  size_t end = text.size();
  size_t start = end;  // start of the last sequence
  while (start > 0 && (static_cast<unsigned char>(text[start - 1]) & 0xC0) == 0x80) --start;
  if (start == 0) return;
  const unsigned char lead = static_cast<unsigned char>(text[start - 1]);
  const size_t length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  if (end - (start - 1) < length) text.resize(start - 1);
}

struct SpatialParams {
  bool segment = false;
  std::string model;
  int max_objects = kDefaultMaxObjects;
  double threshold = kDefaultMaskThreshold;
  int max_dimension = 0;
  int64_t max_pixels = 0;
  std::string file_name;  // "files/<id>" when the image is a file reference
  std::optional<FilesContext> files;  // a copy: the server's is per call
  int64_t max_inline_bytes = 0;
  SpatialItemLimits item_limits;
  gemini::GenerateContentRequest upstream;  // everything but the image part
  std::string part_media_resolution;        // set on the image part (model_family.h)
  std::shared_ptr<RerouteReporter> reroutes;  // VisionOptions::reroutes
};

std::string SystemInstruction(bool segment, int max_objects) {
  if (segment) {
    return absl::StrFormat(
        "Return segmentation masks as a JSON array of objects. Each object has the 2D bounding "
        "box in the key \"box_2d\" as [ymin, xmin, ymax, xmax] normalized to 0-1000, the "
        "segmentation mask in the key \"mask\", and a text label in the key \"label\". Never use "
        "code fencing. Limit to %d objects. If an object is present multiple times, give each a "
        "distinctive label.",
        max_objects);
  }
  return absl::StrFormat(
      "Return bounding boxes as a JSON array of objects, each with the key \"box_2d\" as [ymin, "
      "xmin, ymax, xmax] normalized to 0-1000 and the key \"label\". Never return masks or code "
      "fencing. Limit to %d objects. If an object is present multiple times, give each a "
      "distinctive label.",
      max_objects);
}

std::string UserText(bool segment, const std::string& prompt) {
  if (segment) {
    const std::string what = prompt.empty() ? "all of the prominent items" : prompt;
    return absl::StrCat("Give the segmentation masks for ", what,
                        ". Output a JSON list of segmentation masks where each entry contains the "
                        "2D bounding box in the key \"box_2d\", the segmentation mask in key "
                        "\"mask\", and the text label in the key \"label\".");
  }
  const std::string what = prompt.empty() ? "all of the prominent items in the image" : prompt;
  return absl::StrCat("Detect ", what,
                      ". The box_2d should be [ymin, xmin, ymax, xmax] normalized to 0-1000.");
}

std::string ResponseSchema(bool segment, int max_objects) {
  const std::string mask =
      segment ? R"(,"mask":{"anyOf":[{"type":"string"},{"type":"array","items":{"type":"array","items":{"type":"number"}}}]})"
              : "";
  return absl::StrCat(
      R"({"type":"array","maxItems":)", max_objects,
      R"(,"items":{"type":"object","properties":{"box_2d":{"type":"array","items":{"type":"integer"},"minItems":4,"maxItems":4},"label":{"type":"string"})",
      mask, R"(},"required":["box_2d","label")", segment ? R"(,"mask")" : "", "]}}");
}

// Checks what can be checked without touching the image, and builds the upstream request.
template <typename Request>
absl::StatusOr<SpatialParams> Validate(const Request& request, bool segment,
                                       const VisionOptions& options, const FilesContext* files) {
  SpatialParams params;
  params.segment = segment;
  if (files != nullptr) params.files = *files;
  params.max_inline_bytes = options.max_inline_request_bytes;
  if (!request.has_image() || request.image().source_case() == v1::Image::SOURCE_NOT_SET) {
    return absl::InvalidArgumentError("image: required (set image.content or image.file)");
  }
  if (request.image().source_case() == v1::Image::kFile) {
    if (files == nullptr) {
      return absl::InvalidArgumentError("image.file: file references are not available here");
    }
    auto name = FileNameOf(request.image().file(), "image.file", options);
    if (!name.ok()) return name.status();
    params.file_name = *std::move(name);
  }
  if (request.prompt().size() > kMaxPromptBytes) {
    return absl::InvalidArgumentError(absl::StrCat("prompt: at most ", kMaxPromptBytes, " bytes"));
  }
  if (request.max_objects() < 0 || request.max_objects() > kMaxMaxObjects) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_objects: must be between 0 (default ", kDefaultMaxObjects, ") and ",
                     kMaxMaxObjects));
  }
  params.max_objects = request.max_objects() == 0 ? kDefaultMaxObjects : request.max_objects();
  if (request.max_dimension() < 0) {
    return absl::InvalidArgumentError("max_dimension: must not be negative");
  }
  params.max_dimension =
      request.max_dimension() > 0 ? request.max_dimension() : options.default_max_dimension;
  params.max_pixels = options.max_image_pixels;
  if (absl::Status s = CheckImageBytes(static_cast<int64_t>(request.image().content().size()),
                                       options.cost);
      !s.ok()) {
    return s;
  }
  params.item_limits = SpatialItemLimits{.max_polygon_points = options.max_polygon_points,
                                         .max_mask_png_pixels = options.max_mask_png_pixels};
  if (static_cast<int64_t>(request.image().content().size()) > options.max_image_bytes) {
    return WithErrorInfo(
        absl::InvalidArgumentError(absl::StrCat("image.content: ", request.image().content().size(),
                                                " bytes; the limit is ", options.max_image_bytes)),
        reasons::kRequestTooLarge, {{"limit", "max_image_bytes"}});
  }

  auto model = ChooseModel(request.options(), options, segment);
  if (!model.ok()) return model.status();
  params.model = *model;
  params.reroutes = options.reroutes;
  auto fitted = ModelConfigFor(request.options(), params.model,
                               TaskDefaults{.temperature = 0.5f, .minimal_thinking = true},
                               options.cost);
  if (!fitted.ok()) return fitted.status();
  params.part_media_resolution = std::move(fitted->part_media_resolution);
  gemini::GenerationConfig* config = &fitted->config;
  config->response_mime_type = "application/json";
  config->response_json_schema = ResponseSchema(segment, params.max_objects);

  gemini::Content system;
  system.parts.emplace_back().text = SystemInstruction(segment, params.max_objects);
  params.upstream.system_instruction = std::move(system);
  params.upstream.generation_config = std::move(*config);
  gemini::Content& user = params.upstream.contents.emplace_back();
  user.role = "user";
  user.parts.emplace_back().text = UserText(segment, request.prompt());
  return params;
}

template <typename Response>
constexpr bool kIsSegment = std::is_same_v<Response, v1::SegmentResponse>;

// One Detect or Segment call: prepares the image, then turns model text into objects.
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
        record_(std::move(record)) {}

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
    width_ = prepared->width;
    height_ = prepared->height;
    Response info;
    info.mutable_image_info()->set_width(width_);
    info.mutable_image_info()->set_height(height_);
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
    width_ = id.width;
    height_ = id.height;
    auto self = this->shared_from_this();
    AwaitActiveFile(params_.files->WithRecord(record_), params_.file_name, deadline_, pre_,
                    [self](absl::StatusOr<gemini::File> file) {
                      if (!file.ok()) {
                      self->pre_->Clear();
                      return self->callbacks_.on_done(file.status());
                    }
                      Response info;
                      v1::ImageInfo* image_info = info.mutable_image_info();
                      image_info->set_width(self->width_);
                      image_info->set_height(self->height_);
                      image_info->set_mime_type(file->mime_type);
                      image_info->set_size_unknown(self->width_ == 0);
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
              self->Post([self, chunk = std::move(chunk)] { self->OnChunk(chunk); });
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
      upstream = gemini_.StreamGenerateContent(params_.model, std::move(params_.upstream),
                                               gemini::CallOptions{.deadline = deadline_,
                                                                   .record = record_},
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
    LogError("Detect/Segment result processing failed: %s", what);
    if (done_reported_) {
      // OnDone itself threw: end the call if it had not been ended yet.
      if (!on_done_called_) {
        ReportDone(WithErrorInfo(absl::InternalError("the gateway could not finish the answer"),
                                 reasons::kInternalError));
      }
      return;
    }
    if (failure_.ok()) {
      failure_ = WithErrorInfo(
          absl::InternalError("the gateway could not process the model's answer (out of memory?)"),
          reasons::kInternalError);
    }
    CancelUpstream();
  }

  void CancelUpstream() {
    std::shared_ptr<gemini::PendingCall> upstream;
    {
      absl::MutexLock lock(&mu_);
      upstream = upstream_;
    }
    if (upstream) upstream->Cancel();
  }

  void ReportDone(absl::Status status) {
    on_done_called_ = true;
    callbacks_.on_done(std::move(status));
  }

  // Upstream results are processed one at a time, in order (Post).
  void OnChunk(const gemini::GenerateContentResponse& chunk) {
    if (!chunk.candidates.empty() && !chunk.candidates.front().finish_reason.empty()) {
      finish_reason_ = chunk.candidates.front().finish_reason;
    }
    if (chunk.usage_metadata) usage_ = *chunk.usage_metadata;
    if (!chunk.model_version.empty()) model_version_ = chunk.model_version;
    if (!failure_.ok()) return;

    const std::string text = gemini::AnswerText(chunk);
    if (excerpt_.size() < kExcerptBytes) {
      excerpt_.append(text, 0, std::min(text.size(), kExcerptBytes - excerpt_.size()));
      if (excerpt_.size() == kExcerptBytes) TrimToUtf8Boundary(excerpt_);
    }
    absl::Status fed =
        parser_.Feed(text, [this](std::string_view element) { OnElement(element); });
    if (!fed.ok()) {
      failure_ = WithErrorInfo(absl::InternalError(absl::StrCat(
                                   "the model's answer could not be parsed: ", fed.message())),
                               "MODEL_OUTPUT_INVALID");
      CancelUpstream();
    }
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
    done_reported_ = true;
    if (!failure_.ok()) {
      ReportDone(failure_);
      return;
    }
    if (!status.ok()) {
      ReportDone(ToCallerStatus(std::move(status)));
      return;
    }
    if (!parser_.array_started()) {
      ReportDone(WithErrorInfo(
          absl::InternalError("the model's answer holds no JSON array of objects"),
          "MODEL_OUTPUT_INVALID", {{"finish_reason", finish_reason_}, {"excerpt", excerpt_}}));
      return;
    }
    Response summary_message;
    v1::Summary* summary = summary_message.mutable_summary();
    summary->set_count(emitted_);
    summary->set_dropped(dropped_);
    summary->set_finish_reason(finish_reason_);
    summary->set_model_version(model_version_);
    if (without_mask_ > 0) {
      summary->set_without_mask(without_mask_);
      std::vector<std::string> reasons;
      for (const auto& [why, count] : mask_problems_) {
        reasons.push_back(absl::StrCat("mask ", why, " (", count, ")"));
      }
      summary->set_without_mask_reason(absl::StrCat(
          absl::StrJoin(reasons, ", "), "; model ",
          model_version_.empty() ? params_.model : model_version_,
          " returned boxes without usable masks (try --segment_model or a model that returns "
          "masks)"));
    }
    summary->set_model_rerouted(
        CheckRerouted(params_.reroutes.get(), params_.model, model_version_));
    *summary->mutable_usage() = ToUsage(usage_);
    callbacks_.on_response(std::move(summary_message));
    ReportDone(absl::OkStatus());
  }

  void OnElement(std::string_view element) {
    auto item = ParseSpatialItem(element, kIsSegment<Response>, params_.item_limits);
    if (!item.ok()) {
      // A box whose mask is unusable (the item parsed up to its mask): counted apart, so that
      // the Summary says how many objects came without a mask and why.
      constexpr std::string_view kDegenerate = "degenerate mask: ";
      const std::string_view message(item.status().message().data(),
                                     item.status().message().size());
      if (kIsSegment<Response> && message.substr(0, kDegenerate.size()) == kDegenerate) {
        return WithoutMask(std::string(message.substr(kDegenerate.size())));
      }
      return Drop(telemetry::DropReason::kMalformed);
    }
    if (emitted_ >= params_.max_objects) return Drop(telemetry::DropReason::kOverLimit);
    const std::optional<NormBox> norm = NormalizeBox(item->box_2d);
    if (!norm) return Drop(telemetry::DropReason::kInvalidBox);
    if (width_ == 0 || height_ == 0) {
      // A file of unknown size: the label and the normalized box only (no pixel geometry).
      if (norm->x_max <= norm->x_min || norm->y_max <= norm->y_min) {
        return Drop(telemetry::DropReason::kEmptyBox);
      }
      Response response;
      if constexpr (kIsSegment<Response>) {
        FillNormalized(*item, *norm, *response.mutable_mask());
      } else {
        FillNormalized(*item, *norm, *response.mutable_detection());
      }
      ++emitted_;
      if (record_) record_->AddObjects(1);
      callbacks_.on_response(std::move(response));
      return;
    }
    const PixelBox box = ToPixelBox(*norm, width_, height_);
    if (box.x_max <= box.x_min || box.y_max <= box.y_min) {
      return Drop(telemetry::DropReason::kEmptyBox);
    }
    Response response;
    if constexpr (kIsSegment<Response>) {
      v1::Mask* mask = response.mutable_mask();
      if (!FillMask(*item, box, *mask)) return WithoutMask("mask empty or undecodable");
      FillObject(*item, *norm, box, *mask);
    } else {
      FillObject(*item, *norm, box, *response.mutable_detection());
    }
    ++emitted_;
    if (record_) record_->AddObjects(1);
    callbacks_.on_response(std::move(response));
  }

  void Drop(telemetry::DropReason reason) {
    ++dropped_;
    if (record_) record_->AddDropped(reason);
  }

  // Segment: an object with a box but no usable mask (dropped, and counted by reason; the
  // reasons come from a fixed set, spatial_item.h).
  void WithoutMask(std::string why) {
    ++without_mask_;
    auto it = std::find_if(mask_problems_.begin(), mask_problems_.end(),
                           [&why](const auto& entry) { return entry.first == why; });
    if (it == mask_problems_.end()) {
      mask_problems_.emplace_back(std::move(why), 1);
    } else {
      ++it->second;
    }
    Drop(telemetry::DropReason::kDegenerateMask);
  }

  template <typename Object>
  void FillNormalized(const SpatialItem& item, const NormBox& norm, Object& object) {
    object.set_index(emitted_);
    object.set_label(item.label);
    v1::NormalizedBox* normalized = object.mutable_normalized_box();
    normalized->set_y_min(norm.y_min);
    normalized->set_x_min(norm.x_min);
    normalized->set_y_max(norm.y_max);
    normalized->set_x_max(norm.x_max);
  }

  template <typename Object>
  void FillObject(const SpatialItem& item, const NormBox& norm, const PixelBox& box,
                  Object& object) {
    object.set_index(emitted_);
    object.set_label(item.label);
    v1::BoundingBox* pixels = object.mutable_box();
    pixels->set_x_min(box.x_min);
    pixels->set_y_min(box.y_min);
    pixels->set_x_max(box.x_max);
    pixels->set_y_max(box.y_max);
    v1::NormalizedBox* normalized = object.mutable_normalized_box();
    normalized->set_y_min(norm.y_min);
    normalized->set_x_min(norm.x_min);
    normalized->set_y_max(norm.y_max);
    normalized->set_x_max(norm.x_max);
  }

  // Box-sized binary mask from the model's PNG or polygon; false for a degenerate mask.
  bool FillMask(const SpatialItem& item, const PixelBox& box, v1::Mask& out) {
    const image::PixelRect rect{.x = box.x_min,
                                .y = box.y_min,
                                .width = box.x_max - box.x_min,
                                .height = box.y_max - box.y_min};
    image::BinaryMask mask;
    if (item.mask_kind == SpatialItem::MaskKind::kPng) {
      auto decoded = image::MaskFromPng(item.mask_png, rect.width, rect.height, params_.threshold);
      if (!decoded.ok()) return false;
      mask = *std::move(decoded);
    } else if (item.mask_kind == SpatialItem::MaskKind::kPolygon) {
      mask = image::RasterizePolygon(PolygonToPixels(item.polygon, width_, height_), rect);
    } else {
      return false;
    }
    const int64_t area = image::MaskArea(mask);
    if (area == 0) return false;
    out.set_area(area);
    out.set_png(image::EncodeMaskPng(mask));
    out.mutable_rle()->add_size(height_);
    out.mutable_rle()->add_size(width_);
    out.mutable_rle()->set_counts(image::EncodeCocoRle(mask, rect.x, rect.y, width_, height_));
    return true;
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

  // Set before the upstream call starts, then used only by upstream callbacks.
  int width_ = 0;
  int height_ = 0;
  JsonArrayStreamParser parser_;
  int emitted_ = 0;
  int dropped_ = 0;
  int without_mask_ = 0;
  std::vector<std::pair<std::string, int>> mask_problems_;  // reason, count; in arrival order
  std::string finish_reason_;
  std::string model_version_;
  gemini::UsageMetadata usage_;
  std::string excerpt_;
  absl::Status failure_;
  const std::shared_ptr<telemetry::CallRecord> record_;
  bool done_reported_ = false;
  bool on_done_called_ = false;
};

template <typename Response, typename Request>
absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartSpatial(
    gemini::GenerateStub& gemini, ThreadPool& cpu, const VisionOptions& options,
    Request request, absl::Time deadline, TaskCallbacks<Response> callbacks, double threshold,
    std::shared_ptr<telemetry::CallRecord> record, const FilesContext* files) {
  auto params = Validate(request, kIsSegment<Response>, options, files);
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
  const float threshold = request.threshold();
  if (std::isnan(threshold) || threshold < 0.0f || threshold > 1.0f ||
      (threshold == 0.0f && std::signbit(threshold))) {
    return absl::InvalidArgumentError("threshold: must be in (0, 1]; 0 means the default 0.5");
  }
  return StartSpatial(gemini, cpu, options, std::move(request), deadline, std::move(callbacks),
                      threshold == 0.0f ? kDefaultMaskThreshold : threshold, std::move(record),
                      files);
}

}  // namespace vision_gateway::vision
