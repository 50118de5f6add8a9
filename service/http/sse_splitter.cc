#include "service/http/sse_splitter.h"

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace vision_gateway::http {
namespace {

// True when `line` is the SSE field `name`: "name:..." or exactly "name" (an empty value).
bool IsField(std::string_view line, std::string_view name) {
  if (line.substr(0, name.size()) != name) return false;
  return line.size() == name.size() || line[name.size()] == ':';
}

// The position of the first CR or LF at or after `pos`, or npos. Two memchr scans instead of
// find_first_of("\r\n"), which tests each byte against the set one call at a time (it was a
// tenth of the gateway's instructions per Caption call).
std::size_t FindLineEnd(std::string_view bytes, std::size_t pos) {
  const char* begin = bytes.data() + pos;
  const std::size_t size = bytes.size() - pos;
  const void* lf = std::memchr(begin, '\n', size);
  const std::size_t lf_at = lf == nullptr ? size : static_cast<const char*>(lf) - begin;
  const void* cr = std::memchr(begin, '\r', lf_at);
  if (cr != nullptr) return pos + (static_cast<const char*>(cr) - begin);
  return lf == nullptr ? std::string_view::npos : pos + lf_at;
}

}  // namespace

absl::Status SseSplitter::Feed(std::string_view bytes,
                               absl::FunctionRef<void(const SseEvent&)> on_event) {
  if (failed_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("server-sent event larger than ", max_event_bytes_, " bytes"));
  }
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    if (last_was_cr_) {
      last_was_cr_ = false;
      // A CR already ended the line; the LF of a CRLF pair adds nothing.
      if (bytes[pos] == '\n') {
        ++pos;
        continue;
      }
    }
    const std::size_t end = FindLineEnd(bytes, pos);
    const std::size_t run_end = end == std::string_view::npos ? bytes.size() : end;
    if (run_end > pos) {
      const std::size_t run = run_end - pos;
      // What the event may hold once this line is added: the line itself and the '\n' that
      // joins it to the event's earlier lines (a "data:" line stores less than it takes).
      const std::size_t joined = event_has_content_ ? 1 : 0;
      if (event_bytes_ + joined + line_.size() + run > max_event_bytes_) {
        failed_ = true;
        line_.clear();
        event_ = SseEvent();
        event_has_content_ = false;
        has_data_ = false;
        event_bytes_ = 0;
        return absl::ResourceExhaustedError(
            absl::StrCat("server-sent event larger than ", max_event_bytes_, " bytes"));
      }
      line_.append(bytes.data() + pos, run);
    }
    if (end == std::string_view::npos) break;
    last_was_cr_ = bytes[end] == '\r';
    pos = end + 1;
    EndLine(on_event);
  }
  return absl::OkStatus();
}

void SseSplitter::Finish(absl::FunctionRef<void(const SseEvent&)> on_event) {
  if (failed_) return;
  if (!line_.empty()) EndLine(on_event);
  Dispatch(on_event);
  last_was_cr_ = false;
}

void SseSplitter::EndLine(absl::FunctionRef<void(const SseEvent&)> on_event) {
  if (line_.empty()) {
    Dispatch(on_event);
    return;
  }
  const std::string_view line(line_);
  if (IsField(line, "data")) {
    std::string_view value = line.substr(line.size() > 4 ? 5 : 4);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (has_data_) event_.data.push_back('\n');
    event_.data.append(value.data(), value.size());
    has_data_ = true;
    event_has_content_ = true;
  } else if (line.front() == ':' || IsField(line, "event") || IsField(line, "id") ||
             IsField(line, "retry")) {
    // Comments and fields Gemini does not use carry nothing for us.
  } else {
    if (!event_.raw.empty()) event_.raw.push_back('\n');
    event_.raw.append(line.data(), line.size());
    event_has_content_ = true;
  }
  event_bytes_ = event_.data.size() + event_.raw.size();
  line_.clear();
}

void SseSplitter::Dispatch(absl::FunctionRef<void(const SseEvent&)> on_event) {
  if (event_has_content_) on_event(event_);
  // Cleared, not replaced: the next event reuses the storage (no allocation per event).
  event_.data.clear();
  event_.raw.clear();
  event_has_content_ = false;
  has_data_ = false;
  event_bytes_ = 0;
}

}  // namespace vision_gateway::http
