#include "service/gemini/generate_codec.h"

#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "boost/json.hpp"
#include "service/gemini/json_reader.h"
#include "service/gemini/json_writer.h"

namespace vision_gateway::gemini {

using internal::Document;
using internal::EstimateContent;
using internal::Index;
using internal::Path;
using internal::JsonWriter;
using internal::ParseBounded;
using internal::ReadContent;
using internal::Reader;
using internal::ReaderFor;
using internal::Side;
using internal::SizeEstimate;
using internal::Sub;
using internal::TooBig;
using internal::ValidateContent;
using internal::WriteContent;
using internal::WriteContents;
namespace json = ::boost::json;

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
      const Path path("candidates", i);
      const json::object* c = r.Object(&(*cands)[i], path);
      if (c == nullptr) break;
      Candidate& candidate = response.candidates.emplace_back();
      const Path content_path = Sub(path, "content");
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

}  // namespace vision_gateway::gemini
