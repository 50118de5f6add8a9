#include "emulator/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <openssl/evp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "emulator/gemini_wire.h"

namespace vision_gateway::emulator {
namespace {

namespace json = boost::json;

constexpr std::string_view kFileUriBase = "https://generativelanguage.googleapis.com/";

absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }
json::string_view Js(std::string_view s) { return json::string_view(s.data(), s.size()); }
std::string_view Sv(json::string_view s) { return std::string_view(s.data(), s.size()); }

std::string Header(const FileRequest& request, std::string_view name) {
  if (request.headers == nullptr) return "";
  for (const auto& [key, value] : *request.headers) {
    if (absl::EqualsIgnoreCase(key, Absl(name))) return value;
  }
  return "";
}

std::string Param(const FileRequest& request, std::string_view name) {
  for (const auto& [key, value] : request.query) {
    if (key == name) return value;
  }
  return "";
}

ScriptedResponse JsonResponse(std::string_view json_text) {
  ScriptedResponse response;
  response.headers.emplace_back("Content-Type", "application/json; charset=UTF-8");
  AddGoogleHeaders(response.headers);
  response.body = PrettyJson(json_text);
  return response;
}

// Upload-endpoint errors are plain text, as the real front end sends them.
ScriptedResponse PlainError(int status, std::string message) {
  ScriptedResponse response;
  response.status = status;
  response.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  AddGoogleHeaders(response.headers);
  response.body = std::move(message);
  return response;
}

// What an injected upload fault answers: a plain-text error, or a dropped connection.
ScriptedResponse FaultReply(const UploadFault& fault) {
  if (fault.drop_connection) {
    ScriptedResponse dropped;
    dropped.drop_connection_after_writes = true;
    return dropped;
  }
  return PlainError(fault.status, fault.message.empty() ? "Service Unavailable (emulator fault)."
                                                        : fault.message);
}

ScriptedResponse NoSuchFile(std::string_view id) {
  return ErrorResponse(403, absl::StrCat("You do not have permission to access the File ",
                                         Absl(id), " or it may not exist."));
}

bool ValidFileId(std::string_view id) {
  if (id.empty() || id.size() > 40 || id.front() == '-' || id.back() == '-') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_islower(static_cast<unsigned char>(c)) ||
           absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-';
  });
}

std::string NewId(uint64_t counter, size_t length) {
  uint64_t x = counter * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  std::string id;
  static constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  while (id.size() < length) {
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 29;
    id += kAlphabet[x % kAlphabet.size()];
  }
  return id;
}

bool WriteAll(int fd, std::string_view bytes, int64_t offset) {
  while (!bytes.empty()) {
    const ssize_t n = pwrite(fd, bytes.data(), bytes.size(), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
    offset += n;
  }
  return true;
}

std::shared_ptr<const std::string> ReadAll(const std::string& path, int64_t size) {
  auto bytes = std::make_shared<std::string>(static_cast<size_t>(size), '\0');
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  int64_t done = 0;
  while (done < size) {
    const ssize_t n = pread(fd, bytes->data() + done, static_cast<size_t>(size - done), done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += n;
  }
  close(fd);
  if (done != size) return nullptr;
  return bytes;
}

}  // namespace

struct HashState {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  HashState() { EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr); }
  ~HashState() { EVP_MD_CTX_free(ctx); }
  void Update(std::string_view bytes) { EVP_DigestUpdate(ctx, bytes.data(), bytes.size()); }
  // base64 of the lowercase hex SHA-256 digest (the API's encoding quirk).
  std::string Sha256HashField() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(ctx, digest, &length) != 1) return "";
    return absl::Base64Escape(absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(digest), length)));
  }
};

namespace {

std::string Timestamp(absl::Time time, bool nanos) {
  return absl::FormatTime(nanos ? "%Y-%m-%dT%H:%M:%E9SZ" : "%Y-%m-%dT%H:%M:%E6SZ", time,
                          absl::UTCTimeZone());
}

}  // namespace

FileStore::FileStore(FileStoreOptions options) : options_(std::move(options)) {}

FileStore::~FileStore() { Clear(); }

absl::Time FileStore::Now() const { return absl::Now() + clock_offset_; }

void FileStore::AdvanceClock(absl::Duration by) {
  absl::MutexLock lock(&mu_);
  clock_offset_ += by;
}

void FileStore::SetFailProcessing(bool fail) {
  absl::MutexLock lock(&mu_);
  fail_processing_ = fail;
}

void FileStore::InjectUploadFault(UploadFault fault) {
  absl::MutexLock lock(&mu_);
  faults_.push_back(fault);
}

