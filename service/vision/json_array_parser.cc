#include "service/vision/json_array_parser.h"

#include <cstring>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace vision_gateway::vision {
namespace {

bool IsJsonWhitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// The first '"' or '\\' in text[from...], or npos: two memchr scans (a base64 mask is kilobytes
// with neither), not find_first_of, which looks each byte up in the set one call at a time.
size_t FindQuoteOrBackslash(std::string_view text, size_t from) {
  const char* begin = text.data() + from;
  const size_t n = text.size() - from;
  const auto* quote = static_cast<const char*>(std::memchr(begin, '"', n));
  const size_t limit = quote != nullptr ? static_cast<size_t>(quote - begin) : n;
  const auto* backslash = static_cast<const char*>(std::memchr(begin, '\\', limit));
  if (backslash != nullptr) return from + static_cast<size_t>(backslash - begin);
  return quote != nullptr ? from + limit : std::string_view::npos;
}

// Element buffers above this capacity are released after use rather than kept for reuse.
constexpr size_t kRetainedCapacity = size_t{1} << 20;

}  // namespace

JsonArrayStreamParser::JsonArrayStreamParser(size_t max_element_bytes)
    : max_element_bytes_(max_element_bytes) {}

absl::Status JsonArrayStreamParser::Feed(
    std::string_view text, absl::FunctionRef<void(std::string_view element_json)> on_element) {
  auto too_big = [this] {
    return absl::ResourceExhaustedError(absl::StrCat(
        "a JSON array element in the model output exceeds ", max_element_bytes_, " bytes"));
  };
  if (state_ == State::kFailed) return too_big();

  const size_t n = text.size();
  size_t run_start = 0;  // where the current element's bytes in `text` begin

  // Bytes of the current element once text[i] is included.
  auto size_through = [&](size_t i) { return element_.size() + (i + 1 - run_start); };
  auto fail = [&] {
    state_ = State::kFailed;
    std::string().swap(element_);
    return too_big();
  };
  // Emits the current element, which ends just before text[end].
  auto emit = [&](size_t end) {
    if (element_.empty()) {
      on_element(text.substr(run_start, end - run_start));
    } else {
      element_.append(text.data() + run_start, end - run_start);
      on_element(element_);
      if (element_.capacity() > kRetainedCapacity) {
        std::string().swap(element_);
      } else {
        element_.clear();
      }
    }
    ++elements_emitted_;
    state_ = State::kBetween;
  };

  size_t i = 0;
  while (i < n) {
    const char c = text[i];
    switch (state_) {
      case State::kSeekingArray: {
        const size_t open = text.find('[', i);
        if (open == std::string_view::npos) return absl::OkStatus();
        state_ = State::kCandidate;
        i = open + 1;
        continue;
      }
      case State::kCandidate:
        if (c == '{') {
          state_ = State::kBetween;
          continue;  // the '{' starts the first element
        }
        if (c == ']') {
          state_ = State::kClosed;
          return absl::OkStatus();
        }
        // Whitespace keeps the candidate; another '[' becomes the candidate; anything else
        // means this '[' was prose.
        if (!IsJsonWhitespace(c) && c != '[') state_ = State::kSeekingArray;
        ++i;
        continue;
      case State::kBetween:
        if (IsJsonWhitespace(c) || c == ',') {
          ++i;
          continue;
        }
        if (c == ']') {
          state_ = State::kClosed;
          return absl::OkStatus();
        }
        run_start = i;
        if (c == '{' || c == '[') {
          state_ = State::kInComposite;
          depth_ = 1;
          in_string_ = false;
        } else if (c == '"') {
          state_ = State::kInString;
          in_string_ = true;
        } else {
          state_ = State::kInToken;
        }
        escape_pending_ = false;
        if (size_through(i) > max_element_bytes_) return fail();
        ++i;
        continue;
      case State::kInComposite:
      case State::kInString:
        if (in_string_) {
          if (escape_pending_) {
            escape_pending_ = false;
          } else {
            // Fast path: jump to the next quote or backslash.
            const size_t special = FindQuoteOrBackslash(text, i);
            const size_t stop = special == std::string_view::npos ? n : special;
            if (stop > i) {
              if (size_through(stop - 1) > max_element_bytes_) return fail();
              i = stop;
              continue;
            }
            if (c == '\\') {
              escape_pending_ = true;
            } else {  // closing quote
              in_string_ = false;
              if (state_ == State::kInString) {
                emit(i + 1);
                ++i;
                continue;
              }
            }
          }
        } else if (c == '"') {
          in_string_ = true;
        } else if (c == '{' || c == '[') {
          ++depth_;
        } else if (c == '}' || c == ']') {
          if (--depth_ == 0) {
            emit(i + 1);
            ++i;
            continue;
          }
        }
        if (size_through(i) > max_element_bytes_) return fail();
        ++i;
        continue;
      case State::kInToken:
        if (IsJsonWhitespace(c) || c == ',' || c == ']' || c == '{' || c == '[' || c == '"') {
          emit(i);
          continue;  // the delimiter is handled between elements
        }
        if (size_through(i) > max_element_bytes_) return fail();
        ++i;
        continue;
      case State::kClosed:
        return absl::OkStatus();
      case State::kFailed:
        return too_big();
    }
  }
  if (state_ == State::kInComposite || state_ == State::kInString || state_ == State::kInToken) {
    element_.append(text.data() + run_start, n - run_start);
  }
  return absl::OkStatus();
}

}  // namespace vision_gateway::vision
