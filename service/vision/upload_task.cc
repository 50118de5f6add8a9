#include "service/vision/upload_task.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "service/common/log.h"
#include "service/common/error_reasons.h"
#include "service/common/status_details.h"
#include "service/gemini/sha256.h"
#include "service/image/image_probe.h"
#include "service/vision/file_id.h"
#include "service/vision/resumable_upload.h"
#include "service/vision/upload_header.h"
#include "service/vision/upstream_errors.h"

namespace vision_gateway::vision {
namespace {

class StreamingUpload final : public UploadTask,
                              public std::enable_shared_from_this<StreamingUpload> {
 public:
  StreamingUpload(const FilesContext& context, absl::Time deadline, UploadCallbacks callbacks)
      : context_(context),
        deadline_(deadline),
        callbacks_(std::move(callbacks)),
        lookup_(std::make_shared<StagedCall>()) {}

  void Begin() override { RequestRead(); }

  void OnMessage(v1::UploadRequest message) override {
    std::vector<absl::AnyInvocable<void()>> actions;
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
      DisarmIdleTimerLocked();
      if (phase_ == Phase::kDone) return;
      if (phase_ == Phase::kHeader) {
        if (!message.has_header()) {
          FailLocked(absl::InvalidArgumentError(
                         "the first message of an Upload must be the header (UploadHeader)"),
                     actions);
        } else {
          AcceptHeaderLocked(message.header(), actions);
        }
      } else if (message.has_header()) {
        FailLocked(absl::InvalidArgumentError("header: only the first message may carry it"),
                   actions);
      } else {
        received_ += static_cast<int64_t>(message.chunk().size());
        if (received_ > size_bytes_) {
          FailLocked(absl::InvalidArgumentError(absl::StrCat(
                         "more bytes than header.size_bytes (", size_bytes_, ") were sent")),
                     actions);
        } else {
          hasher_.Update(message.chunk());
          // Held (not copied) until it fits into the chunk being assembled.
          pending_ = std::move(*message.mutable_chunk());
          pending_offset_ = 0;
          PumpLocked(actions);
        }
      }
    }
    for (auto& action : actions) action();
  }

  void OnHalfClose() override {
    std::vector<absl::AnyInvocable<void()>> actions;
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
      DisarmIdleTimerLocked();
      if (phase_ == Phase::kDone) return;
      half_closed_ = true;
      if (phase_ == Phase::kHeader) {
        FailLocked(absl::InvalidArgumentError("the Upload stream carried no header"), actions);
      } else if (received_ < size_bytes_) {
        FailLocked(absl::InvalidArgumentError(absl::StrCat(
                       "the stream ended after ", received_, " bytes, but header.size_bytes is ",
                       size_bytes_)),
                   actions);
      } else {
        PumpLocked(actions);
      }
    }
    for (auto& action : actions) action();
  }

  void Cancel() override {
    std::vector<absl::AnyInvocable<void()>> actions;
    {
      absl::MutexLock lock(&mu_);
      if (phase_ == Phase::kDone) return;
      FailLocked(absl::CancelledError("Upload cancelled"), actions);
    }
    for (auto& action : actions) action();
  }

 private:
  enum class Phase { kHeader, kLookup, kSniff, kStarting, kStreaming, kWhole, kFinalizing, kDone };
  using Actions = std::vector<absl::AnyInvocable<void()>>;

  void RequestRead() {
    {
      absl::MutexLock lock(&mu_);
      if (phase_ == Phase::kDone || reading_ || half_closed_) return;
      reading_ = true;
      ArmIdleTimerLocked();
    }
    callbacks_.read();
  }

