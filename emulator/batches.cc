#include "emulator/batches.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "emulator/gemini_api.h"
#include "emulator/gemini_wire.h"

namespace vision_gateway::emulator {
namespace {

namespace json = boost::json;

constexpr std::string_view kBatchType =
    "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch";
constexpr std::string_view kOutputType =
    "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatchOutput";
constexpr absl::Duration kExpiry = absl::Hours(48);

absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }
json::string_view Js(std::string_view s) { return json::string_view(s.data(), s.size()); }
std::string_view Sv(json::string_view s) { return std::string_view(s.data(), s.size()); }

std::string Timestamp(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", time, absl::UTCTimeZone());
}

ScriptedResponse Json(std::string_view text) {
  ScriptedResponse response;
  response.headers.emplace_back("Content-Type", "application/json; charset=UTF-8");
  AddGoogleHeaders(response.headers);
  response.body = PrettyJson(text);
  return response;
}

ScriptedResponse Invalid(std::string_view message) { return ErrorResponse(400, message); }

ScriptedResponse Precondition(std::string_view message) {
  ScriptedResponse response = ErrorResponse(400, message);
  response.body = MakeErrorBody(400, "FAILED_PRECONDITION", message);
  return response;
}

ScriptedResponse NoSuchBatch(std::string_view id) {
  return ErrorResponse(404, absl::StrCat("Requested entity was not found. (batches/", Absl(id),
                                         ")"));
}

bool ValidBatchId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_islower(static_cast<unsigned char>(c)) ||
           absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-';
  });
}

std::string NewBatchId(uint64_t counter) {
  uint64_t x = counter * 0x9e3779b97f4a7c15ULL +
               static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  static constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string id;
  while (id.size() < 24) {
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 29;
    id += kAlphabet[x % kAlphabet.size()];
  }
  return id;
}

std::string Param(const BatchRequest& request, std::string_view name) {
  for (const auto& [key, value] : request.query) {
    if (key == name) return value;
  }
  return "";
}

// The request of a line without its "model" member (the SDK sets it; the path names the model).
std::string RequestJson(json::object request) {
  request.erase("model");
  return json::serialize(request);
}

}  // namespace

