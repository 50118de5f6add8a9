#include "service/image/mask_codec.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <zlib.h>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "service/image/png_scan.h"
#include "service/image/vips_internal.h"

namespace vision_gateway::image {
namespace {

using internal::VipsImagePtr;

// Largest intermediate (one resampling pass) in values; bounds memory at 256 MiB.
constexpr int64_t kMaxIntermediateValues = 32'000'000;
// Largest mask scanlines (bytes) EncodeMaskPng keeps buffers for between masks: 1000x1000.
constexpr size_t kMaxKeptEncodeBytes = 1001 * 1000;
// Largest intermediate kept by a thread between masks (2 MiB): a 256x256 mask resized to a box of
// up to about 1000x1000 pixels fits.
constexpr size_t kMaxScratchValues = 256 * 1024;
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
  // When the source has at least max_taps pixels: output pixel i's taps as a window of exactly
  // max_taps source pixels [window_first[i], window_first[i] + max_taps) inside the source, with
  // weights at window_weights[i * max_taps ...] (0 outside [first[i], first[i] + count[i])).
  std::vector<int> window_first;
  std::vector<double> window_weights;
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
  if (in_size >= k.max_taps) {
    k.window_first.resize(out_size);
    k.window_weights.assign(k.weights.size(), 0.0);
    for (int i = 0; i < out_size; ++i) {
      const int start = std::min(k.first[i], in_size - k.max_taps);
      k.window_first[i] = start;
      const double* w = &k.weights[static_cast<size_t>(i) * k.max_taps];
      double* ww = &k.window_weights[static_cast<size_t>(i) * k.max_taps];
      std::copy(w, w + k.count[i], ww + (k.first[i] - start));
    }
  }
  return k;
}

// out[x], for every output pixel x of one row, is the weighted sum of its taps in `in` (one
// source row), adding the taps in order. With windows (Kernel), four outputs at a time, in four
// independent sums so that their additions do not wait on one another (one sum at a time is
// bound by the latency of each add), each over its whole window: the taps outside the output's
// own are weight 0, and adding 0.0 * value (value >= 0) leaves a sum exactly as it was, so every
// value is the per-pixel loop's, bit for bit.
template <typename In>
void ResampleRow(const Kernel& k, const In* in, int out_size, double* out) {
  const int taps = k.max_taps;
  int x = 0;
  if (!k.window_first.empty()) {
    for (; x + 4 <= out_size; x += 4) {
      const double* w = &k.window_weights[static_cast<size_t>(x) * taps];
      const In* in0 = in + k.window_first[x];
      const In* in1 = in + k.window_first[x + 1];
      const In* in2 = in + k.window_first[x + 2];
      const In* in3 = in + k.window_first[x + 3];
      double v0 = 0, v1 = 0, v2 = 0, v3 = 0;
      for (int t = 0; t < taps; ++t) {
        v0 += w[t] * in0[t];
        v1 += w[taps + t] * in1[t];
        v2 += w[2 * taps + t] * in2[t];
        v3 += w[3 * taps + t] * in3[t];
      }
      out[x] = v0;
      out[x + 1] = v1;
      out[x + 2] = v2;
      out[x + 3] = v3;
    }
  }
  for (; x < out_size; ++x) {
    const double* w = &k.weights[static_cast<size_t>(x) * taps];
    const In* from = in + k.first[x];
    double v = 0;
    for (int t = 0; t < k.count[x]; ++t) v += w[t] * from[t];
    out[x] = v;
  }
}

absl::Status BadMask(std::string_view why) {
  return absl::InvalidArgumentError(absl::StrFormat("mask: %s", std::string(why)));
}

// One 8-bit channel: `height` rows of `width` values, row y at pixels + y * stride. `pixels`
// points into `storage` or into the thread's scanline buffer (valid until the thread decodes
// the next mask).
struct Plane {
  int width = 0;
  int height = 0;
  size_t stride = 0;
  const uint8_t* pixels = nullptr;
  std::vector<uint8_t> storage;
};

// Largest image data (bytes, scanlines with their filter bytes) decoded into the thread's reused
// buffer; a larger mask gets a buffer of its own, so one odd mask does not pin memory for good.
constexpr uint64_t kMaxReusedScanlineBytes = 1 << 20;

// An 8-bit grey PNG without anything that changes its values (png_scan.h): inflated in one go
// into a buffer by libdeflate (every critical chunk's CRC, the zlib stream's adler32, the data's
// size and every filter type checked), then unfiltered in place. Not interlaced, the rows are read where they lie
// (between filter bytes); Adam7's passes are unfiltered and scattered into a plane.
absl::StatusOr<Plane> DecodeGrey8(std::string_view png, const internal::PngHeader& header) {
  const int width = static_cast<int>(header.width);
  const int height = static_cast<int>(header.height);
  const uint64_t data_bytes = header.ImageDataBytes();
  thread_local std::vector<uint8_t> reused;
  std::vector<uint8_t> own;
  std::vector<uint8_t>& raw = data_bytes <= kMaxReusedScanlineBytes ? reused : own;
  if (raw.size() < data_bytes) raw.resize(data_bytes);
  if (absl::Status s = internal::ScanPngImageData(png, header, raw.data(), data_bytes);
      !s.ok()) {
    return BadMask(absl::StrFormat("PNG is corrupt or truncated (%s)", std::string(s.message())));
  }
  Plane plane{.width = width, .height = height};
  if (!header.interlaced) {
    const size_t row_size = static_cast<size_t>(width) + 1;
    for (int y = 0; y < height; ++y) {
      uint8_t* row = raw.data() + y * row_size;
      internal::UnfilterRow(row[0], row + 1, y > 0 ? row + 1 - row_size : nullptr, width, 1);
    }
    plane.stride = row_size;
    plane.pixels = raw.data() + 1;
    if (&raw == &own) {
      plane.storage = std::move(own);
      plane.pixels = plane.storage.data() + 1;
    }
    return plane;
  }
  plane.storage.resize(static_cast<size_t>(width) * height);
  plane.stride = width;
  size_t at = 0;
  for (int p = 0; p < 7; ++p) {
    const internal::PngPass pass = internal::Adam7Pass(header.width, header.height, p);
    if (pass.width == 0 || pass.height == 0) continue;
    const size_t row_size = static_cast<size_t>(pass.width) + 1;
    for (uint32_t j = 0; j < pass.height; ++j) {
      uint8_t* row = raw.data() + at + j * row_size;
      internal::UnfilterRow(row[0], row + 1, j > 0 ? row + 1 - row_size : nullptr, pass.width, 1);
      uint8_t* out = plane.storage.data() + static_cast<size_t>(pass.y0 + j * pass.dy) * width;
      for (uint32_t i = 0; i < pass.width; ++i) out[pass.x0 + i * pass.dx] = row[1 + i];
    }
    at += pass.height * row_size;
  }
  plane.pixels = plane.storage.data();
  return plane;
}

// Decodes the PNG's first band as 8-bit values: directly for an 8-bit grey PNG without anything
// that changes its values (what Gemini sends; a libvips pipeline costs several times more for a
// 256x256 mask), with libvips for every other kind (and for a header png_scan refuses: libvips
// then reports its own error).
absl::StatusOr<Plane> DecodeFirstBand(std::string_view png) {
  absl::StatusOr<internal::PngHeader> header = internal::ReadPngHeader(png);
  if (header.ok() && header->bit_depth == 8 && header->colour_type == 0 && !header->has_trns &&
      !header->has_iccp && !header->has_non_srgb_gamma) {
    if (static_cast<int64_t>(header->width) * header->height > kMaxMaskPngPixels) {
      return BadMask(absl::StrFormat("PNG is %dx%d pixels; the limit is %d", header->width,
                                     header->height, kMaxMaskPngPixels));
    }
    return DecodeGrey8(png, *header);
  }
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
  Plane plane{.width = width, .height = height, .stride = static_cast<size_t>(width)};
  plane.storage = *std::move(pixels);
  plane.pixels = plane.storage.data();
  return plane;
}

// One deflate state per thread, reset for each mask: zlib's ~256 KiB of state is not allocated,
// zeroed and given back to the system for every mask.
z_stream* ThreadDeflater() {
  struct Deflater {
    z_stream stream{};
    bool ok = false;
    Deflater() {
      ok = deflateInit2(&stream, Z_BEST_SPEED, Z_DEFLATED, /*windowBits=*/15, /*memLevel=*/8,
                        Z_DEFAULT_STRATEGY) == Z_OK;
    }
    ~Deflater() {
      if (ok) deflateEnd(&stream);
    }
  };
  thread_local Deflater deflater;
  return deflater.ok ? &deflater.stream : nullptr;
}

}  // namespace

