// Private to the Gemini JSON codecs (service/gemini/*_codec.cc): bounded parsing into an arena
// and a reader that walks the parsed document collecting the first error, with the field's path
// and never its value. Not part of the public API (json_codec.h); the only codec header that
// names Boost.JSON types.
#ifndef VISION_GATEWAY_SERVICE_GEMINI_JSON_READER_H_
#define VISION_GATEWAY_SERVICE_GEMINI_JSON_READER_H_

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "boost/json.hpp"
#include "service/gemini/json_codec_options.h"
#include "service/gemini/types.h"

namespace vision_gateway::gemini::internal {

namespace json = ::boost::json;

// The path of a field in a document, for error messages: "candidates[0].content.parts[1].text".
// Built only when an error names it: a Path is a chain of segments that point to their parents
// (on the caller's stack), so walking a valid document allocates no path strings. A Path must
// not outlive its parent.
class Path {
 public:
  // A root: "contents", "usageMetadata.promptTokenCount", or "" (the document itself).
  Path(const char* root) : text_(root) {}  // NOLINT(google-explicit-constructor)
  Path(std::string_view root) : text_(root) {}  // NOLINT(google-explicit-constructor)
  Path(const std::string& root) : text_(root) {}  // NOLINT(google-explicit-constructor)
  // root[index], e.g. Path("candidates", 0).
  Path(std::string_view root, std::size_t index) : text_(root), index_(index), indexed_(true) {}
  Path(const char* root, std::size_t index) : Path(std::string_view(root), index) {}
  // parent.field ("field" when the parent's text is empty).
  Path(const Path& parent, std::string_view field) : parent_(&parent), text_(field) {}
  // parent[index].
  Path(const Path& parent, std::size_t index) : parent_(&parent), index_(index), indexed_(true) {}

  std::string ToString() const {
    std::string out = parent_ != nullptr ? parent_->ToString() : std::string();
    if (!text_.empty()) {
      if (!out.empty()) out += '.';
      out.append(text_.data(), text_.size());
    }
    if (indexed_) absl::StrAppend(&out, "[", index_, "]");
    return out;
  }

 private:
  const Path* parent_ = nullptr;
  std::string_view text_;
  std::size_t index_ = 0;
  bool indexed_ = false;
};

// Collects the first error found while walking a parsed document.
class Reader {
 public:
  Reader(absl::StatusCode code, std::string_view prefix) : code_(code), prefix_(prefix) {}

  bool ok() const { return status_.ok(); }
  absl::Status status() const { return status_; }

  void Fail(const Path& path, std::string_view problem) {
    if (!status_.ok()) return;
    status_ = absl::Status(code_, absl::StrCat(std::string(prefix_), ": ", path.ToString(), " ",
                                               std::string(problem)));
  }

  // The member named `camel` (or `snake`, when given); nullptr when absent or null.
  static const json::value* Find(const json::object& o, std::string_view camel,
                                 std::string_view snake = {}) {
    const json::value* v = o.if_contains(json::string_view(camel.data(), camel.size()));
    if (v == nullptr && !snake.empty()) {
      v = o.if_contains(json::string_view(snake.data(), snake.size()));
    }
    if (v != nullptr && v->is_null()) return nullptr;
    return v;
  }

  const json::object* Object(const json::value* v, const Path& path) {
    if (v == nullptr) return nullptr;
    if (!v->is_object()) {
      Fail(path, "is not an object");
      return nullptr;
    }
    return &v->get_object();
  }

  const json::array* Array(const json::value* v, const Path& path) {
    if (v == nullptr) return nullptr;
    if (!v->is_array()) {
      Fail(path, "is not an array");
      return nullptr;
    }
    return &v->get_array();
  }

  void String(const json::value* v, const Path& path, std::string& out) {
    if (v == nullptr) return;
    if (!v->is_string()) {
      Fail(path, "is not a string");
      return;
    }
    const json::string& s = v->get_string();
    out.assign(s.data(), s.size());
  }

  // Enum values: names, or numbers as sent by some clients (kept as their decimal text).
  void Enum(const json::value* v, const Path& path, std::string& out) {
    if (v != nullptr && (v->is_int64() || v->is_uint64())) {
      out = v->is_int64() ? std::to_string(v->get_int64()) : std::to_string(v->get_uint64());
      return;
    }
    if (v != nullptr && !v->is_string()) {
      Fail(path, "is not an enum name");
      return;
    }
    String(v, path, out);
  }

