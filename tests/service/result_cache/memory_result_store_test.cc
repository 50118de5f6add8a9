#include "service/result_cache/memory_result_store.h"

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vision_gateway::result_cache {
namespace {

// A clock the test moves by hand.
struct FakeClock {
  absl::Time now = absl::FromUnixSeconds(1'700'000'000);
};

class MemoryResultStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<MemoryResultStore> Make(std::size_t max_bytes) {
    return std::make_unique<MemoryResultStore>(MemoryResultStoreOptions{
        .max_bytes = max_bytes, .clock = [this] { return clock_.now; }});
  }

  // Both answer inline: the store never defers.
  static absl::StatusOr<std::string> Get(MemoryResultStore& store, const std::string& key) {
    std::optional<absl::StatusOr<std::string>> result;
    store.Get(key, [&](absl::StatusOr<std::string> value) { result = std::move(value); });
    EXPECT_TRUE(result.has_value());
    return result.value_or(absl::InternalError("no answer"));
  }
  static absl::Status Put(MemoryResultStore& store, const std::string& key,
                          const std::string& value, absl::Duration ttl = absl::Hours(1)) {
    std::optional<absl::Status> result;
    store.Put(key, value, ttl, [&](absl::Status status) { result = std::move(status); });
    EXPECT_TRUE(result.has_value());
    return result.value_or(absl::InternalError("no answer"));
  }

  FakeClock clock_;
};

TEST_F(MemoryResultStoreTest, MissThenHit) {
  auto store = Make(1 << 20);
  EXPECT_EQ(Get(*store, "k").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(Put(*store, "k", "value").ok());
  absl::StatusOr<std::string> got = Get(*store, "k");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "value");
  EXPECT_EQ(store->size(), 1u);
  EXPECT_EQ(store->bytes(), MemoryResultStore::ChargeOf("k", "value"));
}

TEST_F(MemoryResultStoreTest, ReplacingAKeyChargesOnlyTheNewValue) {
  auto store = Make(1 << 20);
  ASSERT_TRUE(Put(*store, "k", std::string(1000, 'a')).ok());
  ASSERT_TRUE(Put(*store, "k", "short").ok());
  EXPECT_EQ(*Get(*store, "k"), "short");
  EXPECT_EQ(store->size(), 1u);
  EXPECT_EQ(store->bytes(), MemoryResultStore::ChargeOf("k", "short"));
}

TEST_F(MemoryResultStoreTest, EvictsTheLeastRecentlyUsedToStayWithinItsBytes) {
  const std::string value(1000, 'v');
  const std::size_t charge = MemoryResultStore::ChargeOf("a", value);
  auto store = Make(3 * charge);
  ASSERT_TRUE(Put(*store, "a", value).ok());
  ASSERT_TRUE(Put(*store, "b", value).ok());
  ASSERT_TRUE(Put(*store, "c", value).ok());
  ASSERT_TRUE(Get(*store, "a").ok());  // a is now the most recently used; b the least
  ASSERT_TRUE(Put(*store, "d", value).ok());
  EXPECT_EQ(Get(*store, "b").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Get(*store, "a").ok());
  EXPECT_TRUE(Get(*store, "c").ok());
  EXPECT_TRUE(Get(*store, "d").ok());
  EXPECT_LE(store->bytes(), 3 * charge);
  // A bigger value makes room for itself by evicting as many as it needs, coldest first.
  ASSERT_TRUE(Put(*store, "e", std::string(2 * 1000 + 100, 'v')).ok());
  EXPECT_LE(store->bytes(), 3 * charge);
  EXPECT_EQ(store->size(), 2u);
  EXPECT_TRUE(Get(*store, "e").ok());
}

TEST_F(MemoryResultStoreTest, EntriesExpireAfterTheirTtl) {
  auto store = Make(1 << 20);
  ASSERT_TRUE(Put(*store, "short", "1", absl::Seconds(10)).ok());
  ASSERT_TRUE(Put(*store, "long", "2", absl::Seconds(100)).ok());
  clock_.now += absl::Seconds(9);
  EXPECT_TRUE(Get(*store, "short").ok());
  clock_.now += absl::Seconds(1);
  EXPECT_EQ(Get(*store, "short").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Get(*store, "long").ok());
  EXPECT_EQ(store->size(), 1u);  // the expired entry is gone, not just hidden
  clock_.now += absl::Seconds(90);
  EXPECT_EQ(Get(*store, "long").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->bytes(), 0u);
}

TEST_F(MemoryResultStoreTest, AnEntryLargerThanTheStoreIsRefusedAndEvictsNothing) {
  auto store = Make(2000);
  ASSERT_TRUE(Put(*store, "small", "x").ok());
  const absl::Status refused = Put(*store, "big", std::string(2000, 'b'));
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Get(*store, "big").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Get(*store, "small").ok());
}

}  // namespace
}  // namespace vision_gateway::result_cache
