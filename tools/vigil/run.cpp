// `vigil run`: the daemon. The audit webhook (HTTP on libuv) feeds the worker/shard pipeline;
// alerts are logged on stderr in CrowdSec's format, or written to stdout as JSON lines with
// --output json. SIGTERM/SIGINT: stop accepting (503), finish every admitted event, emit pending
// alerts, exit 0.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include <uv.h>

#include "engine/config/config.h"
#include "engine/pipeline/pipeline.h"
#include "io/http/server.h"
#include "io/webhook/webhook.h"
#include "rules/matcher/ruleset.h"
#include "tools/vigil/commands.h"

namespace vigil::cli {

namespace {

struct run_options {
  std::string config;
  std::string listen = "127.0.0.1:9876";
  std::string path = "/audit/webhook/event";
  std::vector<std::string> tokens;
  std::vector<std::string> rules;
  std::string cluster;
  std::string output = "text";
  unsigned workers = 0;
  std::size_t max_body_size = 32u << 20;
  std::size_t max_in_flight = 0;
  std::string tls_cert, tls_key, tls_client_ca;
};

std::string now_text() {
  char buf[40];
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void log_line(const char* level, const std::string& msg) {
  std::fprintf(stderr, "time=\"%s\" level=%s msg=\"%s\"\n", now_text().c_str(), level, msg.c_str());
}

// On the emitter thread: the only writer of alerts.
class alert_log final : public pipeline::output_handler {
 public:
  explicit alert_log(bool json) : json_(json) {}
  void on_alert(const engine::alert& a) override {
    if (json_) {
      const std::string line = engine::to_json(a);
      std::fwrite(line.data(), 1, line.size(), stdout);
      std::fputc('\n', stdout);
      std::fflush(stdout);
    } else {
      log_line("info", a.message);
    }
  }
  void on_error(const std::string& message) override { log_line("warning", message); }

 private:
  bool json_;
};

bool split_host_port(const std::string& s, std::string& host, std::uint16_t& port) {
  const std::size_t colon = s.rfind(':');
  if (colon == std::string::npos) {
    return false;
  }
  host = s.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  try {
    const unsigned long p = std::stoul(s.substr(colon + 1));
    if (p > 65535) {
      return false;
    }
    port = static_cast<std::uint16_t>(p);
  } catch (...) {
    return false;
  }
  return !host.empty();
}

struct daemon_state {
  uv_loop_t loop{};
  uv_signal_t sigint{}, sigterm{};
  http::server* server = nullptr;
  bool stopping = false;
};

void on_signal(uv_signal_t* h, int signum) {
  auto* d = static_cast<daemon_state*>(h->data);
  if (d->stopping) {
    return;
  }
  d->stopping = true;
  log_line("info", std::string("received ") + (signum == SIGTERM ? "SIGTERM" : "SIGINT") +
                       ": no new batches (503), finishing what was admitted");
  d->server->drain([d] {
    uv_close(reinterpret_cast<uv_handle_t*>(&d->sigint), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&d->sigterm), nullptr);
  });
}

int run_daemon(const run_options& o) {
  config::settings cfg;
  if (!o.config.empty()) {
    auto c = config::load(o.config);
    if (auto* errors = std::get_if<std::vector<config::error>>(&c)) {
      for (const auto& e : *errors) {
        std::fprintf(stderr, "%s\n", e.to_string().c_str());
      }
      return 2;
    }
    cfg = std::get<config::settings>(c);
  }
  if (o.output != "text" && o.output != "json") {
    std::fprintf(stderr, "vigil run: --output must be text or json\n");
    return 2;
  }
  std::string host;
  std::uint16_t port = 0;
  if (!split_host_port(o.listen, host, port)) {
    std::fprintf(stderr, "vigil run: --listen must be ADDRESS:PORT, got '%s'\n", o.listen.c_str());
    return 2;
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

  alert_log out(o.output == "json");
  pipeline::options po;
  po.workers = o.workers != 0 ? o.workers : cfg.workers;
  po.max_in_flight = o.max_in_flight != 0 ? o.max_in_flight : cfg.max_in_flight;
  pipeline::pipeline pl(rules, po, out);

  io::webhook_options wo;
  wo.path = o.path.empty() || o.path[0] != '/' ? "/" + o.path : o.path;
  wo.tokens = o.tokens;
  wo.require_client_cert = !o.tls_client_ca.empty();
  wo.cluster = o.cluster.empty() ? cfg.cluster : o.cluster;
  io::webhook hook(pl, wo);

  daemon_state d;
  uv_loop_init(&d.loop);
  http::server_options so;
  so.host = host;
  so.port = port;
  so.max_body_size = o.max_body_size;
  so.name = "webhook";
  if (!o.tls_cert.empty() || !o.tls_key.empty() || !o.tls_client_ca.empty()) {
    if (o.tls_cert.empty() || o.tls_key.empty()) {
      std::fprintf(stderr, "vigil run: TLS needs both --tls-cert and --tls-key\n");
      return 2;
    }
    so.tls = http::tls_options{o.tls_cert, o.tls_key, o.tls_client_ca};
  }
  http::server srv(
      &d.loop, so, [&hook](const http::request& r, http::response& res) { return hook.precheck(r, res); },
      [&hook](http::request& r, http::response& res) { hook.handle(r, res); });
  if (const std::string err = srv.listen(); !err.empty()) {
    std::fprintf(stderr, "vigil run: %s\n", err.c_str());
    uv_loop_close(&d.loop);
    return 2;
  }
  d.server = &srv;
  uv_signal_init(&d.loop, &d.sigint);
  uv_signal_init(&d.loop, &d.sigterm);
  d.sigint.data = d.sigterm.data = &d;
  uv_signal_start(&d.sigint, on_signal, SIGINT);
  uv_signal_start(&d.sigterm, on_signal, SIGTERM);
  log_line("info", std::string("vigil listening on ") + (so.tls ? "https://" : "http://") + (host.find(':') != std::string::npos ? "[" + host + "]" : host) +
                       ":" + std::to_string(srv.bound_port()) + wo.path + " (" + std::to_string(rules->scenarios.size()) +
                       " rules, " + std::to_string(pl.workers()) + " workers" +
                       (wo.require_client_cert ? ", client certificates" : "") +
                       (wo.tokens.empty() ? (wo.require_client_cert ? "" : ", no authentication") : ", bearer tokens") +
                       ")");
  uv_run(&d.loop, UV_RUN_DEFAULT);
  const pipeline::totals t = pl.finish();
  uv_loop_close(&d.loop);
  log_line("info", "stopped: " + std::to_string(t.decoded) + " events processed, " + std::to_string(t.alerts) +
                       " alerts");
  return 0;
}

} // namespace

command add_run(CLI::App& app) {
  auto o = std::make_shared<run_options>();
  CLI::App* sub = app.add_subcommand("run", "Run the daemon: the audit webhook, the rules, the alerts");
  sub->add_option("-c,--config", o->config, "vigil.yaml (see docs/configuration.md); flags override it");
  sub->add_option("--listen", o->listen, "Webhook address:port (port 0: chosen by the OS)")->capture_default_str();
  sub->add_option("--webhook-path", o->path, "Webhook URL path (also serves PATH/<cluster>)")->capture_default_str();
  sub->add_option("--token", o->tokens, "Accepted bearer token (repeatable); none: no authentication");
  sub->add_option("--rules", o->rules, "Scenario file or directory (repeatable); default: the shipped rules");
  sub->add_option("--cluster", o->cluster, "Cluster name stamped on the events");
  sub->add_option("-o,--output", o->output, "Alerts: text (log lines on stderr) or json (stdout)")
      ->capture_default_str();
  sub->add_option("--workers", o->workers, "Worker threads (default: one per core)");
  sub->add_option("--max-body-size", o->max_body_size, "Largest request body in bytes")->capture_default_str();
  sub->add_option("--max-in-flight", o->max_in_flight, "Events admitted but not processed before 429");
  sub->add_option("--tls-cert", o->tls_cert, "PEM certificate chain: serve HTTPS (TLS 1.2/1.3)");
  sub->add_option("--tls-key", o->tls_key, "PEM private key of --tls-cert");
  sub->add_option("--tls-client-ca", o->tls_client_ca, "PEM CA bundle: require client certificates it signed (401 otherwise)");
  return [o] { return run_daemon(*o); };
}

} // namespace vigil::cli