int FileStore::OpenUploads() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(uploads_.size());
}

bool FileStore::WaitForOpenUploads(int count, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto reached = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return static_cast<int>(uploads_.size()) == count;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

int FileStore::FileCount() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(files_.size());
}

void FileStore::ExpireLocked() {
  const absl::Time now = Now();
  for (auto it = files_.begin(); it != files_.end();) {
    if (it->second.create_time + absl::Hours(48) <= now) {
      stored_bytes_ -= it->second.size;
      std::remove(it->second.path.c_str());
      it = files_.erase(it);
    } else {
      ++it;
    }
  }
}

ScriptedResponse FileStore::Handle(const FileRequest& request) {
  const auto& segments = request.segments;
  if (segments.empty() || segments[0] != "files" || segments.size() > 2) {
    return ErrorResponse(404, "Method not found.");
  }
  if (request.upload) {
    if (segments.size() != 1 || request.method != "POST") {
      return ErrorResponse(404, "Method not found.");
    }
    const std::string upload_id = Param(request, "upload_id");
    if (!upload_id.empty()) return UploadChunk(request, upload_id);
    return StartUpload(request);
  }
  if (segments.size() == 1) {
    if (request.method == "GET") return ListFiles(request);
    return ErrorResponse(404, "Method not found.");
  }
  const std::string& id = segments[1];
  if (absl::EndsWith(id, ":download")) {
    if (request.method != "GET") return ErrorResponse(404, "Method not found.");
    return DownloadFile(id.substr(0, id.size() - 9), request);
  }
  if (request.method == "GET") return GetFile(id);
  if (request.method == "DELETE") return DeleteFile(id);
  return ErrorResponse(404, "Method not found.");
}

ScriptedResponse FileStore::StartUpload(const FileRequest& request) {
  const std::string protocol = absl::AsciiStrToLower(Header(request, "x-goog-upload-protocol"));
  const std::string command = absl::AsciiStrToLower(Header(request, "x-goog-upload-command"));
  if (protocol != "resumable" || command != "start") {
    return ErrorResponse(400, "The emulator supports only the resumable upload protocol "
                              "(X-Goog-Upload-Protocol: resumable, X-Goog-Upload-Command: start).");
  }
  Upload upload;
  upload.mime_type = Header(request, "x-goog-upload-header-content-type");
  const std::string length = Header(request, "x-goog-upload-header-content-length");
  if (!length.empty()) {
    int64_t declared = 0;
    if (!absl::SimpleAtoi(length, &declared) || declared < 0) {
      return ErrorResponse(400, "Invalid X-Goog-Upload-Header-Content-Length.");
    }
    if (declared > kMaxFileBytes) {
      return ErrorResponse(400, "File size exceeds the 2 GB limit.");
    }
    upload.declared_size = declared;
  }
  if (!absl::StripAsciiWhitespace(request.body).empty()) {
    json::error_code ec;
    json::value body = json::parse(Js(request.body), ec);
    if (ec || !body.is_object()) {
      return ErrorResponse(400, "Invalid JSON payload received.");
    }
    const json::value* file = body.get_object().if_contains("file");
    if (file != nullptr) {
      if (!file->is_object()) return ErrorResponse(400, "Invalid value at 'file'.");
      for (const auto& member : file->get_object()) {
        const std::string_view key = Sv(member.key());
        const json::value& value = member.value();
        auto text = [&]() { return value.is_string() ? std::string(Sv(value.get_string())) : ""; };
        if (key == "displayName" || key == "display_name") {
          upload.display_name = text();
          if (upload.display_name.size() > 512) {
            return ErrorResponse(400, "display_name must be at most 512 characters.");
          }
        } else if (key == "mimeType" || key == "mime_type") {
          if (upload.mime_type.empty()) upload.mime_type = text();
        } else if (key == "name") {
          std::string name = text();
          absl::string_view id = name;
          absl::ConsumePrefix(&id, "files/");
          if (!ValidFileId(std::string_view(id.data(), id.size()))) {
            return ErrorResponse(400, "Invalid file name: use lowercase letters, digits and "
                                      "dashes, at most 40 characters.");
          }
          upload.file_id = std::string(id);
        }
      }
    }
  }
  if (upload.mime_type.empty()) {
    return ErrorResponse(400, "MIME type of the file is not specified.");
  }
  absl::MutexLock lock(&mu_);
  if (!upload.file_id.empty() && files_.count(upload.file_id) != 0) {
    return ErrorResponse(409, absl::StrCat("File files/", upload.file_id, " already exists."));
  }
  std::string directory = options_.directory;
  if (directory.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    directory = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  }
  std::string path = absl::StrCat(directory, "/gemini-emulator-upload-XXXXXX");
  const int fd = mkstemp(path.data());
  if (fd < 0) return ErrorResponse(500, "The emulator could not create an upload file.");
  close(fd);
  upload.path = std::move(path);
  upload.hash = std::make_shared<HashState>();
  const std::string upload_id = NewId(++counter_, 32);
  uploads_.emplace(upload_id, std::move(upload));
  ScriptedResponse response;
  response.headers.emplace_back(
      "X-Goog-Upload-URL", absl::StrCat(request.base_url, "/upload/", request.api_version,
                                        "/files?upload_id=", upload_id,
                                        "&upload_protocol=resumable"));
  response.headers.emplace_back("X-Goog-Upload-Status", "active");
  response.headers.emplace_back("X-Goog-Upload-Chunk-Granularity",
                                absl::StrCat(kChunkGranularity));
  response.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  AddGoogleHeaders(response.headers);
  return response;
}

