// What /proc/PID/status says of a process a benchmark measures (its memory, its threads).
#ifndef VISION_GATEWAY_BENCH_PROC_STATUS_H_
#define VISION_GATEWAY_BENCH_PROC_STATUS_H_

#include <cstdint>

namespace vision_gateway::bench {

struct ProcStatus {
  int64_t rss_kb = -1;  // VmRSS
  int64_t hwm_kb = -1;  // VmHWM: the peak resident size so far
  int threads = -1;     // Threads
};

// One read of /proc/PID/status; what it lacks (or all of it, once the process is gone) stays -1.
ProcStatus ReadProcStatus(int pid);

}  // namespace vision_gateway::bench

#endif  // VISION_GATEWAY_BENCH_PROC_STATUS_H_
