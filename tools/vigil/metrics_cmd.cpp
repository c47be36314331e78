// `vigil metrics`: the running daemon's counters as the tables `cscli metrics` prints
// (Acquisition, Parser, Scenario, Alerts, Decisions) plus vigil's (Sources, Workers, Notifications),
// from its /metrics endpoint.
#include <cerrno>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <curl/curl.h>

#include "engine/alert/alert.h"
#include "tools/vigil/commands.h"

namespace vigil::cli {

namespace {

struct metrics_options {
  std::string url = "http://127.0.0.1:6060/metrics";
  std::string output = "table";
  bool no_unit = false;
};

struct metric {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

std::size_t on_data(char* p, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}

// A sample's value: a decimal or hexadecimal float, NaN, +Inf or -Inf (Go's ParseFloat, which
// Prometheus uses, takes these and strtod takes them too).
bool parse_value(const std::string& text, double& out) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0])) != 0) {
    return false;
  }
  errno = 0;
  char* end = nullptr;
  out = std::strtod(text.c_str(), &end);
  // Too small to hold is 0, as Go reads it; too large is not a value.
  return end == text.c_str() + text.size() && !(errno == ERANGE && std::isinf(out));
}

// Prometheus text format: `name{k="v",...} value [timestamp]` lines; comments and blank lines
// skipped. Anything else is an error naming the line: the URL may not be a metrics endpoint.
bool parse(const std::string& text, std::vector<metric>& out, std::string& error) {
  std::size_t pos = 0;
  std::size_t number = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) {
      eol = text.size();
    }
    std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++number;
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    line.erase(0, line.find_first_not_of(" \t") == std::string::npos ? line.size() : line.find_first_not_of(" \t"));
    if (line.empty() || line[0] == '#') {
      continue;
    }
    auto bad = [&](const char* why) {
      error = "line " + std::to_string(number) + ": " + why + ": " + line.substr(0, 120);
      return false;
    };
    metric m;
    std::size_t i = line.find_first_of("{ \t");
    m.name = line.substr(0, i);
    if (m.name.empty()) {
      return bad("no metric name");
    }
    if (i != std::string::npos && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) {
          ++i; // blanks may come before a label name
        }
        if (i < line.size() && line[i] == '}') {
          break; // a trailing comma: {a="b",}
        }
        const std::size_t eq = line.find('=', i);
        if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
          return bad("malformed label");
        }
        const std::string key = line.substr(i, eq - i);
        std::string value;
        std::size_t j = eq + 2; // after ="
        while (j < line.size() && line[j] != '"') {
          if (line[j] == '\\' && j + 1 < line.size()) {
            ++j;
            value += line[j] == 'n' ? '\n' : line[j]; // the format's escapes: \\, \" and \n
            ++j;
            continue;
          }
          value += line[j++];
        }
        if (j >= line.size()) {
          return bad("unterminated label value");
        }
        m.labels[key] = std::move(value);
        i = j + 1;
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) {
          ++i;
        }
        if (i < line.size() && line[i] == ',') {
          ++i;
        }
      }
      if (i >= line.size()) {
        return bad("unterminated label set");
      }
      ++i; // past '}'
    }
    // The value, then an optional timestamp.
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) {
      ++i;
    }
    std::size_t end = line.find_first_of(" \t", i);
    if (i >= line.size() || !parse_value(line.substr(i, end == std::string::npos ? end : end - i), m.value)) {
      return bad("no number as the value");
    }
    // Then at most a timestamp: an integer of milliseconds.
    const std::size_t ts = end == std::string::npos ? end : line.find_first_not_of(" \t", end);
    if (ts != std::string::npos) {
      const std::size_t ts_end = line.find_first_of(" \t", ts);
      const std::string stamp = line.substr(ts, ts_end == std::string::npos ? ts_end : ts_end - ts);
      const bool integer = stamp.find_first_not_of("0123456789", stamp[0] == '-' ? 1 : 0) == std::string::npos &&
                           stamp.size() > (stamp[0] == '-' ? 1u : 0u);
      if (!integer || (ts_end != std::string::npos && line.find_first_not_of(" \t", ts_end) != std::string::npos)) {
        return bad("text after the value that is no timestamp");
      }
    }
    out.push_back(std::move(m));
  }
  return true;
}

