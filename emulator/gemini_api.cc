// Gemini model methods of the emulator, and the wire builders of gemini_wire.h (they share
// the JSON serialisers, which are Boost.JSON-typed and so stay in this file).
#include "emulator/gemini_api.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "emulator/gemini_wire.h"
#include "emulator/scene.h"

namespace vision_gateway::emulator {
namespace {

namespace json = boost::json;

constexpr std::string_view kDetailsPayload = "type.googleapis.com/emulator.ErrorDetails";
constexpr std::string_view kJsonContentType = "application/json; charset=UTF-8";
constexpr int kFileTokens = 258;  // non-image media and images whose size is unknown

absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }
json::string_view Js(std::string_view s) { return json::string_view(s.data(), s.size()); }
std::string_view Sv(json::string_view s) { return std::string_view(s.data(), s.size()); }

// ---------------------------------------------------------------------------------------------
// Serialisers.

void AppendScalar(const json::value& value, std::string& out) {
  if (value.is_double()) {
    char buffer[32];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value.get_double());
    if (ec == std::errc()) {
      out.append(buffer, end);
      return;
    }
  }
  out += json::serialize(value);
}

void AppendKey(json::string_view key, std::string& out) { out += json::serialize(json::string(key)); }

// {"a": 1,"b": [1,2]}: ": " after keys, "," between members (Google's SSE payloads).
void AppendCompact(const json::value& value, std::string& out) {
  if (value.is_object()) {
    out += '{';
    bool first = true;
    for (const auto& member : value.get_object()) {
      if (!first) out += ',';
      first = false;
      AppendKey(member.key(), out);
      out += ": ";
      AppendCompact(member.value(), out);
    }
    out += '}';
  } else if (value.is_array()) {
    out += '[';
    bool first = true;
    for (const auto& element : value.get_array()) {
      if (!first) out += ',';
      first = false;
      AppendCompact(element, out);
    }
    out += ']';
  } else {
    AppendScalar(value, out);
  }
}

void AppendPretty(const json::value& value, std::string& out, int indent) {
  const std::string inner(indent + 2, ' ');
  if (value.is_object()) {
    const auto& object = value.get_object();
    if (object.empty()) {
      out += "{}";
      return;
    }
    out += "{\n";
    bool first = true;
    for (const auto& member : object) {
      if (!first) out += ",\n";
      first = false;
      out += inner;
      AppendKey(member.key(), out);
      out += ": ";
      AppendPretty(member.value(), out, indent + 2);
    }
    out += '\n';
    out.append(indent, ' ');
    out += '}';
  } else if (value.is_array()) {
    const auto& array = value.get_array();
    if (array.empty()) {
      out += "[]";
      return;
    }
    out += "[\n";
    bool first = true;
    for (const auto& element : array) {
      if (!first) out += ",\n";
      first = false;
      out += inner;
      AppendPretty(element, out, indent + 2);
    }
    out += '\n';
    out.append(indent, ' ');
    out += ']';
  } else {
    AppendScalar(value, out);
  }
}

std::string Pretty(const json::value& value) {
  std::string out;
  AppendPretty(value, out, 0);
  return out;
}

std::string Compact(const json::value& value) {
  std::string out;
  AppendCompact(value, out);
  return out;
}

std::optional<json::value> ParseJson(std::string_view text) {
  json::error_code ec;
  json::value value = json::parse(Js(text), ec);
  if (ec) return std::nullopt;
  return value;
}

// ---------------------------------------------------------------------------------------------
// Errors: absl::Status with the HTTP mapping below; google.rpc details ride in a payload.

absl::Status WithDetails(absl::Status status, std::string_view details_json) {
  status.SetPayload(Absl(kDetailsPayload), absl::Cord(Absl(details_json)));
  return status;
}

std::string BadRequestDetails(std::string_view field, std::string_view description) {
  json::object violation;
  if (!field.empty()) violation["field"] = Js(field);
  violation["description"] = Js(description);
  json::object detail;
  detail["@type"] = "type.googleapis.com/google.rpc.BadRequest";
  detail["fieldViolations"] = json::array{violation};
  return json::serialize(json::array{detail});
}

absl::Status InvalidArgument(std::string_view message, std::string_view field = {}) {
  return WithDetails(absl::InvalidArgumentError(Absl(message)),
                     BadRequestDetails(field, message));
}

ScriptedResponse ResponseFromStatus(const absl::Status& status) {
  int code = 500;
  std::string_view name = "INTERNAL";
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument: code = 400; name = "INVALID_ARGUMENT"; break;
    case absl::StatusCode::kFailedPrecondition: code = 400; name = "FAILED_PRECONDITION"; break;
    case absl::StatusCode::kPermissionDenied: code = 403; name = "PERMISSION_DENIED"; break;
    case absl::StatusCode::kNotFound: code = 404; name = "NOT_FOUND"; break;
    case absl::StatusCode::kResourceExhausted: code = 429; name = "RESOURCE_EXHAUSTED"; break;
    case absl::StatusCode::kUnavailable: code = 503; name = "UNAVAILABLE"; break;
    default: break;
  }
  std::string details;
  if (auto payload = status.GetPayload(Absl(kDetailsPayload))) details = std::string(*payload);
  ScriptedResponse response;
  response.status = code;
  response.body = MakeErrorBody(code, name, std::string_view(status.message().data(),
                                                             status.message().size()),
                                details);
  response.headers.emplace_back("Content-Type", std::string(kJsonContentType));
  AddGoogleHeaders(response.headers);
  return response;
}

// ---------------------------------------------------------------------------------------------
// Request parsing. Keys are accepted in lowerCamelCase and proto snake_case.

std::string ToCamel(std::string_view key) {
  std::string out;
  for (size_t i = 0; i < key.size(); ++i) {
    if (key[i] == '_' && i > 0 && i + 1 < key.size()) {
      out += absl::ascii_toupper(static_cast<unsigned char>(key[++i]));
    } else {
      out += key[i];
    }
  }
  return out;
}

