// Settings of the vision layer, filled from flags in main.cc.
#ifndef VISION_GATEWAY_SERVICE_VISION_VISION_OPTIONS_H_
#define VISION_GATEWAY_SERVICE_VISION_VISION_OPTIONS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "service/vision/cost_guard.h"
#include "service/vision/file_id.h"
#include "absl/time/time.h"

namespace vision_gateway::vision {

class ModelCatalog;     // model_catalog.h
class RerouteReporter;  // model_family.h

// Gemini's per-file limit (2 GB; counted here as 2 GiB, the largest --max_upload_mb).
inline constexpr int64_t kMaxGeminiFileBytes = int64_t{2} << 30;

struct VisionOptions {
  // Model used when a request names none.
  std::string default_model = "gemini-3-flash-preview";
  // Model Segment uses when the request names none (empty: default_model). Flag --segment_model.
  std::string segment_model;
  // Logs and counts reroutes (model_family.h); null: only reported in the answers.
  std::shared_ptr<RerouteReporter> reroutes;
  // Gemini's models list (discovery); null: model ids are not checked against it.
  std::shared_ptr<ModelCatalog> catalog;
  // Prefix that turns "files/abc" into a Gemini file URI: {files_base_uri}/files/abc.
  std::string files_base_uri = "https://generativelanguage.googleapis.com/v1beta";
  // Most images one request may carry (Gemini's limit is 3,600).
  int max_images_per_request = 3600;
  // Largest decoded image accepted (width * height), against decompression bombs.
  int64_t max_image_pixels = 50'000'000;
  // Largest inline image accepted, in bytes (each image). The sum of a request's inline images,
  // base64-encoded, must also fit the upstream request body cap (checked before any work).
  int64_t max_image_bytes = 47 * 1024 * 1024;
  // Segment: bounds on the model's masks (more points / pixels: the object is dropped).
  int max_polygon_points = 10'000;
  int64_t max_mask_png_pixels = 1024 * 1024;
  // Server default for Detect/Segment downscaling when the request gives no max_dimension (0: none).
  int default_max_dimension = 0;
  // Allowed models and per-request spending caps (server flags, per-caller overrides).
  CostLimits cost;
  // Inline images of a request that add up to more than this are uploaded to the Files API and
  // referenced instead (identical bytes reuse one file through their SHA-256). 0: never.
  int64_t max_inline_request_bytes = int64_t{20} << 20;
  // How long the gateway trusts what it learnt about which file holds which SHA-256 (≤ 0: no
  // cache). Flag --file_hash_cache_ttl_s.
  absl::Duration file_hash_ttl = absl::Seconds(30);
  // Largest Upload accepted; at most kMaxGeminiFileBytes (Gemini's per-file limit, 2 GB).
  // Flag --max_upload_mb.
  int64_t max_upload_bytes = kMaxGeminiFileBytes;
  // An uploaded image whose EXIF orientation is not 1 is turned upright before it goes to
  // Gemini, which needs it whole in memory: larger ones are refused (INVALID_ARGUMENT). Flag
  // --max_reorient_upload_mb.
  int64_t max_reorient_upload_bytes = int64_t{64} << 20;
  // Upload chunks sent upstream while they still fill from their callers, service-wide. Each
  // holds an upstream connection for as long as its caller takes to send it, so this stays below
  // the connection limit (main.cc: half of --max_upstream_connections_per_host) and slow
  // uploaders cannot take every connection from the other RPCs. Beyond it a chunk is assembled
  // whole before it is sent (the same memory; receiving and sending then take turns). 0: always.
  int max_filling_upload_chunks = 128;
  // Longest wait Gemini may ask for before an upload's chunk is resumed (RetryInfo); longer: the
  // upload fails at once with Gemini's RetryInfo (--max_retry_delay_s, as for the other calls).
  absl::Duration max_retry_delay = absl::Seconds(60);
  // An Upload whose caller sends no message for this long, while the gateway waits for one, ends
  // with DEADLINE_EXCEEDED (ErrorInfo UPLOAD_IDLE): the upstream session is cancelled and every
  // permit, buffer and connection is given back. Zero: no bound. Flag --upload_idle_timeout_s.
  absl::Duration upload_idle_timeout = absl::Seconds(60);
  // Authenticates the source-hash tag the gateway writes in the display names of files it stored
  // upright (file_id.h). main.cc derives it from the Gemini API key (FileTagKeyFrom), so every
  // replica verifies every other's tags; the default, a random key, verifies only this process's.
  std::string file_tag_key = RandomFileTagKey();
  // ---- Batch jobs (#20) ----
  // Where CreateBatch writes a job's JSONL request file while its items arrive (deleted when the
  // call ends; at most 2 GiB per call in flight). Flag --batch_spool_dir.
  std::string batch_spool_dir = "/tmp";
  // Most bytes of request files in batch_spool_dir at once, over every CreateBatch in flight
  // (reserved as each line is written, given back when the call's upload ends or fails); a call
  // whose next line does not fit fails with RESOURCE_EXHAUSTED. <= 0: unbounded. The service
  // holds one bound (its own options' value). Flag --batch_spool_max_mb.
  int64_t batch_spool_max_bytes = int64_t{4096} << 20;
  // Most items per batch job. Flag --max_batch_items.
  int max_batch_items = 10'000;
};

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_VISION_OPTIONS_H_
