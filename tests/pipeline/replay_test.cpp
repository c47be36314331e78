// End to end through the pipeline (decode -> meta -> match -> buckets -> alerts): the hub's
// fixtures, the Falco traces against expectations derived from the scenario semantics, CrowdSec's
// documented bucket cases, and identical results at 1 and 2 workers.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <iterator>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include "engine/counters/counters.h"
#include "engine/event/timestamp.h"
#include "engine/pipeline/pipeline.h"
#include "engine/util/warn.h"
#include "io/file/replay_source.h"
#include "rules/matcher/ruleset.h"
#include "tests/support/count_allocations.h"
#include "tests/support/files.h"

namespace vigil {
namespace {

namespace fs = std::filesystem;

const fs::path realworld = "../shared/data/realworld";
const std::string hub_rules = "../shared/data/crowdsec-hub/scenarios/crowdsecurity";

class collector final : public pipeline::output_handler {
 public:
  void on_alert(const engine::alert& a) override { alerts.push_back(a); }
  void on_error(const std::string& m) override { errors.push_back(m); }
  std::vector<engine::alert> alerts;
  std::vector<std::string> errors;
};

std::shared_ptr<const rules::ruleset> load(const std::vector<std::string>& paths) {
  auto r = rules::load_ruleset(paths);
  if (auto* e = std::get_if<std::vector<rules::load_error>>(&r)) {
    ADD_FAILURE() << (*e)[0].to_string();
    return nullptr;
  }
  return std::get<std::shared_ptr<const rules::ruleset>>(r);
}

struct run_result {
  std::vector<engine::alert> alerts;
  std::vector<std::string> errors;
  pipeline::totals totals;
};

run_result run_text(const std::string& text, const std::vector<std::string>& rule_paths = {}, unsigned workers = 1,
                    const std::string& origin = "test.log", const std::string& source_type = "file") {
  collector out;
  auto rs = load(rule_paths);
  pipeline::options o;
  o.workers = workers;
  o.profiles = std::make_shared<const rules::profile_set>(rules::profile_set::defaults());
  pipeline::pipeline pl(rs, o, out);
  io::replay_buffer(text, io::replay_source{"", origin, "", source_type}, pl);
  run_result r;
  r.totals = pl.finish();
  r.alerts = std::move(out.alerts);
  r.errors = std::move(out.errors);
  return r;
}

using test::slurp;

std::string meta(const engine::event_payload& p, const char* key) { return std::string(p.get(key)); }

// .tests/k8s-audit-pod-exec-file and k8s-audit-priv-pod-file, assertions as in scenario.assert.
TEST(replay, hub_fixtures_give_the_asserted_alerts) {
  if (!fs::exists(realworld)) {
    GTEST_SKIP();
  }
  std::vector<std::vector<std::string>> rule_sets = {{}};
  if (fs::exists(hub_rules)) {
    rule_sets.push_back({hub_rules});
  }
  for (const auto& rules : rule_sets) {
    const run_result exec = run_text(slurp(realworld / "crowdsec-hub/k8s-audit-pod-exec-file.log"), rules, 1,
                                     "k8s-audit-pod-exec-file.log");
    ASSERT_EQ(exec.alerts.size(), 1u);
    const engine::alert& a = exec.alerts[0];
    EXPECT_EQ(a.scenario, "crowdsecurity/k8s-audit-pod-exec");
    EXPECT_EQ(a.scope, "Ip");
    EXPECT_EQ(a.value, "192.168.49.1");
    EXPECT_FALSE(a.remediation);
    EXPECT_TRUE(a.decisions.empty()); // notification-only, as the collection intends
    EXPECT_EQ(a.events_count, 1u);
    ASSERT_EQ(a.events.size(), 1u);
    const auto& e = a.events[0];
    EXPECT_EQ(meta(e, "datasource_path"), "k8s-audit-pod-exec-file.log");
    EXPECT_EQ(meta(e, "datasource_type"), "file");
    EXPECT_EQ(meta(e, "log_type"), "k8s-audit");
    EXPECT_EQ(meta(e, "namespace"), "foo");
    EXPECT_EQ(meta(e, "resource_name"), "test-pod-1");
    EXPECT_EQ(meta(e, "source_ip"), "192.168.49.1");
    EXPECT_EQ(meta(e, "timestamp"), "2023-05-17T15:08:22.76396Z");
    EXPECT_EQ(meta(e, "user"), "minikube-user");
    EXPECT_EQ(a.message, "Ip 192.168.49.1 performed 'crowdsecurity/k8s-audit-pod-exec' (1 events over 0s) at "
                         "2023-05-17 15:08:22.76396 +0000 UTC");

    const run_result priv = run_text(slurp(realworld / "crowdsec-hub/k8s-audit-priv-pod-file.log"), rules, 1,
                                     "k8s-audit-priv-pod-file.log");
    ASSERT_EQ(priv.alerts.size(), 1u);
    const engine::alert& p = priv.alerts[0];
    EXPECT_EQ(p.scenario, "crowdsecurity/k8s-audit-privileged-pod-creation");
    EXPECT_FALSE(p.remediation);
    EXPECT_EQ(p.events_count, 1u);
    EXPECT_EQ(meta(p.events[0], "kind"), "Pod");
    EXPECT_EQ(meta(p.events[0], "timestamp"), "2023-05-17T13:59:57.756152Z");
    EXPECT_EQ(meta(p.events[0], "datasource_path"), "k8s-audit-priv-pod-file.log");
    EXPECT_EQ(meta(p.events[0], "namespace"), "foo");
  }
}

// What each Falco trace must fire, read off the scenario definitions (not off vigil's output):
// anonymous user -> anonymous-access; pods/exec -> pod-exec; pod create with hostNetwork ->
// host-network; any container privileged -> privileged; hostPath /etc -> host-path-volume.
// attach is not exec; no trace has 401/403 or a forbid decision.
const std::map<std::string, std::set<std::string>> falco_expected = {
    {"anonymous_creates_namespace_foo.json", {"crowdsecurity/k8s-audit-anonymous-access"}},
    {"exec_pod.json", {"crowdsecurity/k8s-audit-pod-exec"}},
    {"create_nginx_pod_hostnetwork.json", {"crowdsecurity/k8s-audit-pod-host-network"}},
    {"create_nginx_pod_privileged.json", {"crowdsecurity/k8s-audit-privileged-pod-creation"}},
    {"create_nginx_pod_privileged_2nd_container.json", {"crowdsecurity/k8s-audit-privileged-pod-creation"}},
    {"create_nginx_pod_no_secctx_1st_container_privileged_2nd_container.json",
     {"crowdsecurity/k8s-audit-privileged-pod-creation"}},
    {"create_nginx_pod_sensitive_mount.json", {"crowdsecurity/k8s-audit-pod-host-path-volume"}},
    {"create_nginx_pod_sensitive_mount_2nd_container.json", {"crowdsecurity/k8s-audit-pod-host-path-volume"}},
};

TEST(replay, falco_traces_fire_exactly_what_the_scenarios_imply) {
  const fs::path dir = realworld / "falco-trace-files";
  if (!fs::exists(dir)) {
    GTEST_SKIP();
  }
  std::vector<std::vector<std::string>> rule_sets = {{}};
  if (fs::exists(hub_rules)) {
    rule_sets.push_back({hub_rules});
  }
  for (const auto& rules : rule_sets) {
    std::size_t files = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (!entry.is_regular_file()) {
        continue;
      }
      const std::string name = entry.path().filename().string();
      for (const char* type : {"file", "k8s-audit"}) {
        const run_result r = run_text(slurp(entry.path()), rules, 1, name, type);
        std::multiset<std::string> got;
        for (const auto& a : r.alerts) {
          got.insert(a.scenario);
        }
        const auto it = falco_expected.find(name);
        const std::set<std::string> want = it == falco_expected.end() ? std::set<std::string>{} : it->second;
        EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), want) << name << " (" << type << ")";
        EXPECT_EQ(got.size(), want.size()) << name;
      }
      ++files;
    }
    EXPECT_EQ(files, 47u);
  }
}

