// Batch jobs as the vision layer sees them (issue #20): the job RPCs (get, list, cancel, delete)
// over Gemini's Batch API, for the jobs visible to the caller.
//
// Ownership: as with files (file_service.h), with authentication on a call sees only the jobs
// whose display name carries the caller's owner tag (batch_key.h); every other job is answered
// exactly as a job that does not exist (NOT_FOUND, ErrorInfo BATCH_NOT_FOUND), and for
// GetBatch-like calls that answer comes after one GetBatch at Gemini (the owner is in the job,
// not its name). Stateless: the job is the record.
#ifndef VISION_GATEWAY_SERVICE_VISION_BATCH_SERVICE_H_
#define VISION_GATEWAY_SERVICE_VISION_BATCH_SERVICE_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/common/thread_pool.h"
#include "service/gemini/batches_stub.h"
#include "service/telemetry/call_record.h"
#include "service/vision/v1.h"
#include "service/vision/vision_options.h"

namespace vision_gateway::vision {

// What the batch calls need besides the request.
struct BatchContext {
  gemini::BatchesStub* batches = nullptr;
  // Result post-processing (Segment's masks) runs here.
  ThreadPool* cpu = nullptr;
  const VisionOptions* options = nullptr;
  // The caller's owner tag (OwnerTagOf) with authentication on; "" with it off.
  std::string owner_tag;
  // The call's telemetry record (may be null).
  std::shared_ptr<telemetry::CallRecord> record;
};

// NOT_FOUND, ErrorInfo BATCH_NOT_FOUND: the job does not exist or is not the caller's.
absl::Status BatchNotFound(const std::string& name);

// The metric label of a batch task: "caption", "detect", "segment" ("" when unspecified).
std::string_view BatchTaskLabel(v1::BatchTask task);

// Counts `count` batch `event`s for `task` on `model` in the record's telemetry (none when the
// record is null).
void CountBatch(const std::shared_ptr<telemetry::CallRecord>& record, v1::BatchTask task,
                std::string_view model, telemetry::BatchEvent event, int64_t count);

// "batches/<id>" (BatchIdOf) or INVALID_ARGUMENT naming the field.
absl::StatusOr<std::string> BatchNameOf(const std::string& name);

// Gemini's job as the public contract shows it (task and display name from the display name's
// tag, the model without "models/").
v1::BatchJob ToV1BatchJob(const gemini::BatchJob& job);

// Gets the job and checks it is visible to context.owner_tag (else BatchNotFound). Errors in the
// caller's terms: Gemini's 403/404 are BatchNotFound, the rest go through the error table.
std::shared_ptr<gemini::PendingCall> GetVisibleBatch(
    const BatchContext& context, const std::string& name, absl::Time deadline,
    absl::AnyInvocable<void(absl::StatusOr<gemini::BatchJob>)> done);

absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartGetBatch(
    const BatchContext& context, const v1::GetBatchRequest& request, absl::Time deadline,
    absl::AnyInvocable<void(absl::StatusOr<v1::BatchJob>)> done);

// Without authentication Gemini's pages pass through (page_size jobs, Gemini's tokens wrapped in
// the gateway's). With it, Gemini's pages of 100 are read and the caller's jobs kept: at most
// page_size per page, possibly none while next_page_token is set; at most kMaxBatchListScanPages
// of Gemini's pages per call. The tokens are the gateway's own (a position in Gemini's list:
// Gemini's page token and how many of that page were consumed); another token is
// INVALID_ARGUMENT.
inline constexpr int kMaxBatchListScanPages = 10;
absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartListBatches(
    const BatchContext& context, const v1::ListBatchesRequest& request, absl::Time deadline,
    absl::AnyInvocable<void(absl::StatusOr<v1::ListBatchesResponse>)> done);

// Cancel and Delete: the job is looked up first (ownership), then cancelled/deleted.
absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartCancelBatch(
    const BatchContext& context, const v1::CancelBatchRequest& request, absl::Time deadline,
    absl::AnyInvocable<void(absl::Status)> done);
absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartDeleteBatch(
    const BatchContext& context, const v1::DeleteBatchRequest& request, absl::Time deadline,
    absl::AnyInvocable<void(absl::Status)> done);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_BATCH_SERVICE_H_
