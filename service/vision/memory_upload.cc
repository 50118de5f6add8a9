#include "service/vision/memory_upload.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "service/common/growing_buffer.h"
#include "service/gemini/sha256.h"
#include "service/vision/file_id.h"
#include "service/vision/resumable_upload.h"
#include "service/vision/upstream_errors.h"

namespace vision_gateway::vision {
namespace {

// Cancelling this cancels the resumable upload.
class AbortUpload final : public gemini::PendingCall {
 public:
  explicit AbortUpload(std::shared_ptr<ResumableUpload> upload) : upload_(std::move(upload)) {}
  void Cancel() override { upload_->Abort(); }

 private:
  std::shared_ptr<ResumableUpload> upload_;
};

// The inline→file switch: bytes in memory → an ACTIVE file.
class MemoryUpload : public std::enable_shared_from_this<MemoryUpload> {
 public:
  MemoryUpload(const FilesContext& context, std::string bytes, std::string mime_type, int width,
               int height, absl::Time deadline, std::shared_ptr<StagedCall> call,
               absl::AnyInvocable<void(absl::StatusOr<gemini::File>)> done)
      : context_(context),
        bytes_(std::move(bytes)),
        mime_type_(std::move(mime_type)),
        width_(width),
        height_(height),
        deadline_(deadline),
        call_(std::move(call)),
        done_(std::move(done)),
        sha256_(gemini::Sha256::HexOf(bytes_)) {}

  void Begin() {
    auto self = shared_from_this();
    FindFileByHash(context_, sha256_, static_cast<int64_t>(bytes_.size()), deadline_, call_,
                   [self](absl::StatusOr<std::optional<gemini::File>> found) {
                     if (!found.ok()) return self->Done(found.status());
                     if (found->has_value()) return self->Done(**std::move(found));
                     self->Open();
                   });
  }

 private:
  void Open() {
    upload_ = std::make_shared<ResumableUpload>(context_.runtime->gemini(), context_.runtime->timer(), deadline_,
                                                context_.record, context_.runtime->detached(),
                                                context_.runtime->options().max_retry_delay);
    call_->SetStage(std::make_shared<AbortUpload>(upload_));
    gemini::StartUploadRequest request;
    request.size_bytes = static_cast<int64_t>(bytes_.size());
    request.mime_type = mime_type_;
    request.name = absl::StrCat("files/", NewFileId(width_, height_, context_.owner_tag));
    auto self = shared_from_this();
    upload_->Start(std::move(request), [self](absl::Status status) {
      if (!status.ok()) return self->Done(ToCallerStatus(std::move(status)));
      self->Next();
    });
  }

  void Next() {
    const int64_t granularity = upload_->granularity();
    const int64_t remaining = static_cast<int64_t>(bytes_.size()) - sent_;
    const bool last = remaining <= granularity;
    const int64_t size = last ? remaining : granularity;
    auto chunk =
        GrowingBuffer::Of(bytes_.substr(static_cast<size_t>(sent_), static_cast<size_t>(size)));
    sent_ += size;
    auto self = shared_from_this();
    upload_->Send(std::move(chunk), last, [self, last](absl::StatusOr<gemini::File> file) {
      if (!file.ok()) return self->Done(ToCallerStatus(file.status()));
      if (!last) return self->Next();
      self->bytes_.clear();
      self->bytes_.shrink_to_fit();
      if (file->state == "ACTIVE") {
        self->context_.runtime->hashes().Put(self->context_.owner_tag, self->sha256_, *file);
        return self->Done(*std::move(file));
      }
      AwaitActiveFile(self->context_, file->name, self->deadline_, self->call_,
                      [self](absl::StatusOr<gemini::File> active) {
                        if (active.ok()) {
                          self->context_.runtime->hashes().Put(self->context_.owner_tag, self->sha256_,
                                                     *active);
                        }
                        self->Done(std::move(active));
                      });
    });
  }

  void Done(absl::StatusOr<gemini::File> result) {
    auto done = std::move(done_);
    if (done) done(std::move(result));
  }

  const FilesContext context_;
  std::string bytes_;
  const std::string mime_type_;
  const int width_;
  const int height_;
  const absl::Time deadline_;
  std::shared_ptr<StagedCall> call_;
  absl::AnyInvocable<void(absl::StatusOr<gemini::File>)> done_;
  const std::string sha256_;
  std::shared_ptr<ResumableUpload> upload_;
  int64_t sent_ = 0;
};

}  // namespace

void UploadBytes(const FilesContext& context, std::string bytes, std::string mime_type,
                 int width, int height, absl::Time deadline, std::shared_ptr<StagedCall> call,
                 absl::AnyInvocable<void(absl::StatusOr<gemini::File>)> done) {
  std::make_shared<MemoryUpload>(context, std::move(bytes), std::move(mime_type), width, height,
                                 deadline, std::move(call), std::move(done))
      ->Begin();
}

}  // namespace vision_gateway::vision
