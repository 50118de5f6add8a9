// Callback-API reactors that bridge a vision task (results arriving on I/O threads) to a gRPC call.
//
// Lifetime: a reactor is deleted only in OnDone, and only once the upstream task has also reported
// completion, so a late upstream callback never touches a deleted reactor. Finish is called exactly
// once; writes are queued with one in flight; OnCancel cancels the upstream call. No lock is held
// while calling into gRPC.
#ifndef VISION_GATEWAY_SERVICE_SERVER_REACTORS_H_
#define VISION_GATEWAY_SERVICE_SERVER_REACTORS_H_

#include <grpcpp/grpcpp.h>

#include <list>
#include <memory>
#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "service/vision/v1.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/common/error_reasons.h"
#include "service/common/log.h"
#include "service/common/status_details.h"
#include "service/gemini/gemini_client.h"
#include "service/server/call_limiter.h"
#include "service/server/exception_guard.h"
#include "service/server/status_conversion.h"
#include "service/vision/caption_task.h"
#include "service/vision/detached_calls.h"

namespace vision_gateway::server {

// The caller's deadline, or InfiniteFuture when it set none.
absl::Time CallDeadline(const grpc::CallbackServerContext* context);

using StartedCall = absl::StatusOr<std::shared_ptr<gemini::PendingCall>>;

// What both reactor kinds share: the started upstream call, cancellation in either order, and
// the rule that the reactor is deleted only once both gRPC (OnDone) and the upstream task are done.
template <typename ReactorBase>
class UpstreamReactor : public ReactorBase {
 public:
  void OnCancel() override {
    std::shared_ptr<gemini::PendingCall> upstream;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      upstream = upstream_;
    }
    if (upstream) upstream->Cancel();
  }

  void OnDone() override {
    bool destroy;
    {
      absl::MutexLock lock(&mu_);
      reactor_done_ = true;
      destroy = upstream_done_;
    }
    if (destroy) delete this;
  }

 protected:
  // Held until the reactor is deleted: the call counts against --max_concurrent_calls until both
  // gRPC and the upstream task are done with it.
  Semaphore::Permit permit_;
  // The call's time limit when the caller set no deadline (--max_call_duration_s); null: none.
  std::shared_ptr<const vision::CallExpiry> expiry_;

  absl::Status Outcome(absl::Status status) const {
    return expiry_ != nullptr ? expiry_->Apply(std::move(status)) : status;
  }

  // Runs a task's start function (on the gRPC callback thread). An exception from it — bad_alloc
  // while copying the images or encoding a large request body, or any other — fails this call
  // with INTERNAL (INTERNAL_ERROR) instead of escaping into gRPC, which would end the process.
  // The task functions hand the callbacks to a running task as their last step, so a throw
  // means no task was started and none will call back.
  template <typename F>
  static StartedCall StartGuarded(F&& start) {
    std::optional<StartedCall> started;
    absl::Status guarded =
        RunGuarded("starting the call", "the gateway could not start the call (out of memory?); retry",
                   [&] { started.emplace(start()); });
    if (!guarded.ok()) return guarded;
    return *std::move(started);
  }

  // Keeps the started call (cancelling it at once if the RPC was cancelled meanwhile). A call that
  // failed to start counts as done upstream; its status is returned for the caller to Finish with.
  absl::Status Attach(StartedCall call) {
    if (!call.ok()) {
      absl::MutexLock lock(&mu_);
      upstream_done_ = true;
      return call.status();
    }
    std::shared_ptr<gemini::PendingCall> started = *std::move(call);
    bool cancel;
    {
      absl::MutexLock lock(&mu_);
      upstream_ = started;
      cancel = cancelled_;
    }
    if (cancel) started->Cancel();
    return absl::OkStatus();
  }

  absl::Mutex mu_;
  std::shared_ptr<gemini::PendingCall> upstream_ ABSL_GUARDED_BY(mu_);
  bool upstream_done_ ABSL_GUARDED_BY(mu_) = false;
  bool reactor_done_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

// How a stream's messages may be combined. The last message of a stream (IsFinal) is held back
// until the task completes, so that it goes out in one batch with the status
// (StartWriteAndFinish). A message that arrives while another is queued may be merged into it
// (Merge returns true): caption text deltas concatenate, so a slow client gets fewer, larger
// pieces and nothing is lost; objects of Detect/Segment are never merged.
inline bool IsFinal(const ::vision::v1::CaptionResponse& r) { return !r.finish_reason().empty(); }
inline bool IsFinal(const ::vision::v1::DetectResponse& r) { return r.has_summary(); }
inline bool IsFinal(const ::vision::v1::SegmentResponse& r) { return r.has_summary(); }

inline bool Merge(::vision::v1::CaptionResponse& queued, ::vision::v1::CaptionResponse& next) {
  if (IsFinal(queued)) return false;
  next.mutable_text()->insert(0, queued.text());
  queued = std::move(next);
  return true;
}
inline bool Merge(::vision::v1::DetectResponse&, ::vision::v1::DetectResponse&) { return false; }
inline bool Merge(::vision::v1::SegmentResponse&, ::vision::v1::SegmentResponse&) { return false; }

template <typename Response>
class StreamReactor final : public UpstreamReactor<grpc::ServerWriteReactor<Response>> {
  using Base = UpstreamReactor<grpc::ServerWriteReactor<Response>>;
  using Base::mu_;
  using Base::upstream_;
  using Base::upstream_done_;
  using Base::reactor_done_;

