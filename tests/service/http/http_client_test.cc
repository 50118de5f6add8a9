#include "service/http/http_client.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "service/common/error_reasons.h"
#include "service/common/status_details.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/service/http/test_certs.h"
#include "tests/service/http/test_http_server.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::http {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::vision_gateway::http::testing::ServerConnection;
using ::vision_gateway::http::testing::ServerRequest;
using ::vision_gateway::http::testing::TestCa;
using ::vision_gateway::http::testing::TestHttpServer;
using ::vision_gateway::testing::IsOk;
using ::vision_gateway::testing::StatusIs;

// Upper bound for any wait in these tests; reaching it is a failure, not a synchronisation.
constexpr absl::Duration kTestTimeout = absl::Seconds(10);

std::shared_ptr<HttpClient> MakeClient(HttpClientOptions options = {}) {
  auto client = MakeHttpClient(std::move(options));
  EXPECT_THAT(client, IsOk());
  return client.ok() ? *client : nullptr;
}

// Runs Fetch() and waits for its result (bounded by kTestTimeout).
absl::StatusOr<Response> FetchAndWait(HttpClient& client, Request request) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<Response>>>();
  std::future<absl::StatusOr<Response>> future = promise->get_future();
  client.Fetch(std::move(request),
               [promise](absl::StatusOr<Response> result) { promise->set_value(std::move(result)); });
  if (future.wait_for(absl::ToChronoSeconds(kTestTimeout)) != std::future_status::ready) {
    ADD_FAILURE() << "Fetch did not complete";
    return absl::InternalError("test timeout");
  }
  return future.get();
}

Request Get(std::string url) {
  Request request;
  request.url = std::move(url);
  return request;
}

// The server side of an HTTPS test: one CA the client trusts, and its CA file.
class HttpsTest : public ::testing::Test {
 protected:
  HttpsTest() : ca_("Test Root CA"), ca_file_(ca_.WriteCertFile("trusted_ca.pem")) {}

  HttpClientOptions TrustingOptions() const {
    HttpClientOptions options;
    options.ca_file = ca_file_;
    return options;
  }

  TestCa ca_;
  std::string ca_file_;
};

TEST_F(HttpsTest, TrustedCertificateByHostNameSucceeds) {
  absl::Mutex mu;
  ServerRequest seen;
  auto server = TestHttpServer::Start(
      [&](const ServerRequest& request, ServerConnection& conn) {
        {
          absl::MutexLock lock(&mu);
          seen = request;
        }
        conn.WriteResponse(201, {{"X-Test", "yes"}}, "world");
      },
      ca_.IssueServerCert({"localhost"}, {"127.0.0.1"}));
  auto client = MakeClient(TrustingOptions());
  ASSERT_NE(client, nullptr);

  Request request;
  request.method = "POST";
  request.url = absl::StrCat("https://localhost:", server->port(), "/v1beta/models/m:x?alt=sse");
  request.headers = {{"Content-Type", "application/json"}};
  request.body = "hello";
  absl::StatusOr<Response> response = FetchAndWait(*client, std::move(request));

  ASSERT_THAT(response, IsOk());
  EXPECT_EQ(response->head.status, 201);
  EXPECT_EQ(response->body, "world");
  EXPECT_EQ(FindHeader(response->head.headers, "x-test"), "yes");
  absl::MutexLock lock(&mu);
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.target, "/v1beta/models/m:x?alt=sse");
  EXPECT_EQ(seen.body, "hello");
  EXPECT_EQ(FindHeader(seen.headers, "Host"), absl::StrCat("localhost:", server->port()));
  EXPECT_EQ(FindHeader(seen.headers, "User-Agent"), "vision-gateway/0.1");
  EXPECT_EQ(FindHeader(seen.headers, "Content-Length"), "5");
  EXPECT_EQ(FindHeader(seen.headers, "Content-Type"), "application/json");
}

TEST_F(HttpsTest, TrustedCertificateByIpAddressSucceeds) {
  auto server = TestHttpServer::Start(
      [](const ServerRequest&, ServerConnection& conn) { conn.WriteResponse(200, {}, "ok"); },
      ca_.IssueServerCert({"localhost"}, {"127.0.0.1"}));
  auto client = MakeClient(TrustingOptions());
  ASSERT_NE(client, nullptr);

  absl::StatusOr<Response> response = FetchAndWait(*client, Get(server->base_url() + "/"));

  ASSERT_THAT(response, IsOk());
  EXPECT_EQ(response->head.status, 200);
  EXPECT_EQ(response->body, "ok");
}

TEST_F(HttpsTest, CertificateForAnotherHostNameIsUnavailableUpstreamTls) {
  auto server = TestHttpServer::Start(
      [](const ServerRequest&, ServerConnection& conn) { conn.WriteResponse(200, {}, "ok"); },
      ca_.IssueServerCert({"other.test"}, {}));
  auto client = MakeClient(TrustingOptions());
  ASSERT_NE(client, nullptr);

  absl::StatusOr<Response> response =
      FetchAndWait(*client, Get(absl::StrCat("https://localhost:", server->port(), "/")));

  EXPECT_THAT(response, StatusIs(absl::StatusCode::kUnavailable,
                                 AllOf(HasSubstr("verify failed"), HasSubstr("hostname mismatch"),
                                       HasSubstr(absl::StrCat("localhost:", server->port())))));
  EXPECT_EQ(GetOutcome(response.status()), reasons::kUpstreamTls);
  EXPECT_EQ(server->request_count(), 0);
}

TEST_F(HttpsTest, CertificateFromUntrustedCaIsUnavailableUpstreamTls) {
  TestCa other_ca("Unrelated CA");
  auto server = TestHttpServer::Start(
      [](const ServerRequest&, ServerConnection& conn) { conn.WriteResponse(200, {}, "ok"); },
      other_ca.IssueServerCert({"localhost"}, {"127.0.0.1"}));
  auto client = MakeClient(TrustingOptions());
  ASSERT_NE(client, nullptr);

  absl::StatusOr<Response> response =
      FetchAndWait(*client, Get(absl::StrCat("https://localhost:", server->port(), "/")));

  EXPECT_THAT(response, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("verify failed")));
  EXPECT_EQ(GetOutcome(response.status()), reasons::kUpstreamTls);
  EXPECT_EQ(server->request_count(), 0);
}

TEST_F(HttpsTest, TlsConnectionIsReused) {
  auto server = TestHttpServer::Start(
      [](const ServerRequest&, ServerConnection& conn) { conn.WriteResponse(200, {}, "ok"); },
      ca_.IssueServerCert({"localhost"}, {"127.0.0.1"}));
  auto client = MakeClient(TrustingOptions());
  ASSERT_NE(client, nullptr);

  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(FetchAndWait(*client, Get(server->base_url() + "/")), IsOk());
  }
  EXPECT_EQ(server->request_count(), 3);
  EXPECT_EQ(server->accept_count(), 1);
}

