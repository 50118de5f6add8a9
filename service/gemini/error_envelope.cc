#include "service/gemini/error_envelope.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "boost/json.hpp"
#include "google/rpc/error_details.pb.h"
#include "service/common/error_reasons.h"
#include "service/common/status_details.h"

namespace vision_gateway::gemini {
namespace {

namespace json = boost::json;

// Bounds on what is copied out of an upstream error body.
constexpr std::size_t kMaxDetails = 32;
constexpr std::size_t kMaxRepeated = 32;
constexpr std::size_t kMaxFieldBytes = 1024;

// At most `limit` bytes of `text`, cut back to a UTF-8 boundary, with control characters turned
// into spaces and an ellipsis when something was cut.
std::string Bounded(std::string_view text, std::size_t limit) {
  bool cut = false;
  if (text.size() > limit) {
    std::size_t end = limit;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    text = text.substr(0, end);
    cut = true;
  }
  std::string out;
  out.reserve(text.size() + 3);
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7F) ? ' ' : c;
  }
  if (cut) out += "...";
  return out;
}

// Plain text (not JSON): also replaces bytes that are not printable ASCII with '?', because the
// text may be anything (HTML from a proxy, binary) and is not guaranteed to be UTF-8.
std::string BoundedPlainText(std::string_view text) {
  std::string out = Bounded(text, kMaxErrorMessageBytes);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) >= 0x80) c = '?';
  }
  // Collapse runs of blanks (HTML, pretty-printed text) and trim.
  std::string collapsed;
  collapsed.reserve(out.size());
  for (const char c : out) {
    if (c == ' ' && (collapsed.empty() || collapsed.back() == ' ')) continue;
    collapsed += c;
  }
  while (!collapsed.empty() && collapsed.back() == ' ') collapsed.pop_back();
  return collapsed;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' ||
                        s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

const json::value* Find(const json::object& o, std::string_view camel,
                        std::string_view snake = {}) {
  const json::value* v = o.if_contains(json::string_view(camel.data(), camel.size()));
  if (v == nullptr && !snake.empty()) v = o.if_contains(json::string_view(snake.data(), snake.size()));
  return v;
}

// The bounded string value of o[key]; empty when absent or not a string.
std::string Str(const json::object& o, std::string_view camel, std::string_view snake = {}) {
  const json::value* v = Find(o, camel, snake);
  if (v == nullptr || !v->is_string()) return {};
  const json::string& s = v->get_string();
  return Bounded(std::string_view(s.data(), s.size()), kMaxFieldBytes);
}

const json::array* Arr(const json::object& o, std::string_view camel, std::string_view snake = {}) {
  const json::value* v = Find(o, camel, snake);
  return v != nullptr && v->is_array() ? &v->get_array() : nullptr;
}

std::string_view CodeName(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk: return "OK";
    case absl::StatusCode::kCancelled: return "CANCELLED";
    case absl::StatusCode::kUnknown: return "UNKNOWN";
    case absl::StatusCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case absl::StatusCode::kDeadlineExceeded: return "DEADLINE_EXCEEDED";
    case absl::StatusCode::kNotFound: return "NOT_FOUND";
    case absl::StatusCode::kAlreadyExists: return "ALREADY_EXISTS";
    case absl::StatusCode::kPermissionDenied: return "PERMISSION_DENIED";
    case absl::StatusCode::kResourceExhausted: return "RESOURCE_EXHAUSTED";
    case absl::StatusCode::kFailedPrecondition: return "FAILED_PRECONDITION";
    case absl::StatusCode::kAborted: return "ABORTED";
    case absl::StatusCode::kOutOfRange: return "OUT_OF_RANGE";
    case absl::StatusCode::kUnimplemented: return "UNIMPLEMENTED";
    case absl::StatusCode::kInternal: return "INTERNAL";
    case absl::StatusCode::kUnavailable: return "UNAVAILABLE";
    case absl::StatusCode::kDataLoss: return "DATA_LOSS";
    case absl::StatusCode::kUnauthenticated: return "UNAUTHENTICATED";
    default: return "UNKNOWN";
  }
}

