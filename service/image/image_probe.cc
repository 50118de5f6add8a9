#include "service/image/image_probe.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "service/image/png_scan.h"
#include "service/image/vips_internal.h"

namespace vision_gateway::image {
namespace {

using internal::GBuffer;
using internal::VipsImagePtr;

constexpr char kUnsupportedMessage[] =
    "unsupported image type; supported: image/png, image/jpeg, image/webp, image/heic, image/heif";

// Brands are only looked for in the first bytes of the 'ftyp' box.
constexpr size_t kMaxFtypBytes = 4096;
constexpr std::array<std::string_view, 6> kHeicBrands = {"heic", "heix", "hevc",
                                                         "hevx", "heim", "heis"};
constexpr std::array<std::string_view, 3> kHeifBrands = {"mif1", "msf1", "heif"};
// AVIF shares the HEIF container ('mif1' is usually listed) but is not a type Gemini takes.
constexpr std::array<std::string_view, 2> kAvifBrands = {"avif", "avis"};

template <size_t N>
bool Contains(const std::array<std::string_view, N>& set, std::string_view brand) {
  return std::find(set.begin(), set.end(), brand) != set.end();
}

uint32_t ReadBigEndian32(std::string_view bytes) {
  return static_cast<uint32_t>(static_cast<unsigned char>(bytes[0])) << 24 |
         static_cast<uint32_t>(static_cast<unsigned char>(bytes[1])) << 16 |
         static_cast<uint32_t>(static_cast<unsigned char>(bytes[2])) << 8 |
         static_cast<uint32_t>(static_cast<unsigned char>(bytes[3]));
}

// ISO BMFF: [size:4][type:4 = "ftyp"][major brand:4][minor version:4][compatible brands:4 each].
absl::StatusOr<ImageFormat> SniffIsoBmff(std::string_view bytes) {
  if (bytes.size() < 16 || bytes.substr(4, 4) != "ftyp") {
    return absl::InvalidArgumentError(kUnsupportedMessage);
  }
  uint64_t box_size = ReadBigEndian32(bytes);
  if (box_size == 0) box_size = bytes.size();  // the box extends to the end of the data
  if (box_size < 16) return absl::InvalidArgumentError(kUnsupportedMessage);
  const size_t end = static_cast<size_t>(
      std::min<uint64_t>({box_size, bytes.size(), static_cast<uint64_t>(kMaxFtypBytes)}));
  bool heic = false, heif = false, avif = false;
  auto classify = [&](std::string_view brand) {
    heic = heic || Contains(kHeicBrands, brand);
    heif = heif || Contains(kHeifBrands, brand);
    avif = avif || Contains(kAvifBrands, brand);
  };
  classify(bytes.substr(8, 4));
  for (size_t offset = 16; offset + 4 <= end; offset += 4) classify(bytes.substr(offset, 4));
  if (heic) return ImageFormat::kHeic;
  if (avif) return absl::InvalidArgumentError(kUnsupportedMessage);
  if (heif) return ImageFormat::kHeif;
  return absl::InvalidArgumentError(kUnsupportedMessage);
}

absl::Status CorruptError(const std::string& detail) {
  return absl::InvalidArgumentError(
      absl::StrFormat("image data is corrupt or truncated (%s)", detail));
}

// Opens `bytes` with the loader for `format` (never a guessed one). Reads the header only;
// pixels are decoded when something pulls them, failing on truncation and decoder errors.
// `bytes` must outlive the image.
//
// `jpeg_shrink` (1, 2, 4 or 8) asks libjpeg for a DCT-scaled decode ("shrink-on-load"): the image
// is 1/jpeg_shrink of the size, and at 8 only each block's DC coefficient is transformed. The
// entropy-coded data of every block is still read and decoded (the Huffman decoder must walk every
// coefficient to find the next block), so truncated or corrupt data fails the same way as in a
// full decode, at a fraction of the cost: no full-size inverse DCT, upsampling, colour conversion
// or pixel buffers.
absl::StatusOr<VipsImagePtr> Open(std::string_view bytes, ImageFormat format,
                                  int jpeg_shrink = 1) {
  if (absl::Status s = internal::EnsureVips(); !s.ok()) return s;
  void* data = const_cast<char*>(bytes.data());  // libvips only reads it
  const size_t size = bytes.size();
  VipsImage* out = nullptr;
  int rc = -1;
  switch (format) {
    case ImageFormat::kPng:
      rc = vips_pngload_buffer(data, size, &out, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                               VIPS_FAIL_ON_ERROR, nullptr);
      break;
    case ImageFormat::kJpeg:
      rc = vips_jpegload_buffer(data, size, &out, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                VIPS_FAIL_ON_ERROR, "shrink", jpeg_shrink, nullptr);
      break;
    case ImageFormat::kWebp:
      rc = vips_webpload_buffer(data, size, &out, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                VIPS_FAIL_ON_ERROR, nullptr);
      break;
    case ImageFormat::kHeic:
    case ImageFormat::kHeif:
      rc = vips_heifload_buffer(data, size, &out, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                VIPS_FAIL_ON_ERROR, nullptr);
      break;
  }
  VipsImagePtr image(out);
  if (rc != 0 || image == nullptr) return CorruptError(internal::TakeVipsError());
  return image;
}

struct Header {
  int stored_width = 0;
  int stored_height = 0;
  int orientation = 1;
  ImageSize upright;
};

Header ReadHeader(VipsImage* image) {
  Header h;
  h.stored_width = vips_image_get_width(image);
  h.stored_height = vips_image_get_height(image);
  h.orientation = vips_image_get_orientation(image);  // 1..8, 1 when absent or invalid
  const bool swap = h.orientation >= 5 && h.orientation <= 8;
  h.upright = swap ? ImageSize{h.stored_height, h.stored_width}
                   : ImageSize{h.stored_width, h.stored_height};
  return h;
}

// The JPEG scale for VerifyPixels: the largest of 8, 4, 2 that divides the stored height and is
// at most the stored width, else 1 (full size). libvips sizes a shrunk JPEG by rounding down, so
// with a height the factor does not divide, the last scanline libjpeg would produce, and with it
// the last row of blocks, would never be decoded; a width below the factor is an image of width 0
// to libvips (an assertion, not an error).
int VerifyJpegShrink(const Header& header) {
  for (int shrink : {8, 4, 2}) {
    if (header.stored_height % shrink == 0 && header.stored_width >= shrink) return shrink;
  }
  return 1;
}

// Proves that an image sent on unchanged decodes to the end, without keeping its pixels. A JPEG
// is decoded at 1/2, 1/4 or 1/8 scale where its size allows (see Open: every block's
// entropy-coded data is still checked); other formats have no cheaper complete decode, so `image`
// (opened at full size) is pulled row by row. Decoded on this thread: a threadpool sink
// (vips_avg, ...) can lose the error.
absl::Status VerifyPixels(std::string_view bytes, ImageFormat format, const Header& header,
                          VipsImage* image) {
  const int shrink = format == ImageFormat::kJpeg ? VerifyJpegShrink(header) : 1;
  if (shrink == 1) return internal::ForEachRow(image, "image data", [](int, std::string_view) {});
  absl::StatusOr<VipsImagePtr> scaled = Open(bytes, format, shrink);
  if (!scaled.ok()) return scaled.status();
  return internal::ForEachRow(scaled->get(), "image data", [](int, std::string_view) {});
}

// A PNG sent on unchanged whose image data inflates to at most this many bytes is inflated whole,
// by libdeflate, into a buffer the thread keeps (and grows up to this size): 1280x1024 RGB fits.
// A larger one is inflated by zlib in pieces of kPngCheckPieceBytes into a buffer of that size
// (zlib copies the last 32 KiB of each piece into its window, so pieces much larger than that).
constexpr uint64_t kPngCheckWholeBytes = 4 << 20;
constexpr size_t kPngCheckPieceBytes = 256 << 10;

// Proves that a PNG decodes without libvips or libpng's row machinery (png_scan.h): every
// critical chunk's CRC, the zlib stream inflated to its end (adler32 checked) and of exactly the
// size the header declares, every scanline's filter type valid. The scanlines are not
// unfiltered: unfiltering cannot fail, so it proves nothing about the bytes.
absl::Status VerifyPng(std::string_view bytes, const internal::PngHeader& header) {
  thread_local std::vector<uint8_t> buffer;
  const uint64_t data_bytes = header.ImageDataBytes();
  const size_t size = data_bytes <= kPngCheckWholeBytes ? data_bytes : kPngCheckPieceBytes;
  if (buffer.size() < size) buffer.resize(size);
  absl::Status status = internal::ScanPngImageData(bytes, header, buffer.data(), size);
  if (!status.ok()) return CorruptError(std::string(status.message()));
  return absl::OkStatus();
}

struct Encoded {
  std::string bytes;
  int width = 0;
  int height = 0;
};

// Rotates upright (EXIF orientation), shrinks to fit target_width x target_height (upright) if
// larger, and encodes without metadata: JPEG Q90 for JPEG input, PNG otherwise.
//
// vips_thumbnail would rotate too, but it copies the image to memory for that with a threadpool
// sink, which can lose a decode error on libvips 8.14 (see internal::ForEachRow). So the
// thumbnail is built unrotated (a lazy pipeline: shrink-on-load where the format allows, then
// resize), its pixels are pulled on this thread, where every decode error is seen, and the
// rotation and the encoder then work on pixels in memory, which cannot fail to decode.
absl::StatusOr<Encoded> Reencode(std::string_view bytes, ImageFormat format, const Header& header,
                                 int target_width, int target_height) {
  const bool swap = header.orientation >= 5 && header.orientation <= 8;
  VipsImage* out = nullptr;
  // The loader is picked by libvips, but the bytes were sniffed as one of ours and untrusted
  // loaders are blocked; the option string reaches that loader.
  const int rc = vips_thumbnail_buffer(
      const_cast<char*>(bytes.data()), bytes.size(), &out, swap ? target_height : target_width,
      "height", swap ? target_width : target_height, "size", VIPS_SIZE_DOWN, "no_rotate", TRUE,
      "option_string", "fail_on=error", nullptr);
  VipsImagePtr thumb(out);
  if (rc != 0 || thumb == nullptr) return CorruptError(internal::TakeVipsError());

  absl::StatusOr<std::vector<uint8_t>> pixels = internal::ReadPixels(thumb.get(), "image data");
  if (!pixels.ok()) return pixels.status();
  VipsImagePtr decoded(vips_image_new_from_memory(
      pixels->data(), pixels->size(), vips_image_get_width(thumb.get()),
      vips_image_get_height(thumb.get()), vips_image_get_bands(thumb.get()),
      vips_image_get_format(thumb.get())));
  if (decoded == nullptr) return absl::InternalError("libvips: " + internal::TakeVipsError());
  decoded->Type = vips_image_get_interpretation(thumb.get());
  thumb.reset();  // the decoded copy is all that is needed now

  VipsImagePtr upright = std::move(decoded);
  if (header.orientation != 1) {
    vips_image_set_int(upright.get(), VIPS_META_ORIENTATION, header.orientation);
    out = nullptr;
    if (vips_autorot(upright.get(), &out, nullptr) != 0 || out == nullptr) {
      return absl::InternalError("libvips: " + internal::TakeVipsError());
    }
    upright.reset(out);
  }

  void* buffer = nullptr;
  size_t length = 0;
  const int save_rc =
      format == ImageFormat::kJpeg
          ? vips_jpegsave_buffer(upright.get(), &buffer, &length, "Q", 90, "strip", TRUE, nullptr)
          : vips_pngsave_buffer(upright.get(), &buffer, &length, "strip", TRUE, "compression", 6,
                                nullptr);
  GBuffer owned(buffer);
  if (save_rc != 0 || buffer == nullptr) {
    return absl::InternalError("libvips could not encode the image: " + internal::TakeVipsError());
  }
  return Encoded{std::string(static_cast<const char*>(buffer), length),
                 vips_image_get_width(upright.get()), vips_image_get_height(upright.get())};
}

}  // namespace

std::string_view MimeTypeOf(ImageFormat format) {
  switch (format) {
    case ImageFormat::kPng:
      return "image/png";
    case ImageFormat::kJpeg:
      return "image/jpeg";
    case ImageFormat::kWebp:
      return "image/webp";
    case ImageFormat::kHeic:
      return "image/heic";
    case ImageFormat::kHeif:
      return "image/heif";
  }
  return "application/octet-stream";
}

absl::StatusOr<ImageFormat> SniffFormat(std::string_view bytes) {
  if (bytes.empty()) return absl::InvalidArgumentError("image is empty");
  if (bytes.starts_with(std::string_view("\x89PNG\r\n\x1a\n", 8))) return ImageFormat::kPng;
  if (bytes.starts_with("\xff\xd8\xff")) return ImageFormat::kJpeg;
  if (bytes.size() >= 12 && bytes.starts_with("RIFF") && bytes.substr(8, 4) == "WEBP") {
    return ImageFormat::kWebp;
  }
  return SniffIsoBmff(bytes);
}

absl::StatusOr<ImageSize> ProbeSize(std::string_view bytes) {
  absl::StatusOr<ImageFormat> format = SniffFormat(bytes);
  if (!format.ok()) return format.status();
  absl::StatusOr<VipsImagePtr> image = Open(bytes, *format);
  if (!image.ok()) return image.status();
  return ReadHeader(image->get()).upright;
}

absl::StatusOr<ImageHeader> ProbeHeader(std::string_view bytes) {
  absl::StatusOr<ImageFormat> format = SniffFormat(bytes);
  if (!format.ok()) return format.status();
  absl::StatusOr<VipsImagePtr> image = Open(bytes, *format);
  if (!image.ok()) return image.status();
  const Header header = ReadHeader(image->get());
  ImageHeader out;
  out.format = *format;
  out.upright = header.upright;
  out.orientation = header.orientation;
  out.stored_pixels = static_cast<int64_t>(header.stored_width) * header.stored_height;
  return out;
}

absl::StatusOr<PreparedImage> PrepareImage(std::string bytes, const PrepareOptions& options) {
  absl::StatusOr<ImageFormat> format = SniffFormat(bytes);
  if (!format.ok()) return format.status();

  PreparedImage result;
  result.source_format = *format;
  if (*format == ImageFormat::kPng) {
    // A PNG without EXIF (so upright) and within max_dimension is sent on unchanged: its header
    // and data are read here without libvips. Any other PNG, or one whose header this reader
    // refuses, goes the libvips way below (which then reports its own error, if any).
    absl::StatusOr<internal::PngHeader> png = internal::ReadPngHeader(bytes);
    if (png.ok() && !png->has_exif) {
      const int width = static_cast<int>(png->width);
      const int height = static_cast<int>(png->height);
      const int64_t pixels = static_cast<int64_t>(width) * height;
      if (options.max_pixels > 0 && pixels > options.max_pixels) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "image is %dx%d pixels; the limit is %d", width, height, options.max_pixels));
      }
      if (options.max_dimension <= 0 || std::max(width, height) <= options.max_dimension) {
        if (options.verify_pixels) {
          if (absl::Status s = VerifyPng(bytes, *png); !s.ok()) return s;
        }
        result.format = ImageFormat::kPng;
        result.mime_type = std::string(MimeTypeOf(ImageFormat::kPng));
        result.width = result.sent_width = width;
        result.height = result.sent_height = height;
        result.orientation = 1;
        result.reencoded = false;
        result.bytes = std::move(bytes);
        return result;
      }
    }
  }
  bool resize = false;
  Header header;
  {
    absl::StatusOr<VipsImagePtr> image = Open(bytes, *format);
    if (!image.ok()) return image.status();
    header = ReadHeader(image->get());
    const int64_t pixels = static_cast<int64_t>(header.stored_width) * header.stored_height;
    if (options.max_pixels > 0 && pixels > options.max_pixels) {
      return absl::InvalidArgumentError(absl::StrFormat("image is %dx%d pixels; the limit is %d",
                                                        header.upright.width, header.upright.height,
                                                        options.max_pixels));
    }
    result.width = header.upright.width;
    result.height = header.upright.height;
    result.orientation = header.orientation;
    resize =
        options.max_dimension > 0 && std::max(result.width, result.height) > options.max_dimension;
    if (header.orientation == 1 && !resize) {
      if (options.verify_pixels) {
        absl::Status decoded = VerifyPixels(bytes, *format, header, image->get());
        if (!decoded.ok()) return decoded;
      }
      result.format = *format;
      result.mime_type = std::string(MimeTypeOf(*format));
      result.sent_width = result.width;
      result.sent_height = result.height;
      result.reencoded = false;
      image->reset();  // the image reads `bytes`: release it before moving them
      result.bytes = std::move(bytes);
      return result;
    }
  }

  const int target_width = resize ? options.max_dimension : result.width;
  const int target_height = resize ? options.max_dimension : result.height;
  absl::StatusOr<Encoded> encoded = Reencode(bytes, *format, header, target_width, target_height);
  if (!encoded.ok()) return encoded.status();
  result.format = *format == ImageFormat::kJpeg ? ImageFormat::kJpeg : ImageFormat::kPng;
  result.mime_type = std::string(MimeTypeOf(result.format));
  result.sent_width = encoded->width;
  result.sent_height = encoded->height;
  result.reencoded = true;
  result.bytes = std::move(encoded->bytes);
  return result;
}

}  // namespace vision_gateway::image
