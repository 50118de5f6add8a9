#include "service/http/tls_context_internal.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <string>

#include <boost/asio/ssl.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "service/http/url_target.h"

namespace vision_gateway::http::internal {
namespace {

namespace ssl = boost::asio::ssl;
using boost::system::error_code;

// TLS host name check that records *why* it failed, for the error message.
class VerifyHostName {
 public:
  explicit VerifyHostName(const std::string& host) : check_(host) {}

  bool operator()(bool preverified, ssl::verify_context& ctx) const {
    if (!preverified) return false;
    if (check_(preverified, ctx)) return true;
    X509_STORE_CTX_set_error(ctx.native_handle(), X509_V_ERR_HOSTNAME_MISMATCH);
    return false;
  }

 private:
  ssl::host_name_verification check_;
};

}  // namespace

absl::Status ConfigureClientTlsContext(ssl::context& context, const std::string& ca_file) {
  if (SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_2_VERSION) != 1) {
    return absl::InternalError("cannot require TLS 1.2 or newer");
  }
  error_code ec;
  context.set_options(ssl::context::default_workarounds | ssl::context::no_compression, ec);
  if (!ec) context.set_verify_mode(ssl::verify_peer, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot configure TLS: ", ec.message()));
  if (!ca_file.empty()) {
    context.load_verify_file(ca_file, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot load CA file ", ca_file, ": ", ec.message()));
    }
  } else {
    context.set_default_verify_paths(ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot load the system CA store: ", ec.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status PrepareTlsStream(TlsStream& stream, const Target& target) {
  if (target.host_is_name &&
      SSL_set_tlsext_host_name(stream.native_handle(), target.host.c_str()) != 1) {
    return absl::InternalError(absl::StrCat("cannot set TLS SNI for ", target.authority));
  }
  error_code ec;
  stream.set_verify_mode(ssl::verify_peer, ec);
  if (!ec) stream.set_verify_callback(VerifyHostName(target.host), ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot configure TLS verification for ", target.authority));
  }
  return absl::OkStatus();
}

std::string DescribeTlsFailure(TlsStream& stream, const std::string& authority,
                               const error_code& ec) {
  std::string message = absl::StrCat("TLS handshake with ", authority, " failed: ", ec.message());
  const long verify = SSL_get_verify_result(stream.native_handle());
  if (verify != X509_V_OK) absl::StrAppend(&message, ": ", X509_verify_cert_error_string(verify));
  return message;
}

}  // namespace vision_gateway::http::internal
