// grpc.health.v1 probes for tests that talk to a real server (server and integration tests).
#ifndef VISION_GATEWAY_TESTS_TESTING_HEALTH_CHECK_H_
#define VISION_GATEWAY_TESTS_TESTING_HEALTH_CHECK_H_

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace vision_gateway::testing {

// grpc.health.v1.Health/Check for `service` over a generic stub: 1 SERVING, 2 NOT_SERVING,
// -1 when the call itself failed.
inline int HealthStatus(const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
  // HealthCheckRequest{service: ...}: field 1, length-delimited.
  std::string encoded = std::string(1, '\x0a') + static_cast<char>(service.size()) + service;
  grpc::Slice slice(encoded);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response_buffer;
  grpc::GenericStub generic(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  absl::Notification done;
  grpc::Status status;
  generic.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                    &request_buffer, &response_buffer, [&](grpc::Status s) {
                      status = s;
                      done.Notify();
                    });
  if (!done.WaitForNotificationWithTimeout(absl::Seconds(10)) || !status.ok()) return -1;
  std::vector<grpc::Slice> slices;
  if (!response_buffer.Dump(&slices).ok()) return -1;
  std::string body;
  for (auto& s : slices) body.append(reinterpret_cast<const char*>(s.begin()), s.size());
  // HealthCheckResponse{status: N} is "\x08" N.
  return body.size() == 2 && body[0] == '\x08' ? body[1] : -1;
}

}  // namespace vision_gateway::testing

#endif  // VISION_GATEWAY_TESTS_TESTING_HEALTH_CHECK_H_
