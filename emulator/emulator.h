// gemini-emulator: an offline, wire-faithful fake of the Gemini REST API (generativelanguage
// v1/v1beta), for tests and for running clients without the network.
//
// Two modes per model request:
//  - scene mode (default): the emulator decodes the request's images, finds saturated-colour
//    shapes on a light background and answers captions, boxes (detection) or masks
//    (segmentation) from the real pixel geometry;
//  - script mode: responses queued with Enqueue() are served verbatim, FIFO, to the next model
//    requests (generateContent, streamGenerateContent, countTokens), faults included.
//
// Every request (except the /emulator/* admin routes) is recorded for assertions.
// Thread-safe. No Boost types here: the server lives in http_server.cc.
#ifndef VISION_GATEWAY_EMULATOR_EMULATOR_H_
#define VISION_GATEWAY_EMULATOR_EMULATOR_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace vision_gateway::emulator {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

class HttpServer;  // http_server.h

// One HTTP response as the emulator writes it. Also the unit of script mode.
struct ScriptedResponse {
  int status = 200;  // 100..999
  // Written as given. Content-Type defaults to "application/json; charset=UTF-8", or
  // "text/event-stream" when stream_writes is non-empty. Framing headers (Content-Length,
  // Transfer-Encoding, Connection) are set by the server.
  HeaderList headers;
  // Full body, sent with Content-Length. Ignored when stream_writes is non-empty.
  std::string body;
  // When non-empty, the response uses chunked transfer encoding and each element is written
  // as one chunk, flushed on its own (empty elements are skipped). The pieces are raw bytes:
  // SSE framing ("data: ...\r\n\r\n") is the script's job (see MakeSseEvent in gemini_wire.h),
  // so events split at arbitrary bytes and bare {"error":...} objects are expressible.
  std::vector<std::string> stream_writes;
  std::chrono::milliseconds delay_before_headers{0};
  std::chrono::milliseconds delay_between_writes{0};  // before every piece but the first
  // After the last stream piece, close the connection without the terminating chunk (a
  // truncated stream). With no stream_writes: close right after delay_before_headers without
  // writing any response byte.
  bool drop_connection_after_writes = false;
  // When set (in-process tests), the last stream piece is written only once this returns true
  // (asked every few milliseconds): a test holds a stream open until something has happened,
  // instead of hoping a delay is long enough.
  std::function<bool()> hold_last_write_until;
};

// A request as received (admin /emulator/* requests are not recorded).
struct RecordedRequest {
  std::string method;
  std::string target;  // path and query as sent, e.g. "/v1beta/models/m:generateContent"
  HeaderList headers;  // names as sent
  std::string body;    // at most EmulatorOptions::max_recorded_body_bytes
  std::size_t body_size = 0;  // size of the whole body received
  bool body_truncated = false;

  // Value of the first header with this name (case-insensitive), or "".
  std::string Header(std::string_view name) const;
};

enum class MaskFormat {
  kPng,      // "mask": "data:image/png;base64,..." 256x256 8-bit grey probability map over the box
  kPolygon,  // "mask": [[x, y], ...] outline normalised to 0..1000, x first
};

// One model of the emulator's models list (GET /{v}/models). Model requests are refused like
// Gemini refuses them: an id not in the list, or retired, gets 404 "models/x is not found for API
// version v1beta, or is not supported for generateContent. ..." on every method; thinking options
// the model does not take get 400 (both budget and level; a level on a budget model; a level the
// model lacks; a budget out of range, or 0 on a model that cannot stop thinking; any thinking on a
// model that does not think); mediaResolution on a part gets 400 unless the model takes it there.
struct EmulatorModel {
  std::string id;  // without "models/"
  std::string display_name;
  std::string version = "001";
  int input_token_limit = 1048576;
  int output_token_limit = 65536;
  std::vector<std::string> methods = {"generateContent", "countTokens", "createCachedContent",
                                      "batchGenerateContent"};
  bool thinking = true;
  // "level": thinkingConfig.thinkingLevel among `levels` (a budget is accepted too, as Gemini 3
  // does); "budget": thinkingConfig.thinkingBudget (min_budget..max_budget, 0 when can_disable,
  // -1 dynamic); "none": no thinkingConfig beyond budget 0.
  std::string thinking_control = "level";
  std::vector<std::string> levels = {"MINIMAL", "LOW", "MEDIUM", "HIGH"};
  int min_budget = 0;
  int max_budget = 24576;
  bool can_disable = true;
  bool per_part_media_resolution = true;
  // Shut down: not listed, and every request answers 404 exactly as for an unknown id.
  bool retired = false;
};

// The default list (late 2026): gemini-3-flash-preview, gemini-3.1-pro-preview,
// gemini-3.1-flash-lite, gemini-flash-latest, gemini-embedding-001 (embeddings only), and the
// retired gemini-2.5-flash, gemini-2.5-pro, gemini-2.5-flash-lite, gemini-2.0-flash,
// gemini-3-pro-preview and gemini-robotics-er-1.6-preview.
std::vector<EmulatorModel> DefaultModels();
// A listed 2.5-era model that takes a thinking budget (tests of the budget family): Flash
// (0..24576) or Pro (128..32768, cannot stop thinking).
EmulatorModel BudgetModel(std::string id, bool pro = false);

