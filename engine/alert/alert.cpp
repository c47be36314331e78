#include "engine/alert/alert.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include <arpa/inet.h>

#include "engine/event/duration.h"
#include "engine/event/timestamp.h"

namespace vigil::engine {

namespace {

// inet_pton on a string_view; the family it parsed as, or 0.
int parse_address(std::string_view s, unsigned char (&addr)[16]) noexcept {
  char buf[64];
  if (s.empty() || s.size() >= sizeof buf) {
    return 0;
  }
  s.copy(buf, s.size());
  buf[s.size()] = '\0';
  if (inet_pton(AF_INET, buf, addr) == 1) {
    return AF_INET;
  }
  return inet_pton(AF_INET6, buf, addr) == 1 ? AF_INET6 : 0;
}

} // namespace

bool is_ip(std::string_view s) noexcept {
  unsigned char addr[16];
  return parse_address(s, addr) != 0;
}

std::optional<ip_prefix> parse_prefix(std::string_view s) noexcept {
  const std::size_t slash = s.find('/');
  if (slash == std::string_view::npos) {
    return std::nullopt;
  }
  ip_prefix p;
  p.family = parse_address(s.substr(0, slash), p.addr);
  const std::string_view bits = s.substr(slash + 1);
  const char* end = bits.data() + bits.size();
  if (p.family == 0 || bits.empty() || bits.size() > 3 || bits[0] < '0' || bits[0] > '9' ||
      std::from_chars(bits.data(), end, p.bits).ptr != end ||
      p.bits < 0 || p.bits > (p.family == AF_INET ? 32 : 128)) {
    return std::nullopt;
  }
  return p;
}

std::optional<ip_prefix> parse_ip_or_prefix(std::string_view s) noexcept {
  std::optional<ip_prefix> p;
  if (s.find('/') != std::string_view::npos) {
    p = parse_prefix(s);
  } else {
    p.emplace();
    p->family = parse_address(s, p->addr);
    if (p->family == 0) {
      return std::nullopt;
    }
    p->bits = p->family == AF_INET ? 32 : 128;
  }
  // An IPv4-mapped IPv6 address (::ffff:1.2.3.4) is the IPv4 address, as Go's To4() makes it.
  static constexpr unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (p && p->family == AF_INET6 && p->bits >= 96 && std::memcmp(p->addr, mapped, 12) == 0) {
    std::memmove(p->addr, p->addr + 12, 4);
    std::memset(p->addr + 4, 0, 12);
    p->family = AF_INET;
    p->bits -= 96;
  }
  return p;
}

std::string format_address(const ip_prefix& p) {
  char text[INET6_ADDRSTRLEN];
  return inet_ntop(p.family, p.addr, text, sizeof text) != nullptr ? std::string(text) : std::string();
}

bool prefix_covers(const ip_prefix& outer, const ip_prefix& inner) noexcept {
  if (outer.family != inner.family || outer.bits > inner.bits) {
    return false;
  }
  const int whole = outer.bits / 8;
  if (std::memcmp(inner.addr, outer.addr, static_cast<std::size_t>(whole)) != 0) {
    return false;
  }
  const int rest = outer.bits % 8;
  if (rest == 0) {
    return true;
  }
  const auto mask = static_cast<unsigned char>(0xff00 >> rest);
  return (inner.addr[whole] & mask) == (outer.addr[whole] & mask);
}

namespace {

// Go's time.Time.String() for a UTC time, appended to `out` without a temporary string.
void append_go_time(std::string& out, unix_nanos t) {
  char buf[48];
  const std::size_t n = format_rfc3339_nano(t, buf); // 2023-05-17T15:08:22.76396Z
  buf[10] = ' ';
  out.append(buf, n - 1).append(" +0000 UTC");
}

// True if any of the 8 bytes of `w` is a control character, '"' or '\\' (bit tricks on the
// word: a byte below 0x20, or one equal to 0x22 or 0x5c, sets its top bit in the result). Bytes
// of 0x80 and above never match, so UTF-8 passes through.
bool needs_escape(std::uint64_t w) noexcept {
  constexpr std::uint64_t ones = 0x0101010101010101ULL;
  constexpr std::uint64_t highs = 0x8080808080808080ULL;
  auto zero_byte = [](std::uint64_t v) { return (v - ones) & ~v & highs; };
  const std::uint64_t below_space = (w - ones * 0x20) & ~w & highs;
  return (below_space | zero_byte(w ^ (ones * '"')) | zero_byte(w ^ (ones * '\\'))) != 0;
}

// One byte of a JSON string, escaped if it must be (as Go's encoder writes the ones it must).
char* put_json_byte(char* d, unsigned char c) noexcept {
  if (c >= 0x20 && c != '"' && c != '\\') {
    *d++ = static_cast<char>(c);
    return d;
  }
  *d++ = '\\';
  switch (c) {
    case '"':
    case '\\':
      *d++ = static_cast<char>(c);
      break;
    case '\n':
      *d++ = 'n';
      break;
    case '\r':
      *d++ = 'r';
      break;
    case '\t':
      *d++ = 't';
      break;
    default: {
      static constexpr char hex[] = "0123456789abcdef";
      std::memcpy(d, "u00", 3);
      d[3] = hex[c >> 4];
      d[4] = hex[c & 15];
      d += 5;
    }
  }
  return d;
}

// How many bytes write_json_string writes for `s`, exactly: quotes, two for \" \\ \n \r \t,
// six for other control bytes (\u001f), one for the rest. Clean words are counted eight bytes
// at a time.
std::size_t json_string_size(std::string_view s) noexcept {
  const char* p = s.data();
  const std::size_t n = s.size();
  std::size_t size = 2 + n;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (!needs_escape(w)) {
      continue;
    }
    for (std::size_t k = i; k < i + 8; ++k) {
      char buf[6];
      size += static_cast<std::size_t>(put_json_byte(buf, static_cast<unsigned char>(p[k])) - buf) - 1;
    }
  }
  for (; i < n; ++i) {
    char buf[6];
    size += static_cast<std::size_t>(put_json_byte(buf, static_cast<unsigned char>(p[i])) - buf) - 1;
  }
  return size;
}

// Room for write_json_string(s): six bytes per byte (\u001f) for a short string, which is
// cheaper to assume than to count; a long one is counted, so that a buffer sized for a line
// holding a large value (a long user name, a template's output) is not six times its size.
std::size_t json_string_bound(std::string_view s) noexcept {
  constexpr std::size_t counted_from = 256;
  return s.size() < counted_from ? 2 + 6 * s.size() : json_string_size(s);
}

// Writes `s` quoted and escaped at `d` (room for json_string_bound(s) bytes) and returns
// the end. Eight bytes at a time while none needs escaping (most of an alert's text); a word
// that does is escaped byte by byte, and the last, partial word is read as the string's last
// eight bytes, which overlap bytes already written.
char* write_json_string(char* d, std::string_view s) noexcept {
  *d++ = '"';
  const char* p = s.data();
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i + 8 <= n) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (!needs_escape(w)) {
      std::memcpy(d, &w, 8);
      d += 8;
      i += 8;
      continue;
    }
    for (const std::size_t word_end = i + 8; i < word_end; ++i) {
      d = put_json_byte(d, static_cast<unsigned char>(p[i]));
    }
  }
  if (i < n) {
    std::uint64_t w;
    if (n >= 8 && (std::memcpy(&w, p + n - 8, 8), !needs_escape(w))) {
      std::memcpy(d, p + i, n - i);
      d += n - i;
    } else {
      for (; i < n; ++i) {
        d = put_json_byte(d, static_cast<unsigned char>(p[i]));
      }
    }
  }
  *d++ = '"';
  return d;
}

