#include "io/http/server.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <exception>
#include <unordered_map>
#include <unordered_set>

#include <http_parser.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "engine/counters/counters.h"

namespace vigil::http {

std::string_view request::header(std::string_view name) const noexcept {
  for (const auto& [k, v] : headers) {
    if (k == name) {
      return v;
    }
  }
  return {};
}

const char* reason_phrase(int status) noexcept {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

namespace {

struct connection;
void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);

struct write_req {
  uv_write_t req;
  std::string data;
  connection* conn;
};

} // namespace

struct server::impl {
  uv_loop_t* loop;
  server_options opts;
  precheck check;
  handler handle;
  uv_tcp_t listener{};
  bool listening = false;
  bool draining = false;
  uv_timer_t drain_timer{};
  bool drain_timer_open = false;
  std::function<void()> on_drained;
  std::unordered_set<connection*> conns;
  std::uint16_t port = 0;
  http_parser_settings settings{};
  std::unordered_map<int, counters::id> status_ids;
  counters::id connections_total, connections_rejected, connections_evicted, bytes_in, parse_errors, timeouts,
      tls_failures, handler_errors;
  bool handler_error_said = false;
  counters::histogram latency; // from the first byte of a request to its response being queued
  SSL_CTX* ssl_ctx = nullptr;

  ~impl() {
    if (ssl_ctx != nullptr) {
      SSL_CTX_free(ssl_ctx);
    }
  }

  counters::id status_counter(int status) {
    auto it = status_ids.find(status);
    if (it == status_ids.end()) {
      it = status_ids
               .emplace(status, counters::registry::global().define(
                                    "vigil_http_responses_total", "HTTP responses sent, by server and status",
                                    {{"server", opts.name}, {"status", std::to_string(status)}}))
               .first;
    }
    return it->second;
  }

  void maybe_drained() {
    if (draining && conns.empty() && on_drained) {
      if (drain_timer_open) {
        uv_timer_stop(&drain_timer);
        uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer), nullptr);
        drain_timer_open = false;
      }
      auto cb = std::move(on_drained);
      on_drained = nullptr;
      cb();
    }
  }
};

namespace {

struct connection {
  uv_tcp_t tcp{};
  uv_timer_t timer{};
  http_parser parser{};
  server::impl* srv = nullptr;
  std::string url, field, value;
  bool in_value = false;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string remote;
  std::string ip;            // remote's address without the port
  bool in_request = false;   // between message begin and complete
  bool trusted = false;      // a request passed the check (path, method, credentials)
  std::uint64_t accepted_at = 0; // uv_now() when accepted
  bool head = false;         // the request being answered is a HEAD (its answer has no body)
  std::uint64_t started_at = 0; // uv_hrtime() at message begin
  bool closing = false;      // close once pending writes are flushed
  bool read_paused = false;
  bool handles_closed = false;
  int open_handles = 0;
  std::size_t pending_write = 0;
  SSL* ssl = nullptr; // TLS: reads go network -> rbio -> SSL_read, writes SSL_write -> wbio -> network
  bool cert_verified = false;
};

void close_connection(connection* c);

void on_handle_closed(uv_handle_t* h) {
  auto* c = static_cast<connection*>(h->data);
  if (--c->open_handles == 0) {
    server::impl* srv = c->srv;
    srv->conns.erase(c);
    if (c->ssl != nullptr) {
      SSL_free(c->ssl);
    }
    delete c;
    srv->maybe_drained();
  }
}

void close_connection(connection* c) {
  if (c->handles_closed) {
    return;
  }
  c->handles_closed = true;
  uv_timer_stop(&c->timer);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), on_handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_handle_closed);
}

void on_timeout(uv_timer_t* t) {
  auto* c = static_cast<connection*>(t->data);
  counters::add(c->srv->timeouts);
  close_connection(c);
}

void arm(connection* c, std::uint32_t ms) {
  uv_timer_start(&c->timer, on_timeout, ms, 0);
}

void on_alloc(uv_handle_t*, size_t suggested, uv_buf_t* buf) {
  // One 64 KiB buffer per read call; libuv reads at most that much.
  static thread_local char slab[64 * 1024];
  (void)suggested;
  *buf = uv_buf_init(slab, sizeof slab);
}

