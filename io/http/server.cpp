#include "io/http/server.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include <http_parser.h>
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
  std::function<void()> on_drained;
  std::unordered_set<connection*> conns;
  std::uint16_t port = 0;
  http_parser_settings settings{};
  std::unordered_map<int, counters::id> status_ids;
  counters::id connections_total, connections_rejected, bytes_in, parse_errors, timeouts;

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
  bool in_request = false;   // between message begin and complete
  bool closing = false;      // close once pending writes are flushed
  bool read_paused = false;
  bool handles_closed = 0;
  int open_handles = 0;
  std::size_t pending_write = 0;
};

void close_connection(connection* c);

void on_handle_closed(uv_handle_t* h) {
  auto* c = static_cast<connection*>(h->data);
  if (--c->open_handles == 0) {
    server::impl* srv = c->srv;
    srv->conns.erase(c);
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

void send_raw(connection* c, std::string data) {
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

void send_response(connection* c, const response& res, bool keep_alive) {
  counters::add(c->srv->status_counter(res.status));
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
  out += res.body;
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
                 c->remote};
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

int on_headers_complete(http_parser* p) {
  connection* c = conn_of(p);
  finish_header(c);
  server::impl* srv = c->srv;
  response early;
  if (srv->draining) {
    early.status = 503;
    early.body = R"({"error":"shutting down"})";
    early.headers.emplace_back("Retry-After", "10");
    return answer_early(c, early);
  }
  if ((p->flags & F_CONTENTLENGTH) != 0 && p->content_length > srv->opts.max_body_size) {
    early.status = 413;
    early.body = R"({"error":"body larger than max_body_size (")" + std::to_string(srv->opts.max_body_size) + " bytes)\"}";
    return answer_early(c, early);
  }
  request headers_only = make_request(c);
  const int status = srv->check ? srv->check(headers_only, early) : 0;
  c->headers = std::move(headers_only.headers);
  if (status != 0) {
    early.status = status;
    return answer_early(c, early);
  }
  for (const auto& [k, v] : c->headers) {
    if (k == "expect" && (v == "100-continue" || v == "100-Continue")) {
      send_raw(c, "HTTP/1.1 100 Continue\r\n\r\n");
    }
  }
  if ((p->flags & F_CONTENTLENGTH) != 0) {
    c->body.reserve(static_cast<std::size_t>(p->content_length) + 64);
  }
  arm(c, srv->opts.body_timeout_ms);
  return 0;
}

int on_body(http_parser* p, const char* at, size_t n) {
  connection* c = conn_of(p);
  if (c->body.size() + n > c->srv->opts.max_body_size) {
    response early;
    early.status = 413;
    early.body = R"({"error":"body larger than max_body_size (")" + std::to_string(c->srv->opts.max_body_size) +
                 " bytes)\"}";
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
  srv->handle(req, res);
  c->headers = std::move(req.headers);
  send_response(c, res, keep_alive);
  if (keep_alive) {
    arm(c, srv->opts.idle_timeout_ms);
  }
  if (c->body.capacity() > (1u << 20)) {
    std::string().swap(c->body); // do not keep a huge buffer for an idle connection
  }
  return 0;
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
  const std::size_t used = http_parser_execute(&c->parser, &c->srv->settings, buf->base, static_cast<std::size_t>(n));
  const auto err = HTTP_PARSER_ERRNO(&c->parser);
  if (err == HPE_PAUSED) {
    return; // an early answer was sent; the connection closes after it
  }
  if (err != HPE_OK || (c->parser.upgrade != 0)) {
    counters::add(c->srv->parse_errors);
    response res;
    res.status = 400;
    res.body = std::string(R"({"error":"malformed HTTP request: )") + http_errno_description(err) + "\"}";
    send_response(c, res, false);
    return;
  }
  (void)used;
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
  if (srv->conns.size() > srv->opts.max_connections || srv->draining) {
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
    c->remote = std::string(ip) + ":" + std::to_string(port);
  }
  uv_tcp_nodelay(&c->tcp, 1);
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
  s.bytes_in = r.define("vigil_http_bytes_received_total", "Bytes read from HTTP clients", {l});
  s.parse_errors = r.define("vigil_http_parse_errors_total", "Requests that were not valid HTTP/1.1", {l});
  s.timeouts = r.define("vigil_http_timeouts_total", "Connections closed by a header, body or idle timeout", {l});
}

server::~server() = default;

std::string server::listen() {
  impl& s = *impl_;
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

void server::drain(std::function<void()> on_drained) {
  impl& s = *impl_;
  s.draining = true;
  s.on_drained = std::move(on_drained);
  if (s.listening) {
    s.listening = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&s.listener), nullptr);
  }
  // Idle connections close now; one with an answer still being written closes after it; one in
  // the middle of a request is answered (with Connection: close) and then closes.
  std::vector<connection*> idle;
  for (connection* c : s.conns) {
    if (!c->in_request && c->pending_write == 0) {
      idle.push_back(c);
    } else if (!c->in_request) {
      c->closing = true;
    }
  }
  for (connection* c : idle) {
    close_connection(c);
  }
  s.maybe_drained();
}

} // namespace vigil::http
