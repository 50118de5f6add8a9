// absl::Status → grpc::Status, the one place this happens. Details attached to the absl::Status
// (service/common/status_details.h) travel as google.rpc.Status in grpc-status-details-bin.
#ifndef VISION_GATEWAY_SERVICE_SERVER_STATUS_CONVERSION_H_
#define VISION_GATEWAY_SERVICE_SERVER_STATUS_CONVERSION_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace vision_gateway::server {

grpc::StatusCode ToGrpcCode(absl::StatusCode code);

grpc::Status ToGrpcStatus(const absl::Status& status);

// What every RPC finishes with: the error table's view of `status` (vision::ToCallerStatus: one
// code, ErrorInfo domain "vision-gateway" with a stable reason, passed-through RetryInfo...),
// converted with ToGrpcStatus.
grpc::Status ToCallerGrpcStatus(const absl::Status& status);

}  // namespace vision_gateway::server

#endif  // VISION_GATEWAY_SERVICE_SERVER_STATUS_CONVERSION_H_