  // The caller is idle only while the gateway waits for its next message: the clock runs from
  // each read request to its message (not while the gateway itself waits for Gemini).
  void ArmIdleTimerLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const absl::Duration idle = context_.runtime->options().upload_idle_timeout;
    if (idle <= absl::ZeroDuration()) return;
    const uint64_t read = ++reads_requested_;
    std::weak_ptr<StreamingUpload> weak = weak_from_this();
    idle_timer_ = context_.runtime->timer().RunAt(context_.runtime->timer().Now() + idle, [weak, read] {
      if (auto self = weak.lock()) self->OnIdle(read);
    });
  }

  void DisarmIdleTimerLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (idle_timer_ == 0) return;
    context_.runtime->timer().Cancel(idle_timer_);
    idle_timer_ = 0;
  }

  void OnIdle(uint64_t read) {
    Actions actions;
    {
      absl::MutexLock lock(&mu_);
      if (phase_ == Phase::kDone || !reading_ || read != reads_requested_) return;
      idle_timer_ = 0;
      FailLocked(WithErrorInfo(absl::DeadlineExceededError(absl::StrCat(
                                   "the Upload's caller sent nothing for ",
                                   absl::FormatDuration(context_.runtime->options().upload_idle_timeout),
                                   " (the server's --upload_idle_timeout_s); the upload was "
                                   "cancelled and nothing was kept")),
                               reasons::kUploadIdle),
                 actions);
    }
    for (auto& action : actions) action();
  }

  void ReadLocked(Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (reading_ || half_closed_ || read_queued_) return;
    read_queued_ = true;
    auto self = shared_from_this();
    actions.push_back([self] {
      {
        absl::MutexLock lock(&self->mu_);
        self->read_queued_ = false;
      }
      self->RequestRead();
    });
  }

  void AcceptHeaderLocked(const v1::UploadHeader& header, Actions& actions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::StatusOr<UploadHeaderFields> fields =
        CheckUploadHeader(header, context_.runtime->options().max_upload_bytes);
    if (!fields.ok()) return FailLocked(fields.status(), actions);
    sha256_ = std::move(fields->sha256);
    size_bytes_ = fields->size_bytes;
    display_name_ = std::move(fields->display_name);
    declared_mime_ = std::move(fields->mime_type);
    if (sha256_.empty()) {
      phase_ = Phase::kSniff;
      return ReadLocked(actions);
    }
    phase_ = Phase::kLookup;
    auto self = shared_from_this();
    actions.push_back([self] {
      FindFileByHash(self->context_, self->sha256_, self->size_bytes_, self->deadline_,
                     self->lookup_,
                     [self](absl::StatusOr<std::optional<gemini::File>> found) {
                       self->OnLookup(std::move(found));
                     });
    });
  }

  void OnLookup(absl::StatusOr<std::optional<gemini::File>> found) {
    Actions actions;
    {
      absl::MutexLock lock(&mu_);
      lookup_->Clear();
      if (phase_ == Phase::kDone) return;
      if (!found.ok()) {
        FailLocked(found.status(), actions);
      } else if (found->has_value()) {
        // A dedupe hit: the file holds these bytes (FileHolds); the client may stop sending.
        v1::File file = ToV1File(**found, context_.runtime->options().file_tag_key);
        phase_ = Phase::kDone;
        DisarmIdleTimerLocked();
        actions.push_back([self = shared_from_this(), file = std::move(file)]() mutable {
          self->Finish(std::move(file));
        });
      } else {
        phase_ = Phase::kSniff;
        ReadLocked(actions);
      }
    }
    for (auto& action : actions) action();
  }

  // Moves held message bytes into chunk_ until it holds `limit` bytes; true when none are left
  // held. chunk_ gets its capacity once per chunk (never more than the chunk needs).
  bool FillLocked(int64_t limit) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const size_t want = static_cast<size_t>(std::min(limit, size_bytes_ - sent_));
    if (chunk_.capacity() < want) chunk_.reserve(want);
    const size_t room = want > chunk_.size() ? want - chunk_.size() : 0;
    const size_t n = std::min(room, pending_.size() - pending_offset_);
    chunk_.append(pending_, pending_offset_, n);
    pending_offset_ += n;
    if (pending_offset_ < pending_.size()) return false;
    pending_ = std::string();  // freed: at most one message is ever held
    pending_offset_ = 0;
    return true;
  }

  // Issues the next read unless a message is still held.
  void ReadIfEmptyLocked(Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (pending_.empty()) ReadLocked(actions);
  }

  void PumpLocked(Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    switch (phase_) {
      case Phase::kSniff:
        FillLocked(kSniffBytes);
        if (static_cast<int64_t>(chunk_.size()) < std::min(size_bytes_, kSniffBytes)) {
          return ReadIfEmptyLocked(actions);
        }
        return SniffLocked(actions);
      case Phase::kWhole:
        FillLocked(size_bytes_);
        if (received_ < size_bytes_ || !half_closed_) return ReadLocked(actions);
        return ReorientLocked(actions);
      case Phase::kStreaming:
        return StreamLocked(actions);
      default:
        return;  // kLookup/kStarting/kFinalizing: an upstream callback continues
    }
  }

  void SniffLocked(Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::StatusOr<image::ImageFormat> format = image::SniffFormat(chunk_);
    if (!format.ok()) {
      return FailLocked(
          absl::InvalidArgumentError(absl::StrCat(
              "the uploaded bytes: ", format.status().message(),
              declared_mime_.empty() ? "" : absl::StrCat(" (the header said ", declared_mime_, ")"))),
          actions);
    }
    mime_type_ = std::string(image::MimeTypeOf(*format));
    if (!declared_mime_.empty() && declared_mime_ != mime_type_ &&
        !(declared_mime_ == "image/jpg" && mime_type_ == "image/jpeg")) {
      // The sniffed type wins; the contradiction is reported in the answer
      // (File.declared_mime_type).
      contradicted_mime_ = declared_mime_;
    }
    const bool whole = static_cast<int64_t>(chunk_.size()) == size_bytes_;
    absl::StatusOr<image::ImageHeader> header = image::ProbeHeader(chunk_);
    if (header.ok()) {
      if (context_.runtime->options().max_image_pixels > 0 &&
          header->stored_pixels > context_.runtime->options().max_image_pixels) {
        return FailLocked(absl::InvalidArgumentError(absl::StrCat(
                              "image is ", header->upright.width, "x", header->upright.height,
                              " pixels; the limit is ", context_.runtime->options().max_image_pixels)),
                          actions);
      }
      width_ = header->upright.width;
      height_ = header->upright.height;
      if (header->orientation != 1) {
        if (size_bytes_ > context_.runtime->options().max_reorient_upload_bytes) {
          return FailLocked(absl::InvalidArgumentError(absl::StrCat(
                                "the image has EXIF orientation ", header->orientation,
                                " and must be turned upright before upload, which the gateway "
                                "does for images up to ",
                                context_.runtime->options().max_reorient_upload_bytes, " bytes; this one is ",
                                size_bytes_, " (rotate it before uploading)")),
                            actions);
        }
        phase_ = Phase::kWhole;
        return PumpLocked(actions);
      }
    } else if (whole) {
      // All the bytes are here and still no readable header: a corrupt image.
      return FailLocked(absl::InvalidArgumentError(absl::StrCat("the uploaded image: ",
                                                                header.status().message())),
                        actions);
    }  // else: a header beyond the first bytes (e.g. HEIF with 'meta' last): size unknown.
    StartSessionLocked(size_bytes_, actions);
  }

  void StartSessionLocked(int64_t size, Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    phase_ = Phase::kStarting;
    upload_ = std::make_shared<ResumableUpload>(context_.runtime->gemini(), context_.runtime->timer(), deadline_,
                                                context_.record, context_.runtime->detached(),
                                                context_.runtime->options().max_retry_delay);
    gemini::StartUploadRequest request;
    request.size_bytes = size;
    request.mime_type = mime_type_;
    // A file stored upright keeps the client's hash in its display name (file_id.h).
    request.name = absl::StrCat("files/", NewFileId(width_, height_, context_.owner_tag));
    request.display_name =
        reoriented_ ? TagDisplayName(display_name_, request.name, source_sha256_, size_bytes_,
                                     context_.runtime->options().file_tag_key)
                    : display_name_;
    auto self = shared_from_this();
    actions.push_back([self, upload = upload_, request = std::move(request)]() mutable {
      upload->Start(std::move(request), [self](absl::Status status) { self->OnStarted(status); });
    });
  }

  void OnStarted(absl::Status status) {
    Actions actions;
    {
      absl::MutexLock lock(&mu_);
      if (phase_ == Phase::kDone) return;
      if (!status.ok()) {
        FailLocked(ToCallerStatus(std::move(status)), actions);
      } else if (reoriented_) {
        phase_ = Phase::kFinalizing;
        SendFinalLocked(actions);
      } else {
        phase_ = Phase::kStreaming;
        granularity_ = upload_->granularity();
        StreamLocked(actions);
      }
    }
    for (auto& action : actions) action();
  }

  // Non-final chunks are streamed through: as soon as one can start (more than a chunk of bytes
  // is still to come; the final chunk keeps at least one byte), its request goes out with the
  // chunk's full size, and the client's bytes go into its buffer, and upstream from there, as
  // they arrive — receiving a chunk and sending it overlap. Once the chunk is full, at most one
  // more message is read and held until Gemini confirms the chunk (the buffer is kept until
  // then, to resume from). So an upload holds one upstream chunk plus one gRPC message, and a
  // client faster than Gemini is held back by gRPC flow control. A chunk that gets no filling
  // permit (FilesContext::filling_upload_chunks) is assembled whole first, then sent. The final
  // chunk is assembled whole and sent with "finalize" only after the size and hash checks.
  void StreamLocked(Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (sending_ || assembling_) {
      FeedChunkLocked();
      if (assembling_ && current_->complete()) {
        assembling_ = false;
        SendChunkLocked(actions);
      }
      return ReadIfEmptyLocked(actions);
    }
    RecycleChunkLocked();
    const int64_t assembled = static_cast<int64_t>(chunk_.size());  // the sniffed bytes, first
    // Whole granules only (more than one only when Gemini's granularity is smaller than the
    // sniffed first bytes).
    const int64_t n = std::max<int64_t>(1, (assembled + granularity_ - 1) / granularity_) *
                      granularity_;
    if (n < size_bytes_ - sent_) {
      current_ = std::make_shared<GrowingBuffer>(static_cast<size_t>(n), std::move(spare_));
      spare_ = std::string();
      current_->Append(chunk_);
      chunk_ = std::string();
      sent_ += n;
      filling_permit_ = TakeFillingPermitLocked();
      FeedChunkLocked();
      if (filling_permit_ || current_->complete()) {
        SendChunkLocked(actions);
      } else {
        assembling_ = true;
      }
      return ReadIfEmptyLocked(actions);
    }
    if (chunk_.empty() && spare_.capacity() > 0) {
      chunk_ = std::move(spare_);  // the last chunk too lives in the upload's one buffer
      spare_ = std::string();
      chunk_.clear();
    }
    const bool drained = FillLocked(size_bytes_);
    if (drained && received_ == size_bytes_ && half_closed_) {
      const std::string actual = hasher_.FinishHex();
      if (!sha256_.empty() && actual != sha256_) {
        return FailLocked(HashMismatch(actual), actions);
      }
      sha256_ = actual;
      phase_ = Phase::kFinalizing;
      return SendFinalLocked(actions);
    }
    // Room for more (or, with every byte in, a read to see the stream end).
    ReadIfEmptyLocked(actions);
  }

  void SendChunkLocked(Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    sending_ = true;
    auto self = shared_from_this();
    actions.push_back([self, upload = upload_, chunk = current_]() mutable {
      upload->Send(std::move(chunk), false, [self](absl::StatusOr<gemini::File> result) {
        self->OnChunkSent(result.status());
      });
    });
  }

  // Moves the held message's bytes into the current chunk, as far as they fit; the message is
  // freed once all of it is in. A chunk that is full gives its filling permit back.
  void FeedChunkLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (current_ != nullptr) {
      pending_offset_ += current_->Append(std::string_view(pending_).substr(pending_offset_));
      if (current_->complete()) ReturnFillingPermitLocked();
    }
    if (pending_offset_ == pending_.size()) {
      pending_ = std::string();
      pending_offset_ = 0;
    }
  }

  // A permit to send a chunk while it fills (it holds an upstream connection meanwhile); false
  // when max_filling_upload_chunks are filling already.
  bool TakeFillingPermitLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (context_.runtime->options().max_filling_upload_chunks <= 0) return false;  // always assembled
    filling_units_ = context_.runtime->filling_upload_chunks().TryAcquire(1);
    return static_cast<bool>(filling_units_);
  }

  void ReturnFillingPermitLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    filling_permit_ = false;
    filling_units_.Release();
  }

  // The buffer of the chunk Gemini just confirmed holds the next chunk, once the upstream
  // request let go of it (else it is freed and the next chunk gets a new one): an upload then
  // reuses one resident buffer instead of mapping and faulting in a fresh 8 MiB per chunk (a
  // third of the server's CPU on a 1 GiB upload went to those page faults).
  void RecycleChunkLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::shared_ptr<GrowingBuffer> sent = std::move(current_);
    if (sent != nullptr && sent.use_count() == 1) spare_ = sent->TakeStorage();
  }

  absl::Status HashMismatch(const std::string& actual) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return WithErrorInfo(
        absl::DataLossError(absl::StrCat("the uploaded bytes have SHA-256 ", actual,
                                         ", not the header's ", sha256_, "; nothing was kept")),
        "SHA256_MISMATCH");
  }

  void SendFinalLocked(Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::shared_ptr<GrowingBuffer> last = GrowingBuffer::Of(std::move(chunk_));
    chunk_ = std::string();
    current_.reset();
    spare_ = std::string();
    auto self = shared_from_this();
    actions.push_back([self, upload = upload_, last = std::move(last)]() mutable {
      upload->Send(std::move(last), true,
                   [self](absl::StatusOr<gemini::File> file) { self->OnFinal(std::move(file)); });
    });
  }

  void OnChunkSent(absl::Status status) {
    Actions actions;
    {
      absl::MutexLock lock(&mu_);
      sending_ = false;
      if (phase_ == Phase::kDone) return;
      if (!status.ok()) {
        FailLocked(ToCallerStatus(std::move(status)), actions);
      } else {
        StreamLocked(actions);
      }
    }
    for (auto& action : actions) action();
  }

  void OnFinal(absl::StatusOr<gemini::File> file) {
    Actions actions;
    {
      absl::MutexLock lock(&mu_);
      if (phase_ == Phase::kDone) return;
      if (!file.ok()) {
        FailLocked(ToCallerStatus(file.status()), actions);
      } else {
        phase_ = Phase::kDone;
        DisarmIdleTimerLocked();
        if (file->state == "ACTIVE") {
          context_.runtime->hashes().Put(context_.owner_tag, sha256_, *file);
          if (reoriented_) context_.runtime->hashes().Put(context_.owner_tag, source_sha256_, *file);
        }
        v1::File out = ToV1File(*file, context_.runtime->options().file_tag_key);
        if (out.sha256().empty()) out.set_sha256(sha256_);
        if (reoriented_) out.set_source_sha256(source_sha256_);
        out.set_declared_mime_type(contradicted_mime_);
        actions.push_back([self = shared_from_this(), out = std::move(out)]() mutable {
          self->Finish(std::move(out));
        });
      }
    }
    for (auto& action : actions) action();
  }

  // EXIF orientation != 1: every byte is here; check the hash, turn it upright off the gRPC and
  // I/O threads, then upload the upright bytes in one go.
  void ReorientLocked(Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const std::string actual = hasher_.FinishHex();
    if (!sha256_.empty() && actual != sha256_) return FailLocked(HashMismatch(actual), actions);
    source_sha256_ = actual;
    phase_ = Phase::kStarting;
    auto self = shared_from_this();
    actions.push_back([self, bytes = std::move(chunk_)]() mutable {
      const bool queued =
          self->context_.runtime->cpu()->TrySchedule([self, bytes = std::move(bytes)]() mutable {
            image::PrepareOptions options{.max_pixels = self->context_.runtime->options().max_image_pixels};
            self->OnReoriented(image::PrepareImage(std::move(bytes), options));
          });
      if (!queued) {
        self->OnReoriented(WithRetryInfo(
            WithErrorInfo(absl::ResourceExhaustedError(
                              "the gateway's image preparation queue is full; retry shortly"),
                          reasons::kServerOverloaded),
            absl::Seconds(1)));
      }
    });
    chunk_ = std::string();
  }

  void OnReoriented(absl::StatusOr<image::PreparedImage> prepared) {
    // The hash of the bytes stored (File.sha256), outside the lock.
    const std::string upright_sha256 =
        prepared.ok() ? gemini::Sha256::HexOf(prepared->bytes) : std::string();
    Actions actions;
    {
      absl::MutexLock lock(&mu_);
      if (phase_ == Phase::kDone) return;
      if (!prepared.ok()) {
        FailLocked(absl::Status(prepared.status().code(),
                                absl::StrCat("the uploaded image: ", prepared.status().message())),
                   actions);
      } else {
        reoriented_ = true;
        sha256_ = upright_sha256;
        width_ = prepared->width;
        height_ = prepared->height;
        mime_type_ = prepared->mime_type;
        chunk_ = std::move(prepared->bytes);
        // The upright bytes go up in one final chunk (bounded by max_reorient_upload_bytes).
        StartSessionLocked(static_cast<int64_t>(chunk_.size()), actions);
      }
    }
    for (auto& action : actions) action();
  }

  void FailLocked(absl::Status status, Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    phase_ = Phase::kDone;
    DisarmIdleTimerLocked();
    chunk_ = std::string();
    // A request still sending the chunk ends (CANCELLED) instead of waiting for bytes.
    if (current_ != nullptr) current_->Abandon();
    ReturnFillingPermitLocked();
    assembling_ = false;
    current_.reset();
    spare_ = std::string();
    pending_ = std::string();
    auto self = shared_from_this();
    std::shared_ptr<ResumableUpload> upload = upload_;
    actions.push_back([self, upload, status = std::move(status)]() mutable {
      self->lookup_->Cancel();
      if (upload) upload->Abort();
      self->Finish(std::move(status));
    });
  }

  void Finish(absl::StatusOr<v1::File> result) {
    auto done = std::move(callbacks_.done);
    if (done) done(std::move(result));
  }

  const FilesContext context_;
  const absl::Time deadline_;
  UploadCallbacks callbacks_;
  const std::shared_ptr<StagedCall> lookup_;

  absl::Mutex mu_;
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kHeader;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t reads_requested_ ABSL_GUARDED_BY(mu_) = 0;  // names the read an idle timer is for
  Timer::Id idle_timer_ ABSL_GUARDED_BY(mu_) = 0;
  bool read_queued_ ABSL_GUARDED_BY(mu_) = false;
  bool half_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool sending_ ABSL_GUARDED_BY(mu_) = false;     // a non-final chunk is sent, unconfirmed
  bool assembling_ ABSL_GUARDED_BY(mu_) = false;  // current_ fills before it is sent
  bool filling_permit_ ABSL_GUARDED_BY(mu_) = false;  // current_ is sent while it fills
  Semaphore::Permit filling_units_ ABSL_GUARDED_BY(mu_);  // its unit of filling_upload_chunks
  bool reoriented_ ABSL_GUARDED_BY(mu_) = false;
  int64_t size_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t received_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t granularity_ ABSL_GUARDED_BY(mu_) = 8 << 20;
  std::string sha256_ ABSL_GUARDED_BY(mu_);
  std::string display_name_ ABSL_GUARDED_BY(mu_);
  std::string declared_mime_ ABSL_GUARDED_BY(mu_);
  std::string contradicted_mime_ ABSL_GUARDED_BY(mu_);  // declared_mime_ when it lost to sniffing
  std::string source_sha256_ ABSL_GUARDED_BY(mu_);  // the client's bytes' hash when reoriented
  std::string mime_type_ ABSL_GUARDED_BY(mu_);
  int width_ ABSL_GUARDED_BY(mu_) = 0;
  int height_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t sent_ ABSL_GUARDED_BY(mu_) = 0;  // bytes of the non-final chunks started
  // The sniffed first bytes, the whole image to turn upright, or the final chunk.
  std::string chunk_ ABSL_GUARDED_BY(mu_);
  // The non-final chunk being filled and sent, or last sent (shared with the upload sending it).
  std::shared_ptr<GrowingBuffer> current_ ABSL_GUARDED_BY(mu_);
  std::string spare_ ABSL_GUARDED_BY(mu_);  // a confirmed chunk's storage, for the next one
  std::string pending_ ABSL_GUARDED_BY(mu_);  // the last message's bytes not yet in a chunk
  size_t pending_offset_ ABSL_GUARDED_BY(mu_) = 0;
  gemini::Sha256 hasher_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<ResumableUpload> upload_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::shared_ptr<UploadTask> MakeUpload(const FilesContext& context, absl::Time deadline,
                                       UploadCallbacks callbacks) {
  return std::make_shared<StreamingUpload>(context, deadline,
                                           std::move(callbacks));
}

}  // namespace vision_gateway::vision