 public:
  using Start = absl::FunctionRef<StartedCall(vision::TaskCallbacks<Response>)>;

  StreamReactor(Semaphore::Permit permit,
                std::shared_ptr<const vision::CallExpiry> expiry, Start start) {
    this->permit_ = std::move(permit);
    this->expiry_ = std::move(expiry);
    absl::Status started = this->Attach(Base::StartGuarded([&] {
      return start(vision::TaskCallbacks<Response>{
          .on_response = [this](Response r) { Push(std::move(r)); },
          .on_done = [this](absl::Status s) { Complete(std::move(s)); },
      });
    }));
    if (!started.ok()) {
      {
        absl::MutexLock lock(&mu_);
        finished_ = true;
      }
      this->Finish(ToCallerGrpcStatus(started));
    }
  }

  void OnWriteDone(bool ok) override {
    Action action;
    std::shared_ptr<gemini::PendingCall> cancel;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) {
        // The client went away: stop the upstream call and end this one.
        queue_.clear();
        cancel = upstream_;
        if (!finished_) {
          finished_ = true;
          action.finish = grpc::Status(grpc::StatusCode::CANCELLED, "write failed: client gone");
        }
      } else {
        action = NextLocked();
      }
    }
    if (cancel) cancel->Cancel();
    Perform(action);
  }

 private:
  // What to do after the lock is released: at most one of a write, a write + finish, a finish.
  struct Action {
    bool write = false;
    std::optional<grpc::Status> finish;
  };

  // Decides the next step from the queue and the upstream state. Requires !writing_.
  Action NextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Action action;
    if (finished_) return action;
    if (!queue_.empty() && (!IsFinal(queue_.front()) || upstream_done_)) {
      current_ = std::move(queue_.front());
      queue_.pop_front();
      writing_ = action.write = true;
    }
    if (upstream_done_ && queue_.empty()) {
      finished_ = true;
      action.finish = ToCallerGrpcStatus(final_status_);
    }
    return action;
  }

  // May lead to OnDone and delete: touch nothing after it.
  void Perform(Action& action) {
    if (action.write && action.finish) {
      this->StartWriteAndFinish(&current_, grpc::WriteOptions(), *action.finish);
    } else if (action.write) {
      this->StartWrite(&current_);
    } else if (action.finish) {
      this->Finish(*action.finish);
    }
  }

  void Push(Response response) {
    Action action;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      if (queue_.empty() || !Merge(queue_.back(), response)) queue_.push_back(std::move(response));
      if (!writing_) action = NextLocked();
    }
    Perform(action);
  }

  void Complete(absl::Status status) {
    Action action;
    bool destroy = false;
    {
      absl::MutexLock lock(&mu_);
      upstream_done_ = true;
      final_status_ = this->Outcome(std::move(status));
      if (reactor_done_) {
        destroy = true;
      } else if (!writing_) {
        action = NextLocked();
      }
    }
    if (destroy) {
      delete this;
    } else {
      Perform(action);
    }
  }

  // A list, not a deque: libstdc++'s deque allocates its map and a 512-byte block as soon as it
  // is made, which every open stream would hold while waiting for its first message.
  std::list<Response> queue_ ABSL_GUARDED_BY(mu_);
  Response current_;  // the write in flight; touched only by whoever set writing_
  absl::Status final_status_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

template <typename Response>
class UnaryReactor final : public UpstreamReactor<grpc::ServerUnaryReactor> {
 public:
  using Done = absl::AnyInvocable<void(absl::StatusOr<Response>)>;
  using Start = absl::FunctionRef<StartedCall(Done)>;

  UnaryReactor(Semaphore::Permit permit,
               std::shared_ptr<const vision::CallExpiry> expiry, Response* response, Start start)
      : response_(response) {
    permit_ = std::move(permit);
    expiry_ = std::move(expiry);
    absl::Status started = Attach(StartGuarded([&] {
      return start([this](absl::StatusOr<Response> result) { Complete(std::move(result)); });
    }));
    if (!started.ok()) this->Finish(ToCallerGrpcStatus(started));
  }

 private:
  void Complete(absl::StatusOr<Response> result) {
    grpc::Status status;
    if (result.ok()) {
      *response_ = *std::move(result);
    } else {
      status = ToCallerGrpcStatus(Outcome(result.status()));
    }
    {
      absl::MutexLock lock(&mu_);
      upstream_done_ = true;
    }
    this->Finish(status);  // OnDone (and delete) may follow at once: touch nothing after it
  }

  Response* response_;
};

}  // namespace vision_gateway::server

#endif  // VISION_GATEWAY_SERVICE_SERVER_REACTORS_H_
