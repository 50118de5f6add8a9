#include "service/server/caller_tokens.h"

#include <fstream>
#include <map>
#include <string_view>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "service/common/log.h"
#include "service/gemini/sha256.h"
#include "service/vision/file_id.h"

namespace vision_gateway::server {
namespace {

// True when the two equal-length digests match, in time that does not depend on where they differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

constexpr std::size_t kMaxTokenFileBytes = 1 << 20;

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::string text;
  char buffer[4096];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxTokenFileBytes) {
      return absl::InvalidArgumentError(absl::StrCat(path, " is larger than 1 MiB"));
    }
  }
  return text;
}

bool IsTokenChar(char c) { return c > 0x20 && c < 0x7F; }

}  // namespace

bool IsValidCallerName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxCallerNameBytes) return false;
  if (!absl::ascii_islower(name[0]) && !absl::ascii_isdigit(name[0])) return false;
  for (const char c : name) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '.' && c != '-' && c != '_') {
      return false;
    }
  }
  return true;
}

absl::Status CheckOwnerTags(const std::vector<std::string>& callers, absl::string_view source) {
  std::map<std::string, std::string> owner_of_tag;
  for (const std::string& caller : callers) {
    auto [it, inserted] = owner_of_tag.emplace(vision::OwnerTagOf(caller), caller);
    if (!inserted && it->second != caller) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": callers '", it->second, "' and '", caller, "' have the same file owner tag '",
          it->first, "' and would see each other's files; rename one of them"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TokenEntry>> ParseTokenFile(
    absl::string_view text, const std::vector<std::string>& other_callers) {
  std::vector<TokenEntry> entries;
  std::set<std::string> seen;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("token file line ", line_number, ": expected \"<caller> <token>\""));
    }
    if (!IsValidCallerName(fields[0])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token file line ", line_number,
          ": caller names are 1-64 characters of a-z, 0-9, '.', '-', '_' (starting with a "
          "letter or digit)"));
    }
    const absl::string_view token = fields[1];
    bool printable = true;
    for (const char c : token) printable = printable && IsTokenChar(c);
    if (token.size() < kMinTokenBytes || token.size() > kMaxTokenBytes || !printable) {
      return absl::InvalidArgumentError(
          absl::StrCat("token file line ", line_number,
                       ": tokens are 16-4096 printable ASCII characters without spaces"));
    }
    TokenEntry entry{std::string(fields[0]), gemini::Sha256::HexOf(std::string_view(token.data(), token.size()))};
    if (!seen.insert(entry.token_hash).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("token file line ", line_number, ": the same token appears twice"));
    }
    entries.push_back(std::move(entry));
  }
  std::vector<std::string> callers = other_callers;
  for (const TokenEntry& entry : entries) callers.push_back(entry.caller);
  if (absl::Status s = CheckOwnerTags(callers, "token file"); !s.ok()) return s;
  return entries;
}

absl::StatusOr<std::unique_ptr<CallerTokens>> CallerTokens::Load(
    std::string path, std::vector<std::string> other_callers) {
  std::unique_ptr<CallerTokens> tokens(
      new CallerTokens(std::move(path), std::move(other_callers)));
  absl::StatusOr<std::string> text = ReadSmallFile(tokens->path_);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::vector<TokenEntry>> entries =
      ParseTokenFile(*text, tokens->other_callers_);
  if (!entries.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(tokens->path_, ": ", entries.status().message()));
  }
  if (entries->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(tokens->path_, " holds no tokens"));
  }
  absl::MutexLock lock(&tokens->mu_);
  tokens->seen_digest_ = gemini::Sha256::HexOf(*text);
  tokens->entries_ = std::make_shared<const std::vector<TokenEntry>>(*std::move(entries));
  return tokens;
}

std::optional<std::string> CallerTokens::Match(absl::string_view token) const {
  if (token.empty() || token.size() > kMaxTokenBytes) return std::nullopt;
  std::shared_ptr<const std::vector<TokenEntry>> entries;
  {
    absl::MutexLock lock(&mu_);
    entries = entries_;
  }
  const std::string presented = gemini::Sha256::HexOf(std::string_view(token.data(), token.size()));
  const TokenEntry* match = nullptr;
  // No early exit: every entry is compared, each in constant time.
  for (const TokenEntry& entry : *entries) {
    if (ConstantTimeEquals(presented, entry.token_hash)) match = &entry;
  }
  if (match == nullptr) return std::nullopt;
  return match->caller;
}

bool CallerTokens::Reload() {
  absl::StatusOr<std::string> text = ReadSmallFile(path_);
  // What the file looks like now (content digest, or a marker for "unreadable"), so that each
  // change is acted on, and warned about, once.
  const std::string seen = text.ok() ? gemini::Sha256::HexOf(*text) : gemini::Sha256::HexOf("");
  const bool unreadable = !text.ok();
  {
    absl::MutexLock lock(&mu_);
    if (seen == seen_digest_ && unreadable == seen_unreadable_) return false;
    seen_digest_ = seen;
    seen_unreadable_ = unreadable;
  }
  if (unreadable) {
    LogWarning("token file %s: %s; keeping the previous tokens", path_, text.status().message());
    return false;
  }

  absl::StatusOr<std::vector<TokenEntry>> entries = ParseTokenFile(*text, other_callers_);
  if (!entries.ok() || entries->empty()) {
    LogWarning("token file %s: %s; keeping the previous tokens", path_,
               entries.ok() ? "no tokens" : entries.status().message());
    return false;
  }
  const std::size_t count = entries->size();
  {
    absl::MutexLock lock(&mu_);
    entries_ = std::make_shared<const std::vector<TokenEntry>>(*std::move(entries));
  }
  LogInfo("token file %s reloaded: %d tokens", path_, count);
  return true;
}

std::size_t CallerTokens::size() const {
  absl::MutexLock lock(&mu_);
  return entries_->size();
}

}  // namespace vision_gateway::server
