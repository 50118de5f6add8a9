// The retrying BatchesStub (retrying_gemini_client.h): which batch calls are sent again, and a
// download retried only while nothing of it reached the reader.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/common/error_reasons.h"
#include "service/common/status_details.h"
#include "service/gemini/error_envelope.h"
#include "service/gemini/retrying_gemini_client.h"
#include "service/http/http_client.h"
#include "tests/testing/fake_timer.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::gemini {
namespace {

using ::vision_gateway::testing::FakeTimer;
using ::vision_gateway::testing::IsOk;

absl::Status Http(int status) {
  return StatusFromHttpError(status, R"({"error":{"code":)" + std::to_string(status) +
                                         R"(,"message":"x"}})");
}

// The whole request was written, then the attempt timed out (a transient failure): Gemini may
// have acted on it.
absl::Status LostAfterWrite() {
  return http::WithRequestWritten(
      WithOutcome(absl::DeadlineExceededError("timed out"), reasons::kUpstreamTimeout));
}

class NoopCall final : public PendingCall {
 public:
  void Cancel() override {}
};

// Records each attempt's callback for the test to complete.
class FakeBatches final : public BatchesStub {
 public:
  std::vector<absl::AnyInvocable<void(absl::StatusOr<BatchJob>)>> job_done;
  std::vector<absl::AnyInvocable<void(absl::Status)>> status_done;
  std::vector<DownloadObserver> downloads;
  std::vector<std::string> created_names;

  std::shared_ptr<PendingCall> CreateBatch(
      const std::string&, CreateBatchRequest request, CallOptions,
      absl::AnyInvocable<void(absl::StatusOr<BatchJob>)> done) override {
    created_names.push_back(request.display_name);
    job_done.push_back(std::move(done));
    return std::make_shared<NoopCall>();
  }
  std::shared_ptr<PendingCall> GetBatch(
      const std::string&, CallOptions,
      absl::AnyInvocable<void(absl::StatusOr<BatchJob>)> done) override {
    job_done.push_back(std::move(done));
    return std::make_shared<NoopCall>();
  }
  std::shared_ptr<PendingCall> ListBatches(
      int, const std::string&, CallOptions,
      absl::AnyInvocable<void(absl::StatusOr<ListBatchesResponse>)> done) override {
    done(ListBatchesResponse{});
    return std::make_shared<NoopCall>();
  }
  std::shared_ptr<PendingCall> CancelBatch(const std::string&, CallOptions,
                                           absl::AnyInvocable<void(absl::Status)> done) override {
    status_done.push_back(std::move(done));
    return std::make_shared<NoopCall>();
  }
  std::shared_ptr<PendingCall> DeleteBatch(const std::string&, CallOptions,
                                           absl::AnyInvocable<void(absl::Status)> done) override {
    status_done.push_back(std::move(done));
    return std::make_shared<NoopCall>();
  }
  std::shared_ptr<PendingCall> DownloadFile(const std::string&, CallOptions,
                                            DownloadObserver observer) override {
    downloads.push_back(std::move(observer));
    return std::make_shared<NoopCall>();
  }
};

class RetryingBatchesTest : public ::testing::Test {
 protected:
  RetryingBatchesTest() {
    RetryOptions options;
    options.max_attempts = 4;
    options.initial_backoff = absl::Seconds(1);
    options.max_backoff = absl::Seconds(1);
    options.seed = 42;
    stub_ = MakeRetryingBatchesStub(fake_, options, timer_);
  }
  CallOptions Options() { return CallOptions{.deadline = timer_->Now() + absl::Minutes(5)}; }

  std::shared_ptr<FakeBatches> fake_ = std::make_shared<FakeBatches>();
  std::shared_ptr<FakeTimer> timer_ = std::make_shared<FakeTimer>();
  std::unique_ptr<BatchesStub> stub_;
};

TEST_F(RetryingBatchesTest, GetIsRetriedAfterAnyTransientFailure) {
  std::optional<absl::StatusOr<BatchJob>> result;
  stub_->GetBatch("batches/a", Options(), [&](absl::StatusOr<BatchJob> r) { result = r; });
  ASSERT_EQ(fake_->job_done.size(), 1u);
  fake_->job_done[0](LostAfterWrite());  // a GET may be sent again whatever happened
  timer_->Advance(absl::Seconds(2));
  ASSERT_EQ(fake_->job_done.size(), 2u);
  fake_->job_done[1](BatchJob{.name = "batches/a", .state = "BATCH_STATE_RUNNING"});
  ASSERT_TRUE(result.has_value());
  ASSERT_THAT(*result, IsOk());
  EXPECT_EQ((*result)->state, "BATCH_STATE_RUNNING");
}

TEST_F(RetryingBatchesTest, CreateIsSentAgainOnlyWhenGeminiCannotHaveActed) {
  std::optional<absl::StatusOr<BatchJob>> result;
  CreateBatchRequest request{.display_name = "d", .input_file = "files/x"};
  stub_->CreateBatch("m", request, Options(), [&](absl::StatusOr<BatchJob> r) { result = r; });
  fake_->job_done[0](Http(503));  // Gemini's answer says it did not start a job
  timer_->Advance(absl::Seconds(2));
  ASSERT_EQ(fake_->job_done.size(), 2u);
  EXPECT_EQ(fake_->created_names, (std::vector<std::string>{"d", "d"}));
  fake_->job_done[1](LostAfterWrite());  // a job may exist now: the caller decides
  timer_->Advance(absl::Seconds(2));
  EXPECT_EQ(fake_->job_done.size(), 2u);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(RetryingBatchesTest, ARetriedDeleteThatFindsTheJobGoneSucceeds) {
  std::optional<absl::Status> result;
  stub_->DeleteBatch("batches/a", Options(), [&](absl::Status s) { result = s; });
  fake_->status_done[0](LostAfterWrite());
  timer_->Advance(absl::Seconds(2));
  ASSERT_EQ(fake_->status_done.size(), 2u);
  fake_->status_done[1](Http(404));
  ASSERT_TRUE(result.has_value());
  EXPECT_THAT(*result, IsOk());
}

TEST_F(RetryingBatchesTest, ADownloadIsRetriedOnlyBeforeItsFirstPiece) {
  std::string received;
  std::optional<absl::Status> result;
  DownloadObserver observer;
  observer.on_data = [&](std::string_view piece, absl::AnyInvocable<void()> more) {
    received.append(piece);
    more();
  };
  observer.on_done = [&](absl::Status s) { result = s; };
  stub_->DownloadFile("files/r", Options(), std::move(observer));
  ASSERT_EQ(fake_->downloads.size(), 1u);
  fake_->downloads[0].on_done(Http(503));  // nothing delivered: retried
  timer_->Advance(absl::Seconds(2));
  ASSERT_EQ(fake_->downloads.size(), 2u);
  bool resumed = false;
  fake_->downloads[1].on_data("{\"key\":", [&] { resumed = true; });
  EXPECT_TRUE(resumed);  // the reader's `more` reaches the attempt
  fake_->downloads[1].on_done(LostAfterWrite());  // a piece was delivered: no retry
  timer_->Advance(absl::Seconds(2));
  EXPECT_EQ(fake_->downloads.size(), 2u);
  EXPECT_EQ(received, "{\"key\":");
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->code(), absl::StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace vision_gateway::gemini