// As cscli prints counts: under 1,000 whole, else rounded to two decimals with the unit of the
// largest power of 1,000 reached (1.79k, 22.00k, 1.50M); --no-unit prints every count whole.
std::string human(double v, bool units) {
  char buf[48];
  if (!std::isfinite(v)) {
    return std::isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf";
  }
  if (std::fabs(v) >= 1e21) { // past any unit, and past what %.0f shows readably
    std::snprintf(buf, sizeof buf, "%.3g", v);
    return buf;
  }
  static constexpr std::pair<double, const char*> ranges[] = {
      {1e18, "E"}, {1e15, "P"}, {1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}};
  if (units) {
    for (const auto& [size, symbol] : ranges) {
      if (v >= size) {
        std::snprintf(buf, sizeof buf, "%.2f%s", std::round(v / size * 100) / 100, symbol);
        return buf;
      }
    }
  }
  std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

// A row's key: the value of `key_label`, or for "a:b" the values of labels a and b joined with
// ':' (cscli keys an acquisition row "<type>:<source>"). "-" when a label is missing.
std::string row_key(const metric& m, const std::string& key_label) {
  std::string key;
  std::size_t from = 0;
  while (true) {
    const std::size_t colon = key_label.find(':', from);
    const auto it = m.labels.find(key_label.substr(from, colon == std::string::npos ? colon : colon - from));
    key += it == m.labels.end() ? "-" : it->second;
    if (colon == std::string::npos) {
      return key;
    }
    key += ':';
    from = colon + 1;
  }
}

// Rows keyed by label values (summed over the other labels), columns by metric name. As cscli
// does, a zero or missing value prints as "-".
void table(const char* title, const std::vector<metric>& ms, const std::string& key_label,
           const std::vector<std::pair<std::string, std::string>>& columns, bool units) {
  std::map<std::string, std::map<std::string, double>> rows;
  for (const metric& m : ms) {
    for (const auto& [name, header] : columns) {
      // A column may select one label value: "metric{label=value}".
      const std::size_t brace = name.find('{');
      const std::string base = name.substr(0, brace);
      bool selected = m.name == base;
      if (selected && brace != std::string::npos) {
        const std::size_t eq = name.find('=', brace);
        const auto it = m.labels.find(name.substr(brace + 1, eq - brace - 1));
        selected = it != m.labels.end() && it->second == name.substr(eq + 1, name.size() - eq - 2);
      }
      if (selected) {
        rows[row_key(m, key_label)][name] += m.value;
      }
    }
  }
  // Keys are shown with control characters escaped (a label value may hold a newline), in a
  // column as wide as the widest.
  std::map<std::string, std::string> shown;
  int width = static_cast<int>(key_label.size());
  for (const auto& [key, values] : rows) {
    std::string& text = shown[key];
    for (const char ch : key) {
      if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) {
        char esc[8];
        std::snprintf(esc, sizeof esc, ch == '\n' ? "\\n" : ch == '\t' ? "\\t" : "\\x%02x", static_cast<unsigned char>(ch));
        text += esc;
      } else {
        text += ch;
      }
    }
    width = std::max(width, static_cast<int>(text.size()));
  }
  std::printf("%s:\n", title);
  std::printf("  %-*s", width, key_label.c_str());
  for (const auto& [name, header] : columns) {
    std::printf(" %12s", header.c_str());
  }
  std::printf("\n");
  if (rows.empty()) {
    std::printf("  (nothing yet)\n");
  }
  for (const auto& [key, values] : rows) {
    std::printf("  %-*s", width, shown[key].c_str());
    for (const auto& [name, header] : columns) {
      const auto it = values.find(name);
      std::printf(" %12s", it == values.end() || it->second == 0 ? "-" : human(it->second, units).c_str());
    }
    std::printf("\n");
  }
  std::printf("\n");
}

