#include "service/gemini/retrying_gemini_client.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"
#include "service/common/error_reasons.h"
#include "service/common/status_details.h"
#include "service/gemini/async_retry_loop.h"
#include "service/gemini/error_envelope.h"
#include "service/gemini/json_codec.h"
#include "service/gemini/retry_policy.h"
#include "service/http/http_client.h"
#include "service/telemetry/call_record.h"
#include "service/telemetry/telemetry.h"
#include "tests/testing/fake_gemini_client.h"
#include "tests/testing/fake_timer.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::gemini {
namespace {

using ::testing::HasSubstr;
using ::vision_gateway::testing::FakeGeminiClient;
using ::vision_gateway::testing::FakeTimer;
using ::vision_gateway::testing::IsOk;
using ::vision_gateway::testing::StatusIs;

absl::Status Http(int status, std::string body = "") {
  if (body.empty()) body = R"({"error":{"code":)" + std::to_string(status) + R"(,"message":"x"}})";
  return StatusFromHttpError(status, body);
}

absl::Status RateLimited(const std::string& delay) {
  return StatusFromHttpError(429, R"({"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":")" +
                                      delay + R"("}]}})");
}

// The request an attempt sent, decoded from its encoded body (or as it is).
absl::StatusOr<GenerateContentRequest> SentRequest(const FakeGeminiClient::Call& call) {
  if (call.request.encoded_body == nullptr) return call.request;
  return DecodeGenerateContentRequest(call.request.encoded_body->View());
}

struct StreamResult {
  std::vector<std::string> texts;
  std::optional<absl::Status> done;
};

// Records the retries the decorator reports (everything else is ignored).
class RetryTelemetry final : public telemetry::Telemetry {
 public:
  struct Retry {
    std::string operation;
    absl::Duration backoff;
  };
  telemetry::RpcMetrics& Rpc(std::string_view, telemetry::RpcType type) override {
    return telemetry::NoTelemetry().Rpc("", type);
  }
  void CallsInFlight(int) override {}
  void UpstreamAttemptDone(const telemetry::UpstreamAttempt&) override {}
  void UpstreamRetry(std::string_view operation, absl::Duration backoff) override {
    retries.push_back({std::string(operation), backoff});
  }
  void Tokens(std::string_view, telemetry::TokenKind, int64_t) override {}
  void UploadBytes(int64_t) override {}
  void SetProbe(Probe, std::function<double()>) override {}

  std::vector<Retry> retries;
};

class RetryingGeminiClientTest : public ::testing::Test {
 protected:
  // Attempts a test left open hold the retrying call, which holds the client and this fake.
  ~RetryingGeminiClientTest() override { fake_->ReleaseCallbacks(); }

  void Make(RetryOptions options) {
    options.seed = 42;
    client_ = MakeRetryingGenerateStub(fake_, options, timer_, telemetry_);
  }

  RetryOptions Options() {
    RetryOptions o;
    o.max_attempts = 4;
    o.initial_backoff = absl::Seconds(1);
    o.max_backoff = absl::Seconds(8);
    return o;
  }

  // Starts a CountTokens call; its result lands in result_.
  std::shared_ptr<PendingCall> Count(absl::Duration deadline_in = absl::Seconds(60)) {
    return client_->CountTokens(
        "m", CountTokensRequest{}, CallOptions{.deadline = timer_->Now() + deadline_in},
        [this](absl::StatusOr<CountTokensResponse> r) {
          ++results_;
          result_ = std::move(r);
        });
  }

  // Finishes attempt `i` (0-based) of the fake.
  void Fail(size_t i, absl::Status status) {
    ASSERT_TRUE(fake_->WaitForCalls(i + 1));
    auto call = fake_->calls()[i];
    auto done = std::move(call->count_done);
    ASSERT_TRUE(done);
    done(std::move(status));
  }
  void Succeed(size_t i, int tokens) {
    ASSERT_TRUE(fake_->WaitForCalls(i + 1));
    auto done = std::move(fake_->calls()[i]->count_done);
    ASSERT_TRUE(done);
    done(CountTokensResponse{.total_tokens = tokens});
  }

  std::shared_ptr<FakeGeminiClient> fake_ = std::make_shared<FakeGeminiClient>();
  std::shared_ptr<FakeTimer> timer_ = std::make_shared<FakeTimer>();
  RetryTelemetry telemetry_;
  std::unique_ptr<GenerateStub> client_;
  int results_ = 0;
  std::optional<absl::StatusOr<CountTokensResponse>> result_;
};

