#include "service/redis/hiredis_asio.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace vision_gateway::redis {

namespace asio = boost::asio;

SocketWatcher::SocketWatcher(asio::io_context& io, redisAsyncContext* ac,
                             Notifications notifications)
    : fd_(io), ac_(ac), notifications_(std::move(notifications)) {}

SocketWatcher::~SocketWatcher() { ReleaseFd(); }

absl::Status SocketWatcher::Attach() {
  boost::system::error_code ec;
  fd_.assign(ac_->c.fd, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("watching the Redis socket: ", ec.message()));
  }
  ac_->ev.data = this;
  ac_->ev.addRead = [](void* self) { static_cast<SocketWatcher*>(self)->Want(true, true); };
  ac_->ev.delRead = [](void* self) { static_cast<SocketWatcher*>(self)->Want(true, false); };
  ac_->ev.addWrite = [](void* self) { static_cast<SocketWatcher*>(self)->Want(false, true); };
  ac_->ev.delWrite = [](void* self) { static_cast<SocketWatcher*>(self)->Want(false, false); };
  ac_->ev.cleanup = [](void* self) { static_cast<SocketWatcher*>(self)->Cleanup(); };
  return absl::OkStatus();
}

void SocketWatcher::Want(bool read, bool on) {
  (read ? want_read_ : want_write_) = on;
  if (on) Arm(read);
}

// hiredis frees the context: stop watching, give the fd back (hiredis closes it), tell the owner.
void SocketWatcher::Cleanup() {
  const std::shared_ptr<SocketWatcher> keep = shared_from_this();  // the owner lets go of it
  const redisAsyncContext* gone = std::exchange(ac_, nullptr);
  want_read_ = want_write_ = false;
  ReleaseFd();
  if (gone != nullptr && notifications_.gone) notifications_.gone(gone);
}

void SocketWatcher::ReleaseFd() {
  if (!fd_.is_open()) return;
  boost::system::error_code ignored;
  fd_.cancel(ignored);
  fd_.release();
}

void SocketWatcher::Arm(bool read) {
  bool& waiting = read ? reading_ : writing_;
  if (ac_ == nullptr || waiting) return;
  waiting = true;
  fd_.async_wait(read ? asio::posix::stream_descriptor::wait_read
                      : asio::posix::stream_descriptor::wait_write,
                 [self = shared_from_this(), read](const boost::system::error_code& ec) {
                   self->OnReady(read, ec);
                 });
}

void SocketWatcher::OnReady(bool read, const boost::system::error_code& ec) {
  (read ? reading_ : writing_) = false;
  if (ec || ac_ == nullptr || !(read ? want_read_ : want_write_)) return;
  redisAsyncContext* ac = ac_;
  if (read) {
    redisAsyncHandleRead(ac);
    if (ac_ != nullptr && notifications_.after_read) notifications_.after_read(ac);
  } else {
    redisAsyncHandleWrite(ac);
  }
  if (ac_ != nullptr && (read ? want_read_ : want_write_)) Arm(read);
}

}  // namespace vision_gateway::redis