// Audit events from one source IP with a given response code, `gap_ms` apart.
std::string burst(const std::string& ip, int code, int n, const std::string& start, int gap_ms) {
  std::string out;
  const engine::unix_nanos t0 = *engine::parse_rfc3339(start);
  for (int i = 0; i < n; ++i) {
    const std::string ts = engine::format_rfc3339_nano(t0 + static_cast<engine::unix_nanos>(i) * gap_ms * 1'000'000);
    out += R"({"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"id-)" + ip + "-" +
           std::to_string(i) + R"(","stage":"ResponseComplete","verb":"list","user":{"username":"system:anonymous"},"sourceIPs":[")" +
           ip + R"("],"objectRef":{"resource":"secrets"},"responseStatus":{"code":)" + std::to_string(code) +
           R"(},"requestReceivedTimestamp":")" + ts + "\"}\n";
  }
  return out;
}

// `events` (from burst()) with their user renamed.
std::string as_user(std::string events, const std::string& user) {
  const std::string anonymous = "\"system:anonymous\"";
  const std::string named = "\"" + user + "\"";
  for (std::size_t at = events.find(anonymous); at != std::string::npos; at = events.find(anonymous, at + named.size())) {
    events.replace(at, anonymous.size(), named);
  }
  return events;
}

std::size_t count(const run_result& r, const std::string& scenario) {
  return static_cast<std::size_t>(
      std::count_if(r.alerts.begin(), r.alerts.end(), [&](const auto& a) { return a.scenario == scenario; }));
}

const std::string bruteforce = "crowdsecurity/k8s-audit-api-server-bruteforce";

TEST(replay, five_401_then_quiet_is_no_alert) {
  const run_result r = run_text(burst("10.0.0.1", 401, 5, "2026-01-01T00:00:00Z", 1000) +
                                burst("10.0.0.1", 401, 1, "2026-01-01T00:10:00Z", 0));
  EXPECT_EQ(count(r, bruteforce), 0u);
  EXPECT_EQ(count(r, "crowdsecurity/k8s-audit-anonymous-access"), 6u); // every anonymous request
}