ScriptedResponse BatchStore::Create(const std::string& api_version, const std::string& model,
                                    std::string_view body, const EmulatorConfig& config) {
  const EmulatorModel* listed = FindListedModel(config, model);
  if (listed == nullptr ||
      std::find(listed->methods.begin(), listed->methods.end(), "batchGenerateContent") ==
          listed->methods.end()) {
    return ErrorResponse(
        404, absl::StrCat("models/", model, " is not found for API version ", api_version,
                          ", or is not supported for batchGenerateContent. Call ListModels to "
                          "see the list of available models and their supported methods."));
  }
  json::error_code ec;
  json::value root = json::parse(Js(body), ec);
  if (ec) return Invalid("Invalid JSON payload received. Unexpected token or truncated input.");
  if (!root.is_object()) {
    return Invalid("Invalid JSON payload received. Unknown name \"\": Root element must be a "
                   "message.");
  }
  for (const auto& member : root.get_object()) {
    if (member.key() != "batch" && config.strict_fields) {
      return Invalid(absl::StrCat("Invalid JSON payload received. Unknown name \"",
                                  Absl(Sv(member.key())), "\": Cannot find field."));
    }
  }
  const json::value* batch_value = root.get_object().if_contains("batch");
  if (batch_value == nullptr || !batch_value->is_object()) {
    return Invalid("* GenerateContentBatch batch: batch is required.");
  }
  const json::object& batch = batch_value->get_object();
  if (config.strict_fields) {
    for (const auto& member : batch) {
      const std::string_view key = Sv(member.key());
      if (key != "displayName" && key != "display_name" && key != "inputConfig" &&
          key != "input_config" && key != "model" && key != "priority" &&
          key != "webhookConfig" && key != "webhook_config") {
        return Invalid(absl::StrCat("Invalid JSON payload received. Unknown name \"", Absl(key),
                                    "\" at 'batch': Cannot find field."));
      }
    }
  }
  auto field = [](const json::object& object, std::string_view camel,
                  std::string_view snake) -> const json::value* {
    const json::value* value = object.if_contains(Js(camel));
    return value != nullptr ? value : object.if_contains(Js(snake));
  };
  const json::value* display_name = field(batch, "displayName", "display_name");
  if (display_name == nullptr || !display_name->is_string() ||
      display_name->get_string().empty()) {
    return Invalid("* GenerateContentBatch batch.display_name: display_name is required.");
  }
  if (display_name->get_string().size() > 512) {
    return Invalid("batch.display_name must be at most 512 characters.");
  }
  const json::value* input = field(batch, "inputConfig", "input_config");
  if (input == nullptr || !input->is_object()) {
    return Invalid("* GenerateContentBatch batch.input_config: input_config is required.");
  }
  const json::value* requests = input->get_object().if_contains("requests");
  const json::value* file_name = field(input->get_object(), "fileName", "file_name");
  if ((requests != nullptr) == (file_name != nullptr)) {
    return Invalid(
        "batch.input_config must set exactly one of requests and file_name (the source).");
  }
  if (config.strict_fields) {
    for (const auto& member : input->get_object()) {
      const std::string_view key = Sv(member.key());
      if (key != "requests" && key != "fileName" && key != "file_name") {
        return Invalid(absl::StrCat("Invalid JSON payload received. Unknown name \"", Absl(key),
                                    "\" at 'batch.input_config': Cannot find field."));
      }
    }
  }

  Job job;
  job.display_name = std::string(Sv(display_name->get_string()));
  job.model = model;
  job.api_version = api_version;
  if (requests != nullptr) {
    const json::value* list =
        requests->is_object() ? requests->get_object().if_contains("requests") : nullptr;
    if (list == nullptr || !list->is_array() || list->get_array().empty()) {
      return Invalid("batch.input_config.requests.requests must be a non-empty list.");
    }
    if (list->get_array().size() > kMaxRequests) {
      return Invalid(absl::StrCat("A batch takes at most ", kMaxRequests, " requests."));
    }
    size_t index = 0;
    for (const json::value& entry : list->get_array()) {
      const std::string where = absl::StrCat("batch.input_config.requests.requests[", index++,
                                             "]");
      if (!entry.is_object()) return Invalid(absl::StrCat(where, " must be an object."));
      const json::value* request = entry.get_object().if_contains("request");
      if (request == nullptr || !request->is_object()) {
        return Invalid(absl::StrCat(where, ".request is required."));
      }
      Line line;
      if (const json::value* metadata = entry.get_object().if_contains("metadata")) {
        if (!metadata->is_object()) return Invalid(absl::StrCat(where, ".metadata is invalid."));
        line.metadata_json = json::serialize(*metadata);
        if (const json::value* key = metadata->get_object().if_contains("key")) {
          if (!key->is_string()) return Invalid(absl::StrCat(where, ".metadata.key is invalid."));
          line.key = std::string(Sv(key->get_string()));
        }
      }
      if (config.strict_fields) {
        for (const auto& member : entry.get_object()) {
          if (member.key() != "request" && member.key() != "metadata") {
            return Invalid(absl::StrCat("Invalid JSON payload received. Unknown name \"",
                                        Absl(Sv(member.key())), "\" at '", where,
                                        "': Cannot find field."));
          }
        }
      }
      line.request_json = RequestJson(request->get_object());
      job.lines.push_back(std::move(line));
    }
  } else {
    if (!file_name->is_string()) return Invalid("batch.input_config.file_name is invalid.");
    const std::string name(Sv(file_name->get_string()));
    if (!absl::StartsWith(name, "files/")) {
      return Invalid(absl::StrCat("Invalid file name \"", name, "\": expected files/<id>."));
    }
    std::optional<FileContent> content = files_->Resolve(name);
    if (!content.has_value()) {
      return ErrorResponse(403, absl::StrCat("You do not have permission to access the File ",
                                             name, " or it may not exist."));
    }
    if (!content->active) {
      return Precondition(absl::StrCat("File ", name, " is not in an ACTIVE state."));
    }
    job.input_file = name;
    size_t number = 0;
    for (absl::string_view text : absl::StrSplit(*content->bytes, '\n')) {
      ++number;
      if (absl::StripAsciiWhitespace(text).empty()) continue;
      const std::string where = absl::StrCat("Line ", number, " of ", name);
      json::value value = json::parse(json::string_view(text.data(), text.size()), ec);
      if (ec || !value.is_object()) {
        return Invalid(absl::StrCat(where, " is not a JSON object."));
      }
      const json::value* request = value.get_object().if_contains("request");
      if (request == nullptr || !request->is_object()) {
        return Invalid(absl::StrCat(where, " has no \"request\" object."));
      }
      Line line;
      if (const json::value* key = value.get_object().if_contains("key")) {
        if (!key->is_string()) return Invalid(absl::StrCat(where, " has a non-string \"key\"."));
        line.key = std::string(Sv(key->get_string()));
      }
      line.request_json = RequestJson(request->get_object());
      job.lines.push_back(std::move(line));
      if (job.lines.size() > kMaxRequests) {
        return Invalid(absl::StrCat("A batch takes at most ", kMaxRequests, " requests."));
      }
    }
    if (job.lines.empty()) return Invalid(absl::StrCat("The input file ", name, " is empty."));
  }
  job.request_count = static_cast<int64_t>(job.lines.size());
  job.processing = absl::FromChrono(config.batch_processing);
  job.fails = config.fail_batches;
  job.create_time = files_->ClockNow();

  absl::MutexLock lock(&mu_);
  if (jobs_.size() >= kMaxJobs) {
    return ErrorResponse(429, "The emulator holds too many batches; delete some first.");
  }
  job.order = ++counter_;
  do {
    job.id = NewBatchId(++counter_);
  } while (jobs_.count(job.id) != 0);
  const std::string id = job.id;
  auto [it, inserted] = jobs_.emplace(id, std::move(job));
  return Json(OperationJson(it->second));
}

