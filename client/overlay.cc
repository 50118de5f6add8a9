#include "client/overlay.h"

#include <vips/vips8>

#include <algorithm>
#include <array>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace vision_gateway::client {
namespace {

using vips::VImage;

// Distinct, saturated colours.
constexpr std::array<std::array<double, 3>, 10> kPalette = {{{230, 25, 75},
                                                             {60, 180, 75},
                                                             {255, 140, 0},
                                                             {0, 130, 200},
                                                             {145, 30, 180},
                                                             {70, 240, 240},
                                                             {240, 50, 230},
                                                             {128, 128, 0},
                                                             {0, 0, 128},
                                                             {170, 110, 40}}};
constexpr double kMaskOpacity = 0.45;

struct Box {
  int x = 0, y = 0, width = 0, height = 0;
};

// The palette colour farthest from the box's mean colour (so a red object does not get a red
// outline), preferring colours no earlier object got.
std::vector<double> Ink(const VImage& image, const Box& box, std::vector<bool>& used) {
  VImage area = image.extract_area(box.x, box.y, box.width, box.height);
  std::array<double, 3> mean;
  for (int b = 0; b < 3; ++b) mean[static_cast<std::size_t>(b)] = area.extract_band(b).avg();
  std::size_t best = 0;
  double best_score = -1;
  for (std::size_t i = 0; i < kPalette.size(); ++i) {
    double distance = 0;
    for (std::size_t b = 0; b < 3; ++b) {
      distance += (kPalette[i][b] - mean[b]) * (kPalette[i][b] - mean[b]);
    }
    const double score = distance + (used[i] ? 0 : 1e6);
    if (score > best_score) {
      best_score = score;
      best = i;
    }
  }
  used[best] = true;
  if (std::all_of(used.begin(), used.end(), [](bool u) { return u; })) {
    used.assign(used.size(), false);
  }
  return {kPalette[best][0], kPalette[best][1], kPalette[best][2]};
}

// The box clipped to the image; empty (width or height 0) when nothing of it is inside.
Box Clip(const ::vision::v1::BoundingBox& b, const VImage& image) {
  Box box;
  box.x = std::clamp(b.x_min(), 0, image.width());
  box.y = std::clamp(b.y_min(), 0, image.height());
  box.width = std::clamp(b.x_max(), 0, image.width()) - box.x;
  box.height = std::clamp(b.y_max(), 0, image.height()) - box.y;
  return box;
}

int LineWidth(const VImage& image) {
  return std::clamp(std::min(image.width(), image.height()) / 200, 2, 6);
}

// "3 blue" in white or black on a patch of the object's colour, above the box when there is room, else
// just inside its top edge. libvips renders the text (Pango markup, so the label is escaped).
void DrawLabel(VImage& image, const std::string& text, const Box& box, const std::vector<double>& ink) {
  const int points = std::clamp(image.height() / 40, 9, 28);
  const std::string markup =
      absl::StrReplaceAll(text, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}});
  VImage label = VImage::text(markup.c_str(), VImage::option()
                                                  ->set("font", absl::StrCat("sans ", points).c_str())
                                                  ->set("dpi", 72));
  const int pad = 2;
  const int width = label.width() + 2 * pad;
  const int height = label.height() + 2 * pad;
  int x = std::clamp(box.x, 0, std::max(0, image.width() - width));
  int y = box.y - height >= 0 ? box.y - height : box.y;
  image.draw_rect(ink, x, y, width, height, VImage::option()->set("fill", true));
  const double luma = 0.299 * ink[0] + 0.587 * ink[1] + 0.114 * ink[2];
  const std::vector<double> text_ink = luma > 150 ? std::vector<double>{0, 0, 0}
                                                  : std::vector<double>{255, 255, 255};
  image.draw_mask(text_ink, label, x + pad, y + pad);
}

void DrawDetection(VImage& image, const ::vision::v1::Detection& d, std::vector<bool>& used) {
  const Box box = Clip(d.box(), image);
  if (box.width <= 0 || box.height <= 0) return;
  const std::vector<double> ink = Ink(image, box, used);
  const int line = std::min({LineWidth(image), (box.width + 1) / 2, (box.height + 1) / 2});
  for (int t = 0; t < line; ++t) {
    image.draw_rect(ink, box.x + t, box.y + t, box.width - 2 * t, box.height - 2 * t,
                    VImage::option()->set("fill", false));
  }
  DrawLabel(image, absl::StrCat(d.index(), " ", d.label()), box, ink);
}