TEST(replay, six_401_in_ten_seconds_is_one_alert_with_six_events) {
  const run_result r = run_text(burst("10.0.0.2", 401, 6, "2026-01-01T00:00:00Z", 1500));
  ASSERT_EQ(count(r, bruteforce), 1u);
  const auto& a = *std::find_if(r.alerts.begin(), r.alerts.end(), [](const auto& x) { return x.scenario == bruteforce; });
  EXPECT_EQ(a.events_count, 6u);
  EXPECT_EQ(a.events.size(), 6u);
  EXPECT_EQ(a.value, "10.0.0.2");
  EXPECT_TRUE(a.remediation);
  // The default profiles ban the source for 4h, counted from the overflow (event time in replay).
  ASSERT_EQ(a.decisions.size(), 1u);
  EXPECT_EQ(a.decisions[0].type, "ban");
  EXPECT_EQ(a.decisions[0].value, "10.0.0.2");
  EXPECT_EQ(a.decisions[0].until - a.stop_at, 4LL * 3600 * 1'000'000'000);
  EXPECT_EQ(a.message.find("Ip 10.0.0.2 performed '" + bruteforce + "' (6 events over 7.5s)"), 0u) << a.message;
}

TEST(replay, twenty_403_in_ten_seconds_is_one_alert_thanks_to_the_blackhole) {
  const run_result r = run_text(burst("10.0.0.3", 403, 20, "2026-01-01T00:00:00Z", 500));
  EXPECT_EQ(count(r, bruteforce), 1u);
  EXPECT_GE(r.totals.blackholed, 1u);
}

TEST(replay, slow_failures_leak_and_never_overflow) {
  // One failure every 10 s: the bucket leaks as fast as it fills.
  const run_result r = run_text(burst("10.0.0.4", 401, 30, "2026-01-01T00:00:00Z", 10000));
  EXPECT_EQ(count(r, bruteforce), 0u);
  // One every 2 s: 5 tokens drain, a 6th event in the window overflows.
  const run_result fast = run_text(burst("10.0.0.4", 401, 8, "2026-01-01T00:00:00Z", 2000));
  EXPECT_EQ(count(fast, bruteforce), 1u);
}

TEST(replay, two_source_ips_interleaved_have_their_own_buckets) {
  std::string a = burst("10.0.0.5", 401, 6, "2026-01-01T00:00:00Z", 1000);
  std::string b = burst("10.0.0.6", 403, 3, "2026-01-01T00:00:00.5Z", 1000);
  // Interleave line by line.
  std::istringstream sa(a), sb(b);
  std::string la, lb, mixed;
  while (true) {
    const bool ga = static_cast<bool>(std::getline(sa, la));
    const bool gb = static_cast<bool>(std::getline(sb, lb));
    if (!ga && !gb) {
      break;
    }
    mixed += (ga ? la + "\n" : "") + (gb ? lb + "\n" : "");
  }
  for (unsigned workers : {1u, 2u}) {
    const run_result r = run_text(mixed, {}, workers);
    ASSERT_EQ(count(r, bruteforce), 1u) << workers;
    const auto& al = *std::find_if(r.alerts.begin(), r.alerts.end(), [](const auto& x) { return x.scenario == bruteforce; });
    EXPECT_EQ(al.value, "10.0.0.5");
    EXPECT_EQ(al.events_count, 6u);
  }
}

TEST(replay, events_without_response_status_do_not_break_other_rules) {
  // An exec request logged at RequestReceived: no responseStatus. The bruteforce filter fails on
  // it (counted), the exec rule still fires.
  const std::string ev =
      R"({"kind":"Event","stage":"RequestReceived","verb":"create","user":{"username":"u"},"sourceIPs":["10.1.1.1"],"objectRef":{"resource":"pods","subresource":"exec","namespace":"n","name":"p"},"requestReceivedTimestamp":"2026-01-01T00:00:00Z"})";
  const run_result r = run_text(ev + "\n");
  EXPECT_EQ(count(r, "crowdsecurity/k8s-audit-pod-exec"), 1u);
  std::size_t bf_index = 0;
  auto rs = load({});
  for (std::size_t i = 0; i < rs->scenarios.size(); ++i) {
    if (rs->scenarios[i].name == bruteforce) {
      bf_index = i;
    }
  }
  EXPECT_EQ(r.totals.eval_errors_per_scenario[bf_index], 1u);
}

TEST(replay, malformed_lines_are_reported_with_position_and_the_rest_is_processed) {
  const std::string ev =
      R"({"kind":"Event","verb":"create","user":{"username":"u"},"sourceIPs":["10.1.1.1"],"objectRef":{"resource":"pods","subresource":"exec"},"requestReceivedTimestamp":"2026-01-01T00:00:00Z"})";
  auto& reg = counters::registry::global();
  const std::initializer_list<counters::label> ko = {{"source", "mixed.log"}, {"type", "file"}, {"acquis_type", "k8s-audit"}};
  const std::uint64_t ko_before = reg.read("cs_parser_hits_ko_total", ko);
  const run_result r = run_text(ev + "\n{\"kind\": 0}\nnot json\n" + ev + "\n", {}, 2, "mixed.log");
  EXPECT_EQ(reg.read("cs_parser_hits_ko_total", ko) - ko_before, 2u); // CrowdSec's parser counters
  EXPECT_EQ(r.totals.decoded, 2u);
  EXPECT_EQ(r.totals.malformed, 2u);
  ASSERT_EQ(r.errors.size(), 2u);
  std::vector<std::string> errs = r.errors;
  std::sort(errs.begin(), errs.end());
  EXPECT_EQ(errs[0].rfind("mixed.log:2: ", 0), 0u) << errs[0];
  EXPECT_EQ(errs[1].rfind("mixed.log:3: ", 0), 0u) << errs[1];
  EXPECT_EQ(count(r, "crowdsecurity/k8s-audit-pod-exec"), 2u);
}

TEST(replay, a_line_cut_inside_a_string_costs_that_line_only) {
  // The pipeline frames documents before a worker parses them: a quote left open by the cut
  // must not make the framer take the next lines as the rest of the cut one.
  const std::string ev =
      R"({"kind":"Event","verb":"create","user":{"username":"u"},"sourceIPs":["10.1.1.1"],"objectRef":{"resource":"pods","subresource":"exec"},"requestReceivedTimestamp":"2026-01-01T00:00:00Z"})";
  const std::string cut = ev.substr(0, ev.find("pods") + 2);
  const run_result r = run_text(cut + "\n" + ev + "\n" + ev + "\n" + cut + "\n" + ev + "\n", {}, 2, "cut.log");
  EXPECT_EQ(r.totals.decoded, 3u);
  EXPECT_EQ(r.totals.malformed, 2u);
  std::vector<std::string> errs = r.errors;
  std::sort(errs.begin(), errs.end());
  ASSERT_EQ(errs.size(), 2u);
  EXPECT_EQ(errs[0].rfind("cut.log:1: invalid JSON", 0), 0u) << errs[0];
  EXPECT_EQ(errs[1].rfind("cut.log:4: invalid JSON", 0), 0u) << errs[1];
  EXPECT_EQ(count(r, "crowdsecurity/k8s-audit-pod-exec"), 3u);
}

std::multiset<std::string> alert_set(const run_result& r) {
  std::multiset<std::string> s;
  for (const auto& a : r.alerts) {
    s.insert(engine::to_json(a));
  }
  return s;
}

// The messages of alerts present on one side only (empty when the multisets are equal).
std::string difference(const std::multiset<std::string>& a, const std::multiset<std::string>& b) {
  std::vector<std::string> only_a, only_b;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(only_a));
  std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(only_b));
  std::string out;
  auto brief = [](const std::string& json) { return json.substr(0, json.find(",\"source_ip\"")); };
  for (std::size_t i = 0; i < only_a.size() && i < 5; ++i) {
    out += "only in first: " + brief(only_a[i]) + "\n";
  }
  for (std::size_t i = 0; i < only_b.size() && i < 5; ++i) {
    out += "only in second: " + brief(only_b[i]) + "\n";
  }
  if (!out.empty()) {
    out += std::to_string(only_a.size()) + " vs " + std::to_string(only_b.size()) + " differing alerts";
  }
  return out;
}

TEST(replay, two_workers_give_the_same_alerts_as_one) {
  if (!fs::exists(realworld)) {
    GTEST_SKIP();
  }
  std::string all = slurp(realworld / "perfspec-kubernetes-event-dataset/audit-logs.reconstructed.jsonl");
  all += slurp(realworld / "audit2rbac/demo.log");
  for (const auto& e : fs::directory_iterator(realworld / "falco-trace-files")) {
    if (e.is_regular_file()) {
      all += slurp(e.path()) + "\n";
    }
  }
  for (int i = 0; i < 20; ++i) {
    all += burst("10.9.0." + std::to_string(i), i % 2 == 0 ? 401 : 403, 4 + i, "2026-01-01T00:00:00Z", 700);
  }
  const run_result one = run_text(all, {}, 1, "all.log");
  const run_result two = run_text(all, {}, 2, "all.log");
  const run_result three = run_text(all, {}, 3, "all.log");
  EXPECT_GT(one.alerts.size(), 20u);
  EXPECT_EQ(difference(alert_set(one), alert_set(two)), "");
  EXPECT_EQ(difference(alert_set(one), alert_set(three)), "");
  EXPECT_EQ(one.totals.decoded, two.totals.decoded);
}

// Chunks go to the workers in turn, whatever their source IPs: one address sending everything
// (a brute force) loads every worker, and the alerts are those of one worker, in the same order
// for each address's buckets.
TEST(pipeline, one_busy_address_is_spread_over_the_workers_with_the_alerts_of_one) {
  // About 4 MB: four or five of the reader's 1 MiB chunks. 401s a second apart, in bursts: the
  // bruteforce bucket of the one address overflows, leaks and overflows again many times, and
  // any pour applied out of order changes when.
  std::string all;
  const engine::unix_nanos t0 = *engine::parse_rfc3339("2026-01-01T00:00:00Z");
  for (int b = 0; b < 400; ++b) {
    const engine::unix_nanos start = t0 + static_cast<engine::unix_nanos>(b) * 20'000'000'000;
    all += burst("10.7.0.1", 401, 25, engine::format_rfc3339_nano(start), 300);
  }
  const run_result one = run_text(all, {}, 1);
  const run_result two = run_text(all, {}, 2);
  ASSERT_EQ(two.totals.events_per_worker.size(), 2u);
  EXPECT_EQ(two.totals.decoded, 10000u);
  for (const std::uint64_t n : two.totals.events_per_worker) {
    EXPECT_GT(n, 2000u); // one address, yet both workers decode a good share
  }
  EXPECT_GT(two.totals.forwarded, 0u); // the address's buckets live on one of them
  EXPECT_GT(one.alerts.size(), 100u);
  EXPECT_EQ(difference(alert_set(one), alert_set(two)), "");
}

