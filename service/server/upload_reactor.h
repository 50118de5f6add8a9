// The Upload RPC's reactor: a client stream fed to a vision::UploadTask one message at a time.
//
// Flow control: the reactor starts a read only when the task asks for one (UploadCallbacks::read),
// so a client faster than Gemini is held back by gRPC flow control, and at most one message is
// buffered here. Lifetime: deleted in OnDone, and only once the task has reported its result and
// no read request is being issued. OnCancel (client gone, deadline) cancels the task, which
// cancels the upstream session.
#ifndef VISION_GATEWAY_SERVICE_SERVER_UPLOAD_REACTOR_H_
#define VISION_GATEWAY_SERVICE_SERVER_UPLOAD_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/common/semaphore.h"
#include "service/server/call_limiter.h"
#include "service/server/caller_limiter.h"
#include "service/vision/detached_calls.h"
#include "service/vision/upload_task.h"
#include "vision/v1/vision.grpc.pb.h"

namespace vision_gateway::server {

// The service's tracking of an upload: `id` (begun in `calls`) ends once the upload reported its
// result; `calls` may cancel it before (shutdown, or `expiry`, which may be null).
struct UploadTracking {
  vision::DetachedCalls* calls = nullptr;
  uint64_t id = 0;
  std::shared_ptr<vision::CallExpiry> expiry;
};

class UploadReactor final : public grpc::ServerReadReactor<::vision::v1::UploadRequest> {
 public:
  // `files` carries the caller's owner tag (file isolation); `call_permit` (the server-wide
  // --max_concurrent_calls slot) and `permit` (the caller's concurrency slot) are held until the
  // upload is over.
  UploadReactor(const vision::FilesContext& files, absl::Time deadline,
                ::vision::v1::File* response, Semaphore::Permit call_permit,
                CallerLimiter::Permit permit = {}, Semaphore::Permit memory = {},
                UploadTracking tracking = UploadTracking());
  // A call refused before it started (e.g. not admitted): finishes at once with `status`.
  UploadReactor(const absl::Status& status, ::vision::v1::File* response);

  void OnReadDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // What the task's read callback holds instead of the reactor: the task may call it after it
  // released its own lock while another thread completes the call and gRPC deletes the reactor
  // (issue #17). MaybeDelete clears `reactor` under `mu` before deleting, and a read request
  // takes `mu` while it registers itself (reads_starting_), so it either sees no reactor or
  // keeps it alive until its StartRead has returned.
  struct ReadLink {
    absl::Mutex mu;
    UploadReactor* reactor ABSL_GUARDED_BY(mu) = nullptr;
  };
  static void ReadThrough(const std::shared_ptr<ReadLink>& link);
  // Registers a read about to start; false when the call has finished. Requires link_->mu held.
  bool BeginRead();
  void Read();
  void Complete(absl::StatusOr<::vision::v1::File> result);
  // An exception from the task (bad_alloc while assembling a chunk, or any other) must not escape
  // into gRPC, which would end the process: the task is cancelled (and with it the upstream
  // session) and the call fails INTERNAL / INTERNAL_ERROR.
  template <typename F>
  void Guarded(const std::shared_ptr<vision::UploadTask>& task, F&& step);
  // Deletes this when gRPC and the task are both done and no Read() is running. Requires mu_
  // released by the caller; touches nothing after deleting.
  void MaybeDelete();

  ::vision::v1::File* response_;
  Semaphore::Permit call_permit_;
  CallerLimiter::Permit permit_;
  Semaphore::Permit memory_;  // --max_request_memory_mb
  std::shared_ptr<const vision::CallExpiry> expiry_;
  ::vision::v1::UploadRequest message_;  // the read in flight
  std::shared_ptr<vision::UploadTask> task_;
  const std::shared_ptr<ReadLink> link_ = std::make_shared<ReadLink>();

  absl::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;   // Finish called
  bool task_done_ ABSL_GUARDED_BY(mu_) = false;
  bool reactor_done_ ABSL_GUARDED_BY(mu_) = false;
  int reads_starting_ ABSL_GUARDED_BY(mu_) = 0;
  bool deleting_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);  // set by Guarded: wins over the task's result
};

}  // namespace vision_gateway::server

#endif  // VISION_GATEWAY_SERVICE_SERVER_UPLOAD_REACTOR_H_
