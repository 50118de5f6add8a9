#include "service/http/url_target.h"

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace vision_gateway::http::internal {
namespace {

namespace urls = boost::urls;

bool IsTokenChar(char c) {
  if (absl::ascii_isalnum(static_cast<unsigned char>(c))) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsValidHostName(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') {
      return false;
    }
  }
  return true;
}

}  // namespace

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

bool IsValidHeaderValue(std::string_view s) {
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

bool IsReservedHeader(std::string_view name) {
  const absl::string_view n(name.data(), name.size());
  return absl::EqualsIgnoreCase(n, "host") || absl::EqualsIgnoreCase(n, "content-length") ||
         absl::EqualsIgnoreCase(n, "transfer-encoding") || absl::EqualsIgnoreCase(n, "connection");
}

absl::StatusOr<Target> ParseTarget(std::string_view url) {
  // The URL is not echoed in errors: its query may hold a key.
  auto parsed = urls::parse_uri(urls::string_view(url.data(), url.size()));
  if (!parsed) {
    return absl::InvalidArgumentError(absl::StrCat("malformed URL: ", parsed.error().message()));
  }
  const urls::url_view& u = *parsed;
  Target t;
  if (u.scheme_id() == urls::scheme::https) {
    t.tls = true;
  } else if (u.scheme_id() != urls::scheme::http) {
    return absl::InvalidArgumentError("URL scheme must be http or https");
  }
  if (!u.has_authority()) return absl::InvalidArgumentError("URL has no host");
  if (u.has_userinfo()) return absl::InvalidArgumentError("URLs with user info are not supported");

  bool loopback = false;
  bool ipv6 = false;
  switch (u.host_type()) {
    case urls::host_type::ipv4:
      t.host = std::string(u.encoded_host_address());
      loopback = (u.host_ipv4_address().to_uint() >> 24) == 127;
      break;
    case urls::host_type::ipv6:
      t.host = std::string(u.encoded_host_address());
      loopback = u.host_ipv6_address().is_loopback();
      ipv6 = true;
      break;
    case urls::host_type::name:
      t.host = absl::AsciiStrToLower(u.host_name());
      if (!IsValidHostName(t.host)) return absl::InvalidArgumentError("URL has an invalid host name");
      t.host_is_name = true;
      loopback = t.host == "localhost";
      break;
    default:
      return absl::InvalidArgumentError("URL has no usable host");
  }
  if (!t.tls && !loopback) {
    return absl::InvalidArgumentError(absl::StrCat(
        "http:// is only allowed to loopback hosts; use https:// for ", t.host));
  }

  const std::uint16_t default_port = t.tls ? 443 : 80;
  t.port = default_port;
  if (u.has_port() && !u.port().empty()) {
    t.port = u.port_number();
    if (t.port == 0) return absl::InvalidArgumentError("URL has an invalid port");
  }

  const std::string bracketed = ipv6 ? absl::StrCat("[", t.host, "]") : t.host;
  t.host_header = t.port == default_port ? bracketed : absl::StrCat(bracketed, ":", t.port);
  t.authority = absl::StrCat(bracketed, ":", t.port);
  t.pool_key = absl::StrCat(t.tls ? "https://" : "http://", t.authority);
  t.target = std::string(u.encoded_path());
  if (t.target.empty()) t.target = "/";
  if (t.target.front() != '/') return absl::InvalidArgumentError("URL path must be absolute");
  if (u.has_query()) absl::StrAppend(&t.target, "?", std::string(u.encoded_query()));
  return t;
}

}  // namespace vision_gateway::http::internal
