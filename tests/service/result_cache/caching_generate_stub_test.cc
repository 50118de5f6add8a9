#include "service/result_cache/caching_generate_stub.h"

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/gemini/json_codec.h"
#include "service/result_cache/memory_result_store.h"
#include "service/telemetry/call_record.h"
#include "tests/testing/fake_gemini_client.h"
#include "tests/testing/fake_timer.h"

namespace vision_gateway::result_cache {
namespace {

using gemini::CacheControl;
using gemini::CallOptions;
using gemini::GenerateContentRequest;
using gemini::GenerateContentResponse;
using telemetry::CacheEvent;
using testing::FakeGeminiClient;

// Counts the cache events (the other telemetry is not looked at).
class CacheTelemetry final : public telemetry::Telemetry {
 public:
  telemetry::RpcMetrics& Rpc(std::string_view, telemetry::RpcType type) override {
    return telemetry::NoTelemetry().Rpc("", type);
  }
  void CallsInFlight(int) override {}
  void UpstreamAttemptDone(const telemetry::UpstreamAttempt&) override {}
  void UpstreamRetry(std::string_view, absl::Duration) override {}
  void Tokens(std::string_view, telemetry::TokenKind, int64_t) override {}
  void UploadBytes(int64_t) override {}
  void SetProbe(Probe, std::function<double()>) override {}
  void ResultCache(std::string_view task, CacheEvent event) override {
    absl::MutexLock lock(&mu_);
    EXPECT_EQ(task, "detect");
    ++counts_[static_cast<int>(event)];
  }
  int count(CacheEvent event) {
    absl::MutexLock lock(&mu_);
    return counts_[static_cast<int>(event)];
  }

 private:
  absl::Mutex mu_;
  std::array<int, telemetry::kNumCacheEvents> counts_{};
};

// What one caller saw.
class Collector {
 public:
  gemini::StreamObserver Observer() {
    return gemini::StreamObserver{
        .on_chunk =
            [this](GenerateContentResponse chunk) {
              absl::MutexLock lock(&mu_);
              EXPECT_FALSE(done_.HasBeenNotified()) << "a chunk after on_done";
              texts_.push_back(gemini::AnswerText(chunk));
              cached_.push_back(chunk.cached);
              if (chunk.usage_metadata) total_tokens_ = chunk.usage_metadata->total_token_count;
            },
        .on_done =
            [this](absl::Status status) {
              EXPECT_FALSE(done_.HasBeenNotified()) << "on_done twice";
              {
                absl::MutexLock lock(&mu_);
                status_ = std::move(status);
              }
              done_.Notify();
            },
    };
  }
  bool done() const { return done_.HasBeenNotified(); }
  absl::Status Wait() {
    EXPECT_TRUE(done_.WaitForNotificationWithTimeout(absl::Seconds(10)));
    absl::MutexLock lock(&mu_);
    return status_;
  }
  std::vector<std::string> texts() {
    absl::MutexLock lock(&mu_);
    return texts_;
  }
  // True when every chunk was marked cached; false when none was; nullopt when mixed or none.
  std::optional<bool> cached() {
    absl::MutexLock lock(&mu_);
    if (cached_.empty()) return std::nullopt;
    for (bool c : cached_) {
      if (c != cached_.front()) return std::nullopt;
    }
    return cached_.front();
  }
  int total_tokens() {
    absl::MutexLock lock(&mu_);
    return total_tokens_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> texts_;
  std::vector<bool> cached_;
  int total_tokens_ = 0;
  absl::Status status_;
  absl::Notification done_;
};

GenerateContentResponse Chunk(const std::string& text, const std::string& finish = "",
                              int total_tokens = 0) {
  GenerateContentResponse chunk;
  gemini::Candidate candidate;
  candidate.content.role = "model";
  gemini::Part part;
  part.text = text;
  candidate.content.parts.push_back(part);
  candidate.finish_reason = finish;
  chunk.candidates.push_back(candidate);
  chunk.model_version = "gemini-test";
  if (total_tokens > 0) {
    chunk.usage_metadata = gemini::UsageMetadata{.prompt_token_count = total_tokens - 1,
                                                 .candidates_token_count = 1,
                                                 .total_token_count = total_tokens};
  }
  return chunk;
}

GenerateContentRequest Request(const std::string& prompt = "find the dogs") {
  GenerateContentRequest request;
  gemini::Content content;
  content.role = "user";
  gemini::Part image;
  image.inline_data = gemini::Blob{.mime_type = "image/png", .data = "\x89PNG fake bytes"};
  content.parts.push_back(image);
  gemini::Part text;
  text.text = prompt;
  content.parts.push_back(text);
  request.contents.push_back(content);
  return request;
}

// Answers a live upstream call with the chunks "a", "b", "c" (STOP, 42 tokens).
void Answer(FakeGeminiClient::Call& call, absl::Status status = absl::OkStatus(),
            const std::string& finish = "STOP") {
  call.observer.on_chunk(Chunk("a"));
  call.observer.on_chunk(Chunk("b"));
  call.observer.on_chunk(Chunk("c", finish, 42));
  call.observer.on_done(std::move(status));
}

const std::vector<std::string> kAbc = {"a", "b", "c"};

class CachingGenerateStubTest : public ::testing::Test {
 protected:
  CachingGenerateStubTest() { Build(CachingOptions{}); }
  // Every test ends the calls it started: a flight left open holds itself (as a real call
  // never stays open: its deadline ends it).
  ~CachingGenerateStubTest() override { fake_->ReleaseCallbacks(); }

