// What a batch job carries so that any replica can post-process its results without a database
// (issue #20): each request line's key holds the item's own state, and the job's display name
// holds the task and the owner. Gemini returns every response line with its request's key.
//
// A request line's key:
//
//   vg1.<task>.<max_objects>.<threshold>.<width>.<height>.<mime>.<caller key>
//
//   task         c (caption), d (detect), s (segment)
//   max_objects  decimal 0..1000 (0 for caption)
//   threshold    Segment's mask threshold in thousandths, decimal 1..1000 (0 otherwise)
//   width,height the upright image size in pixels, decimal 0..kMaxFileIdDimension (0 x 0: a
//                file of unknown size, normalized boxes only)
//   mime         the image's sniffed type: p (png), j (jpeg), w (webp), h (heic), f (heif), x
//                (unknown: a file reference)
//   caller key   the caller's key (1..128 bytes), web-safe base64 without padding
//
// The whole key is at most kMaxLineKeyBytes. Decoding checks every field and its bounds (the key
// comes back from Gemini: upstream input); anything else decodes as an error.
//
// A job's display name:
//
//   <caller's display name>|vg-batch=<task>.<owner tag or "-">
//
// with the task letter as above and the owner tag of file_id.h (OwnerTagOf; "-" with
// authentication off). A job without a valid tag (created outside the gateway) belongs to no
// caller: with authentication on nobody sees it, without it everybody does (its task is then
// unknown and its results cannot be read through the gateway).
#ifndef VISION_GATEWAY_SERVICE_VISION_BATCH_KEY_H_
#define VISION_GATEWAY_SERVICE_VISION_BATCH_KEY_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "service/vision/v1.h"

namespace vision_gateway::vision {

inline constexpr std::size_t kMaxBatchKeyBytes = 128;
inline constexpr std::size_t kMaxLineKeyBytes = 256;
// The caller's part of a job's display name.
inline constexpr std::size_t kMaxBatchDisplayNameBytes = 256;

struct BatchItemKey {
  v1::BatchTask task = v1::BATCH_TASK_UNSPECIFIED;
  int max_objects = 0;
  int threshold_milli = 0;  // Segment: the mask threshold in thousandths
  int width = 0;
  int height = 0;
  std::string mime_type;  // "" for unknown
  std::string caller_key;
};

// The line key of `item` (its fields must be within the bounds above; caller_key 1..128 bytes).
std::string EncodeBatchItemKey(const BatchItemKey& item);
// INVALID_ARGUMENT for anything EncodeBatchItemKey cannot have produced.
absl::StatusOr<BatchItemKey> DecodeBatchItemKey(std::string_view key);

struct BatchDisplayName {
  std::string display_name;  // the caller's part
  v1::BatchTask task = v1::BATCH_TASK_UNSPECIFIED;  // unspecified: no valid tag
  std::string owner_tag;     // "" for none
  bool tagged = false;       // a valid gateway tag was found
};

std::string EncodeBatchDisplayName(std::string_view display_name, v1::BatchTask task,
                                   std::string_view owner_tag);
// Never fails: a name without a valid tag is all the caller's part, untagged.
BatchDisplayName DecodeBatchDisplayName(std::string_view stored);

// True when a call with `owner_tag` may see the job: always when `owner_tag` is empty, else only
// when the job's display name carries exactly that tag.
bool BatchVisibleTo(const BatchDisplayName& name, std::string_view owner_tag);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_BATCH_KEY_H_
