// Builders of Gemini wire bytes, for scripting the emulator in tests: error envelopes, SSE
// events, GenerateContentResponse bodies. Output follows gemini-wire.md: error and unary
// bodies pretty-printed with a 2-space indent; SSE payloads on one line with ": " after keys
// and "," between members; events framed "data: ...\r\n\r\n".
#ifndef VISION_GATEWAY_EMULATOR_GEMINI_WIRE_H_
#define VISION_GATEWAY_EMULATOR_GEMINI_WIRE_H_

#include <string>
#include <string_view>
#include <vector>

#include "emulator/emulator.h"

namespace vision_gateway::emulator {

// Re-serialises JSON text in Google's pretty style / SSE one-line style. Text that is not valid
// JSON is returned unchanged.
std::string PrettyJson(std::string_view json);
std::string CompactJson(std::string_view json);

// The google.rpc status name of an HTTP error code (400 → "INVALID_ARGUMENT", 429 →
// "RESOURCE_EXHAUSTED", ...); "UNKNOWN" for codes without one.
std::string_view StatusNameForHttpCode(int code);

// {"error": {"code", "message", "status"[, "details"]}} pretty-printed. `details_json` is a
// JSON array of detail objects, or empty for none.
std::string MakeErrorBody(int code, std::string_view status, std::string_view message,
                          std::string_view details_json = {});

// Detail arrays (JSON text) for MakeErrorBody.
std::string RetryInfoDetails(std::string_view retry_delay);  // e.g. "15s"
std::string QuotaRetryDetails(std::string_view retry_delay, std::string_view model);  // QuotaFailure + Help + RetryInfo
std::string ApiKeyInvalidDetails();  // ErrorInfo API_KEY_INVALID
// What Gemini sends when the key's project has the API disabled (403 PERMISSION_DENIED):
// ErrorInfo SERVICE_DISABLED with metadata consumer "projects/<number>", service and
// activationUrl, and a Help link naming the project. For leak tests: none of it is for callers.
std::string ServiceDisabledDetails(std::string_view project_number);

// "data: " + CompactJson(json) + "\r\n\r\n".
std::string MakeSseEvent(std::string_view json);

struct ResponseChunk {
  std::string text;
  std::string finish_reason;  // empty: no finishReason (an intermediate stream event)
  int prompt_tokens = 0;
  int candidates_tokens = 0;  // cumulative
};
// A GenerateContentResponse JSON text. `stream_style`: one line and "index": 0 on the
// candidate (as SSE events); else pretty-printed without "index" (as unary bodies).
std::string MakeResponseJson(const ResponseChunk& chunk, std::string_view model_version,
                             std::string_view response_id, bool stream_style);

// Script helpers.
// A unary error: status `code` with an envelope body (status name from the code).
ScriptedResponse ScriptedError(int code, std::string_view message,
                               std::string_view details_json = {});
// A unary generateContent answer with `text`.
// The modelVersion of ScriptedText and ScriptedStream answers.
inline constexpr char kScriptedModelVersion[] = "gemini-3-flash-preview";

ScriptedResponse ScriptedText(std::string_view text, std::string_view finish_reason = "STOP",
                              int prompt_tokens = 10);
// An SSE answer, one event per delta, usage cumulative (one token per word), finishReason on
// the last event only (none if `finish_reason` is empty: a stream that ends without one).
ScriptedResponse ScriptedStream(const std::vector<std::string>& deltas,
                                std::string_view finish_reason = "STOP", int prompt_tokens = 10);

// Tokens of output text as the emulator counts them: one per whitespace-separated word.
int WordTokens(std::string_view text);

}  // namespace vision_gateway::emulator

#endif  // VISION_GATEWAY_EMULATOR_GEMINI_WIRE_H_