std::string ToSnake(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (absl::ascii_isupper(static_cast<unsigned char>(c))) {
      out += '_';
      out += absl::ascii_tolower(static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  return out;
}

const json::value* Field(const json::object& object, std::string_view camel) {
  if (const json::value* v = object.if_contains(Js(camel))) return v;
  const std::string snake = ToSnake(camel);
  return object.if_contains(Js(snake));
}

// Unknown fields are rejected like the real front end does.
absl::Status CheckFields(const json::object& object, std::initializer_list<std::string_view> known,
                         std::string_view path) {
  for (const auto& member : object) {
    const std::string camel = ToCamel(Sv(member.key()));
    if (std::find(known.begin(), known.end(), std::string_view(camel)) != known.end()) continue;
    std::string message = absl::StrCat("Invalid JSON payload received. Unknown name \"",
                                       Absl(Sv(member.key())), "\"");
    if (!path.empty()) absl::StrAppend(&message, " at '", Absl(path), "'");
    absl::StrAppend(&message, ": Cannot find field.");
    return InvalidArgument(message, path);
  }
  return absl::OkStatus();
}

struct Part {
  enum class Kind { kText, kInline, kFile, kOther };
  Kind kind = Kind::kOther;
  std::string text;
  bool thought = false;
  std::string mime_type;
  std::shared_ptr<const std::string> bytes;  // inline data or resolved file
  std::string uri;
  std::string path;  // e.g. "contents[0].parts[1]"
  bool media_resolution = false;  // the part sets mediaResolution
};

struct Content {
  std::string role;
  std::vector<Part> parts;
};

struct GenerateRequest {
  std::vector<Content> contents;
  std::optional<Content> system_instruction;
  int64_t max_output_tokens = 0;  // 0: unlimited
  std::string response_mime_type;
  std::string schema_text;  // responseSchema / responseJsonSchema as JSON text
  std::optional<int64_t> thinking_budget;
  std::string thinking_level;  // upper case; empty: not sent
};

absl::StatusOr<std::string> StringField(const json::object& object, std::string_view camel,
                                        std::string_view path) {
  const json::value* value = Field(object, camel);
  if (value == nullptr) return std::string();
  if (!value->is_string()) {
    return InvalidArgument(absl::StrCat("Invalid value at '", Absl(path), ".", ToSnake(camel),
                                        "' (TYPE_STRING), expected a string"),
                           absl::StrCat(Absl(path), ".", ToSnake(camel)));
  }
  return std::string(Sv(value->get_string()));
}

absl::StatusOr<Part> ParsePart(const json::value& value, const std::string& path, bool strict) {
  if (!value.is_object()) {
    return InvalidArgument(absl::StrCat("Invalid value at '", path, "': expected an object"), path);
  }
  const json::object& object = value.get_object();
  if (strict) {
    absl::Status status = CheckFields(
        object,
        {"text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
         "codeExecutionResult", "thought", "thoughtSignature", "videoMetadata", "mediaResolution",
         "partMetadata"},
        path);
    if (!status.ok()) return status;
  }
  Part part;
  part.path = path;
  part.media_resolution = Field(object, "mediaResolution") != nullptr;
  if (const json::value* thought = Field(object, "thought"); thought && thought->is_bool()) {
    part.thought = thought->get_bool();
  }
  if (const json::value* text = Field(object, "text")) {
    if (!text->is_string()) {
      return InvalidArgument(
          absl::StrCat("Invalid value at '", path, ".text' (TYPE_STRING)"), path + ".text");
    }
    part.kind = Part::Kind::kText;
    part.text = std::string(Sv(text->get_string()));
    return part;
  }
  if (const json::value* inline_data = Field(object, "inlineData")) {
    const std::string sub = path + ".inline_data";
    if (!inline_data->is_object()) {
      return InvalidArgument(absl::StrCat("Invalid value at '", sub, "': expected an object"), sub);
    }
    const json::object& blob = inline_data->get_object();
    if (strict) {
      absl::Status status = CheckFields(blob, {"mimeType", "data", "displayName"}, sub);
      if (!status.ok()) return status;
    }
    absl::StatusOr<std::string> mime = StringField(blob, "mimeType", sub);
    if (!mime.ok()) return mime.status();
    absl::StatusOr<std::string> data = StringField(blob, "data", sub);
    if (!data.ok()) return data.status();
    if (mime->empty()) {
      return InvalidArgument(
          absl::StrCat("* GenerateContentRequest.", sub, ".mime_type: mime_type is not specified"),
          sub + ".mime_type");
    }
    auto bytes = std::make_shared<std::string>();
    if (!absl::Base64Unescape(*data, bytes.get()) &&
        !absl::WebSafeBase64Unescape(*data, bytes.get())) {
      return InvalidArgument(
          absl::StrCat("Invalid value at '", sub, ".data' (TYPE_BYTES), Base64 decoding failed"),
          sub + ".data");
    }
    part.kind = Part::Kind::kInline;
    part.mime_type = absl::AsciiStrToLower(*mime);
    part.bytes = std::move(bytes);
    return part;
  }
  if (const json::value* file_data = Field(object, "fileData")) {
    const std::string sub = path + ".file_data";
    if (!file_data->is_object()) {
      return InvalidArgument(absl::StrCat("Invalid value at '", sub, "': expected an object"), sub);
    }
    const json::object& file = file_data->get_object();
    if (strict) {
      absl::Status status = CheckFields(file, {"mimeType", "fileUri", "displayName"}, sub);
      if (!status.ok()) return status;
    }
    absl::StatusOr<std::string> mime = StringField(file, "mimeType", sub);
    if (!mime.ok()) return mime.status();
    absl::StatusOr<std::string> uri = StringField(file, "fileUri", sub);
    if (!uri.ok()) return uri.status();
    if (uri->empty()) {
      return InvalidArgument(
          absl::StrCat("* GenerateContentRequest.", sub, ".file_uri: file_uri is not specified"),
          sub + ".file_uri");
    }
    part.kind = Part::Kind::kFile;
    part.mime_type = absl::AsciiStrToLower(*mime);
    part.uri = *uri;
    return part;
  }
  for (std::string_view other : {"functionCall", "functionResponse", "executableCode",
                                 "codeExecutionResult"}) {
    if (Field(object, other) != nullptr) return part;  // kOther: accepted, ignored
  }
  return InvalidArgument(
      absl::StrCat("* GenerateContentRequest.", path,
                   ".data: required oneof field 'data' must have one initialized field"),
      path + ".data");
}

absl::StatusOr<Content> ParseContent(const json::value& value, const std::string& path,
                                     bool strict) {
  if (!value.is_object()) {
    return InvalidArgument(absl::StrCat("Invalid value at '", path, "': expected an object"), path);
  }
  const json::object& object = value.get_object();
  if (strict) {
    absl::Status status = CheckFields(object, {"role", "parts"}, path);
    if (!status.ok()) return status;
  }
  Content content;
  absl::StatusOr<std::string> role = StringField(object, "role", path);
  if (!role.ok()) return role.status();
  content.role = *role;
  if (!content.role.empty() && content.role != "user" && content.role != "model" &&
      content.role != "function") {
    return InvalidArgument("Please use a valid role: user, model.", path + ".role");
  }
  const json::value* parts = Field(object, "parts");
  if (parts == nullptr || !parts->is_array() || parts->get_array().empty()) {
    return InvalidArgument(absl::StrCat("* GenerateContentRequest.", path,
                                        ".parts: contents.parts must not be empty."),
                           path + ".parts");
  }
  const json::array& array = parts->get_array();
  for (size_t i = 0; i < array.size(); ++i) {
    absl::StatusOr<Part> part = ParsePart(array[i], absl::StrCat(path, ".parts[", i, "]"), strict);
    if (!part.ok()) return part.status();
    content.parts.push_back(*std::move(part));
  }
  return content;
}

absl::StatusOr<std::vector<Content>> ParseContents(const json::value* value, bool strict) {
  if (value == nullptr || !value->is_array() || value->get_array().empty()) {
    return InvalidArgument("* GenerateContentRequest.contents: contents is not specified",
                           "contents");
  }
  std::vector<Content> contents;
  const json::array& array = value->get_array();
  for (size_t i = 0; i < array.size(); ++i) {
    absl::StatusOr<Content> content =
        ParseContent(array[i], absl::StrCat("contents[", i, "]"), strict);
    if (!content.ok()) return content.status();
    contents.push_back(*std::move(content));
  }
  return contents;
}

absl::StatusOr<int64_t> IntValue(const json::value& value, std::string_view path) {
  if (value.is_int64()) return value.get_int64();
  if (value.is_uint64()) return static_cast<int64_t>(std::min<uint64_t>(value.get_uint64(), INT32_MAX));
  if (value.is_double() && std::floor(value.get_double()) == value.get_double()) {
    return static_cast<int64_t>(value.get_double());
  }
  if (value.is_string()) {
    int64_t parsed = 0;
    const auto s = value.get_string();
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), parsed);
    if (ec == std::errc() && end == s.data() + s.size()) return parsed;
  }
  return InvalidArgument(absl::StrCat("Invalid value at '", Absl(path), "' (TYPE_INT32)"), path);
}

