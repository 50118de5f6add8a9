#include "service/image/mask_codec.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <png.h>
#include <zlib.h>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "service/image/vips_internal.h"

namespace vision_gateway::image {
namespace {

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

uint32_t ReadBigEndian32(std::string_view bytes) {
  return static_cast<uint32_t>(static_cast<unsigned char>(bytes[0])) << 24 |
         static_cast<uint32_t>(static_cast<unsigned char>(bytes[1])) << 16 |
         static_cast<uint32_t>(static_cast<unsigned char>(bytes[2])) << 8 |
         static_cast<uint32_t>(static_cast<unsigned char>(bytes[3]));
}

// True for the masks Gemini sends: 8-bit greyscale (IHDR colour type 0, depth 8) with nothing
// before the image data that would make a decoder change the values: no tRNS (an alpha band), no
// gAMA other than sRGB's, no iCCP. Only the chunk headers before the first IDAT are read.
bool IsPlainGrey8(std::string_view png) {
  constexpr size_t kSignature = 8;
  constexpr uint32_t kSrgbGamma = 45455;  // gAMA of sRGB, 1/2.2 * 100000
  size_t at = kSignature;
  bool grey8 = false;
  while (at + 8 <= png.size()) {
    const uint32_t length = ReadBigEndian32(png.substr(at));
    const std::string_view type = png.substr(at + 4, 4);
    if (length > png.size() - at - 8) return false;  // let the decoder report it
    const std::string_view data = png.substr(at + 8, length);
    if (at == kSignature && type != "IHDR") return false;
    if (type == "IHDR") {
      // width(4) height(4) depth(1) colour type(1) ...
      grey8 = length >= 10 && data[8] == 8 && data[9] == 0;
      if (!grey8) return false;
    } else if (type == "IDAT") {
      return grey8;
    } else if (type == "tRNS" || type == "iCCP") {
      return false;
    } else if (type == "gAMA") {
      if (length != 4 || ReadBigEndian32(data) != kSrgbGamma) return false;
    }
    at += 8 + static_cast<size_t>(length) + 4;  // header, data, CRC
  }
  return false;
}

// libpng reads from memory through this; errors are copied to `error` (longjmp-safe storage).
struct PngReader {
  const char* data;
  size_t size;
  size_t at;
  char* error;
  size_t error_size;
};

void ReadFromMemory(png_structp png, png_bytep out, size_t length) {
  auto* reader = static_cast<PngReader*>(png_get_io_ptr(png));
  if (reader->size - reader->at < length) png_error(png, "PNG ends early");
  std::memcpy(out, reader->data + reader->at, length);
  reader->at += length;
}

void StoreError(png_structp png, png_const_charp message) {
  auto* reader = static_cast<PngReader*>(png_get_error_ptr(png));
  std::snprintf(reader->error, reader->error_size, "%s", message);
  png_longjmp(png, 1);
}

void IgnoreWarning(png_structp, png_const_charp) {}

// Decodes the rows of an 8-bit grey PNG into `out` (width * height bytes) with libpng and no
// transformation (every row inflated, unfiltered and CRC-checked; Adam7 passes combined). libpng
// reports errors by longjmp, so this function holds nothing with a destructor; the message is
// copied to reader->error. Returns false on any error.
bool ReadGrey8Rows(PngReader* reader, uint8_t* out, int width, int height) {
  png_structp png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, reader, StoreError, IgnoreWarning);
  if (png == nullptr) return false;
  png_infop info = png_create_info_struct(png);
  if (info == nullptr || setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, info != nullptr ? &info : nullptr, nullptr);
    return false;
  }
  png_set_read_fn(png, reader, ReadFromMemory);
  png_read_info(png, info);
  if (png_get_image_width(png, info) != static_cast<png_uint_32>(width) ||
      png_get_image_height(png, info) != static_cast<png_uint_32>(height) ||
      png_get_bit_depth(png, info) != 8 || png_get_color_type(png, info) != PNG_COLOR_TYPE_GRAY) {
    png_error(png, "unexpected PNG header");
  }
  const int passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  for (int pass = 0; pass < passes; ++pass) {
    for (int y = 0; y < height; ++y) {
      png_read_row(png, out + static_cast<size_t>(y) * width, nullptr);
    }
  }
  png_read_end(png, nullptr);  // the CRCs and chunks after the image data, to IEND
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

// A plain 8-bit grey PNG (IsPlainGrey8) read with libpng on this thread.
absl::StatusOr<Plane> DecodePlainGrey8(std::string_view png) {
  // IHDR is the first chunk (IsPlainGrey8 found it): width and height follow its type.
  const int width = static_cast<int>(ReadBigEndian32(png.substr(16)));
  const int height = static_cast<int>(ReadBigEndian32(png.substr(20)));
  if (width < 1 || height < 1) return BadMask("PNG is corrupt or truncated (bad IHDR size)");
  if (static_cast<int64_t>(width) * height > kMaxMaskPngPixels) {
    return BadMask(
        absl::StrFormat("PNG is %dx%d pixels; the limit is %d", width, height, kMaxMaskPngPixels));
  }
  Plane plane{width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height)};
  char error[128] = "no detail from the decoder";
  PngReader reader{png.data(), png.size(), 0, error, sizeof(error)};
  if (!ReadGrey8Rows(&reader, plane.pixels.data(), width, height)) {
    return BadMask(absl::StrFormat("PNG is corrupt or truncated (%s)", error));
  }
  return plane;
}

