#include "emulator/emulator.h"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "emulator/batches.h"
#include "emulator/files.h"
#include "emulator/gemini_api.h"
#include "emulator/gemini_wire.h"
#include "emulator/http_server.h"

namespace vision_gateway::emulator {

namespace json = boost::json;

namespace {

constexpr std::string_view kApiKeyMessage = "API key not valid. Please pass a valid API key.";
constexpr std::string_view kAdminPrefix = "/emulator/";

absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }
json::string_view Js(std::string_view s) { return json::string_view(s.data(), s.size()); }
std::string_view Sv(json::string_view s) { return std::string_view(s.data(), s.size()); }

std::string PercentDecode(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] == '%' && i + 2 < in.size() && absl::ascii_isxdigit(in[i + 1]) &&
               absl::ascii_isxdigit(in[i + 2])) {
      auto hex = [](char c) { return absl::ascii_isdigit(c) ? c - '0' : (c | 0x20) - 'a' + 10; };
      out += static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2]));
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

struct Target {
  std::string path;
  std::vector<std::pair<std::string, std::string>> query;
  std::optional<std::string> Param(std::string_view name) const {
    for (const auto& [key, value] : query) {
      if (key == name) return value;
    }
    return std::nullopt;
  }
};

Target ParseTarget(std::string_view target) {
  Target parsed;
  const size_t question = target.find('?');
  parsed.path = PercentDecode(target.substr(0, question));
  if (question != std::string_view::npos) {
    for (absl::string_view pair :
         absl::StrSplit(Absl(target.substr(question + 1)), '&', absl::SkipEmpty())) {
      const size_t equals = pair.find('=');
      std::string_view item(pair.data(), pair.size());
      parsed.query.emplace_back(PercentDecode(item.substr(0, equals)),
                                equals == absl::string_view::npos
                                    ? std::string()
                                    : PercentDecode(item.substr(equals + 1)));
    }
  }
  return parsed;
}

std::string FindHeader(const HeaderList& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, Absl(name))) return value;
  }
  return "";
}

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t extra = 0;
    if (c < 0x80) {
      extra = 0;
    } else if ((c >> 5) == 0x6) {
      extra = 1;
    } else if ((c >> 4) == 0xe) {
      extra = 2;
    } else if ((c >> 3) == 0x1e) {
      extra = 3;
    } else {
      return false;
    }
    if (i + extra >= s.size() && extra > 0) return false;
    for (size_t k = 1; k <= extra; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    }
    i += extra + 1;
  }
  return true;
}

ScriptedResponse JsonReply(int status, const json::value& value) {
  ScriptedResponse response;
  response.status = status;
  response.headers.emplace_back("Content-Type", "application/json; charset=UTF-8");
  response.body = PrettyJson(json::serialize(value));
  return response;
}

ScriptedResponse AdminError(int status, std::string_view message) {
  return JsonReply(status, json::object{{"error", Js(message)}});
}

std::string_view MaskFormatName(MaskFormat format) {
  return format == MaskFormat::kPolygon ? "polygon" : "png";
}

std::optional<int64_t> AsInt(const json::value& value) {
  if (value.is_int64()) return value.get_int64();
  if (value.is_uint64() && value.get_uint64() < (uint64_t{1} << 62)) {
    return static_cast<int64_t>(value.get_uint64());
  }
  if (value.is_double()) return static_cast<int64_t>(value.get_double());
  return std::nullopt;
}

json::array StringArray(const std::vector<std::string>& strings) {
  json::array out;
  for (const std::string& s : strings) out.emplace_back(Js(s));
  return out;
}

json::object ModelConfigJson(const EmulatorModel& model) {
  return json::object{{"id", Js(model.id)},
                      {"display_name", Js(model.display_name)},
                      {"input_token_limit", model.input_token_limit},
                      {"output_token_limit", model.output_token_limit},
                      {"methods", StringArray(model.methods)},
                      {"thinking", model.thinking},
                      {"thinking_control", Js(model.thinking_control)},
                      {"levels", StringArray(model.levels)},
                      {"min_budget", model.min_budget},
                      {"max_budget", model.max_budget},
                      {"can_disable", model.can_disable},
                      {"per_part_media_resolution", model.per_part_media_resolution},
                      {"retired", model.retired}};
}

