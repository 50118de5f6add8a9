// The result cache's in-process store (--result_cache_mb): an LRU bounded in bytes, each entry
// kept for its TTL. Thread-safe; Get and Put answer inline (they never wait on anything but a
// short lock), so a lookup costs one hash-map probe and one copy of the value.
//
// An entry is charged its key, its value and a fixed overhead (kEntryOverheadBytes, the list node,
// the map slot and the strings' headers); a value whose charge alone exceeds the bound is refused
// (RESOURCE_EXHAUSTED) and evicts nothing. Expired entries are dropped when they are looked up or
// reach the cold end of the LRU list.
#ifndef VISION_GATEWAY_SERVICE_RESULT_CACHE_MEMORY_RESULT_STORE_H_
#define VISION_GATEWAY_SERVICE_RESULT_CACHE_MEMORY_RESULT_STORE_H_

#include <cstddef>
#include <functional>
#include <list>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "service/result_cache/result_store.h"

namespace vision_gateway::result_cache {

struct MemoryResultStoreOptions {
  // The bound on the sum of the entries' charges.
  std::size_t max_bytes = 64 << 20;
  // The clock TTLs are measured on (tests inject a fake one).
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

class MemoryResultStore final : public ResultStore {
 public:
  static constexpr std::size_t kEntryOverheadBytes = 160;

  explicit MemoryResultStore(MemoryResultStoreOptions options);

  void Get(std::string key, absl::AnyInvocable<void(absl::StatusOr<std::string>)> done) override;
  void Put(std::string key, std::string value, absl::Duration ttl,
           absl::AnyInvocable<void(absl::Status)> done) override;

  // The sum of the entries' charges, and their number (tests, figures).
  std::size_t bytes() const;
  std::size_t size() const;

  // What an entry of this key and value is charged.
  static std::size_t ChargeOf(std::string_view key, std::string_view value) {
    return key.size() + value.size() + kEntryOverheadBytes;
  }

 private:
  struct Entry {
    std::string key;
    std::string value;
    absl::Time expiry;
  };
  using List = std::list<Entry>;  // most recently used first

  void EraseLocked(List::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const MemoryResultStoreOptions options_;
  mutable absl::Mutex mu_;
  List lru_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string_view, List::iterator> index_ ABSL_GUARDED_BY(mu_);
  std::size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vision_gateway::result_cache

#endif  // VISION_GATEWAY_SERVICE_RESULT_CACHE_MEMORY_RESULT_STORE_H_
