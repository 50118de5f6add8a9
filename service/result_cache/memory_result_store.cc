#include "service/result_cache/memory_result_store.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace vision_gateway::result_cache {

MemoryResultStore::MemoryResultStore(MemoryResultStoreOptions options)
    : options_(std::move(options)) {}

void MemoryResultStore::EraseLocked(List::iterator it) {
  bytes_ -= ChargeOf(it->key, it->value);
  index_.erase(std::string_view(it->key));
  lru_.erase(it);
}

void MemoryResultStore::Get(std::string key,
                            absl::AnyInvocable<void(absl::StatusOr<std::string>)> done) {
  absl::StatusOr<std::string> result = absl::NotFoundError("not cached");
  {
    const absl::Time now = options_.clock();
    absl::MutexLock lock(&mu_);
    auto found = index_.find(std::string_view(key));
    if (found != index_.end()) {
      List::iterator it = found->second;
      if (it->expiry <= now) {
        EraseLocked(it);
      } else {
        lru_.splice(lru_.begin(), lru_, it);
        result = it->value;
      }
    }
  }
  done(std::move(result));
}

void MemoryResultStore::Put(std::string key, std::string value, absl::Duration ttl,
                            absl::AnyInvocable<void(absl::Status)> done) {
  const std::size_t charge = ChargeOf(key, value);
  if (charge > options_.max_bytes) {
    return done(absl::ResourceExhaustedError(absl::StrCat(
        "a result of ", charge, " bytes does not fit a cache of ", options_.max_bytes)));
  }
  if (ttl <= absl::ZeroDuration()) return done(absl::OkStatus());  // expired at once
  {
    const absl::Time now = options_.clock();
    absl::MutexLock lock(&mu_);
    if (auto found = index_.find(std::string_view(key)); found != index_.end()) {
      EraseLocked(found->second);
    }
    // Make room: expired entries and the least recently used ones go, coldest first.
    while (bytes_ + charge > options_.max_bytes && !lru_.empty()) {
      EraseLocked(std::prev(lru_.end()));
    }
    lru_.push_front(Entry{.key = std::move(key), .value = std::move(value), .expiry = now + ttl});
    index_.emplace(std::string_view(lru_.front().key), lru_.begin());
    bytes_ += charge;
    // The cold end may hold expired entries that nobody asks for any more.
    while (!lru_.empty() && lru_.back().expiry <= now) EraseLocked(std::prev(lru_.end()));
  }
  done(absl::OkStatus());
}

std::size_t MemoryResultStore::bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

std::size_t MemoryResultStore::size() const {
  absl::MutexLock lock(&mu_);
  return lru_.size();
}

}  // namespace vision_gateway::result_cache