// Collects the known detail types from error.details, merging repeated entries.
class DetailCollector {
 public:
  void Add(const json::object& d) {
    const json::value* type_value = d.if_contains("@type");
    if (type_value == nullptr || !type_value->is_string()) return;
    std::string_view type(type_value->get_string().data(), type_value->get_string().size());
    if (const std::size_t slash = type.rfind('/'); slash != std::string_view::npos) {
      type.remove_prefix(slash + 1);
    }
    if (type == "google.rpc.RetryInfo") {
      AddRetryInfo(d);
    } else if (type == "google.rpc.QuotaFailure") {
      AddQuotaFailure(d);
    } else if (type == "google.rpc.ErrorInfo") {
      AddErrorInfo(d);
    } else if (type == "google.rpc.BadRequest") {
      AddBadRequest(d);
    } else if (type == "google.rpc.Help") {
      AddHelp(d);
    } else if (type == "google.rpc.LocalizedMessage") {
      if (!localized_) {
        localized_.emplace();
        localized_->set_locale(Str(d, "locale"));
        localized_->set_message(Str(d, "message"));
      }
    }
    // DebugInfo and anything else: not forwarded.
  }

  void AttachTo(absl::Status& status) const {
    if (retry_) AddDetail(status, *retry_);
    if (quota_) AddDetail(status, *quota_);
    if (error_info_) AddDetail(status, *error_info_);
    if (bad_request_) AddDetail(status, *bad_request_);
    if (help_) AddDetail(status, *help_);
    if (localized_) AddDetail(status, *localized_);
  }

 private:
  void AddRetryInfo(const json::object& d) {
    if (retry_) return;
    const json::value* v = Find(d, "retryDelay", "retry_delay");
    if (v == nullptr) return;
    int64_t seconds = 0;
    int32_t nanos = 0;
    if (v->is_string()) {
      std::optional<absl::Duration> delay = ParseProtoDuration(
          std::string_view(v->get_string().data(), v->get_string().size()));
      if (!delay) return;
      seconds = absl::IDivDuration(*delay, absl::Seconds(1), &*delay);
      nanos = static_cast<int32_t>(absl::ToInt64Nanoseconds(*delay));
    } else if (v->is_object()) {
      const json::object& o = v->get_object();
      const json::value* s = o.if_contains("seconds");
      const json::value* n = o.if_contains("nanos");
      if (s != nullptr && s->is_int64() && s->get_int64() >= 0) seconds = s->get_int64();
      if (n != nullptr && n->is_int64() && n->get_int64() >= 0 && n->get_int64() < 1000000000) {
        nanos = static_cast<int32_t>(n->get_int64());
      }
    } else {
      return;
    }
    retry_.emplace();
    retry_->mutable_retry_delay()->set_seconds(seconds);
    retry_->mutable_retry_delay()->set_nanos(nanos);
  }

  void AddQuotaFailure(const json::object& d) {
    const json::array* violations = Arr(d, "violations");
    if (violations == nullptr) return;
    if (!quota_) quota_.emplace();
    for (const json::value& v : *violations) {
      if (quota_->violations_size() >= static_cast<int>(kMaxRepeated)) break;
      if (!v.is_object()) continue;
      const json::object& o = v.get_object();
      std::string subject = Str(o, "subject");
      std::string description = Str(o, "description");
      const std::string metric = Str(o, "quotaMetric", "quota_metric");
      const std::string id = Str(o, "quotaId", "quota_id");
      // Newer envelopes name the quota in quotaMetric/quotaId; the proto we carry has only
      // subject/description.
      if (subject.empty()) {
        if (!metric.empty()) {
          subject = metric;
          if (description.empty()) description = id;
        } else {
          subject = id;
        }
      }
      auto* out = quota_->add_violations();
      out->set_subject(std::move(subject));
      out->set_description(std::move(description));
    }
  }

