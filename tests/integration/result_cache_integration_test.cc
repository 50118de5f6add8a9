// The result cache (#21) through the whole stack: the real server against the emulator, with
// the caching stub composed on top of the generate stub as main.cc composes it. What a test
// checks is what a caller and an operator see: the messages, the cached marker and usage, the
// server-timing trailer, the metric, and how many requests reached "Gemini".
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "emulator/gemini_wire.h"
#include "service/common/thread_pool.h"
#include "service/result_cache/caching_generate_stub.h"
#include "service/result_cache/memory_result_store.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/testing/test_images.h"

namespace vision_gateway::testing {
namespace {

namespace v1 = ::vision::v1;

constexpr char kAliceToken[] = "alice-secret-token-0123456789";
constexpr char kBobToken[] = "bob-secret-token-0123456789ab";

// Two saturated shapes on white: the emulator's scene mode finds a red and a blue object.
std::string ScenePng() {
  Pixels pixels = MakePixels(640, 480, 3);
  FillRect(pixels, Rgb{255, 255, 255}, 0, 0, 640, 480);
  FillRect(pixels, Rgb{220, 20, 20}, 100, 80, 300, 200);
  FillEllipse(pixels, Rgb{20, 40, 220}, 350, 250, 550, 430);
  return *Encode(pixels, ".png");
}

template <typename Response>
struct Stream {
  std::vector<Response> messages;
  grpc::Status status;
  std::string server_timing;
};

template <typename Response, typename Request, typename Rpc>
Stream<Response> Read(Rpc rpc, const Request& request, const std::string& token) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  if (!token.empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  auto reader = rpc(&context, request);
  Stream<Response> out;
  Response response;
  while (reader->Read(&response)) out.messages.push_back(response);
  out.status = reader->Finish();
  for (const auto& [key, value] : context.GetServerTrailingMetadata()) {
    if (key == "server-timing") out.server_timing.assign(value.data(), value.size());
  }
  return out;
}

class ResultCacheTest : public GatewayTest {
 protected:
  void SetUp() override { StartCached(/*auth=*/false); }

  void StartCached(bool auth) {
    auth_ = auth;
    StackOptions stack;
    stack.wrap_generate = [this](std::shared_ptr<gemini::GenerateStub> inner) {
      store_ = std::make_shared<result_cache::MemoryResultStore>(
          result_cache::MemoryResultStoreOptions{.max_bytes = 64 << 20});
      result_cache::CachingOptions options;
      options.timer = MakeThreadTimer();
      options.executor = [pool = &pool_](absl::AnyInvocable<void()> work) {
        pool->ScheduleContinuation(std::move(work));
      };
      return std::shared_ptr<gemini::GenerateStub>(result_cache::MakeCachingGenerateStub(
          std::move(inner), store_, std::move(options), *metrics_));
    };
    StartStackWith(stack);
  }

  void ConfigureServer(server::ServerOptions& options) override {
    if (!auth_) return;
    tokens_file_ = absl::StrCat(::testing::TempDir(), "/", getpid(), "_cache_tokens");
    std::ofstream(tokens_file_, std::ios::binary | std::ios::trunc)
        << "alice " << kAliceToken << "\nbob " << kBobToken << "\n";
    server::AuthOptions auth;
    auth.tokens_file = tokens_file_;
    options.auth = auth;
  }

  void TearDown() override {
    GatewayTest::TearDown();
    if (!tokens_file_.empty()) std::remove(tokens_file_.c_str());
  }

  Stream<v1::DetectResponse> Detect(const v1::DetectRequest& request,
                                    const std::string& token = "") {
    return Read<v1::DetectResponse>(
        [this](grpc::ClientContext* c, const v1::DetectRequest& r) { return stub_->Detect(c, r); },
        request, token);
  }
  Stream<v1::SegmentResponse> Segment(const v1::SegmentRequest& request) {
    return Read<v1::SegmentResponse>(
        [this](grpc::ClientContext* c, const v1::SegmentRequest& r) {
          return stub_->Segment(c, r);
        },
        request, "");
  }
  Stream<v1::CaptionResponse> Caption(const v1::CaptionRequest& request) {
    return Read<v1::CaptionResponse>(
        [this](grpc::ClientContext* c, const v1::CaptionRequest& r) {
          return stub_->Caption(c, r);
        },
        request, "");
  }

  // The generate requests Gemini (the emulator) has received.
  int UpstreamCalls() const {
    int n = 0;
    for (const auto& request : emulator_->Requests()) {
      n += absl::StrContains(request.target, ":streamGenerateContent");
    }
    return n;
  }

