#include "engine/config/config.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <unistd.h>

namespace vigil::config {
namespace {

std::vector<error> errors_of(const std::string& text) {
  auto r = load_text(text, "vigil.yaml");
  if (auto* e = std::get_if<std::vector<error>>(&r)) {
    return *e;
  }
  return {};
}

TEST(config, defaults_from_an_empty_file) {
  auto r = load_text("", "vigil.yaml");
  ASSERT_TRUE(std::holds_alternative<settings>(r));
  const settings& s = std::get<settings>(r);
  EXPECT_EQ(s.workers, 0u);
  EXPECT_EQ(s.max_in_flight, 32768u);
  EXPECT_FALSE(s.max_in_flight_set); // replay then uses its own default
  EXPECT_TRUE(s.rules.empty());
  EXPECT_EQ(s.cluster, "");
}

TEST(config, values_and_relative_rule_paths) {
  auto r = load_text("workers: 2\nmax_in_flight: 1000\ncluster: prod-eu\nrules: [crowdsecurity]\n", "rules/vigil.yaml");
  ASSERT_TRUE(std::holds_alternative<settings>(r)) << std::get<std::vector<error>>(r)[0].to_string();
  const settings& s = std::get<settings>(r);
  EXPECT_EQ(s.workers, 2u);
  EXPECT_EQ(s.max_in_flight, 1000u);
  EXPECT_TRUE(s.max_in_flight_set);
  EXPECT_EQ(s.cluster, "prod-eu");
  ASSERT_EQ(s.rules.size(), 1u);
  EXPECT_EQ(s.rules[0], "rules/crowdsecurity");
}

TEST(config, store_path_relative_to_the_file_and_empty_disables_it) {
  auto r = load_text("store:\n  path: alerts.db\n", "etc/vigil.yaml");
  ASSERT_TRUE(std::holds_alternative<settings>(r));
  EXPECT_EQ(std::get<settings>(r).store_path, "etc/alerts.db");
  for (const char* off : {"store:\n  path: \"\"\n", "store:\n  path:\n"}) {
    auto r2 = load_text(off, "etc/vigil.yaml");
    ASSERT_TRUE(std::holds_alternative<settings>(r2)) << off;
    EXPECT_EQ(std::get<settings>(r2).store_path, "") << off; // not "etc/": no store at all
  }
}

TEST(config, every_error_is_reported_with_its_position) {
  const auto errs = errors_of("workers: many\nmax_in_flight: 0\ncolour: red\nrules: [does/not/exist]\ncluster: [a]\n");
  ASSERT_EQ(errs.size(), 5u);
  EXPECT_EQ(errs[0].line, 1u);
  EXPECT_NE(errs[0].message.find("workers: expected an integer"), std::string::npos);
  EXPECT_EQ(errs[1].line, 2u);
  EXPECT_NE(errs[1].message.find("between 1 and"), std::string::npos);
  EXPECT_EQ(errs[2].line, 3u);
  EXPECT_NE(errs[2].message.find("unknown key 'colour'"), std::string::npos);
  EXPECT_EQ(errs[3].line, 4u);
  EXPECT_NE(errs[3].message.find("does not exist"), std::string::npos);
  EXPECT_EQ(errs[4].line, 5u);
  EXPECT_EQ(errs[0].to_string().rfind("vigil.yaml:1:", 0), 0u);
}

// A tail position directory that is not there would lose every position silently; a path that
// is a directory would be followed forever without a line.
TEST(config, file_sources_need_a_position_directory_and_file_paths) {
  const auto errs = errors_of("sources:\n  - type: file\n    paths: [/tmp]\n    position_dir: /does/not/exist\n");
  ASSERT_EQ(errs.size(), 2u);
  EXPECT_EQ(errs[0].line, 3u);
  EXPECT_EQ(errs[0].message, "paths: /tmp is a directory, not a file");
  EXPECT_EQ(errs[1].line, 4u);
  EXPECT_EQ(errs[1].message, "position_dir: /does/not/exist is not a directory (positions could not be saved)");
  EXPECT_TRUE(errors_of("sources:\n  - type: file\n    paths: [/no/such.log]\n    position_dir: /tmp\n").empty());
}

// The local API asked for without a store would be off without a word; half a TLS pair is refused
// at load, as the webhook's is, not when `vigil run` starts.
TEST(config, api_needs_a_store_and_a_whole_tls_pair) {
  auto errs = errors_of("store:\n  path: \"\"\napi:\n  listen: 127.0.0.1:8081\n");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].line, 4u);
  EXPECT_EQ(errs[0].message.rfind("api.listen: the local API serves the store's decisions", 0), 0u) << errs[0].message;
  EXPECT_TRUE(errors_of("store:\n  path: \"\"\napi:\n  listen: \"\"\n").empty());
  errs = errors_of("api:\n  tls:\n    cert: /etc/hostname\n");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].line, 3u);
  EXPECT_EQ(errs[0].message, "api.tls: cert and key are both required");
}

