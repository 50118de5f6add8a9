// RedisResultStore: hiredis's asynchronous API driven by an Asio io_context on one thread
// (SocketWatcher below adapts the two). 0.14 has no timer hook and no connect timeout, so the timers
// (command deadlines, connect, backoff) are Asio timers of the store.
//
// Everything hiredis and Asio touch lives on the store's thread. Callers only read two atomics
// (ready, commands in flight) and post the command to the thread.
//
// Replies are built by the store's own reply functions (hiredis's reader calls them as it parses),
// which refuse what GET, SET and PING never answer with: arrays, and any reply when none is
// expected. A refusal is a reader error, so hiredis closes the connection instead of asserting
// (its async code asserts on an unexpected non-error reply) or building a large array.
#include "service/redis/redis_result_store.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "service/common/log.h"

namespace vision_gateway::redis {

namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

// hiredis's asynchronous context driven by Boost.Asio: the event-library adapter hiredis leaves to
// its user.
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

Clock::duration ToChrono(absl::Duration d) {
  return std::chrono::duration_cast<Clock::duration>(absl::ToChronoNanoseconds(d));
}

// Redis's error replies are "-CODE message"; the code says whether a retry later may succeed.
absl::Status StatusFromRedisError(absl::string_view text) {
  const std::string message = absl::StrCat("Redis answered an error: ", text.substr(0, 200));
  const absl::string_view code = text.substr(0, text.find(' '));
  if (code == "LOADING" || code == "BUSY" || code == "MASTERDOWN" || code == "TRYAGAIN" ||
      code == "CLUSTERDOWN") {
    return absl::UnavailableError(message);
  }
  if (code == "OOM") return absl::ResourceExhaustedError(message);
  if (code == "NOAUTH" || code == "WRONGPASS" || code == "NOPERM" || code == "READONLY") {
    return absl::FailedPreconditionError(message);
  }
  return absl::InternalError(message);
}

// One Get or Put, from the call to its answer.
struct Command {
  std::string key;            // with the prefix
  std::string value;          // Put only; emptied once hiredis holds a copy
  int64_t ttl_ms = -1;        // Put only; -1: no expiry
  std::size_t put_bytes = 0;  // counted against max_put_bytes_in_flight until answered
  Clock::time_point deadline;
  absl::AnyInvocable<void(absl::StatusOr<std::string>)> get_done;  // set for a Get
  absl::AnyInvocable<void(absl::Status)> put_done;                 // set for a Put
};

class RedisResultStore final : public result_cache::ResultStore {
 public:
  explicit RedisResultStore(const RedisOptions& options)
      : options_(options),
        work_(asio::make_work_guard(io_)),
        resolver_(io_),
        connect_timer_(io_),
        backoff_timer_(io_),
        command_timer_(io_),
        backoff_(options.min_reconnect_backoff),
        rng_(std::random_device{}()) {
    asio::post(io_, [this] { Connect(); });
    thread_ = std::thread([this] {
      // hiredis writes with write(2), which raises SIGPIPE on a connection Redis closed: blocked
      // on this thread (the only one that writes to Redis), the write fails EPIPE instead, the
      // connection is closed and reopened, and the process-wide disposition is left alone.
      sigset_t pipe;
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
      io_.run();
    });
  }

  ~RedisResultStore() override {
    asio::post(io_, [this] {
      state_ = State::kShutDown;
      ready_.store(false);
      ++connect_generation_;
      resolver_.cancel();
      connect_timer_.cancel();
      backoff_timer_.cancel();
      CloseConnection(absl::CancelledError("the Redis result store is shutting down"));
    });
    work_.reset();
    thread_.join();
  }

  void Get(std::string key, absl::AnyInvocable<void(absl::StatusOr<std::string>)> done) override {
    if (absl::Status admitted = Admit(0); !admitted.ok()) {
      done(std::move(admitted));
      return;
    }
    auto command = std::make_unique<Command>();
    command->key = absl::StrCat(options_.key_prefix, key);
    command->deadline = Clock::now() + command_timeout_;
    command->get_done = std::move(done);
    asio::post(io_, [this, command = std::move(command)]() mutable { Send(std::move(command)); });
  }

