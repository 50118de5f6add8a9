// Typed Gemini REST messages (generativelanguage v1beta), the subset this gateway uses.
// Field names follow the JSON (lowerCamelCase there, snake_case here).
#ifndef VISION_GATEWAY_SERVICE_GEMINI_TYPES_H_
#define VISION_GATEWAY_SERVICE_GEMINI_TYPES_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "service/common/growing_buffer.h"

namespace vision_gateway::gemini {

struct Blob {
  std::string mime_type;
  // Raw bytes (not base64): the codec base64-encodes them straight into the request body.
  std::string data;
};

struct FileData {
  std::string mime_type;
  std::string file_uri;
};

struct Part {
  std::string text;
  std::optional<Blob> inline_data;
  std::optional<FileData> file_data;
  // Per-part media resolution level ("MEDIA_RESOLUTION_HIGH", ...); empty: not sent.
  std::string media_resolution;
  bool thought = false;
  std::string thought_signature;
};

struct Content {
  std::string role;  // "user" | "model"; empty: not sent
  std::vector<Part> parts;
};

struct ThinkingConfig {
  std::optional<int32_t> thinking_budget;
  std::string thinking_level;  // "MINIMAL", "LOW", ...; empty: not sent
  std::optional<bool> include_thoughts;
};

struct GenerationConfig {
  std::optional<float> temperature;
  std::optional<int32_t> max_output_tokens;
  std::string response_mime_type;       // empty: not sent
  std::string response_json_schema;     // a JSON document, embedded verbatim; empty: not sent
  std::string media_resolution;         // "MEDIA_RESOLUTION_LOW", ...; empty: not sent
  std::optional<ThinkingConfig> thinking_config;
};

struct SafetySetting {
  std::string category;
  std::string threshold;
};

struct GenerateContentRequest {
  std::optional<Content> system_instruction;
  std::vector<Content> contents;
  std::optional<GenerationConfig> generation_config;
  std::vector<SafetySetting> safety_settings;
  // Instead of the fields above: the request already encoded (EncodeGenerateContentRequest, a
  // complete buffer), set by a layer that keeps the request to send it again (the retrying
  // stub). Shared with the HTTP request that sends it, never copied: a request is held once,
  // encoded, however many attempts it takes. The REST client sends it as it is.
  std::shared_ptr<GrowingBuffer> encoded_body;
};

struct UsageMetadata {
  int32_t prompt_token_count = 0;
  int32_t candidates_token_count = 0;
  int32_t thoughts_token_count = 0;
  int32_t total_token_count = 0;
  int32_t cached_content_token_count = 0;
};

struct Candidate {
  Content content;
  std::string finish_reason;  // empty on intermediate stream chunks
  int32_t index = 0;
};

struct PromptFeedback {
  std::string block_reason;  // empty: not blocked
};

struct GenerateContentResponse {
  std::vector<Candidate> candidates;
  std::optional<PromptFeedback> prompt_feedback;
  std::optional<UsageMetadata> usage_metadata;
  std::string model_version;
  std::string response_id;
  // Not on the wire: set by the result cache (#21) on a response this call did not pay for (a
  // stored result replayed, or an identical call in flight shared); its usage_metadata is then
  // the original call's.
  bool cached = false;
};

struct CountTokensRequest {
  std::vector<Content> contents;
  // As GenerateContentRequest::encoded_body (EncodeCountTokensRequest).
  std::shared_ptr<GrowingBuffer> encoded_body;
};

struct CountTokensResponse {
  int32_t total_tokens = 0;
  int32_t cached_content_token_count = 0;
};

// One model of Gemini's models list (models.list / models.get).
struct Model {
  std::string name;          // "models/<id>"
  std::string display_name;
  std::string version;
  int32_t input_token_limit = 0;
  int32_t output_token_limit = 0;
  std::vector<std::string> supported_generation_methods;  // "generateContent", "countTokens", ...
  bool thinking = false;     // the model thinks (absent: false)

  // The id without "models/".
  std::string Id() const {
    return name.rfind("models/", 0) == 0 ? name.substr(7) : name;
  }
};

struct ListModelsResponse {
  std::vector<Model> models;
  std::string next_page_token;  // empty on the last page
};

// A file in Gemini's Files API (files.get, files.list, upload finalize).
struct File {
  std::string name;          // "files/<id>"
  std::string display_name;  // empty when absent
  std::string mime_type;
  int64_t size_bytes = 0;
  // Absent timestamps are InfinitePast.
  absl::Time create_time = absl::InfinitePast();
  absl::Time update_time = absl::InfinitePast();
  absl::Time expiration_time = absl::InfinitePast();
  std::string sha256_hash;  // as on the wire: base64 of the lowercase hex digest text
  std::string uri;          // "https://generativelanguage.googleapis.com/v1beta/files/<id>"
  std::string state;        // "PROCESSING", "ACTIVE", "FAILED", "STATE_UNSPECIFIED" or empty
  std::string error_message;  // error.message when FAILED
};

struct ListFilesResponse {
  std::vector<File> files;
  std::string next_page_token;  // empty on the last page
};

// What a resumable upload starts with (the start request's headers and {"file": {...}} body).
struct StartUploadRequest {
  int64_t size_bytes = 0;      // X-Goog-Upload-Header-Content-Length
  std::string mime_type;       // X-Goog-Upload-Header-Content-Type (required)
  std::string display_name;    // file.displayName; empty: not sent
  std::string name;            // file.name "files/<id>" chosen by the caller; empty: Gemini's
};

// The bytes of one upload chunk: `data` from `offset` to its end. Shared rather than copied: the
// uploader keeps them to resume from while the HTTP request sends them from the same buffer. The
// buffer may still be filling (an upload streamed through as the caller sends it): the request
// declares its full size and sends the bytes as they arrive.
struct ChunkBytes {
  ChunkBytes() = default;
  ChunkBytes(std::shared_ptr<GrowingBuffer> data, std::size_t offset)
      : data(std::move(data)), offset(offset) {}
  // A complete chunk of `bytes` (tests, tools).
  ChunkBytes(std::string bytes)  // NOLINT(google-explicit-constructor)
      : data(GrowingBuffer::Of(std::move(bytes))) {}

  // The chunk's full size, from `offset`.
  std::size_t size() const {
    return data == nullptr || offset > data->size() ? 0 : data->size() - offset;
  }
  // The bytes written so far, from `offset`.
  std::string_view view() const {
    if (data == nullptr) return std::string_view();
    const std::string_view written = data->View();
    return offset > written.size() ? std::string_view() : written.substr(offset);
  }

  std::shared_ptr<GrowingBuffer> data;
  std::size_t offset = 0;
};

// Where a started upload goes: the x-goog-upload-url (always on the configured Gemini origin).
struct UploadSession {
  std::string upload_url;
  int64_t chunk_granularity = 8 << 20;  // x-goog-upload-chunk-granularity, default 8 MiB
};

// The upload state after a chunk, a query or a cancel.
struct UploadStatus {
  std::string status;          // x-goog-upload-status: "active", "final", "cancelled"
  int64_t size_received = -1;  // x-goog-upload-size-received; -1 when absent
  std::optional<File> file;    // the finalize reply's {"file": {...}}
};

// base64 of the lowercase hex digest text, Gemini's sha256Hash encoding.
std::string Sha256HashFromHex(std::string_view hex);
// The lowercase hex digest from a sha256Hash field; empty when it is not that encoding.
std::string HexFromSha256Hash(std::string_view sha256_hash);

// The text of the first candidate's non-thought parts, concatenated.
std::string AnswerText(const GenerateContentResponse& response);

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_TYPES_H_
