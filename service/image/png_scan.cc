#include "service/image/png_scan.h"

#include <libdeflate.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/types/span.h"

namespace vision_gateway::image::internal {
namespace {

constexpr uint32_t kMaxPngUint = 0x7fffffff;  // PNG's largest length, width or height
constexpr uint32_t kSrgbGamma = 45455;        // gAMA of sRGB, 1/2.2 * 100000

// Adam7: where each pass starts and how far apart its pixels are, across and down.
constexpr std::array<uint32_t, 7> kPassX0 = {0, 4, 0, 2, 0, 1, 0};
constexpr std::array<uint32_t, 7> kPassDx = {8, 8, 4, 4, 2, 2, 1};
constexpr std::array<uint32_t, 7> kPassY0 = {0, 0, 4, 0, 2, 0, 1};
constexpr std::array<uint32_t, 7> kPassDy = {8, 8, 8, 4, 4, 2, 2};

uint32_t PassExtent(uint32_t size, uint32_t start, uint32_t step) {
  return size > start ? (size - start + step - 1) / step : 0;
}

absl::Status Corrupt(std::string_view why) { return absl::InvalidArgumentError(std::string(why)); }

uint32_t ReadBigEndian32(const char* p) {
  return static_cast<uint32_t>(static_cast<unsigned char>(p[0])) << 24 |
         static_cast<uint32_t>(static_cast<unsigned char>(p[1])) << 16 |
         static_cast<uint32_t>(static_cast<unsigned char>(p[2])) << 8 |
         static_cast<uint32_t>(static_cast<unsigned char>(p[3]));
}

bool IsCritical(std::string_view type) { return (type[0] & 0x20) == 0; }

struct Chunk {
  std::string_view type;
  std::string_view data;
  size_t next = 0;  // offset of the following chunk
};

// The chunk at `at`: its length in bounds, its type four ASCII letters, and for a critical chunk
// its CRC (over type and data) right; an IDAT's CRC only with check_idat_crc.
absl::Status ReadChunk(std::string_view png, size_t at, Chunk& chunk, bool check_idat_crc = true) {
  if (png.size() < at || png.size() - at < 12) return Corrupt("PNG ends early");
  const uint32_t length = ReadBigEndian32(png.data() + at);
  if (length > kMaxPngUint) return Corrupt("bad chunk length");
  if (png.size() - at - 12 < length) return Corrupt("PNG ends early");
  chunk.type = png.substr(at + 4, 4);
  for (char c : chunk.type) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) return Corrupt("bad chunk type");
  }
  chunk.data = png.substr(at + 8, length);
  chunk.next = at + 12 + length;
  if (IsCritical(chunk.type) && (check_idat_crc || chunk.type != "IDAT")) {
    // libdeflate's CRC-32 (carry-less multiplication) is several times faster than zlib's.
    const uint32_t crc = libdeflate_crc32(0, png.data() + at + 4, length + 4);
    if (crc != ReadBigEndian32(png.data() + at + 8 + length)) {
      return Corrupt("CRC error in " + std::string(chunk.type));
    }
  }
  return absl::OkStatus();
}

bool ValidDepth(int colour_type, int depth) {
  switch (colour_type) {
    case 0:
      return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
    case 3:
      return depth == 1 || depth == 2 || depth == 4 || depth == 8;
    case 2:
    case 4:
    case 6:
      return depth == 8 || depth == 16;
    default:
      return false;
  }
}

// One inflate state per thread, reset for each image: zlib's state and its 32 KiB window are not
// allocated and given back for every PNG.
z_stream* ThreadInflater() {
  struct Inflater {
    z_stream stream{};
    bool ok = false;
    Inflater() { ok = inflateInit2(&stream, /*windowBits=*/15) == Z_OK; }
    ~Inflater() {
      if (ok) inflateEnd(&stream);
    }
  };
  thread_local Inflater inflater;
  return inflater.ok ? &inflater.stream : nullptr;
}

