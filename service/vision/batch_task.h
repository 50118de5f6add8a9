// CreateBatch (issue #20): a client stream (CreateBatchHeader, then items) → a batch job at Gemini,
// in constant memory.
//
// Each item's Gemini request is built exactly as the online RPC of the job's task builds it (the
// same prompt, system instruction, schema and fitted model options: BuildCaptionContent,
// ValidateSpatialRequest; Detect/Segment images prepared by image::PrepareImage with the same
// options, so the upright size is known; file references waited for; inline images over
// max_inline_request_bytes uploaded to the Files API first), given its line key (batch_key.h),
// and appended as one JSONL line to a spool file in `spool_dir` (deleted when the call ends).
// Nothing of an item stays in memory once its line is written, except its key (for the
// uniqueness check: at most max_items x 128 bytes). At half-close the file is uploaded with the
// resumable Files protocol in granularity-sized chunks read back from the spool (one chunk in
// memory), waited for until ACTIVE, and the job is created from it with the display name's tag.
//
// Why a spool and not the bytes streamed straight through as Upload does: Gemini's resumable
// start needs the total size up front, and a request file's size is known only at the end.
//
// The spool's bytes are reserved from context.spool_bytes as each line is written and given back
// when the request file is removed (uploaded, or the call failed): a line that does not fit fails
// the call with RESOURCE_EXHAUSTED (SERVER_OVERLOADED, metadata limit=batch_spool_max_mb), its
// partial file removed at once.
//
// Limits: at most max_items items (the item count is the job's only other limit: each line
// holds one image, so the file reaches Gemini's 2 GB per file only with inline images averaging
// over 2 GB / max_items), the file at most kMaxGeminiFileBytes; keys 1..128 bytes, unique. A
// caller that sends nothing for options->upload_idle_timeout while the gateway waits for a
// message fails the call with DEADLINE_EXCEEDED, ErrorInfo UPLOAD_IDLE.
//
// Threads: OnMessage/OnHalfClose come one at a time, only after `read` asked for one; upstream
// callbacks from I/O threads; Cancel from anywhere.
#ifndef VISION_GATEWAY_SERVICE_VISION_BATCH_TASK_H_
#define VISION_GATEWAY_SERVICE_VISION_BATCH_TASK_H_

#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/common/semaphore.h"
#include "service/gemini/batches_stub.h"
#include "service/vision/file_service.h"
#include "service/vision/v1.h"

namespace vision_gateway::vision {

struct BatchCreateContext {
  // Files (uploads, file references), the CPU pool, the timer, the owner tag.
  FilesContext files;
  // The caller's options (its policy: cost limits, allowed models), as the online RPCs use them.
  std::shared_ptr<const VisionOptions> options;
  gemini::BatchesStub* batches = nullptr;
  // Where request files are written while their items arrive (--batch_spool_dir).
  std::string spool_dir = "/tmp";
  // The bound on the bytes of every request file being written at once (--batch_spool_max_mb),
  // shared by the service's CreateBatch calls; it outlives the call. Null: unbounded.
  Semaphore* spool_bytes = nullptr;
  // Most items per job (--max_batch_items).
  int max_items = 10'000;
};

// The header checked (INVALID_ARGUMENT): task set, display_name at most
// kMaxBatchDisplayNameBytes without "|vg-", prompt, max_objects, threshold, max_dimension and
// model options as the online request of the task takes them. Returns the model id.
absl::StatusOr<std::string> ValidateBatchHeader(const v1::CreateBatchHeader& header,
                                                const VisionOptions& options);

// One item's request line, ready to write.
struct BatchItemRequest {
  std::string line_key;  // batch_key.h
  gemini::GenerateContentRequest request;
};

// Builds one item's request as the online RPC of header.task would send it (see above). The
// header must have passed ValidateBatchHeader. Errors as the online RPC's, naming the item.
void BuildBatchItem(const FilesContext& files, const VisionOptions& options,
                    const v1::CreateBatchHeader& header,
                    v1::CreateBatchItem item, absl::Time deadline,
                    std::shared_ptr<StagedCall> stage,
                    absl::AnyInvocable<void(absl::StatusOr<BatchItemRequest>)> done);

struct BatchCreateCallbacks {
  // Asks for the next message: the owner starts one read, then calls OnMessage or OnHalfClose.
  absl::AnyInvocable<void()> read;
  // Exactly once. After it, `read` is never called again.
  absl::AnyInvocable<void(absl::StatusOr<v1::BatchJob>)> done;
};

class BatchCreateTask {
 public:
  virtual ~BatchCreateTask() = default;
  virtual void Begin() = 0;
  virtual void OnMessage(v1::CreateBatchRequest message) = 0;
  virtual void OnHalfClose() = 0;
  virtual void Cancel() = 0;
};

std::shared_ptr<BatchCreateTask> MakeBatchCreate(const BatchCreateContext& context,
                                                 absl::Time deadline,
                                                 BatchCreateCallbacks callbacks);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_BATCH_TASK_H_