std::optional<BatchStore::Production> BatchStore::AdvanceLocked(Job& job) {
  if (job.state != State::kActive || job.producing) return std::nullopt;
  const absl::Time now = files_->ClockNow();
  const absl::Time finish = job.create_time + job.processing;
  const absl::Time expiry = job.create_time + kExpiry;
  if (expiry <= now && expiry <= finish) {
    job.state = State::kExpired;
    job.end_time = expiry;
    job.lines.clear();
    return std::nullopt;
  }
  if (now < finish) return std::nullopt;
  job.end_time = finish;
  if (job.fails) {
    job.state = State::kFailed;
    job.lines.clear();
    return std::nullopt;
  }
  job.producing = true;
  Production production;
  production.id = job.id;
  production.model = job.model;
  production.api_version = job.api_version;
  production.input_file = job.input_file;
  production.lines = std::move(job.lines);
  job.lines.clear();
  return production;
}

void BatchStore::Produce(Production& production, const BatchLineRunner& run) {
  std::string jsonl;
  const bool inline_output = production.input_file.empty();
  for (Line& line : production.lines) {
    BatchLineResult result =
        run(production.api_version, production.model, std::move(line.request_json), line.key);
    (result.ok ? production.succeeded : production.failed) += 1;
    if (inline_output) {
      std::string item = absl::StrCat("{\"", result.ok ? "response" : "error", "\":",
                                      result.json);
      if (!line.metadata_json.empty()) absl::StrAppend(&item, ",\"metadata\":", line.metadata_json);
      item += "}";
      production.inlined_responses.push_back(std::move(item));
    } else {
      absl::StrAppend(&jsonl, "{\"key\":", json::serialize(json::string(Js(line.key))), ",\"",
                      result.ok ? "response" : "error", "\":", CompactJson(result.json), "}\n");
    }
    line = Line();  // its request is done with
  }
  production.lines.clear();
  if (inline_output) return;
  absl::StatusOr<std::string> file = files_->AddGeneratedFile(
      absl::StrCat("batch-", production.id), absl::StrCat("batch-", production.id, "-responses"),
      "application/jsonl", jsonl);
  if (!file.ok()) {
    production.store_failed = true;
    return;
  }
  production.responses_file = absl::StrCat("files/", *file);
}

void BatchStore::Publish(Production production) {
  {
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(production.id);
    if (it != jobs_.end() && it->second.state == State::kActive) {
      Job& job = it->second;
      job.producing = false;
      job.succeeded = production.succeeded;
      job.failed = production.failed;
      if (production.store_failed) {
        job.state = State::kFailed;
      } else {
        job.inlined_responses = std::move(production.inlined_responses);
        job.responses_file = std::move(production.responses_file);
        job.state = State::kSucceeded;
      }
      return;
    }
    if (it != jobs_.end()) it->second.producing = false;
  }
  // Cancelled or deleted while its lines ran: nobody may see its output.
  if (!production.responses_file.empty()) {
    files_->Remove(production.responses_file.substr(sizeof("files/") - 1));
  }
}