void on_written(uv_write_t* req, int) {
  auto* w = reinterpret_cast<write_req*>(req);
  connection* c = w->conn;
  c->pending_write -= w->data.size();
  delete w;
  if (c->handles_closed) {
    return;
  }
  if (c->closing && c->pending_write == 0) {
    close_connection(c);
    return;
  }
  if (c->read_paused && c->pending_write < c->srv->opts.max_pending_write / 2) {
    c->read_paused = false;
    uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read);
  }
}

void write_socket(connection* c, std::string data) {
  if (c->handles_closed) {
    return;
  }
  auto* w = new write_req;
  w->data = std::move(data);
  w->conn = c;
  c->pending_write += w->data.size();
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1, on_written) != 0) {
    c->pending_write -= w->data.size();
    delete w;
    close_connection(c);
    return;
  }
  if (!c->read_paused && c->pending_write > c->srv->opts.max_pending_write) {
    c->read_paused = true; // the client does not read its answers: stop reading its requests
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
  }
}

// Moves what OpenSSL produced (handshake records, encrypted answers) to the socket.
void flush_tls(connection* c) {
  BIO* wbio = SSL_get_wbio(c->ssl);
  while (BIO_pending(wbio) > 0) {
    std::string out(static_cast<std::size_t>(BIO_pending(wbio)), '\0');
    const int n = BIO_read(wbio, out.data(), static_cast<int>(out.size()));
    if (n <= 0) {
      break;
    }
    out.resize(static_cast<std::size_t>(n));
    write_socket(c, std::move(out));
  }
}

void send_raw(connection* c, std::string data) {
  if (c->ssl == nullptr) {
    write_socket(c, std::move(data));
    return;
  }
  if (c->handles_closed) {
    return;
  }
  // Memory BIOs never block: SSL_write takes everything.
  if (!data.empty() && SSL_write(c->ssl, data.data(), static_cast<int>(data.size())) <= 0) {
    close_connection(c);
    return;
  }
  flush_tls(c);
}

void send_response(connection* c, const response& res, bool keep_alive) {
  counters::add(c->srv->status_counter(res.status));
  if (c->started_at != 0) {
    c->srv->latency.observe(static_cast<double>(uv_hrtime() - c->started_at) / 1e9);
    c->started_at = 0;
  }
  std::string out;
  out.reserve(160 + res.body.size());
  out += "HTTP/1.1 ";
  out += std::to_string(res.status);
  out += ' ';
  out += reason_phrase(res.status);
  out += "\r\nContent-Type: ";
  out += res.content_type;
  out += "\r\nContent-Length: ";
  out += std::to_string(res.body.size());
  out += keep_alive ? "\r\nConnection: keep-alive" : "\r\nConnection: close";
  for (const auto& [k, v] : res.headers) {
    out += "\r\n";
    out += k;
    out += ": ";
    out += v;
  }
  out += "\r\n\r\n";
  // A HEAD answer has the headers GET would have, Content-Length included, and no body: a client
  // reading a body there would take it for the start of the next answer. (Not the parser's
  // method: on a malformed request line such as "HELLO" it holds its guess from the first byte.)
  if (!c->head) {
    out += res.body;
  }
  send_raw(c, std::move(out));
  if (!keep_alive) {
    c->closing = true;
    if (c->pending_write == 0) {
      close_connection(c);
    }
  }
}

connection* conn_of(http_parser* p) { return static_cast<connection*>(p->data); }