// Decodes the PNG's first band as 8-bit values: libpng directly for a plain 8-bit grey PNG (what
// Gemini sends; a libvips pipeline costs several times more for a 256x256 mask), libvips for every
// other kind.
absl::StatusOr<Plane> DecodeFirstBand(std::string_view png) {
  if (IsPlainGrey8(png)) return DecodePlainGrey8(png);
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

  BinaryMask mask;
  mask.width = box_width;
  mask.height = box_height;
  mask.data.assign(static_cast<size_t>(box_width) * box_height, 0);
  const uint8_t* s = src->pixels.data();

  if (horizontal_first) {
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
  // The image data: each row is filter type 0 (None) and its bytes, 255 where set, deflated at
  // zlib's fastest level on this thread (a libvips saver started its threadpool for every mask,
  // at level 6). Level 1 encodes a 256x256 mask 4x faster than level 6 at about twice the size
  // (1.4 vs 0.8 KB); zlib's run-length strategy is smaller still but its distance-1 matches
  // inflate 4x slower for whoever reads the mask.
  const size_t row_bytes = static_cast<size_t>(mask.width) + 1;
  std::vector<uint8_t> raw(row_bytes * mask.height);
  for (int y = 0; y < mask.height; ++y) {
    uint8_t* row = &raw[static_cast<size_t>(y) * row_bytes];
    row[0] = 0;
    const uint8_t* in = &mask.data[static_cast<size_t>(y) * mask.width];
    for (int x = 0; x < mask.width; ++x) row[x + 1] = in[x] != 0 ? 255 : 0;
  }
  z_stream* zs = ThreadDeflater();
  if (zs == nullptr || deflateReset(zs) != Z_OK) return "";
  std::string idat(deflateBound(zs, raw.size()), '\0');
  zs->next_in = raw.data();
  zs->avail_in = static_cast<uInt>(raw.size());
  zs->next_out = reinterpret_cast<Bytef*>(idat.data());
  zs->avail_out = static_cast<uInt>(idat.size());
  const int rc = deflate(zs, Z_FINISH);
  idat.resize(zs->total_out);
  zs->next_in = nullptr;
  zs->next_out = nullptr;
  if (rc != Z_STREAM_END) return "";

  std::string out("\x89PNG\r\n\x1a\n", 8);
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
  chunk("IDAT", idat);
  chunk("IEND", "");
  return out;
}

}  // namespace vision_gateway::image
