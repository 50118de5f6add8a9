#include "service/server/upload_reactor.h"

#include <utility>

#include "service/common/log.h"
#include "service/server/exception_guard.h"
#include "service/server/status_conversion.h"

namespace vision_gateway::server {

template <typename F>
void UploadReactor::Guarded(const std::shared_ptr<vision::UploadTask>& task, F&& step) {
  absl::Status failed = RunGuarded(
      "receiving the upload",
      "the gateway failed while receiving the upload (out of memory?); nothing was kept; retry",
      std::forward<F>(step));
  if (failed.ok()) return;
  {
    absl::MutexLock lock(&mu_);
    failure_ = std::move(failed);
  }
  try {
    task->Cancel();  // its done callback finishes the call with failure_
  } catch (...) {
    LogError("Upload: cancelling after an exception failed too");
  }
}

UploadReactor::UploadReactor(const vision::FilesContext& files, absl::Time deadline,
                             ::vision::v1::File* response,
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
  std::shared_ptr<vision::UploadTask> task = vision::MakeUpload(
      files, deadline,
      vision::UploadCallbacks{
          .read = [link = link_] { ReadThrough(link); },
          // The tracking ends last: the service may be gone from then on.
          .done =
              [this, end = vision::DetachedCalls::Ender{tracking.calls, tracking.id}](
                  absl::StatusOr<::vision::v1::File> r) {
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

UploadReactor::UploadReactor(const absl::Status& status, ::vision::v1::File* response)
    : response_(response) {
  {
    absl::MutexLock lock(&mu_);
    finished_ = true;
    task_done_ = true;
  }
  Finish(ToCallerGrpcStatus(status));
}

void UploadReactor::ReadThrough(const std::shared_ptr<ReadLink>& link) {
  UploadReactor* reactor;
  {
    absl::MutexLock lock(&link->mu);
    reactor = link->reactor;
    if (reactor == nullptr || !reactor->BeginRead()) return;
  }
  reactor->Read();  // alive: reads_starting_ > 0 holds off MaybeDelete
}

bool UploadReactor::BeginRead() {
  absl::MutexLock lock(&mu_);
  if (finished_) return false;
  ++reads_starting_;
  return true;
}

void UploadReactor::Read() {
  StartRead(&message_);
  {
    absl::MutexLock lock(&mu_);
    --reads_starting_;
  }
  MaybeDelete();
}

void UploadReactor::OnReadDone(bool ok) {
  std::shared_ptr<vision::UploadTask> task;
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

void UploadReactor::OnCancel() {
  std::shared_ptr<vision::UploadTask> task;
  {
    absl::MutexLock lock(&mu_);
    task = task_;
  }
  if (task) task->Cancel();
}

void UploadReactor::Complete(absl::StatusOr<::vision::v1::File> result) {
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
    task_.reset();  // the task holds this reactor's callbacks: break the cycle
  }
  {
    CallerLimiter::Permit release = std::move(permit_);
    Semaphore::Permit release_call = std::move(call_permit_);
    Semaphore::Permit release_memory = std::move(memory_);
  }
  // OnDone (and the delete) may follow at once on another thread: touch nothing after Finish.
  // task_done_ is already set, so OnDone (or a Read still starting) deletes this reactor.
  // (Found by the stress test under ASan: a MaybeDelete() here read the deleted reactor.)
  Finish(status);
}

void UploadReactor::OnDone() {
  {
    absl::MutexLock lock(&mu_);
    reactor_done_ = true;
  }
  MaybeDelete();
}

void UploadReactor::MaybeDelete() {
  bool destroy;
  {
    absl::MutexLock link_lock(&link_->mu);
    {
      absl::MutexLock lock(&mu_);
      destroy = reactor_done_ && task_done_ && reads_starting_ == 0 && !deleting_;
      if (destroy) deleting_ = true;
    }
    if (destroy) link_->reactor = nullptr;  // a late read request finds no reactor
  }
  if (destroy) delete this;
}

}  // namespace vision_gateway::server
