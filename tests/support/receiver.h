#pragma once
// Test helper: a loopback HTTP/1.1 receiver standing in for Slack or an HTTP endpoint. It records
// every request (method, path, headers, body) and answers with the next status of a script (the
// last one repeats), on a port chosen by the OS.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace vigil::test {

struct received {
  std::string method, path, headers, body;
};

class receiver {
 public:
  explicit receiver(std::vector<int> statuses = {200}) : statuses_(std::move(statuses)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 16);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~receiver() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  receiver(const receiver&) = delete;
  receiver& operator=(const receiver&) = delete;

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string url(const std::string& path = "/hook") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  /// Waits until at least `n` requests arrived (or `timeout`); returns a copy of them all.
  std::vector<received> wait_for(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, timeout, [&] { return got_.size() >= n; });
    return got_;
  }
  std::vector<received> all() {
    std::lock_guard<std::mutex> l(mu_);
    return got_;
  }

 private:
  void serve() {
    while (!stop_) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) {
        return;
      }
      handle(c); // one connection at a time: enough for a notifier
      ::close(c);
    }
  }

  void handle(int c) {
    std::string buf;
    char chunk[4096];
    while (true) {
      std::size_t head_end;
      while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
        const ssize_t n = ::recv(c, chunk, sizeof chunk, 0);
        if (n <= 0) {
          return;
        }
        buf.append(chunk, static_cast<std::size_t>(n));
      }
      received r;
      const std::string head = buf.substr(0, head_end);
      const std::size_t sp1 = head.find(' ');
      const std::size_t sp2 = head.find(' ', sp1 + 1);
      r.method = head.substr(0, sp1);
      r.path = head.substr(sp1 + 1, sp2 - sp1 - 1);
      r.headers = head.substr(head.find("\r\n") + 2);
      std::size_t length = 0;
      std::string lower = head;
      for (char& ch : lower) {
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      }
      if (const std::size_t at = lower.find("content-length:"); at != std::string::npos) {
        length = std::stoul(head.substr(at + 15));
      }
      buf.erase(0, head_end + 4);
      while (buf.size() < length) {
        const ssize_t n = ::recv(c, chunk, sizeof chunk, 0);
        if (n <= 0) {
          return;
        }
        buf.append(chunk, static_cast<std::size_t>(n));
      }
      r.body = buf.substr(0, length);
      buf.erase(0, length);
      int status;
      {
        std::lock_guard<std::mutex> l(mu_);
        status = statuses_[std::min(got_.size(), statuses_.size() - 1)];
        got_.push_back(std::move(r));
      }
      cv_.notify_all();
      const std::string body = status == 200 ? "ok" : "boom";
      // A redirect points at /moved on this receiver.
      const std::string location = status >= 300 && status < 400 ? "\r\nLocation: /moved" : "";
      const std::string resp = "HTTP/1.1 " + std::to_string(status) + (status == 200 ? " OK" : " Error") + location +
                               "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      if (::send(c, resp.data(), resp.size(), MSG_NOSIGNAL) < 0) {
        return;
      }
    }
  }

  std::vector<int> statuses_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<received> got_;
};

} // namespace vigil::test
