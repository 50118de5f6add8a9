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

// The display name also keeps, for a file the gateway stored upright (re-encoded), the SHA-256 of
// the bytes the client sent, as a suffix "|vg-src-sha256=<64 lowercase hex>" (79 characters), so
// that dedupe by the client's hash works from Gemini's file list alone.
inline constexpr std::size_t kMaxDisplayNameBytes = 512;  // Gemini's displayName limit
inline constexpr std::size_t kSourceHashTagLength = 79;

// True for 64 lowercase hex digits (a SHA-256 as the gateway writes it).
bool IsSha256Hex(std::string_view s);

// `display_name` with the tag; unchanged when `source_sha256` is not 64 lowercase hex digits or
// the result would exceed kMaxDisplayNameBytes.
std::string TagDisplayName(std::string_view display_name, std::string_view source_sha256);

struct DisplayNameInfo {
  std::string display_name;   // without the tag
  std::string source_sha256;  // empty: no tag
};
// Splits a display name into the caller's part and the tag. Never fails.
DisplayNameInfo DecodeDisplayName(std::string_view stored);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_FILE_ID_H_
