// Authentication before the request body (issue #17): with TLS, gRPC runs an
// AuthMetadataProcessor on each call's headers before the handler starts and before the request
// message is assembled, so a VisionService call with missing or wrong credentials is refused
// there and its body is never buffered. (gRPC accepts such a processor only on secure
// credentials; in plaintext the handler's check is the only one.)
//
// gRPC passes only a code and a message from a processor to the caller, not google.rpc details:
// such a refusal is UNAUTHENTICATED with the message "CALLER_UNAUTHENTICATED: <why>". Health and
// reflection stay open; everything else is checked again, with full details, by CallerGate::Admit.
#ifndef VISION_GATEWAY_SERVICE_SERVER_CALLER_AUTH_PROCESSOR_H_
#define VISION_GATEWAY_SERVICE_SERVER_CALLER_AUTH_PROCESSOR_H_

#include <grpcpp/security/auth_metadata_processor.h>

#include <memory>

#include "service/server/caller_gate.h"

namespace vision_gateway::server {

// Checks the credentials of every call to `service` (its full name, e.g. "vision.v1.VisionService")
// with `gate`.
std::shared_ptr<grpc::AuthMetadataProcessor> MakeCallerAuthProcessor(
    std::shared_ptr<const CallerGate> gate, std::string service);

}  // namespace vision_gateway::server

#endif  // VISION_GATEWAY_SERVICE_SERVER_CALLER_AUTH_PROCESSOR_H_
