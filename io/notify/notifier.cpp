#include "io/notify/notifier.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <list>
#include <mutex>
#include <random>
#include <thread>

#include <curl/curl.h>
#include <strings.h>
#include <pthread.h>

#include "engine/counters/counters.h"
#include "engine/event/duration.h"
#include "rules/template/template.h"

namespace vigil::io {

namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds tick{1000};               // CrowdSec's broker checks its groups every second
// Dropped alerts are logged as a count: the first drop at once, then at most a line per plugin
// this often (a burst can drop thousands a second; every one is counted in the metrics).
constexpr milliseconds drop_log_interval{10000};
constexpr milliseconds max_backoff{30000};       // the backoff's ceiling
constexpr milliseconds unlimited_budget{300000}; // max_retry 0: keep trying for 5 minutes
constexpr std::size_t max_response = 4096;       // what is kept of an error response

engine::unix_nanos wall_now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string new_uuid(std::mt19937_64& rng) {
  const std::uint64_t a = rng();
  const std::uint64_t b = rng();
  unsigned char bytes[16];
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<unsigned char>(a >> (8 * i));
    bytes[8 + i] = static_cast<unsigned char>(b >> (8 * i));
  }
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | 0x40); // version 4
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80); // RFC 4122 variant
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      s += '-';
    }
    s += hex[bytes[i] >> 4];
    s += hex[bytes[i] & 15];
  }
  return s;
}

struct queued {
  engine::alert alert;
  std::int64_t id = 0;
  engine::unix_nanos created_at = 0;
  std::string uuid;
};

struct plugin_state {
  notification cfg;
  std::vector<std::shared_ptr<const queued>> pending;
  clock::time_point next_tick, next_wait;
  counters::id alerts, sent, empty, failed_tries, gave_up, template_errors, dropped, abandoned, queue_depth,
      unfinished;
  std::uint64_t unlogged_drops = 0; // dropped since the last line about drops
  clock::time_point next_drop_log;  // no line about drops before this
  bool backlog = false;             // a flush stopped at max_deliveries: flush again when there is room
};

struct delivery {
  std::size_t plugin = 0;
  std::string body;
  std::size_t alerts = 0;
  unsigned attempts = 0;
  clock::time_point first_at, next_at;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string response;
  bool in_flight = false;
  bool warned = false;
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* s = static_cast<std::string*>(user);
  const std::size_t len = size * n;
  if (s->size() < max_response) {
    s->append(data, std::min(len, max_response - s->size()));
  }
  return len;
}

// Appends `text` to a file, rotating it first when it would pass its size limit:
// path -> path.1 -> ... -> path.<max_files>, the oldest removed.
std::string append_to_file(const notification& n, const std::string& text) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (n.rotate) {
    const auto size = fs::file_size(n.log_path, ec);
    if (!ec && size + text.size() > n.rotate_max_size_mb * 1024 * 1024 && size > 0) {
      const unsigned keep = std::max(1u, n.rotate_max_files);
      fs::remove(n.log_path + "." + std::to_string(keep), ec);
      for (unsigned i = keep; i > 1; --i) {
        fs::rename(n.log_path + "." + std::to_string(i - 1), n.log_path + "." + std::to_string(i), ec);
      }
      fs::rename(n.log_path, n.log_path + ".1", ec);
      if (ec) {
        return "rotate " + n.log_path + ": " + ec.message();
      }
    }
  }
  std::FILE* f = std::fopen(n.log_path.c_str(), "ab");
  if (f == nullptr) {
    return "open " + n.log_path + ": " + std::strerror(errno);
  }
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const bool closed = std::fclose(f) == 0;
  return ok && closed ? std::string() : "write " + n.log_path + ": " + std::strerror(errno);
}

} // namespace

