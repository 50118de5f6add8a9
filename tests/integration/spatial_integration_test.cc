// Detect and Segment through the whole stack against the emulator's scene mode: images with shapes
// of known geometry, checked against the truth in the caller's (upright, original) pixel frame.
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "service/image/coco_rle.h"
#include "service/image/mask_codec.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/testing/test_images.h"

namespace vision_gateway::testing {
namespace {

namespace v1 = ::vision::v1;

const Rgb kWhite{255, 255, 255};
const Rgb kRed{220, 20, 20};
const Rgb kBlue{20, 40, 220};

struct Shape {
  std::string label;
  bool ellipse;
  int x0, y0, x1, y1;  // pixel extents, [x0, x1) x [y0, y1)
};

struct Scene {
  int width, height;
  std::vector<Shape> shapes;

  Pixels Draw() const {
    Pixels pixels = MakePixels(width, height, 3);
    FillRect(pixels, kWhite, 0, 0, width, height);
    for (const Shape& s : shapes) {
      const Rgb colour = s.label == "red" ? kRed : kBlue;
      if (s.ellipse) {
        FillEllipse(pixels, colour, s.x0, s.y0, s.x1, s.y1);
      } else {
        FillRect(pixels, colour, s.x0, s.y0, s.x1, s.y1);
      }
    }
    return pixels;
  }

  // The true mask of a shape over the full image, column-major (as COCO RLE decodes).
  std::vector<uint8_t> TruthColumnMajor(const Shape& s) const {
    Pixels only = MakePixels(width, height, 3);
    if (s.ellipse) {
      FillEllipse(only, {1, 1, 1}, s.x0, s.y0, s.x1, s.y1);
    } else {
      FillRect(only, {1, 1, 1}, s.x0, s.y0, s.x1, s.y1);
    }
    std::vector<uint8_t> out(static_cast<size_t>(width) * height);
    for (int x = 0; x < width; ++x) {
      for (int y = 0; y < height; ++y) out[static_cast<size_t>(x) * height + y] = only.at(x, y);
    }
    return out;
  }
};

const Scene kScene{640, 480, {{"red", false, 100, 80, 300, 200}, {"blue", true, 350, 250, 550, 430}}};

int Tolerance(int size) { return (size + 999) / 1000 + 1; }

template <typename Response, typename Request, typename Rpc>
std::vector<Response> ReadAll(Rpc rpc, const Request& request, grpc::Status* status) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  auto reader = rpc(&context, request);
  std::vector<Response> out;
  Response r;
  while (reader->Read(&r)) out.push_back(r);
  *status = reader->Finish();
  return out;
}

class SpatialTest : public GatewayTest {
 protected:
  std::vector<v1::DetectResponse> Detect(const v1::DetectRequest& request, grpc::Status* status) {
    return ReadAll<v1::DetectResponse>(
        [this](grpc::ClientContext* c, const v1::DetectRequest& r) { return stub_->Detect(c, r); },
        request, status);
  }
  std::vector<v1::SegmentResponse> Segment(const v1::SegmentRequest& request,
                                           grpc::Status* status) {
    return ReadAll<v1::SegmentResponse>(
        [this](grpc::ClientContext* c, const v1::SegmentRequest& r) {
          return stub_->Segment(c, r);
        },
        request, status);
  }

  // Checks the stream shape and every box against the scene; returns the objects by label.
  template <typename Response, typename Object>
  std::map<std::string, Object> CheckBoxes(const std::vector<Response>& responses,
                                           const Scene& scene,
                                           const Object& (Response::*get)() const) {
    std::map<std::string, Object> by_label;
    EXPECT_GE(responses.size(), 2u);
    if (responses.size() < 2) return by_label;
    EXPECT_TRUE(responses.front().has_image_info());
    EXPECT_EQ(responses.front().image_info().width(), scene.width);
    EXPECT_EQ(responses.front().image_info().height(), scene.height);
    EXPECT_TRUE(responses.back().has_summary());
    EXPECT_EQ(responses.back().summary().count(), static_cast<int>(responses.size()) - 2);
    const int tx = Tolerance(scene.width);
    const int ty = Tolerance(scene.height);
    for (size_t i = 1; i + 1 < responses.size(); ++i) {
      const Object& object = (responses[i].*get)();
      EXPECT_EQ(object.index(), static_cast<int>(i) - 1);
      by_label[object.label()] = object;
      const Shape* truth = nullptr;
      for (const Shape& s : scene.shapes) {
        if (s.label == object.label()) truth = &s;
      }
      if (truth == nullptr) {
        ADD_FAILURE() << "unexpected object " << object.label();
        continue;
      }
      SCOPED_TRACE(object.label());
      EXPECT_NEAR(object.box().x_min(), truth->x0, tx);
      EXPECT_NEAR(object.box().x_max(), truth->x1, tx);
      EXPECT_NEAR(object.box().y_min(), truth->y0, ty);
      EXPECT_NEAR(object.box().y_max(), truth->y1, ty);
    }
    return by_label;
  }

