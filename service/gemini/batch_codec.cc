#include "service/gemini/batch_codec.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <boost/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "service/common/error_reasons.h"
#include "service/common/status_details.h"
#include "service/gemini/error_envelope.h"
#include "service/gemini/files_stub.h"
#include "service/gemini/json_codec.h"

namespace vision_gateway::gemini {
namespace {

namespace json = boost::json;

constexpr std::size_t kMaxOperationsPerPage = 1000;
constexpr std::size_t kMaxDisplayNameBytes = 512;
// Largest operation or list body decoded (inline answers ride inside an operation).
constexpr std::size_t kMaxBatchBodyBytes = std::size_t{64} << 20;

std::string_view Sv(json::string_view s) { return std::string_view(s.data(), s.size()); }

absl::Status Bad(std::string_view what) {
  return WithOutcome(absl::InternalError(absl::StrCat("malformed Gemini batch response: ",
                                                      std::string(what))),
                     reasons::kUpstreamBadResponse);
}

absl::StatusOr<json::value> Parse(std::string_view text, std::size_t max_bytes) {
  if (text.size() > max_bytes) {
    return WithOutcome(absl::ResourceExhaustedError(absl::StrCat(
                           "Gemini batch response larger than ", max_bytes, " bytes")),
                       reasons::kUpstreamResponseTooLarge);
  }
  json::error_code ec;
  json::value value = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) return Bad("not JSON");
  return value;
}

// A string member; absent: "". Wrong type: error naming `path`.
absl::StatusOr<std::string> String(const json::object& object, std::string_view key,
                                   std::string_view path) {
  const json::value* value = object.if_contains(json::string_view(key.data(), key.size()));
  if (value == nullptr || value->is_null()) return std::string();
  if (!value->is_string()) return Bad(absl::StrCat(std::string(path), " is not a string"));
  return std::string(Sv(value->get_string()));
}

// An int64 carried as a decimal string (proto3 JSON) or a number.
absl::StatusOr<int64_t> Int64(const json::object& object, std::string_view key,
                              std::string_view path) {
  const json::value* value = object.if_contains(json::string_view(key.data(), key.size()));
  if (value == nullptr || value->is_null()) return 0;
  int64_t n = 0;
  if (value->is_int64()) return value->get_int64();
  if (value->is_uint64() && value->get_uint64() <= INT64_MAX) {
    return static_cast<int64_t>(value->get_uint64());
  }
  if (value->is_string() && absl::SimpleAtoi(absl::string_view(value->get_string().data(), value->get_string().size()), &n)) return n;
  return Bad(absl::StrCat(std::string(path), " is not an int64"));
}

absl::StatusOr<absl::Time> Time(const json::object& object, std::string_view key,
                                std::string_view path) {
  absl::StatusOr<std::string> text = String(object, key, path);
  if (!text.ok()) return text.status();
  if (text->empty()) return absl::InfinitePast();
  absl::Time t;
  std::string error;
  if (text->size() > 64 || !absl::ParseTime(absl::RFC3339_full, *text, &t, &error)) {
    return Bad(absl::StrCat(std::string(path), " is not an RFC 3339 timestamp"));
  }
  return t;
}

// A GenerateContentResponse object through json_codec.h.
absl::StatusOr<GenerateContentResponse> Response(const json::value& value, std::string_view path) {
  if (!value.is_object()) return Bad(absl::StrCat(std::string(path), " is not an object"));
  absl::StatusOr<GenerateContentResponse> response =
      DecodeGenerateContentResponse(json::serialize(value));
  if (!response.ok()) {
    return WithOutcome(absl::InternalError(absl::StrCat(std::string(path), ": ",
                                                        response.status().message())),
                       reasons::kUpstreamBadResponse);
  }
  return response;
}

absl::Status ErrorOf(const json::value& value, std::string_view path) {
  if (!value.is_object()) return Bad(absl::StrCat(std::string(path), " is not an object"));
  absl::Status status = StatusFromBatchError(json::serialize(value));
  // An error object that maps to OK (code 0) is still a failed item.
  if (status.ok()) status = absl::UnknownError("Gemini: the item failed without a status");
  return status;
}

// One output item: {"response"|"error", "metadata": {"key"}} inline, or {"key", ...} in a file.
absl::StatusOr<BatchResponseLine> Item(const json::value& value, bool inline_item,
                                       std::string_view path) {
  if (!value.is_object()) return Bad(absl::StrCat(std::string(path), " is not an object"));
  const json::object& object = value.get_object();
  BatchResponseLine line;
  if (inline_item) {
    if (const json::value* metadata = object.if_contains("metadata");
        metadata != nullptr && !metadata->is_null()) {
      if (!metadata->is_object()) return Bad(absl::StrCat(std::string(path), ".metadata"));
      absl::StatusOr<std::string> key =
          String(metadata->get_object(), "key", absl::StrCat(std::string(path), ".metadata.key"));
      if (!key.ok()) return key.status();
      line.key = *std::move(key);
    }
  } else {
    absl::StatusOr<std::string> key = String(object, "key", absl::StrCat(std::string(path), ".key"));
    if (!key.ok()) return key.status();
    line.key = *std::move(key);
  }
  if (line.key.size() > kMaxBatchKeyBytes) return Bad(absl::StrCat(std::string(path), " key too long"));
  const json::value* response = object.if_contains("response");
  const json::value* error = object.if_contains("error");
  if (response != nullptr && response->is_null()) response = nullptr;
  if (error != nullptr && error->is_null()) error = nullptr;
  if ((response == nullptr) == (error == nullptr)) {
    return Bad(absl::StrCat(std::string(path), " has neither or both of response and error"));
  }
  if (response != nullptr) {
    absl::StatusOr<GenerateContentResponse> decoded =
        Response(*response, absl::StrCat(std::string(path), ".response"));
    if (!decoded.ok()) return decoded.status();
    line.response = *std::move(decoded);
  } else {
    if (!error->is_object()) return Bad(absl::StrCat(std::string(path), ".error is not an object"));
    line.error = ErrorOf(*error, absl::StrCat(std::string(path), ".error"));
  }
  return line;
}

absl::Status DecodeOutput(const json::object& output, BatchJob& job) {
  absl::StatusOr<std::string> file = String(output, "responsesFile", "output.responsesFile");
  if (!file.ok()) return file.status();
  job.responses_file = *std::move(file);
  const json::value* outer = output.if_contains("inlinedResponses");
  if (outer == nullptr || outer->is_null()) return absl::OkStatus();
  if (!outer->is_object()) return Bad("output.inlinedResponses is not an object");
  const json::value* list = outer->get_object().if_contains("inlinedResponses");
  if (list == nullptr || list->is_null()) return absl::OkStatus();
  if (!list->is_array()) return Bad("output.inlinedResponses.inlinedResponses is not a list");
  std::size_t i = 0;
  for (const json::value& item : list->get_array()) {
    absl::StatusOr<BatchResponseLine> line =
        Item(item, true, absl::StrCat("output.inlinedResponses.inlinedResponses[", i++, "]"));
    if (!line.ok()) return line.status();
    job.inlined_responses.push_back(*std::move(line));
  }
  return absl::OkStatus();
}

absl::StatusOr<BatchJob> OperationFrom(const json::value& value) {
  if (!value.is_object()) return Bad("operation is not an object");
  const json::object& op = value.get_object();
  BatchJob job;
  absl::StatusOr<std::string> name = String(op, "name", "name");
  if (!name.ok()) return name.status();
  job.name = *std::move(name);
  const json::value* metadata_value = op.if_contains("metadata");
  if (metadata_value == nullptr || !metadata_value->is_object()) {
    return Bad("operation has no metadata object");
  }
  const json::object& metadata = metadata_value->get_object();
  for (auto [field, key] : {std::pair{&job.display_name, "displayName"},
                            std::pair{&job.model, "model"}, std::pair{&job.state, "state"}}) {
    absl::StatusOr<std::string> text = String(metadata, key, absl::StrCat("metadata.", key));
    if (!text.ok()) return text.status();
    *field = *std::move(text);
  }
  if (job.name.empty()) {
    absl::StatusOr<std::string> inner = String(metadata, "name", "metadata.name");
    if (!inner.ok()) return inner.status();
    job.name = *std::move(inner);
  }
  if (BatchIdOf(job.name).empty()) return Bad("name is not batches/<id>");
  if (job.state.empty()) job.state = "BATCH_STATE_UNSPECIFIED";
  for (auto [field, key] : {std::pair{&job.create_time, "createTime"},
                            std::pair{&job.update_time, "updateTime"},
                            std::pair{&job.end_time, "endTime"}}) {
    absl::StatusOr<absl::Time> t = Time(metadata, key, absl::StrCat("metadata.", key));
    if (!t.ok()) return t.status();
    *field = *t;
  }
  if (const json::value* stats = metadata.if_contains("batchStats");
      stats != nullptr && !stats->is_null()) {
    if (!stats->is_object()) return Bad("metadata.batchStats is not an object");
    for (auto [field, key] :
         {std::pair{&job.stats.request_count, "requestCount"},
          std::pair{&job.stats.successful_request_count, "successfulRequestCount"},
          std::pair{&job.stats.failed_request_count, "failedRequestCount"},
          std::pair{&job.stats.pending_request_count, "pendingRequestCount"}}) {
      absl::StatusOr<int64_t> n =
          Int64(stats->get_object(), key, absl::StrCat("metadata.batchStats.", key));
      if (!n.ok()) return n.status();
      *field = *n;
    }
  }
  if (const json::value* input = metadata.if_contains("inputConfig");
      input != nullptr && !input->is_null()) {
    if (!input->is_object()) return Bad("metadata.inputConfig is not an object");
    absl::StatusOr<std::string> file =
        String(input->get_object(), "fileName", "metadata.inputConfig.fileName");
    if (!file.ok()) return file.status();
    job.input_file = *std::move(file);
  }
  const json::value* output = metadata.if_contains("output");
  if (output == nullptr || output->is_null()) output = op.if_contains("response");
  if (output != nullptr && !output->is_null()) {
    if (!output->is_object()) return Bad("metadata.output is not an object");
    if (absl::Status s = DecodeOutput(output->get_object(), job); !s.ok()) return s;
  }
  if (const json::value* error = op.if_contains("error"); error != nullptr && !error->is_null()) {
    if (!error->is_object()) return Bad("error is not an object");
    job.error = ErrorOf(*error, "error");
  }
  return job;
}

bool ValidFileName(std::string_view name) { return !FileIdOf(name).empty(); }

}  // namespace

