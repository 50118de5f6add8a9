// Private to the Gemini JSON codecs (service/gemini/*_codec.cc): a compact JSON writer and the
// Content/Part encoding and size estimate that requests and responses share. Not part of the
// public API (json_codec.h); free of Boost types.
#ifndef VISION_GATEWAY_SERVICE_GEMINI_JSON_WRITER_H_
#define VISION_GATEWAY_SERVICE_GEMINI_JSON_WRITER_H_

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "service/gemini/json_text.h"
#include "service/gemini/types.h"

namespace vision_gateway::gemini::internal {

inline constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Writes compact JSON into a string, inserting commas between members and elements.
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  void BeginObject() {
    BeforeValue();
    out_ += '{';
    Push();
  }
  void EndObject() {
    out_ += '}';
    --depth_;
  }
  void BeginArray() {
    BeforeValue();
    out_ += '[';
    Push();
  }
  void EndArray() {
    out_ += ']';
    --depth_;
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
    char buf[24];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
    out_.append(buf, end);
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
    if (depth_ > 0) {
      const uint64_t bit = uint64_t{1} << ((depth_ - 1) % 64);
      if ((has_value_ & bit) != 0) out_ += ',';
      has_value_ |= bit;
    }
  }

  std::string& out_;
  // A new object or array: nothing written in it yet. Nesting deeper than 64 levels (never, for
  // Gemini's messages) would reuse bits; the writer's callers nest at most 8.
  void Push() {
    ++depth_;
    has_value_ &= ~(uint64_t{1} << ((depth_ - 1) % 64));
  }

  // Bit d-1: the container open at depth d already holds a value (a comma goes before the next).
  uint64_t has_value_ = 0;
  int depth_ = 0;
  bool after_key_ = false;
};

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

// Writes {"role"?, "parts": [...]} / "contents": [...] (a Part's text is written when it has no
// other data, so an empty part stays valid JSON for Gemini).
void WritePart(JsonWriter& w, const Part& part);
void WriteContent(JsonWriter& w, const Content& content);
void WriteContents(JsonWriter& w, const std::vector<Content>& contents);

// Adds what WriteContent(content) writes to `size`.
void EstimateContent(const Content& content, SizeEstimate& size);

// INVALID_ARGUMENT naming `path` when a part sets more than one of text, inlineData, fileData.
absl::Status ValidateContent(const Content& content, std::string_view path);

// INVALID_ARGUMENT "request body of N bytes exceeds the limit of M bytes".
absl::Status TooBig(std::size_t size, std::size_t limit);

}  // namespace vision_gateway::gemini::internal

#endif  // VISION_GATEWAY_SERVICE_GEMINI_JSON_WRITER_H_
