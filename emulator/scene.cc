#include "emulator/scene.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <vips/vips8>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace vision_gateway::emulator {
namespace {

// A pixel is "saturated" (part of a shape) when its chroma and HSV saturation are both high.
constexpr int kMinChroma = 50;          // max(r,g,b) - min(r,g,b), 0..255
constexpr double kMinSaturation = 0.4;  // chroma / max
// Components smaller than this fraction of the image are noise (JPEG fringes, anti-aliasing).
constexpr double kMinComponentFraction = 0.001;
constexpr size_t kMaxObjects = 64;
constexpr int kMaskSize = 256;

absl::Status InitVips() {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] {
    ok = vips_init("gemini-emulator") == 0;
    if (ok) {
      // Buffers are reused at the same addresses: never serve a cached decode.
      vips_cache_set_max(0);
      vips_block_untrusted_set(TRUE);
    }
  });
  if (!ok) return absl::InternalError("libvips failed to initialise");
  return absl::OkStatus();
}

std::string VipsMessage(const vips::VError& error) {
  std::string text = error.what();
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  if (text.size() > 200) text.resize(200);
  vips_error_clear();
  return text;
}

bool SwapsAxes(const vips::VImage& image) {
  if (image.get_typeof(VIPS_META_ORIENTATION) == 0) return false;
  const int orientation = image.get_int(VIPS_META_ORIENTATION);
  return orientation >= 5 && orientation <= 8;
}

// Hue class 0..7 in ColourNames() order, from 8-bit RGB of a saturated pixel.
int HueClass(int r, int g, int b) {
  const int mx = std::max({r, g, b});
  const int mn = std::min({r, g, b});
  const double chroma = mx - mn;
  double hue;
  if (mx == r) {
    hue = 60.0 * std::fmod((g - b) / chroma + 6.0, 6.0);
  } else if (mx == g) {
    hue = 60.0 * ((b - r) / chroma + 2.0);
  } else {
    hue = 60.0 * ((r - g) / chroma + 4.0);
  }
  if (hue < 15 || hue >= 335) return 0;  // red
  if (hue < 45) return 1;                // orange
  if (hue < 70) return 2;                // yellow
  if (hue < 160) return 3;               // green
  if (hue < 200) return 4;               // cyan
  if (hue < 260) return 5;               // blue
  if (hue < 290) return 6;               // purple
  return 7;                              // magenta
}

// Decodes to 8-bit sRGB, alpha flattened on white, EXIF-rotated.
absl::StatusOr<std::vector<uint8_t>> DecodeRgb(std::string_view bytes, int* width, int* height) {
  if (absl::Status status = InitVips(); !status.ok()) return status;
  try {
    vips::VImage image = vips::VImage::new_from_buffer(bytes.data(), bytes.size(), "");
    const int64_t w = image.width();
    const int64_t h = image.height();
    if (w <= 0 || h <= 0 || w * h > kMaxImagePixels) {
      return absl::InvalidArgumentError(absl::StrCat("image too large: ", w, "x", h));
    }
    image = image.autorot();
    if (image.interpretation() != VIPS_INTERPRETATION_sRGB) {
      image = image.colourspace(VIPS_INTERPRETATION_sRGB);
    }
    if (image.has_alpha()) {
      image = image.flatten(vips::VImage::option()->set("background", std::vector<double>{255, 255, 255}));
    }
    if (image.format() != VIPS_FORMAT_UCHAR) image = image.cast(VIPS_FORMAT_UCHAR);
    if (image.bands() > 3) image = image.extract_band(0, vips::VImage::option()->set("n", 3));
    if (image.bands() == 1) image = vips::VImage::bandjoin({image, image, image});
    if (image.bands() != 3) return absl::InvalidArgumentError("unsupported band layout");
    size_t size = 0;
    void* memory = image.write_to_memory(&size);
    std::vector<uint8_t> pixels(static_cast<uint8_t*>(memory), static_cast<uint8_t*>(memory) + size);
    g_free(memory);
    *width = image.width();
    *height = image.height();
    if (pixels.size() != static_cast<size_t>(*width) * *height * 3) {
      return absl::InternalError("unexpected decoded size");
    }
    return pixels;
  } catch (const vips::VError& error) {
    return absl::InvalidArgumentError(absl::StrCat("cannot decode image: ", VipsMessage(error)));
  }
}