// Where the next scanline's filter byte is in the inflated image data, pass after pass.
class FilterCursor {
 public:
  explicit FilterCursor(const PngHeader& header) : header_(header) {
    pass_ = header.interlaced ? -1 : 6;  // not interlaced: one "pass" of every pixel
    if (header.interlaced) {
      NextPass();
    } else {
      rows_left_ = header.height;
      row_size_ = 1 + header.RowBytes(header.width);
    }
  }

  // Checks the filter bytes that fall inside [offset, offset + size) of the image data.
  absl::Status Check(uint64_t offset, const uint8_t* bytes, size_t size) {
    while (rows_left_ > 0 && next_ < offset + size) {
      if (bytes[next_ - offset] > 4) return Corrupt("bad filter type");
      next_ += row_size_;
      if (--rows_left_ == 0 && header_.interlaced) NextPass();
    }
    return absl::OkStatus();
  }

 private:
  void NextPass() {
    while (++pass_ < 7) {
      const uint32_t w = PassExtent(header_.width, kPassX0[pass_], kPassDx[pass_]);
      const uint32_t h = PassExtent(header_.height, kPassY0[pass_], kPassDy[pass_]);
      if (w > 0 && h > 0) {
        rows_left_ = h;
        row_size_ = 1 + header_.RowBytes(w);
        return;
      }
    }
    rows_left_ = 0;
  }

  const PngHeader& header_;
  int pass_ = 0;
  uint64_t rows_left_ = 0;
  uint64_t row_size_ = 0;
  uint64_t next_ = 0;  // offset of the next filter byte
};

// The image data inflated in one call with libdeflate (several times faster than zlib's inflate,
// and its adler32 is vectorised): into `out`, which must take exactly `expected` bytes, and every
// compressed byte used.
absl::Status InflateWhole(absl::Span<const std::string_view> idats, size_t compressed,
                          uint8_t* out, uint64_t expected) {
  struct Decompressor {  // one per thread, freed when the thread ends
    libdeflate_decompressor* d = libdeflate_alloc_decompressor();
    ~Decompressor() {
      if (d != nullptr) libdeflate_free_decompressor(d);
    }
  };
  thread_local Decompressor owned;
  libdeflate_decompressor* const decompressor = owned.d;
  if (decompressor == nullptr) return absl::InternalError("libdeflate: out of memory");
  std::string_view in = idats.front();
  std::vector<uint8_t> joined;
  if (idats.size() > 1) {  // libdeflate takes the stream in one piece
    joined.reserve(compressed);
    for (std::string_view part : idats) joined.insert(joined.end(), part.begin(), part.end());
    in = std::string_view(reinterpret_cast<const char*>(joined.data()), joined.size());
  }
  size_t used = 0;
  switch (libdeflate_zlib_decompress_ex(decompressor, in.data(), in.size(), out, expected, &used,
                                        /*actual_out_nbytes_ret=*/nullptr)) {
    case LIBDEFLATE_SUCCESS:
      if (used != in.size()) return Corrupt("extra image data");
      return absl::OkStatus();
    case LIBDEFLATE_SHORT_OUTPUT:
      return Corrupt("not enough image data");
    case LIBDEFLATE_INSUFFICIENT_SPACE:
      return Corrupt("too much image data");
    default:  // LIBDEFLATE_BAD_DATA: a bad zlib header or deflate data, a wrong adler32, cut
      return Corrupt("bad or truncated image data");
  }
}

