#include "service/gemini/api_key_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "service/common/log.h"

namespace vision_gateway::gemini {

absl::StatusOr<std::string> ReadApiKeyFile(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    const int error = errno;
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open API key file ", path, ": ", std::strerror(error)));
  }
  std::string text(kMaxApiKeyFileBytes + 1, '\0');
  const std::size_t size = std::fread(text.data(), 1, text.size(), file);
  const bool read_error = std::ferror(file) != 0;
  std::fclose(file);
  if (read_error) {
    return absl::FailedPreconditionError(absl::StrCat("cannot read API key file ", path));
  }
  if (size > kMaxApiKeyFileBytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        "API key file ", path, " is larger than ", kMaxApiKeyFileBytes, " bytes"));
  }
  text.resize(size);
  std::string key(absl::StripAsciiWhitespace(text));
  if (key.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("API key file ", path, " is empty"));
  }
  for (const char c : key) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7E) {
      return absl::FailedPreconditionError(absl::StrCat(
          "API key file ", path, " holds whitespace, control or non-ASCII characters"));
    }
  }
  return key;
}

absl::StatusOr<std::shared_ptr<ApiKeyFile>> ApiKeyFile::Open(std::string path,
                                                             absl::Duration poll_interval) {
  absl::StatusOr<std::string> key = ReadApiKeyFile(path);
  if (!key.ok()) return key.status();
  std::shared_ptr<ApiKeyFile> file(new ApiKeyFile(std::move(path), *std::move(key)));
  if (poll_interval > absl::ZeroDuration()) {
    // The thread only runs while the object lives (the destructor joins it), so `this` is safe.
    file->poller_ = std::thread([raw = file.get(), poll_interval] { raw->Poll(poll_interval); });
  }
  return file;
}

ApiKeyFile::~ApiKeyFile() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (poller_.joinable()) poller_.join();
}

std::string ApiKeyFile::Current() const {
  absl::MutexLock lock(&mu_);
  return key_;
}

absl::Status ApiKeyFile::Reload() {
  absl::StatusOr<std::string> key = ReadApiKeyFile(path_);
  absl::MutexLock lock(&mu_);
  if (!key.ok()) {
    const std::string error(key.status().message());
    if (error != last_error_) {
      LogWarning("%s; keeping the current Gemini API key", error);
      last_error_ = error;
    }
    return key.status();
  }
  if (!last_error_.empty()) {
    LogInfo("API key file %s is readable again", path_);
    last_error_.clear();
  }
  if (*key != key_) {
    key_ = *std::move(key);
    ++changes_;
    LogInfo("Gemini API key reloaded from %s (change %d); new upstream requests use it", path_,
            changes_);
  }
  return absl::OkStatus();
}

int64_t ApiKeyFile::changes() const {
  absl::MutexLock lock(&mu_);
  return changes_;
}

bool ApiKeyFile::WaitForChange(int64_t seen, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto changed = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return changes_ > seen; };
  return mu_.AwaitWithTimeout(absl::Condition(&changed), timeout);
}

void ApiKeyFile::Poll(absl::Duration interval) {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval)) return;
    }
    Reload().IgnoreError();  // logged inside; the current key stays
  }
}

}  // namespace vision_gateway::gemini