void finish_header(connection* c) {
  if (!c->field.empty()) {
    std::transform(c->field.begin(), c->field.end(), c->field.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    c->headers.emplace_back(std::move(c->field), std::move(c->value));
  }
  c->field.clear();
  c->value.clear();
  c->in_value = false;
}

request make_request(connection* c) {
  const std::string_view url = c->url;
  const std::size_t q = url.find('?');
  return request{http_method_str(static_cast<http_method>(c->parser.method)),
                 q == std::string_view::npos ? url : url.substr(0, q),
                 q == std::string_view::npos ? std::string_view() : url.substr(q + 1),
                 std::move(c->headers),
                 c->body,
                 c->remote,
                 c->ssl != nullptr,
                 c->cert_verified};
}

// Answers now, ignores the rest of the request, and closes the connection.
int answer_early(connection* c, const response& res) {
  send_response(c, res, false);
  http_parser_pause(&c->parser, 1);
  return 0;
}

int on_message_begin(http_parser* p) {
  connection* c = conn_of(p);
  c->in_request = true;
  c->head = false;
  c->started_at = uv_hrtime();
  c->url.clear();
  c->headers.clear();
  c->body.clear();
  c->field.clear();
  c->value.clear();
  c->in_value = false;
  arm(c, c->srv->opts.header_timeout_ms);
  return 0;
}

int on_url(http_parser* p, const char* at, size_t n) {
  conn_of(p)->url.append(at, n);
  return 0;
}

int on_header_field(http_parser* p, const char* at, size_t n) {
  connection* c = conn_of(p);
  if (c->in_value) {
    finish_header(c);
  }
  c->field.append(at, n);
  return 0;
}

int on_header_value(http_parser* p, const char* at, size_t n) {
  connection* c = conn_of(p);
  c->in_value = true;
  c->value.append(at, n);
  return 0;
}

std::string body_too_large(std::size_t max_body_size) {
  return "{\"error\":\"body larger than max_body_size (" + std::to_string(max_body_size) + " bytes)\"}";
}

int on_headers_complete(http_parser* p) {
  connection* c = conn_of(p);
  finish_header(c);
  c->head = p->method == HTTP_HEAD;
  server::impl* srv = c->srv;
  response early;
  if (srv->draining) {
    early.status = 503;
    early.body = R"({"error":"shutting down"})";
    early.headers.emplace_back("Retry-After", "10");
    return answer_early(c, early);
  }
  request headers_only = make_request(c);
  const int status = srv->check ? srv->check(headers_only, early) : 0;
  c->headers = std::move(headers_only.headers);
  if (status != 0) {
    early.status = status;
    return answer_early(c, early);
  }
  c->trusted = true;
  // After the check: a request is first refused for its path, method or credentials, and is
  // counted as a request (the webhook's cs_k8sauditsource_requests_total) whatever its size.
  if ((p->flags & F_CONTENTLENGTH) != 0 && p->content_length > srv->opts.max_body_size) {
    early.status = 413;
    early.body = body_too_large(srv->opts.max_body_size);
    return answer_early(c, early);
  }
  for (const auto& [k, v] : c->headers) {
    if (k == "expect" && (v == "100-continue" || v == "100-Continue")) {
      send_raw(c, "HTTP/1.1 100 Continue\r\n\r\n");
    }
  }
  if ((p->flags & F_CONTENTLENGTH) != 0) {
    // Rounded up, so a recycled buffer (the webhook hands its bodies back) fits the next bodies
    // of about the same size without growing; the spare 64 bytes are the JSON parser's padding.
    c->body.reserve(std::bit_ceil(static_cast<std::size_t>(p->content_length) + 64));
  }
  arm(c, srv->opts.body_timeout_ms);
  return 0;
}

int on_body(http_parser* p, const char* at, size_t n) {
  connection* c = conn_of(p);
  if (c->body.size() + n > c->srv->opts.max_body_size) {
    response early;
    early.status = 413;
    early.body = body_too_large(c->srv->opts.max_body_size);
    return answer_early(c, early);
  }
  c->body.append(at, n);
  return 0;
}

int on_message_complete(http_parser* p) {
  connection* c = conn_of(p);
  server::impl* srv = c->srv;
  c->in_request = false;
  const bool keep_alive = http_should_keep_alive(p) != 0 && !srv->draining;
  request req = make_request(c);
  response res;
  // The last line of defence: a handler that throws (a bug) costs its request a 500, not the
  // process and every other connection of the loop with it.
  try {
    srv->handle(req, res);
  } catch (const std::exception& e) {
    res = response{};
    res.status = 500;
    res.body = R"({"message":"internal error"})";
    counters::add(srv->handler_errors);
    if (!srv->handler_error_said) {
      srv->handler_error_said = true;
      std::fprintf(stderr, "http server %s: a request handler failed (%s); answered 500 (further ones are counted in "
                   "vigil_http_handler_errors_total)\n", srv->opts.name.c_str(), e.what());
    }
  }
  c->headers = std::move(req.headers);
  send_response(c, res, keep_alive);
  if (keep_alive) {
    arm(c, srv->opts.idle_timeout_ms);
  } else {
    // The last answer on this connection: requests pipelined after it are not processed
    // (RFC 9112 9.6), and the connection closes once the answer is written.
    http_parser_pause(p, 1);
  }
  if (c->body.capacity() > (1u << 20)) {
    std::string().swap(c->body); // do not keep a huge buffer for an idle connection
  }
  return 0;
}

// Feeds plaintext to http-parser. False when the connection is done (error or early answer).
bool feed_http(connection* c, const char* data, std::size_t n) {
  const std::size_t used = http_parser_execute(&c->parser, &c->srv->settings, data, n);
  const auto err = HTTP_PARSER_ERRNO(&c->parser);
  if (err == HPE_PAUSED) {
    return false; // an early answer was sent; the connection closes after it
  }
  if (err == HPE_OK && c->parser.upgrade != 0 && c->in_request) {
    return true; // an Upgrade request whose body is still coming: read on
  }
  if (err == HPE_OK && c->parser.upgrade != 0 && !c->in_request) {
    // An Upgrade header (websocket, h2c) on a request that was answered as any other: no other
    // protocol is offered, so the connection goes on in HTTP/1.1 (a server may ignore Upgrade,
    // RFC 9110 7.8) with whatever the client sent after it.
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    return !c->closing && feed_http(c, data + used, n - used);
  }
  if (err != HPE_OK) {
    c->head = false; // the answer to a malformed request has its body, whatever came before
    counters::add(c->srv->parse_errors);
    response res;
    res.status = 400;
    res.body = std::string(R"({"error":"malformed HTTP request: )") + http_errno_description(err) + "\"}";
    send_response(c, res, false);
    return false;
  }
  return true;
}

void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* c = static_cast<connection*>(s->data);
  if (n < 0) {
    close_connection(c); // EOF or error
    return;
  }
  if (n == 0 || c->closing) {
    return;
  }
  counters::add(c->srv->bytes_in, static_cast<std::uint64_t>(n));
  if (c->ssl == nullptr) {
    feed_http(c, buf->base, static_cast<std::size_t>(n));
    return;
  }
  BIO_write(SSL_get_rbio(c->ssl), buf->base, static_cast<int>(n));
  if (!SSL_is_init_finished(c->ssl)) {
    const int r = SSL_do_handshake(c->ssl);
    flush_tls(c);
    if (r <= 0) {
      const int e = SSL_get_error(c->ssl, r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        counters::add(c->srv->tls_failures);
        ERR_clear_error();
        close_connection(c);
      }
      return;
    }
    X509* peer = SSL_get1_peer_certificate(c->ssl);
    c->cert_verified = peer != nullptr && SSL_get_verify_result(c->ssl) == X509_V_OK;
    X509_free(peer);
  }
  char plain[16384];
  while (!c->handles_closed && !c->closing) {
    const int r = SSL_read(c->ssl, plain, sizeof plain);
    if (r > 0) {
      if (!feed_http(c, plain, static_cast<std::size_t>(r))) {
        break;
      }
      continue;
    }
    const int e = SSL_get_error(c->ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
      ERR_clear_error();
      close_connection(c); // close_notify or a TLS error
      return;
    }
    break;
  }
  if (!c->handles_closed) {
    flush_tls(c);
  }
}