TEST(HttpClientTest, MissingCaFileFailsClientCreation) {
  HttpClientOptions options;
  options.ca_file = ::testing::TempDir() + "/does-not-exist.pem";
  EXPECT_THAT(MakeHttpClient(options), Not(IsOk()));
}

// Records the callbacks of a streaming call, in order.
struct StreamRecorder {
  absl::Mutex mu;
  std::vector<std::string> events ABSL_GUARDED_BY(mu);  // "head 200", "body <piece>", "done <code>"
  std::string body ABSL_GUARDED_BY(mu);
  int done_count ABSL_GUARDED_BY(mu) = 0;
  absl::Status status ABSL_GUARDED_BY(mu);
  absl::Notification done;

  StreamHandler Handler() {
    StreamHandler handler;
    handler.on_head = [this](const ResponseHead& head) {
      absl::MutexLock lock(&mu);
      events.push_back(absl::StrCat("head ", head.status));
    };
    handler.on_body = [this](std::string_view piece) {
      absl::MutexLock lock(&mu);
      events.push_back(absl::StrCat("body ", std::string(piece)));
      body.append(piece.data(), piece.size());
    };
    handler.on_done = [this](absl::Status s) {
      {
        absl::MutexLock lock(&mu);
        events.push_back(absl::StrCat("done ", absl::StatusCodeToString(s.code())));
        status = s;
        ++done_count;
      }
      if (!done.HasBeenNotified()) done.Notify();
    };
    return handler;
  }

  // Waits until at least `n` body bytes arrived (false on test timeout).
  bool AwaitBodyBytes(std::size_t n) {
    std::pair<StreamRecorder*, std::size_t> arg(this, n);
    absl::MutexLock lock(&mu);
    return mu.AwaitWithTimeout(absl::Condition(
                                   +[](std::pair<StreamRecorder*, std::size_t>* a) {
                                     a->first->mu.AssertHeld();
                                     return a->first->body.size() >= a->second;
                                   },
                                   &arg),
                               kTestTimeout);
  }
};

TEST(HttpClientTest, ChunkedBodyArrivesInPiecesBeforeDone) {
  StreamRecorder recorder;
  auto server = TestHttpServer::Start([&](const ServerRequest&, ServerConnection& conn) {
    conn.WriteChunkedHead(200, {{"Content-Type", "text/event-stream"}});
    // Each piece is only sent once the client has seen the previous one: the client must hand
    // body pieces over as they arrive, not at the end.
    conn.WriteChunk("one");
    if (!recorder.AwaitBodyBytes(3)) return;
    conn.WriteChunk("two");
    if (!recorder.AwaitBodyBytes(6)) return;
    conn.WriteChunk("three");
    conn.WriteLastChunk();
  });
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);

  client->Stream(Get(server->base_url() + "/stream"), recorder.Handler());

  ASSERT_TRUE(recorder.done.WaitForNotificationWithTimeout(kTestTimeout));
  absl::MutexLock lock(&recorder.mu);
  EXPECT_THAT(recorder.status, IsOk());
  EXPECT_EQ(recorder.body, "onetwothree");
  EXPECT_THAT(recorder.events, ElementsAre("head 200", "body one", "body two", "body three",
                                           "done OK"));
}

TEST(HttpClientTest, ContentLengthBodyIsStreamed) {
  StreamRecorder recorder;
  auto server = TestHttpServer::Start([&](const ServerRequest&, ServerConnection& conn) {
    conn.Write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfirst");
    if (!recorder.AwaitBodyBytes(5)) return;
    conn.Write("final");
  });
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);

  client->Stream(Get(server->base_url() + "/"), recorder.Handler());

  ASSERT_TRUE(recorder.done.WaitForNotificationWithTimeout(kTestTimeout));
  absl::MutexLock lock(&recorder.mu);
  EXPECT_THAT(recorder.events, ElementsAre("head 200", "body first", "body final", "done OK"));
}

// Once the request is written, its body is let go (before the answer): a large body is not held
// through a long stream, and the owner of a shared body can reuse it as soon as it has the answer.
TEST(HttpClientTest, StreamedBodyIsReleasedOnceWrittenBeforeTheAnswer) {
  std::string received;
  auto server = TestHttpServer::Start([&](const ServerRequest& request, ServerConnection& conn) {
    received = request.body;
    conn.WriteResponse(200, {}, "ok");
  });
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);

  std::shared_ptr<GrowingBuffer> bytes = GrowingBuffer::Of(std::string(256 * 1024, 'x') + "end");
  std::weak_ptr<GrowingBuffer> watch = bytes;
  Request request = Get(server->base_url() + "/upload");
  request.method = "POST";
  request.streamed_body = std::move(bytes);
  request.streamed_body_offset = 3;
  StreamRecorder recorder;
  StreamHandler handler = recorder.Handler();
  std::atomic<bool> held_at_head{true};
  handler.on_head = [&, on_head = std::move(handler.on_head)](const ResponseHead& head) mutable {
    held_at_head.store(!watch.expired());
    on_head(head);
  };
  client->Stream(std::move(request), std::move(handler));

  ASSERT_TRUE(recorder.done.WaitForNotificationWithTimeout(kTestTimeout));
  EXPECT_FALSE(held_at_head.load()) << "the body was still held when the answer began";
  EXPECT_EQ(received, std::string(256 * 1024 - 3, 'x') + "end");
  absl::MutexLock lock(&recorder.mu);
  EXPECT_THAT(recorder.status, IsOk());
  EXPECT_EQ(recorder.body, "ok");
}

// One connection on a loopback port, served by hand: reads the request head and then the body
// as it comes, so that a test can see bytes arrive before the client has all of them.
class OneConnectionServer {
 public:
  OneConnectionServer() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::listen(listen_fd_, 1) == 0 &&
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
    thread_ = std::thread([this] { Serve(); });
  }
  ~OneConnectionServer() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    {
      absl::MutexLock lock(&mu_);
      if (conn_fd_ >= 0) ::shutdown(conn_fd_, SHUT_RDWR);
    }
    thread_.join();
    ::close(listen_fd_);
  }

  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_, "/upload"); }

  // Waits until at least `n` body bytes arrived (false: the connection ended first, or timeout).
  bool WaitForBody(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n] { return body_.size() >= n || ended_; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), kTestTimeout);
    return body_.size() >= n;
  }
  // Waits until the client closed the connection.
  bool WaitForEnd() {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&ended_), kTestTimeout);
  }
  std::string head() {
    absl::MutexLock lock(&mu_);
    return head_;
  }
  std::string body() {
    absl::MutexLock lock(&mu_);
    return body_;
  }
  // Answers once `content_length` body bytes arrived.
  void AnswerAfter(size_t content_length) {
    absl::MutexLock lock(&mu_);
    answer_after_ = content_length;
  }

 private:
  void Serve() {
    const int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) return;
    {
      absl::MutexLock lock(&mu_);
      conn_fd_ = fd;
    }
    std::string in;
    char buf[65536];
    bool answered = false;
    for (;;) {
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
      absl::MutexLock lock(&mu_);
      if (head_.empty()) {
        const size_t end = in.find("\r\n\r\n");
        if (end == std::string::npos) continue;
        head_ = in.substr(0, end + 4);
        in.erase(0, end + 4);
      }
      body_ += in;
      in.clear();
      if (!answered && answer_after_ > 0 && body_.size() >= answer_after_) {
        answered = true;
        const std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        (void)!::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
      }
    }
    absl::MutexLock lock(&mu_);
    ended_ = true;
    ::close(fd);
    conn_fd_ = -1;
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  absl::Mutex mu_;
  int conn_fd_ ABSL_GUARDED_BY(mu_) = -1;
  std::string head_ ABSL_GUARDED_BY(mu_);
  std::string body_ ABSL_GUARDED_BY(mu_);
  size_t answer_after_ ABSL_GUARDED_BY(mu_) = 0;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

