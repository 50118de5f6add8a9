#include "service/vision/spatial_item.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "boost/json/error.hpp"
#include "boost/json/parse.hpp"
#include "boost/json/value.hpp"

namespace vision_gateway::vision {
namespace {

namespace json = ::boost::json;

constexpr std::string_view kPngSignature("\x89PNG\r\n\x1a\n", 8);

absl::Status MalformedBox() { return absl::InvalidArgumentError("malformed box_2d"); }

absl::Status DegenerateMask(std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("degenerate mask: ", std::string(why)));
}

// A finite JSON number (integer or floating point) as a double; nullopt for anything else.
std::optional<double> AsNumber(const json::value& v) {
  double d;
  switch (v.kind()) {
    case json::kind::int64:
      d = static_cast<double>(v.get_int64());
      break;
    case json::kind::uint64:
      d = static_cast<double>(v.get_uint64());
      break;
    case json::kind::double_:
      d = v.get_double();
      break;
    default:
      return std::nullopt;
  }
  if (!std::isfinite(d)) return std::nullopt;
  return d;
}

// Standard base64 alphabet: each character's 6-bit value, -1 for any other byte.
constexpr std::array<int8_t, 256> kBase64Values = [] {
  std::array<int8_t, 256> values{};
  values.fill(-1);
  for (int i = 0; i < 26; ++i) {
    values['A' + i] = static_cast<int8_t>(i);
    values['a' + i] = static_cast<int8_t>(26 + i);
  }
  for (int i = 0; i < 10; ++i) values['0' + i] = static_cast<int8_t>(52 + i);
  values['+'] = 62;
  values['/'] = 63;
  return values;
}();

// Strict standard-alphabet base64 with optional padding. nullopt on any invalid input. Four
// characters (three bytes) at a time into a string sized up front.
std::optional<std::string> DecodeBase64(std::string_view in) {
  size_t padding = 0;
  while (!in.empty() && in.back() == '=' && padding < 2) {
    in.remove_suffix(1);
    ++padding;
  }
  if (padding > 0 && (in.size() + padding) % 4 != 0) return std::nullopt;
  if (in.size() % 4 == 1) return std::nullopt;
  const size_t whole = in.size() / 4;
  const size_t tail = in.size() % 4;  // 0, 2 or 3 characters: 0, 1 or 2 bytes
  std::string out(whole * 3 + (tail == 0 ? 0 : tail - 1), '\0');
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  char* o = out.data();
  for (size_t i = 0; i < whole; ++i, p += 4, o += 3) {
    const int a = kBase64Values[p[0]], b = kBase64Values[p[1]], c = kBase64Values[p[2]],
              d = kBase64Values[p[3]];
    if ((a | b | c | d) < 0) return std::nullopt;
    const uint32_t v = static_cast<uint32_t>(a) << 18 | static_cast<uint32_t>(b) << 12 |
                       static_cast<uint32_t>(c) << 6 | static_cast<uint32_t>(d);
    o[0] = static_cast<char>(v >> 16);
    o[1] = static_cast<char>((v >> 8) & 0xff);
    o[2] = static_cast<char>(v & 0xff);
  }
  if (tail > 0) {
    uint32_t v = 0;
    for (size_t i = 0; i < tail; ++i) {
      const int x = kBase64Values[p[i]];
      if (x < 0) return std::nullopt;
      v = v << 6 | static_cast<uint32_t>(x);
    }
    // 2 characters: 12 bits, one byte (the low 4 bits dropped); 3: 18 bits, two bytes.
    if (tail == 2) {
      o[0] = static_cast<char>((v >> 4) & 0xff);
    } else {
      o[0] = static_cast<char>((v >> 10) & 0xff);
      o[1] = static_cast<char>((v >> 2) & 0xff);
    }
  }
  return out;
}

// Width x height from a PNG's IHDR (bytes 16..23, big-endian); -1 when there is no IHDR.
int64_t PngPixels(std::string_view png) {
  if (png.size() < 24 || png.substr(12, 4) != "IHDR") return -1;
  auto be32 = [&](size_t at) {
    return (static_cast<uint32_t>(static_cast<unsigned char>(png[at])) << 24) |
           (static_cast<uint32_t>(static_cast<unsigned char>(png[at + 1])) << 16) |
           (static_cast<uint32_t>(static_cast<unsigned char>(png[at + 2])) << 8) |
           static_cast<uint32_t>(static_cast<unsigned char>(png[at + 3]));
  };
  // PNG dimensions are at most 2^31 - 1; larger declared values are invalid, and are counted as
  // "too many pixels" (the product of two 32-bit values could overflow int64_t).
  constexpr uint32_t kMaxPngDimension = 0x7fffffff;
  const uint32_t width = be32(16);
  const uint32_t height = be32(20);
  if (width > kMaxPngDimension || height > kMaxPngDimension) {
    return std::numeric_limits<int64_t>::max();
  }
  return static_cast<int64_t>(width) * static_cast<int64_t>(height);
}

absl::Status ParsePngMask(std::string_view mask, const SpatialItemLimits& limits,
                          SpatialItem& item) {
  std::string_view payload = mask;
  if (payload.substr(0, 5) == "data:") {
    const size_t comma = payload.find(',');
    if (comma == std::string_view::npos) return DegenerateMask("data URL without a comma");
    const std::string_view header = payload.substr(0, comma);
    constexpr std::string_view kBase64Suffix = ";base64";
    if (header.size() < kBase64Suffix.size() ||
        header.substr(header.size() - kBase64Suffix.size()) != kBase64Suffix) {
      return DegenerateMask("data URL is not base64");
    }
    payload.remove_prefix(comma + 1);
  }
  if (payload.empty()) return DegenerateMask("empty mask");
  if (payload.front() == '<') return DegenerateMask("segmentation tokens instead of an image");
  std::optional<std::string> decoded = DecodeBase64(payload);
  if (!decoded.has_value()) return DegenerateMask("invalid base64");
  if (std::string_view(*decoded).substr(0, kPngSignature.size()) != kPngSignature) {
    return DegenerateMask("not a PNG image");
  }
  // A PNG whose header declares more pixels than the limit is refused before any decoding (a
  // PNG without an IHDR is left to the decoder, which refuses it).
  if (PngPixels(*decoded) > limits.max_mask_png_pixels) {
    return DegenerateMask("PNG is larger than the mask size limit");
  }
  item.mask_kind = SpatialItem::MaskKind::kPng;
  item.mask_png = *std::move(decoded);
  return absl::OkStatus();
}

absl::Status ParsePolygonMask(const json::array& mask, const SpatialItemLimits& limits,
                              SpatialItem& item) {
  // Several polygons ([[[x,y],...],...]): descend through first elements to the first polygon,
  // i.e. the first array whose first element is not itself an array of arrays.
  const json::array* polygon = &mask;
  while (!polygon->empty()) {
    const json::array* first = (*polygon)[0].if_array();
    if (first == nullptr || first->empty() || !(*first)[0].is_array()) break;
    polygon = first;
  }
  if (polygon->size() < 3) return DegenerateMask("polygon has fewer than 3 points");
  if (polygon->size() > static_cast<size_t>(std::max(0, limits.max_polygon_points))) {
    return DegenerateMask("polygon has more points than the limit");
  }
  std::vector<std::pair<double, double>> points;
  points.reserve(polygon->size());
  for (const json::value& point : *polygon) {
    const json::array* xy = point.if_array();
    if (xy == nullptr || xy->size() != 2) return DegenerateMask("polygon point is not [x, y]");
    const std::optional<double> x = AsNumber((*xy)[0]);
    const std::optional<double> y = AsNumber((*xy)[1]);
    if (!x.has_value() || !y.has_value()) return DegenerateMask("polygon point is not numeric");
    points.emplace_back(*x, *y);
  }
  item.mask_kind = SpatialItem::MaskKind::kPolygon;
  item.polygon = std::move(points);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SpatialItem> ParseSpatialItem(std::string_view element_json, bool want_mask,
                                             const SpatialItemLimits& limits) {
  json::error_code ec;
  const json::value root =
      json::parse(json::string_view(element_json.data(), element_json.size()), ec);
  if (ec) return absl::InvalidArgumentError("malformed item: not valid JSON");
  const json::object* obj = root.if_object();
  if (obj == nullptr) return absl::InvalidArgumentError("malformed item: not a JSON object");

  SpatialItem item;

  const json::value* box = obj->if_contains("box_2d");
  const json::array* box_array = box == nullptr ? nullptr : box->if_array();
  if (box_array == nullptr || box_array->size() != 4) return MalformedBox();
  for (size_t i = 0; i < 4; ++i) {
    const std::optional<double> v = AsNumber((*box_array)[i]);
    if (!v.has_value()) return MalformedBox();
    item.box_2d[i] = *v;
  }

  item.label = std::string(kDefaultLabel);
  if (const json::value* label = obj->if_contains("label"); label != nullptr && !label->is_null()) {
    const json::string* s = label->if_string();
    if (s == nullptr) return absl::InvalidArgumentError("malformed label");
    if (!s->empty()) item.label.assign(s->data(), s->size());
  }

  if (!want_mask) return item;
  const json::value* mask = obj->if_contains("mask");
  if (mask == nullptr || mask->is_null()) return DegenerateMask("missing");
  if (const json::string* s = mask->if_string()) {
    if (absl::Status st = ParsePngMask(std::string_view(s->data(), s->size()), limits, item); !st.ok()) {
      return st;
    }
  } else if (const json::array* a = mask->if_array()) {
    if (absl::Status st = ParsePolygonMask(*a, limits, item); !st.ok()) return st;
  } else {
    return DegenerateMask("neither a PNG string nor a polygon");
  }
  return item;
}

}  // namespace vision_gateway::vision
