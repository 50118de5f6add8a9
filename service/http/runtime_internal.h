// Internal to service/http (includes Asio; never include it outside service/http): the state one
// HttpClient shares with its I/O threads and every call in flight (io_context, TLS context,
// connection pool, registry of live calls), and the threads that run its io_context.
#ifndef VISION_GATEWAY_SERVICE_HTTP_RUNTIME_INTERNAL_H_
#define VISION_GATEWAY_SERVICE_HTTP_RUNTIME_INTERNAL_H_

#include <memory>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "service/http/connection_pool_internal.h"
#include "service/http/http_client.h"

namespace vision_gateway::http::internal {

// Shared (shared_ptr) by the client, its I/O threads and every call, so that a call or a thread
// that outlives the client still finds it.
struct Runtime {
  // The TLS context is made for a client; ConfigureClientTlsContext (tls_context_internal.h)
  // sets its policy before the first call.
  explicit Runtime(HttpClientOptions opts);

  // Registers a call so the client's destruction can cancel it. False when shutting down.
  bool Register(const Call* call, std::weak_ptr<Call> weak);
  void Unregister(const Call* call);
  // Refuses further registrations and cancels every registered call still alive.
  void CancelAll();

  const HttpClientOptions options;
  boost::asio::io_context ioc;
  boost::asio::ssl::context tls_context;
  ConnectionPool pool;
  // Keeps ioc.run() from returning while the client lives.
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;

  absl::Mutex mu;
  bool shutting_down ABSL_GUARDED_BY(mu) = false;
  std::unordered_map<const Call*, std::weak_ptr<Call>> live ABSL_GUARDED_BY(mu);
};

// The threads that run a runtime's io_context (each holds the runtime). A handler that throws
// past a call's own guard is logged and the thread goes on serving.
class IoThreads {
 public:
  IoThreads(std::shared_ptr<Runtime> runtime, int count);
  IoThreads(const IoThreads&) = delete;
  IoThreads& operator=(const IoThreads&) = delete;
  // Stop(), if not done yet.
  ~IoThreads();

  // Lets the threads finish what is queued and return (drops the runtime's work guard), and joins
  // them; called on one of them, detaches them instead (they then own the runtime and finish
  // alone). True when called on one of them. Idempotent.
  bool Stop();

 private:
  std::shared_ptr<Runtime> rt_;
  std::vector<std::thread> threads_;
  bool stopped_ = false;
  bool stopped_on_io_thread_ = false;
};

}  // namespace vision_gateway::http::internal

#endif  // VISION_GATEWAY_SERVICE_HTTP_RUNTIME_INTERNAL_H_