TEST(RetryPolicyTest, TransientSetIsExactlyTheDocumentedOne) {
  for (int code : {408, 429, 500, 502, 503, 504}) {
    EXPECT_TRUE(IsTransient(Http(code))) << code;
  }
  for (int code : {400, 401, 403, 404, 409, 501}) {
    EXPECT_FALSE(IsTransient(Http(code))) << code;
  }
  EXPECT_TRUE(IsTransient(WithOutcome(absl::UnavailableError("refused"),
                                      reasons::kUpstreamUnreachable)));
  EXPECT_FALSE(IsTransient(WithOutcome(absl::UnavailableError("reset mid-body"),
                                       reasons::kUpstreamConnectionLost)));
  EXPECT_FALSE(IsTransient(WithOutcome(absl::UnavailableError("tls"), reasons::kUpstreamTls)));
  EXPECT_FALSE(IsTransient(WithOutcome(absl::ResourceExhaustedError("big"),
                                       reasons::kUpstreamResponseTooLarge)));
  EXPECT_FALSE(IsTransient(WithOutcome(absl::DeadlineExceededError("late"),
                                       reasons::kDeadlineExceeded)));
  EXPECT_FALSE(IsTransient(absl::CancelledError("c")));
  EXPECT_FALSE(IsTransient(absl::OkStatus()));
  // An API key error is 400 but never transient.
  EXPECT_FALSE(IsTransient(StatusFromHttpError(
      400, R"({"error":{"code":400,"message":"bad key","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}})")));
}

TEST(RetryPolicyTest, BackoffIsFullJitterUnderTheCap) {
  RetryOptions o;
  o.initial_backoff = absl::Milliseconds(100);
  o.max_backoff = absl::Seconds(1);
  o.seed = 7;
  Backoff backoff(o);
  for (int retry = 1; retry <= 8; ++retry) {
    const absl::Duration cap = std::min(absl::Milliseconds(100) * (1 << (retry - 1)), absl::Seconds(1));
    absl::Duration lo = absl::InfiniteDuration(), hi = absl::ZeroDuration();
    for (int i = 0; i < 200; ++i) {
      const absl::Duration d = backoff.Delay(retry);
      ASSERT_GE(d, absl::ZeroDuration());
      ASSERT_LE(d, cap);
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    // Full jitter spreads over the whole range, not around the cap.
    EXPECT_LT(lo, cap * 0.1) << retry;
    EXPECT_GT(hi, cap * 0.9) << retry;
  }
}

TEST(RetryPolicyTest, BudgetAllowsRatioOfRecentCalls) {
  RetryBudget budget(/*ratio=*/0.2, /*min_retries=*/2, absl::Seconds(10));
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  for (int i = 0; i < 100; ++i) budget.RecordCall(t0);
  int allowed = 0;
  for (int i = 0; i < 50; ++i) allowed += budget.TryRetry(t0) ? 1 : 0;
  EXPECT_EQ(allowed, 20);
  // Long after, with no calls, only the floor remains.
  const absl::Time later = t0 + absl::Seconds(60);
  allowed = 0;
  for (int i = 0; i < 50; ++i) allowed += budget.TryRetry(later) ? 1 : 0;
  EXPECT_EQ(allowed, 2);
}

TEST_F(RetryingGeminiClientTest, RetriesUnavailableThenSucceeds) {
  Make(Options());
  Count();
  Fail(0, Http(503));
  EXPECT_EQ(results_, 0);
  ASSERT_TRUE(timer_->NextDue().has_value());
  EXPECT_LE(*timer_->NextDue() - timer_->Now(), absl::Seconds(1));  // first backoff ≤ initial
  timer_->Advance(absl::Seconds(1));
  Succeed(1, 77);
  ASSERT_EQ(results_, 1);
  ASSERT_THAT(*result_, IsOk());
  EXPECT_EQ((*result_)->total_tokens, 77);
  EXPECT_EQ(fake_->calls().size(), 2u);
}

// Model discovery's models list is retried like the model calls (issue #22).
TEST_F(RetryingGeminiClientTest, ListModelsIsRetried) {
  Make(Options());
  std::optional<absl::StatusOr<ListModelsResponse>> listed;
  client_->ListModels(1000, "t1", CallOptions{.deadline = timer_->Now() + absl::Seconds(60)},
                      [&](absl::StatusOr<ListModelsResponse> r) { listed = std::move(r); });
  ASSERT_TRUE(fake_->WaitForCalls(1));
  auto first = std::move(fake_->calls()[0]->models_done);
  first(Http(503));
  EXPECT_FALSE(listed.has_value());
  timer_->Advance(absl::Seconds(1));
  ASSERT_TRUE(fake_->WaitForCalls(2));
  EXPECT_EQ(fake_->calls()[1]->method, "ListModels");
  EXPECT_EQ(fake_->calls()[1]->page_size, 1000);
  EXPECT_EQ(fake_->calls()[1]->page_token, "t1");
  ListModelsResponse page;
  page.models.emplace_back().name = "models/gemini-3-flash-preview";
  auto second = std::move(fake_->calls()[1]->models_done);
  second(page);
  ASSERT_TRUE(listed.has_value());
  ASSERT_THAT(*listed, IsOk());
  EXPECT_EQ((*listed)->models.at(0).Id(), "gemini-3-flash-preview");
  ASSERT_EQ(telemetry_.retries.size(), 1u);
}

TEST_F(RetryingGeminiClientTest, WaitsAtLeastTheAskedRetryDelay) {
  RetryOptions o = Options();
  o.initial_backoff = absl::Milliseconds(1);
  Make(o);
  Count();
  Fail(0, RateLimited("5s"));
  timer_->Advance(absl::Milliseconds(4999));
  EXPECT_EQ(fake_->calls().size(), 1u);
  timer_->Advance(absl::Milliseconds(1));
  ASSERT_EQ(fake_->calls().size(), 2u);
  Succeed(1, 1);
  EXPECT_THAT(*result_, IsOk());
}

TEST_F(RetryingGeminiClientTest, RetryAfterHeaderDelayIsHonouredLikeRetryInfo) {
  Make(Options());
  Count();
  // What the REST client makes of "503 + Retry-After: 3".
  Fail(0, WithRetryInfo(Http(503), absl::Seconds(3)));
  timer_->Advance(absl::Milliseconds(2999));
  EXPECT_EQ(fake_->calls().size(), 1u);
  timer_->Advance(absl::Milliseconds(1));
  EXPECT_EQ(fake_->calls().size(), 2u);
  Succeed(1, 1);
}

TEST_F(RetryingGeminiClientTest, AskedDelayBeyondDeadlineFailsAtOnceWithRetryInfo) {
  Make(Options());
  Count(/*deadline_in=*/absl::Seconds(10));
  Fail(0, RateLimited("30s"));
  ASSERT_EQ(results_, 1);
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("30s")));
  EXPECT_EQ(AskedDelay(result_->status()), absl::Seconds(30));
  EXPECT_EQ(GetOutcome(result_->status()), reasons::kUpstreamRateLimited);
  EXPECT_EQ(timer_->Pending(), 0u);
  EXPECT_EQ(fake_->calls().size(), 1u);
  // The same for a 503 whose Retry-After is beyond the deadline: RESOURCE_EXHAUSTED, caller decides.
  result_.reset();
  Count(absl::Seconds(10));
  Fail(1, WithRetryInfo(Http(503), absl::Seconds(60)));
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(AskedDelay(result_->status()), absl::Seconds(60));
}