// One model from its admin JSON form (members as ModelConfigJson writes them; absent: defaults).
absl::StatusOr<EmulatorModel> ModelFromJson(const json::value& value) {
  if (!value.is_object()) return absl::InvalidArgumentError("a model must be an object");
  EmulatorModel model;
  for (const auto& member : value.get_object()) {
    const std::string_view key = Sv(member.key());
    const json::value& field = member.value();
    auto bad = [&] {
      return absl::InvalidArgumentError(absl::StrCat("bad value for model field ", Absl(key)));
    };
    auto strings = [&](std::vector<std::string>& out) -> bool {
      if (!field.is_array() || field.get_array().size() > 64) return false;
      out.clear();
      for (const json::value& v : field.get_array()) {
        if (!v.is_string()) return false;
        out.emplace_back(Sv(v.get_string()));
      }
      return true;
    };
    if (key == "id" || key == "display_name" || key == "thinking_control") {
      if (!field.is_string() || field.get_string().size() > 256) return bad();
      (key == "id" ? model.id : key == "display_name" ? model.display_name
                                                      : model.thinking_control) =
          std::string(Sv(field.get_string()));
    } else if (key == "input_token_limit" || key == "output_token_limit" ||
               key == "min_budget" || key == "max_budget") {
      std::optional<int64_t> n = AsInt(field);
      if (!n.has_value() || *n < -1 || *n > INT32_MAX) return bad();
      (key == "input_token_limit"    ? model.input_token_limit
       : key == "output_token_limit" ? model.output_token_limit
       : key == "min_budget"         ? model.min_budget
                                     : model.max_budget) = static_cast<int>(*n);
    } else if (key == "methods") {
      if (!strings(model.methods)) return bad();
    } else if (key == "levels") {
      if (!strings(model.levels)) return bad();
    } else if (key == "thinking" || key == "can_disable" || key == "per_part_media_resolution" ||
               key == "retired") {
      if (!field.is_bool()) return bad();
      (key == "thinking"      ? model.thinking
       : key == "can_disable" ? model.can_disable
       : key == "retired"     ? model.retired
                              : model.per_part_media_resolution) = field.get_bool();
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown model field ", Absl(key)));
    }
  }
  if (model.id.empty()) return absl::InvalidArgumentError("a model needs an id");
  if (model.thinking_control != "level" && model.thinking_control != "budget" &&
      model.thinking_control != "none") {
    return absl::InvalidArgumentError("thinking_control must be level, budget or none");
  }
  return model;
}

json::object ConfigJson(const EmulatorConfig& config) {
  json::array models;
  for (const EmulatorModel& model : config.models) models.push_back(ModelConfigJson(model));
  return json::object{{"models", std::move(models)},
                      {"fence", config.fence},
                      {"prose_prefix", Js(config.prose_prefix)},
                      {"mask_format", Js(MaskFormatName(config.mask_format))},
                      {"stream_chunk_chars", config.stream_chunk_chars},
                      {"caption_words_per_event", config.caption_words_per_event},
                      {"response_delay_ms", config.response_delay.count()},
                      {"stream_event_delay_ms", config.stream_event_delay.count()},
                      {"model_version", Js(config.model_version)},
                      {"strict_fields", config.strict_fields},
                      {"file_processing_ms", config.file_processing.count()},
                      {"fail_file_processing", config.fail_file_processing},
                      {"batch_processing_ms", config.batch_processing.count()},
                      {"fail_batches", config.fail_batches}};
}


// Merges the members present in `object` into `config`.
absl::Status MergeConfig(const json::object& object, EmulatorConfig& config) {
  for (const auto& member : object) {
    const std::string_view key = Sv(member.key());
    const json::value& value = member.value();
    auto bad = [&] {
      return absl::InvalidArgumentError(absl::StrCat("bad value for config field ", Absl(key)));
    };
    if (key == "fence") {
      if (!value.is_bool()) return bad();
      config.fence = value.get_bool();
    } else if (key == "prose_prefix") {
      if (!value.is_string()) return bad();
      config.prose_prefix = std::string(Sv(value.get_string()));
    } else if (key == "mask_format") {
      if (!value.is_string()) return bad();
      if (value.get_string() == "png") {
        config.mask_format = MaskFormat::kPng;
      } else if (value.get_string() == "polygon") {
        config.mask_format = MaskFormat::kPolygon;
      } else {
        return bad();
      }
    } else if (key == "stream_chunk_chars" || key == "caption_words_per_event") {
      std::optional<int64_t> n = AsInt(value);
      if (!n.has_value() || *n < 1 || *n > (1 << 20)) return bad();
      (key == "stream_chunk_chars" ? config.stream_chunk_chars : config.caption_words_per_event) =
          static_cast<int>(*n);
    } else if (key == "response_delay_ms" || key == "stream_event_delay_ms" ||
               key == "delay_ms" || key == "file_processing_ms") {
      std::optional<int64_t> n = AsInt(value);
      if (!n.has_value() || *n < 0 || *n > 3'600'000) return bad();
      (key == "stream_event_delay_ms" ? config.stream_event_delay
       : key == "file_processing_ms"  ? config.file_processing
                                      : config.response_delay) = std::chrono::milliseconds(*n);
    } else if (key == "model_version") {
      if (!value.is_string()) return bad();
      config.model_version = std::string(Sv(value.get_string()));
    } else if (key == "strict_fields") {
      if (!value.is_bool()) return bad();
      config.strict_fields = value.get_bool();
    } else if (key == "fail_file_processing") {
      if (!value.is_bool()) return bad();
      config.fail_file_processing = value.get_bool();
    } else if (key == "batch_processing_ms") {
      // Up to 30 days: longer than the 48 h after which a job expires.
      std::optional<int64_t> n = AsInt(value);
      if (!n.has_value() || *n < 0 || *n > int64_t{30} * 24 * 3'600'000) return bad();
      config.batch_processing = std::chrono::milliseconds(*n);
    } else if (key == "fail_batches") {
      if (!value.is_bool()) return bad();
      config.fail_batches = value.get_bool();
    } else if (key == "models") {
      if (!value.is_array() || value.get_array().size() > 1000) return bad();
      std::vector<EmulatorModel> models;
      for (const json::value& entry : value.get_array()) {
        absl::StatusOr<EmulatorModel> model = ModelFromJson(entry);
        if (!model.ok()) return model.status();
        models.push_back(*std::move(model));
      }
      config.models = std::move(models);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown config field ", Absl(key)));
    }
  }
  return absl::OkStatus();
}

