#include "tests/service/redis/redis_test_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace vision_gateway::testing {
namespace {

constexpr char kRedisServer[] = "/usr/bin/redis-server";

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// A port nobody listens on right now (see the header: it may be taken before redis-server binds).
absl::StatusOr<uint16_t> FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket");
  sockaddr_in address = Loopback(0);
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    close(fd);
    return absl::InternalError("bind to port 0");
  }
  close(fd);
  return ntohs(address.sin_port);
}

std::string Resp(const std::vector<std::string>& args) {
  std::string out = absl::StrCat("*", args.size(), "\r\n");
  for (const std::string& arg : args) absl::StrAppend(&out, "$", arg.size(), "\r\n", arg, "\r\n");
  return out;
}

// One RESP command (an array of bulk strings) from the front of `buffer`: its size, or 0 while
// incomplete; -1 when the bytes are not a command.
long ParseCommand(absl::string_view buffer, std::vector<std::string>* args) {
  args->clear();
  size_t pos = 0;
  const auto line = [&](char type, long* number) {
    if (pos >= buffer.size()) return 0;
    if (buffer[pos] != type) return -1;
    const size_t end = buffer.find("\r\n", pos);
    if (end == absl::string_view::npos) return 0;
    if (!absl::SimpleAtoi(buffer.substr(pos + 1, end - pos - 1), number)) return -1;
    pos = end + 2;
    return 1;
  };
  long count = 0;
  if (int r = line('*', &count); r <= 0) return r;
  for (long i = 0; i < count; ++i) {
    long length = 0;
    if (int r = line('$', &length); r <= 0) return r;
    if (buffer.size() < pos + length + 2) return 0;
    args->emplace_back(buffer.substr(pos, length));
    pos += length + 2;
  }
  return static_cast<long>(pos);
}

}  // namespace

RedisServer::RedisServer() {
  std::string pattern = (std::filesystem::temp_directory_path() / "vg-redis-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) != nullptr) dir_ = pattern;
}

RedisServer::~RedisServer() {
  Kill();
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

absl::Status RedisServer::Start() {
  if (access(kRedisServer, X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        kRedisServer, " is not installed (Debian package redis-server: scripts/install-deps.sh)"));
  }
  absl::Status last = absl::UnavailableError("not started");
  for (int attempt = 0; attempt < 8; ++attempt) {
    absl::StatusOr<uint16_t> port = FreePort();
    if (!port.ok()) return port.status();
    port_ = *port;
    last = Launch();
    if (last.ok()) return last;
  }
  return last;
}

absl::Status RedisServer::Restart() {
  Kill();
  return Launch();
}

void RedisServer::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

absl::Status RedisServer::Launch() {
  if (dir_.empty()) return absl::InternalError("no temporary directory");
  const std::string port = absl::StrCat(port_);
  std::vector<std::string> args = {"redis-server", "--port",     port,     "--bind",
                                   "127.0.0.1",    "--save",     "",       "--appendonly",
                                   "no",           "--dir",      dir_,     "--daemonize",
                                   "no",           "--loglevel", "warning"};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork");
  if (pid == 0) {
    const int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, STDOUT_FILENO);
    execv(kRedisServer, argv.data());
    _exit(127);
  }
  pid_ = pid;
  // Bounded wait until it answers; an exit means the port was taken (or no redis-server).
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (absl::Now() < give_up) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::UnavailableError(
          absl::StrCat(kRedisServer, " exited (status ", status, ") on port ", port_));
    }
    if (absl::StatusOr<std::string> pong = Command({"PING"}); pong.ok() && *pong == "+PONG") {
      return absl::OkStatus();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  Kill();
  return absl::DeadlineExceededError("redis-server did not answer PING within 10 s");
}

absl::StatusOr<std::string> RedisServer::Command(const std::vector<std::string>& args) const {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket");
  timeval timeout{.tv_sec = 2, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in address = Loopback(port_);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return absl::UnavailableError("connect");
  }
  const std::string request = Resp(args);
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return absl::UnavailableError("send");
  }
  std::string reply;
  char chunk[4096];
  while (true) {
    const size_t end = reply.find("\r\n");
    if (end != std::string::npos) {
      long length = -1;
      if (reply[0] != '$' ||
          !absl::SimpleAtoi(absl::string_view(reply).substr(1, end - 1), &length) || length < 0) {
        reply.resize(end);
        break;
      }
      if (reply.size() >= end + 2 + length + 2) {
        reply.resize(end + 2 + length);
        break;
      }
    }
    const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) {
      close(fd);
      return absl::UnavailableError("recv");
    }
    reply.append(chunk, n);
  }
  close(fd);
  return reply;
}

FakeRedis::FakeRedis(Answer answer) : answer_(std::move(answer)) {
  listener_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address = Loopback(0);
  socklen_t length = sizeof(address);
  if (listener_ < 0 || bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) ||
      listen(listener_, 16) ||
      getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) || pipe(wake_)) {
    std::abort();
  }
  port_ = ntohs(address.sin_port);
  thread_ = std::thread([this] { Serve(); });
}

FakeRedis::~FakeRedis() {
  const char stop = 's';
  (void)!write(wake_[1], &stop, 1);
  thread_.join();
  close(listener_);
  close(wake_[0]);
  close(wake_[1]);
}

void FakeRedis::Serve() {
  // Waits for `fd` to be ready for `events`; false once the fake is being destroyed.
  const auto wait = [this](int fd, short events) {
    pollfd fds[2] = {{.fd = fd, .events = events, .revents = 0},
                     {.fd = wake_[0], .events = POLLIN, .revents = 0}};
    while (poll(fds, 2, -1) < 0 && errno == EINTR) {
    }
    return (fds[1].revents & POLLIN) == 0;
  };
  while (wait(listener_, POLLIN)) {
    const int connection = accept(listener_, nullptr, nullptr);
    if (connection < 0) continue;
    connections_.fetch_add(1);
    fcntl(connection, F_SETFL, O_NONBLOCK);
    std::string buffer;
    std::vector<std::string> args;
    int n = 0;
    bool open = true;
    while (open && wait(connection, POLLIN)) {
      char chunk[4096];
      const ssize_t got = recv(connection, chunk, sizeof(chunk), 0);
      if (got <= 0) {
        if (got < 0 && errno == EAGAIN) continue;
        break;
      }
      buffer.append(chunk, got);
      long used = 0;
      while (open && (used = ParseCommand(buffer, &args)) > 0) {
        buffer.erase(0, used);
        const std::string reply = answer_(n++, args);
        if (reply == kReset) {
          const linger reset{.l_onoff = 1, .l_linger = 0};
          setsockopt(connection, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
          open = false;
          break;
        }
        for (size_t sent = 0; open && sent < reply.size();) {
          const ssize_t wrote =
              send(connection, reply.data() + sent, reply.size() - sent, MSG_NOSIGNAL);
          if (wrote > 0) {
            sent += wrote;
          } else if (wrote < 0 && errno == EAGAIN) {
            if (!wait(connection, POLLOUT)) {
              open = false;
            }
          } else {
            open = false;  // the store closed the connection
          }
        }
      }
      if (used < 0) break;
    }
    close(connection);
  }
}

}  // namespace vision_gateway::testing
