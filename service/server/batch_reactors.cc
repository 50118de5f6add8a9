#include "service/server/batch_reactors.h"

#include <utility>

#include "service/common/log.h"
#include "service/server/exception_guard.h"
#include "service/server/status_conversion.h"

namespace vision_gateway::server {

BatchResultsReactor::BatchResultsReactor(Semaphore::Permit permit,
                                         std::shared_ptr<const vision::CallExpiry> expiry,
                                         Start start) {
  permit_ = std::move(permit);
  expiry_ = std::move(expiry);
  absl::Status started = Attach(StartGuarded([&] {
    return start(vision::BatchResultsCallbacks{
        .on_result =
            [this](::vision::v1::BatchResult result, absl::AnyInvocable<void()> next) {
              OnResult(std::move(result), std::move(next));
            },
        .on_done = [this](absl::Status status) { Complete(std::move(status)); },
    });
  }));
  if (!started.ok()) {
    {
      absl::MutexLock lock(&mu_);
      finished_ = true;
    }
    Finish(ToCallerGrpcStatus(started));
  }
}

// The reader sends a result only after the previous one's `next` ran: never two at once.
void BatchResultsReactor::OnResult(::vision::v1::BatchResult result,
                                   absl::AnyInvocable<void()> next) {
  {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    writing_ = true;
    next_ = std::move(next);
  }
  current_ = std::move(result);
  StartWrite(&current_);
}

void BatchResultsReactor::OnWriteDone(bool ok) {
  absl::AnyInvocable<void()> next;
  std::shared_ptr<gemini::PendingCall> cancel;
  std::optional<grpc::Status> finish;
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    next = std::move(next_);
    next_ = nullptr;
    if (!ok) {
      // The client went away: stop reading from Gemini and end the call.
      cancel = upstream_;
      next = nullptr;
      if (!finished_) {
        finished_ = true;
        finish = grpc::Status(grpc::StatusCode::CANCELLED, "write failed: client gone");
      }
    } else if (final_status_.has_value() && !finished_) {
      finished_ = true;
      finish = ToCallerGrpcStatus(*final_status_);
    }
  }
  if (cancel) cancel->Cancel();
  if (next) next();
  if (finish) Finish(*finish);  // OnDone (and delete) may follow: touch nothing after it
}

void BatchResultsReactor::Complete(absl::Status status) {
  std::optional<grpc::Status> finish;
  bool destroy = false;
  {
    absl::MutexLock lock(&mu_);
    upstream_done_ = true;
    next_ = nullptr;  // holds the reader: no cycle once it is over
    if (reactor_done_) {
      destroy = true;
    } else if (!finished_) {
      if (writing_) {
        final_status_ = Outcome(std::move(status));
      } else {
        finished_ = true;
        finish = ToCallerGrpcStatus(Outcome(std::move(status)));
      }
    }
  }
  if (destroy) {
    delete this;
  } else if (finish) {
    Finish(*finish);
  }
}

template <typename F>
void CreateBatchReactor::Guarded(const std::shared_ptr<vision::BatchCreateTask>& task, F&& step) {
  absl::Status failed = RunGuarded(
      "receiving the batch",
      "the gateway failed while receiving the batch (out of memory?); no job was created; retry",
      std::forward<F>(step));
  if (failed.ok()) return;
  {
    absl::MutexLock lock(&mu_);
    failure_ = std::move(failed);
  }
  try {
    task->Cancel();  // its done callback finishes the call with failure_
  } catch (...) {
    LogError("CreateBatch: cancelling after an exception failed too");
  }
}

