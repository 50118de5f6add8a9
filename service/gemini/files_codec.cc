#include "service/gemini/files_codec.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "boost/json.hpp"
#include "service/gemini/json_reader.h"
#include "service/gemini/json_text.h"

namespace vision_gateway::gemini {
namespace {

using internal::Document;
using internal::Index;
using internal::Path;
using internal::kResponsePrefix;
using internal::ParseBounded;
using internal::Reader;
using internal::ReaderFor;
using internal::Side;
using internal::Sub;
namespace json = ::boost::json;

constexpr std::size_t kMaxDisplayNameBytes = 512;

void ReadTime(Reader& r, const json::value* v, const Path& path, absl::Time& out) {
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

void ReadInt64(Reader& r, const json::value* v, const Path& path, int64_t& out) {
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

void ReadFile(Reader& r, const json::object& o, const Path& path, File& file) {
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
      const Path path("files", i);
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
      const Path path("models", i);
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
}  // namespace vision_gateway::gemini
