#include "service/image/coco_rle.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace vision_gateway::image {
namespace {

constexpr uint64_t kMaxPixels = std::numeric_limits<uint32_t>::max();
// Largest visible box part (pixels) whose transpose a thread keeps a buffer for: 1000x1000.
constexpr size_t kMaxKeptTransposeBytes = 1000 * 1000;
// A 32-bit count difference needs at most 7 groups of 5 bits; allow no more.
constexpr int kMaxGroups = 7;

bool ValidImageSize(int height, int width) {
  return height > 0 && width > 0 && static_cast<uint64_t>(height) * width <= kMaxPixels;
}

// Accumulates runs of 0s and 1s, starting with 0s.
class RunBuilder {
 public:
  void Add(bool set, uint64_t n) {
    if (n == 0) return;
    if (set != set_) {
      counts_.push_back(static_cast<uint32_t>(run_));
      run_ = 0;
      set_ = set;
    }
    run_ += n;
  }

  std::vector<uint32_t> Finish() && {
    counts_.push_back(static_cast<uint32_t>(run_));
    return std::move(counts_);
  }

 private:
  std::vector<uint32_t> counts_;
  bool set_ = false;
  uint64_t run_ = 0;
};

}  // namespace

std::vector<uint32_t> RleCountsFromColumnMajor(std::span<const uint8_t> pixels, int height,
                                               int width) {
  if (!ValidImageSize(height, width) ||
      pixels.size() != static_cast<size_t>(height) * static_cast<size_t>(width)) {
    return {};
  }
  RunBuilder runs;
  for (uint8_t p : pixels) runs.Add(p != 0, 1);
  return std::move(runs).Finish();
}

std::vector<uint32_t> RleCountsFromBoxMask(const BinaryMask& box_mask, int box_x, int box_y,
                                           int image_width, int image_height) {
  if (!ValidImageSize(image_height, image_width) || box_mask.width < 0 || box_mask.height < 0 ||
      box_mask.data.size() != static_cast<size_t>(box_mask.width) * box_mask.height) {
    return {};
  }
  const uint64_t h = static_cast<uint64_t>(image_height);
  // The part of the box inside the image, in image coordinates.
  const int64_t x0 = std::clamp<int64_t>(box_x, 0, image_width);
  const int64_t x1 =
      std::clamp<int64_t>(static_cast<int64_t>(box_x) + box_mask.width, x0, image_width);
  const int64_t y0 = std::clamp<int64_t>(box_y, 0, image_height);
  const int64_t y1 =
      std::clamp<int64_t>(static_cast<int64_t>(box_y) + box_mask.height, y0, image_height);
  // The visible part of the box, transposed (each column's pixels one after another, 0 or 1) in
  // blocks that stay in cache, into a buffer the thread keeps (masks of up to 1000x1000 pixels);
  // then each column's runs are found with memchr instead of a strided walk pixel by pixel.
  const size_t rows = static_cast<size_t>(y1 - y0);
  const size_t cols = static_cast<size_t>(x1 - x0);
  thread_local std::vector<uint8_t> kept;
  std::vector<uint8_t> own;
  std::vector<uint8_t>& columns = rows * cols <= kMaxKeptTransposeBytes ? kept : own;
  if (columns.size() < rows * cols) columns.resize(rows * cols);
  const size_t stride = static_cast<size_t>(box_mask.width);
  const uint8_t* visible = rows * cols == 0 ? nullptr
                           : box_mask.data.data() + static_cast<size_t>(y0 - box_y) * stride +
                                 static_cast<size_t>(x0 - box_x);
  constexpr size_t kBlock = 32;
  for (size_t r0 = 0; r0 < rows && cols > 0; r0 += kBlock) {
    const size_t r1 = std::min(rows, r0 + kBlock);
    for (size_t c0 = 0; c0 < cols; c0 += kBlock) {
      const size_t c1 = std::min(cols, c0 + kBlock);
      for (size_t r = r0; r < r1; ++r) {
        const uint8_t* in = visible + r * stride;
        for (size_t c = c0; c < c1; ++c) columns[c * rows + r] = in[c] != 0 ? 1 : 0;
      }
    }
  }
  RunBuilder runs;
  runs.Add(false, static_cast<uint64_t>(x0) * h);  // whole columns left of the box
  for (size_t c = 0; c < cols; ++c) {
    runs.Add(false, static_cast<uint64_t>(y0));  // above the box
    const uint8_t* column = columns.data() + c * rows;
    for (size_t y = 0; y < rows;) {
      const uint8_t set = column[y];
      const void* change = std::memchr(column + y, set ^ 1, rows - y);
      const size_t end = change != nullptr ? static_cast<size_t>(
                                                 static_cast<const uint8_t*>(change) - column)
                                           : rows;
      runs.Add(set != 0, end - y);
      y = end;
    }
    runs.Add(false, h - static_cast<uint64_t>(y1));  // below the box
  }
  runs.Add(false, static_cast<uint64_t>(image_width - x1) * h);  // columns right of the box
  return std::move(runs).Finish();
}