// A recycled chunk keeps its buffer when the next request is a little larger (a file reader's
// carried-over partial line varies from chunk to chunk): no reallocation, no fresh pages.
TEST(chunk_pool, recycled_chunks_keep_their_buffer_across_small_size_changes) {
  pipeline::chunk_pool pool;
  const std::size_t base = 4u << 20;
  const char* first = nullptr;
  {
    auto c = pool.get(base + 100);
    ASSERT_GE(c->data.size(), base + 100 + simdjson::SIMDJSON_PADDING);
    first = c->data.data();
    c->events.emplace_back();
  }
  for (const std::size_t extra : {3000u, 17u, 9000u, 40000u}) {
    auto c = pool.get(base + extra);
    EXPECT_EQ(c->data.data(), first) << "extra " << extra; // the same buffer, not a regrown one
    EXPECT_GE(c->data.size(), base + extra + simdjson::SIMDJSON_PADDING);
    EXPECT_TRUE(c->events.empty()); // per-use contents are cleared
    EXPECT_EQ(c->size, 0u);
  }
}

TEST(chunk_pool, the_chunk_released_last_is_handed_out_first) {
  pipeline::chunk_pool pool;
  std::vector<std::shared_ptr<pipeline::input_chunk>> held;
  std::vector<const char*> buffers;
  for (int i = 0; i < 5; ++i) {
    held.push_back(pool.get(1000));
    buffers.push_back(held.back()->data.data());
  }
  // Released in order 0..4 (chunk 4 last) on another thread, as a worker does.
  std::thread([&] {
    for (auto& h : held) {
      h.reset();
    }
  }).join();
  for (int i = 4; i >= 0; --i) {
    auto c = pool.get(1000);
    EXPECT_EQ(c->data.data(), buffers[static_cast<std::size_t>(i)]) << "expected chunk " << i;
    held[static_cast<std::size_t>(i)] = std::move(c); // kept, so the next get() takes the one before
  }
}

// A handler that writes alerts only when the emitter goes idle (as the daemon's store writer
// does): what it kept back is written once input stops, without finish(), and at finish().
class idle_writer final : public pipeline::output_handler {
 public:
  void on_alert(const engine::alert&) override {
    std::lock_guard<std::mutex> lock(mu);
    ++kept;
    log += 'a';
  }
  void on_error(const std::string&) override {}
  void on_idle() override {
    std::lock_guard<std::mutex> lock(mu);
    written += kept;
    kept = 0;
    log += 'i';
  }
  std::mutex mu;
  std::size_t kept = 0, written = 0;
  std::string log;
};

TEST(replay, the_emitter_calls_on_idle_when_input_stops_and_at_finish) {
  idle_writer out;
  pipeline::options o;
  o.workers = 1;
  pipeline::pipeline pl(load({}), o, out);
  // Six 401s overflow the bruteforce bucket (one alert); each is also an anonymous access.
  io::replay_buffer(burst("10.0.0.9", 401, 6, "2026-01-01T00:00:00Z", 1000), io::replay_source{"", "t.log", "", "file"},
                    pl);
  std::size_t written = 0;
  for (int i = 0; i < 1000 && written < 7; ++i) { // no more input: only on_idle can write them
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::lock_guard<std::mutex> lock(out.mu);
    written = out.written;
  }
  EXPECT_EQ(written, 7u);
  const pipeline::totals t = pl.finish();
  EXPECT_EQ(t.alerts, 7u);
  std::lock_guard<std::mutex> lock(out.mu);
  EXPECT_EQ(out.written, 7u);
  EXPECT_EQ(out.kept, 0u);
  ASSERT_FALSE(out.log.empty());
  EXPECT_EQ(out.log.back(), 'i'); // finish() ends with on_idle, after the last alert
}

// Blocking admission: two producers submit one document at a time against a limit of 4 in
// flight, so they sleep in submit() thousands of times and depend on the workers to wake them.
// A lost wake-up hangs the test (the ctest timeout fails it); every document must be processed
// and the limit held. The events match no rule, so no pour counts in flight: the count can only
// pass the limit by what each producer adds after its check.
TEST(pipeline, producers_blocked_by_the_in_flight_limit_are_woken_and_nothing_is_lost) {
  constexpr int per_producer = 4000;
  collector out;
  pipeline::options o;
  o.workers = 2;
  o.max_in_flight = 4;
  pipeline::pipeline pl(load({}), o, out);
  struct source {
    std::shared_ptr<pipeline::input_chunk> chunk;
    std::vector<pipeline::document> docs;
  };
  std::vector<source> sources(2);
  for (unsigned w = 0; w < 2; ++w) {
    const std::string text = as_user(burst("10.0.1." + std::to_string(w + 1), 200, 2, "2026-01-01T00:00:00Z", 1), "alice");
    sources[w].chunk = pipeline::make_chunk(text.size());
    std::memcpy(sources[w].chunk->data.data(), text.data(), text.size());
    sources[w].chunk->size = text.size();
    sources[w].chunk->origin = "blocked.log";
    sources[w].chunk->source_type = "file";
    std::uint64_t next_line = 0;
    pipeline::frame_documents(sources[w].chunk->data.data(), text.size(), true, 1, 1 << 20, sources[w].docs, next_line);
    ASSERT_EQ(sources[w].docs.size(), 2u);
  }
  std::atomic<std::int64_t> most{0};
  auto produce = [&](unsigned w) {
    for (int i = 0; i < per_producer; ++i) {
      pl.submit(sources[w].chunk, {sources[w].docs[static_cast<std::size_t>(i) % 2]});
      const std::int64_t now = pl.in_flight();
      std::int64_t seen = most.load();
      while (now > seen && !most.compare_exchange_weak(seen, now)) {
      }
    }
  };
  std::thread a(produce, 0u);
  std::thread b(produce, 1u);
  a.join();
  b.join();
  const pipeline::totals t = pl.finish();
  EXPECT_EQ(t.decoded, 2u * per_producer);
  EXPECT_EQ(t.malformed, 0u);
  EXPECT_LE(most.load(), 4 + 2); // the limit, plus one document from each producer
}