std::string slack_payload(const notification& n, const std::string& text) {
  std::string out = "{";
  auto field = [&out](const char* key, const std::string& v) {
    if (v.empty()) {
      return;
    }
    if (out.size() > 1) {
      out += ',';
    }
    out += '"';
    out += key;
    out += "\":";
    rules::tmpl::append_go_json_string(out, v);
  };
  field("username", n.username);
  field("icon_emoji", n.icon_emoji);
  field("icon_url", n.icon_url);
  field("channel", n.channel);
  field("text", text);
  return out + "}";
}

struct notifier::impl {
  notifier_options opts;
  std::vector<plugin_state> plugins;
  std::mutex mu;
  std::vector<std::pair<std::size_t, std::shared_ptr<const queued>>> incoming; // guarded by mu
  bool stop_requested = false;                                                 // guarded by mu
  clock::time_point stop_deadline;                                             // guarded by mu
  std::mt19937_64 rng{std::random_device{}()};        // uuids; guarded by mu
  std::mt19937_64 jitter_rng{std::random_device{}()}; // the notifier thread's
  CURLM* multi = nullptr;
  std::list<delivery> jobs; // the notifier thread's own
  std::vector<std::uint8_t> busy; // per plugin, while scheduling
  std::vector<std::size_t> unfinished_alerts; // per plugin, in count_unfinished
  std::thread thread;
  bool stopped = false;

  void log(const char* level, const std::string& msg) const {
    if (opts.log) {
      opts.log(level, msg);
    }
  }

  // Counts an alert of plugin `p` dropped because max_pending_per_plugin alerts wait already, and
  // logs the drops unless a line about them came less than drop_log_interval ago
  // (report_drops() logs the rest later).
  void drop(plugin_state& p, clock::time_point now) {
    counters::add(p.dropped);
    ++p.unlogged_drops;
    if (now >= p.next_drop_log) {
      report_drops(p, now);
    }
  }

  void report_drops(plugin_state& p, clock::time_point now) {
    if (p.unlogged_drops == 0) {
      return;
    }
    log("error", "notification " + p.cfg.name + ": " + std::to_string(p.unlogged_drops) + " alert(s) dropped, " +
                     std::to_string(opts.max_pending_per_plugin) + " alerts already waiting to be sent (all counted in vigil_notification_failures_total{reason=\"dropped\"}; " +
                     "drops are reported at most every " +
                     std::to_string(std::chrono::duration_cast<std::chrono::seconds>(drop_log_interval).count()) +
                     " s)");
    p.unlogged_drops = 0;
    p.next_drop_log = now + drop_log_interval;
  }

  std::size_t find(const std::string& name) const {
    for (std::size_t i = 0; i < plugins.size(); ++i) {
      if (plugins[i].cfg.name == name) {
        return i;
      }
    }
    return plugins.size();
  }

  void done(const delivery& j, bool ok, const std::string& error) {
    if (opts.on_done) {
      opts.on_done(delivery_result{plugins[j.plugin].cfg.name, ok, j.attempts, j.alerts, error});
    }
  }

  // Deliveries of plugin `pi` not finished (sending, or waiting for a retry).
  std::size_t deliveries_of(std::size_t pi) const noexcept {
    std::size_t n = 0;
    for (const delivery& j : jobs) {
      n += j.plugin == pi ? 1 : 0;
    }
    return n;
  }

  // The alerts of each plugin's deliveries not finished, after the jobs changed.
  void count_unfinished() {
    unfinished_alerts.assign(plugins.size(), 0);
    for (const delivery& j : jobs) {
      if (j.plugin < plugins.size()) {
        unfinished_alerts[j.plugin] += j.alerts;
      }
    }
    for (std::size_t i = 0; i < plugins.size(); ++i) {
      counters::set(plugins[i].unfinished, unfinished_alerts[i]);
    }
  }

  // Room for more deliveries of plugin `pi`. The limit is each plugin's: an endpoint that is
  // down (a send can retry for minutes) must not hold back the other plugins' notifications.
  bool has_room(std::size_t pi) const noexcept { return deliveries_of(pi) < opts.max_deliveries; }

