#include "io/metrics/metrics.h"

#include <map>
#include <vector>

#include "engine/counters/counters.h"

namespace vigil::io {

std::string render_prometheus() {
  const std::vector<counters::sample> samples = counters::registry::global().snapshot();
  // Group by name, keeping the first-definition order of names.
  std::vector<std::string> order;
  std::map<std::string, std::vector<const counters::sample*>> by_name;
  for (const auto& s : samples) {
    auto [it, inserted] = by_name.try_emplace(s.name);
    if (inserted) {
      order.push_back(s.name);
    }
    it->second.push_back(&s);
  }
  std::string out;
  out.reserve(samples.size() * 96);
  for (const std::string& name : order) {
    const auto& group = by_name[name];
    out += "# HELP " + name + " " + group.front()->help + "\n";
    out += "# TYPE " + name + (group.front()->type == counters::kind::gauge ? " gauge\n" : " counter\n");
    for (const counters::sample* s : group) {
      out += name;
      if (!s->labels.empty()) {
        out += '{' + s->labels + '}';
      }
      out += ' ' + std::to_string(s->value) + '\n';
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
  if (req.method != "GET") {
    res.headers.emplace_back("Allow", "GET");
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