absl::StatusOr<GenerateRequest> ParseGenerateRequest(const json::object& root, bool strict,
                                                     std::string_view path_prefix) {
  if (strict) {
    absl::Status status = CheckFields(
        root,
        {"model", "contents", "tools", "toolConfig", "safetySettings", "systemInstruction",
         "generationConfig", "cachedContent"},
        path_prefix);
    if (!status.ok()) return status;
  }
  GenerateRequest request;
  absl::StatusOr<std::vector<Content>> contents = ParseContents(Field(root, "contents"), strict);
  if (!contents.ok()) return contents.status();
  request.contents = *std::move(contents);
  if (const json::value* system = Field(root, "systemInstruction")) {
    absl::StatusOr<Content> content = ParseContent(*system, "system_instruction", strict);
    if (!content.ok()) return content.status();
    request.system_instruction = *std::move(content);
  }
  if (const json::value* config = Field(root, "generationConfig")) {
    if (!config->is_object()) {
      return InvalidArgument("Invalid value at 'generation_config': expected an object",
                             "generation_config");
    }
    const json::object& object = config->get_object();
    if (strict) {
      absl::Status status = CheckFields(
          object,
          {"stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema",
           "_responseJsonSchema", "responseModalities", "candidateCount", "maxOutputTokens",
           "temperature", "topP", "topK", "seed", "presencePenalty", "frequencyPenalty",
           "responseLogprobs", "logprobs", "enableEnhancedCivicAnswers", "speechConfig",
           "thinkingConfig", "imageConfig", "mediaResolution"},
          "generation_config");
      if (!status.ok()) return status;
    }
    if (const json::value* max = Field(object, "maxOutputTokens")) {
      absl::StatusOr<int64_t> parsed = IntValue(*max, "generation_config.max_output_tokens");
      if (!parsed.ok()) return parsed.status();
      request.max_output_tokens = std::max<int64_t>(0, *parsed);
    }
    absl::StatusOr<std::string> mime = StringField(object, "responseMimeType", "generation_config");
    if (!mime.ok()) return mime.status();
    request.response_mime_type = *mime;
    for (std::string_view schema : {"responseJsonSchema", "_responseJsonSchema", "responseSchema"}) {
      if (const json::value* value = Field(object, schema)) {
        request.schema_text = json::serialize(*value);
        break;
      }
    }
    if (const json::value* thinking = Field(object, "thinkingConfig");
        thinking != nullptr && thinking->is_object()) {
      const json::value* level = Field(thinking->get_object(), "thinkingLevel");
      const json::value* budget = Field(thinking->get_object(), "thinkingBudget");
      if (level != nullptr && budget != nullptr) {
        return InvalidArgument(
            "You can only set only one of thinking budget and thinking level.",
            "generation_config.thinking_config");
      }
      if (budget != nullptr) {
        absl::StatusOr<int64_t> parsed =
            IntValue(*budget, "generation_config.thinking_config.thinking_budget");
        if (!parsed.ok()) return parsed.status();
        request.thinking_budget = *parsed;
      }
      if (level != nullptr) {
        if (!level->is_string()) {
          return InvalidArgument(
              "Invalid value at 'generation_config.thinking_config.thinking_level' (TYPE_ENUM)",
              "generation_config.thinking_config.thinking_level");
        }
        request.thinking_level = absl::AsciiStrToUpper(Absl(Sv(level->get_string())));
      }
    }
  }
  return request;
}

// ---------------------------------------------------------------------------------------------
// Media and tokens.

int TextTokens(std::string_view text) {
  return static_cast<int>((text.size() + 3) / 4);
}

std::string Modality(std::string_view mime) {
  if (absl::StartsWith(Absl(mime), "image/")) return "IMAGE";
  if (absl::StartsWith(Absl(mime), "video/")) return "VIDEO";
  if (absl::StartsWith(Absl(mime), "audio/")) return "AUDIO";
  if (absl::StartsWith(Absl(mime), "text/")) return "TEXT";
  return "DOCUMENT";
}

bool SupportedImageType(std::string_view mime) {
  return mime == "image/png" || mime == "image/jpeg" || mime == "image/webp" ||
         mime == "image/heic" || mime == "image/heif";
}

constexpr std::string_view kImageError =
    "Unable to process input image. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting";

// One media part of the request with what the emulator knows about it.
struct Media {
  std::string mime_type;
  std::shared_ptr<const std::string> bytes;  // null: unknown content
  std::optional<Scene> scene;                // decoded images (generate only)
  int width = 0, height = 0;                 // images with known size
  int tokens = kFileTokens;
};

std::string FileName(std::string_view uri) {
  const size_t at = uri.rfind("files/");
  return std::string(at == std::string_view::npos ? uri : uri.substr(at));
}

// Resolves, checks and (when `analyze`) decodes every media part, in order.
absl::StatusOr<std::vector<Media>> CollectMedia(const std::vector<Content>& contents,
                                                const FileResolver& files, bool analyze) {
  std::vector<Media> media;
  for (const Content& content : contents) {
    for (const Part& part : content.parts) {
      if (part.kind != Part::Kind::kInline && part.kind != Part::Kind::kFile) continue;
      Media item;
      item.mime_type = part.mime_type;
      if (part.kind == Part::Kind::kInline) {
        item.bytes = part.bytes;
      } else {
        std::optional<FileContent> file = files ? files(part.uri) : std::nullopt;
        if (!file.has_value()) {
          return absl::PermissionDeniedError(
              absl::StrCat("You do not have permission to access the File ", FileName(part.uri),
                           " or it may not exist."));
        }
        if (!file->active) {
          return absl::FailedPreconditionError(
              absl::StrCat("The File ", FileName(part.uri),
                           " is not in an ACTIVE state and usage is not allowed."));
        }
        if (item.mime_type.empty()) item.mime_type = file->mime_type;
        item.bytes = file->bytes;
      }
      if (absl::StartsWith(item.mime_type, "image/")) {
        if (!SupportedImageType(item.mime_type)) {
          return InvalidArgument(absl::StrCat("Unsupported MIME type: ", item.mime_type),
                                 part.path);
        }
        if (item.bytes != nullptr) {
          if (analyze) {
            absl::StatusOr<Scene> scene = AnalyzeImage(*item.bytes);
            if (!scene.ok()) return InvalidArgument(kImageError);
            item.width = scene->width;
            item.height = scene->height;
            item.scene = *std::move(scene);
          } else {
            absl::StatusOr<std::pair<int, int>> size = ImageDimensions(*item.bytes);
            if (!size.ok()) return InvalidArgument(kImageError);
            item.width = size->first;
            item.height = size->second;
          }
          item.tokens = ImageTokens(item.width, item.height);
        }
      }
      media.push_back(std::move(item));
    }
  }
  return media;
}

