#include "service/vision/caption_task.h"

#include <algorithm>
#include <cstdint>
#include <exception>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "service/common/error_reasons.h"
#include "service/common/log.h"
#include "service/common/status_details.h"
#include "service/gemini/json_codec.h"
#include "service/vision/cost_guard.h"
#include "service/vision/file_parts.h"
#include "service/vision/image_parts.h"
#include "service/vision/model_family.h"
#include "service/vision/model_options.h"
#include "service/vision/token_estimate.h"
#include "service/vision/upstream_errors.h"

namespace vision_gateway::vision {
namespace {

// Limits on what a caller may send besides images.
constexpr size_t kMaxPromptBytes = 256 * 1024;

absl::Status CheckImageCount(int count, const VisionOptions& options) {
  if (count == 0) return absl::InvalidArgumentError("images: at least one image is required");
  if (count > options.max_images_per_request) {
    return WithErrorInfo(absl::InvalidArgumentError(absl::StrCat(
                             "images: at most ", options.max_images_per_request,
                             " images per request, got ", count)),
                         reasons::kRequestTooLarge, {{"limit", "max_images_per_request"}});
  }
  return absl::OkStatus();
}

absl::StatusOr<gemini::Content> BuildContent(google::protobuf::RepeatedPtrField<v1::Image>& images,
                                             const std::string& prompt,
                                             const VisionOptions& options) {
  if (absl::Status s = CheckImageCount(images.size(), options); !s.ok()) return s;
  int64_t image_bytes = 0;
  for (const v1::Image& image : images) image_bytes += image.content().size();
  if (absl::Status s = CheckImageBytes(image_bytes, options.cost); !s.ok()) return s;
  if (prompt.size() > kMaxPromptBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt: at most ", kMaxPromptBytes, " bytes, got ", prompt.size()));
  }
  // Sizes before any work: each image, and the whole request as the upstream body will carry it
  // (base64 is 4/3 of the bytes), so nothing is encoded only to be refused.
  int64_t inline_bytes = 0;
  for (int i = 0; i < images.size(); ++i) {
    const int64_t size = static_cast<int64_t>(images[i].content().size());
    if (size > options.max_image_bytes) {
      return WithErrorInfo(absl::InvalidArgumentError(absl::StrCat(
                               "images[", i, "].content: ", size, " bytes; the limit is ",
                               options.max_image_bytes)),
                           reasons::kRequestTooLarge, {{"limit", "max_image_bytes"}});
    }
    inline_bytes += size;
  }
  constexpr int64_t kEnvelopeBytes = 64 * 1024;  // JSON around the parts, generously
  const int64_t body_bytes = (inline_bytes + 2) / 3 * 4 + static_cast<int64_t>(prompt.size()) +
                             kEnvelopeBytes * (1 + images.size() / 64);
  if (body_bytes > static_cast<int64_t>(gemini::kDefaultMaxJsonBodyBytes)) {
    return WithErrorInfo(absl::InvalidArgumentError(absl::StrCat(
                             "images: ", inline_bytes, " bytes in all; encoded for Gemini that is "
                             "over the ", gemini::kDefaultMaxJsonBodyBytes,
                             "-byte request limit; send fewer or smaller images")),
                         reasons::kRequestTooLarge, {{"limit", "upstream_request_bytes"}});
  }
  gemini::Content content;
  content.role = "user";
  content.parts.reserve(images.size() + 1);
  for (int i = 0; i < images.size(); ++i) {
    auto part = ToImagePart(images[i], absl::StrCat("images[", i, "]"), options);
    if (!part.ok()) return part.status();
    content.parts.push_back(*std::move(part));
  }
  gemini::Part text;
  text.text = prompt.empty() ? kDefaultCaptionPrompt : prompt;
  content.parts.push_back(std::move(text));
  return content;
}

// Starts `start` with the parts made ready (file_parts.h), or at once when nothing needs it.
absl::StatusOr<std::shared_ptr<gemini::PendingCall>> WithResolvedParts(
    const FilesContext* files, std::shared_ptr<telemetry::CallRecord> record,
    gemini::Content content, absl::Time deadline,
    absl::AnyInvocable<std::shared_ptr<gemini::PendingCall>(gemini::Content)> start,
    absl::AnyInvocable<void(absl::Status)> fail) {
  if (files == nullptr) {
    for (const gemini::Part& part : content.parts) {
      if (part.file_data) {
        return absl::InvalidArgumentError("file references are not available here");
      }
    }
    return start(std::move(content));
  }
  if (!NeedsResolving(content.parts, files->runtime->options())) return start(std::move(content));
  auto call = std::make_shared<StagedCall>();
  std::string role = content.role;
  ResolveParts(files->WithRecord(std::move(record)), std::move(content.parts), deadline, call,
               [call, role = std::move(role), start = std::move(start), fail = std::move(fail)](
                   absl::StatusOr<std::vector<gemini::Part>> parts) mutable {
                 if (!parts.ok()) {
                   call->Clear();
                   return fail(parts.status());
                 }
                 gemini::Content ready;
                 ready.role = std::move(role);
                 ready.parts = *std::move(parts);
                 call->SetStage(start(std::move(ready)));
               });
  return call;
}

}  // namespace

CaptionStream::CaptionStream(TaskCallbacks<v1::CaptionResponse> callbacks, std::string model,
                             std::shared_ptr<RerouteReporter> reroutes)
    : callbacks_(std::move(callbacks)), model_(std::move(model)), reroutes_(std::move(reroutes)) {}

void CaptionStream::OnChunk(gemini::GenerateContentResponse chunk) {
  v1::CaptionResponse out;
  out.set_text(gemini::AnswerText(chunk));
  std::string finish;
  if (!chunk.candidates.empty()) finish = chunk.candidates.front().finish_reason;
  if (!finish.empty()) {
    out.set_finish_reason(finish);
    out.set_model_version(chunk.model_version);
    out.set_model_rerouted(CheckRerouted(reroutes_.get(), model_, chunk.model_version));
    if (chunk.usage_metadata) {
      // A cached answer billed this call nothing: the original usage is reported apart.
      *(chunk.cached ? out.mutable_cached_usage() : out.mutable_usage()) =
          ToUsage(*chunk.usage_metadata);
    }
    out.set_cached(chunk.cached);
    finished_ = true;
  }
  if (out.text().empty() && !finished_) return;  // e.g. a chunk with only a thought
  callbacks_.on_response(std::move(out));
}

void CaptionStream::OnDone(absl::Status status) {
  callbacks_.on_done(ToCallerStatus(std::move(status)));
}

absl::StatusOr<gemini::Content> BuildCaptionContent(v1::CaptionRequest& request,
                                                    const VisionOptions& options) {
  return BuildContent(*request.mutable_images(), request.prompt(), options);
}

absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartCaption(
    gemini::GenerateStub& gemini, const VisionOptions& options, v1::CaptionRequest request,
    absl::Time deadline, TaskCallbacks<v1::CaptionResponse> callbacks,
    std::shared_ptr<telemetry::CallRecord> record, const FilesContext* files) {
  auto model = ChooseModel(request.options(), options);
  if (!model.ok()) return model.status();
  auto fitted = ModelConfigFor(request.options(), *model, TaskDefaults{}, options.cost);
  if (!fitted.ok()) return fitted.status();
  auto content = BuildCaptionContent(request, options);
  if (!content.ok()) return content.status();
  SetPartMediaResolution(fitted->part_media_resolution, *content);

  auto stream = std::make_shared<CaptionStream>(std::move(callbacks), *model, options.reroutes);
  return WithResolvedParts(
      files, record, *std::move(content), deadline,
      [&gemini, model = *model, config = std::move(fitted->config), deadline, stream,
       record = std::move(record),
       cache = ToCacheControl(request.options().cache())](gemini::Content ready) mutable {
        gemini::GenerateContentRequest upstream;
        upstream.contents.push_back(std::move(ready));
        upstream.generation_config = std::move(config);
        gemini::StreamObserver observer{
            .on_chunk = [stream](gemini::GenerateContentResponse chunk) {
              stream->OnChunk(std::move(chunk));
            },
            .on_done = [stream](absl::Status status) { stream->OnDone(std::move(status)); },
        };
        return gemini.StreamGenerateContent(
            model, std::move(upstream),
            gemini::CallOptions{.deadline = deadline,
                                .record = std::move(record),
                                .cache = cache,
                                .task = "caption"},
            std::move(observer));
      },
      [stream](absl::Status status) { stream->OnDone(std::move(status)); });
}

namespace {

// One CountTokens call: probes and builds on the CPU pool, then counts upstream.
class CountTokensCall final : public gemini::PendingCall,
                              public std::enable_shared_from_this<CountTokensCall> {
 public:
  using Done = absl::AnyInvocable<void(absl::StatusOr<v1::CountTokensResponse>)>;

  CountTokensCall(gemini::GenerateStub& gemini, const VisionOptions& options, std::string model,
                  std::string part_media_resolution, v1::CountTokensRequest request,
                  absl::Time deadline, Done done, std::shared_ptr<telemetry::CallRecord> record,
                  const FilesContext* files)
      : gemini_(gemini),
        options_(options),
        model_(std::move(model)),
        part_media_resolution_(std::move(part_media_resolution)),
        request_(std::move(request)),
        deadline_(deadline),
        done_(std::move(done)),
        record_(std::move(record)),
        files_(files != nullptr ? std::optional<FilesContext>(*files) : std::nullopt) {}

  // On the CPU pool.
  void Run() {
    // An exception (bad_alloc...) fails this call, not the process; any exception, or the call
    // would never finish (the pool's own guard only logs).
    std::string what = "unknown exception";
    try {
      Prepare();
      return;
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    LogError("CountTokens preparation failed: %s", what);
    Finish(WithErrorInfo(absl::InternalError("the gateway could not read the images; retry"),
                         reasons::kInternalError));
  }

  void Cancel() override {
    std::shared_ptr<gemini::PendingCall> upstream;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      upstream = upstream_;
    }
    if (upstream) upstream->Cancel();
  }

 private:
  void Prepare() {
    if (IsCancelled()) return Finish(absl::CancelledError("cancelled"));
    if (absl::Now() >= deadline_) {
      return Finish(WithOutcome(absl::DeadlineExceededError("deadline passed while queued"),
                                reasons::kDeadlineExceeded));
    }
    // Sizes first: building the content moves the image bytes out of the request.
    int64_t image_tokens = 0;
    for (const v1::Image& image : request_.images()) {
      image_tokens = std::min<int64_t>(image_tokens + EstimateImageTokensOf(image),
                                       std::numeric_limits<int32_t>::max());
    }
    auto content = BuildContent(*request_.mutable_images(), request_.prompt(), options_);
    if (!content.ok()) return Finish(content.status());
    // countTokens carries no generationConfig: the resolution goes per part where the model's
    // family takes it there (model_family.h), else it is left to the model's default.
    SetPartMediaResolution(part_media_resolution_, *content);
    auto self = shared_from_this();
    // File references are checked (and waited for) first, as for Caption (file_parts.h).
    auto started = WithResolvedParts(
        files_.has_value() ? &*files_ : nullptr, record_, *std::move(content), deadline_,
        [self, image_tokens](gemini::Content ready) {
          gemini::CountTokensRequest upstream;
          upstream.contents.push_back(std::move(ready));
          return self->gemini_.CountTokens(
              self->model_, std::move(upstream),
              gemini::CallOptions{.deadline = self->deadline_, .record = self->record_},
              [self, image_tokens](absl::StatusOr<gemini::CountTokensResponse> result) {
                if (!result.ok()) return self->Finish(ToCallerStatus(result.status()));
                v1::CountTokensResponse out;
                out.set_total_tokens(result->total_tokens);
                out.set_estimated_image_tokens(static_cast<int32_t>(image_tokens));
                self->Finish(std::move(out));
              });
        },
        [self](absl::Status status) { self->Finish(ToCallerStatus(std::move(status))); });
    if (!started.ok()) return Finish(ToCallerStatus(started.status()));
    auto call = *std::move(started);
    bool cancel;
    {
      absl::MutexLock lock(&mu_);
      if (!finished_) upstream_ = call;
      cancel = cancelled_ && !finished_;
    }
    if (cancel) call->Cancel();
  }

  bool IsCancelled() {
    absl::MutexLock lock(&mu_);
    return cancelled_;
  }

  void Finish(absl::StatusOr<v1::CountTokensResponse> result) {
    std::shared_ptr<gemini::PendingCall> upstream;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
      upstream = std::move(upstream_);  // no cycle once over
    }
    auto done = std::move(done_);
    if (done) done(std::move(result));
  }

