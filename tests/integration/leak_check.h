// One checker for everything a caller can see of a failed call (issue #11, "nothing leaked"): the
// status message, every google.rpc detail in grpc-status-details-bin (decoded: ErrorInfo reason,
// domain and metadata values, QuotaFailure, Help, BadRequest, ..., and the raw bytes of any other
// type), and every trailing metadata entry. It fails on the upstream's address (host:port, and
// any loopback host name or address), "projects/<digits>" and the project numbers a test
// injected, any 6-character piece of a secret (the API key), and resolver, socket or TLS library
// text.
#ifndef VISION_GATEWAY_TESTS_INTEGRATION_LEAK_CHECK_H_
#define VISION_GATEWAY_TESTS_INTEGRATION_LEAK_CHECK_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace vision_gateway::testing {

inline constexpr std::size_t kLeakSecretPieceBytes = 6;

// What must never reach a caller.
struct LeakCheck {
  // Secrets (the API key the gateway holds): neither whole nor any 6-character piece.
  std::vector<std::string> secrets;
  // The upstream's ports (emulator, TLS test server): "<host>:<port>" for any host, ":<port>".
  std::vector<int> upstream_ports;
  // Further literal text (host names, project numbers a test put in upstream errors).
  std::vector<std::string> literals;
};

// Trailing metadata as the client saw it (ClientContext::GetServerTrailingMetadata()).
inline std::multimap<std::string, std::string> TrailersOf(const grpc::ClientContext& context) {
  std::multimap<std::string, std::string> out;
  for (const auto& [key, value] : context.GetServerTrailingMetadata()) {
    out.emplace(std::string(key.data(), key.size()), std::string(value.data(), value.size()));
  }
  return out;
}

// Everything a caller gets of `status` and `trailers`, as text: the message, each detail decoded
// (its type, then its fields; ErrorInfo metadata one "key=value" per line), the raw detail bytes,
// and each trailer "key: value". Detail type URLs are left out (they name googleapis.com).
inline std::string CallerFacingText(const grpc::Status& status,
                                    const std::multimap<std::string, std::string>& trailers = {}) {
  std::string text = absl::StrCat("message: ", status.error_message(), "\n");
  google::rpc::Status details;
  if (!status.error_details().empty() && details.ParseFromString(status.error_details())) {
    absl::StrAppend(&text, "details message: ", details.message(), "\n");
    for (const auto& any : details.details()) {
      google::rpc::ErrorInfo info;
      google::rpc::QuotaFailure quota;
      google::rpc::Help help;
      google::rpc::BadRequest bad_request;
      google::rpc::LocalizedMessage localized;
      google::rpc::RetryInfo retry;
      google::rpc::DebugInfo debug;
      if (any.UnpackTo(&info)) {
        absl::StrAppend(&text, "ErrorInfo reason=", info.reason(), " domain=", info.domain(), "\n");
        for (const auto& [key, value] : info.metadata()) {
          absl::StrAppend(&text, "  ", key, "=", value, "\n");
        }
      } else if (any.UnpackTo(&quota)) {
        absl::StrAppend(&text, "QuotaFailure ", quota.ShortDebugString(), "\n");
      } else if (any.UnpackTo(&help)) {
        absl::StrAppend(&text, "Help ", help.ShortDebugString(), "\n");
      } else if (any.UnpackTo(&bad_request)) {
        absl::StrAppend(&text, "BadRequest ", bad_request.ShortDebugString(), "\n");
      } else if (any.UnpackTo(&localized)) {
        absl::StrAppend(&text, "LocalizedMessage ", localized.ShortDebugString(), "\n");
      } else if (any.UnpackTo(&retry)) {
        absl::StrAppend(&text, "RetryInfo ", retry.ShortDebugString(), "\n");
      } else if (any.UnpackTo(&debug)) {
        absl::StrAppend(&text, "DebugInfo ", debug.ShortDebugString(), "\n");
      } else {
        absl::StrAppend(&text, "detail bytes: ", any.value(), "\n");
      }
    }
  } else if (!status.error_details().empty()) {
    absl::StrAppend(&text, "undecodable details: ", status.error_details(), "\n");
  }
  for (const auto& [key, value] : trailers) {
    // The details trailer is the serialised google.rpc.Status decoded above, type URLs and all.
    if (key == "grpc-status-details-bin") continue;
    absl::StrAppend(&text, "trailer ", key, ": ", value, "\n");
  }
  return text;
}

// Every leak in `text` (empty: none).
inline std::vector<std::string> FindLeaks(const std::string& text, const LeakCheck& check) {
  std::vector<std::string> leaks;
  const std::string lower = absl::AsciiStrToLower(text);
  auto look_for = [&](const std::string& needle, const std::string& why, bool ignore_case) {
    if (needle.empty()) return;
    const bool found = ignore_case ? lower.find(absl::AsciiStrToLower(needle)) != std::string::npos
                                   : text.find(needle) != std::string::npos;
    if (found) leaks.push_back(absl::StrCat(why, " '", needle, "'"));
  };
  for (const std::string& secret : check.secrets) {
    look_for(secret, "secret", false);
    for (std::size_t i = 0; i + kLeakSecretPieceBytes <= secret.size(); ++i) {
      look_for(secret.substr(i, kLeakSecretPieceBytes), "piece of a secret", false);
    }
  }
  for (const int port : check.upstream_ports) look_for(absl::StrCat(":", port), "upstream port", false);
  for (const std::string& literal : check.literals) look_for(literal, "injected text", true);
  for (const char* host : {"localhost", "127.0.0.1", "[::1]", "::1:", "0.0.0.0"}) {
    look_for(host, "loopback host", true);
  }
  // Resolver, socket and TLS library text (Asio, Beast, OpenSSL, getaddrinfo).
  for (const char* marker :
       {"ssl routines", "ssl3_", "tls_process", "certificate verify failed",
        "unable to get local issuer", "self-signed certificate", "self signed certificate",
        "wrong version number", "sslv3", "tlsv1 alert", "handshake failure", "getaddrinfo",
        "name or service not known", "host not found", "temporary failure in name resolution",
        "connection refused", "connection reset by peer", "no route to host", "broken pipe",
        "end of stream", "stream truncated", "asio.", "beast.", "boost", "openssl", "x509",
        "errno"}) {
    look_for(marker, "library text", true);
  }
  static const std::regex* const kProject = new std::regex(R"(projects/[0-9]+)");
  static const std::regex* const kHostPort =
      new std::regex(R"(\b[0-9]{1,3}(\.[0-9]{1,3}){3}:[0-9]{2,5}\b)");
  std::smatch match;
  if (std::regex_search(text, match, *kProject)) leaks.push_back("project number " + match.str());
  if (std::regex_search(text, match, *kHostPort)) leaks.push_back("address " + match.str());
  return leaks;
}

// Fails the current test (naming `what`) for each leak in what the caller got.
inline void ExpectNoLeaks(const std::string& what, const grpc::Status& status,
                          const std::multimap<std::string, std::string>& trailers,
                          const LeakCheck& check) {
  const std::string text = CallerFacingText(status, trailers);
  for (const std::string& leak : FindLeaks(text, check)) {
    ADD_FAILURE() << what << ": the caller got " << leak << " in:\n" << text;
  }
}

}  // namespace vision_gateway::testing

#endif  // VISION_GATEWAY_TESTS_INTEGRATION_LEAK_CHECK_H_
