// An in-memory GeminiClient for task and server tests: records each request and lets the test
// drive the callbacks (chunks, completion) by hand, from any thread.
#ifndef VISION_GATEWAY_TESTS_TESTING_FAKE_GEMINI_CLIENT_H_
#define VISION_GATEWAY_TESTS_TESTING_FAKE_GEMINI_CLIENT_H_

#include <memory>
#include <string>
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
    absl::Notification cancelled;
    void Cancel() override {
      if (cancelled.HasBeenNotified()) return;
      cancelled.Notify();
      if (observer.on_done) observer.on_done(absl::CancelledError("cancelled"));
      if (count_done) count_done(absl::CancelledError("cancelled"));
    }
  };

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
  std::shared_ptr<Call> Record(std::shared_ptr<Call> call) {
    absl::MutexLock lock(&mu_);
    calls_.push_back(call);
    return call;
  }

  absl::Mutex mu_;
  std::vector<std::shared_ptr<Call>> calls_;
};

}  // namespace vision_gateway::testing

#endif  // VISION_GATEWAY_TESTS_TESTING_FAKE_GEMINI_CLIENT_H_