  void AddErrorInfo(const json::object& d) {
    if (error_info_) return;
    error_info_.emplace();
    error_info_->set_reason(Str(d, "reason"));
    error_info_->set_domain(Str(d, "domain"));
    const json::value* md = d.if_contains("metadata");
    if (md == nullptr || !md->is_object()) return;
    std::size_t n = 0;
    for (const auto& kv : md->get_object()) {
      if (n++ >= kMaxRepeated) break;
      if (!kv.value().is_string()) continue;
      const json::string& s = kv.value().get_string();
      (*error_info_->mutable_metadata())[Bounded(
          std::string_view(kv.key().data(), kv.key().size()), kMaxFieldBytes)] =
          Bounded(std::string_view(s.data(), s.size()), kMaxFieldBytes);
    }
  }

  void AddBadRequest(const json::object& d) {
    const json::array* fvs = Arr(d, "fieldViolations", "field_violations");
    if (fvs == nullptr) return;
    if (!bad_request_) bad_request_.emplace();
    for (const json::value& v : *fvs) {
      if (bad_request_->field_violations_size() >= static_cast<int>(kMaxRepeated)) break;
      if (!v.is_object()) continue;
      auto* out = bad_request_->add_field_violations();
      out->set_field(Str(v.get_object(), "field"));
      out->set_description(Str(v.get_object(), "description"));
    }
  }

  void AddHelp(const json::object& d) {
    const json::array* links = Arr(d, "links");
    if (links == nullptr) return;
    if (!help_) help_.emplace();
    for (const json::value& v : *links) {
      if (help_->links_size() >= static_cast<int>(kMaxRepeated)) break;
      if (!v.is_object()) continue;
      auto* out = help_->add_links();
      out->set_description(Str(v.get_object(), "description"));
      out->set_url(Str(v.get_object(), "url"));
    }
  }

  std::optional<google::rpc::RetryInfo> retry_;
  std::optional<google::rpc::QuotaFailure> quota_;
  std::optional<google::rpc::ErrorInfo> error_info_;
  std::optional<google::rpc::BadRequest> bad_request_;
  std::optional<google::rpc::Help> help_;
  std::optional<google::rpc::LocalizedMessage> localized_;
};

// The status for a parsed error value (the value of "error"). http_status is 0 when unknown.
absl::Status StatusFromErrorValue(const json::value& error, int http_status) {
  if (error.is_string()) {
    const json::string& s = error.get_string();
    const absl::StatusCode code =
        http_status != 0 ? StatusCodeFromHttpStatus(http_status) : absl::StatusCode::kUnknown;
    return absl::Status(code, absl::StrCat("Gemini: ", Bounded(std::string_view(s.data(), s.size()),
                                                              kMaxErrorMessageBytes)));
  }
  if (!error.is_object()) {
    const absl::StatusCode code =
        http_status != 0 ? StatusCodeFromHttpStatus(http_status) : absl::StatusCode::kUnknown;
    return absl::Status(code, absl::StrCat("Gemini: HTTP ", http_status));
  }
  const json::object& e = error.get_object();
  std::optional<absl::StatusCode> code;
  std::string status_name;
  if (const json::value* s = e.if_contains("status"); s != nullptr && s->is_string()) {
    status_name = std::string(s->get_string().data(), s->get_string().size());
    code = StatusCodeFromName(status_name);
  }
  int envelope_http = 0;
  if (const json::value* c = e.if_contains("code"); c != nullptr && c->is_int64()) {
    const int64_t n = c->get_int64();
    if (n >= 100 && n <= 599) envelope_http = static_cast<int>(n);
  }
  if (!code) {
    const int http = http_status != 0 ? http_status : envelope_http;
    code = http != 0 ? StatusCodeFromHttpStatus(http) : absl::StatusCode::kUnknown;
  }
  std::string message;
  if (const json::value* m = e.if_contains("message"); m != nullptr && m->is_string()) {
    message = Bounded(std::string_view(m->get_string().data(), m->get_string().size()),
                      kMaxErrorMessageBytes);
  }
  if (message.empty()) {
    const int http = http_status != 0 ? http_status : envelope_http;
    message = http != 0 ? absl::StrCat(std::string(CodeName(*code)), " (HTTP ", http, ")")
                        : std::string(CodeName(*code));
  }
  absl::Status status(*code, absl::StrCat("Gemini: ", message));
  if (status.ok()) return status;
  if (const json::value* d = e.if_contains("details"); d != nullptr && d->is_array()) {
    DetailCollector details;
    std::size_t n = 0;
    for (const json::value& entry : d->get_array()) {
      if (n++ >= kMaxDetails) break;
      if (entry.is_object()) details.Add(entry.get_object());
    }
    details.AttachTo(status);
  }
  return status;
}