struct PromptTokens {
  int text = 0;
  std::vector<std::pair<std::string, int>> media;  // modality, tokens (merged by modality)
  int total() const {
    int sum = text;
    for (const auto& [modality, tokens] : media) sum += tokens;
    return sum;
  }
};

void CountText(const Content& content, PromptTokens& tokens) {
  for (const Part& part : content.parts) {
    if (part.kind == Part::Kind::kText) tokens.text += TextTokens(part.text);
  }
}

PromptTokens CountPrompt(const std::vector<Content>& contents,
                         const std::optional<Content>& system, const std::vector<Media>& media) {
  PromptTokens tokens;
  for (const Content& content : contents) CountText(content, tokens);
  if (system.has_value()) CountText(*system, tokens);
  for (const Media& item : media) {
    const std::string modality = Modality(item.mime_type);
    if (modality == "TEXT") {
      tokens.text += item.tokens;
      continue;
    }
    auto it = std::find_if(tokens.media.begin(), tokens.media.end(),
                           [&](const auto& entry) { return entry.first == modality; });
    if (it == tokens.media.end()) {
      tokens.media.emplace_back(modality, item.tokens);
    } else {
      it->second += item.tokens;
    }
  }
  return tokens;
}

json::array TokenDetails(const PromptTokens& tokens) {
  json::array details;
  details.push_back(json::object{{"modality", "TEXT"}, {"tokenCount", tokens.text}});
  for (const auto& [modality, count] : tokens.media) {
    details.push_back(json::object{{"modality", Js(modality)}, {"tokenCount", count}});
  }
  return details;
}

// ---------------------------------------------------------------------------------------------
// Answers.

std::string NumberWord(size_t n) {
  static const char* kWords[] = {"no",  "one", "two",   "three", "four", "five",
                                 "six", "seven", "eight", "nine",  "ten"};
  return n < 11 ? kWords[n] : absl::StrCat(n);
}

std::string Article(std::string_view word) {
  return !word.empty() && std::string_view("aeiou").find(word[0]) != std::string_view::npos
             ? "an"
             : "a";
}

std::string DescribeScene(const Scene& scene) {
  std::vector<std::pair<std::string, size_t>> counts;  // label, count; by first appearance
  for (const SceneObject& object : scene.objects) {
    auto it = std::find_if(counts.begin(), counts.end(),
                           [&](const auto& entry) { return entry.first == object.label; });
    if (it == counts.end()) {
      counts.emplace_back(object.label, 1);
    } else {
      ++it->second;
    }
  }
  const std::string background =
      scene.light_background ? "a light background" : "a dark background";
  std::string sentence = absl::StrCat("A ", scene.width, "x", scene.height, " image ");
  if (counts.empty()) {
    absl::StrAppend(&sentence, "of a plain ", scene.light_background ? "light" : "dark",
                    " background with no distinct shapes.");
    return sentence;
  }
  std::vector<std::string> phrases;
  for (const auto& [label, count] : counts) {
    phrases.push_back(count == 1 ? absl::StrCat(Article(label), " ", label, " shape")
                                 : absl::StrCat(NumberWord(count), " ", label, " shapes"));
  }
  std::string list = phrases.back();
  if (phrases.size() > 1) {
    phrases.pop_back();
    list = absl::StrCat(absl::StrJoin(phrases, ", "), " and ", list);
  }
  absl::StrAppend(&sentence, "showing ", list, " on ", background, ".");
  return sentence;
}

std::string DescribeMedia(const Media& media) {
  if (media.scene.has_value()) return DescribeScene(*media.scene);
  if (absl::StartsWith(media.mime_type, "image/")) return "An uploaded image.";
  return absl::StrCat("An attached ", media.mime_type.empty() ? "file" : media.mime_type,
                      " file.");
}

std::string CaptionText(const std::vector<Media>& media) {
  if (media.empty()) return "There is no image in this request to describe.";
  if (media.size() == 1) return DescribeMedia(media[0]);
  std::vector<std::string> sentences;
  for (size_t i = 0; i < media.size(); ++i) {
    sentences.push_back(absl::StrCat("Image ", i + 1, ": ", DescribeMedia(media[i])));
  }
  return absl::StrJoin(sentences, " ");
}

enum class Task { kCaption, kDetect, kSegment };

std::string LastUserText(const GenerateRequest& request) {
  for (auto content = request.contents.rbegin(); content != request.contents.rend(); ++content) {
    if (content->role == "model") continue;
    for (auto part = content->parts.rbegin(); part != content->parts.rend(); ++part) {
      if (part->kind == Part::Kind::kText && !part->thought) return part->text;
    }
  }
  return "";
}

std::string SystemText(const GenerateRequest& request) {
  std::string text;
  if (request.system_instruction.has_value()) {
    for (const Part& part : request.system_instruction->parts) {
      if (part.kind == Part::Kind::kText) absl::StrAppend(&text, part.text, "\n");
    }
  }
  return text;
}

// Whether `lower` asks for masks: a "mask" not shortly preceded by a negation ("Never return
// masks", "no masks").
bool AsksForMasks(std::string_view lower) {
  for (size_t at = lower.find("mask"); at != std::string_view::npos;
       at = lower.find("mask", at + 4)) {
    const std::string_view before = lower.substr(at < 24 ? 0 : at - 24, at < 24 ? at : 24);
    bool negated = false;
    for (std::string_view negation : {"never", "no ", "not ", "without", "don't", "n't "}) {
      negated |= before.find(negation) != std::string_view::npos;
    }
    if (!negated) return true;
  }
  return false;
}

// The response schema decides when it names the keys; else the last user text, else the
// system instruction: "mask" → segmentation, "box_2d" or "bounding box" → detection.
Task TaskOf(const GenerateRequest& request) {
  if (request.schema_text.find("\"mask\"") != std::string::npos) return Task::kSegment;
  if (request.schema_text.find("\"box_2d\"") != std::string::npos) return Task::kDetect;
  for (const std::string& text : {LastUserText(request), SystemText(request)}) {
    const std::string lower = absl::AsciiStrToLower(text);
    if (AsksForMasks(lower)) return Task::kSegment;
    if (lower.find("box_2d") != std::string::npos ||
        lower.find("bounding box") != std::string::npos) {
      return Task::kDetect;
    }
  }
  return Task::kCaption;
}

