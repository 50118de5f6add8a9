// The client's runtime on its own: the registry of live calls that the client's destruction
// cancels, and the I/O threads (they survive throwing handlers, finish queued work on Stop).
#include "service/http/runtime_internal.h"

#include <atomic>
#include <future>
#include <memory>
#include <stdexcept>

#include <boost/asio/post.hpp>

#include "gtest/gtest.h"
#include "service/http/http_client.h"

namespace vision_gateway::http::internal {
namespace {

namespace net = boost::asio;

class CountingCall final : public Call {
 public:
  void Cancel() override { ++cancels; }
  std::atomic<int> cancels{0};
};

TEST(HttpRuntimeTest, CancelAllCancelsLiveCallsAndRefusesNewOnes) {
  Runtime rt(HttpClientOptions{});
  auto live = std::make_shared<CountingCall>();
  auto unregistered = std::make_shared<CountingCall>();
  auto gone = std::make_shared<CountingCall>();
  ASSERT_TRUE(rt.Register(live.get(), live));
  ASSERT_TRUE(rt.Register(unregistered.get(), unregistered));
  ASSERT_TRUE(rt.Register(gone.get(), gone));
  rt.Unregister(unregistered.get());
  gone.reset();  // only a weak reference is kept: nothing to cancel

  rt.CancelAll();

  EXPECT_EQ(live->cancels, 1);
  EXPECT_EQ(unregistered->cancels, 0);
  auto late = std::make_shared<CountingCall>();
  EXPECT_FALSE(rt.Register(late.get(), late));
}

TEST(HttpIoThreadsTest, ThreadGoesOnServingAfterAHandlerThrows) {
  auto rt = std::make_shared<Runtime>(HttpClientOptions{});
  IoThreads threads(rt, 1);
  std::promise<void> ran;
  net::post(rt->ioc, [] { throw std::runtime_error("handler bug"); });
  net::post(rt->ioc, [] { throw 42; });
  net::post(rt->ioc, [&ran] { ran.set_value(); });
  EXPECT_EQ(ran.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_FALSE(threads.Stop());
}

TEST(HttpIoThreadsTest, StopFinishesQueuedWorkThenJoins) {
  auto rt = std::make_shared<Runtime>(HttpClientOptions{});
  std::atomic<int> done{0};
  IoThreads threads(rt, 2);
  for (int i = 0; i < 100; ++i) net::post(rt->ioc, [&done] { ++done; });

  EXPECT_FALSE(threads.Stop());

  EXPECT_EQ(done, 100);
  EXPECT_TRUE(rt->ioc.stopped());
  EXPECT_FALSE(threads.Stop());  // idempotent
}

TEST(HttpIoThreadsTest, StopFromAnIoThreadDetachesInsteadOfJoiningItself) {
  auto rt = std::make_shared<Runtime>(HttpClientOptions{});
  auto threads = std::make_unique<IoThreads>(rt, 2);
  std::promise<bool> stopped;
  net::post(rt->ioc, [&] { stopped.set_value(threads->Stop()); });
  auto result = stopped.get_future();
  ASSERT_EQ(result.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(result.get());
  threads.reset();  // already stopped: nothing to join
}

}  // namespace
}  // namespace vision_gateway::http::internal