// The "error" value inside a parsed body ({"error": ...} or [{"error": ...}]); nullptr if none.
const json::value* FindErrorValue(const json::value& doc) {
  const json::value* v = &doc;
  if (v->is_array()) {
    if (v->get_array().size() != 1) return nullptr;
    v = &v->get_array()[0];
  }
  if (!v->is_object()) return nullptr;
  const json::value* error = v->get_object().if_contains("error");
  if (error == nullptr || error->is_null()) return nullptr;
  return error;
}

bool LooksLikeJson(std::string_view trimmed) {
  return !trimmed.empty() && (trimmed.front() == '{' || trimmed.front() == '[');
}

bool ParseBounded(std::string_view text, json::monotonic_resource& resource, json::value& doc) {
  json::error_code ec;
  doc = json::parse(json::string_view(text.data(), text.size()), ec, &resource);
  return !ec;
}

// Tags a status mapped from a Gemini error with its row of the error table.
absl::Status TagGeminiError(absl::Status status) {
  if (status.ok()) return status;
  google::rpc::ErrorInfo info;
  const bool key_rejected = status.code() == absl::StatusCode::kUnauthenticated ||
                            status.code() == absl::StatusCode::kPermissionDenied ||
                            (GetDetail(status, info) && info.reason().starts_with("API_KEY"));
  const char* outcome = reasons::kUpstreamError;
  if (key_rejected) {
    outcome = reasons::kUpstreamAuthFailed;
  } else {
    switch (status.code()) {
      case absl::StatusCode::kInvalidArgument: outcome = reasons::kUpstreamInvalidArgument; break;
      case absl::StatusCode::kFailedPrecondition:
        outcome = reasons::kUpstreamFailedPrecondition;
        break;
      case absl::StatusCode::kNotFound: outcome = reasons::kUpstreamNotFound; break;
      case absl::StatusCode::kResourceExhausted: outcome = reasons::kUpstreamRateLimited; break;
      case absl::StatusCode::kInternal: outcome = reasons::kUpstreamInternal; break;
      case absl::StatusCode::kUnavailable: outcome = reasons::kUpstreamUnavailable; break;
      case absl::StatusCode::kDeadlineExceeded: outcome = reasons::kUpstreamTimeout; break;
      default: break;
    }
  }
  return WithOutcome(std::move(status), outcome);
}

}  // namespace

absl::StatusCode StatusCodeFromHttpStatus(int http_status) {
  switch (http_status) {
    case 400: return absl::StatusCode::kInvalidArgument;
    case 401: return absl::StatusCode::kUnauthenticated;
    case 403: return absl::StatusCode::kPermissionDenied;
    case 404: return absl::StatusCode::kNotFound;
    case 408: return absl::StatusCode::kUnavailable;
    case 409: return absl::StatusCode::kAborted;
    case 429: return absl::StatusCode::kResourceExhausted;
    case 499: return absl::StatusCode::kCancelled;
    case 500: return absl::StatusCode::kInternal;
    case 501: return absl::StatusCode::kUnimplemented;
    case 502:
    case 503: return absl::StatusCode::kUnavailable;
    case 504: return absl::StatusCode::kDeadlineExceeded;
    default: break;
  }
  if (http_status >= 400 && http_status < 500) return absl::StatusCode::kFailedPrecondition;
  if (http_status >= 500 && http_status < 600) return absl::StatusCode::kInternal;
  return absl::StatusCode::kUnknown;
}

