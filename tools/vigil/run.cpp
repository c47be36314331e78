// `vigil run`: the daemon. The audit webhook (HTTP on libuv) feeds the worker/shard pipeline;
// alerts are logged on stderr in CrowdSec's format, or written to stdout as JSON lines with
// --output json. SIGTERM/SIGINT: stop accepting (503), finish every admitted event, emit pending
// alerts, exit 0.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "engine/config/config.h"
#include "engine/counters/counters.h"
#include "engine/pipeline/pipeline.h"
#include "engine/util/warn.h"
#include "io/file/replay_source.h"
#include "io/file/tailer.h"
#include "io/http/server.h"
#include "io/notify/notifier.h"
#include "io/store/store.h"
#include "io/api/lapi.h"
#include "io/metrics/metrics.h"
#include "engine/event/duration.h"
#include "io/webhook/webhook.h"
#include "rules/matcher/ruleset.h"
#include "rules/profiles/profiles.h"
#include "rules/template/template.h"
#include "tools/vigil/commands.h"

namespace vigil::cli {

namespace {

struct run_options {
  std::string config;
  std::string crowdsec_dir;
  std::vector<std::string> notifications;
  std::string api_listen; ///< "" = from the config; "off" = no local API
  std::string metrics_listen; ///< "" = from the config; "off" = no /metrics
  std::string profiles;
  std::string listen = "127.0.0.1:9876";
  std::string path = "/audit/webhook/event";
  std::vector<std::string> tokens;
  std::vector<std::string> rules;
  std::string cluster;
  std::string output = "text";
  unsigned workers = 0;
  std::size_t max_body_size = 32u << 20;
  std::size_t max_connections = 0; ///< 0: as configured (1024 by default)
  std::size_t max_in_flight = 0;
  std::string tls_cert, tls_key, tls_client_ca;
  std::string api_tls_cert, api_tls_key;
};

std::string now_text() {
  char buf[40];
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

} // namespace

void log_line(const char* level, const std::string& msg) {
  // The message is quoted as logrus quotes it (Go's %q): a quote, a backslash or a line break in
  // it (a file name, a remote server's error body) cannot end the field or forge another line.
  std::fprintf(stderr, "time=\"%s\" level=%s msg=%s\n", now_text().c_str(), level, rules::tmpl::go_quote(msg).c_str());
}

std::string machine_id() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') {
    return "vigil";
  }
  return std::string("vigil@") + host;
}

namespace {

// On the emitter thread: the only writer of alerts, to the log or stdout and to the store (one
// transaction per 1,000 alerts or 50 ms, off the workers' path; a failed write is retried after
// a second, the alerts kept).

// A decision's duration as a profile writes it: Go's form without its zero minutes and seconds
// ("4h", "1h30m", "90s" is "1m30s").
std::string short_duration(engine::unix_nanos d) {
  std::string s = engine::format_go_duration(d);
  if (s.size() > 4 && s.ends_with("m0s") && s.find('h') != std::string::npos) {
    s.resize(s.size() - 2);
    if (s.ends_with("h0m")) {
      s.resize(s.size() - 2);
    }
  } else if (s.size() > 2 && s.ends_with("m0s")) {
    s.resize(s.size() - 2);
  }
  return s;
}

class alert_log final : public pipeline::output_handler {
 public:
  alert_log(bool json, io::store* store, std::size_t max_items, engine::unix_nanos max_age, io::notifier* notify)
      : json_(json), store_(store), max_items_(max_items), max_age_(max_age), notify_(notify) {
    if (store_ != nullptr) {
      retain(std::chrono::steady_clock::now()); // what was left from before the start goes at once
    }
  }
  void on_alert(const engine::alert& a) override {
    if (json_) {
      engine::write_json_line(stdout, line_, a);
    } else {
      if (!a.further_source) { // CrowdSec logs an overflow's message once, whatever its sources
        log_line("info", a.message);
      }
      // The local API's line for the stored alert, as CrowdSec's LAPI logs it (machine "vigil").
      if (a.decisions.empty()) {
        log_line("info", "(vigil) alert : " + a.scenario + " by ip " + a.value);
      }
      for (std::size_t i = 0; i < a.decisions.size(); ++i) {
        const engine::decision& d = a.decisions[i];
        const std::string reason = a.decisions.size() == 1 ? a.scenario
                                                           : a.scenario + " for " + std::to_string(i + 1) + "/" +
                                                                 std::to_string(a.decisions.size()) + " decisions";
        log_line("info", "(vigil/" + d.origin + ") " + reason + " by ip " + a.value + " : " +
                             short_duration(d.duration) + " " + d.type + " on " + d.scope + " " + d.value);
      }
    }
    if (store_ != nullptr) {
      pending_.push_back(a);
    } else if (notify_ != nullptr && !a.notifications.empty()) {
      notify_->submit(a, 0, a.notifications);
    }
  }
  void on_error(const std::string& message) override { log_line("warning", message); }
  void on_batch_end() override {
    if (json_) {
      std::fflush(stdout); // once per batch the emitter took, not once per alert
    }
    if (pending_.empty()) {
      return;
    }
    // One transaction per group of batches: a commit costs about as much as a hundred inserts,
    // and under load the emitter takes a few alerts at a time. Alerts wait at most store_linger
    // (the emitter calls on_idle() when nothing arrives).
    const auto t = std::chrono::steady_clock::now();
    if (first_pending_ == std::chrono::steady_clock::time_point{}) {
      first_pending_ = t;
    }
    if ((pending_.size() >= store_batch || t - first_pending_ >= store_linger) && t >= next_try_) {
      save(t);
    }
  }