  bool auth_ = false;
  std::string tokens_file_;
  ThreadPool pool_{2};  // outlives the server (TearDown ends it first)
  std::shared_ptr<result_cache::MemoryResultStore> store_;
};

v1::DetectRequest DetectOf(const std::string& png,
                           v1::CacheControl cache = v1::CACHE_CONTROL_UNSPECIFIED) {
  v1::DetectRequest request;
  request.mutable_image()->set_content(png);
  request.mutable_options()->set_cache(cache);
  return request;
}

// Everything but the summary, which says "cached" on a hit.
template <typename Response>
std::vector<std::string> Objects(const Stream<Response>& stream) {
  std::vector<std::string> out;
  for (const Response& message : stream.messages) {
    if (!message.has_summary()) out.push_back(message.SerializeAsString());
  }
  return out;
}

TEST_F(ResultCacheTest, TheSameDetectTwiceIsAnsweredOnce) {
  const std::string png = ScenePng();
  auto first = Detect(DetectOf(png));
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  ASSERT_EQ(first.messages.size(), 4u);  // image info, two objects, summary
  const v1::Summary& live = first.messages.back().summary();
  EXPECT_FALSE(live.cached());
  EXPECT_GT(live.usage().total_tokens(), 0);
  EXPECT_FALSE(live.has_cached_usage());
  EXPECT_THAT(first.server_timing, ::testing::HasSubstr("cache;desc=miss"));
  EXPECT_EQ(UpstreamCalls(), 1);

  auto second = Detect(DetectOf(png));
  ASSERT_TRUE(second.status.ok()) << second.status.error_message();
  EXPECT_EQ(UpstreamCalls(), 1) << "the hit must not reach Gemini";
  ASSERT_EQ(store_->size(), 1u);
  RecordProperty("cached_detect_bytes", static_cast<int>(store_->bytes()));  // README figure
  EXPECT_EQ(Objects(second), Objects(first)) << "a hit is the same answer";
  const v1::Summary& hit = second.messages.back().summary();
  EXPECT_TRUE(hit.cached());
  EXPECT_FALSE(hit.has_usage()) << "a hit bills nothing";
  EXPECT_EQ(hit.cached_usage().SerializeAsString(), live.usage().SerializeAsString());
  EXPECT_EQ(hit.count(), live.count());
  EXPECT_EQ(hit.model_version(), live.model_version());
  EXPECT_THAT(second.server_timing, ::testing::HasSubstr("cache;desc=hit"));

  const std::string scrape = metrics_->Scrape();
  EXPECT_THAT(scrape, ::testing::HasSubstr(
                          "vision_gateway_result_cache_events_total{event=\"hit\",task=\"detect\"} 1"));
  EXPECT_THAT(scrape, ::testing::HasSubstr(
                          "vision_gateway_result_cache_events_total{event=\"miss\",task=\"detect\"} 1"));
  EXPECT_THAT(scrape, ::testing::HasSubstr(
                          "vision_gateway_result_cache_events_total{event=\"store\",task=\"detect\"} 1"));
  // The hit made no upstream attempt: one attempt in all.
  EXPECT_THAT(scrape, ::testing::HasSubstr(
                          "operation=\"streamGenerateContent\",outcome=\"OK\"} 1"));

  // Another image is another answer.
  Pixels other = MakePixels(320, 240, 3);
  FillRect(other, Rgb{255, 255, 255}, 0, 0, 320, 240);
  FillRect(other, Rgb{220, 20, 20}, 10, 10, 100, 100);
  auto third = Detect(DetectOf(*Encode(other, ".png")));
  ASSERT_TRUE(third.status.ok());
  EXPECT_FALSE(third.messages.back().summary().cached());
  EXPECT_EQ(UpstreamCalls(), 2);
}

TEST_F(ResultCacheTest, BypassAndRefresh) {
  const std::string png = ScenePng();
  auto bypass = Detect(DetectOf(png, v1::CACHE_CONTROL_BYPASS));
  ASSERT_TRUE(bypass.status.ok());
  EXPECT_THAT(bypass.server_timing, ::testing::HasSubstr("cache;desc=bypass"));
  EXPECT_EQ(store_->size(), 0u) << "bypass must not write";

  auto stored = Detect(DetectOf(png));
  ASSERT_TRUE(stored.status.ok());
  EXPECT_FALSE(stored.messages.back().summary().cached());
  EXPECT_EQ(UpstreamCalls(), 2);

  auto bypass_again = Detect(DetectOf(png, v1::CACHE_CONTROL_BYPASS));
  EXPECT_FALSE(bypass_again.messages.back().summary().cached()) << "bypass must not read";
  EXPECT_EQ(UpstreamCalls(), 3);

  auto refresh = Detect(DetectOf(png, v1::CACHE_CONTROL_REFRESH));
  ASSERT_TRUE(refresh.status.ok());
  EXPECT_FALSE(refresh.messages.back().summary().cached()) << "refresh must not read";
  EXPECT_THAT(refresh.server_timing, ::testing::HasSubstr("cache;desc=refresh"));
  EXPECT_EQ(UpstreamCalls(), 4);

  auto use = Detect(DetectOf(png, v1::CACHE_CONTROL_USE));
  EXPECT_TRUE(use.messages.back().summary().cached());
  EXPECT_EQ(UpstreamCalls(), 4);
}

// The cache keeps Gemini's answer, not the gateway's result: a replay is post-processed as live,
// so a Segment with another mask threshold is answered from the same entry, with its own masks.
TEST_F(ResultCacheTest, SegmentAndCaptionReplaysArePostProcessedAsLive) {
  const std::string png = ScenePng();
  v1::SegmentRequest segment;
  segment.mutable_image()->set_content(png);
  auto live = Segment(segment);
  ASSERT_TRUE(live.status.ok()) << live.status.error_message();
  auto hit = Segment(segment);
  ASSERT_TRUE(hit.status.ok());
  EXPECT_EQ(Objects(hit), Objects(live));
  EXPECT_TRUE(hit.messages.back().summary().cached());
  EXPECT_EQ(UpstreamCalls(), 1);
  ASSERT_EQ(store_->size(), 1u);
  RecordProperty("cached_segment_bytes", static_cast<int>(store_->bytes()));  // README figure

  v1::CaptionRequest caption;
  caption.add_images()->set_content(png);
  auto first = Caption(caption);
  ASSERT_TRUE(first.status.ok());
  auto second = Caption(caption);
  ASSERT_TRUE(second.status.ok());
  EXPECT_EQ(UpstreamCalls(), 2);
  std::string first_text, second_text;
  for (const auto& m : first.messages) first_text += m.text();
  for (const auto& m : second.messages) second_text += m.text();
  EXPECT_FALSE(first_text.empty());
  EXPECT_EQ(second_text, first_text);
  EXPECT_FALSE(first.messages.back().cached());
  EXPECT_TRUE(second.messages.back().cached());
  EXPECT_FALSE(second.messages.back().has_usage());
  EXPECT_EQ(second.messages.back().cached_usage().SerializeAsString(),
            first.messages.back().usage().SerializeAsString());
}

// Identical calls in flight at the same moment share one upstream call: Gemini's answer is held
// until every caller has joined, then each gets the whole stream.
TEST_F(ResultCacheTest, IdenticalCallsInFlightShareOneUpstreamCall) {
  constexpr int kCallers = 4;
  emulator::ScriptedResponse held = emulator::ScriptedStream({"A red", " square", " here"});
  held.hold_last_write_until = [this] {
    return absl::StrContains(
        metrics_->Scrape(),
        absl::StrCat("vision_gateway_result_cache_events_total{event=\"coalesced\","
                     "task=\"caption\"} ",
                     kCallers - 1));
  };
  emulator_->Enqueue(held);
  v1::CaptionRequest caption;
  caption.add_images()->set_content(ScenePng());
  std::vector<Stream<v1::CaptionResponse>> results(kCallers);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&, i] { results[i] = Caption(caption); });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(UpstreamCalls(), 1);
  int cached = 0;
  for (const auto& result : results) {
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    std::string text;
    for (const auto& m : result.messages) text += m.text();
    EXPECT_EQ(text, "A red square here");
    cached += result.messages.back().cached();
  }
  EXPECT_EQ(cached, kCallers - 1) << "one caller paid, the others shared its call";
}

class ResultCacheAuthTest : public ResultCacheTest {
 protected:
  void SetUp() override { StartCached(/*auth=*/true); }
};

TEST_F(ResultCacheAuthTest, ACallersResultsAreServedOnlyToThatCaller) {
  const std::string png = ScenePng();
  auto alice = Detect(DetectOf(png), kAliceToken);
  ASSERT_TRUE(alice.status.ok()) << alice.status.error_message();
  auto bob = Detect(DetectOf(png), kBobToken);
  ASSERT_TRUE(bob.status.ok());
  EXPECT_FALSE(bob.messages.back().summary().cached()) << "bob must not get alice's result";
  EXPECT_EQ(UpstreamCalls(), 2);
  auto alice_again = Detect(DetectOf(png), kAliceToken);
  ASSERT_TRUE(alice_again.status.ok());
  EXPECT_TRUE(alice_again.messages.back().summary().cached());
  EXPECT_EQ(UpstreamCalls(), 2);
}

}  // namespace
}  // namespace vision_gateway::testing
