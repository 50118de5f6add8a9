#include "service/server/vision_service.h"

#include <chrono>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"

#include "service/server/batch_reactors.h"
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

// What an admitted call holds while its task runs: the caller's concurrency slot and its request
// bytes are given back before the caller hears of the end; then the call's tracking ends (the
// service may be destroyed from that moment: touch nothing of it after).
struct Held {
  CallerLimiter::Permit caller;
  Semaphore::Permit memory;
  vision::DetachedCalls::Ender end;
};

template <typename Response>
vision::TaskCallbacks<Response> HoldUntilDone(vision::TaskCallbacks<Response> callbacks,
                                              Held held) {
  callbacks.on_done = [held = std::move(held),
                       on_done = std::move(callbacks.on_done)](absl::Status status) mutable {
    const vision::DetachedCalls::Ender end = held.end;
    { Held release = std::move(held); }
    on_done(std::move(status));
    end();
  };
  return callbacks;
}

template <typename Result>
absl::AnyInvocable<void(Result)> HoldUntilDone(absl::AnyInvocable<void(Result)> done, Held held) {
  return [held = std::move(held), done = std::move(done)](Result result) mutable {
    const vision::DetachedCalls::Ender end = held.end;
    { Held release = std::move(held); }
    done(std::move(result));
    end();
  };
}

vision::BatchResultsCallbacks HoldUntilDone(vision::BatchResultsCallbacks callbacks, Held held) {
  callbacks.on_done = [held = std::move(held),
                       on_done = std::move(callbacks.on_done)](absl::Status status) mutable {
    const vision::DetachedCalls::Ender end = held.end;
    { Held release = std::move(held); }
    on_done(std::move(status));
    end();
  };
  return callbacks;
}

absl::Status NoBatches() {
  return absl::UnimplementedError(
      "batch jobs are not available on this gateway (it was started without the Gemini Batch "
      "API)");
}

absl::Status ShuttingDown() {
  return absl::UnavailableError("the gateway is shutting down; retry on another replica");
}

}  // namespace

VisionServiceImpl::VisionServiceImpl(gemini::GeminiStubs gemini,
                                     vision::VisionOptions options, LimitOptions limits,
                                     const CallRegistry& calls, std::shared_ptr<CallerGate> gate)
    : gemini_(std::move(gemini.generate)),
      gemini_files_(std::move(gemini.files)),
      gemini_batches_(std::move(gemini.batches)),
      options_(std::move(options)),
      open_policy_(std::make_shared<const CallerPolicy>(CallerPolicy{{}, options_})),
      gate_(std::move(gate)),
      cpu_(limits.cpu_threads, limits.max_queued_cpu_work),
      calls_(calls),
      timer_(MakeThreadTimer()),
      detached_(timer_.get()),
      files_(std::make_shared<const vision::FilesRuntime>(gemini_files_, timer_, options_, &cpu_,
                                                          &detached_)),
      limiter_(limits.max_concurrent_calls, limits.overload_retry_after),
      request_memory_(limits.max_request_memory_bytes),
      batch_spool_(options_.batch_spool_max_bytes),
      overload_retry_after_(limits.overload_retry_after),
      max_call_duration_(limits.max_call_duration) {}

VisionServiceImpl::~VisionServiceImpl() {
  // gRPC has finished every call (OnDone) by now, but a call whose client went away may still
  // have its upstream task running, and that task uses the members below (the CPU pool, the
  // timer, the limiters): cancel every tracked call and wait until each has ended.
  const int left = detached_.CancelAndWait(vision::DetachedCalls::kDestructorWait);
  if (left > 0) LogError("%d calls did not end at shutdown", left);
}

std::shared_ptr<vision::CallExpiry> VisionServiceImpl::ExpiryFor(
    const grpc::CallbackServerContext* context) const {
  if (max_call_duration_ <= absl::ZeroDuration() || max_call_duration_ == absl::InfiniteDuration() ||
      CallDeadline(context) != absl::InfiniteFuture()) {
    return nullptr;
  }
  return std::make_shared<vision::CallExpiry>(
      absl::Now() + max_call_duration_,
      WithErrorInfo(absl::DeadlineExceededError(absl::StrCat(
                        "the call ran for the gateway's limit of ",
                        absl::FormatDuration(max_call_duration_),
                        " for calls without a deadline (--max_call_duration_s) and was ended; set "
                        "a deadline on the call")),
                    reasons::kMaxCallDuration, {{"limit", "max_call_duration_s"}}));
}

