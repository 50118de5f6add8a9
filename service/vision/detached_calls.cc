#include "service/vision/detached_calls.h"

#include <utility>
#include <vector>

#include "service/common/log.h"

namespace vision_gateway::vision {

DetachedCalls::~DetachedCalls() {
  const int left = CancelAndWait(kDestructorWait);
  if (left > 0) LogError("%d detached upstream calls did not end at shutdown", left);
}

uint64_t DetachedCalls::Begin() {
  absl::MutexLock lock(&mu_);
  if (closed_) return 0;
  const uint64_t id = next_id_++;
  running_.emplace(id, nullptr);
  return id;
}

void DetachedCalls::Attach(uint64_t id, std::shared_ptr<gemini::PendingCall> call) {
  if (id == 0 || call == nullptr) return;
  bool cancel = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = running_.find(id);
    if (it == running_.end()) return;  // already ended
    if (closed_) {
      cancel = true;
    } else {
      it->second = call;
    }
  }
  if (cancel) call->Cancel();
}

void DetachedCalls::End(uint64_t id) {
  if (id == 0) return;
  std::shared_ptr<gemini::PendingCall> call;  // released outside the lock
  absl::MutexLock lock(&mu_);
  auto it = running_.find(id);
  if (it == running_.end()) return;
  call = std::move(it->second);
  running_.erase(it);
}

int DetachedCalls::CancelAndWait(absl::Duration bound) {
  std::vector<std::shared_ptr<gemini::PendingCall>> cancel;
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    for (auto& [id, call] : running_) {
      if (call != nullptr) cancel.push_back(call);
    }
  }
  for (const auto& call : cancel) call->Cancel();
  cancel.clear();
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(
                           +[](std::map<uint64_t, std::shared_ptr<gemini::PendingCall>>* running) {
                             return running->empty();
                           },
                           &running_),
                       bound);
  return static_cast<int>(running_.size());
}

int DetachedCalls::InFlight() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(running_.size());
}

}  // namespace vision_gateway::vision
