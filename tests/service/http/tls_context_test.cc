// The client's TLS policy on its own: a context made by ConfigureClientTlsContext and a stream
// prepared by PrepareTlsStream, handshaking over loopback with a server using test certificates.
#include "service/http/tls_context_internal.h"

#include <openssl/ssl.h>

#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/http/url_target.h"
#include "tests/service/http/test_certs.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::http::internal {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using ::testing::HasSubstr;
using ::vision_gateway::http::testing::PemIdentity;
using ::vision_gateway::http::testing::TestCa;
using ::vision_gateway::testing::IsOk;
using ::vision_gateway::testing::StatusIs;

struct HandshakeResult {
  boost::system::error_code client;
  std::string client_message;  // DescribeTlsFailure when the client failed
  std::optional<std::string> server_saw_sni;
};

// One handshake on loopback: a server presenting `server_identity`, a client whose context
// trusts `ca_file` (empty: the system store) and whose stream is prepared for `url`.
HandshakeResult Handshake(const PemIdentity& server_identity, const std::string& ca_file,
                          const std::string& url) {
  HandshakeResult result;
  net::io_context ioc;
  ssl::context server_ctx(ssl::context::tls_server);
  server_ctx.use_certificate_chain(net::buffer(server_identity.cert_pem));
  server_ctx.use_private_key(net::buffer(server_identity.key_pem), ssl::context::pem);
  ssl::context client_ctx(ssl::context::tls_client);
  const absl::Status configured = ConfigureClientTlsContext(client_ctx, ca_file);
  EXPECT_THAT(configured, IsOk());
  if (!configured.ok()) return result;

  tcp::acceptor acceptor(ioc, tcp::endpoint(net::ip::address_v4::loopback(), 0));
  auto target = ParseTarget(url);
  EXPECT_THAT(target, IsOk());
  if (!target.ok()) return result;

  TlsStream client(ioc, client_ctx);
  client.next_layer().connect(acceptor.local_endpoint());
  tcp::socket accepted(ioc);
  acceptor.accept(accepted);
  ssl::stream<tcp::socket> server(std::move(accepted), server_ctx);
  EXPECT_THAT(PrepareTlsStream(client, *target), IsOk());

  client.async_handshake(ssl::stream_base::client, [&](boost::system::error_code ec) {
    result.client = ec;
    // The server may still wait for the client's last flight: end it either way.
    if (ec) {
      result.client_message = DescribeTlsFailure(client, target->authority, ec);
      client.next_layer().close();
    }
  });
  server.async_handshake(ssl::stream_base::server, [&](boost::system::error_code ec) {
    if (!ec) {
      const char* sni = SSL_get_servername(server.native_handle(), TLSEXT_NAMETYPE_host_name);
      if (sni != nullptr) result.server_saw_sni = sni;
    }
  });
  ioc.run_for(std::chrono::seconds(10));
  return result;
}

class HttpTlsContextTest : public ::testing::Test {
 protected:
  TestCa ca_{"tls-context-test CA"};
  std::string ca_file_ = ca_.WriteCertFile("ca.pem");
};

TEST_F(HttpTlsContextTest, TrustedCertificateForTheNameSucceedsAndSendsSni) {
  HandshakeResult r = Handshake(ca_.IssueServerCert({"localhost"}, {}), ca_file_,
                                "https://localhost/");
  EXPECT_FALSE(r.client) << r.client_message;
  EXPECT_EQ(r.server_saw_sni, "localhost");
}

TEST_F(HttpTlsContextTest, TrustedCertificateForTheAddressSucceedsWithoutSni) {
  HandshakeResult r = Handshake(ca_.IssueServerCert({}, {"127.0.0.1"}), ca_file_,
                                "https://127.0.0.1/");
  EXPECT_FALSE(r.client) << r.client_message;
  EXPECT_EQ(r.server_saw_sni, std::nullopt);  // no SNI for an address (RFC 6066)
}

TEST_F(HttpTlsContextTest, CertificateForAnotherNameIsRefusedAsAHostNameMismatch) {
  HandshakeResult r = Handshake(ca_.IssueServerCert({"other.example"}, {"127.0.0.1"}), ca_file_,
                                "https://localhost/");
  EXPECT_TRUE(r.client);
  EXPECT_THAT(r.client_message, HasSubstr("hostname mismatch"));
  EXPECT_THAT(r.client_message, HasSubstr("TLS handshake with localhost:443 failed"));
}

TEST_F(HttpTlsContextTest, CertificateFromAnUntrustedCaIsRefused) {
  TestCa stranger("another CA");
  HandshakeResult r = Handshake(stranger.IssueServerCert({"localhost"}, {}), ca_file_,
                                "https://localhost/");
  EXPECT_TRUE(r.client);
  EXPECT_THAT(r.client_message, HasSubstr("certificate verify failed"));
}

TEST_F(HttpTlsContextTest, SystemTrustStoreRefusesTheTestCa) {
  HandshakeResult r = Handshake(ca_.IssueServerCert({"localhost"}, {}), /*ca_file=*/"",
                                "https://localhost/");
  EXPECT_TRUE(r.client);
  EXPECT_THAT(r.client_message, HasSubstr("certificate verify failed"));
}

TEST(HttpTlsContextConfigTest, MissingCaFileIsInvalidArgument) {
  ssl::context context(ssl::context::tls_client);
  EXPECT_THAT(ConfigureClientTlsContext(context, "/nonexistent/ca.pem"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("/nonexistent/ca.pem")));
}

TEST(HttpTlsContextConfigTest, RequiresTls12AndVerifiesPeers) {
  ssl::context context(ssl::context::tls_client);
  ASSERT_THAT(ConfigureClientTlsContext(context, ""), IsOk());
  EXPECT_EQ(SSL_CTX_get_min_proto_version(context.native_handle()), TLS1_2_VERSION);
  EXPECT_NE(SSL_CTX_get_verify_mode(context.native_handle()) & SSL_VERIFY_PEER, 0);
}

}  // namespace
}  // namespace vision_gateway::http::internal