  void on_idle() override {
    const auto t = std::chrono::steady_clock::now();
    if (!pending_.empty() && t >= next_try_) {
      save(t);
    }
    if (store_ != nullptr) {
      retain_if_due(t);
    }
  }

  /// At shutdown, once the pipeline is done: the alerts still waiting for the store are retried
  /// until `deadline`. Those it still refuses (locked, disk full) are said and counted, and go
  /// to their notifications without a store id. False when any was not stored.
  bool finish_store(std::chrono::steady_clock::time_point deadline) {
    while (!pending_.empty()) {
      const auto t = std::chrono::steady_clock::now();
      if (t >= next_try_) {
        save(t);
        continue;
      }
      if (t >= deadline) {
        break;
      }
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(next_try_ - t, deadline - t));
    }
    if (pending_.empty()) {
      return true;
    }
    static const counters::id dropped = counters::registry::global().define(
        "vigil_store_alerts_dropped_total", "Alerts given up after the store kept failing (kept in the log only)");
    counters::add(dropped, pending_.size());
    std::size_t decisions = 0;
    for (const engine::alert& a : pending_) {
      decisions += a.decisions.size();
      if (notify_ != nullptr && !a.notifications.empty()) {
        notify_->submit(a, 0, a.notifications);
      }
    }
    log_line("error", "store: shutting down with " + std::to_string(pending_.size()) + " alert(s) and " +
                          std::to_string(decisions) + " decision(s) not stored (" + store_->last_error() +
                          "): they are in this log only, and bouncers will not see those decisions");
    pending_.clear();
    return false;
  }

 private:
  static constexpr std::size_t store_batch = 1000;
  static constexpr std::chrono::milliseconds store_linger{50};
  static constexpr std::chrono::seconds store_retry{1};
  // Retention runs after every 1,000 alerts written and at least once a minute (as CrowdSec's
  // flush), so max_age applies on a quiet store too.
  static constexpr std::size_t retention_every = 1000;
  static constexpr std::chrono::minutes retention_interval{1};

  void retain_if_due(std::chrono::steady_clock::time_point t) {
    if (saved_ >= retention_every || t - last_retention_ >= retention_interval) {
      retain(t);
    }
  }

  void retain(std::chrono::steady_clock::time_point t) {
    constexpr const char* help = "Rows deleted by the store's retention: alerts past max_items or max_age, "
                                 "decisions a day after they expired once their alert is gone";
    static const counters::id alerts_removed =
        counters::registry::global().define("vigil_store_retention_deleted_total", help, {{"table", "alerts"}});
    static const counters::id decisions_removed =
        counters::registry::global().define("vigil_store_retention_deleted_total", help, {{"table", "decisions"}});
    const engine::unix_nanos now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count();
    const io::retention_result r = store_->apply_retention(max_items_, max_age_, now);
    counters::add(alerts_removed, r.alerts);
    counters::add(decisions_removed, r.decisions);
    saved_ = 0;
    last_retention_ = t;
    unlogged_ = {unlogged_.alerts + r.alerts, unlogged_.decisions + r.decisions};
    if (t - last_retention_log_ >= retention_interval && (unlogged_.alerts != 0 || unlogged_.decisions != 0)) {
      log_line("info", "store: retention deleted " + std::to_string(unlogged_.alerts) + " alert(s) and " +
                           std::to_string(unlogged_.decisions) + " expired decision(s)");
      unlogged_ = {};
      last_retention_log_ = t;
    }
  }

