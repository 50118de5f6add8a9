#include "service/gemini/reverse_codec.h"

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "boost/json.hpp"
#include "service/gemini/json_reader.h"
#include "service/gemini/json_text.h"
#include "service/gemini/json_writer.h"

namespace vision_gateway::gemini {
namespace {

using internal::Document;
using internal::EstimateContent;
using internal::Index;
using internal::Path;
using internal::JsonWriter;
using internal::ParseBounded;
using internal::ReadContent;
using internal::ReadContents;
using internal::Reader;
using internal::ReaderFor;
using internal::Side;
using internal::SizeEstimate;
using internal::Sub;
using internal::WriteContent;
namespace json = ::boost::json;

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Requests, as Gemini receives them

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
      const Path path("safetySettings", i);
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
// Responses, as Gemini sends them


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
// Files

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