// A missing acquisition file is pointed at in vigil.yaml, as a missing rules path is; a timeout
// of 0 is told what is wanted.
TEST(config, acquis_and_timeouts_errors_say_where_and_what) {
  auto errs = errors_of("acquis: /no/such/acquis.yaml\nsources:\n  - type: webhook\n    timeouts: {header: 0s}\n");
  ASSERT_EQ(errs.size(), 2u);
  EXPECT_EQ(errs[0].to_string(), "vigil.yaml:1:9: acquis: /no/such/acquis.yaml does not exist");
  EXPECT_EQ(errs[1].line, 4u);
  EXPECT_EQ(errs[1].message, "timeouts.header: expected a duration from 1ms to 24h, such as 10s or 500ms");
  errs = errors_of("acquis: [/tmp]\n");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].message.rfind("acquis: /tmp is a directory", 0), 0u) << errs[0].message;
}

TEST(config, invalid_yaml_and_missing_file) {
  const auto errs = errors_of("workers: [1\n");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs[0].message.find("invalid YAML"), std::string::npos);
  auto r = load("/nonexistent/vigil.yaml");
  ASSERT_TRUE(std::holds_alternative<std::vector<error>>(r));
  EXPECT_NE(std::get<std::vector<error>>(r)[0].message.find("cannot open"), std::string::npos);
}

} // namespace
} // namespace vigil::config