void on_connection(uv_stream_t* listener, int status) {
  auto* srv = static_cast<server::impl*>(listener->data);
  if (status < 0) {
    return;
  }
  auto* c = new connection;
  c->srv = srv;
  uv_tcp_init(srv->loop, &c->tcp);
  uv_timer_init(srv->loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->open_handles = 2;
  srv->conns.insert(c);
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
    close_connection(c);
    return;
  }
  counters::add(srv->connections_total);
  c->accepted_at = uv_now(srv->loop);
  if (srv->draining) {
    counters::add(srv->connections_rejected);
    close_connection(c);
    return;
  }
  sockaddr_storage addr{};
  int len = sizeof addr;
  if (uv_tcp_getpeername(&c->tcp, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    char ip[64] = {};
    int port = 0;
    if (addr.ss_family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&addr);
      uv_ip4_name(a, ip, sizeof ip);
      port = ntohs(a->sin_port);
    } else if (addr.ss_family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
      uv_ip6_name(a, ip, sizeof ip);
      port = ntohs(a->sin6_port);
    }
    c->ip = ip;
    c->remote = c->ip + ":" + std::to_string(port);
  }
  if (srv->conns.size() > srv->opts.max_connections) {
    // Full (connections still closing do not count). Room is made by closing a connection no
    // request has passed the check on (path, method, credentials: a client without the token,
    // one that sent a byte and stalls, one in its TLS handshake): the oldest of the address that
    // holds the most such connections, so a client flooding the server with connections closes
    // its own, not another client's handshake. Else the oldest connection idle between requests
    // (its client reconnects). When every connection has a request under way, the new one is
    // refused. So clients without credentials cannot lock kube-apiserver out from another
    // address, and without authentication only requests actually being sent can fill the server.
    std::size_t live = 0;
    std::unordered_map<std::string_view, std::size_t> unproven; // by address: connections no request passed
    connection* idle = nullptr;
    for (connection* other : srv->conns) {
      if (other == c || other->handles_closed) {
        continue;
      }
      ++live;
      if (other->closing) {
        continue;
      }
      if (!other->trusted) {
        ++unproven[other->ip];
      } else if (!other->in_request && (idle == nullptr || other->accepted_at < idle->accepted_at)) {
        idle = other;
      }
    }
    if (live >= srv->opts.max_connections) {
      std::string_view flooder;
      std::size_t most = 0;
      for (const auto& [ip, n] : unproven) {
        if (n > most) {
          most = n;
          flooder = ip;
        }
      }
      connection* room = nullptr;
      for (connection* other : srv->conns) {
        if (other != c && !other->handles_closed && !other->closing && !other->trusted && other->ip == flooder &&
            (room == nullptr || other->accepted_at < room->accepted_at)) {
          room = other;
        }
      }
      if (room == nullptr) {
        room = idle;
      }
      if (room == nullptr) {
        counters::add(srv->connections_rejected);
        close_connection(c);
        return;
      }
      counters::add(srv->connections_evicted);
      close_connection(room);
    }
  }
  uv_tcp_nodelay(&c->tcp, 1);
  if (srv->ssl_ctx != nullptr) {
    c->ssl = SSL_new(srv->ssl_ctx);
    SSL_set_bio(c->ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_accept_state(c->ssl);
  }
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  arm(c, srv->opts.header_timeout_ms);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read);
}

} // namespace

