// An in-memory GeminiClient for task and server tests: records each request and lets the test
// drive the callbacks (chunks, completion) by hand, from any thread.
#ifndef VISION_GATEWAY_TESTS_TESTING_FAKE_GEMINI_CLIENT_H_
#define VISION_GATEWAY_TESTS_TESTING_FAKE_GEMINI_CLIENT_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "service/gemini/gemini_client.h"

namespace vision_gateway::testing {

class FakeGeminiClient : public gemini::GeminiClient {
 public:
  struct Call : gemini::PendingCall {
    std::string model;
    gemini::GenerateContentRequest request;
    gemini::CountTokensRequest count_request;
    gemini::CallOptions options;
    gemini::StreamObserver observer;
    absl::AnyInvocable<void(absl::StatusOr<gemini::GenerateContentResponse>)> generate_done;
    absl::AnyInvocable<void(absl::StatusOr<gemini::CountTokensResponse>)> count_done;
    // Files API calls: `method` names which ("StartUpload", "UploadChunk", "QueryUpload",
    // "CancelUpload", "GetFile", "ListFiles", "DeleteFile"); empty for model calls.
    std::string method;
    gemini::StartUploadRequest start_request;
    std::string upload_url;
    int64_t offset = 0;
    // UploadChunk's bytes: the caller's buffer, which may still be filling (ChunkBytes), until
    // ReleaseChunk.
    gemini::ChunkBytes chunk;
    // The chunk's bytes written so far (all of them once chunk_complete()).
    std::string bytes() const { return chunk.data != nullptr ? std::string(chunk.view()) : sent; }
    bool chunk_complete() const { return chunk.data == nullptr || chunk.data->complete(); }
    // Where the chunk's bytes lie (the caller's buffer).
    const char* buffer() const {
      return chunk.data != nullptr ? chunk.data->View().data() : sent_buffer;
    }
    // What the HTTP layer does once the whole body is written: lets go of the caller's buffer
    // (the test keeps a copy of the bytes).
    void ReleaseChunk() {
      sent = bytes();
      sent_buffer = buffer();
      chunk = gemini::ChunkBytes();
    }
    std::string sent;
    const char* sent_buffer = nullptr;
    bool finalize = false;
    std::string name;  // GetFile/DeleteFile
    int page_size = 0;
    std::string page_token;
    absl::AnyInvocable<void(absl::StatusOr<gemini::UploadSession>)> session_done;
    absl::AnyInvocable<void(absl::StatusOr<gemini::UploadStatus>)> upload_done;
    absl::AnyInvocable<void(absl::StatusOr<gemini::File>)> file_done;
    absl::AnyInvocable<void(absl::StatusOr<gemini::ListFilesResponse>)> list_done;
    absl::AnyInvocable<void(absl::StatusOr<gemini::ListModelsResponse>)> models_done;
    absl::AnyInvocable<void(absl::Status)> status_done;
    absl::Notification cancelled;
    // Set by the client (DeferCancelCompletion): Cancel() only records the cancellation, and the
    // CANCELLED completion comes later from FakeGeminiClient::CompleteCancelledCalls(), on
    // another thread — as the real client answers a cancel from its I/O thread, not inside
    // Cancel().
    bool defer_cancel_completion = false;
    // The thread the CANCELLED completion ran on (unset until it ran).
    std::thread::id cancel_completed_on;
    bool cancel_completion_taken = false;  // guarded by the client's mutex
    // Cancel() calls, repeated ones included.
    std::atomic<int> cancel_requests{0};
    void Cancel() override {
      cancel_requests.fetch_add(1);
      if (cancelled.HasBeenNotified()) return;
      cancelled.Notify();
      if (!defer_cancel_completion) CompleteCancel();
    }
    void CompleteCancel() {
      cancel_completed_on = std::this_thread::get_id();
      const absl::Status c = absl::CancelledError("cancelled");
      ForEachDone([&c](auto& done) {
        if (done) done(c);
      });
    }
    // Drops every callback unanswered (their captures hold the caller's objects, which hold
    // this call: a cycle LeakSanitizer reports when a test ends with calls left open).
    void ReleaseCallbacks() {
      observer = gemini::StreamObserver();
      ForEachDone([](auto& done) { done = nullptr; });
    }

   private:
    // Each completion callback (the one the call's method set; the others are empty).
    template <typename Fn>
    void ForEachDone(Fn&& fn) {
      fn(observer.on_done);
      fn(count_done);
      fn(generate_done);
      fn(session_done);
      fn(upload_done);
      fn(file_done);
      fn(list_done);
      fn(models_done);
      fn(status_done);
    }
  };

  // Tests end with calls the code under test still holds: their callbacks are dropped here so
  // that the objects they capture are freed (the real client always ends its calls).
  ~FakeGeminiClient() override { ReleaseCallbacks(); }
  // For fakes shared with the code under test (which then keeps this fake alive): call at the
  // end of the test.
  void ReleaseCallbacks() {
    std::vector<std::shared_ptr<Call>> calls;
    {
      absl::MutexLock lock(&mu_);
      calls = calls_;
    }
    for (const auto& call : calls) call->ReleaseCallbacks();
  }

  std::shared_ptr<gemini::PendingCall> StreamGenerateContent(const std::string& model,
                                                             gemini::GenerateContentRequest request,
                                                             gemini::CallOptions options,
                                                             gemini::StreamObserver observer) override {
    auto call = std::make_shared<Call>();
    call->model = model;
    call->request = std::move(request);
    call->options = options;
    call->observer = std::move(observer);
    return Record(call);
  }

