// StreamHandler::on_paced_body: a body read only as fast as its reader asks for it (the batch
// responses-file download, issue #20).
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/common/error_reasons.h"
#include "service/common/status_details.h"
#include "service/http/http_client.h"
#include "tests/service/http/test_http_server.h"

namespace vision_gateway::http {
namespace {

using ::vision_gateway::http::testing::ServerConnection;
using ::vision_gateway::http::testing::ServerRequest;
using ::vision_gateway::http::testing::TestHttpServer;

// 64 MiB: far more than loopback socket buffers hold, so a server writing it can finish only if
// the client keeps reading.
constexpr std::size_t kBodyBytes = std::size_t{64} << 20;
constexpr std::size_t kWriteBytes = std::size_t{256} << 10;

char ByteAt(std::size_t i) { return static_cast<char>('a' + (i * 7 + i / 4096) % 26); }

// Writes kBodyBytes with Content-Length in kWriteBytes writes; counts what the kernel accepted.
struct BigBodyServer {
  std::atomic<std::size_t> written{0};
  absl::Notification all_written;
  std::unique_ptr<TestHttpServer> server;

  BigBodyServer() {
    server = TestHttpServer::Start([this](const ServerRequest&, ServerConnection& connection) {
      if (!connection.Write(absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ", kBodyBytes,
                                         "\r\nContent-Type: application/jsonl\r\n\r\n"))) {
        return;
      }
      std::string chunk(kWriteBytes, '\0');
      for (std::size_t at = 0; at < kBodyBytes; at += kWriteBytes) {
        for (std::size_t i = 0; i < kWriteBytes; ++i) chunk[i] = ByteAt(at + i);
        if (!connection.Write(chunk)) return;
        written.fetch_add(kWriteBytes);
      }
      all_written.Notify();
      connection.CloseAfterHandler();
    });
  }
};

// A reader that keeps every `resume` it is given until the test releases it.
struct SlowReader {
  absl::Mutex mu;
  std::size_t received ABSL_GUARDED_BY(mu) = 0;
  int pieces ABSL_GUARDED_BY(mu) = 0;
  int outstanding ABSL_GUARDED_BY(mu) = 0;  // pieces delivered and not yet resumed
  int max_outstanding ABSL_GUARDED_BY(mu) = 0;
  std::size_t largest_piece ABSL_GUARDED_BY(mu) = 0;
  bool intact ABSL_GUARDED_BY(mu) = true;
  absl::AnyInvocable<void()> held ABSL_GUARDED_BY(mu);
  bool hold ABSL_GUARDED_BY(mu) = true;
  absl::Notification done;
  absl::Status status;

  StreamHandler Handler() {
    StreamHandler handler;
    handler.on_paced_body = [this](std::string_view piece, absl::AnyInvocable<void()> resume) {
      absl::MutexLock lock(&mu);
      for (std::size_t i = 0; i < piece.size(); ++i) {
        if (piece[i] != ByteAt(received + i)) {
          intact = false;
          break;
        }
      }
      received += piece.size();
      ++pieces;
      largest_piece = std::max(largest_piece, piece.size());
      max_outstanding = std::max(max_outstanding, ++outstanding);
      if (hold) {
        held = std::move(resume);
        return;
      }
      --outstanding;
      resume();  // inside the callback: allowed
    };
    handler.on_done = [this](absl::Status s) {
      status = std::move(s);
      done.Notify();
    };
    return handler;
  }

  // Stops holding: resumes the held piece and every later one at once.
  void Release() {
    absl::AnyInvocable<void()> resume;
    {
      absl::MutexLock lock(&mu);
      hold = false;
      resume = std::move(held);
      if (resume) --outstanding;
    }
    if (resume) resume();
  }

