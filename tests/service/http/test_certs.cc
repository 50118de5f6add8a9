#include "tests/service/http/test_certs.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace vision_gateway::http::testing {
namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "test_certs: OpenSSL failure: %s\n", what);
  std::abort();
}

void Check(bool ok, const char* what) {
  if (!ok) Die(what);
}

EVP_PKEY* NewKey() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  Check(key != nullptr, "EVP_EC_gen");
  return key;
}

std::string KeyPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  Check(bio != nullptr, "BIO_new");
  Check(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(size));
  BIO_free(bio);
  return pem;
}

std::string CertPem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  Check(bio != nullptr, "BIO_new");
  Check(PEM_write_bio_X509(bio, cert) == 1, "PEM_write_bio_X509");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(size));
  BIO_free(bio);
  return pem;
}

void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  Check(ext != nullptr, "X509V3_EXT_conf_nid");
  Check(X509_add_ext(cert, ext, -1) == 1, "X509_add_ext");
  X509_EXTENSION_free(ext);
}

// A certificate for `subject_key` named `common_name`, valid from an hour ago for a day, not yet
// signed; the issuer name is set by the caller.
X509* NewCert(EVP_PKEY* subject_key, const std::string& common_name) {
  static std::atomic<long> serial{1};
  X509* cert = X509_new();
  Check(cert != nullptr, "X509_new");
  Check(X509_set_version(cert, 2) == 1, "X509_set_version");
  Check(ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++) == 1, "serial");
  Check(X509_gmtime_adj(X509_getm_notBefore(cert), -3600) != nullptr, "notBefore");
  Check(X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600) != nullptr, "notAfter");
  Check(X509_set_pubkey(cert, subject_key) == 1, "X509_set_pubkey");
  X509_NAME* name = X509_get_subject_name(cert);
  Check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                   -1, 0) == 1,
        "CN");
  return cert;
}

}  // namespace

struct TestCa::Impl {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  ~Impl() {
    X509_free(cert);
    EVP_PKEY_free(key);
  }
};

TestCa::TestCa(const std::string& common_name) : impl_(std::make_unique<Impl>()) {
  impl_->key = NewKey();
  impl_->cert = NewCert(impl_->key, common_name);
  Check(X509_set_issuer_name(impl_->cert, X509_get_subject_name(impl_->cert)) == 1, "issuer");
  AddExtension(impl_->cert, impl_->cert, NID_basic_constraints, "critical,CA:TRUE");
  AddExtension(impl_->cert, impl_->cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExtension(impl_->cert, impl_->cert, NID_subject_key_identifier, "hash");
  Check(X509_sign(impl_->cert, impl_->key, EVP_sha256()) > 0, "X509_sign");
  identity_.cert_pem = CertPem(impl_->cert);
  identity_.key_pem = KeyPem(impl_->key);
}

TestCa::~TestCa() = default;

PemIdentity TestCa::IssueServerCert(const std::vector<std::string>& dns_names,
                                    const std::vector<std::string>& ip_addresses) const {
  EVP_PKEY* key = NewKey();
  X509* cert = NewCert(key, dns_names.empty() ? "test server" : dns_names.front());
  Check(X509_set_issuer_name(cert, X509_get_subject_name(impl_->cert)) == 1, "issuer");
  std::vector<std::string> alt_names;
  for (const auto& dns : dns_names) alt_names.push_back(absl::StrCat("DNS:", dns));
  for (const auto& ip : ip_addresses) alt_names.push_back(absl::StrCat("IP:", ip));
  AddExtension(cert, impl_->cert, NID_basic_constraints, "critical,CA:FALSE");
  AddExtension(cert, impl_->cert, NID_key_usage, "critical,digitalSignature");
  AddExtension(cert, impl_->cert, NID_ext_key_usage, "serverAuth");
  AddExtension(cert, impl_->cert, NID_authority_key_identifier, "keyid:always");
  if (!alt_names.empty()) {
    AddExtension(cert, impl_->cert, NID_subject_alt_name, absl::StrJoin(alt_names, ","));
  }
  Check(X509_sign(cert, impl_->key, EVP_sha256()) > 0, "X509_sign");
  PemIdentity identity{CertPem(cert), KeyPem(key)};
  X509_free(cert);
  EVP_PKEY_free(key);
  return identity;
}

PemIdentity TestCa::IssueClientCert(const std::string& common_name) const {
  EVP_PKEY* key = NewKey();
  X509* cert = NewCert(key, common_name);
  Check(X509_set_issuer_name(cert, X509_get_subject_name(impl_->cert)) == 1, "issuer");
  AddExtension(cert, impl_->cert, NID_basic_constraints, "critical,CA:FALSE");
  AddExtension(cert, impl_->cert, NID_key_usage, "critical,digitalSignature");
  AddExtension(cert, impl_->cert, NID_ext_key_usage, "clientAuth");
  AddExtension(cert, impl_->cert, NID_authority_key_identifier, "keyid:always");
  AddExtension(cert, impl_->cert, NID_subject_alt_name, absl::StrCat("DNS:", common_name));
  Check(X509_sign(cert, impl_->key, EVP_sha256()) > 0, "X509_sign");
  PemIdentity identity{CertPem(cert), KeyPem(key)};
  X509_free(cert);
  EVP_PKEY_free(key);
  return identity;
}

std::string TestCa::WriteCertFile(const std::string& file_name) const {
  // Unique per process and call: ctest may run several test processes at once.
  static std::atomic<int> counter{0};
  const std::string path =
      absl::StrCat(::testing::TempDir(), getpid(), "_", counter++, "_", file_name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << identity_.cert_pem;
  out.close();
  Check(out.good(), "writing the CA file");
  return path;
}

}  // namespace vision_gateway::http::testing
