// Batch results (issue #20): a SUCCEEDED job's responses, post-processed item by item through the
// online tasks' own result pipelines (CaptionStream, SpatialResults) into the messages the online
// RPC streams, each wrapped in a v1::BatchResult with the caller's key.
//
// The reader is paced by its consumer and holds, besides the item being delivered, at most one
// downloaded piece of the responses file and one line (bounded by kMaxBatchLineBytes): it asks
// Gemini for the next piece only once the previous one was consumed and every result made from
// it was taken (gemini::DownloadObserver's `more`).
#ifndef VISION_GATEWAY_SERVICE_VISION_BATCH_RESULTS_H_
#define VISION_GATEWAY_SERVICE_VISION_BATCH_RESULTS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/gemini/batches_stub.h"
#include "service/telemetry/call_record.h"
#include "service/vision/batch_service.h"
#include "service/vision/v1.h"
#include "service/vision/vision_options.h"

namespace vision_gateway::vision {

// Longest line of a responses file the reader accepts (a Segment answer with many masks is a few
// MiB); a longer one fails the read with UPSTREAM_RESPONSE_TOO_LARGE.
inline constexpr std::size_t kMaxBatchLineBytes = std::size_t{64} << 20;

// The per-item failures of one results read. A job of thousands of items may fail thousands of
// them the same way: they are counted here (and in the batch metrics) and logged as one summary
// line when the read ends, never one line per item.
struct BatchItemFailures {
  int64_t count = 0;
  // Those whose upstream text the caller's message replaced (ToCallerStatusUnlogged), and the
  // first such text ("REASON: message"), which the summary line shows the operator.
  int64_t hidden = 0;
  std::string first_hidden;

  void Add(const std::string& hidden_text);
  // One warning line for the read of `batch` when anything failed; nothing otherwise.
  void LogSummary(const std::string& batch) const;
};

// An error as an item's BatchItemStatus: the caller's view (ToCallerStatus): its code, message
// and google.rpc details. Logs nothing; the failure is added to `failures` (may be null).
v1::BatchItemStatus ToBatchItemStatus(const absl::Status& status,
                                      BatchItemFailures* failures = nullptr);

// Post-processes one response line of a job whose task is `job_task` and model `model`: emits the
// item's BatchResults in order (the online RPC's messages, or one error). A key the gateway did
// not write, or of another task, is one error result with an empty key
// (UPSTREAM_BAD_RESPONSE); an item whose answer is unusable is one error result with its key,
// exactly as the online RPC would have failed (MODEL_OUTPUT_INVALID, CONTENT_BLOCKED, Gemini's
// error through the error table). Returns the caller key of the line ("" when unknown).
// `record` (may be null) gets the objects emitted and dropped, as the online call's does; an
// error result is added to `failures` (may be null), not logged.
std::string ProcessBatchLine(const gemini::BatchResponseLine& line, v1::BatchTask job_task,
                             const std::string& model, const VisionOptions& options,
                             absl::FunctionRef<void(v1::BatchResult)> emit,
                             const std::shared_ptr<telemetry::CallRecord>& record = nullptr,
                             BatchItemFailures* failures = nullptr);

struct BatchResultsCallbacks {
  // One result; the reader sends the next one only after `next` ran (once, from any thread).
  absl::AnyInvocable<void(v1::BatchResult result, absl::AnyInvocable<void()> next)> on_result;
  // Exactly once, after the last on_result (and not while one is waiting for `next`, except
  // when the read was cancelled).
  absl::AnyInvocable<void(absl::Status)> on_done;
};

// Reads a job's results. Validation errors (name, start_after_key over 128 bytes) come back at
// once. Then: the job is got (NOT_FOUND for a job not visible to context.owner_tag), must be
// SUCCEEDED (else FAILED_PRECONDITION, ErrorInfo BATCH_NOT_SUCCEEDED, the state in the message
// and metadata) and must carry the gateway's tag (else FAILED_PRECONDITION: not created through
// the gateway); its inline responses or its responses file are post-processed on context.cpu
// and delivered one by one. Lines up to and including the item with key start_after_key are
// skipped (nothing is delivered when no item has that key).
absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartReadBatchResults(
    const BatchContext& context, const v1::ReadBatchResultsRequest& request, absl::Time deadline,
    BatchResultsCallbacks callbacks);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_BATCH_RESULTS_H_
