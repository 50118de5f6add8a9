#include "service/result_cache/caching_generate_stub.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "service/common/growing_buffer.h"
#include "service/gemini/json_codec.h"
#include "service/gemini/sha256.h"
#include "service/telemetry/call_record.h"

namespace vision_gateway::result_cache {
namespace {

// A caller joins a running call whose deadline is at most this much earlier than its own: calls
// that arrive together (each with "now + N s") share, and a joiner loses at most this much of its
// deadline; a caller whose deadline is later by more starts its own call.
constexpr absl::Duration kJoinDeadlineTolerance = absl::Seconds(1);

using gemini::CacheControl;
using gemini::CallOptions;
using gemini::GenerateContentRequest;
using gemini::GenerateContentResponse;
using gemini::PendingCall;
using gemini::StreamObserver;
using telemetry::CacheEvent;

// Bounds on what DecodeChunks accepts (a store's bytes are input like any other).
constexpr std::size_t kMaxChunks = 1 << 16;
constexpr std::size_t kMaxLengthDigits = 10;

void AppendChunk(std::string& out, const GenerateContentResponse& chunk) {
  const std::string json = gemini::EncodeGenerateContentResponse(chunk);
  absl::StrAppend(&out, json.size(), "\n", json);
}

// The last finish reason of the first candidate, and whether any chunk says the prompt was
// blocked.
bool Storable(const std::vector<GenerateContentResponse>& chunks) {
  std::string finish_reason;
  for (const GenerateContentResponse& chunk : chunks) {
    if (chunk.prompt_feedback && !chunk.prompt_feedback->block_reason.empty()) return false;
    if (!chunk.candidates.empty() && !chunk.candidates.front().finish_reason.empty()) {
      finish_reason = chunk.candidates.front().finish_reason;
    }
  }
  // SAFETY, RECITATION, PROHIBITED_CONTENT, ...: a refusal is not a result worth keeping.
  return finish_reason == "STOP" || finish_reason == "MAX_TOKENS";
}

struct Core;

// One caller's share of a flight: its PendingCall. Its state is guarded by the flight's mutex;
// its observer is touched only by the thread that drains it (draining).
class Share final : public PendingCall, public std::enable_shared_from_this<Share> {
 public:
  Share(std::shared_ptr<class Flight> flight, StreamObserver observer, CallOptions options)
      : flight_(std::move(flight)), observer_(std::move(observer)), options_(std::move(options)) {}
  void Cancel() override;

 private:
  friend class Flight;
  const std::shared_ptr<class Flight> flight_;
  StreamObserver observer_;
  const CallOptions options_;
  std::size_t next_ = 0;  // the next chunk to deliver
  bool draining_ = false;
  bool finished_ = false;  // on_done delivered (or being delivered)
  bool cancelled_ = false;
  bool cached_ = false;  // decided when the flight resolved (or at joining after that)
};

// What one flight reports once its mutex is released: each share's outcome.
struct Outcomes {
  std::vector<std::pair<std::shared_ptr<telemetry::CallRecord>, CacheEvent>> records;
  std::vector<CacheEvent> events;
};

struct Core {
  Core(std::shared_ptr<gemini::GenerateStub> inner_stub, std::shared_ptr<ResultStore> result_store,
       CachingOptions caching_options, telemetry::Telemetry& telemetry_sink)
      : inner(std::move(inner_stub)),
        store(std::move(result_store)),
        options(std::move(caching_options)),
        telemetry(telemetry_sink) {}

  void Post(absl::AnyInvocable<void()> work) const {
    if (options.executor) return options.executor(std::move(work));
    work();
  }

  // Removes `flight` from the flights joinable by key, unless another has taken its place.
  void Remove(const std::string& key, const class Flight* flight);

  const std::shared_ptr<gemini::GenerateStub> inner;
  const std::shared_ptr<ResultStore> store;
  const CachingOptions options;
  telemetry::Telemetry& telemetry;
  absl::Mutex mu;  // before any Flight's mutex
  absl::flat_hash_map<std::string, std::shared_ptr<class Flight>> flights ABSL_GUARDED_BY(mu);
};

// One lookup and at most one upstream call, shared by the callers with the same key.
class Flight final : public std::enable_shared_from_this<Flight> {
 public:
  Flight(std::shared_ptr<Core> core, std::string key, std::string model,
         GenerateContentRequest request, bool read, const char* task)
      : core_(std::move(core)),
        key_(std::move(key)),
        model_(std::move(model)),
        request_(std::move(request)),
        read_(read),
        task_(task) {}

