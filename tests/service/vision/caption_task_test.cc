// Caption and CountTokens size limits (caption_task.h), over a fake Gemini client: each image's
// bytes, the 256 KiB prompt and the request Gemini would get encoded (base64, 64 MiB), all
// refused before Gemini is asked, with ErrorInfo REQUEST_TOO_LARGE naming the limit (the prompt:
// INVALID_REQUEST), and the request just inside each limit not refused for its size.
#include "service/vision/caption_task.h"

#include <memory>
#include <optional>
#include <string>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"
#include "service/common/status_details.h"
#include "service/common/thread_pool.h"
#include "service/gemini/json_codec.h"
#include "tests/testing/fake_gemini_client.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_images.h"

namespace vision_gateway::vision {
namespace {

using ::vision_gateway::testing::FakeGeminiClient;
using ::vision_gateway::testing::MakePng;
using ::vision_gateway::testing::StatusIs;

constexpr std::size_t kPromptLimit = 256 * 1024;

struct Refusal {
  absl::StatusCode code = absl::StatusCode::kOk;
  std::string reason;
  std::string limit;
};

Refusal RefusalOf(const absl::Status& status) {
  Refusal out{status.code(), "", ""};
  google::rpc::ErrorInfo info;
  if (GetDetail(status, info)) {
    out.reason = info.reason();
    if (info.metadata().count("limit") > 0) out.limit = info.metadata().at("limit");
  }
  return out;
}

class CaptionLimitsTest : public ::testing::Test {
 protected:
  // What Caption answers at once (a refusal), or OK when it started Gemini's call.
  absl::Status Caption(const v1::CaptionRequest& request) {
    auto started = StartCaption(gemini_, options_, request, absl::InfiniteFuture(),
                                TaskCallbacks<v1::CaptionResponse>{
                                    .on_response = [](v1::CaptionResponse) {},
                                    .on_done = [](absl::Status) {}});
    return started.status();
  }

  // CountTokens' outcome: its refusal, or OK when it started Gemini's call (the fake never
  // answers). Its checks run on `cpu_` (one thread, FIFO): once a task queued after them has run,
  // they are over.
  absl::Status CountTokens(const v1::CountTokensRequest& request) {
    const std::size_t before = gemini_.calls().size();
    auto result = std::make_shared<std::optional<absl::Status>>();
    auto started = StartCountTokens(
        gemini_, cpu_, options_, request, absl::InfiniteFuture(),
        [result](absl::StatusOr<v1::CountTokensResponse> r) { *result = r.status(); });
    if (!started.ok()) return started.status();
    absl::Notification checked;
    EXPECT_TRUE(cpu_.TrySchedule([&checked] { checked.Notify(); }));
    checked.WaitForNotification();
    if (result->has_value()) return **result;
    return gemini_.calls().size() > before ? absl::OkStatus()
                                           : absl::InternalError("neither a refusal nor a call");
  }

  ~CaptionLimitsTest() override { gemini_.ReleaseCallbacks(); }

  std::string png_ = MakePng(64, 48, {255, 255, 255}, {220, 20, 20}, 10, 10, 30, 30);
  FakeGeminiClient gemini_;
  ThreadPool cpu_{1};
  VisionOptions options_;
};

TEST_F(CaptionLimitsTest, ImageOverThePerImageLimitIsRefusedBeforeGemini) {
  options_.max_image_bytes = static_cast<int64_t>(png_.size());
  v1::CaptionRequest caption;
  caption.add_images()->set_content(png_);  // at the limit: fine
  EXPECT_TRUE(Caption(caption).ok());
  caption.add_images()->set_content(png_ + std::string(1, '\0'));  // one byte over
  Refusal refused = RefusalOf(Caption(caption));
  EXPECT_EQ(refused.code, absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.reason, "REQUEST_TOO_LARGE");
  EXPECT_EQ(refused.limit, "max_image_bytes");

  v1::CountTokensRequest count;
  count.add_images()->set_content(png_ + std::string(1, '\0'));
  refused = RefusalOf(CountTokens(count));
  EXPECT_EQ(refused.code, absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.reason, "REQUEST_TOO_LARGE");
  EXPECT_EQ(refused.limit, "max_image_bytes");
  EXPECT_EQ(gemini_.calls().size(), 1u);  // only the Caption within the limit
}

TEST_F(CaptionLimitsTest, PromptOver256KiBIsRefusedBeforeGemini) {
  v1::CaptionRequest caption;
  caption.add_images()->set_content(png_);
  caption.set_prompt(std::string(kPromptLimit, 'p'));
  EXPECT_TRUE(Caption(caption).ok());
  caption.set_prompt(std::string(kPromptLimit + 1, 'p'));
  EXPECT_THAT(Caption(caption), StatusIs(absl::StatusCode::kInvalidArgument));

  v1::CountTokensRequest count;
  count.add_images()->set_content(png_);
  count.set_prompt(std::string(kPromptLimit, 'p'));
  EXPECT_TRUE(CountTokens(count).ok());
  count.set_prompt(std::string(kPromptLimit + 1, 'p'));
  EXPECT_THAT(CountTokens(count), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(gemini_.calls().size(), 2u);
}

TEST_F(CaptionLimitsTest, RequestOverGeminisEncodedBodyLimitIsRefusedBeforeAnyImageIsRead) {
  // 48 images of 1 MiB (not images at all: the size check comes before any image is read).
  // Base64 makes 64 MiB of them, over the 64 MiB body limit with the JSON around them.
  v1::CaptionRequest caption;
  const std::string mib(1 << 20, 'x');
  for (int i = 0; i < 48; ++i) caption.add_images()->set_content(mib);
  Refusal refused = RefusalOf(Caption(caption));
  EXPECT_EQ(refused.code, absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.reason, "REQUEST_TOO_LARGE");
  EXPECT_EQ(refused.limit, "upstream_request_bytes");

  v1::CountTokensRequest count;
  *count.mutable_images() = caption.images();
  refused = RefusalOf(CountTokens(count));
  EXPECT_EQ(refused.reason, "REQUEST_TOO_LARGE");
  EXPECT_EQ(refused.limit, "upstream_request_bytes");

  // 40 MiB encode to 53 MiB: within the limit, so the images are read (and refused as images).
  caption.mutable_images()->DeleteSubrange(40, 8);
  refused = RefusalOf(Caption(caption));
  EXPECT_EQ(refused.code, absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.limit, "upstream_request_bytes");
  EXPECT_TRUE(gemini_.calls().empty());
}

}  // namespace
}  // namespace vision_gateway::vision