// Colour names mentioned as whole words in `text`.
std::set<std::string> ColourWords(std::string_view text) {
  std::set<std::string> found;
  const std::string lower = absl::AsciiStrToLower(Absl(text));
  for (absl::string_view word :
       absl::StrSplit(lower, absl::ByAnyChar(" \t\r\n.,;:!?\"'()[]{}<>/\\-_*`"), absl::SkipEmpty())) {
    for (const std::string& name : ColourNames()) {
      if (word == name) found.insert(name);
    }
  }
  return found;
}

absl::StatusOr<std::string> SpatialJson(const GenerateRequest& request,
                                        const std::vector<Media>& media, Task task,
                                        const EmulatorConfig& config) {
  const Scene* scene = nullptr;
  for (const Media& item : media) {
    if (item.scene.has_value()) {
      scene = &*item.scene;
      break;
    }
  }
  if (scene == nullptr) return std::string("[]");
  const std::set<std::string> wanted = ColourWords(LastUserText(request));
  std::vector<std::string> lines;
  for (const SceneObject& object : scene->objects) {
    if (!wanted.empty() && wanted.count(object.label) == 0) continue;
    const NormalizedBox box = BoxOf(*scene, object);
    std::string line = absl::StrCat("{\"box_2d\": [", box.ymin, ", ", box.xmin, ", ", box.ymax,
                                    ", ", box.xmax, "]");
    if (task == Task::kSegment) {
      if (config.mask_format == MaskFormat::kPolygon) {
        std::vector<std::string> points;
        for (const auto& [x, y] : OutlinePolygon(*scene, object)) {
          points.push_back(absl::StrCat("[", x, ", ", y, "]"));
        }
        absl::StrAppend(&line, ", \"mask\": [", absl::StrJoin(points, ", "), "]");
      } else {
        absl::StatusOr<std::string> png = MaskPng(*scene, object, box);
        if (!png.ok()) return png.status();
        absl::StrAppend(&line, ", \"mask\": \"data:image/png;base64,", absl::Base64Escape(*png),
                        "\"");
      }
    }
    absl::StrAppend(&line, ", \"label\": \"", object.label, "\"}");
    lines.push_back(std::move(line));
  }
  if (lines.empty()) return std::string("[]");
  return absl::StrCat("[\n  ", absl::StrJoin(lines, ",\n  "), "\n]");
}

// The answer text split into stream deltas, with cumulative output tokens per delta.
struct Answer {
  std::vector<std::string> deltas;
  std::vector<int> cumulative_tokens;
  std::string finish_reason = "STOP";
  std::string full_text() const { return absl::StrJoin(deltas, ""); }
  int tokens() const { return cumulative_tokens.empty() ? 0 : cumulative_tokens.back(); }
};

Answer CaptionAnswer(const std::string& text, int64_t max_tokens, int words_per_event) {
  std::vector<std::string> words = absl::StrSplit(text, ' ', absl::SkipEmpty());
  Answer answer;
  if (max_tokens > 0 && static_cast<int64_t>(words.size()) > max_tokens) {
    words.resize(static_cast<size_t>(max_tokens));
    answer.finish_reason = "MAX_TOKENS";
  }
  const size_t group = static_cast<size_t>(std::max(1, words_per_event));
  for (size_t i = 0; i < words.size(); i += group) {
    const size_t end = std::min(words.size(), i + group);
    std::string delta = i == 0 ? "" : " ";
    for (size_t j = i; j < end; ++j) absl::StrAppend(&delta, j == i ? "" : " ", words[j]);
    answer.deltas.push_back(std::move(delta));
    answer.cumulative_tokens.push_back(static_cast<int>(end));
  }
  if (answer.deltas.empty()) {
    answer.deltas.emplace_back();
    answer.cumulative_tokens.push_back(0);
  }
  return answer;
}

Answer TextAnswer(std::string text, int64_t max_tokens, int chunk_chars) {
  Answer answer;
  if (max_tokens > 0 && static_cast<int64_t>(text.size()) > 4 * max_tokens) {
    text.resize(static_cast<size_t>(4 * max_tokens));
    answer.finish_reason = "MAX_TOKENS";
  }
  const size_t chunk = static_cast<size_t>(std::max(1, chunk_chars));
  for (size_t i = 0; i < text.size(); i += chunk) {
    answer.deltas.push_back(text.substr(i, chunk));
    answer.cumulative_tokens.push_back(TextTokens(std::string_view(text).substr(0, i + chunk)));
  }
  if (answer.deltas.empty()) {
    answer.deltas.emplace_back();
    answer.cumulative_tokens.push_back(0);
  }
  return answer;
}

std::string ResponseId(uint64_t sequence) {
  auto mix = [](uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  };
  std::string raw(16, '\0');
  const uint64_t a = mix(sequence);
  const uint64_t b = mix(a ^ 0x5eed);
  for (int i = 0; i < 8; ++i) {
    raw[i] = static_cast<char>(a >> (8 * i));
    raw[8 + i] = static_cast<char>(b >> (8 * i));
  }
  std::string id;
  absl::WebSafeBase64Escape(raw, &id);  // no padding
  return id;
}

json::object ResponseObject(std::string_view text, std::string_view finish_reason,
                            const PromptTokens& prompt, int candidates_tokens,
                            std::string_view model_version, std::string_view response_id,
                            bool with_index) {
  json::object content{{"parts", json::array{json::object{{"text", Js(text)}}}}, {"role", "model"}};
  json::object candidate{{"content", std::move(content)}};
  if (!finish_reason.empty()) candidate["finishReason"] = Js(finish_reason);
  if (with_index) candidate["index"] = 0;
  json::object usage{{"promptTokenCount", prompt.total()},
                     {"candidatesTokenCount", candidates_tokens},
                     {"totalTokenCount", prompt.total() + candidates_tokens},
                     {"promptTokensDetails", TokenDetails(prompt)}};
  return json::object{{"candidates", json::array{std::move(candidate)}},
                      {"usageMetadata", std::move(usage)},
                      {"modelVersion", Js(model_version)},
                      {"responseId", Js(response_id)}};
}