// Issue #17: a call without a deadline is not held for as long as Gemini asks (a 429 asking for
// an hour held the call, its permits and its request bytes for an hour).
TEST_F(RetryingGeminiClientTest, AskedDelayOverTheMaxFailsAtOnceEvenWithoutADeadline) {
  RetryOptions o = Options();
  o.max_retry_delay = absl::Seconds(60);
  Make(o);
  Count(/*deadline_in=*/absl::InfiniteDuration());
  Fail(0, RateLimited("3600s"));
  ASSERT_EQ(results_, 1);
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kResourceExhausted,
                                 HasSubstr("--max_retry_delay_s")));
  EXPECT_EQ(AskedDelay(result_->status()), absl::Seconds(3600));  // Gemini's own RetryInfo
  EXPECT_EQ(GetOutcome(result_->status()), reasons::kUpstreamRateLimited);
  EXPECT_EQ(timer_->Pending(), 0u);
  EXPECT_EQ(fake_->calls().size(), 1u);
  // Up to the bound it is waited for, as asked.
  result_.reset();
  Count(absl::InfiniteDuration());
  Fail(1, RateLimited("60s"));
  EXPECT_FALSE(result_.has_value());
  timer_->Advance(absl::Seconds(60));
  ASSERT_EQ(fake_->calls().size(), 3u);
  Succeed(2, 1);
  EXPECT_THAT(*result_, IsOk());
}

TEST_F(RetryingGeminiClientTest, StopsAfterMaxAttempts) {
  RetryOptions o = Options();
  o.max_attempts = 3;
  Make(o);
  Count();
  for (size_t i = 0; i < 3; ++i) {
    Fail(i, Http(503));
    timer_->Advance(absl::Seconds(10));
  }
  ASSERT_EQ(results_, 1);
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(fake_->calls().size(), 3u);
}

// Each retry is counted with its backoff, and the time really spent waiting is upstream time
// in the call's record (so that the gateway overhead excludes it).
TEST_F(RetryingGeminiClientTest, RetriesAndTheirWaitsAreRecorded) {
  Make(Options());
  auto record = std::make_shared<telemetry::CallRecord>(telemetry_, "req-1", "");
  client_->CountTokens("m", CountTokensRequest{},
                       CallOptions{.deadline = timer_->Now() + absl::Seconds(60), .record = record},
                       [this](absl::StatusOr<CountTokensResponse> r) {
                         ++results_;
                         result_ = std::move(r);
                       });
  Fail(0, RateLimited("2s"));
  ASSERT_EQ(telemetry_.retries.size(), 1u);
  EXPECT_EQ(telemetry_.retries[0].operation, "countTokens");
  EXPECT_GE(telemetry_.retries[0].backoff, absl::Seconds(2));  // at least what Gemini asked
  ASSERT_TRUE(timer_->NextDue().has_value());
  const absl::Duration first_wait = *timer_->NextDue() - timer_->Now();
  EXPECT_EQ(first_wait, telemetry_.retries[0].backoff);
  EXPECT_EQ(record->Read().upstream, absl::ZeroDuration());  // nothing waited yet
  timer_->Advance(first_wait);
  EXPECT_EQ(record->Read().upstream, first_wait);

  Fail(1, Http(503));
  ASSERT_EQ(telemetry_.retries.size(), 2u);
  const absl::Duration second_wait = *timer_->NextDue() - timer_->Now();
  timer_->Advance(second_wait);
  Succeed(2, 3);
  ASSERT_EQ(results_, 1);
  EXPECT_THAT(*result_, IsOk());
  EXPECT_EQ(telemetry_.retries[1].backoff, second_wait);
  EXPECT_EQ(record->Read().upstream, first_wait + second_wait);
}