  const std::string& key() const { return key_; }

  // A new share of this flight, or null when it takes no more callers (over, abandoned, or
  // running with a deadline more than kJoinDeadlineTolerance earlier than this caller's); `observer` is taken only by a share.
  // Once the caller has released Core::mu, it calls Deliver(share) when `deliver` is set (the
  // flight has chunks already, or soon).
  std::shared_ptr<Share> TryJoin(StreamObserver& observer, const CallOptions& options,
                                 bool& deliver) {
    std::shared_ptr<Share> share;
    Outcomes outcomes;
    deliver = false;
    {
      absl::MutexLock lock(&mu_);
      if (abandoned_) return nullptr;
      switch (phase_) {
        case Phase::kLookup:
          break;
        case Phase::kUpstream:
          if (options.deadline > deadline_ + kJoinDeadlineTolerance) return nullptr;
          break;
        case Phase::kDone:
          if (!storing_ || !final_.has_value() || !final_->ok()) return nullptr;
          break;
      }
      share = std::make_shared<Share>(shared_from_this(), std::move(observer), options);
      shares_.push_back(share);
      if (phase_ != Phase::kLookup) {
        Decide(*share, from_cache_ ? CacheEvent::kHit : CacheEvent::kCoalesced, outcomes);
        deliver = true;
      }
    }
    Report(outcomes);
    return share;
  }

  // Replays what the flight has to `share`, off the caller's thread (Core::options.executor).
  void Deliver(std::shared_ptr<Share> share) {
    core_->Post([self = shared_from_this(), share = std::move(share)] { self->Drain(share); });
  }

  // Looks the key up (or, for a refresh, goes upstream at once).
  void Start() {
    if (!read_) return Resolve(std::nullopt);
    std::weak_ptr<Flight> weak = weak_from_this();
    if (core_->options.timer != nullptr && core_->options.lookup_timeout > absl::ZeroDuration()) {
      const Timer::Id id = core_->options.timer->RunAt(
          core_->options.timer->Now() + core_->options.lookup_timeout, [weak] {
            if (auto self = weak.lock()) {
              self->OnLookup(absl::DeadlineExceededError("the result store did not answer in time"));
            }
          });
      absl::MutexLock lock(&mu_);
      if (phase_ == Phase::kLookup) lookup_timer_ = id;
    }
    core_->store->Get(key_, [self = shared_from_this()](absl::StatusOr<std::string> value) {
      self->OnLookup(std::move(value));
    });
  }

  void Drain(const std::shared_ptr<Share>& share) {
    {
      absl::MutexLock lock(&mu_);
      if (share->draining_ || share->finished_) return;
      share->draining_ = true;
    }
    while (true) {
      std::optional<GenerateContentResponse> chunk;
      absl::Status status;
      bool cached = false;
      {
        absl::MutexLock lock(&mu_);
        cached = share->cached_;
        if (share->cancelled_) {
          status = absl::CancelledError("cancelled");
        } else if (share->next_ < chunks_.size()) {
          chunk = chunks_[share->next_++];
        } else if (final_.has_value()) {
          status = *final_;
        } else {
          share->draining_ = false;
          return;
        }
        if (!chunk.has_value()) {
          share->finished_ = true;
          share->draining_ = false;
          RemoveShareLocked(share.get());
        }
      }
      if (chunk.has_value()) {
        chunk->cached = cached;
        if (share->observer_.on_chunk) share->observer_.on_chunk(*std::move(chunk));
        continue;
      }
      auto on_done = std::move(share->observer_.on_done);
      share->observer_ = StreamObserver();
      if (on_done) on_done(std::move(status));
      return;
    }
  }

  void Cancel(const std::shared_ptr<Share>& share) {
    std::shared_ptr<PendingCall> upstream;
    bool abandon = false;
    {
      absl::MutexLock lock(&mu_);
      if (share->finished_ || share->cancelled_) return;
      share->cancelled_ = true;
      RemoveShareLocked(share.get());
      if (shares_.empty() && !final_.has_value() && !abandoned_) {
        abandoned_ = true;
        abandon = true;
        upstream = upstream_;
      }
    }
    if (abandon) core_->Remove(key_, this);
    Drain(share);
    if (upstream != nullptr) upstream->Cancel();
  }

