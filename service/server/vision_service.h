// vision.v1.VisionService on the gRPC callback API: each RPC is a reactor around a vision task.
#ifndef VISION_GATEWAY_SERVICE_SERVER_VISION_SERVICE_H_
#define VISION_GATEWAY_SERVICE_SERVER_VISION_SERVICE_H_

#include <atomic>
#include <memory>

#include "absl/time/time.h"
#include "service/common/thread_pool.h"
#include "service/server/caller_gate.h"
#include "service/common/timer.h"
#include "service/vision/batch_service.h"
#include "service/vision/file_service.h"
#include "service/common/semaphore.h"
#include "service/server/call_limiter.h"
#include "service/gemini/gemini_client.h"
#include "service/server/telemetry_interceptor.h"
#include "service/vision/vision_options.h"
#include "vision/v1/vision.grpc.pb.h"

namespace vision_gateway::server {

// Global limits and load shedding (issue #8); set from flags in main.cc.
struct LimitOptions {
  // Workers for CPU work (image preparation, Segment's mask work) off the gRPC and I/O threads.
  int cpu_threads = 2;
  // Calls waiting for image preparation beyond this are refused (SERVER_OVERLOADED). 0: unbounded.
  std::size_t max_queued_cpu_work = 64;
  // Concurrent calls of every kind; beyond it calls are refused at once (SERVER_OVERLOADED).
  // ≤ 0: unbounded.
  int max_concurrent_calls = 1024;
  // RetryInfo of a refusal.
  absl::Duration overload_retry_after = absl::Seconds(1);
  // How long a call without a deadline (or with one further than a year away) may run: then it
  // is cancelled upstream and ends DEADLINE_EXCEEDED (ErrorInfo MAX_CALL_DURATION). <= 0 or
  // infinite: no limit. Flag --max_call_duration_s.
  absl::Duration max_call_duration = absl::Hours(1);
  // Request bytes that admitted calls may hold at once (each call counts its request message's
  // size, an Upload the 8 MiB chunk it fills); a call that would go over is refused at once
  // (RESOURCE_EXHAUSTED + RetryInfo, SERVER_OVERLOADED, metadata limit=max_request_memory_mb).
  // A call holds about 3x its request in memory while in flight (the bytes, their base64 in the
  // upstream body, and what the retries keep). <= 0: unbounded. Flag --max_request_memory_mb.
  int64_t max_request_memory_bytes = int64_t{128} << 20;
};

class VisionServiceImpl final : public ::vision::v1::VisionService::CallbackService {
 public:
  // `calls` (outlives this) holds each call's CallRecord (see telemetry_interceptor.h).
  // `gate` authenticates and admits callers; null: authentication off, no per-caller limits.
  VisionServiceImpl(gemini::GeminiStubs gemini, vision::VisionOptions options,
                    LimitOptions limits, const CallRegistry& calls,
                    std::shared_ptr<CallerGate> gate = nullptr);
  // Cancels the calls still running upstream and waits until they ended (bounded), before any
  // member they use is destroyed.
  ~VisionServiceImpl() override;

  std::size_t queued_cpu_work() const { return cpu_.queued(); }
  // Calls holding one of the --max_concurrent_calls permits (each until its reactor is gone and
  // its upstream work ended).
  int active_calls() const { return limiter_.active(); }

  grpc::ServerWriteReactor<::vision::v1::CaptionResponse>* Caption(
      grpc::CallbackServerContext* context, const ::vision::v1::CaptionRequest* request) override;

  grpc::ServerWriteReactor<::vision::v1::DetectResponse>* Detect(
      grpc::CallbackServerContext* context, const ::vision::v1::DetectRequest* request) override;

  grpc::ServerWriteReactor<::vision::v1::SegmentResponse>* Segment(
      grpc::CallbackServerContext* context, const ::vision::v1::SegmentRequest* request) override;

  grpc::ServerUnaryReactor* CountTokens(grpc::CallbackServerContext* context,
                                        const ::vision::v1::CountTokensRequest* request,
                                        ::vision::v1::CountTokensResponse* response) override;

  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const ::vision::v1::ListModelsRequest* request,
                                       ::vision::v1::ListModelsResponse* response) override;

  grpc::ServerReadReactor<::vision::v1::UploadRequest>* Upload(
      grpc::CallbackServerContext* context, ::vision::v1::File* response) override;

  grpc::ServerUnaryReactor* GetFile(grpc::CallbackServerContext* context,
                                    const ::vision::v1::GetFileRequest* request,
                                    ::vision::v1::File* response) override;

  grpc::ServerUnaryReactor* ListFiles(grpc::CallbackServerContext* context,
                                      const ::vision::v1::ListFilesRequest* request,
                                      ::vision::v1::ListFilesResponse* response) override;

