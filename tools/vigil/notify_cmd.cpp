// `vigil notifications list|inspect|test NAME`: the notification plugins of the configuration
// (`-c vigil.yaml`, `--crowdsec-dir DIR`, `--notifications PATH`), which profiles use them, and a
// sample alert sent through one of them with its real delivery path (template, grouping, retries).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "engine/config/config.h"
#include "engine/event/duration.h"
#include "io/notify/notifier.h"
#include "rules/profiles/profiles.h"
#include "tools/vigil/commands.h"

namespace vigil::cli {

namespace {

struct notify_options {
  std::string config, crowdsec_dir, profiles, name, output = "table";
  std::vector<std::string> paths;
};

struct loaded {
  std::vector<io::notification> notifications;
  std::shared_ptr<const rules::profile_set> profiles;
};

std::optional<loaded> load(const notify_options& o) {
  config::settings cfg;
  if (!load_settings_or_report(o.config, o.crowdsec_dir, cfg)) {
    return std::nullopt;
  }
  loaded l;
  l.profiles = load_profiles_or_report(o.profiles.empty() ? cfg.profiles : o.profiles, "notifications");
  if (!l.profiles) {
    return std::nullopt;
  }
  std::vector<std::string> paths = cfg.notifications;
  paths.insert(paths.end(), o.paths.begin(), o.paths.end());
  auto n = load_notifications_or_report(paths, nullptr);
  if (!n) {
    return std::nullopt;
  }
  l.notifications = std::move(*n);
  return l;
}

// Where it sends, with the secret part of a URL (its path and query: Slack's webhook token) hidden.
std::string target(const io::notification& n) {
  if (n.type == io::notify_type::file) {
    return n.log_path;
  }
  const std::string& url = n.type == io::notify_type::slack ? n.webhook : n.url;
  const std::size_t scheme = url.find("://");
  const std::size_t path = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  return path == std::string::npos || path + 1 >= url.size() ? url : url.substr(0, path) + "/***";
}

std::string used_by(const io::notification& n, const rules::profile_set& p) {
  std::string out;
  for (const auto& pr : p.profiles()) {
    if (std::find(pr.notifications.begin(), pr.notifications.end(), n.name) != pr.notifications.end()) {
      out += (out.empty() ? "" : ",") + pr.name;
    }
  }
  return out;
}

int list(const notify_options& o) {
  auto l = load(o);
  if (!l) {
    return 2;
  }
  if (o.output == "json") {
    std::string out = "[";
    for (const auto& n : l->notifications) {
      out += out.size() > 1 ? ",{" : "{";
      json_field(out, "name", n.name, true);
      json_field(out, "type", io::type_name(n.type));
      json_field(out, "target", target(n));
      json_field(out, "origin", n.origin);
      json_field(out, "profiles", used_by(n, *l->profiles));
      out += '}';
    }
    std::printf("%s]\n", out.c_str());
    return 0;
  }
  std::printf("%-24s %-6s %-44s %-28s %s\n", "Name", "Type", "Target", "Used by profiles", "Defined at");
  for (const auto& n : l->notifications) {
    const std::string users = used_by(n, *l->profiles);
    std::printf("%-24s %-6s %-44s %-28s %s\n", n.name.c_str(), io::type_name(n.type), target(n).c_str(),
                users.empty() ? "-" : users.c_str(), n.origin.c_str());
  }
  for (const auto& name : l->profiles->notification_names()) {
    if (std::none_of(l->notifications.begin(), l->notifications.end(),
                     [&](const io::notification& n) { return n.name == name; })) {
      std::printf("%-24s %-6s %-44s %-28s %s\n", name.c_str(), "-", "(no file defines it: not sent)", "-", "-");
    }
  }
  return 0;
}

const io::notification* find(const loaded& l, const std::string& name) {
  for (const auto& n : l.notifications) {
    if (n.name == name) {
      return &n;
    }
  }
  std::fprintf(stderr, "vigil notifications: no notification named '%s' (vigil notifications list)\n", name.c_str());
  return nullptr;
}

int inspect(const notify_options& o) {
  auto l = load(o);
  if (!l) {
    return 2;
  }
  const io::notification* n = find(*l, o.name);
  if (n == nullptr) {
    return 1;
  }
  const auto dur = [](engine::unix_nanos d) { return d == 0 ? std::string("-") : engine::format_go_duration(d); };
  std::printf("name:            %s\ntype:            %s\ndefined at:      %s\ntarget:          %s\n", n->name.c_str(),
              io::type_name(n->type), n->origin.c_str(), target(*n).c_str());
  std::printf("group_wait:      %s\ngroup_threshold: %s\nmax_retry:       %u%s\ntimeout:         %s\n",
              dur(n->group_wait).c_str(), n->group_threshold == 0 ? "-" : std::to_string(n->group_threshold).c_str(),
              n->max_retry, n->max_retry == 0 ? " (retries for up to 5m)" : "", dur(n->timeout).c_str());
  std::printf("log_level:       %s\nused by:         %s\n", n->log_level.c_str(), used_by(*n, *l->profiles).c_str());
  if (n->type == io::notify_type::slack) {
    std::printf("channel:         %s\nusername:        %s\nicon_emoji:      %s\nicon_url:        %s\n", n->channel.c_str(),
                n->username.c_str(), n->icon_emoji.c_str(), n->icon_url.c_str());
  } else if (n->type == io::notify_type::http) {
    std::printf("method:          %s\nskip_tls_verification: %s\n", n->method.c_str(),
                n->skip_tls_verification ? "true" : "false");
    for (const auto& [k, v] : n->headers) {
      std::printf("header:          %s: %s\n", k.c_str(), v.empty() ? "" : "***");
    }
  } else if (n->rotate) {
    std::printf("rotate:          at %llu MB, keeping %u files\n", static_cast<unsigned long long>(n->rotate_max_size_mb),
                n->rotate_max_files);
  }
  std::printf("format:\n%s", n->format.c_str());
  if (!n->format.empty() && n->format.back() != '\n') {
    std::printf("\n");
  }
  return 0;
}

// The sample alert of `test`: a pod exec like the hub's fixture, with a 4h ban so templates that
// range over decisions (CrowdSec's default Slack one) print something too.
engine::alert sample_alert() {
  engine::alert a;
  const engine::unix_nanos now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count();
  a.scenario = "crowdsecurity/k8s-audit-pod-exec";
  a.message = "Ip 192.168.49.1 performed 'crowdsecurity/k8s-audit-pod-exec' (1 events over 0s) at " +
              engine::format_go_time(now) + " (vigil notifications test)";
  a.scope = "Ip";
  a.value = a.source_ip = "192.168.49.1";
  a.user = "minikube-user";
  a.namespace_ = "foo";
  a.resource_name = "test-pod-1";
  a.events_count = 1;
  a.start_at = a.stop_at = a.last_at = now;
  a.leakspeed = "0s";
  a.labels_json = "{}";
  engine::event_payload e;
  e.time = now;
  e.meta = {{"log_type", "k8s-audit"},  {"namespace", "foo"},    {"resource_name", "test-pod-1"},
            {"source_ip", "192.168.49.1"}, {"user", "minikube-user"}};
  a.events.push_back(e);
  engine::decision d;
  d.value = "192.168.49.1";
  d.scenario = a.scenario;
  d.duration = 4LL * 3600 * 1'000'000'000;
  d.until = engine::expiry(now, d.duration);
  a.decisions.push_back(d);
  return a;
}

int test(const notify_options& o) {
  auto l = load(o);
  if (!l) {
    return 2;
  }
  const io::notification* found = find(*l, o.name);
  if (found == nullptr) {
    return 1;
  }
  io::notification n = *found;
  // One group, sent now: grouping would only delay a test. Retries as configured, except that
  // "retry for 5 minutes" (max_retry 0) becomes a single try.
  n.group_wait = 0;
  n.group_threshold = 0;
  const bool single_try = n.max_retry == 0;
  io::delivery_result result;
  io::notifier_options no;
  no.machine_id = machine_id();
  no.log = log_line;
  no.on_done = [&result](const io::delivery_result& r) { result = r; };
  if (single_try) {
    no.first_backoff = std::chrono::hours(1); // past the budget: no second try
  }
  {
    io::notifier sender({n}, std::move(no));
    sender.submit(sample_alert(), 0, {n.name});
    sender.stop(std::chrono::minutes(10));
  }
  if (result.name.empty()) {
    std::fprintf(stderr, "vigil notifications test: %s rendered nothing to send (see the log above)\n", n.name.c_str());
    return 1;
  }
  if (!result.ok) {
    std::fprintf(stderr, "vigil notifications test: %s failed after %u attempt(s): %s\n", n.name.c_str(),
                 result.attempts, result.error.c_str());
    return 1;
  }
  std::printf("notification %s (%s): sample alert delivered to %s in %u attempt(s)\n", n.name.c_str(),
              io::type_name(n.type), target(n).c_str(), result.attempts);
  return 0;
}

} // namespace

command add_notifications(CLI::App& app) {
  auto o = std::make_shared<notify_options>();
  CLI::App* top = app.add_subcommand("notifications", "Notification plugins (slack, http, file)");
  top->require_subcommand(1);
  auto common = [o](CLI::App* sub) {
    sub->add_option("-c,--config", o->config, "vigil.yaml (its `notifications:` and `profiles:`)");
    sub->add_option("--crowdsec-dir", o->crowdsec_dir, "A CrowdSec configuration directory (notifications/, profiles.yaml)");
    sub->add_option("--notifications", o->paths, "Notification file or directory (repeatable)");
    sub->add_option("--profiles", o->profiles, "profiles.yaml (to show which profiles use each notification)");
  };
  CLI::App* ls = top->add_subcommand("list", "List the configured notifications and the profiles using them");
  common(ls);
  ls->add_option("-o,--output", o->output, "table or json")->check(CLI::IsMember({"table", "json"}));
  CLI::App* in = top->add_subcommand("inspect", "Show one notification's settings and template");
  common(in);
  in->add_option("name", o->name, "Notification name")->required();
  CLI::App* ts = top->add_subcommand("test", "Send a sample alert through one notification");
  common(ts);
  ts->add_option("name", o->name, "Notification name")->required();
  return [o, ls, in] {
    if (ls->parsed()) {
      return list(*o);
    }
    if (in->parsed()) {
      return inspect(*o);
    }
    return test(*o);
  };
}

} // namespace vigil::cli