std::string CompressRleCounts(std::span<const uint32_t> counts) {
  std::string out;
  out.reserve(counts.size() * 2);
  for (size_t i = 0; i < counts.size(); ++i) {
    int64_t x = counts[i];
    if (i > 2) x -= counts[i - 2];  // pycocotools' delta starts at the fourth count
    bool more = true;
    while (more) {
      int64_t c = x & 0x1f;
      x >>= 5;  // arithmetic shift (C++20): negative values keep their sign
      more = (c & 0x10) != 0 ? x != -1 : x != 0;
      if (more) c |= 0x20;
      out.push_back(static_cast<char>(c + 48));
    }
  }
  return out;
}

absl::StatusOr<std::vector<uint32_t>> DecompressRleCounts(std::string_view compressed) {
  std::vector<uint32_t> counts;
  size_t p = 0;
  while (p < compressed.size()) {
    int64_t x = 0;
    int k = 0;
    bool more = true;
    while (more) {
      if (p >= compressed.size()) {
        return absl::InvalidArgumentError("RLE string ends inside a count");
      }
      if (k >= kMaxGroups) return absl::InvalidArgumentError("RLE count is too long");
      const int c = static_cast<unsigned char>(compressed[p]) - 48;
      if (c < 0 || c > 0x3f) {
        return absl::InvalidArgumentError("RLE string has a character outside '0'..'o'");
      }
      x |= static_cast<int64_t>(c & 0x1f) << (5 * k);
      more = (c & 0x20) != 0;
      ++p;
      ++k;
      if (!more && (c & 0x10) != 0) x |= -(int64_t{1} << (5 * k));  // sign-extend
    }
    if (counts.size() > 2) x += counts[counts.size() - 2];
    if (x < 0 || x > static_cast<int64_t>(std::numeric_limits<uint32_t>::max())) {
      return absl::InvalidArgumentError("RLE count is out of range");
    }
    counts.push_back(static_cast<uint32_t>(x));
  }
  return counts;
}

std::string EncodeCocoRle(std::span<const uint8_t> column_major, int height, int width) {
  return CompressRleCounts(RleCountsFromColumnMajor(column_major, height, width));
}

std::string EncodeCocoRle(const BinaryMask& box_mask, int box_x, int box_y, int image_width,
                          int image_height) {
  return CompressRleCounts(RleCountsFromBoxMask(box_mask, box_x, box_y, image_width, image_height));
}

absl::StatusOr<std::vector<uint8_t>> DecodeCocoRle(std::string_view compressed, int height,
                                                   int width) {
  if (!ValidImageSize(height, width)) {
    return absl::InvalidArgumentError("RLE image size is out of range");
  }
  absl::StatusOr<std::vector<uint32_t>> counts = DecompressRleCounts(compressed);
  if (!counts.ok()) return counts.status();
  const uint64_t total = static_cast<uint64_t>(height) * width;
  uint64_t sum = 0;
  for (uint32_t c : *counts) sum += c;
  if (sum != total) {
    return absl::InvalidArgumentError("RLE runs do not add up to height * width");
  }
  std::vector<uint8_t> pixels(total, 0);
  size_t at = 0;
  for (size_t i = 0; i < counts->size(); ++i) {
    const uint32_t n = (*counts)[i];
    if (i % 2 == 1) std::fill_n(pixels.begin() + at, n, uint8_t{1});
    at += n;
  }
  return pixels;
}

int64_t RleArea(std::span<const uint32_t> counts) {
  int64_t area = 0;
  for (size_t i = 1; i < counts.size(); i += 2) area += counts[i];
  return area;
}

}  // namespace vision_gateway::image