server::server(uv_loop_s* loop, server_options opts, precheck check, handler h) : impl_(std::make_unique<impl>()) {
  impl& s = *impl_;
  s.loop = loop;
  s.opts = std::move(opts);
  s.check = std::move(check);
  s.handle = std::move(h);
  http_parser_settings_init(&s.settings);
  s.settings.on_message_begin = on_message_begin;
  s.settings.on_url = on_url;
  s.settings.on_header_field = on_header_field;
  s.settings.on_header_value = on_header_value;
  s.settings.on_headers_complete = on_headers_complete;
  s.settings.on_body = on_body;
  s.settings.on_message_complete = on_message_complete;
  auto& r = counters::registry::global();
  const counters::label l{"server", s.opts.name};
  s.connections_total = r.define("vigil_http_connections_total", "TCP connections accepted", {l});
  s.connections_rejected =
      r.define("vigil_http_connections_rejected_total", "Connections closed at once (max_connections, draining)", {l});
  s.connections_evicted = r.define("vigil_http_connections_evicted_total",
                                   "Connections closed to make room at max_connections (no request passed the check on them, or idle)", {l});
  s.bytes_in = r.define("vigil_http_bytes_received_total", "Bytes read from HTTP clients", {l});
  s.parse_errors = r.define("vigil_http_parse_errors_total", "Requests that were not valid HTTP/1.1", {l});
  s.timeouts = r.define("vigil_http_timeouts_total", "Connections closed by a header, body or idle timeout", {l});
  s.handler_errors = r.define("vigil_http_handler_errors_total", "Requests whose handler failed (answered 500)", {l});
  s.tls_failures = r.define("vigil_http_tls_handshake_failures_total", "TLS handshakes that failed", {l});
  s.latency = counters::histogram("vigil_http_request_duration_seconds",
                                  "Time from a request's first byte to its response, by server",
                                  {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}, {l});
}

server::~server() = default;

