// The gateway's own processing time for Detect and Segment (Google Benchmark): image preparation
// (sniff, header check, a decode to verify the pixels, EXIF/downscale when needed) plus
// incremental parsing, geometry and mask work (resize, threshold, PNG, COCO RLE), measured through
// the real task code with an in-memory Gemini client that replays a model answer instantly. No
// network, no gRPC: what remains is exactly what the gateway adds per request.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "service/common/thread_pool.h"
#include "service/image/binary_mask.h"
#include "service/image/mask_codec.h"
#include "service/vision/spatial_task.h"
#include "tests/testing/fake_gemini_client.h"
#include "tests/testing/test_images.h"

namespace vision_gateway {
namespace {

namespace v1 = ::vision::v1;
using testing::FakeGeminiClient;

constexpr int kObjects = 10;
constexpr int kChunkChars = 64;  // model text arrives in pieces of this size

// A scene of kObjects coloured rectangles, encoded as the client would send it.
std::string SceneImage(int width, int height, const char* suffix) {
  testing::Pixels pixels = testing::MakePixels(width, height, 3);
  testing::FillRect(pixels, {250, 250, 250}, 0, 0, width, height);
  for (int i = 0; i < kObjects; ++i) {
    const int x0 = width * (i % 5) / 5 + width / 40, y0 = height * (i / 5) / 2 + height / 20;
    testing::FillRect(pixels, {220, static_cast<uint8_t>(20 * i), 30}, x0, y0, x0 + width / 8,
                      y0 + height / 4);
  }
  return *testing::Encode(pixels, suffix);
}

// The model's answer: kObjects items with boxes, and for Segment a 256x256 soft-edged mask each.
std::string ModelAnswer(bool segment) {
  std::string mask_b64;
  if (segment) {
    image::BinaryMask disc{.width = 256, .height = 256, .data = std::vector<uint8_t>(65536)};
    for (int y = 0; y < 256; ++y) {
      for (int x = 0; x < 256; ++x) {
        const int dx = x - 128, dy = y - 128;
        disc.data[y * 256 + x] = dx * dx + dy * dy < 120 * 120;
      }
    }
    mask_b64 = absl::Base64Escape(image::EncodeMaskPng(disc));
  }
  std::string text = "```json\n[";
  for (int i = 0; i < kObjects; ++i) {
    const int x0 = 200 * (i % 5) + 25, y0 = 500 * (i / 5) + 50;
    absl::StrAppend(&text, i ? ",\n" : "", "{\"box_2d\": [", y0, ", ", x0, ", ", y0 + 250, ", ",
                    x0 + 125, "], \"label\": \"object ", i, "\"");
    if (segment) absl::StrAppend(&text, ", \"mask\": \"data:image/png;base64,", mask_b64, "\"");
    absl::StrAppend(&text, "}");
  }
  text += "]\n```";
  return text;
}

// CPU time of the whole process (every thread: the task's CPU pool, libvips' workers), in ms.
double ProcessCpuMs() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3 +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3;
}

gemini::GenerateContentResponse Chunk(std::string text, bool last) {
  gemini::GenerateContentResponse r;
  auto& candidate = r.candidates.emplace_back();
  candidate.content.parts.emplace_back().text = std::move(text);
  if (last) candidate.finish_reason = "STOP";
  r.usage_metadata = gemini::UsageMetadata{.prompt_token_count = 1000};
  return r;
}

template <typename Request, typename Response, typename Start>
void RunTask(benchmark::State& state, const std::string& image, const std::string& answer,
             Start start) {
  ThreadPool cpu(1);
  vision::VisionOptions options;
  int objects = 0;
  const double cpu_before = ProcessCpuMs();
  for (auto _ : state) {
    FakeGeminiClient gemini;
    Request request;
    request.mutable_image()->set_content(image);  // the copy stands for the gRPC message
    absl::Notification done;
    absl::Status status;
    vision::TaskCallbacks<Response> callbacks{
        .on_response = [&](Response r) { objects += r.has_summary() || r.has_image_info() ? 0 : 1; },
        .on_done =
            [&](absl::Status s) {
              status = s;
              done.Notify();
            }};
    auto call = start(gemini, cpu, options, std::move(request), absl::InfiniteFuture(),
                      std::move(callbacks), /*record=*/nullptr, /*files=*/nullptr);
    if (!call.ok() || !gemini.WaitForCalls(1)) {
      state.SkipWithError("task did not start");
      return;
    }
    auto upstream = gemini.calls()[0];
    for (size_t pos = 0; pos < answer.size(); pos += kChunkChars) {
      upstream->observer.on_chunk(
          Chunk(answer.substr(pos, kChunkChars), pos + kChunkChars >= answer.size()));
    }
    upstream->observer.on_done(absl::OkStatus());
    done.WaitForNotification();
    if (!status.ok()) {
      state.SkipWithError(std::string(status.message()).c_str());
      return;
    }
  }
  state.counters["objects_per_request"] =
      benchmark::Counter(objects, benchmark::Counter::kAvgIterations);
  // Less sensitive to the neighbours' load than the wall-clock time on a shared machine.
  state.counters["process_cpu_ms"] =
      benchmark::Counter(ProcessCpuMs() - cpu_before, benchmark::Counter::kAvgIterations);
}

void BM_Detect(benchmark::State& state) {
  const std::string image =
      SceneImage(state.range(0), state.range(1), state.range(0) > 1000 ? ".jpg" : ".png");
  RunTask<v1::DetectRequest, v1::DetectResponse>(state, image, ModelAnswer(false),
                                                 vision::StartDetect);
}

void BM_Segment(benchmark::State& state) {
  const std::string image =
      SceneImage(state.range(0), state.range(1), state.range(0) > 1000 ? ".jpg" : ".png");
  RunTask<v1::SegmentRequest, v1::SegmentResponse>(state, image, ModelAnswer(true),
                                                   vision::StartSegment);
}

BENCHMARK(BM_Detect)->Args({640, 480})->Args({4000, 3000})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Segment)->Args({640, 480})->Args({4000, 3000})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace vision_gateway

BENCHMARK_MAIN();