Request StreamedPost(const std::string& url, std::shared_ptr<GrowingBuffer> body) {
  Request request = Get(url);
  request.method = "POST";
  request.streamed_body = std::move(body);
  return request;
}

// The point of a streamed body: the bytes there go out before the rest exist, under a
// Content-Length that announces them all.
TEST(HttpClientTest, StreamedBodyIsSentAsItIsAppended) {
  OneConnectionServer server;
  constexpr size_t kSize = 3 * 100 * 1024;
  std::string source(kSize, '\0');
  for (size_t i = 0; i < kSize; ++i) source[i] = static_cast<char>(i * 13 + (i >> 10));
  server.AnswerAfter(kSize);
  auto body = std::make_shared<GrowingBuffer>(kSize);
  body->Append(std::string_view(source).substr(0, 100 * 1024));
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  StreamRecorder recorder;
  client->Stream(StreamedPost(server.url(), body), recorder.Handler());

  ASSERT_TRUE(server.WaitForBody(100 * 1024)) << "the first bytes were not sent on their own";
  EXPECT_THAT(server.head(), HasSubstr(absl::StrCat("Content-Length: ", kSize, "\r\n")));
  EXPECT_FALSE(recorder.done.HasBeenNotified());
  body->Append(std::string_view(source).substr(100 * 1024, 100 * 1024));
  ASSERT_TRUE(server.WaitForBody(200 * 1024)) << [&] {
    absl::MutexLock lock(&recorder.mu);
    return recorder.status.ToString();
  }();
  body->Append(std::string_view(source).substr(200 * 1024));

  ASSERT_TRUE(recorder.done.WaitForNotificationWithTimeout(kTestTimeout));
  EXPECT_TRUE(server.body() == source);
  absl::MutexLock lock(&recorder.mu);
  EXPECT_THAT(recorder.status, IsOk());
  EXPECT_EQ(recorder.body, "ok");
}

TEST(HttpClientTest, AbandonedStreamedBodyFailsTheCallAndClosesTheConnection) {
  OneConnectionServer server;
  auto body = std::make_shared<GrowingBuffer>(1000);
  body->Append("first");
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  StreamRecorder recorder;
  client->Stream(StreamedPost(server.url(), body), recorder.Handler());
  ASSERT_TRUE(server.WaitForBody(5));

  body->Abandon();
  ASSERT_TRUE(recorder.done.WaitForNotificationWithTimeout(kTestTimeout));
  {
    absl::MutexLock lock(&recorder.mu);
    EXPECT_THAT(recorder.status, StatusIs(absl::StatusCode::kCancelled, HasSubstr("abandoned")));
  }
  EXPECT_TRUE(server.WaitForEnd()) << "a half-sent request must not stay on the connection";
  EXPECT_EQ(server.body(), "first");
}

TEST(HttpClientTest, DeadlineWhileWaitingForTheStreamedBodyIsDeadlineExceeded) {
  OneConnectionServer server;
  auto body = std::make_shared<GrowingBuffer>(1000);
  body->Append("x");
  auto client = MakeClient();  // default_phase_timeout 60 s: only the deadline can end this
  ASSERT_NE(client, nullptr);
  Request request = StreamedPost(server.url(), body);
  request.deadline = absl::Now() + absl::Milliseconds(200);
  StreamRecorder recorder;
  client->Stream(std::move(request), recorder.Handler());

  ASSERT_TRUE(recorder.done.WaitForNotificationWithTimeout(kTestTimeout));
  {
    absl::MutexLock lock(&recorder.mu);
    EXPECT_THAT(recorder.status, StatusIs(absl::StatusCode::kDeadlineExceeded,
                                          HasSubstr("waiting for the rest of the request body")));
    EXPECT_EQ(GetOutcome(recorder.status), reasons::kUpstreamTimeout);
  }
  EXPECT_TRUE(server.WaitForEnd());
  body->Append("late");  // wakes nothing that is gone
}

TEST(HttpClientTest, CancelWhileWaitingForTheStreamedBodyEndsTheCall) {
  OneConnectionServer server;
  auto body = std::make_shared<GrowingBuffer>(1000);
  body->Append("x");
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  StreamRecorder recorder;
  std::shared_ptr<Call> call = client->Stream(StreamedPost(server.url(), body), recorder.Handler());
  ASSERT_TRUE(server.WaitForBody(1));
  call->Cancel();
  ASSERT_TRUE(recorder.done.WaitForNotificationWithTimeout(kTestTimeout));
  {
    absl::MutexLock lock(&recorder.mu);
    EXPECT_THAT(recorder.status, StatusIs(absl::StatusCode::kCancelled));
  }
  EXPECT_TRUE(server.WaitForEnd());
  body->Append("late");
}

TEST(HttpClientTest, KeepAliveReusesOneConnection) {
  auto server = TestHttpServer::Start([](const ServerRequest& request, ServerConnection& conn) {
    conn.WriteResponse(200, {}, request.target);
  });
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);

  absl::StatusOr<Response> first = FetchAndWait(*client, Get(server->base_url() + "/a"));
  absl::StatusOr<Response> second = FetchAndWait(*client, Get(server->base_url() + "/b"));

  ASSERT_THAT(first, IsOk());
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(first->body, "/a");
  EXPECT_EQ(second->body, "/b");
  EXPECT_EQ(server->request_count(), 2);
  EXPECT_EQ(server->accept_count(), 1);
}

