#include "service/vision/resumable_upload.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "service/common/error_reasons.h"
#include "service/common/log.h"
#include "service/common/status_details.h"
#include "service/gemini/retry_policy.h"

namespace vision_gateway::vision {
namespace {

constexpr absl::Duration kFirstBackoff = absl::Milliseconds(50);
constexpr absl::Duration kMaxBackoff = absl::Seconds(2);
constexpr absl::Duration kCancelBound = absl::Seconds(5);

}  // namespace

bool IsResumableUploadFailure(const absl::Status& status) {
  return gemini::IsTransient(status) || GetOutcome(status) == reasons::kUpstreamConnectionLost;
}

ResumableUpload::ResumableUpload(gemini::FilesStub& gemini, Timer& timer, absl::Time deadline,
                                 std::shared_ptr<telemetry::CallRecord> record,
                                 DetachedCalls* detached)
    : gemini_(&gemini),
      timer_(&timer),
      detached_(detached),
      deadline_(deadline),
      record_(std::move(record)) {}

gemini::CallOptions ResumableUpload::Options() const {
  return gemini::CallOptions{.deadline = deadline_, .record = record_};
}

int64_t ResumableUpload::ChunkEnd() const {
  return chunk_start_ + static_cast<int64_t>(bytes_ == nullptr ? 0 : bytes_->size());
}

ResumableUpload::~ResumableUpload() = default;

int64_t ResumableUpload::offset() const {
  absl::MutexLock lock(&mu_);
  return offset_;
}

int64_t ResumableUpload::granularity() const {
  absl::MutexLock lock(&mu_);
  return granularity_;
}

void ResumableUpload::SetCall(std::shared_ptr<gemini::PendingCall> call) {
  bool cancel;
  {
    absl::MutexLock lock(&mu_);
    call_ = call;
    cancel = aborted_;
  }
  if (cancel && call) call->Cancel();
}

void ResumableUpload::Start(gemini::StartUploadRequest request,
                            absl::AnyInvocable<void(absl::Status)> done) {
  name_ = request.name;
  total_size_ = request.size_bytes;
  auto self = shared_from_this();
  // Abort does not cancel this request: only its answer names the session, and a session that a
  // request cancelled in flight had already opened would stay open at Gemini (found by the
  // stress test: cancelled uploads left sessions behind). So it runs to its end, bounded by the
  // deadline plus kCancelBound, and a session opened after an Abort is cancelled at once below.
  // Tracked as detached work: it may answer after its upload (and, at shutdown, its call) ended.
  auto start = [&](DetachedCalls::Ender end) {
    return gemini_->StartUpload(
        std::move(request),
        gemini::CallOptions{.deadline = deadline_ + kCancelBound, .record = record_},
        [self, done = std::move(done), end](absl::StatusOr<gemini::UploadSession> session) mutable {
          bool aborted;
          {
            absl::MutexLock lock(&self->mu_);
            aborted = self->aborted_;
            if (session.ok() && !aborted) {
              self->upload_url_ = session->upload_url;
              self->granularity_ = session->chunk_granularity;
            }
          }
          // The session opened after Abort: cancel it too.
          if (aborted && session.ok()) self->CancelSession(session->upload_url);
          done(aborted ? absl::CancelledError("upload cancelled") : session.status());
          end();  // the last use of the service's objects
        });
  };
  if (!DetachedCalls::Run(detached_, start)) {
    done(absl::CancelledError("upload cancelled: the server is shutting down"));
  }
}

void ResumableUpload::CancelSession(const std::string& url) {
  // Shutting down (Run refuses): the session is left to expire at Gemini (nothing was finalized).
  DetachedCalls::Run(detached_, [&](DetachedCalls::Ender end) {
    return gemini_->CancelUpload(
        url, gemini::CallOptions{.deadline = timer_->Now() + kCancelBound, .record = record_},
        [end](absl::Status) { end(); });
  });
}

void ResumableUpload::Send(std::shared_ptr<GrowingBuffer> bytes, bool finalize,
                           absl::AnyInvocable<void(absl::StatusOr<gemini::File>)> done) {
  bytes_ = std::move(bytes);
  finalize_ = finalize;
  send_done_ = std::move(done);
  {
    absl::MutexLock lock(&mu_);
    chunk_start_ = offset_;
  }
  SendFrom(chunk_start_);
}

void ResumableUpload::SendFrom(int64_t received) {
  std::string url;
  {
    absl::MutexLock lock(&mu_);
    url = upload_url_;
  }
  // Not a copy: bytes_ stays until Gemini confirmed them, to resume from.
  gemini::ChunkBytes piece(bytes_, static_cast<size_t>(received - chunk_start_));
  auto self = shared_from_this();
  SetCall(gemini_->UploadChunk(url, received, std::move(piece), finalize_, Options(),
                              [self](absl::StatusOr<gemini::UploadStatus> status) {
                                self->OnChunk(std::move(status));
                              }));
}

void ResumableUpload::OnChunk(absl::StatusOr<gemini::UploadStatus> status) {
  {
    absl::MutexLock lock(&mu_);
    call_.reset();
    if (aborted_) {
      status = absl::CancelledError("upload cancelled");
    }
  }
  if (!status.ok()) {
    if (status.status().code() != absl::StatusCode::kCancelled &&
        IsResumableUploadFailure(status.status())) {
      return Resume(status.status());
    }
    return Complete(status.status());
  }
  const int64_t end = ChunkEnd();
  if (finalize_) {
    if (status->status != "final" || !status->file.has_value()) {
      return Complete(absl::InternalError(absl::StrCat(
          "Gemini did not finalize the upload (status \"", status->status.substr(0, 32), "\")")));
    }
    if (status->file->size_bytes != end) {
      return Complete(absl::DataLossError(absl::StrCat("Gemini stored ", status->file->size_bytes,
                                                       " bytes of ", end)));
    }
    {
      absl::MutexLock lock(&mu_);
      offset_ = end;
      finalized_ = true;
    }
    return Complete(*std::move(status->file));
  }
  if (status->status != "active") {
    return Complete(absl::InternalError(absl::StrCat("Gemini ended the upload session (status \"",
                                                     status->status.substr(0, 32), "\")")));
  }
  if (status->size_received >= 0 && status->size_received != end) {
    // Gemini holds fewer (or more) bytes than sent: resume from what it says.
    return Resume(absl::UnavailableError(absl::StrCat("Gemini acknowledged ",
                                                      status->size_received, " of ", end,
                                                      " bytes")));
  }
  {
    absl::MutexLock lock(&mu_);
    offset_ = end;
  }
  Complete(gemini::File());
}

void ResumableUpload::Resume(absl::Status failure) {
  const absl::Duration backoff =
      std::min(kFirstBackoff * (int64_t{1} << std::min(resumes_, 10)), kMaxBackoff);
  if (++resumes_ > kMaxResumes || timer_->Now() + backoff >= deadline_) {
    return Complete(absl::Status(
        failure.code(), absl::StrCat("upload to Gemini failed after ", resumes_ - 1,
                                     " resumes: ", failure.message())));
  }
  LogInfo("upload chunk at %d failed (%s); asking Gemini how much it holds", chunk_start_,
          std::string(failure.message()).substr(0, 200));
  auto self = shared_from_this();
  timer_->RunAt(timer_->Now() + backoff, [self, failure]() {
    std::string url;
    {
      absl::MutexLock lock(&self->mu_);
      if (self->aborted_) {
        url.clear();
      } else {
        url = self->upload_url_;
      }
    }
    if (url.empty()) return self->Complete(absl::CancelledError("upload cancelled"));
    self->SetCall(self->gemini_->QueryUpload(
        url, self->Options(),
        [self, failure](absl::StatusOr<gemini::UploadStatus> status) {
          self->OnQuery(failure, std::move(status));
        }));
  });
}

void ResumableUpload::OnQuery(absl::Status failure, absl::StatusOr<gemini::UploadStatus> status) {
  {
    absl::MutexLock lock(&mu_);
    call_.reset();
    if (aborted_) status = absl::CancelledError("upload cancelled");
  }
  if (!status.ok()) {
    if (status.status().code() == absl::StatusCode::kCancelled) return Complete(status.status());
    if (finalize_ && !name_.empty() && !IsResumableUploadFailure(status.status())) {
      // The session is gone: the finalize may have worked and only its reply was lost. The file
      // was named by the gateway, so read it back.
      auto self = shared_from_this();
      SetCall(gemini_->GetFile(
          name_, Options(),
          [self, failure](absl::StatusOr<gemini::File> file) {
            {
              absl::MutexLock lock(&self->mu_);
              self->call_.reset();
            }
            const int64_t end = self->ChunkEnd();
            if (file.ok() && file->size_bytes == end) {
              {
                absl::MutexLock lock(&self->mu_);
                self->finalized_ = true;
                self->offset_ = end;
              }
              return self->Complete(*std::move(file));
            }
            self->Complete(failure);
          }));
      return;
    }
    if (IsResumableUploadFailure(status.status())) return Resume(failure);
    return Complete(failure);
  }
  if (status->status == "final" && status->file.has_value()) {
    {
      absl::MutexLock lock(&mu_);
      finalized_ = true;
    }
    return Complete(*std::move(status->file));
  }
  const int64_t end = ChunkEnd();
  const int64_t received = status->size_received;
  if (status->status != "active" || received < chunk_start_ || received > end) {
    return Complete(absl::InternalError(absl::StrCat(
        "cannot resume the upload: Gemini reports ", received, " bytes received, status \"",
        status->status.substr(0, 32), "\", chunk ", chunk_start_, "..", end)));
  }
  if (received == end && !finalize_) {
    {
      absl::MutexLock lock(&mu_);
      offset_ = end;
    }
    return Complete(gemini::File());
  }
  SendFrom(received);
}

void ResumableUpload::Complete(absl::StatusOr<gemini::File> result) {
  bytes_.reset();
  auto done = std::move(send_done_);
  if (done) done(std::move(result));
}

void ResumableUpload::Abort() {
  std::shared_ptr<gemini::PendingCall> call;
  std::string url;
  {
    absl::MutexLock lock(&mu_);
    if (aborted_) return;
    aborted_ = true;
    call = call_;
    if (!finalized_) url = upload_url_;
  }
  if (call) call->Cancel();
  if (!url.empty()) CancelSession(url);
}

}  // namespace vision_gateway::vision
