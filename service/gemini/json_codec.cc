#include "service/gemini/json_codec.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "boost/json.hpp"

namespace vision_gateway::gemini {
namespace {

namespace json = boost::json;

// ---------------------------------------------------------------------------------------------
// Encoding

// Length of the valid UTF-8 sequence at p[0..n), or 0 when it is not valid (overlong forms,
// surrogates and code points above U+10FFFF are invalid).
std::size_t Utf8SequenceLength(const unsigned char* p, std::size_t n) {
  const unsigned c = p[0];
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;
  auto cont = [&](std::size_t i) { return i < n && (p[i] & 0xC0) == 0x80; };
  if (c < 0xE0) return cont(1) ? 2 : 0;
  if (c < 0xF0) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && p[1] < 0xA0) return 0;   // overlong
    if (c == 0xED && p[1] >= 0xA0) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (c < 0xF5) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && p[1] < 0x90) return 0;   // overlong
    if (c == 0xF4 && p[1] >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

constexpr char kHexDigits[] = "0123456789abcdef";
constexpr char kReplacementEscape[] = "\\ufffd";
constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Writes compact JSON into a string, inserting commas between members and elements.
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  void BeginObject() {
    BeforeValue();
    out_ += '{';
    first_.push_back(true);
  }
  void EndObject() {
    out_ += '}';
    first_.pop_back();
  }
  void BeginArray() {
    BeforeValue();
    out_ += '[';
    first_.push_back(true);
  }
  void EndArray() {
    out_ += ']';
    first_.pop_back();
  }
  void Key(std::string_view key) {
    BeforeValue();
    AppendJsonString(out_, key);
    out_ += ':';
    after_key_ = true;
  }
  void String(std::string_view value) {
    BeforeValue();
    AppendJsonString(out_, value);
  }
  void Int(int64_t value) {
    BeforeValue();
    out_ += std::to_string(value);
  }
  void Bool(bool value) {
    BeforeValue();
    out_ += value ? "true" : "false";
  }
  void Float(float value) {
    BeforeValue();
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
    if (ec != std::errc()) {
      out_ += '0';
      return;
    }
    out_.append(buf, end);
  }
  // A JSON text that the caller validated.
  void Raw(std::string_view value) {
    BeforeValue();
    out_ += value;
  }
  void Base64(std::string_view bytes) {
    BeforeValue();
    out_ += '"';
    AppendBase64(out_, bytes);
    out_ += '"';
  }

  // Shorthands for "key": value members.
  void StringMember(std::string_view key, std::string_view value) {
    Key(key);
    String(value);
  }
  void StringMemberIfSet(std::string_view key, std::string_view value) {
    if (!value.empty()) StringMember(key, value);
  }
  void IntMemberIfNonZero(std::string_view key, int64_t value) {
    if (value == 0) return;
    Key(key);
    Int(value);
  }

 private:
  void BeforeValue() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_.empty()) {
      if (!first_.back()) out_ += ',';
      first_.back() = false;
    }
  }

  std::string& out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

void WritePart(JsonWriter& w, const Part& part) {
  w.BeginObject();
  const bool has_data = part.inline_data.has_value() || part.file_data.has_value();
  if (!part.text.empty() || !has_data) w.StringMember("text", part.text);
  if (part.inline_data) {
    w.Key("inlineData");
    w.BeginObject();
    w.StringMember("mimeType", part.inline_data->mime_type);
    w.Key("data");
    w.Base64(part.inline_data->data);
    w.EndObject();
  }
  if (part.file_data) {
    w.Key("fileData");
    w.BeginObject();
    w.StringMember("mimeType", part.file_data->mime_type);
    w.StringMember("fileUri", part.file_data->file_uri);
    w.EndObject();
  }
  if (!part.media_resolution.empty()) {
    w.Key("mediaResolution");
    w.BeginObject();
    w.StringMember("level", part.media_resolution);
    w.EndObject();
  }
  if (part.thought) {
    w.Key("thought");
    w.Bool(true);
  }
  w.StringMemberIfSet("thoughtSignature", part.thought_signature);
  w.EndObject();
}

void WriteContent(JsonWriter& w, const Content& content) {
  w.BeginObject();
  w.StringMemberIfSet("role", content.role);
  w.Key("parts");
  w.BeginArray();
  for (const Part& part : content.parts) WritePart(w, part);
  w.EndArray();
  w.EndObject();
}

void WriteContents(JsonWriter& w, const std::vector<Content>& contents) {
  w.Key("contents");
  w.BeginArray();
  for (const Content& content : contents) WriteContent(w, content);
  w.EndArray();
}

// Sizes: `exact` counts the variable payload bytes (strings, base64), `bound` adds a generous
// allowance for the fixed JSON syntax so one reservation always suffices.
struct SizeEstimate {
  std::size_t exact = 0;
  std::size_t bound = 0;
  void Add(std::size_t payload, std::size_t syntax) {
    exact += payload;
    bound += payload + syntax;
  }
};

