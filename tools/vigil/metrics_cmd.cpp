// `vigil metrics`: the running daemon's counters as the tables `cscli metrics` prints
// (Acquisition, Parser, Scenario, Alerts, Decisions) plus vigil's (Sources, Workers, Notifications),
// from its /metrics endpoint.
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <curl/curl.h>

#include "engine/alert/alert.h"
#include "tools/vigil/commands.h"

namespace vigil::cli {

namespace {

struct metrics_options {
  std::string url = "http://127.0.0.1:6060/metrics";
  std::string output = "table";
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

// Prometheus text: `name{k="v",...} value` lines; comments skipped.
std::vector<metric> parse(const std::string& text) {
  std::vector<metric> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) {
      eol = text.size();
    }
    const std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.empty() || line[0] == '#') {
      continue;
    }
    metric m;
    std::size_t i = line.find_first_of("{ ");
    m.name = line.substr(0, i);
    if (i != std::string::npos && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const std::size_t eq = line.find('=', i);
        const std::string key = line.substr(i, eq - i);
        std::string value;
        std::size_t j = eq + 2; // after ="
        while (j < line.size() && line[j] != '"') {
          if (line[j] == '\\' && j + 1 < line.size()) {
            ++j;
          }
          value += line[j++];
        }
        m.labels[key] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',') {
          ++i;
        }
      }
      i = line.find(' ', i);
    }
    if (i == std::string::npos) {
      continue;
    }
    m.value = std::stod(line.substr(i + 1));
    out.push_back(std::move(m));
  }
  return out;
}

std::string human(double v) {
  char buf[32];
  if (v >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  } else if (v >= 1e4) {
    std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  }
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
           const std::vector<std::pair<std::string, std::string>>& columns) {
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
  std::printf("%s:\n", title);
  std::printf("  %-52s", key_label.c_str());
  for (const auto& [name, header] : columns) {
    std::printf(" %12s", header.c_str());
  }
  std::printf("\n");
  if (rows.empty()) {
    std::printf("  (nothing yet)\n");
  }
  for (const auto& [key, values] : rows) {
    std::printf("  %-52s", key.c_str());
    for (const auto& [name, header] : columns) {
      const auto it = values.find(name);
      std::printf(" %12s", it == values.end() || it->second == 0 ? "-" : human(it->second).c_str());
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
  curl_easy_cleanup(c);
  if (rc != CURLE_OK || status != 200) {
    std::fprintf(stderr, "vigil metrics: cannot read %s: %s\n", o.url.c_str(),
                 rc != CURLE_OK ? curl_easy_strerror(rc) : ("HTTP " + std::to_string(status)).c_str());
    return 2;
  }
  const std::vector<metric> ms = parse(body);
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
      char num[40];
      std::snprintf(num, sizeof num, "%.17g", ms[i].value);
      out += std::string("},\"value\":") + num + "}";
    }
    std::printf("%s]\n", out.c_str());
    return 0;
  }
  table("Acquisition Metrics", ms, "type:source",
        {{"cs_parser_hits_total", "Lines read"}, {"cs_parser_hits_ok_total", "Parsed"},
         {"cs_parser_hits_ko_total", "Unparsed"}, {"cs_bucket_poured_total", "Poured"},
         {"cs_node_wl_hits_ok_total", "Whitelisted"}});
  table("Parser Metrics", ms, "type",
        {{"cs_parser_hits_total", "Hits"}, {"cs_parser_hits_ok_total", "Parsed"}, {"cs_parser_hits_ko_total", "Unparsed"}});
  table("Scenario Metrics", ms, "name",
        {{"cs_buckets", "Current"}, {"cs_bucket_overflowed_total", "Overflows"},
         {"cs_bucket_instantiation_total", "Instantiated"}, {"cs_bucket_poured_total", "Poured"},
         {"cs_bucket_underflowed_total", "Expired"}});
  table("Source Metrics (vigil)", ms, "source",
        {{"cs_k8sauditsource_requests_total", "Requests"}, {"cs_k8sauditsource_hits_total", "Events"},
         {"vigil_webhook_events_total{result=accepted}", "Accepted"},
         {"vigil_webhook_events_total{result=rejected}", "Rejected"},
         {"vigil_webhook_events_total{result=duplicate}", "Duplicates"},
         {"vigil_webhook_batches_refused_total", "Refused 429"}});
  table("Worker Metrics (vigil)", ms, "worker",
        {{"vigil_worker_events_total", "Events"}, {"vigil_worker_pours_total", "Pours"},
         {"vigil_worker_inbox_depth", "Inbox"}, {"vigil_worker_inbox_high_water", "Inbox max"}});
  table("Alert Metrics", ms, "reason", {{"cs_alerts", "Count"}});
  table("Local API Decisions", ms, "reason", {{"cs_active_decisions", "Active"}});
  table("Notification Metrics (vigil)", ms, "name",
        {{"vigil_notification_alerts_total", "Alerts"}, {"vigil_notification_sent_total", "Sent"},
         {"vigil_notification_failures_total{reason=attempt}", "Failed tries"},
         {"vigil_notification_failures_total{reason=gave_up}", "Gave up"},
         {"vigil_notification_failures_total{reason=template}", "Template err"},
         {"vigil_notification_failures_total{reason=dropped}", "Dropped"},
         {"vigil_notification_pending", "Pending"}});
  return 0;
}

} // namespace

command add_metrics(CLI::App& app) {
  auto o = std::make_shared<metrics_options>();
  CLI::App* sub = app.add_subcommand("metrics", "Show the running daemon's counters as tables");
  sub->add_option("--url", o->url, "The daemon's /metrics URL")->capture_default_str();
  sub->add_option("-o,--output", o->output, "table or json")->check(CLI::IsMember({"table", "json"}));
  return [o] { return run_metrics(*o); };
}

} // namespace vigil::cli