  void save(std::chrono::steady_clock::time_point t) {
    const engine::unix_nanos now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count();
    static const counters::id failures = counters::registry::global().define(
        "vigil_store_write_failures_total", "Store transactions that failed (the alerts are retried)");
    static const counters::id dropped = counters::registry::global().define(
        "vigil_store_alerts_dropped_total", "Alerts given up after the store kept failing (kept in the log only)");
    const std::vector<std::int64_t> ids = store_->save_alerts(pending_, now);
    if (ids.size() != pending_.size()) {
      // Kept for the next batch (the store may be busy or the disk full for a while); past a
      // bound the oldest go, loudly: they were logged above, and memory must not grow unbounded.
      counters::add(failures);
      next_try_ = t + store_retry;
      log_line("error", "store: " + store_->last_error() + " (" + std::to_string(pending_.size()) +
                            " alert(s) kept for retry)");
      constexpr std::size_t max_pending = 100000;
      if (pending_.size() > max_pending) {
        const std::size_t n = pending_.size() - max_pending;
        pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(n));
        counters::add(dropped, n);
      }
      return;
    }
    if (notify_ != nullptr) { // after the save, so a notification carries the alert's store id
      for (std::size_t i = 0; i < pending_.size(); ++i) {
        if (!pending_[i].notifications.empty()) {
          notify_->submit(pending_[i], ids[i], pending_[i].notifications);
        }
      }
    }
    static const counters::id written = counters::registry::global().define(
        "vigil_store_alerts_written_total", "Alerts (with their decisions) committed to the store");
    static const counters::id transactions = counters::registry::global().define(
        "vigil_store_transactions_total", "Store write transactions committed (alerts grouped up to 1,000 or 50 ms)");
    counters::add(written, pending_.size());
    counters::add(transactions);
    saved_ += pending_.size();
    pending_.clear();
    first_pending_ = {};
    retain_if_due(t);
  }

  bool json_;
  std::string line_; // the JSON line being written, kept between alerts
  io::store* store_;
  std::size_t max_items_;
  engine::unix_nanos max_age_;
  io::notifier* notify_;
  std::vector<engine::alert> pending_;
  std::chrono::steady_clock::time_point first_pending_{}; // when the oldest pending alert came
  std::chrono::steady_clock::time_point next_try_{};      // after a failed write: not before
  std::size_t saved_ = 0;                                      // alerts written since the last retention
  std::chrono::steady_clock::time_point last_retention_{};
  std::chrono::steady_clock::time_point last_retention_log_{}; // at most a line a minute
  io::retention_result unlogged_;                              // deleted and not logged yet
};

// cs_active_decisions{reason, origin, action}: the store's active decisions, counted again every
// few seconds on the loop (decisions expire and are deleted by hand, not only added). A label set
// that has no decision any more reads 0.
class active_decisions_gauge {
 public:
  explicit active_decisions_gauge(std::unique_ptr<io::store> s) : store_(std::move(s)) {}
  void refresh() {
    const engine::unix_nanos now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count();
    std::map<std::tuple<std::string, std::string, std::string>, std::uint64_t> counts;
    for (const auto& c : store_->count_active_decisions(now)) { // grouped in SQL, not row by row
      counts[{c.scenario, c.origin, c.type}] = c.count;
    }
    for (auto& [key, id] : ids_) {
      if (!counts.contains(key)) {
        counters::set(id, 0);
      }
    }
    for (const auto& [key, n] : counts) {
      auto it = ids_.find(key);
      if (it == ids_.end()) {
        const auto& [reason, origin, action] = key;
        it = ids_.emplace(key, counters::registry::global().define(
                                   "cs_active_decisions", "Number of active decisions",
                                   {{"reason", reason}, {"origin", origin}, {"action", action}}, counters::kind::gauge))
                 .first;
      }
      counters::set(it->second, n);
    }
  }

 private:
  std::unique_ptr<io::store> store_;
  std::map<std::tuple<std::string, std::string, std::string>, counters::id> ids_;
};

struct daemon_state {
  uv_loop_t loop{};
  uv_timer_t decisions_timer{};
  std::unique_ptr<active_decisions_gauge> decisions_gauge;
  uv_signal_t sigint{}, sigterm{}, sighup{};
  std::function<void()> reload;
  std::vector<std::unique_ptr<http::server>> servers;
  std::size_t drained = 0;
  bool stopping = false;
};

void on_signal(uv_signal_t* h, int signum) {
  auto* d = static_cast<daemon_state*>(h->data);
  if (d->stopping) {
    return;
  }
  if (signum == SIGHUP) {
    d->reload();
    return;
  }
  d->stopping = true;
  log_line("info", std::string("received ") + (signum == SIGTERM ? "SIGTERM" : "SIGINT") +
                       ": no new batches (503), finishing what was admitted");
  // Once every server has drained (at once when there is none: files only, API and metrics
  // off), the loop's last handles close and uv_run returns.
  auto close_loop = [d] {
    uv_close(reinterpret_cast<uv_handle_t*>(&d->sigint), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&d->sigterm), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&d->sighup), nullptr);
    if (d->decisions_gauge) {
      uv_close(reinterpret_cast<uv_handle_t*>(&d->decisions_timer), nullptr);
    }
  };
  if (d->servers.empty()) {
    close_loop();
  }
  for (auto& srv : d->servers) {
    srv->drain([d, close_loop] {
      if (++d->drained == d->servers.size()) {
        close_loop();
      }
    });
  }
}

} // namespace

// Loads vigil.yaml (if any) and the acquisition files it names, then a CrowdSec configuration
// directory (if any), reporting every error; warnings are logged.
bool load_settings_or_report(const std::string& config_path, const std::string& crowdsec_dir, config::settings& cfg) {
  std::vector<config::error> errors;
  if (!config_path.empty()) {
    auto c = config::load(config_path);
    if (auto* e = std::get_if<std::vector<config::error>>(&c)) {
      errors = *e;
    } else {
      cfg = std::get<config::settings>(c);
    }
  }
  if (!crowdsec_dir.empty() && errors.empty()) {
    config::load_crowdsec_dir(crowdsec_dir, cfg, errors);
  }
  if (!errors.empty()) {
    for (const auto& e : errors) {
      std::fprintf(stderr, "%s\n", e.to_string().c_str());
    }
    std::fprintf(stderr, "vigil: %zu error(s) in the configuration\n", errors.size());
    return false;
  }
  for (const auto& w : cfg.warnings) {
    log_line("warning", w);
  }
  cfg.warnings.clear();
  return true;
}