ScriptedResponse FileStore::UploadChunk(const FileRequest& request, const std::string& upload_id) {
  bool upload = false, finalize = false, query = false, cancel = false;
  for (absl::string_view word :
       absl::StrSplit(absl::AsciiStrToLower(Header(request, "x-goog-upload-command")), ',')) {
    word = absl::StripAsciiWhitespace(word);
    upload |= word == "upload";
    finalize |= word == "finalize";
    query |= word == "query";
    cancel |= word == "cancel";
  }
  absl::MutexLock lock(&mu_);
  std::optional<ScriptedResponse> fault_reply;
  auto it = uploads_.find(upload_id);
  if (it == uploads_.end()) return PlainError(404, "Upload session not found or already finalized.");
  Upload& session = it->second;
  auto status_response = [&](std::string_view status) {
    ScriptedResponse response;
    response.headers.emplace_back("X-Goog-Upload-Status", std::string(status));
    response.headers.emplace_back("X-Goog-Upload-Size-Received", absl::StrCat(session.size));
    response.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
    AddGoogleHeaders(response.headers);
    return response;
  };
  if (cancel) {
    ScriptedResponse response = status_response("cancelled");
    stored_bytes_ -= session.size;
    std::remove(session.path.c_str());
    uploads_.erase(it);
    return response;
  }
  if (query) return status_response("active");
  if (!upload && !finalize) {
    return PlainError(400, "Missing or unknown X-Goog-Upload-Command.");
  }
  std::optional<UploadFault> fault;
  if (!faults_.empty()) {
    fault = faults_.front();
    faults_.pop_front();
  }
  if (!request.body.empty() || upload) {
    int64_t offset = -1;
    if (!absl::SimpleAtoi(Header(request, "x-goog-upload-offset"), &offset)) {
      return PlainError(400, "Missing or invalid X-Goog-Upload-Offset header.");
    }
    if (offset != session.size) {
      return PlainError(400, absl::StrCat("The X-Goog-Upload-Offset ", offset,
                                          " does not match the ", session.size,
                                          " bytes received so far."));
    }
  }
  const int64_t size = static_cast<int64_t>(request.body.size());
  if (!finalize && size % kChunkGranularity != 0) {
    return PlainError(400, absl::StrCat("The client sent ", size,
                                        " bytes, which is not a multiple of the ",
                                        kChunkGranularity, " byte chunk granularity."));
  }
  if (fault.has_value() && !fault->keep_bytes) {
    // The chunk is lost on the way: nothing stored.
    ScriptedResponse failed = FaultReply(*fault);
    return failed;
  }
  const int64_t received = session.size + size;
  if ((session.declared_size >= 0 && received > session.declared_size) ||
      received > kMaxFileBytes) {
    return PlainError(400, absl::StrCat("The client sent more bytes (", received,
                                        ") than the declared upload length."));
  }
  if (stored_bytes_ + size > options_.max_stored_bytes) {
    return ErrorResponse(429, "The emulator's file storage is full; delete files first.");
  }
  {
    const int fd = open(session.path.c_str(), O_WRONLY | O_CLOEXEC);
    const bool written = fd >= 0 && WriteAll(fd, request.body, session.size);
    if (fd >= 0) close(fd);
    if (!written) return PlainError(500, "The emulator could not store the upload.");
  }
  session.hash->Update(request.body);
  session.size += size;
  stored_bytes_ += size;
  if (fault.has_value()) {
    // The bytes arrived but the reply is lost.
    ScriptedResponse failed = FaultReply(*fault);
    if (!finalize) return failed;
    // A finalize whose reply is lost still finalizes.
    fault_reply = std::move(failed);
  }
  if (!finalize) return status_response("active");

  if (session.declared_size >= 0 && received != session.declared_size) {
    return PlainError(400, absl::StrCat("Finalized after ", received, " bytes, but ",
                                        session.declared_size, " were declared."));
  }
  File file;
  file.id = session.file_id;
  while (file.id.empty() || files_.count(file.id) != 0) file.id = NewId(++counter_, 12);
  file.display_name = std::move(session.display_name);
  file.mime_type = std::move(session.mime_type);
  file.sha256_hash = session.hash->Sha256HashField();
  file.path = std::move(session.path);
  file.size = session.size;
  file.create_time = Now();
  file.active_time = file.create_time + absl::FromChrono(request.processing);
  file.fails = fail_processing_;
  file.order = ++counter_;
  uploads_.erase(it);
  const std::string body = absl::StrCat("{\"file\": ", FileJson(file), "}");
  files_.emplace(file.id, std::move(file));
  if (fault_reply.has_value()) return *std::move(fault_reply);
  ScriptedResponse response = JsonResponse(body);
  response.headers.emplace_back("X-Goog-Upload-Status", "final");
  return response;
}

