#include "service/image/vips_internal.h"

#include <algorithm>
#include <mutex>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"

namespace vision_gateway::image::internal {
namespace {

// Longest libvips error text put into a status message.
constexpr size_t kMaxErrorChars = 300;
// Rows computed per vips_region_prepare call in ForEachRow.
constexpr int kStripRows = 64;

struct RegionUnref {
  void operator()(VipsRegion* region) const {
    if (region != nullptr) g_object_unref(region);
  }
};

void DropGLibMessage(const gchar* /*domain*/, GLogLevelFlags /*level*/, const gchar* /*message*/,
                     gpointer /*data*/) {}

absl::Status InitOnce() {
  // libvips reports recoverable decoder problems (e.g. "premature end of JPEG file") as GLib
  // warnings on stderr. Failures we care about come back as errors; the rest is noise.
  g_log_set_handler("VIPS",
                    static_cast<GLogLevelFlags>(G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE |
                                                G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG),
                    DropGLibMessage, nullptr);
  if (VIPS_INIT("vision-gateway") != 0) {
    return absl::InternalError("libvips failed to initialise: " + TakeVipsError());
  }
  vips_cache_set_max(0);
  vips_block_untrusted_set(TRUE);
  return absl::OkStatus();
}

}  // namespace

absl::Status EnsureVips() {
  static std::once_flag once;
  static absl::Status* status = nullptr;  // never destroyed: libvips may run after exit begins
  std::call_once(once, [] { status = new absl::Status(InitOnce()); });
  return *status;
}

std::string TakeVipsError() {
  GBuffer raw(vips_error_buffer_copy());
  std::string text = raw != nullptr ? static_cast<const char*>(raw.get()) : "";
  text = absl::StrReplaceAll(text, {{"\r", " "}, {"\n", "; "}});
  for (char& c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) c = '?';  // keep status messages printable ASCII
  }
  absl::StripAsciiWhitespace(&text);
  while (!text.empty() && (text.back() == ';' || text.back() == ' ')) text.pop_back();
  if (text.size() > kMaxErrorChars) {
    // The newest message is last; older text may be left over from an operation that
    // recovered (or from another thread).
    text = "..." + text.substr(text.size() - kMaxErrorChars);
  }
  if (text.empty()) text = "no detail from the decoder";
  return text;
}

void ClearVipsError() { vips_error_clear(); }

absl::Status ForEachRow(VipsImage* image, std::string_view what,
                        absl::FunctionRef<void(int y, std::string_view bytes)> row) {
  std::unique_ptr<VipsRegion, RegionUnref> region(vips_region_new(image));
  if (region == nullptr) {
    return absl::InternalError(absl::StrFormat("libvips: %s", TakeVipsError()));
  }
  const int width = vips_image_get_width(image);
  const int height = vips_image_get_height(image);
  const size_t line_bytes = VIPS_IMAGE_SIZEOF_LINE(image);
  for (int top = 0; top < height; top += kStripRows) {
    VipsRect strip{0, top, width, std::min(kStripRows, height - top)};
    if (vips_region_prepare(region.get(), &strip) != 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s is corrupt or truncated (%s)", what, TakeVipsError()));
    }
    for (int y = strip.top; y < strip.top + strip.height; ++y) {
      row(y, std::string_view(reinterpret_cast<const char*>(VIPS_REGION_ADDR(region.get(), 0, y)),
                              line_bytes));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint8_t>> ReadPixels(VipsImage* image, std::string_view what) {
  const size_t line_bytes = VIPS_IMAGE_SIZEOF_LINE(image);
  std::vector<uint8_t> pixels(line_bytes * static_cast<size_t>(vips_image_get_height(image)));
  absl::Status status = ForEachRow(image, what, [&](int y, std::string_view bytes) {
    std::copy(bytes.begin(), bytes.end(), pixels.begin() + static_cast<ptrdiff_t>(y * line_bytes));
  });
  if (!status.ok()) return status;
  return pixels;
}

}  // namespace vision_gateway::image::internal