// Issue #17 (the idempotency rule): a failure that came after the whole request was written says
// so, since the server may have acted on it; the Gemini layer decides what to re-send from it.
TEST(HttpClientTest, RequestReadWholeThenDroppedCarriesTheRequestWrittenFact) {
  auto server = TestHttpServer::Start(
      [](const ServerRequest&, ServerConnection& conn) { conn.CloseAfterHandler(); });
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  Request request = Get(server->base_url() + "/generate");
  request.method = "POST";
  request.body = std::string(100000, 'x');

  absl::StatusOr<Response> response = FetchAndWait(*client, std::move(request));

  ASSERT_THAT(response, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(server->request_count(), 1);
  EXPECT_TRUE(RequestWritten(response.status()));
}

TEST(HttpClientTest, DeadlineWhileWaitingForTheAnswerCarriesTheRequestWrittenFact) {
  auto server = TestHttpServer::Start(
      [](const ServerRequest&, ServerConnection& conn) { conn.WaitForClose(); });
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  Request request = Get(server->base_url() + "/slow");
  request.deadline = absl::Now() + absl::Milliseconds(100);

  absl::StatusOr<Response> response = FetchAndWait(*client, std::move(request));

  ASSERT_THAT(response, StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_TRUE(RequestWritten(response.status()));
}

TEST(HttpClientTest, ConnectionCloseResponseIsNotPooled) {
  auto server = TestHttpServer::Start([](const ServerRequest&, ServerConnection& conn) {
    conn.WriteResponse(200, {{"Connection", "close"}}, "bye");
    conn.CloseAfterHandler();
  });
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);

  EXPECT_THAT(FetchAndWait(*client, Get(server->base_url() + "/")), IsOk());
  EXPECT_THAT(FetchAndWait(*client, Get(server->base_url() + "/")), IsOk());
  EXPECT_EQ(server->accept_count(), 2);
}

TEST(HttpClientTest, IdleConnectionClosedByServerIsReplaced) {
  // The server closes every connection after one response without saying so: the pooled
  // connection is dead when the second request wants it.
  auto server = TestHttpServer::Start([](const ServerRequest&, ServerConnection& conn) {
    conn.WriteResponse(200, {}, "ok");
    conn.CloseAfterHandler();
  });
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);

  // Whether the client notices the close before reusing the connection is a race. When it does
  // not, the request fails UPSTREAM_UNREACHABLE (nothing was answered, nothing re-sent here: the
  // retry policy above decides), and a second try gets a fresh connection.
  int ok = 0;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<Response> response = FetchAndWait(*client, Get(server->base_url() + "/"));
    if (!response.ok()) {
      EXPECT_THAT(response, StatusIs(absl::StatusCode::kUnavailable)) << "request " << i;
      EXPECT_EQ(GetOutcome(response.status()), reasons::kUpstreamUnreachable);
      response = FetchAndWait(*client, Get(server->base_url() + "/"));
    }
    ASSERT_THAT(response, IsOk()) << "request " << i;
    EXPECT_EQ(response->body, "ok");
    ++ok;
  }
  EXPECT_EQ(server->request_count(), ok);
}

