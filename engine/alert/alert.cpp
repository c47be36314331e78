#include "engine/alert/alert.h"

#include <cstdio>

#include <arpa/inet.h>

#include "engine/event/duration.h"

namespace vigil::engine {

bool is_ip(std::string_view s) noexcept {
  char buf[64];
  if (s.empty() || s.size() >= sizeof buf) {
    return false;
  }
  s.copy(buf, s.size());
  buf[s.size()] = '\0';
  unsigned char addr[16];
  return inet_pton(AF_INET, buf, addr) == 1 || inet_pton(AF_INET6, buf, addr) == 1;
}

std::string format_go_time(unix_nanos t) {
  std::string s = format_rfc3339_nano(t); // 2023-05-17T15:08:22.76396Z
  s[10] = ' ';
  s.pop_back();
  return s + " +0000 UTC";
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  std::size_t run = 0; // start of the pending run of bytes that need no escape
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') {
      continue;
    }
    out.append(s.data() + run, i - run);
    run = i + 1;
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
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

alert make_alert(const alert_origin& origin, std::uint64_t events_count, unix_nanos first, unix_nanos last,
                 unix_nanos at, const event_payload* const* events, std::size_t n_events) {
  alert a;
  a.scenario = origin.name;
  a.scope = origin.scope_type.empty() ? "Ip" : std::string(origin.scope_type);
  a.events_count = events_count;
  a.start_at = first;
  a.last_at = last;
  a.stop_at = at;
  a.capacity = origin.capacity;
  a.leakspeed = origin.leakspeed;
  a.remediation = origin.remediation;
  a.reprocess = origin.reprocess;
  a.labels_json = origin.labels_json;
  a.events.reserve(n_events);
  for (std::size_t i = 0; i < n_events; ++i) {
    a.events.push_back(*events[i]);
  }
  if (!a.events.empty()) {
    const event_payload& e = a.events.back();
    a.source_ip = e.get("source_ip");
    a.user = e.get("user");
    a.namespace_ = e.get("namespace");
    a.resource_name = e.get("resource_name");
    a.kind = e.get("kind");
    a.cluster = e.get("cluster");
  }
  if (is_ip(a.source_ip)) {
    a.value = a.source_ip;
  }
  // CrowdSec: "%s %s performed '%s' (%d events over %s) at %s" with the scope, the source value,
  // the scenario, Total_count, Ovflw_ts - First_ts and Last_ts.
  // Appended in place: a chain of operator+ would allocate a temporary per piece.
  const std::string over = format_go_duration(at - first);
  const std::string when = format_go_time(last);
  const std::string count = std::to_string(events_count);
  const std::string_view value = a.value.empty() ? std::string_view("UNKNOWN") : std::string_view(a.value);
  a.message.reserve(a.scope.size() + value.size() + a.scenario.size() + count.size() + over.size() + when.size() + 40);
  a.message.append(a.scope).append(" ").append(value).append(" performed '").append(a.scenario);
  a.message.append("' (").append(count).append(" events over ").append(over).append(") at ").append(when);
  return a;
}

std::string to_json(const alert& a) {
  std::string out;
  out.reserve(512 + a.events.size() * 256);
  auto key = [&](const char* k) {
    if (out.size() > 1) {
      out += ',';
    }
    append_json_string(out, k);
    out += ':';
  };
  auto str = [&](const char* k, std::string_view v) {
    key(k);
    append_json_string(out, v);
  };
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
  str("start_at", format_rfc3339_nano(a.start_at));
  str("stop_at", format_rfc3339_nano(a.stop_at));
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
    append_json_string(out, format_rfc3339_nano(d.until));
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
    append_json_string(out, format_rfc3339_nano(a.events[i].time));
    out += ",\"meta\":";
    append_meta_json(out, a.events[i].meta);
    out += '}';
  }
  out += "]}";
  return out;
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
