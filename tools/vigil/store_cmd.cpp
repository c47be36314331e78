// `vigil alerts list` and `vigil decisions list|add|delete`: the store of the configuration given
// (`-c vigil.yaml`; default ./vigil.db). Readable tables by default, `-o json` for scripts.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include <sys/socket.h>

#include "engine/config/config.h"
#include "engine/event/duration.h"
#include "engine/event/timestamp.h"
#include "io/api/lapi.h"
#include "io/store/store.h"
#include "tools/vigil/commands.h"

namespace vigil::cli {

void json_field(std::string& out, const char* key, const std::string& v, bool first) {
  if (!first) {
    out += ',';
  }
  engine::append_json_string(out, key);
  out += ':';
  engine::append_json_string(out, v);
}

namespace {

struct store_options {
  std::string config;
  std::string crowdsec_dir; ///< accepted for symmetry with `run`; the store is vigil's own
  std::string output = "table";
  std::string scenario, since, ip, range, duration = "4h", type = "ban", reason = "manual";
  std::int64_t id = 0;
  bool all = false;
};

engine::unix_nanos now_nanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::unique_ptr<io::store> open_store(const store_options& o) {
  std::string path = "vigil.db";
  if (!o.config.empty()) {
    auto c = config::load(o.config);
    if (auto* errors = std::get_if<std::vector<config::error>>(&c)) {
      for (const auto& e : *errors) {
        std::fprintf(stderr, "%s\n", e.to_string().c_str());
      }
      return nullptr;
    }
    path = std::get<config::settings>(c).store_path;
  }
  if (path.empty()) {
    std::fprintf(stderr, "vigil: the configuration has no store (store.path is empty)\n");
    return nullptr;
  }
  std::string error;
  auto s = io::open_sqlite_store(path, error);
  if (!s) {
    std::fprintf(stderr, "vigil: %s\n", error.c_str());
  }
  return s;
}

int alerts_list(const store_options& o) {
  auto s = open_store(o);
  if (!s) {
    return 2;
  }
  io::alert_filter f;
  f.scenario = o.scenario;
  if (!o.since.empty()) {
    const auto d = engine::parse_go_duration(o.since);
    if (!d) {
      std::fprintf(stderr, "vigil alerts list: --since takes a duration such as 1h or 30m\n");
      return 2;
    }
    f.since = now_nanos() - *d;
  }
  const auto rows = s->list_alerts(f);
  if (o.output == "json") {
    std::string out = "[";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& a = rows[i];
      out += i > 0 ? ",{" : "{";
      out += "\"id\":" + std::to_string(a.id);
      json_field(out, "created_at", engine::format_rfc3339_nano(a.created_at));
      json_field(out, "scenario", a.scenario);
      json_field(out, "message", a.message);
      json_field(out, "scope", a.scope);
      json_field(out, "value", a.value);
      json_field(out, "user", a.user);
      json_field(out, "namespace", a.namespace_);
      json_field(out, "resource_name", a.resource_name);
      json_field(out, "kind", a.kind);
      json_field(out, "cluster", a.cluster);
      out += ",\"events_count\":" + std::to_string(a.events_count);
      json_field(out, "start_at", engine::format_rfc3339_nano(a.start_at));
      json_field(out, "stop_at", engine::format_rfc3339_nano(a.stop_at));
      out += std::string(",\"remediation\":") + (a.remediation ? "true" : "false");
      out += ",\"decisions\":" + std::to_string(a.decisions);
      out += ",\"labels\":" + a.labels_json + ",\"events\":" + a.events_json + "}";
    }
    std::printf("%s]\n", out.c_str());
    return 0;
  }
  std::printf("%-6s %-16s %-48s %-9s %-20s %s\n", "ID", "VALUE", "SCENARIO", "DECISIONS", "CREATED AT", "USER");
  for (const auto& a : rows) {
    std::printf("%-6lld %-16s %-48s %-9zu %-20s %s\n", static_cast<long long>(a.id), a.value.c_str(),
                a.scenario.c_str(), a.decisions, engine::format_rfc3339_nano(a.created_at).substr(0, 19).c_str(),
                a.user.c_str());
  }
  return 0;
}

int decisions_list(const store_options& o) {
  auto s = open_store(o);
  if (!s) {
    return 2;
  }
  io::decision_filter f;
  f.value = o.ip;
  f.scenario = o.scenario;
  f.include_expired = o.all;
  f.now = now_nanos();
  const auto rows = s->list_decisions(f);
  if (o.output == "json") {
    std::string out = "[";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& d = rows[i];
      out += i > 0 ? ",{" : "{";
      out += "\"id\":" + std::to_string(d.id) + ",\"alert_id\":" + std::to_string(d.alert_id);
      json_field(out, "type", d.d.type);
      json_field(out, "scope", d.d.scope);
      json_field(out, "value", d.d.value);
      json_field(out, "origin", d.d.origin);
      json_field(out, "scenario", d.d.scenario);
      json_field(out, "duration", engine::format_go_duration(d.d.duration));
      json_field(out, "until", engine::format_rfc3339_nano(d.d.until));
      out += '}';
    }
    std::printf("%s]\n", out.c_str());
    return 0;
  }
  std::printf("%-6s %-8s %-6s %-20s %-48s %s\n", "ID", "TYPE", "SCOPE", "VALUE", "REASON", "EXPIRES");
  for (const auto& d : rows) {
    std::printf("%-6lld %-8s %-6s %-20s %-48s %s\n", static_cast<long long>(d.id), d.d.type.c_str(),
                d.d.scope.c_str(), d.d.value.c_str(), d.d.scenario.c_str(),
                engine::format_rfc3339_nano(d.d.until).substr(0, 19).c_str());
  }
  return 0;
}

