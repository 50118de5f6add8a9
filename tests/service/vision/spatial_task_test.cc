// Detect/Segment task logic over a fake Gemini client: stream shape, incremental emission,
// geometry, masks, drops, and the model-output error.
#include "service/vision/spatial_task.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"
#include "service/common/status_details.h"
#include "service/image/coco_rle.h"
#include "service/image/mask_codec.h"
#include "tests/testing/fake_gemini_client.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/task_results.h"
#include "tests/testing/test_images.h"

namespace vision_gateway::vision {
namespace {

using ::vision_gateway::testing::FakeGeminiClient;
using ::vision_gateway::testing::MakePng;
using ::vision_gateway::testing::PngHeaderOnly;
using ::vision_gateway::testing::StatusIs;

gemini::GenerateContentResponse TextChunk(const std::string& text,
                                          const std::string& finish = "") {
  return testing::AnswerChunk(text, finish, "gemini-2.5-flash");
}

using ::vision_gateway::testing::Collected;

class SpatialTaskTest : public ::testing::Test {
 protected:
  // 400x200 white image with a red rectangle.
  std::string png_ = MakePng(400, 200, {255, 255, 255}, {220, 20, 20}, 100, 50, 200, 150);
  FakeGeminiClient gemini_;
  ThreadPool cpu_{1};
  VisionOptions options_;