// What the model does not accept, refused as Gemini refuses it (400).
absl::Status CheckModelOptions(const EmulatorModel& model, const GenerateRequest& request) {
  constexpr std::string_view kField = "generation_config.thinking_config";
  const bool has_level = !request.thinking_level.empty();
  if (model.thinking_control == "none" || !model.thinking) {
    if (has_level || (request.thinking_budget && *request.thinking_budget != 0)) {
      return InvalidArgument("Thinking is not supported for this model.", kField);
    }
  } else if (model.thinking_control == "budget") {
    if (has_level) {
      return InvalidArgument("Thinking level is not supported for this model.",
                             "generation_config.thinking_config.thinking_level");
    }
    if (request.thinking_budget) {
      const int64_t budget = *request.thinking_budget;
      if (budget == 0 && !model.can_disable) {
        return InvalidArgument("Budget 0 is invalid. This model only works in thinking mode.",
                               "generation_config.thinking_config.thinking_budget");
      }
      if (budget != 0 && budget != -1 && (budget < model.min_budget || budget > model.max_budget)) {
        return InvalidArgument(
            absl::StrCat("The thinking budget ", budget, " is invalid. Please choose a value "
                         "between ", model.min_budget, " and ", model.max_budget, "."),
            "generation_config.thinking_config.thinking_budget");
      }
    }
  } else if (has_level &&
             std::find(model.levels.begin(), model.levels.end(), request.thinking_level) ==
                 model.levels.end()) {
    return InvalidArgument(
        absl::StrCat("Thinking level ", request.thinking_level,
                     " is not supported for this model. Supported levels: ",
                     absl::StrJoin(model.levels, ", "), "."),
        "generation_config.thinking_config.thinking_level");
  }
  if (!model.per_part_media_resolution) {
    for (const Content& content : request.contents) {
      for (const Part& part : content.parts) {
        if (part.media_resolution) {
          return InvalidArgument("Per-part media resolution is not supported for this model.",
                                 part.path + ".media_resolution");
        }
      }
    }
  }
  return absl::OkStatus();
}

ScriptedResponse HandleGenerate(const ModelCall& call, const json::object& root,
                                const EmulatorConfig& config, const FileResolver& files) {
  absl::StatusOr<GenerateRequest> request = ParseGenerateRequest(root, config.strict_fields, "");
  if (!request.ok()) return ResponseFromStatus(request.status());
  if (const EmulatorModel* model = FindListedModel(config, call.model)) {
    if (absl::Status s = CheckModelOptions(*model, *request); !s.ok()) {
      return ResponseFromStatus(s);
    }
  }
  absl::StatusOr<std::vector<Media>> media = CollectMedia(request->contents, files, true);
  if (!media.ok()) return ResponseFromStatus(media.status());
  const PromptTokens prompt = CountPrompt(request->contents, request->system_instruction, *media);

  Answer answer;
  const Task task = TaskOf(*request);
  if (task == Task::kCaption) {
    answer = CaptionAnswer(CaptionText(*media), request->max_output_tokens,
                           config.caption_words_per_event);
  } else {
    absl::StatusOr<std::string> spatial = SpatialJson(*request, *media, task, config);
    if (!spatial.ok()) return ResponseFromStatus(spatial.status());
    std::string text = config.prose_prefix;
    absl::StrAppend(&text, config.fence ? "```json\n" : "", *spatial, config.fence ? "\n```" : "");
    answer = TextAnswer(std::move(text), request->max_output_tokens, config.stream_chunk_chars);
  }

  const std::string model_version = config.model_version.empty() ? call.model : config.model_version;
  const std::string response_id = ResponseId(call.sequence);
  ScriptedResponse response;
  response.delay_before_headers = config.response_delay;
  if (call.method == "generateContent") {
    response.headers.emplace_back("Content-Type", std::string(kJsonContentType));
    AddGoogleHeaders(response.headers);
    response.body = Pretty(ResponseObject(answer.full_text(), answer.finish_reason, prompt,
                                          answer.tokens(), model_version, response_id, false));
    return response;
  }
  response.delay_between_writes = config.stream_event_delay;
  for (size_t i = 0; i < answer.deltas.size(); ++i) {
    const bool last = i + 1 == answer.deltas.size();
    json::object event =
        ResponseObject(answer.deltas[i], last ? answer.finish_reason : "", prompt,
                       answer.cumulative_tokens[i], model_version, response_id, true);
    if (call.alt_sse) {
      response.stream_writes.push_back(absl::StrCat("data: ", Compact(event), "\r\n\r\n"));
    } else {  // a streamed JSON array, as the API sends without alt=sse
      response.stream_writes.push_back(absl::StrCat(i == 0 ? "[" : "\n,\r\n", Pretty(event),
                                                    last ? "]" : ""));
    }
  }
  if (call.alt_sse) {
    response.headers.emplace_back("Content-Type", "text/event-stream");
    response.headers.emplace_back("Content-Disposition", "attachment");
  } else {
    response.headers.emplace_back("Content-Type", std::string(kJsonContentType));
  }
  AddGoogleHeaders(response.headers);
  return response;
}

ScriptedResponse HandleCountTokens(std::string_view model_id, const json::object& root,
                                   const EmulatorConfig& config, const FileResolver& files) {
  if (config.strict_fields) {
    absl::Status status = CheckFields(root, {"contents", "generateContentRequest"}, "");
    if (!status.ok()) return ResponseFromStatus(status);
  }
  const json::value* contents_value = Field(root, "contents");
  const json::value* wrapped = Field(root, "generateContentRequest");
  if (contents_value != nullptr && wrapped != nullptr) {
    return ResponseFromStatus(InvalidArgument(
        "contents and generate_content_request cannot both be set.", "generate_content_request"));
  }
  std::vector<Content> contents;
  std::optional<Content> system;
  if (wrapped != nullptr) {
    if (!wrapped->is_object()) {
      return ResponseFromStatus(InvalidArgument(
          "Invalid value at 'generate_content_request': expected an object",
          "generate_content_request"));
    }
    absl::StatusOr<GenerateRequest> request =
        ParseGenerateRequest(wrapped->get_object(), config.strict_fields, "generate_content_request");
    if (!request.ok()) return ResponseFromStatus(request.status());
    contents = std::move(request->contents);
    system = std::move(request->system_instruction);
  } else {
    absl::StatusOr<std::vector<Content>> parsed = ParseContents(contents_value, config.strict_fields);
    if (!parsed.ok()) return ResponseFromStatus(parsed.status());
    contents = *std::move(parsed);
  }
  if (const EmulatorModel* model = FindListedModel(config, model_id)) {
    GenerateRequest probe;
    probe.contents = contents;
    if (absl::Status s = CheckModelOptions(*model, probe); !s.ok()) return ResponseFromStatus(s);
  }
  absl::StatusOr<std::vector<Media>> media = CollectMedia(contents, files, false);
  if (!media.ok()) return ResponseFromStatus(media.status());
  const PromptTokens prompt = CountPrompt(contents, system, *media);
  ScriptedResponse response;
  response.delay_before_headers = config.response_delay;
  response.headers.emplace_back("Content-Type", std::string(kJsonContentType));
  AddGoogleHeaders(response.headers);
  response.body = Pretty(json::object{{"totalTokens", prompt.total()},
                                      {"promptTokensDetails", TokenDetails(prompt)}});
  return response;
}

json::object ModelJson(const EmulatorModel& model) {
  json::array methods;
  for (const std::string& method : model.methods) methods.emplace_back(Js(method));
  json::object out{{"name", Js(absl::StrCat("models/", model.id))},
                   {"version", Js(model.version)},
                   {"displayName", Js(model.display_name.empty() ? model.id : model.display_name)},
                   {"description", Js(absl::StrCat("Emulated ", model.id, "."))},
                   {"inputTokenLimit", model.input_token_limit},
                   {"outputTokenLimit", model.output_token_limit},
                   {"supportedGenerationMethods", std::move(methods)},
                   {"temperature", 1.0},
                   {"topP", 0.95},
                   {"topK", 64},
                   {"maxTemperature", 2.0}};
  if (model.thinking) out["thinking"] = true;
  return out;
}