TEST(HttpClientTest, RequestFailingOnReusedConnectionIsNotResent) {
  // The second request on the kept-alive connection is read and then the connection is dropped
  // without an answer: it must fail, not silently go out a second time (it could double-bill).
  auto server = TestHttpServer::Start([](const ServerRequest& request, ServerConnection& conn) {
    if (request.target == "/first") {
      conn.WriteResponse(200, {}, "ok");
    } else {
      conn.CloseAfterHandler();
    }
  });
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  ASSERT_THAT(FetchAndWait(*client, Get(server->base_url() + "/first")), IsOk());

  absl::StatusOr<Response> second = FetchAndWait(*client, Get(server->base_url() + "/second"));

  EXPECT_THAT(second, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(GetOutcome(second.status()), reasons::kUpstreamUnreachable);
  EXPECT_EQ(server->request_count(), 2);
  EXPECT_EQ(server->accept_count(), 1);
}

TEST(HttpClientTest, DeadlineWhileServerStallsIsDeadlineExceededPromptly) {
  absl::Notification server_saw_close;
  auto server = TestHttpServer::Start([&](const ServerRequest&, ServerConnection& conn) {
    if (conn.WaitForClose()) server_saw_close.Notify();
  });
  auto client = MakeClient();  // default_phase_timeout 60 s: only the deadline can end this
  ASSERT_NE(client, nullptr);

  Request request = Get(server->base_url() + "/slow");
  request.deadline = absl::Now() + absl::Milliseconds(100);
  const absl::Time start = absl::Now();
  absl::StatusOr<Response> response = FetchAndWait(*client, std::move(request));
  const absl::Duration elapsed = absl::Now() - start;

  // Only the deadline can end this call within FetchAndWait's bound (10 s; the phase timeout is
  // 60 s and the server never answers; a test timeout reads INTERNAL): DEADLINE_EXCEEDED is the
  // proof that it did. No upper bound on the wall time, which a loaded machine stretches.
  EXPECT_THAT(response, StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_GE(elapsed, absl::Milliseconds(90));  // not before the deadline
  // The connection is not kept: the server sees it closed.
  EXPECT_TRUE(server_saw_close.WaitForNotificationWithTimeout(kTestTimeout));
}

TEST(HttpClientTest, PhaseTimeoutWithoutDeadlineIsDeadlineExceeded) {
  auto server = TestHttpServer::Start(
      [](const ServerRequest&, ServerConnection& conn) { conn.WaitForClose(); });
  HttpClientOptions options;
  options.default_phase_timeout = std::chrono::milliseconds(100);
  auto client = MakeClient(options);
  ASSERT_NE(client, nullptr);

  const absl::Time start = absl::Now();
  absl::StatusOr<Response> response = FetchAndWait(*client, Get(server->base_url() + "/"));

  // The server never answers nor closes: only the phase timeout can end the call before
  // FetchAndWait gives up (which reads INTERNAL), so DEADLINE_EXCEEDED is the proof it fired.
  EXPECT_THAT(response, StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(90));  // not before the phase timeout
}

// The phase timeout bounds each read, not the whole answer: a body whose pieces keep coming,
// each well within the timeout, is read to its end however long it takes in all. (One timer per
// call, re-armed lazily when a later phase moved the expiry: it must not end such a call.)
TEST(HttpClientTest, PhaseTimeoutBoundsEachReadNotTheWholeBody) {
  constexpr int kPieces = 6;
  auto server = TestHttpServer::Start([](const ServerRequest&, ServerConnection& conn) {
    conn.WriteChunkedHead(200, {});
    for (int i = 0; i < kPieces; ++i) {
      // 6 x 250 ms: the answer takes 1.5 s in all, each gap a quarter of the 1 s phase timeout.
      absl::SleepFor(absl::Milliseconds(250));
      if (!conn.WriteChunk(absl::StrCat("piece", i, ";"))) return;
    }
    conn.WriteLastChunk();
  });
  HttpClientOptions options;
  options.default_phase_timeout = std::chrono::milliseconds(1000);
  auto client = MakeClient(options);
  ASSERT_NE(client, nullptr);

  const absl::Time start = absl::Now();
  absl::StatusOr<Response> response = FetchAndWait(*client, Get(server->base_url() + "/"));

  ASSERT_THAT(response, IsOk());
  EXPECT_EQ(response->body, "piece0;piece1;piece2;piece3;piece4;piece5;");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(1400));  // longer than one phase timeout
}

// ...and a read that stalls after the answer began still ends at the phase timeout, with the
// phase named.
TEST(HttpClientTest, PhaseTimeoutEndsABodyThatStallsAfterItBegan) {
  auto server = TestHttpServer::Start([](const ServerRequest&, ServerConnection& conn) {
    conn.WriteChunkedHead(200, {});
    conn.WriteChunk("first");
    conn.WaitForClose();
  });
  HttpClientOptions options;
  options.default_phase_timeout = std::chrono::milliseconds(150);
  auto client = MakeClient(options);
  ASSERT_NE(client, nullptr);
  StreamRecorder recorder;

  client->Stream(Get(server->base_url() + "/"), recorder.Handler());

  ASSERT_TRUE(recorder.done.WaitForNotificationWithTimeout(kTestTimeout));
  absl::MutexLock lock(&recorder.mu);
  EXPECT_THAT(recorder.status, StatusIs(absl::StatusCode::kDeadlineExceeded,
                                        HasSubstr("reading the response body")));
  EXPECT_THAT(recorder.events, ElementsAre("head 200", "body first", "done DEADLINE_EXCEEDED"));
}

TEST(HttpClientTest, DeadlineAlreadyPassedIsDeadlineExceeded) {
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  Request request = Get("http://127.0.0.1:1/");
  request.deadline = absl::Now() - absl::Seconds(1);
  EXPECT_THAT(FetchAndWait(*client, std::move(request)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST(HttpClientTest, CancelMidBodyIsCancelledAndClosesTheConnection) {
  StreamRecorder recorder;
  absl::Notification server_saw_close;
  auto server = TestHttpServer::Start([&](const ServerRequest&, ServerConnection& conn) {
    conn.WriteChunkedHead(200, {});
    conn.WriteChunk("first");
    if (conn.WaitForClose()) server_saw_close.Notify();
  });
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);

  std::shared_ptr<Call> call = client->Stream(Get(server->base_url() + "/"), recorder.Handler());
  ASSERT_TRUE(recorder.AwaitBodyBytes(5));
  call->Cancel();
  call->Cancel();  // idempotent

  ASSERT_TRUE(recorder.done.WaitForNotificationWithTimeout(kTestTimeout));
  EXPECT_TRUE(server_saw_close.WaitForNotificationWithTimeout(kTestTimeout));
  call->Cancel();  // harmless after completion
  client.reset();  // joins the I/O threads: no callback can still be pending
  absl::MutexLock lock(&recorder.mu);
  EXPECT_THAT(recorder.status, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(recorder.done_count, 1);
  EXPECT_THAT(recorder.events, ElementsAre("head 200", "body first", "done CANCELLED"));
}

TEST(HttpClientTest, DestroyingClientCompletesCallInFlightWithCancelled) {
  StreamRecorder recorder;
  absl::Notification request_arrived;
  auto server = TestHttpServer::Start([&](const ServerRequest&, ServerConnection& conn) {
    request_arrived.Notify();
    conn.WaitForClose();
  });
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);

  std::shared_ptr<Call> call = client->Stream(Get(server->base_url() + "/"), recorder.Handler());
  ASSERT_TRUE(request_arrived.WaitForNotificationWithTimeout(kTestTimeout));
  client.reset();

  // The destructor returned after the I/O threads finished: on_done has run.
  ASSERT_TRUE(recorder.done.HasBeenNotified());
  call->Cancel();  // still safe
  absl::MutexLock lock(&recorder.mu);
  EXPECT_THAT(recorder.status, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(recorder.done_count, 1);
}

TEST(HttpClientTest, ContentLengthOverLimitIsResourceExhausted) {
  auto server = TestHttpServer::Start([](const ServerRequest&, ServerConnection& conn) {
    conn.WriteResponse(200, {}, std::string(5000, 'x'));
  });
  HttpClientOptions options;
  options.max_response_body_bytes = 1000;
  auto client = MakeClient(options);
  ASSERT_NE(client, nullptr);

  EXPECT_THAT(FetchAndWait(*client, Get(server->base_url() + "/")),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(HttpClientTest, ChunkedBodyOverLimitIsResourceExhausted) {
  auto server = TestHttpServer::Start([](const ServerRequest&, ServerConnection& conn) {
    conn.WriteChunkedHead(200, {});
    for (int i = 0; i < 5; ++i) {
      if (!conn.WriteChunk(std::string(400, 'x'))) return;
    }
    conn.WriteLastChunk();
  });
  HttpClientOptions options;
  options.max_response_body_bytes = 1000;
  auto client = MakeClient(options);
  ASSERT_NE(client, nullptr);

  EXPECT_THAT(FetchAndWait(*client, Get(server->base_url() + "/")),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(HttpClientTest, HeaderOverLimitIsResourceExhausted) {
  auto server = TestHttpServer::Start([](const ServerRequest&, ServerConnection& conn) {
    conn.WriteResponse(200, {{"X-Big", std::string(4000, 'h')}}, "ok");
  });
  HttpClientOptions options;
  options.max_response_header_bytes = 1024;
  auto client = MakeClient(options);
  ASSERT_NE(client, nullptr);

  EXPECT_THAT(FetchAndWait(*client, Get(server->base_url() + "/")),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(HttpClientTest, TruncatedBodyIsUnavailable) {
  auto server = TestHttpServer::Start([](const ServerRequest&, ServerConnection& conn) {
    conn.Write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..");
    conn.CloseAfterHandler();
  });
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);

  absl::StatusOr<Response> response = FetchAndWait(*client, Get(server->base_url() + "/"));
  EXPECT_THAT(response, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(GetOutcome(response.status()), reasons::kUpstreamConnectionLost);
}

TEST(HttpClientTest, ErrorStatusIsAResponseNotAnError) {
  auto server = TestHttpServer::Start([](const ServerRequest&, ServerConnection& conn) {
    conn.WriteResponse(429, {{"Content-Type", "application/json"}}, R"({"error": {}})");
  });
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);

  absl::StatusOr<Response> response = FetchAndWait(*client, Get(server->base_url() + "/"));
  ASSERT_THAT(response, IsOk());
  EXPECT_EQ(response->head.status, 429);
  EXPECT_EQ(response->body, R"({"error": {}})");
}

TEST(HttpClientTest, HttpToNonLoopbackHostIsInvalidArgumentAndNotInline) {
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  for (const char* url : {"http://example.com/x", "http://10.1.2.3/", "http://[2001:db8::1]:80/",
                          "ftp://localhost/", "not a url", "http://user:pw@localhost/"}) {
    // on_done runs on an I/O thread, never inline on the caller's thread.
    auto promise = std::make_shared<std::promise<std::pair<absl::Status, std::thread::id>>>();
    auto future = promise->get_future();
    client->Fetch(Get(url), [promise](absl::StatusOr<Response> result) {
      promise->set_value({result.status(), std::this_thread::get_id()});
    });
    ASSERT_EQ(future.wait_for(absl::ToChronoSeconds(kTestTimeout)), std::future_status::ready);
    const auto [status, thread] = future.get();
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument)) << url;
    EXPECT_NE(thread, std::this_thread::get_id()) << url;
  }
}

TEST(HttpClientTest, HttpToLoopbackNamesIsAllowed) {
  auto server = TestHttpServer::Start(
      [](const ServerRequest&, ServerConnection& conn) { conn.WriteResponse(200, {}, "ok"); });
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  EXPECT_THAT(FetchAndWait(*client, Get(absl::StrCat("http://localhost:", server->port(), "/"))),
              IsOk());
  EXPECT_THAT(FetchAndWait(*client, Get(absl::StrCat("http://127.0.0.1:", server->port(), "/"))),
              IsOk());
}

// A loopback port nothing listens on.
int UnusedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(HttpClientTest, ConnectionRefusedIsUnavailableWithoutHeaderValues) {
  const int port = UnusedPort();
  ASSERT_NE(port, 0);
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  Request request = Get(absl::StrCat("http://127.0.0.1:", port, "/?key=query-secret"));
  request.headers = {{"x-goog-api-key", "header-secret"}};

  absl::StatusOr<Response> response = FetchAndWait(*client, std::move(request));

  EXPECT_THAT(response,
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr(absl::StrCat("127.0.0.1:", port)),
                             Not(HasSubstr("header-secret")), Not(HasSubstr("query-secret")))));
  EXPECT_EQ(GetOutcome(response.status()), reasons::kUpstreamUnreachable);
  // Nothing was written: the request may go out again whatever it is.
  EXPECT_FALSE(RequestWritten(response.status()));
}

TEST(HttpClientTest, ManyConcurrentCallsAllComplete) {
  auto server = TestHttpServer::Start([](const ServerRequest& request, ServerConnection& conn) {
    conn.WriteResponse(200, {}, request.target);
  });
  auto client = MakeClient();
  ASSERT_NE(client, nullptr);
  constexpr int kCalls = 20;
  std::vector<std::future<absl::StatusOr<Response>>> futures;
  for (int i = 0; i < kCalls; ++i) {
    auto promise = std::make_shared<std::promise<absl::StatusOr<Response>>>();
    futures.push_back(promise->get_future());
    client->Fetch(Get(absl::StrCat(server->base_url(), "/", i)),
                  [promise](absl::StatusOr<Response> r) { promise->set_value(std::move(r)); });
  }
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_EQ(futures[i].wait_for(absl::ToChronoSeconds(kTestTimeout)),
              std::future_status::ready);
    absl::StatusOr<Response> response = futures[i].get();
    ASSERT_THAT(response, IsOk());
    EXPECT_EQ(response->body, absl::StrCat("/", i));
  }
  EXPECT_LE(server->accept_count(), kCalls);
}

// --- The per-host connection limit (max_connections_per_host) ---

// Holds each request in the server's handler until the test lets it answer, and counts how many
// it holds at once.
class Gate {
 public:
  // Server side: waits for a permit (false when the test never gives one).
  bool Hold() {
    absl::MutexLock lock(&mu_);
    ++held_;
    max_held_ = std::max(max_held_, held_);
    const bool ok = mu_.AwaitWithTimeout(absl::Condition(this, &Gate::HasPermit), kTestTimeout);
    if (ok) --permits_;
    --held_;
    return ok;
  }
  void Open(int n) {
    absl::MutexLock lock(&mu_);
    permits_ += n;
  }
  // Waits until `n` requests are held at once (false on test timeout).
  bool AwaitHeld(int n) {
    absl::MutexLock lock(&mu_);
    want_held_ = n;
    return mu_.AwaitWithTimeout(absl::Condition(this, &Gate::HoldsWanted), kTestTimeout);
  }
  int max_held() {
    absl::MutexLock lock(&mu_);
    return max_held_;
  }

 private:
  bool HasPermit() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return permits_ > 0; }
  bool HoldsWanted() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return held_ >= want_held_; }

  absl::Mutex mu_;
  int held_ ABSL_GUARDED_BY(mu_) = 0;
  int max_held_ ABSL_GUARDED_BY(mu_) = 0;
  int permits_ ABSL_GUARDED_BY(mu_) = 0;
  int want_held_ ABSL_GUARDED_BY(mu_) = 0;
};

// Results of Fetch calls started without waiting, in completion order.
class Results {
 public:
  absl::AnyInvocable<void(absl::StatusOr<Response>)> Add(std::string name) {
    return [this, name = std::move(name)](absl::StatusOr<Response> result) {
      absl::MutexLock lock(&mu_);
      done_.emplace_back(name, std::move(result));
    };
  }
  // Waits until `n` calls completed (false on test timeout).
  bool Await(std::size_t n) {
    absl::MutexLock lock(&mu_);
    want_ = n;
    return mu_.AwaitWithTimeout(absl::Condition(this, &Results::HasWanted), kTestTimeout);
  }
  std::vector<std::pair<std::string, absl::StatusOr<Response>>> done() {
    absl::MutexLock lock(&mu_);
    return done_;
  }

 private:
  bool HasWanted() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_.size() >= want_; }

  absl::Mutex mu_;
  std::vector<std::pair<std::string, absl::StatusOr<Response>>> done_ ABSL_GUARDED_BY(mu_);
  std::size_t want_ ABSL_GUARDED_BY(mu_) = 0;
};

HttpClientOptions LimitOptions(std::size_t max_connections, std::size_t max_waiting = 1024) {
  HttpClientOptions options;
  options.max_connections_per_host = max_connections;
  options.max_waiting_requests_per_host = max_waiting;
  return options;
}

TEST(HttpClientTest, ConnectionLimitMakesRequestsWaitForTheSameConnections) {
  Gate gate;
  auto server = TestHttpServer::Start([&](const ServerRequest& request, ServerConnection& conn) {
    if (gate.Hold()) conn.WriteResponse(200, {}, request.target);
  });
  auto client = MakeClient(LimitOptions(2));
  ASSERT_NE(client, nullptr);
  Results results;

  for (int i = 0; i < 5; ++i) {
    const std::string path = absl::StrCat("/", i);
    client->Fetch(Get(server->base_url() + path), results.Add(path));
  }
  ASSERT_TRUE(gate.AwaitHeld(2));
  gate.Open(5);

  ASSERT_TRUE(results.Await(5));
  for (const auto& [path, response] : results.done()) {
    ASSERT_THAT(response, IsOk()) << path;
    EXPECT_EQ(response->body, path);
  }
  // The three beyond the limit waited and then used the two kept-alive connections.
  EXPECT_EQ(server->accept_count(), 2);
  EXPECT_EQ(server->request_count(), 5);
  EXPECT_EQ(gate.max_held(), 2);
}

TEST(HttpClientTest, WaiterWhoseDeadlineExpiresFailsCleanlyAndFreesNothingItDidNotHold) {
  Gate gate;
  auto server = TestHttpServer::Start([&](const ServerRequest& request, ServerConnection& conn) {
    if (gate.Hold()) conn.WriteResponse(200, {}, request.target);
  });
  auto client = MakeClient(LimitOptions(1));
  ASSERT_NE(client, nullptr);
  Results first;
  client->Fetch(Get(server->base_url() + "/first"), first.Add("first"));
  ASSERT_TRUE(gate.AwaitHeld(1));

  Request waiter = Get(server->base_url() + "/waiter");
  waiter.deadline = absl::Now() + absl::Milliseconds(150);
  const absl::Time start = absl::Now();
  absl::StatusOr<Response> expired = FetchAndWait(*client, std::move(waiter));
  const absl::Duration elapsed = absl::Now() - start;

  EXPECT_THAT(expired, StatusIs(absl::StatusCode::kDeadlineExceeded,
                                HasSubstr("waiting for a free connection")));
  EXPECT_EQ(GetOutcome(expired.status()), reasons::kUpstreamTimeout);
  EXPECT_GE(elapsed, absl::Milliseconds(140));
  EXPECT_LT(elapsed, absl::Seconds(2));
  EXPECT_EQ(server->request_count(), 1);  // it never reached the server

  gate.Open(2);
  ASSERT_TRUE(first.Await(1));
  EXPECT_THAT(first.done()[0].second, IsOk());
  // The one connection is still the only one, and free for the next request.
  absl::StatusOr<Response> next = FetchAndWait(*client, Get(server->base_url() + "/next"));
  ASSERT_THAT(next, IsOk());
  EXPECT_EQ(next->body, "/next");
  EXPECT_EQ(server->accept_count(), 1);
}

TEST(HttpClientTest, WaiterWithoutDeadlineGivesUpAfterThePhaseTimeout) {
  Gate gate;
  auto server = TestHttpServer::Start([&](const ServerRequest&, ServerConnection& conn) {
    if (gate.Hold()) conn.WriteResponse(200, {}, "ok");
  });
  HttpClientOptions options = LimitOptions(1);
  options.default_phase_timeout = std::chrono::milliseconds(150);
  auto client = MakeClient(options);
  ASSERT_NE(client, nullptr);
  Request held = Get(server->base_url() + "/held");
  held.deadline = absl::Now() + kTestTimeout;  // the held request itself must not time out
  Results first;
  client->Fetch(std::move(held), first.Add("held"));
  ASSERT_TRUE(gate.AwaitHeld(1));

  absl::StatusOr<Response> waiter = FetchAndWait(*client, Get(server->base_url() + "/waiter"));

  EXPECT_THAT(waiter, StatusIs(absl::StatusCode::kDeadlineExceeded,
                               HasSubstr("waiting for a free connection")));
  EXPECT_EQ(GetOutcome(waiter.status()), reasons::kUpstreamTimeout);
  gate.Open(1);
  ASSERT_TRUE(first.Await(1));
  EXPECT_THAT(first.done()[0].second, IsOk());
}

TEST(HttpClientTest, FullWaitQueueFailsFastWithServerOverloadedAndRetryInfo) {
  Gate gate;
  auto server = TestHttpServer::Start([&](const ServerRequest& request, ServerConnection& conn) {
    if (gate.Hold()) conn.WriteResponse(200, {}, request.target);
  });
  auto client = MakeClient(LimitOptions(/*max_connections=*/1, /*max_waiting=*/1));
  ASSERT_NE(client, nullptr);
  Results results;
  client->Fetch(Get(server->base_url() + "/a"), results.Add("/a"));
  ASSERT_TRUE(gate.AwaitHeld(1));

  // One of these two gets the only place in the queue; the other is refused at once, while the
  // connection is still held.
  client->Fetch(Get(server->base_url() + "/b"), results.Add("/b"));
  client->Fetch(Get(server->base_url() + "/c"), results.Add("/c"));
  ASSERT_TRUE(results.Await(1));
  {
    const auto done = results.done();
    const absl::Status& refused = done[0].second.status();
    EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted,
                                  AllOf(HasSubstr("waiting for an upstream connection"),
                                        Not(HasSubstr("127.0.0.1")))));
    EXPECT_EQ(GetOutcome(refused), reasons::kServerOverloaded);
    EXPECT_EQ(GetRetryDelay(refused), absl::Seconds(1));
  }

  gate.Open(2);
  ASSERT_TRUE(results.Await(3));
  const auto done = results.done();
  EXPECT_THAT(done[1].second, IsOk());
  EXPECT_THAT(done[2].second, IsOk());
  EXPECT_EQ(server->accept_count(), 1);
  EXPECT_EQ(server->request_count(), 2);
}

