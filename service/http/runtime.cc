#include "service/http/runtime_internal.h"

#include <algorithm>
#include <exception>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include "absl/synchronization/mutex.h"
#include "service/common/log.h"

namespace vision_gateway::http::internal {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;

Runtime::Runtime(HttpClientOptions opts)
    : options(std::move(opts)),
      ioc(std::max(1, options.io_threads)),
      tls_context(ssl::context::tls_client),
      pool(options),
      work(net::make_work_guard(ioc)) {}

bool Runtime::Register(const Call* call, std::weak_ptr<Call> weak) {
  absl::MutexLock lock(&mu);
  if (shutting_down) return false;
  live.emplace(call, std::move(weak));
  return true;
}

void Runtime::Unregister(const Call* call) {
  absl::MutexLock lock(&mu);
  live.erase(call);
}

void Runtime::CancelAll() {
  std::vector<std::shared_ptr<Call>> calls;
  {
    absl::MutexLock lock(&mu);
    shutting_down = true;
    for (auto& [ptr, weak] : live) {
      if (auto call = weak.lock()) calls.push_back(std::move(call));
    }
  }
  for (auto& call : calls) call->Cancel();
}

IoThreads::IoThreads(std::shared_ptr<Runtime> runtime, int count) : rt_(std::move(runtime)) {
  threads_.reserve(count);
  for (int i = 0; i < count; ++i) {
    threads_.emplace_back([rt = rt_] {
      // A handler that throws past the call's own guard (Deliver) must not end the process:
      // log and keep serving (io_context::run may be called again after an exception).
      while (true) {
        try {
          rt->ioc.run();
          return;
        } catch (const std::exception& e) {
          LogError("HTTP I/O thread: handler threw (%s); continuing", e.what());
        } catch (...) {
          LogError("HTTP I/O thread: handler threw; continuing");
        }
      }
    });
  }
}

IoThreads::~IoThreads() { Stop(); }

bool IoThreads::Stop() {
  if (stopped_) return stopped_on_io_thread_;
  stopped_ = true;
  // The threads finish what is queued (the cancellations and what they abort) and return.
  rt_->work.reset();
  const std::thread::id self = std::this_thread::get_id();
  for (const auto& t : threads_) {
    stopped_on_io_thread_ = stopped_on_io_thread_ || t.get_id() == self;
  }
  for (auto& t : threads_) {
    // Stopped from one of its own callbacks: the threads own the runtime and finish alone.
    if (stopped_on_io_thread_) {
      t.detach();
    } else {
      t.join();
    }
  }
  return stopped_on_io_thread_;
}

}  // namespace vision_gateway::http::internal
