// loadgen: posts audit events to a vigil webhook as EventList batches over keep-alive
// connections, as fast as they are accepted (or at a fixed rate), retrying 429s, and reports
// events/s, requests/s, latency percentiles and non-2xx answers.
//
//   loadgen --port 9876 --file events.jsonl [--batch 400] [--connections 4] [--rate EPS] [--token T]
//
// Every event of the file is sent once (a batch resent after 429 is the same batch), so the
// server's count of processed events must equal the "accepted" total printed here.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

using clock_type = std::chrono::steady_clock;

class connection {
 public:
  explicit connection(int port) {
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
  ~connection() {
    if (fd_ >= 0) {
      close(fd_);
    }
  }
  bool ok() const { return fd_ >= 0; }

  // Sends a request, returns the status (0 on failure) and the body.
  int post(const std::string& request, std::string& body) {
    std::size_t sent = 0;
    while (sent < request.size()) {
      const ssize_t n = send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) {
        return 0;
      }
      sent += static_cast<std::size_t>(n);
    }
    while (true) {
      const std::size_t end = buf_.find("\r\n\r\n");
      if (end != std::string::npos) {
        std::size_t len = 0;
        const std::size_t cl = buf_.find("Content-Length: ");
        if (cl != std::string::npos && cl < end) {
          len = std::stoul(buf_.substr(cl + 16));
        }
        if (buf_.size() >= end + 4 + len) {
          const int status = std::stoi(buf_.substr(9, 3));
          body = buf_.substr(end + 4, len);
          buf_.erase(0, end + 4 + len);
          return status;
        }
      }
      char tmp[65536];
      const ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) {
        return 0;
      }
      buf_.append(tmp, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  std::string buf_;
};

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"loadgen: post audit EventList batches to a vigil webhook"};
  int port = 9876;
  std::string file, path = "/audit/webhook/event", token;
  std::size_t batch = 400;
  unsigned connections = 4;
  double rate = 0;
  app.add_option("--port", port, "Webhook port on 127.0.0.1")->required();
  app.add_option("--file", file, "Audit events, one JSON object per line")->required();
  app.add_option("--path", path, "Webhook path")->capture_default_str();
  app.add_option("--batch", batch, "Events per EventList")->capture_default_str();
  app.add_option("--connections", connections, "Concurrent keep-alive connections")->capture_default_str();
  app.add_option("--rate", rate, "Target events/s in total (0: as fast as accepted)");
  app.add_option("--token", token, "Bearer token");
  CLI11_PARSE(app, argc, argv);

  std::vector<std::string> requests;
  {
    std::ifstream in(file);
    std::string line, body;
    std::size_t n = 0;
    auto flush = [&] {
      if (n == 0) {
        return;
      }
      body += "]}";
      std::string req = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n";
      if (!token.empty()) {
        req += "Authorization: Bearer " + token + "\r\n";
      }
      req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      requests.push_back(std::move(req));
      n = 0;
    };
    while (std::getline(in, line)) {
      if (line.empty()) {
        continue;
      }
      body = n == 0 ? R"({"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[)" + line : body + "," + line;
      if (++n == batch) {
        flush();
      }
    }
    flush();
  }
  if (requests.empty()) {
    std::fprintf(stderr, "loadgen: no events in %s\n", file.c_str());
    return 2;
  }

  std::atomic<std::size_t> next{0};
  std::atomic<long long> accepted{0};
  std::mutex mu;
  std::vector<double> latencies_ms;
  std::map<int, long> statuses;
  const auto start = clock_type::now();
  const double per_conn_interval = rate > 0 ? static_cast<double>(batch) * connections / rate : 0;
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < connections; ++t) {
    threads.emplace_back([&] {
      connection c(port);
      std::vector<double> lat;
      std::map<int, long> st;
      long long acc = 0;
      auto due = clock_type::now();
      std::string body;
      while (c.ok()) {
        const std::size_t i = next.fetch_add(1);
        if (i >= requests.size()) {
          break;
        }
        if (per_conn_interval > 0) {
          std::this_thread::sleep_until(due);
          due += std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(per_conn_interval));
        }
        while (true) {
          const auto t0 = clock_type::now();
          const int status = c.post(requests[i], body);
          lat.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
          ++st[status];
          if (status == 429) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            continue;
          }
          if (status == 200) {
            const std::size_t at = body.find("\"accepted\":");
            acc += at == std::string::npos ? 0 : std::stoll(body.substr(at + 11));
          }
          break;
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      latencies_ms.insert(latencies_ms.end(), lat.begin(), lat.end());
      for (const auto& [k, v] : st) {
        statuses[k] += v;
      }
      accepted += acc;
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto pct = [&](double p) {
    return latencies_ms.empty() ? 0.0 : latencies_ms[std::min(latencies_ms.size() - 1, static_cast<std::size_t>(p * latencies_ms.size()))];
  };
  std::printf("accepted %lld events in %.3f s: %.0f events/s, %.0f requests/s (batch %zu, %u connections)\n",
              static_cast<long long>(accepted.load()), secs, static_cast<double>(accepted.load()) / secs,
              static_cast<double>(latencies_ms.size()) / secs, batch, connections);
  std::printf("latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", pct(0.50), pct(0.90), pct(0.99),
              latencies_ms.empty() ? 0.0 : latencies_ms.back());
  std::printf("answers:");
  for (const auto& [k, v] : statuses) {
    std::printf(" %d x%ld", k, v);
  }
  std::printf("\n");
  return statuses.count(0) != 0 ? 1 : 0;
}