absl::StatusOr<BinaryMask> MaskFromPng(std::string_view png, int box_width, int box_height,
                                       double threshold) {
  BinaryMask mask;
  if (absl::Status s = MaskFromPng(png, box_width, box_height, threshold, mask); !s.ok()) return s;
  return mask;
}

absl::Status MaskFromPng(std::string_view png, int box_width, int box_height, double threshold,
                         BinaryMask& mask) {
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

  // Separable resampling, in the order that costs less: the vertical pass runs along rows (it
  // vectorises), the horizontal one gathers taps per output pixel, so weigh the horizontal work
  // more. Both orders give the same mask up to floating-point rounding far below the threshold's
  // epsilon. Neither intermediate may exceed kMaxIntermediateValues.
  const int64_t rows_first = static_cast<int64_t>(box_height) * src_width;  // vertical first
  const int64_t cols_first = static_cast<int64_t>(src_height) * box_width;  // horizontal first
  if (std::min(rows_first, cols_first) > kMaxIntermediateValues) {
    return BadMask(absl::StrFormat("cannot resize a %dx%d PNG to %dx%d", src_width, src_height,
                                   box_width, box_height));
  }
  const Kernel kx = MakeKernel(src_width, box_width);
  const Kernel ky = MakeKernel(src_height, box_height);
  constexpr int64_t kGatherCost = 4;  // one horizontal tap against one vertical (vector) tap
  const int64_t out_pixels = static_cast<int64_t>(box_width) * box_height;
  const int64_t cost_cols_first = cols_first * kx.max_taps * kGatherCost + out_pixels * ky.max_taps;
  const int64_t cost_rows_first = rows_first * ky.max_taps + out_pixels * kx.max_taps * kGatherCost;
  const bool horizontal_first =
      rows_first > kMaxIntermediateValues ||
      (cols_first <= kMaxIntermediateValues && cost_cols_first <= cost_rows_first);
  const double cut = threshold * 255.0 + kThresholdEpsilon;

  mask.width = box_width;
  mask.height = box_height;
  mask.data.resize(static_cast<size_t>(box_width) * box_height);  // every value written below
  const uint8_t* s = src->pixels;
  const size_t stride = src->stride;

  // The intermediate: the thread's scratch buffer (no allocation, page faults or zeroing per
  // mask; every value is written before it is read), or one of its own when it is too large to
  // keep.
  thread_local std::vector<double> scratch;
  std::vector<double> own;
  const size_t tmp_values = static_cast<size_t>(horizontal_first ? cols_first : rows_first);
  std::vector<double>& tmp_storage = tmp_values <= kMaxScratchValues ? scratch : own;
  if (tmp_storage.size() < tmp_values) tmp_storage.resize(tmp_values);
  double* const tmp = tmp_storage.data();

  if (horizontal_first) {
    // tmp: src_height rows x box_width columns.
    for (int y = 0; y < src_height; ++y) {
      ResampleRow(kx, s + static_cast<size_t>(y) * stride, box_width,
                  &tmp[static_cast<size_t>(y) * box_width]);
    }
    // Whole rows at a time (the inner loop runs along a row, not down a column); each value is
    // the same sum in the same order as a per-pixel loop would compute.
    std::vector<double> row_sum(static_cast<size_t>(box_width));
    for (int y = 0; y < box_height; ++y) {
      const double* w = &ky.weights[static_cast<size_t>(y) * ky.max_taps];
      std::fill(row_sum.begin(), row_sum.end(), 0.0);
      for (int t = 0; t < ky.count[y]; ++t) {
        const double* in = &tmp[static_cast<size_t>(ky.first[y] + t) * box_width];
        for (int x = 0; x < box_width; ++x) row_sum[x] += w[t] * in[x];
      }
      uint8_t* out = &mask.data[static_cast<size_t>(y) * box_width];
      for (int x = 0; x < box_width; ++x) out[x] = row_sum[x] > cut ? 1 : 0;
    }
  } else {
    // tmp: box_height rows x src_width columns. The first tap is stored, not added to 0.0: the
    // same value (0.0 + v is v for v >= 0).
    for (int y = 0; y < box_height; ++y) {
      const double* w = &ky.weights[static_cast<size_t>(y) * ky.max_taps];
      double* out = &tmp[static_cast<size_t>(y) * src_width];
      if (ky.count[y] == 0) std::fill(out, out + src_width, 0.0);
      for (int t = 0; t < ky.count[y]; ++t) {
        const uint8_t* in = s + static_cast<size_t>(ky.first[y] + t) * stride;
        if (t == 0) {
          for (int x = 0; x < src_width; ++x) out[x] = w[0] * in[x];
        } else {
          for (int x = 0; x < src_width; ++x) out[x] += w[t] * in[x];
        }
      }
    }
    std::vector<double> row_sum(static_cast<size_t>(box_width));
    for (int y = 0; y < box_height; ++y) {
      ResampleRow(kx, &tmp[static_cast<size_t>(y) * src_width], box_width, row_sum.data());
      uint8_t* out = &mask.data[static_cast<size_t>(y) * box_width];
      for (int x = 0; x < box_width; ++x) out[x] = row_sum[x] > cut ? 1 : 0;
    }
  }
  return absl::OkStatus();
}

