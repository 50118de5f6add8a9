// grpc-floor: a vision.v1 server whose Caption does no work at all — it answers every stream
// with the same two messages the gateway sends for the emulator's caption (text, then the
// final text with finish reason and usage) — to measure what gRPC's callback API costs per
// stream on this machine, the floor under the gateway's own CPU per stream (issue #18).
//
//   grpc-floor [--port 0] [--hop none|thread] [--api callback|async]
//     none:   both writes start on gRPC's own threads (the handler, then OnWriteDone).
//     thread: both writes start on one other thread, as the gateway's I/O thread does.
//     --api async: gRPC's completion-queue API instead, one thread per CPU each polling its own
//     queue (--hop is ignored): what the other threading model of this gRPC version costs.
// Prints "grpc-floor listening on 127.0.0.1:PORT"; run vision-bench against it with
// --server_pid to read its CPU per stream.
#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <algorithm>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "vision/v1/vision.grpc.pb.h"

ABSL_FLAG(int, port, 0, "Port (0: any free port).");
ABSL_FLAG(std::string, hop, "none", "Where the writes start: none (gRPC threads) or thread.");
ABSL_FLAG(std::string, api, "callback", "callback (the gateway's API) or async (completion queues).");

namespace {

namespace v1 = ::vision::v1;

void FillAnswer(v1::CaptionResponse& first, v1::CaptionResponse& last) {
  first.set_text("A red square and a blue circle on a light ");
  last.set_text("background.");
  last.set_finish_reason("STOP");
  last.mutable_usage()->set_prompt_tokens(263);
  last.mutable_usage()->set_output_tokens(12);
  last.mutable_usage()->set_total_tokens(275);
}

// One worker thread with a queue: stands in for the gateway's Asio I/O thread.
class Worker {
 public:
  Worker() : thread_([this] { Run(); }) {}
  ~Worker() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void Post(std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }

 private:
  void Run() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      fn();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

class Reactor final : public grpc::ServerWriteReactor<v1::CaptionResponse> {
 public:
  explicit Reactor(Worker* worker) : worker_(worker) {
    FillAnswer(first_, last_);
    Run([this] { StartWrite(&first_); });
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::CANCELLED);
      return;
    }
    if (++writes_ == 1) {
      Run([this] { StartWriteAndFinish(&last_, grpc::WriteOptions(), grpc::Status::OK); });
    }
  }
  void OnDone() override { delete this; }

 private:
  void Run(std::function<void()> fn) {
    if (worker_ != nullptr) {
      worker_->Post(std::move(fn));
    } else {
      fn();
    }
  }
  Worker* worker_;
  v1::CaptionResponse first_, last_;
  int writes_ = 0;
};

class Service final : public v1::VisionService::CallbackService {
 public:
  explicit Service(Worker* worker) : worker_(worker) {}
  grpc::ServerWriteReactor<v1::CaptionResponse>* Caption(grpc::CallbackServerContext*,
                                                          const v1::CaptionRequest*) override {
    return new Reactor(worker_);
  }

 private:
  Worker* worker_;
};


// One Caption stream on the completion-queue API: requested, first write, last write + finish.
class AsyncCall {
 public:
  AsyncCall(v1::VisionService::AsyncService* service, grpc::ServerCompletionQueue* cq)
      : service_(service), cq_(cq), writer_(&context_) {
    FillAnswer(first_, last_);
    service_->RequestCaption(&context_, &request_, &writer_, cq_, cq_, this);
  }
  // Advances on a completion; false when the call is over (the caller deletes it).
  bool Proceed(bool ok) {
    switch (step_++) {
      case 0:
        if (!ok) return false;  // the server is shutting down: no more calls to wait for
        new AsyncCall(service_, cq_);  // the next incoming call
        writer_.Write(first_, this);
        return true;
      case 1:
        if (!ok) return false;
        writer_.WriteAndFinish(last_, grpc::WriteOptions(), grpc::Status::OK, this);
        return true;
      default:
        return false;
    }
  }

 private:
  v1::VisionService::AsyncService* service_;
  grpc::ServerCompletionQueue* cq_;
  grpc::ServerContext context_;
  v1::CaptionRequest request_;
  grpc::ServerAsyncWriter<v1::CaptionResponse> writer_;
  v1::CaptionResponse first_, last_;
  int step_ = 0;
};

int RunAsync() {
  v1::VisionService::AsyncService service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(absl::GetFlag(FLAGS_port)),
                           grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  const int threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues;
  for (int i = 0; i < threads; ++i) queues.push_back(builder.AddCompletionQueue());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) return 1;
  std::printf("grpc-floor listening on 127.0.0.1:%d (completion queues, %d threads)\n", port,
              threads);
  std::fflush(stdout);
  std::vector<std::thread> pollers;
  for (auto& cq : queues) {
    pollers.emplace_back([&service, cq = cq.get()] {
      for (int i = 0; i < 16; ++i) new AsyncCall(&service, cq);
      void* tag;
      bool ok;
      while (cq->Next(&tag, &ok)) {
        auto* call = static_cast<AsyncCall*>(tag);
        if (!call->Proceed(ok)) delete call;
      }
    });
  }
  server->Wait();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_api) == "async") return RunAsync();
  if (absl::GetFlag(FLAGS_api) != "callback") {
    std::fprintf(stderr, "grpc-floor: --api must be callback or async\n");
    return 2;
  }
  const std::string hop = absl::GetFlag(FLAGS_hop);
  if (hop != "none" && hop != "thread") {
    std::fprintf(stderr, "grpc-floor: --hop must be none or thread\n");
    return 2;
  }
  std::unique_ptr<Worker> worker;
  if (hop == "thread") worker = std::make_unique<Worker>();
  Service service(worker.get());
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(absl::GetFlag(FLAGS_port)),
                           grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) return 1;
  std::printf("grpc-floor listening on 127.0.0.1:%d (writes on %s)\n", port,
              hop == "none" ? "gRPC threads" : "another thread");
  std::fflush(stdout);
  server->Wait();
}