TEST(HttpClientTest, CancelledWaiterLeavesTheQueue) {
  Gate gate;
  auto server = TestHttpServer::Start([&](const ServerRequest& request, ServerConnection& conn) {
    if (gate.Hold()) conn.WriteResponse(200, {}, request.target);
  });
  // One place in the queue: a cancelled waiter that stayed in it would get the next one refused.
  auto client = MakeClient(LimitOptions(/*max_connections=*/1, /*max_waiting=*/1));
  ASSERT_NE(client, nullptr);
  Results first;
  client->Fetch(Get(server->base_url() + "/first"), first.Add("first"));
  ASSERT_TRUE(gate.AwaitHeld(1));

  StreamRecorder waiter;
  std::shared_ptr<Call> call = client->Stream(Get(server->base_url() + "/w"), waiter.Handler());
  call->Cancel();
  ASSERT_TRUE(waiter.done.WaitForNotificationWithTimeout(kTestTimeout));
  {
    absl::MutexLock lock(&waiter.mu);
    EXPECT_THAT(waiter.status, StatusIs(absl::StatusCode::kCancelled));
  }

  Results next;
  client->Fetch(Get(server->base_url() + "/next"), next.Add("next"));
  gate.Open(2);
  ASSERT_TRUE(first.Await(1));
  EXPECT_THAT(first.done()[0].second, IsOk());
  ASSERT_TRUE(next.Await(1));
  ASSERT_THAT(next.done()[0].second, IsOk());
  EXPECT_EQ(next.done()[0].second->body, "/next");
  EXPECT_EQ(server->accept_count(), 1);
  EXPECT_EQ(server->request_count(), 2);  // the cancelled waiter never reached the server
}

