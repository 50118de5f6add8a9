// Callback-API reactors that bridge a vision task (results arriving on I/O threads) to a gRPC call.
//
// Lifetime: a reactor is deleted only in OnDone, and only once the upstream task has also reported
// completion, so a late upstream callback never touches a deleted reactor. Finish is called exactly
// once; writes are queued with one in flight; OnCancel cancels the upstream call. No lock is held
// while calling into gRPC.
#ifndef VISION_GATEWAY_SERVICE_SERVER_REACTORS_H_
#define VISION_GATEWAY_SERVICE_SERVER_REACTORS_H_

#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/gemini/gemini_client.h"
#include "service/server/status_conversion.h"
#include "service/vision/caption_task.h"

namespace vision_gateway::server {

// The caller's deadline, or InfiniteFuture when it set none.
absl::Time CallDeadline(const grpc::CallbackServerContext* context);

using StartedCall = absl::StatusOr<std::shared_ptr<gemini::PendingCall>>;

template <typename Response>
class StreamReactor final : public grpc::ServerWriteReactor<Response> {
 public:
  using Start = absl::FunctionRef<StartedCall(vision::TaskCallbacks<Response>)>;

  explicit StreamReactor(Start start) {
    StartedCall call = start(vision::TaskCallbacks<Response>{
        .on_response = [this](Response r) { Push(std::move(r)); },
        .on_done = [this](absl::Status s) { Complete(std::move(s)); },
    });
    bool cancel = false;
    {
      absl::MutexLock lock(&mu_);
      if (call.ok()) {
        upstream_ = *std::move(call);
        cancel = cancelled_;
      } else {
        upstream_done_ = true;
        finished_ = true;
      }
    }
    if (!call.ok()) {
      this->Finish(ToGrpcStatus(call.status()));
      return;
    }
    if (cancel) upstream_->Cancel();
  }

  void OnWriteDone(bool ok) override {
    std::optional<grpc::Status> finish;
    std::shared_ptr<gemini::PendingCall> cancel;
    bool write = false;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) {
        // The client went away: stop the upstream call and end this one.
        queue_.clear();
        cancel = upstream_;
        if (!finished_) {
          finished_ = true;
          finish = grpc::Status(grpc::StatusCode::CANCELLED, "write failed: client gone");
        }
      } else if (!queue_.empty()) {
        current_ = std::move(queue_.front());
        queue_.pop_front();
        writing_ = write = true;
      } else if (upstream_done_ && !finished_) {
        finished_ = true;
        finish = ToGrpcStatus(final_status_);
      }
    }
    if (cancel) cancel->Cancel();
    if (write) this->StartWrite(&current_);
    if (finish) this->Finish(*finish);
  }

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

 private:
  void Push(Response response) {
    bool write = false;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      if (writing_) {
        queue_.push_back(std::move(response));
      } else {
        current_ = std::move(response);
        writing_ = write = true;
      }
    }
    if (write) this->StartWrite(&current_);
  }

  void Complete(absl::Status status) {
    std::optional<grpc::Status> finish;
    bool destroy = false;
    {
      absl::MutexLock lock(&mu_);
      upstream_done_ = true;
      final_status_ = std::move(status);
      if (reactor_done_) {
        destroy = true;
      } else if (!finished_ && !writing_) {
        finished_ = true;
        finish = ToGrpcStatus(final_status_);
      }
    }
    if (destroy) {
      delete this;
    } else if (finish) {
      this->Finish(*finish);  // may lead to OnDone and delete: touch nothing after it
    }
  }

  absl::Mutex mu_;
  std::shared_ptr<gemini::PendingCall> upstream_ ABSL_GUARDED_BY(mu_);
  std::deque<Response> queue_ ABSL_GUARDED_BY(mu_);
  Response current_;  // the write in flight; touched only by whoever set writing_
  absl::Status final_status_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool upstream_done_ ABSL_GUARDED_BY(mu_) = false;
  bool reactor_done_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

template <typename Response>
class UnaryReactor final : public grpc::ServerUnaryReactor {
 public:
  using Done = absl::AnyInvocable<void(absl::StatusOr<Response>)>;
  using Start = absl::FunctionRef<StartedCall(Done)>;

  UnaryReactor(Response* response, Start start) : response_(response) {
    StartedCall call = start([this](absl::StatusOr<Response> result) { Complete(std::move(result)); });
    bool cancel = false;
    {
      absl::MutexLock lock(&mu_);
      if (call.ok()) {
        upstream_ = *std::move(call);
        cancel = cancelled_;
      } else {
        upstream_done_ = true;
      }
    }
    if (!call.ok()) {
      this->Finish(ToGrpcStatus(call.status()));
      return;
    }
    if (cancel) upstream_->Cancel();
  }

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

 private:
  void Complete(absl::StatusOr<Response> result) {
    grpc::Status status;
    if (result.ok()) {
      *response_ = *std::move(result);
    } else {
      status = ToGrpcStatus(result.status());
    }
    {
      absl::MutexLock lock(&mu_);
      upstream_done_ = true;
    }
    this->Finish(status);  // OnDone (and delete) may follow at once: touch nothing after it
  }

  Response* response_;
  absl::Mutex mu_;
  std::shared_ptr<gemini::PendingCall> upstream_ ABSL_GUARDED_BY(mu_);
  bool upstream_done_ ABSL_GUARDED_BY(mu_) = false;
  bool reactor_done_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace vision_gateway::server

#endif  // VISION_GATEWAY_SERVICE_SERVER_REACTORS_H_
