#include "io/api/lapi.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string_view>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <strings.h>

#include "engine/alert/alert.h"
#include "engine/counters/counters.h"
#include "engine/event/duration.h"

namespace vigil::io {

namespace {

std::string hex(const unsigned char* p, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

constexpr const char* forbidden_body = R"({"message":"access forbidden"})";

int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Query-string decoding; a '%' not followed by two hex digits stays as it is.
std::string url_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const int hi = s[i] == '%' && i + 2 < s.size() ? hex_digit(s[i + 1]) : -1;
    const int lo = hi >= 0 ? hex_digit(s[i + 2]) : -1;
    if (lo >= 0) {
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

std::string param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view kv = query.substr(0, amp);
    const std::size_t eq = kv.find('=');
    if (kv.substr(0, eq) == name) {
      return eq == std::string_view::npos ? std::string() : url_decode(kv.substr(eq + 1));
    }
    if (amp == std::string_view::npos) {
      break;
    }
    query.remove_prefix(amp + 1);
  }
  return {};
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size() && !s.empty()) {
    const std::size_t comma = s.find(',', start);
    std::string part = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!part.empty()) {
      out.push_back(part);
    }
    if (comma == std::string::npos) {
      break;
    }
    start = comma + 1;
  }
  return out;
}

// The decisions an `ip` or `range` query can select: those that hold an address or a range.
bool is_ip_scope(const std::string& scope) {
  return strcasecmp(scope.c_str(), "ip") == 0 || strcasecmp(scope.c_str(), "range") == 0;
}

void bad_request(http::response& res, const std::string& message) {
  res.status = 400;
  res.body = "{\"message\":";
  engine::append_json_string(res.body, message);
  res.body += "}";
}

// Go's strconv.ParseBool.
std::optional<bool> go_bool(std::string_view s) {
  for (std::string_view t : {"1", "t", "T", "TRUE", "true", "True"}) {
    if (s == t) {
      return true;
    }
  }
  for (std::string_view f : {"0", "f", "F", "FALSE", "false", "False"}) {
    if (s == f) {
      return false;
    }
  }
  return std::nullopt;
}

engine::unix_nanos now_nanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void render(std::string& out, const stored_decision& d, engine::unix_nanos now) {
  out += "{\"id\":" + std::to_string(d.id) + ",\"uuid\":";
  engine::append_json_string(out, "vigil-" + std::to_string(d.id));
  out += ",\"origin\":";
  engine::append_json_string(out, d.d.origin);
  out += ",\"type\":";
  engine::append_json_string(out, d.d.type);
  out += ",\"scope\":";
  engine::append_json_string(out, d.d.scope);
  out += ",\"value\":";
  engine::append_json_string(out, d.d.value);
  out += ",\"duration\":";
  // The remaining time; never negative (a negative duration means "forever" to some bouncers).
  const engine::unix_nanos left = d.d.until > now ? d.d.until - now : 0;
  engine::append_json_string(out, engine::format_go_duration(left));
  out += ",\"until\":";
  engine::append_json_string(out, engine::format_rfc3339_nano(d.d.until));
  out += ",\"scenario\":";
  engine::append_json_string(out, d.d.scenario);
  out += ",\"simulated\":false}";
}

std::string render_list(const std::vector<stored_decision>& ds, engine::unix_nanos now) {
  if (ds.empty()) {
    return "null";
  }
  std::string out = "[";
  for (std::size_t i = 0; i < ds.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    render(out, ds[i], now);
  }
  return out + "]";
}

} // namespace

std::string hash_api_key(const std::string& key) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(key.data(), key.size(), md, &len, EVP_sha256(), nullptr);
  return hex(md, len);
}

std::string new_api_key() {
  unsigned char buf[32];
  if (RAND_bytes(buf, sizeof buf) != 1) {
    return {};
  }
  return hex(buf, sizeof buf);
}

lapi::lapi(std::unique_ptr<store> s) : store_(std::move(s)) {
  auto& r = counters::registry::global();
  forbidden_id_ = r.define("vigil_lapi_forbidden_total", "Local API requests refused (missing or wrong X-Api-Key)");
  requests_id_ = r.define("vigil_lapi_requests_total", "Local API requests answered");
  store_busy_id_ = r.define("vigil_lapi_store_busy_total",
                            "Decision stream pulls answered 503: the store stayed locked by another writer");
}

lapi::~lapi() = default;

int lapi::precheck(const http::request& req, http::response& res) {
  if (req.path != "/v1/decisions" && req.path != "/v1/decisions/stream") {
    res.body = R"({"message":"not found"})";
    return 404;
  }
  // CrowdSec's LAPI counts every request to a route, refused or not (its metrics middleware
  // runs before authentication). Routes are the two above; methods are http-parser's.
  vigil::counters::add(counters::registry::global().define(
      "cs_lapi_route_requests_total", "Number of calls to each route per method.",
      {{"route", req.path}, {"method", req.method}}));
  if (req.method != "GET" && req.method != "HEAD") { // CrowdSec routes HEAD to the GET handlers
    res.headers.emplace_back("Allow", "GET, HEAD");
    res.body = R"({"message":"method not allowed"})";
    return 405;
  }
  const std::string_view key = req.header("x-api-key");
  if (key.empty() || !store_->find_bouncer(hash_api_key(std::string(key)))) {
    vigil::counters::add(forbidden_id_);
    res.body = forbidden_body;
    return 403;
  }
  return 0;
}