  void Put(std::string key, std::string value, absl::Duration ttl,
           absl::AnyInvocable<void(absl::Status)> done) override {
    if (value.size() > options_.max_value_bytes) {
      done(absl::ResourceExhaustedError(absl::StrCat("a value of ", value.size(),
                                                     " bytes is larger than the Redis store's ",
                                                     options_.max_value_bytes, "-byte bound")));
      return;
    }
    if (ttl <= absl::ZeroDuration()) {
      done(absl::InvalidArgumentError("a result cache entry needs a positive time to live"));
      return;
    }
    const std::size_t bytes = value.size();
    if (absl::Status admitted = Admit(bytes); !admitted.ok()) {
      done(std::move(admitted));
      return;
    }
    auto command = std::make_unique<Command>();
    command->key = absl::StrCat(options_.key_prefix, key);
    command->value = std::move(value);
    if (ttl != absl::InfiniteDuration()) {
      command->ttl_ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(ttl));
    }
    command->put_bytes = bytes;
    command->deadline = Clock::now() + command_timeout_;
    command->put_done = std::move(done);
    asio::post(io_, [this, command = std::move(command)]() mutable { Send(std::move(command)); });
  }

  // For the reply functions (store thread).
  bool ExpectingReply() const { return ping_pending_ || !pending_.empty(); }
  void RefuseReply(absl::string_view why) {
    if (refusal_.empty()) refusal_ = std::string(why);
  }
  std::size_t max_value_bytes() const { return options_.max_value_bytes; }

 private:
  // The socket watcher's notifications (below).
  void AfterRead(redisAsyncContext* ac);
  void ContextGone(const redisAsyncContext* ac);

  enum class State { kWaiting, kConnecting, kReady, kShutDown };

  // Caller side: fail fast instead of queueing.
  absl::Status Admit(std::size_t put_bytes) {
    if (!ready_.load(std::memory_order_acquire)) {
      return absl::UnavailableError(
          absl::StrCat("not connected to Redis at ", options_.host, ":", options_.port));
    }
    if (in_flight_.fetch_add(1) >= options_.max_in_flight) {
      in_flight_.fetch_sub(1);
      return absl::ResourceExhaustedError(absl::StrCat(
          "the Redis result store has ", options_.max_in_flight, " commands in flight"));
    }
    if (put_bytes > 0 &&
        put_bytes_in_flight_.fetch_add(put_bytes) + put_bytes > options_.max_put_bytes_in_flight) {
      put_bytes_in_flight_.fetch_sub(put_bytes);
      in_flight_.fetch_sub(1);
      return absl::ResourceExhaustedError(absl::StrCat("the Redis result store is writing ",
                                                       options_.max_put_bytes_in_flight,
                                                       " bytes of values already"));
    }
    return absl::OkStatus();
  }

  // Answers a command (store thread, no lock held) and gives back what it was admitted with.
  void Answer(std::unique_ptr<Command> command, absl::StatusOr<std::string> result) {
    in_flight_.fetch_sub(1);
    if (command->put_bytes > 0) put_bytes_in_flight_.fetch_sub(command->put_bytes);
    if (command->get_done) {
      command->get_done(std::move(result));
    } else {
      command->put_done(result.status());
    }
  }

