// COCO run-length encoded masks, byte-compatible with pycocotools (mask.encode / rleToString).
//
// Counts are run lengths over the pixels of an image in column-major (Fortran) order, i.e. down
// the first column, then down the second, ...; they alternate between runs of 0s and runs of 1s
// and always start with a run of 0s (of length 0 when the first pixel is set). The compressed
// string is pycocotools' LEB128-like text form: each count (from the fourth on, minus the count
// two before it) in signed 5-bit groups, least significant first, 0x20 marking "more follows",
// each group + 48 as one character.
#ifndef VISION_GATEWAY_SERVICE_IMAGE_COCO_RLE_H_
#define VISION_GATEWAY_SERVICE_IMAGE_COCO_RLE_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "service/image/binary_mask.h"

namespace vision_gateway::image {

// Counts of an image given as height * width column-major bytes (non-zero = set). Empty if the
// size is not positive, does not match, or has 2^32 pixels or more.
std::vector<uint32_t> RleCountsFromColumnMajor(std::span<const uint8_t> pixels, int height,
                                               int width);

// Counts of an image_width x image_height image that is all 0 except for `box_mask` placed with
// its top-left pixel at (box_x, box_y). Parts of the box outside the image are ignored. Never
// materialises the full image: O(image_width + box pixels). Empty if the image size is not
// positive, has 2^32 pixels or more, or the mask's data does not match its size.
std::vector<uint32_t> RleCountsFromBoxMask(const BinaryMask& box_mask, int box_x, int box_y,
                                           int image_width, int image_height);

// pycocotools' rleToString.
std::string CompressRleCounts(std::span<const uint32_t> counts);

// pycocotools' rleFrString, checked: INVALID_ARGUMENT for a character outside '0'..'o', a value
// cut off at the end, or a count that is negative or does not fit in 32 bits.
absl::StatusOr<std::vector<uint32_t>> DecompressRleCounts(std::string_view compressed);

// CompressRleCounts(RleCountsFromColumnMajor(...)).
std::string EncodeCocoRle(std::span<const uint8_t> column_major, int height, int width);

// CompressRleCounts(RleCountsFromBoxMask(...)): a box-local mask as a full-image COCO RLE.
std::string EncodeCocoRle(const BinaryMask& box_mask, int box_x, int box_y, int image_width,
                          int image_height);

// Expands a compressed RLE to height * width column-major bytes (0/1). INVALID_ARGUMENT if the
// string is malformed or its runs do not add up to height * width.
absl::StatusOr<std::vector<uint8_t>> DecodeCocoRle(std::string_view compressed, int height,
                                                   int width);

// Pixels set: the sum of the odd-indexed counts.
int64_t RleArea(std::span<const uint32_t> counts);

}  // namespace vision_gateway::image

#endif  // VISION_GATEWAY_SERVICE_IMAGE_COCO_RLE_H_
