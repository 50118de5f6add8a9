#include "service/gemini/json_reader.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "service/gemini/json_writer.h"

namespace vision_gateway::gemini::internal {
namespace {

absl::Status ResponseTooBig(std::size_t size, std::size_t limit) {
  return absl::ResourceExhaustedError(absl::StrCat("Gemini response of ", size,
                                                   " bytes exceeds the limit of ", limit, " bytes"));
}

}  // namespace


// Base64 (standard or URL-safe alphabet, padding optional) into `out`. False on a bad character
// or length.
bool DecodeBase64(std::string_view in, std::string& out) {
  static constexpr auto kTable = [] {
    std::array<int8_t, 256> t{};
    for (auto& e : t) e = -1;
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kBase64Alphabet[i])] = static_cast<int8_t>(i);
    t['-'] = 62;
    t['_'] = 63;
    return t;
  }();
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return false;
  out.clear();
  out.reserve(in.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (const char c : in) {
    const int8_t v = kTable[static_cast<unsigned char>(c)];
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return true;
}

void ReadPart(Reader& r, const json::object& o, const Path& path, Part& part) {
  r.String(Reader::Find(o, "text"), Sub(path, "text"), part.text);
  if (const json::object* blob =
          r.Object(Reader::Find(o, "inlineData", "inline_data"), Sub(path, "inlineData"))) {
    const Path blob_path = Sub(path, "inlineData");
    Blob& b = part.inline_data.emplace();
    r.String(Reader::Find(*blob, "mimeType", "mime_type"), Sub(blob_path, "mimeType"), b.mime_type);
    std::string encoded;
    r.String(Reader::Find(*blob, "data"), Sub(blob_path, "data"), encoded);
    if (r.ok() && !DecodeBase64(encoded, b.data)) r.Fail(Sub(blob_path, "data"), "is not base64");
  }
  if (const json::object* file =
          r.Object(Reader::Find(o, "fileData", "file_data"), Sub(path, "fileData"))) {
    const Path file_path = Sub(path, "fileData");
    FileData& f = part.file_data.emplace();
    r.String(Reader::Find(*file, "mimeType", "mime_type"), Sub(file_path, "mimeType"), f.mime_type);
    r.String(Reader::Find(*file, "fileUri", "file_uri"), Sub(file_path, "fileUri"), f.file_uri);
  }
  if (const json::value* mr = Reader::Find(o, "mediaResolution", "media_resolution")) {
    const Path mr_path = Sub(path, "mediaResolution");
    if (mr->is_object()) {
      r.Enum(Reader::Find(mr->get_object(), "level"), Sub(mr_path, "level"), part.media_resolution);
    } else {
      r.Enum(mr, mr_path, part.media_resolution);
    }
  }
  r.Bool(Reader::Find(o, "thought"), Sub(path, "thought"), part.thought);
  r.String(Reader::Find(o, "thoughtSignature", "thought_signature"), Sub(path, "thoughtSignature"),
           part.thought_signature);
}

void ReadContent(Reader& r, const json::object& o, const Path& path, Content& content) {
  r.String(Reader::Find(o, "role"), Sub(path, "role"), content.role);
  const Path parts_path = Sub(path, "parts");
  if (const json::array* parts = r.Array(Reader::Find(o, "parts"), parts_path)) {
    content.parts.reserve(parts->size());
    for (std::size_t i = 0; i < parts->size() && r.ok(); ++i) {
      const Path part_path = Index(parts_path, i);
      if (const json::object* p = r.Object(&(*parts)[i], part_path)) {
        ReadPart(r, *p, part_path, content.parts.emplace_back());
      }
    }
  }
}

void ReadContents(Reader& r, const json::value* v, const Path& path,
                  std::vector<Content>& contents) {
  const json::array* arr = r.Array(v, path);
  if (arr == nullptr) return;
  contents.reserve(arr->size());
  for (std::size_t i = 0; i < arr->size() && r.ok(); ++i) {
    const Path item_path = Index(path, i);
    if (const json::object* c = r.Object(&(*arr)[i], item_path)) {
      ReadContent(r, *c, item_path, contents.emplace_back());
    }
  }
}


Reader ReaderFor(Side side) {
  return side == Side::kRequest ? Reader(absl::StatusCode::kInvalidArgument, kRequestPrefix)
                                : Reader(absl::StatusCode::kInternal, kResponsePrefix);
}

// Checks the size of `text`, parses it and checks it is a JSON object. Errors never echo the
// text.
absl::Status ParseBounded(std::string_view text, const JsonCodecOptions& options, Side side,
                          Document& doc) {
  if (text.size() > options.max_body_bytes) {
    return side == Side::kRequest ? TooBig(text.size(), options.max_body_bytes)
                                  : ResponseTooBig(text.size(), options.max_body_bytes);
  }
  const absl::StatusCode code =
      side == Side::kRequest ? absl::StatusCode::kInvalidArgument : absl::StatusCode::kInternal;
  const char* prefix = side == Side::kRequest ? kRequestPrefix : kResponsePrefix;
  json::parse_options opts;
  opts.max_depth = 64;
  json::error_code ec;
  doc.value = json::parse(json::string_view(text.data(), text.size()), ec, &doc.resource, opts);
  if (ec) return absl::Status(code, absl::StrCat(prefix, ": not valid JSON (", ec.message(), ")"));
  if (!doc.value.is_object()) return absl::Status(code, absl::StrCat(prefix, ": not a JSON object"));
  return absl::OkStatus();
}

}  // namespace vision_gateway::gemini::internal
