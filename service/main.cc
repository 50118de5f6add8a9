// vision-server: assembles the service from its configuration (service/config/), then waits for
// a stop signal and shuts down in order.
#include <malloc.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/common/log.h"
#include "service/common/thread_pool.h"
#include "service/common/timer.h"
#include "service/config/server_config.h"
#include "service/gemini/gemini_client.h"
#include "service/gemini/instrumented_gemini_client.h"
#include "service/gemini/rest_batches_stub.h"
#include "service/gemini/retrying_gemini_client.h"
#include "service/http/http_client.h"
#include "service/metrics/prometheus_telemetry.h"
#include "service/redis/redis_result_store.h"
#include "service/result_cache/caching_generate_stub.h"
#include "service/result_cache/memory_result_store.h"
#include "service/server/leak_filter.h"
#include "service/server/server.h"

namespace {

using vision_gateway::LogError;
using vision_gateway::LogInfo;
using vision_gateway::LogWarning;

// Removes a variable from the environment, and first overwrites its value in place: unsetenv
// alone leaves the original bytes readable in /proc/<pid>/environ.
void ScrubEnv(const char* name) {
  if (char* value = std::getenv(name); value != nullptr) {
    volatile char* p = value;
    while (*p != '\0') *p++ = '\0';
  }
  unsetenv(name);
}

}  // namespace