namespace {

std::string openssl_error(const std::string& what) {
  char buf[256] = "unknown error";
  const unsigned long e = ERR_get_error();
  if (e != 0) {
    ERR_error_string_n(e, buf, sizeof buf);
  }
  ERR_clear_error();
  return what + ": " + buf;
}

// Client certificates are checked, but a missing or bad one does not fail the handshake: the
// request is answered 401 by the handler instead, which the client can read.
int accept_any_client_cert(int, X509_STORE_CTX*) { return 1; }

} // namespace

std::string server::listen() {
  impl& s = *impl_;
  if (s.opts.tls) {
    const tls_options& t = *s.opts.tls;
    s.ssl_ctx = SSL_CTX_new(TLS_server_method());
    if (s.ssl_ctx == nullptr) {
      return openssl_error("TLS");
    }
    SSL_CTX_set_min_proto_version(s.ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(s.ssl_ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(s.ssl_ctx, t.cert_file.c_str()) != 1) {
      return openssl_error("TLS certificate " + t.cert_file);
    }
    if (SSL_CTX_use_PrivateKey_file(s.ssl_ctx, t.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      return openssl_error("TLS key " + t.key_file);
    }
    if (SSL_CTX_check_private_key(s.ssl_ctx) != 1) {
      return openssl_error("TLS key " + t.key_file + " does not match " + t.cert_file);
    }
    if (!t.client_ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(s.ssl_ctx, t.client_ca_file.c_str(), nullptr) != 1) {
        return openssl_error("TLS client CA " + t.client_ca_file);
      }
      SSL_CTX_set_client_CA_list(s.ssl_ctx, SSL_load_client_CA_file(t.client_ca_file.c_str()));
      SSL_CTX_set_verify(s.ssl_ctx, SSL_VERIFY_PEER, accept_any_client_cert);
    }
  }
  sockaddr_storage addr{};
  int rc = uv_ip4_addr(s.opts.host.c_str(), s.opts.port, reinterpret_cast<sockaddr_in*>(&addr));
  if (rc != 0) {
    rc = uv_ip6_addr(s.opts.host.c_str(), s.opts.port, reinterpret_cast<sockaddr_in6*>(&addr));
  }
  if (rc != 0) {
    return "invalid listen address '" + s.opts.host + "'";
  }
  uv_tcp_init(s.loop, &s.listener);
  s.listener.data = &s;
  rc = uv_tcp_bind(&s.listener, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&s.listener), 511, on_connection);
  }
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&s.listener), nullptr);
    return "cannot listen on " + s.opts.host + ":" + std::to_string(s.opts.port) + ": " + uv_strerror(rc);
  }
  s.listening = true;
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(&s.listener, reinterpret_cast<sockaddr*>(&bound), &len);
  s.port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                             : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return {};
}

std::uint16_t server::bound_port() const noexcept { return impl_->port; }
std::size_t server::connections() const noexcept { return impl_->conns.size(); }

namespace {

void close_idle(server::impl& s) {
  std::vector<connection*> idle;
  for (connection* c : s.conns) {
    if (!c->in_request && c->pending_write == 0) {
      idle.push_back(c);
    } else if (!c->in_request) {
      c->closing = true; // close after the answer being written
    }
  }
  for (connection* c : idle) {
    close_connection(c);
  }
}

} // namespace

void server::drain(std::function<void()> on_drained) {
  impl& s = *impl_;
  s.draining = true;
  s.on_drained = std::move(on_drained);
  if (s.listening) {
    s.listening = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&s.listener), nullptr);
  }
  // For a short grace period, keep-alive clients that send a request get 503 (a clear "come back
  // later" that kube-apiserver retries); requests in progress are answered (Connection: close).
  // Then idle connections are closed.
  uv_timer_init(s.loop, &s.drain_timer);
  s.drain_timer.data = &s;
  s.drain_timer_open = true;
  uv_timer_start(
      &s.drain_timer,
      [](uv_timer_t* t) {
        auto* srv = static_cast<impl*>(t->data);
        uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
        srv->drain_timer_open = false;
        close_idle(*srv);
        srv->maybe_drained();
      },
      s.opts.drain_grace_ms, 0);
  if (s.conns.empty()) {
    uv_timer_stop(&s.drain_timer);
    uv_close(reinterpret_cast<uv_handle_t*>(&s.drain_timer), nullptr);
    s.drain_timer_open = false;
    s.maybe_drained();
  }
}

} // namespace vigil::http