CreateBatchReactor::CreateBatchReactor(const vision::BatchCreateContext& context,
                                       absl::Time deadline, ::vision::v1::BatchJob* response,
                                       Semaphore::Permit call_permit,
                                       CallerLimiter::Permit permit, Semaphore::Permit memory,
                                       UploadTracking tracking)
    : response_(response),
      call_permit_(std::move(call_permit)),
      permit_(std::move(permit)),
      memory_(std::move(memory)),
      expiry_(tracking.expiry) {
  {
    absl::MutexLock lock(&link_->mu);
    link_->reactor = this;
  }
  std::shared_ptr<vision::BatchCreateTask> task = vision::MakeBatchCreate(
      context, deadline,
      vision::BatchCreateCallbacks{
          .read = [link = link_] { ReadThrough(link); },
          // The tracking ends last: the service may be gone from then on.
          .done =
              [this, end = vision::DetachedCalls::Ender{tracking.calls, tracking.id}](
                  absl::StatusOr<::vision::v1::BatchJob> r) {
                Complete(std::move(r));
                end();
              },
      });
  {
    absl::MutexLock lock(&mu_);
    task_ = task;
  }
  if (tracking.calls != nullptr) {
    tracking.calls->Attach(
        tracking.id, [task] { task->Cancel(); }, std::move(tracking.expiry));
  }
  Guarded(task, [&] { task->Begin(); });
}

CreateBatchReactor::CreateBatchReactor(const absl::Status& status,
                                       ::vision::v1::BatchJob* response)
    : response_(response) {
  {
    absl::MutexLock lock(&mu_);
    finished_ = true;
    task_done_ = true;
  }
  Finish(ToCallerGrpcStatus(status));
}

void CreateBatchReactor::ReadThrough(const std::shared_ptr<ReadLink>& link) {
  CreateBatchReactor* reactor;
  {
    absl::MutexLock lock(&link->mu);
    reactor = link->reactor;
    if (reactor == nullptr || !reactor->BeginRead()) return;
  }
  reactor->Read();
}

bool CreateBatchReactor::BeginRead() {
  absl::MutexLock lock(&mu_);
  if (finished_) return false;
  ++reads_starting_;
  return true;
}

void CreateBatchReactor::Read() {
  StartRead(&message_);
  {
    absl::MutexLock lock(&mu_);
    --reads_starting_;
  }
  MaybeDelete();
}

void CreateBatchReactor::OnReadDone(bool ok) {
  std::shared_ptr<vision::BatchCreateTask> task;
  {
    absl::MutexLock lock(&mu_);
    task = task_;
  }
  if (task == nullptr) return;
  Guarded(task, [&] {
    if (ok) {
      task->OnMessage(std::move(message_));
    } else {
      task->OnHalfClose();
    }
  });
}

void CreateBatchReactor::OnCancel() {
  std::shared_ptr<vision::BatchCreateTask> task;
  {
    absl::MutexLock lock(&mu_);
    task = task_;
  }
  if (task) task->Cancel();
}

void CreateBatchReactor::Complete(absl::StatusOr<::vision::v1::BatchJob> result) {
  {
    absl::MutexLock lock(&mu_);
    if (!failure_.ok()) {
      result = failure_;
    } else if (!result.ok() && expiry_ != nullptr) {
      result = expiry_->Apply(result.status());
    }
  }
  grpc::Status status;
  if (result.ok()) {
    *response_ = *std::move(result);
  } else {
    status = ToCallerGrpcStatus(result.status());
  }
  {
    absl::MutexLock lock(&mu_);
    finished_ = true;
    task_done_ = true;
    task_.reset();
  }
  {
    CallerLimiter::Permit release = std::move(permit_);
    Semaphore::Permit release_call = std::move(call_permit_);
    Semaphore::Permit release_memory = std::move(memory_);
  }
  Finish(status);  // OnDone (and the delete) may follow at once: touch nothing after it
}

void CreateBatchReactor::OnDone() {
  {
    absl::MutexLock lock(&mu_);
    reactor_done_ = true;
  }
  MaybeDelete();
}

void CreateBatchReactor::MaybeDelete() {
  bool destroy;
  {
    absl::MutexLock link_lock(&link_->mu);
    {
      absl::MutexLock lock(&mu_);
      destroy = reactor_done_ && task_done_ && reads_starting_ == 0 && !deleting_;
      if (destroy) deleting_ = true;
    }
    if (destroy) link_->reactor = nullptr;
  }
  if (destroy) delete this;
}

}  // namespace vision_gateway::server
