#include "service/server/caller_gate.h"

#include <grpc/grpc_security_constants.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "service/common/error_reasons.h"
#include "service/common/log.h"
#include "service/common/status_details.h"
#include "service/vision/cost_guard.h"

namespace vision_gateway::server {
namespace {

absl::Status Unauthenticated(std::string message) {
  return WithErrorInfo(absl::UnauthenticatedError(std::move(message)), reasons::kCallerUnauthenticated);
}

absl::Status BadOverride(absl::string_view caller, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("--caller_overrides: caller '", caller, "': ", what));
}

template <typename T>
absl::Status ParseNumber(absl::string_view caller, absl::string_view key, absl::string_view value,
                         T min, std::optional<T>& out) {
  T parsed;
  bool ok;
  if constexpr (std::is_same_v<T, double>) {
    ok = absl::SimpleAtod(value, &parsed);
  } else {
    ok = absl::SimpleAtoi(value, &parsed);
  }
  if (!ok || parsed < min) {
    return BadOverride(caller, absl::StrCat(key, " must be a number >= ", min, ", got '", value, "'"));
  }
  out = parsed;
  return absl::OkStatus();
}

CallerPolicy MakePolicy(const CallerLimits& limits, const vision::VisionOptions& vision,
                        const CallerOverrides* o) {
  CallerPolicy policy{limits, vision};
  if (o == nullptr) return policy;
  if (o->requests_per_second) policy.limits.requests_per_second = *o->requests_per_second;
  if (o->burst) policy.limits.burst = *o->burst;
  if (o->max_concurrent_calls) policy.limits.max_concurrent_calls = *o->max_concurrent_calls;
  vision::CostLimits& cost = policy.vision.cost;
  if (o->allowed_models) cost.allowed_models = *o->allowed_models;
  if (o->max_output_tokens) cost.max_output_tokens = *o->max_output_tokens;
  if (o->max_thinking_budget) cost.max_thinking_budget = *o->max_thinking_budget;
  if (o->max_thinking_level) cost.max_thinking_level = *o->max_thinking_level;
  if (o->max_images_per_request) policy.vision.max_images_per_request = *o->max_images_per_request;
  if (o->max_image_bytes_per_request) {
    cost.max_image_bytes_per_request = *o->max_image_bytes_per_request;
  }
  return policy;
}

}  // namespace

absl::StatusOr<std::map<std::string, CallerOverrides>> ParseCallerOverrides(absl::string_view spec) {
  std::map<std::string, CallerOverrides> result;
  for (absl::string_view entry : absl::StrSplit(spec, ';', absl::SkipWhitespace())) {
    entry = absl::StripAsciiWhitespace(entry);
    const std::size_t colon = entry.find(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--caller_overrides: expected caller:key=value,... in '", entry, "'"));
    }
    const std::string caller(absl::StripAsciiWhitespace(entry.substr(0, colon)));
    if (!IsValidCallerName(caller)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--caller_overrides: '", caller, "' is not a valid caller name"));
    }
    if (result.count(caller) != 0) return BadOverride(caller, "listed twice");
    CallerOverrides& o = result[caller];
    for (absl::string_view setting :
         absl::StrSplit(entry.substr(colon + 1), ',', absl::SkipWhitespace())) {
      std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(setting, absl::MaxSplits('=', 1));
      const absl::string_view key = absl::StripAsciiWhitespace(kv.first);
      const absl::string_view value = absl::StripAsciiWhitespace(kv.second);
      absl::Status s;
      if (key == "rps") {
        s = ParseNumber<double>(caller, key, value, 0, o.requests_per_second);
      } else if (key == "burst") {
        s = ParseNumber<int>(caller, key, value, 0, o.burst);
      } else if (key == "concurrent") {
        s = ParseNumber<int>(caller, key, value, 0, o.max_concurrent_calls);
      } else if (key == "max_output_tokens") {
        s = ParseNumber<int32_t>(caller, key, value, 0, o.max_output_tokens);
      } else if (key == "max_thinking_budget") {
        s = ParseNumber<int32_t>(caller, key, value, -1, o.max_thinking_budget);
      } else if (key == "max_images") {
        s = ParseNumber<int>(caller, key, value, 1, o.max_images_per_request);
      } else if (key == "max_image_bytes") {
        s = ParseNumber<int64_t>(caller, key, value, 0, o.max_image_bytes_per_request);
      } else if (key == "max_thinking_level") {
        std::string level = absl::AsciiStrToUpper(value);
        if (!level.empty() && !vision::IsThinkingLevelName(level)) {
          s = BadOverride(caller, "max_thinking_level must be MINIMAL, LOW, MEDIUM or HIGH");
        }
        o.max_thinking_level = std::move(level);
      } else if (key == "models") {
        std::vector<std::string> models = absl::StrSplit(value, '|', absl::SkipWhitespace());
        if (models.empty()) s = BadOverride(caller, "models must name at least one model");
        o.allowed_models = std::move(models);
      } else {
        s = BadOverride(caller, absl::StrCat(
            "unknown key '", key, "' (known: rps, burst, concurrent, models, max_output_tokens, "
            "max_thinking_budget, max_thinking_level, max_images, max_image_bytes)"));
      }
      if (!s.ok()) return s;
    }
  }
  return result;
}