void lapi::handle(http::request& req, http::response& res) {
  vigil::counters::add(requests_id_);
  // The time to answer, as cs_lapi_request_duration_seconds (CrowdSec's buckets).
  struct timed {
    counters::histogram& h;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    ~timed() { h.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()); }
  };
  auto [slot, fresh] = durations_.try_emplace(std::string(req.path) + " " + std::string(req.method));
  if (fresh) {
    slot->second = counters::histogram("cs_lapi_request_duration_seconds", "Response time of LAPI",
                                       {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1},
                                       {{"endpoint", req.path}, {"method", req.method}});
  }
  const timed timer{slot->second};
  const auto b = store_->find_bouncer(hash_api_key(std::string(req.header("x-api-key"))));
  if (!b) { // deleted (vigil bouncers delete) since the precheck read the headers
    vigil::counters::add(forbidden_id_);
    res.status = 403;
    res.body = forbidden_body;
    return;
  }
  vigil::counters::add(counters::registry::global().define(
      "cs_lapi_bouncer_requests_total", "Number of calls to each route per method grouped by bouncers.",
      {{"bouncer", b->name}, {"route", req.path}, {"method", req.method}}));
  const engine::unix_nanos now = now_nanos();
  if (req.path == "/v1/decisions/stream") {
    if (req.method == "HEAD") {
      // As CrowdSec answers it: 200 and an empty body, nothing pulled, so the key's position
      // stays for its next GET.
      return;
    }
    stream_filter f;
    if (const std::string scopes = param(req.query, "scopes"); !scopes.empty()) {
      f.scopes.clear();
      for (std::string sc : split(scopes)) {
        for (char& c : sc) {
          c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        f.scopes.push_back(sc);
      }
    }
    f.origins = split(param(req.query, "origins"));
    f.scenarios_containing = split(param(req.query, "scenarios_containing"));
    f.scenarios_not_containing = split(param(req.query, "scenarios_not_containing"));
    const bool startup = param(req.query, "startup") == "true";
    const stream_answer a = store_->pull_stream(b->name, startup, f, now);
    if (!a.ok) {
      // The store is held by another writer for longer than this loop may wait (it serves the
      // webhook too): the bouncer asks again at its next interval, nothing was pulled.
      vigil::counters::add(store_busy_id_);
      res.status = 503;
      res.headers.emplace_back("Retry-After", "1");
      res.body = "{\"message\":";
      engine::append_json_string(res.body, "store busy: " + store_->last_error());
      res.body += '}';
      return;
    }
    res.body = "{\"new\":" + render_list(a.added, now) + ",\"deleted\":" + render_list(a.deleted, now) + "}";
    return;
  }
  // GET /v1/decisions: active decisions matching the query (a bare query lists them all). As in
  // CrowdSec, `ip` or `range` selects the Ip and Range decisions that contain that address or
  // range, or with contains=false those inside it; a value that is neither, or a `contains`
  // that is not a boolean, is a 400.
  const std::string ip = param(req.query, "ip");
  const std::string range = param(req.query, "range");
  const std::string scope = param(req.query, "scope");
  const std::string value = param(req.query, "value");
  const std::string type = param(req.query, "type");
  const std::string& where_text = range.empty() ? ip : range;
  std::optional<engine::ip_prefix> where;
  if (!where_text.empty()) {
    where = engine::parse_ip_or_prefix(where_text);
    if (!where) {
      bad_request(res, "'" + where_text + "' is not an IP address or range");
      return;
    }
  }
  bool contains = true;
  if (const std::string c = param(req.query, "contains"); !c.empty()) {
    const auto b = go_bool(c);
    if (!b) {
      bad_request(res, "invalid contains value: '" + c + "'");
      return;
    }
    contains = *b;
  }
  std::vector<stored_decision> out;
  for (auto& d : store_->list_decisions(decision_filter{.now = now})) {
    if (where) {
      const auto held = is_ip_scope(d.d.scope) ? engine::parse_ip_or_prefix(d.d.value) : std::nullopt;
      if (!held || !(contains ? engine::prefix_covers(*held, *where) : engine::prefix_covers(*where, *held))) {
        continue;
      }
    }
    if ((!value.empty() && d.d.value != value) || (!type.empty() && d.d.type != type)) {
      continue;
    }
    if (!scope.empty() && strcasecmp(scope.c_str(), d.d.scope.c_str()) != 0) {
      continue;
    }
    out.push_back(std::move(d));
  }
  res.body = render_list(out, now);
}

} // namespace vigil::io
