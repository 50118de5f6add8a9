#include "service/server/vision_service.h"

#include <chrono>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"

#include "service/server/reactors.h"
#include "service/server/upload_reactor.h"
#include "service/vision/file_id.h"
#include "service/vision/caption_task.h"
#include "service/vision/model_catalog.h"
#include "service/vision/spatial_task.h"

namespace vision_gateway::server {

namespace v1 = ::vision::v1;

absl::Time CallDeadline(const grpc::CallbackServerContext* context) {
  const auto deadline = context->deadline();
  // No deadline shows up as a time point decades away.
  if (deadline >= std::chrono::system_clock::now() + std::chrono::hours(24 * 365)) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

// The request message is allocated by gRPC for this call alone and nothing reads it after the
// handler returns, so its image bytes are moved into the task (and from there base64-encoded
// straight into the upstream body) instead of being copied.
template <typename Request>
Request TakeRequest(const Request* request) {
  return std::move(*const_cast<Request*>(request));
}

namespace {

// The call's permits (its caller's slot, its request memory) are held until the task reports
// completion, and given back before the caller hears of it.
template <typename Response, typename... Permits>
vision::TaskCallbacks<Response> HoldPermit(vision::TaskCallbacks<Response> callbacks,
                                           Permits... permits) {
  callbacks.on_done = [... permits = std::move(permits),
                       on_done = std::move(callbacks.on_done)](absl::Status status) mutable {
    { std::tuple<Permits...> release(std::move(permits)...); }
    on_done(std::move(status));
  };
  return callbacks;
}

template <typename Result, typename... Permits>
absl::AnyInvocable<void(Result)> HoldPermit(absl::AnyInvocable<void(Result)> done,
                                            Permits... permits) {
  return [... permits = std::move(permits), done = std::move(done)](Result result) mutable {
    { std::tuple<Permits...> release(std::move(permits)...); }
    done(std::move(result));
  };
}

}  // namespace

VisionServiceImpl::VisionServiceImpl(gemini::GeminiStubs gemini,
                                     vision::VisionOptions options, LimitOptions limits,
                                     const CallRegistry& calls, std::shared_ptr<CallerGate> gate)
    : gemini_(std::move(gemini.generate)),
      gemini_files_(std::move(gemini.files)),
      options_(std::move(options)),
      open_policy_(std::make_shared<const CallerPolicy>(CallerPolicy{{}, options_})),
      gate_(std::move(gate)),
      cpu_(limits.cpu_threads, limits.max_queued_cpu_work),
      calls_(calls),
      timer_(MakeThreadTimer()),
      hashes_(options_.file_hash_ttl, *timer_),
      files_{.gemini = gemini_files_.get(),
             .cpu = &cpu_,
             .timer = timer_.get(),
             .hashes = &hashes_,
             .options = &options_,
             .detached = &detached_,
             .filling_upload_chunks = &filling_upload_chunks_,
             .owner_tag = "",
             .record = nullptr},
      limiter_(limits.max_concurrent_calls, limits.overload_retry_after),
      request_memory_(limits.max_request_memory_bytes),
      overload_retry_after_(limits.overload_retry_after) {}

absl::StatusOr<Semaphore::Permit> VisionServiceImpl::ReserveRequestMemory(int64_t bytes) {
  Semaphore::Permit permit = request_memory_.TryAcquire(bytes);
  if (permit) return permit;
  return WithRetryInfo(
      WithErrorInfo(absl::ResourceExhaustedError(absl::StrCat(
                        "the gateway holds its limit of ", request_memory_.capacity() >> 20,
                        " MiB of request bytes in calls in flight (--max_request_memory_mb); this "
                        "call's ", bytes >> 20, " MiB do not fit now: retry after the delay in "
                        "RetryInfo or on another replica")),
                    reasons::kServerOverloaded, {{"limit", "max_request_memory_mb"}}),
      overload_retry_after_);
}

vision::FilesContext VisionServiceImpl::FilesFor(const Admission& admission) const {
  vision::FilesContext files = files_;
  files.owner_tag = vision::OwnerTagOf(admission.caller);
  return files;
}

absl::StatusOr<Admission> VisionServiceImpl::Admit(grpc::CallbackServerContext* context) {
  if (gate_ == nullptr) return Admission{std::string(), open_policy_, {}};
  absl::StatusOr<Admission> admission = gate_->Admit(*context);
  // The caller names the call in the access log and the per-caller metrics.
  if (admission.ok() && !admission->caller.empty()) {
    if (auto record = calls_.Find(context)) record->SetCaller(admission->caller);
  }
  return admission;
}

// Every RPC first takes one of the server's call permits (--max_concurrent_calls; without one it
// is refused at once, SERVER_OVERLOADED), then is admitted for its caller (authentication and
// per-caller limits).
grpc::ServerWriteReactor<v1::CaptionResponse>* VisionServiceImpl::Caption(
    grpc::CallbackServerContext* context, const v1::CaptionRequest* request) {
  auto permit = limiter_.TryAcquire();
  const bool admitted = permit != nullptr;
  return new StreamReactor<v1::CaptionResponse>(
      std::move(permit), [&](vision::TaskCallbacks<v1::CaptionResponse> callbacks) -> StartedCall {
        if (!admitted) return limiter_.Refusal();
        absl::StatusOr<Admission> admission = Admit(context);
        if (!admission.ok()) return admission.status();
        absl::StatusOr<Semaphore::Permit> memory =
            ReserveRequestMemory(static_cast<int64_t>(request->ByteSizeLong()));
        if (!memory.ok()) return memory.status();
        const vision::FilesContext files = FilesFor(*admission);
        return vision::StartCaption(*gemini_, admission->policy->vision, TakeRequest(request),
                                    CallDeadline(context),
                                    HoldPermit(std::move(callbacks), std::move(admission->permit),
                                               *std::move(memory)),
                                    calls_.Find(context), &files);
      });
}

grpc::ServerWriteReactor<v1::DetectResponse>* VisionServiceImpl::Detect(
    grpc::CallbackServerContext* context, const v1::DetectRequest* request) {
  auto permit = limiter_.TryAcquire();
  const bool admitted = permit != nullptr;
  return new StreamReactor<v1::DetectResponse>(
      std::move(permit), [&](vision::TaskCallbacks<v1::DetectResponse> callbacks) -> StartedCall {
        if (!admitted) return limiter_.Refusal();
        absl::StatusOr<Admission> admission = Admit(context);
        if (!admission.ok()) return admission.status();
        absl::StatusOr<Semaphore::Permit> memory =
            ReserveRequestMemory(static_cast<int64_t>(request->ByteSizeLong()));
        if (!memory.ok()) return memory.status();
        const vision::FilesContext files = FilesFor(*admission);
        return vision::StartDetect(*gemini_, cpu_, admission->policy->vision, TakeRequest(request),
                                   CallDeadline(context),
                                   HoldPermit(std::move(callbacks), std::move(admission->permit),
                                              *std::move(memory)),
                                   calls_.Find(context), &files);
      });
}

grpc::ServerWriteReactor<v1::SegmentResponse>* VisionServiceImpl::Segment(
    grpc::CallbackServerContext* context, const v1::SegmentRequest* request) {
  auto permit = limiter_.TryAcquire();
  const bool admitted = permit != nullptr;
  return new StreamReactor<v1::SegmentResponse>(
      std::move(permit), [&](vision::TaskCallbacks<v1::SegmentResponse> callbacks) -> StartedCall {
        if (!admitted) return limiter_.Refusal();
        absl::StatusOr<Admission> admission = Admit(context);
        if (!admission.ok()) return admission.status();
        absl::StatusOr<Semaphore::Permit> memory =
            ReserveRequestMemory(static_cast<int64_t>(request->ByteSizeLong()));
        if (!memory.ok()) return memory.status();
        const vision::FilesContext files = FilesFor(*admission);
        return vision::StartSegment(*gemini_, cpu_, admission->policy->vision,
                                    TakeRequest(request), CallDeadline(context),
                                    HoldPermit(std::move(callbacks), std::move(admission->permit),
                                               *std::move(memory)),
                                    calls_.Find(context), &files);
      });
}

grpc::ServerUnaryReactor* VisionServiceImpl::CountTokens(grpc::CallbackServerContext* context,
                                                         const v1::CountTokensRequest* request,
                                                         v1::CountTokensResponse* response) {
  auto permit = limiter_.TryAcquire();
  const bool admitted = permit != nullptr;
  return new UnaryReactor<v1::CountTokensResponse>(
      std::move(permit), response,
      [&](UnaryReactor<v1::CountTokensResponse>::Done done) -> StartedCall {
        if (!admitted) return limiter_.Refusal();
        absl::StatusOr<Admission> admission = Admit(context);
        if (!admission.ok()) return admission.status();
        absl::StatusOr<Semaphore::Permit> memory =
            ReserveRequestMemory(static_cast<int64_t>(request->ByteSizeLong()));
        if (!memory.ok()) return memory.status();
        const vision::FilesContext files = FilesFor(*admission);
        return vision::StartCountTokens(
            *gemini_, cpu_, admission->policy->vision, TakeRequest(request), CallDeadline(context),
            HoldPermit(std::move(done), std::move(admission->permit), *std::move(memory)),
            calls_.Find(context), &files);
      });
}

// The models list is the gateway's own (read from Gemini at start and on refresh), filtered by the
// caller's allowlist; no Gemini call unless no list was read yet.
grpc::ServerUnaryReactor* VisionServiceImpl::ListModels(grpc::CallbackServerContext* context,
                                                        const v1::ListModelsRequest* /*request*/,
                                                        v1::ListModelsResponse* response) {
  auto permit = limiter_.TryAcquire();
  const bool admitted = permit != nullptr;
  return new UnaryReactor<v1::ListModelsResponse>(
      std::move(permit), response,
      [&](UnaryReactor<v1::ListModelsResponse>::Done done) -> StartedCall {
        if (!admitted) return limiter_.Refusal();
        absl::StatusOr<Admission> admission = Admit(context);
        if (!admission.ok()) return admission.status();
        vision::StartListModels(admission->policy->vision,
                                HoldPermit(std::move(done), std::move(admission->permit)));
        // Nothing to cancel: the answer comes from the gateway's list (or one refresh of it).
        struct NothingToCancel final : gemini::PendingCall {
          void Cancel() override {}
        };
        return std::shared_ptr<gemini::PendingCall>(std::make_shared<NothingToCancel>());
      });
}

grpc::ServerReadReactor<v1::UploadRequest>* VisionServiceImpl::Upload(
    grpc::CallbackServerContext* context, v1::File* response) {
  // Uploads count against --max_concurrent_calls like every other call.
  std::unique_ptr<CallLimiter::Permit> call_permit = limiter_.TryAcquire();
  if (call_permit == nullptr) return new UploadReactor(limiter_.Refusal(), response);
  absl::StatusOr<Admission> admission = Admit(context);
  if (!admission.ok()) return new UploadReactor(admission.status(), response);
  // An upload holds one Gemini chunk (8 MiB) while it fills (and one message, bounded by the
  // receive limit like every request).
  absl::StatusOr<Semaphore::Permit> memory = ReserveRequestMemory(int64_t{8} << 20);
  if (!memory.ok()) return new UploadReactor(memory.status(), response);
  // The caller's owner tag goes into the file id ("" while authentication is off).
  return new UploadReactor(FilesFor(*admission).WithRecord(calls_.Find(context)),
                           CallDeadline(context), response, std::move(call_permit),
                           std::move(admission->permit), *std::move(memory));
}

grpc::ServerUnaryReactor* VisionServiceImpl::GetFile(grpc::CallbackServerContext* context,
                                                     const v1::GetFileRequest* request,
                                                     v1::File* response) {
  auto permit = limiter_.TryAcquire();
  const bool admitted = permit != nullptr;
  return new UnaryReactor<v1::File>(
      std::move(permit), response, [&](UnaryReactor<v1::File>::Done done) -> StartedCall {
        if (!admitted) return limiter_.Refusal();
        absl::StatusOr<Admission> admission = Admit(context);
        if (!admission.ok()) return admission.status();
        return vision::StartGetFile(FilesFor(*admission).WithRecord(calls_.Find(context)), *request, CallDeadline(context),
                                    HoldPermit(std::move(done), std::move(admission->permit)));
      });
}

grpc::ServerUnaryReactor* VisionServiceImpl::ListFiles(grpc::CallbackServerContext* context,
                                                       const v1::ListFilesRequest* request,
                                                       v1::ListFilesResponse* response) {
  auto permit = limiter_.TryAcquire();
  const bool admitted = permit != nullptr;
  return new UnaryReactor<v1::ListFilesResponse>(std::move(permit),
      response, [&](UnaryReactor<v1::ListFilesResponse>::Done done) -> StartedCall {
        if (!admitted) return limiter_.Refusal();
        absl::StatusOr<Admission> admission = Admit(context);
        if (!admission.ok()) return admission.status();
        return vision::StartListFiles(FilesFor(*admission).WithRecord(calls_.Find(context)), *request, CallDeadline(context),
                                      HoldPermit(std::move(done), std::move(admission->permit)));
      });
}

grpc::ServerUnaryReactor* VisionServiceImpl::DeleteFile(grpc::CallbackServerContext* context,
                                                        const v1::DeleteFileRequest* request,
                                                        google::protobuf::Empty* response) {
  auto permit = limiter_.TryAcquire();
  const bool admitted = permit != nullptr;
  return new UnaryReactor<google::protobuf::Empty>(std::move(permit),
      response, [&](UnaryReactor<google::protobuf::Empty>::Done done) -> StartedCall {
        if (!admitted) return limiter_.Refusal();
        absl::StatusOr<Admission> admission = Admit(context);
        if (!admission.ok()) return admission.status();
        return vision::StartDeleteFile(
            FilesFor(*admission).WithRecord(calls_.Find(context)), *request, CallDeadline(context),
            [done = HoldPermit(std::move(done), std::move(admission->permit))](
                absl::Status status) mutable {
              if (!status.ok()) return done(std::move(status));
              done(google::protobuf::Empty());
            });
      });
}

}  // namespace vision_gateway::server