absl::Status StatusFromBatchError(std::string_view error_object_json) {
  absl::StatusOr<json::value> parsed = Parse(error_object_json, kMaxErrorBodyBytes);
  if (!parsed.ok() || !parsed->is_object()) return Bad("error is not an object");
  json::object error = parsed->get_object();
  // A google.rpc.Status with a canonical code and no name: name it, so that the one error table
  // reads the canonical code rather than an HTTP status.
  if (!error.contains("status")) {
    if (const json::value* code = error.if_contains("code");
        code != nullptr && code->is_int64() && code->get_int64() > 0 && code->get_int64() <= 16) {
      error["status"] = json::string(
          absl::StatusCodeToString(static_cast<absl::StatusCode>(code->get_int64())));
    }
  }
  return StatusFromErrorJson(json::serialize(json::object{{"error", std::move(error)}}));
}

std::string BatchIdOf(std::string_view name) {
  if (!name.starts_with("batches/")) return "";
  name.remove_prefix(8);
  if (name.empty() || name.size() > 64) return "";
  for (const char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return "";
  }
  return std::string(name);
}

absl::StatusOr<BatchResponseLine> DecodeBatchResponseLine(std::string_view line) {
  if (line.size() > kMaxBatchResponseLineBytes) {
    return WithOutcome(absl::ResourceExhaustedError(absl::StrCat(
                           "a line of Gemini's batch responses file is larger than ",
                           kMaxBatchResponseLineBytes, " bytes")),
                       reasons::kUpstreamResponseTooLarge);
  }
  absl::StatusOr<json::value> value = Parse(line, kMaxBatchResponseLineBytes);
  if (!value.ok()) return value.status();
  return Item(*value, false, "line");
}