// An alert's JSON line written at a cursor into a buffer sized by alert_json_bound(): no
// capacity check per key or value.
struct json_cursor {
  char* d;

  void raw(std::string_view s) noexcept {
    std::memcpy(d, s.data(), s.size());
    d += s.size();
  }
  void str(std::string_view s) noexcept { d = write_json_string(d, s); }
  /// A key (a literal with its quotes, colon and any leading comma) and its string value.
  void str(std::string_view key, std::string_view s) noexcept {
    raw(key);
    str(s);
  }
  void number(std::uint64_t v) noexcept { d = std::to_chars(d, d + 20, v).ptr; }
  void number(std::int64_t v) noexcept { d = std::to_chars(d, d + 20, v).ptr; }
  void time(unix_nanos t) noexcept {
    *d++ = '"';
    d += format_rfc3339_nano(t, d);
    *d++ = '"';
  }
  void meta(const meta_list& m) noexcept {
    *d++ = '{';
    bool first = true;
    for (const auto& [k, v] : m) {
      if (!first) {
        *d++ = ',';
      }
      first = false;
      str(k);
      *d++ = ':';
      str(v);
    }
    *d++ = '}';
  }
};

// Room for a formatted time with its quotes (format_rfc3339_nano writes at most 30 bytes).
constexpr std::size_t json_time_bound = 48;
// Room for a decision's duration with its quotes: format_go_duration's longest text is 25 bytes
// ("-2562047h47m16.854775808s"), and it never needs escaping (digits, units, µ).
constexpr std::size_t json_duration_bound = 32;