// An address or range as Go's net package prints it: lower case, the longest run of zeros
// compressed, an IPv4-mapped IPv6 address as IPv4. Decisions are matched by their text, so
// "2001:DB8::2" and "2001:db8::2" must be one value (as they are one address to a bouncer).
std::string canonical_ip(const std::string& text) {
  auto p = engine::parse_ip_or_prefix(text);
  if (!p) {
    return text;
  }
  static constexpr unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  const bool v4_mapped = p->family == AF_INET6 && std::memcmp(p->addr, mapped, sizeof mapped) == 0 &&
                         (p->bits == 128 || p->bits >= 96);
  if (v4_mapped) {
    engine::ip_prefix v4;
    v4.family = AF_INET;
    std::memcpy(v4.addr, p->addr + 12, 4);
    v4.bits = p->bits - 96;
    p = v4;
  }
  const bool whole = p->bits == (p->family == AF_INET ? 32 : 128) && text.find('/') == std::string::npos;
  return engine::format_address(*p) + (whole ? "" : "/" + std::to_string(p->bits));
}

int decisions_add(const store_options& o) {
  if (o.ip.empty() == o.range.empty()) {
    std::fprintf(stderr, "vigil decisions add: give exactly one of --ip or --range\n");
    return 2;
  }
  const auto d = engine::parse_go_duration(o.duration);
  if (!d || *d <= 0) {
    std::fprintf(stderr, "vigil decisions add: invalid --duration '%s'\n", o.duration.c_str());
    return 2;
  }
  if (!o.ip.empty() && !engine::is_ip(o.ip)) {
    std::fprintf(stderr, "vigil decisions add: '%s' is not an IP address\n", o.ip.c_str());
    return 2;
  }
  if (!o.range.empty() && !engine::parse_prefix(o.range)) {
    std::fprintf(stderr, "vigil decisions add: '%s' is not a range (address/bits, e.g. 10.0.0.0/8 or 2001:db8::/32)\n",
                 o.range.c_str());
    return 2;
  }
  auto s = open_store(o);
  if (!s) {
    return 2;
  }
  engine::decision dec;
  dec.type = o.type;
  dec.scope = o.ip.empty() ? "Range" : "Ip";
  dec.value = canonical_ip(o.ip.empty() ? o.range : o.ip);
  dec.origin = "cscli";
  dec.scenario = o.reason;
  dec.duration = *d;
  const engine::unix_nanos now = now_nanos();
  dec.until = engine::expiry(now, *d);
  const std::int64_t id = s->add_decision(dec, now);
  if (id == 0) {
    std::fprintf(stderr, "vigil decisions add: %s\n", s->last_error().c_str());
    return 1;
  }
  std::printf("decision %lld: %s %s on %s %s until %s\n", static_cast<long long>(id), o.duration.c_str(),
              dec.type.c_str(), dec.scope.c_str(), dec.value.c_str(), engine::format_rfc3339_nano(dec.until).c_str());
  return 0;
}

int decisions_delete(const store_options& o) {
  if (o.ip.empty() && o.id == 0) {
    std::fprintf(stderr, "vigil decisions delete: give --ip or --id\n");
    return 2;
  }
  auto s = open_store(o);
  if (!s) {
    return 2;
  }
  const std::size_t n = s->delete_decisions(o.ip.empty() ? o.ip : canonical_ip(o.ip), o.id, now_nanos());
  if (n == io::store::failed) {
    std::fprintf(stderr, "vigil decisions delete: store: %s (nothing deleted)\n", s->last_error().c_str());
    return 2;
  }
  std::printf("%zu decision(s) deleted\n", n);
  return 0;
}

int bouncers_add(const store_options& o, const std::string& name) {
  auto s = open_store(o);
  if (!s) {
    return 2;
  }
  const std::string key = io::new_api_key();
  std::string error;
  if (key.empty() || !s->add_bouncer(name, io::hash_api_key(key), now_nanos(), error)) {
    std::fprintf(stderr, "vigil bouncers add: %s\n", key.empty() ? "no randomness available" : error.c_str());
    return 2;
  }
  std::printf("API key for '%s':\n\n   %s\n\nKeep it: vigil stores only its hash and cannot show it again.\n",
              name.c_str(), key.c_str());
  return 0;
}

