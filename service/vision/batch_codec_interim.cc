// INTERIM (issue #20): stand-ins for the Batch API codec functions declared in
// service/gemini/batches_stub.h (BatchIdOf, DecodeBatchResponseLine, EncodeBatchRequestLine),
// whose real implementation (service/gemini/batch_codec.cc) lands with the REST half of the Batch
// API. Compiled only while that file does not exist (service/vision/CMakeLists.txt), so that the
// tree links meanwhile; delete this file at merge. They read and write the line shapes of
// gemini-wire.md's Batch API addendum; a line's error object maps to its code and message only.
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "boost/json.hpp"
#include "service/gemini/batches_stub.h"
#include "service/gemini/json_codec.h"

namespace vision_gateway::gemini {

std::string BatchIdOf(std::string_view name) {
  constexpr std::string_view kPrefix = "batches/";
  if (name.substr(0, kPrefix.size()) != kPrefix) return "";
  const std::string_view id = name.substr(kPrefix.size());
  if (id.empty() || id.size() > 64) return "";
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return "";
  }
  return std::string(id);
}

absl::StatusOr<BatchResponseLine> DecodeBatchResponseLine(std::string_view line) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(line, ec);
  if (ec || !value.is_object()) {
    return absl::InternalError("malformed Gemini response: a batch line is not a JSON object");
  }
  const boost::json::object& object = value.as_object();
  BatchResponseLine out;
  if (const auto* key = object.if_contains("key"); key != nullptr && key->is_string()) {
    out.key = std::string(key->as_string());
  }
  if (const auto* response = object.if_contains("response"); response != nullptr) {
    auto decoded = DecodeGenerateContentResponse(boost::json::serialize(*response));
    if (!decoded.ok()) return decoded.status();
    out.response = *std::move(decoded);
    return out;
  }
  if (const auto* error = object.if_contains("error"); error != nullptr && error->is_object()) {
    int code = 2;
    std::string message = "error";
    if (const auto* c = error->as_object().if_contains("code"); c != nullptr && c->is_int64()) {
      code = static_cast<int>(c->as_int64());
    }
    if (const auto* m = error->as_object().if_contains("message");
        m != nullptr && m->is_string()) {
      message = std::string(m->as_string());
    }
    out.error = absl::Status(static_cast<absl::StatusCode>(code), absl::StrCat("Gemini: ", message));
    return out;
  }
  return absl::InternalError("malformed Gemini response: a batch line without response or error");
}

absl::StatusOr<std::string> EncodeBatchRequestLine(std::string_view key,
                                                   const GenerateContentRequest& request) {
  auto body = EncodeGenerateContentRequest(request);
  if (!body.ok()) return body.status();
  std::string line = "{\"key\":";
  AppendJsonString(line, key);
  absl::StrAppend(&line, ",\"request\":", *body, "}");
  return line;
}

}  // namespace vision_gateway::gemini
