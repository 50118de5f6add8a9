// Internal to service/http (includes Asio/OpenSSL; never include it outside service/http): the
// client's TLS policy. One context per client (TLS 1.2 or newer, peer verification against the
// configured CA file or the system store); per connection, SNI for host names and a host name
// check on the peer's certificate.
#ifndef VISION_GATEWAY_SERVICE_HTTP_TLS_CONTEXT_INTERNAL_H_
#define VISION_GATEWAY_SERVICE_HTTP_TLS_CONTEXT_INTERNAL_H_

#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/system/error_code.hpp>

#include "absl/status/status.h"
#include "service/http/url_target.h"

namespace vision_gateway::http::internal {

using TlsStream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;

// Configures `context` (made as ssl::context::tls_client) for the client: TLS 1.2 or newer, no
// compression, verify_peer, trusting the CAs of the PEM file `ca_file` (empty: the system trust
// store). INVALID_ARGUMENT when the CA file cannot be loaded, FAILED_PRECONDITION when the
// system store cannot, INTERNAL when OpenSSL refuses a setting.
absl::Status ConfigureClientTlsContext(boost::asio::ssl::context& context,
                                       const std::string& ca_file);

// Prepares one connection's stream for its handshake with `target`: SNI (host names only, not
// addresses), verify_peer, and a check that the certificate names target.host; a mismatch fails
// the handshake with X509_V_ERR_HOSTNAME_MISMATCH as the verify result. INTERNAL on failure.
absl::Status PrepareTlsStream(TlsStream& stream, const Target& target);

// The message for a failed handshake with `authority`: `ec`'s text and, when the peer's
// certificate was refused, why (the verify result).
std::string DescribeTlsFailure(TlsStream& stream, const std::string& authority,
                               const boost::system::error_code& ec);

}  // namespace vision_gateway::http::internal

#endif  // VISION_GATEWAY_SERVICE_HTTP_TLS_CONTEXT_INTERNAL_H_
