#include "service/gemini/json_writer.h"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "service/gemini/json_text.h"
#include "service/gemini/types.h"

namespace vision_gateway::gemini::internal {

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
}  // namespace vision_gateway::gemini::internal
