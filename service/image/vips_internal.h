// Private to service/image/*.cc: libvips initialisation, ownership helpers and error capture.
// Nothing outside this folder includes it (public headers stay free of libvips types).
#ifndef VISION_GATEWAY_SERVICE_IMAGE_VIPS_INTERNAL_H_
#define VISION_GATEWAY_SERVICE_IMAGE_VIPS_INTERNAL_H_

#include <vips/vips.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vision_gateway::image::internal {

// Initialises libvips once per process (thread-safe): operation cache off (a cached buffer load
// could otherwise be returned for a new buffer at a reused address, and the cache only grows
// memory here), untrusted loaders (ImageMagick, ...) blocked, and libvips' GLib warnings dropped
// instead of printed. Returns the same error on every call if initialisation failed.
absl::Status EnsureVips();

struct GObjectUnref {
  void operator()(VipsImage* image) const {
    if (image != nullptr) g_object_unref(image);
  }
};
using VipsImagePtr = std::unique_ptr<VipsImage, GObjectUnref>;

struct GFree {
  void operator()(void* p) const { g_free(p); }
};
using GBuffer = std::unique_ptr<void, GFree>;

// Computes every pixel of `image` on the calling thread, top to bottom in strips, and passes each
// row's bytes (VIPS_IMAGE_SIZEOF_LINE of them) to `row` in order. Returns the decoder's error as
// INVALID_ARGUMENT "<what> is corrupt or truncated (<detail>)".
//
// Why not vips_image_write_to_memory, vips_avg or a saver: those run the pipeline on libvips'
// threadpool, and libvips 8.14 (Debian 12) reads the pool's error flag before its workers have
// exited, so a decode error raised by the last work unit can be lost and the sink reports
// success on a truncated image (fixed upstream in libvips 8.15.4, "threadpool: fix a race
// condition in error handling"). A region prepared on this thread reports every error.
// Memory: one strip of the image.
absl::Status ForEachRow(VipsImage* image, std::string_view what,
                        absl::FunctionRef<void(int y, std::string_view bytes)> row);

// ForEachRow into one contiguous buffer of height * VIPS_IMAGE_SIZEOF_LINE bytes.
absl::StatusOr<std::vector<uint8_t>> ReadPixels(VipsImage* image, std::string_view what);

// Takes (and clears) libvips' error buffer as one bounded line of text. The buffer is
// process-wide, so under concurrency it may also hold another thread's message.
std::string TakeVipsError();

// Clears libvips' error buffer (call before an operation whose error is reported).
void ClearVipsError();

}  // namespace vision_gateway::image::internal

#endif  // VISION_GATEWAY_SERVICE_IMAGE_VIPS_INTERNAL_H_
