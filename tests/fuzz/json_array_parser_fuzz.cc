// libFuzzer target for JsonArrayStreamParser + ParseSpatialItem + geometry.
// Input: byte 0 seeds the piece sizes; the rest is model output text. Checks that
//   - nothing crashes, hangs or leaks (ASan/UBSan);
//   - feeding in pieces gives exactly what feeding the whole text gives;
//   - every emitted element is a substring of the text;
//   - parsed items map to boxes and points inside the image.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "service/vision/geometry.h"
#include "service/vision/json_array_parser.h"
#include "service/vision/spatial_item.h"

namespace {

using ::vision_gateway::vision::JsonArrayStreamParser;

constexpr size_t kMaxElementBytes = 4096;  // small, so the bound is exercised too

void Check(bool ok) {
  if (!ok) std::abort();
}

struct Run {
  std::vector<std::string> elements;
  absl::Status status;
  bool started = false;
  bool closed = false;
  size_t emitted = 0;
};

Run FeedInPieces(std::string_view text, uint8_t seed) {
  JsonArrayStreamParser parser(kMaxElementBytes);
  Run run;
  auto collect = [&](std::string_view e) { run.elements.emplace_back(e); };
  size_t pos = 0;
  uint32_t state = seed;
  while (pos <= text.size()) {
    size_t len = text.size() - pos;
    if (seed != 0) {
      state = state * 1103515245u + 12345u;
      len = (state >> 16) % 17;  // pieces of 0..16 bytes, empty pieces included
    }
    run.status = parser.Feed(text.substr(pos, len), collect);
    if (!run.status.ok()) break;
    pos += len;
    if (pos == text.size() && len == 0) break;
  }
  run.started = parser.array_started();
  run.closed = parser.array_closed();
  run.emitted = parser.elements_emitted();
  return run;
}

void CheckItem(std::string_view element, bool want_mask) {
  using ::vision_gateway::vision::SpatialItem;
  absl::StatusOr<SpatialItem> item = ::vision_gateway::vision::ParseSpatialItem(element, want_mask);
  if (!item.ok()) {
    Check(item.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  if (!want_mask) Check(item->mask_kind == SpatialItem::MaskKind::kNone);
  if (item->mask_kind == SpatialItem::MaskKind::kPolygon) Check(item->polygon.size() >= 3);
  if (item->mask_kind == SpatialItem::MaskKind::kPng) Check(item->mask_png.size() >= 8);
  Check(!item->label.empty());
  for (const auto& [w, h] : {std::pair{641, 479}, std::pair{1, 1}, std::pair{4000, 3000}}) {
    if (auto box = ::vision_gateway::vision::NormalizeBox(item->box_2d)) {
      Check(0 <= box->y_min && box->y_min < box->y_max && box->y_max <= 1000);
      Check(0 <= box->x_min && box->x_min < box->x_max && box->x_max <= 1000);
      const auto px = ::vision_gateway::vision::ToPixelBox(*box, w, h);
      Check(0 <= px.x_min && px.x_min <= px.x_max && px.x_max <= w);
      Check(0 <= px.y_min && px.y_min <= px.y_max && px.y_max <= h);
    }
    for (const auto& p : ::vision_gateway::vision::PolygonToPixels(item->polygon, w, h)) {
      Check(0 <= p.x && p.x <= w && 0 <= p.y && p.y <= h);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const Run whole = FeedInPieces(text, 0);
  const Run pieces = FeedInPieces(text, data[0] == 0 ? 1 : data[0]);

  Check(whole.elements == pieces.elements);
  Check(whole.status.code() == pieces.status.code());
  Check(whole.status.ok() || whole.status.code() == absl::StatusCode::kResourceExhausted);
  Check(whole.started == pieces.started && whole.closed == pieces.closed);
  Check(whole.emitted == whole.elements.size() && pieces.emitted == pieces.elements.size());
  Check(!whole.closed || whole.started);
  for (const std::string& e : whole.elements) {
    Check(!e.empty() && e.size() <= kMaxElementBytes);
    Check(text.find(e) != std::string_view::npos);
    CheckItem(e, /*want_mask=*/true);
    CheckItem(e, /*want_mask=*/false);
  }
  return 0;
}
