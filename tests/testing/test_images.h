// Test-only helpers: draw, encode and decode small images with libvips, craft raw headers.
#ifndef VISION_GATEWAY_TESTS_TESTING_TEST_IMAGES_H_
#define VISION_GATEWAY_TESTS_TESTING_TEST_IMAGES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vision_gateway::testing {

// Interleaved 8-bit pixels, row-major.
struct Pixels {
  int width = 0;
  int height = 0;
  int bands = 0;
  std::vector<uint8_t> data;

  uint8_t at(int x, int y, int band = 0) const {
    return data[(static_cast<size_t>(y) * width + x) * bands + band];
  }
  uint8_t& at(int x, int y, int band = 0) {
    return data[(static_cast<size_t>(y) * width + x) * bands + band];
  }
};

Pixels MakePixels(int width, int height, int bands, uint8_t fill = 0);

// Pseudo-random pixels (fixed seed): compresses badly, so cutting the file loses real data.
Pixels NoisePixels(int width, int height, int bands, uint32_t seed = 1);

// Encodes with libvips by file suffix (".png", ".jpg", ".webp", ".heic", ".avif"). If
// orientation > 0 it is stored as EXIF orientation (where the format keeps it). Returns nullopt
// if this libvips cannot write the format.
std::optional<std::string> Encode(const Pixels& pixels, std::string_view suffix,
                                  int orientation = 0);

// Encodes a 16-bit single-band PNG (values as given).
std::string EncodeGrey16Png(int width, int height, const std::vector<uint16_t>& values);

// Decodes any format libvips reads, without applying EXIF orientation, to 8-bit pixels.
struct Decoded {
  Pixels pixels;
  int orientation = 1;
};
Decoded Decode(std::string_view bytes);

// A PNG signature, an IHDR chunk declaring width x height (8-bit RGB) with a correct CRC, a small
// IDAT chunk and IEND: readable header, no real pixel data.
std::string PngHeaderOnly(uint32_t width, uint32_t height);

// `jpeg` with the size in its SOF0 segment replaced (a decompression bomb's header).
std::string PatchJpegSize(std::string jpeg, uint16_t width, uint16_t height);

// An RGB colour.
struct Rgb {
  uint8_t r, g, b;
};

// Fills [x0, x1) x [y0, y1) of a 3-band image.
void FillRect(Pixels& pixels, Rgb colour, int x0, int y0, int x1, int y1);
// Fills the ellipse inscribed in [x0, x1) x [y0, y1) (pixel centres inside) of a 3-band image.
void FillEllipse(Pixels& pixels, Rgb colour, int x0, int y0, int x1, int y1);

// A PNG of one background colour with an optional rectangle [x0,x1)x[y0,y1) of a second one.
std::string MakePng(int width, int height, Rgb background, Rgb fill = {0, 0, 0}, int x0 = 0,
                    int y0 = 0, int x1 = 0, int y1 = 0);

}  // namespace vision_gateway::testing

#endif  // VISION_GATEWAY_TESTS_TESTING_TEST_IMAGES_H_
