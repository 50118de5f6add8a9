// Splits a text/event-stream body into events, as Gemini's streamGenerateContent?alt=sse sends
// them. Pure: no I/O, no Boost.
#ifndef VISION_GATEWAY_SERVICE_HTTP_SSE_SPLITTER_H_
#define VISION_GATEWAY_SERVICE_HTTP_SSE_SPLITTER_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"

namespace vision_gateway::http {

struct SseEvent {
  // The joined `data:` field values of the event (one leading space after "data:" removed,
  // several data lines joined with '\n'). Empty when the event had no data line.
  std::string data;
  // Text of the event's lines that are not SSE fields (no "data:", "event:", "id:", "retry:" or
  // ":" comment prefix), joined with '\n'. Gemini sends a bare {"error": ...} object this way when
  // a stream fails after it started.
  std::string raw;
};

// Feed() body bytes split at any point; every complete event (ended by a blank line: CRLF CRLF,
// LF LF, CR CR, or mixed) is passed to the callback in order; the event is valid only during the
// callback (the splitter reuses its storage for the next one). Finish() at end of body flushes a
// last event that was not terminated by a blank line.
class SseSplitter {
 public:
  explicit SseSplitter(std::size_t max_event_bytes = 16 * 1024 * 1024)
      : max_event_bytes_(max_event_bytes) {}

  // RESOURCE_EXHAUSTED if one event grows beyond max_event_bytes; the splitter then stays failed
  // (every later Feed returns the same error, Finish emits nothing).
  absl::Status Feed(std::string_view bytes, absl::FunctionRef<void(const SseEvent&)> on_event);
  // Emits the unterminated last event, if any text is left.
  void Finish(absl::FunctionRef<void(const SseEvent&)> on_event);

 private:
  // Interprets the completed line in line_ (an empty line ends the event).
  void EndLine(absl::FunctionRef<void(const SseEvent&)> on_event);
  // Emits the pending event if it has any data or raw line, then starts a new one.
  void Dispatch(absl::FunctionRef<void(const SseEvent&)> on_event);

  std::size_t max_event_bytes_;
  std::string line_;        // the unterminated current line
  SseEvent event_;          // the event being assembled
  bool event_has_content_ = false;
  bool has_data_ = false;   // event_ has a data line (even an empty one)
  bool last_was_cr_ = false;  // the last byte fed was CR: a following LF is part of it
  bool failed_ = false;     // an event exceeded max_event_bytes_; Feed keeps failing
  std::size_t event_bytes_ = 0;  // event_.data + event_.raw sizes
};

}  // namespace vision_gateway::http

#endif  // VISION_GATEWAY_SERVICE_HTTP_SSE_SPLITTER_H_