  void Send(std::unique_ptr<Command> command) {
    if (state_ == State::kShutDown) {
      Answer(std::move(command), absl::CancelledError("the Redis result store is shutting down"));
      return;
    }
    if (state_ != State::kReady || ac_ == nullptr) {
      Answer(std::move(command),
             absl::UnavailableError(absl::StrCat("the connection to Redis at ", options_.host, ":",
                                                 options_.port, " was lost")));
      return;
    }
    if (Clock::now() >= command->deadline) {
      Answer(std::move(command),
             absl::DeadlineExceededError("the Redis result store's thread was too busy to send"));
      return;
    }
    std::string ttl;
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    const auto arg = [&](absl::string_view a) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    };
    if (command->get_done) {
      arg("GET");
      arg(command->key);
    } else {
      arg("SET");
      arg(command->key);
      arg(command->value);
      if (command->ttl_ms > 0) {
        ttl = absl::StrCat(command->ttl_ms);
        arg("PX");
        arg(ttl);
      }
    }
    if (redisAsyncCommandArgv(ac_, &RedisResultStore::OnReply, command.get(),
                              static_cast<int>(argv.size()), argv.data(),
                              lengths.data()) != REDIS_OK) {
      Answer(std::move(command),
             absl::UnavailableError("Redis refused a command: connection closing"));
      return;
    }
    std::string().swap(command->value);  // hiredis holds the bytes to write
    pending_.push_back(std::move(command));
    ArmCommandTimer();
  }

  static void OnReply(redisAsyncContext* ac, void* reply, void* privdata) {
    static_cast<RedisResultStore*>(ac->data)->HandleReply(ac, static_cast<redisReply*>(reply),
                                                          static_cast<Command*>(privdata));
  }

  void HandleReply(redisAsyncContext* ac, redisReply* reply, Command* sent) {
    // Commands the store already answered (a timeout, a closed connection) are no longer in
    // pending_: their late reply, or the NULL hiredis gives them as it frees, is dropped.
    if (ac != ac_) return;
    auto it = std::find_if(pending_.begin(), pending_.end(),
                           [sent](const auto& c) { return c.get() == sent; });
    if (it == pending_.end()) return;
    std::unique_ptr<Command> command = std::move(*it);
    pending_.erase(it);
    ArmCommandTimer();
    if (reply == nullptr) {
      Answer(std::move(command),
             absl::UnavailableError(
                 refusal_.empty() ? std::string("the connection to Redis was lost")
                                  : absl::StrCat("closed the connection to Redis: ", refusal_)));
      return;
    }
    // The backoff starts over only once a command was answered: a server that answers PING and
    // then misbehaves is retried ever more slowly.
    backoff_ = options_.min_reconnect_backoff;
    Answer(std::move(command), ResultOf(*reply, command->get_done != nullptr));
  }

  absl::StatusOr<std::string> ResultOf(const redisReply& reply, bool get) const {
    if (reply.type == REDIS_REPLY_ERROR) {
      return StatusFromRedisError(reply.str == nullptr ? absl::string_view("(long error)")
                                                       : absl::string_view(reply.str, reply.len));
    }
    if (get) {
      if (reply.type == REDIS_REPLY_NIL) return absl::NotFoundError("not in the Redis store");
      if (reply.type == REDIS_REPLY_STRING) {
        if (reply.str == nullptr) {
          return absl::ResourceExhaustedError(
              absl::StrCat("Redis holds a value of ", reply.len, " bytes, larger than the ",
                           options_.max_value_bytes, "-byte bound"));
        }
        return std::string(reply.str, reply.len);
      }
    } else if (reply.type == REDIS_REPLY_STATUS && reply.str != nullptr &&
               absl::string_view(reply.str, reply.len) == "OK") {
      return std::string();
    }
    return absl::InternalError(
        absl::StrCat("Redis answered ", get ? "GET" : "SET", " with a reply of type ", reply.type));
  }

  // The oldest command bounds the connection: when it overruns, Redis is stalled.
  void ArmCommandTimer() {
    Command* front = pending_.empty() ? nullptr : pending_.front().get();
    if (front == timed_command_) return;
    timed_command_ = front;
    const uint64_t generation = ++command_timer_generation_;
    if (front == nullptr) {
      command_timer_.cancel();
      return;
    }
    command_timer_.expires_at(front->deadline);
    command_timer_.async_wait([this, generation](const boost::system::error_code& ec) {
      if (ec || generation != command_timer_generation_ || pending_.empty()) return;
      std::unique_ptr<Command> late = std::move(pending_.front());
      pending_.pop_front();
      timed_command_ = nullptr;
      Answer(std::move(late),
             absl::DeadlineExceededError(absl::StrCat(
                 "Redis did not answer within ", absl::FormatDuration(options_.command_timeout))));
      CloseConnection(absl::UnavailableError(
          "Redis stalled (a command timed out): the connection is being reopened"));
    });
  }

  // Frees the context (if any), answers every pending command with `status`, and plans the next
  // connection unless shutting down.
  void CloseConnection(absl::Status status) {
    ready_.store(false, std::memory_order_release);
    ++connect_generation_;
    connect_timer_.cancel();
    ping_pending_ = false;
    std::deque<std::unique_ptr<Command>> answering = std::move(pending_);
    pending_.clear();
    ArmCommandTimer();
    if (redisAsyncContext* ac = std::exchange(ac_, nullptr); ac != nullptr) {
      redisAsyncFree(ac);  // hiredis defers this to the end of a callback it is running
    }
    watcher_.reset();
    refusal_.clear();
    for (auto& command : answering) Answer(std::move(command), status);
    if (state_ == State::kShutDown) return;
    // One line per outage (and one when it ends), however many attempts it takes.
    if (!reported_down_) {
      LogWarning("result cache: Redis at %s:%d is unavailable, reconnecting: %s", options_.host,
                 options_.port, std::string(status.message()));
      reported_down_ = true;
    }
    state_ = State::kWaiting;
    const double jitter = std::uniform_real_distribution<double>(0.5, 1.0)(rng_);
    backoff_timer_.expires_after(ToChrono(backoff_ * jitter));
    backoff_ = std::min(backoff_ * 2, options_.max_reconnect_backoff);
    backoff_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec && state_ == State::kWaiting) Connect();
    });
  }

  void Connect() {
    if (state_ == State::kShutDown) return;
    state_ = State::kConnecting;
    const uint64_t generation = ++connect_generation_;
    connect_timer_.expires_after(ToChrono(options_.connect_timeout));
    connect_timer_.async_wait([this, generation](const boost::system::error_code& ec) {
      if (ec || generation != connect_generation_) return;
      resolver_.cancel();
      CloseConnection(absl::UnavailableError("connecting to Redis timed out"));
    });
    resolver_.async_resolve(
        options_.host, absl::StrCat(options_.port),
        [this, generation](const boost::system::error_code& ec,
                           const asio::ip::tcp::resolver::results_type& results) {
          if (generation != connect_generation_) return;
          if (ec || results.empty()) {
            CloseConnection(absl::UnavailableError(
                absl::StrCat("resolving the Redis host failed: ", ec.message())));
            return;
          }
          Open(results.begin()->endpoint().address().to_string());
        });
  }

  void Open(const std::string& address) {
    redisAsyncContext* ac = redisAsyncConnect(address.c_str(), options_.port);
    if (ac == nullptr) {
      CloseConnection(absl::UnavailableError("hiredis could not allocate a context"));
      return;
    }
    if (ac->err != 0) {
      std::string error = ac->errstr;
      redisAsyncFree(ac);
      CloseConnection(absl::UnavailableError(absl::StrCat("connecting to Redis: ", error)));
      return;
    }
    ac->data = this;
    ac->c.reader->fn = &kReplyFunctions;
    ac->c.reader->privdata = this;
    // hiredis frees its read buffer whenever it is empty and larger than maxbuf (16 KiB), so
    // every larger reply was a fresh allocation, and its release trimmed the thread's malloc
    // arena (madvise + page faults: ~0.3 ms per 50 KiB Get here). A buffer up to 1 MiB stays.
    ac->c.reader->maxbuf = std::min<std::size_t>(options_.max_value_bytes + 1024, 1 << 20);
    auto watcher = std::make_shared<SocketWatcher>(
        io_, ac,
        SocketWatcher::Notifications{
            .after_read = [this](redisAsyncContext* read) { AfterRead(read); },
            .gone = [this](const redisAsyncContext* gone) { ContextGone(gone); }});
    if (absl::Status attached = watcher->Attach(); !attached.ok()) {
      redisAsyncFree(ac);
      CloseConnection(std::move(attached));
      return;
    }
    ac_ = ac;
    watcher_ = std::move(watcher);
    // Ready once Redis answers PING: a server that accepts and never answers, or is still loading
    // its data set, is not used.
    if (redisAsyncCommand(ac, &RedisResultStore::OnPong, nullptr, "PING") != REDIS_OK) {
      CloseConnection(absl::UnavailableError("could not send PING to Redis"));
      return;
    }
    ping_pending_ = true;
  }

  static void OnPong(redisAsyncContext* ac, void* reply, void* /*privdata*/) {
    auto* self = static_cast<RedisResultStore*>(ac->data);
    if (ac != self->ac_ || reply == nullptr) return;
    self->ping_pending_ = false;
    const auto* r = static_cast<redisReply*>(reply);
    if (r->type == REDIS_REPLY_STATUS && r->str != nullptr &&
        absl::string_view(r->str, r->len) == "PONG") {
      ++self->connect_generation_;  // the connect timer no longer applies
      self->connect_timer_.cancel();
      self->state_ = State::kReady;
      self->ready_.store(true, std::memory_order_release);
      if (self->reported_down_ || !self->reported_up_) {
        LogInfo("result cache: connected to Redis at %s:%d", self->options_.host,
                self->options_.port);
      }
      self->reported_down_ = false;
      self->reported_up_ = true;
      return;
    }
    absl::Status why = r->type == REDIS_REPLY_ERROR && r->str != nullptr
                           ? StatusFromRedisError(absl::string_view(r->str, r->len))
                           : absl::UnavailableError("Redis did not answer PING with PONG");
    self->CloseConnection(absl::UnavailableError(why.message()));
  }

  // The reader's reply functions (see the top of the file). They build redisReply objects of
  // their own allocation and free them themselves.
  static redisReply* NewReply(const redisReadTask* task, int type) {
    auto* store = static_cast<RedisResultStore*>(task->privdata);
    if (task->parent != nullptr) return nullptr;
    if (!store->ExpectingReply()) {
      store->RefuseReply("Redis sent a reply nobody asked for");
      return nullptr;
    }
    auto* reply = static_cast<redisReply*>(std::calloc(1, sizeof(redisReply)));
    if (reply != nullptr) reply->type = type;
    return reply;
  }
  static void* CreateString(const redisReadTask* task, char* str, size_t len) {
    redisReply* reply = NewReply(task, task->type);
    if (reply == nullptr) return nullptr;
    reply->len = len;
    // A value beyond the bound is not copied: the Get answers RESOURCE_EXHAUSTED from its length.
    if (len <= static_cast<RedisResultStore*>(task->privdata)->max_value_bytes()) {
      reply->str = static_cast<char*>(std::malloc(len + 1));
      if (reply->str == nullptr) {
        std::free(reply);
        return nullptr;
      }
      std::memcpy(reply->str, str, len);
      reply->str[len] = '\0';
    }
    return reply;
  }
  static void* CreateArray(const redisReadTask* task, int /*elements*/) {
    static_cast<RedisResultStore*>(task->privdata)
        ->RefuseReply("Redis answered with an array, which GET, SET and PING never do");
    return nullptr;
  }
  static void* CreateInteger(const redisReadTask* task, long long value) {
    redisReply* reply = NewReply(task, REDIS_REPLY_INTEGER);
    if (reply != nullptr) reply->integer = value;
    return reply;
  }
  static void* CreateNil(const redisReadTask* task) { return NewReply(task, REDIS_REPLY_NIL); }
  static void FreeReply(void* object) {
    auto* reply = static_cast<redisReply*>(object);
    if (reply == nullptr) return;
    std::free(reply->str);
    std::free(reply);
  }
  static redisReplyObjectFunctions kReplyFunctions;

  const RedisOptions options_;
  const Clock::duration command_timeout_ = ToChrono(options_.command_timeout);

  // Read by callers.
  std::atomic<bool> ready_{false};
  std::atomic<int> in_flight_{0};
  std::atomic<std::size_t> put_bytes_in_flight_{0};

  // The store thread's; declared first among the Asio objects, destroyed last.
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  asio::ip::tcp::resolver resolver_;
  asio::steady_timer connect_timer_;
  asio::steady_timer backoff_timer_;
  asio::steady_timer command_timer_;

  // Everything below is touched on the store thread only.
  State state_ = State::kConnecting;
  redisAsyncContext* ac_ = nullptr;
  std::shared_ptr<SocketWatcher> watcher_;
  std::deque<std::unique_ptr<Command>> pending_;  // sent, in the order Redis answers them
  bool ping_pending_ = false;
  std::string refusal_;  // why the reply functions refused a reply on this connection
  Command* timed_command_ = nullptr;
  uint64_t command_timer_generation_ = 0;
  uint64_t connect_generation_ = 0;
  absl::Duration backoff_;
  std::minstd_rand rng_;
  bool reported_up_ = false;    // the first connection was logged
  bool reported_down_ = false;  // the current outage was logged

  std::thread thread_;
};

