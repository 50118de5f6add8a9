#include "service/vision/caption_task.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "service/vision/cost_guard.h"
#include "service/vision/file_parts.h"
#include "service/vision/image_parts.h"
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
    return absl::InvalidArgumentError(absl::StrCat("images: at most ",
                                                   options.max_images_per_request,
                                                   " images per request, got ", count));
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

// Turns the upstream chunks of one Caption into CaptionResponses.
class CaptionStream {
 public:
  explicit CaptionStream(TaskCallbacks<v1::CaptionResponse> callbacks)
      : callbacks_(std::move(callbacks)) {}

  void OnChunk(gemini::GenerateContentResponse chunk) {
    v1::CaptionResponse out;
    out.set_text(gemini::AnswerText(chunk));
    std::string finish;
    if (!chunk.candidates.empty()) finish = chunk.candidates.front().finish_reason;
    if (chunk.prompt_feedback && !chunk.prompt_feedback->block_reason.empty()) {
      finish = absl::StrCat("PROMPT_BLOCKED:", chunk.prompt_feedback->block_reason);
    }
    if (!finish.empty()) {
      out.set_finish_reason(finish);
      out.set_model_version(chunk.model_version);
      if (chunk.usage_metadata) *out.mutable_usage() = ToUsage(*chunk.usage_metadata);
      finished_ = true;
    }
    if (out.text().empty() && !finished_) return;  // e.g. a chunk with only a thought
    callbacks_.on_response(std::move(out));
  }

  void OnDone(absl::Status status) { callbacks_.on_done(ForCaller(std::move(status))); }

 private:
  TaskCallbacks<v1::CaptionResponse> callbacks_;
  bool finished_ = false;
};

// Starts `start` with the parts made ready (file_parts.h), or at once when nothing needs it.
absl::StatusOr<std::shared_ptr<gemini::PendingCall>> WithResolvedParts(
    const FilesContext* files, gemini::Content content, absl::Time deadline,
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
  if (!NeedsResolving(content.parts, *files->options)) return start(std::move(content));
  auto call = std::make_shared<StagedCall>();
  std::string role = content.role;
  ResolveParts(*files, std::move(content.parts), deadline, call,
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

absl::StatusOr<gemini::Content> BuildCaptionContent(v1::CaptionRequest& request,
                                                    const VisionOptions& options) {
  return BuildContent(*request.mutable_images(), request.prompt(), options);
}

absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartCaption(
    gemini::GeminiClient& gemini, const VisionOptions& options, v1::CaptionRequest request,
    absl::Time deadline, TaskCallbacks<v1::CaptionResponse> callbacks,
    std::shared_ptr<telemetry::CallRecord> record, const FilesContext* files) {
  auto model = ResolveModel(request.options(), options.default_model);
  if (!model.ok()) return model.status();
  if (absl::Status s = CheckModelAllowed(*model, options.cost); !s.ok()) return s;
  auto config = ToGenerationConfig(request.options(), *model, TaskDefaults{});
  if (!config.ok()) return config.status();
  if (absl::Status s = ApplyCostCaps(*model, options.cost, *config); !s.ok()) return s;
  auto content = BuildCaptionContent(request, options);
  if (!content.ok()) return content.status();

  auto stream = std::make_shared<CaptionStream>(std::move(callbacks));
  return WithResolvedParts(
      files, *std::move(content), deadline,
      [&gemini, model = *model, config = *std::move(config), deadline, stream,
       record = std::move(record)](gemini::Content ready) mutable {
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
            gemini::CallOptions{.deadline = deadline, .record = std::move(record)},
            std::move(observer));
      },
      [stream](absl::Status status) { stream->OnDone(std::move(status)); });
}

absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartCountTokens(
    gemini::GeminiClient& gemini, const VisionOptions& options, v1::CountTokensRequest request,
    absl::Time deadline, absl::AnyInvocable<void(absl::StatusOr<v1::CountTokensResponse>)> done,
    std::shared_ptr<telemetry::CallRecord> record, const FilesContext* files) {
  auto model = ResolveModel(request.options(), options.default_model);
  if (!model.ok()) return model.status();
  if (absl::Status s = CheckModelAllowed(*model, options.cost); !s.ok()) return s;
  // Sizes first: building the content moves the image bytes out of the request.
  int64_t image_tokens = 0;
  for (const v1::Image& image : request.images()) {
    image_tokens += EstimateImageTokensOf(image);
  }
  auto content = BuildContent(*request.mutable_images(), request.prompt(), options);
  if (!content.ok()) return content.status();

  auto shared_done = std::make_shared<
      absl::AnyInvocable<void(absl::StatusOr<v1::CountTokensResponse>)>>(std::move(done));
  return WithResolvedParts(
      files, *std::move(content), deadline,
      [&gemini, model = *model, deadline, image_tokens, shared_done,
       record = std::move(record)](gemini::Content ready) mutable {
        gemini::CountTokensRequest upstream;
        upstream.contents.push_back(std::move(ready));
        return gemini.CountTokens(
            model, std::move(upstream),
            gemini::CallOptions{.deadline = deadline, .record = std::move(record)},
            [image_tokens, shared_done](absl::StatusOr<gemini::CountTokensResponse> result) {
              if (!result.ok()) return (*shared_done)(ForCaller(result.status()));
              v1::CountTokensResponse out;
              out.set_total_tokens(result->total_tokens);
              out.set_estimated_image_tokens(static_cast<int32_t>(image_tokens));
              (*shared_done)(std::move(out));
            });
      },
      [shared_done](absl::Status status) { (*shared_done)(std::move(status)); });
}

}  // namespace vision_gateway::vision
