// The result cache (#21): a decorator of the generate stub that answers streamGenerateContent
// from stored results and shares identical calls in flight. Composed in main.cc above the
// retrying and instrumented stubs, so a hit makes no upstream attempt and bills no tokens; the
// vision tasks post-process a replayed stream exactly as a live one, so a hit cannot differ
// from a miss.
//
// Key: SHA-256 over a format version (kCacheFormatVersion), the caller's scope (its name from
// CallOptions::record, or "" when the cache is shared), the model and the request body exactly as
// the REST client sends it (prompt, schema, generation config, image bytes or file URIs). The API
// key is not part of a request body and never part of a key. A file reference is keyed by its
// URI: Gemini files are immutable and their names are not reused while they exist, so a URI names
// one content for as long as it can be referred to (a file deleted and re-created under the same
// name within the TTL is the one case this misses; callers can send CACHE_REFRESH).
//
// Value: the recorded response chunks, each as Gemini's compact JSON, length-prefixed. Only a
// stream that ended OK with a finish reason of STOP or MAX_TOKENS, not blocked, not cancelled,
// and no larger than max_entry_bytes is stored.
//
// Per call (CallOptions::cache): kUse reads and writes, kBypass goes straight to the stub
// underneath, kRefresh does not read but stores its answer. Every replayed or shared chunk is
// marked GenerateContentResponse::cached; the call's record gets the outcome (CallRecord::
// SetCache) and the telemetry counts it (Telemetry::ResultCache, by CallOptions::task).
//
// Single flight (this process): calls with the same key that are in flight at the same moment
// share one lookup and one upstream call. Each gets every chunk from the first (a late joiner
// gets the chunks so far, then the live ones); a caller that cancels ends only its own share,
// and the upstream call is cancelled only when no caller is left. The deadline rule: the
// upstream call starts with the latest deadline of the callers that joined before it started
// (during the lookup); once it runs its deadline is fixed: a caller whose deadline is later by at
// most 1 s joins it (callers arriving together, each with "now + N s", share; a joiner loses at
// most that second), a caller whose deadline is later by more starts a call of its own (which
// later callers then join). A joiner whose
// own deadline passes first is ended by its gRPC call's cancellation, as any call. The
// upstream call's attempts and tokens are recorded on the first caller's record; the others are
// reported as "coalesced" and billed nothing.
//
// A store that fails or does not answer within lookup_timeout never fails a call: the call goes
// upstream as on a miss, and the error is counted. generateContent, countTokens and models.list
// pass through (the vision tasks stream).
#ifndef VISION_GATEWAY_SERVICE_RESULT_CACHE_CACHING_GENERATE_STUB_H_
#define VISION_GATEWAY_SERVICE_RESULT_CACHE_CACHING_GENERATE_STUB_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/common/timer.h"
#include "service/gemini/generate_stub.h"
#include "service/result_cache/result_store.h"
#include "service/telemetry/telemetry.h"

namespace vision_gateway::result_cache {

// Part of every key: bump it when the stored format or what the gateway does with an answer
// changes, so that old entries are no longer found.
inline constexpr std::string_view kCacheFormatVersion = "vg-result-cache-v1";

struct CachingOptions {
  // How long a stored result is served.
  absl::Duration ttl = absl::Hours(1);
  // True: one scope for every caller (--result_cache_shared); false: each authenticated caller
  // sees only results of its own calls.
  bool shared = false;
  // The largest recorded stream stored (its encoded size).
  std::size_t max_entry_bytes = 4 << 20;
  // The longest a call waits for a lookup before it goes upstream (needs `timer`).
  absl::Duration lookup_timeout = absl::Milliseconds(250);
  std::shared_ptr<Timer> timer;
  // Where work that follows a lookup runs: replaying a hit, starting the upstream call after a
  // miss (never on a store's or the timer's thread, nor a hit on the caller's). Called from any
  // thread, so thread-safe. Null: inline, on the thread that answered the lookup (tests).
  std::function<void(absl::AnyInvocable<void()>)> executor;
};

// `telemetry` outlives the stub.
std::unique_ptr<gemini::GenerateStub> MakeCachingGenerateStub(
    std::shared_ptr<gemini::GenerateStub> inner, std::shared_ptr<ResultStore> store,
    CachingOptions options, telemetry::Telemetry& telemetry = telemetry::NoTelemetry());

// The key of a stream call (exposed for tests): hex SHA-256 with a "vgrc:" prefix.
std::string CacheKey(std::string_view scope, std::string_view model, std::string_view body);

// The stored form of a recorded stream, and back (INTERNAL when `value` is not one).
std::string EncodeChunks(const std::vector<gemini::GenerateContentResponse>& chunks);
absl::StatusOr<std::vector<gemini::GenerateContentResponse>> DecodeChunks(std::string_view value);

}  // namespace vision_gateway::result_cache

#endif  // VISION_GATEWAY_SERVICE_RESULT_CACHE_CACHING_GENERATE_STUB_H_