  std::shared_ptr<gemini::PendingCall> GenerateContent(
      const std::string& model, gemini::GenerateContentRequest request,
      gemini::CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<gemini::GenerateContentResponse>)> done) override {
    auto call = std::make_shared<Call>();
    call->model = model;
    call->request = std::move(request);
    call->options = options;
    call->generate_done = std::move(done);
    return Record(call);
  }

  std::shared_ptr<gemini::PendingCall> CountTokens(
      const std::string& model, gemini::CountTokensRequest request, gemini::CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<gemini::CountTokensResponse>)> done) override {
    auto call = std::make_shared<Call>();
    call->model = model;
    call->count_request = std::move(request);
    call->options = options;
    call->count_done = std::move(done);
    return Record(call);
  }

  std::shared_ptr<gemini::PendingCall> StartUpload(
      gemini::StartUploadRequest request, gemini::CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<gemini::UploadSession>)> done) override {
    auto call = Files("StartUpload", options);
    call->start_request = std::move(request);
    call->session_done = std::move(done);
    return Record(call);
  }

  std::shared_ptr<gemini::PendingCall> UploadChunk(
      const std::string& upload_url, int64_t offset, gemini::ChunkBytes bytes, bool finalize,
      gemini::CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<gemini::UploadStatus>)> done) override {
    auto call = Files("UploadChunk", options);
    call->upload_url = upload_url;
    call->offset = offset;
    call->chunk = std::move(bytes);
    call->finalize = finalize;
    call->upload_done = std::move(done);
    return Record(call);
  }

  std::shared_ptr<gemini::PendingCall> QueryUpload(
      const std::string& upload_url, gemini::CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<gemini::UploadStatus>)> done) override {
    auto call = Files("QueryUpload", options);
    call->upload_url = upload_url;
    call->upload_done = std::move(done);
    return Record(call);
  }

  std::shared_ptr<gemini::PendingCall> CancelUpload(
      const std::string& upload_url, gemini::CallOptions options,
      absl::AnyInvocable<void(absl::Status)> done) override {
    auto call = Files("CancelUpload", options);
    call->upload_url = upload_url;
    call->status_done = std::move(done);
    return Record(call);
  }

  std::shared_ptr<gemini::PendingCall> GetFile(
      const std::string& name, gemini::CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<gemini::File>)> done) override {
    auto call = Files("GetFile", options);
    call->name = name;
    call->file_done = std::move(done);
    return Record(call);
  }

  std::shared_ptr<gemini::PendingCall> ListFiles(
      int page_size, const std::string& page_token, gemini::CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<gemini::ListFilesResponse>)> done) override {
    auto call = Files("ListFiles", options);
    call->page_size = page_size;
    call->page_token = page_token;
    call->list_done = std::move(done);
    return Record(call);
  }

  std::shared_ptr<gemini::PendingCall> ListModels(
      int page_size, const std::string& page_token, gemini::CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<gemini::ListModelsResponse>)> done) override {
    auto call = Files("ListModels", options);
    call->page_size = page_size;
    call->page_token = page_token;
    call->models_done = std::move(done);
    return Record(call);
  }

  std::shared_ptr<gemini::PendingCall> DeleteFile(
      const std::string& name, gemini::CallOptions options,
      absl::AnyInvocable<void(absl::Status)> done) override {
    auto call = Files("DeleteFile", options);
    call->name = name;
    call->status_done = std::move(done);
    return Record(call);
  }

  // From now on, calls started complete a Cancel() only when CompleteCancelledCalls() says so,
  // on a thread of their own (see Call::defer_cancel_completion).
  void DeferCancelCompletion() {
    absl::MutexLock lock(&mu_);
    defer_cancel_completion_ = true;
  }

  // Completes, on a new thread (joined before returning), every call cancelled and not yet
  // completed with CANCELLED. Returns how many it completed.
  int CompleteCancelledCalls() {
    std::vector<std::shared_ptr<Call>> due;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& call : calls_) {
        if (call->defer_cancel_completion && call->cancelled.HasBeenNotified() &&
            !call->cancel_completion_taken) {
          call->cancel_completion_taken = true;
          due.push_back(call);
        }
      }
    }
    std::thread([&due] {
      for (const auto& call : due) call->CompleteCancel();
    }).join();
    return static_cast<int>(due.size());
  }

  std::vector<std::shared_ptr<Call>> calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

  // Blocks until at least n calls were started (bounded wait, for tests on other threads).
  bool WaitForCalls(size_t n, absl::Duration timeout = absl::Seconds(5)) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return calls_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }

 private:
  static std::shared_ptr<Call> Files(std::string method, gemini::CallOptions options) {
    auto call = std::make_shared<Call>();
    call->method = std::move(method);
    call->options = options;
    return call;
  }

  std::shared_ptr<Call> Record(std::shared_ptr<Call> call) {
    absl::MutexLock lock(&mu_);
    call->defer_cancel_completion = defer_cancel_completion_;
    calls_.push_back(call);
    return call;
  }

  absl::Mutex mu_;
  std::vector<std::shared_ptr<Call>> calls_;
  bool defer_cancel_completion_ = false;
};

}  // namespace vision_gateway::testing

#endif  // VISION_GATEWAY_TESTS_TESTING_FAKE_GEMINI_CLIENT_H_
