// The reactors of the batch RPCs (issue #20) that are not plain unary calls:
//
// BatchResultsReactor (ReadBatchResults): the results reader (vision/batch_results.h) sends one
// result and waits; the reactor writes it and lets the reader go on only when gRPC has taken it
// (OnWriteDone), so one result is in flight and a slow client slows the download from Gemini.
//
// CreateBatchReactor (CreateBatch): a client stream fed to a vision::BatchCreateTask one message at
// a time, with UploadReactor's discipline (upload_reactor.h): a read starts only when the task
// asks for one, so at most one item is held here and gRPC flow control slows a fast client down;
// the permits are held until the task reported its result; the task's idle timeout is
// --upload_idle_timeout_s.
#ifndef VISION_GATEWAY_SERVICE_SERVER_BATCH_REACTORS_H_
#define VISION_GATEWAY_SERVICE_SERVER_BATCH_REACTORS_H_

#include <grpcpp/grpcpp.h>

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/common/semaphore.h"
#include "service/server/caller_limiter.h"
#include "service/server/reactors.h"
#include "service/server/upload_reactor.h"
#include "service/vision/batch_results.h"
#include "service/vision/batch_task.h"
#include "service/vision/v1.h"

namespace vision_gateway::server {

class BatchResultsReactor final
    : public UpstreamReactor<grpc::ServerWriteReactor<::vision::v1::BatchResult>> {
 public:
  using Start = absl::FunctionRef<StartedCall(vision::BatchResultsCallbacks)>;

  BatchResultsReactor(Semaphore::Permit permit, std::shared_ptr<const vision::CallExpiry> expiry,
                      Start start);

  void OnWriteDone(bool ok) override;

 private:
  void OnResult(::vision::v1::BatchResult result, absl::AnyInvocable<void()> next);
  void Complete(absl::Status status);

  ::vision::v1::BatchResult current_;  // the write in flight
  absl::AnyInvocable<void()> next_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> final_status_ ABSL_GUARDED_BY(mu_);
};

class CreateBatchReactor final : public grpc::ServerReadReactor<::vision::v1::CreateBatchRequest> {
 public:
  CreateBatchReactor(const vision::BatchCreateContext& context, absl::Time deadline,
                     ::vision::v1::BatchJob* response, Semaphore::Permit call_permit,
                     CallerLimiter::Permit permit, Semaphore::Permit memory,
                     UploadTracking tracking);
  // A call refused before it started: finishes at once with `status`.
  CreateBatchReactor(const absl::Status& status, ::vision::v1::BatchJob* response);

  void OnReadDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // As UploadReactor::ReadLink: the task's read request reaches the reactor only while it lives.
  struct ReadLink {
    absl::Mutex mu;
    CreateBatchReactor* reactor ABSL_GUARDED_BY(mu) = nullptr;
  };
  static void ReadThrough(const std::shared_ptr<ReadLink>& link);
  bool BeginRead();
  void Read();
  void Complete(absl::StatusOr<::vision::v1::BatchJob> result);
  template <typename F>
  void Guarded(const std::shared_ptr<vision::BatchCreateTask>& task, F&& step);
  void MaybeDelete();

  ::vision::v1::BatchJob* response_;
  Semaphore::Permit call_permit_;
  CallerLimiter::Permit permit_;
  Semaphore::Permit memory_;
  std::shared_ptr<const vision::CallExpiry> expiry_;
  ::vision::v1::CreateBatchRequest message_;  // the read in flight
  std::shared_ptr<vision::BatchCreateTask> task_;
  const std::shared_ptr<ReadLink> link_ = std::make_shared<ReadLink>();

  absl::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool task_done_ ABSL_GUARDED_BY(mu_) = false;
  bool reactor_done_ ABSL_GUARDED_BY(mu_) = false;
  int reads_starting_ ABSL_GUARDED_BY(mu_) = 0;
  bool deleting_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vision_gateway::server

#endif  // VISION_GATEWAY_SERVICE_SERVER_BATCH_REACTORS_H_