// One scripted response from its admin JSON form.
// `hold_gate` receives the name of its "hold_last_write" gate (empty: none).
absl::StatusOr<ScriptedResponse> ScriptFromJson(const json::value& value, std::string& hold_gate) {
  if (!value.is_object()) return absl::InvalidArgumentError("a script entry must be an object");
  ScriptedResponse response;
  for (const auto& member : value.get_object()) {
    const std::string_view key = Sv(member.key());
    const json::value& field = member.value();
    auto bad = [&] {
      return absl::InvalidArgumentError(absl::StrCat("bad value for script field ", Absl(key)));
    };
    if (key == "status") {
      std::optional<int64_t> n = AsInt(field);
      if (!n.has_value() || *n < 100 || *n > 999) return bad();
      response.status = static_cast<int>(*n);
    } else if (key == "headers") {
      if (field.is_object()) {
        for (const auto& header : field.get_object()) {
          if (!header.value().is_string()) return bad();
          response.headers.emplace_back(std::string(Sv(header.key())),
                                        std::string(Sv(header.value().get_string())));
        }
      } else if (field.is_array()) {
        for (const auto& pair : field.get_array()) {
          if (!pair.is_array() || pair.get_array().size() != 2 || !pair.get_array()[0].is_string() ||
              !pair.get_array()[1].is_string()) {
            return bad();
          }
          response.headers.emplace_back(std::string(Sv(pair.get_array()[0].get_string())),
                                        std::string(Sv(pair.get_array()[1].get_string())));
        }
      } else {
        return bad();
      }
    } else if (key == "body") {
      response.body = field.is_string() ? std::string(Sv(field.get_string()))
                                        : PrettyJson(json::serialize(field));
    } else if (key == "stream_writes") {
      if (!field.is_array()) return bad();
      for (const auto& piece : field.get_array()) {
        if (!piece.is_string()) return bad();
        response.stream_writes.emplace_back(Sv(piece.get_string()));
      }
    } else if (key == "sse_events") {
      if (!field.is_array()) return bad();
      for (const auto& event : field.get_array()) {
        response.stream_writes.push_back(MakeSseEvent(
            event.is_string() ? std::string(Sv(event.get_string())) : json::serialize(event)));
      }
    } else if (key == "delay_before_headers_ms" || key == "delay_between_writes_ms") {
      std::optional<int64_t> n = AsInt(field);
      if (!n.has_value() || *n < 0 || *n > 3'600'000) return bad();
      (key == "delay_before_headers_ms" ? response.delay_before_headers
                                        : response.delay_between_writes) =
          std::chrono::milliseconds(*n);
    } else if (key == "drop_connection_after_writes") {
      if (!field.is_bool()) return bad();
      response.drop_connection_after_writes = field.get_bool();
    } else if (key == "hold_last_write") {
      if (!field.is_string() || field.get_string().empty()) return bad();
      hold_gate = std::string(Sv(field.get_string()));
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown script field ", Absl(key)));
    }
  }
  return response;
}

