// Test-only: PNG files taken apart and put together chunk by chunk, and PNGs written by hand
// (any scanline filter, any zlib stream), for the tests of the PNG checks (png_scan.h) through
// every way in (PrepareImage, MaskFromPng).
#ifndef VISION_GATEWAY_TESTS_SERVICE_IMAGE_PNG_BYTES_H_
#define VISION_GATEWAY_TESTS_SERVICE_IMAGE_PNG_BYTES_H_

#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace vision_gateway::testing {

struct PngChunk {
  std::string type;
  std::string data;
  bool bad_crc = false;  // written with a CRC off by one
};

inline void PutBigEndian32(std::string& out, uint32_t v) {
  for (int shift : {24, 16, 8, 0}) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

inline uint32_t GetBigEndian32(std::string_view bytes) {
  return static_cast<uint32_t>(static_cast<unsigned char>(bytes[0])) << 24 |
         static_cast<uint32_t>(static_cast<unsigned char>(bytes[1])) << 16 |
         static_cast<uint32_t>(static_cast<unsigned char>(bytes[2])) << 8 |
         static_cast<uint32_t>(static_cast<unsigned char>(bytes[3]));
}

// The chunks of a well-formed PNG (signature skipped, CRCs not checked).
inline std::vector<PngChunk> SplitPng(std::string_view png) {
  std::vector<PngChunk> chunks;
  size_t at = 8;
  while (at + 12 <= png.size()) {
    const uint32_t length = GetBigEndian32(png.substr(at));
    chunks.push_back({std::string(png.substr(at + 4, 4)), std::string(png.substr(at + 8, length))});
    at += 12 + length;
  }
  return chunks;
}

inline std::string JoinPng(const std::vector<PngChunk>& chunks) {
  std::string out("\x89PNG\r\n\x1a\n", 8);
  for (const PngChunk& c : chunks) {
    PutBigEndian32(out, static_cast<uint32_t>(c.data.size()));
    const std::string typed = c.type + c.data;
    out += typed;
    const uint32_t crc = static_cast<uint32_t>(
        crc32(0, reinterpret_cast<const Bytef*>(typed.data()), static_cast<uInt>(typed.size())));
    PutBigEndian32(out, c.bad_crc ? crc + 1 : crc);
  }
  return out;
}

// All IDAT data of `chunks`, concatenated (the zlib stream).
inline std::string ImageData(const std::vector<PngChunk>& chunks) {
  std::string data;
  for (const PngChunk& c : chunks) {
    if (c.type == "IDAT") data += c.data;
  }
  return data;
}

// `chunks` with their IDATs replaced by `data` cut into IDATs of at most `piece` bytes.
inline std::vector<PngChunk> WithImageData(const std::vector<PngChunk>& chunks,
                                           std::string_view data, size_t piece = 1 << 20) {
  std::vector<PngChunk> out;
  bool placed = false;
  for (const PngChunk& c : chunks) {
    if (c.type != "IDAT") {
      out.push_back(c);
      continue;
    }
    if (placed) continue;
    placed = true;
    for (size_t at = 0; at < data.size(); at += piece) {
      out.push_back({"IDAT", std::string(data.substr(at, piece))});
    }
  }
  return out;
}

inline std::string Deflate(std::string_view raw, int level = 6) {
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  std::string out(size, '\0');
  compress2(reinterpret_cast<Bytef*>(out.data()), &size, reinterpret_cast<const Bytef*>(raw.data()),
            static_cast<uLong>(raw.size()), level);
  out.resize(size);
  return out;
}

inline uint8_t Paeth(int a, int b, int c) {
  const int p = a + b - c;
  const int pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  return static_cast<uint8_t>(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
}

// Filtered scanlines of 8-bit pixels (`channels` bytes each, width x height, row-major), row y
// with filter filter_of(y) (0..4, or any byte to write a bad one), as the PNG spec defines them.
template <typename FilterOf>
std::string FilterScanlines(const std::vector<uint8_t>& pixels, int width, int height,
                            int channels, FilterOf filter_of) {
  const size_t row_bytes = static_cast<size_t>(width) * channels;
  std::string out;
  for (int y = 0; y < height; ++y) {
    const uint8_t* row = &pixels[y * row_bytes];
    const uint8_t* up = y > 0 ? row - row_bytes : nullptr;
    const int filter = filter_of(y);
    out.push_back(static_cast<char>(filter));
    for (size_t i = 0; i < row_bytes; ++i) {
      const int a = i >= static_cast<size_t>(channels) ? row[i - channels] : 0;
      const int b = up != nullptr ? up[i] : 0;
      const int c = up != nullptr && i >= static_cast<size_t>(channels) ? up[i - channels] : 0;
      int predictor = 0;
      if (filter == 1) predictor = a;
      if (filter == 2) predictor = b;
      if (filter == 3) predictor = (a + b) / 2;
      if (filter == 4) predictor = Paeth(a, b, c);
      out.push_back(static_cast<char>(static_cast<uint8_t>(row[i] - predictor)));
    }
  }
  return out;
}

// A non-interlaced 8-bit PNG (colour type 0 grey, 2 RGB, 6 RGBA) with the given zlib stream.
inline std::string HandMadePng(int width, int height, int colour_type, std::string_view zlib) {
  std::string ihdr;
  PutBigEndian32(ihdr, static_cast<uint32_t>(width));
  PutBigEndian32(ihdr, static_cast<uint32_t>(height));
  ihdr.push_back(8);
  ihdr.push_back(static_cast<char>(colour_type));
  ihdr += std::string(3, '\0');  // deflate, filter method 0, not interlaced
  return JoinPng({{"IHDR", ihdr}, {"IDAT", std::string(zlib)}, {"IEND", ""}});
}

}  // namespace vision_gateway::testing

#endif  // VISION_GATEWAY_TESTS_SERVICE_IMAGE_PNG_BYTES_H_