std::size_t meta_json_bound(const meta_list& m) noexcept {
  std::size_t n = 2;
  for (const auto& [k, v] : m) {
    n += 2 + json_string_bound(k) + json_string_bound(v);
  }
  return n;
}

// The most bytes append_json writes for `a`: the keys and punctuation (under 512), then each
// value at its own bound.
std::size_t alert_json_bound(const alert& a) noexcept {
  std::size_t n = 512 + a.labels_json.size() + 2 * 20 + 2 * json_time_bound;
  for (const std::string* s : {&a.scenario, &a.message, &a.source_ip, &a.user, &a.namespace_, &a.resource_name,
                               &a.kind, &a.cluster, &a.scope, &a.value, &a.leakspeed}) {
    n += json_string_bound(*s);
  }
  for (const decision& d : a.decisions) {
    n += 128 + json_time_bound + json_duration_bound;
    for (const std::string* s : {&d.type, &d.scope, &d.value, &d.origin, &d.scenario}) {
      n += json_string_bound(*s);
    }
  }
  for (const event_payload& e : a.events) {
    n += 32 + json_time_bound + meta_json_bound(e.meta);
  }
  return n;
}

} // namespace

std::string format_go_time(unix_nanos t) {
  std::string s;
  append_go_time(s, t);
  return s;
}

void append_json_string(std::string& out, std::string_view s) {
  const std::size_t start = out.size();
  out.resize(start + json_string_bound(s));
  char* end = write_json_string(out.data() + start, s);
  out.resize(static_cast<std::size_t>(end - out.data()));
}