std::optional<std::vector<io::notification>> load_notifications_or_report(const std::vector<std::string>& paths,
                                                                         const rules::profile_set* profiles) {
  std::vector<io::notification> out;
  std::vector<config::error> errors;
  std::vector<std::string> warnings;
  for (const auto& p : paths) {
    io::load_notifications(p, out, errors, warnings);
  }
  for (const auto& w : warnings) {
    log_line("warning", w);
  }
  if (!errors.empty()) {
    for (const auto& e : errors) {
      std::fprintf(stderr, "%s\n", e.to_string().c_str());
    }
    std::fprintf(stderr, "vigil: %zu error(s) in the notification files\n", errors.size());
    return std::nullopt;
  }
  if (profiles != nullptr) {
    for (const auto& name : profiles->notification_names()) {
      const bool known = std::any_of(out.begin(), out.end(), [&](const io::notification& n) { return n.name == name; });
      if (!known) {
        log_line(paths.empty() ? "info" : "warning",
                 "profiles name the notification '" + name + "', which no notification file defines: not sent" +
                     (paths.empty() ? " (give notification files with --notifications or `notifications:`)" : ""));
      }
    }
  }
  return out;
}

namespace {

// Where a tailed file's position is kept: `vigil-tail` + the path with each `/` spelled `_`
// (and `_` and `%` escaped as %5F and %25, so two paths never share a file) + `.pos`. A path
// with neither keeps the name earlier versions gave it. For one with either, a position saved
// under the earlier name (`/` and `_` alike as `_`) is moved to the new one, if it is this
// file's: that name may be another path's (k/a/x.log's, as k_a/x.log's), which keeps it.
std::string position_file_of(const std::string& dir, const std::string& path) {
  std::string key, before;
  for (const char c : path) {
    key += c == '/' ? std::string("_") : c == '_' ? std::string("%5F") : c == '%' ? std::string("%25") : std::string(1, c);
    before += c == '/' ? '_' : c;
  }
  const std::string file = dir + "/vigil-tail" + key + ".pos";
  const std::string earlier = dir + "/vigil-tail" + before + ".pos";
  std::error_code ec;
  if (earlier != file && !std::filesystem::exists(file, ec) && std::filesystem::exists(earlier, ec)) {
    std::uint64_t inode = 0;
    struct stat st {};
    if ((std::ifstream(earlier) >> inode) && ::stat(path.c_str(), &st) == 0 && static_cast<std::uint64_t>(st.st_ino) == inode) {
      std::filesystem::rename(earlier, file, ec);
    }
  }
  return file;
}

// The webhook listeners: the configured ones, or the embedded default when no source is
// configured (a configuration of files only opens no listener, unless a webhook flag such as
// --listen asks for one); command-line flags override the first one.
std::vector<config::webhook_source> webhooks_of(const run_options& o, const config::settings& cfg, bool listen_flag) {
  std::vector<config::webhook_source> ws = cfg.webhooks;
  const bool webhook_flags = listen_flag || !o.tokens.empty() || !o.tls_cert.empty() || !o.tls_client_ca.empty() ||
                             o.path != "/audit/webhook/event";
  if (ws.empty() && (cfg.files.empty() || webhook_flags)) {
    ws.emplace_back();
  }
  if (ws.empty()) {
    return ws;
  }
  config::webhook_source& first = ws.front();
  if (listen_flag || cfg.webhooks.empty()) {
    std::string host;
    std::uint16_t port = 0;
    if (config::parse_listen(o.listen, host, port)) {
      first.host = host;
      first.port = port;
    }
  }
  if (o.path != "/audit/webhook/event" || cfg.webhooks.empty()) {
    first.path = o.path.empty() || o.path[0] != '/' ? "/" + o.path : o.path;
  }
  if (!o.tokens.empty()) {
    first.tokens = o.tokens;
  }
  if (!o.tls_cert.empty()) {
    first.tls_cert = o.tls_cert;
  }
  if (!o.tls_key.empty()) {
    first.tls_key = o.tls_key;
  }
  if (!o.tls_client_ca.empty()) {
    first.tls_client_ca = o.tls_client_ca;
  }
  if (o.max_body_size != (32u << 20)) {
    first.max_body_size = o.max_body_size;
  }
  if (o.max_connections != 0) {
    first.max_connections = o.max_connections;
  }
  for (auto& w : ws) {
    if (w.cluster.empty()) {
      w.cluster = o.cluster.empty() ? cfg.cluster : o.cluster;
    }
    if (w.name.empty()) {
      w.name = w.host + ":" + std::to_string(w.port);
    }
  }
  return ws;
}

int run_daemon(const run_options& o, bool listen_flag) {
  // The engine's own warnings (a metrics limit reached) go into the same log as the rest.
  util::set_warning_sink([](const std::string& message) { log_line("warning", message); });
  config::settings cfg;
  if (!load_settings_or_report(o.config, o.crowdsec_dir, cfg)) {
    return 2;
  }
  if (o.output != "text" && o.output != "json") {
    std::fprintf(stderr, "vigil run: --output must be text or json\n");
    return 2;
  }
  {
    std::string host;
    std::uint16_t port = 0;
    if (!config::parse_listen(o.listen, host, port)) {
      std::fprintf(stderr, "vigil run: --listen must be ADDRESS:PORT, got '%s'\n", o.listen.c_str());
      return 2;
    }
  }
  const std::vector<config::webhook_source> webhooks = webhooks_of(o, cfg, listen_flag);
  for (const auto& w : webhooks) {
    if (w.tls_cert.empty() != w.tls_key.empty() || (!w.tls_client_ca.empty() && w.tls_cert.empty())) {
      std::fprintf(stderr, "vigil run: webhook %s: TLS needs both a certificate and a key\n", w.name.c_str());
      return 2;
    }
  }
  auto loaded = rules::load_ruleset(o.rules.empty() ? cfg.rules : o.rules);
  if (auto* errors = std::get_if<std::vector<rules::load_error>>(&loaded)) {
    for (const auto& e : *errors) {
      std::fprintf(stderr, "%s\n", e.to_string().c_str());
    }
    std::fprintf(stderr, "vigil run: %zu error(s) in the rules\n", errors->size());
    return 2;
  }
  auto rules = std::get<std::shared_ptr<const rules::ruleset>>(loaded);
  auto profiles = load_profiles_or_report(o.profiles.empty() ? cfg.profiles : o.profiles, "run");
  if (!profiles) {
    return 2;
  }
  std::vector<std::string> notification_paths = cfg.notifications;
  notification_paths.insert(notification_paths.end(), o.notifications.begin(), o.notifications.end());
  auto notifications = load_notifications_or_report(notification_paths, profiles.get());
  if (!notifications) {
    return 2;
  }
  std::unique_ptr<io::notifier> notify;
  if (!notifications->empty()) {
    io::notifier_options no;
    no.machine_id = machine_id();
    no.log = log_line;
    const std::size_t n = notifications->size();
    notify = std::make_unique<io::notifier>(std::move(*notifications), std::move(no));
    log_line("info", std::to_string(n) + " notification(s) configured");
  }

  std::unique_ptr<io::store> store;
  if (!cfg.store_path.empty()) {
    std::string error;
    store = io::open_sqlite_store(cfg.store_path, error);
    if (!store) {
      std::fprintf(stderr, "vigil run: store: %s\n", error.c_str());
      return 2;
    }
  }
  if (store) {
    // GetDecisionsCount in duration_expr: the emitter's own connection, on the emitter thread.
    io::store* s = store.get();
    rules::set_decisions_counter([s](std::string_view value, engine::unix_nanos window) {
      const engine::unix_nanos now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count();
      return s->count_decisions(std::string(value), window == 0 ? 0 : now - window);
    });
  }
  alert_log out(o.output == "json", store.get(), cfg.store_max_items,
                static_cast<engine::unix_nanos>(cfg.store_max_age_hours) * 3600 * 1'000'000'000, notify.get());
  pipeline::options po;
  po.workers = o.workers != 0 ? o.workers : cfg.workers;
  po.max_in_flight = o.max_in_flight != 0 ? o.max_in_flight : cfg.max_in_flight;
  po.live = true;
  po.profiles = profiles;
  pipeline::pipeline pl(rules, po, out);

  daemon_state d;
  uv_loop_init(&d.loop);
  // Signals are taken from here on: a SIGTERM while the listeners start (one is already
  // announced) waits for the loop and stops the daemon cleanly, instead of killing it.
  uv_signal_init(&d.loop, &d.sigint);
  uv_signal_init(&d.loop, &d.sigterm);
  uv_signal_init(&d.loop, &d.sighup);
  d.sigint.data = d.sigterm.data = d.sighup.data = &d;
  uv_signal_start(&d.sigint, on_signal, SIGINT);
  uv_signal_start(&d.sigterm, on_signal, SIGTERM);
  uv_signal_start(&d.sighup, on_signal, SIGHUP);
  // A start-up failure after the loop exists: close what was opened (the signal handles,
  // listeners already started, the failed server's handle), let the loop finish closing, then free.
  auto abort_startup = [&d](std::unique_ptr<http::server> failed) {
    uv_close(reinterpret_cast<uv_handle_t*>(&d.sigint), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&d.sigterm), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&d.sighup), nullptr);
    for (auto& started : d.servers) {
      started->drain(nullptr);
    }
    uv_run(&d.loop, UV_RUN_DEFAULT);
    failed.reset();
    d.servers.clear();
    uv_loop_close(&d.loop);
    return 2;
  };
  std::vector<std::unique_ptr<io::webhook>> hooks;
  for (const auto& w : webhooks) {
    io::webhook_options wo;
    wo.path = w.path;
    wo.tokens = w.tokens;
    wo.cluster = w.cluster;
    wo.name = w.name;
    wo.require_client_cert = !w.tls_client_ca.empty();
    hooks.push_back(std::make_unique<io::webhook>(pl, wo));
    io::webhook* hook = hooks.back().get();
    http::server_options so;
    so.host = w.host;
    so.port = w.port;
    so.max_body_size = w.max_body_size;
    so.max_connections = w.max_connections;
    so.header_timeout_ms = w.header_timeout_ms;
    so.body_timeout_ms = w.body_timeout_ms;
    so.idle_timeout_ms = w.idle_timeout_ms;
    so.name = w.name;
    if (!w.tls_cert.empty()) {
      so.tls = http::tls_options{w.tls_cert, w.tls_key, w.tls_client_ca};
    }
    auto srv = std::make_unique<http::server>(
        &d.loop, so, [hook](const http::request& r, http::response& res) { return hook->precheck(r, res); },
        [hook](http::request& r, http::response& res) { hook->handle(r, res); });
    if (const std::string err = srv->listen(); !err.empty()) {
      std::fprintf(stderr, "vigil run: %s%s\n", w.origin.empty() ? "" : (w.origin + ": ").c_str(), err.c_str());
      return abort_startup(std::move(srv));
    }
    const std::string host = w.host.find(':') != std::string::npos ? "[" + w.host + "]" : w.host;
    log_line("info", std::string("vigil listening on ") + (so.tls ? "https://" : "http://") + host + ":" +
                         std::to_string(srv->bound_port()) + w.path + " (" + std::to_string(rules->scenarios.size()) +
                         " rules, " + std::to_string(pl.workers()) + " workers" +
                         (wo.require_client_cert ? ", client certificates" : "") +
                         (wo.tokens.empty() ? (wo.require_client_cert ? "" : ", no authentication") : ", bearer tokens") +
                         (w.cluster.empty() ? "" : ", cluster " + w.cluster) + ")");
    d.servers.push_back(std::move(srv));
  }
  // The local API for bouncers, on the same loop, with its own store connection.
  std::unique_ptr<io::lapi> api;
  const std::string api_listen = o.api_listen.empty() ? cfg.api_listen : (o.api_listen == "off" ? "" : o.api_listen);
  if (!api_listen.empty() && cfg.store_path.empty()) {
    log_line("warning", "no local API on " + api_listen + ": it serves the store's decisions, and the store is off "
                        "(store.path empty)");
  }
  if (!api_listen.empty() && !cfg.store_path.empty()) {
    std::string error;
    // The local API runs on the loop that serves the webhook: its store connection waits at
    // most 200 ms for another writer's lock (a pull then answers 503), not the 5 s a
    // command-line tool may wait.
    auto api_store = io::open_sqlite_store(cfg.store_path, error, 200);
    http::server_options so;
    so.name = "lapi";
    if (!api_store || !config::parse_listen(api_listen, so.host, so.port)) {
      std::fprintf(stderr, "vigil run: local API: %s\n", api_store ? ("bad address " + api_listen).c_str() : error.c_str());
      return abort_startup(nullptr);
    }
    const std::string cert = o.api_tls_cert.empty() ? cfg.api_tls_cert : o.api_tls_cert;
    const std::string key = o.api_tls_key.empty() ? cfg.api_tls_key : o.api_tls_key;
    if (cert.empty() != key.empty()) {
      std::fprintf(stderr, "vigil run: local API: TLS needs both a certificate and a key\n");
      return abort_startup(nullptr);
    }
    if (!cert.empty()) {
      so.tls = http::tls_options{cert, key, ""};
    }
    api = std::make_unique<io::lapi>(std::move(api_store));
    io::lapi* a = api.get();
    auto srv = std::make_unique<http::server>(
        &d.loop, so, [a](const http::request& r, http::response& res) { return a->precheck(r, res); },
        [a](http::request& r, http::response& res) { a->handle(r, res); });
    if (const std::string err = srv->listen(); !err.empty()) {
      std::fprintf(stderr, "vigil run: local API: %s\n", err.c_str());
      return abort_startup(std::move(srv));
    }
    log_line("info", std::string("vigil local API listening on ") + (so.tls ? "https://" : "http://") + so.host + ":" + std::to_string(srv->bound_port()) +
                         " (bouncers: vigil bouncers add NAME)");
    d.servers.push_back(std::move(srv));
  }
  // Prometheus /metrics on its own listener.
  const std::string metrics_listen =
      o.metrics_listen.empty() ? cfg.metrics_listen : (o.metrics_listen == "off" ? "" : o.metrics_listen);
  if (!metrics_listen.empty()) {
    http::server_options so;
    so.name = "metrics";
    if (!config::parse_listen(metrics_listen, so.host, so.port)) {
      std::fprintf(stderr, "vigil run: metrics: bad address %s\n", metrics_listen.c_str());
      return abort_startup(nullptr);
    }
    auto srv = std::make_unique<http::server>(&d.loop, so, io::metrics_precheck, io::metrics_handle);
    if (const std::string err = srv->listen(); !err.empty()) {
      std::fprintf(stderr, "vigil run: metrics: %s\n", err.c_str());
      return abort_startup(std::move(srv));
    }
    log_line("info", "vigil metrics on http://" + so.host + ":" + std::to_string(srv->bound_port()) + "/metrics");
    d.servers.push_back(std::move(srv));
  }
  if (!metrics_listen.empty() && !cfg.store_path.empty()) {
    std::string error;
    if (auto gauge_store = io::open_sqlite_store(cfg.store_path, error, 200)) { // on the loop too
      d.decisions_gauge = std::make_unique<active_decisions_gauge>(std::move(gauge_store));
      d.decisions_gauge->refresh();
      uv_timer_init(&d.loop, &d.decisions_timer);
      d.decisions_timer.data = d.decisions_gauge.get();
      uv_timer_start(
          &d.decisions_timer, [](uv_timer_t* t) { static_cast<active_decisions_gauge*>(t->data)->refresh(); }, 5000,
          5000);
    }
  }
  // File sources: `cat` files are read once on their own thread; `tail` files are followed, each
  // by a tailer thread, with its position kept in position_dir.
  std::thread files([&] {
    for (const auto& f : cfg.files) {
      if (f.tail) {
        continue;
      }
      for (const auto& path : f.paths) {
        std::error_code ec;
        if (!std::filesystem::exists(path, ec)) {
          log_line("error", path + " does not exist: not read");
          continue;
        }
        if (io::replay_file(io::replay_source{path, path, f.cluster.empty() ? cfg.cluster : f.cluster}, pl)) {
          log_line("info", "read " + path);
        } else {
          log_line("error", "could not read all of " + path);
        }
      }
    }
  });
  std::vector<std::unique_ptr<io::tailer>> tailers;
  for (const auto& f : cfg.files) {
    if (!f.tail) {
      continue;
    }
    for (const auto& path : f.paths) {
      io::tail_options t;
      t.path = path;
      t.cluster = f.cluster.empty() ? cfg.cluster : f.cluster;
      t.position_file = position_file_of(f.position_dir, path);
      t.from_beginning = f.from_beginning;
      tailers.push_back(std::make_unique<io::tailer>(pl, t));
      log_line("info", "following " + path + " (position in " + t.position_file + ")");
      std::error_code ec;
      if (!std::filesystem::exists(path, ec)) {
        log_line("warning", path + " does not exist yet: it will be read from its beginning when it appears");
      }
    }
  }
  // SIGHUP: reload the rules from the same files. The old set serves until the new one is
  // built; a broken file keeps the old set and says why.
  const std::vector<std::string> rule_paths = o.rules.empty() ? cfg.rules : o.rules;
  d.reload = [&pl, rule_paths] {
    auto next = rules::load_ruleset(rule_paths);
    if (auto* errors = std::get_if<std::vector<rules::load_error>>(&next)) {
      for (const auto& e : *errors) {
        log_line("error", e.to_string());
      }
      log_line("error", "reload failed (" + std::to_string(errors->size()) + " error(s)): the previous rules stay in use");
      return;
    }
    auto rs = std::get<std::shared_ptr<const rules::ruleset>>(next);
    const std::size_t n = rs->scenarios.size();
    pl.reload(std::move(rs));
    log_line("info", "rules reloaded: " + std::to_string(n) + " rules");
  };
  uv_run(&d.loop, UV_RUN_DEFAULT);
  files.join();
  for (auto& t : tailers) {
    t->stop();
  }
  const pipeline::totals t = pl.finish();
  // The last alerts the store refused for a while get until 10 s from now, and are said lost
  // after that (the exit status tells it too).
  const bool all_stored = store == nullptr || out.finish_store(std::chrono::steady_clock::now() + std::chrono::seconds(10));
  rules::set_decisions_counter({}); // the store goes with this function
  if (notify) { // what the last alerts asked for, with a bounded wait on slow endpoints
    notify->stop(std::chrono::seconds(10));
  }
  d.servers.clear();
  uv_run(&d.loop, UV_RUN_NOWAIT);
  uv_loop_close(&d.loop);
  log_line("info", "stopped: " + std::to_string(t.decoded) + " events processed, " + std::to_string(t.alerts) +
                       " alerts");
  return all_stored ? 0 : 1;
}