// Admin output: the API key never leaves the process.
json::object RecordedJson(const RecordedRequest& request) {
  json::array headers;
  for (const auto& [name, value] : request.headers) {
    const bool secret = absl::EqualsIgnoreCase(name, "x-goog-api-key");
    headers.push_back(json::array{Js(name), secret ? "REDACTED" : Js(value)});
  }
  std::string target = request.target;
  const size_t key_at = std::min(target.find("?key="), target.find("&key="));
  if (key_at != std::string::npos) {
    const size_t end = target.find('&', key_at + 1);
    target.replace(key_at + 5, (end == std::string::npos ? target.size() : end) - key_at - 5,
                   "REDACTED");
  }
  json::object object{{"method", Js(request.method)},
                      {"target", Js(target)},
                      {"headers", std::move(headers)},
                      {"body_size", request.body_size},
                      {"body_truncated", request.body_truncated}};
  if (ValidUtf8(request.body)) {
    object["body"] = Js(request.body);
  } else {
    object["body_base64"] = absl::Base64Escape(request.body);
  }
  return object;
}

}  // namespace

std::string RecordedRequest::Header(std::string_view name) const {
  return FindHeader(headers, name);
}

struct Emulator::State {
  explicit State(EmulatorOptions opts)
      : options(std::move(opts)),
        config(options.config),
        api_key(options.api_key),
        files(FileStoreOptions{.directory = options.file_directory,
                               .max_stored_bytes = options.max_stored_file_bytes}) {}

  const EmulatorOptions options;
  std::string base_url;  // set once the port is known

  mutable absl::Mutex mu;
  EmulatorConfig config ABSL_GUARDED_BY(mu);
  std::string api_key ABSL_GUARDED_BY(mu);  // empty: accept any non-empty key
  std::deque<ScriptedResponse> script ABSL_GUARDED_BY(mu);
  // Script entries for the batch line with a given key (admin script field "batch_key").
  std::multimap<std::string, ScriptedResponse> keyed_script ABSL_GUARDED_BY(mu);
  // Gates released through POST /emulator/release (script field "hold_last_write").
  std::set<std::string> released_gates ABSL_GUARDED_BY(mu);
  std::deque<RecordedRequest> requests ABSL_GUARDED_BY(mu);
  size_t recorded_bytes ABSL_GUARDED_BY(mu) = 0;  // bodies in `requests`
  size_t requests_seen ABSL_GUARDED_BY(mu) = 0;  // since the last clear
  int open_connections ABSL_GUARDED_BY(mu) = 0;
  int64_t total_connections ABSL_GUARDED_BY(mu) = 0;
  uint64_t sequence ABSL_GUARDED_BY(mu) = 0;
  FileStore files;
  BatchStore batches{&files};

  void Record(const HttpRequest& request) {
    RecordedRequest record;
    record.method = request.method;
    record.target = request.target;
    record.headers = request.headers;
    record.body_size = request.body.size();
    record.body_truncated = request.body.size() > options.max_recorded_body_bytes;
    record.body = request.body.substr(0, options.max_recorded_body_bytes);
    absl::MutexLock lock(&mu);
    recorded_bytes += record.body.size();
    requests.push_back(std::move(record));
    ++requests_seen;
    while (requests.size() > 1 && (requests.size() > options.max_recorded_requests ||
                                   recorded_bytes > options.max_recorded_total_bytes)) {
      recorded_bytes -= requests.front().body.size();
      requests.pop_front();
    }
  }

  bool Authorized(const HttpRequest& request, const Target& target) const {
    std::string key = FindHeader(request.headers, "x-goog-api-key");
    if (key.empty()) key = target.Param("key").value_or("");
    absl::MutexLock lock(&mu);
    return !key.empty() && (api_key.empty() || key == api_key);
  }