redisReplyObjectFunctions RedisResultStore::kReplyFunctions = {
    &RedisResultStore::CreateString, &RedisResultStore::CreateArray,
    &RedisResultStore::CreateInteger, &RedisResultStore::CreateNil, &RedisResultStore::FreeReply};

// Every way hiredis frees a context ends here (its cleanup hook): a failed connect, EOF, an I/O
// error, a reply the reply functions refused; the callbacks it carried were answered (NULL reply)
// already. A context the store freed itself is no longer ac_.
void RedisResultStore::ContextGone(const redisAsyncContext* ac) {
  if (ac != ac_) return;
  ac_ = nullptr;
  std::string why;
  if (!refusal_.empty()) {
    why = absl::StrCat("closed the connection to Redis: ", refusal_);
  } else if (ac->errstr != nullptr && ac->errstr[0] != '\0') {
    why = absl::StrCat("the connection to Redis failed: ", ac->errstr);
  } else {
    why = "Redis closed the connection";
  }
  CloseConnection(absl::UnavailableError(why));
}

// A reply still arriving is held whole by hiredis's reader (the replies before it were consumed
// already): beyond the value bound plus its header, the connection is closed rather than the
// memory taken.
void RedisResultStore::AfterRead(redisAsyncContext* ac) {
  if (ac != ac_) return;
  const redisReader* reader = ac->c.reader;
  constexpr std::size_t kReplyHeaderBytes = 64;
  if (reader->len - reader->pos <= options_.max_value_bytes + kReplyHeaderBytes) return;
  if (!pending_.empty()) {
    std::unique_ptr<Command> oversize = std::move(pending_.front());
    pending_.pop_front();
    Answer(std::move(oversize),
           absl::ResourceExhaustedError(
               absl::StrCat("Redis is sending a reply longer than the ", options_.max_value_bytes,
                            "-byte bound; the connection is being reopened")));
  }
  CloseConnection(absl::UnavailableError(
      "Redis sent a reply longer than the value bound: the connection is being reopened"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<result_cache::ResultStore>> MakeRedisResultStore(
    const RedisOptions& options) {
  if (options.host.empty()) return absl::InvalidArgumentError("Redis store: empty host");
  if (options.port == 0) return absl::InvalidArgumentError("Redis store: port 0");
  if (options.command_timeout <= absl::ZeroDuration() ||
      options.connect_timeout <= absl::ZeroDuration() ||
      options.min_reconnect_backoff <= absl::ZeroDuration() ||
      options.max_reconnect_backoff < options.min_reconnect_backoff) {
    return absl::InvalidArgumentError(
        "Redis store: timeouts must be positive and max_reconnect_backoff >= "
        "min_reconnect_backoff");
  }
  if (options.max_in_flight <= 0 || options.max_value_bytes == 0 ||
      options.max_put_bytes_in_flight < options.max_value_bytes) {
    return absl::InvalidArgumentError(
        "Redis store: max_in_flight and max_value_bytes must be positive, and "
        "max_put_bytes_in_flight at least max_value_bytes");
  }
  return std::make_unique<RedisResultStore>(options);
}

}  // namespace vision_gateway::redis