TEST_F(RetryingGeminiClientTest, CancelledWaitRecordsOnlyTheTimeWaited) {
  RetryOptions o = Options();
  o.initial_backoff = absl::Milliseconds(1);
  Make(o);
  auto record = std::make_shared<telemetry::CallRecord>(telemetry_, "req-2", "");
  StreamResult out;
  auto call = client_->StreamGenerateContent(
      "m", GenerateContentRequest{},
      CallOptions{.deadline = timer_->Now() + absl::Seconds(60), .record = record},
      StreamObserver{.on_chunk = [](GenerateContentResponse) {},
                     .on_done = [&out](absl::Status s) { out.done = s; }});
  ASSERT_TRUE(fake_->WaitForCalls(1));
  fake_->calls()[0]->observer.on_done(RateLimited("10s"));
  ASSERT_EQ(telemetry_.retries.size(), 1u);
  EXPECT_EQ(telemetry_.retries[0].operation, "streamGenerateContent");
  EXPECT_EQ(telemetry_.retries[0].backoff, absl::Seconds(10));
  timer_->Advance(absl::Seconds(4));
  call->Cancel();
  ASSERT_TRUE(out.done.has_value());
  EXPECT_THAT(*out.done, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(record->Read().upstream, absl::Seconds(4));
}

TEST_F(RetryingGeminiClientTest, NoRetryNoRecord) {
  Make(Options());
  auto record = std::make_shared<telemetry::CallRecord>(telemetry_, "req-3", "");
  client_->CountTokens("m", CountTokensRequest{},
                       CallOptions{.deadline = timer_->Now() + absl::Seconds(60), .record = record},
                       [this](absl::StatusOr<CountTokensResponse> r) {
                         ++results_;
                         result_ = std::move(r);
                       });
  Fail(0, Http(400));
  ASSERT_EQ(results_, 1);
  EXPECT_TRUE(telemetry_.retries.empty());
  EXPECT_EQ(record->Read().upstream, absl::ZeroDuration());
}

TEST_F(RetryingGeminiClientTest, PermanentErrorsAreNotRetried) {
  Make(Options());
  Count();
  Fail(0, Http(400));
  ASSERT_EQ(results_, 1);
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kInvalidArgument));
  timer_->Advance(absl::Seconds(100));
  EXPECT_EQ(fake_->calls().size(), 1u);
}

