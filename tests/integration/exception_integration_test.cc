// Exceptions on the upstream I/O thread, through the whole stack against the emulator: a throw
// inside the body callback of one upstream request (where the Gemini client decodes the stream
// and the tasks build results: bad_alloc is the realistic case) fails that call with INTERNAL
// (INTERNAL_ERROR); the process, its I/O thread and the other calls go on.
#include <grpcpp/support/error_details.h>

#include <atomic>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/testing/test_images.h"

namespace vision_gateway::testing {
namespace {

namespace v1 = ::vision::v1;

enum class Throw { kBadAlloc, kRuntimeError };

// The real HTTP client, except that the body callback of the next streamed request throws on its
// first piece (on the I/O thread, inside the client's own call stack).
class ThrowingBodyHttpClient final : public http::HttpClient {
 public:
  ThrowingBodyHttpClient(std::shared_ptr<http::HttpClient> real, Throw what)
      : real_(std::move(real)), what_(what) {}

  void ArmNextStream() { armed_.store(true); }

  std::shared_ptr<http::Call> Stream(http::Request request, http::StreamHandler handler) override {
    if (armed_.exchange(false)) {
      handler.on_body = [what = what_](std::string_view) {
        if (what == Throw::kBadAlloc) throw std::bad_alloc();
        throw std::runtime_error("decoding the answer failed");
      };
    }
    return real_->Stream(std::move(request), std::move(handler));
  }

  std::shared_ptr<http::Call> Fetch(
      http::Request request,
      absl::AnyInvocable<void(absl::StatusOr<http::Response>)> done) override {
    return real_->Fetch(std::move(request), std::move(done));
  }

 private:
  const std::shared_ptr<http::HttpClient> real_;
  const Throw what_;
  std::atomic<bool> armed_{false};
};

class IoThreadExceptionTest : public GatewayTest, public ::testing::WithParamInterface<Throw> {
 protected:
  void SetUp() override {
    StackOptions stack;
    stack.http.io_threads = 1;  // the thread that saw the throw must serve the next call
    stack.wrap_http = [this](std::shared_ptr<http::HttpClient> real) {
      auto throwing = std::make_shared<ThrowingBodyHttpClient>(std::move(real), GetParam());
      throwing_ = throwing;
      return std::shared_ptr<http::HttpClient>(throwing);
    };
    StartStackWith(stack);
  }

  grpc::Status Caption(std::string* text) {
    v1::CaptionRequest request;
    request.add_images()->set_content(MakePng(320, 240, {255, 255, 255}, {220, 20, 20}, 40, 30,
                                              140, 110));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    auto reader = stub_->Caption(&context, request);
    v1::CaptionResponse response;
    while (reader->Read(&response)) *text += response.text();
    return reader->Finish();
  }

  std::shared_ptr<ThrowingBodyHttpClient> throwing_;
};

INSTANTIATE_TEST_SUITE_P(Throws, IoThreadExceptionTest,
                         ::testing::Values(Throw::kBadAlloc, Throw::kRuntimeError));

TEST_P(IoThreadExceptionTest, ThrowInTheUpstreamBodyCallbackFailsOnlyThatCall) {
  ASSERT_NE(throwing_, nullptr);
  throwing_->ArmNextStream();
  std::string text;
  const grpc::Status failed = Caption(&text);

  EXPECT_EQ(failed.error_code(), grpc::StatusCode::INTERNAL) << failed.error_message();
  EXPECT_EQ(text, "");
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(failed.error_details()));
  google::rpc::ErrorInfo info;
  bool found = false;
  for (const auto& any : details.details()) found = found || any.UnpackTo(&info);
  ASSERT_TRUE(found);
  EXPECT_EQ(info.reason(), "INTERNAL_ERROR");
  EXPECT_EQ(info.domain(), "vision-gateway");

  // The same server, the same single I/O thread: the next calls are served normally.
  for (int i = 0; i < 2; ++i) {
    std::string next;
    const grpc::Status ok = Caption(&next);
    EXPECT_TRUE(ok.ok()) << ok.error_message();
    EXPECT_NE(next, "");
  }
}

}  // namespace
}  // namespace vision_gateway::testing
