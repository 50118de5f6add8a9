#include "service/vision/file_parts.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "absl/strings/match.h"
#include "service/image/image_probe.h"
#include "service/vision/memory_upload.h"

namespace vision_gateway::vision {
namespace {

constexpr char kPendingPrefix[] = "files/";

bool IsPendingReference(const gemini::Part& part) {
  return part.file_data.has_value() && absl::StartsWith(part.file_data->file_uri, kPendingPrefix);
}

int64_t InlineBytes(const std::vector<gemini::Part>& parts) {
  int64_t total = 0;
  for (const gemini::Part& part : parts) {
    if (part.inline_data) total += static_cast<int64_t>(part.inline_data->data.size());
  }
  return total;
}

// Which inline parts to upload: the largest first until the rest fits the limit.
std::vector<bool> PartsToOffload(const std::vector<gemini::Part>& parts,
                                 const VisionOptions& options) {
  std::vector<bool> offload(parts.size(), false);
  const int64_t limit = options.max_inline_request_bytes;
  if (limit <= 0) return offload;
  int64_t total = InlineBytes(parts);
  if (total <= limit) return offload;
  std::vector<size_t> order(parts.size());
  std::iota(order.begin(), order.end(), 0);
  auto size_of = [&parts](size_t i) {
    return parts[i].inline_data ? static_cast<int64_t>(parts[i].inline_data->data.size()) : 0;
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return size_of(a) > size_of(b); });
  for (size_t i : order) {
    if (total <= limit || size_of(i) == 0) break;
    offload[i] = true;
    total -= size_of(i);
  }
  return offload;
}

class PartsResolver : public std::enable_shared_from_this<PartsResolver> {
 public:
  PartsResolver(const FilesContext& context, std::vector<gemini::Part> parts, absl::Time deadline,
                std::shared_ptr<StagedCall> call,
                absl::AnyInvocable<void(absl::StatusOr<std::vector<gemini::Part>>)> done)
      : context_(context),
        parts_(std::move(parts)),
        offload_(PartsToOffload(parts_, context.runtime->options())),
        deadline_(deadline),
        call_(std::move(call)),
        done_(std::move(done)) {}

  void Next() {
    while (index_ < parts_.size() && !IsPendingReference(parts_[index_]) && !offload_[index_]) {
      ++index_;
    }
    if (index_ == parts_.size()) return Done(std::move(parts_));
    if (call_->cancelled()) return Done(absl::CancelledError("cancelled"));
    auto self = shared_from_this();
    gemini::Part& part = parts_[index_];
    auto use_file = [self](absl::StatusOr<gemini::File> file) {
      if (!file.ok()) return self->Done(file.status());
      gemini::Part& part = self->parts_[self->index_];
      part.inline_data.reset();
      part.file_data = gemini::FileData{.mime_type = file->mime_type, .file_uri = file->uri};
      ++self->index_;
      self->Next();
    };
    if (IsPendingReference(part)) {
      AwaitActiveFile(context_, part.file_data->file_uri, deadline_, call_, std::move(use_file));
      return;
    }
    gemini::Blob blob = std::move(*part.inline_data);
    part.inline_data.reset();
    int width = 0, height = 0;
    if (auto size = image::ProbeSize(blob.data); size.ok()) {
      width = size->width;
      height = size->height;
    }
    UploadBytes(context_, std::move(blob.data), std::move(blob.mime_type), width, height,
                deadline_, call_, std::move(use_file));
  }

 private:
  void Done(absl::StatusOr<std::vector<gemini::Part>> result) {
    auto done = std::move(done_);
    if (done) done(std::move(result));
  }

  const FilesContext context_;
  std::vector<gemini::Part> parts_;
  const std::vector<bool> offload_;
  const absl::Time deadline_;
  std::shared_ptr<StagedCall> call_;
  absl::AnyInvocable<void(absl::StatusOr<std::vector<gemini::Part>>)> done_;
  size_t index_ = 0;
};

}  // namespace

gemini::Part FileReferencePart(const std::string& name) {
  gemini::Part part;
  part.file_data = gemini::FileData{.mime_type = "", .file_uri = name};
  return part;
}

bool NeedsResolving(const std::vector<gemini::Part>& parts, const VisionOptions& options) {
  if (std::any_of(parts.begin(), parts.end(), IsPendingReference)) return true;
  return options.max_inline_request_bytes > 0 &&
         InlineBytes(parts) > options.max_inline_request_bytes;
}

void ResolveParts(const FilesContext& context, std::vector<gemini::Part> parts,
                  absl::Time deadline, std::shared_ptr<StagedCall> call,
                  absl::AnyInvocable<void(absl::StatusOr<std::vector<gemini::Part>>)> done) {
  std::make_shared<PartsResolver>(context, std::move(parts), deadline, std::move(call),
                                  std::move(done))
      ->Next();
}

}  // namespace vision_gateway::vision
