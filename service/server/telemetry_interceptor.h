// Observability of every gRPC call, as a gRPC server interceptor (so it sees every service and
// method, including health and reflection, and exactly what goes on the wire):
//  - request id: the caller's x-request-id when valid, else a generated one; returned in the
//    initial metadata (x-request-id) and logged. A valid W3C traceparent is kept for the upstream
//    call and the log;
//  - metrics (telemetry::RpcMetrics, the go-grpc-prometheus set): started, messages received and
//    sent, handled by code, handling time; the gateway overhead; objects and dropped items; error
//    reasons;
//  - trailing metadata `server-timing: gateway;dur=<ms>, upstream;dur=<ms>` (see the proto);
//  - one access-log line per call (health checks at debug level: access_log.h).
// Handlers reach the call's CallRecord through CallRegistry::Find(context).
#ifndef VISION_GATEWAY_SERVICE_SERVER_TELEMETRY_INTERCEPTOR_H_
#define VISION_GATEWAY_SERVICE_SERVER_TELEMETRY_INTERCEPTOR_H_

#include <grpcpp/support/server_interceptor.h>

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "service/telemetry/call_record.h"
#include "service/telemetry/telemetry.h"

namespace vision_gateway::server {

inline constexpr char kServerTimingTrailer[] = "server-timing";

// The CallRecord of each call in flight, by its server context.
class CallRegistry {
 public:
  void Add(const void* context, std::shared_ptr<telemetry::CallRecord> record);
  void Remove(const void* context);
  // Null when the call has no record (no interceptor ran).
  std::shared_ptr<telemetry::CallRecord> Find(const void* context) const;

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<const void*, std::shared_ptr<telemetry::CallRecord>> records_
      ABSL_GUARDED_BY(mu_);
};

// Both must outlive the server.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeTelemetryInterceptorFactory(telemetry::Telemetry& telemetry, CallRegistry& registry);

}  // namespace vision_gateway::server

#endif  // VISION_GATEWAY_SERVICE_SERVER_TELEMETRY_INTERCEPTOR_H_
