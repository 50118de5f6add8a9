// What one gRPC call did, gathered from every layer while it runs and read once at its end (for
// the trailer timings, the access log and the per-call metrics). The server creates one per call
// and hands it down as a shared_ptr (gemini::CallOptions::record, the vision tasks' `record`);
// lower layers add to it. Thread-safe: upstream callbacks, the CPU pool and gRPC threads write.
#ifndef VISION_GATEWAY_SERVICE_TELEMETRY_CALL_RECORD_H_
#define VISION_GATEWAY_SERVICE_TELEMETRY_CALL_RECORD_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/telemetry/telemetry.h"

namespace vision_gateway::telemetry {

class CallRecord {
 public:
  // `telemetry` outlives the record. `request_id` and `traceparent` are already validated
  // (request_id.h); traceparent may be empty.
  CallRecord(Telemetry& telemetry, std::string request_id, std::string traceparent)
      : telemetry_(telemetry),
        request_id_(std::move(request_id)),
        traceparent_(std::move(traceparent)) {}

  Telemetry& telemetry() const { return telemetry_; }

  // The authenticated caller's name (bounded: callers come from configuration); "" when
  // authentication is off or the call was not admitted.
  void SetCaller(std::string caller);
  std::string caller() const;
  const std::string& request_id() const { return request_id_; }
  // The caller's W3C traceparent, forwarded upstream; empty when it sent none (or a bad one).
  const std::string& traceparent() const { return traceparent_; }

  // One upstream exchange ended after `latency` (time waiting on Gemini).
  void AddUpstreamAttempt(absl::Duration latency);
  // Time spent waiting before a retry (counted as upstream time: it is Gemini's doing).
  void AddUpstreamWait(absl::Duration wait);
  void AddTokens(TokenKind kind, int64_t count);
  void AddObjects(int64_t count);
  void AddDropped(DropReason reason, int64_t count = 1);
  void AddUploadBytes(int64_t bytes);
  // What the result cache (#21) did for this call: kHit, kCoalesced, kMiss, kBypass or kRefresh
  // (the last one set wins; unset when the cache is off or took no part).
  void SetCache(CacheEvent event);

  struct Snapshot {
    absl::Duration upstream;
    int attempts = 0;
    std::array<int64_t, kNumTokenKinds> tokens{};
    int64_t objects = 0;
    std::array<int64_t, kNumDropReasons> dropped{};
    int64_t upload_bytes = 0;
    std::optional<CacheEvent> cache;
    // True when the answer came from the result cache or a shared call (nothing billed here).
    bool cached() const {
      return cache == CacheEvent::kHit || cache == CacheEvent::kCoalesced;
    }
    int64_t TotalDropped() const;
  };
  Snapshot Read() const;

 private:
  Telemetry& telemetry_;
  const std::string request_id_;
  const std::string traceparent_;
  mutable absl::Mutex mu_;
  Snapshot data_ ABSL_GUARDED_BY(mu_);
  std::string caller_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vision_gateway::telemetry

#endif  // VISION_GATEWAY_SERVICE_TELEMETRY_CALL_RECORD_H_