  ScriptedResponse Handle(HttpRequest request) {
    const Target target = ParseTarget(request.target);
    if (absl::StartsWith(target.path, Absl(kAdminPrefix))) return HandleAdmin(request, target);
    Record(request);

    // /{v1,v1beta}/models/{model}:{method}
    std::vector<std::string> segments = absl::StrSplit(target.path, '/', absl::SkipEmpty());
    const bool upload = !segments.empty() && segments[0] == "upload";
    if (upload) segments.erase(segments.begin());
    const bool versioned = !segments.empty() && (segments[0] == "v1" || segments[0] == "v1beta" ||
                                                 segments[0] == "v1alpha");
    if (versioned && !upload && segments.size() == 3 && segments[1] == "models") {
      const size_t colon = segments[2].rfind(':');
      if (colon != std::string::npos) {
        ModelCall call;
        call.api_version = segments[0];
        call.model = segments[2].substr(0, colon);
        call.method = segments[2].substr(colon + 1);
        if (call.method == "generateContent" || call.method == "streamGenerateContent" ||
            call.method == "countTokens") {
          if (request.method != "POST") return NotFound(target.path);
          return HandleModel(request, target, std::move(call));
        }
        if (call.method == "batchGenerateContent") {
          if (request.method != "POST") return NotFound(target.path);
          if (!Authorized(request, target)) {
            return ErrorResponse(400, kApiKeyMessage, ApiKeyInvalidDetails());
          }
          EmulatorConfig current;
          {
            absl::MutexLock lock(&mu);
            current = config;
          }
          return batches.Create(call.api_version, call.model, request.body, current);
        }
      }
    }
    // models.list and models.get.
    if (versioned && !upload && segments.size() >= 2 && segments.size() <= 3 &&
        segments[1] == "models" && request.method == "GET" &&
        (segments.size() == 2 || segments[2].find(':') == std::string::npos)) {
      if (!Authorized(request, target)) {
        return ErrorResponse(400, kApiKeyMessage, ApiKeyInvalidDetails());
      }
      EmulatorConfig current;
      {
        absl::MutexLock lock(&mu);
        current = config;
      }
      if (segments.size() == 3) return HandleGetModel(current, segments[0], segments[2]);
      return HandleListModels(current, target.Param("pageSize").value_or(""),
                              target.Param("pageToken").value_or(""));
    }
    if (versioned && !upload && segments.size() >= 2 && segments[1] == "batches") {
      if (!Authorized(request, target)) {
        return ErrorResponse(400, kApiKeyMessage, ApiKeyInvalidDetails());
      }
      BatchRequest batch_request;
      batch_request.method = request.method;
      batch_request.api_version = segments[0];
      batch_request.segments.assign(segments.begin() + 1, segments.end());
      batch_request.query = target.query;
      return batches.Handle(batch_request,
                            [this](const std::string& api_version, const std::string& model,
                                   std::string request_json, const std::string& key) {
                              return RunBatchLine(api_version, model, std::move(request_json),
                                                  key);
                            });
    }
    if (versioned && (upload || (segments.size() >= 2 && segments[1] == "files"))) {
      if (!Authorized(request, target)) {
        return ErrorResponse(400, kApiKeyMessage, ApiKeyInvalidDetails());
      }
      FileRequest file_request;
      file_request.method = request.method;
      file_request.upload = upload;
      file_request.api_version = segments[0];
      file_request.segments.assign(segments.begin() + 1, segments.end());
      file_request.query = target.query;
      file_request.headers = &request.headers;
      file_request.body = std::move(request.body);
      file_request.base_url = base_url;
      {
        absl::MutexLock lock(&mu);
        file_request.processing = config.file_processing;
        files.SetFailProcessing(config.fail_file_processing);
      }
      return files.Handle(file_request);
    }
    return NotFound(target.path);
  }

  static ScriptedResponse NotFound(std::string_view path) {
    return ErrorResponse(404, absl::StrCat("Method not found: ", Absl(path)));
  }

  ScriptedResponse HandleModel(const HttpRequest& request, const Target& target, ModelCall call) {
    EmulatorConfig current;
    {
      absl::MutexLock lock(&mu);
      // An unknown or retired model answers 404 before anything else, scripted or not (the
      // script stays queued for the next request).
      if (FindListedModel(config, call.model) != nullptr && !script.empty()) {
        ScriptedResponse scripted = std::move(script.front());
        script.pop_front();
        return scripted;
      }
      current = config;
      call.sequence = ++sequence;
    }
    if (!Authorized(request, target)) {
      return ErrorResponse(400, kApiKeyMessage, ApiKeyInvalidDetails());
    }
    call.alt_sse = target.Param("alt").value_or("") == "sse";
    call.body = request.body;
    return HandleModelCall(call, current,
                           [this](std::string_view uri) { return files.Resolve(uri); });
  }

