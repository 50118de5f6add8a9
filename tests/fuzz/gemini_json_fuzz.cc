// libFuzzer target for the Gemini JSON decoders (generateContent / countTokens answers, the Files
// API's File and list replies) and the error envelope. Input: byte 0 picks an HTTP status; the
// rest is a body as Gemini (or anything between it and us) might send it. Checks that nothing
// crashes, leaks or overflows (ASan/UBSan) and that
//   - a decoded answer re-encodes to JSON that decodes to the same answer (a fixed point after one
//     round: nothing is invented, lost or mangled by the decoder);
//   - decoders fail only with INTERNAL (malformed) or RESOURCE_EXHAUSTED (over the body cap);
//   - every error for a non-2xx status, and every error object seen inside a stream, is a non-OK
//     status with a bounded message and an outcome tag for the error table;
//   - a parsed protobuf Duration is never negative.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "service/common/status_details.h"
#include "service/gemini/error_envelope.h"
#include "service/gemini/json_codec.h"

namespace {

namespace gemini = ::vision_gateway::gemini;

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckDecodeError(const absl::Status& s) {
  Check(s.code() == absl::StatusCode::kInternal ||
        s.code() == absl::StatusCode::kResourceExhausted);
}

void CheckUpstreamError(const absl::Status& s) {
  Check(!s.ok());
  // "Gemini: " + at most kMaxErrorMessageBytes of the upstream message + our context.
  Check(s.message().size() <= gemini::kMaxErrorMessageBytes + 128);
  Check(!::vision_gateway::GetOutcome(s).empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static constexpr int kStatuses[] = {400, 401, 403, 404, 408, 409, 413, 429,
                                      499, 500, 501, 502, 503, 504, 599, 302};
  const int http_status = kStatuses[data[0] % (sizeof(kStatuses) / sizeof(kStatuses[0]))];
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  gemini::JsonCodecOptions options;
  options.max_body_bytes = 64 * 1024;

  if (auto response = gemini::DecodeGenerateContentResponse(body, options); response.ok()) {
    (void)gemini::AnswerText(*response);
    const std::string once = gemini::EncodeGenerateContentResponse(*response);
    auto again = gemini::DecodeGenerateContentResponse(once);
    Check(again.ok());
    Check(gemini::EncodeGenerateContentResponse(*again) == once);
  } else {
    CheckDecodeError(response.status());
  }
  if (auto count = gemini::DecodeCountTokensResponse(body, options); count.ok()) {
    Check(count->total_tokens >= 0 && count->cached_content_token_count >= 0);
    const std::string once = gemini::EncodeCountTokensResponse(*count);
    auto again = gemini::DecodeCountTokensResponse(once);
    Check(again.ok() && gemini::EncodeCountTokensResponse(*again) == once);
  } else {
    CheckDecodeError(count.status());
  }
  if (auto file = gemini::DecodeFile(body, options); file.ok()) {
    Check(file->size_bytes >= 0);
    const std::string once = gemini::EncodeFile(*file);
    auto again = gemini::DecodeFile(once);
    Check(again.ok() && gemini::EncodeFile(*again) == once);
  } else {
    CheckDecodeError(file.status());
  }
  if (auto list = gemini::DecodeListFilesResponse(body, options); !list.ok()) {
    CheckDecodeError(list.status());
  }
  (void)gemini::DecodeWrappedFile(body, options);

  CheckUpstreamError(gemini::StatusFromHttpError(http_status, body));
  if (const absl::Status in_stream = gemini::StatusFromErrorJson(body); !in_stream.ok()) {
    CheckUpstreamError(in_stream);
  }
  if (auto d = gemini::ParseProtoDuration(body.substr(0, 40))) Check(*d >= absl::ZeroDuration());
  return 0;
}
