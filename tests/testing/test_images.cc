#include "tests/testing/test_images.h"

#include <vips/vips.h>

#include <algorithm>
#include <random>
#include <stdexcept>

#include "service/image/vips_internal.h"

namespace vision_gateway::testing {
namespace {

using image::internal::GBuffer;
using image::internal::VipsImagePtr;

void Check(bool ok, std::string_view what) {
  if (!ok) {
    throw std::runtime_error(std::string(what) + ": " + image::internal::TakeVipsError());
  }
}

VipsImagePtr ToVips(const void* data, size_t size, int width, int height, int bands,
                    VipsBandFormat format, VipsInterpretation interpretation) {
  Check(image::internal::EnsureVips().ok(), "vips init");
  VipsImagePtr raw(vips_image_new_from_memory_copy(data, size, width, height, bands, format));
  Check(raw != nullptr, "new_from_memory_copy");
  VipsImage* out = nullptr;
  Check(vips_copy(raw.get(), &out, "interpretation", interpretation, nullptr) == 0, "copy");
  return VipsImagePtr(out);
}

uint32_t Crc32(std::string_view bytes) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char b : bytes) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return crc ^ 0xffffffffu;
}

void AppendBigEndian32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

void AppendChunk(std::string& out, std::string_view type, std::string_view payload) {
  AppendBigEndian32(out, static_cast<uint32_t>(payload.size()));
  std::string typed = std::string(type) + std::string(payload);
  out += typed;
  AppendBigEndian32(out, Crc32(typed));
}

}  // namespace

Pixels MakePixels(int width, int height, int bands, uint8_t fill) {
  return Pixels{width, height, bands,
                std::vector<uint8_t>(static_cast<size_t>(width) * height * bands, fill)};
}

Pixels NoisePixels(int width, int height, int bands, uint32_t seed) {
  Pixels p = MakePixels(width, height, bands);
  std::mt19937 rng(seed);
  for (uint8_t& v : p.data) v = static_cast<uint8_t>(rng());
  return p;
}

std::optional<std::string> Encode(const Pixels& pixels, std::string_view suffix, int orientation) {
  VipsImagePtr image = ToVips(
      pixels.data.data(), pixels.data.size(), pixels.width, pixels.height, pixels.bands,
      VIPS_FORMAT_UCHAR, pixels.bands >= 3 ? VIPS_INTERPRETATION_sRGB : VIPS_INTERPRETATION_B_W);
  if (orientation > 0) vips_image_set_int(image.get(), VIPS_META_ORIENTATION, orientation);
  void* buffer = nullptr;
  size_t length = 0;
  const std::string suffix_string(suffix);
  if (vips_image_write_to_buffer(image.get(), suffix_string.c_str(), &buffer, &length, nullptr) !=
      0) {
    (void)image::internal::TakeVipsError();
    return std::nullopt;
  }
  GBuffer owned(buffer);
  return std::string(static_cast<const char*>(buffer), length);
}

std::string EncodeGrey16Png(int width, int height, const std::vector<uint16_t>& values) {
  VipsImagePtr image = ToVips(values.data(), values.size() * sizeof(uint16_t), width, height, 1,
                              VIPS_FORMAT_USHORT, VIPS_INTERPRETATION_GREY16);
  void* buffer = nullptr;
  size_t length = 0;
  Check(vips_pngsave_buffer(image.get(), &buffer, &length, nullptr) == 0, "pngsave");
  GBuffer owned(buffer);
  return std::string(static_cast<const char*>(buffer), length);
}

Decoded Decode(std::string_view bytes) {
  Check(image::internal::EnsureVips().ok(), "vips init");
  VipsImagePtr image(vips_image_new_from_buffer(bytes.data(), bytes.size(), "", nullptr));
  Check(image != nullptr, "decode");
  Decoded d;
  d.orientation = vips_image_get_orientation(image.get());
  if (vips_image_get_format(image.get()) != VIPS_FORMAT_UCHAR) {
    VipsImage* out = nullptr;
    Check(vips_cast_uchar(image.get(), &out, nullptr) == 0, "cast");
    image.reset(out);
  }
  size_t size = 0;
  GBuffer memory(vips_image_write_to_memory(image.get(), &size));
  Check(memory != nullptr, "write_to_memory");
  const auto* p = static_cast<const uint8_t*>(memory.get());
  d.pixels = Pixels{vips_image_get_width(image.get()), vips_image_get_height(image.get()),
                    vips_image_get_bands(image.get()), std::vector<uint8_t>(p, p + size)};
  return d;
}

std::string PngHeaderOnly(uint32_t width, uint32_t height) {
  std::string png("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  AppendBigEndian32(ihdr, width);
  AppendBigEndian32(ihdr, height);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // depth 8, RGB, deflate, no filter, no interlace
  AppendChunk(png, "IHDR", ihdr);
  AppendChunk(png, "IDAT", std::string("\x78\x9c\x03\x00\x00\x00\x00\x01", 8));
  AppendChunk(png, "IEND", "");
  return png;
}

std::string PatchJpegSize(std::string jpeg, uint16_t width, uint16_t height) {
  size_t i = 2;  // after SOI
  while (i + 9 <= jpeg.size() && static_cast<unsigned char>(jpeg[i]) == 0xff) {
    const auto marker = static_cast<unsigned char>(jpeg[i + 1]);
    const size_t length =
        static_cast<unsigned char>(jpeg[i + 2]) << 8 | static_cast<unsigned char>(jpeg[i + 3]);
    if (marker >= 0xc0 && marker <= 0xc2) {
      jpeg[i + 5] = static_cast<char>(height >> 8);
      jpeg[i + 6] = static_cast<char>(height & 0xff);
      jpeg[i + 7] = static_cast<char>(width >> 8);
      jpeg[i + 8] = static_cast<char>(width & 0xff);
      return jpeg;
    }
    i += 2 + length;
  }
  throw std::runtime_error("no SOF marker");
}

void FillRect(Pixels& pixels, Rgb colour, int x0, int y0, int x1, int y1) {
  for (int y = std::max(0, y0); y < std::min(pixels.height, y1); ++y) {
    for (int x = std::max(0, x0); x < std::min(pixels.width, x1); ++x) {
      pixels.at(x, y, 0) = colour.r;
      pixels.at(x, y, 1) = colour.g;
      pixels.at(x, y, 2) = colour.b;
    }
  }
}

void FillEllipse(Pixels& pixels, Rgb colour, int x0, int y0, int x1, int y1) {
  const double cx = (x0 + x1) / 2.0, cy = (y0 + y1) / 2.0;
  const double rx = (x1 - x0) / 2.0, ry = (y1 - y0) / 2.0;
  for (int y = std::max(0, y0); y < std::min(pixels.height, y1); ++y) {
    for (int x = std::max(0, x0); x < std::min(pixels.width, x1); ++x) {
      const double dx = (x + 0.5 - cx) / rx, dy = (y + 0.5 - cy) / ry;
      if (dx * dx + dy * dy > 1.0) continue;
      pixels.at(x, y, 0) = colour.r;
      pixels.at(x, y, 1) = colour.g;
      pixels.at(x, y, 2) = colour.b;
    }
  }
}

std::string MakePng(int width, int height, Rgb background, Rgb fill, int x0, int y0, int x1,
                    int y1) {
  Pixels pixels = MakePixels(width, height, 3);
  FillRect(pixels, background, 0, 0, width, height);
  FillRect(pixels, fill, x0, y0, x1, y1);
  return *Encode(pixels, ".png");
}

}  // namespace vision_gateway::testing
