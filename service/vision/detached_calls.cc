#include "service/vision/detached_calls.h"

#include <utility>
#include <vector>

#include "service/common/log.h"

namespace vision_gateway::vision {

DetachedCalls::~DetachedCalls() {
  const int left = CancelAndWait(kDestructorWait);
  if (left > 0) LogError("%d upstream calls did not end at shutdown", left);
}

uint64_t DetachedCalls::Begin() {
  absl::MutexLock lock(&state_->mu);
  if (state_->closed) return 0;
  const uint64_t id = state_->next_id++;
  state_->running.emplace(id, Running{});
  return id;
}

void DetachedCalls::Attach(uint64_t id, std::shared_ptr<gemini::PendingCall> call) {
  if (call == nullptr) return;
  Attach(id, [call = std::move(call)] { call->Cancel(); });
}

void DetachedCalls::Attach(uint64_t id, std::function<void()> cancel,
                           std::shared_ptr<CallExpiry> expiry) {
  if (id == 0 || !cancel) return;
  {
    absl::MutexLock lock(&state_->mu);
    auto it = state_->running.find(id);
    if (it == state_->running.end()) return;  // already ended
    if (!state_->closed) {
      Running& running = it->second;
      running.cancel = std::move(cancel);
      if (expiry != nullptr && expiry->at != absl::InfiniteFuture() && timer_ != nullptr) {
        running.expiry = std::move(expiry);
        running.expiry_timer =
            timer_->RunAt(running.expiry->at, [state = std::weak_ptr<State>(state_), id] {
              if (auto held = state.lock()) Expire(*held, id);
            });
      }
      return;
    }
  }
  cancel();
}

void DetachedCalls::Expire(State& state, uint64_t id) {
  std::function<void()> cancel;
  {
    absl::MutexLock lock(&state.mu);
    auto it = state.running.find(id);
    if (it == state.running.end() || it->second.expiry == nullptr) return;  // ended meanwhile
    it->second.expiry->fired.store(true, std::memory_order_release);
    it->second.expiry_timer = 0;
    cancel = it->second.cancel;
  }
  if (cancel) cancel();
}

void DetachedCalls::End(uint64_t id) {
  if (id == 0) return;
  // The call still counts as running (CancelAndWait waits) until its entry is erased, the very
  // last step: whoever waits may destroy this, and with it the timer, the moment it is gone.
  // The local reference keeps the mutex alive until it is unlocked.
  const std::shared_ptr<State> state = state_;
  Running ended;
  {
    absl::MutexLock lock(&state->mu);
    auto it = state->running.find(id);
    if (it == state->running.end()) return;
    ended = std::move(it->second);  // the entry stays, empty: Expire and the drain skip it
    it->second = Running();
  }
  if (ended.expiry_timer != 0) timer_->Cancel(ended.expiry_timer);
  ended = Running();  // the call's handle goes while the service still exists
  absl::MutexLock lock(&state->mu);
  state->running.erase(id);
}

int DetachedCalls::CancelAndWait(absl::Duration bound) {
  std::vector<std::function<void()>> cancel;
  {
    absl::MutexLock lock(&state_->mu);
    state_->closed = true;
    for (auto& [id, call] : state_->running) {
      if (call.cancel) cancel.push_back(call.cancel);
    }
  }
  for (const auto& c : cancel) c();
  cancel.clear();
  absl::MutexLock lock(&state_->mu);
  state_->mu.AwaitWithTimeout(
      absl::Condition(+[](std::map<uint64_t, Running>* running) { return running->empty(); },
                      &state_->running),
      bound);
  return static_cast<int>(state_->running.size());
}

int DetachedCalls::InFlight() const {
  absl::MutexLock lock(&state_->mu);
  return static_cast<int>(state_->running.size());
}

}  // namespace vision_gateway::vision