template <typename Callbacks, typename StartTask>
StartedCall VisionServiceImpl::StartAdmitted(grpc::CallbackServerContext* context,
                                             bool has_call_permit, int64_t request_bytes,
                                             const std::shared_ptr<vision::CallExpiry>& expiry,
                                             Callbacks callbacks, StartTask& start_task) {
  if (!has_call_permit) return limiter_.Refusal();
  absl::StatusOr<Admission> admission = Admit(context);
  if (!admission.ok()) return admission.status();
  Held held{.caller = std::move(admission->permit)};
  if (request_bytes > 0) {
    absl::StatusOr<Semaphore::Permit> memory = ReserveRequestMemory(request_bytes);
    if (!memory.ok()) return memory.status();
    held.memory = *std::move(memory);
  }
  const uint64_t id = detached_.Begin();
  if (id == 0) return ShuttingDown();
  held.end = vision::DetachedCalls::Ender{&detached_, id};
  const vision::DetachedCalls::Ender end = held.end;
  StartedCall started = absl::UnknownError("not started");
  try {
    started = start_task(*admission, HoldUntilDone(std::move(callbacks), std::move(held)));
  } catch (...) {
    end();
    throw;
  }
  if (!started.ok()) {
    end();  // no task: nothing will call back
    return started;
  }
  detached_.Attach(id, [call = *started] { call->Cancel(); }, expiry);
  return started;
}

template <typename Response, typename Request, typename StartTask>
grpc::ServerWriteReactor<Response>* VisionServiceImpl::Stream(grpc::CallbackServerContext* context,
                                                              const Request* request,
                                                              StartTask start_task) {
  auto permit = limiter_.TryAcquire();
  const bool has_call_permit = static_cast<bool>(permit);
  std::shared_ptr<vision::CallExpiry> expiry = ExpiryFor(context);
  return new StreamReactor<Response>(
      std::move(permit), expiry, [&](vision::TaskCallbacks<Response> callbacks) -> StartedCall {
        return StartAdmitted(context, has_call_permit,
                             static_cast<int64_t>(request->ByteSizeLong()), expiry,
                             std::move(callbacks), start_task);
      });
}

template <typename Response, typename StartTask>
grpc::ServerUnaryReactor* VisionServiceImpl::Unary(grpc::CallbackServerContext* context,
                                                   int64_t request_bytes, Response* response,
                                                   StartTask start_task) {
  auto permit = limiter_.TryAcquire();
  const bool has_call_permit = static_cast<bool>(permit);
  std::shared_ptr<vision::CallExpiry> expiry = ExpiryFor(context);
  return new UnaryReactor<Response>(
      std::move(permit), expiry, response,
      [&](typename UnaryReactor<Response>::Done done) -> StartedCall {
        return StartAdmitted(context, has_call_permit, request_bytes, expiry, std::move(done),
                             start_task);
      });
}

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
  return vision::FilesContext{
      .runtime = files_, .owner_tag = vision::OwnerTagOf(admission.caller), .record = nullptr};
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
// per-caller limits) and, for the model calls, for its request bytes (--max_request_memory_mb).
grpc::ServerWriteReactor<v1::CaptionResponse>* VisionServiceImpl::Caption(
    grpc::CallbackServerContext* context, const v1::CaptionRequest* request) {
  return Stream<v1::CaptionResponse>(
      context, request, [&](const Admission& admission, auto callbacks) {
        const vision::FilesContext files = FilesFor(admission);
        return vision::StartCaption(*gemini_, admission.policy->vision, TakeRequest(request),
                                    CallDeadline(context), std::move(callbacks),
                                    calls_.Find(context), &files);
      });
}

grpc::ServerWriteReactor<v1::DetectResponse>* VisionServiceImpl::Detect(
    grpc::CallbackServerContext* context, const v1::DetectRequest* request) {
  return Stream<v1::DetectResponse>(
      context, request, [&](const Admission& admission, auto callbacks) {
        const vision::FilesContext files = FilesFor(admission);
        return vision::StartDetect(*gemini_, cpu_, admission.policy->vision, TakeRequest(request),
                                   CallDeadline(context), std::move(callbacks),
                                   calls_.Find(context), &files);
      });
}

grpc::ServerWriteReactor<v1::SegmentResponse>* VisionServiceImpl::Segment(
    grpc::CallbackServerContext* context, const v1::SegmentRequest* request) {
  return Stream<v1::SegmentResponse>(
      context, request, [&](const Admission& admission, auto callbacks) {
        const vision::FilesContext files = FilesFor(admission);
        return vision::StartSegment(*gemini_, cpu_, admission.policy->vision,
                                    TakeRequest(request), CallDeadline(context),
                                    std::move(callbacks), calls_.Find(context), &files);
      });
}