// The image data inflated with zlib into `buffer`, reused piece after piece (bounded memory for
// any size), each piece's filter bytes checked.
absl::Status InflatePieces(absl::Span<const std::string_view> idats, uint64_t expected,
                           uint8_t* buffer, size_t buffer_size, const PngHeader& header) {
  z_stream* zs = ThreadInflater();
  if (zs == nullptr || inflateReset(zs) != Z_OK) return absl::InternalError("zlib inflate");
  struct ClearPointers {  // the thread's stream keeps no pointer into this call's memory
    z_stream* zs;
    ~ClearPointers() {
      zs->next_in = nullptr;
      zs->next_out = nullptr;
      zs->avail_in = 0;
      zs->avail_out = 0;
    }
  } clear{zs};
  FilterCursor filters(header);
  uint64_t produced = 0;
  for (std::string_view part : idats) {
    zs->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(part.data()));
    zs->avail_in = static_cast<uInt>(part.size());
    while (true) {
      zs->next_out = buffer;
      zs->avail_out = static_cast<uInt>(std::min<size_t>(buffer_size, 1u << 30));
      const uInt offered = zs->avail_out;
      const int rc = inflate(zs, Z_NO_FLUSH);
      const size_t n = offered - zs->avail_out;
      if (n > 0) {
        if (n > expected - produced) return Corrupt("too much image data");
        if (absl::Status s = filters.Check(produced, buffer, n); !s.ok()) return s;
        produced += n;
      }
      if (rc == Z_STREAM_END) {
        if (produced != expected) return Corrupt("not enough image data");
        if (zs->avail_in > 0 || part.data() != idats.back().data()) {
          return Corrupt("extra image data");
        }
        return absl::OkStatus();
      }
      if (rc != Z_OK && rc != Z_BUF_ERROR) {
        return Corrupt(zs->msg != nullptr ? zs->msg : "bad image data");
      }
      // More output may be pending while the buffer was full; otherwise zlib wants input.
      if (zs->avail_out > 0 && (zs->avail_in == 0 || rc == Z_BUF_ERROR)) break;
    }
  }
  return Corrupt(produced < expected ? "not enough image data" : "image data ends early");
}

}  // namespace

absl::StatusOr<PngHeader> ReadPngHeader(std::string_view png) {
  if (!png.starts_with(kPngSignature)) return Corrupt("not a PNG signature");
  Chunk chunk;
  size_t at = kPngSignature.size();
  if (absl::Status s = ReadChunk(png, at, chunk); !s.ok()) return s;
  if (chunk.type != "IHDR" || chunk.data.size() != 13) return Corrupt("IHDR is not first");
  PngHeader h;
  const char* d = chunk.data.data();
  h.width = ReadBigEndian32(d);
  h.height = ReadBigEndian32(d + 4);
  h.bit_depth = static_cast<unsigned char>(d[8]);
  h.colour_type = static_cast<unsigned char>(d[9]);
  const int compression = static_cast<unsigned char>(d[10]);
  const int filter = static_cast<unsigned char>(d[11]);
  const int interlace = static_cast<unsigned char>(d[12]);
  if (h.width == 0 || h.height == 0 || h.width > kMaxPngUint || h.height > kMaxPngUint ||
      !ValidDepth(h.colour_type, h.bit_depth) || compression != 0 || filter != 0 ||
      interlace > 1) {
    return Corrupt("bad IHDR");
  }
  h.interlaced = interlace == 1;
  bool has_plte = false;
  for (at = chunk.next;; at = chunk.next) {
    // The first IDAT's CRC is checked with the image data.
    if (absl::Status s = ReadChunk(png, at, chunk, /*check_idat_crc=*/false); !s.ok()) return s;
    const std::string_view type = chunk.type;
    if (type == "IDAT") break;
    if (type == "PLTE") {
      if (h.colour_type == 3 &&
          (chunk.data.empty() || chunk.data.size() % 3 != 0 || chunk.data.size() > 3 * 256)) {
        return Corrupt("bad PLTE");
      }
      has_plte = true;
    } else if (type == "tRNS") {
      h.has_trns = true;
    } else if (type == "iCCP") {
      h.has_iccp = true;
    } else if (type == "eXIf") {
      h.has_exif = true;
    } else if (type == "gAMA") {
      h.has_non_srgb_gamma = chunk.data.size() != 4 || ReadBigEndian32(chunk.data.data()) != kSrgbGamma;
    } else if (IsCritical(type)) {
      return Corrupt(type == "IEND" ? "no image data" : "unexpected critical chunk");
    }
  }
  if (h.colour_type == 3 && !has_plte) return Corrupt("missing PLTE");
  h.image_data_offset = at;
  return h;
}

PngPass Adam7Pass(uint32_t width, uint32_t height, int pass) {
  return PngPass{.x0 = kPassX0[pass],
                 .y0 = kPassY0[pass],
                 .dx = kPassDx[pass],
                 .dy = kPassDy[pass],
                 .width = PassExtent(width, kPassX0[pass], kPassDx[pass]),
                 .height = PassExtent(height, kPassY0[pass], kPassDy[pass])};
}