ScriptedResponse JsonOk(const json::value& body) {
  ScriptedResponse response;
  response.headers.emplace_back("Content-Type", std::string(kJsonContentType));
  AddGoogleHeaders(response.headers);
  response.body = Pretty(body);
  return response;
}

EmulatorModel LevelModel(std::string id, std::vector<std::string> levels,
                         std::string display_name) {
  EmulatorModel model;
  model.id = std::move(id);
  model.levels = std::move(levels);
  model.display_name = std::move(display_name);
  return model;
}

EmulatorModel Retired(std::string id) {
  EmulatorModel model;
  model.id = std::move(id);
  model.retired = true;
  return model;
}

}  // namespace

std::vector<EmulatorModel> DefaultModels() {
  std::vector<EmulatorModel> models = {
      LevelModel("gemini-3-flash-preview", {"MINIMAL", "LOW", "MEDIUM", "HIGH"},
                 "Gemini 3 Flash Preview"),
      LevelModel("gemini-3.1-pro-preview", {"LOW", "MEDIUM", "HIGH"}, "Gemini 3.1 Pro Preview"),
      LevelModel("gemini-3.1-flash-lite", {"MINIMAL", "LOW", "MEDIUM", "HIGH"},
                 "Gemini 3.1 Flash-Lite"),
      LevelModel("gemini-flash-latest", {"LOW", "MEDIUM", "HIGH"}, "Gemini Flash Latest"),
  };
  EmulatorModel embedding;
  embedding.id = "gemini-embedding-001";
  embedding.display_name = "Gemini Embedding 001";
  embedding.input_token_limit = 2048;
  embedding.output_token_limit = 1;
  embedding.methods = {"embedContent", "countTextTokens", "countTokens", "asyncBatchEmbedContent"};
  embedding.thinking = false;
  embedding.thinking_control = "none";
  embedding.per_part_media_resolution = false;
  models.push_back(std::move(embedding));
  for (const char* id : {"gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite",
                         "gemini-2.0-flash", "gemini-3-pro-preview",
                         "gemini-robotics-er-1.6-preview"}) {
    models.push_back(Retired(id));
  }
  return models;
}

EmulatorModel BudgetModel(std::string id, bool pro) {
  EmulatorModel model;
  model.id = std::move(id);
  model.thinking_control = "budget";
  model.levels.clear();
  model.per_part_media_resolution = false;
  model.min_budget = pro ? 128 : 0;
  model.max_budget = pro ? 32768 : 24576;
  model.can_disable = !pro;
  return model;
}

const EmulatorModel* FindListedModel(const EmulatorConfig& config, std::string_view id) {
  for (const EmulatorModel& model : config.models) {
    if (model.id == id) return model.retired ? nullptr : &model;
  }
  return nullptr;
}

ScriptedResponse HandleListModels(const EmulatorConfig& config, std::string_view page_size_text,
                                  std::string_view page_token) {
  int page_size = 50;
  if (!page_size_text.empty()) {
    int parsed = 0;
    auto [end, ec] = std::from_chars(page_size_text.data(),
                                     page_size_text.data() + page_size_text.size(), parsed);
    if (ec != std::errc() || end != page_size_text.data() + page_size_text.size() || parsed < 0) {
      return ResponseFromStatus(InvalidArgument(
          absl::StrCat("Invalid value at 'page_size' (TYPE_INT32), \"", Absl(page_size_text),
                       "\""),
          "page_size"));
    }
    if (parsed > 0) page_size = std::min(parsed, 1000);
  }
  size_t offset = 0;
  if (!page_token.empty()) {
    std::string decoded;
    if (!absl::WebSafeBase64Unescape(Absl(page_token), &decoded) ||
        !absl::StartsWith(decoded, "models:") ||
        !absl::SimpleAtoi(absl::string_view(decoded).substr(7), &offset)) {
      return ResponseFromStatus(InvalidArgument("Invalid page token.", "page_token"));
    }
  }
  std::vector<const EmulatorModel*> listed;
  for (const EmulatorModel& model : config.models) {
    if (!model.retired) listed.push_back(&model);
  }
  json::array models;
  size_t i = offset;
  for (; i < listed.size() && models.size() < static_cast<size_t>(page_size); ++i) {
    models.push_back(ModelJson(*listed[i]));
  }
  json::object body{{"models", std::move(models)}};
  if (i < listed.size()) {
    body["nextPageToken"] = Js(absl::WebSafeBase64Escape(absl::StrCat("models:", i)));
  }
  return JsonOk(body);
}

ScriptedResponse HandleGetModel(const EmulatorConfig& config, std::string_view api_version,
                                std::string_view id) {
  const EmulatorModel* model = FindListedModel(config, id);
  if (model == nullptr) {
    return ResponseFromStatus(absl::NotFoundError(
        absl::StrCat("models/", Absl(id), " is not found for API version ", Absl(api_version),
                     ", or is not supported for get. Call ListModels to see the list of "
                     "available models and their supported methods.")));
  }
  return JsonOk(ModelJson(*model));
}

// ---------------------------------------------------------------------------------------------
// gemini_api.h

ScriptedResponse HandleModelCall(const ModelCall& call, const EmulatorConfig& config,
                                 const FileResolver& files) {
  if (FindListedModel(config, call.model) == nullptr) {
    return ResponseFromStatus(absl::NotFoundError(absl::StrCat(
        "models/", call.model, " is not found for API version ", call.api_version,
        ", or is not supported for ", call.method,
        ". Call ListModels to see the list of available models and their supported methods.")));
  }
  std::optional<json::value> root = ParseJson(call.body);
  if (!root.has_value()) {
    return ResponseFromStatus(InvalidArgument(
        "Invalid JSON payload received. Unexpected token or truncated input."));
  }
  if (!root->is_object()) {
    return ResponseFromStatus(InvalidArgument(
        "Invalid JSON payload received. Unknown name \"\": Root element must be a message."));
  }
  if (call.method == "countTokens") return HandleCountTokens(call.model, root->get_object(), config, files);
  return HandleGenerate(call, root->get_object(), config, files);
}

ScriptedResponse ErrorResponse(int code, std::string_view message, std::string_view details_json) {
  ScriptedResponse response;
  response.status = code;
  response.headers.emplace_back("Content-Type", std::string(kJsonContentType));
  AddGoogleHeaders(response.headers);
  response.body = MakeErrorBody(code, StatusNameForHttpCode(code), message, details_json);
  return response;
}

void AddGoogleHeaders(HeaderList& headers) {
  headers.emplace_back("Vary", "Origin");
  headers.emplace_back("Vary", "X-Origin");
  headers.emplace_back("Vary", "Referer");
  headers.emplace_back("Server", "scaffolding on HTTPServer2");
  headers.emplace_back("X-XSS-Protection", "0");
  headers.emplace_back("X-Frame-Options", "SAMEORIGIN");
  headers.emplace_back("X-Content-Type-Options", "nosniff");
}