void BatchStore::Run(std::vector<Production>& productions, const BatchLineRunner& run) {
  for (Production& production : productions) {
    Produce(production, run);
    Publish(std::move(production));
  }
  productions.clear();
}

std::string BatchStore::OperationJson(const Job& job) const {
  const absl::Time now = files_->ClockNow();
  std::string_view state;
  absl::Time update_time = job.create_time;
  switch (job.state) {
    case State::kActive:
      if (now >= job.create_time + job.processing / 2) {
        state = "BATCH_STATE_RUNNING";
        update_time = job.create_time + job.processing / 2;
      } else {
        state = "BATCH_STATE_PENDING";
      }
      break;
    case State::kSucceeded: state = "BATCH_STATE_SUCCEEDED"; break;
    case State::kFailed: state = "BATCH_STATE_FAILED"; break;
    case State::kCancelled: state = "BATCH_STATE_CANCELLED"; break;
    case State::kExpired: state = "BATCH_STATE_EXPIRED"; break;
  }
  const bool ended = job.state != State::kActive;
  if (ended) update_time = job.end_time;
  const std::string name = absl::StrCat("batches/", job.id);
  const int64_t pending = ended ? 0 : job.request_count;
  json::object stats{{"requestCount", Js(absl::StrCat(job.request_count))},
                     {"successfulRequestCount", Js(absl::StrCat(job.succeeded))},
                     {"failedRequestCount", Js(absl::StrCat(job.failed))},
                     {"pendingRequestCount", Js(absl::StrCat(pending))}};
  json::object metadata{{"@type", Js(kBatchType)},
                        {"model", Js(absl::StrCat("models/", job.model))},
                        {"displayName", Js(job.display_name)},
                        {"createTime", Js(Timestamp(job.create_time))},
                        {"updateTime", Js(Timestamp(update_time))},
                        {"batchStats", std::move(stats)},
                        {"state", Js(state)},
                        {"name", Js(name)}};
  if (ended) metadata["endTime"] = Js(Timestamp(job.end_time));
  if (!job.input_file.empty()) {
    metadata["inputConfig"] = json::object{{"fileName", Js(job.input_file)}};
  }
  json::object operation{{"name", Js(name)}};
  std::string output;  // the output object, as JSON text
  if (job.state == State::kSucceeded) {
    if (!job.input_file.empty()) {
      output = absl::StrCat("{\"responsesFile\":", json::serialize(json::string(
                                                       Js(job.responses_file))), "}");
    } else {
      output = "{\"inlinedResponses\":{\"inlinedResponses\":[";
      for (size_t i = 0; i < job.inlined_responses.size(); ++i) {
        absl::StrAppend(&output, i == 0 ? "" : ",", job.inlined_responses[i]);
      }
      output += "]}}";
    }
    metadata["output"] = json::parse(Js(output));
  }
  operation["metadata"] = std::move(metadata);
  if (ended) operation["done"] = true;
  if (job.state == State::kSucceeded) {
    json::value response = json::parse(Js(output));
    json::object with_type{{"@type", Js(kOutputType)}};
    for (const auto& member : response.get_object()) with_type[member.key()] = member.value();
    operation["response"] = std::move(with_type);
  } else if (job.state == State::kFailed) {
    operation["error"] =
        json::object{{"code", 13}, {"message", "The emulator failed this batch (fail_batches)."}};
  }
  return json::serialize(operation);
}

ScriptedResponse BatchStore::Handle(const BatchRequest& request, const BatchLineRunner& run) {
  const auto& segments = request.segments;
  if (segments.empty() || segments[0] != "batches" || segments.size() > 2) {
    return ErrorResponse(404, "Method not found.");
  }
  if (segments.size() == 1) {
    if (request.method == "GET") return List(request, run);
    return ErrorResponse(404, "Method not found.");
  }
  std::string id = segments[1];
  if (absl::EndsWith(id, ":cancel")) {
    if (request.method != "POST") return ErrorResponse(404, "Method not found.");
    id.resize(id.size() - 7);
    if (!ValidBatchId(id)) return NoSuchBatch(id);
    return Cancel(id, run);
  }
  if (id.find(':') != std::string::npos) return ErrorResponse(404, "Method not found.");
  if (!ValidBatchId(id)) return NoSuchBatch(id);
  if (request.method == "GET") return Get(id, run);
  if (request.method == "DELETE") return Delete(id);
  return ErrorResponse(404, "Method not found.");
}