std::string EncodeMaskPng(const BinaryMask& mask) {
  if (mask.width < 1 || mask.height < 1 ||
      mask.data.size() != static_cast<size_t>(mask.width) * mask.height) {
    return "";
  }
  // The image data: each row is filter type 0 (None) and its bytes, 255 where set, deflated at
  // zlib's fastest level on this thread (a libvips saver started its threadpool for every mask,
  // at level 6). Level 1 encodes a 256x256 mask 4x faster than level 6 at about twice the size
  // (1.4 vs 0.8 KB); zlib's run-length strategy is smaller still but its distance-1 matches
  // inflate 4x slower for whoever reads the mask.
  // The scanlines and the deflated data go through buffers the thread keeps (no allocation or
  // zeroing per mask; the largest masks get their own), then the PNG is written at its size.
  const size_t row_bytes = static_cast<size_t>(mask.width) + 1;
  const size_t raw_size = row_bytes * mask.height;
  z_stream* zs = ThreadDeflater();
  if (zs == nullptr || deflateReset(zs) != Z_OK) return "";
  const size_t bound = deflateBound(zs, raw_size);
  thread_local std::vector<uint8_t> kept_raw, kept_idat;
  std::vector<uint8_t> own_raw, own_idat;
  const bool keep = raw_size <= kMaxKeptEncodeBytes;
  std::vector<uint8_t>& raw = keep ? kept_raw : own_raw;
  std::vector<uint8_t>& idat = keep ? kept_idat : own_idat;
  if (raw.size() < raw_size) raw.resize(raw_size);
  if (idat.size() < bound) idat.resize(bound);
  // The size in locals: a store through uint8_t* may alias `mask`, so a loop bounded by
  // mask.width would reread it after every byte and not vectorise.
  const int width = mask.width;
  const int height = mask.height;
  const uint8_t* pixels = mask.data.data();
  for (int y = 0; y < height; ++y) {
    uint8_t* row = &raw[static_cast<size_t>(y) * row_bytes];
    row[0] = 0;
    const uint8_t* in = pixels + static_cast<size_t>(y) * width;
    for (int x = 0; x < width; ++x) row[x + 1] = in[x] != 0 ? 255 : 0;
  }
  zs->next_in = raw.data();
  zs->avail_in = static_cast<uInt>(raw_size);
  zs->next_out = idat.data();
  zs->avail_out = static_cast<uInt>(bound);
  const int rc = deflate(zs, Z_FINISH);
  const size_t idat_size = zs->total_out;
  zs->next_in = nullptr;
  zs->next_out = nullptr;
  if (rc != Z_STREAM_END) return "";

  std::string out;
  out.reserve(8 + 25 + 12 + idat_size + 12);
  out.append("\x89PNG\r\n\x1a\n", 8);
  auto put32 = [&out](uint32_t v) {
    for (int shift : {24, 16, 8, 0}) out.push_back(static_cast<char>((v >> shift) & 0xff));
  };
  auto chunk = [&out, &put32](std::string_view type, std::string_view data) {
    put32(static_cast<uint32_t>(data.size()));
    const size_t start = out.size();
    out.append(type);
    out.append(data);
    put32(static_cast<uint32_t>(
        crc32(0, reinterpret_cast<const Bytef*>(out.data() + start), out.size() - start)));
  };
  std::string ihdr;
  for (uint32_t v : {static_cast<uint32_t>(mask.width), static_cast<uint32_t>(mask.height)}) {
    for (int shift : {24, 16, 8, 0}) ihdr.push_back(static_cast<char>((v >> shift) & 0xff));
  }
  // Depth 8, greyscale, deflate, adaptive filtering (method 0), no interlace.
  ihdr += std::string_view("\x08\x00\x00\x00\x00", 5);
  chunk("IHDR", ihdr);
  chunk("IDAT", std::string_view(reinterpret_cast<const char*>(idat.data()), idat_size));
  chunk("IEND", "");
  return out;
}

}  // namespace vision_gateway::image
