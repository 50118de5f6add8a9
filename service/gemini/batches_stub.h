// The stub of Gemini's Batch API (gemini-wire.md, addendum "Batch API"): batchGenerateContent,
// batches get/list/cancel/delete, and the download of a batch's responses file. One stub per
// Gemini service (see generate_stub.h); errors as described there. A batch runs at half the
// online price and answers within 24 h; the gateway keeps no state of its own about a job: what
// it needs to post-process an item travels inside the job (its request lines' keys, its display
// name).
#ifndef VISION_GATEWAY_SERVICE_GEMINI_BATCHES_STUB_H_
#define VISION_GATEWAY_SERVICE_GEMINI_BATCHES_STUB_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/gemini/pending_call.h"
#include "service/gemini/types.h"

namespace vision_gateway::gemini {

// One request of a batch given inline (inputConfig.requests.requests[]).
struct InlinedRequest {
  GenerateContentRequest request;
  // metadata.key; empty: not sent.
  std::string key;
};

// batchGenerateContent's body ({"batch": {...}}). Exactly one of `input_file` and
// `inlined_requests` is set.
struct CreateBatchRequest {
  std::string display_name;  // required by Gemini
  // inputConfig.fileName: "files/<id>", a JSONL file of {"key": ..., "request": {...}} lines.
  std::string input_file;
  // inputConfig.requests.requests (Gemini caps an inline batch at 20 MB).
  std::vector<InlinedRequest> inlined_requests;
};

// One answer of a batch given inline (output.inlinedResponses.inlinedResponses[]), or one line of
// a responses file ({"key": ..., "response": {...}} or {"key": ..., "error": {...}}).
struct BatchResponseLine {
  std::string key;  // the request's key (metadata.key inline); empty when absent
  // Exactly one of the two: Gemini's answer, or the item's error mapped through the error table.
  std::optional<GenerateContentResponse> response;
  absl::Status error;
};

struct BatchStats {
  int64_t request_count = 0;
  int64_t successful_request_count = 0;
  int64_t failed_request_count = 0;
  int64_t pending_request_count = 0;
};

// A batch job: the operation's metadata (GenerateContentBatch).
struct BatchJob {
  std::string name;          // "batches/<id>"
  std::string display_name;
  std::string model;         // "models/<id>"
  // "BATCH_STATE_PENDING", "BATCH_STATE_RUNNING", "BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED",
  // "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED" (or "BATCH_STATE_UNSPECIFIED"), as on the wire.
  std::string state;
  // Absent timestamps are InfinitePast.
  absl::Time create_time = absl::InfinitePast();
  absl::Time update_time = absl::InfinitePast();
  absl::Time end_time = absl::InfinitePast();
  BatchStats stats;
  // The output once the job ended: a responses file ("files/<id>"), or the answers inline.
  std::string responses_file;
  std::vector<BatchResponseLine> inlined_responses;
  // The operation's error (a FAILED job), mapped through the error table; OK when absent.
  absl::Status error;
  // The input as Gemini reports it: inputConfig.fileName, when the job was created from a file.
  std::string input_file;
};

struct ListBatchesResponse {
  std::vector<BatchJob> batches;  // operations[].metadata
  std::string next_page_token;    // empty on the last page
};

// The body of a download, read as the caller is ready for it: on_data gets the next piece (any
// size, split anywhere) and `more`, which the caller runs (once, from any thread) when it wants
// the next piece; nothing further is read from the connection until then, so a slow reader holds
// at most one piece. on_done runs exactly once, after the last on_data, OK only when the whole body
// arrived. Cancelling the call ends it (on_done gets CANCELLED) whether or not `more` ran.
// Pieces are at most 64 KiB and split anywhere (mid-line, mid-UTF-8): splitting the file into
// lines is the consumer's job, and it must bound a line to kMaxBatchResponseLineBytes
// (batch_codec.h, 16 MiB) before handing it to DecodeBatchResponseLine. on_done comes only after
// the last piece's `more` ran. A non-2xx answer delivers no piece: on_done gets the mapped error.
// The CallOptions deadline bounds the whole download, the reader's pauses included.
struct DownloadObserver {
  absl::AnyInvocable<void(std::string_view data, absl::AnyInvocable<void()> more)> on_data;
  absl::AnyInvocable<void(absl::Status)> on_done;
};

class BatchesStub {
 public:
  virtual ~BatchesStub() = default;

  // POST {base}/{version}/models/{model}:batchGenerateContent
  virtual std::shared_ptr<PendingCall> CreateBatch(
      const std::string& model, CreateBatchRequest request, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<BatchJob>)> done) = 0;

  // GET {base}/{version}/batches/{id}; `name` is "batches/<id>".
  virtual std::shared_ptr<PendingCall> GetBatch(
      const std::string& name, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<BatchJob>)> done) = 0;

  // GET {base}/{version}/batches?pageSize=N&pageToken=T (page_size 0: Gemini's default).
  virtual std::shared_ptr<PendingCall> ListBatches(
      int page_size, const std::string& page_token, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<ListBatchesResponse>)> done) = 0;

  // POST {base}/{version}/batches/{id}:cancel
  virtual std::shared_ptr<PendingCall> CancelBatch(const std::string& name, CallOptions options,
                                                   absl::AnyInvocable<void(absl::Status)> done) = 0;

  // DELETE {base}/{version}/batches/{id}
  virtual std::shared_ptr<PendingCall> DeleteBatch(const std::string& name, CallOptions options,
                                                   absl::AnyInvocable<void(absl::Status)> done) = 0;

  // GET {base}/{version}/files/{id}:download?alt=media — a file's bytes (a batch's responses
  // file), paced by the reader (DownloadObserver). `name` is "files/<id>".
  virtual std::shared_ptr<PendingCall> DownloadFile(const std::string& name, CallOptions options,
                                                    DownloadObserver observer) = 0;
};

// "batches/<id>" with a valid id (1..64 of lowercase letters, digits, '-'): the id. Anything else:
// empty.
std::string BatchIdOf(std::string_view name);

// One line of a responses file (without its newline) decoded: the key, then the response or the
// error. A line that is not that shape is UPSTREAM_BAD_RESPONSE.
absl::StatusOr<BatchResponseLine> DecodeBatchResponseLine(std::string_view line);

// One line of a JSONL input file (without the newline): {"key": key, "request": <request>}.
absl::StatusOr<std::string> EncodeBatchRequestLine(std::string_view key,
                                                   const GenerateContentRequest& request);

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_BATCHES_STUB_H_
