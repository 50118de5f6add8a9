// caption-allocs: heap allocations of one Caption-shaped Gemini call in the gateway's Gemini
// layer, counted exactly by a replacement global operator new (deterministic, immune to the
// machine's load). One call = EncodeGenerateContentRequest of a request with an inline image and
// a prompt, the REST client's streamGenerateContent over an in-memory HTTP client that replays
// the emulator's SSE framing of a caption (emulator::MakeResponseJson, cut into 512-byte reads),
// SSE splitting, JSON decoding of each event and the observer receiving the typed chunks.
//
//   build/bench/caption-allocs [--image_bytes 32768] [--deltas 4] [--calls 1000]
//
// Prints allocations and bytes per call for the whole call and for its pieces.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "emulator/gemini_wire.h"
#include "service/gemini/gemini_client.h"
#include "service/gemini/json_codec.h"
#include "service/gemini/types.h"
#include "tests/service/gemini/fake_http_client.h"

ABSL_FLAG(int, image_bytes, 32 * 1024, "Bytes of the inline image.");
ABSL_FLAG(int, deltas, 4, "Text events in the streamed answer (the last one finishes it).");
ABSL_FLAG(int, calls, 1000, "Calls measured (after one warm-up call).");

namespace {

std::atomic<uint64_t> g_allocations{0};
std::atomic<uint64_t> g_bytes{0};

void* Allocate(std::size_t size, std::size_t align) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  g_bytes.fetch_add(size, std::memory_order_relaxed);
  void* p = align <= alignof(std::max_align_t)
                ? std::malloc(size == 0 ? 1 : size)
                : std::aligned_alloc(align, (size + align - 1) / align * align);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

void* operator new(std::size_t size) { return Allocate(size, 0); }
void* operator new[](std::size_t size) { return Allocate(size, 0); }
void* operator new(std::size_t size, std::align_val_t a) {
  return Allocate(size, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t size, std::align_val_t a) {
  return Allocate(size, static_cast<std::size_t>(a));
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try { return Allocate(size, 0); } catch (...) { return nullptr; }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  try { return Allocate(size, 0); } catch (...) { return nullptr; }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

namespace gemini = vision_gateway::gemini;
using vision_gateway::testing::FakeHttpClient;
using vision_gateway::testing::ScriptedResponse;

struct Counts {
  uint64_t allocations = 0;
  uint64_t bytes = 0;
};

// Allocations made by fn(), divided by `per`.
template <typename Fn>
Counts Measure(Fn&& fn) {
  const uint64_t a = g_allocations.load();
  const uint64_t b = g_bytes.load();
  fn();
  return Counts{g_allocations.load() - a, g_bytes.load() - b};
}

gemini::GenerateContentRequest CaptionRequest(int image_bytes) {
  gemini::GenerateContentRequest request;
  gemini::Content& user = request.contents.emplace_back();
  user.role = "user";
  gemini::Part image;
  std::string bytes(static_cast<std::size_t>(image_bytes), '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 7919) >> 3);
  image.inline_data = gemini::Blob{.mime_type = "image/jpeg", .data = std::move(bytes)};
  user.parts.push_back(std::move(image));
  user.parts.push_back(gemini::Part{
      .text = "Describe this image in one or two sentences. Mention the main objects."});
  gemini::GenerationConfig& config = request.generation_config.emplace();
  config.max_output_tokens = 256;
  return request;
}

// The emulator's SSE body for a caption answered in `deltas` events.
std::vector<std::string> CaptionEvents(int deltas) {
  std::vector<std::string> events;
  int tokens = 0;
  for (int i = 0; i < deltas; ++i) {
    const bool last = i + 1 == deltas;
    const std::string text = absl::StrCat(i == 0 ? "A red circle" : " and a blue square", " ",
                                          "on a light background");
    tokens += 6;
    vision_gateway::emulator::ResponseChunk chunk{text, last ? "STOP" : "", 258, tokens};
    events.push_back(vision_gateway::emulator::MakeResponseJson(
        chunk, "gemini-3-flash-preview", "r-0123456789abcdef", /*stream_style=*/true));
  }
  return events;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int calls = std::max(1, absl::GetFlag(FLAGS_calls));
  const gemini::GenerateContentRequest request = CaptionRequest(absl::GetFlag(FLAGS_image_bytes));
  const std::vector<std::string> events = CaptionEvents(absl::GetFlag(FLAGS_deltas));
  std::string body;
  for (const std::string& e : events) absl::StrAppend(&body, "data: ", e, "\r\n\r\n");

  auto http = std::make_shared<FakeHttpClient>();
  gemini::GeminiOptions options;
  options.base_url = "http://127.0.0.1:1";
  options.api_key = "bench-key";
  auto client = gemini::MakeGeminiClient(options, http);
  if (!client.ok()) {
    std::fprintf(stderr, "MakeGeminiClient: %s\n", client.status().ToString().c_str());
    return 1;
  }

  int failures = 0;
  auto one_call = [&] {
    ScriptedResponse script;
    script.headers.emplace_back("Content-Type", "text/event-stream");
    script.body = body;
    script.split_at = vision_gateway::testing::EveryNBytes(body.size(), 512);
    http->Enqueue(std::move(script));
    std::size_t chunks = 0;
    absl::Status done = absl::UnknownError("not done");
    gemini::StreamObserver observer;
    observer.on_chunk = [&chunks](gemini::GenerateContentResponse) { ++chunks; };
    observer.on_done = [&done](absl::Status s) { done = std::move(s); };
    // The scripted response is built before counting starts; the request is copied by the
    // caller (the server's task builds a fresh one per call), so the copy is outside too.
    gemini::GenerateContentRequest copy = request;
    const Counts c = Measure([&] {
      auto call = (*client)->StreamGenerateContent("gemini-3-flash-preview", std::move(copy), {},
                                                   std::move(observer));
      http->RunUntilIdle();
    });
    if (!done.ok() || chunks != events.size()) ++failures;
    return c;
  };

  one_call();  // warm-up: lazily made statics
  Counts call_total;
  for (int i = 0; i < calls; ++i) {
    const Counts c = one_call();
    call_total.allocations += c.allocations;
    call_total.bytes += c.bytes;
  }

  Counts encode;
  for (int i = 0; i < calls; ++i) {
    const Counts c = Measure([&] {
      absl::StatusOr<std::string> encoded = gemini::EncodeGenerateContentRequest(request);
      if (!encoded.ok()) ++failures;
    });
    encode.allocations += c.allocations;
    encode.bytes += c.bytes;
  }
  Counts decode;
  for (int i = 0; i < calls; ++i) {
    for (const std::string& e : events) {
      const Counts c = Measure([&] {
        absl::StatusOr<gemini::GenerateContentResponse> r = gemini::DecodeGenerateContentResponse(e);
        if (!r.ok()) ++failures;
      });
      decode.allocations += c.allocations;
      decode.bytes += c.bytes;
    }
  }
  const double n = calls;
  const double per_event = n * static_cast<double>(events.size());
  std::printf("caption call (image %d B, %zu events, %zu-byte SSE body), %d calls:\n",
              absl::GetFlag(FLAGS_image_bytes), events.size(), body.size(), calls);
  std::printf("  whole call (REST client, SSE, decode): %8.2f allocations %10.0f bytes per call\n",
              static_cast<double>(call_total.allocations) / n, static_cast<double>(call_total.bytes) / n);
  std::printf("  EncodeGenerateContentRequest:          %8.2f allocations %10.0f bytes per call\n",
              static_cast<double>(encode.allocations) / n, static_cast<double>(encode.bytes) / n);
  std::printf("  DecodeGenerateContentResponse:         %8.2f allocations %10.0f bytes per event\n",
              static_cast<double>(decode.allocations) / per_event,
              static_cast<double>(decode.bytes) / per_event);
  if (failures != 0) {
    std::fprintf(stderr, "%d calls failed\n", failures);
    return 1;
  }
  return 0;
}