  bool HasHeldPiece() {
    absl::MutexLock lock(&mu);
    return static_cast<bool>(held);
  }
};

std::shared_ptr<HttpClient> Client() {
  HttpClientOptions options;
  options.io_threads = 1;
  absl::StatusOr<std::shared_ptr<HttpClient>> client = MakeHttpClient(options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *client : nullptr;
}

TEST(PacedBodyTest, ASlowReaderHoldsTheSenderBackAndGetsTheWholeBody) {
  BigBodyServer upstream;
  std::shared_ptr<HttpClient> client = Client();
  SlowReader reader;
  Request request;
  request.url = absl::StrCat(upstream.server->base_url(), "/v1beta/files/x:download?alt=media");
  request.deadline = absl::Now() + absl::Seconds(30);
  std::shared_ptr<Call> call = client->Stream(request, reader.Handler());

  // The first piece arrives and is held: the server cannot finish writing 64 MiB while the
  // client reads nothing more. (A negative check: the 300 ms only give a client that kept
  // reading the chance to show it; what is asserted is that no second piece came and that the
  // server got less than half of the body out, which a reading client passes in far less time,
  // see the next test.)
  {
    absl::MutexLock lock(&reader.mu);
    ASSERT_TRUE(reader.mu.AwaitWithTimeout(
        absl::Condition(+[](SlowReader* r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->mu) {
                          return static_cast<bool>(r->held);
                        }, &reader),
        absl::Seconds(10)));
  }
  EXPECT_FALSE(upstream.all_written.WaitForNotificationWithTimeout(absl::Milliseconds(300)));
  {
    absl::MutexLock lock(&reader.mu);
    EXPECT_EQ(reader.pieces, 1);  // nothing more was delivered while the piece was held
    EXPECT_LE(reader.received, std::size_t{64} << 10);
  }
  EXPECT_LT(upstream.written.load(), kBodyBytes / 2);

  reader.Release();
  ASSERT_TRUE(reader.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_TRUE(reader.status.ok()) << reader.status;
  absl::MutexLock lock(&reader.mu);
  EXPECT_EQ(reader.received, kBodyBytes);
  EXPECT_TRUE(reader.intact);
  EXPECT_EQ(reader.max_outstanding, 1);
  EXPECT_LE(reader.largest_piece, std::size_t{64} << 10);
  EXPECT_GT(reader.pieces, 1);
}

TEST(PacedBodyTest, AnUnpacedReaderLetsTheSenderFinish) {
  // The control of the test above: the same body read with on_body is written out at once.
  BigBodyServer upstream;
  std::shared_ptr<HttpClient> client = Client();
  absl::Notification done;
  std::atomic<std::size_t> received{0};
  StreamHandler handler;
  handler.on_body = [&](std::string_view piece) { received.fetch_add(piece.size()); };
  handler.on_done = [&](absl::Status) { done.Notify(); };
  Request request;
  request.url = absl::StrCat(upstream.server->base_url(), "/big");
  request.deadline = absl::Now() + absl::Seconds(30);
  std::shared_ptr<Call> call = client->Stream(request, std::move(handler));
  EXPECT_TRUE(upstream.all_written.WaitForNotificationWithTimeout(absl::Seconds(30)));
  // max_response_body_bytes (64 MiB) is the limit of an unpaced body; this one is exactly it.
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(received.load(), kBodyBytes);
}

TEST(PacedBodyTest, TheDeadlineEndsAWaitForTheReader) {
  BigBodyServer upstream;
  std::shared_ptr<HttpClient> client = Client();
  SlowReader reader;
  Request request;
  request.url = absl::StrCat(upstream.server->base_url(), "/x");
  request.deadline = absl::Now() + absl::Milliseconds(500);
  std::shared_ptr<Call> call = client->Stream(request, reader.Handler());
  ASSERT_TRUE(reader.done.WaitForNotificationWithTimeout(absl::Seconds(20)));
  EXPECT_EQ(reader.status.code(), absl::StatusCode::kDeadlineExceeded) << reader.status;
  EXPECT_EQ(GetOutcome(reader.status), reasons::kUpstreamTimeout);
  EXPECT_TRUE(RequestWritten(reader.status));
  EXPECT_TRUE(reader.HasHeldPiece());
  reader.Release();  // a late resume is harmless
}

TEST(PacedBodyTest, CancelEndsAWaitForTheReader) {
  BigBodyServer upstream;
  std::shared_ptr<HttpClient> client = Client();
  SlowReader reader;
  Request request;
  request.url = absl::StrCat(upstream.server->base_url(), "/x");
  std::shared_ptr<Call> call = client->Stream(request, reader.Handler());
  {
    absl::MutexLock lock(&reader.mu);
    ASSERT_TRUE(reader.mu.AwaitWithTimeout(
        absl::Condition(+[](SlowReader* r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->mu) {
                          return static_cast<bool>(r->held);
                        }, &reader),
        absl::Seconds(10)));
  }
  call->Cancel();
  ASSERT_TRUE(reader.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(reader.status.code(), absl::StatusCode::kCancelled);
  reader.Release();
  absl::MutexLock lock(&reader.mu);
  EXPECT_EQ(reader.pieces, 1);
}

}  // namespace
}  // namespace vision_gateway::http
