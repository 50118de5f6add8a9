// What the load generator drives: something that can start one request and report, once, when it
// ended. Implemented for vision.v1 gRPC streams (grpc_target.h) and for plain Gemini REST SSE
// streams (gemini_target.h), so both see exactly the same load.
#ifndef VISION_GATEWAY_BENCH_LOAD_TARGET_H_
#define VISION_GATEWAY_BENCH_LOAD_TARGET_H_

#include <chrono>
#include <functional>
#include <string>

namespace vision_gateway::bench {

using Clock = std::chrono::steady_clock;

// One finished request.
struct Sample {
  Clock::time_point start;        // just before the request was handed to the transport
  Clock::time_point first;        // first response message (stream message / SSE bytes)
  Clock::time_point end;          // the stream's end (gRPC Finish / last body byte)
  bool got_first = false;         // `first` is meaningful
  int messages = 0;               // messages (gRPC) or SSE events (Gemini) received
  std::string error;              // empty: success; else a short code like "UNAVAILABLE", "HTTP_429"
};

class LoadTarget {
 public:
  using DoneCallback = std::function<void(const Sample&)>;

  virtual ~LoadTarget() = default;

  // Starts one request without blocking on its completion. `done` runs exactly once, on a
  // transport thread, after the request ended (successfully or not). Thread-safe.
  virtual void Start(DoneCallback done) = 0;

  // A one-line description for the report, e.g. "grpc Caption 127.0.0.1:5000 over 4 channels".
  virtual std::string Describe() const = 0;
};

}  // namespace vision_gateway::bench

#endif  // VISION_GATEWAY_BENCH_LOAD_TARGET_H_
