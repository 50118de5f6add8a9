#include "service/telemetry/call_record.h"

namespace vision_gateway::telemetry {

void CallRecord::SetCaller(std::string caller) {
  absl::MutexLock lock(&mu_);
  caller_ = std::move(caller);
}

std::string CallRecord::caller() const {
  absl::MutexLock lock(&mu_);
  return caller_;
}

void CallRecord::AddUpstreamAttempt(absl::Duration latency) {
  absl::MutexLock lock(&mu_);
  ++data_.attempts;
  data_.upstream += latency;
}

void CallRecord::AddUpstreamWait(absl::Duration wait) {
  absl::MutexLock lock(&mu_);
  data_.upstream += wait;
}

void CallRecord::AddTokens(TokenKind kind, int64_t count) {
  absl::MutexLock lock(&mu_);
  data_.tokens[static_cast<int>(kind)] += count;
}

void CallRecord::SetCache(CacheEvent event) {
  absl::MutexLock lock(&mu_);
  data_.cache = event;
}

void CallRecord::AddObjects(int64_t count) {
  absl::MutexLock lock(&mu_);
  data_.objects += count;
}

void CallRecord::AddDropped(DropReason reason, int64_t count) {
  absl::MutexLock lock(&mu_);
  data_.dropped[static_cast<int>(reason)] += count;
}

void CallRecord::AddUploadBytes(int64_t bytes) {
  absl::MutexLock lock(&mu_);
  data_.upload_bytes += bytes;
}

CallRecord::Snapshot CallRecord::Read() const {
  absl::MutexLock lock(&mu_);
  return data_;
}

int64_t CallRecord::Snapshot::TotalDropped() const {
  int64_t total = 0;
  for (int64_t n : dropped) total += n;
  return total;
}

}  // namespace vision_gateway::telemetry
