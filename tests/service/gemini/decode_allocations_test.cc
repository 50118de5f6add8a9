// Heap allocations of decoding one stream event, counted by a replacement global operator new
// (this test binary only). A regression guard for the Caption hot path: the parsed document lives
// in an inline arena and error paths are built only on error, so decoding allocates only for the
// typed struct it returns.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>

#include "gtest/gtest.h"
#include "service/gemini/generate_codec.h"
#include "service/gemini/types.h"

namespace {
std::atomic<int64_t> g_allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace vision_gateway::gemini {
namespace {

// An event as the emulator and Gemini stream it for a caption.
constexpr char kEvent[] =
    R"({"candidates":[{"content":{"parts":[{"text":"A red circle and a blue square on a light )"
    R"(background"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":)"
    R"({"promptTokenCount":258,"candidatesTokenCount":12,"totalTokenCount":270},)"
    R"("modelVersion":"gemini-3-flash-preview","responseId":"r-0123456789abcdef"})";

int64_t AllocationsOfOneDecode(const std::string& text) {
  const int64_t before = g_allocations.load();
  {
    absl::StatusOr<GenerateContentResponse> response = DecodeGenerateContentResponse(text);
    EXPECT_TRUE(response.ok()) << response.status();
  }
  return g_allocations.load() - before;
}

TEST(DecodeAllocationsTest, AStreamEventAllocatesOnlyForTheStructItReturns) {
  const std::string event = kEvent;
  AllocationsOfOneDecode(event);  // lazily made statics
  // The struct: candidates, parts, the text, modelVersion, responseId (role and finishReason fit
  // in a short string). Before the arena fix and lazy error paths: 54.
  EXPECT_LE(AllocationsOfOneDecode(event), 6);
}

TEST(DecodeAllocationsTest, AnEventLargerThanTheInlineArenaStillDecodes) {
  std::string big = kEvent;
  big.replace(big.find("A red circle"), 12, std::string(20000, 'x'));
  const int64_t n = AllocationsOfOneDecode(big);
  EXPECT_GT(n, 0);
  EXPECT_LE(n, 12);
}

}  // namespace
}  // namespace vision_gateway::gemini