// Douglas-Peucker on a closed polygon (first point repeated implicitly).
void Simplify(const std::vector<std::pair<double, double>>& points, size_t first, size_t last,
              double epsilon, std::vector<bool>& keep) {
  if (last <= first + 1) return;
  const auto [ax, ay] = points[first];
  const auto [bx, by] = points[last % points.size()];
  const double dx = bx - ax;
  const double dy = by - ay;
  const double length = std::hypot(dx, dy);
  double worst = -1;
  size_t worst_index = first;
  for (size_t i = first + 1; i < last; ++i) {
    const auto [px, py] = points[i];
    const double distance = length > 0 ? std::abs(dy * (px - ax) - dx * (py - ay)) / length
                                       : std::hypot(px - ax, py - ay);
    if (distance > worst) {
      worst = distance;
      worst_index = i;
    }
  }
  if (worst > epsilon) {
    keep[worst_index] = true;
    Simplify(points, first, worst_index, epsilon, keep);
    Simplify(points, worst_index, last, epsilon, keep);
  }
}

}  // namespace

const std::vector<std::string>& ColourNames() {
  static const auto* names = new std::vector<std::string>{"red",  "orange", "yellow", "green",
                                                          "cyan", "blue",   "purple", "magenta"};
  return *names;
}

absl::StatusOr<std::pair<int, int>> ImageDimensions(std::string_view bytes) {
  if (absl::Status status = InitVips(); !status.ok()) return status;
  try {
    vips::VImage image = vips::VImage::new_from_buffer(bytes.data(), bytes.size(), "");
    int w = image.width();
    int h = image.height();
    if (SwapsAxes(image)) std::swap(w, h);
    return std::make_pair(w, h);
  } catch (const vips::VError& error) {
    return absl::InvalidArgumentError(absl::StrCat("cannot decode image: ", VipsMessage(error)));
  }
}

