// One resumable upload session at Gemini (gemini-wire.md §1.3), driven chunk by chunk.
//
// A chunk that fails transiently (IsResumableUploadFailure: the retry policy's transient failures,
// or a connection lost mid-reply) is not simply resent: Gemini is asked how much it holds
// (X-Goog-Upload-Command: query) and the upload resumes from there, at most kMaxResumes times per
// chunk and never past the deadline, with backoff (50 ms doubling to 2 s, never shorter than a
// RetryInfo Gemini sent): the attempts run on the one retry loop (gemini/async_retry_loop.h). A finalize whose reply was lost is recovered
// by reading the file back under the name the gateway chose. The result is the complete file or
// an error — never a silent truncation.
//
// Memory: the chunk being sent is kept until Gemini confirmed it (to resume from); the HTTP
// request sends from that same buffer (gemini::ChunkBytes), so a chunk in flight costs its size
// once. The buffer may still be filling when it is sent: the request sends its bytes as they
// arrive (a resumed request too, from where Gemini's count says).
//
// Threads: Start/Send are called one at a time (each after the previous one's callback); Abort
// may come from any thread. Callbacks run on I/O or timer threads and must not block.
#ifndef VISION_GATEWAY_SERVICE_VISION_RESUMABLE_UPLOAD_H_
#define VISION_GATEWAY_SERVICE_VISION_RESUMABLE_UPLOAD_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/common/timer.h"
#include "service/gemini/async_retry_loop.h"
#include "service/gemini/gemini_client.h"
#include "service/telemetry/call_record.h"
#include "service/vision/detached_calls.h"

namespace vision_gateway::vision {

inline constexpr int kMaxResumes = 5;

// Upstream failures worth asking Gemini how much it holds and resuming: the retry policy's
// transient failures (gemini::IsTransient: 429, 5xx, 408, connection refused or reset before any
// reply), and a connection lost after reply bytes (safe here: a query decides what is resent).
bool IsResumableUploadFailure(const absl::Status& status);

class ResumableUpload : public std::enable_shared_from_this<ResumableUpload> {
 public:
  // `record` (may be null) gets every upstream call's time and attempts, like the other RPCs.
  // `detached` (may be null in tests) tracks the requests that may outlive this upload (the
  // session's opening, see Start, and the cancel of a session), so that the service can end them
  // before it goes away. A resume Gemini asks to delay longer than `max_retry_delay`
  // (--max_retry_delay_s) fails at once with Gemini's RetryInfo instead of waiting.
  ResumableUpload(gemini::FilesStub& gemini, Timer& timer, absl::Time deadline,
                  std::shared_ptr<telemetry::CallRecord> record = nullptr,
                  DetachedCalls* detached = nullptr,
                  absl::Duration max_retry_delay = absl::InfiniteDuration());
  ~ResumableUpload();

  // Opens the session. `request.name` should be set (the gateway's file id) so that a lost
  // finalize reply can be recovered.
  void Start(gemini::StartUploadRequest request, absl::AnyInvocable<void(absl::Status)> done);

  // Sends `bytes` (all bytes->size() of them, the buffer may still be filling) at the current
  // offset. Non-final chunks must be a multiple of the session's granularity. `done` gets the File
  // for the final chunk, or an empty File (name "") otherwise. If the buffer is abandoned before
  // it is complete, `done` gets CANCELLED.
  void Send(std::shared_ptr<GrowingBuffer> bytes, bool finalize,
            absl::AnyInvocable<void(absl::StatusOr<gemini::File>)> done);

  // Stops whatever is in flight (its callback gets CANCELLED) and, unless finalized, cancels the
  // session at Gemini (X-Goog-Upload-Command: cancel, fire and forget, bounded by 5 s) so that no
  // partial file is ever finalized. A session still being opened is left to open (bounded by
  // the deadline + 5 s) and then cancelled, so that none stays open at Gemini. Idempotent.
  void Abort();

  int64_t offset() const;
  int64_t granularity() const;

 private:
  // X-Goog-Upload-Command: cancel, fire and forget (bounded by kCancelBound), tracked as
  // detached work.
  void CancelSession(const std::string& url);
  // Attempt `number` of the current chunk: 1 sends it, each later one queries and resumes.
  void Attempt(int number, gemini::AsyncRetryLoop::AttemptDone done);
  void SendFrom(int64_t received);
  void OnChunk(absl::StatusOr<gemini::UploadStatus> status);
  void OnQuery(absl::StatusOr<gemini::UploadStatus> status);
  // The attempt ends with `failure`, worth a resume.
  void Resume(absl::Status failure);
  // The attempt ends with the chunk's result (a File, an empty one for a non-final chunk), or
  // with a failure no resume can help.
  void Report(absl::StatusOr<gemini::File> result);
  void OnSendDone(absl::Status status);
  void SetCall(std::shared_ptr<gemini::PendingCall> call);
  gemini::CallOptions Options() const;
  int64_t ChunkEnd() const;

  gemini::FilesStub* const gemini_;
  Timer* const timer_;
  DetachedCalls* const detached_;
  const absl::Duration max_retry_delay_;
  const absl::Time deadline_;
  const std::shared_ptr<telemetry::CallRecord> record_;

  mutable absl::Mutex mu_;
  std::shared_ptr<gemini::PendingCall> call_ ABSL_GUARDED_BY(mu_);  // the request in flight
  std::shared_ptr<gemini::AsyncRetryLoop> loop_ ABSL_GUARDED_BY(mu_);  // the chunk's attempts
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;
  bool finalized_ ABSL_GUARDED_BY(mu_) = false;
  std::string upload_url_ ABSL_GUARDED_BY(mu_);
  int64_t offset_ ABSL_GUARDED_BY(mu_) = 0;  // bytes Gemini confirmed
  int64_t granularity_ ABSL_GUARDED_BY(mu_) = 8 << 20;

  // The send in progress (touched by one callback at a time).
  std::string name_;
  int64_t total_size_ = 0;
  std::shared_ptr<GrowingBuffer> bytes_;  // shared with the HTTP request sending them
  int64_t chunk_start_ = 0;
  bool finalize_ = false;
  int attempts_ = 0;
  absl::Status last_failure_;     // the failure the current resume started from
  bool last_retryable_ = false;   // the last attempt ended with a failure worth a resume
  std::optional<gemini::File> result_;
  gemini::AsyncRetryLoop::AttemptDone attempt_done_;
  absl::AnyInvocable<void(absl::StatusOr<gemini::File>)> send_done_;
};

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_RESUMABLE_UPLOAD_H_
