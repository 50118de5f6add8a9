// The last look at every error before it reaches a caller: nothing about the gateway's upstream
// (host names, addresses, ports, Gemini project numbers), no resolver or TLS library text and no
// piece of the API key. What is removed is logged on the server, with the original text.
//
// - Messages: the upstream hosts the filter was told about, IP addresses, host:port pairs, host
//   names under common public and cluster suffixes, "projects/<number>" and other long digit runs,
//   and the secrets (or any 6-character piece of one, as service/common/secret_redaction.h hides
//   them) are replaced by placeholders ("[host]", "[address]", "[number]", "[redacted]"). A
//   message that still reads like resolver or TLS library output is replaced as a whole by a
//   fixed sentence for its code.
// - Details: RetryInfo is kept as is; QuotaFailure, BadRequest and LocalizedMessage keep their
//   structure with their text filtered; ErrorInfo keeps its reason and domain and only metadata
//   keys on an allowlist (quota and model names, the gateway's own keys), values filtered; Help
//   keeps only https links to a documentation host (LeakFilterOptions::documentation_hosts,
//   ai.google.dev), without query or fragment; every other detail type (DebugInfo, ...) is
//   dropped. Kept details are rebuilt from the fields named here, so nothing unread passes.
#ifndef VISION_GATEWAY_SERVICE_SERVER_LEAK_FILTER_H_
#define VISION_GATEWAY_SERVICE_SERVER_LEAK_FILTER_H_

#include <functional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"

namespace vision_gateway::server {

struct LeakFilterOptions {
  // Never shown, nor any 6-character piece of them.
  std::vector<std::string> secrets;
  // Asked for the current secret on every filtered error (the Gemini API key, which may be
  // re-read from its file while the server runs). Optional.
  std::function<std::string()> secret_source;
  // Host names the gateway talks to (from --gemini_base_url), shown as "[host]".
  std::vector<std::string> upstream_hosts;
  // Hosts whose https links a Help detail may show callers (Gemini's public documentation), with
  // the query and fragment dropped; links to any other host (the Cloud console, which names the
  // project) are dropped.
  std::vector<std::string> documentation_hosts = {"ai.google.dev"};
};

// The host of an upstream base URL ("https://host:port/path" → "host", "http://[::1]:80" →
// "::1"); empty when it names none. What main.cc passes as LeakFilterOptions::upstream_hosts.
std::string UpstreamHostOf(absl::string_view base_url);

// Sets what the process-wide filter hides (main.cc, at start-up, before serving). Tests may call
// it again.
void ConfigureLeakFilter(LeakFilterOptions options);

// `text` with everything the filter hides replaced.
std::string FilterText(absl::string_view text);

// The caller's copy of `status` (same code), filtered as described above. OK stays OK.
absl::Status FilterForCaller(const absl::Status& status);

}  // namespace vision_gateway::server

#endif  // VISION_GATEWAY_SERVICE_SERVER_LEAK_FILTER_H_