// The admission protocol on its own, step by step. A producer sleeping in acquire() must wake as
// soon as the count is back within the limit, whichever decrease brought it there: here the
// worker's release() leaves the count above the limit because another batch is counted for a
// moment (in the daemon: a webhook request that try_acquire() then refuses and takes back through
// release(), or a forwarded pour), and the later decrease must be the one that wakes it.
TEST(admission, a_sleeping_producer_wakes_when_the_count_is_back_within_the_limit) {
  using namespace std::chrono_literals;
  pipeline::admission adm(8);
  ASSERT_TRUE(adm.try_acquire(9)); // larger than the limit, but nothing was in flight
  EXPECT_FALSE(adm.try_acquire(1));
  EXPECT_EQ(adm.in_flight(), 9);

  std::atomic<bool> admitted{false};
  std::thread producer([&] {
    adm.acquire(1);
    admitted = true;
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(admitted.load()); // 9 > 8: asleep

  adm.add(100);     // a batch counted for a moment (a webhook request, a forwarded pour)
  adm.release(9);   // the worker finishes: 100 left, still over the limit
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(admitted.load());
  adm.release(100); // the batch is taken back: 0 left, and this call must wake the producer
  producer.join();  // a lost wake-up hangs here
  EXPECT_TRUE(admitted.load());
  EXPECT_EQ(adm.in_flight(), 1);

  // Back within the limit by one is enough: no hysteresis that another producer keeping the count
  // just under the limit could starve it behind.
  adm.add(8); // 9
  admitted = false;
  std::thread second([&] {
    adm.acquire(1);
    admitted = true;
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(admitted.load());
  adm.release(1); // 8: within the limit
  second.join();
  EXPECT_EQ(adm.in_flight(), 9);
}

} // namespace
} // namespace vigil

namespace vigil {
namespace {

// A folder holding one scenario file with `yaml`, for the tests below.
fs::path scenario_dir(const std::string& tag, const std::string& yaml) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("vigil_" + tag + "_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "scenarios.yaml") << yaml;
  return dir;
}

// responseStatus.code as the decoder records it (an integer, off the DOM) must still be a JSON
// number to the filters, a float64 to CrowdSec: type() says "float", a map holding it differs
// from one holding the integer 101, string() prints a large one in Go's %v form.
TEST(replay, a_decoded_response_code_is_a_json_number_to_the_filters) {
  const std::string code = "evt.Unmarshaled.k8s_audit.responseStatus.code";
  const fs::path dir = scenario_dir(
      "json-number",
      "type: trigger\nname: t/float\ndescription: d\nfilter: type(" + code + ") == 'float'\n---\n" +
          "type: trigger\nname: t/map-int\ndescription: d\nfilter: \"{c: " + code + "} == {c: 101}\"\n---\n" +
          "type: trigger\nname: t/map-float\ndescription: d\nfilter: \"{c: " + code + "} == {c: 101.0}\"\n---\n" +
          "type: trigger\nname: t/string\ndescription: d\nfilter: string(" + code + ") == '1e+06'\n");
  auto event = [](int code) {
    return R"({"kind":"Event","verb":"create","user":{"username":"u"},"sourceIPs":["10.1.1.1"],"responseStatus":{"code":)" +
           std::to_string(code) + R"(},"requestReceivedTimestamp":"2026-01-01T00:00:00Z"})" + "\n";
  };
  const run_result r = run_text(event(101) + event(1000000), {dir.string()});
  EXPECT_EQ(r.totals.decoded, 2u);
  EXPECT_EQ(count(r, "t/float"), 2u);
  EXPECT_EQ(count(r, "t/map-int"), 0u);
  EXPECT_EQ(count(r, "t/map-float"), 1u);
  EXPECT_EQ(count(r, "t/string"), 1u);
}

// A bucket grouped by user holds events from three addresses: as in CrowdSec, one alert per
// distinct source (each with its own value, in order of first appearance), every message
// saying "Ip 3 sources performed ...", so a profile can ban each address. An event without a
// valid address is no source.
TEST(replay, an_overflow_from_several_addresses_is_one_alert_per_source) {
  const fs::path dir = scenario_dir("by-user", "type: leaky\nname: t/by-user\ndescription: d\n"
                                               "filter: \"evt.Meta.user == 'mallory'\"\ngroupby: evt.Meta.user\n"
                                               "capacity: 3\nleakspeed: 10s\nlabels:\n  remediation: true\n");
  const std::string events = as_user(burst("not-an-ip", 200, 1, "2026-01-01T00:00:00Z", 0) +
                                         burst("10.0.0.2", 200, 1, "2026-01-01T00:00:00Z", 0) +
                                         burst("10.0.0.3", 200, 1, "2026-01-01T00:00:01Z", 0) +
                                         burst("10.0.0.1", 200, 1, "2026-01-01T00:00:02Z", 0),
                                     "mallory");
  const run_result r = run_text(events, {dir.string()});
  ASSERT_EQ(count(r, "t/by-user"), 3u);
  std::vector<std::string> values;
  std::vector<std::size_t> kept;
  std::vector<bool> further;
  for (const auto& a : r.alerts) {
    values.push_back(a.value);
    further.push_back(a.further_source);
    EXPECT_EQ(a.source_ip, a.value);
    EXPECT_EQ(a.events_count, 4u); // overflows on capacity + 1
    // Each alert holds its own address's events (the first also those without one): not every
    // event in every alert, which would make N sources N x N events.
    kept.push_back(a.events.size());
    for (const auto& e : a.events) {
      const std::string ip(e.get("source_ip"));
      EXPECT_TRUE(ip == a.value || (ip == "not-an-ip" && a.value == "10.0.0.2")) << ip << " in " << a.value;
    }
    EXPECT_EQ(a.message.rfind("Ip 3 sources performed 't/by-user' (4 events over 2s) at ", 0), 0u) << a.message;
    ASSERT_EQ(a.decisions.size(), 1u); // the default profile bans each address
    EXPECT_EQ(a.decisions[0].value, a.value);
  }
  EXPECT_EQ(values, (std::vector<std::string>{"10.0.0.2", "10.0.0.3", "10.0.0.1"}));
  EXPECT_EQ(kept, (std::vector<std::size_t>{2, 1, 1}));
  EXPECT_EQ(further, (std::vector<bool>{false, true, true})); // the message is logged once
  // One address: one alert, the message names it.
  const run_result one = run_text(as_user(burst("10.0.0.9", 200, 4, "2026-01-01T00:00:00Z", 100), "mallory"),
                                  {dir.string()});
  ASSERT_EQ(count(one, "t/by-user"), 1u);
  EXPECT_EQ(one.alerts[0].message.rfind("Ip 10.0.0.9 performed", 0), 0u) << one.alerts[0].message;
}

std::uint64_t poured(const std::string& source, const std::string& scenario) {
  return counters::registry::global().read("cs_bucket_poured_total",
                                           {{"source", source}, {"type", "file"}, {"name", scenario}});
}

// One leaky bucket per source IP, capacity 5, leaking a drop a day: every sixth event of an
// address overflows, and no bucket empties within a test's hours of event time.
fs::path slow_leak_scenario(const std::string& tag) {
  return scenario_dir(tag, "type: leaky\nname: test/slow-leak\ndescription: d\n"
                           "filter: \"evt.Meta.source_ip != ''\"\ngroupby: evt.Meta.source_ip\n"
                           "capacity: 5\nleakspeed: 24h\nlabels:\n  remediation: false\n");
}

// Two producers at once (two clusters' files, as the daemon's tailers and webhook run): their
// chunks take numbers in whatever order the threads reach them, and a worker can receive its
// chunks out of order. Every bucket still gets its pours in its file's order: the alerts are
// those of one worker fed one file after the other. (The buckets leak so slowly that none
// empties within the files' 80 minutes: where the two files' times interleave does move the
// shared watermark, which expires idle buckets, and with a faster leak that alone could change
// an alert whatever the number of workers.)
TEST(pipeline, concurrent_producers_give_the_alerts_of_one_worker) {
  const fs::path dir = slow_leak_scenario("concurrent");
  auto text_for = [](int cluster) {
    std::string all; // about 5.6 MB: five or six chunks for each producer
    const engine::unix_nanos t0 = *engine::parse_rfc3339("2026-01-01T00:00:00Z");
    for (int b = 0; b < 640; ++b) {
      const engine::unix_nanos start = t0 + static_cast<engine::unix_nanos>(b) * 15'000'000'000;
      const std::string ip = "10." + std::to_string(cluster) + ".0." + std::to_string(b % 7);
      all += burst(ip, b % 3 == 0 ? 403 : 401, 25, engine::format_rfc3339_nano(start), 400);
    }
    return all;
  };
  const std::string east = text_for(1), west = text_for(2);
  auto run = [&](unsigned workers, bool concurrent) {
    collector out;
    pipeline::options o;
    o.workers = workers;
    o.profiles = std::make_shared<const rules::profile_set>(rules::profile_set::defaults());
    pipeline::pipeline pl(load({dir.string()}), o, out);
    auto feed = [&pl](const std::string& text, const char* cluster) {
      io::replay_buffer(text, io::replay_source{"", std::string(cluster) + ".log", cluster, "file"}, pl);
    };
    if (concurrent) {
      // Both start together, so their chunks interleave from the first.
      std::atomic<int> ready{0};
      auto racer = [&](const std::string& text, const char* cluster) {
        ready.fetch_add(1);
        while (ready.load() < 2) {
        }
        feed(text, cluster);
      };
      std::thread a(racer, std::cref(east), "east");
      std::thread b(racer, std::cref(west), "west");
      a.join();
      b.join();
    } else {
      feed(east, "east");
      feed(west, "west");
    }
    run_result r;
    r.totals = pl.finish();
    r.alerts = std::move(out.alerts);
    return r;
  };
  const run_result one = run(1, false);
  EXPECT_EQ(one.totals.decoded, 32000u);
  EXPECT_GT(one.alerts.size(), 4000u);
  for (const unsigned workers : {2u, 3u}) {
    const run_result many = run(workers, true);
    EXPECT_EQ(many.totals.decoded, 32000u);
    EXPECT_GT(many.totals.forwarded, 0u) << workers << " workers"; // pours crossed, in batches
    EXPECT_EQ(difference(alert_set(one), alert_set(many)), "") << workers << " workers";
  }
}

// Blocking admission (as in producers_blocked_by_the_in_flight_limit_are_woken_and_nothing_is_lost)
// with events that pour: with two workers most chunks' pours wait in batches, counted in flight,
// and only an owner applying them brings the count back down. Nothing may hang or be lost, and
// the alerts are those of one worker (the slow leak, as in the test above, keeps the two
// producers' shared watermark out of it).
TEST(pipeline, producers_blocked_by_pours_in_flight_are_woken) {
  const fs::path dir = slow_leak_scenario("in-flight");
  constexpr int per_producer = 3000;
  std::vector<std::string> texts;
  for (unsigned w = 0; w < 2; ++w) {
    texts.push_back(burst("10.0.2." + std::to_string(w + 1), 401, per_producer, "2026-01-01T00:00:00Z", 50));
  }
  auto run = [&](unsigned workers, std::size_t limit) {
    collector out;
    pipeline::options o;
    o.workers = workers;
    o.max_in_flight = limit;
    o.profiles = std::make_shared<const rules::profile_set>(rules::profile_set::defaults());
    pipeline::pipeline pl(load({dir.string()}), o, out);
    auto produce = [&](unsigned w) {
      // One document per chunk: many small chunks, each with its batches.
      const std::string& text = texts[w];
      auto chunk = pipeline::make_chunk(text.size());
      std::memcpy(chunk->data.data(), text.data(), text.size());
      chunk->size = text.size();
      chunk->origin = "pours-" + std::to_string(w) + ".log";
      chunk->source_type = "file";
      chunk->cluster = "c" + std::to_string(w);
      std::vector<pipeline::document> docs;
      std::uint64_t next_line = 0;
      pipeline::frame_documents(chunk->data.data(), text.size(), true, 1, 1 << 20, docs, next_line);
      EXPECT_EQ(docs.size(), static_cast<std::size_t>(per_producer));
      for (const pipeline::document& d : docs) {
        pl.submit(chunk, {d});
      }
    };
    if (workers == 1) {
      produce(0);
      produce(1);
    } else {
      std::thread a(produce, 0u);
      std::thread b(produce, 1u);
      a.join();
      b.join();
    }
    run_result r;
    r.totals = pl.finish();
    r.alerts = std::move(out.alerts);
    return r;
  };
  const run_result one = run(1, 1u << 15);
  const run_result two = run(2, 4);
  EXPECT_EQ(two.totals.decoded, 2u * per_producer);
  EXPECT_GT(two.totals.forwarded, 0u);
  EXPECT_EQ(one.alerts.size(), 2u * (per_producer / 6)); // every sixth event overflows
  EXPECT_EQ(difference(alert_set(one), alert_set(two)), "");
}

// cs_bucket_poured_total{source,type,name} counts every pour once, whether the worker that
// matched the event owns its bucket or forwards the pour to the worker that does. 40 users: with
// two workers, about half of their buckets live on the worker that did not decode the events.
TEST(pipeline, pours_are_counted_with_their_source_also_when_forwarded) {
  const fs::path dir = scenario_dir("pour", "type: leaky\nname: test/by-user\ndescription: pours grouped by user\n"
                                             "filter: \"evt.Meta.user != ''\"\ngroupby: evt.Meta.user\n"
                                             "capacity: 100000\nleakspeed: 10s\nlabels:\n  remediation: false\n");
  std::string all;
  for (int i = 0; i < 40; ++i) {
    all += as_user(burst("10.8.0." + std::to_string(i), 200, 5, "2026-01-01T00:00:00Z", 10), "user-" + std::to_string(i));
  }
  const run_result one = run_text(all, {dir.string()}, 1, "one.log");
  const run_result two = run_text(all, {dir.string()}, 2, "two.log");
  EXPECT_EQ(one.totals.decoded, 200u);
  EXPECT_EQ(one.totals.forwarded, 0u);
  EXPECT_GT(two.totals.forwarded, 0u);
  EXPECT_EQ(poured("one.log", "test/by-user"), 200u);
  EXPECT_EQ(poured("two.log", "test/by-user"), 200u);
}

// A pour forwarded to the worker that owns its bucket travels in a recycled holder: once warm,
// forwarding allocates nothing per pour (it cost four allocations each: the holder, its key,
// its distinct value and its payload). Measured against the same events with one worker, which
// pours everything straight into its buckets: what both allocate is per chunk (the reader's
// runs of documents, the batches' lists), not per pour.
struct alloc_run {
  std::uint64_t allocations = 0; ///< the fewest during one of three identical batches, once warm
  std::uint64_t forwarded = 0;   ///< per batch
};

alloc_run allocations_per_batch(unsigned workers) {
  const fs::path dir = scenario_dir("pour-alloc", "type: leaky\nname: test/grouped\ndescription: pours grouped\n"
                                                   "filter: \"evt.Meta.user != ''\"\ngroupby: evt.Meta.user"
                                                   "\ndistinct: evt.Meta.source_ip\ncapacity: 100000\nleakspeed: 10s\n"
                                                   "labels:\n  remediation: false\n");
  // Each source IP has its own user, longer than a short string's inline buffer.
  std::string batch;
  for (int i = 0; i < 200; ++i) {
    const std::string ip = "10.9." + std::to_string(i / 100) + "." + std::to_string(i % 100);
    batch += as_user(burst(ip, 200, 10, "2026-01-01T00:00:00Z", 10), "system:serviceaccount:team-" + ip + ":deployer");
  }
  collector out;
  auto rs = load({dir.string()});
  pipeline::options o;
  o.workers = workers;
  o.profiles = std::make_shared<const rules::profile_set>(rules::profile_set::defaults());
  pipeline::pipeline pl(rs, o, out);
  const auto settle = [&pl] {
    while (pl.in_flight() != 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  };
  for (int warm = 0; warm < 3; ++warm) {
    io::replay_buffer(batch, io::replay_source{"", "alloc.log", "", "file"}, pl);
    settle();
  }
  // The fewest of three batches: a batch with more pours in flight at once than any before it
  // still grows the pool (by as many holders), which says nothing about a warm pipeline.
  alloc_run r;
  r.allocations = ~std::uint64_t{0};
  for (int measured = 0; measured < 3; ++measured) {
    const std::uint64_t before = test::allocations.load();
    io::replay_buffer(batch, io::replay_source{"", "alloc.log", "", "file"}, pl);
    settle();
    r.allocations = std::min(r.allocations, test::allocations.load() - before);
  }
  const pipeline::totals t = pl.finish();
  EXPECT_EQ(t.decoded, 6u * 2000u);
  r.forwarded = t.forwarded / 6;
  return r;
}

TEST(pipeline, forwarded_pours_do_not_allocate_once_warm) {
  const alloc_run local = allocations_per_batch(1);
  const alloc_run forwarding = allocations_per_batch(2);
  EXPECT_EQ(local.forwarded, 0u);
  ASSERT_GT(forwarding.forwarded, 500u); // the users' buckets are spread over both workers
  EXPECT_LT(forwarding.allocations, local.allocations + forwarding.forwarded / 10)
      << forwarding.allocations << " allocations with " << forwarding.forwarded << " pours forwarded, "
      << local.allocations << " with none";
}

// CrowdSec's Uniq: an event whose distinct expression fails is poured without the check, and a
// value that is not a string counts as "" (getElement returns "" and no error). Both counted.
TEST(pipeline, distinct_that_fails_pours_unchecked_and_a_non_string_counts_as_empty) {
  // objectRef has no `foo`: reading `.bar` of nil fails. responseStatus.code is a number.
  const fs::path dir = scenario_dir(
      "distinct", "type: leaky\nname: test/distinct-fails\ndescription: d\nfilter: \"evt.Meta.source_ip != ''\"\n"
                  "groupby: evt.Meta.source_ip\ndistinct: evt.Unmarshaled.k8s_audit.objectRef.foo.bar\n"
                  "capacity: 4\nleakspeed: 1h\nlabels:\n  remediation: false\n"
                  "---\n"
                  "type: leaky\nname: test/distinct-number\ndescription: d\nfilter: \"evt.Meta.source_ip != ''\"\n"
                  "groupby: evt.Meta.source_ip\ndistinct: evt.Unmarshaled.k8s_audit.responseStatus.code\n"
                  "capacity: 1\nleakspeed: 1h\nlabels:\n  remediation: false\n");
  const std::uint64_t errors_before = counters::registry::global().read_all("vigil_groupby_errors_total");
  // Five events of one address (one bucket each scenario), with two codes.
  const std::string events = burst("10.9.0.1", 401, 3, "2026-01-01T00:00:00Z", 10) +
                             burst("10.9.0.1", 403, 2, "2026-01-01T00:00:01Z", 10);
  for (const unsigned workers : {1u, 2u}) {
    const std::string origin = "distinct-" + std::to_string(workers) + ".log";
    const run_result r = run_text(events, {dir.string()}, workers, origin);
    EXPECT_EQ(r.totals.decoded, 5u);
    // Every event poured: the fifth overflows the capacity of 4.
    EXPECT_EQ(poured(origin, "test/distinct-fails"), 5u);
    ASSERT_EQ(count(r, "test/distinct-fails"), 1u);
    // The numbers all count as "": the first event is poured, the other four are duplicates.
    EXPECT_EQ(poured(origin, "test/distinct-number"), 1u);
    EXPECT_EQ(count(r, "test/distinct-number"), 0u);
  }
  EXPECT_EQ(counters::registry::global().read_all("vigil_groupby_errors_total") - errors_before, 20u);
}

// scope: Range with an expression: the alert, its message and the default profiles' decision
// are about the range, not the address (default_range_remediation).
TEST(pipeline, range_scope_alerts_and_bans_the_range) {
  const fs::path dir = scenario_dir(
      "range", "type: leaky\nname: test/range\ndescription: d\nfilter: \"evt.Meta.source_ip != ''\"\n"
               "groupby: evt.Meta.source_ip\ncapacity: 1\nleakspeed: 1h\n"
               "scope:\n  type: Range\n  expression: IpToRange(evt.Meta.source_ip, '/24')\n"
               "labels:\n  remediation: true\n"
               "---\n"
               "type: leaky\nname: test/not-a-range\ndescription: d\nfilter: \"evt.Meta.source_ip != ''\"\n"
               "groupby: evt.Meta.source_ip\ncapacity: 1\nleakspeed: 1h\n"
               "scope:\n  type: Range\n  expression: evt.Meta.user\nlabels:\n  remediation: true\n");
  const run_result r = run_text(burst("10.9.0.7", 401, 2, "2026-01-01T00:00:00Z", 10), {dir.string()});
  ASSERT_EQ(count(r, "test/range"), 1u);
  ASSERT_EQ(count(r, "test/not-a-range"), 1u);
  for (const engine::alert& a : r.alerts) {
    EXPECT_EQ(a.scope, "Range");
    EXPECT_EQ(a.source_ip, "10.9.0.7");
    if (a.scenario == "test/range") {
      EXPECT_EQ(a.value, "10.9.0.0/24");
      EXPECT_EQ(a.message.rfind("Range 10.9.0.0/24 performed 'test/range' (2 events over", 0), 0u) << a.message;
      ASSERT_EQ(a.decisions.size(), 1u);
      EXPECT_EQ(a.decisions[0].scope, "Range");
      EXPECT_EQ(a.decisions[0].value, "10.9.0.0/24");
    } else { // "system:anonymous" is no range: the alert goes out, with nothing to ban
      EXPECT_EQ(a.value, "");
      EXPECT_EQ(a.message.rfind("Range UNKNOWN performed 'test/not-a-range'", 0), 0u) << a.message;
      EXPECT_TRUE(a.decisions.empty());
    }
  }
}

// The source label takes every file path or webhook client: past 1,000 distinct sources, new
// ones are counted under source="(other)" instead of each adding label sets for ever.
TEST(pipeline, sources_past_the_label_limit_are_counted_together) {
  collector out;
  pipeline::options o;
  o.workers = 2;
  auto& r = counters::registry::global();
  // The registry is the process's: earlier tests in this binary count into it too.
  const std::uint64_t hits_before = r.read_all("cs_parser_hits_total");
  const std::uint64_t poured_before = r.read_all("cs_bucket_poured_total");
  // The limit is said once, where the program sends the engine's warnings.
  static std::vector<std::string> warnings;
  warnings.clear();
  util::set_warning_sink([](const std::string& m) { warnings.push_back(m); });
  pipeline::pipeline pl(load({}), o, out);
  const std::string event = burst("10.7.0.1", 401, 1, "2026-01-01T00:00:00Z", 10);
  for (int i = 0; i < 1005; ++i) {
    io::replay_buffer(event, io::replay_source{"", "src-" + std::to_string(i), "", "file"}, pl);
  }
  const pipeline::totals t = pl.finish();
  EXPECT_EQ(t.decoded, 1005u);
  const std::string bf = "crowdsecurity/k8s-audit-api-server-bruteforce";
  // Which 1,000 keep their label depends on the order the two workers first see them.
  std::size_t labelled = 0;
  for (int i = 0; i < 1005; ++i) {
    const std::uint64_t n = r.read("cs_parser_hits_total", {{"source", "src-" + std::to_string(i)}, {"type", "file"}});
    EXPECT_LE(n, 1u);
    labelled += n;
  }
  EXPECT_EQ(labelled, 1000u);
  EXPECT_EQ(r.read("cs_parser_hits_total", {{"source", "(other)"}, {"type", "file"}}), 5u);
  EXPECT_EQ(r.read("cs_bucket_poured_total", {{"source", "(other)"}, {"type", "file"}, {"name", bf}}), 5u);
  EXPECT_EQ(r.read_all("cs_parser_hits_total") - hits_before, 1005u);
  EXPECT_EQ(r.read_all("cs_bucket_poured_total") - poured_before, 1005u);
  util::set_warning_sink(nullptr);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0], "more than 1000 sources: the metrics of new ones are labelled source=\"(other)\"");
}

// The totals of a replay of `text` with the counts by verb and resource on, as `vigil replay` runs.
pipeline::totals counted(const std::string& text, unsigned workers) {
  collector out;
  pipeline::options o;
  o.workers = workers;
  o.count_verbs_resources = true;
  pipeline::pipeline pl(load({}), o, out);
  io::replay_buffer(text, io::replay_source{"", "counted", ""}, pl);
  return pl.finish();
}

// The replay summary's counts by verb and resource (Falco traces: 40 creates, 9 deletes, 1 get,
// 1 patch; 13 of the 51 events are about pods).
TEST(replay, counts_by_verb_and_resource) {
  const fs::path dir = realworld / "falco-trace-files";
  if (!fs::exists(dir)) {
    GTEST_SKIP();
  }
  std::string all;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) {
      all += slurp(e.path()) + "\n";
    }
  }
  const pipeline::totals t = counted(all, 2);
  EXPECT_EQ(t.by_verb.at("create"), 40u);
  EXPECT_EQ(t.by_verb.at("delete"), 9u);
  EXPECT_EQ(t.by_verb.at("get"), 1u);
  EXPECT_EQ(t.by_verb.at("patch"), 1u);
  EXPECT_EQ(t.by_resource.at("pods"), 13u);
  EXPECT_EQ(t.decoded, 51u);
}

// A worker names at most 4,096 resources: a file with 5,000 distinct ones is counted whole, the
// 904 beyond the bound together, and every named count is right.
TEST(replay, counts_of_more_resources_than_a_worker_names) {
  std::string all;
  for (int i = 0; i < 5000; ++i) {
    const std::string n = std::to_string(i);
    for (int k = 0; k < (i < 3 ? 2 : 1); ++k) {
      all += R"({"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a-)" + n + "-" +
             std::to_string(k) + R"(","stage":"ResponseComplete","requestURI":"/apis/x/v1/r)" + n +
             R"(","verb":"list","user":{"username":"u"},"sourceIPs":["10.0.0.1"],"objectRef":{"resource":"r)" + n +
             R"("},"responseStatus":{"code":404},"requestReceivedTimestamp":"2026-01-01T00:00:00.000000Z","stageTimestamp":"2026-01-01T00:00:00.000000Z"})"
             "\n";
    }
  }
  const pipeline::totals t = counted(all, 1);
  EXPECT_EQ(t.decoded, 5003u);
  EXPECT_EQ(t.by_verb.at("list"), 5003u);
  EXPECT_EQ(t.verbs_not_named, 0u);
  EXPECT_EQ(t.by_resource.size(), 4096u);
  EXPECT_EQ(t.resources_not_named, 904u);
  EXPECT_EQ(t.by_resource.at("r0"), 2u);
  EXPECT_EQ(t.by_resource.at("r4095"), 1u);
  EXPECT_EQ(t.by_resource.count("r4096"), 0u);
}