  // One line of a batch, through the online generateContent path: a script entry for its key,
  // else the next FIFO script entry, else scene mode.
  BatchLineResult RunBatchLine(const std::string& api_version, const std::string& model,
                               std::string request_json, const std::string& key) {
    ModelCall call;
    call.api_version = api_version;
    call.model = model;
    call.method = "generateContent";
    call.body = request_json;
    std::optional<ScriptedResponse> scripted;
    EmulatorConfig current;
    {
      absl::MutexLock lock(&mu);
      if (auto it = keyed_script.find(key); it != keyed_script.end()) {
        scripted = std::move(it->second);
        keyed_script.erase(it);
      } else if (!script.empty()) {
        scripted = std::move(script.front());
        script.pop_front();
      } else {
        current = config;
        call.sequence = ++sequence;
      }
    }
    ScriptedResponse response =
        scripted.has_value()
            ? *std::move(scripted)
            : HandleModelCall(call, current,
                              [this](std::string_view uri) { return files.Resolve(uri); });
    BatchLineResult result;
    json::error_code ec;
    json::value body = json::parse(Js(response.body), ec);
    if (response.status == 200 && response.stream_writes.empty() &&
        !response.drop_connection_after_writes && !ec && body.is_object()) {
      result.ok = true;
      result.json = json::serialize(body);
      return result;
    }
    int code = response.status == 200 ? 500 : response.status;
    json::object error{{"code", code},
                       {"message", response.status == 200
                                       ? "The emulator cannot answer a batch line with a "
                                         "streamed or dropped scripted response."
                                       : "Scripted error."},
                       {"status", Js(StatusNameForHttpCode(code))}};
    if (!ec && body.is_object()) {
      if (const json::value* inner = body.get_object().if_contains("error");
          inner != nullptr && inner->is_object()) {
        error = inner->get_object();
      }
    }
    result.json = json::serialize(error);
    return result;
  }