std::optional<absl::StatusCode> StatusCodeFromName(std::string_view name) {
  static constexpr absl::StatusCode kCodes[] = {
      absl::StatusCode::kCancelled,         absl::StatusCode::kUnknown,
      absl::StatusCode::kInvalidArgument,   absl::StatusCode::kDeadlineExceeded,
      absl::StatusCode::kNotFound,          absl::StatusCode::kAlreadyExists,
      absl::StatusCode::kPermissionDenied,  absl::StatusCode::kResourceExhausted,
      absl::StatusCode::kFailedPrecondition, absl::StatusCode::kAborted,
      absl::StatusCode::kOutOfRange,        absl::StatusCode::kUnimplemented,
      absl::StatusCode::kInternal,          absl::StatusCode::kUnavailable,
      absl::StatusCode::kDataLoss,          absl::StatusCode::kUnauthenticated,
  };
  for (const absl::StatusCode code : kCodes) {
    if (CodeName(code) == name) return code;
  }
  return std::nullopt;
}

std::optional<absl::Duration> ParseProtoDuration(std::string_view text) {
  if (text.size() < 2 || text.back() != 's') return std::nullopt;
  text.remove_suffix(1);
  const std::size_t dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::string_view frac =
      dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  if (whole.empty() || whole.size() > 12) return std::nullopt;  // ≤ ~31,000 years
  if (dot != std::string_view::npos && (frac.empty() || frac.size() > 9)) return std::nullopt;
  int64_t seconds = 0;
  for (const char c : whole) {
    if (c < '0' || c > '9') return std::nullopt;
    seconds = seconds * 10 + (c - '0');
  }
  int64_t nanos = 0;
  for (std::size_t i = 0; i < 9; ++i) {
    const char c = i < frac.size() ? frac[i] : '0';
    if (c < '0' || c > '9') return std::nullopt;
    nanos = nanos * 10 + (c - '0');
  }
  return absl::Seconds(seconds) + absl::Nanoseconds(nanos);
}

absl::Status StatusFromHttpError(int http_status, std::string_view body) {
  const std::string_view trimmed = Trim(body);
  if (LooksLikeJson(trimmed) && trimmed.size() <= kMaxErrorBodyBytes) {
    json::monotonic_resource resource;
    json::value doc;
    if (ParseBounded(trimmed, resource, doc)) {
      if (const json::value* error = FindErrorValue(doc)) {
        absl::Status status = StatusFromErrorValue(*error, http_status);
        if (!status.ok()) return TagGeminiError(std::move(status));
      }
    }
  }
  absl::StatusCode code = StatusCodeFromHttpStatus(http_status);
  if (code == absl::StatusCode::kOk) code = absl::StatusCode::kUnknown;
  if (trimmed.empty()) {
    return TagGeminiError(absl::Status(code, absl::StrCat("Gemini: HTTP ", http_status)));
  }
  return TagGeminiError(absl::Status(
      code, absl::StrCat("Gemini: HTTP ", http_status, ": ", BoundedPlainText(trimmed))));
}

absl::Status StatusFromErrorJson(std::string_view text) {
  const std::string_view trimmed = Trim(text);
  if (!LooksLikeJson(trimmed) || trimmed.size() > kMaxErrorBodyBytes) return absl::OkStatus();
  json::monotonic_resource resource;
  json::value doc;
  if (!ParseBounded(trimmed, resource, doc)) return absl::OkStatus();
  const json::value* error = FindErrorValue(doc);
  if (error == nullptr) return absl::OkStatus();
  absl::Status status = StatusFromErrorValue(*error, /*http_status=*/0);
  if (status.ok()) status = absl::UnknownError(status.message());
  return TagGeminiError(std::move(status));
}

}  // namespace vision_gateway::gemini
