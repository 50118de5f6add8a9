// libFuzzer target for image::MaskFromPng (libvips PNG decode, resize, threshold) and the mask
// encoders after it. Input: bytes 0..2 pick the box width, height and threshold; the rest is the
// "PNG" the model sent. Checks that nothing crashes or leaks (ASan/UBSan) and that
//   - every failure is INVALID_ARGUMENT;
//   - a decoded mask has exactly the box's size and only 0/1 values;
//   - decoding is deterministic (the same bytes give the same mask twice: a truncated PNG that
//     was sometimes accepted was a real bug here);
//   - a higher threshold never sets a pixel a lower one leaves clear, and threshold 1 sets none;
//   - EncodeMaskPng → MaskFromPng at the same size gives the same mask back;
//   - the COCO RLE of the mask placed in a larger image decodes to that image and has its area.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "service/image/binary_mask.h"
#include "service/image/coco_rle.h"
#include "service/image/mask_codec.h"

namespace {

namespace image = ::vision_gateway::image;

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const int width = 1 + data[0] % 64;
  const int height = 1 + data[1] % 64;
  const double threshold = (data[2] % 11) / 10.0;
  const std::string_view png(reinterpret_cast<const char*>(data) + 3, size - 3);

  auto mask = image::MaskFromPng(png, width, height, threshold);
  if (!mask.ok()) {
    Check(mask.status().code() == absl::StatusCode::kInvalidArgument);
    // Deterministic failures too.
    Check(!image::MaskFromPng(png, width, height, threshold).ok());
    return 0;
  }
  Check(mask->width == width && mask->height == height);
  Check(mask->data.size() == static_cast<size_t>(width) * height);
  for (uint8_t v : mask->data) Check(v <= 1);

  auto again = image::MaskFromPng(png, width, height, threshold);
  Check(again.ok() && again->data == mask->data);

  // Monotonic in the threshold; nothing is above 255.
  if (threshold > 0.0) {
    auto lower = image::MaskFromPng(png, width, height, threshold - 0.1);
    Check(lower.ok());
    for (size_t i = 0; i < mask->data.size(); ++i) Check(mask->data[i] <= lower->data[i]);
  }
  if (threshold == 1.0) Check(image::MaskArea(*mask) == 0);

  // Our own PNG of the mask decodes to the same mask.
  const std::string encoded = image::EncodeMaskPng(*mask);
  Check(!encoded.empty());
  auto decoded = image::MaskFromPng(encoded, width, height, 0.5);
  Check(decoded.ok() && decoded->data == mask->data);

  // COCO RLE of the mask at (3, 2) inside a larger image.
  const int image_width = width + 5;
  const int image_height = height + 4;
  const std::string rle = image::EncodeCocoRle(*mask, 3, 2, image_width, image_height);
  auto pixels = image::DecodeCocoRle(rle, image_height, image_width);
  Check(pixels.ok());
  int64_t area = 0;
  for (int x = 0; x < image_width; ++x) {
    for (int y = 0; y < image_height; ++y) {
      const uint8_t v = (*pixels)[static_cast<size_t>(x) * image_height + y];
      const bool inside = x >= 3 && x < 3 + width && y >= 2 && y < 2 + height;
      const uint8_t want = inside ? mask->data[static_cast<size_t>(y - 2) * width + (x - 3)] : 0;
      Check(v == want);
      area += v;
    }
  }
  Check(area == image::MaskArea(*mask));
  return 0;
}
