#include "service/vision/batch_key.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "service/vision/file_id.h"
#include "service/vision/spatial_request.h"

namespace vision_gateway::vision {
namespace {

constexpr std::string_view kKeyVersion = "vg1";

// Debian's Abseil has its own string_view.
absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }
constexpr std::string_view kDisplayTag = "|vg-batch=";

char TaskLetter(v1::BatchTask task) {
  switch (task) {
    case v1::BATCH_TASK_CAPTION:
      return 'c';
    case v1::BATCH_TASK_DETECT:
      return 'd';
    case v1::BATCH_TASK_SEGMENT:
      return 's';
    default:
      return '?';
  }
}

v1::BatchTask TaskOfLetter(std::string_view letter) {
  if (letter == "c") return v1::BATCH_TASK_CAPTION;
  if (letter == "d") return v1::BATCH_TASK_DETECT;
  if (letter == "s") return v1::BATCH_TASK_SEGMENT;
  return v1::BATCH_TASK_UNSPECIFIED;
}

struct MimeCode {
  char letter;
  std::string_view mime_type;
};
constexpr MimeCode kMimeCodes[] = {{'p', "image/png"},  {'j', "image/jpeg"}, {'w', "image/webp"},
                                   {'h', "image/heic"}, {'f', "image/heif"}, {'x', ""}};

// A decimal 0..max without sign, leading zeros or other characters.
bool ParseBounded(std::string_view text, int max, int& out) {
  if (text.empty() || text.size() > 7 || (text.size() > 1 && text[0] == '0')) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  int value = 0;
  if (!absl::SimpleAtoi(Av(text), &value) || value < 0 || value > max) return false;
  out = value;
  return true;
}

bool IsOwnerTag(std::string_view tag) {
  if (tag.size() != kOwnerTagLength) return false;
  for (char c : tag) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

}  // namespace

std::string EncodeBatchItemKey(const BatchItemKey& item) {
  char mime = 'x';
  for (const MimeCode& code : kMimeCodes) {
    if (code.mime_type == item.mime_type) mime = code.letter;
  }
  return absl::StrCat(Av(kKeyVersion), ".", std::string(1, TaskLetter(item.task)), ".",
                      item.max_objects, ".", item.threshold_milli, ".", item.width, ".",
                      item.height, ".", std::string(1, mime), ".",
                      absl::WebSafeBase64Escape(item.caller_key));
}

absl::StatusOr<BatchItemKey> DecodeBatchItemKey(std::string_view key) {
  const auto bad = [] {
    return absl::InvalidArgumentError("the response line's key is not one the gateway wrote");
  };
  if (key.size() > kMaxLineKeyBytes) return bad();
  std::vector<std::string_view> fields;
  for (absl::string_view field : absl::StrSplit(Av(key), '.')) {
    fields.emplace_back(field.data(), field.size());
  }
  if (fields.size() != 8 || fields[0] != kKeyVersion) return bad();
  BatchItemKey item;
  item.task = TaskOfLetter(fields[1]);
  if (item.task == v1::BATCH_TASK_UNSPECIFIED) return bad();
  const bool spatial = item.task != v1::BATCH_TASK_CAPTION;
  if (!ParseBounded(fields[2], spatial ? kMaxMaxObjects : 0, item.max_objects) ||
      (spatial && item.max_objects < 1)) {
    return bad();
  }
  const bool segment = item.task == v1::BATCH_TASK_SEGMENT;
  if (!ParseBounded(fields[3], segment ? 1000 : 0, item.threshold_milli) ||
      (segment && item.threshold_milli < 1)) {
    return bad();
  }
  if (!ParseBounded(fields[4], kMaxFileIdDimension, item.width) ||
      !ParseBounded(fields[5], kMaxFileIdDimension, item.height) ||
      ((item.width == 0) != (item.height == 0))) {
    return bad();
  }
  if (fields[6].size() != 1) return bad();
  bool known = false;
  for (const MimeCode& code : kMimeCodes) {
    if (fields[6][0] == code.letter) {
      item.mime_type = std::string(code.mime_type);
      known = true;
    }
  }
  if (!known) return bad();
  // Canonical base64 only: decoding and re-encoding must give the same text.
  if (fields[7].empty() || !absl::WebSafeBase64Unescape(Av(fields[7]), &item.caller_key) ||
      item.caller_key.empty() || item.caller_key.size() > kMaxBatchKeyBytes ||
      absl::WebSafeBase64Escape(item.caller_key) != Av(fields[7])) {
    return bad();
  }
  return item;
}

std::string EncodeBatchDisplayName(std::string_view display_name, v1::BatchTask task,
                                   std::string_view owner_tag) {
  return absl::StrCat(Av(display_name), Av(kDisplayTag), std::string(1, TaskLetter(task)), ".",
                      owner_tag.empty() ? absl::string_view("-") : Av(owner_tag));
}

BatchDisplayName DecodeBatchDisplayName(std::string_view stored) {
  BatchDisplayName out;
  out.display_name = std::string(stored);
  const size_t at = stored.rfind(kDisplayTag);
  if (at == std::string_view::npos) return out;
  const std::string_view tag = stored.substr(at + kDisplayTag.size());
  const size_t dot = tag.find('.');
  if (dot == std::string_view::npos) return out;
  const v1::BatchTask task = TaskOfLetter(tag.substr(0, dot));
  const std::string_view owner = tag.substr(dot + 1);
  if (task == v1::BATCH_TASK_UNSPECIFIED || (owner != "-" && !IsOwnerTag(owner))) return out;
  out.display_name = std::string(stored.substr(0, at));
  out.task = task;
  out.owner_tag = owner == "-" ? "" : std::string(owner);
  out.tagged = true;
  return out;
}

bool BatchVisibleTo(const BatchDisplayName& name, std::string_view owner_tag) {
  if (owner_tag.empty()) return true;
  return name.tagged && name.owner_tag == owner_tag;
}

}  // namespace vision_gateway::vision