int ImageTokens(int width, int height) {
  if (width <= 0 || height <= 0) return kFileTokens;
  if (width <= 384 && height <= 384) return 258;
  const int crop = std::max(1, static_cast<int>(std::min(width, height) / 1.5));
  const int64_t tiles = static_cast<int64_t>((width + crop - 1) / crop) * ((height + crop - 1) / crop);
  return static_cast<int>(std::min<int64_t>(tiles * 258, INT32_MAX));
}

// ---------------------------------------------------------------------------------------------
// gemini_wire.h

std::string PrettyJson(std::string_view text) {
  std::optional<json::value> value = ParseJson(text);
  return value.has_value() ? Pretty(*value) : std::string(text);
}

std::string CompactJson(std::string_view text) {
  std::optional<json::value> value = ParseJson(text);
  return value.has_value() ? Compact(*value) : std::string(text);
}

std::string_view StatusNameForHttpCode(int code) {
  switch (code) {
    case 400: return "INVALID_ARGUMENT";
    case 401: return "UNAUTHENTICATED";
    case 403: return "PERMISSION_DENIED";
    case 404: return "NOT_FOUND";
    case 409: return "ABORTED";
    case 413: return "INVALID_ARGUMENT";
    case 429: return "RESOURCE_EXHAUSTED";
    case 431: return "INVALID_ARGUMENT";
    case 499: return "CANCELLED";
    case 500: return "INTERNAL";
    case 501: return "UNIMPLEMENTED";
    case 503: return "UNAVAILABLE";
    case 504: return "DEADLINE_EXCEEDED";
    default: return "UNKNOWN";
  }
}

std::string MakeErrorBody(int code, std::string_view status, std::string_view message,
                          std::string_view details_json) {
  json::object error{{"code", code}, {"message", Js(message)}, {"status", Js(status)}};
  if (!details_json.empty()) {
    std::optional<json::value> details = ParseJson(details_json);
    if (details.has_value()) error["details"] = *std::move(details);
  }
  return Pretty(json::object{{"error", std::move(error)}});
}

std::string RetryInfoDetails(std::string_view retry_delay) {
  return json::serialize(json::array{json::object{
      {"@type", "type.googleapis.com/google.rpc.RetryInfo"}, {"retryDelay", Js(retry_delay)}}});
}

std::string QuotaRetryDetails(std::string_view retry_delay, std::string_view model) {
  json::object violation{
      {"quotaMetric", "generativelanguage.googleapis.com/generate_content_free_tier_requests"},
      {"quotaId", "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"},
      {"quotaDimensions", json::object{{"location", "global"}, {"model", Js(model)}}},
      {"quotaValue", "10"}};
  json::array details{
      json::object{{"@type", "type.googleapis.com/google.rpc.QuotaFailure"},
                   {"violations", json::array{std::move(violation)}}},
      json::object{{"@type", "type.googleapis.com/google.rpc.Help"},
                   {"links", json::array{json::object{
                                 {"description", "Learn more about Gemini API quotas"},
                                 {"url", "https://ai.google.dev/gemini-api/docs/rate-limits"}}}}},
      json::object{{"@type", "type.googleapis.com/google.rpc.RetryInfo"},
                   {"retryDelay", Js(retry_delay)}}};
  return json::serialize(details);
}

std::string ApiKeyInvalidDetails() {
  return json::serialize(json::array{json::object{
      {"@type", "type.googleapis.com/google.rpc.ErrorInfo"},
      {"reason", "API_KEY_INVALID"},
      {"domain", "googleapis.com"},
      {"metadata", json::object{{"service", "generativelanguage.googleapis.com"}}}}});
}

std::string ServiceDisabledDetails(std::string_view project_number_view) {
  const std::string project_number(project_number_view);
  const std::string url = absl::StrCat(
      "https://console.developers.google.com/apis/api/generativelanguage.googleapis.com/"
      "overview?project=",
      project_number);
  return json::serialize(json::array{
      json::object{{"@type", "type.googleapis.com/google.rpc.ErrorInfo"},
                   {"reason", "SERVICE_DISABLED"},
                   {"domain", "googleapis.com"},
                   {"metadata", json::object{{"consumer", absl::StrCat("projects/", project_number)},
                                             {"service", "generativelanguage.googleapis.com"},
                                             {"activationUrl", url}}}},
      json::object{{"@type", "type.googleapis.com/google.rpc.Help"},
                   {"links", json::array{json::object{
                                 {"description", "Google developers console API activation"},
                                 {"url", url}}}}}});
}

std::string MakeSseEvent(std::string_view json_text) {
  return absl::StrCat("data: ", CompactJson(json_text), "\r\n\r\n");
}

std::string MakeResponseJson(const ResponseChunk& chunk, std::string_view model_version,
                             std::string_view response_id, bool stream_style) {
  PromptTokens prompt;
  prompt.text = chunk.prompt_tokens;
  json::object object = ResponseObject(chunk.text, chunk.finish_reason, prompt,
                                       chunk.candidates_tokens, model_version, response_id,
                                       stream_style);
  return stream_style ? Compact(object) : Pretty(object);
}

ScriptedResponse ScriptedError(int code, std::string_view message, std::string_view details_json) {
  return ErrorResponse(code, message, details_json);
}

ScriptedResponse ScriptedText(std::string_view text, std::string_view finish_reason,
                              int prompt_tokens) {
  ScriptedResponse response;
  response.headers.emplace_back("Content-Type", std::string(kJsonContentType));
  AddGoogleHeaders(response.headers);
  ResponseChunk chunk{std::string(text), std::string(finish_reason), prompt_tokens,
                      WordTokens(text)};
  response.body = MakeResponseJson(chunk, kScriptedModelVersion, ResponseId(0), false);
  return response;
}

ScriptedResponse ScriptedStream(const std::vector<std::string>& deltas,
                                std::string_view finish_reason, int prompt_tokens) {
  ScriptedResponse response;
  response.headers.emplace_back("Content-Type", "text/event-stream");
  response.headers.emplace_back("Content-Disposition", "attachment");
  AddGoogleHeaders(response.headers);
  int tokens = 0;
  for (size_t i = 0; i < deltas.size(); ++i) {
    tokens += WordTokens(deltas[i]);
    const bool last = i + 1 == deltas.size();
    ResponseChunk chunk{deltas[i], last ? std::string(finish_reason) : "", prompt_tokens, tokens};
    response.stream_writes.push_back(absl::StrCat(
        "data: ", MakeResponseJson(chunk, kScriptedModelVersion, ResponseId(0), true), "\r\n\r\n"));
  }
  return response;
}

int WordTokens(std::string_view text) {
  int words = 0;
  bool in_word = false;
  for (char c : text) {
    const bool space = absl::ascii_isspace(static_cast<unsigned char>(c));
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

}  // namespace vision_gateway::emulator