namespace {

absl::StatusOr<Scene> AnalyzeUncached(std::string_view bytes) {
  Scene scene;
  absl::StatusOr<std::vector<uint8_t>> decoded = DecodeRgb(bytes, &scene.width, &scene.height);
  if (!decoded.ok()) return decoded.status();
  const std::vector<uint8_t>& rgb = *decoded;  // freed once classified
  const int w = scene.width;
  const int h = scene.height;
  const size_t n = static_cast<size_t>(w) * h;

  // Classify: 0 = background, 1 + hue class otherwise; bit 7 marks visited pixels below.
  std::vector<uint8_t> cls(n, 0);
  double background_value = 0;
  size_t background_pixels = 0;
  for (size_t i = 0; i < n; ++i) {
    const int r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
    const int mx = std::max({r, g, b});
    const int mn = std::min({r, g, b});
    if (mx - mn >= kMinChroma && (mx - mn) >= kMinSaturation * mx) {
      cls[i] = static_cast<uint8_t>(1 + HueClass(r, g, b));
    } else {
      background_value += mx;
      ++background_pixels;
    }
  }
  decoded->clear();
  decoded->shrink_to_fit();
  scene.light_background =
      background_pixels == 0 || background_value / background_pixels >= 0.5 * 255;

  // 8-connected components of equal class.
  constexpr uint8_t kVisited = 0x80;
  const int64_t min_area =
      std::max<int64_t>(4, static_cast<int64_t>(std::ceil(kMinComponentFraction * n)));
  std::vector<uint32_t> stack;
  std::vector<uint32_t> members;
  for (size_t start = 0; start < n; ++start) {
    if (cls[start] == 0 || (cls[start] & kVisited) != 0) continue;
    const uint8_t c = cls[start];
    members.clear();
    stack.push_back(static_cast<uint32_t>(start));
    cls[start] |= kVisited;
    int x0 = w, y0 = h, x1 = -1, y1 = -1;
    while (!stack.empty()) {
      const uint32_t p = stack.back();
      stack.pop_back();
      members.push_back(p);
      const int x = static_cast<int>(p % w);
      const int y = static_cast<int>(p / w);
      x0 = std::min(x0, x);
      x1 = std::max(x1, x);
      y0 = std::min(y0, y);
      y1 = std::max(y1, y);
      for (int dy = -1; dy <= 1; ++dy) {
        const int ny = y + dy;
        if (ny < 0 || ny >= h) continue;
        for (int dx = -1; dx <= 1; ++dx) {
          const int nx = x + dx;
          if ((dx == 0 && dy == 0) || nx < 0 || nx >= w) continue;
          const size_t q = static_cast<size_t>(ny) * w + nx;
          if (cls[q] == c) {
            cls[q] |= kVisited;
            stack.push_back(static_cast<uint32_t>(q));
          }
        }
      }
    }
    if (static_cast<int64_t>(members.size()) < min_area) continue;
    SceneObject object;
    object.label = ColourNames()[c - 1];
    object.x0 = x0;
    object.y0 = y0;
    object.x1 = x1 + 1;
    object.y1 = y1 + 1;
    object.area = static_cast<int64_t>(members.size());
    object.mask.assign(static_cast<size_t>(object.width()) * object.height(), 0);
    for (uint32_t p : members) {
      const int x = static_cast<int>(p % w);
      const int y = static_cast<int>(p / w);
      object.mask[static_cast<size_t>(y - y0) * object.width() + (x - x0)] = 1;
    }
    scene.objects.push_back(std::move(object));
  }
  std::stable_sort(scene.objects.begin(), scene.objects.end(),
                   [](const SceneObject& a, const SceneObject& b) {
                     if (a.area != b.area) return a.area > b.area;
                     if (a.y0 != b.y0) return a.y0 < b.y0;
                     return a.x0 < b.x0;
                   });
  if (scene.objects.size() > kMaxObjects) scene.objects.resize(kMaxObjects);
  return scene;
}

// Clients resend the same image many times (retries, load tests); the analysis of the last few
// distinct images is kept, keyed by their bytes.
class SceneCache {
 public:
  absl::StatusOr<Scene> Get(std::string_view bytes) {
    const size_t hash = std::hash<std::string_view>{}(bytes);
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const Entry& e : entries_) {
        if (e.hash == hash && e.bytes == bytes) return e.scene;
      }
    }
    absl::StatusOr<Scene> scene = AnalyzeUncached(bytes);
    if (!scene.ok() || bytes.size() > kMaxCachedImageBytes) return scene;
    std::lock_guard<std::mutex> lock(mu_);
    if (entries_.size() == kEntries) entries_.erase(entries_.begin());
    entries_.push_back(Entry{hash, std::string(bytes), *scene});
    return scene;
  }

 private:
  static constexpr size_t kEntries = 8;
  static constexpr size_t kMaxCachedImageBytes = 4 << 20;
  struct Entry {
    size_t hash;
    std::string bytes;
    Scene scene;
  };
  std::mutex mu_;
  std::vector<Entry> entries_;
};

}  // namespace

absl::StatusOr<Scene> AnalyzeImage(std::string_view bytes) {
  static SceneCache* cache = new SceneCache();
  return cache->Get(bytes);
}