  // Segments kScene with the emulator answering masks in `format`: every mask has IoU >= 0.9
  // with its drawn shape.
  void CheckSegmentation(emulator::MaskFormat format) {
    emulator::EmulatorConfig config = emulator_->config();
    config.mask_format = format;
    emulator_->SetConfig(config);
    v1::SegmentRequest request;
    request.mutable_image()->set_content(*Encode(kScene.Draw(), ".png"));
    grpc::Status status;
    auto responses = Segment(request, &status);
    ASSERT_TRUE(status.ok()) << status.error_message();
    auto masks = CheckBoxes(responses, kScene, &v1::SegmentResponse::mask);
    ASSERT_EQ(masks.size(), 2u);
    for (const Shape& shape : kScene.shapes) {
      SCOPED_TRACE(shape.label);
      EXPECT_GE(MaskIou(masks[shape.label], kScene, shape), 0.9);
    }
  }

  double MaskIou(const v1::Mask& mask, const Scene& scene, const Shape& shape) {
    EXPECT_EQ(mask.rle().size(0), scene.height);
    EXPECT_EQ(mask.rle().size(1), scene.width);
    auto decoded = image::DecodeCocoRle(mask.rle().counts(), scene.height, scene.width);
    EXPECT_TRUE(decoded.ok()) << decoded.status();
    if (!decoded.ok()) return 0;
    const std::vector<uint8_t> truth = scene.TruthColumnMajor(shape);
    int64_t both = 0, either = 0, area = 0;
    for (size_t i = 0; i < truth.size(); ++i) {
      both += (*decoded)[i] && truth[i];
      either += (*decoded)[i] || truth[i];
      area += (*decoded)[i];
    }
    EXPECT_EQ(area, mask.area());
    // The box-sized PNG holds the same pixels.
    auto png = image::MaskFromPng(mask.png(), mask.box().x_max() - mask.box().x_min(),
                                  mask.box().y_max() - mask.box().y_min(), 0.5);
    EXPECT_TRUE(png.ok()) << png.status();
    if (png.ok()) {
      EXPECT_EQ(image::MaskArea(*png), mask.area());
    }
    return either == 0 ? 0 : static_cast<double>(both) / either;
  }
};

v1::DetectRequest DetectOf(const std::string& bytes) {
  v1::DetectRequest request;
  request.mutable_image()->set_content(bytes);
  return request;
}

TEST_F(SpatialTest, DetectReturnsTruePixelBoxesObjectByObject) {
  grpc::Status status;
  auto responses = Detect(DetectOf(*Encode(kScene.Draw(), ".png")), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(responses.size(), 4u);  // info, red, blue, summary
  auto objects = CheckBoxes(responses, kScene, &v1::DetectResponse::detection);
  EXPECT_EQ(objects.size(), 2u);
  EXPECT_EQ(responses.back().summary().finish_reason(), "STOP");
  EXPECT_EQ(responses.back().summary().dropped(), 0);
  EXPECT_GT(responses.back().summary().usage().prompt_tokens(), 0);

  // The upstream request asked for structured JSON.
  auto requests = emulator_->Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_NE(requests[0].body.find("\"responseMimeType\":\"application/json\""), std::string::npos);
  EXPECT_NE(requests[0].body.find("\"responseJsonSchema\""), std::string::npos);
}

TEST_F(SpatialTest, DetectHonoursColourInThePrompt) {
  v1::DetectRequest request = DetectOf(*Encode(kScene.Draw(), ".png"));
  request.set_prompt("the blue objects");
  grpc::Status status;
  auto responses = Detect(request, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_EQ(responses[1].detection().label(), "blue");
}

TEST_F(SpatialTest, DetectToleratesFencedOutputWithProse) {
  emulator::EmulatorConfig config = emulator_->config();
  config.fence = true;
  config.prose_prefix = "Here are the objects I found:\n";
  config.stream_chunk_chars = 3;
  emulator_->SetConfig(config);
  grpc::Status status;
  auto responses = Detect(DetectOf(*Encode(kScene.Draw(), ".png")), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(CheckBoxes(responses, kScene, &v1::DetectResponse::detection).size(), 2u);
}

TEST_F(SpatialTest, DetectOnExifRotatedJpegReportsUprightGeometry) {
  // Upright 480x640 scene; stored rotated so that EXIF orientation 6 (rotate 90° clockwise to
  // display) shows it upright.
  const Scene upright{480, 640, {{"red", false, 60, 100, 200, 300}, {"blue", true, 250, 380, 430, 600}}};
  const Pixels u = upright.Draw();
  Pixels stored = MakePixels(upright.height, upright.width, 3);
  for (int ys = 0; ys < stored.height; ++ys) {
    for (int xs = 0; xs < stored.width; ++xs) {
      // Displayed (x, y) = (stored_height - 1 - ys, xs).
      for (int b = 0; b < 3; ++b) stored.at(xs, ys, b) = u.at(stored.height - 1 - ys, xs, b);
    }
  }
  auto jpeg = Encode(stored, ".jpg", 6);
  ASSERT_TRUE(jpeg.has_value());
  grpc::Status status;
  auto responses = Detect(DetectOf(*jpeg), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(responses.front().image_info().mime_type(), "image/jpeg");
  EXPECT_EQ(CheckBoxes(responses, upright, &v1::DetectResponse::detection).size(), 2u);
}

TEST_F(SpatialTest, DownscaledDetectStillReportsOriginalPixels) {
  const Scene big{1280, 960, {{"red", false, 200, 160, 600, 400}, {"blue", true, 700, 500, 1100, 860}}};
  v1::DetectRequest request = DetectOf(*Encode(big.Draw(), ".png"));
  request.set_max_dimension(320);
  grpc::Status status;
  auto responses = Detect(request, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // The emulator saw a 320x240 image (edges on multiples of 4 stay sharp), yet the boxes are in
  // the original frame within the same tolerance as a full-size request.
  EXPECT_EQ(CheckBoxes(responses, big, &v1::DetectResponse::detection).size(), 2u);
  auto requests = emulator_->Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_LT(requests[0].body_size, 60'000u);  // the small image was sent, not the big one
}

TEST_F(SpatialTest, SegmentPngMasksMatchTheShapes) { CheckSegmentation(emulator::MaskFormat::kPng); }

TEST_F(SpatialTest, SegmentPolygonMasksMatchTheShapes) {
  CheckSegmentation(emulator::MaskFormat::kPolygon);
}

TEST_F(SpatialTest, BadImagesAreInvalidArgumentAndTheServerKeepsServing) {
  const std::string png = *Encode(kScene.Draw(), ".png");
  const std::string jpeg = *Encode(kScene.Draw(), ".jpg");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"text", "this is not an image"},
      {"empty", ""},
      {"truncated png", png.substr(0, png.size() / 2)},
      {"truncated jpeg", jpeg.substr(0, jpeg.size() / 2)},
      {"huge declared size", PngHeaderOnly(100000, 100000)},
  };
  for (const auto& [name, bytes] : cases) {
    grpc::Status status;
    v1::DetectRequest request;
    request.mutable_image()->set_content(bytes);
    auto responses = Detect(request, &status);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << name;
    EXPECT_FALSE(status.error_message().empty()) << name;
    EXPECT_TRUE(responses.empty()) << name;
  }
  EXPECT_TRUE(emulator_->Requests().empty());
  grpc::Status status;
  Detect(DetectOf(png), &status);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

}  // namespace
}  // namespace vision_gateway::testing