  ScriptedResponse HandleAdmin(const HttpRequest& request, const Target& target) {
    const std::string_view what = std::string_view(target.path).substr(kAdminPrefix.size());
    const std::string& method = request.method;
    if (what == "script" && method == "POST") {
      json::error_code ec;
      json::value value = json::parse(Js(request.body), ec);
      if (ec) return AdminError(400, "script body is not JSON");
      std::vector<ScriptedResponse> entries;
      std::vector<std::string> batch_keys;  // per entry; "" for the FIFO
      auto add = [&](json::value entry) -> absl::Status {
        std::string gate;
        std::string batch_key;
        if (entry.is_object()) {
          if (const json::value* key = entry.get_object().if_contains("batch_key")) {
            if (!key->is_string() || key->get_string().empty()) {
              return absl::InvalidArgumentError("bad value for script field batch_key");
            }
            batch_key = std::string(Sv(key->get_string()));
            entry.get_object().erase("batch_key");
          }
        }
        batch_keys.push_back(std::move(batch_key));
        absl::StatusOr<ScriptedResponse> parsed = ScriptFromJson(entry, gate);
        if (!parsed.ok()) return parsed.status();
        if (!gate.empty()) {
          // Connections end before the State does (Stop() closes them all).
          parsed->hold_last_write_until = [this, gate] {
            absl::MutexLock lock(&mu);
            return released_gates.count(gate) > 0;
          };
        }
        entries.push_back(*std::move(parsed));
        return absl::OkStatus();
      };
      const json::array single{value};
      for (const auto& entry : value.is_array() ? value.get_array() : single) {
        if (absl::Status status = add(entry); !status.ok()) {
          return AdminError(400, std::string(status.message()));
        }
      }
      absl::MutexLock lock(&mu);
      for (size_t i = 0; i < entries.size(); ++i) {
        if (batch_keys[i].empty()) {
          script.push_back(std::move(entries[i]));
        } else {
          keyed_script.emplace(batch_keys[i], std::move(entries[i]));
        }
      }
      return JsonReply(200, json::object{{"queued", entries.size()}, {"pending", script.size()}});
    }
    if (what == "release" && method == "POST") {
      json::error_code ec;
      json::value value = json::parse(Js(request.body), ec);
      const json::value* gate = !ec && value.is_object() ? value.get_object().if_contains("gate")
                                                         : nullptr;
      if (gate == nullptr || !gate->is_string()) return AdminError(400, "body: {\"gate\": name}");
      absl::MutexLock lock(&mu);
      released_gates.insert(std::string(Sv(gate->get_string())));
      return JsonReply(200, json::object{});
    }
    if (what == "script" && method == "DELETE") {
      absl::MutexLock lock(&mu);
      script.clear();
      keyed_script.clear();
      return JsonReply(200, json::object{{"pending", 0}});
    }
    if (what == "config" && (method == "POST" || method == "GET")) {
      absl::MutexLock lock(&mu);
      if (method == "POST") {
        json::error_code ec;
        json::value value = json::parse(Js(request.body), ec);
        if (ec || !value.is_object()) return AdminError(400, "config body must be a JSON object");
        EmulatorConfig updated = config;
        if (absl::Status status = MergeConfig(value.get_object(), updated); !status.ok()) {
          return AdminError(400, std::string(status.message()));
        }
        config = updated;
      }
      return JsonReply(200, ConfigJson(config));
    }
    if (what == "api_key" && method == "PUT") {
      // Write-only: the key is never echoed. Whitespace around it is ignored.
      absl::MutexLock lock(&mu);
      api_key = std::string(absl::StripAsciiWhitespace(request.body));
      return JsonReply(200, json::object{{"any_key", api_key.empty()}});
    }
    if (what == "requests" && method == "GET") {
      json::array array;
      absl::MutexLock lock(&mu);
      for (const RecordedRequest& recorded : requests) array.push_back(RecordedJson(recorded));
      return JsonReply(200, array);
    }
    if (what == "requests" && method == "DELETE") {
      absl::MutexLock lock(&mu);
      requests.clear();
      recorded_bytes = 0;
      requests_seen = 0;
      return JsonReply(200, json::object{});
    }
    if (what == "reset" && method == "POST") {
      {
        absl::MutexLock lock(&mu);
        script.clear();
        keyed_script.clear();
        released_gates.clear();
        requests.clear();
        recorded_bytes = 0;
        requests_seen = 0;
        config = options.config;
        api_key = options.api_key;
      }
      batches.Clear();
      files.Clear();
      return JsonReply(200, json::object{});
    }
    if (what == "clock" && method == "POST") {
      json::error_code ec;
      json::value value = json::parse(Js(request.body), ec);
      const json::value* advance =
          !ec && value.is_object() ? value.get_object().if_contains("advance_ms") : nullptr;
      std::optional<int64_t> ms = advance != nullptr ? AsInt(*advance) : std::nullopt;
      if (!ms.has_value() || *ms < 0) {
        return AdminError(400, "clock body must be {\"advance_ms\": N} with N >= 0");
      }
      files.AdvanceClock(absl::Milliseconds(*ms));
      return JsonReply(200, json::object{{"advanced_ms", *ms}});
    }
    if (what == "upload_faults" && method == "POST") {
      json::error_code ec;
      json::value value = json::parse(Js(request.body), ec);
      if (ec) return AdminError(400, "upload_faults body is not JSON");
      json::array entries = value.is_array() ? value.get_array() : json::array{value};
      std::vector<UploadFault> faults;
      for (const json::value& entry : entries) {
        if (!entry.is_object()) return AdminError(400, "an upload fault must be an object");
        UploadFault fault;
        for (const auto& member : entry.get_object()) {
          const std::string_view key = Sv(member.key());
          if (key == "status") {
            std::optional<int64_t> n = AsInt(member.value());
            if (!n.has_value() || *n < 400 || *n > 599) return AdminError(400, "bad status");
            fault.status = static_cast<int>(*n);
          } else if (key == "message" && member.value().is_string() &&
                     member.value().get_string().size() <= 4096) {
            fault.message = std::string(Sv(member.value().get_string()));
          } else if ((key == "keep_bytes" || key == "drop_connection") &&
                     member.value().is_bool()) {
            (key == "keep_bytes" ? fault.keep_bytes : fault.drop_connection) =
                member.value().get_bool();
          } else {
            return AdminError(400, absl::StrCat("unknown or bad upload fault field ", Absl(key)));
          }
        }
        faults.push_back(fault);
      }
      for (const UploadFault& fault : faults) files.InjectUploadFault(fault);
      return JsonReply(200, json::object{{"queued", faults.size()}});
    }
    if (what == "status" && method == "GET") {
      const int batch_count = batches.JobCount();  // its own lock, not taken under mu
      absl::MutexLock lock(&mu);
      return JsonReply(200, json::object{{"open_connections", open_connections},
                                         {"total_connections", total_connections},
                                         {"pending_script", script.size()},
                                         {"pending_batch_key_script", keyed_script.size()},
                                         {"batches", batch_count},
                                         {"recorded_requests", requests_seen}});
    }
    return AdminError(404, absl::StrCat("no admin route ", method, " ", target.path));
  }
};

Emulator::Emulator(std::shared_ptr<State> state, std::unique_ptr<HttpServer> server, int port)
    : state_(std::move(state)), server_(std::move(server)), port_(port) {}

Emulator::~Emulator() { Stop(); }