// A response delimited by the end of the connection: the server closes its side before the client
// can finish reading, so the server's count of open connections never lags behind the client's.
void WriteResponseAndClose(const ServerRequest& request, ServerConnection& conn) {
  conn.Write("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + request.target);
  conn.CloseAfterHandler();
}

TEST(HttpClientTest, ClosedConnectionPassesItsSlotToAWaiter) {
  auto server = TestHttpServer::Start(WriteResponseAndClose);
  auto client = MakeClient(LimitOptions(1));
  ASSERT_NE(client, nullptr);
  Results results;
  for (int i = 0; i < 4; ++i) {
    const std::string path = absl::StrCat("/", i);
    client->Fetch(Get(server->base_url() + path), results.Add(path));
  }
  ASSERT_TRUE(results.Await(4));
  for (const auto& [path, response] : results.done()) {
    ASSERT_THAT(response, IsOk()) << path;
    EXPECT_EQ(response->body, path);
  }
  EXPECT_EQ(server->accept_count(), 4);
  EXPECT_EQ(server->max_open_connections(), 1);
}

TEST(HttpClientTest, ManyConcurrentCallsNeverExceedTheConnectionLimit) {
  std::atomic<int> served{0};
  auto server = TestHttpServer::Start([&](const ServerRequest& request, ServerConnection& conn) {
    // Every third answer closes its connection, so slots are both handed over and released.
    if (served.fetch_add(1) % 3 == 0) {
      WriteResponseAndClose(request, conn);
    } else {
      conn.WriteResponse(200, {}, request.target);
    }
  });
  auto client = MakeClient(LimitOptions(3));
  ASSERT_NE(client, nullptr);
  constexpr int kCalls = 60;
  Results results;
  for (int i = 0; i < kCalls; ++i) {
    const std::string path = absl::StrCat("/", i);
    client->Fetch(Get(server->base_url() + path), results.Add(path));
  }
  ASSERT_TRUE(results.Await(kCalls));
  for (const auto& [path, response] : results.done()) {
    ASSERT_THAT(response, IsOk()) << path;
    EXPECT_EQ(response->body, path);
  }
  EXPECT_LE(server->max_open_connections(), 3);
  EXPECT_EQ(server->request_count(), kCalls);
}

// --- Exceptions thrown by handlers on the I/O thread ---

// What a handler throws: memory exhaustion, or any other exception.
enum class Throw { kBadAlloc, kRuntimeError };

void ThrowNow(Throw what) {
  if (what == Throw::kBadAlloc) throw std::bad_alloc();
  throw std::runtime_error("handler failed");
}

class HandlerExceptionTest : public ::testing::TestWithParam<Throw> {
 protected:
  // One I/O thread: the thread that saw the throw must serve the next call.
  std::shared_ptr<HttpClient> client_ = MakeClient(HttpClientOptions{.io_threads = 1});
  // Answers every request with its target.
  std::unique_ptr<TestHttpServer> echo_ = TestHttpServer::Start(
      [](const ServerRequest& request, ServerConnection& conn) {
        conn.WriteResponse(200, {}, request.target);
      });
};

INSTANTIATE_TEST_SUITE_P(Throws, HandlerExceptionTest,
                         ::testing::Values(Throw::kBadAlloc, Throw::kRuntimeError));

// One I/O thread: the call whose body handler throws fails cleanly while another call in flight
// on the same thread, and every later call, carry on.
TEST_P(HandlerExceptionTest, ThrowingBodyHandlerFailsOnlyItsCall) {
  Gate gate;
  auto server = TestHttpServer::Start([&](const ServerRequest& request, ServerConnection& conn) {
    if (request.target == "/held" && !gate.Hold()) return;
    conn.WriteChunkedHead(200, {});
    conn.WriteChunk(request.target);
    conn.WriteLastChunk();
  });
  ASSERT_NE(client_, nullptr);
  HttpClient* client = client_.get();
  Results held;
  client->Fetch(Get(server->base_url() + "/held"), held.Add("held"));
  ASSERT_TRUE(gate.AwaitHeld(1));

  StreamRecorder thrower;
  StreamHandler handler = thrower.Handler();
  handler.on_body = [what = GetParam()](std::string_view) { ThrowNow(what); };
  client->Stream(Get(server->base_url() + "/throws"), std::move(handler));
  ASSERT_TRUE(thrower.done.WaitForNotificationWithTimeout(kTestTimeout));
  {
    absl::MutexLock lock(&thrower.mu);
    EXPECT_EQ(thrower.done_count, 1);
    EXPECT_THAT(thrower.status,
                StatusIs(absl::StatusCode::kInternal, HasSubstr("failed while reading")));
    EXPECT_EQ(GetOutcome(thrower.status), reasons::kInternalError);
  }

  gate.Open(1);
  ASSERT_TRUE(held.Await(1));
  ASSERT_THAT(held.done()[0].second, IsOk());
  EXPECT_EQ(held.done()[0].second->body, "/held");
  absl::StatusOr<Response> after = FetchAndWait(*client, Get(server->base_url() + "/after"));
  ASSERT_THAT(after, IsOk());
  EXPECT_EQ(after->body, "/after");
}

TEST_P(HandlerExceptionTest, ThrowingHeadHandlerFailsItsCall) {
  ASSERT_NE(client_, nullptr);
  StreamRecorder thrower;
  StreamHandler handler = thrower.Handler();
  handler.on_head = [what = GetParam()](const ResponseHead&) { ThrowNow(what); };
  client_->Stream(Get(echo_->base_url() + "/"), std::move(handler));
  ASSERT_TRUE(thrower.done.WaitForNotificationWithTimeout(kTestTimeout));
  {
    absl::MutexLock lock(&thrower.mu);
    EXPECT_THAT(thrower.status, StatusIs(absl::StatusCode::kInternal));
    EXPECT_EQ(GetOutcome(thrower.status), reasons::kInternalError);
    EXPECT_EQ(thrower.body, "");  // nothing delivered after the failure
  }
  EXPECT_THAT(FetchAndWait(*client_, Get(echo_->base_url() + "/after")), IsOk());
}

// on_done itself throwing: nothing is left to fail, but the I/O thread must live on.
TEST_P(HandlerExceptionTest, ThrowingCompletionHandlerLeavesTheIoThreadServing) {
  ASSERT_NE(client_, nullptr);
  absl::Notification threw;
  StreamHandler handler;
  handler.on_done = [&threw, what = GetParam()](absl::Status) {
    threw.Notify();
    ThrowNow(what);
  };
  client_->Stream(Get(echo_->base_url() + "/"), std::move(handler));
  ASSERT_TRUE(threw.WaitForNotificationWithTimeout(kTestTimeout));
  absl::StatusOr<Response> after = FetchAndWait(*client_, Get(echo_->base_url() + "/after"));
  ASSERT_THAT(after, IsOk());
  EXPECT_EQ(after->body, "/after");
}

}  // namespace
}  // namespace vision_gateway::http
