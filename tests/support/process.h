#pragma once
// Test helpers: run the real `vigil` binary as a child process and talk HTTP/1.1 to it over
// loopback (blocking sockets, Content-Length bodies). For integration tests only.

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace vigil::test {

/// A child process with its stdout and stderr captured through pipes.
class child {
 public:
  /// With `with_stdin`, the child's stdin is a pipe the test writes (write_stdin, close_stdin);
  /// otherwise it inherits the test's.
  explicit child(const std::vector<std::string>& argv, bool with_stdin = false) {
    int out[2], err[2], in[2] = {-1, -1};
    if (pipe(out) != 0 || pipe(err) != 0 || (with_stdin && pipe(in) != 0)) {
      return;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (with_stdin) {
      posix_spawn_file_actions_adddup2(&fa, in[0], 0);
      posix_spawn_file_actions_addclose(&fa, in[1]);
    }
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    posix_spawn_file_actions_addclose(&fa, err[0]);
    std::vector<char*> args;
    for (const auto& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) {
      pid_ = -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(err[1]);
    if (with_stdin) {
      close(in[0]);
      in_ = in[1];
    }
    out_ = out[0];
    err_ = err[0];
    fcntl(out_, F_SETFL, O_NONBLOCK);
    fcntl(err_, F_SETFL, O_NONBLOCK);
  }
  ~child() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close_stdin();
    close(out_);
    close(err_);
  }

  /// Writes all of `data` to the child's stdin (false if it cannot: no pipe, or the child is gone).
  bool write_stdin(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = in_ < 0 ? -1 : write(in_, data.data(), data.size());
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        return false;
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  /// End of input for the child.
  void close_stdin() {
    if (in_ >= 0) {
      close(in_);
      in_ = -1;
    }
  }

  /// Waits until stdout contains `needle` (pumping), up to `timeout`.
  bool wait_for_stdout(const std::string& needle, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    return wait_for(stdout_text, needle, timeout);
  }

  /// True while the child has not exited.
  bool running() {
    if (exited_ || pid_ <= 0) {
      return false;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return false;
    }
    return true;
  }

  /// Waits for the child to exit by itself (pumping the pipes meanwhile): its exit status, or -1
  /// if it is still running after `timeout`.
  int wait_exit(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      pump();
      if (!running()) {
        pump();
        return exit_status_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

  /// Reads what is available from both pipes into stdout_text / stderr_text.
  void pump() {
    char buf[65536];
    for (int fd : {out_, err_}) {
      while (true) {
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) {
          break;
        }
        (fd == out_ ? stdout_text : stderr_text).append(buf, static_cast<std::size_t>(n));
      }
    }
  }

  /// Waits until stderr contains `needle` (pumping), up to `timeout`.
  bool wait_for_stderr(const std::string& needle, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    return wait_for(stderr_text, needle, timeout);
  }

  /// Sends a signal and waits for the exit status (pumping the pipes meanwhile).
  int stop(int sig = SIGTERM, std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    if (exited_) {
      return exit_status_;
    }
    kill(pid_, sig);
    return wait_exit(timeout);
  }

  [[nodiscard]] bool started() const { return pid_ > 0; }
  [[nodiscard]] pid_t pid() const { return pid_; }
  std::string stdout_text, stderr_text;

 private:
  bool wait_for(const std::string& text, const std::string& needle, std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      pump();
      if (text.find(needle) != std::string::npos) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1;
  bool exited_ = false;
  int exit_status_ = -1;
};

struct http_response {
  int status = 0;
  std::string headers;
  std::string body;
};

/// A keep-alive HTTP/1.1 client connection to 127.0.0.1:port.
class http_client {
 public:
  explicit http_client(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd_);
      fd_ = -1;
    }
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~http_client() {
    if (fd_ >= 0) {
      close(fd_);
    }
  }
  [[nodiscard]] bool connected() const { return fd_ >= 0; }

  /// Sends raw bytes (a whole request, or part of one).
  bool send_raw(const std::string& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) {
        return false;
      }
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }

  http_response request(const std::string& method, const std::string& path, const std::string& body,
                        const std::vector<std::string>& extra_headers = {"Content-Type: application/json"}) {
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n";
    for (const auto& h : extra_headers) {
      req += h + "\r\n";
    }
    req += "\r\n" + body;
    if (!send_raw(req)) {
      return {};
    }
    return read_response(30000, method == "HEAD");
  }

  /// Reads one response (status line, headers, Content-Length body; no body for the answer to a
  /// HEAD). status 0 on failure.
  http_response read_response(int timeout_ms = 30000, bool head = false) {
    http_response r;
    while (true) {
      const std::size_t end = buf_.find("\r\n\r\n");
      if (end != std::string::npos) {
        r.headers = buf_.substr(0, end);
        std::size_t len = 0;
        const std::size_t cl = r.headers.find("Content-Length: ");
        if (cl != std::string::npos && !head) {
          len = std::stoul(r.headers.substr(cl + 16));
        }
        if (buf_.size() >= end + 4 + len) {
          r.body = buf_.substr(end + 4, len);
          buf_.erase(0, end + 4 + len);
          r.status = std::stoi(r.headers.substr(9, 3));
          if (r.status == 100) { // interim answer: the real one follows
            return read_response(timeout_ms, head);
          }
          return r;
        }
      }
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, timeout_ms) <= 0) {
        return {};
      }
      char tmp[65536];
      const ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) {
        return {};
      }
      buf_.append(tmp, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  std::string buf_;
};

/// Occurrences of `needle` in `text`.
inline std::size_t count_substr(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

/// Starts `vigil run` on an OS-chosen port; returns the port (0 on failure).
inline int start_daemon(child& c) {
  if (!c.started() || !c.wait_for_stderr("vigil listening on http")) {
    return 0;
  }
  const std::size_t at = c.stderr_text.find("127.0.0.1:", c.stderr_text.find("vigil listening on http")) + 10;
  return std::stoi(c.stderr_text.substr(at));
}

/// The port of the daemon's /metrics listener (started with --metrics-listen 127.0.0.1:0), once it
/// says it listens; 0 if it does not.
inline int metrics_port(child& c) {
  if (!c.wait_for_stderr("vigil metrics on http://127.0.0.1:")) {
    return 0;
  }
  const std::size_t at = c.stderr_text.find("127.0.0.1:", c.stderr_text.find("vigil metrics on")) + 10;
  return std::stoi(c.stderr_text.substr(at));
}

} // namespace vigil::test
