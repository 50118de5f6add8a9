// Incremental extraction of the elements of the first top-level JSON array in model output text.
#ifndef VISION_GATEWAY_SERVICE_VISION_JSON_ARRAY_PARSER_H_
#define VISION_GATEWAY_SERVICE_VISION_JSON_ARRAY_PARSER_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"

namespace vision_gateway::vision {

// JsonArrayStreamParser is fed the model's output text in arbitrary pieces (split anywhere:
// inside strings, escapes, numbers or multi-byte UTF-8 sequences) and reports each element of
// the first top-level JSON array as soon as that element closes, as its exact JSON text.
//
// Finding the array. Everything before the array is skipped without being buffered: prose,
// ```json fences, anything. The array starts at the first '[' whose next non-whitespace
// character (JSON whitespace: space, \t, \n, \r) is '{' or ']'. A '[' followed by anything else
// ("[ymin, xmin ...]" in prose) is not the array; scanning continues right after it, so in
// "[[{...}]]" the inner array is taken. Quotes in the prose are not tracked. Consequences,
// accepted on purpose: a wrapper object such as {"boxes": [{...}]} yields the elements of
// "boxes"; prose containing "[]" or "[ ]" (a markdown checkbox) before the real array is taken
// as an empty array.
//
// Inside the array. The scanner tracks string state (quotes, backslash escapes) and the nesting
// depth of {} and [] together, so brackets inside strings never confuse it. It does not validate
// JSON: an element's syntax is checked by whoever parses the emitted text. Element kinds:
//   - object or array: from its opening bracket to the bracket that brings the depth back to 0,
//     emitted the moment that bracket arrives;
//   - string: from its opening quote to its closing quote, emitted at the closing quote;
//   - any other token (number, true, false, null, garbage): emitted when a delimiter follows it
//     (whitespace, ',', ']', or the start of another element '{' '[' '"').
// Separators are lenient: any run of commas and whitespace separates elements (a missing,
// doubled or trailing comma is tolerated). The ']' at depth 0 closes the array; afterwards all
// text is ignored. A truncated array (output that stops early) has emitted every complete
// element; the unfinished one is never emitted.
//
// Memory is bounded: an element longer than max_element_bytes makes Feed return
// RESOURCE_EXHAUSTED; the parser then stays failed and every later Feed returns the same error.
// Not thread-safe.
class JsonArrayStreamParser {
 public:
  static constexpr size_t kDefaultMaxElementBytes = size_t{16} << 20;  // masks are big base64

  explicit JsonArrayStreamParser(size_t max_element_bytes = kDefaultMaxElementBytes);

  JsonArrayStreamParser(const JsonArrayStreamParser&) = delete;
  JsonArrayStreamParser& operator=(const JsonArrayStreamParser&) = delete;

  // Scans `text`, calling on_element(element_json) for every element that closes within it. The
  // view passed to on_element is valid only during the call.
  absl::Status Feed(std::string_view text,
                    absl::FunctionRef<void(std::string_view element_json)> on_element);

  bool array_started() const {
    return state_ != State::kSeekingArray && state_ != State::kCandidate;
  }
  bool array_closed() const { return state_ == State::kClosed; }
  size_t elements_emitted() const { return elements_emitted_; }

 private:
  enum class State {
    kSeekingArray,  // before the array; looking for '['
    kCandidate,     // saw '[' in prose; skipping whitespace to see what follows
    kBetween,       // inside the array, between elements
    kInComposite,   // inside an object/array element (depth_ > 0)
    kInString,      // inside a string element at depth 0
    kInToken,       // inside a bare token element (number, literal, garbage)
    kClosed,        // the array has closed; everything else is ignored
    kFailed,        // an element exceeded the size bound
  };

  size_t max_element_bytes_;
  State state_ = State::kSeekingArray;
  size_t depth_ = 0;             // {} and [] nesting inside a composite element
  bool in_string_ = false;       // inside a string within a composite element
  bool escape_pending_ = false;  // the previous string character was a backslash
  std::string element_;          // bytes of the current element carried over from earlier Feeds
  size_t elements_emitted_ = 0;
};

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_JSON_ARRAY_PARSER_H_