  void Bool(const json::value* v, const Path& path, bool& out) {
    if (v == nullptr) return;
    if (!v->is_bool()) {
      Fail(path, "is not a boolean");
      return;
    }
    out = v->get_bool();
  }

  // int32 as a JSON number or (proto3 JSON mapping) a decimal string.
  void Int32(const json::value* v, const Path& path, int32_t& out) {
    if (v == nullptr) return;
    constexpr int64_t kMin = std::numeric_limits<int32_t>::min();
    constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
    if (v->is_int64()) {
      const int64_t n = v->get_int64();
      if (n >= kMin && n <= kMax) {
        out = static_cast<int32_t>(n);
        return;
      }
    } else if (v->is_uint64()) {
      // Always above int32 range: uint64 is used only for values above INT64_MAX.
    } else if (v->is_double()) {
      const double d = v->get_double();
      if (std::isfinite(d) && d == std::floor(d) && d >= kMin && d <= kMax) {
        out = static_cast<int32_t>(d);
        return;
      }
    } else if (v->is_string()) {
      const json::string& s = v->get_string();
      int32_t n = 0;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
      if (ec == std::errc() && end == s.data() + s.size() && !s.empty()) {
        out = n;
        return;
      }
    }
    Fail(path, "is not a 32-bit integer");
  }

  void Number(const json::value* v, const Path& path, double& out) {
    if (v == nullptr) return;
    if (v->is_double()) {
      out = v->get_double();
    } else if (v->is_int64()) {
      out = static_cast<double>(v->get_int64());
    } else if (v->is_uint64()) {
      out = static_cast<double>(v->get_uint64());
    } else {
      Fail(path, "is not a number");
    }
  }

 private:
  absl::StatusCode code_;
  std::string_view prefix_;
  absl::Status status_;
};

// "path.field" ("field" when path is empty) and "path[i]".
inline Path Sub(const Path& path, std::string_view field) { return Path(path, field); }
inline Path Index(const Path& path, std::size_t i) { return Path(path, i); }

// Base64 (standard or URL-safe alphabet, padding optional) into `out`. False on a bad character
// or length.
bool DecodeBase64(std::string_view in, std::string& out);

// Content and Part, lowerCamelCase or snake_case keys; inlineData.data is decoded from base64.
void ReadPart(Reader& r, const json::object& o, const Path& path, Part& part);
void ReadContent(Reader& r, const json::object& o, const Path& path, Content& content);
void ReadContents(Reader& r, const json::value* v, const Path& path,
                  std::vector<Content>& contents);

inline constexpr char kResponsePrefix[] = "malformed Gemini response";
inline constexpr char kRequestPrefix[] = "invalid request";

// What is being decoded: a request (tooling, the emulator's side: INVALID_ARGUMENT) or a Gemini
// response (our upstream: INTERNAL, or RESOURCE_EXHAUSTED when too big).
enum class Side { kRequest, kResponse };

Reader ReaderFor(Side side);

// A parsed JSON document and the memory it lives in. The value is bound to the arena before
// parsing, so the parsed tree is moved into it, not deep-copied to the heap (a value assigned
// across memory resources is copied node by node); the arena's first block is inline, so a
// typical stream event (a few hundred bytes of JSON) is decoded without touching the heap.
struct Document {
  static constexpr std::size_t kInlineBytes = 4096;

  Document() = default;
  Document(const Document&) = delete;
  Document& operator=(const Document&) = delete;

  const json::object& object() const { return value.get_object(); }

  alignas(std::max_align_t) unsigned char inline_block[kInlineBytes];
  json::monotonic_resource resource{inline_block, kInlineBytes};
  json::value value = json::value(json::storage_ptr(&resource));
};

// Checks the size of `text`, parses it into `doc` and checks it is a JSON object. Errors never
// echo the text.
absl::Status ParseBounded(std::string_view text, const JsonCodecOptions& options, Side side,
                          Document& doc);

}  // namespace vision_gateway::gemini::internal

#endif  // VISION_GATEWAY_SERVICE_GEMINI_JSON_READER_H_