int check_config(const run_options& o) {
  config::settings cfg;
  if (!load_settings_or_report(o.config, o.crowdsec_dir, cfg)) {
    return 2;
  }
  auto loaded = rules::load_ruleset(o.rules.empty() ? cfg.rules : o.rules);
  if (auto* errors = std::get_if<std::vector<rules::load_error>>(&loaded)) {
    for (const auto& e : *errors) {
      std::fprintf(stderr, "%s\n", e.to_string().c_str());
    }
    std::fprintf(stderr, "vigil check-config: %zu error(s) in the rules\n", errors->size());
    return 2;
  }
  auto profiles = load_profiles_or_report(o.profiles.empty() ? cfg.profiles : o.profiles, "check-config");
  if (!profiles) {
    return 2;
  }
  std::vector<std::string> notification_paths = cfg.notifications;
  notification_paths.insert(notification_paths.end(), o.notifications.begin(), o.notifications.end());
  const auto notifications = load_notifications_or_report(notification_paths, profiles.get());
  if (!notifications) {
    return 2;
  }
  const auto webhooks = webhooks_of(o, cfg, false);
  std::printf("configuration OK: %zu profiles, %zu rules, %zu notification(s), %zu webhook listener(s), %zu file source(s)\n",
              profiles->profiles().size(), std::get<std::shared_ptr<const rules::ruleset>>(loaded)->scenarios.size(),
              notifications->size(), webhooks.size(), cfg.files.size());
  for (const auto& w : webhooks) {
    std::printf("  webhook %s%s:%u%s%s\n", w.tls_cert.empty() ? "http://" : "https://", w.host.c_str(),
                static_cast<unsigned>(w.port), w.path.c_str(), w.tokens.empty() ? "" : " (bearer tokens)");
  }
  return 0;
}

} // namespace