  gemini::GenerateStub& gemini_;
  const VisionOptions options_;  // a copy: the caller's policy may not outlive the call
  const std::string model_;
  const std::string part_media_resolution_;
  v1::CountTokensRequest request_;
  const absl::Time deadline_;
  Done done_;
  const std::shared_ptr<telemetry::CallRecord> record_;
  // A copy (the server's is per call); empty: file references are refused.
  const std::optional<FilesContext> files_;
  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<gemini::PendingCall> upstream_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartCountTokens(
    gemini::GenerateStub& gemini, ThreadPool& cpu, const VisionOptions& options,
    v1::CountTokensRequest request, absl::Time deadline,
    absl::AnyInvocable<void(absl::StatusOr<v1::CountTokensResponse>)> done,
    std::shared_ptr<telemetry::CallRecord> record, const FilesContext* files) {
  // The count first: nothing looks at 100,000 images to refuse them.
  if (absl::Status s = CheckImageCount(request.images_size(), options); !s.ok()) return s;
  auto model = ChooseModel(request.options(), options);
  if (!model.ok()) return model.status();
  // The options as the model takes them (refused as a Caption would be); no cost caps: counting
  // spends nothing.
  auto fitted = ModelConfigFor(request.options(), *model, TaskDefaults{}, CostLimits{});
  if (!fitted.ok()) return fitted.status();
  auto call = std::make_shared<CountTokensCall>(
      gemini, options, *std::move(model), std::move(fitted->part_media_resolution),
      std::move(request), deadline, std::move(done), std::move(record), files);
  if (!cpu.TrySchedule([call] { call->Run(); })) {
    return WithRetryInfo(
        WithErrorInfo(absl::ResourceExhaustedError(
                          "the gateway's image preparation queue is full; retry shortly"),
                      reasons::kServerOverloaded),
        absl::Seconds(1));
  }
  return call;
}

}  // namespace vision_gateway::vision