 private:
  enum class Phase { kLookup, kUpstream, kDone };

  void RemoveShareLocked(const Share* share) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = std::find_if(shares_.begin(), shares_.end(),
                           [share](const auto& s) { return s.get() == share; });
    if (it != shares_.end()) shares_.erase(it);
  }

  void Decide(Share& share, CacheEvent event, Outcomes& outcomes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    share.cached_ = event == CacheEvent::kHit || event == CacheEvent::kCoalesced;
    if (share.options_.record != nullptr) outcomes.records.emplace_back(share.options_.record, event);
    outcomes.events.push_back(event);
  }

  void Count(CacheEvent event) const { core_->telemetry.ResultCache(task_, event); }

  void Report(const Outcomes& outcomes) const {
    for (const auto& [record, event] : outcomes.records) record->SetCache(event);
    for (CacheEvent event : outcomes.events) Count(event);
  }

  void OnLookup(absl::StatusOr<std::string> value) {
    std::optional<std::vector<GenerateContentResponse>> hit;
    bool error = false;
    if (value.ok()) {
      auto chunks = DecodeChunks(*value);
      if (chunks.ok()) {
        hit = *std::move(chunks);
      } else {
        error = true;
      }
    } else if (value.status().code() != absl::StatusCode::kNotFound) {
      error = true;
    }
    {
      absl::MutexLock lock(&mu_);
      if (phase_ != Phase::kLookup || lookup_answered_) return;  // the timeout came first
      lookup_answered_ = true;
    }
    if (error) Count(CacheEvent::kError);
    Resolve(std::move(hit));
  }

  // The lookup's answer: replay a hit to every share, or start the upstream call.
  void Resolve(std::optional<std::vector<GenerateContentResponse>> hit) {
    std::optional<Timer::Id> timer;
    Outcomes outcomes;
    std::vector<std::shared_ptr<Share>> shares;
    CallOptions upstream_options;
    bool done = true;
    {
      absl::MutexLock lock(&mu_);
      timer = std::exchange(lookup_timer_, std::nullopt);
      if (abandoned_ || shares_.empty()) {
        abandoned_ = true;
        phase_ = Phase::kDone;
        final_ = absl::CancelledError("cancelled");
      } else if (hit.has_value()) {
        chunks_ = *std::move(hit);
        final_ = absl::OkStatus();
        phase_ = Phase::kDone;
        from_cache_ = true;
        for (const auto& share : shares_) Decide(*share, CacheEvent::kHit, outcomes);
        shares = shares_;
      } else {
        done = false;
        phase_ = Phase::kUpstream;
        // The longest deadline of the callers so far; the first caller left pays the call.
        deadline_ = absl::InfinitePast();
        for (const auto& share : shares_) deadline_ = std::max(deadline_, share->options_.deadline);
        upstream_options = shares_.front()->options_;
        upstream_options.deadline = deadline_;
        for (const auto& share : shares_) {
          Decide(*share,
                 share == shares_.front()
                     ? (read_ ? CacheEvent::kMiss : CacheEvent::kRefresh)
                     : CacheEvent::kCoalesced,
                 outcomes);
        }
      }
    }
    if (timer.has_value()) core_->options.timer->Cancel(*timer);
    Report(outcomes);
    if (done) {
      // A hit (or nobody left): later callers look the store up themselves.
      core_->Remove(key_, this);
      for (auto& share : shares) Deliver(std::move(share));
      return;
    }
    // Off the thread that answered the lookup (a store's I/O thread, the timer's).
    core_->Post([self = shared_from_this(), options = std::move(upstream_options)]() mutable {
      self->StartUpstream(std::move(options));
    });
  }

  void StartUpstream(CallOptions options) {
    auto self = shared_from_this();
    StreamObserver observer{
        .on_chunk = [self](GenerateContentResponse chunk) { self->OnChunk(std::move(chunk)); },
        .on_done = [self](absl::Status status) { self->OnDone(std::move(status)); },
    };
    std::shared_ptr<PendingCall> call = core_->inner->StreamGenerateContent(
        model_, std::move(request_), std::move(options), std::move(observer));
    bool cancel = false;
    {
      absl::MutexLock lock(&mu_);
      if (!final_.has_value()) {
        if (abandoned_) {
          cancel = true;
        } else {
          upstream_ = call;
        }
      }
    }
    if (cancel) call->Cancel();
  }

