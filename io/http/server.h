#pragma once
// A small HTTP/1.1 server on libuv, parsing with http-parser: the glue vigil owns (connections,
// keep-alive, chunked bodies, Expect: 100-continue, body limits, write backpressure, timeouts,
// draining). The webhook, and later the local API and /metrics, are handlers on it.
//
// Threading contract: everything runs on the libuv loop thread that owns the server. Handlers are
// called on that thread and must answer synchronously (they may hand work to other threads, but
// fill the response before returning).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct uv_loop_s;

namespace vigil::http {

struct request {
  std::string_view method; ///< "POST"
  std::string_view path;   ///< URL path without the query string
  std::string_view query;  ///< after '?', may be empty
  std::vector<std::pair<std::string, std::string>> headers; ///< names lower-cased
  std::string& body;       ///< the decoded body (chunked encoding removed); handlers may modify it
  std::string_view remote; ///< client address "ip:port"
  bool tls = false;                ///< the connection is TLS
  bool client_cert_verified = false; ///< TLS client certificate present and signed by client_ca

  /// First value of a header (name in lower case), empty if absent.
  [[nodiscard]] std::string_view header(std::string_view name) const noexcept;
};

struct response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

/// Decides, once a request's headers are read, whether its body is wanted at all. Returning a
/// status other than 0 answers at once with that status (and `body`) and skips the body: e.g.
/// 404 for an unknown path, 405, 401. The server answers 503 while draining before the check,
/// and 413 from Content-Length after it.
using precheck = std::function<int(const request& headers_only, response& early)>;
using handler = std::function<void(request& req, response& res)>;

/// TLS 1.2/1.3 through OpenSSL (memory BIOs on the libuv stream).
struct tls_options {
  std::string cert_file;      ///< PEM certificate chain
  std::string key_file;       ///< PEM private key
  std::string client_ca_file; ///< PEM CAs that sign client certificates; empty: no client certs asked
};

struct server_options {
  std::optional<tls_options> tls;         ///< plain HTTP when absent
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;                   ///< 0: chosen by the OS (see bound_port())
  std::size_t max_body_size = 32u << 20;    ///< larger bodies get 413
  std::uint32_t header_timeout_ms = 10000;  ///< from connection or previous request to complete headers
  std::uint32_t body_timeout_ms = 30000;    ///< from headers to complete body
  std::uint32_t idle_timeout_ms = 60000;    ///< keep-alive connection with no request
  std::size_t max_connections = 1024;       ///< beyond: accepted and closed at once (counted)
  std::size_t max_pending_write = 1u << 20; ///< stop reading a client that does not read its answers
  std::uint32_t drain_grace_ms = 500;       ///< on drain: keep-alive clients get 503 this long, then close
  std::string name = "http";                ///< counter label (`server`)
};

class server {
 public:
  server(uv_loop_s* loop, server_options opts, precheck check, handler h);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Loads TLS material (if any), binds and listens. Returns an error message (empty on success).
  std::string listen();
  /// The port actually bound (useful with port 0).
  [[nodiscard]] std::uint16_t bound_port() const noexcept;
  /// Stops accepting, lets requests in progress finish, closes idle keep-alive connections.
  /// `on_drained` runs on the loop when the last connection has closed.
  void drain(std::function<void()> on_drained);
  [[nodiscard]] std::size_t connections() const noexcept;

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

/// Reason phrase of a status code ("Too Many Requests").
const char* reason_phrase(int status) noexcept;

} // namespace vigil::http
