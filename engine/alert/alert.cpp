#include "engine/alert/alert.h"

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include <arpa/inet.h>

#include "engine/event/duration.h"

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

} // namespace

std::string format_go_time(unix_nanos t) {
  std::string s;
  append_go_time(s, t);
  return s;
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  const char* p = s.data();
  const std::size_t n = s.size();
  std::size_t run = 0; // start of the pending run of bytes that need no escape
  std::size_t i = 0;
  while (i < n) {
    // Eight bytes at a time while none needs escaping (most of an alert's text); the last,
    // partial word is read as the string's last eight bytes, which overlap bytes already seen.
    std::uint64_t w;
    for (; i + 8 <= n; i += 8) {
      std::memcpy(&w, p + i, 8);
      if (needs_escape(w)) {
        break;
      }
    }
    if (i + 8 > n && n >= 8 && i < n) {
      std::memcpy(&w, p + n - 8, 8);
      if (!needs_escape(w)) {
        break;
      }
    }
    if (i >= n) {
      break;
    }
    const auto c = static_cast<unsigned char>(p[i++]);
    if (c >= 0x20 && c != '"' && c != '\\') {
      continue;
    }
    out.append(p + run, i - 1 - run);
    run = i;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default: {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
        out += buf;
      }
    }
  }
  out.append(p + run, n - run);
  out += '"';
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
  a.labels_json.assign(origin.labels_json);
  a.events.resize(n_events);
  for (std::size_t i = 0; i < n_events; ++i) {
    a.events[i].assign(*events[i]);
  }
  const event_payload* last_event = a.events.empty() ? nullptr : &a.events.back();
  auto meta = [&](std::string_view key) { return last_event != nullptr ? last_event->get(key) : std::string_view(); };
  a.source_ip.assign(meta("source_ip"));
  a.user.assign(meta("user"));
  a.namespace_.assign(meta("namespace"));
  a.resource_name.assign(meta("resource_name"));
  a.kind.assign(meta("kind"));
  a.cluster.assign(meta("cluster"));
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
  // CrowdSec: "%s %s performed '%s' (%d events over %s) at %s" with the scope, the source value,
  // the scenario, Total_count, Ovflw_ts - First_ts and Last_ts.
  const std::string_view value = a.value.empty() ? std::string_view("UNKNOWN") : std::string_view(a.value);
  char count[24];
  const int count_len = std::snprintf(count, sizeof count, "%llu", static_cast<unsigned long long>(events_count));
  a.message.clear();
  a.message.append(a.scope).append(" ").append(value).append(" performed '").append(a.scenario);
  a.message.append("' (").append(count, static_cast<std::size_t>(count_len)).append(" events over ");
  a.message.append(format_go_duration(at - first)).append(") at ");
  append_go_time(a.message, last);
}

alert make_alert(const alert_origin& origin, std::uint64_t events_count, unix_nanos first, unix_nanos last,
                 unix_nanos at, const event_payload* const* events, std::size_t n_events, std::string_view scope_value) {
  alert a;
  make_alert(a, origin, events_count, first, last, at, events, n_events, scope_value);
  return a;
}

void append_json(std::string& out, const alert& a) {
  const std::size_t start = out.size();
  out.reserve(start + 512 + a.events.size() * 256);
  // Keys are literals that need no escaping: written as they are, quotes and colon included.
  auto key = [&](std::string_view k) {
    if (out.size() > start + 1) {
      out += ',';
    }
    out += '"';
    out.append(k).append("\":", 2);
  };
  auto str = [&](std::string_view k, std::string_view v) {
    key(k);
    append_json_string(out, v);
  };
  char time_buf[48];
  auto time = [&](unix_nanos t) { return std::string_view(time_buf, format_rfc3339_nano(t, time_buf)); };
  out += '{';
  str("scenario", a.scenario);
  str("message", a.message);
  str("source_ip", a.source_ip);
  str("user", a.user);
  str("namespace", a.namespace_);
  str("resource_name", a.resource_name);
  str("kind", a.kind);
  str("cluster", a.cluster);
  key("events_count");
  out += std::to_string(a.events_count);
  str("start_at", time(a.start_at));
  str("stop_at", time(a.stop_at));
  key("remediation");
  out += a.remediation ? "true" : "false";
  key("labels");
  out += a.labels_json.empty() ? "{}" : a.labels_json;
  key("decisions");
  out += '[';
  for (std::size_t i = 0; i < a.decisions.size(); ++i) {
    const decision& d = a.decisions[i];
    out += i > 0 ? ",{" : "{";
    out += "\"type\":";
    append_json_string(out, d.type);
    out += ",\"scope\":";
    append_json_string(out, d.scope);
    out += ",\"value\":";
    append_json_string(out, d.value);
    out += ",\"duration\":";
    append_json_string(out, format_go_duration(d.duration));
    out += ",\"until\":";
    append_json_string(out, time(d.until));
    out += ",\"origin\":";
    append_json_string(out, d.origin);
    out += ",\"scenario\":";
    append_json_string(out, d.scenario);
    out += '}';
  }
  out += ']';
  str("scope", a.scope);
  str("value", a.value);
  key("capacity");
  out += std::to_string(a.capacity);
  str("leakspeed", a.leakspeed);
  key("events");
  out += '[';
  for (std::size_t i = 0; i < a.events.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    out += "{\"timestamp\":";
    append_json_string(out, time(a.events[i].time));
    out += ",\"meta\":";
    append_meta_json(out, a.events[i].meta);
    out += '}';
  }
  out += "]}";
}

std::string to_json(const alert& a) {
  std::string out;
  append_json(out, a);
  return out;
}

void write_json_line(std::FILE* f, std::string& buffer, const alert& a) {
  buffer.clear();
  append_json(buffer, a);
  buffer += '\n';
  std::fwrite(buffer.data(), 1, buffer.size(), f);
}

void append_meta_json(std::string& out, const meta_list& meta) {
  out += '{';
  bool first = true;
  for (const auto& [k, v] : meta) {
    if (!first) {
      out += ',';
    }
    first = false;
    append_json_string(out, k);
    out += ':';
    append_json_string(out, v);
  }
  out += '}';
}

} // namespace vigil::engine
