// libFuzzer target for the image sniffer and header probe (image::SniffFormat, ProbeHeader,
// ProbeSize) and for PrepareImage behind them, over caller bytes. Checks that nothing crashes or
// leaks (ASan/UBSan; libvips itself is not instrumented) and that
//   - every failure is INVALID_ARGUMENT (never INTERNAL for bad input);
//   - a probed header has a positive size, an orientation of 1..8, stored pixels = its stored
//     width x height, and its upright size is the stored one swapped for orientations 5..8;
//     ProbeSize agrees with it;
//   - PrepareImage refuses an image over max_pixels, and a prepared image reports the header's
//     upright size, is at most max_dimension on its longer side, and its bytes really are an image
//     of the reported format and sent size (probed again).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "service/image/image_probe.h"

namespace {

namespace image = ::vision_gateway::image;

constexpr int64_t kMaxPixels = 256 * 256;  // keeps each decode cheap

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto format = image::SniffFormat(bytes);
  if (!format.ok()) {
    Check(absl::IsInvalidArgument(format.status()));
    Check(!image::ProbeHeader(bytes).ok() && !image::PrepareImage(std::string(bytes)).ok());
    return 0;
  }
  Check(!image::MimeTypeOf(*format).empty());

  auto header = image::ProbeHeader(bytes);
  auto probed = image::ProbeSize(bytes);
  Check(header.ok() == probed.ok());
  if (!header.ok()) {
    Check(absl::IsInvalidArgument(header.status()) && absl::IsInvalidArgument(probed.status()));
    return 0;
  }
  Check(header->format == *format);
  Check(header->orientation >= 1 && header->orientation <= 8);
  const image::ImageSize up = header->upright;
  Check(up.width > 0 && up.height > 0);
  Check(probed->width == up.width && probed->height == up.height);
  Check(header->stored_pixels == int64_t{up.width} * up.height);

  image::PrepareOptions options;
  options.max_pixels = kMaxPixels;
  options.max_dimension = size % 2 == 0 ? 0 : 48;
  auto prepared = image::PrepareImage(std::string(bytes), options);
  if (!prepared.ok()) {
    Check(absl::IsInvalidArgument(prepared.status()));
    return 0;
  }
  Check(header->stored_pixels <= kMaxPixels);
  Check(prepared->width == up.width && prepared->height == up.height);
  Check(prepared->orientation == header->orientation);
  Check(prepared->source_format == *format);
  Check(prepared->mime_type == image::MimeTypeOf(prepared->format));
  Check(prepared->sent_width > 0 && prepared->sent_height > 0);
  if (options.max_dimension > 0) {
    Check(std::max(prepared->sent_width, prepared->sent_height) <= options.max_dimension);
  }
  if (!prepared->reencoded) {
    Check(prepared->bytes == bytes && prepared->sent_width == up.width &&
          prepared->sent_height == up.height);
  }
  auto sent = image::ProbeHeader(prepared->bytes);
  Check(sent.ok() && sent->format == prepared->format);
  Check(sent->upright.width == prepared->sent_width &&
        sent->upright.height == prepared->sent_height);
  return 0;
}