grpc::ServerUnaryReactor* VisionServiceImpl::CountTokens(grpc::CallbackServerContext* context,
                                                         const v1::CountTokensRequest* request,
                                                         v1::CountTokensResponse* response) {
  return Unary(context, static_cast<int64_t>(request->ByteSizeLong()), response,
               [&](const Admission& admission, auto done) {
                 const vision::FilesContext files = FilesFor(admission);
                 return vision::StartCountTokens(*gemini_, cpu_, admission.policy->vision,
                                                 TakeRequest(request), CallDeadline(context),
                                                 std::move(done), calls_.Find(context), &files);
               });
}

// The models list is the gateway's own (read from Gemini at start and on refresh), filtered by the
// caller's allowlist; no Gemini call unless no list was read yet.
grpc::ServerUnaryReactor* VisionServiceImpl::ListModels(grpc::CallbackServerContext* context,
                                                        const v1::ListModelsRequest* /*request*/,
                                                        v1::ListModelsResponse* response) {
  return Unary(context, 0, response, [&](const Admission& admission, auto done) -> StartedCall {
    vision::StartListModels(admission.policy->vision, std::move(done));
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
  Semaphore::Permit call_permit = limiter_.TryAcquire();
  if (!call_permit) return new UploadReactor(limiter_.Refusal(), response);
  absl::StatusOr<Admission> admission = Admit(context);
  if (!admission.ok()) return new UploadReactor(admission.status(), response);
  // An upload holds one Gemini chunk (8 MiB) while it fills (and one message, bounded by the
  // receive limit like every request).
  absl::StatusOr<Semaphore::Permit> memory = ReserveRequestMemory(int64_t{8} << 20);
  if (!memory.ok()) return new UploadReactor(memory.status(), response);
  const uint64_t id = detached_.Begin();
  if (id == 0) return new UploadReactor(ShuttingDown(), response);
  // The caller's owner tag goes into the file id ("" while authentication is off).
  return new UploadReactor(FilesFor(*admission).WithRecord(calls_.Find(context)),
                           CallDeadline(context), response, std::move(call_permit),
                           std::move(admission->permit), *std::move(memory),
                           UploadTracking{&detached_, id, ExpiryFor(context)});
}

grpc::ServerUnaryReactor* VisionServiceImpl::GetFile(grpc::CallbackServerContext* context,
                                                     const v1::GetFileRequest* request,
                                                     v1::File* response) {
  return Unary(context, 0, response, [&](const Admission& admission, auto done) {
    return vision::StartGetFile(FilesFor(admission).WithRecord(calls_.Find(context)), *request,
                                CallDeadline(context), std::move(done));
  });
}

grpc::ServerUnaryReactor* VisionServiceImpl::ListFiles(grpc::CallbackServerContext* context,
                                                       const v1::ListFilesRequest* request,
                                                       v1::ListFilesResponse* response) {
  return Unary(context, 0, response, [&](const Admission& admission, auto done) {
    return vision::StartListFiles(FilesFor(admission).WithRecord(calls_.Find(context)), *request,
                                  CallDeadline(context), std::move(done));
  });
}

grpc::ServerUnaryReactor* VisionServiceImpl::DeleteFile(grpc::CallbackServerContext* context,
                                                        const v1::DeleteFileRequest* request,
                                                        google::protobuf::Empty* response) {
  return Unary(context, 0, response, [&](const Admission& admission, auto done) {
    return vision::StartDeleteFile(
        FilesFor(admission).WithRecord(calls_.Find(context)), *request, CallDeadline(context),
        [done = std::move(done)](absl::Status status) mutable {
          if (!status.ok()) return done(std::move(status));
          done(google::protobuf::Empty());
        });
  });
}

// ---- Batch jobs (#20) ----

vision::BatchContext VisionServiceImpl::BatchFor(const Admission& admission,
                                                 grpc::CallbackServerContext* context) {
  return vision::BatchContext{.batches = gemini_batches_.get(),
                              .cpu = &cpu_,
                              .options = &admission.policy->vision,
                              .owner_tag = vision::OwnerTagOf(admission.caller),
                              .record = calls_.Find(context)};
}

grpc::ServerReadReactor<v1::CreateBatchRequest>* VisionServiceImpl::CreateBatch(
    grpc::CallbackServerContext* context, v1::BatchJob* response) {
  if (gemini_batches_ == nullptr) return new CreateBatchReactor(NoBatches(), response);
  Semaphore::Permit call_permit = limiter_.TryAcquire();
  if (!call_permit) return new CreateBatchReactor(limiter_.Refusal(), response);
  absl::StatusOr<Admission> admission = Admit(context);
  if (!admission.ok()) return new CreateBatchReactor(admission.status(), response);
  // A CreateBatch holds one item at a time (its message, within the receive limit, and its
  // encoded line), then one upload chunk read back from the spool: counted as one image of
  // the largest size a request may carry.
  absl::StatusOr<Semaphore::Permit> memory =
      ReserveRequestMemory(std::min<int64_t>(admission->policy->vision.max_image_bytes,
                                             request_memory_.capacity() > 0
                                                 ? request_memory_.capacity()
                                                 : admission->policy->vision.max_image_bytes));
  if (!memory.ok()) return new CreateBatchReactor(memory.status(), response);
  const uint64_t id = detached_.Begin();
  if (id == 0) return new CreateBatchReactor(ShuttingDown(), response);
  vision::BatchCreateContext batch{
      .files = FilesFor(*admission).WithRecord(calls_.Find(context)),
      .options = std::shared_ptr<const vision::VisionOptions>(admission->policy,
                                                              &admission->policy->vision),
      .batches = gemini_batches_.get(),
      .spool_dir = admission->policy->vision.batch_spool_dir,
      .spool_bytes = &batch_spool_,
      .max_items = admission->policy->vision.max_batch_items};
  return new CreateBatchReactor(batch, CallDeadline(context), response, std::move(call_permit),
                                std::move(admission->permit), *std::move(memory),
                                UploadTracking{&detached_, id, ExpiryFor(context)});
}

grpc::ServerUnaryReactor* VisionServiceImpl::GetBatch(grpc::CallbackServerContext* context,
                                                      const v1::GetBatchRequest* request,
                                                      v1::BatchJob* response) {
  return Unary(context, 0, response, [&](const Admission& admission, auto done) -> StartedCall {
    if (gemini_batches_ == nullptr) return NoBatches();
    return vision::StartGetBatch(BatchFor(admission, context), *request, CallDeadline(context),
                                 std::move(done));
  });
}

grpc::ServerUnaryReactor* VisionServiceImpl::ListBatches(grpc::CallbackServerContext* context,
                                                         const v1::ListBatchesRequest* request,
                                                         v1::ListBatchesResponse* response) {
  return Unary(context, 0, response, [&](const Admission& admission, auto done) -> StartedCall {
    if (gemini_batches_ == nullptr) return NoBatches();
    return vision::StartListBatches(BatchFor(admission, context), *request,
                                    CallDeadline(context), std::move(done));
  });
}

grpc::ServerUnaryReactor* VisionServiceImpl::CancelBatch(grpc::CallbackServerContext* context,
                                                         const v1::CancelBatchRequest* request,
                                                         google::protobuf::Empty* response) {
  return Unary(context, 0, response, [&](const Admission& admission, auto done) -> StartedCall {
    if (gemini_batches_ == nullptr) return NoBatches();
    return vision::StartCancelBatch(
        BatchFor(admission, context), *request, CallDeadline(context),
        [done = std::move(done)](absl::Status status) mutable {
          if (!status.ok()) return done(std::move(status));
          done(google::protobuf::Empty());
        });
  });
}

grpc::ServerUnaryReactor* VisionServiceImpl::DeleteBatch(grpc::CallbackServerContext* context,
                                                         const v1::DeleteBatchRequest* request,
                                                         google::protobuf::Empty* response) {
  return Unary(context, 0, response, [&](const Admission& admission, auto done) -> StartedCall {
    if (gemini_batches_ == nullptr) return NoBatches();
    return vision::StartDeleteBatch(
        BatchFor(admission, context), *request, CallDeadline(context),
        [done = std::move(done)](absl::Status status) mutable {
          if (!status.ok()) return done(std::move(status));
          done(google::protobuf::Empty());
        });
  });
}

grpc::ServerWriteReactor<v1::BatchResult>* VisionServiceImpl::ReadBatchResults(
    grpc::CallbackServerContext* context, const v1::ReadBatchResultsRequest* request) {
  auto permit = limiter_.TryAcquire();
  const bool has_call_permit = static_cast<bool>(permit);
  std::shared_ptr<vision::CallExpiry> expiry = ExpiryFor(context);
  auto start_task = [&](const Admission& admission,
                        vision::BatchResultsCallbacks callbacks) -> StartedCall {
    if (gemini_batches_ == nullptr) return NoBatches();
    return vision::StartReadBatchResults(BatchFor(admission, context), *request,
                                         CallDeadline(context), std::move(callbacks));
  };
  return new BatchResultsReactor(
      std::move(permit), expiry, [&](vision::BatchResultsCallbacks callbacks) -> StartedCall {
        return StartAdmitted(context, has_call_permit, 0, expiry, std::move(callbacks),
                             start_task);
      });
}

}  // namespace vision_gateway::server
