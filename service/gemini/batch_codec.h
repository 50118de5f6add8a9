// JSON wire codec of the Batch API (gemini-wire.md, addendum "Batch API"; shapes as the official
// JS SDK 3.x reads and writes them): the batchGenerateContent body, the operation a job is read
// as, the batches list, and the JSONL lines of input and responses files. GenerateContentRequest
// and GenerateContentResponse go through json_codec.h. Decoders ignore unknown fields; a field of
// the wrong type is UPSTREAM_BAD_RESPONSE (INTERNAL) naming the field, never its value. (The free
// functions BatchIdOf, DecodeBatchResponseLine and EncodeBatchRequestLine of batches_stub.h are
// implemented in batch_codec.cc.)
#ifndef VISION_GATEWAY_SERVICE_GEMINI_BATCH_CODEC_H_
#define VISION_GATEWAY_SERVICE_GEMINI_BATCH_CODEC_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "service/gemini/batches_stub.h"

namespace vision_gateway::gemini {

// Longest line of a responses file DecodeBatchResponseLine accepts (and the bound a line splitter
// should apply before buffering more): 16 MiB. A line is one GenerateContentResponse, whose text
// Gemini caps at the model's output limit (65,536 tokens, well under 1 MiB even with JSON
// escaping), plus usage and thought signatures; 16 MiB leaves a wide margin for a valid line while
// keeping a broken file (a missing newline) from buffering without bound. Longer:
// RESOURCE_EXHAUSTED (UPSTREAM_RESPONSE_TOO_LARGE).
inline constexpr std::size_t kMaxBatchResponseLineBytes = std::size_t{16} << 20;
// Longest caller key (metadata.key / the JSONL "key") encoded or decoded.
inline constexpr std::size_t kMaxBatchKeyBytes = 1024;

// {"batch": {"displayName": ..., "inputConfig": {"fileName": ...} |
//   {"requests": {"requests": [{"request": {...}, "metadata": {"key": ...}}]}}}}.
// INVALID_ARGUMENT when the display name is empty or over 512 bytes, when not exactly one input
// is set, when input_file is not "files/<id>", when a key is over kMaxBatchKeyBytes, or when a
// request does not encode (EncodeGenerateContentRequest).
absl::StatusOr<std::string> EncodeCreateBatchRequest(const CreateBatchRequest& request);

// An operation ({"name", "metadata": GenerateContentBatch, "done", "response", "error"}) as a
// BatchJob: batchStats counts are int64 strings (numbers accepted); timestamps RFC 3339; the
// output from metadata.output (or, when absent, the operation's response).
absl::StatusOr<BatchJob> DecodeBatchOperation(std::string_view json);

// batches.list: {"operations": [...], "nextPageToken": ...}; at most 1000 operations.
absl::StatusOr<ListBatchesResponse> DecodeListBatchesResponse(std::string_view json);

// An error object of a batch ({"code", "message", "status", "details"}: a google.rpc.Status whose
// code is an HTTP status or, without "status", a canonical code 1..16) mapped through the error
// table (error_envelope.h).
absl::Status StatusFromBatchError(std::string_view error_object_json);

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_BATCH_CODEC_H_