// Behaviour of scene mode; changeable at run time (SetConfig, POST /emulator/config).
struct EmulatorConfig {
  bool fence = false;         // wrap spatial JSON in ```json ... ```
  std::string prose_prefix;   // text before the spatial JSON, e.g. "Here are the objects:\n"
  MaskFormat mask_format = MaskFormat::kPng;
  int stream_chunk_chars = 16;       // spatial JSON is streamed in pieces of this many bytes
  int caption_words_per_event = 3;   // captions are streamed this many words per event
  std::chrono::milliseconds response_delay{0};      // before the headers of generated responses
  std::chrono::milliseconds stream_event_delay{0};  // between SSE events of generated responses
  std::string model_version;  // reported modelVersion; empty: the model id of the request path
  bool strict_fields = true;  // unknown request fields → 400 INVALID_ARGUMENT, as the real API
  // Uploaded files report state PROCESSING for this long after upload, then ACTIVE.
  std::chrono::milliseconds file_processing{0};
  // Files uploaded while this is set end processing FAILED instead of ACTIVE.
  bool fail_file_processing = false;
  // Batch jobs (batches.h) are PENDING for the first half of this, RUNNING for the second, then
  // done; the clock is the files' advanceable one (AdvanceClock). Read at a job's creation.
  std::chrono::milliseconds batch_processing{100};
  // Batch jobs created while this is set end FAILED instead of SUCCEEDED.
  bool fail_batches = false;
  // The models list and what each model accepts (see EmulatorModel).
  std::vector<EmulatorModel> models = DefaultModels();
};

// The next upload chunk request fails like this (InjectUploadFault, POST /emulator/upload_faults).
struct UploadChunkFault {
  int status = 503;              // HTTP status of the plain-text error reply
  bool keep_bytes = false;       // the bytes are stored and only the reply is lost
  bool drop_connection = false;  // close the connection instead of replying
  // The reply's text; empty: "Service Unavailable (emulator fault)." (A test may put what must
  // never reach the gateway's callers here: a host:port, "projects/<number>", a key.)
  std::string message;
};

struct EmulatorOptions {
  std::string host = "127.0.0.1";  // numeric address, or "localhost"
  int port = 0;                    // 0: any free port (see Emulator::port())
  std::string api_key;             // empty: accept any non-empty key
  int threads = 2;
  EmulatorConfig config;
  std::size_t max_body_bytes = std::size_t{128} << 20;   // larger requests get 413
  std::size_t max_header_bytes = std::size_t{64} << 10;  // larger headers get 431
  std::size_t max_recorded_body_bytes = std::size_t{1} << 20;
  // Oldest records are dropped beyond either bound (the newest one is always kept).
  std::size_t max_recorded_requests = 1000;
  std::size_t max_recorded_total_bytes = std::size_t{64} << 20;  // sum of recorded bodies
  // Where uploaded bytes are kept (one file per upload); empty: $TMPDIR or /tmp.
  std::string file_directory;
  // Bound on all stored and in-progress uploads together (429 beyond it).
  int64_t max_stored_file_bytes = int64_t{20} << 30;
};

class Emulator {
 public:
  // Binds host:port and starts serving on options.threads threads.
  static absl::StatusOr<std::unique_ptr<Emulator>> Start(EmulatorOptions options);

  Emulator(const Emulator&) = delete;
  Emulator& operator=(const Emulator&) = delete;
  ~Emulator();  // Stop()s

  int port() const;
  std::string base_url() const;  // "http://127.0.0.1:PORT"

  // Script mode: the next model request gets `response` verbatim (FIFO).
  void Enqueue(ScriptedResponse response);
  // Script mode for batch lines: the next batch line whose key (JSONL "key", inline metadata.key)
  // is `key` gets `response` (before any FIFO entry): a status other than 200 makes that line an
  // error line ({"code", "message", "status"} of the error envelope in `body`).
  void EnqueueForBatchKey(std::string key, ScriptedResponse response);
  std::size_t PendingScripted() const;
  void ClearScript();

  std::vector<RecordedRequest> Requests() const;
  void ClearRequests();
  // Waits until at least `count` requests were recorded since the last ClearRequests().
  absl::Status WaitForRequests(std::size_t count, absl::Duration timeout) const;

  // Client connections currently open / accepted since start.
  int OpenConnections() const;
  int64_t TotalConnections() const;
  // Waits until OpenConnections() == count (e.g. 0 after a client cancelled its request).
  absl::Status WaitForOpenConnections(int count, absl::Duration timeout) const;

  // The key model and file requests must carry from now on (empty: any non-empty key), as when
  // a key is rotated upstream. Requests already accepted are not affected.
  void SetApiKey(std::string api_key);

  // Files API helpers for tests: the store's clock (expiry after 48 h, PROCESSING → ACTIVE)
  // moves forward by `by`; the next upload chunk requests fail as queued; counts.
  void AdvanceClock(absl::Duration by);
  void InjectUploadFault(UploadChunkFault fault);
  int OpenUploads() const;
  int FileCount() const;
  int BatchCount() const;
  // Waits until OpenUploads() == count (e.g. 0 once a cancelled upload's session is gone).
  absl::Status WaitForOpenUploads(int count, absl::Duration timeout) const;

  void SetConfig(const EmulatorConfig& config);
  EmulatorConfig config() const;

  // Stops serving and closes every connection. Idempotent. Must not be called from a
  // response being produced by this emulator.
  void Stop();

  struct State;  // internal

 private:
  Emulator(std::shared_ptr<State> state, std::unique_ptr<HttpServer> server, int port);

  std::shared_ptr<State> state_;
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

}  // namespace vision_gateway::emulator

#endif  // VISION_GATEWAY_EMULATOR_EMULATOR_H_
