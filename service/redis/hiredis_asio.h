// Internal to service/redis/ (only redis_result_store.cc includes it): hiredis's asynchronous
// context driven by Boost.Asio, the event-library adapter hiredis leaves to its user.
//
// hiredis (0.14, Debian 12) asks an event library to watch its socket through five hooks
// (ev.addRead/delRead/addWrite/delWrite/cleanup) and expects redisAsyncHandleRead/Write to be
// called while the socket is readable/writable and the interest lasts. SocketWatcher is that event
// library: it borrows the context's fd in a posix::stream_descriptor (released, never closed: the
// fd stays hiredis's) and re-arms async_wait(wait_read/wait_write) after each event (Asio's
// epoll reactor re-checks readiness when a wait is armed, so the bytes hiredis left unread - it
// reads 16 KiB per call - raise the next event). 0.14 has no timer hook: timers are the user's.
//
// Threads: everything runs on the io_context's one thread, as do the two notifications.
#ifndef VISION_GATEWAY_SERVICE_REDIS_HIREDIS_ASIO_H_
#define VISION_GATEWAY_SERVICE_REDIS_HIREDIS_ASIO_H_

#include <hiredis/async.h>

#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"

namespace vision_gateway::redis {

// hiredis's event library for one context. Shared by its owner and by its own pending waits;
// `ac` is null once hiredis freed the context.
class SocketWatcher : public std::enable_shared_from_this<SocketWatcher> {
 public:
  struct Notifications {
    // After each redisAsyncHandleRead that left the context alive (e.g. to bound what hiredis
    // holds). May free the context.
    absl::AnyInvocable<void(redisAsyncContext*)> after_read;
    // hiredis is freeing the context (from its cleanup hook): every callback it carried was
    // answered already. The context may be read, not used.
    absl::AnyInvocable<void(const redisAsyncContext*)> gone;
  };

  SocketWatcher(boost::asio::io_context& io, redisAsyncContext* ac, Notifications notifications);
  ~SocketWatcher();
  SocketWatcher(const SocketWatcher&) = delete;
  SocketWatcher& operator=(const SocketWatcher&) = delete;

  // Borrows the context's fd and installs the hooks. On failure the context is untouched.
  absl::Status Attach();

 private:
  void Want(bool read, bool on);
  void Cleanup();
  void ReleaseFd();
  void Arm(bool read);
  void OnReady(bool read, const boost::system::error_code& ec);

  boost::asio::posix::stream_descriptor fd_;
  redisAsyncContext* ac_;
  Notifications notifications_;
  bool want_read_ = false;
  bool want_write_ = false;
  bool reading_ = false;
  bool writing_ = false;
};

}  // namespace vision_gateway::redis

#endif  // VISION_GATEWAY_SERVICE_REDIS_HIREDIS_ASIO_H_