std::string FileStore::FileJson(const File& file) const {
  const absl::Time now = Now();
  const bool active = now >= file.active_time;
  const absl::Time update_time = active ? std::max(file.create_time, file.active_time)
                                        : file.create_time;
  json::object object;
  object["name"] = Js(absl::StrCat("files/", file.id));
  if (!file.display_name.empty()) object["displayName"] = Js(file.display_name);
  object["mimeType"] = Js(file.mime_type);
  object["sizeBytes"] = Js(absl::StrCat(file.size));
  object["createTime"] = Js(Timestamp(file.create_time, false));
  object["updateTime"] = Js(Timestamp(update_time, false));
  object["expirationTime"] =
      Js(Timestamp(file.create_time + absl::Hours(48) - absl::Milliseconds(18), true));
  object["sha256Hash"] = Js(file.sha256_hash);
  object["uri"] = Js(absl::StrCat(Absl(kFileUriBase), "v1beta/files/", file.id));
  object["state"] = !active ? "PROCESSING" : file.fails ? "FAILED" : "ACTIVE";
  object["source"] = file.generated ? "GENERATED" : "UPLOADED";
  if (active && file.fails) {
    object["error"] = json::object{{"code", 3}, {"message", "The emulator failed this file."}};
  }
  return json::serialize(object);
}

ScriptedResponse FileStore::GetFile(const std::string& id) {
  absl::MutexLock lock(&mu_);
  ExpireLocked();
  auto it = files_.find(id);
  if (it == files_.end()) return NoSuchFile(absl::StrCat("files/", id));
  return JsonResponse(FileJson(it->second));
}

ScriptedResponse FileStore::ListFiles(const FileRequest& request) {
  int64_t page_size = 10;
  if (const std::string text = Param(request, "pageSize"); !text.empty()) {
    if (!absl::SimpleAtoi(text, &page_size) || page_size < 0) {
      return ErrorResponse(400, "Invalid value for page_size.");
    }
    if (page_size == 0) page_size = 10;
    page_size = std::min<int64_t>(page_size, 100);
  }
  size_t start = 0;
  if (const std::string token = Param(request, "pageToken"); !token.empty()) {
    std::string decoded;
    if (!absl::WebSafeBase64Unescape(token, &decoded) ||
        !absl::StartsWith(decoded, "offset:") ||
        !absl::SimpleAtoi(absl::string_view(decoded).substr(7), &start)) {
      return ErrorResponse(400, "Invalid page_token.");
    }
  }
  absl::MutexLock lock(&mu_);
  ExpireLocked();
  std::vector<const File*> ordered;
  for (const auto& [id, file] : files_) ordered.push_back(&file);
  std::sort(ordered.begin(), ordered.end(),
            [](const File* a, const File* b) { return a->order > b->order; });  // newest first
  std::string files_json;
  const size_t end = std::min(ordered.size(), start + static_cast<size_t>(page_size));
  for (size_t i = start; i < end; ++i) {
    absl::StrAppend(&files_json, i == start ? "" : ",", FileJson(*ordered[i]));
  }
  std::string body = "{";
  if (!files_json.empty()) absl::StrAppend(&body, "\"files\": [", files_json, "]");
  if (end < ordered.size()) {
    std::string token;
    absl::WebSafeBase64Escape(absl::StrCat("offset:", end), &token);
    absl::StrAppend(&body, files_json.empty() ? "" : ",", "\"nextPageToken\": \"", token, "\"");
  }
  body += "}";
  return JsonResponse(body);
}

