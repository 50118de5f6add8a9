#include "service/vision/resumable_upload.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "service/common/error_reasons.h"
#include "service/common/log.h"
#include "service/common/status_details.h"
#include "service/gemini/async_retry_loop.h"
#include "service/gemini/retry_policy.h"

namespace vision_gateway::vision {
namespace {

constexpr absl::Duration kFirstBackoff = absl::Milliseconds(50);
constexpr absl::Duration kMaxBackoff = absl::Seconds(2);
constexpr absl::Duration kCancelBound = absl::Seconds(5);

// The waits between resumes: 50 ms doubling to 2 s.
std::shared_ptr<gemini::BackoffPolicy> ResumeBackoff() {
  static const auto* const backoff = new std::shared_ptr<gemini::BackoffPolicy>(
      std::make_shared<gemini::ExponentialBackoff>(kFirstBackoff, kMaxBackoff));
  return *backoff;
}

}  // namespace

bool IsResumableUploadFailure(const absl::Status& status) {
  return gemini::IsTransient(status) || GetOutcome(status) == reasons::kUpstreamConnectionLost;
}

ResumableUpload::ResumableUpload(gemini::FilesStub& gemini, Timer& timer, absl::Time deadline,
                                 std::shared_ptr<telemetry::CallRecord> record,
                                 DetachedCalls* detached, absl::Duration max_retry_delay)
    : gemini_(&gemini),
      timer_(&timer),
      detached_(detached),
      max_retry_delay_(max_retry_delay),
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
  result_.reset();
  last_failure_ = absl::OkStatus();
  last_retryable_ = false;
  attempts_ = 0;
  {
    absl::MutexLock lock(&mu_);
    chunk_start_ = offset_;
  }
  // The chunk's attempts run on the one retry loop: the first sends the chunk, each later one
  // asks Gemini how much it holds and sends the rest. The attempts decide themselves which
  // failures are worth a resume (RetryableFailure); the loop bounds them (kMaxResumes, the
  // deadline, RetryInfo) and waits between them.
  auto self = shared_from_this();
  auto loop = gemini::AsyncRetryLoop::Create(
      gemini::RetryLoopOptions{
          .retry = gemini::RetryPolicy{.max_attempts = kMaxResumes + 1,
                                       .retryable = [](const absl::Status&) { return false; }},
          .backoff = ResumeBackoff(),
          .max_retry_delay = max_retry_delay_,
          .timer = timer_,
      },
      gemini::CallOptions{.deadline = deadline_},
      [self](int number, bool, gemini::AsyncRetryLoop::AttemptDone attempt_done) {
        self->Attempt(number, std::move(attempt_done));
        return nullptr;  // Abort cancels the attempt's current request (call_) itself
      },
      [self](absl::Status status) { self->OnSendDone(std::move(status)); });
  bool aborted;
  {
    absl::MutexLock lock(&mu_);
    loop_ = loop;
    aborted = aborted_;
  }
  if (aborted) loop->Cancel();
  loop->Run();
}