int run_metrics(const metrics_options& o) {
  std::string body;
  CURL* c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, o.url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
  const CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  // A saved scrape may be read back with a file:// URL, which has no status.
  const char* scheme = nullptr;
  curl_easy_getinfo(c, CURLINFO_SCHEME, &scheme);
  const bool is_file = scheme != nullptr && std::string_view(scheme) == "FILE";
  curl_easy_cleanup(c);
  if (rc != CURLE_OK || (status != 200 && !is_file)) {
    std::fprintf(stderr, "vigil metrics: cannot read %s: %s\n", o.url.c_str(),
                 rc != CURLE_OK ? curl_easy_strerror(rc) : ("HTTP " + std::to_string(status)).c_str());
    return 2;
  }
  std::vector<metric> ms;
  std::string error;
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
    std::fprintf(stderr, "vigil metrics: %s: empty reply (no metrics at all)\n", o.url.c_str());
    return 2;
  }
  if (!parse(body, ms, error)) {
    std::fprintf(stderr, "vigil metrics: %s is not Prometheus text format: %s\n", o.url.c_str(), error.c_str());
    return 2;
  }
  if (o.output == "json") {
    std::string out = "[";
    for (std::size_t i = 0; i < ms.size(); ++i) {
      out += i > 0 ? ",{\"name\":" : "{\"name\":";
      engine::append_json_string(out, ms[i].name);
      out += ",\"labels\":{";
      bool first = true;
      for (const auto& [k, v] : ms[i].labels) {
        if (!first) {
          out += ',';
        }
        first = false;
        engine::append_json_string(out, k);
        out += ':';
        engine::append_json_string(out, v);
      }
      // JSON has no NaN or infinities: those values are written as Prometheus spells them, as
      // strings.
      const double v = ms[i].value;
      char num[40];
      if (std::isnan(v)) {
        std::snprintf(num, sizeof num, "\"NaN\"");
      } else if (std::isinf(v)) {
        std::snprintf(num, sizeof num, v > 0 ? "\"+Inf\"" : "\"-Inf\"");
      } else {
        std::snprintf(num, sizeof num, "%.17g", v);
      }
      out += std::string("},\"value\":") + num + "}";
    }
    std::printf("%s]\n", out.c_str());
    return 0;
  }
  const bool units = !o.no_unit;
  table("Acquisition Metrics", ms, "type:source",
        {{"cs_parser_hits_total", "Lines read"}, {"cs_parser_hits_ok_total", "Parsed"},
         {"cs_parser_hits_ko_total", "Unparsed"}, {"cs_bucket_poured_total", "Poured"},
         {"cs_node_wl_hits_ok_total", "Whitelisted"}}, units);
  table("Parser Metrics", ms, "type",
        {{"cs_parser_hits_total", "Hits"}, {"cs_parser_hits_ok_total", "Parsed"}, {"cs_parser_hits_ko_total", "Unparsed"}}, units);
  table("Scenario Metrics", ms, "name",
        {{"cs_buckets", "Current"}, {"cs_bucket_overflowed_total", "Overflows"},
         {"cs_bucket_instantiation_total", "Instantiated"}, {"cs_bucket_poured_total", "Poured"},
         {"cs_bucket_underflowed_total", "Expired"}}, units);
  table("Source Metrics (vigil)", ms, "source",
        {{"cs_k8sauditsource_requests_total", "Requests"}, {"cs_k8sauditsource_hits_total", "Events"},
         {"vigil_webhook_events_total{result=accepted}", "Accepted"},
         {"vigil_webhook_events_total{result=rejected}", "Rejected"},
         {"vigil_webhook_events_total{result=duplicate}", "Duplicates"},
         {"vigil_webhook_batches_refused_total", "Refused 429"}}, units);
  table("Worker Metrics (vigil)", ms, "worker",
        {{"vigil_worker_events_total", "Events"}, {"vigil_worker_pours_total", "Pours"},
         {"vigil_worker_inbox_depth", "Inbox"}, {"vigil_worker_inbox_high_water", "Inbox max"}}, units);
  table("Alert Metrics", ms, "reason", {{"cs_alerts", "Count"}}, units);
  table("Local API Decisions", ms, "reason:origin:action", {{"cs_active_decisions", "Count"}}, units);
  table("Notification Metrics (vigil)", ms, "name",
        {{"vigil_notification_alerts_total", "Alerts"}, {"vigil_notification_sent_total", "Sent"},
         {"vigil_notification_failures_total{reason=attempt}", "Failed tries"},
         {"vigil_notification_failures_total{reason=gave_up}", "Gave up"},
         {"vigil_notification_failures_total{reason=template}", "Template err"},
         {"vigil_notification_failures_total{reason=dropped}", "Dropped"},
         {"vigil_notification_pending", "Pending"}, {"vigil_notification_unfinished", "Unfinished"}}, units);
  return 0;
}

} // namespace

command add_metrics(CLI::App& app) {
  auto o = std::make_shared<metrics_options>();
  CLI::App* sub = app.add_subcommand("metrics", "Show the running daemon's counters as tables");
  sub->add_option("--url", o->url, "The daemon's /metrics URL (or file:///path of a saved scrape)")->capture_default_str();
  sub->add_option("-o,--output", o->output, "table or json")->check(CLI::IsMember({"table", "json"}));
  sub->add_flag("--no-unit", o->no_unit, "Print counts whole (1793) instead of with units (1.79k)");
  return [o] { return run_metrics(*o); };
}

} // namespace vigil::cli