absl::StatusOr<std::string> EncodeBatchRequestLine(std::string_view key,
                                                   const GenerateContentRequest& request) {
  if (key.size() > kMaxBatchKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("a batch key is at most ", kMaxBatchKeyBytes, " bytes"));
  }
  absl::StatusOr<std::string> body = EncodeGenerateContentRequest(request);
  if (!body.ok()) return body.status();
  std::string out;
  out.reserve(body->size() + JsonStringSize(key) + 24);
  out += "{\"key\":";
  AppendJsonString(out, key);
  out += ",\"request\":";
  out += *body;
  out += "}";
  return out;
}

absl::StatusOr<std::string> EncodeCreateBatchRequest(const CreateBatchRequest& request) {
  if (request.display_name.empty() || request.display_name.size() > kMaxDisplayNameBytes) {
    return absl::InvalidArgumentError("a batch's display name must be 1 to 512 bytes");
  }
  if (request.input_file.empty() == request.inlined_requests.empty()) {
    return absl::InvalidArgumentError(
        "a batch takes exactly one input: an input file or inline requests");
  }
  std::string out = "{\"batch\":{\"displayName\":";
  AppendJsonString(out, request.display_name);
  out += ",\"inputConfig\":";
  if (!request.input_file.empty()) {
    if (!ValidFileName(request.input_file)) {
      return absl::InvalidArgumentError("a batch's input file must be \"files/<id>\"");
    }
    out += "{\"fileName\":";
    AppendJsonString(out, request.input_file);
    out += "}}}";
    return out;
  }
  out += "{\"requests\":{\"requests\":[";
  bool first = true;
  for (const InlinedRequest& item : request.inlined_requests) {
    if (item.key.size() > kMaxBatchKeyBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("a batch key is at most ", kMaxBatchKeyBytes, " bytes"));
    }
    absl::StatusOr<std::string> body = EncodeGenerateContentRequest(item.request);
    if (!body.ok()) return body.status();
    if (!first) out += ",";
    first = false;
    out += "{\"request\":";
    out += *body;
    if (!item.key.empty()) {
      out += ",\"metadata\":{\"key\":";
      AppendJsonString(out, item.key);
      out += "}";
    }
    out += "}";
  }
  out += "]}}}}";
  return out;
}