  // Renders the pending alerts of a plugin in groups of group_threshold (1 if unset) and queues
  // one delivery per group. With max_deliveries of its own queued, the rest keep waiting
  // (bounded by max_pending_per_plugin) for a later flush: a burst is delivered late rather than
  // dropped.
  void flush(std::size_t pi, clock::time_point now) {
    plugin_state& p = plugins[pi];
    const std::size_t group = std::max<std::size_t>(1, p.cfg.group_threshold);
    std::size_t at = 0;
    std::size_t queued_now = deliveries_of(pi);
    for (; at < p.pending.size() && queued_now < opts.max_deliveries; at += group) {
      std::vector<rules::tmpl::alert_view> views;
      for (std::size_t k = at; k < std::min(p.pending.size(), at + group); ++k) {
        const queued& q = *p.pending[k];
        views.push_back(rules::tmpl::alert_view{&q.alert, q.id, opts.machine_id, q.uuid, q.created_at});
      }
      std::string text;
      std::string error;
      if (!p.cfg.templ->execute(rules::tmpl::alerts_value(views), text, error)) {
        counters::add(p.template_errors);
        log("error", "notification " + p.cfg.name + ": " + error + " (" + std::to_string(views.size()) +
                         " alert(s) not sent)");
        continue;
      }
      if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
        // Nothing to say (CrowdSec's default Slack template prints nothing for an alert without
        // decisions): not sent, since Slack refuses an empty text and would be retried for nothing.
        counters::add(p.empty);
        continue;
      }
      delivery& j = jobs.emplace_back();
      ++queued_now;
      j.plugin = pi;
      j.alerts = views.size();
      j.body = p.cfg.type == notify_type::slack ? slack_payload(p.cfg, text) : std::move(text);
      j.first_at = j.next_at = now;
      if (p.cfg.log_level == "debug" || p.cfg.log_level == "trace") {
        log("debug", "notification " + p.cfg.name + ": sending " + std::to_string(j.alerts) + " alert(s): " + j.body);
      }
    }
    p.pending.erase(p.pending.begin(), p.pending.begin() + static_cast<std::ptrdiff_t>(std::min(at, p.pending.size())));
    p.backlog = !p.pending.empty();
    counters::set(p.queue_depth, p.pending.size());
  }

  void start(delivery& j) {
    const notification& n = plugins[j.plugin].cfg;
    ++j.attempts;
    if (n.type == notify_type::file) {
      finish(j, append_to_file(n, j.body));
      return;
    }
    j.response.clear();
    j.easy = curl_easy_init();
    curl_easy_setopt(j.easy, CURLOPT_URL, n.type == notify_type::slack ? n.webhook.c_str() : n.url.c_str());
    curl_easy_setopt(j.easy, CURLOPT_NOSIGNAL, 1L);
    // Redirects are followed, as Go's http.Client (CrowdSec's plugins) follows them: up to 10,
    // over HTTP(S) only; 307 and 308 resend the body, 301, 302 and 303 turn a POST into a GET.
    curl_easy_setopt(j.easy, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(j.easy, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(j.easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(j.easy, CURLOPT_TIMEOUT_MS, static_cast<long>(n.timeout / 1'000'000));
    curl_easy_setopt(j.easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(j.easy, CURLOPT_WRITEDATA, &j.response);
    curl_easy_setopt(j.easy, CURLOPT_PRIVATE, &j);
    curl_easy_setopt(j.easy, CURLOPT_USERAGENT, "vigil");
    curl_easy_setopt(j.easy, CURLOPT_POSTFIELDS, j.body.c_str());
    curl_easy_setopt(j.easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(j.body.size()));
    j.headers = curl_slist_append(nullptr, "Expect:"); // no 100-continue round trip
    if (n.type == notify_type::slack) {
      j.headers = curl_slist_append(j.headers, "Content-Type: application/json");
    } else {
      if (n.method != "POST") {
        curl_easy_setopt(j.easy, CURLOPT_CUSTOMREQUEST, n.method.c_str());
      }
      bool has_type = false;
      for (const auto& [k, v] : n.headers) {
        j.headers = curl_slist_append(j.headers, (k + ": " + v).c_str());
        has_type = has_type || strcasecmp(k.c_str(), "content-type") == 0;
      }
      if (!has_type) {
        // As CrowdSec's plugin (Go's client) sends it: no Content-Type unless the file sets one,
        // where curl would say application/x-www-form-urlencoded.
        j.headers = curl_slist_append(j.headers, "Content-Type:");
      }
      if (n.skip_tls_verification) {
        curl_easy_setopt(j.easy, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(j.easy, CURLOPT_SSL_VERIFYHOST, 0L);
      }
    }
    curl_easy_setopt(j.easy, CURLOPT_HTTPHEADER, j.headers);
    j.in_flight = true;
    curl_multi_add_handle(multi, j.easy);
  }

  void release(delivery& j) {
    if (j.easy != nullptr) {
      curl_multi_remove_handle(multi, j.easy);
      curl_easy_cleanup(j.easy);
      j.easy = nullptr;
    }
    curl_slist_free_all(j.headers);
    j.headers = nullptr;
    j.in_flight = false;
  }

  // A try ended: `error` empty on success. Schedules the retry or gives up.
  void finish(delivery& j, const std::string& error) {
    release(j);
    plugin_state& p = plugins[j.plugin];
    const clock::time_point now = clock::now();
    if (error.empty()) {
      counters::add(p.sent);
      done(j, true, "");
      j.plugin = plugins.size(); // marks it for removal
      return;
    }
    counters::add(p.failed_tries);
    const double base = static_cast<double>(opts.first_backoff.count()) * static_cast<double>(1ULL << std::min(j.attempts - 1, 20u));
    std::uniform_real_distribution<double> jitter(0.7, 1.3);
    const auto delay = milliseconds(static_cast<std::int64_t>(std::min(base, static_cast<double>(max_backoff.count())) * jitter(jitter_rng)));
    const bool out_of_tries = p.cfg.max_retry > 0 ? j.attempts >= p.cfg.max_retry + 1
                                                  : now + delay - j.first_at > unlimited_budget;
    if (out_of_tries) {
      counters::add(p.gave_up);
      log("error", "notification " + p.cfg.name + ": delivery failed after " + std::to_string(j.attempts) +
                       " attempt(s): " + error + " (" + std::to_string(j.alerts) + " alert(s) not notified)");
      done(j, false, error);
      j.plugin = plugins.size();
      return;
    }
    if (!j.warned) { // the first failure of a group is logged; the next ones are counted
      j.warned = true;
      log("warning", "notification " + p.cfg.name + ": attempt " + std::to_string(j.attempts) + " failed: " + error +
                         " (retrying in " + engine::format_go_duration(std::chrono::duration_cast<std::chrono::nanoseconds>(delay).count()) + ")");
    }
    j.next_at = now + delay;
  }

  void take_incoming(bool& stopping, clock::time_point& deadline) {
    std::vector<std::pair<std::size_t, std::shared_ptr<const queued>>> in;
    {
      std::lock_guard<std::mutex> l(mu);
      in.swap(incoming);
      stopping = stop_requested;
      deadline = stop_deadline;
    }
    const clock::time_point now = clock::now();
    for (auto& [pi, q] : in) {
      plugin_state& p = plugins[pi];
      if (p.pending.size() >= opts.max_pending_per_plugin) {
        drop(p, now);
        continue;
      }
      p.pending.push_back(std::move(q));
      counters::set(p.queue_depth, p.pending.size());
    }
  }

  void run() {
    bool stopping = false;
    clock::time_point deadline;
    while (true) {
      take_incoming(stopping, deadline);
      clock::time_point now = clock::now();
      for (std::size_t i = 0; i < plugins.size(); ++i) {
        plugin_state& p = plugins[i];
        bool due = false;
        if (p.cfg.group_wait > 0 && now >= p.next_wait) {
          p.next_wait = now + std::chrono::nanoseconds(p.cfg.group_wait);
          due = !p.pending.empty();
        }
        if (now >= p.next_tick) {
          p.next_tick = now + tick;
          if (p.cfg.group_threshold > 0) {
            due = due || p.pending.size() >= p.cfg.group_threshold;
          } else if (p.cfg.group_wait == 0) {
            due = due || !p.pending.empty();
          }
        }
        // The rest of a flush that met max_deliveries goes as soon as sends finish.
        due = due || (p.backlog && has_room(i));
        if ((due || stopping) && !p.pending.empty()) {
          flush(i, now);
        }
        if (p.unlogged_drops > 0 && now >= p.next_drop_log) {
          report_drops(p, now);
        }
      }
      // One send at a time per plugin, oldest first: a channel gets its messages in order, and a
      // send waiting for its retry holds the ones behind it (as CrowdSec's broker does).
      busy.assign(plugins.size(), 0);
      for (delivery& j : jobs) {
        if (j.plugin >= plugins.size() || busy[j.plugin] != 0) {
          continue;
        }
        const std::size_t p = j.plugin;
        if (!j.in_flight && j.next_at <= now) {
          start(j); // a file send finishes here, and may leave the plugin free
        }
        busy[p] = j.plugin < plugins.size() ? 1 : 0;
      }
      int running = 0;
      curl_multi_perform(multi, &running);
      int left = 0;
      while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
        if (m->msg != CURLMSG_DONE) {
          continue;
        }
        delivery* j = nullptr;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &j);
        long status = 0;
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        std::string error;
        if (m->data.result != CURLE_OK) {
          error = curl_easy_strerror(m->data.result);
        } else if (status < 200 || status > 299) {
          error = "HTTP " + std::to_string(status) + (j->response.empty() ? "" : ": " + j->response.substr(0, 200));
        }
        finish(*j, error);
      }
      jobs.remove_if([this](const delivery& j) { return j.plugin >= plugins.size(); });
      count_unfinished();
      now = clock::now();
      bool idle = jobs.empty();
      for (const auto& p : plugins) {
        idle = idle && p.pending.empty();
      }
      if (stopping && idle) {
        break;
      }
      if (stopping && now >= deadline) {
        for (delivery& j : jobs) {
          counters::add(plugins[j.plugin].abandoned);
          log("error", "notification " + plugins[j.plugin].cfg.name + ": shutting down with a delivery unfinished after " +
                           std::to_string(j.attempts) + " attempt(s): " + std::to_string(j.alerts) + " alert(s) not notified");
          release(j);
        }
        jobs.clear();
        count_unfinished();
        for (auto& p : plugins) {
          if (!p.pending.empty()) {
            // Still waiting behind max_deliveries unfinished sends.
            counters::add(p.abandoned, p.pending.size());
            log("error", "notification " + p.cfg.name + ": shutting down with " + std::to_string(p.pending.size()) +
                             " alert(s) still waiting for a send: not notified");
            p.pending.clear();
            counters::set(p.queue_depth, 0);
          }
        }
        break;
      }
      clock::time_point wake = now + tick;
      for (std::size_t i = 0; i < plugins.size(); ++i) {
        const plugin_state& p = plugins[i];
        wake = std::min(wake, p.next_tick);
        if (p.backlog && has_room(i)) {
          wake = now;
        }
        if (p.unlogged_drops > 0) {
          wake = std::min(wake, p.next_drop_log);
        }
        if (p.cfg.group_wait > 0) {
          wake = std::min(wake, p.next_wait);
        }
      }
      for (const delivery& j : jobs) {
        if (!j.in_flight) {
          wake = std::min(wake, j.next_at);
        }
      }
      if (stopping) {
        wake = std::min(wake, deadline);
      }
      const auto ms = std::chrono::duration_cast<milliseconds>(wake - now).count();
      curl_multi_poll(multi, nullptr, 0, static_cast<int>(std::clamp<std::int64_t>(ms, 0, 1000)), nullptr);
    }
    for (auto& p : plugins) {
      report_drops(p, clock::now()); // what the interval held back, before the thread ends
    }
  }
};

notifier::notifier(std::vector<notification> configs, notifier_options o) : impl_(std::make_unique<impl>()) {
  impl_->opts = std::move(o);
  auto& r = counters::registry::global();
  const clock::time_point now = clock::now();
  for (auto& c : configs) {
    plugin_state p;
    const std::string type = type_name(c.type);
    const std::string& name = c.name;
    p.alerts = r.define("vigil_notification_alerts_total", "Alerts handed to a notification plugin",
                        {{"name", name}, {"type", type}});
    p.sent = r.define("vigil_notification_sent_total", "Notification groups delivered", {{"name", name}, {"type", type}});
    p.empty = r.define("vigil_notification_empty_total", "Groups whose template rendered only white space (not sent)",
                       {{"name", name}, {"type", type}});
    p.failed_tries = r.define("vigil_notification_failures_total", "Notification failures by kind",
                              {{"name", name}, {"type", type}, {"reason", "attempt"}});
    p.gave_up = r.define("vigil_notification_failures_total", "Notification failures by kind",
                         {{"name", name}, {"type", type}, {"reason", "gave_up"}});
    p.template_errors = r.define("vigil_notification_failures_total", "Notification failures by kind",
                                 {{"name", name}, {"type", type}, {"reason", "template"}});
    p.dropped = r.define("vigil_notification_failures_total", "Notification failures by kind",
                         {{"name", name}, {"type", type}, {"reason", "dropped"}});
    p.abandoned = r.define("vigil_notification_failures_total", "Notification failures by kind",
                           {{"name", name}, {"type", type}, {"reason", "abandoned"}});
    p.queue_depth = r.define("vigil_notification_pending", "Alerts waiting for their notification group",
                             {{"name", name}, {"type", type}}, counters::kind::gauge);
    p.unfinished = r.define("vigil_notification_unfinished",
                            "Alerts in deliveries not finished: waiting their turn, being sent, or waiting for a retry",
                            {{"name", name}, {"type", type}}, counters::kind::gauge);
    p.next_tick = now + tick;
    p.next_wait = now + std::chrono::nanoseconds(c.group_wait);
    p.cfg = std::move(c);
    impl_->plugins.push_back(std::move(p));
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  impl_->multi = curl_multi_init();
  impl_->thread = std::thread([this] {
    pthread_setname_np(pthread_self(), "vigil-notify"); // per-thread CPU in top, perf, /proc
    impl_->run();
  });
}

notifier::~notifier() {
  stop(milliseconds(0));
  curl_multi_cleanup(impl_->multi);
}

void notifier::submit(const engine::alert& a, std::int64_t id, const std::vector<std::string>& names) {
  std::shared_ptr<queued> q;
  for (const auto& name : names) {
    const std::size_t pi = impl_->find(name);
    if (pi == impl_->plugins.size()) {
      continue;
    }
    if (!q) {
      q = std::make_shared<queued>();
      q->alert = a;
      q->id = id;
      q->created_at = wall_now();
      std::lock_guard<std::mutex> l(impl_->mu);
      q->uuid = new_uuid(impl_->rng);
    }
    counters::add(impl_->plugins[pi].alerts);
    std::lock_guard<std::mutex> l(impl_->mu);
    impl_->incoming.emplace_back(pi, q);
  }
}

void notifier::stop(milliseconds grace) {
  if (impl_->stopped) {
    return;
  }
  impl_->stopped = true;
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    impl_->stop_requested = true;
    impl_->stop_deadline = clock::now() + grace;
  }
  curl_multi_wakeup(impl_->multi);
  impl_->thread.join();
}

} // namespace vigil::io