  void OnChunk(GenerateContentResponse chunk) {
    std::string encoded;
    AppendChunk(encoded, chunk);
    std::vector<std::shared_ptr<Share>> shares;
    {
      absl::MutexLock lock(&mu_);
      if (!too_large_) {
        if (value_.size() + encoded.size() > core_->options.max_entry_bytes) {
          too_large_ = true;
          value_ = std::string();
        } else {
          value_ += encoded;
        }
      }
      chunks_.push_back(std::move(chunk));
      shares = shares_;
    }
    for (const auto& share : shares) Drain(share);
  }

  void OnDone(absl::Status status) {
    bool store = false;
    bool too_large = false;
    std::string value;
    std::vector<std::shared_ptr<Share>> shares;
    {
      absl::MutexLock lock(&mu_);
      final_ = status;
      phase_ = Phase::kDone;
      upstream_ = nullptr;
      const bool complete = status.ok() && !abandoned_ && Storable(chunks_);
      too_large = complete && too_large_;
      store = complete && !too_large_;
      if (store) {
        value = std::move(value_);
        storing_ = true;
      }
      value_ = std::string();
      shares = shares_;
    }
    if (too_large) Count(CacheEvent::kTooLarge);
    if (store) {
      // Joinable until stored: a caller arriving meanwhile gets the recorded answer.
      core_->store->Put(key_, std::move(value), core_->options.ttl,
                        [self = shared_from_this()](absl::Status stored) {
                          self->Count(stored.ok() ? CacheEvent::kStore
                                      : stored.code() == absl::StatusCode::kResourceExhausted
                                          ? CacheEvent::kTooLarge
                                          : CacheEvent::kError);
                          {
                            absl::MutexLock lock(&self->mu_);
                            self->storing_ = false;
                          }
                          self->core_->Remove(self->key_, self.get());
                        });
    } else {
      core_->Remove(key_, this);
    }
    for (const auto& share : shares) Drain(share);
  }

  const std::shared_ptr<Core> core_;
  const std::string key_;
  const std::string model_;
  GenerateContentRequest request_;  // encoded; moved into the upstream call
  const bool read_;
  const char* const task_;

  absl::Mutex mu_;
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kLookup;
  bool lookup_answered_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<Timer::Id> lookup_timer_ ABSL_GUARDED_BY(mu_);
  bool abandoned_ ABSL_GUARDED_BY(mu_) = false;  // every caller cancelled before the end
  absl::Time deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  std::vector<std::shared_ptr<Share>> shares_ ABSL_GUARDED_BY(mu_);
  std::vector<GenerateContentResponse> chunks_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> final_ ABSL_GUARDED_BY(mu_);
  bool from_cache_ ABSL_GUARDED_BY(mu_) = false;
  std::string value_ ABSL_GUARDED_BY(mu_);  // the chunks as stored
  bool too_large_ ABSL_GUARDED_BY(mu_) = false;
  bool storing_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<PendingCall> upstream_ ABSL_GUARDED_BY(mu_);
};

void Share::Cancel() { flight_->Cancel(shared_from_this()); }

void Core::Remove(const std::string& key, const Flight* flight) {
  std::shared_ptr<Flight> removed;  // destroyed after the lock is released
  absl::MutexLock lock(&mu);
  auto it = flights.find(key);
  if (it != flights.end() && it->second.get() == flight) {
    removed = std::move(it->second);
    flights.erase(it);
  }
}

class CachingGenerateStub final : public gemini::GenerateStub {
 public:
  explicit CachingGenerateStub(std::shared_ptr<Core> core) : core_(std::move(core)) {}