void DrawMask(VImage& image, const ::vision::v1::Mask& m, std::vector<bool>& used) {
  const Box box = Clip(m.box(), image);
  if (box.width <= 0 || box.height <= 0 || m.png().empty()) return;
  const std::vector<double> ink = Ink(image, box, used);
  VImage mask = VImage::new_from_buffer(m.png(), "");
  if (mask.bands() > 1) mask = mask.extract_band(0);
  mask = mask.cast(VIPS_FORMAT_UCHAR);
  if (mask.width() != m.box().x_max() - m.box().x_min() ||
      mask.height() != m.box().y_max() - m.box().y_min()) {
    // Not the box's size (it always is from vision-gateway): fit it, nearest neighbour.
    mask = mask.resize(static_cast<double>(box.width) / mask.width(),
                       VImage::option()
                           ->set("vscale", static_cast<double>(box.height) / mask.height())
                           ->set("kernel", VIPS_KERNEL_NEAREST));
  }
  // Offset of the clipped box inside the mask (a box partly outside the image).
  const int dx = box.x - m.box().x_min();
  const int dy = box.y - m.box().y_min();
  mask = mask.extract_area(std::max(dx, 0), std::max(dy, 0),
                           std::min(box.width, mask.width() - std::max(dx, 0)),
                           std::min(box.height, mask.height() - std::max(dy, 0)));
  // Translucent fill, then the outline: the mask minus its erosion.
  image.draw_mask(ink, (mask * kMaskOpacity).cast(VIPS_FORMAT_UCHAR), box.x, box.y);
  const int line = LineWidth(image) / 2 * 2 + 1;
  std::vector<double> square(static_cast<std::size_t>(line * line), 255.0);
  VImage eroded = mask.embed(line, line, mask.width() + 2 * line, mask.height() + 2 * line)
                      .morph(VImage::new_matrix(line, line, square.data(), line * line),
                             VIPS_OPERATION_MORPHOLOGY_ERODE)
                      .extract_area(line, line, mask.width(), mask.height());
  image.draw_mask(ink, (mask - eroded).cast(VIPS_FORMAT_UCHAR), box.x, box.y);
  DrawLabel(image, absl::StrCat(m.index(), " ", m.label()), box, ink);
}

}  // namespace

absl::Status InitOverlay(const char* argv0) {
  if (VIPS_INIT(argv0) != 0) return absl::InternalError("libvips failed to start");
  return absl::OkStatus();
}

absl::StatusOr<std::string> DrawOverlay(const std::string& image_bytes, int width, int height,
                                        const Overlay& overlay) {
  try {
    VImage image = VImage::new_from_buffer(image_bytes, "").autorot();
    if (image.width() != width || image.height() != height) {
      return absl::FailedPreconditionError(
          absl::StrCat("the upright image is ", image.width(), "x", image.height(),
                       " pixels but the server's geometry is for ", width, "x", height));
    }
    if (image.has_alpha()) {
      image = image.flatten(VImage::option()->set("background", std::vector<double>{255, 255, 255}));
    }
    image = image.colourspace(VIPS_INTERPRETATION_sRGB).cast(VIPS_FORMAT_UCHAR);
    if (image.bands() > 3) image = image.extract_band(0, VImage::option()->set("n", 3));
    image = image.copy_memory();
    std::vector<bool> used(kPalette.size(), false);
    for (const ::vision::v1::Mask& m : overlay.masks) DrawMask(image, m, used);
    for (const ::vision::v1::Detection& d : overlay.detections) DrawDetection(image, d, used);
    void* buffer = nullptr;
    std::size_t size = 0;
    image.write_to_buffer(".png", &buffer, &size);
    std::string png(static_cast<const char*>(buffer), size);
    g_free(buffer);
    return png;
  } catch (const vips::VError& e) {
    return absl::InvalidArgumentError(absl::StrCat("drawing failed: ", e.what()));
  }
}

}  // namespace vision_gateway::client
