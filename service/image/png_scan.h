// Private to service/image/*.cc (and its test): a PNG read straight from memory with libdeflate
// and zlib, without libpng's row machinery, for the two places where the gateway only needs the
// image data's bytes (or only needs to know that they decode): checking a PNG that is sent on
// unchanged, and reading an 8-bit grey mask.
//
// What is checked (a PNG that passes decodes in libpng): the signature; IHDR first, 13 bytes,
// with a valid size, depth, colour type, compression, filter and interlace method; the CRC of
// every critical chunk (IHDR, PLTE, IDAT, IEND; an ancillary chunk's CRC is not, as libpng's
// default only warns and drops such a chunk); an unknown critical chunk refused; PLTE before the
// image data when the colour type needs one; the image data consecutive IDAT chunks holding one
// zlib stream that ends (adler32 checked) exactly after the number of bytes the header declares,
// each scanline's filter type 0..4; IEND after it. Stricter than libpng where libpng only warns
// and carries on, always about data a correct encoder never writes: a wrong adler32, image data
// beyond the declared size, compressed data after the zlib stream's end or in an IDAT after
// another chunk.
#ifndef VISION_GATEWAY_SERVICE_IMAGE_PNG_SCAN_H_
#define VISION_GATEWAY_SERVICE_IMAGE_PNG_SCAN_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vision_gateway::image::internal {

inline constexpr std::string_view kPngSignature("\x89PNG\r\n\x1a\n", 8);

struct PngHeader {
  uint32_t width = 0;
  uint32_t height = 0;
  int bit_depth = 0;
  int colour_type = 0;  // 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA
  bool interlaced = false;  // Adam7
  // Seen among the chunks before the image data (what a decoder would apply to the values, or an
  // EXIF orientation).
  bool has_exif = false;
  bool has_trns = false;
  bool has_iccp = false;
  bool has_non_srgb_gamma = false;  // a gAMA other than sRGB's 1/2.2
  // Where the first IDAT chunk starts.
  size_t image_data_offset = 0;

  int Channels() const;
  // Bytes of one scanline of `pixels` pixels, without its filter byte.
  uint64_t RowBytes(uint64_t pixels) const;
  // Bytes the image data inflates to: every scanline of every pass with its filter byte.
  uint64_t ImageDataBytes() const;
};

// One Adam7 pass (0..6) of a width x height image: its pixels are at (x0 + i * dx, y0 + j * dy)
// for i < width, j < height (either may be 0: the pass is empty and has no scanlines).
struct PngPass {
  uint32_t x0 = 0, y0 = 0, dx = 1, dy = 1;
  uint32_t width = 0, height = 0;
};
PngPass Adam7Pass(uint32_t width, uint32_t height, int pass);

// Walks the signature and the chunks up to the first IDAT. The error text says what is wrong
// ("PNG ends early", "bad IHDR", "CRC error in IHDR", ...), for "<what> is corrupt or truncated
// (<text>)".
absl::StatusOr<PngHeader> ReadPngHeader(std::string_view png);

// Checks the whole PNG from the image data on (see the top of this file; `header` is
// ReadPngHeader's for the same bytes) and inflates the image data into `buffer`: filtered
// scanlines, each led by its filter byte, ImageDataBytes() in all. With buffer_size >=
// ImageDataBytes() the buffer ends up holding all of it (a decode), inflated in one call by
// libdeflate; with less, zlib inflates it piece by piece into the reused buffer, each piece
// checked and then overwritten (a check that the data decodes, in bounded memory).
// buffer_size >= 1.
absl::Status ScanPngImageData(std::string_view png, const PngHeader& header, uint8_t* buffer,
                              size_t buffer_size);

// Reverses the scanline filter of one row in place: `row` (row_bytes) filtered with `filter`
// (0..4), `previous` the previous row already unfiltered (nullptr for the first row of a pass),
// `bpp` the bytes per complete pixel (at least 1).
void UnfilterRow(int filter, uint8_t* row, const uint8_t* previous, size_t row_bytes, size_t bpp);

}  // namespace vision_gateway::image::internal

#endif  // VISION_GATEWAY_SERVICE_IMAGE_PNG_SCAN_H_