namespace vigil::config {
namespace {

std::string write_file(const std::string& name, const std::string& text) {
  const std::string dir = ::testing::TempDir() + "/vigil_config_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(config, webhook_and_file_sources) {
  const std::string log = write_file("audit.log", "{}\n");
  auto r = load_text(R"(cluster: fleet
sources:
  - type: webhook
    listen: 0.0.0.0:8443
    path: audit
    cluster: prod-eu
    tokens: [t1, t2]
    max_body_size: 1048576
    timeouts: {header: 5s, body: 20s, idle: 2m}
  - type: file
    paths: [)" + log + R"(]
    mode: cat
)",
                     "vigil.yaml");
  ASSERT_TRUE(std::holds_alternative<settings>(r)) << std::get<std::vector<error>>(r)[0].to_string();
  const settings& s = std::get<settings>(r);
  ASSERT_EQ(s.webhooks.size(), 1u);
  const webhook_source& w = s.webhooks[0];
  EXPECT_EQ(w.host, "0.0.0.0");
  EXPECT_EQ(w.port, 8443);
  EXPECT_EQ(w.path, "/audit");
  EXPECT_EQ(w.cluster, "prod-eu");
  EXPECT_EQ(w.tokens, (std::vector<std::string>{"t1", "t2"}));
  EXPECT_EQ(w.max_body_size, 1048576u);
  EXPECT_EQ(w.header_timeout_ms, 5000u);
  EXPECT_EQ(w.idle_timeout_ms, 120000u);
  ASSERT_EQ(s.files.size(), 1u);
  EXPECT_EQ(s.files[0].paths[0], log);
}

TEST(config, source_errors_are_located) {
  const auto errs = errors_of(R"(sources:
  - type: webhook
    listen: nowhere
    colour: red
    timeouts: {header: soon}
  - type: file
    mode: follow
  - type: kafka
)");
  ASSERT_GE(errs.size(), 5u);
  EXPECT_EQ(errs[0].line, 3u);
  EXPECT_NE(errs[0].message.find("ADDRESS:PORT"), std::string::npos);
  EXPECT_EQ(errs[1].line, 4u);
  EXPECT_EQ(errs[2].line, 5u);
  bool tail = false, kafka = false;
  for (const auto& e : errs) {
    tail = tail || e.message.find("'follow' is not a mode") != std::string::npos;
    kafka = kafka || e.message.find("unknown type 'kafka'") != std::string::npos;
  }
  EXPECT_TRUE(tail);
  EXPECT_TRUE(kafka);
  // An empty path would serve "/" and take every path for a cluster's: refused.
  const auto empty_path = errors_of("sources:\n  - type: webhook\n    path: \"\"\n");
  ASSERT_EQ(empty_path.size(), 1u);
  EXPECT_EQ(empty_path[0].line, 3u);
  EXPECT_NE(empty_path[0].message.find("path: cannot be empty"), std::string::npos) << empty_path[0].to_string();
}

// The tutorial's acquisition entries, as written (webhook with the old `k8s_audit` spelling and a
// file acquisition), plus a datasource vigil does not handle.
TEST(config, crowdsec_acquis_file) {
  const std::string acquis = write_file("acquis.yaml", R"(filenames:
  - /var/log/k8s/audit.log
labels:
 type: k8s-audit
---
source: k8s_audit
listen_addr: 0.0.0.0
listen_port: 4242
webhook_path: /audit/webhook/event
labels:
 type: k8s-audit
---
source: journalctl
journalctl_filter:
  - "_SYSTEMD_UNIT=ssh.service"
labels:
  type: syslog
)");
  settings s;
  std::vector<error> errs;
  load_acquis(acquis, s, errs);
  ASSERT_TRUE(errs.empty()) << errs[0].to_string();
  ASSERT_EQ(s.webhooks.size(), 1u);
  EXPECT_EQ(s.webhooks[0].host, "0.0.0.0");
  EXPECT_EQ(s.webhooks[0].port, 4242);
  EXPECT_EQ(s.webhooks[0].path, "/audit/webhook/event");
  ASSERT_EQ(s.files.size(), 1u); // CrowdSec's default file mode is tail
  EXPECT_TRUE(s.files[0].tail);
  EXPECT_EQ(s.files[0].paths, (std::vector<std::string>{"/var/log/k8s/audit.log"}));
  ASSERT_EQ(s.warnings.size(), 2u);
  EXPECT_NE(s.warnings[0].find("k8s_audit is the old name"), std::string::npos) << s.warnings[0];
  EXPECT_NE(s.warnings[1].find("'journalctl' skipped"), std::string::npos) << s.warnings[1];

  const std::string bad = write_file("bad-acquis.yaml", "source: k8s-audit\nlisten_port: 4242\nfoobar: 1\n");
  settings s2;
  std::vector<error> errs2;
  load_acquis(bad, s2, errs2);
  ASSERT_GE(errs2.size(), 4u);
  bool unknown = false, addr = false, path = false, labels = false;
  for (const auto& e : errs2) {
    unknown = unknown || e.message == "unknown field \"foobar\"";
    addr = addr || e.message == "listen_addr cannot be empty";
    path = path || e.message == "webhook_path cannot be empty";
    labels = labels || e.message == "missing labels";
  }
  EXPECT_TRUE(unknown && addr && path && labels);
}

TEST(config, acquis_from_vigil_yaml) {
  write_file("acq2.yaml", "source: k8s-audit\nlisten_addr: 127.0.0.1\nlisten_port: 0\nwebhook_path: hook\nlabels:\n  type: k8s-audit\n");
  const std::string cfg = write_file("with-acquis.yaml", "acquis: acq2.yaml\n");
  auto r = load(cfg);
  ASSERT_TRUE(std::holds_alternative<settings>(r)) << std::get<std::vector<error>>(r)[0].to_string();
  ASSERT_EQ(std::get<settings>(r).webhooks.size(), 1u);
  EXPECT_EQ(std::get<settings>(r).webhooks[0].path, "/hook");
}

TEST(config, a_repeated_key_is_an_error_at_its_second_place) {
  // yaml-cpp would read the first value where a reader of the file sees the last.
  const auto errs = errors_of("workers: 2\nsources:\n  - type: webhook\n    listen: 127.0.0.1:1\n    listen: 127.0.0.1:2\nworkers: 3\n");
  ASSERT_EQ(errs.size(), 2u);
  EXPECT_EQ(errs[0].to_string(), "vigil.yaml:5:5: duplicate key 'listen': a key may appear once in a mapping");
  EXPECT_EQ(errs[1].to_string(), "vigil.yaml:6:1: duplicate key 'workers': a key may appear once in a mapping");
  // A list as a key (the loaders read keys as strings: it used to abort the process), and an
  // alias inside the node it names (an infinite document), are errors too. Anchors, aliases and
  // merge keys otherwise load.
  const auto list_key = errors_of("workers: 2\n[a, b]: 1\n");
  ASSERT_EQ(list_key.size(), 1u);
  EXPECT_EQ(list_key[0].to_string(), "vigil.yaml:2:1: a mapping key must be a plain value, not a list or a mapping");
  const auto infinite = errors_of("cluster: &a [*a]\n");
  ASSERT_EQ(infinite.size(), 1u);
  EXPECT_NE(infinite[0].to_string().find("an alias refers to a node that contains it"), std::string::npos);
  EXPECT_TRUE(errors_of("cluster: &c prod\nsources:\n  - {type: webhook, listen: \"127.0.0.1:1\", cluster: *c}\n").empty());
}

} // namespace
} // namespace vigil::config