  void Build(CachingOptions options, std::shared_ptr<ResultStore> store = nullptr) {
    memory_ = std::make_shared<MemoryResultStore>(MemoryResultStoreOptions{.max_bytes = 1 << 20});
    stub_ = MakeCachingGenerateStub(fake_, store != nullptr ? store : memory_, std::move(options),
                                    telemetry_);
  }

  std::shared_ptr<telemetry::CallRecord> Record(const std::string& caller) {
    auto record =
        std::make_shared<telemetry::CallRecord>(telemetry::NoTelemetry(), "req", "");
    record->SetCaller(caller);
    return record;
  }

  std::shared_ptr<gemini::PendingCall> Start(Collector& collector, CallOptions options = {},
                                             GenerateContentRequest request = Request()) {
    options.task = "detect";
    return stub_->StreamGenerateContent("gemini-test", std::move(request), std::move(options),
                                        collector.Observer());
  }

  // One complete call answered upstream (it must be a miss).
  void Prime(CallOptions options = {}) {
    const std::size_t before = fake_->calls().size();
    Collector collector;
    Start(collector, options);
    ASSERT_EQ(fake_->calls().size(), before + 1);
    Answer(*fake_->calls().back());
    ASSERT_TRUE(collector.Wait().ok());
  }

  std::shared_ptr<FakeGeminiClient> fake_ = std::make_shared<FakeGeminiClient>();
  CacheTelemetry telemetry_;
  std::shared_ptr<MemoryResultStore> memory_;
  std::unique_ptr<gemini::GenerateStub> stub_;
};

TEST_F(CachingGenerateStubTest, ASecondIdenticalCallIsAnsweredFromTheStore) {
  auto first_record = Record("");
  Collector first;
  Start(first, CallOptions{.record = first_record});
  ASSERT_EQ(fake_->calls().size(), 1u);
  // The layers below get the body encoded once, exactly as the REST client sends it.
  ASSERT_NE(fake_->calls()[0]->request.encoded_body, nullptr);
  EXPECT_EQ(fake_->calls()[0]->request.encoded_body->View(),
            *gemini::EncodeGenerateContentRequest(Request()));
  Answer(*fake_->calls()[0]);
  ASSERT_TRUE(first.Wait().ok());
  EXPECT_EQ(first.texts(), kAbc);
  EXPECT_EQ(first.cached(), false);
  EXPECT_EQ(first_record->Read().cache, CacheEvent::kMiss);
  EXPECT_EQ(memory_->size(), 1u);

  auto second_record = Record("");
  Collector second;
  Start(second, CallOptions{.record = second_record});
  ASSERT_TRUE(second.Wait().ok());
  EXPECT_EQ(fake_->calls().size(), 1u) << "a hit must not go upstream";
  EXPECT_EQ(second.texts(), kAbc);
  EXPECT_EQ(second.cached(), true);
  EXPECT_EQ(second.total_tokens(), 42) << "the original usage comes with the replay";
  EXPECT_EQ(second_record->Read().cache, CacheEvent::kHit);
  EXPECT_EQ(second_record->Read().attempts, 0);
  EXPECT_EQ(telemetry_.count(CacheEvent::kMiss), 1);
  EXPECT_EQ(telemetry_.count(CacheEvent::kStore), 1);
  EXPECT_EQ(telemetry_.count(CacheEvent::kHit), 1);

  // Another prompt is another key.
  Collector other;
  Start(other, {}, Request("find the cats"));
  ASSERT_EQ(fake_->calls().size(), 2u);
  Answer(*fake_->calls()[1]);  // every call ends (an open one would hold its flight)
  ASSERT_TRUE(other.Wait().ok());
}

TEST_F(CachingGenerateStubTest, ResultsAreScopedToTheirCallerUnlessShared) {
  Prime(CallOptions{.record = Record("alice")});
  Collector bob;
  Start(bob, CallOptions{.record = Record("bob")});
  EXPECT_EQ(fake_->calls().size(), 2u) << "bob must not see alice's result";
  Answer(*fake_->calls()[1]);
  ASSERT_TRUE(bob.Wait().ok());
  Collector alice;
  Start(alice, CallOptions{.record = Record("alice")});
  ASSERT_TRUE(alice.Wait().ok());
  EXPECT_EQ(alice.cached(), true);
  EXPECT_EQ(fake_->calls().size(), 2u);

  CachingOptions shared;
  shared.shared = true;
  Build(shared);
  Prime(CallOptions{.record = Record("alice")});
  Collector carol;
  Start(carol, CallOptions{.record = Record("carol")});
  ASSERT_TRUE(carol.Wait().ok());
  EXPECT_EQ(carol.cached(), true);
  EXPECT_EQ(fake_->calls().size(), 3u);
}

TEST_F(CachingGenerateStubTest, BypassNeitherReadsNorWrites) {
  Collector bypass;
  auto record = Record("");
  Start(bypass, CallOptions{.record = record, .cache = CacheControl::kBypass});
  ASSERT_EQ(fake_->calls().size(), 1u);
  Answer(*fake_->calls()[0]);
  ASSERT_TRUE(bypass.Wait().ok());
  EXPECT_EQ(memory_->size(), 0u);
  EXPECT_EQ(record->Read().cache, CacheEvent::kBypass);

  Prime();
  Collector again;
  Start(again, CallOptions{.cache = CacheControl::kBypass});
  EXPECT_EQ(fake_->calls().size(), 3u) << "bypass must not read";
  EXPECT_EQ(telemetry_.count(CacheEvent::kBypass), 2);
}

TEST_F(CachingGenerateStubTest, RefreshGoesUpstreamAndReplacesTheStoredResult) {
  Prime();
  Collector refresh;
  auto record = Record("");
  Start(refresh, CallOptions{.record = record, .cache = CacheControl::kRefresh});
  ASSERT_EQ(fake_->calls().size(), 2u) << "refresh must not read";
  auto& call = *fake_->calls()[1];
  call.observer.on_chunk(Chunk("fresh", "STOP", 7));
  call.observer.on_done(absl::OkStatus());
  ASSERT_TRUE(refresh.Wait().ok());
  EXPECT_EQ(refresh.cached(), false);
  EXPECT_EQ(record->Read().cache, CacheEvent::kRefresh);

  Collector later;
  Start(later);
  ASSERT_TRUE(later.Wait().ok());
  EXPECT_EQ(later.texts(), std::vector<std::string>{"fresh"});
  EXPECT_EQ(later.cached(), true);
  EXPECT_EQ(fake_->calls().size(), 2u);
}

// A stream that did not end in a complete answer is never stored.
TEST_F(CachingGenerateStubTest, IncompleteOrRefusedAnswersAreNotStored) {
  struct Case {
    const char* name;
    std::function<void(FakeGeminiClient::Call&)> answer;
  };
  const std::vector<Case> cases = {
      {"failed midway",
       [](FakeGeminiClient::Call& call) {
         call.observer.on_chunk(Chunk("a"));
         call.observer.on_done(absl::UnavailableError("connection lost"));
       }},
      {"ok without a finish reason",
       [](FakeGeminiClient::Call& call) {
         call.observer.on_chunk(Chunk("a"));
         call.observer.on_done(absl::OkStatus());
       }},
      {"finish reason SAFETY",
       [](FakeGeminiClient::Call& call) { Answer(call, absl::OkStatus(), "SAFETY"); }},
      {"prompt blocked",
       [](FakeGeminiClient::Call& call) {
         GenerateContentResponse chunk = Chunk("a", "STOP");
         chunk.prompt_feedback = gemini::PromptFeedback{.block_reason = "OTHER"};
         call.observer.on_chunk(chunk);
         call.observer.on_done(absl::OkStatus());
       }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Collector collector;
    const std::size_t before = fake_->calls().size();
    Start(collector);
    ASSERT_EQ(fake_->calls().size(), before + 1);
    c.answer(*fake_->calls().back());
    static_cast<void>(collector.Wait());  // OK or not, as the stream ended
    EXPECT_EQ(memory_->size(), 0u);
  }
  // Cancelled: the caller cancels, the upstream call is cancelled, nothing is stored.
  Collector cancelled;
  auto call = Start(cancelled);
  auto upstream = fake_->calls().back();
  upstream->observer.on_chunk(Chunk("a"));
  call->Cancel();
  EXPECT_EQ(cancelled.Wait().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(upstream->cancelled.HasBeenNotified());
  EXPECT_EQ(memory_->size(), 0u);
  // And the next call goes upstream again.
  Collector next;
  const std::size_t before = fake_->calls().size();
  Start(next);
  ASSERT_EQ(fake_->calls().size(), before + 1);
  Answer(*fake_->calls().back());
  ASSERT_TRUE(next.Wait().ok());
}

TEST_F(CachingGenerateStubTest, AResultLargerThanTheEntryBoundIsNotStored) {
  CachingOptions options;
  options.max_entry_bytes = 300;
  Build(options);
  Collector big;
  Start(big);
  auto& call = *fake_->calls()[0];
  call.observer.on_chunk(Chunk(std::string(400, 'x')));
  call.observer.on_chunk(Chunk("end", "STOP", 3));
  call.observer.on_done(absl::OkStatus());
  ASSERT_TRUE(big.Wait().ok());
  EXPECT_EQ(big.texts().size(), 2u) << "the caller still gets everything";
  EXPECT_EQ(memory_->size(), 0u);
  EXPECT_EQ(telemetry_.count(CacheEvent::kTooLarge), 1);
  EXPECT_EQ(telemetry_.count(CacheEvent::kStore), 0);
}

// A store that fails: every call goes upstream and succeeds; the errors are counted.
class FailingStore final : public ResultStore {
 public:
  void Get(std::string, absl::AnyInvocable<void(absl::StatusOr<std::string>)> done) override {
    done(absl::UnavailableError("redis down"));
  }
  void Put(std::string, std::string, absl::Duration,
           absl::AnyInvocable<void(absl::Status)> done) override {
    done(absl::UnavailableError("redis down"));
  }
};

TEST_F(CachingGenerateStubTest, AFailingStoreNeverFailsACall) {
  Build(CachingOptions{}, std::make_shared<FailingStore>());
  for (int i = 1; i <= 2; ++i) {
    Collector collector;
    Start(collector);
    ASSERT_EQ(fake_->calls().size(), static_cast<std::size_t>(i));
    Answer(*fake_->calls().back());
    ASSERT_TRUE(collector.Wait().ok());
    EXPECT_EQ(collector.texts(), kAbc);
  }
  EXPECT_EQ(telemetry_.count(CacheEvent::kError), 4);  // two lookups, two stores
}

// A store that answers only when the test says so (or never).
class ManualStore final : public ResultStore {
 public:
  void Get(std::string, absl::AnyInvocable<void(absl::StatusOr<std::string>)> done) override {
    absl::MutexLock lock(&mu_);
    gets_.push_back(std::move(done));
  }
  void Put(std::string, std::string, absl::Duration,
           absl::AnyInvocable<void(absl::Status)> done) override {
    done(absl::OkStatus());
  }
  void AnswerGet(std::size_t i, absl::StatusOr<std::string> value) {
    absl::AnyInvocable<void(absl::StatusOr<std::string>)> done;
    {
      absl::MutexLock lock(&mu_);
      done = std::move(gets_[i]);
    }
    done(std::move(value));
  }
  std::size_t gets() {
    absl::MutexLock lock(&mu_);
    return gets_.size();
  }

 private:
  absl::Mutex mu_;
  std::vector<absl::AnyInvocable<void(absl::StatusOr<std::string>)>> gets_;
};

TEST_F(CachingGenerateStubTest, ASlowStoreIsGivenUpAfterTheLookupTimeout) {
  auto timer = std::make_shared<testing::FakeTimer>();
  auto store = std::make_shared<ManualStore>();
  CachingOptions options;
  options.timer = timer;
  options.lookup_timeout = absl::Milliseconds(100);
  Build(options, store);
  Collector collector;
  Start(collector);
  EXPECT_EQ(fake_->calls().size(), 0u) << "waiting for the store";
  timer->Advance(absl::Milliseconds(100));
  ASSERT_EQ(fake_->calls().size(), 1u) << "the timeout sends the call upstream";
  EXPECT_EQ(telemetry_.count(CacheEvent::kError), 1);
  // The late answer changes nothing.
  store->AnswerGet(0, EncodeChunks({Chunk("stale", "STOP")}));
  Answer(*fake_->calls()[0]);
  ASSERT_TRUE(collector.Wait().ok());
  EXPECT_EQ(collector.texts(), kAbc);
}

TEST_F(CachingGenerateStubTest, CallersArrivingDuringTheLookupShareItAndTheLatestDeadline) {
  auto store = std::make_shared<ManualStore>();
  Build(CachingOptions{}, store);
  const absl::Time soon = absl::Now() + absl::Seconds(10);
  const absl::Time later = soon + absl::Seconds(50);
  Collector first, second;
  Start(first, CallOptions{.deadline = soon});
  Start(second, CallOptions{.deadline = later});
  EXPECT_EQ(store->gets(), 1u) << "one lookup for both";
  store->AnswerGet(0, absl::NotFoundError("miss"));
  ASSERT_EQ(fake_->calls().size(), 1u);
  EXPECT_EQ(fake_->calls()[0]->options.deadline, later);
  Answer(*fake_->calls()[0]);
  ASSERT_TRUE(first.Wait().ok());
  ASSERT_TRUE(second.Wait().ok());
  EXPECT_EQ(first.texts(), kAbc);
  EXPECT_EQ(second.texts(), kAbc);
  EXPECT_EQ(first.cached(), false);
  EXPECT_EQ(second.cached(), true);
  EXPECT_EQ(telemetry_.count(CacheEvent::kCoalesced), 1);
}

TEST_F(CachingGenerateStubTest, ACallerWithALaterDeadlineDoesNotJoinARunningCall) {
  const absl::Time soon = absl::Now() + absl::Seconds(10);
  Collector first, second, third;
  Start(first, CallOptions{.deadline = soon});
  Start(second, CallOptions{.deadline = soon + absl::Seconds(60)});
  ASSERT_EQ(fake_->calls().size(), 2u);
  // A third caller joins the newest call, whose deadline covers its own.
  Start(third, CallOptions{.deadline = soon + absl::Seconds(30)});
  ASSERT_EQ(fake_->calls().size(), 2u);
  Answer(*fake_->calls()[1]);
  ASSERT_TRUE(third.Wait().ok());
  EXPECT_EQ(third.texts(), kAbc);
  Answer(*fake_->calls()[0]);
  ASSERT_TRUE(first.Wait().ok());
}

// Callers arriving together each bring "now + N s": a deadline later by less than the tolerance
// (1 s) still joins the running call.
TEST_F(CachingGenerateStubTest, ACallerArrivingMomentsLaterJoinsTheRunningCall) {
  const absl::Time soon = absl::Now() + absl::Seconds(10);
  Collector first, second;
  Start(first, CallOptions{.deadline = soon});
  Start(second, CallOptions{.deadline = soon + absl::Milliseconds(300)});
  ASSERT_EQ(fake_->calls().size(), 1u);
  Answer(*fake_->calls()[0]);
  ASSERT_TRUE(first.Wait().ok());
  ASSERT_TRUE(second.Wait().ok());
  EXPECT_EQ(second.texts(), kAbc);
  EXPECT_EQ(telemetry_.count(CacheEvent::kCoalesced), 1);
}

TEST_F(CachingGenerateStubTest, IdenticalCallsInFlightShareOneUpstreamCall) {
  constexpr int kCallers = 8;
  std::vector<std::unique_ptr<Collector>> collectors;
  std::vector<std::shared_ptr<gemini::PendingCall>> calls;
  for (int i = 0; i < kCallers; ++i) {
    collectors.push_back(std::make_unique<Collector>());
    calls.push_back(Start(*collectors.back()));
  }
  ASSERT_EQ(fake_->calls().size(), 1u);
  Answer(*fake_->calls()[0]);
  for (auto& collector : collectors) {
    ASSERT_TRUE(collector->Wait().ok());
    EXPECT_EQ(collector->texts(), kAbc);
  }
  EXPECT_EQ(telemetry_.count(CacheEvent::kMiss), 1);
  EXPECT_EQ(telemetry_.count(CacheEvent::kCoalesced), kCallers - 1);
  EXPECT_EQ(memory_->size(), 1u);
}

TEST_F(CachingGenerateStubTest, ALateJoinerGetsTheChunksSoFarThenTheLiveOnes) {
  Collector first, late;
  Start(first);
  auto& call = *fake_->calls()[0];
  call.observer.on_chunk(Chunk("a"));
  call.observer.on_chunk(Chunk("b"));
  Start(late);
  EXPECT_EQ(late.texts(), (std::vector<std::string>{"a", "b"}));
  call.observer.on_chunk(Chunk("c", "STOP", 42));
  call.observer.on_done(absl::OkStatus());
  ASSERT_TRUE(late.Wait().ok());
  EXPECT_EQ(late.texts(), kAbc);
  EXPECT_EQ(first.texts(), kAbc);
  EXPECT_EQ(fake_->calls().size(), 1u);
}

TEST_F(CachingGenerateStubTest, OneCallerCancellingLeavesTheOthersTheirCall) {
  Collector a, b, c;
  Start(a);
  auto b_call = Start(b);
  Start(c);
  auto upstream = fake_->calls()[0];
  upstream->observer.on_chunk(Chunk("a"));
  b_call->Cancel();
  EXPECT_EQ(b.Wait().code(), absl::StatusCode::kCancelled);
  EXPECT_FALSE(upstream->cancelled.HasBeenNotified());
  upstream->observer.on_chunk(Chunk("b"));
  upstream->observer.on_chunk(Chunk("c", "STOP", 42));
  upstream->observer.on_done(absl::OkStatus());
  ASSERT_TRUE(a.Wait().ok());
  ASSERT_TRUE(c.Wait().ok());
  EXPECT_EQ(a.texts(), kAbc);
  EXPECT_EQ(c.texts(), kAbc);
  EXPECT_EQ(b.texts(), std::vector<std::string>{"a"});
  EXPECT_EQ(memory_->size(), 1u);
}

TEST_F(CachingGenerateStubTest, TheUpstreamCallIsCancelledWhenEveryCallerCancelled) {
  Collector a, b;
  auto a_call = Start(a);
  auto b_call = Start(b);
  auto upstream = fake_->calls()[0];
  a_call->Cancel();
  EXPECT_FALSE(upstream->cancelled.HasBeenNotified());
  b_call->Cancel();
  EXPECT_TRUE(upstream->cancelled.HasBeenNotified());
  EXPECT_EQ(a.Wait().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(b.Wait().code(), absl::StatusCode::kCancelled);
  // A new caller does not join the cancelled call.
  Collector next;
  Start(next);
  ASSERT_EQ(fake_->calls().size(), 2u);
  Answer(*fake_->calls()[1]);
  ASSERT_TRUE(next.Wait().ok());
}

// Callers arrive on many threads while the upstream call streams on another: each gets every
// chunk, in order, exactly once, and one upstream call serves them all.
TEST_F(CachingGenerateStubTest, ConcurrentCallersEachGetTheWholeStream) {
  constexpr int kCallers = 16;
  constexpr int kChunks = 200;
  std::vector<std::unique_ptr<Collector>> collectors;
  for (int i = 0; i < kCallers; ++i) collectors.push_back(std::make_unique<Collector>());
  Collector leader;
  Start(leader);
  ASSERT_EQ(fake_->calls().size(), 1u);
  auto upstream = fake_->calls()[0];
  std::vector<std::string> expected;
  for (int i = 0; i < kChunks; ++i) expected.push_back(std::to_string(i));
  std::thread producer([&] {
    for (int i = 0; i < kChunks; ++i) {
      upstream->observer.on_chunk(Chunk(std::to_string(i), i + 1 == kChunks ? "STOP" : ""));
    }
    upstream->observer.on_done(absl::OkStatus());
  });
  std::vector<std::thread> callers;
  std::vector<std::shared_ptr<gemini::PendingCall>> calls(kCallers);
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&, i] { calls[i] = Start(*collectors[i]); });
  }
  producer.join();
  for (auto& t : callers) t.join();
  ASSERT_TRUE(leader.Wait().ok());
  EXPECT_EQ(leader.texts(), expected);
  for (auto& collector : collectors) {
    ASSERT_TRUE(collector->Wait().ok());
    EXPECT_EQ(collector->texts(), expected);
  }
  // Callers that came after the end were answered from the store instead: never upstream.
  EXPECT_EQ(fake_->calls().size(), 1u);
}

// A hit's replay and a miss's upstream call run on the executor, never on the thread that
// answered the lookup (a store's I/O thread, the timer's, or the caller's for an in-process hit).
TEST_F(CachingGenerateStubTest, WorkAfterALookupRunsOnTheExecutor) {
  auto queue = std::make_shared<std::vector<absl::AnyInvocable<void()>>>();
  CachingOptions options;
  options.executor = [queue](absl::AnyInvocable<void()> work) {
    queue->push_back(std::move(work));
  };
  Build(std::move(options));
  auto run_queue = [&queue] {
    auto work = std::move(*queue);
    queue->clear();
    for (auto& w : work) w();
  };
  Collector miss;
  Start(miss);
  EXPECT_EQ(fake_->calls().size(), 0u) << "started on the caller's thread";
  run_queue();
  ASSERT_EQ(fake_->calls().size(), 1u);
  Answer(*fake_->calls()[0]);
  ASSERT_TRUE(miss.Wait().ok());

  Collector hit;
  Start(hit);
  EXPECT_FALSE(hit.done());
  EXPECT_TRUE(hit.texts().empty()) << "replayed on the caller's thread";
  run_queue();
  ASSERT_TRUE(hit.Wait().ok());
  EXPECT_EQ(hit.texts(), kAbc);
  EXPECT_EQ(fake_->calls().size(), 1u);
}

TEST(ChunksTest, RoundTripAndRejectGarbage) {
  std::vector<GenerateContentResponse> chunks = {Chunk("x\ny"), Chunk("z", "STOP", 9)};
  auto decoded = DecodeChunks(EncodeChunks(chunks));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->size(), 2u);
  EXPECT_EQ(gemini::AnswerText((*decoded)[0]), "x\ny");
  EXPECT_EQ((*decoded)[1].candidates[0].finish_reason, "STOP");
  EXPECT_EQ((*decoded)[1].usage_metadata->total_token_count, 9);
  for (std::string bad : {std::string(""), std::string("5\n{}"), std::string("x\n{}"),
                          std::string("99999999999\n{}"), std::string("2\n[]")}) {
    EXPECT_FALSE(DecodeChunks(bad).ok()) << bad;
  }
}

TEST(CacheKeyTest, EveryPartCountsAndFieldsDoNotRunTogether) {
  const std::string key = CacheKey("alice", "gemini-test", "{}");
  EXPECT_EQ(key.substr(0, 5), "vgrc:");
  EXPECT_EQ(key.size(), 5u + 64u);
  EXPECT_EQ(key, CacheKey("alice", "gemini-test", "{}"));
  EXPECT_NE(key, CacheKey("bob", "gemini-test", "{}"));
  EXPECT_NE(key, CacheKey("alice", "gemini-other", "{}"));
  EXPECT_NE(key, CacheKey("alice", "gemini-test", "{ }"));
  EXPECT_NE(CacheKey("ab", "c", "{}"), CacheKey("a", "bc", "{}"));
}

}  // namespace
}  // namespace vision_gateway::result_cache
