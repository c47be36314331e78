// loadgen: posts audit events to a vigil webhook as EventList batches over keep-alive
// connections (plain HTTP or TLS, optionally with a bearer token), as fast as they are accepted
// (or at a fixed rate), retrying 429s, and reports events/s, requests/s, latency percentiles and
// non-2xx answers, and what became of every event sent (accepted, duplicate, rejected, or in a
// batch never answered 200; exit status 1 if any was not taken). A connection the server closes
// (after a 413, say) is replaced; a batch whose connection is lost is sent at most 3 times in all.
//
//   loadgen --port 9876 --file events.jsonl [--batch 400] [--connections 4] [--rate EPS] [--token T]
//           [--tls [--cacert CA.pem]] [--metrics-port 6060]
//
// With --rate, each connection sends one batch per interval, the connections staggered across
// it, so requests arrive evenly spaced. Every event of the file is sent once (a batch resent
// after 429 is the same batch), so the server's count of accepted events must equal the
// "accepted" total printed here. With --metrics-port, loadgen reads the server's own counter
// (vigil_webhook_events_total{result="accepted"}) before and after the run and reports any
// difference (exit status 3).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

using clock_type = std::chrono::steady_clock;

// TLS settings shared by the connections (null context: plain HTTP).
SSL_CTX* tls_ctx = nullptr;

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
    if (fd_ >= 0 && tls_ctx != nullptr) {
      ssl_ = SSL_new(tls_ctx);
      SSL_set_fd(ssl_, fd_);
      SSL_set1_host(ssl_, "127.0.0.1");
      if (SSL_connect(ssl_) != 1) {
        std::fprintf(stderr, "loadgen: TLS handshake failed: %s\n", ERR_reason_error_string(ERR_get_error()));
        SSL_free(ssl_);
        ssl_ = nullptr;
        close(fd_);
        fd_ = -1;
      }
    }
  }
  ~connection() {
    if (ssl_ != nullptr) {
      SSL_shutdown(ssl_);
      SSL_free(ssl_);
    }
    if (fd_ >= 0) {
      close(fd_);
    }
  }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  bool ok() const { return fd_ >= 0; }
  // The server said it closes the connection after its last answer (as after a 413).
  bool closed_by_server() const { return closed_; }

  ssize_t write_some(const char* p, std::size_t n) {
    return ssl_ != nullptr ? SSL_write(ssl_, p, static_cast<int>(std::min<std::size_t>(n, 1 << 30)))
                           : send(fd_, p, n, MSG_NOSIGNAL);
  }
  ssize_t read_some(char* p, std::size_t n) {
    return ssl_ != nullptr ? SSL_read(ssl_, p, static_cast<int>(n)) : recv(fd_, p, n, 0);
  }

  // Sends a request, returns the status (0 on failure) and the body. A server may answer before
  // the body is all sent (a 413) and close: the answer is read even when the write then fails.
  int post(const std::string& request, std::string& body) {
    std::size_t sent = 0;
    while (sent < request.size()) {
      const ssize_t n = write_some(request.data() + sent, request.size() - sent);
      if (n <= 0) {
        break;
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
          const std::size_t close_at = buf_.find("\r\nConnection: close\r\n");
          closed_ = close_at != std::string::npos && close_at < end;
          body = buf_.substr(end + 4, len);
          buf_.erase(0, end + 4 + len);
          return status;
        }
      }
      char tmp[65536];
      const ssize_t n = read_some(tmp, sizeof tmp);
      if (n <= 0) {
        return 0;
      }
      buf_.append(tmp, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  std::string buf_;
  bool closed_ = false;
};

// The server's accepted-events counter, summed over its webhook sources (-1 if unreadable).
long long server_accepted(int metrics_port) {
  connection c(metrics_port);
  if (!c.ok()) {
    return -1;
  }
  std::string body;
  if (c.post("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", body) != 200) {
    return -1;
  }
  long long total = 0;
  std::size_t at = 0;
  while ((at = body.find("\nvigil_webhook_events_total{", at)) != std::string::npos) {
    const std::size_t eol = body.find('\n', at + 1);
    const std::string line = body.substr(at + 1, eol - at - 1);
    at = eol;
    if (line.find("result=\"accepted\"") != std::string::npos) {
      total += std::stoll(line.substr(line.rfind(' ') + 1));
    }
  }
  return total;
}

} // namespace

