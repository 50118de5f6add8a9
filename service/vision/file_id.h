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

#include <cstdint>
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

// The display name also keeps, for a file the gateway stored upright (re-encoded), the SHA-256
// and size of the bytes the client sent, so that dedupe by the client's hash works from Gemini's
// file list alone, on any replica:
//
//   <caller's display name>|vg-src=<64 lowercase hex>.<size, decimal>.<32 lowercase hex MAC>
//
// The MAC is HMAC-SHA256 (first 128 bits) under the gateway's file-tag key (FileTagKeyFrom: all
// replicas derive the same key from the Gemini API key) over the file's name, the hash and the
// size, so only a tag the gateway wrote on that very file counts: a caller cannot plant one (the
// gateway also refuses callers' display names holding the reserved "|vg-", ReservedMarkerIn), and
// a tag copied onto another file, or written before this format (the unauthenticated
// "|vg-src-sha256=<hex>" of older versions) or under another key, is not trusted.
inline constexpr std::size_t kMaxDisplayNameBytes = 512;  // Gemini's displayName limit
// The longest tag (a 19-digit size): callers' names up to 512 minus this are always tagged.
inline constexpr std::size_t kMaxSourceTagLength = 8 + 64 + 1 + 19 + 1 + 32;

// True for 64 lowercase hex digits (a SHA-256 as the gateway writes it).
bool IsSha256Hex(std::string_view s);

// HMAC-SHA256 (RFC 2104) of `message` under `key`, as 64 lowercase hex characters.
std::string HmacSha256Hex(std::string_view key, std::string_view message);

// The file-tag key every replica derives from the Gemini API key (a one-way function of it: the
// tag reveals nothing about the key). A key rotation makes older tags unverifiable: those files
// are then found by their stored hash only.
std::string FileTagKeyFrom(std::string_view api_key);

// A fresh random key (the default of VisionOptions::file_tag_key: tags then verify only within
// this process).
std::string RandomFileTagKey();

// The reserved marker "|vg-" when `display_name` (a caller's) contains it, else "".
bool ReservedMarkerIn(std::string_view display_name);

// `display_name` with the tag for the file `file_name` ("files/<id>"); unchanged when
// `source_sha256` is not 64 lowercase hex digits, `source_size` < 1, `key` is empty, or the result
// would exceed kMaxDisplayNameBytes.
std::string TagDisplayName(std::string_view display_name, std::string_view file_name,
                           std::string_view source_sha256, int64_t source_size,
                           std::string_view key);

struct DisplayNameInfo {
  std::string display_name;   // without the tag (a verified one, or an old-format one)
  std::string source_sha256;  // empty: no tag the gateway can verify for this file
  int64_t source_size = 0;    // with source_sha256
};
// Splits a stored display name into the caller's part and a tag verified for `file_name` under
// `key`. Never fails.
DisplayNameInfo DecodeDisplayName(std::string_view stored, std::string_view file_name,
                                  std::string_view key);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_FILE_ID_H_
