#include "bench/proc_status.h"

#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace vision_gateway::bench {
namespace {

// "VmRSS:\t  1234 kB" after its name: 1234.
template <typename T>
void ParseValue(absl::string_view rest, T& out) {
  rest = absl::StripAsciiWhitespace(rest);
  absl::ConsumeSuffix(&rest, "kB");
  T value;
  if (absl::SimpleAtoi(absl::StripAsciiWhitespace(rest), &value)) out = value;
}

}  // namespace

ProcStatus ReadProcStatus(int pid) {
  ProcStatus status;
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view view(line);
    if (absl::ConsumePrefix(&view, "VmRSS:")) {
      ParseValue(view, status.rss_kb);
    } else if (absl::ConsumePrefix(&view, "VmHWM:")) {
      ParseValue(view, status.hwm_kb);
    } else if (absl::ConsumePrefix(&view, "Threads:")) {
      ParseValue(view, status.threads);
    }
  }
  return status;
}

}  // namespace vision_gateway::bench