absl::StatusOr<std::unique_ptr<CallerGate>> CallerGate::Create(
    AuthOptions options, const vision::VisionOptions& vision) {
  std::unique_ptr<CallerGate> gate(new CallerGate(std::move(options)));
  // Callers named in --caller_overrides (certificate callers, or token callers with settings of
  // their own) must not share a file owner tag with each other or with a token file caller.
  std::vector<std::string> override_callers;
  for (const auto& [caller, o] : gate->options_.overrides) override_callers.push_back(caller);
  if (absl::Status s = CheckOwnerTags(override_callers, "--caller_overrides"); !s.ok()) return s;
  if (!gate->options_.tokens_file.empty()) {
    auto tokens = CallerTokens::Load(gate->options_.tokens_file, override_callers);
    if (!tokens.ok()) return tokens.status();
    gate->tokens_ = *std::move(tokens);
  }
  gate->default_policy_ =
      std::make_shared<const CallerPolicy>(MakePolicy(gate->options_.limits, vision, nullptr));
  for (const auto& [caller, o] : gate->options_.overrides) {
    gate->policies_[caller] =
        std::make_shared<const CallerPolicy>(MakePolicy(gate->options_.limits, vision, &o));
  }
  if (gate->tokens_ != nullptr) {
    gate->reloader_ = std::thread([g = gate.get()] { g->ReloadLoop(); });
  }
  return gate;
}

CallerGate::~CallerGate() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (reloader_.joinable()) reloader_.join();
}

void CallerGate::ReloadLoop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    // Wakes early when stopping_ turns true.
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.reload_interval);
    if (stopping_) break;
    mu_.Unlock();
    tokens_->Reload();
    mu_.Lock();
  }
}

void CallerGate::ReloadTokens() {
  if (tokens_ != nullptr) tokens_->Reload();
}

std::shared_ptr<const CallerPolicy> CallerGate::PolicyFor(const std::string& caller) const {
  auto it = policies_.find(caller);
  return it != policies_.end() ? it->second : default_policy_;
}

absl::StatusOr<std::string> CallerGate::Identify(
    std::optional<absl::string_view> authorization,
    const std::vector<std::string>& cert_identities) const {
  if (!enabled()) return std::string();
  if (tokens_ != nullptr && authorization.has_value()) {
    absl::string_view value = absl::StripAsciiWhitespace(*authorization);
    if (value.size() < 7 || !absl::EqualsIgnoreCase(value.substr(0, 7), "bearer ")) {
      return Unauthenticated("authorization: expected 'Bearer <token>'");
    }
    value = absl::StripAsciiWhitespace(value.substr(7));
    std::optional<std::string> caller = tokens_->Match(value);
    if (!caller) return Unauthenticated("authorization: the bearer token is not valid");
    return *std::move(caller);
  }
  if (options_.client_cert_identity) {
    for (const std::string& identity : cert_identities) {
      if (IsValidCallerName(identity)) return identity;
    }
    if (!cert_identities.empty()) {
      return Unauthenticated(
          "the client certificate names no valid caller (CN or SAN of 1-64 characters of a-z, "
          "0-9, '.', '-', '_')");
    }
  }
  return Unauthenticated(tokens_ != nullptr
                             ? "missing credentials: send 'authorization: Bearer <token>'"
                             : "missing credentials: a client certificate is required");
}

absl::StatusOr<Admission> CallerGate::Admit(const grpc::CallbackServerContext& context) {
  if (!enabled()) return Admission{std::string(), default_policy_, {}};
  std::optional<absl::string_view> authorization;
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    authorization = absl::string_view(it->second.data(), it->second.size());
  }
  std::vector<std::string> cert_identities;
  if (options_.client_cert_identity) {
    std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
    if (auth != nullptr && auth->IsPeerAuthenticated()) {
      for (const char* property : {GRPC_X509_CN_PROPERTY_NAME, GRPC_X509_SAN_PROPERTY_NAME}) {
        for (const grpc::string_ref& value : auth->FindPropertyValues(property)) {
          if (cert_identities.size() < 16) cert_identities.emplace_back(value.data(), value.size());
        }
      }
    }
  }
  absl::StatusOr<std::string> caller = Identify(authorization, cert_identities);
  if (!caller.ok()) {
    LogWarning("unauthenticated call from %s: %s", context.peer(), caller.status().message());
    return caller.status();
  }
  std::shared_ptr<const CallerPolicy> policy = PolicyFor(*caller);
  absl::StatusOr<CallerLimiter::Permit> permit = limiter_.Admit(*caller, policy->limits);
  if (!permit.ok()) return permit.status();
  return Admission{*std::move(caller), std::move(policy), *std::move(permit)};
}

}  // namespace vision_gateway::server
