// Internal to service/http: one HTTP request/response exchange, the state machine behind
// HttpClient::Stream (wait for a connection slot, resolve, connect, TLS handshake, write the
// request, read the head, read the body, hand the connection back). No Boost types here.
#ifndef VISION_GATEWAY_SERVICE_HTTP_HTTP_EXCHANGE_H_
#define VISION_GATEWAY_SERVICE_HTTP_HTTP_EXCHANGE_H_

#include <memory>

#include "service/http/http_client.h"

namespace vision_gateway::http::internal {

struct Runtime;

// Starts `request` on `runtime` (HttpClient::Stream's contract, http_client.h): every step runs
// on the call's own strand, and `handler` is never called inline from here.
std::shared_ptr<Call> StartExchange(std::shared_ptr<Runtime> runtime, Request request,
                                    StreamHandler handler);

}  // namespace vision_gateway::http::internal

#endif  // VISION_GATEWAY_SERVICE_HTTP_HTTP_EXCHANGE_H_
