// Image sniffing, header probing and preparation for upload: pixel limits, EXIF orientation,
// optional downscale, corruption checks. Pure functions over bytes; thread-safe.
#ifndef VISION_GATEWAY_SERVICE_IMAGE_IMAGE_PROBE_H_
#define VISION_GATEWAY_SERVICE_IMAGE_IMAGE_PROBE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace vision_gateway::image {

// The image types Gemini accepts.
enum class ImageFormat { kPng, kJpeg, kWebp, kHeic, kHeif };

// "image/png", "image/jpeg", "image/webp", "image/heic", "image/heif".
std::string_view MimeTypeOf(ImageFormat format);

// Identifies the format from the leading bytes (magic numbers; for HEIF the ISO BMFF 'ftyp'
// box's brands). Errors (INVALID_ARGUMENT): "image is empty" for 0 bytes; "unsupported image
// type; supported: image/png, image/jpeg, image/webp, image/heic, image/heif" otherwise (AVIF,
// GIF, random bytes, ...). Only the first bytes are examined; the data is not validated.
absl::StatusOr<ImageFormat> SniffFormat(std::string_view bytes);

// Width and height as a viewer shows the image (EXIF orientations 5..8 swap them).
struct ImageSize {
  int width = 0;
  int height = 0;
};

// Reads the header only (no pixel decode). Errors: SniffFormat's, or INVALID_ARGUMENT
// "image data is corrupt or truncated (...)" when the header cannot be read.
absl::StatusOr<ImageSize> ProbeSize(std::string_view bytes);

// What the header says, without decoding pixels.
struct ImageHeader {
  ImageFormat format = ImageFormat::kPng;
  ImageSize upright;      // as a viewer shows it
  int orientation = 1;    // EXIF orientation 1..8 (1 when absent)
  int64_t stored_pixels = 0;  // width * height as stored
};

// Like ProbeSize, with the format and the EXIF orientation.
absl::StatusOr<ImageHeader> ProbeHeader(std::string_view bytes);

struct PrepareOptions {
  // Largest width * height (as stored) accepted; checked from the header before any pixel is
  // decoded, so decompression bombs are refused cheaply. <= 0: no limit.
  int64_t max_pixels = 50'000'000;
  // If > 0 and the upright image's longer side exceeds it, the image is downscaled (aspect
  // kept) so that its longer side is at most this.
  int max_dimension = 0;
  // Decode an image that is passed through unchanged, so that truncated or corrupt data is
  // refused here rather than by Gemini. Re-encoded images are always fully decoded. Costs one
  // decode of the image (streamed, memory stays small); a JPEG is decoded at 1/8 scale where its
  // size allows (every block's entropy-coded data is still read and checked, at a fraction of a
  // full decode's cost); a PNG's image data is inflated without libvips and without unfiltering
  // (every critical chunk's CRC, zlib's adler32, the exact size and every scanline's filter type
  // checked: png_scan.h), whole by libdeflate into a per-thread buffer when it is at most 4 MiB,
  // by zlib in 256 KiB pieces beyond.
  bool verify_pixels = true;
};

struct PreparedImage {
  // Format and MIME type of `bytes` (PNG or JPEG when re-encoded).
  ImageFormat format = ImageFormat::kPng;
  std::string mime_type;
  // The caller's format.
  ImageFormat source_format = ImageFormat::kPng;
  // The original image's upright size (what boxes and masks are reported in).
  int width = 0;
  int height = 0;
  // EXIF orientation of the input (1..8; 1 when absent).
  int orientation = 1;
  // What to send upstream: the input bytes moved through untouched (reencoded == false), or an
  // upright (and possibly downscaled) re-encoding without metadata: JPEG quality 90 for JPEG
  // input, PNG otherwise.
  std::string bytes;
  // Size of the image in `bytes` (always upright).
  int sent_width = 0;
  int sent_height = 0;
  bool reencoded = false;
};

// Checks and prepares `bytes` for Gemini. Re-encodes only when the EXIF orientation is not 1
// (the pixels are rotated upright) or when max_dimension asks for a downscale; otherwise the
// input string is moved into the result without a copy. Errors (all INVALID_ARGUMENT):
// SniffFormat's; "image is WxH pixels; the limit is N"; "image data is corrupt or truncated
// (<decoder detail>)". INTERNAL if libvips cannot initialise or encode.
absl::StatusOr<PreparedImage> PrepareImage(std::string bytes, const PrepareOptions& options = {});

}  // namespace vision_gateway::image

#endif  // VISION_GATEWAY_SERVICE_IMAGE_IMAGE_PROBE_H_
