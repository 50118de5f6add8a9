#include "service/server/leak_filter.h"

#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "google/rpc/error_details.pb.h"
#include "service/common/log.h"
#include "service/common/secret_redaction.h"
#include "service/common/status_details.h"

namespace vision_gateway::server {
namespace {

// Longest text filtered (longer text is cut first; upstream text is bounded already).
constexpr std::size_t kMaxFilteredBytes = 4096;

// Metadata keys of a foreign (Gemini's) ErrorInfo that callers may see. Gemini sends e.g.
// {"service": "generativelanguage.googleapis.com", "consumer": "projects/123..."}: neither is here.
const std::set<std::string>& AllowedUpstreamMetadataKeys() {
  static const auto* keys = new std::set<std::string>{
      "model", "location", "quota_metric", "quota_id", "quota_limit", "quota_limit_value",
      "quota_location", "quota_unit", "reason", "method"};
  return *keys;
}

// Text that resolver, socket or TLS libraries produce; a message still holding any of it after
// filtering is replaced as a whole.
constexpr const char* kLibraryMarkers[] = {
    "ssl routines",      "ssl3_",           "tls_process",       "certificate verify failed",
    "unable to get local issuer", "self-signed certificate", "self signed certificate",
    "wrong version number", "handshake",   "getaddrinfo",       "name or service not known",
    "host not found",    "name resolution", "cannot resolve",    "connection refused",
    "connection reset",  "network is unreachable", "no route to host", "broken pipe",
    "(ssl",              "asio.",           "beast.",            "x509"};

struct Rule {
  std::regex pattern;
  std::string replacement;
};

const std::vector<Rule>& Rules() {
  static const auto* rules = new std::vector<Rule>([] {
    const auto flags = std::regex::ECMAScript | std::regex::icase | std::regex::optimize;
    std::vector<Rule> r;
    // Credentials that look like Google API keys.
    r.push_back({std::regex(R"(AIza[0-9A-Za-z_\-]{10,})", flags), "[redacted]"});
    // Project numbers and ids.
    r.push_back({std::regex(R"(projects/[0-9A-Za-z_\-]+)", flags), "projects/[number]"});
    r.push_back({std::regex(R"((project[ _\-]?(number|id)?['"]?\s*[:= ]\s*['"]?)[0-9]{4,})", flags),
                 "$1[number]"});
    r.push_back({std::regex(R"((project[ _\-]?(number|id)?['"]?\s*[:=]\s*['"]?)[a-z][a-z0-9\-]{4,})",
                            flags),
                 "$1[id]"});
    // Addresses: [v6]:port, v4:port, host names under public or cluster suffixes, host:port.
    r.push_back({std::regex(R"(\[[0-9a-f:.]*:[0-9a-f:.]*\](:[0-9]{1,5})?)", flags), "[address]"});
    r.push_back({std::regex(R"(\b[0-9]{1,3}(\.[0-9]{1,3}){3}(:[0-9]{1,5})?\b)", flags),
                 "[address]"});
    r.push_back({std::regex(R"(\b([a-z0-9\-]+\.)+(com|net|org|io|dev|app|cloud|goog|google|)"
                            R"(internal|local|localdomain|svc|lan|corp|intranet)\b(:[0-9]{1,5})?)",
                            flags),
                 "[host]"});
    r.push_back({std::regex(R"(\blocalhost(:[0-9]{1,5})?\b)", flags), "[host]"});
    r.push_back({std::regex(R"(\b[a-z][a-z0-9\-]*(\.[a-z0-9\-]+)*:[0-9]{2,5}\b)", flags),
                 "[address]"});
    // A port left after a host replaced above ("[host]:8443").
    r.push_back({std::regex(R"(\[(host|address)\]:[0-9]{1,5})", flags), "[$1]"});
    // Other long numbers (project numbers are 12 digits).
    r.push_back({std::regex(R"([0-9]{10,})", flags), "[number]"});
    return r;
  }());
  return *rules;
}

struct FilterState {
  absl::Mutex mu;
  std::shared_ptr<const LeakFilterOptions> options ABSL_GUARDED_BY(mu) =
      std::make_shared<const LeakFilterOptions>();
};

FilterState& State() {
  static auto* state = new FilterState;
  return *state;
}

std::shared_ptr<const LeakFilterOptions> CurrentOptions() {
  FilterState& state = State();
  absl::MutexLock lock(&state.mu);
  return state.options;
}

// Replaces every case-insensitive occurrence of `needle` in `text`.
void ReplaceIgnoringCase(std::string& text, const std::string& needle, const std::string& with) {
  if (needle.empty()) return;
  const std::string lower_needle = absl::AsciiStrToLower(needle);
  std::string lower = absl::AsciiStrToLower(text);
  std::size_t at = 0;
  while ((at = lower.find(lower_needle, at)) != std::string::npos) {
    text.replace(at, needle.size(), with);
    lower.replace(at, needle.size(), with);
    at += with.size();
  }
}

bool HasLibraryText(const std::string& text) {
  const std::string lower = absl::AsciiStrToLower(text);
  for (const char* marker : kLibraryMarkers) {
    if (lower.find(marker) != std::string::npos) return true;
  }
  return false;
}

std::string FixedMessage(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
      return "Gemini could not be reached; retry later (details are in the gateway's log)";
    case absl::StatusCode::kDeadlineExceeded:
      return "Gemini did not answer in time (details are in the gateway's log)";
    default:
      return "the gateway could not talk to Gemini (details are in the gateway's log)";
  }
}

std::string HideSecrets(std::string text, const LeakFilterOptions& options) {
  for (const std::string& secret : options.secrets) HideSecret(text, secret);
  if (options.secret_source) HideSecret(text, options.secret_source());
  return text;
}

std::string Filter(absl::string_view input, const LeakFilterOptions& options) {
  std::string text = HideSecrets(std::string(input.substr(0, kMaxFilteredBytes)), options);
  for (const std::string& host : options.upstream_hosts) ReplaceIgnoringCase(text, host, "[host]");
  for (const Rule& rule : Rules()) {
    if (text.empty()) break;
    text = std::regex_replace(text, rule.pattern, rule.replacement);
  }
  return text;
}

// Whether `host` (lower case, no port) is one of the documentation hosts Help links may name.
bool IsDocumentationHost(absl::string_view host, const LeakFilterOptions& options) {
  for (const std::string& allowed : options.documentation_hosts) {
    if (host == absl::AsciiStrToLower(allowed)) return true;
  }
  return false;
}

// The caller's copy of a Help link: "https://<documentation host><path>" with the query and the
// fragment dropped, when the link names a documentation host (no port, no user) and its path
// passes the text filter unchanged (no project number or id, no other host, no piece of a
// secret); nullopt otherwise (the link is dropped).
std::optional<std::string> DocumentationLink(absl::string_view url,
                                             const LeakFilterOptions& options) {
  constexpr absl::string_view kScheme = "https://";
  if (url.size() < kScheme.size() ||
      absl::AsciiStrToLower(url.substr(0, kScheme.size())) != kScheme) {
    return std::nullopt;
  }
  url.remove_prefix(kScheme.size());
  url = url.substr(0, url.find_first_of("?#"));
  const std::size_t slash = url.find('/');
  const std::string host = absl::AsciiStrToLower(url.substr(0, slash));
  const std::string path(slash == absl::string_view::npos ? "/" : url.substr(slash));
  if (!IsDocumentationHost(host, options)) return std::nullopt;
  if (Filter(path, options) != path) return std::nullopt;
  return absl::StrCat(kScheme, host, path);
}

template <typename Message>
bool Take(const absl::Cord& payload, Message& message) {
  return message.ParseFromString(std::string(payload));
}

}  // namespace

std::string UpstreamHostOf(absl::string_view base_url) {
  absl::string_view host = base_url;
  if (const auto scheme = host.find("://"); scheme != absl::string_view::npos) {
    host.remove_prefix(scheme + 3);
  }
  host = host.substr(0, host.find('/'));
  if (!host.empty() && host.front() == '[') {
    const std::size_t close = host.find(']');
    host = host.substr(1, close == absl::string_view::npos ? host.npos : close - 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  return std::string(host);
}

void ConfigureLeakFilter(LeakFilterOptions options) {
  FilterState& state = State();
  auto shared = std::make_shared<const LeakFilterOptions>(std::move(options));
  absl::MutexLock lock(&state.mu);
  state.options = std::move(shared);
}

std::string FilterText(absl::string_view text) { return Filter(text, *CurrentOptions()); }

absl::Status FilterForCaller(const absl::Status& status) {
  if (status.ok()) return status;
  const std::shared_ptr<const LeakFilterOptions> options = CurrentOptions();
  auto filter = [&](const std::string& text) { return Filter(text, *options); };

  std::string message = filter(std::string(status.message()));
  if (HasLibraryText(message)) message = FixedMessage(status.code());
  absl::Status out(status.code(), message);
  bool changed = message != status.message();
  // A detail's text, filtered as the message is; a change is logged below.
  auto keep = [&](const std::string& text) {
    std::string filtered = filter(text);
    changed = changed || filtered != text;
    return filtered;
  };

  status.ForEachPayload([&](absl::string_view type_url, const absl::Cord& payload) {
    if (!absl::StartsWith(type_url, kTypeUrlPrefix)) {
      out.SetPayload(type_url, payload);  // private payloads never reach callers anyway
      return;
    }
    const absl::string_view type = type_url.substr(absl::string_view(kTypeUrlPrefix).size());
    if (type == "google.rpc.RetryInfo") {
      google::rpc::RetryInfo retry;
      if (!Take(payload, retry)) return;
      google::rpc::RetryInfo kept;
      kept.mutable_retry_delay()->set_seconds(retry.retry_delay().seconds());
      kept.mutable_retry_delay()->set_nanos(retry.retry_delay().nanos());
      AddDetail(out, kept);
    } else if (type == "google.rpc.ErrorInfo") {
      google::rpc::ErrorInfo info;
      if (!Take(payload, info)) return;
      google::rpc::ErrorInfo kept;
      kept.set_reason(keep(info.reason()));
      const bool ours = info.domain() == "vision-gateway";
      kept.set_domain(ours ? info.domain() : keep(info.domain()));
      for (const auto& [key, value] : info.metadata()) {
        if (!ours && AllowedUpstreamMetadataKeys().count(key) == 0) {
          changed = true;
          continue;
        }
        (*kept.mutable_metadata())[key] = keep(value);
      }
      AddDetail(out, kept);
    } else if (type == "google.rpc.QuotaFailure") {
      google::rpc::QuotaFailure quota;
      if (!Take(payload, quota)) return;
      // Rebuilt from the fields named here: nothing unread (unknown fields) passes.
      google::rpc::QuotaFailure kept;
      for (const auto& v : quota.violations()) {
        auto* out_violation = kept.add_violations();
        out_violation->set_subject(keep(v.subject()));
        out_violation->set_description(keep(v.description()));
      }
      AddDetail(out, kept);
    } else if (type == "google.rpc.BadRequest") {
      google::rpc::BadRequest bad;
      if (!Take(payload, bad)) return;
      google::rpc::BadRequest kept;
      for (const auto& v : bad.field_violations()) {
        auto* out_violation = kept.add_field_violations();
        out_violation->set_field(keep(v.field()));
        out_violation->set_description(keep(v.description()));
      }
      AddDetail(out, kept);
    } else if (type == "google.rpc.LocalizedMessage") {
      google::rpc::LocalizedMessage localized;
      if (!Take(payload, localized)) return;
      google::rpc::LocalizedMessage kept;
      std::string text = keep(localized.message());
      if (HasLibraryText(text)) text = message;
      kept.set_message(text);
      kept.set_locale(keep(localized.locale()));
      AddDetail(out, kept);
    } else if (type == "google.rpc.Help") {
      google::rpc::Help help;
      if (!Take(payload, help)) return;
      google::rpc::Help kept;
      for (const auto& link : help.links()) {
        std::optional<std::string> url = DocumentationLink(link.url(), *options);
        changed = changed || url != link.url();
        if (!url) continue;
        auto* l = kept.add_links();
        l->set_url(*std::move(url));
        l->set_description(keep(link.description()));
      }
      if (kept.links_size() > 0) AddDetail(out, kept);
    } else {
      changed = true;  // DebugInfo and anything unknown: server log only
    }
  });
  if (changed) {
    // The log may show hosts and numbers, never the secrets.
    LogWarning("error filtered for the caller; original: %s",
               HideSecrets(status.ToString(), *options));
  }
  return out;
}

}  // namespace vision_gateway::server