void make_alert(alert& a, const alert_origin& origin, std::uint64_t events_count, unix_nanos first, unix_nanos last,
                unix_nanos at, const event_payload* const* events, std::size_t n_events, std::string_view scope_value) {
  // Every field is assigned, so a recycled alert keeps its buffers and a warm one allocates
  // nothing: alerts are built on the workers, where the heap is shared with the event path.
  a.scenario.assign(origin.name);
  a.scope.assign(origin.scope_type.empty() ? std::string_view("Ip") : origin.scope_type);
  a.events_count = events_count;
  a.start_at = first;
  a.last_at = last;
  a.stop_at = at;
  a.capacity = origin.capacity;
  a.leakspeed.assign(origin.leakspeed);
  a.remediation = origin.remediation;
  a.reprocess = origin.reprocess;
  a.further_source = false;
  a.labels_json.assign(origin.labels_json);
  a.events.resize(n_events);
  for (std::size_t i = 0; i < n_events; ++i) {
    a.events[i].assign(*events[i]);
  }
  const event_payload* last_event = a.events.empty() ? nullptr : &a.events.back();
  auto meta = [&](meta_key key) { return last_event != nullptr ? last_event->get(key) : std::string_view(); };
  a.source_ip.assign(meta(meta_key::source_ip));
  a.user.assign(meta(meta_key::user));
  a.namespace_.assign(meta(meta_key::namespace_));
  a.resource_name.assign(meta(meta_key::resource_name));
  a.kind.assign(meta(meta_key::kind));
  a.cluster.assign(meta(meta_key::cluster));
  if (a.scope == "Ip") {
    a.value.assign(is_ip(a.source_ip) ? std::string_view(a.source_ip) : std::string_view());
  } else if (a.scope == "Range") {
    const bool range = scope_value.find('/') != std::string_view::npos && parse_ip_or_prefix(scope_value);
    a.value.assign(range ? scope_value : std::string_view());
  } else {
    a.value.assign(scope_value);
  }
  a.decisions.clear();
  a.notifications.clear();
  write_message(a, a.value.empty() ? std::string_view("UNKNOWN") : std::string_view(a.value));
}

// CrowdSec: "%s %s performed '%s' (%d events over %s) at %s" with the scope, the source value
// (or "N sources"), the scenario, Total_count, Ovflw_ts - First_ts and Last_ts.
void write_message(alert& a, std::string_view value) {
  char count[20];
  const char* count_end = std::to_chars(count, count + sizeof count, a.events_count).ptr;
  a.message.clear();
  a.message.append(a.scope).append(" ").append(value).append(" performed '").append(a.scenario);
  a.message.append("' (").append(count, static_cast<std::size_t>(count_end - count)).append(" events over ");
  a.message.append(format_go_duration(a.stop_at - a.start_at)).append(") at ");
  append_go_time(a.message, a.last_at);
}

std::size_t split_sources(alert& a, std::vector<std::string>& sources) {
  sources.clear();
  if (a.scope != "Ip") {
    return 0;
  }
  // The common case, every event from one address, costs a comparison per event.
  std::string_view first;
  bool one = true;
  for (const event_payload& e : a.events) {
    const std::string_view ip = e.get(meta_key::source_ip);
    if (!is_ip(ip)) {
      continue;
    }
    if (first.empty()) {
      first = ip;
    } else if (ip != first) {
      one = false;
      break;
    }
  }
  if (first.empty()) {
    return 0; // no address at all: the alert keeps an empty value
  }
  if (one) {
    if (a.value != first) { // the last event had no address, earlier ones had this one
      a.value.assign(first);
      a.source_ip.assign(first);
      write_message(a, a.value);
    }
    return 1;
  }
  for (const event_payload& e : a.events) {
    const std::string_view ip = e.get(meta_key::source_ip);
    if (is_ip(ip) && std::find(sources.begin(), sources.end(), ip) == sources.end()) {
      sources.emplace_back(ip);
    }
  }
  a.value.assign(sources[0]);
  a.source_ip.assign(sources[0]);
  char many[32];
  const char* end = std::to_chars(many, many + sizeof many, sources.size()).ptr;
  write_message(a, std::string(many, static_cast<std::size_t>(end - many)) + " sources");
  return sources.size();
}

void share_events(std::vector<event_payload>& events, alert& first, std::span<alert* const> others,
                  const std::vector<std::string>& sources) {
  for (event_payload& e : events) {
    const std::string_view ip = e.get(meta_key::source_ip);
    const auto at = std::find(sources.begin(), sources.end(), ip);
    const auto k = static_cast<std::size_t>(at - sources.begin());
    alert& to = k == 0 || k > others.size() ? first : *others[k - 1];
    to.events.push_back(std::move(e));
  }
  events.clear();
}