absl::StatusOr<BatchJob> DecodeBatchOperation(std::string_view text) {
  absl::StatusOr<json::value> value = Parse(text, kMaxBatchBodyBytes);
  if (!value.ok()) return value.status();
  return OperationFrom(*value);
}

absl::StatusOr<ListBatchesResponse> DecodeListBatchesResponse(std::string_view text) {
  absl::StatusOr<json::value> value = Parse(text, kMaxBatchBodyBytes);
  if (!value.ok()) return value.status();
  if (!value->is_object()) return Bad("list is not an object");
  const json::object& object = value->get_object();
  ListBatchesResponse response;
  absl::StatusOr<std::string> token = String(object, "nextPageToken", "nextPageToken");
  if (!token.ok()) return token.status();
  if (token->size() > 1024) return Bad("nextPageToken too long");
  response.next_page_token = *std::move(token);
  const json::value* operations = object.if_contains("operations");
  if (operations == nullptr || operations->is_null()) return response;
  if (!operations->is_array()) return Bad("operations is not a list");
  if (operations->get_array().size() > kMaxOperationsPerPage) return Bad("too many operations");
  for (const json::value& op : operations->get_array()) {
    absl::StatusOr<BatchJob> job = OperationFrom(op);
    if (!job.ok()) return job.status();
    response.batches.push_back(*std::move(job));
  }
  return response;
}

}  // namespace vision_gateway::gemini