NormalizedBox BoxOf(const Scene& scene, const SceneObject& object) {
  auto lo = [](int p, int size) {
    return std::clamp(static_cast<int>(static_cast<int64_t>(p) * 1000 / size), 0, 1000);
  };
  auto hi = [](int p, int size) {
    return std::clamp(static_cast<int>((static_cast<int64_t>(p) * 1000 + size - 1) / size), 0,
                      1000);
  };
  NormalizedBox box;
  box.ymin = lo(object.y0, scene.height);
  box.xmin = lo(object.x0, scene.width);
  box.ymax = hi(object.y1, scene.height);
  box.xmax = hi(object.x1, scene.width);
  return box;
}

absl::StatusOr<std::string> EncodePng(const uint8_t* pixels, int width, int height, int bands) {
  if (absl::Status status = InitVips(); !status.ok()) return status;
  try {
    vips::VImage image = vips::VImage::new_from_memory(
        const_cast<uint8_t*>(pixels), static_cast<size_t>(width) * height * bands, width, height,
        bands, VIPS_FORMAT_UCHAR);
    image = image.copy(vips::VImage::option()->set(
        "interpretation", bands == 1 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB));
    void* buffer = nullptr;
    size_t size = 0;
    image.write_to_buffer(".png", &buffer, &size);
    std::string png(static_cast<const char*>(buffer), size);
    g_free(buffer);
    return png;
  } catch (const vips::VError& error) {
    return absl::InternalError(absl::StrCat("cannot encode PNG: ", VipsMessage(error)));
  }
}

absl::StatusOr<std::string> MaskPng(const Scene& scene, const SceneObject& object,
                                    const NormalizedBox& box) {
  // The box in pixel-edge coordinates, as a client denormalises it.
  const double bx0 = box.xmin * scene.width / 1000.0;
  const double by0 = box.ymin * scene.height / 1000.0;
  const double bw = std::max(1e-6, (box.xmax - box.xmin) * scene.width / 1000.0);
  const double bh = std::max(1e-6, (box.ymax - box.ymin) * scene.height / 1000.0);
  // Bilinear samples of the 0/1 blob mask (pixel centres at +0.5), averaged over a few
  // sub-samples per output pixel when the box is larger than the mask.
  auto sample = [&](double x, double y) {
    const double fx = x - 0.5;
    const double fy = y - 0.5;
    const int ix = static_cast<int>(std::floor(fx));
    const int iy = static_cast<int>(std::floor(fy));
    const double ax = fx - ix;
    const double ay = fy - iy;
    auto at = [&](int px, int py) { return object.Contains(px, py) ? 1.0 : 0.0; };
    return (1 - ay) * ((1 - ax) * at(ix, iy) + ax * at(ix + 1, iy)) +
           ay * ((1 - ax) * at(ix, iy + 1) + ax * at(ix + 1, iy + 1));
  };
  const int sx = std::clamp(static_cast<int>(std::ceil(bw / kMaskSize)), 1, 4);
  const int sy = std::clamp(static_cast<int>(std::ceil(bh / kMaskSize)), 1, 4);
  std::vector<uint8_t> pixels(static_cast<size_t>(kMaskSize) * kMaskSize);
  for (int v = 0; v < kMaskSize; ++v) {
    for (int u = 0; u < kMaskSize; ++u) {
      double sum = 0;
      for (int j = 0; j < sy; ++j) {
        for (int i = 0; i < sx; ++i) {
          const double x = bx0 + (u + (i + 0.5) / sx) * bw / kMaskSize;
          const double y = by0 + (v + (j + 0.5) / sy) * bh / kMaskSize;
          sum += sample(x, y);
        }
      }
      pixels[static_cast<size_t>(v) * kMaskSize + u] =
          static_cast<uint8_t>(std::lround(255.0 * sum / (sx * sy)));
    }
  }
  return EncodePng(pixels.data(), kMaskSize, kMaskSize, 1);
}

