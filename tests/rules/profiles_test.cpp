// profiles.yaml: order, break, the notification-only k8s profile, decisions, duration_expr, errors.
#include "rules/profiles/profiles.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <unistd.h>

namespace vigil::rules {
namespace {

engine::alert make(const std::string& scenario, bool remediation, const std::string& ip = "203.0.113.9") {
  engine::alert a;
  a.scenario = scenario;
  a.remediation = remediation;
  a.scope = "Ip";
  a.value = ip;
  a.source_ip = ip;
  a.events_count = remediation ? 6 : 1;
  engine::event_payload e;
  e.meta = {{"namespace", "foo"}, {"source_ip", ip}, {"user", "mallory"}};
  a.events.push_back(e);
  return a;
}

profile_set load(const std::string& text) {
  auto r = profile_set::load_text(text, "profiles.yaml");
  if (auto* e = std::get_if<std::vector<load_error>>(&r)) {
    ADD_FAILURE() << (*e)[0].to_string();
    return profile_set::defaults();
  }
  return std::get<profile_set>(r);
}

const engine::unix_nanos hour = 3600LL * 1'000'000'000;

TEST(profiles, defaults_ban_bruteforce_for_4h_and_only_notify_triggers) {
  const profile_set p = profile_set::defaults();
  const profile_outcome bf = p.evaluate(make("crowdsecurity/k8s-audit-api-server-bruteforce", true), 1000);
  ASSERT_EQ(bf.decisions.size(), 1u);
  EXPECT_EQ(bf.decisions[0].type, "ban");
  EXPECT_EQ(bf.decisions[0].scope, "Ip");
  EXPECT_EQ(bf.decisions[0].value, "203.0.113.9");
  EXPECT_EQ(bf.decisions[0].duration, 4 * hour);
  EXPECT_EQ(bf.decisions[0].until, 1000 + 4 * hour);
  EXPECT_EQ(bf.profiles, (std::vector<std::string>{"default_ip_remediation"}));
  EXPECT_TRUE(bf.notifications.empty());

  const profile_outcome exec = p.evaluate(make("crowdsecurity/k8s-audit-pod-exec", false), 1000);
  EXPECT_TRUE(exec.decisions.empty());
  EXPECT_EQ(exec.profiles, (std::vector<std::string>{"k8s_audit_notification"}));
  EXPECT_EQ(exec.notifications, (std::vector<std::string>{"slack_k8s_audit"}));
  EXPECT_EQ(exec.errors, 0u);
}

TEST(profiles, order_and_on_success_break) {
  const profile_set p = load(R"(name: first
filters: ["Alert.GetScenario() == 'x/a'"]
decisions: [{type: captcha, duration: 1h}]
notifications: [n1]
---
name: second
filters: ["true"]
decisions: [{type: ban, duration: 2h}]
notifications: [n2]
on_success: break
---
name: third
filters: ["true"]
notifications: [n3]
)");
  const profile_outcome o = p.evaluate(make("x/a", true), 0);
  EXPECT_EQ(o.profiles, (std::vector<std::string>{"first", "second"}));
  // The first matched profile with decisions gives them (CrowdSec's local API); the second adds
  // only its notifications.
  ASSERT_EQ(o.decisions.size(), 1u);
  EXPECT_EQ(o.decisions[0].type, "captcha");
  EXPECT_EQ(o.notifications, (std::vector<std::string>{"n1", "n2"}));
  // A matched profile without decisions leaves them to the next one that has some.
  const profile_outcome later = p.evaluate(make("x/b", true), 0);
  EXPECT_EQ(later.profiles, (std::vector<std::string>{"second"}));
  ASSERT_EQ(later.decisions.size(), 1u);
  EXPECT_EQ(later.decisions[0].type, "ban");
  const profile_set notify_first = load(R"(name: notify
filters: ["true"]
notifications: [n1]
---
name: ban
filters: ["true"]
decisions: [{type: ban, duration: 2h}]
---
name: captcha
filters: ["true"]
decisions: [{type: captcha, duration: 1h}]
)");
  const profile_outcome n = notify_first.evaluate(make("x/a", true), 0);
  EXPECT_EQ(n.profiles, (std::vector<std::string>{"notify", "ban", "captcha"}));
  ASSERT_EQ(n.decisions.size(), 1u);
  EXPECT_EQ(n.decisions[0].type, "ban");
  EXPECT_EQ(n.decisions[0].duration, 2 * hour);
}

TEST(profiles, filters_are_ored_and_decisions_applied_once) {
  const profile_set p = load("name: both\nfilters: ['true', 'Alert.Remediation == true']\ndecisions: [{type: ban}]\n");
  const profile_outcome o = p.evaluate(make("x", true), 0);
  ASSERT_EQ(o.decisions.size(), 1u);
  EXPECT_EQ(o.decisions[0].duration, 4 * hour); // no duration: CrowdSec's 4h
}

TEST(profiles, on_failure_break_stops_the_chain) {
  const profile_set p = load(R"(name: gate
filters: ["Alert.GetScenario() startsWith 'trusted/'"]
on_failure: break
---
name: ban
filters: ["true"]
decisions: [{type: ban}]
)");
  EXPECT_TRUE(p.evaluate(make("other/x", true), 0).decisions.empty());
  EXPECT_EQ(p.evaluate(make("trusted/x", true), 0).decisions.size(), 1u);
}

TEST(profiles, duration_expr_and_days) {
  const profile_set p = load(R"(name: d
filters: ["true"]
decisions: [{type: ban, duration: 1h}]
duration_expr: "Alert.GetEventsCount() > 5 ? '2d' : '30m'"
)");
  EXPECT_EQ(p.evaluate(make("x", true), 0).decisions[0].duration, 48 * hour);
  EXPECT_EQ(p.evaluate(make("x", false), 0).decisions[0].duration, hour / 2);
}

// Days past what 64-bit nanoseconds hold are an invalid duration (this threw and ended the
// emitter); the largest that fit expire at the end of time rather than overflowing.
TEST(profiles, duration_expr_days_are_bounded) {
  const profile_set p = load(R"(name: d
filters: ["true"]
decisions: [{type: ban, duration: 1h}]
duration_expr: "Alert.GetEventsCount() > 5 ? '99999999999999999999d' : '106751d'"
)");
  const engine::unix_nanos now = 1'700'000'000LL * 1'000'000'000LL;
  const profile_outcome huge = p.evaluate(make("x", true), now);
  ASSERT_EQ(huge.decisions.size(), 1u);
  EXPECT_EQ(huge.decisions[0].duration, hour); // the configured one
  EXPECT_EQ(huge.errors, 1u);
  const profile_outcome most = p.evaluate(make("x", false), now);
  ASSERT_EQ(most.decisions.size(), 1u);
  EXPECT_EQ(most.decisions[0].duration, 106751 * 24 * hour);
  EXPECT_EQ(most.decisions[0].until, INT64_MAX);
}

// CrowdSec's commented default: ban for 4h more per earlier decision on the same value.
TEST(profiles, duration_expr_escalates_with_get_decisions_count) {
  const profile_set p = load(R"y(name: escalate
filters: ["Alert.Remediation == true"]
decisions: [{type: ban, duration: 4h}]
duration_expr: Sprintf('%dh', (GetDecisionsCount(Alert.GetValue()) + 1) * 4)
)y");
  EXPECT_EQ(p.evaluate(make("x", true), 0).decisions[0].duration, 4 * hour); // no store: 0 earlier
  std::string asked;
  engine::unix_nanos window = -1;
  set_decisions_counter([&](std::string_view value, engine::unix_nanos w) {
    asked = std::string(value);
    window = w;
    return std::int64_t{2};
  });
  EXPECT_EQ(p.evaluate(make("x", true), 0).decisions[0].duration, 12 * hour);
  EXPECT_EQ(asked, make("x", true).value);
  EXPECT_EQ(window, 0);
  const profile_set since = load(R"y(name: since
filters: ["true"]
decisions: [{type: ban}]
duration_expr: "GetDecisionsSinceCount(Alert.GetValue(), '24h') > 1 ? Sprintf('%s', '1d') : Sprintf('%02dm', 5)"
)y");
  EXPECT_EQ(since.evaluate(make("x", true), 0).decisions[0].duration, 24 * hour);
  EXPECT_EQ(window, 24 * hour);
  set_decisions_counter([](std::string_view, engine::unix_nanos) { return std::int64_t{0}; });
  EXPECT_EQ(since.evaluate(make("x", true), 0).decisions[0].duration, 5 * hour / 60);
  const profile_set bad = load(R"y(name: bad
filters: ["true"]
decisions: [{type: ban, duration: 1h}]
duration_expr: "Sprintf('%dh', GetDecisionsSinceCount(Alert.GetValue(), 'soon'))"
)y");
  const profile_outcome o = bad.evaluate(make("x", true), 0);
  EXPECT_EQ(o.errors, 1u); // not a duration: counted, the configured duration stays
  EXPECT_EQ(o.decisions[0].duration, hour);
  set_decisions_counter({});
}

TEST(profiles, on_error_apply_continue_break) {
  const std::string failing = "filters: ['Alert.Events[5].Meta != nil']\ndecisions: [{type: ban}]\n";
  EXPECT_EQ(load("name: e\non_error: apply\n" + failing).evaluate(make("x", true), 0).decisions.size(), 1u);
  const profile_outcome skipped = load("name: e\n" + failing).evaluate(make("x", true), 0);
  EXPECT_TRUE(skipped.decisions.empty());
  EXPECT_EQ(skipped.errors, 1u);
  EXPECT_TRUE(load("name: e\non_error: break\n" + failing + "---\nname: later\nfilters: ['true']\ndecisions: [{type: ban}]\n")
                  .evaluate(make("x", true), 0)
                  .decisions.empty());
}

TEST(profiles, alert_fields_and_methods) {
  const profile_set p = load(R"(name: f
filters:
  - >-
    Alert.GetMeta("user") == "mallory" && Alert.GetValue() in Alert.GetSources() && Alert.Source.Scope == "Ip"
    && any(Alert.Events, { any(.Meta, { .key == "namespace" && .value == "foo" }) }) && Alert.HasRemediation()
decisions: [{type: ban, scope: Range}]
)");
  const profile_outcome o = p.evaluate(make("x", true), 0);
  EXPECT_EQ(o.errors, 0u);
  ASSERT_EQ(o.decisions.size(), 1u);
  EXPECT_EQ(o.decisions[0].scope, "Range");
}

TEST(profiles, no_decision_without_a_source_ip) {
  EXPECT_TRUE(profile_set::defaults().evaluate(make("crowdsecurity/x", true, ""), 0).decisions.empty());
}

TEST(profiles, load_errors_are_located) {
  auto r = profile_set::load_text(R"(name: a
filters: ["Alert.remediation == true"]
on_success: stop
colour: red
decisions: [{type: ban, duration: forever}]
)",
                                  "p.yaml");
  ASSERT_TRUE(std::holds_alternative<std::vector<load_error>>(r));
  const auto& errs = std::get<std::vector<load_error>>(r);
  ASSERT_EQ(errs.size(), 4u);
  std::string all;
  for (const auto& e : errs) {
    all += e.to_string() + "\n";
  }
  EXPECT_NE(all.find("p.yaml:4:1: unknown key 'colour'"), std::string::npos) << all;
  EXPECT_NE(all.find("no field remediation"), std::string::npos) << all;
  EXPECT_NE(all.find("on_success: invalid value 'stop'"), std::string::npos) << all;
  EXPECT_NE(all.find("invalid duration 'forever'"), std::string::npos) << all;
  EXPECT_TRUE(std::holds_alternative<std::vector<load_error>>(profile_set::load_text("", "empty.yaml")));
}

TEST(profiles, every_alert_field_crowdsec_has_at_profile_time) {
  // What the LAPI has when it runs the profiles: no ID nor decision yet, no geoip enrichment.
  const profile_set p = load(R"(name: f
filters:
  - >-
    Alert.Source != nil && Alert.Source.IP == "203.0.113.9" && Alert.Source.Cn == "" && Alert.Source.AsName == ""
    && Alert.Source.AsNumber == "" && Alert.Source.Range == "" && Alert.Source.Latitude == 0
    && Alert.Source.Longitude == 0 && Alert.Source.Value == Alert.GetValue() && Alert.ID == 0
    && len(Alert.Decisions) == 0 && len(Alert.Meta) == 0 && Alert.MachineID == "vigil" && Alert.UUID == ""
    && Alert.ScenarioHash == "" && Alert.ScenarioVersion == "" && Alert.CreatedAt != ""
    && Alert.Source.Scope == "Ip"
decisions: [{type: ban}]
)");
  const profile_outcome o = p.evaluate(make("x", true), 0);
  EXPECT_EQ(o.errors, 0u);
  EXPECT_EQ(o.decisions.size(), 1u);
  auto r = profile_set::load_text("name: f\nfilters: [\"Alert.Source.Planet == ''\"]\n", "p.yaml");
  ASSERT_TRUE(std::holds_alternative<std::vector<load_error>>(r));
  EXPECT_NE(std::get<std::vector<load_error>>(r)[0].to_string().find("type Source has no field Planet"),
            std::string::npos);
}

TEST(profiles, decision_origin_and_simulated) {
  const profile_set p = load(R"(name: named
filters: ["true"]
decisions: [{type: ban, duration: 1h, origin: k8s, simulated: false, value: ignored}, {type: captcha}]
)");
  const profile_outcome o = p.evaluate(make("x/a", true), 0);
  ASSERT_EQ(o.decisions.size(), 2u);
  EXPECT_EQ(o.decisions[0].origin, "crowdsec/k8s");
  EXPECT_EQ(o.decisions[0].value, "203.0.113.9"); // CrowdSec takes the alert's, whatever `value` says
  EXPECT_EQ(o.decisions[1].origin, "crowdsec");

  // A dry run must not become real bans: simulated decisions are refused at load.
  auto r = profile_set::load_text("name: dry\nfilters: [\"true\"]\ndecisions: [{type: ban, simulated: true}]\n", "p.yaml");
  ASSERT_TRUE(std::holds_alternative<std::vector<load_error>>(r));
  const std::string e = std::get<std::vector<load_error>>(r)[0].to_string();
  EXPECT_NE(e.find("p.yaml:3:"), std::string::npos) << e;
  EXPECT_NE(e.find("simulated decisions are not supported"), std::string::npos) << e;
}

TEST(profiles, a_local_file_beside_them_comes_first) {
  const std::string dir = ::testing::TempDir() + "/vigil_profiles_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/profiles.yaml";
  std::ofstream(path) << "name: base\nfilters: [\"true\"]\ndecisions: [{type: ban}]\non_success: break\n";
  auto base = profile_set::load(path);
  ASSERT_TRUE(std::holds_alternative<profile_set>(base));
  EXPECT_EQ(std::get<profile_set>(base).evaluate(make("x/a", true), 0).decisions.at(0).type, "ban");

  std::ofstream(path + ".local") << "name: mine\nfilters: [\"true\"]\ndecisions: [{type: captcha}]\non_success: break\n";
  auto both = profile_set::load(path);
  ASSERT_TRUE(std::holds_alternative<profile_set>(both));
  const profile_outcome o = std::get<profile_set>(both).evaluate(make("x/a", true), 0);
  ASSERT_EQ(o.decisions.size(), 1u);
  EXPECT_EQ(o.decisions[0].type, "captcha");
  EXPECT_EQ(o.profiles, (std::vector<std::string>{"mine"}));

  std::ofstream(path + ".local") << "name: broken\nfilters: [\"nope(\"]\n";
  auto bad = profile_set::load(path);
  ASSERT_TRUE(std::holds_alternative<std::vector<load_error>>(bad));
  EXPECT_EQ(std::get<std::vector<load_error>>(bad)[0].file, path + ".local");
  std::filesystem::remove_all(dir);
}

TEST(profiles, a_repeated_key_is_an_error) {
  auto r = profile_set::load_text("name: a\nfilters: [\"true\"]\non_success: break\non_success: continue\n", "p.yaml");
  ASSERT_TRUE(std::holds_alternative<std::vector<load_error>>(r));
  EXPECT_EQ(std::get<std::vector<load_error>>(r)[0].to_string(),
            "p.yaml:4:1: duplicate key 'on_success': a key may appear once in a mapping");
}

} // namespace
} // namespace vigil::rules