int main(int argc, char** argv) {
  // Upload moves large blocks (8 MiB chunks, ~1 MiB messages) through many threads. glibc's
  // default raises its mmap threshold after the first such block is freed, and from then on
  // serves them from per-thread arenas that keep freed memory resident. A fixed threshold keeps
  // blocks of 256 KiB and more in mmap, returned to the system when freed (bench: 10 concurrent
  // uploads +204 MiB RSS without it, +129 MiB with it; README, Benchmarks).
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  // A call's objects are made on one thread (gRPC's, Asio's) and freed on another, and glibc
  // gives each of up to 8 x cores threads an arena of its own whose freed chunks only that
  // arena's threads reuse. Two arenas: 10,000 open Caption streams peak ~13 MiB lower (paired
  // runs, 288-298 vs 301-313 MiB; README, "Open streams"), with the same CPU per call at 1,000
  // streams/s. The environment's MALLOC_ARENA_MAX, when set, is left to rule.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 2);
  absl::SetProgramUsageMessage("vision-server: Gemini vision tasks behind a gRPC contract");
  absl::ParseCommandLine(argc, argv);
  {
    auto log = vision_gateway::config::LogConfigFromFlags();
    if (!log.ok()) {
      std::fprintf(stderr, "vision-server: %s\n", std::string(log.status().message()).c_str());
      return 2;
    }
    vision_gateway::SetLogFormat(log->format);
    vision_gateway::SetMinLogSeverity(log->min_severity);
  }
  // Debian's Abseil keeps Mutex deadlock detection on; it costs a few % of CPU per request.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // Block the stop signals before any thread starts, so that only sigwait() below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto config = vision_gateway::config::ServerConfigFromFlags(
      vision_gateway::config::ProcessEnvironment());
  // The key is in the configuration now (or there was none): it leaves the environment either
  // way, so that nothing started later (or /proc/<pid>/environ) can read it.
  ScrubEnv("GEMINI_API_KEY");
  if (!config.ok()) {
    LogError("%s", config.status().message());
    return 2;
  }
  vision_gateway::server::ServerOptions& options = config->server;
  if (options.auth && !options.tls) {
    LogWarning("caller authentication without TLS: bearer tokens cross the network in the "
               "clear unless a mesh sidecar encrypts the connection");
  }
  vision_gateway::server::ConfigureLeakFilter(config->leak_filter);

  auto http = vision_gateway::http::MakeHttpClient(config->http);
  if (!http.ok()) {
    LogError("HTTP client: %s", http.status().ToString());
    return 1;
  }
  auto gemini = vision_gateway::gemini::MakeGeminiClient(config->gemini, *http);
  if (!gemini.ok()) {
    LogError("Gemini client: %s", gemini.status().ToString());
    return 1;
  }

  // Metrics: the exporter outlives the server (declared first, destroyed last).
  vision_gateway::metrics::PrometheusTelemetry metrics(config->metrics);
  if (config->metrics_port >= 0) {
    const std::string metrics_address =
        absl::StrCat(config->listen_host, ":", config->metrics_port);
    if (absl::Status started = metrics.StartHttp(metrics_address); !started.ok()) {
      LogError("%s", started.ToString());
      return 1;
    }
    options.telemetry = &metrics;
  }
  vision_gateway::telemetry::Telemetry& telemetry =
      options.telemetry != nullptr ? *options.telemetry : vision_gateway::telemetry::NoTelemetry();

  // The REST client implements the stubs; policies wrap each stub as decorators of its interface.
  // Each upstream exchange is measured right above the REST client, retries above that.
  vision_gateway::gemini::GeminiStubs client(*std::move(gemini));
  // The Batch API has its own REST stub over the same HTTP client (batch jobs, #20).
  auto batches = vision_gateway::gemini::MakeRestBatchesStub(config->gemini, *http);
  if (!batches.ok()) {
    LogError("Gemini batches stub: %s", batches.status().ToString());
    return 1;
  }
  client.batches = *std::move(batches);
  client = vision_gateway::gemini::MakeInstrumentedStubs(std::move(client), telemetry);
  client = vision_gateway::gemini::MakeRetryingStubs(std::move(client), config->retry,
                                                     vision_gateway::MakeThreadTimer(), telemetry);
  // The result cache sits above the retrying and instrumented stubs, so that a hit makes no
  // upstream attempt and bills nothing. Replays run on their own threads (never a store's or a
  // caller's); the pool outlives the server, which is declared after it.
  std::unique_ptr<vision_gateway::ThreadPool> result_cache_pool;
  if (const vision_gateway::config::ResultCacheConfig& cache = config->result_cache;
      cache.enabled()) {
    std::shared_ptr<vision_gateway::result_cache::ResultStore> store;
    if (cache.redis) {
      auto redis = vision_gateway::redis::MakeRedisResultStore(*cache.redis);
      if (!redis.ok()) {
        LogError("--result_cache_redis: %s", redis.status().ToString());
        return 1;
      }
      store = *std::move(redis);
    } else {
      store = std::make_shared<vision_gateway::result_cache::MemoryResultStore>(
          vision_gateway::result_cache::MemoryResultStoreOptions{.max_bytes = cache.memory_bytes});
    }
    result_cache_pool = std::make_unique<vision_gateway::ThreadPool>(
        std::max(1, config->http.io_threads));
    vision_gateway::result_cache::CachingOptions caching = cache.caching;
    caching.timer = vision_gateway::MakeThreadTimer();
    caching.executor = [pool = result_cache_pool.get()](absl::AnyInvocable<void()> work) {
      pool->ScheduleContinuation(std::move(work));
    };
    client.generate = vision_gateway::result_cache::MakeCachingGenerateStub(
        std::move(client.generate), std::move(store), std::move(caching), telemetry);
    LogInfo("result cache: %s, ttl %s, %s",
            cache.redis ? absl::StrCat("Redis at ", cache.redis->host, ":", cache.redis->port)
                        : absl::StrCat(cache.memory_bytes >> 20, " MiB in memory"),
            absl::FormatDuration(cache.caching.ttl),
            cache.caching.shared ? "shared by every caller" : "per caller");
  }
  auto server = vision_gateway::server::VisionServer::Start(options, client);
  if (!server.ok()) {
    LogError("%s", server.status().ToString());
    return 1;
  }
  LogInfo("vision-server listening on %s:%d (%s%s%s), Gemini at %s, default model %s%s%s",
          config->listen_host, (*server)->port(),
          !options.tls ? "plaintext"
          : options.tls->client_ca_file.empty() ? "TLS"
                                                : "mTLS",
          options.auth ? ", callers authenticated" : "",
          options.reflection ? ", reflection on" : "", config->gemini.base_url,
          options.vision.default_model,
          options.vision.segment_model.empty() ? "" : ", segment model ",
          options.vision.segment_model);
  // After the server started: by now every method's series exist.
  if (options.telemetry != nullptr) {
    LogInfo("metrics on http://%s:%d/metrics", config->listen_host, metrics.port());
  }
  if ((*server)->health_port() != 0) {
    LogInfo("plaintext health-only port %s:%d", config->listen_host, (*server)->health_port());
  }

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  // 1. Health NOT_SERVING at once; new calls are still served during the drain delay, while
  //    endpoints and load balancers take this replica out of rotation.
  (*server)->StartDraining();
  if (config->drain_delay > absl::ZeroDuration()) {
    LogInfo("signal %d: health NOT_SERVING; still serving new calls for %s (drain delay)",
            signal_number, absl::FormatDuration(config->drain_delay));
    const timespec delay = absl::ToTimespec(config->drain_delay);
    if (const int again = sigtimedwait(&stop_signals, nullptr, &delay); again > 0) {
      LogInfo("signal %d: drain delay cut short", again);
    }
  }
  // 2. Stop accepting; in-flight calls get the grace period, then are cancelled.
  LogInfo("signal %d: no longer accepting calls; draining in-flight calls for up to %s",
          signal_number, absl::FormatDuration(config->shutdown_grace));
  (*server)->Shutdown(config->shutdown_grace);
  LogInfo("stopped");
  return 0;
}