int bouncers_list(const store_options& o) {
  auto s = open_store(o);
  if (!s) {
    return 2;
  }
  const auto rows = s->list_bouncers();
  if (o.output == "json") {
    std::string out = "[";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      out += i > 0 ? ",{" : "{";
      json_field(out, "name", rows[i].name, true);
      json_field(out, "created_at", engine::format_rfc3339_nano(rows[i].created_at));
      json_field(out, "last_pull", rows[i].last_pull == 0 ? "" : engine::format_rfc3339_nano(rows[i].last_pull));
      out += '}';
    }
    std::printf("%s]\n", out.c_str());
    return 0;
  }
  std::printf("%-24s %-22s %s\n", "NAME", "CREATED", "LAST PULL");
  for (const auto& b : rows) {
    std::printf("%-24s %-22s %s\n", b.name.c_str(), engine::format_rfc3339_nano(b.created_at).substr(0, 19).c_str(),
                b.last_pull == 0 ? "never" : engine::format_rfc3339_nano(b.last_pull).substr(0, 19).c_str());
  }
  return 0;
}

} // namespace

command add_store_commands(CLI::App& app) {
  auto o = std::make_shared<store_options>();
  auto common = [o](CLI::App* sub) {
    sub->add_option("-c,--config", o->config, "vigil.yaml whose store to read (default: ./vigil.db)");
    sub->add_option("--crowdsec-dir", o->crowdsec_dir,
                    "The CrowdSec directory `run` was given (vigil keeps its own store: ./vigil.db or -c's)");
  };
  auto output = [o](CLI::App* sub) {
    sub->add_option("-o,--output", o->output, "table or json")->check(CLI::IsMember({"table", "json"}));
  };
  CLI::App* alerts = app.add_subcommand("alerts", "Alerts in the store");
  alerts->require_subcommand(1);
  CLI::App* alist = alerts->add_subcommand("list", "List stored alerts, newest first");
  common(alist);
  output(alist);
  alist->add_option("--scenario", o->scenario, "Only this scenario");
  alist->add_option("--since", o->since, "Only alerts stored within this duration (1h, 30m)");

  CLI::App* decisions = app.add_subcommand("decisions", "Decisions in the store (what bouncers enforce)");
  decisions->require_subcommand(1);
  CLI::App* dlist = decisions->add_subcommand("list", "List active decisions");
  common(dlist);
  output(dlist);
  dlist->add_option("--ip", o->ip, "Only this value");
  dlist->add_option("--scenario", o->scenario, "Only this scenario (reason)");
  dlist->add_flag("--all", o->all, "Include expired and deleted decisions");
  CLI::App* dadd = decisions->add_subcommand("add", "Add a decision by hand");
  common(dadd);
  dadd->add_option("--ip", o->ip, "IP address");
  dadd->add_option("--range", o->range, "IP range (CIDR)");
  dadd->add_option("--duration", o->duration, "How long (Go duration)")->capture_default_str();
  dadd->add_option("--type", o->type, "Decision type")->capture_default_str();
  dadd->add_option("--reason", o->reason, "Reason")->capture_default_str();
  CLI::App* ddel = decisions->add_subcommand("delete", "Delete active decisions");
  common(ddel);
  ddel->add_option("--ip", o->ip, "All active decisions on this value");
  ddel->add_option("--id", o->id, "The decision with this id");
  auto bouncer_name = std::make_shared<std::string>();
  CLI::App* bouncers = app.add_subcommand("bouncers", "API keys of the bouncers that read decisions");
  bouncers->require_subcommand(1);
  CLI::App* badd = bouncers->add_subcommand("add", "Register a bouncer and print its API key");
  common(badd);
  badd->add_option("name", *bouncer_name, "Bouncer name")->required();
  CLI::App* blist = bouncers->add_subcommand("list", "List bouncers");
  common(blist);
  output(blist);
  CLI::App* bdel = bouncers->add_subcommand("delete", "Remove a bouncer (its key stops working)");
  common(bdel);
  bdel->add_option("name", *bouncer_name, "Bouncer name")->required();
  return [o, alist, dlist, dadd, ddel, badd, blist, bdel, bouncer_name] {
    if (badd->parsed()) {
      return bouncers_add(*o, *bouncer_name);
    }
    if (blist->parsed()) {
      return bouncers_list(*o);
    }
    if (bdel->parsed()) {
      auto s = open_store(*o);
      if (!s) {
        return 2;
      }
      const int deleted = s->delete_bouncer(*bouncer_name);
      if (deleted < 0) {
        std::fprintf(stderr, "vigil bouncers delete: store: %s (not deleted)\n", s->last_error().c_str());
        return 2;
      }
      if (deleted == 0) {
        std::fprintf(stderr, "vigil bouncers delete: no bouncer '%s'\n", bouncer_name->c_str());
        return 1;
      }
      std::printf("bouncer '%s' deleted\n", bouncer_name->c_str());
      return 0;
    }
    if (alist->parsed()) {
      return alerts_list(*o);
    }
    if (dlist->parsed()) {
      return decisions_list(*o);
    }
    if (dadd->parsed()) {
      return decisions_add(*o);
    }
    return decisions_delete(*o);
  };
}

} // namespace vigil::cli