// Each worker's CPU time and the emitter's are reported: every thread that parsed events used
// some, and together they are not more than the process used.
TEST(pipeline, reports_the_cpu_time_of_each_worker_and_of_the_emitter) {
  std::string many; // about 1.4 MB: two of the reader's chunks, one for each worker
  for (int i = 0; i < 200; ++i) {
    many += burst("10.7." + std::to_string(i / 100) + "." + std::to_string(i % 100), 401, 20, "2026-01-01T00:00:00Z", 10);
  }
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  const run_result r = run_text(many, {}, 2);
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  const auto secs = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; };
  const double process = secs(after.ru_utime) + secs(after.ru_stime) - secs(before.ru_utime) - secs(before.ru_stime);
  ASSERT_EQ(r.totals.worker_cpu_seconds.size(), 2u);
  EXPECT_FALSE(r.alerts.empty());
  double threads = r.totals.emitter_cpu_seconds;
  for (std::size_t w = 0; w < 2; ++w) {
    EXPECT_GT(r.totals.events_per_worker[w], 0u);
    EXPECT_GT(r.totals.worker_cpu_seconds[w], 0.0) << "worker " << w;
    threads += r.totals.worker_cpu_seconds[w];
  }
  EXPECT_GT(r.totals.emitter_cpu_seconds, 0.0);
  // getrusage counts in microseconds and the thread clocks in nanoseconds: a little slack.
  EXPECT_LE(threads, process + 0.01);
}

} // namespace
} // namespace vigil