void EstimateContent(const Content& content, SizeEstimate& size) {
  size.Add(JsonStringSize(content.role), 32);
  for (const Part& part : content.parts) {
    size.Add(JsonStringSize(part.text), 32);
    if (part.inline_data) {
      size.Add(JsonStringSize(part.inline_data->mime_type) + Base64Size(part.inline_data->data.size()),
               48);
    }
    if (part.file_data) {
      size.Add(JsonStringSize(part.file_data->mime_type) + JsonStringSize(part.file_data->file_uri),
               48);
    }
    size.Add(JsonStringSize(part.media_resolution), 40);
    size.Add(JsonStringSize(part.thought_signature), 40);
  }
}

absl::Status ValidateContent(const Content& content, std::string_view path) {
  for (std::size_t i = 0; i < content.parts.size(); ++i) {
    const Part& part = content.parts[i];
    const int data_fields = static_cast<int>(!part.text.empty()) +
                            static_cast<int>(part.inline_data.has_value()) +
                            static_cast<int>(part.file_data.has_value());
    if (data_fields > 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          std::string(path), ".parts[", i, "] sets more than one of text, inlineData, fileData"));
    }
  }
  return absl::OkStatus();
}

absl::Status TooBig(std::size_t size, std::size_t limit) {
  return absl::InvalidArgumentError(absl::StrCat("request body of ", size,
                                                 " bytes exceeds the limit of ", limit, " bytes"));
}

// ---------------------------------------------------------------------------------------------
// Decoding

// Collects the first error found while walking a parsed document.
class Reader {
 public:
  Reader(absl::StatusCode code, std::string_view prefix) : code_(code), prefix_(prefix) {}

  bool ok() const { return status_.ok(); }
  absl::Status status() const { return status_; }

