// The telemetry interface every layer records through (DESIGN.md "Cross-cutting pieces"). It
// names what happened in the gateway's own terms; an exporter (service/metrics/, Prometheus)
// turns it into metrics. Nothing here depends on a metrics library, gRPC or Boost.
//
// Label values are bounded by construction: methods, operations, codes, token kinds and drop
// reasons come from fixed sets, and the model label is folded by the exporter to the models the
// server knows. Never pass prompts, file names, image data, request ids or keys as arguments.
//
// All methods are thread-safe, cheap and never block on I/O: they are called on gRPC, I/O and CPU
// pool threads in the middle of a call.
#ifndef VISION_GATEWAY_SERVICE_TELEMETRY_TELEMETRY_H_
#define VISION_GATEWAY_SERVICE_TELEMETRY_TELEMETRY_H_

#include <array>
#include <cstdint>
#include <functional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace vision_gateway::telemetry {

// As gRPC's ServerRpcInfo::Type; label values "unary", "client_stream", "server_stream",
// "bidi_stream" (go-grpc-prometheus).
enum class RpcType { kUnary, kClientStream, kServerStream, kBidiStream };

enum class TokenKind { kPrompt, kOutput, kThinking };
inline constexpr int kNumTokenKinds = 3;

// Why a model item did not become an object (Detect/Segment).
enum class DropReason {
  kMalformed,       // not a JSON object with the expected fields
  kOverLimit,       // beyond the request's max_objects
  kInvalidBox,      // box_2d missing, out of range or inverted
  kEmptyBox,        // zero area once converted to pixels
  kDegenerateMask,  // mask missing, undecodable or empty
};
inline constexpr int kNumDropReasons = 5;

// What the result cache (#21) did for one call, or for one of its entries.
enum class CacheEvent {
  kHit,        // answered from a stored result
  kCoalesced,  // shared an identical call in flight (single flight)
  kMiss,       // looked up, not found: went upstream
  kBypass,     // the caller asked for no cache (neither read nor written)
  kRefresh,    // the caller asked for a fresh answer (not read, written)
  kStore,      // a result was stored
  kTooLarge,   // a result was not stored: larger than --result_cache_max_entry_kb
  kError,      // the store failed or was slow (lookup or store); the call went on without it
};
inline constexpr int kNumCacheEvents = 8;

// What batch jobs (#20) did.
enum class BatchEvent {
  kJobCreated,  // a job was created at Gemini
  kItem,        // items sent in created jobs
  kResultLine,  // result lines (items) read back from a responses file or inline answers
  kItemFailed,  // items read back as an error (Gemini's, or an unusable answer)
};

// Label spellings.
std::string_view RpcTypeName(RpcType type);          // "unary", "server_stream", ...
std::string_view TokenKindName(TokenKind kind);      // "prompt", "output", "thinking"
std::string_view DropReasonName(DropReason reason);  // "malformed", "over_limit", ...
std::string_view CacheEventName(CacheEvent event);
std::string_view BatchEventName(BatchEvent event);  // "job_created", "item", "result_line", ...   // "hit", "coalesced", "miss", ...
// gRPC code names as go-grpc-prometheus spells them: "OK", "InvalidArgument",
// "ResourceExhausted", ... (Go's codes.Code.String()).
std::string_view GrpcCodeName(absl::StatusCode code);

// Metrics of one gRPC method (the go-grpc-prometheus set). Owned by the Telemetry that returned
// it and valid as long as it.
class RpcMetrics {
 public:
  virtual ~RpcMetrics() = default;
  virtual void Started() = 0;
  virtual void MessageReceived() = 0;
  virtual void MessageSent() = 0;
  // The call ended with `code` after `duration` (from the call's start to its status).
  virtual void Handled(absl::StatusCode code, absl::Duration duration) = 0;
  // The gateway's own time in the call: the duration minus the time spent waiting on Gemini.
  virtual void GatewayOverhead(absl::Duration overhead) = 0;
  // Objects (detections, masks) streamed to the caller, and model items dropped.
  virtual void ObjectsEmitted(int64_t count) = 0;
  virtual void ItemsDropped(DropReason reason, int64_t count) = 0;
  // A failed call's ErrorInfo reason (domain vision-gateway), e.g. UPSTREAM_AUTH_FAILED.
  virtual void ErrorReason(std::string_view reason) = 0;
  // An authenticated caller's call ended with `code` after using `tokens` (by TokenKind).
  // Caller names come from configuration; an exporter still bounds how many it keeps apart.
  virtual void CallerDone(std::string_view caller, absl::StatusCode code,
                          const std::array<int64_t, kNumTokenKinds>& tokens) = 0;
};

// One HTTP exchange with Gemini.
struct UpstreamAttempt {
  // "streamGenerateContent", "generateContent", "countTokens", "upload", ... (fixed set).
  std::string_view operation;
  // The model id as sent; the exporter folds unknown models.
  std::string_view model;
  // OK, or how the attempt failed (an HTTP 429 arrives as kResourceExhausted).
  absl::StatusCode code = absl::StatusCode::kOk;
  // From the request's start to its end (the last byte of the answer, or the failure).
  absl::Duration latency;
  // From the request's start to the first answer data (first stream chunk, or the whole answer
  // for a unary call); negative when no answer arrived.
  absl::Duration time_to_first_byte = absl::Seconds(-1);
};

class Telemetry {
 public:
  virtual ~Telemetry() = default;

  // The metrics of `full_method` ("/package.Service/Method"). Cheap after the first call for a
  // method; an exporter may fold methods beyond a bound into one "unknown" entry.
  virtual RpcMetrics& Rpc(std::string_view full_method, RpcType type) = 0;

  // Calls being served (+1 at the start, -1 at the end).
  virtual void CallsInFlight(int delta) = 0;

  virtual void UpstreamAttemptDone(const UpstreamAttempt& attempt) = 0;
  // A retry of `operation` is about to wait `backoff` and try again.
  virtual void UpstreamRetry(std::string_view operation, absl::Duration backoff) = 0;
  virtual void Tokens(std::string_view model, TokenKind kind, int64_t count) = 0;
  // Bytes of files uploaded to Gemini.
  virtual void UploadBytes(int64_t bytes) = 0;
  // Gemini answered a call for `requested` with a model of another family (its modelVersion
  // names `served`): Google rerouted the call. Model labels are folded as for Tokens.
  virtual void ModelRerouted(std::string_view /*requested*/, std::string_view /*served*/) {}
  // The result cache (#21) did `event` for a call of `task` ("caption", "detect", "segment";
  // a fixed set, "" when unknown).
  virtual void ResultCache(std::string_view /*task*/, CacheEvent /*event*/) {}
  // Batch jobs (#20): `count` `event`s for jobs of `task` ("caption", "detect", "segment") on
  // `model` (folded as for Tokens).
  virtual void Batch(std::string_view /*task*/, std::string_view /*model*/, BatchEvent /*event*/,
                     int64_t /*count*/) {}

  // A value read when metrics are collected (e.g. CPU work waiting for a thread). Replaces the
  // previous probe of that kind; an empty function removes it. The function must stay valid until
  // it is replaced or removed, and be cheap and thread-safe.
  enum class Probe { kQueuedCpuWork, kConcurrencyLimit, kUnlistedConfiguredModels };
  virtual void SetProbe(Probe probe, std::function<double()> read) = 0;
};

// Records nothing: for tests and for libraries used without an exporter.
Telemetry& NoTelemetry();

}  // namespace vision_gateway::telemetry

#endif  // VISION_GATEWAY_SERVICE_TELEMETRY_TELEMETRY_H_