ScriptedResponse BatchStore::Get(const std::string& id, const BatchLineRunner& run) {
  std::vector<Production> due;
  {
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return NoSuchBatch(id);
    if (auto production = AdvanceLocked(it->second)) due.push_back(*std::move(production));
    if (due.empty()) return Json(OperationJson(it->second));
  }
  Run(due, run);
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return NoSuchBatch(id);
  return Json(OperationJson(it->second));
}

ScriptedResponse BatchStore::List(const BatchRequest& request, const BatchLineRunner& run) {
  int64_t page_size = 10;
  if (const std::string text = Param(request, "pageSize"); !text.empty()) {
    if (!absl::SimpleAtoi(text, &page_size) || page_size < 0) {
      return Invalid(absl::StrCat("Invalid value at 'page_size' (TYPE_INT32), \"", text, "\""));
    }
    if (page_size == 0) page_size = 10;
    page_size = std::min<int64_t>(page_size, 100);
  }
  size_t start = 0;
  if (const std::string token = Param(request, "pageToken"); !token.empty()) {
    std::string decoded;
    if (!absl::WebSafeBase64Unescape(token, &decoded) || !absl::StartsWith(decoded, "batches:") ||
        !absl::SimpleAtoi(absl::string_view(decoded).substr(8), &start)) {
      return Invalid("Invalid page token.");
    }
  }
  // The page's jobs (by id) and the total, then the due ones produced outside the lock.
  std::vector<std::string> page;
  size_t total = 0;
  std::vector<Production> due;
  {
    absl::MutexLock lock(&mu_);
    std::vector<Job*> ordered;
    for (auto& [id, job] : jobs_) ordered.push_back(&job);
    std::sort(ordered.begin(), ordered.end(),
              [](const Job* a, const Job* b) { return a->order > b->order; });  // newest first
    total = ordered.size();
    for (size_t i = start; i < std::min(total, start + static_cast<size_t>(page_size)); ++i) {
      page.push_back(ordered[i]->id);
      if (auto production = AdvanceLocked(*ordered[i])) due.push_back(*std::move(production));
    }
  }
  Run(due, run);
  const size_t end = start + page.size();
  std::string body = "{\"operations\": [";
  {
    absl::MutexLock lock(&mu_);
    bool first = true;
    for (const std::string& id : page) {
      auto it = jobs_.find(id);
      if (it == jobs_.end()) continue;  // deleted meanwhile
      absl::StrAppend(&body, first ? "" : ",", OperationJson(it->second));
      first = false;
    }
  }
  body += "]";
  if (end < total) {
    absl::StrAppend(&body, ", \"nextPageToken\": \"",
                    absl::WebSafeBase64Escape(absl::StrCat("batches:", end)), "\"");
  }
  body += "}";
  return Json(body);
}

ScriptedResponse BatchStore::Cancel(const std::string& id, const BatchLineRunner& run) {
  std::vector<Production> due;
  {
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return NoSuchBatch(id);
    if (auto production = AdvanceLocked(it->second)) due.push_back(*std::move(production));
  }
  // A job that is due ends as it would have had it been looked at first: too late to cancel.
  Run(due, run);
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return NoSuchBatch(id);
  Job& job = it->second;
  // Still active (its lines may be running for another request: their outcome is dropped).
  if (job.state == State::kActive) {
    job.state = State::kCancelled;
    job.end_time = files_->ClockNow();
    job.lines.clear();
  } else if (job.state != State::kCancelled) {
    return Precondition(absl::StrCat("Batch batches/", id,
                                     " has already ended and cannot be cancelled."));
  }
  return Json("{}");
}

ScriptedResponse BatchStore::Delete(const std::string& id) {
  absl::MutexLock lock(&mu_);
  if (jobs_.erase(id) == 0) return NoSuchBatch(id);
  return Json("{}");
}

void BatchStore::Clear() {
  absl::MutexLock lock(&mu_);
  jobs_.clear();
}

int BatchStore::JobCount() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(jobs_.size());
}

}  // namespace vision_gateway::emulator
