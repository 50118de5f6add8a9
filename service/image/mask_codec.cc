#include "service/image/mask_codec.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "service/image/vips_internal.h"

namespace vision_gateway::image {
namespace {

using internal::GBuffer;
using internal::VipsImagePtr;

// Largest intermediate (one resampling pass) in values; bounds memory at 256 MiB.
constexpr int64_t kMaxIntermediateValues = 32'000'000;
// Slack for floating-point error when comparing a resampled value with the threshold; far below
// one grey level, far above the rounding error of a weighted sum of at most a few thousand terms.
constexpr double kThresholdEpsilon = 1e-6;

// Resampling weights from a source axis of in_size pixels to one of out_size pixels. Output
// pixel i uses source pixels [first[i], first[i] + count[i]) with weights at
// weights[i * max_taps ...].
struct Kernel {
  int max_taps = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<double> weights;
};

double Triangle(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

Kernel MakeKernel(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);  // widen the kernel when downscaling
  const double support = filter_scale;               // the triangle's radius is 1
  Kernel k;
  k.max_taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  k.first.resize(out_size);
  k.count.resize(out_size);
  k.weights.assign(static_cast<size_t>(out_size) * k.max_taps, 0.0);
  for (int i = 0; i < out_size; ++i) {
    // Centre of output pixel i in source coordinates, where source pixel x covers [x, x + 1).
    const double center = (i + 0.5) * scale;
    const int lo = std::max(static_cast<int>(std::floor(center - support + 0.5)), 0);
    const int hi = std::min(static_cast<int>(std::floor(center + support + 0.5)), in_size);
    const int n = std::min(hi - lo, k.max_taps);
    double* w = &k.weights[static_cast<size_t>(i) * k.max_taps];
    double sum = 0;
    for (int t = 0; t < n; ++t) {
      w[t] = Triangle((lo + t + 0.5 - center) / filter_scale);
      sum += w[t];
    }
    if (sum > 0) {
      for (int t = 0; t < n; ++t) w[t] /= sum;
    }
    k.first[i] = lo;
    k.count[i] = n;
  }
  return k;
}

absl::Status BadMask(std::string_view why) {
  return absl::InvalidArgumentError(absl::StrFormat("mask: %s", std::string(why)));
}

// One 8-bit channel, row-major.
struct Plane {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;
};

// Decodes the PNG's first band as 8-bit values.
absl::StatusOr<Plane> DecodeFirstBand(std::string_view png) {
  if (absl::Status s = internal::EnsureVips(); !s.ok()) return s;
  VipsImage* out = nullptr;
  int rc = vips_pngload_buffer(const_cast<char*>(png.data()), png.size(), &out, "access",
                               VIPS_ACCESS_SEQUENTIAL, "fail_on", VIPS_FAIL_ON_ERROR, nullptr);
  VipsImagePtr image(out);
  if (rc != 0 || image == nullptr) {
    return BadMask(absl::StrFormat("PNG is corrupt or truncated (%s)", internal::TakeVipsError()));
  }
  const int width = vips_image_get_width(image.get());
  const int height = vips_image_get_height(image.get());
  if (static_cast<int64_t>(width) * height > kMaxMaskPngPixels) {
    return BadMask(
        absl::StrFormat("PNG is %dx%d pixels; the limit is %d", width, height, kMaxMaskPngPixels));
  }
  if (vips_image_get_bands(image.get()) > 1) {
    out = nullptr;
    rc = vips_extract_band(image.get(), &out, 0, nullptr);
    image.reset(out);
    if (rc != 0 || image == nullptr) return BadMask(internal::TakeVipsError());
  }
  if (vips_image_get_format(image.get()) != VIPS_FORMAT_UCHAR) {
    // 16-bit PNG: 65535 -> 255.
    out = nullptr;
    rc = vips_linear1(image.get(), &out, 1.0 / 257.0, 0.0, "uchar", TRUE, nullptr);
    image.reset(out);
    if (rc != 0 || image == nullptr) return BadMask(internal::TakeVipsError());
  }
  // Pixels are decoded on this thread (see internal::ForEachRow: libvips' threadpool sinks can
  // lose a truncation error).
  absl::StatusOr<std::vector<uint8_t>> pixels = internal::ReadPixels(image.get(), "mask: PNG");
  if (!pixels.ok()) return pixels.status();
  if (pixels->size() != static_cast<size_t>(width) * height) return BadMask("unexpected PNG layout");
  return Plane{width, height, *std::move(pixels)};
}

}  // namespace

absl::StatusOr<BinaryMask> MaskFromPng(std::string_view png, int box_width, int box_height,
                                       double threshold) {
  if (png.empty()) return BadMask("PNG is empty");
  if (!png.starts_with(std::string_view("\x89PNG\r\n\x1a\n", 8))) return BadMask("not a PNG");
  if (box_width < 1 || box_height < 1 ||
      static_cast<int64_t>(box_width) * box_height > kMaxMaskBoxPixels) {
    return BadMask(absl::StrFormat("box %dx%d is out of range", box_width, box_height));
  }
  if (!(threshold >= 0.0 && threshold <= 1.0)) return BadMask("threshold must be in [0, 1]");

  absl::StatusOr<Plane> src = DecodeFirstBand(png);
  if (!src.ok()) return src.status();
  const int src_width = src->width;
  const int src_height = src->height;

  // Separable resampling; do first the pass that leaves the smaller intermediate.
  const int64_t rows_first = static_cast<int64_t>(box_height) * src_width;  // vertical first
  const int64_t cols_first = static_cast<int64_t>(src_height) * box_width;  // horizontal first
  if (std::min(rows_first, cols_first) > kMaxIntermediateValues) {
    return BadMask(absl::StrFormat("cannot resize a %dx%d PNG to %dx%d", src_width, src_height,
                                   box_width, box_height));
  }
  const Kernel kx = MakeKernel(src_width, box_width);
  const Kernel ky = MakeKernel(src_height, box_height);
  const double cut = threshold * 255.0 + kThresholdEpsilon;

  BinaryMask mask;
  mask.width = box_width;
  mask.height = box_height;
  mask.data.assign(static_cast<size_t>(box_width) * box_height, 0);
  const uint8_t* s = src->pixels.data();

  if (cols_first <= rows_first) {
    // tmp: src_height rows x box_width columns.
    std::vector<double> tmp(static_cast<size_t>(cols_first));
    for (int y = 0; y < src_height; ++y) {
      const uint8_t* row = s + static_cast<size_t>(y) * src_width;
      double* out = &tmp[static_cast<size_t>(y) * box_width];
      for (int x = 0; x < box_width; ++x) {
        const double* w = &kx.weights[static_cast<size_t>(x) * kx.max_taps];
        const uint8_t* in = row + kx.first[x];
        double v = 0;
        for (int t = 0; t < kx.count[x]; ++t) v += w[t] * in[t];
        out[x] = v;
      }
    }
    for (int y = 0; y < box_height; ++y) {
      const double* w = &ky.weights[static_cast<size_t>(y) * ky.max_taps];
      uint8_t* out = &mask.data[static_cast<size_t>(y) * box_width];
      for (int x = 0; x < box_width; ++x) {
        double v = 0;
        for (int t = 0; t < ky.count[y]; ++t) {
          v += w[t] * tmp[static_cast<size_t>(ky.first[y] + t) * box_width + x];
        }
        out[x] = v > cut ? 1 : 0;
      }
    }
  } else {
    // tmp: box_height rows x src_width columns.
    std::vector<double> tmp(static_cast<size_t>(rows_first), 0.0);
    for (int y = 0; y < box_height; ++y) {
      const double* w = &ky.weights[static_cast<size_t>(y) * ky.max_taps];
      double* out = &tmp[static_cast<size_t>(y) * src_width];
      for (int t = 0; t < ky.count[y]; ++t) {
        const uint8_t* in = s + static_cast<size_t>(ky.first[y] + t) * src_width;
        for (int x = 0; x < src_width; ++x) out[x] += w[t] * in[x];
      }
    }
    for (int y = 0; y < box_height; ++y) {
      const double* row = &tmp[static_cast<size_t>(y) * src_width];
      uint8_t* out = &mask.data[static_cast<size_t>(y) * box_width];
      for (int x = 0; x < box_width; ++x) {
        const double* w = &kx.weights[static_cast<size_t>(x) * kx.max_taps];
        const double* in = row + kx.first[x];
        double v = 0;
        for (int t = 0; t < kx.count[x]; ++t) v += w[t] * in[t];
        out[x] = v > cut ? 1 : 0;
      }
    }
  }
  return mask;
}

std::string EncodeMaskPng(const BinaryMask& mask) {
  if (mask.width < 1 || mask.height < 1 ||
      mask.data.size() != static_cast<size_t>(mask.width) * mask.height) {
    return "";
  }
  if (!internal::EnsureVips().ok()) return "";
  std::vector<uint8_t> grey(mask.data.size());
  std::transform(mask.data.begin(), mask.data.end(), grey.begin(),
                 [](uint8_t v) -> uint8_t { return v != 0 ? 255 : 0; });
  VipsImagePtr image(vips_image_new_from_memory(grey.data(), grey.size(), mask.width, mask.height,
                                                1, VIPS_FORMAT_UCHAR));
  if (image == nullptr) {
    (void)internal::TakeVipsError();
    return "";
  }
  void* buffer = nullptr;
  size_t length = 0;
  const int rc = vips_pngsave_buffer(image.get(), &buffer, &length, "strip", TRUE, nullptr);
  GBuffer owned(buffer);
  if (rc != 0 || buffer == nullptr) {
    (void)internal::TakeVipsError();
    return "";
  }
  return std::string(static_cast<const char*>(buffer), length);
}

}  // namespace vision_gateway::image