  void Fail(std::string_view path, std::string_view problem) {
    if (!status_.ok()) return;
    status_ = absl::Status(code_, absl::StrCat(std::string(prefix_), ": ", std::string(path), " ",
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

  const json::object* Object(const json::value* v, std::string_view path) {
    if (v == nullptr) return nullptr;
    if (!v->is_object()) {
      Fail(path, "is not an object");
      return nullptr;
    }
    return &v->get_object();
  }

  const json::array* Array(const json::value* v, std::string_view path) {
    if (v == nullptr) return nullptr;
    if (!v->is_array()) {
      Fail(path, "is not an array");
      return nullptr;
    }
    return &v->get_array();
  }

  void String(const json::value* v, std::string_view path, std::string& out) {
    if (v == nullptr) return;
    if (!v->is_string()) {
      Fail(path, "is not a string");
      return;
    }
    const json::string& s = v->get_string();
    out.assign(s.data(), s.size());
  }

  // Enum values: names, or numbers as sent by some clients (kept as their decimal text).
  void Enum(const json::value* v, std::string_view path, std::string& out) {
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

  void Bool(const json::value* v, std::string_view path, bool& out) {
    if (v == nullptr) return;
    if (!v->is_bool()) {
      Fail(path, "is not a boolean");
      return;
    }
    out = v->get_bool();
  }

  // int32 as a JSON number or (proto3 JSON mapping) a decimal string.
  void Int32(const json::value* v, std::string_view path, int32_t& out) {
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

  void Number(const json::value* v, std::string_view path, double& out) {
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

std::string Sub(std::string_view path, std::string_view field) {
  return path.empty() ? std::string(field) : absl::StrCat(std::string(path), ".", std::string(field));
}
std::string Index(std::string_view path, std::size_t i) {
  return absl::StrCat(std::string(path), "[", i, "]");
}

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

void ReadPart(Reader& r, const json::object& o, const std::string& path, Part& part) {
  r.String(Reader::Find(o, "text"), Sub(path, "text"), part.text);
  if (const json::object* blob =
          r.Object(Reader::Find(o, "inlineData", "inline_data"), Sub(path, "inlineData"))) {
    const std::string blob_path = Sub(path, "inlineData");
    Blob& b = part.inline_data.emplace();
    r.String(Reader::Find(*blob, "mimeType", "mime_type"), Sub(blob_path, "mimeType"), b.mime_type);
    std::string encoded;
    r.String(Reader::Find(*blob, "data"), Sub(blob_path, "data"), encoded);
    if (r.ok() && !DecodeBase64(encoded, b.data)) r.Fail(Sub(blob_path, "data"), "is not base64");
  }
  if (const json::object* file =
          r.Object(Reader::Find(o, "fileData", "file_data"), Sub(path, "fileData"))) {
    const std::string file_path = Sub(path, "fileData");
    FileData& f = part.file_data.emplace();
    r.String(Reader::Find(*file, "mimeType", "mime_type"), Sub(file_path, "mimeType"), f.mime_type);
    r.String(Reader::Find(*file, "fileUri", "file_uri"), Sub(file_path, "fileUri"), f.file_uri);
  }
  if (const json::value* mr = Reader::Find(o, "mediaResolution", "media_resolution")) {
    const std::string mr_path = Sub(path, "mediaResolution");
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

void ReadContent(Reader& r, const json::object& o, const std::string& path, Content& content) {
  r.String(Reader::Find(o, "role"), Sub(path, "role"), content.role);
  const std::string parts_path = Sub(path, "parts");
  if (const json::array* parts = r.Array(Reader::Find(o, "parts"), parts_path)) {
    content.parts.reserve(parts->size());
    for (std::size_t i = 0; i < parts->size() && r.ok(); ++i) {
      const std::string part_path = Index(parts_path, i);
      if (const json::object* p = r.Object(&(*parts)[i], part_path)) {
        ReadPart(r, *p, part_path, content.parts.emplace_back());
      }
    }
  }
}

void ReadContents(Reader& r, const json::value* v, const std::string& path,
                  std::vector<Content>& contents) {
  const json::array* arr = r.Array(v, path);
  if (arr == nullptr) return;
  contents.reserve(arr->size());
  for (std::size_t i = 0; i < arr->size() && r.ok(); ++i) {
    const std::string item_path = Index(path, i);
    if (const json::object* c = r.Object(&(*arr)[i], item_path)) {
      ReadContent(r, *c, item_path, contents.emplace_back());
    }
  }
}

constexpr char kResponsePrefix[] = "malformed Gemini response";
constexpr char kRequestPrefix[] = "invalid request";

absl::Status ResponseTooBig(std::size_t size, std::size_t limit) {
  return absl::ResourceExhaustedError(absl::StrCat("Gemini response of ", size,
                                                   " bytes exceeds the limit of ", limit, " bytes"));
}

// What is being decoded: a request (tooling, the emulator's side: INVALID_ARGUMENT) or a Gemini
// response (our upstream: INTERNAL, or RESOURCE_EXHAUSTED when too big).
enum class Side { kRequest, kResponse };

Reader ReaderFor(Side side) {
  return side == Side::kRequest ? Reader(absl::StatusCode::kInvalidArgument, kRequestPrefix)
                                : Reader(absl::StatusCode::kInternal, kResponsePrefix);
}

// A parsed JSON document and the memory it lives in.
struct Document {
  json::monotonic_resource resource;
  json::value value;
  const json::object& object() const { return value.get_object(); }
};

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

}  // namespace

// ---------------------------------------------------------------------------------------------
// Building blocks

std::size_t JsonStringSize(std::string_view text) {
  std::size_t size = 2;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') {
      size += 2;
      ++i;
    } else if (c < 0x20) {
      size += 6;
      ++i;
    } else if (c < 0x80) {
      size += 1;
      ++i;
    } else {
      const std::size_t len = Utf8SequenceLength(p + i, n - i);
      if (len == 0) {
        size += sizeof(kReplacementEscape) - 1;
        ++i;
      } else {
        size += len;
        i += len;
      }
    }
  }
  return size;
}

void AppendJsonString(std::string& out, std::string_view text) {
  out += '"';
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t run_start = 0;  // start of the pending run of bytes copied verbatim
  auto flush = [&](std::size_t end) { out.append(text.data() + run_start, end - run_start); };
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      const std::size_t len = Utf8SequenceLength(p + i, n - i);
      if (len != 0) {
        i += len;
        continue;
      }
      flush(i);
      out += kReplacementEscape;
      run_start = ++i;
      continue;
    }
    flush(i);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: {
        const char esc[] = {'\\', 'u', '0', '0', kHexDigits[c >> 4], kHexDigits[c & 0xF]};
        out.append(esc, sizeof(esc));
      }
    }
    run_start = ++i;
  }
  flush(n);
  out += '"';
}

void AppendBase64(std::string& out, std::string_view bytes) {
  const std::size_t start = out.size();
  out.resize(start + Base64Size(bytes.size()));
  char* dst = out.data() + start;
  const auto* src = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t i = 0;
  const std::size_t n = bytes.size();
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (uint32_t{src[i]} << 16) | (uint32_t{src[i + 1]} << 8) | src[i + 2];
    *dst++ = kBase64Alphabet[(v >> 18) & 63];
    *dst++ = kBase64Alphabet[(v >> 12) & 63];
    *dst++ = kBase64Alphabet[(v >> 6) & 63];
    *dst++ = kBase64Alphabet[v & 63];
  }
  if (n - i == 1) {
    const uint32_t v = uint32_t{src[i]} << 16;
    *dst++ = kBase64Alphabet[(v >> 18) & 63];
    *dst++ = kBase64Alphabet[(v >> 12) & 63];
    *dst++ = '=';
    *dst++ = '=';
  } else if (n - i == 2) {
    const uint32_t v = (uint32_t{src[i]} << 16) | (uint32_t{src[i + 1]} << 8);
    *dst++ = kBase64Alphabet[(v >> 18) & 63];
    *dst++ = kBase64Alphabet[(v >> 12) & 63];
    *dst++ = kBase64Alphabet[(v >> 6) & 63];
    *dst++ = '=';
  }
}

// ---------------------------------------------------------------------------------------------
// Requests

absl::StatusOr<std::string> EncodeGenerateContentRequest(const GenerateContentRequest& request,
                                                         const JsonCodecOptions& options) {
  // Validate and size everything before writing a byte.
  SizeEstimate size;
  size.Add(0, 128);
  for (std::size_t i = 0; i < request.contents.size(); ++i) {
    absl::Status s = ValidateContent(request.contents[i], absl::StrCat("contents[", i, "]"));
    if (!s.ok()) return s;
    EstimateContent(request.contents[i], size);
  }
  if (request.system_instruction) {
    absl::Status s = ValidateContent(*request.system_instruction, "systemInstruction");
    if (!s.ok()) return s;
    EstimateContent(*request.system_instruction, size);
  }
  if (const auto& gc = request.generation_config) {
    if (gc->temperature && !std::isfinite(*gc->temperature)) {
      return absl::InvalidArgumentError("generationConfig.temperature is not finite");
    }
    if (!gc->response_json_schema.empty()) {
      json::parse_options opts;
      opts.max_depth = 128;
      json::error_code ec;
      json::monotonic_resource resource;
      (void)json::parse(
          json::string_view(gc->response_json_schema.data(), gc->response_json_schema.size()), ec,
          &resource, opts);
      if (ec) {
        return absl::InvalidArgumentError(absl::StrCat(
            "generationConfig.responseJsonSchema is not a JSON document (", ec.message(), ")"));
      }
    }
    size.Add(gc->response_json_schema.size() + JsonStringSize(gc->response_mime_type) +
                 JsonStringSize(gc->media_resolution),
             512);
    if (gc->thinking_config) size.Add(JsonStringSize(gc->thinking_config->thinking_level), 128);
  }
  for (const SafetySetting& s : request.safety_settings) {
    size.Add(JsonStringSize(s.category) + JsonStringSize(s.threshold), 48);
  }
  if (size.exact > options.max_body_bytes) return TooBig(size.exact, options.max_body_bytes);

  std::string body;
  body.reserve(size.bound);
  JsonWriter w(body);
  w.BeginObject();
  WriteContents(w, request.contents);
  if (request.system_instruction) {
    w.Key("systemInstruction");
    WriteContent(w, *request.system_instruction);
  }
  if (const auto& gc = request.generation_config) {
    w.Key("generationConfig");
    w.BeginObject();
    if (gc->temperature) {
      w.Key("temperature");
      w.Float(*gc->temperature);
    }
    if (gc->max_output_tokens) {
      w.Key("maxOutputTokens");
      w.Int(*gc->max_output_tokens);
    }
    w.StringMemberIfSet("responseMimeType", gc->response_mime_type);
    if (!gc->response_json_schema.empty()) {
      w.Key("responseJsonSchema");
      w.Raw(gc->response_json_schema);
    }
    w.StringMemberIfSet("mediaResolution", gc->media_resolution);
    if (const auto& tc = gc->thinking_config) {
      w.Key("thinkingConfig");
      w.BeginObject();
      if (tc->thinking_budget) {
        w.Key("thinkingBudget");
        w.Int(*tc->thinking_budget);
      }
      w.StringMemberIfSet("thinkingLevel", tc->thinking_level);
      if (tc->include_thoughts) {
        w.Key("includeThoughts");
        w.Bool(*tc->include_thoughts);
      }
      w.EndObject();
    }
    w.EndObject();
  }
  if (!request.safety_settings.empty()) {
    w.Key("safetySettings");
    w.BeginArray();
    for (const SafetySetting& s : request.safety_settings) {
      w.BeginObject();
      w.StringMember("category", s.category);
      w.StringMember("threshold", s.threshold);
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  if (body.size() > options.max_body_bytes) return TooBig(body.size(), options.max_body_bytes);
  return body;
}

absl::StatusOr<std::string> EncodeCountTokensRequest(const CountTokensRequest& request,
                                                     const JsonCodecOptions& options) {
  SizeEstimate size;
  size.Add(0, 32);
  for (std::size_t i = 0; i < request.contents.size(); ++i) {
    absl::Status s = ValidateContent(request.contents[i], absl::StrCat("contents[", i, "]"));
    if (!s.ok()) return s;
    EstimateContent(request.contents[i], size);
  }
  if (size.exact > options.max_body_bytes) return TooBig(size.exact, options.max_body_bytes);
  std::string body;
  body.reserve(size.bound);
  JsonWriter w(body);
  w.BeginObject();
  WriteContents(w, request.contents);
  w.EndObject();
  if (body.size() > options.max_body_bytes) return TooBig(body.size(), options.max_body_bytes);
  return body;
}

absl::StatusOr<GenerateContentRequest> DecodeGenerateContentRequest(
    std::string_view text, const JsonCodecOptions& options) {
  Document doc;
  if (absl::Status parsed = ParseBounded(text, options, Side::kRequest, doc); !parsed.ok()) {
    return parsed;
  }
  const json::object& o = doc.object();
  Reader r = ReaderFor(Side::kRequest);
  GenerateContentRequest request;
  ReadContents(r, Reader::Find(o, "contents"), "contents", request.contents);
  if (const json::object* si = r.Object(Reader::Find(o, "systemInstruction", "system_instruction"),
                                        "systemInstruction")) {
    ReadContent(r, *si, "systemInstruction", request.system_instruction.emplace());
  }
  if (const json::object* gc = r.Object(Reader::Find(o, "generationConfig", "generation_config"),
                                        "generationConfig")) {
    GenerationConfig& config = request.generation_config.emplace();
    if (const json::value* t = Reader::Find(*gc, "temperature")) {
      double temperature = 0;
      r.Number(t, "generationConfig.temperature", temperature);
      config.temperature = static_cast<float>(temperature);
    }
    if (const json::value* m = Reader::Find(*gc, "maxOutputTokens", "max_output_tokens")) {
      r.Int32(m, "generationConfig.maxOutputTokens", config.max_output_tokens.emplace());
    }
    r.String(Reader::Find(*gc, "responseMimeType", "response_mime_type"),
             "generationConfig.responseMimeType", config.response_mime_type);
    if (const json::value* schema = Reader::Find(*gc, "responseJsonSchema", "response_json_schema")) {
      config.response_json_schema = json::serialize(*schema);
    }
    r.Enum(Reader::Find(*gc, "mediaResolution", "media_resolution"),
           "generationConfig.mediaResolution", config.media_resolution);
    if (const json::object* tc = r.Object(Reader::Find(*gc, "thinkingConfig", "thinking_config"),
                                          "generationConfig.thinkingConfig")) {
      ThinkingConfig& thinking = config.thinking_config.emplace();
      if (const json::value* b = Reader::Find(*tc, "thinkingBudget", "thinking_budget")) {
        r.Int32(b, "generationConfig.thinkingConfig.thinkingBudget",
                thinking.thinking_budget.emplace());
      }
      r.Enum(Reader::Find(*tc, "thinkingLevel", "thinking_level"),
             "generationConfig.thinkingConfig.thinkingLevel", thinking.thinking_level);
      if (const json::value* inc = Reader::Find(*tc, "includeThoughts", "include_thoughts")) {
        r.Bool(inc, "generationConfig.thinkingConfig.includeThoughts",
               thinking.include_thoughts.emplace());
      }
    }
  }
  if (const json::array* ss =
          r.Array(Reader::Find(o, "safetySettings", "safety_settings"), "safetySettings")) {
    for (std::size_t i = 0; i < ss->size() && r.ok(); ++i) {
      const std::string path = Index("safetySettings", i);
      if (const json::object* s = r.Object(&(*ss)[i], path)) {
        SafetySetting& setting = request.safety_settings.emplace_back();
        r.Enum(Reader::Find(*s, "category"), Sub(path, "category"), setting.category);
        r.Enum(Reader::Find(*s, "threshold"), Sub(path, "threshold"), setting.threshold);
      }
    }
  }
  if (!r.ok()) return r.status();
  return request;
}

absl::StatusOr<CountTokensRequest> DecodeCountTokensRequest(std::string_view text,
                                                            const JsonCodecOptions& options) {
  Document doc;
  if (absl::Status parsed = ParseBounded(text, options, Side::kRequest, doc); !parsed.ok()) {
    return parsed;
  }
  Reader r = ReaderFor(Side::kRequest);
  CountTokensRequest request;
  const json::object* o = &doc.object();
  std::string path = "contents";
  if (const json::object* inner =
          r.Object(Reader::Find(*o, "generateContentRequest", "generate_content_request"),
                   "generateContentRequest")) {
    o = inner;
    path = "generateContentRequest.contents";
  }
  ReadContents(r, Reader::Find(*o, "contents"), path, request.contents);
  if (!r.ok()) return r.status();
  return request;
}

// ---------------------------------------------------------------------------------------------
// Responses

absl::StatusOr<GenerateContentResponse> DecodeGenerateContentResponse(
    std::string_view text, const JsonCodecOptions& options) {
  Document doc;
  if (absl::Status parsed = ParseBounded(text, options, Side::kResponse, doc); !parsed.ok()) {
    return parsed;
  }
  const json::object& o = doc.object();
  Reader r = ReaderFor(Side::kResponse);
  GenerateContentResponse response;
  if (const json::array* cands = r.Array(Reader::Find(o, "candidates"), "candidates")) {
    response.candidates.reserve(cands->size());
    for (std::size_t i = 0; i < cands->size() && r.ok(); ++i) {
      const std::string path = Index("candidates", i);
      const json::object* c = r.Object(&(*cands)[i], path);
      if (c == nullptr) break;
      Candidate& candidate = response.candidates.emplace_back();
      const std::string content_path = Sub(path, "content");
      if (const json::object* content = r.Object(Reader::Find(*c, "content"), content_path)) {
        ReadContent(r, *content, content_path, candidate.content);
      }
      r.String(Reader::Find(*c, "finishReason", "finish_reason"), Sub(path, "finishReason"),
               candidate.finish_reason);
      r.Int32(Reader::Find(*c, "index"), Sub(path, "index"), candidate.index);
    }
  }
  if (const json::object* pf =
          r.Object(Reader::Find(o, "promptFeedback", "prompt_feedback"), "promptFeedback")) {
    r.String(Reader::Find(*pf, "blockReason", "block_reason"), "promptFeedback.blockReason",
             response.prompt_feedback.emplace().block_reason);
  }
  if (const json::object* um =
          r.Object(Reader::Find(o, "usageMetadata", "usage_metadata"), "usageMetadata")) {
    UsageMetadata& usage = response.usage_metadata.emplace();
    r.Int32(Reader::Find(*um, "promptTokenCount", "prompt_token_count"),
            "usageMetadata.promptTokenCount", usage.prompt_token_count);
    r.Int32(Reader::Find(*um, "candidatesTokenCount", "candidates_token_count"),
            "usageMetadata.candidatesTokenCount", usage.candidates_token_count);
    r.Int32(Reader::Find(*um, "thoughtsTokenCount", "thoughts_token_count"),
            "usageMetadata.thoughtsTokenCount", usage.thoughts_token_count);
    r.Int32(Reader::Find(*um, "totalTokenCount", "total_token_count"),
            "usageMetadata.totalTokenCount", usage.total_token_count);
    r.Int32(Reader::Find(*um, "cachedContentTokenCount", "cached_content_token_count"),
            "usageMetadata.cachedContentTokenCount", usage.cached_content_token_count);
  }
  r.String(Reader::Find(o, "modelVersion", "model_version"), "modelVersion", response.model_version);
  r.String(Reader::Find(o, "responseId", "response_id"), "responseId", response.response_id);
  if (!r.ok()) return r.status();
  return response;
}

absl::StatusOr<CountTokensResponse> DecodeCountTokensResponse(std::string_view text,
                                                              const JsonCodecOptions& options) {
  Document doc;
  if (absl::Status parsed = ParseBounded(text, options, Side::kResponse, doc); !parsed.ok()) {
    return parsed;
  }
  const json::object& o = doc.object();
  Reader r = ReaderFor(Side::kResponse);
  CountTokensResponse response;
  r.Int32(Reader::Find(o, "totalTokens", "total_tokens"), "totalTokens", response.total_tokens);
  r.Int32(Reader::Find(o, "cachedContentTokenCount", "cached_content_token_count"),
          "cachedContentTokenCount", response.cached_content_token_count);
  if (!r.ok()) return r.status();
  return response;
}

std::string EncodeGenerateContentResponse(const GenerateContentResponse& response) {
  SizeEstimate size;
  size.Add(JsonStringSize(response.model_version) + JsonStringSize(response.response_id), 512);
  for (const Candidate& c : response.candidates) {
    EstimateContent(c.content, size);
    size.Add(JsonStringSize(c.finish_reason), 96);
  }
  if (response.prompt_feedback) size.Add(JsonStringSize(response.prompt_feedback->block_reason), 48);
  std::string body;
  body.reserve(size.bound);
  JsonWriter w(body);
  w.BeginObject();
  if (!response.candidates.empty()) {
    w.Key("candidates");
    w.BeginArray();
    for (const Candidate& c : response.candidates) {
      w.BeginObject();
      w.Key("content");
      WriteContent(w, c.content);
      w.StringMemberIfSet("finishReason", c.finish_reason);
      w.Key("index");
      w.Int(c.index);
      w.EndObject();
    }
    w.EndArray();
  }
  if (response.prompt_feedback) {
    w.Key("promptFeedback");
    w.BeginObject();
    w.StringMemberIfSet("blockReason", response.prompt_feedback->block_reason);
    w.EndObject();
  }
  if (const auto& u = response.usage_metadata) {
    w.Key("usageMetadata");
    w.BeginObject();
    w.IntMemberIfNonZero("promptTokenCount", u->prompt_token_count);
    w.IntMemberIfNonZero("candidatesTokenCount", u->candidates_token_count);
    w.IntMemberIfNonZero("totalTokenCount", u->total_token_count);
    w.IntMemberIfNonZero("thoughtsTokenCount", u->thoughts_token_count);
    w.IntMemberIfNonZero("cachedContentTokenCount", u->cached_content_token_count);
    w.EndObject();
  }
  w.StringMemberIfSet("modelVersion", response.model_version);
  w.StringMemberIfSet("responseId", response.response_id);
  w.EndObject();
  return body;
}

std::string EncodeCountTokensResponse(const CountTokensResponse& response) {
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("totalTokens");
  w.Int(response.total_tokens);
  w.IntMemberIfNonZero("cachedContentTokenCount", response.cached_content_token_count);
  w.EndObject();
  return body;
}

// ---------------------------------------------------------------------------------------------
// Files API

namespace {

constexpr std::size_t kMaxDisplayNameBytes = 512;

void ReadTime(Reader& r, const json::value* v, std::string_view path, absl::Time& out) {
  std::string text;
  r.String(v, path, text);
  if (!r.ok() || text.empty()) return;
  absl::Time t;
  std::string error;
  if (text.size() > 64 || !absl::ParseTime(absl::RFC3339_full, text, &t, &error)) {
    r.Fail(path, "is not an RFC 3339 timestamp");
    return;
  }
  out = t;
}

void ReadInt64(Reader& r, const json::value* v, std::string_view path, int64_t& out) {
  if (v == nullptr) return;
  if (v->is_int64()) {
    out = v->get_int64();
    return;
  }
  if (v->is_string()) {
    const json::string& s = v->get_string();
    if (absl::SimpleAtoi(absl::string_view(s.data(), s.size()), &out)) return;
  }
  r.Fail(path, "is not a 64-bit integer");
}

void ReadFile(Reader& r, const json::object& o, const std::string& path, File& file) {
  r.String(Reader::Find(o, "name"), Sub(path, "name"), file.name);
  r.String(Reader::Find(o, "displayName", "display_name"), Sub(path, "displayName"),
           file.display_name);
  r.String(Reader::Find(o, "mimeType", "mime_type"), Sub(path, "mimeType"), file.mime_type);
  ReadInt64(r, Reader::Find(o, "sizeBytes", "size_bytes"), Sub(path, "sizeBytes"),
            file.size_bytes);
  ReadTime(r, Reader::Find(o, "createTime", "create_time"), Sub(path, "createTime"),
           file.create_time);
  ReadTime(r, Reader::Find(o, "updateTime", "update_time"), Sub(path, "updateTime"),
           file.update_time);
  ReadTime(r, Reader::Find(o, "expirationTime", "expiration_time"), Sub(path, "expirationTime"),
           file.expiration_time);
  r.String(Reader::Find(o, "sha256Hash", "sha256_hash"), Sub(path, "sha256Hash"),
           file.sha256_hash);
  r.String(Reader::Find(o, "uri"), Sub(path, "uri"), file.uri);
  r.Enum(Reader::Find(o, "state"), Sub(path, "state"), file.state);
  if (const json::object* error = r.Object(Reader::Find(o, "error"), Sub(path, "error"))) {
    r.String(Reader::Find(*error, "message"), Sub(path, "error.message"), file.error_message);
  }
  if (r.ok() && file.size_bytes < 0) r.Fail(Sub(path, "sizeBytes"), "is negative");
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

}  // namespace

absl::StatusOr<std::string> EncodeStartUploadBody(const StartUploadRequest& request) {
  if (request.display_name.size() > kMaxDisplayNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("display_name: at most ", kMaxDisplayNameBytes, " bytes"));
  }
  std::string body = "{\"file\":{";
  bool first = true;
  if (!request.display_name.empty()) {
    body += "\"displayName\":";
    AppendJsonString(body, request.display_name);
    first = false;
  }
  if (!request.name.empty()) {
    if (!first) body += ",";
    body += "\"name\":";
    AppendJsonString(body, request.name);
  }
  body += "}}";
  return body;
}

absl::StatusOr<File> DecodeFile(std::string_view text, const JsonCodecOptions& options) {
  Document doc;
  if (absl::Status parsed = ParseBounded(text, options, Side::kResponse, doc); !parsed.ok()) {
    return parsed;
  }
  Reader r = ReaderFor(Side::kResponse);
  File file;
  ReadFile(r, doc.object(), "", file);
  if (!r.ok()) return r.status();
  return file;
}

absl::StatusOr<File> DecodeWrappedFile(std::string_view text, const JsonCodecOptions& options) {
  Document doc;
  if (absl::Status parsed = ParseBounded(text, options, Side::kResponse, doc); !parsed.ok()) {
    return parsed;
  }
  Reader r = ReaderFor(Side::kResponse);
  const json::object* o = r.Object(Reader::Find(doc.object(), "file"), "file");
  if (o == nullptr) {
    if (!r.ok()) return r.status();
    return absl::InternalError(absl::StrCat(kResponsePrefix, ": file is missing"));
  }
  File file;
  ReadFile(r, *o, "file", file);
  if (!r.ok()) return r.status();
  return file;
}

absl::StatusOr<ListFilesResponse> DecodeListFilesResponse(std::string_view text,
                                                          const JsonCodecOptions& options) {
  Document doc;
  if (absl::Status parsed = ParseBounded(text, options, Side::kResponse, doc); !parsed.ok()) {
    return parsed;
  }
  Reader r = ReaderFor(Side::kResponse);
  ListFilesResponse response;
  if (const json::array* files = r.Array(Reader::Find(doc.object(), "files"), "files")) {
    response.files.reserve(files->size());
    for (std::size_t i = 0; i < files->size() && r.ok(); ++i) {
      const std::string path = Index("files", i);
      if (const json::object* f = r.Object(&(*files)[i], path)) {
        ReadFile(r, *f, path, response.files.emplace_back());
      }
    }
  }
  r.String(Reader::Find(doc.object(), "nextPageToken", "next_page_token"), "nextPageToken",
           response.next_page_token);
  if (!r.ok()) return r.status();
  return response;
}

absl::StatusOr<ListModelsResponse> DecodeListModelsResponse(std::string_view text,
                                                            const JsonCodecOptions& options) {
  constexpr std::size_t kMaxNameBytes = 256;
  constexpr std::size_t kMaxMethods = 64;
  Document doc;
  if (absl::Status parsed = ParseBounded(text, options, Side::kResponse, doc); !parsed.ok()) {
    return parsed;
  }
  Reader r = ReaderFor(Side::kResponse);
  ListModelsResponse response;
  if (const json::array* models = r.Array(Reader::Find(doc.object(), "models"), "models")) {
    if (models->size() > kMaxModelsPerPage) r.Fail("models", "holds too many models");
    response.models.reserve(std::min(models->size(), kMaxModelsPerPage));
    for (std::size_t i = 0; i < models->size() && r.ok(); ++i) {
      const std::string path = Index("models", i);
      const json::object* m = r.Object(&(*models)[i], path);
      if (m == nullptr) continue;
      Model& model = response.models.emplace_back();
      r.String(Reader::Find(*m, "name"), Sub(path, "name"), model.name);
      r.String(Reader::Find(*m, "displayName", "display_name"), Sub(path, "displayName"),
               model.display_name);
      r.String(Reader::Find(*m, "version"), Sub(path, "version"), model.version);
      r.Int32(Reader::Find(*m, "inputTokenLimit", "input_token_limit"),
              Sub(path, "inputTokenLimit"), model.input_token_limit);
      r.Int32(Reader::Find(*m, "outputTokenLimit", "output_token_limit"),
              Sub(path, "outputTokenLimit"), model.output_token_limit);
      r.Bool(Reader::Find(*m, "thinking"), Sub(path, "thinking"), model.thinking);
      if (const json::array* methods =
              r.Array(Reader::Find(*m, "supportedGenerationMethods", "supported_generation_methods"),
                      Sub(path, "supportedGenerationMethods"))) {
        for (std::size_t j = 0; j < methods->size() && j < kMaxMethods && r.ok(); ++j) {
          r.String(&(*methods)[j], Sub(path, "supportedGenerationMethods"),
                   model.supported_generation_methods.emplace_back());
        }
      }
      if (r.ok() && (model.name.empty() || model.name.size() > kMaxNameBytes)) {
        r.Fail(Sub(path, "name"), "is empty or too long");
      }
    }
  }
  r.String(Reader::Find(doc.object(), "nextPageToken", "next_page_token"), "nextPageToken",
           response.next_page_token);
  if (!r.ok()) return r.status();
  return response;
}

std::string EncodeFile(const File& file) {
  std::string out = "{\"name\":";
  AppendJsonString(out, file.name);
  if (!file.display_name.empty()) {
    out += ",\"displayName\":";
    AppendJsonString(out, file.display_name);
  }
  out += ",\"mimeType\":";
  AppendJsonString(out, file.mime_type);
  absl::StrAppend(&out, ",\"sizeBytes\":\"", file.size_bytes, "\"");
  auto time = [&out](std::string_view key, absl::Time t) {
    if (t == absl::InfinitePast()) return;
    absl::StrAppend(&out, ",\"", std::string(key), "\":\"", Rfc3339(t), "\"");
  };
  time("createTime", file.create_time);
  time("updateTime", file.update_time);
  time("expirationTime", file.expiration_time);
  if (!file.sha256_hash.empty()) {
    out += ",\"sha256Hash\":";
    AppendJsonString(out, file.sha256_hash);
  }
  out += ",\"uri\":";
  AppendJsonString(out, file.uri);
  if (!file.state.empty()) {
    out += ",\"state\":";
    AppendJsonString(out, file.state);
  }
  if (!file.error_message.empty()) {
    out += ",\"error\":{\"message\":";
    AppendJsonString(out, file.error_message);
    out += "}";
  }
  out += "}";
  return out;
}

}  // namespace vision_gateway::gemini