std::vector<std::pair<int, int>> OutlinePolygon(const Scene& scene, const SceneObject& object,
                                                int max_points) {
  // Crack following: directed pixel edges with the blob on their right (y down), traced from
  // the top edge of the first pixel in raster order. At pinch vertices (two diagonal pixels)
  // the left turn is taken, which keeps 8-connected pixels inside one outline.
  const int bw = object.width();
  const int bh = object.height();
  const int vw = bw + 1;  // vertices per row
  enum Direction : uint8_t { kEast = 0, kSouth = 1, kWest = 2, kNorth = 3 };
  constexpr std::array<int, 4> kDx = {1, 0, -1, 0};
  constexpr std::array<int, 4> kDy = {0, 1, 0, -1};
  std::vector<uint8_t> out(static_cast<size_t>(vw) * (bh + 1), 0);  // bit d: edge leaving in d
  auto inside = [&](int x, int y) {
    return x >= 0 && y >= 0 && x < bw && y < bh && object.mask[static_cast<size_t>(y) * bw + x];
  };
  auto vertex = [&](int x, int y) { return static_cast<size_t>(y) * vw + x; };
  int start_x = -1, start_y = -1;
  for (int y = 0; y < bh; ++y) {
    for (int x = 0; x < bw; ++x) {
      if (!inside(x, y)) continue;
      if (start_x < 0) {
        start_x = x;
        start_y = y;
      }
      if (!inside(x, y - 1)) out[vertex(x, y)] |= 1 << kEast;
      if (!inside(x + 1, y)) out[vertex(x + 1, y)] |= 1 << kSouth;
      if (!inside(x, y + 1)) out[vertex(x + 1, y + 1)] |= 1 << kWest;
      if (!inside(x - 1, y)) out[vertex(x, y + 1)] |= 1 << kNorth;
    }
  }
  if (start_x < 0) return {};

  std::vector<std::pair<double, double>> corners;  // pixel-edge coordinates of direction changes
  int x = start_x, y = start_y;
  int heading = kEast;
  const size_t limit = 4 * static_cast<size_t>(vw) * (bh + 1) + 8;
  for (size_t steps = 0; steps < limit; ++steps) {
    x += kDx[heading];
    y += kDy[heading];
    const uint8_t choices = out[vertex(x, y)];
    int next = -1;
    for (int turn : {3, 0, 1}) {  // left, straight, right
      const int d = (heading + turn) % 4;
      if (choices & (1 << d)) {
        next = d;
        break;
      }
    }
    if (next < 0) break;  // cannot happen on a consistent edge set
    if (next != heading) corners.emplace_back(object.x0 + x, object.y0 + y);
    heading = next;
    if (x == start_x && y == start_y && heading == kEast) break;
  }
  if (corners.size() < 3) return {};
  // The start vertex (top-left of the first pixel) was reached last: make it the first point.
  std::rotate(corners.rbegin(), corners.rbegin() + 1, corners.rend());

  // Douglas-Peucker, loosened until the polygon fits in max_points.
  std::vector<std::pair<int, int>> polygon;
  for (double epsilon = 0.5;; epsilon *= 1.5) {
    std::vector<bool> keep(corners.size(), false);
    keep[0] = true;
    Simplify(corners, 0, corners.size(), epsilon, keep);
    polygon.clear();
    for (size_t i = 0; i < corners.size(); ++i) {
      if (!keep[i]) continue;
      const int px = static_cast<int>(std::lround(corners[i].first * 1000.0 / scene.width));
      const int py = static_cast<int>(std::lround(corners[i].second * 1000.0 / scene.height));
      std::pair<int, int> point(std::clamp(px, 0, 1000), std::clamp(py, 0, 1000));
      if (polygon.empty() || polygon.back() != point) polygon.push_back(point);
    }
    if (static_cast<int>(polygon.size()) <= std::max(3, max_points) || epsilon > 1e6) break;
  }
  return polygon;
}

}  // namespace vision_gateway::emulator
