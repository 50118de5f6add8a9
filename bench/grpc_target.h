// LoadTarget for any server speaking vision.v1: server-streaming calls through the gRPC callback
// API (one ClientReadReactor per call, no thread per call), spread round-robin over several
// channels so that the load uses several HTTP/2 connections.
#ifndef VISION_GATEWAY_BENCH_GRPC_TARGET_H_
#define VISION_GATEWAY_BENCH_GRPC_TARGET_H_

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "bench/load_target.h"

namespace vision_gateway::bench {

struct GrpcTargetOptions {
  std::string target;              // host:port
  int channels = 4;                // distinct HTTP/2 connections
  std::string rpc = "caption";     // caption | detect | segment
  std::string image;               // encoded image bytes sent with every request
  std::string mime_type;           // optional hint
  std::string prompt;              // empty: the server's default prompt
  std::string model;               // empty: the server's default model
  std::chrono::milliseconds timeout{30000};         // per-call deadline
  std::chrono::milliseconds connect_timeout{5000};  // every channel must connect within this
};

// Connects every channel (fails if one cannot connect in time) and returns the target.
absl::StatusOr<std::unique_ptr<LoadTarget>> MakeGrpcTarget(const GrpcTargetOptions& options);

// "OK", "CANCELLED", ..., "UNAUTHENTICATED"; "CODE_<n>" for unknown values.
std::string GrpcCodeName(int code);

}  // namespace vision_gateway::bench

#endif  // VISION_GATEWAY_BENCH_GRPC_TARGET_H_
