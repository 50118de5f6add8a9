// Test-time X.509 material made with the OpenSSL C API: a CA and leaf certificates it signs.
// Nothing is checked in; every run makes fresh keys (P-256, fast).
#ifndef VISION_GATEWAY_TESTS_SERVICE_HTTP_TEST_CERTS_H_
#define VISION_GATEWAY_TESTS_SERVICE_HTTP_TEST_CERTS_H_

#include <memory>
#include <string>
#include <vector>

namespace vision_gateway::http::testing {

// PEM text of a certificate and its private key.
struct PemIdentity {
  std::string cert_pem;
  std::string key_pem;
};

class TestCa {
 public:
  // A self-signed CA certificate with the given common name. Aborts the test binary on OpenSSL
  // failure (tests only).
  explicit TestCa(const std::string& common_name);
  ~TestCa();
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;

  const std::string& cert_pem() const { return identity_.cert_pem; }

  // A server certificate signed by this CA. `dns_names` and `ip_addresses` become its
  // subjectAltName entries (DNS: and IP:).
  PemIdentity IssueServerCert(const std::vector<std::string>& dns_names,
                              const std::vector<std::string>& ip_addresses) const;

  // A client certificate (extendedKeyUsage clientAuth) signed by this CA, named `common_name`
  // (also its one DNS subjectAltName).
  PemIdentity IssueClientCert(const std::string& common_name) const;

  // Writes cert_pem() to a fresh file (unique name ending in `file_name`) under the test temp
  // dir; returns its path.
  std::string WriteCertFile(const std::string& file_name) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  PemIdentity identity_;
};

}  // namespace vision_gateway::http::testing

#endif  // VISION_GATEWAY_TESTS_SERVICE_HTTP_TEST_CERTS_H_