  grpc::ServerUnaryReactor* DeleteFile(grpc::CallbackServerContext* context,
                                       const ::vision::v1::DeleteFileRequest* request,
                                       google::protobuf::Empty* response) override;

  // ---- Batch jobs (#20): UNIMPLEMENTED when the service has no batches stub. ----
  grpc::ServerReadReactor<::vision::v1::CreateBatchRequest>* CreateBatch(
      grpc::CallbackServerContext* context, ::vision::v1::BatchJob* response) override;
  grpc::ServerUnaryReactor* GetBatch(grpc::CallbackServerContext* context,
                                     const ::vision::v1::GetBatchRequest* request,
                                     ::vision::v1::BatchJob* response) override;
  grpc::ServerUnaryReactor* ListBatches(grpc::CallbackServerContext* context,
                                        const ::vision::v1::ListBatchesRequest* request,
                                        ::vision::v1::ListBatchesResponse* response) override;
  grpc::ServerUnaryReactor* CancelBatch(grpc::CallbackServerContext* context,
                                        const ::vision::v1::CancelBatchRequest* request,
                                        google::protobuf::Empty* response) override;
  grpc::ServerUnaryReactor* DeleteBatch(grpc::CallbackServerContext* context,
                                        const ::vision::v1::DeleteBatchRequest* request,
                                        google::protobuf::Empty* response) override;
  grpc::ServerWriteReactor<::vision::v1::BatchResult>* ReadBatchResults(
      grpc::CallbackServerContext* context,
      const ::vision::v1::ReadBatchResultsRequest* request) override;

 private:
  // The batch context of an admitted call: the caller's owner tag and policy.
  vision::BatchContext BatchFor(const Admission& admission,
                                grpc::CallbackServerContext* context);
  // The caller of `context` and its policy and permit, or why the call may not go ahead.
  absl::StatusOr<Admission> Admit(grpc::CallbackServerContext* context);
  // The Files context of an admitted call: with authentication on, the caller's owner tag makes
  // only the caller's files visible and tags the files the call creates (file isolation).
  vision::FilesContext FilesFor(const Admission& admission) const;
  // `bytes` of --max_request_memory_mb for an admitted call, or the refusal.
  absl::StatusOr<Semaphore::Permit> ReserveRequestMemory(int64_t bytes);
  // The --max_call_duration_s limit of a call without a deadline; null for one with a deadline.
  std::shared_ptr<vision::CallExpiry> ExpiryFor(const grpc::CallbackServerContext* context) const;

  // The steps every model and files RPC shares: a --max_concurrent_calls permit, admission of the
  // caller, `request_bytes` of request memory, then `start_task(admission, callbacks)` tracked
  // (cancelled and waited for at shutdown, bounded by `expiry`). What the call holds is given
  // back when its task ends.
  template <typename Callbacks, typename StartTask>
  absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartAdmitted(
      grpc::CallbackServerContext* context, bool has_call_permit, int64_t request_bytes,
      const std::shared_ptr<vision::CallExpiry>& expiry, Callbacks callbacks,
      StartTask& start_task);
  template <typename Response, typename Request, typename StartTask>
  grpc::ServerWriteReactor<Response>* Stream(grpc::CallbackServerContext* context,
                                             const Request* request, StartTask start_task);
  template <typename Response, typename StartTask>
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context, int64_t request_bytes,
                                  Response* response, StartTask start_task);

  std::shared_ptr<gemini::GenerateStub> gemini_;
  std::shared_ptr<gemini::FilesStub> gemini_files_;
  std::shared_ptr<gemini::BatchesStub> gemini_batches_;  // null: no batch jobs
  vision::VisionOptions options_;
  std::shared_ptr<const CallerPolicy> open_policy_;  // when gate_ is null
  std::shared_ptr<CallerGate> gate_;
  ThreadPool cpu_;
  const CallRegistry& calls_;
  std::shared_ptr<Timer> timer_;  // detached calls' expiry; shared with files_
  // Every call the service started (RPCs and the upstream requests that outlive them): the
  // destructor cancels and waits for them before any member is destroyed.
  vision::DetachedCalls detached_;
  // What the file-aware calls share (they hold it; its CPU pool and detached_ are the members
  // above, which outlive every call: see the destructor).
  std::shared_ptr<const vision::FilesRuntime> files_;
  CallLimiter limiter_;
  Semaphore request_memory_;
  // The bytes of CreateBatch request files in the spool (--batch_spool_max_mb).
  Semaphore batch_spool_;
  const absl::Duration overload_retry_after_;
  const absl::Duration max_call_duration_;
};

}  // namespace vision_gateway::server

#endif  // VISION_GATEWAY_SERVICE_SERVER_VISION_SERVICE_H_