TEST_F(RetryingGeminiClientTest, BackoffBeyondDeadlineReturnsLastError) {
  RetryOptions o = Options();
  o.initial_backoff = absl::Seconds(30);
  o.max_backoff = absl::Seconds(30);
  Make(o);
  // Backoff draws are in [0, 30 s]: with 1 ms left, any draw above 1 ms ends the call.
  Count(absl::Milliseconds(1));
  Fail(0, Http(503));
  ASSERT_EQ(results_, 1);
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(RetryingGeminiClientTest, CancelDuringBackoffEndsTheCallAtOnce) {
  Make(Options());
  auto call = Count();
  Fail(0, Http(503));
  ASSERT_EQ(timer_->Pending(), 1u);
  call->Cancel();
  ASSERT_EQ(results_, 1);
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(timer_->Pending(), 0u);
  timer_->Advance(absl::Seconds(100));
  EXPECT_EQ(fake_->calls().size(), 1u);
  call->Cancel();  // idempotent
  EXPECT_EQ(results_, 1);
}

TEST_F(RetryingGeminiClientTest, CancelDuringAttemptCancelsIt) {
  Make(Options());
  auto call = Count();
  ASSERT_TRUE(fake_->WaitForCalls(1));
  call->Cancel();
  EXPECT_TRUE(fake_->calls()[0]->cancelled.HasBeenNotified());
  ASSERT_EQ(results_, 1);
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(timer_->Pending(), 0u);
}

TEST_F(RetryingGeminiClientTest, BudgetStopsRetryStorms) {
  RetryOptions o = Options();
  o.budget_ratio = 0.0;
  o.budget_min_retries = 2;
  Make(o);
  // Three calls fail at once: two get a retry, the third's failure is returned as is.
  std::vector<absl::StatusOr<CountTokensResponse>> results;
  for (int i = 0; i < 3; ++i) {
    client_->CountTokens("m", {}, CallOptions{.deadline = timer_->Now() + absl::Seconds(60)},
                         [&results](absl::StatusOr<CountTokensResponse> r) {
                           results.push_back(std::move(r));
                         });
  }
  for (size_t i = 0; i < 3; ++i) Fail(i, Http(503));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_THAT(results[0], StatusIs(absl::StatusCode::kUnavailable));
  timer_->Advance(absl::Seconds(10));
  EXPECT_EQ(fake_->calls().size(), 5u);
}

TEST_F(RetryingGeminiClientTest, AttemptTimeoutAbandonsAndRetries) {
  RetryOptions o = Options();
  o.attempt_timeout = absl::Seconds(5);
  Make(o);
  Count();
  ASSERT_TRUE(fake_->WaitForCalls(1));
  timer_->Advance(absl::Seconds(5));
  EXPECT_TRUE(fake_->calls()[0]->cancelled.HasBeenNotified());
  EXPECT_EQ(results_, 0);
  timer_->Advance(absl::Seconds(2));  // the backoff (≤ 1 s)
  ASSERT_EQ(fake_->calls().size(), 2u);
  Succeed(1, 5);
  ASSERT_EQ(results_, 1);
  EXPECT_THAT(*result_, IsOk());
}

TEST_F(RetryingGeminiClientTest, LowerLayerTimeoutWithCallerTimeLeftIsRetried) {
  Make(Options());
  Count(absl::Seconds(60));
  Fail(0, WithOutcome(absl::DeadlineExceededError("phase timeout"), reasons::kDeadlineExceeded));
  EXPECT_EQ(results_, 0);
  timer_->Advance(absl::Seconds(1));
  EXPECT_EQ(fake_->calls().size(), 2u);
  Succeed(1, 1);
}

// Streams.

std::shared_ptr<PendingCall> StartStream(GenerateStub& client, Timer& timer, StreamResult& out) {
  return client.StreamGenerateContent(
      "m", GenerateContentRequest{}, CallOptions{.deadline = timer.Now() + absl::Seconds(60)},
      StreamObserver{
          .on_chunk = [&out](GenerateContentResponse r) { out.texts.push_back(AnswerText(r)); },
          .on_done = [&out](absl::Status s) { out.done = s; },
      });
}

GenerateContentResponse Chunk(const std::string& text) {
  GenerateContentResponse r;
  r.candidates.emplace_back().content.parts.emplace_back().text = text;
  return r;
}

TEST_F(RetryingGeminiClientTest, StreamRetriedWhileNothingReachedTheCaller) {
  Make(Options());
  StreamResult out;
  StartStream(*client_, *timer_, out);
  ASSERT_TRUE(fake_->WaitForCalls(1));
  fake_->calls()[0]->observer.on_done(Http(503));
  EXPECT_FALSE(out.done.has_value());
  timer_->Advance(absl::Seconds(1));
  ASSERT_EQ(fake_->calls().size(), 2u);
  fake_->calls()[1]->observer.on_chunk(Chunk("hello"));
  fake_->calls()[1]->observer.on_done(absl::OkStatus());
  EXPECT_THAT(out.texts, ::testing::ElementsAre("hello"));
  ASSERT_TRUE(out.done.has_value());
  EXPECT_THAT(*out.done, IsOk());
}

TEST_F(RetryingGeminiClientTest, StreamNotRetriedAfterFirstResult) {
  Make(Options());
  StreamResult out;
  StartStream(*client_, *timer_, out);
  ASSERT_TRUE(fake_->WaitForCalls(1));
  fake_->calls()[0]->observer.on_chunk(Chunk("partial"));
  fake_->calls()[0]->observer.on_done(Http(503));
  ASSERT_TRUE(out.done.has_value());
  EXPECT_THAT(*out.done, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(timer_->Pending(), 0u);
  EXPECT_EQ(fake_->calls().size(), 1u);
}

TEST_F(RetryingGeminiClientTest, StreamRequestIsResentWhole) {
  Make(Options());
  GenerateContentRequest request;
  request.contents.emplace_back().parts.emplace_back().text = "prompt";
  StreamResult out;
  client_->StreamGenerateContent(
      "m", request, CallOptions{.deadline = timer_->Now() + absl::Seconds(60)},
      StreamObserver{.on_chunk = [](GenerateContentResponse) {},
                     .on_done = [&out](absl::Status s) { out.done = s; }});
  ASSERT_TRUE(fake_->WaitForCalls(1));
  fake_->calls()[0]->observer.on_done(
      WithOutcome(absl::UnavailableError("refused"), reasons::kUpstreamUnreachable));
  timer_->Advance(absl::Seconds(1));
  ASSERT_EQ(fake_->calls().size(), 2u);
  // What the second attempt sends (encoded once, issue #17) is the whole request.
  absl::StatusOr<GenerateContentRequest> resent = SentRequest(*fake_->calls()[1]);
  ASSERT_THAT(resent, IsOk());
  ASSERT_EQ(resent->contents.size(), 1u);
  EXPECT_EQ(resent->contents[0].parts[0].text, "prompt");
  fake_->calls()[1]->observer.on_done(absl::OkStatus());
  EXPECT_THAT(*out.done, IsOk());
}

// Issue #17 (memory): the retrying stub keeps one copy of a request's images, the encoded body,
// and every attempt sends that same buffer; the raw request is not kept to be copied per attempt.
TEST_F(RetryingGeminiClientTest, ARequestIsHeldOnceEncodedAndEveryAttemptSendsThatBuffer) {
  Make(Options());
  GenerateContentRequest request;
  Part& image = request.contents.emplace_back().parts.emplace_back();
  image.inline_data = Blob{.mime_type = "image/png", .data = std::string(1 << 20, 'x')};
  StreamResult out;
  client_->StreamGenerateContent(
      "m", std::move(request), CallOptions{.deadline = timer_->Now() + absl::Seconds(60)},
      StreamObserver{.on_chunk = [](GenerateContentResponse) {},
                     .on_done = [&out](absl::Status s) { out.done = s; }});
  ASSERT_TRUE(fake_->WaitForCalls(1));
  fake_->calls()[0]->observer.on_done(Http(503));
  timer_->Advance(absl::Seconds(1));
  ASSERT_EQ(fake_->calls().size(), 2u);
  const GenerateContentRequest& first = fake_->calls()[0]->request;
  const GenerateContentRequest& second = fake_->calls()[1]->request;
  ASSERT_NE(first.encoded_body, nullptr);
  EXPECT_EQ(first.encoded_body, second.encoded_body);  // one buffer, not a copy per attempt
  EXPECT_TRUE(first.contents.empty());                  // no raw copy of the image beside it
  absl::StatusOr<GenerateContentRequest> sent = SentRequest(*fake_->calls()[1]);
  ASSERT_THAT(sent, IsOk());
  EXPECT_EQ(sent->contents.at(0).parts.at(0).inline_data->data.size(), 1u << 20);
  fake_->calls()[1]->observer.on_done(absl::OkStatus());
}

// --- The idempotency rule (issue #17) ---

// A connection reset after the whole request was written, before any answer: what the HTTP
// layer reports when Gemini may have received the request and be acting on it.
absl::Status ResetAfterTheRequestWasWritten() {
  return http::WithRequestWritten(WithOutcome(
      absl::UnavailableError("connection reset while reading the response header"),
      reasons::kUpstreamUnreachable));
}

// The same failure before the request was written (a stale pooled connection, say).
absl::Status ResetWhileWriting() {
  return WithOutcome(absl::UnavailableError("connection reset while writing"),
                     reasons::kUpstreamUnreachable);
}

TEST_F(RetryingGeminiClientTest, GenerateContentThatGeminiMayHaveBilledIsNotResent) {
  Make(Options());
  std::optional<absl::StatusOr<GenerateContentResponse>> result;
  client_->GenerateContent(
      "m", GenerateContentRequest{}, CallOptions{.deadline = timer_->Now() + absl::Seconds(60)},
      [&](absl::StatusOr<GenerateContentResponse> r) { result = std::move(r); });
  ASSERT_TRUE(fake_->WaitForCalls(1));
  auto first = std::move(fake_->calls()[0]->generate_done);
  first(ResetAfterTheRequestWasWritten());
  // The failure goes to the caller as it is: no retry waits, none is sent.
  ASSERT_TRUE(result.has_value());
  EXPECT_THAT(*result, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(timer_->Pending(), 0u);
  timer_->Advance(absl::Seconds(100));
  EXPECT_EQ(fake_->calls().size(), 1u);
  EXPECT_TRUE(telemetry_.retries.empty());
}

TEST_F(RetryingGeminiClientTest, StreamThatGeminiMayHaveBilledIsNotResent) {
  Make(Options());
  StreamResult out;
  StartStream(*client_, *timer_, out);
  ASSERT_TRUE(fake_->WaitForCalls(1));
  fake_->calls()[0]->observer.on_done(ResetAfterTheRequestWasWritten());
  ASSERT_TRUE(out.done.has_value());
  EXPECT_THAT(*out.done, StatusIs(absl::StatusCode::kUnavailable));
  timer_->Advance(absl::Seconds(100));
  EXPECT_EQ(fake_->calls().size(), 1u);
}

TEST_F(RetryingGeminiClientTest, GenerateContentNotWrittenWholeOrRefusedByGeminiIsResent) {
  Make(Options());
  std::optional<absl::StatusOr<GenerateContentResponse>> result;
  client_->GenerateContent(
      "m", GenerateContentRequest{}, CallOptions{.deadline = timer_->Now() + absl::Seconds(60)},
      [&](absl::StatusOr<GenerateContentResponse> r) { result = std::move(r); });
  ASSERT_TRUE(fake_->WaitForCalls(1));
  auto first = std::move(fake_->calls()[0]->generate_done);
  first(ResetWhileWriting());  // Gemini never had the whole request
  timer_->Advance(absl::Seconds(1));
  ASSERT_TRUE(fake_->WaitForCalls(2));
  auto second = std::move(fake_->calls()[1]->generate_done);
  second(Http(503));  // Gemini's answer: it did not do it
  timer_->Advance(absl::Seconds(2));
  ASSERT_TRUE(fake_->WaitForCalls(3));
  auto third = std::move(fake_->calls()[2]->generate_done);
  GenerateContentResponse answer;
  answer.candidates.emplace_back().content.parts.emplace_back().text = "done";
  third(answer);
  ASSERT_TRUE(result.has_value());
  ASSERT_THAT(*result, IsOk());
  EXPECT_EQ(AnswerText(**result), "done");
}

// countTokens is free and changes nothing: idempotent, re-sent after the same failure.
TEST_F(RetryingGeminiClientTest, IdempotentCountTokensIsResentAfterTheRequestWasWritten) {
  Make(Options());
  Count();
  Fail(0, ResetAfterTheRequestWasWritten());
  EXPECT_EQ(results_, 0);
  timer_->Advance(absl::Seconds(1));
  Succeed(1, 9);
  ASSERT_EQ(results_, 1);
  EXPECT_THAT(*result_, IsOk());
}

// The operator's attempt timeout re-sends whatever it abandons (its documented exception).
TEST_F(RetryingGeminiClientTest, AttemptTimeoutResendsAStreamThatProducedNothing) {
  RetryOptions o = Options();
  o.attempt_timeout = absl::Seconds(5);
  Make(o);
  StreamResult out;
  StartStream(*client_, *timer_, out);
  ASSERT_TRUE(fake_->WaitForCalls(1));
  timer_->Advance(absl::Seconds(5));
  EXPECT_TRUE(fake_->calls()[0]->cancelled.HasBeenNotified());
  timer_->Advance(absl::Seconds(2));
  ASSERT_EQ(fake_->calls().size(), 2u);
  fake_->calls()[1]->observer.on_chunk(Chunk("late"));
  fake_->calls()[1]->observer.on_done(absl::OkStatus());
  ASSERT_TRUE(out.done.has_value());
  EXPECT_THAT(*out.done, IsOk());
}

// --- The files stub: GetFile, ListFiles and DeleteFile are retried (issue #17) ---

class RetryingFilesStubTest : public RetryingGeminiClientTest {
 protected:
  void MakeFiles() {
    RetryOptions o = Options();
    o.seed = 42;
    files_ = MakeRetryingFilesStub(fake_, o, timer_, telemetry_);
  }
  CallOptions Deadline() { return CallOptions{.deadline = timer_->Now() + absl::Seconds(60)}; }

  std::unique_ptr<FilesStub> files_;
};

TEST_F(RetryingFilesStubTest, GetFileIsResentAfterTheRequestWasWritten) {
  MakeFiles();
  std::optional<absl::StatusOr<File>> got;
  files_->GetFile("files/abc", Deadline(), [&](absl::StatusOr<File> f) { got = std::move(f); });
  ASSERT_TRUE(fake_->WaitForCalls(1));
  auto first = std::move(fake_->calls()[0]->file_done);
  first(ResetAfterTheRequestWasWritten());
  EXPECT_FALSE(got.has_value());
  timer_->Advance(absl::Seconds(1));
  ASSERT_TRUE(fake_->WaitForCalls(2));
  EXPECT_EQ(fake_->calls()[1]->method, "GetFile");
  EXPECT_EQ(fake_->calls()[1]->name, "files/abc");
  auto second = std::move(fake_->calls()[1]->file_done);
  second(File{.name = "files/abc", .state = "ACTIVE"});
  ASSERT_TRUE(got.has_value());
  ASSERT_THAT(*got, IsOk());
  EXPECT_EQ((*got)->name, "files/abc");
  ASSERT_EQ(telemetry_.retries.size(), 1u);
  EXPECT_EQ(telemetry_.retries[0].operation, "files.get");
}

TEST_F(RetryingFilesStubTest, ListFilesIsRetriedWithItsPageToken) {
  MakeFiles();
  std::optional<absl::StatusOr<ListFilesResponse>> listed;
  files_->ListFiles(100, "p2", Deadline(),
                    [&](absl::StatusOr<ListFilesResponse> r) { listed = std::move(r); });
  ASSERT_TRUE(fake_->WaitForCalls(1));
  auto first = std::move(fake_->calls()[0]->list_done);
  first(Http(503));
  timer_->Advance(absl::Seconds(1));
  ASSERT_TRUE(fake_->WaitForCalls(2));
  EXPECT_EQ(fake_->calls()[1]->page_size, 100);
  EXPECT_EQ(fake_->calls()[1]->page_token, "p2");
  auto second = std::move(fake_->calls()[1]->list_done);
  second(ListFilesResponse{.next_page_token = "p3"});
  ASSERT_TRUE(listed.has_value());
  ASSERT_THAT(*listed, IsOk());
  EXPECT_EQ((*listed)->next_page_token, "p3");
}

TEST_F(RetryingFilesStubTest, DeleteFileRetriedFindingTheFileGoneIsDone) {
  MakeFiles();
  std::optional<absl::Status> deleted;
  files_->DeleteFile("files/abc", Deadline(), [&](absl::Status s) { deleted = s; });
  ASSERT_TRUE(fake_->WaitForCalls(1));
  auto first = std::move(fake_->calls()[0]->status_done);
  first(ResetAfterTheRequestWasWritten());  // it may have been deleted
  timer_->Advance(absl::Seconds(1));
  ASSERT_TRUE(fake_->WaitForCalls(2));
  EXPECT_EQ(fake_->calls()[1]->method, "DeleteFile");
  auto second = std::move(fake_->calls()[1]->status_done);
  second(Http(404));
  ASSERT_TRUE(deleted.has_value());
  EXPECT_THAT(*deleted, IsOk());
  // A first attempt's 404 is the caller's answer.
  deleted.reset();
  files_->DeleteFile("files/xyz", Deadline(), [&](absl::Status s) { deleted = s; });
  ASSERT_TRUE(fake_->WaitForCalls(3));
  auto third = std::move(fake_->calls()[2]->status_done);
  third(Http(404));
  ASSERT_TRUE(deleted.has_value());
  EXPECT_THAT(*deleted, StatusIs(absl::StatusCode::kNotFound));
}

// An upload's start opens a session: not re-sent when Gemini may have opened one.
TEST_F(RetryingFilesStubTest, UploadStartIsNotResentAfterTheRequestWasWritten) {
  MakeFiles();
  std::optional<absl::StatusOr<UploadSession>> session;
  files_->StartUpload(StartUploadRequest{.size_bytes = 10, .mime_type = "image/png"}, Deadline(),
                      [&](absl::StatusOr<UploadSession> s) { session = std::move(s); });
  ASSERT_TRUE(fake_->WaitForCalls(1));
  auto first = std::move(fake_->calls()[0]->session_done);
  first(ResetAfterTheRequestWasWritten());
  ASSERT_TRUE(session.has_value());
  EXPECT_THAT(*session, StatusIs(absl::StatusCode::kUnavailable));
  timer_->Advance(absl::Seconds(100));
  EXPECT_EQ(fake_->calls().size(), 1u);
}

// Chunks and queries are the upload's own loop (resumable_upload.h): passed through, one attempt.
TEST_F(RetryingFilesStubTest, UploadChunkAndQueryPassThrough) {
  MakeFiles();
  int answers = 0;
  files_->UploadChunk("http://127.0.0.1/u", 0, std::string("abc"), true, Deadline(),
                      [&](absl::StatusOr<UploadStatus>) { ++answers; });
  files_->QueryUpload("http://127.0.0.1/u", Deadline(),
                      [&](absl::StatusOr<UploadStatus>) { ++answers; });
  ASSERT_TRUE(fake_->WaitForCalls(2));
  auto chunk = std::move(fake_->calls()[0]->upload_done);
  chunk(Http(503));
  auto query = std::move(fake_->calls()[1]->upload_done);
  query(Http(503));
  EXPECT_EQ(answers, 2);
  EXPECT_EQ(timer_->Pending(), 0u);
}

// --- The loop on its own: attempts' verdicts, no count, the deadline ---

TEST(AsyncRetryLoopTest, AnAttemptsVerdictOverridesThePolicyAndTheDeadlineEndsACountlessLoop) {
  FakeTimer timer;
  const absl::Time deadline = timer.Now() + absl::Seconds(1);
  int attempts = 0;
  std::optional<absl::Status> result;
  AsyncRetryLoop::Start(
      RetryLoopOptions{
          .retry = RetryPolicy{.max_attempts = 0,
                               .retryable = [](const absl::Status&) { return false; }},
          .backoff = std::make_shared<ExponentialBackoff>(absl::Milliseconds(100),
                                                          absl::Seconds(2)),
          .timer = &timer,
      },
      CallOptions{.deadline = deadline},
      [&attempts](int number, bool last, AsyncRetryLoop::AttemptDone done) {
        EXPECT_EQ(number, ++attempts);
        EXPECT_FALSE(last);  // no count: never the last by number
        done(RetryableFailure(absl::DeadlineExceededError("still PROCESSING")));
        return nullptr;
      },
      [&result](absl::Status status) { result = status; });
  while (!result.has_value() && attempts < 50) {
    auto due = timer.NextDue();
    ASSERT_TRUE(due.has_value());
    timer.Advance(*due - timer.Now());
  }
  ASSERT_TRUE(result.has_value());
  // Waits of 100, 200, 400 ms; the next (800 ms) would pass the deadline: the last failure, as the
  // attempt reported it (no outcome added, the verdict mark removed).
  EXPECT_EQ(attempts, 4);
  EXPECT_THAT(*result, StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("PROCESSING")));
  EXPECT_EQ(GetOutcome(*result), "");
  bool marked = false;
  result->ForEachPayload([&marked](absl::string_view, const absl::Cord&) { marked = true; });
  EXPECT_FALSE(marked);

  // A final verdict ends the call at once, even for a failure the policy would retry.
  std::optional<absl::Status> final_result;
  AsyncRetryLoop::Start(
      RetryLoopOptions{.backoff = std::make_shared<ExponentialBackoff>(absl::Milliseconds(1),
                                                                       absl::Milliseconds(1)),
                       .timer = &timer},
      CallOptions{.deadline = timer.Now() + absl::Seconds(60)},
      [](int, bool, AsyncRetryLoop::AttemptDone done) {
        done(FinalFailure(Http(503)));
        return nullptr;
      },
      [&final_result](absl::Status status) { final_result = status; });
  ASSERT_TRUE(final_result.has_value());
  EXPECT_THAT(*final_result, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(timer.Pending(), 0u);
}

}  // namespace
}  // namespace vision_gateway::gemini