int main(int argc, char** argv) {
  // A server that closes a TLS connection while a batch is being written must fail that write,
  // not end the process (SSL_write writes with plain send(), which raises SIGPIPE).
  std::signal(SIGPIPE, SIG_IGN);
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
  bool tls = false;
  std::string cacert;
  int metrics_port = 0;
  app.add_flag("--tls", tls, "HTTPS (TLS 1.2+)");
  app.add_option("--cacert", cacert, "PEM CA to verify the server with (default: no verification)");
  app.add_option("--metrics-port", metrics_port, "The server's /metrics port: check its accepted count");
  CLI11_PARSE(app, argc, argv);
  if (tls) {
    tls_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION);
    if (!cacert.empty()) {
      if (SSL_CTX_load_verify_locations(tls_ctx, cacert.c_str(), nullptr) != 1) {
        std::fprintf(stderr, "loadgen: cannot read %s\n", cacert.c_str());
        return 2;
      }
      SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_PEER, nullptr);
    }
  }
  long long server_before = 0;
  if (metrics_port != 0) {
    SSL_CTX* t = tls_ctx;
    tls_ctx = nullptr;
    server_before = server_accepted(metrics_port);
    tls_ctx = t;
  }

  std::vector<std::string> requests;
  std::vector<std::size_t> events_in; // per request
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
      events_in.push_back(n);
      n = 0;
    };
    while (std::getline(in, line)) {
      if (line.empty()) {
        continue;
      }
      if (n == 0) {
        body = R"({"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[)";
      } else {
        body += ',';
      }
      body += line;
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
  // What became of the events: a 200 answer says how many it accepted and how many were
  // duplicates (the rest of its batch it rejected); a batch finally answered otherwise (after
  // 429s, which are retried, and after sending it at most 3 times over lost connections) is
  // counted as not accepted.
  struct tally {
    long long sent = 0, accepted = 0, duplicates = 0, rejected = 0, not_accepted = 0;
    void add(const tally& o) {
      sent += o.sent;
      accepted += o.accepted;
      duplicates += o.duplicates;
      rejected += o.rejected;
      not_accepted += o.not_accepted;
    }
  };
  tally total;
  std::mutex mu;
  std::vector<double> latencies_ms;
  std::map<int, long> statuses;
  long reconnects = 0;
  // CPU seconds this process has used so far (user + system), to report the run's share alone.
  auto cpu_seconds = [] {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  };
  auto number_after = [](const std::string& body, const char* key) -> long long {
    const std::size_t at = body.find(key);
    return at == std::string::npos ? 0 : std::stoll(body.substr(at + std::strlen(key)));
  };
  const double cpu_before = cpu_seconds();
  const auto start = clock_type::now();
  const double per_conn_interval = rate > 0 ? static_cast<double>(batch) * connections / rate : 0;
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < connections; ++t) {
    threads.emplace_back([&, t] {
      std::unique_ptr<connection> c;
      std::vector<double> lat;
      std::map<int, long> st;
      tally mine;
      long made = 0; // connections opened: all but the first are reconnects
      // At a fixed rate the connections take turns: connection t starts t/connections of an
      // interval late, so requests arrive evenly spaced rather than in bursts of `connections`.
      auto due = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(
                                         per_conn_interval * static_cast<double>(t) / static_cast<double>(connections)));
      std::string body;
      while (true) {
        const std::size_t i = next.fetch_add(1);
        if (i >= requests.size()) {
          break;
        }
        if (per_conn_interval > 0) {
          std::this_thread::sleep_until(due);
          due += std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(per_conn_interval));
        }
        mine.sent += static_cast<long long>(events_in[i]);
        int lost = 0;
        while (true) {
          if (c == nullptr || !c->ok() || c->closed_by_server()) {
            c = std::make_unique<connection>(port);
            ++made;
          }
          const auto t0 = clock_type::now();
          const int status = c->ok() ? c->post(requests[i], body) : 0;
          lat.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
          ++st[status];
          if (status == 429) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            continue;
          }
          if (status == 0) {
            c.reset(); // lost: a try after it is on a new connection
            if (++lost < 3) {
              continue;
            }
          }
          if (status == 200) {
            const long long acc = number_after(body, "\"accepted\":");
            const long long dup = number_after(body, "\"duplicates\":");
            mine.accepted += acc;
            mine.duplicates += dup;
            mine.rejected += static_cast<long long>(events_in[i]) - acc - dup;
          } else {
            mine.not_accepted += static_cast<long long>(events_in[i]);
          }
          break;
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      latencies_ms.insert(latencies_ms.end(), lat.begin(), lat.end());
      for (const auto& [k, v] : st) {
        statuses[k] += v;
      }
      total.add(mine);
      reconnects += made > 0 ? made - 1 : 0;
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  const double cpu_run = cpu_seconds() - cpu_before;
  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto pct = [&](double p) {
    return latencies_ms.empty() ? 0.0 : latencies_ms[std::min(latencies_ms.size() - 1, static_cast<std::size_t>(p * latencies_ms.size()))];
  };
  std::printf("accepted %lld events in %.3f s: %.0f events/s, %.0f requests/s (batch %zu, %u connections)\n",
              total.accepted, secs, static_cast<double>(total.accepted) / secs,
              static_cast<double>(latencies_ms.size()) / secs, batch, connections);
  std::printf("events: sent %lld, accepted %lld, duplicates %lld, rejected %lld, not accepted (non-2xx) %lld; "
              "reconnects %ld\n",
              total.sent, total.accepted, total.duplicates, total.rejected, total.not_accepted, reconnects);
  std::printf("latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", pct(0.50), pct(0.90), pct(0.99),
              latencies_ms.empty() ? 0.0 : latencies_ms.back());
  std::printf("loadgen cpu: %.2f s during the run (%.0f%% of one core)\n", cpu_run, 100.0 * cpu_run / secs);
  std::printf("answers:");
  for (const auto& [k, v] : statuses) {
    std::printf(" %d x%ld", k, v);
  }
  std::printf("\n");
  if (metrics_port != 0) {
    tls_ctx = nullptr;
    // The server counts an event when it answers its batch: the counter is final by now.
    const long long after = server_accepted(metrics_port);
    if (server_before < 0 || after < 0) {
      std::printf("server counters: unreadable on port %d\n", metrics_port);
      return 3;
    }
    const long long counted = after - server_before;
    std::printf("server counted %lld accepted events (difference %lld)\n", counted, counted - total.accepted);
    if (counted != total.accepted) {
      return 3;
    }
  }
  // Exit 1 when some events were not taken: rejected, or their batch never answered 200.
  return total.rejected != 0 || total.not_accepted != 0 ? 1 : 0;
}
