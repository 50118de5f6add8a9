// libFuzzer target for http::SseSplitter. Input: byte 0 seeds the piece sizes; the rest is an SSE
// body. Checks that nothing crashes or leaks (ASan/UBSan) and that
//   - feeding the body in random pieces (empty pieces included) gives exactly the events and the
//     status of feeding it whole;
//   - every failure is RESOURCE_EXHAUSTED, and once failed the splitter stays failed;
//   - no event exceeds the bound, no event is empty, and no event text holds a line break other
//     than the '\n' that joins lines (CR, LF and CRLF all end lines).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "service/http/sse_splitter.h"

namespace {

using ::vision_gateway::http::SseEvent;
using ::vision_gateway::http::SseSplitter;

constexpr std::size_t kMaxEventBytes = 1024;  // small, so the bound is exercised too

void Check(bool ok) {
  if (!ok) std::abort();
}

struct Run {
  std::vector<std::pair<std::string, std::string>> events;
  absl::Status status;
};

Run Feed(std::string_view body, uint8_t seed) {
  SseSplitter splitter(kMaxEventBytes);
  Run run;
  auto collect = [&](SseEvent e) { run.events.emplace_back(std::move(e.data), std::move(e.raw)); };
  std::size_t pos = 0;
  uint32_t state = seed;
  while (pos < body.size()) {
    std::size_t len = body.size() - pos;
    if (seed != 0) {
      state = state * 1103515245u + 12345u;
      len = std::min<std::size_t>((state >> 16) % 14, body.size() - pos);  // 0..13 bytes
    }
    run.status = splitter.Feed(body.substr(pos, len), collect);
    if (!run.status.ok()) {
      // Failed for good: more input changes nothing.
      const std::size_t before = run.events.size();
      Check(splitter.Feed("data: x\n\n", collect).code() == run.status.code());
      splitter.Finish(collect);
      Check(run.events.size() == before);
      return run;
    }
    pos += len;
  }
  splitter.Finish(collect);
  return run;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const Run whole = Feed(body, 0);
  const Run pieces = Feed(body, data[0] == 0 ? 1 : data[0]);
  Check(whole.status.code() == pieces.status.code());
  Check(whole.status.ok() || whole.status.code() == absl::StatusCode::kResourceExhausted);
  Check(whole.events == pieces.events);
  for (const auto& [event_data, raw] : whole.events) {
    Check(event_data.size() + raw.size() <= kMaxEventBytes);
    Check(event_data.find('\r') == std::string::npos && raw.find('\r') == std::string::npos);
    // raw holds only non-field lines: none of them is empty.
    if (!raw.empty()) {
      Check(raw.find("\n\n") == std::string::npos && raw.front() != '\n' && raw.back() != '\n');
    }
  }
  return 0;
}