alert make_alert(const alert_origin& origin, std::uint64_t events_count, unix_nanos first, unix_nanos last,
                 unix_nanos at, const event_payload* const* events, std::size_t n_events, std::string_view scope_value) {
  alert a;
  make_alert(a, origin, events_count, first, last, at, events, n_events, scope_value);
  return a;
}

namespace {

// The line at `d` (room for alert_json_bound(a) bytes); returns its end.
char* write_json(char* d, const alert& a) {
  json_cursor c{d};
  // Keys are literals that need no escaping: written as they are, quotes and colon included.
  c.str("{\"scenario\":", a.scenario);
  c.str(",\"message\":", a.message);
  c.str(",\"source_ip\":", a.source_ip);
  c.str(",\"user\":", a.user);
  c.str(",\"namespace\":", a.namespace_);
  c.str(",\"resource_name\":", a.resource_name);
  c.str(",\"kind\":", a.kind);
  c.str(",\"cluster\":", a.cluster);
  c.raw(",\"events_count\":");
  c.number(std::uint64_t{a.events_count});
  c.raw(",\"start_at\":");
  c.time(a.start_at);
  c.raw(",\"stop_at\":");
  c.time(a.stop_at);
  c.raw(a.remediation ? std::string_view(",\"remediation\":true") : std::string_view(",\"remediation\":false"));
  c.raw(",\"labels\":");
  c.raw(a.labels_json.empty() ? std::string_view("{}") : std::string_view(a.labels_json));
  c.raw(",\"decisions\":[");
  for (std::size_t i = 0; i < a.decisions.size(); ++i) {
    const decision& dec = a.decisions[i];
    c.str(i > 0 ? std::string_view(",{\"type\":") : std::string_view("{\"type\":"), dec.type);
    c.str(",\"scope\":", dec.scope);
    c.str(",\"value\":", dec.value);
    c.str(",\"duration\":", format_go_duration(dec.duration));
    c.raw(",\"until\":");
    c.time(dec.until);
    c.str(",\"origin\":", dec.origin);
    c.str(",\"scenario\":", dec.scenario);
    c.raw("}");
  }
  c.str("],\"scope\":", a.scope);
  c.str(",\"value\":", a.value);
  c.raw(",\"capacity\":");
  c.number(std::int64_t{a.capacity});
  c.str(",\"leakspeed\":", a.leakspeed);
  c.raw(",\"events\":[");
  for (std::size_t i = 0; i < a.events.size(); ++i) {
    c.raw(i > 0 ? std::string_view(",{\"timestamp\":") : std::string_view("{\"timestamp\":"));
    c.time(a.events[i].time);
    c.raw(",\"meta\":");
    c.meta(a.events[i].meta);
    c.raw("}");
  }
  c.raw("]}");
  return c.d;
}

} // namespace

std::size_t detail::json_line_bound(const alert& a) {
  return alert_json_bound(a);
}

void append_json(std::string& out, const alert& a) {
  const std::size_t start = out.size();
  out.resize(start + detail::json_line_bound(a));
  char* end = write_json(out.data() + start, a);
  out.resize(static_cast<std::size_t>(end - out.data()));
}

std::string to_json(const alert& a) {
  std::string out;
  append_json(out, a);
  return out;
}

void write_json_line(std::FILE* f, std::string& buffer, const alert& a) {
  // The buffer keeps its largest size between alerts: resizing it down and up again would
  // zero the bound's bytes for every line.
  const std::size_t bound = detail::json_line_bound(a) + 1;
  if (buffer.size() < bound) {
    buffer.resize(bound);
  }
  char* end = write_json(buffer.data(), a);
  *end++ = '\n';
  std::fwrite(buffer.data(), 1, static_cast<std::size_t>(end - buffer.data()), f);
}

void append_meta_json(std::string& out, const meta_list& meta) {
  const std::size_t start = out.size();
  out.resize(start + meta_json_bound(meta));
  json_cursor c{out.data() + start};
  c.meta(meta);
  out.resize(static_cast<std::size_t>(c.d - out.data()));
}

} // namespace vigil::engine