int PngHeader::Channels() const {
  switch (colour_type) {
    case 2:
      return 3;
    case 4:
      return 2;
    case 6:
      return 4;
    default:
      return 1;
  }
}

uint64_t PngHeader::RowBytes(uint64_t pixels) const {
  return (pixels * static_cast<uint64_t>(bit_depth * Channels()) + 7) / 8;
}

uint64_t PngHeader::ImageDataBytes() const {
  if (!interlaced) return static_cast<uint64_t>(height) * (1 + RowBytes(width));
  uint64_t total = 0;
  for (int pass = 0; pass < 7; ++pass) {
    const uint32_t w = PassExtent(width, kPassX0[pass], kPassDx[pass]);
    const uint32_t h = PassExtent(height, kPassY0[pass], kPassDy[pass]);
    if (w > 0 && h > 0) total += static_cast<uint64_t>(h) * (1 + RowBytes(w));
  }
  return total;
}

absl::Status ScanPngImageData(std::string_view png, const PngHeader& header, uint8_t* buffer,
                              size_t buffer_size) {
  // The chunks first: the image data's IDATs (consecutive, CRCs checked), then the rest to IEND.
  absl::InlinedVector<std::string_view, 8> idats;
  size_t compressed = 0;
  bool data_over = false;  // a chunk other than IDAT followed the image data
  Chunk chunk;
  for (size_t at = header.image_data_offset;; at = chunk.next) {
    if (absl::Status s = ReadChunk(png, at, chunk); !s.ok()) return s;
    const std::string_view type = chunk.type;
    if (type == "IEND") break;
    if (type == "IDAT") {
      if (chunk.data.empty()) continue;
      if (data_over) return Corrupt("extra image data");
      idats.push_back(chunk.data);
      compressed += chunk.data.size();
      continue;
    }
    data_over = true;
    if (IsCritical(type)) return Corrupt("unexpected critical chunk after the image data");
  }
  if (idats.empty()) return Corrupt("no image data");

  const uint64_t expected = header.ImageDataBytes();
  absl::Status inflated = buffer_size >= expected
                              ? InflateWhole(idats, compressed, buffer, expected)
                              : InflatePieces(idats, expected, buffer, buffer_size, header);
  if (!inflated.ok()) return inflated;
  if (buffer_size >= expected) {
    FilterCursor filters(header);
    return filters.Check(0, buffer, expected);
  }
  return absl::OkStatus();
}

void UnfilterRow(int filter, uint8_t* row, const uint8_t* previous, size_t row_bytes,
                 size_t bpp) {
  switch (filter) {
    case 1:  // Sub
      for (size_t i = bpp; i < row_bytes; ++i) row[i] = static_cast<uint8_t>(row[i] + row[i - bpp]);
      break;
    case 2:  // Up
      if (previous == nullptr) break;
      for (size_t i = 0; i < row_bytes; ++i) row[i] = static_cast<uint8_t>(row[i] + previous[i]);
      break;
    case 3:  // Average
      for (size_t i = 0; i < row_bytes; ++i) {
        const unsigned left = i >= bpp ? row[i - bpp] : 0;
        const unsigned up = previous != nullptr ? previous[i] : 0;
        row[i] = static_cast<uint8_t>(row[i] + ((left + up) >> 1));
      }
      break;
    case 4:  // Paeth
      for (size_t i = 0; i < row_bytes; ++i) {
        const int a = i >= bpp ? row[i - bpp] : 0;
        const int b = previous != nullptr ? previous[i] : 0;
        const int c = i >= bpp && previous != nullptr ? previous[i - bpp] : 0;
        const int pa = std::abs(b - c);  // |p - a| with p = a + b - c
        const int pb = std::abs(a - c);
        const int pc = std::abs(a + b - 2 * c);
        const int predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
        row[i] = static_cast<uint8_t>(row[i] + predictor);
      }
      break;
    default:  // 0, None
      break;
  }
}

}  // namespace vision_gateway::image::internal