  std::shared_ptr<FakeGeminiClient::Call> StartDetectCall(Collected<v1::DetectResponse>& out,
                                                          v1::DetectRequest request) {
    if (!request.has_image()) request.mutable_image()->set_content(png_);
    const size_t before = gemini_.calls().size();
    auto call = StartDetect(gemini_, cpu_, options_, request, absl::InfiniteFuture(),
                            out.Callbacks());
    EXPECT_TRUE(call.ok()) << call.status();
    EXPECT_TRUE(gemini_.WaitForCalls(before + 1));
    const auto calls = gemini_.calls();
    return calls.size() > before ? calls[before] : nullptr;
  }
};

TEST_F(SpatialTaskTest, DetectRequestCarriesImagePromptSchemaAndSpatialDefaults) {
  Collected<v1::DetectResponse> out;
  v1::DetectRequest request;
  request.set_prompt("the red things");
  request.set_max_objects(7);
  auto call = StartDetectCall(out, request);
  ASSERT_NE(call, nullptr);
  const auto& parts = call->request.contents.at(0).parts;
  ASSERT_EQ(parts.size(), 2u);
  ASSERT_TRUE(parts[0].inline_data.has_value());
  EXPECT_EQ(parts[0].inline_data->data, png_);  // upright, no downscale: sent untouched
  EXPECT_TRUE(absl::StrContains(parts[1].text, "the red things"));
  EXPECT_TRUE(absl::StrContains(parts[1].text, "box_2d"));
  ASSERT_TRUE(call->request.system_instruction.has_value());
  EXPECT_TRUE(absl::StrContains(call->request.system_instruction->parts.at(0).text, "7 objects"));
  const auto& config = *call->request.generation_config;
  EXPECT_EQ(config.response_mime_type, "application/json");
  EXPECT_TRUE(absl::StrContains(config.response_json_schema, "\"maxItems\":7"));
  // The default model (gemini-3-flash-preview) thinks as little as it allows; Gemini 3 keeps
  // its own temperature (model_family.h).
  EXPECT_FALSE(config.temperature.has_value());
  EXPECT_EQ(config.thinking_config->thinking_level, "MINIMAL");
  EXPECT_FALSE(config.thinking_config->thinking_budget.has_value());
  call->observer.on_done(absl::CancelledError("end"));
}

// Detect's defaults fitted to each family (model_family.h): the least thinking the model takes,
// temperature 0.5 only before Gemini 3.
TEST_F(SpatialTaskTest, SpatialDefaultsFollowTheModelFamily) {
  struct Case {
    const char* model;
    std::optional<int32_t> budget;
    const char* level;
    std::optional<float> temperature;
  };
  for (const Case& c : {Case{"gemini-2.5-flash", 0, "", 0.5f},
                        Case{"gemini-2.5-pro", 128, "", 0.5f},
                        Case{"gemini-3-flash", std::nullopt, "MINIMAL", std::nullopt},
                        Case{"gemini-3.1-pro-preview", std::nullopt, "LOW", std::nullopt}}) {
    SCOPED_TRACE(c.model);
    Collected<v1::DetectResponse> out;
    v1::DetectRequest request;
    request.mutable_options()->set_model(c.model);
    auto call = StartDetectCall(out, request);
    ASSERT_NE(call, nullptr);
    const auto& config = *call->request.generation_config;
    EXPECT_EQ(config.temperature, c.temperature);
    EXPECT_EQ(config.thinking_config->thinking_budget, c.budget);
    EXPECT_EQ(config.thinking_config->thinking_level, c.level);
    call->observer.on_done(absl::CancelledError("end"));
  }
}

TEST_F(SpatialTaskTest, EmitsEachDetectionAsItsObjectCloses) {
  Collected<v1::DetectResponse> out;
  auto call = StartDetectCall(out, {});
  ASSERT_NE(call, nullptr);
  ASSERT_EQ(out.responses.size(), 1u);
  ASSERT_TRUE(out.responses[0].has_image_info());
  EXPECT_EQ(out.responses[0].image_info().width(), 400);
  EXPECT_EQ(out.responses[0].image_info().height(), 200);
  EXPECT_EQ(out.responses[0].image_info().mime_type(), "image/png");

  call->observer.on_chunk(TextChunk("```json\n[{\"box_2d\": [250, 250, 75"));
  EXPECT_EQ(out.responses.size(), 1u);
  call->observer.on_chunk(TextChunk("0, 500], \"label\": \"red\"}, {\"label\": \"x\", "));
  ASSERT_EQ(out.responses.size(), 2u);
  const v1::Detection& d = out.responses[1].detection();
  EXPECT_EQ(d.index(), 0);
  EXPECT_EQ(d.label(), "red");
  // floor(v / 1000 * size): x from width 400, y from height 200.
  EXPECT_EQ(d.box().x_min(), 100);
  EXPECT_EQ(d.box().y_min(), 50);
  EXPECT_EQ(d.box().x_max(), 200);
  EXPECT_EQ(d.box().y_max(), 150);
  EXPECT_EQ(d.normalized_box().y_min(), 250);
  EXPECT_EQ(d.normalized_box().x_max(), 500);

  // Swapped corners and out-of-range values are repaired; zero-area and malformed are dropped.
  call->observer.on_chunk(TextChunk(
      "\"box_2d\": [1200, 990, -5, 10]}, {\"box_2d\": [10, 10, 10, 500], \"label\": \"flat\"}, "
      "{\"box_2d\": [1, 2, 3], \"label\": \"short\"}, 17]\n```",
      "STOP"));
  call->observer.on_done(absl::OkStatus());
  ASSERT_TRUE(out.done.HasBeenNotified());
  EXPECT_TRUE(out.status.ok()) << out.status;
  ASSERT_EQ(out.responses.size(), 4u);
  const v1::Detection& fixed = out.responses[2].detection();
  EXPECT_EQ(fixed.index(), 1);
  EXPECT_EQ(fixed.normalized_box().y_min(), 0);
  EXPECT_EQ(fixed.normalized_box().x_min(), 10);
  EXPECT_EQ(fixed.normalized_box().y_max(), 1000);
  EXPECT_EQ(fixed.normalized_box().x_max(), 990);
  EXPECT_EQ(fixed.box().x_min(), 4);
  EXPECT_EQ(fixed.box().x_max(), 396);
  EXPECT_EQ(fixed.box().y_max(), 200);
  const v1::Summary& summary = out.responses[3].summary();
  EXPECT_EQ(summary.count(), 2);
  EXPECT_EQ(summary.dropped(), 3);
  EXPECT_EQ(summary.finish_reason(), "STOP");
  EXPECT_EQ(summary.model_version(), "gemini-2.5-flash");
  EXPECT_EQ(summary.usage().prompt_tokens(), 270);
}

TEST_F(SpatialTaskTest, MaxObjectsCapsTheStream) {
  Collected<v1::DetectResponse> out;
  v1::DetectRequest request;
  request.set_max_objects(1);
  auto call = StartDetectCall(out, request);
  ASSERT_NE(call, nullptr);
  call->observer.on_chunk(TextChunk(
      R"([{"box_2d":[0,0,500,500],"label":"a"},{"box_2d":[500,500,1000,1000],"label":"b"}])",
      "STOP"));
  call->observer.on_done(absl::OkStatus());
  ASSERT_EQ(out.responses.size(), 3u);
  EXPECT_EQ(out.responses[1].detection().label(), "a");
  EXPECT_EQ(out.responses[2].summary().count(), 1);
  EXPECT_EQ(out.responses[2].summary().dropped(), 1);
}

TEST_F(SpatialTaskTest, MaxTokensKeepsWhatWasEmitted) {
  Collected<v1::DetectResponse> out;
  auto call = StartDetectCall(out, {});
  ASSERT_NE(call, nullptr);
  call->observer.on_chunk(TextChunk(R"([{"box_2d":[0,0,500,500],"label":"a"},{"box_2d":[5)",
                                    "MAX_TOKENS"));
  call->observer.on_done(absl::OkStatus());
  EXPECT_TRUE(out.status.ok()) << out.status;
  ASSERT_EQ(out.responses.size(), 3u);
  EXPECT_EQ(out.responses[2].summary().count(), 1);
  EXPECT_EQ(out.responses[2].summary().finish_reason(), "MAX_TOKENS");
}

TEST_F(SpatialTaskTest, AnswerWithoutArrayIsModelOutputInvalid) {
  Collected<v1::DetectResponse> out;
  auto call = StartDetectCall(out, {});
  ASSERT_NE(call, nullptr);
  call->observer.on_chunk(TextChunk("I cannot see any objects in this image.", "STOP"));
  call->observer.on_done(absl::OkStatus());
  EXPECT_THAT(out.status, StatusIs(absl::StatusCode::kInternal));
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(GetDetail(out.status, info));
  EXPECT_EQ(info.reason(), "MODEL_OUTPUT_INVALID");
  EXPECT_EQ(info.metadata().at("excerpt"), "I cannot see any objects in this image.");
  EXPECT_EQ(out.responses.size(), 1u);  // only ImageInfo
}

TEST_F(SpatialTaskTest, ModelOutputExcerptIsBoundedAndValidUtf8) {
  Collected<v1::DetectResponse> out;
  auto call = StartDetectCall(out, {});
  ASSERT_NE(call, nullptr);
  // 199 ASCII bytes, then 3-byte characters: the 200-byte excerpt would cut one in half.
  call->observer.on_chunk(TextChunk(std::string(199, 'a') + "日本語はありません", "STOP"));
  call->observer.on_done(absl::OkStatus());
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(GetDetail(out.status, info));
  EXPECT_EQ(info.metadata().at("excerpt"), std::string(199, 'a'));
}

TEST_F(SpatialTaskTest, BadImagesFailWithInvalidArgument) {
  const std::string truncated = png_.substr(0, png_.size() / 2);
  for (const std::string& bytes : {std::string("GIF89a not supported"), truncated,
                                   PngHeaderOnly(100000, 100000)}) {
    Collected<v1::DetectResponse> out;
    v1::DetectRequest request;
    request.mutable_image()->set_content(bytes);
    auto call = StartDetect(gemini_, cpu_, options_, request, absl::InfiniteFuture(),
                            out.Callbacks());
    ASSERT_TRUE(call.ok());
    ASSERT_TRUE(out.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
    EXPECT_THAT(out.status, StatusIs(absl::StatusCode::kInvalidArgument)) << out.status;
    EXPECT_TRUE(out.responses.empty());
  }
  EXPECT_TRUE(gemini_.calls().empty());
}

TEST_F(SpatialTaskTest, RequestValidationFailsAtOnce) {
  Collected<v1::SegmentResponse> out;
  v1::SegmentRequest no_image;
  EXPECT_THAT(StartSegment(gemini_, cpu_, options_, no_image, absl::InfiniteFuture(),
                           out.Callbacks()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  v1::SegmentRequest bad_threshold;
  bad_threshold.mutable_image()->set_content(png_);
  bad_threshold.set_threshold(1.5f);
  EXPECT_THAT(StartSegment(gemini_, cpu_, options_, bad_threshold, absl::InfiniteFuture(),
                           out.Callbacks()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  v1::SegmentRequest bad_max;
  bad_max.mutable_image()->set_content(png_);
  bad_max.set_max_objects(-1);
  EXPECT_THAT(StartSegment(gemini_, cpu_, options_, bad_max, absl::InfiniteFuture(),
                           out.Callbacks()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(out.done.HasBeenNotified());
  EXPECT_TRUE(gemini_.calls().empty());
}

TEST_F(SpatialTaskTest, SegmentTurnsPngAndPolygonMasksIntoRleAndPng) {
  Collected<v1::SegmentResponse> out;
  v1::SegmentRequest request;
  request.mutable_image()->set_content(png_);
  auto started =
      StartSegment(gemini_, cpu_, options_, request, absl::InfiniteFuture(), out.Callbacks());
  ASSERT_TRUE(started.ok());
  ASSERT_TRUE(gemini_.WaitForCalls(1));
  auto call = gemini_.calls()[0];
  EXPECT_TRUE(absl::StrContains(call->request.contents[0].parts[1].text, "mask"));

  // A 256x256 probability map whose left half is "in": over the box x 100..200, y 50..150.
  image::BinaryMask left_half{.width = 256, .height = 256, .data = std::vector<uint8_t>(65536)};
  for (int y = 0; y < 256; ++y) {
    for (int x = 0; x < 128; ++x) left_half.data[y * 256 + x] = 1;
  }
  const std::string mask_png = image::EncodeMaskPng(left_half);
  const std::string item =
      absl::StrCat(R"([{"box_2d":[250,250,750,500],"label":"red","mask":"data:image/png;base64,)",
                   absl::Base64Escape(mask_png), R"("},)");
  // Polygon over the same box: the rectangle x 125..175, y 75..125 in pixels (0..1000 units).
  const std::string polygon =
      R"({"box_2d":[250,250,750,500],"label":"poly","mask":[[312.5,375],[437.5,375],[437.5,625],[312.5,625]]},)"
      R"({"box_2d":[0,0,100,100],"label":"junk","mask":"<start_of_mask><seg_35>"}])";
  call->observer.on_chunk(TextChunk(item));
  call->observer.on_chunk(TextChunk(polygon, "STOP"));
  call->observer.on_done(absl::OkStatus());
  // Segment's per-object work runs on the CPU pool, in order.
  ASSERT_TRUE(out.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(out.status.ok()) << out.status;
  ASSERT_EQ(out.responses.size(), 4u);

  const v1::Mask& png_mask = out.responses[1].mask();
  EXPECT_EQ(png_mask.label(), "red");
  EXPECT_EQ(png_mask.box().x_min(), 100);
  EXPECT_EQ(png_mask.box().y_min(), 50);
  EXPECT_EQ(png_mask.area(), 50 * 100);  // left half of a 100x100 box
  ASSERT_EQ(png_mask.rle().size_size(), 2);
  EXPECT_EQ(png_mask.rle().size(0), 200);
  EXPECT_EQ(png_mask.rle().size(1), 400);
  auto decoded = image::DecodeCocoRle(png_mask.rle().counts(), 200, 400);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  // Column-major: pixel (x, y) at x * height + y.
  EXPECT_EQ((*decoded)[100 * 200 + 50], 1);
  EXPECT_EQ((*decoded)[149 * 200 + 149], 1);
  EXPECT_EQ((*decoded)[150 * 200 + 100], 0);
  EXPECT_EQ((*decoded)[99 * 200 + 100], 0);
  auto box_png = image::MaskFromPng(png_mask.png(), 100, 100, 0.5);
  ASSERT_TRUE(box_png.ok());
  EXPECT_EQ(image::MaskArea(*box_png), 5000);

  const v1::Mask& poly = out.responses[2].mask();
  EXPECT_EQ(poly.label(), "poly");
  EXPECT_EQ(poly.area(), 50 * 50);
  EXPECT_EQ(out.responses[3].summary().count(), 2);
  EXPECT_EQ(out.responses[3].summary().dropped(), 1);
}

TEST_F(SpatialTaskTest, CancelBeforeUpstreamStartsEndsWithCancelled) {
  Collected<v1::DetectResponse> out;
  v1::DetectRequest request;
  request.mutable_image()->set_content(png_);
  ThreadPool paused(1);
  absl::Notification release;
  ASSERT_TRUE(paused.TrySchedule([&] { release.WaitForNotification(); }));  // keeps it busy
  auto call = StartDetect(gemini_, paused, options_, request, absl::InfiniteFuture(),
                          out.Callbacks());
  ASSERT_TRUE(call.ok());
  (*call)->Cancel();
  release.Notify();
  ASSERT_TRUE(out.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_THAT(out.status, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_TRUE(gemini_.calls().empty());
}

TEST_F(SpatialTaskTest, DetectCancelledOnceUpstreamStartedCancelsTheGeminiCall) {
  Collected<v1::DetectResponse> out;
  v1::DetectRequest request;
  request.mutable_image()->set_content(png_);
  auto started =
      StartDetect(gemini_, cpu_, options_, request, absl::InfiniteFuture(), out.Callbacks());
  ASSERT_TRUE(started.ok()) << started.status();
  ASSERT_TRUE(gemini_.WaitForCalls(1));
  auto call = gemini_.calls()[0];
  call->observer.on_chunk(TextChunk("[{\"box_2d\": [250, 250, 750, 500], \"label\": \"red\"}, "));
  // The preparation thread (one, FIFO) has finished starting the call and keeps it: the cancel
  // below finds it there, and only passing it on can cancel Gemini's call.
  absl::Notification started_upstream;
  ASSERT_TRUE(cpu_.TrySchedule([&] { started_upstream.Notify(); }));
  started_upstream.WaitForNotification();
  (*started)->Cancel();
  EXPECT_TRUE(call->cancelled.HasBeenNotified()) << "the Gemini call was not cancelled";
  ASSERT_TRUE(out.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_THAT(out.status, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(out.responses.size(), 2u);  // image info and the detection before the cancel
}

TEST_F(SpatialTaskTest, SegmentCancelledOnceUpstreamStartedEndsWhenGeminiConfirms) {
  // The real client confirms a cancel later, from its I/O thread: the call ends then, once.
  gemini_.DeferCancelCompletion();
  Collected<v1::SegmentResponse> out;
  v1::SegmentRequest request;
  request.mutable_image()->set_content(png_);
  auto started =
      StartSegment(gemini_, cpu_, options_, request, absl::InfiniteFuture(), out.Callbacks());
  ASSERT_TRUE(started.ok()) << started.status();
  ASSERT_TRUE(gemini_.WaitForCalls(1));
  auto call = gemini_.calls()[0];
  // The preparation thread (one, FIFO) has finished starting the call and keeps it: the cancel
  // below finds it there, and only passing it on can cancel Gemini's call.
  absl::Notification started_upstream;
  ASSERT_TRUE(cpu_.TrySchedule([&] { started_upstream.Notify(); }));
  started_upstream.WaitForNotification();
  (*started)->Cancel();
  EXPECT_TRUE(call->cancelled.HasBeenNotified()) << "the Gemini call was not cancelled";
  EXPECT_FALSE(out.done.HasBeenNotified());
  EXPECT_EQ(gemini_.CompleteCancelledCalls(), 1);
  ASSERT_TRUE(out.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_THAT(out.status, StatusIs(absl::StatusCode::kCancelled));
}

TEST_F(SpatialTaskTest, FullPreparationQueueIsServerOverloaded) {
  ThreadPool paused(1, /*max_queued=*/1);
  absl::Notification started, release;
  ASSERT_TRUE(paused.TrySchedule([&] {
    started.Notify();
    release.WaitForNotification();
  }));
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(10)));  // the worker is busy
  Collected<v1::DetectResponse> first, second;
  v1::DetectRequest request;
  request.mutable_image()->set_content(png_);
  auto queued = StartDetect(gemini_, paused, options_, request, absl::InfiniteFuture(),
                            first.Callbacks());
  ASSERT_TRUE(queued.ok());
  auto refused = StartDetect(gemini_, paused, options_, request, absl::InfiniteFuture(),
                             second.Callbacks());
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted));
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(GetDetail(refused.status(), info));
  EXPECT_EQ(info.reason(), "SERVER_OVERLOADED");
  EXPECT_TRUE(GetRetryDelay(refused.status()).has_value());
  (*queued)->Cancel();
  release.Notify();
  ASSERT_TRUE(first.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_THAT(first.status, StatusIs(absl::StatusCode::kCancelled));
}

TEST_F(SpatialTaskTest, CallExpiredWhileQueuedSkipsPreparation) {
  Collected<v1::DetectResponse> out;
  v1::DetectRequest request;
  request.mutable_image()->set_content(png_);
  auto call = StartDetect(gemini_, cpu_, options_, request, absl::Now() - absl::Milliseconds(1),
                          out.Callbacks());
  ASSERT_TRUE(call.ok());
  ASSERT_TRUE(out.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_THAT(out.status, StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_TRUE(out.responses.empty());  // no ImageInfo: the image was never prepared
  EXPECT_TRUE(gemini_.calls().empty());
}

TEST_F(SpatialTaskTest, SegmentMaskWorkRunsOffTheUpstreamThreadInOrder) {
  Collected<v1::SegmentResponse> out;
  std::vector<std::thread::id> threads;
  auto callbacks = out.Callbacks();
  auto inner = std::move(callbacks.on_response);
  callbacks.on_response = [&, inner = std::move(inner)](v1::SegmentResponse r) mutable {
    threads.push_back(std::this_thread::get_id());
    inner(std::move(r));
  };
  v1::SegmentRequest request;
  request.mutable_image()->set_content(png_);
  ASSERT_TRUE(StartSegment(gemini_, cpu_, options_, request, absl::InfiniteFuture(),
                           std::move(callbacks))
                  .ok());
  ASSERT_TRUE(gemini_.WaitForCalls(1));
  auto call = gemini_.calls()[0];
  std::string items = "[";
  for (int i = 0; i < 20; ++i) {
    absl::StrAppend(&items, i ? "," : "", R"({"box_2d":[250,250,750,500],"label":"p)", i,
                    R"(","mask":[[312.5,375],[437.5,375],[437.5,625],[312.5,625]]})");
  }
  items += "]";
  // Fed byte by byte from this thread, as an I/O thread would.
  for (char c : items) call->observer.on_chunk(TextChunk(std::string(1, c)));
  call->observer.on_chunk(TextChunk("", "STOP"));
  call->observer.on_done(absl::OkStatus());
  ASSERT_TRUE(out.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(out.status.ok()) << out.status;
  ASSERT_EQ(out.responses.size(), 22u);  // info, 20 masks, summary
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(out.responses[i + 1].mask().label(), absl::StrCat("p", i));
    EXPECT_EQ(out.responses[i + 1].mask().index(), i);
    EXPECT_NE(threads[i + 1], std::this_thread::get_id());
  }
}

TEST_F(SpatialTaskTest, PolygonOverThePointLimitIsDropped) {
  options_.max_polygon_points = 100;
  Collected<v1::SegmentResponse> out;
  v1::SegmentRequest request;
  request.mutable_image()->set_content(png_);
  ASSERT_TRUE(
      StartSegment(gemini_, cpu_, options_, request, absl::InfiniteFuture(), out.Callbacks()).ok());
  ASSERT_TRUE(gemini_.WaitForCalls(1));
  auto call = gemini_.calls()[0];
  std::string polygon = R"([{"box_2d":[0,0,1000,1000],"label":"big","mask":[)";
  for (int i = 0; i < 101; ++i) {
    absl::StrAppend(&polygon, i ? "," : "", "[", (i * 7) % 1000, ",", (i * 13) % 1000, "]");
  }
  polygon += "]}]";
  call->observer.on_chunk(TextChunk(polygon, "STOP"));
  call->observer.on_done(absl::OkStatus());
  ASSERT_TRUE(out.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(out.status.ok()) << out.status;
  ASSERT_EQ(out.responses.size(), 2u);
  EXPECT_EQ(out.responses[1].summary().dropped(), 1);
  EXPECT_EQ(out.responses[1].summary().count(), 0);
}

TEST_F(SpatialTaskTest, ImageOverTheByteLimitIsRequestTooLarge) {
  options_.max_image_bytes = 100;
  Collected<v1::DetectResponse> out;
  v1::DetectRequest request;
  request.mutable_image()->set_content(png_);
  auto call = StartDetect(gemini_, cpu_, options_, request, absl::InfiniteFuture(),
                          out.Callbacks());
  EXPECT_THAT(call, StatusIs(absl::StatusCode::kInvalidArgument));
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(GetDetail(call.status(), info));
  EXPECT_EQ(info.reason(), "REQUEST_TOO_LARGE");
}

}  // namespace
}  // namespace vision_gateway::vision
