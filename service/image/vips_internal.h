// Private to service/image/*.cc: libvips initialisation, ownership helpers and error capture.
// Nothing outside this folder includes it (public headers stay free of libvips types).
#ifndef VISION_GATEWAY_SERVICE_IMAGE_VIPS_INTERNAL_H_
#define VISION_GATEWAY_SERVICE_IMAGE_VIPS_INTERNAL_H_

#include <vips/vips.h>

#include <memory>
#include <string>

#include "absl/status/status.h"

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

// Takes (and clears) libvips' error buffer as one bounded line of text. The buffer is
// process-wide, so under concurrency it may also hold another thread's message.
std::string TakeVipsError();

// Clears libvips' error buffer (call before an operation whose error is reported).
void ClearVipsError();

}  // namespace vision_gateway::image::internal

#endif  // VISION_GATEWAY_SERVICE_IMAGE_VIPS_INTERNAL_H_