ScriptedResponse FileStore::DeleteFile(const std::string& id) {
  absl::MutexLock lock(&mu_);
  ExpireLocked();
  auto it = files_.find(id);
  if (it == files_.end()) return NoSuchFile(absl::StrCat("files/", id));
  stored_bytes_ -= it->second.size;
  std::remove(it->second.path.c_str());
  files_.erase(it);
  return JsonResponse("{}");
}

bool FileStore::Remove(const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto it = files_.find(id);
  if (it == files_.end()) return false;
  stored_bytes_ -= it->second.size;
  std::remove(it->second.path.c_str());
  files_.erase(it);
  return true;
}

ScriptedResponse FileStore::DownloadFile(const std::string& id, const FileRequest& request) {
  if (Param(request, "alt") != "media") {
    return ErrorResponse(400, "Downloads need alt=media.");
  }
  std::string path;
  int64_t size = 0;
  ScriptedResponse response;
  {
    absl::MutexLock lock(&mu_);
    ExpireLocked();
    auto it = files_.find(id);
    if (it == files_.end()) return NoSuchFile(absl::StrCat("files/", id));
    path = it->second.path;
    size = it->second.size;
    response.headers.emplace_back("Content-Type", it->second.mime_type);
  }
  std::shared_ptr<const std::string> bytes = ReadAll(path, size);
  if (bytes == nullptr) return NoSuchFile(absl::StrCat("files/", id));  // deleted meanwhile
  AddGoogleHeaders(response.headers);
  response.body = *bytes;
  return response;
}

absl::StatusOr<std::string> FileStore::AddGeneratedFile(std::string id, std::string display_name,
                                                        std::string mime_type,
                                                        std::string_view bytes) {
  std::string directory = options_.directory;
  if (directory.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    directory = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  }
  HashState hash;
  hash.Update(bytes);
  absl::MutexLock lock(&mu_);
  const int64_t size = static_cast<int64_t>(bytes.size());
  if (stored_bytes_ + size > options_.max_stored_bytes) {
    return absl::ResourceExhaustedError("The emulator's file storage is full; delete files first.");
  }
  std::string path = absl::StrCat(directory, "/gemini-emulator-generated-XXXXXX");
  const int fd = mkstemp(path.data());
  if (fd < 0) return absl::InternalError("The emulator could not create a file.");
  const bool written = WriteAll(fd, bytes, 0);
  close(fd);
  if (!written) {
    std::remove(path.c_str());
    return absl::InternalError("The emulator could not store a file.");
  }
  File file;
  file.id = ValidFileId(id) ? std::move(id) : std::string();
  while (file.id.empty() || files_.count(file.id) != 0) file.id = NewId(++counter_, 12);
  file.display_name = std::move(display_name);
  file.mime_type = std::move(mime_type);
  file.sha256_hash = hash.Sha256HashField();
  file.path = std::move(path);
  file.size = size;
  file.create_time = Now();
  file.active_time = file.create_time;
  file.generated = true;
  file.order = ++counter_;
  stored_bytes_ += size;
  std::string result = file.id;
  files_.emplace(file.id, std::move(file));
  return result;
}

absl::Time FileStore::ClockNow() const {
  absl::MutexLock lock(&mu_);
  return Now();
}

std::optional<FileContent> FileStore::Resolve(std::string_view uri) const {
  const size_t at = uri.rfind("files/");
  if (at == std::string_view::npos) return std::nullopt;
  const std::string id(uri.substr(at + 6));
  std::string path;
  int64_t size = 0;
  FileContent content;
  {
    absl::MutexLock lock(&mu_);
    auto it = files_.find(id);
    if (it == files_.end()) return std::nullopt;
    const absl::Time now = Now();
    if (it->second.create_time + absl::Hours(48) <= now) return std::nullopt;  // expired
    content.mime_type = it->second.mime_type;
    content.active = now >= it->second.active_time && !it->second.fails;
    path = it->second.path;
    size = it->second.size;
  }
  if (size > options_.max_prompt_file_bytes) {
    content.bytes = std::make_shared<const std::string>();  // too big to analyse
  } else {
    content.bytes = ReadAll(path, size);
    if (content.bytes == nullptr) return std::nullopt;  // deleted meanwhile
  }
  return content;
}

void FileStore::Clear() {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, upload] : uploads_) std::remove(upload.path.c_str());
  for (const auto& [id, file] : files_) std::remove(file.path.c_str());
  uploads_.clear();
  files_.clear();
  stored_bytes_ = 0;
  faults_.clear();
  clock_offset_ = absl::ZeroDuration();
  fail_processing_ = false;
}

}  // namespace vision_gateway::emulator
