// The ids the gateway chooses for files it uploads ("files/<id>"), which carry what the gateway
// must know about a file on any replica, without a database:
//
//   g1-WWWWHHHH-RRRRRRRRRRRR            no owner (authentication off)
//   g1-WWWWHHHH-OOOOOOOO-RRRRRRRRRRRR   with an owner tag
//
//   WWWW, HHHH  upright width and height in pixels, 4 base-36 digits each (0 = unknown, at most
//               1,679,615)
//   OOOOOOOO    optional owner tag: 8 lowercase letters/digits derived from the caller's name
//               (OwnerTagOf); empty when authentication is off
//   RRRR...     12 random lowercase letters/digits, for uniqueness
//
// Gemini allows ids of at most 40 lowercase letters, digits and '-', not starting or ending with
// '-'; these are 24 or 33 characters. Decoding is total: an id the codec did not produce (a file
// uploaded elsewhere, or any other text) decodes as unknown dimensions and no owner.
#ifndef VISION_GATEWAY_SERVICE_VISION_FILE_ID_H_
#define VISION_GATEWAY_SERVICE_VISION_FILE_ID_H_

#include <string>
#include <string_view>

namespace vision_gateway::vision {

inline constexpr int kMaxFileIdDimension = 36 * 36 * 36 * 36 - 1;
inline constexpr std::size_t kOwnerTagLength = 8;

struct FileIdInfo {
  int width = 0;   // 0: unknown
  int height = 0;  // 0: unknown
  std::string owner_tag;  // empty: no owner
  bool ours = false;      // produced by NewFileId
};

// A fresh id (without the "files/" prefix). Dimensions outside 1..kMaxFileIdDimension are stored
// as unknown (both 0). `owner_tag` must be empty or kOwnerTagLength lowercase letters/digits
// (anything else is stored as no owner).
std::string NewFileId(int width, int height, std::string_view owner_tag);

// Accepts "files/<id>" or a bare id. Never fails.
FileIdInfo DecodeFileId(std::string_view name_or_id);

// The owner tag of a caller name: the first 8 base-36 digits of its SHA-256. "" for "".
std::string OwnerTagOf(std::string_view caller);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_FILE_ID_H_