absl::StatusOr<std::unique_ptr<Emulator>> Emulator::Start(EmulatorOptions options) {
  if (options.threads < 1) return absl::InvalidArgumentError("threads must be at least 1");
  auto state = std::make_shared<State>(options);
  HttpServerOptions server_options;
  server_options.host = options.host;
  server_options.port = options.port;
  server_options.threads = options.threads;
  server_options.max_body_bytes = options.max_body_bytes;
  server_options.max_header_bytes = options.max_header_bytes;
  State* raw = state.get();
  server_options.handler = [raw](HttpRequest request) { return raw->Handle(std::move(request)); };
  server_options.on_connection = [raw](int delta) {
    absl::MutexLock lock(&raw->mu);
    raw->open_connections += delta;
    if (delta > 0) raw->total_connections += delta;
  };
  server_options.limit_response = [](int status) {
    return ErrorResponse(status, status == 413 ? "Request payload size exceeds the limit."
                                               : "Request header fields too large.");
  };
  // The handler may run before base_url is known only if a client guesses the port before
  // Start returns; file upload URLs then fall back to the Host header.
  absl::StatusOr<std::unique_ptr<HttpServer>> server = HttpServer::Start(std::move(server_options));
  if (!server.ok()) return server.status();
  const int port = (*server)->port();
  const std::string host = options.host == "localhost" ? "127.0.0.1" : options.host;
  const bool v6 = host.find(':') != std::string::npos;
  state->base_url = absl::StrCat("http://", v6 ? "[" : "", host, v6 ? "]" : "", ":", port);
  return std::unique_ptr<Emulator>(new Emulator(std::move(state), *std::move(server), port));
}

int Emulator::port() const { return port_; }

std::string Emulator::base_url() const { return state_->base_url; }

void Emulator::Enqueue(ScriptedResponse response) {
  absl::MutexLock lock(&state_->mu);
  state_->script.push_back(std::move(response));
}

void Emulator::EnqueueForBatchKey(std::string key, ScriptedResponse response) {
  absl::MutexLock lock(&state_->mu);
  state_->keyed_script.emplace(std::move(key), std::move(response));
}

std::size_t Emulator::PendingScripted() const {
  absl::MutexLock lock(&state_->mu);
  return state_->script.size();
}

void Emulator::ClearScript() {
  absl::MutexLock lock(&state_->mu);
  state_->script.clear();
}

std::vector<RecordedRequest> Emulator::Requests() const {
  absl::MutexLock lock(&state_->mu);
  return std::vector<RecordedRequest>(state_->requests.begin(), state_->requests.end());
}

void Emulator::ClearRequests() {
  absl::MutexLock lock(&state_->mu);
  state_->requests.clear();
  state_->recorded_bytes = 0;
  state_->requests_seen = 0;
}

absl::Status Emulator::WaitForRequests(std::size_t count, absl::Duration timeout) const {
  State* state = state_.get();
  absl::MutexLock lock(&state->mu);
  auto reached = [state, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) {
    return state->requests_seen >= count;
  };
  if (!state->mu.AwaitWithTimeout(absl::Condition(&reached), timeout)) {
    return absl::DeadlineExceededError(absl::StrCat("saw ", state->requests_seen, " requests, wanted ", count));
  }
  return absl::OkStatus();
}

int Emulator::OpenConnections() const {
  absl::MutexLock lock(&state_->mu);
  return state_->open_connections;
}

int64_t Emulator::TotalConnections() const {
  absl::MutexLock lock(&state_->mu);
  return state_->total_connections;
}

absl::Status Emulator::WaitForOpenConnections(int count, absl::Duration timeout) const {
  State* state = state_.get();
  absl::MutexLock lock(&state->mu);
  auto reached = [state, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) {
    return state->open_connections == count;
  };
  if (!state->mu.AwaitWithTimeout(absl::Condition(&reached), timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat(state->open_connections, " connections open, wanted ", count));
  }
  return absl::OkStatus();
}

void Emulator::SetApiKey(std::string api_key) {
  absl::MutexLock lock(&state_->mu);
  state_->api_key = std::move(api_key);
}

void Emulator::AdvanceClock(absl::Duration by) { state_->files.AdvanceClock(by); }

void Emulator::InjectUploadFault(UploadChunkFault fault) {
  state_->files.InjectUploadFault(UploadFault{.status = fault.status,
                                              .keep_bytes = fault.keep_bytes,
                                              .drop_connection = fault.drop_connection,
                                              .message = fault.message});
}

int Emulator::OpenUploads() const { return state_->files.OpenUploads(); }

int Emulator::FileCount() const { return state_->files.FileCount(); }

int Emulator::BatchCount() const { return state_->batches.JobCount(); }

absl::Status Emulator::WaitForOpenUploads(int count, absl::Duration timeout) const {
  if (state_->files.WaitForOpenUploads(count, timeout)) return absl::OkStatus();
  return absl::DeadlineExceededError(
      absl::StrCat(state_->files.OpenUploads(), " uploads open, wanted ", count));
}

void Emulator::SetConfig(const EmulatorConfig& config) {
  absl::MutexLock lock(&state_->mu);
  state_->config = config;
}

EmulatorConfig Emulator::config() const {
  absl::MutexLock lock(&state_->mu);
  return state_->config;
}

void Emulator::Stop() {
  if (server_) {
    server_->Stop();
    server_.reset();
  }
}

}  // namespace vision_gateway::emulator