void ResumableUpload::Attempt(int number, gemini::AsyncRetryLoop::AttemptDone done) {
  attempts_ = number;
  attempt_done_ = std::move(done);
  std::string url;
  {
    absl::MutexLock lock(&mu_);
    if (!aborted_) url = upload_url_;
  }
  if (url.empty()) return Report(absl::CancelledError("upload cancelled"));
  if (number == 1) return SendFrom(chunk_start_);
  LogInfo("upload chunk at %d failed (%s); asking Gemini how much it holds", chunk_start_,
          std::string(last_failure_.message()).substr(0, 200));
  auto self = shared_from_this();
  SetCall(gemini_->QueryUpload(url, Options(), [self](absl::StatusOr<gemini::UploadStatus> status) {
    self->OnQuery(std::move(status));
  }));
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
    return Report(status.status());
  }
  const int64_t end = ChunkEnd();
  if (finalize_) {
    if (status->status != "final" || !status->file.has_value()) {
      return Report(absl::InternalError(absl::StrCat(
          "Gemini did not finalize the upload (status \"", status->status.substr(0, 32), "\")")));
    }
    if (status->file->size_bytes != end) {
      return Report(absl::DataLossError(absl::StrCat("Gemini stored ", status->file->size_bytes,
                                                     " bytes of ", end)));
    }
    {
      absl::MutexLock lock(&mu_);
      offset_ = end;
      finalized_ = true;
    }
    return Report(*std::move(status->file));
  }
  if (status->status != "active") {
    return Report(absl::InternalError(absl::StrCat("Gemini ended the upload session (status \"",
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
  Report(gemini::File());
}

void ResumableUpload::Resume(absl::Status failure) {
  last_failure_ = failure;
  last_retryable_ = true;
  auto done = std::move(attempt_done_);
  if (done) done(gemini::RetryableFailure(std::move(failure)));
}

void ResumableUpload::OnQuery(absl::StatusOr<gemini::UploadStatus> status) {
  {
    absl::MutexLock lock(&mu_);
    call_.reset();
    if (aborted_) status = absl::CancelledError("upload cancelled");
  }
  const absl::Status failure = last_failure_;
  if (!status.ok()) {
    if (status.status().code() == absl::StatusCode::kCancelled) return Report(status.status());
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
              return self->Report(*std::move(file));
            }
            self->Report(failure);
          }));
      return;
    }
    if (IsResumableUploadFailure(status.status())) return Resume(failure);
    return Report(failure);
  }
  if (status->status == "final" && status->file.has_value()) {
    {
      absl::MutexLock lock(&mu_);
      finalized_ = true;
    }
    return Report(*std::move(status->file));
  }
  const int64_t end = ChunkEnd();
  const int64_t received = status->size_received;
  if (status->status != "active" || received < chunk_start_ || received > end) {
    return Report(absl::InternalError(absl::StrCat(
        "cannot resume the upload: Gemini reports ", received, " bytes received, status \"",
        status->status.substr(0, 32), "\", chunk ", chunk_start_, "..", end)));
  }
  if (received == end && !finalize_) {
    {
      absl::MutexLock lock(&mu_);
      offset_ = end;
    }
    return Report(gemini::File());
  }
  SendFrom(received);
}

void ResumableUpload::Report(absl::StatusOr<gemini::File> result) {
  last_retryable_ = false;
  absl::Status status = result.status();
  if (result.ok()) result_ = *std::move(result);
  auto done = std::move(attempt_done_);
  if (done) done(gemini::FinalFailure(std::move(status)));
}

void ResumableUpload::OnSendDone(absl::Status status) {
  {
    absl::MutexLock lock(&mu_);
    loop_.reset();
  }
  bytes_.reset();
  absl::StatusOr<gemini::File> result = gemini::File();
  if (status.ok()) {
    if (result_.has_value()) result = *std::move(result_);
  } else {
    result = status;
  }
  if (!status.ok() && last_retryable_ && status.code() != absl::StatusCode::kCancelled &&
      GetRetryDelay(status) == std::nullopt) {
    // The resumes ran out (their number, or the deadline).
    result = absl::Status(status.code(), absl::StrCat("upload to Gemini failed after ",
                                                      attempts_ - 1, " resumes: ",
                                                      status.message()));
  }
  result_.reset();
  auto done = std::move(send_done_);
  if (done) done(std::move(result));
}

void ResumableUpload::Abort() {
  std::shared_ptr<gemini::PendingCall> call;
  std::shared_ptr<gemini::AsyncRetryLoop> loop;
  std::string url;
  {
    absl::MutexLock lock(&mu_);
    if (aborted_) return;
    aborted_ = true;
    call = call_;
    loop = loop_;
    if (!finalized_) url = upload_url_;
  }
  // A wait between resumes ends at once; a running attempt ends when its request does.
  if (loop) loop->Cancel();
  if (call) call->Cancel();
  if (!url.empty()) CancelSession(url);
}

}  // namespace vision_gateway::vision
