#include "io/metrics/metrics.h"

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "engine/counters/counters.h"

namespace vigil::io {

namespace {

// A histogram part's family: its name without _bucket / _sum / _count.
std::string family_of(const counters::sample& s) {
  if (s.type != counters::kind::histogram) {
    return s.name;
  }
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    if (s.name.ends_with(suffix)) {
      return s.name.substr(0, s.name.size() - std::char_traits<char>::length(suffix));
    }
  }
  return s.name;
}

void append_value(std::string& out, const counters::sample& s, const std::string& family) {
  if (s.type == counters::kind::histogram && family.ends_with("_seconds") && s.name.ends_with("_sum")) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(s.value) / 1e9); // kept in nanoseconds
    out += buf;
  } else {
    out += std::to_string(s.value);
  }
}

} // namespace

std::string render_prometheus() {
  const std::vector<counters::sample> samples = counters::registry::global().snapshot();
  // Group by family, keeping the first-definition order of families.
  std::vector<std::string> order;
  std::map<std::string, std::vector<const counters::sample*>> by_family;
  for (const auto& s : samples) {
    auto [it, inserted] = by_family.try_emplace(family_of(s));
    if (inserted) {
      order.push_back(it->first);
    }
    it->second.push_back(&s);
  }
  std::string out;
  out.reserve(samples.size() * 96);
  for (const std::string& family : order) {
    const auto& group = by_family[family];
    const counters::kind k = group.front()->type;
    out += "# HELP " + family + " " + group.front()->help + "\n";
    out += "# TYPE " + family +
           (k == counters::kind::gauge ? " gauge\n" : k == counters::kind::histogram ? " histogram\n" : " counter\n");
    for (const counters::sample* s : group) {
      out += s->name;
      if (!s->labels.empty()) {
        out += '{' + s->labels + '}';
      }
      out += ' ';
      append_value(out, *s, family);
      out += '\n';
    }
  }
  return out;
}

int metrics_precheck(const http::request& req, http::response& res) {
  if (req.path != "/metrics") {
    res.content_type = "text/plain";
    res.body = "not found: metrics are at /metrics\n";
    return 404;
  }
  if (req.method != "GET" && req.method != "HEAD") { // HEAD: GET's headers, no body
    res.headers.emplace_back("Allow", "GET, HEAD");
    res.content_type = "text/plain";
    res.body = "method not allowed\n";
    return 405;
  }
  return 0;
}

void metrics_handle(http::request&, http::response& res) {
  res.content_type = "text/plain; version=0.0.4";
  res.body = render_prometheus();
}

} // namespace vigil::io