command add_run(CLI::App& app) {
  auto o = std::make_shared<run_options>();
  CLI::App* sub = app.add_subcommand("run", "Run the daemon: the audit webhook, the rules, the alerts");
  sub->add_option("-c,--config", o->config, "vigil.yaml (see docs/configuration.md); flags override it");
  sub->add_option("--crowdsec-dir", o->crowdsec_dir,
                  "A CrowdSec configuration directory (acquis.yaml, acquis.d/, profiles.yaml, notifications/, scenarios/)");
  sub->add_option("--notifications", o->notifications, "Notification file or directory (repeatable)");
  sub->add_option("--listen", o->listen, "Webhook address:port (port 0: chosen by the OS)")->capture_default_str();
  sub->add_option("--webhook-path", o->path, "Webhook URL path (also serves PATH/<cluster>)")
      ->capture_default_str()
      ->check([](const std::string& v) {
        return v.empty() ? std::string("an empty path: give the webhook's URL path, e.g. /audit/webhook/event") : std::string();
      });
  sub->add_option("--token", o->tokens, "Accepted bearer token (repeatable); none: no authentication");
  sub->add_option("--rules", o->rules, "Scenario file or directory (repeatable); default: the shipped rules");
  sub->add_option("--profiles", o->profiles, "profiles.yaml (default: CrowdSec's defaults + the k8s-audit notification profile)");
  sub->add_option("--cluster", o->cluster, "Cluster name stamped on the events");
  sub->add_option("-o,--output", o->output, "Alerts: text (log lines on stderr) or json (stdout)")
      ->capture_default_str();
  // The ranges vigil.yaml enforces for the same settings (docs/configuration.md).
  sub->add_option("--workers", o->workers, "Worker threads (default: one per core)")->check(CLI::Range(0, 256));
  sub->add_option("--max-body-size", o->max_body_size, "Largest request body in bytes")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1024}, std::int64_t{1} << 31));
  sub->add_option("--max-in-flight", o->max_in_flight, "Events admitted but not processed before 429")
      ->check(CLI::Range(1, 1 << 24));
  sub->add_option("--max-connections", o->max_connections,
                  "Webhook connections open at once (default 1024); beyond, those that never sent a request go first")
      ->check(CLI::Range(1, 1 << 20));
  // An empty value would silently mean "as configured": ask for an address or `off`.
  const auto address_or_off = [](const std::string& v) {
    return v.empty() ? std::string("an empty address: give ADDR:PORT, or off") : std::string();
  };
  sub->add_option("--metrics-listen", o->metrics_listen, "Prometheus /metrics address:port (default 127.0.0.1:6060; off)")
      ->check(address_or_off);
  sub->add_option("--api-listen", o->api_listen, "Local API address:port for bouncers (default 127.0.0.1:8080; off)")
      ->check(address_or_off);
  sub->add_option("--tls-cert", o->tls_cert, "PEM certificate chain: serve HTTPS (TLS 1.2/1.3)");
  sub->add_option("--api-tls-cert", o->api_tls_cert, "PEM certificate chain: serve the local API over HTTPS");
  sub->add_option("--api-tls-key", o->api_tls_key, "PEM private key of --api-tls-cert");
  sub->add_option("--tls-key", o->tls_key, "PEM private key of --tls-cert");
  sub->add_option("--tls-client-ca", o->tls_client_ca, "PEM CA bundle: require client certificates it signed (401 otherwise)");
  CLI::Option* listen = sub->get_option("--listen");
  return [o, listen] { return run_daemon(*o, listen->count() > 0); };
}

command add_check_config(CLI::App& app) {
  auto o = std::make_shared<run_options>();
  CLI::App* sub = app.add_subcommand("check-config", "Validate vigil.yaml, the acquisition files and the rules");
  sub->add_option("-c,--config", o->config, "vigil.yaml to check");
  sub->add_option("--crowdsec-dir", o->crowdsec_dir, "A CrowdSec configuration directory to check");
  sub->add_option("--notifications", o->notifications, "Notification file or directory (repeatable)");
  sub->add_option("--rules", o->rules, "Scenario file or directory (repeatable)");
  sub->add_option("--profiles", o->profiles, "profiles.yaml to check");
  return [o] { return check_config(*o); };
}

} // namespace vigil::cli
