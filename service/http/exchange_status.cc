#include "service/http/exchange_status_internal.h"

#include <string>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/http/error.hpp>

#include "absl/strings/str_cat.h"
#include "service/common/error_reasons.h"
#include "service/common/status_details.h"

namespace vision_gateway::http::internal {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace bhttp = boost::beast::http;

const char* PhaseName(Phase phase) {
  switch (phase) {
    case Phase::kWaitConnection:
      return "waiting for a free connection to";
    case Phase::kResolve:
      return "resolving";
    case Phase::kConnect:
      return "connecting to";
    case Phase::kHandshake:
      return "TLS handshake with";
    case Phase::kWrite:
      return "sending the request to";
    case Phase::kWaitBody:
      return "waiting for the rest of the request body for";
    case Phase::kReadHeader:
      return "reading the response header from";
    case Phase::kReadBody:
      return "reading the response body from";
    case Phase::kWaitReader:
      return "waiting for the reader of the response body from";
  }
  return "talking to";
}

absl::Status TimeoutStatus(const Failure& failure) {
  const std::string& authority = failure.target.authority;
  if (failure.deadline_passed) {
    return WithOutcome(absl::DeadlineExceededError(absl::StrCat(
                           "deadline exceeded while ", PhaseName(failure.phase), " ", authority)),
                       reasons::kUpstreamTimeout);
  }
  return WithOutcome(
      absl::DeadlineExceededError(absl::StrCat("timed out after ",
                                               failure.default_phase_timeout.count(),
                                               " ms while ", PhaseName(failure.phase), " ",
                                               authority)),
      reasons::kUpstreamTimeout);
}

absl::Status ErrorStatus(const Failure& failure, const boost::system::error_code& ec) {
  const std::string& authority = failure.target.authority;
  const Phase phase = failure.phase;
  if (ec == bhttp::error::body_limit) {
    return WithOutcome(absl::ResourceExhaustedError(absl::StrCat(
                           "response body from ", authority, " exceeds ",
                           failure.max_response_body_bytes, " bytes")),
                       reasons::kUpstreamResponseTooLarge);
  }
  if (ec == bhttp::error::header_limit) {
    return WithOutcome(absl::ResourceExhaustedError(absl::StrCat(
                           "response header from ", authority, " exceeds ",
                           failure.max_response_header_bytes, " bytes")),
                       reasons::kUpstreamResponseTooLarge);
  }
  if (phase == Phase::kHandshake && failure.tls != nullptr &&
      ec.category() == net::error::get_ssl_category()) {
    return WithOutcome(absl::UnavailableError(DescribeTlsFailure(*failure.tls, authority, ec)),
                       reasons::kUpstreamTls);
  }
  if (phase == Phase::kResolve) {
    return WithOutcome(absl::UnavailableError(absl::StrCat("cannot resolve ", failure.target.host,
                                                           ": ", ec.message())),
                       reasons::kUpstreamUnreachable);
  }
  if (phase == Phase::kConnect) {
    return WithOutcome(absl::UnavailableError(
                           absl::StrCat("cannot connect to ", authority, ": ", ec.message())),
                       reasons::kUpstreamUnreachable);
  }
  if (ec.category() == bhttp::make_error_code(bhttp::error::bad_version).category() &&
      ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
    return WithOutcome(absl::UnavailableError(absl::StrCat("malformed HTTP response from ",
                                                           authority, ": ", ec.message())),
                       reasons::kUpstreamBadResponse);
  }
  const char* outcome = failure.response_started ? reasons::kUpstreamConnectionLost
                                                 : reasons::kUpstreamUnreachable;
  const std::string where = absl::StrCat(PhaseName(phase), " ", authority);
  if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
      ec == net::error::eof || ec == ssl::error::stream_truncated) {
    return WithOutcome(absl::UnavailableError(absl::StrCat(
                           "connection closed while ", where, " before the response ended")),
                       outcome);
  }
  return WithOutcome(
      absl::UnavailableError(absl::StrCat("error while ", where, ": ", ec.message())), outcome);
}

}  // namespace vision_gateway::http::internal