  std::shared_ptr<PendingCall> StreamGenerateContent(const std::string& model,
                                                     GenerateContentRequest request,
                                                     CallOptions options,
                                                     StreamObserver observer) override {
    if (options.cache == CacheControl::kBypass) {
      if (options.record != nullptr) options.record->SetCache(CacheEvent::kBypass);
      core_->telemetry.ResultCache(options.task, CacheEvent::kBypass);
      return core_->inner->StreamGenerateContent(model, std::move(request), std::move(options),
                                                 std::move(observer));
    }
    // The body as the REST client sends it, encoded once here and shared with the layers below.
    if (request.encoded_body == nullptr) {
      absl::StatusOr<std::string> body = gemini::EncodeGenerateContentRequest(request);
      if (!body.ok()) {
        // The stub underneath reports the error, as without a cache.
        return core_->inner->StreamGenerateContent(model, std::move(request),
                                                   std::move(options), std::move(observer));
      }
      request = GenerateContentRequest();
      request.encoded_body = GrowingBuffer::Of(*std::move(body));
    }
    const std::string scope =
        core_->options.shared || options.record == nullptr ? "" : options.record->caller();
    std::string key = CacheKey(scope, model, request.encoded_body->View());

    const bool read = options.cache == CacheControl::kUse;
    std::shared_ptr<Flight> flight;
    std::shared_ptr<Share> share;
    bool deliver = false;
    bool created = false;
    {
      absl::MutexLock lock(&core_->mu);
      if (read) {
        if (auto it = core_->flights.find(key); it != core_->flights.end()) {
          flight = it->second;
          share = flight->TryJoin(observer, options, deliver);
        }
      }
      if (share == nullptr) {
        flight =
            std::make_shared<Flight>(core_, key, model, std::move(request), read, options.task);
        // Later identical callers join this flight (a refresh's too: its answer is the freshest).
        core_->flights[std::move(key)] = flight;
        share = flight->TryJoin(observer, options, deliver);
        created = true;
      }
    }
    if (created) {
      flight->Start();
    } else if (deliver) {
      flight->Deliver(share);
    }
    return share;
  }

  std::shared_ptr<PendingCall> GenerateContent(
      const std::string& model, GenerateContentRequest request, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<GenerateContentResponse>)> done) override {
    return core_->inner->GenerateContent(model, std::move(request), std::move(options),
                                         std::move(done));
  }

  std::shared_ptr<PendingCall> CountTokens(
      const std::string& model, gemini::CountTokensRequest request, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<gemini::CountTokensResponse>)> done) override {
    return core_->inner->CountTokens(model, std::move(request), std::move(options),
                                     std::move(done));
  }

  std::shared_ptr<PendingCall> ListModels(
      int page_size, const std::string& page_token, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<gemini::ListModelsResponse>)> done) override {
    return core_->inner->ListModels(page_size, page_token, std::move(options), std::move(done));
  }

 private:
  const std::shared_ptr<Core> core_;
};

}  // namespace

std::string CacheKey(std::string_view scope, std::string_view model, std::string_view body) {
  // Each field length-prefixed, so that no two different inputs hash the same bytes.
  gemini::Sha256 hash;
  for (std::string_view field : {kCacheFormatVersion, scope, model, body}) {
    hash.Update(absl::StrCat(field.size(), ":"));
    hash.Update(field);
  }
  return absl::StrCat("vgrc:", hash.FinishHex());
}

std::string EncodeChunks(const std::vector<GenerateContentResponse>& chunks) {
  std::string out;
  for (const GenerateContentResponse& chunk : chunks) AppendChunk(out, chunk);
  return out;
}

absl::StatusOr<std::vector<GenerateContentResponse>> DecodeChunks(std::string_view value) {
  std::vector<GenerateContentResponse> chunks;
  while (!value.empty()) {
    if (chunks.size() >= kMaxChunks) return absl::InternalError("cached result: too many chunks");
    const std::size_t newline = value.find('\n');
    std::size_t length = 0;
    bool digits = newline != std::string_view::npos && newline > 0 && newline <= kMaxLengthDigits;
    for (std::size_t i = 0; digits && i < newline; ++i) {
      digits = value[i] >= '0' && value[i] <= '9';
      length = length * 10 + static_cast<std::size_t>(value[i] - '0');
    }
    if (!digits || length > value.size() - newline - 1) {
      return absl::InternalError("cached result: bad framing");
    }
    auto chunk = gemini::DecodeGenerateContentResponse(value.substr(newline + 1, length));
    if (!chunk.ok()) return absl::InternalError("cached result: a chunk does not decode");
    chunks.push_back(*std::move(chunk));
    value.remove_prefix(newline + 1 + length);
  }
  if (chunks.empty()) return absl::InternalError("cached result: empty");
  return chunks;
}

std::unique_ptr<gemini::GenerateStub> MakeCachingGenerateStub(
    std::shared_ptr<gemini::GenerateStub> inner, std::shared_ptr<ResultStore> store,
    CachingOptions options, telemetry::Telemetry& telemetry) {
  return std::make_unique<CachingGenerateStub>(std::make_shared<Core>(
      std::move(inner), std::move(store), std::move(options), telemetry));
}

}  // namespace vision_gateway::result_cache
