// Go text/template subset of notification formats: the exact outputs of
// /work/shared/docs/go-template-subset.md (trimming, printing, functions, errors, the k8s-audit
// and default Slack templates, toJson of alerts).
#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "engine/event/timestamp.h"
#include "rules/template/template.h"

namespace vigil::rules::tmpl {
namespace {

using meta_list = std::vector<std::pair<std::string, std::string>>;

// Output of `text` run on `dot`, or "PARSE: msg" / "EXEC: msg".
std::string run(std::string_view text, const value& dot = value{}) {
  auto r = templ::parse(text);
  if (const auto* e = std::get_if<parse_error>(&r)) {
    return "PARSE: " + e->message;
  }
  std::string out;
  std::string err;
  if (!std::get<templ>(r).execute(dot, out, err)) {
    return "EXEC: " + err;
  }
  EXPECT_TRUE(err.empty());
  return out;
}

// The parse error message of `text` ("" if it parses).
std::string parse_error_of(std::string_view text) {
  auto r = templ::parse(text);
  const auto* e = std::get_if<parse_error>(&r);
  return e != nullptr ? e->message : "";
}

// The execution error of `text` on `dot` ("" if it runs).
std::string exec_error_of(std::string_view text, const value& dot = value{}) {
  auto r = templ::parse(text);
  if (const auto* e = std::get_if<parse_error>(&r)) {
    ADD_FAILURE() << "unexpected parse error: " << e->message;
    return "";
  }
  std::string out;
  std::string err;
  EXPECT_FALSE(std::get<templ>(r).execute(dot, out, err)) << text;
  return err;
}

value str(std::string s) {
  return value::string(std::move(s));
}
value num(std::int64_t i) {
  return value::integer(i);
}
value flt(double d) {
  return value::floating(d);
}
value lst(value::list_type items) {
  return value::list(std::move(items));
}
value map_of(value::map_type m, const char* type = "map[string]interface {}") {
  return value::map(std::move(m), type);
}

engine::unix_nanos at(const char* rfc3339) {
  return engine::parse_rfc3339(rfc3339).value();
}

engine::event_payload payload(meta_list meta, const char* time = "2023-05-17T15:08:22.76396Z") {
  std::sort(meta.begin(), meta.end()); // payload.h: meta sorted by key, as CrowdSec lists it
  engine::event_payload p;
  p.time = at(time);
  p.meta = std::move(meta);
  return p;
}

engine::alert make_alert(std::string scenario, std::vector<engine::event_payload> events,
                         std::string ip = "192.168.49.1") {
  engine::alert a;
  a.scenario = std::move(scenario);
  a.scope = "Ip";
  a.value = ip;
  a.source_ip = ip;
  a.message = "Ip " + ip + " performed '" + a.scenario + "' (1 events over 0s) at 2023-05-17 15:08:22.76396 +0000 UTC";
  a.events_count = events.size();
  a.start_at = at("2023-05-17T15:08:22.76396Z");
  a.stop_at = a.start_at;
  a.last_at = a.start_at;
  a.leakspeed = "0s";
  a.events = std::move(events);
  return a;
}

// The hub's pod-exec test alert of section 9.3 (no `kind` meta).
engine::alert pod_exec_alert() {
  return make_alert("crowdsecurity/k8s-audit-pod-exec", {payload({{"datasource_path", "/var/log/kube-audit.log"},
                                                                  {"datasource_type", "file"},
                                                                  {"log_type", "k8s-audit"},
                                                                  {"namespace", "foo"},
                                                                  {"resource_name", "test-pod-1"},
                                                                  {"source_ip", "192.168.49.1"},
                                                                  {"timestamp", "2023-05-17T15:08:22.76396Z"},
                                                                  {"user", "minikube-user"}})});
}

// An alert with two events whose source_ip are 1.1.1.1 and 2.2.2.2.
engine::alert two_ip_alert() {
  return make_alert(
      "crowdsecurity/k8s-audit-api-server-bruteforce",
      {payload({{"source_ip", "1.1.1.1"}, {"user", "a"}}), payload({{"source_ip", "2.2.2.2"}, {"user", "b"}})},
      "1.1.1.1");
}

value alerts(const std::vector<const engine::alert*>& list) {
  std::vector<alert_view> views;
  for (const engine::alert* a : list) {
    views.push_back(alert_view{a, 0, "", "", 0});
  }
  return alerts_value(views);
}

// `$a` is the first alert of the list.
std::string with_a(const std::string& text, const engine::alert& a) {
  return run("{{$a := index . 0}}" + text, alerts({&a}));
}

// ---- section 9: the k8s-audit Slack template ------------------------------------------------

// Section 9.1 after YAML processing: 17 lines, line 1 with a trailing space, lines 6-15 indented by one.
const std::string k8s_slack_template = "Kubernetes Security Alert: \n"
                                       "{{range . -}}\n"
                                       "{{$alert := . -}}\n"
                                       "{{- $resource_name := GetMeta $alert \"resource_name\" -}}\n"
                                       "{{- $resource_kind := GetMeta $alert \"kind\" -}}\n"
                                       " - Scenario: {{$alert.Scenario}}\n"
                                       " - Source IP: {{GetMeta $alert \"source_ip\"}}\n"
                                       " - User: {{GetMeta $alert \"user\"}}\n"
                                       " - Namespace: {{GetMeta $alert \"namespace\"}}\n"
                                       " {{- if $resource_name }}\n"
                                       " - Resource Name: {{GetMeta $alert \"resource_name\"}}\n"
                                       " {{- end -}}\n"
                                       " {{- if $resource_name }}\n"
                                       " - Resource Kind: {{GetMeta $alert \"kind\"}}\n"
                                       " {{- end }}\n"
                                       "----\n"
                                       "{{end -}}\n";

const std::string pod_exec_output =
    "Kubernetes Security Alert: \n- Scenario: crowdsecurity/k8s-audit-pod-exec\n - Source "
    "IP: [192.168.49.1]\n - User: [minikube-user]\n - Namespace: [foo]\n - Resource "
    "Name: [test-pod-1]\n - Resource Kind: []\n----\n";

TEST(k8s_slack_template, text_is_the_yaml_processed_block) {
  EXPECT_EQ(std::count(k8s_slack_template.begin(), k8s_slack_template.end(), '\n'), 17);
}

TEST(k8s_slack_template, sample_alert) {
  const engine::alert a = pod_exec_alert();
  const std::string out = run(k8s_slack_template, alerts({&a}));
  EXPECT_EQ(out, pod_exec_output);
  EXPECT_EQ(out.size(), 204u);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 8);
}

TEST(k8s_slack_template, two_alerts) {
  const engine::alert a = pod_exec_alert();
  const engine::alert b = make_alert(
      "crowdsecurity/k8s-audit-anonymous-access",
      {payload({{"log_type", "k8s-audit"}, {"source_ip", "10.0.0.1"}, {"user", "system:anonymous"}})}, "10.0.0.1");
  EXPECT_EQ(
      run(k8s_slack_template, alerts({&a, &b})),
      "Kubernetes Security Alert: \n- Scenario: crowdsecurity/k8s-audit-pod-exec\n - Source IP: [192.168.49.1]\n - "
      "User: [minikube-user]\n - Namespace: [foo]\n - Resource Name: [test-pod-1]\n - Resource Kind: []\n----\n- "
      "Scenario: crowdsecurity/k8s-audit-anonymous-access\n - Source IP: [10.0.0.1]\n - User: [system:anonymous]\n "
      "- Namespace: []\n----\n");
}

TEST(k8s_slack_template, privileged_pod_with_kind) {
  const engine::alert a =
      make_alert("crowdsecurity/k8s-audit-privileged-pod-creation", {payload({{"kind", "Pod"},
                                                                              {"log_type", "k8s-audit"},
                                                                              {"namespace", "foo"},
                                                                              {"resource_name", "priv"},
                                                                              {"source_ip", "192.168.49.1"},
                                                                              {"user", "minikube-user"}})});
  EXPECT_EQ(
      run(k8s_slack_template, alerts({&a})),
      "Kubernetes Security Alert: \n- Scenario: crowdsecurity/k8s-audit-privileged-pod-creation\n - Source IP: "
      "[192.168.49.1]\n - User: [minikube-user]\n - Namespace: [foo]\n - Resource Name: [priv]\n - Resource Kind: "
      "[Pod]\n----\n");
}

TEST(k8s_slack_template, bruteforce_two_events) {
  const engine::alert a = make_alert(
      "crowdsecurity/k8s-audit-api-server-bruteforce",
      {payload({{"source_ip", "1.2.3.4"}, {"user", "u"}}), payload({{"source_ip", "1.2.3.4"}, {"user", "u"}})},
      "1.2.3.4");
  EXPECT_EQ(
      run(k8s_slack_template, alerts({&a})),
      "Kubernetes Security Alert: \n- Scenario: crowdsecurity/k8s-audit-api-server-bruteforce\n - Source IP: [1.2.3.4 "
      "1.2.3.4]\n - User: [u u]\n - Namespace: []\n----\n");
}

TEST(k8s_slack_template, empty_list) {
  EXPECT_EQ(run(k8s_slack_template, alerts({})), "Kubernetes Security Alert: \n");
}

// ---- section 10: CrowdSec's default Slack template ------------------------------------------

const std::string default_slack_template =
    "{{range . -}}\n"
    "{{$alert := . -}}\n"
    "{{range .Decisions -}}\n"
    "{{if $alert.Source.Cn -}}\n"
    ":flag-{{$alert.Source.Cn}}: <https://www.whois.com/whois/{{.Value}}|{{.Value}}> will get {{.Type}} for next "
    "{{.Duration}} for triggering {{.Scenario}} on machine '{{$alert.MachineID}}'. "
    "<https://app.crowdsec.net/cti/{{.Value}}|CrowdSec CTI>{{end}}\n"
    "{{if not $alert.Source.Cn -}}\n"
    ":pirate_flag: <https://www.whois.com/whois/{{.Value}}|{{.Value}}> will get {{.Type}} for next {{.Duration}} for "
    "triggering {{.Scenario}} on machine '{{$alert.MachineID}}'.  <https://app.crowdsec.net/cti/{{.Value}}|CrowdSec "
    "CTI>{{end}}\n"
    "{{end -}}\n"
    "{{end -}}\n";

// One alert from machine vigil-1 with one 4h ban on 10.0.0.9; Source.Cn set to `cn`.
value banned_alert(const engine::alert& a, const std::string& cn) {
  const value list = alerts_value({alert_view{&a, 7, "vigil-1", "", 0}});
  value alert = list.items()[0];
  alert = alert.with_field("Source", alert.field("Source").with_field("Cn", str(cn)));
  return value::list({alert}, "[]*models.Alert");
}

engine::alert bruteforce_with_ban() {
  engine::alert a = make_alert("crowdsecurity/k8s-audit-api-server-bruteforce",
                               {payload({{"source_ip", "10.0.0.9"}, {"user", "u"}})}, "10.0.0.9");
  engine::decision d;
  d.value = "10.0.0.9";
  d.scenario = a.scenario;
  d.duration = 4LL * 3600 * 1'000'000'000;
  d.until = at("2023-05-17T19:08:22Z");
  a.decisions.push_back(d);
  return a;
}

TEST(default_slack_template, without_country) {
  const engine::alert a = bruteforce_with_ban();
  EXPECT_EQ(run(default_slack_template, banned_alert(a, "")),
            "\n:pirate_flag: <https://www.whois.com/whois/10.0.0.9|10.0.0.9> will get ban for next 4h for triggering "
            "crowdsecurity/k8s-audit-api-server-bruteforce on machine 'vigil-1'.  "
            "<https://app.crowdsec.net/cti/10.0.0.9|CrowdSec CTI>\n");
}

TEST(default_slack_template, with_country) {
  const engine::alert a = bruteforce_with_ban();
  EXPECT_EQ(run(default_slack_template, banned_alert(a, "FR")),
            ":flag-FR: <https://www.whois.com/whois/10.0.0.9|10.0.0.9> will get ban for next 4h for triggering "
            "crowdsecurity/k8s-audit-api-server-bruteforce on machine 'vigil-1'. "
            "<https://app.crowdsec.net/cti/10.0.0.9|CrowdSec CTI>\n\n");
}

TEST(default_slack_template, alert_without_decisions) {
  const engine::alert a = pod_exec_alert();
  EXPECT_EQ(run(default_slack_template, alerts({&a})), "");
}

// ---- section 3.1: trimming ------------------------------------------------------------------

TEST(trimming, examples) {
  EXPECT_EQ(run("{{23 -}} < {{- 45}}"), "23<45");
  EXPECT_EQ(run("a  \n {{- 3}}"), "a3");
  EXPECT_EQ(run("x \t\r\n{{- 1 -}} \t\r\n y"), "x1y");
  EXPECT_EQ(run("a {{/* c */}} b"), "a  b");
  EXPECT_EQ(run("a {{- /* c */ -}} b"), "ab");
}

TEST(trimming, marker_needs_a_space) {
  EXPECT_EQ(run("a {{-3}}"), "a -3");
  EXPECT_EQ(run("a {{- 3}}"), "a3");
  EXPECT_EQ(parse_error_of("{{3-}}"), "template: :1: bad number syntax: \"3-\"");
}

TEST(trimming, only_ascii_white_space) {
  EXPECT_EQ(run("a\xC2\xA0{{- 1}}"), "a\xC2\xA0"
                                     "1"); // a non-breaking space is kept
  EXPECT_EQ(run("{{1 -}}\xC2\xA0"), "1\xC2\xA0");
}

TEST(trimming, never_past_another_action) {
  EXPECT_EQ(run("a {{1}} {{- 2}} b"), "a 12 b");
  EXPECT_EQ(run("{{range .}}{{.}} {{- end}}!", lst({num(1), num(2)})), "12!");
  EXPECT_EQ(run("{{range . -}}\n  {{.}}\n{{end}}", lst({num(1), num(2)})), "1\n2\n");
}

TEST(trimming, comments) {
  EXPECT_EQ(run("a{{/* multi\nline */}}b"), "ab");
  EXPECT_EQ(parse_error_of("{{ /* c */ }}"), "template: :1: unexpected \"/\" in command");
  EXPECT_EQ(parse_error_of("{{/* c */ }}"), "template: :1: comment ends before closing delimiter");
  EXPECT_EQ(parse_error_of("{{/* c"), "template: :1: unclosed comment");
}

// ---- section 11: quick reference ------------------------------------------------------------

TEST(quick_reference, missing_keys) {
  const value m = map_of({{"a", num(1)}});
  EXPECT_EQ(run("{{.missing}}", m), "<no value>");
  EXPECT_EQ(run("{{index . \"missing\"}}", map_of({{"a", str("x")}}, "map[string]string")), "");
  EXPECT_EQ(run("{{index . \"missing\"}}", m), "<no value>");
  EXPECT_EQ(run("{{if .missing}}y{{else}}n{{end}}", m), "n");
  EXPECT_EQ(run("{{.x.b}}", m), "<no value>");
  EXPECT_EQ(run("{{.a.b}}", map_of({{"a", value::nil()}})),
            "EXEC: template: :1:4: executing \"\" at <.a.b>: nil pointer evaluating interface {}.b");
}

TEST(quick_reference, get_meta) {
  const engine::alert pod = pod_exec_alert();
  const engine::alert two = two_ip_alert();
  EXPECT_EQ(with_a("{{GetMeta $a \"kind\" | len}}", pod), "0");
  EXPECT_EQ(with_a("{{GetMeta $a \"source_ip\" | toJson}}", two), "[\"1.1.1.1\",\"2.2.2.2\"]");
  EXPECT_EQ(with_a("{{GetMeta $a \"source_ip\" | quote}}", pod), "\"[192.168.49.1]\"");
  EXPECT_EQ(with_a("{{printf \"%s\" (GetMeta $a \"source_ip\")}}", two), "[1.1.1.1 2.2.2.2]");
  EXPECT_EQ(with_a("{{range GetMeta $a \"source_ip\"}}<{{.}}>{{end}}", two), "<1.1.1.1><2.2.2.2>");
  EXPECT_EQ(with_a("{{eq (index (GetMeta $a \"user\") 0) \"minikube-user\"}}", pod), "true");
  EXPECT_EQ(with_a("{{eq (GetMeta $a \"user\") \"minikube-user\"}}", pod),
            "EXEC: template: :1:21: executing \"\" at <eq (GetMeta $a \"user...>: error calling eq: incompatible types "
            "for comparison");
  EXPECT_EQ(with_a("{{hasPrefix \"crowdsecurity/k8s\" $a.Scenario}}", pod), "true");
  EXPECT_EQ(with_a("{{$a.Remediation}}", pod), "false");
  EXPECT_EQ(with_a("{{$a.Labels}}", pod), "[]");
}

TEST(quick_reference, print) {
  EXPECT_EQ(run("{{print \"a\" \"b\"}}"), "ab");
  EXPECT_EQ(run("{{print 1 2}}"), "1 2");
  EXPECT_EQ(run("{{println \"a\" \"b\"}}"), "a b\n");
}

TEST(quick_reference, sprig) {
  EXPECT_EQ(run("{{list 1 \"a\" nil | toJson}}"), "[1,\"a\",null]");
  EXPECT_EQ(run("{{dict \"b\" 1 \"a\" \"<x>\" | toJson}}"), "{\"a\":\"\\u003cx\\u003e\",\"b\":1}");
  EXPECT_EQ(run("{{dict \"b\" 1 \"a\" \"x\"}}"), "map[a:x b:1]");
  EXPECT_EQ(run("{{join \", \" (list \"a\" 1 nil \"b\")}}"), "a, 1, b");
  EXPECT_EQ(run("{{quote \"a\" 1 nil \"b\\\"c\"}}"), "\"a\" \"1\" \"b\\\"c\"");
  EXPECT_EQ(run("{{replace \"a\" \"b\" \"banana\"}}"), "bbnbnb");
  EXPECT_EQ(run("{{default \"none\" \"\"}}"), "none");
  EXPECT_EQ(run("{{default true false}}"), "true");
  EXPECT_EQ(run("{{trim \"  a b \\n\"}}"), "a b");
  EXPECT_EQ(run("{{upper 1}}"), "EXEC: template: :1:8: executing \"\" at <1>: expected string; found 1");
  EXPECT_EQ(run("{{first \"abc\"}}"),
            "EXEC: template: :1:2: executing \"\" at <first \"abc\">: error calling first: Cannot find first on type "
            "string");
}

// Dates are formatted in the local zone: the tests pin it to UTC.
class dates : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tz = std::getenv("TZ");
    saved_ = tz != nullptr ? tz : "";
    had_tz_ = tz != nullptr;
    setenv("TZ", "UTC", 1);
    tzset();
  }
  void TearDown() override {
    if (had_tz_) {
      setenv("TZ", saved_.c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }

 private:
  std::string saved_;
  bool had_tz_ = false;
};

TEST_F(dates, quick_reference) {
  EXPECT_EQ(run("{{date \"2006-01-02T15:04:05Z07:00\" 0}}"), "1970-01-01T00:00:00Z");
  EXPECT_EQ(run("{{dateInZone \"2006-01-02 15:04:05 MST\" 1684336102 \"UTC\"}}"), "2023-05-17 15:08:22 UTC");
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  EXPECT_EQ(run("{{date \"2006\" \"2023-05-17\"}}"), std::to_string(tm.tm_year + 1900)); // a string is not a date
  EXPECT_EQ(run("{{date \"2006-01-02\" (toDate \"2006-01-02\" \"2023-05-17\")}}"), "2023-05-17");
}

// Named zones come from the system's zoneinfo files (Debian's tzdata), with their offsets and
// abbreviations at the instant shown, summer time included.
TEST_F(dates, named_zones) {
  const std::string layout = "\"2006-01-02 15:04:05 MST -07:00\"";
  auto in = [&](std::int64_t unix, const char* zone) {
    return run("{{dateInZone " + layout + " " + std::to_string(unix) + " \"" + zone + "\"}}");
  };
  EXPECT_EQ(in(1684336102, "Europe/Paris"), "2023-05-17 17:08:22 CEST +02:00");
  EXPECT_EQ(in(1700000000, "Europe/Paris"), "2023-11-14 23:13:20 CET +01:00");
  EXPECT_EQ(in(1684336102, "America/New_York"), "2023-05-17 11:08:22 EDT -04:00");
  EXPECT_EQ(in(1684336102, "Asia/Kolkata"), "2023-05-17 20:38:22 IST +05:30");
  EXPECT_EQ(in(1684336102, "America/Sao_Paulo"), "2023-05-17 12:08:22 -03 -03:00");
  EXPECT_EQ(in(1684336102, "Etc/GMT-3"), "2023-05-17 18:08:22 +03 +03:00");
  EXPECT_EQ(in(1684336102, "UTC"), "2023-05-17 15:08:22 UTC +00:00");
  // A zone that does not load formats in UTC: unknown, or a path out of the zoneinfo directory.
  for (const char* bad : {"Mars/Olympus", "../../etc/passwd", "/etc/localtime", "Europe/../Europe/Paris", ""}) {
    EXPECT_EQ(in(1684336102, bad), "2023-05-17 15:08:22 UTC +00:00") << bad;
  }
  // Names that do not load are remembered up to a bound; zones that load are always kept (the
  // zone of a name past the bound used to be freed while still in use).
  std::string names;
  for (int i = 0; i < 1100; ++i) {
    if (i > 0) {
      names += ',';
    }
    names += "Nowhere/Zone";
    names += std::to_string(i);
  }
  EXPECT_EQ(run("{{range $n := splitList \",\" \"" + names + "\"}}{{dateInZone \"15\" 0 $n}}{{end}}").size(), 2200u);
  EXPECT_EQ(in(1684336102, "America/Chicago"), "2023-05-17 10:08:22 CDT -05:00");
  EXPECT_EQ(in(1684336102, "America/Chicago"), "2023-05-17 10:08:22 CDT -05:00");
  // After a file's last transition (2037 in Debian's files), the rule in its footer (values
  // checked against Python's zoneinfo, which applies the same rule).
  EXPECT_EQ(in(2161598400, "America/New_York"), "2038-07-01 08:00:00 EDT -04:00");
  EXPECT_EQ(in(2225966400, "Europe/Paris"), "2040-07-15 14:00:00 CEST +02:00");
  EXPECT_EQ(in(2210241600, "Europe/Paris"), "2040-01-15 13:00:00 CET +01:00");
  EXPECT_EQ(in(2216249999, "Europe/Paris"), "2040-03-25 01:59:59 CET +01:00"); // the second before
  EXPECT_EQ(in(2216250000, "Europe/Paris"), "2040-03-25 03:00:00 CEST +02:00"); // the change
  EXPECT_EQ(in(4119336000, "Australia/Sydney"), "2100-07-15 22:00:00 AEST +10:00");
  EXPECT_EQ(in(2525860800, "Australia/Sydney"), "2050-01-15 23:00:00 AEDT +11:00"); // southern summer
  EXPECT_EQ(in(2366841600, "America/Santiago"), "2044-12-31 21:00:00 -03 -03:00"); // <-04>4<-03>,.../24
  EXPECT_EQ(in(2379888000, "Asia/Tehran"), "2045-06-01 03:30:00 +0330 +03:30");
  EXPECT_EQ(in(2366841600, "Europe/Dublin"), "2045-01-01 00:00:00 GMT +00:00"); // negative DST
  EXPECT_EQ(in(2382480000, "Europe/Dublin"), "2045-07-01 01:00:00 IST +01:00");
  // Before a zone's first transition: its first standard time (local mean time, for Paris).
  EXPECT_EQ(in(-5000000000, "Europe/Paris"), "1811-07-23 15:16:01 LMT +00:09"); // +00:09:21
}

TEST_F(dates, layouts) {
  EXPECT_EQ(run("{{dateInZone \"Mon Jan _2 15:04:05.000 2006 -07:00 pm\" 1684336102 \"UTC\"}}"),
            "Wed May 17 15:08:22.000 2023 +00:00 pm");
  EXPECT_EQ(run("{{dateInZone \"Monday, 02-January-06 3:4:5 PM Z0700\" 1684336102 \"Local\"}}"),
            "Wednesday, 17-May-23 3:8:22 PM Z");
  EXPECT_EQ(run("{{dateInZone \"2006\" 0 \"Europe/Nowhere\"}}"), "1970"); // unknown zone: UTC
  EXPECT_EQ(run("{{(toDate \"2006-01-02T15:04:05Z07:00\" \"2023-05-17T17:08:22+02:00\").Unix}}"), "1684336102");
  EXPECT_EQ(run("{{toDate \"2006-01-02T15:04:05.999999999Z07:00\" \"2023-05-17T15:08:22.76396Z\"}}"),
            "2023-05-17 15:08:22.76396 +0000 UTC");
  EXPECT_EQ(run("{{toDate \"2006-01-02\" \"not a date\"}}"), "0001-01-01 00:00:00 +0000 UTC");
  EXPECT_EQ(run("{{(toDate \"2006-01-02\" \"2023-05-17\").Format \"Jan 2\"}} {{(toDate \"2006\" \"2023\").Year}}"),
            "May 17 2023");
  EXPECT_EQ(run("{{date \"Jan 2, 2006 at 3:04pm (MST)\" (toDate \"2006-01-02 15:04\" \"2024-02-29 00:30\")}}"),
            "Feb 29, 2024 at 12:30am (UTC)");
}

TEST(quick_reference, constants) {
  EXPECT_EQ(run("{{1.5}} {{1e6}} {{0.1}} {{3.0}}"), "1.5 1e+06 0.1 3");
  EXPECT_EQ(run("{{'a'}}"), "97");
  EXPECT_EQ(run("{{1000000}}"), "1000000");
  EXPECT_EQ(run("{{0x2A}} {{-3}} {{1_000}} {{'\\n'}} {{0755}}"), "42 -3 1000 10 493");
  EXPECT_EQ(run("{{\"a\\tb\"}}|{{`raw\\n\nline`}}"), "a\tb|raw\\n\nline");
}

TEST(quick_reference, control_structures) {
  EXPECT_EQ(run("{{range $k, $v := .m}}{{$k}}={{$v}};{{end}}", map_of({{"m", map_of({{"z", num(1)}, {"a", num(2)}})}})),
            "a=2;z=1;");
  EXPECT_EQ(run("{{range .e}}x{{else}}empty{{end}}", map_of({{"e", lst({})}})), "empty");
  EXPECT_EQ(run("{{with .b}}<{{.}}>{{else}}none{{end}}", map_of({{"b", str("x")}})), "<x>");
  EXPECT_EQ(run("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}"), "2");
  EXPECT_EQ(parse_error_of("{{if true}}{{$x := 1}}{{end}}{{$x}}"), "template: :1: undefined variable \"$x\"");
  EXPECT_EQ(run("{{range .l}}{{.}}{{break}}{{end}}", map_of({{"l", lst({str("p"), str("q")})}})), "p");
  // A break in an inner range's else ends the inner range only; a continue there goes on to the
  // outer range's next item.
  EXPECT_EQ(run("{{range .l}}[{{range $.e}}{{else}}{{break}}x{{end}}]{{end}}",
                map_of({{"l", lst({str("p"), str("q")})}, {"e", lst({})}})),
            "[][]");
  EXPECT_EQ(run("{{range $i, $v := .l}}[{{range $.e}}{{else}}{{continue}}{{end}}{{$v}}]{{end}}",
                map_of({{"l", lst({str("p"), str("q")})}, {"e", lst({})}})),
            "[[");
}

// ---- sections 5 and 6: semantics and printing -------------------------------------------------

TEST(semantics, pipelines_pass_the_last_argument) {
  EXPECT_EQ(run("{{\"x\" | printf \"%s-%s\" \"y\"}}"), "y-x");
  EXPECT_EQ(run("{{.missing | default \"d\"}}", map_of({})), "d");
  EXPECT_EQ(run("{{\"banana\" | replace \"a\" \"o\"}}"), "bonono");
  EXPECT_EQ(run("{{\"banana\" | contains \"nan\"}}"), "true");
  const engine::alert pod = pod_exec_alert();
  EXPECT_EQ(with_a("{{GetMeta $a \"source_ip\" | first}}", pod), "192.168.49.1");
  EXPECT_EQ(with_a("{{GetMeta $a \"kind\" | first}}", pod), "<no value>");
  EXPECT_EQ(with_a("{{GetMeta $a \"kind\" | first | default \"-\"}}", pod), "-");
  EXPECT_EQ(with_a("{{GetMeta $a \"source_ip\" | join \", \"}}", two_ip_alert()), "1.1.1.1, 2.2.2.2");
  EXPECT_EQ(with_a("{{join \", \" (GetMeta $a \"kind\")}}|", pod), "|");
  EXPECT_EQ(with_a("{{GetMeta $a \"kind\" | default \"n/a\"}}", pod), "n/a");
  EXPECT_EQ(with_a("{{GetMeta $a \"kind\" | toJson}}", pod), "null");
}

TEST(semantics, variables) {
  const value l = map_of({{"l", lst({str("p"), str("q")})}});
  EXPECT_EQ(run("{{$x := 0}}{{range .l}}{{$x := .}}{{end}}{{$x}}", l), "0");
  EXPECT_EQ(run("{{$x := 0}}{{range .l}}{{$x = .}}{{end}}{{$x}}", l), "q");
  EXPECT_EQ(run("{{range $i, $e := .l}}{{$i}}:{{$e}} {{end}}", l), "0:p 1:q ");
  EXPECT_EQ(run("{{range $e := .l}}{{$e}}{{end}}", l), "pq");
  EXPECT_EQ(run("{{range .l}}{{$.l}}{{end}}", l), "[p q][p q]");
  EXPECT_EQ(run("{{range .l}}{{if eq . \"p\"}}{{continue}}{{end}}{{.}}{{end}}", l), "q");
  EXPECT_EQ(run("{{with $x := .l}}{{len $x}}{{end}}", l), "2");
  EXPECT_EQ(parse_error_of("{{$x = 1}}"), "template: :1: undefined variable \"$x\"");
  EXPECT_EQ(parse_error_of("{{break}}"), "template: :1: {{break}} outside {{range}}");
  EXPECT_EQ(parse_error_of("{{range .}}{{else}}{{continue}}{{end}}"), "template: :1: {{continue}} outside {{range}}");
}

TEST(semantics, conditionals) {
  EXPECT_EQ(run("{{if eq 1 2}}a{{else if eq 1 1}}b{{else}}c{{end}}"), "b");
  EXPECT_EQ(run("{{if eq 1 2}}a{{else if eq 1 3}}b{{else}}c{{end}}"), "c");
  EXPECT_EQ(run("{{with .missing}}x{{else}}none{{end}}", map_of({})), "none");
  EXPECT_EQ(run("{{with .m}}{{.a}}{{end}}", map_of({{"m", map_of({{"a", str("in")}})}})), "in");
  EXPECT_EQ(run("{{if $x := .a}}{{$x}}{{else if $y := .b}}{{$y}}{{end}}", map_of({{"a", str("")}, {"b", str("B")}})),
            "B");
}

TEST(semantics, truth) {
  const value d = map_of({{"f", value::boolean(false)},
                          {"zero", num(0)},
                          {"fzero", flt(0)},
                          {"empty", str("")},
                          {"nil", value::nil()},
                          {"nilslice", value::nil_list("[]string")},
                          {"emptylist", lst({})},
                          {"emptymap", map_of({})},
                          {"one", lst({str("")})},
                          {"obj", value::object(meta_item_type(), {str(""), str("")})},
                          {"unset", value::unset("string")},
                          {"setfalse", value::optional(value::boolean(false))}});
  for (const char* f :
       {"f", "zero", "fzero", "empty", "nil", "nilslice", "emptylist", "emptymap", "missing", "unset"}) {
    EXPECT_EQ(run(std::string("{{if .") + f + "}}T{{else}}F{{end}}", d), "F") << f;
  }
  for (const char* t : {"one", "obj", "setfalse"}) { // [""], every struct, a set pointer
    EXPECT_EQ(run(std::string("{{if .") + t + "}}T{{else}}F{{end}}", d), "T") << t;
  }
  EXPECT_EQ(run("{{not 0}} {{not \"x\"}} {{empty .zero}} {{empty .one}}", d), "true false true false");
}

TEST(semantics, and_or) {
  EXPECT_EQ(run("{{and 1 0 2}}"), "0");
  EXPECT_EQ(run("{{and 1 \"x\" 2}}"), "2");
  EXPECT_EQ(run("{{or \"\" 0 \"x\" \"y\"}}"), "x");
  EXPECT_EQ(run("{{or \"\" 0}}"), "0");
  EXPECT_EQ(run("{{or 0 1 .missing.x}}", map_of({})), "1"); // short-circuits
}

TEST(printing, floats) {
  const std::vector<std::pair<double, std::string>> cases = {{401, "401"},
                                                             {1.5, "1.5"},
                                                             {100000, "100000"},
                                                             {999999.5, "999999.5"},
                                                             {1e6, "1e+06"},
                                                             {1234567, "1.234567e+06"},
                                                             {0.0001, "0.0001"},
                                                             {1e-05, "1e-05"},
                                                             {3, "3"},
                                                             {1048576, "1.048576e+06"},
                                                             {12345678.9, "1.23456789e+07"},
                                                             {2.5e-07, "2.5e-07"},
                                                             {-0.0, "-0"},
                                                             {1e21, "1e+21"},
                                                             {-2.5, "-2.5"}};
  for (const auto& [d, want] : cases) {
    EXPECT_EQ(run("{{.}}", flt(d)), want) << d;
  }
  EXPECT_EQ(run("{{.}}", flt(1.0 / 0.0)), "+Inf");
  EXPECT_EQ(run("{{.}}", flt(-1.0 / 0.0)), "-Inf");
  EXPECT_EQ(run("{{.}}", value::floating(0.1F, "float32")), "0.1");
}

TEST(printing, values) {
  EXPECT_EQ(run("{{.}}", lst({str("a b"), str("")})), "[a b ]");
  EXPECT_EQ(run("{{.}}", lst({num(1), str("a"), value::nil(), value::boolean(true), flt(1.5)})),
            "[1 a <nil> true 1.5]");
  EXPECT_EQ(run("{{.}}", lst({lst({str("a")}), lst({})})), "[[a] []]");
  EXPECT_EQ(run("{{.}}", value::nil_list("[]string")), "[]");
  EXPECT_EQ(run("{{.}}", map_of({{"z", num(1)}, {"a", num(2)}})), "map[a:2 z:1]");
  EXPECT_EQ(run("{{.}}", value::unset("string")), "<nil>");
  EXPECT_EQ(run("{{.}}", value::optional(str("x"))), "x");
  EXPECT_EQ(run("{{.}}", value::object(meta_item_type(), {str("k"), str("v")})), "{k v}");
  EXPECT_EQ(run("{{print nil}}"), "<nil>");
  EXPECT_EQ(run("{{print \"a\" 1 2 \"b\"}}"), "a1 2b");
  EXPECT_EQ(run("{{index . 1}}", lst({num(1), value::nil()})), "<no value>");
  EXPECT_EQ(run("{{range .}}{{.}},{{end}}", lst({num(1), value::nil()})), "1,<no value>,");
}

TEST(printing, optional_fields) {
  const engine::alert pod = pod_exec_alert();
  EXPECT_EQ(with_a("{{$a.Scenario}}", pod), "crowdsecurity/k8s-audit-pod-exec");
  EXPECT_EQ(with_a("{{html $a.Scenario}}|{{upper $a.Scenario}}", pod),
            "crowdsecurity/k8s-audit-pod-exec|CROWDSECURITY/K8S-AUDIT-POD-EXEC");
  EXPECT_EQ(with_a("{{$a.Capacity}} {{$a.EventsCount}} {{$a.Simulated}} {{$a.ScenarioHash}}|", pod), "0 1 false |");
  EXPECT_EQ(with_a("{{$a.Source.IP}} {{$a.Source.Scope}} {{$a.Source.Value}} {{$a.Source.Latitude}}", pod),
            "192.168.49.1 Ip 192.168.49.1 0");
  EXPECT_EQ(with_a("{{$a.StartAt}} {{$a.Leakspeed}}", pod), "2023-05-17T15:08:22.76396Z 0s");
  EXPECT_EQ(with_a("{{range $a.Events}}{{.Timestamp}} {{len .Meta}}{{end}}", pod), "2023-05-17T15:08:22.76396Z 8");
  EXPECT_EQ(with_a("{{range $a.Events}}{{range .Meta}}{{.Key}}={{.Value}};{{end}}{{end}}", two_ip_alert()),
            "source_ip=1.1.1.1;user=a;source_ip=2.2.2.2;user=b;");
  EXPECT_EQ(with_a("{{$a.Meta}} {{$a.Decisions}} {{$a.MachineID}}|{{$a.ID}}", pod), "[] [] |0");
  EXPECT_EQ(with_a("{{eq $a.Scenario \"x\"}}", pod),
            "EXEC: template: :1:21: executing \"\" at <eq $a.Scenario \"x\">: error calling eq: incompatible types for "
            "comparison");
}

TEST(printing, methods) {
  const engine::alert pod = pod_exec_alert();
  EXPECT_EQ(with_a("{{$a.GetScenario}} {{$a.GetScope}} {{$a.GetValue}} {{$a.GetEventsCount}}", pod),
            "crowdsecurity/k8s-audit-pod-exec Ip 192.168.49.1 1");
  EXPECT_EQ(with_a("[{{$a.GetMeta \"user\"}}]", pod), "[]"); // alert context, not the events' meta
  EXPECT_EQ(with_a("{{\"user\" | $a.GetMeta | len}}", pod), "0");
  EXPECT_EQ(with_a("{{$a.GetMeta}}", pod), "EXEC: template: :1:23: executing \"\" at <$a.GetMeta>: wrong number "
                                           "of args for GetMeta: want 1 got 0");
}

// print and printf print an object pointer as Go's fmt does (&{…}); an action, html, js and
// urlquery go through text/template's printableValue, which dereferences it ({…}).
TEST(printing, object_pointers) {
  const engine::alert pod = pod_exec_alert();
  const std::string printed = with_a("{{print $a.Source}}", pod);
  ASSERT_EQ(printed.substr(0, 2), "&{") << printed;
  const std::string plain = printed.substr(1);
  EXPECT_EQ(with_a("{{$a.Source}}", pod), plain);
  EXPECT_EQ(with_a("{{html $a.Source}}", pod), plain); // nothing in it to escape
  EXPECT_EQ(with_a("{{js $a.Source}}", pod), plain);
  EXPECT_EQ(with_a("{{urlquery $a.Source}}", pod).substr(0, 3), "%7B");
  EXPECT_EQ(with_a("{{html $a.Source \"x\" 1}}", pod), plain + "x1");
}

// ---- section 8: functions -------------------------------------------------------------------

TEST(functions, builtins) {
  EXPECT_EQ(run("{{len \"héllo\"}} {{len .}}", lst({num(1), num(2)})), "6 2");
  EXPECT_EQ(
      run("{{index . 1}} {{index .m \"k\"}}", map_of({{"1", num(0)}})),
      "EXEC: template: :1:2: executing \"\" at <index . 1>: error calling index: value has type int; should be string");
  EXPECT_EQ(run("{{index . 1 0}}", lst({str("x"), lst({str("y")})})), "y");
  EXPECT_EQ(run("{{index . 5}}", lst({num(1), num(2)})),
            "EXEC: template: :1:2: executing \"\" at <index . 5>: error calling index: index out of range: 5");
  EXPECT_EQ(run("{{html \"<a href='x'>&\\\"\"}}"), "&lt;a href=&#39;x&#39;&gt;&amp;&#34;");
  EXPECT_EQ(run("{{js \"a'b\\\"c<d>&=\\\\\"}}"), "a\\'b\\\"c\\u003Cd\\u003E\\u0026\\u003D\\\\");
  EXPECT_EQ(run("{{urlquery \"a b&c=d/é\"}}"), "a+b%26c%3Dd%2F%C3%A9");
  EXPECT_EQ(run("{{html .}}", value{}), "&lt;no value&gt;");
  const engine::alert pod = pod_exec_alert();
  EXPECT_EQ(with_a("{{html (GetMeta $a \"user\")}}", pod), "[minikube-user]");
}

TEST(functions, comparisons) {
  EXPECT_EQ(run("{{eq 1 1}} {{eq 1 2 1}} {{ne 1 2}} {{eq \"a\" \"a\"}} {{eq nil nil}}"), "true true true true true");
  EXPECT_EQ(run("{{eq .missing \"x\"}}", map_of({})), "false");
  EXPECT_EQ(run("{{lt 1 2}} {{le 2 2}} {{gt \"b\" \"a\"}} {{ge 1.5 2.5}}"), "true true true false");
  EXPECT_EQ(run("{{eq 1 1.0}}"),
            "EXEC: template: :1:2: executing \"\" at <eq 1 1.0>: error calling eq: incompatible types for comparison");
  EXPECT_EQ(run("{{lt true false}}"),
            "EXEC: template: :1:2: executing \"\" at <lt true false>: error calling lt: invalid type for comparison");
  EXPECT_EQ(
      run("{{eq . .}}", lst({num(1)})),
      "EXEC: template: :1:2: executing \"\" at <eq . .>: error calling eq: non-comparable type [1]: []interface {}");
}

TEST(functions, printf) {
  EXPECT_EQ(run("{{printf \"%5.2f|%-4s|%03d|%x|%q|%t|%v|%%|%d\" 3.14159 \"ab\" 7 255 \"hi\" true (list 1 2) -4}}"),
            " 3.14|ab  |007|ff|\"hi\"|true|[1 2]|%|-4");
  EXPECT_EQ(run("{{printf \"%d %s\" \"x\" 1}}"), "%!d(string=x) %!s(int=1)");
  EXPECT_EQ(run("{{printf \"%s %s\" \"x\"}}"), "x %!s(MISSING)");
  EXPECT_EQ(run("{{printf \"%s\" \"x\" 2}}"), "x%!(EXTRA int=2)");
  EXPECT_EQ(run("{{printf \"%e %g %.3g %X %c %T\" 1234.5678 0.000012 1234.5678 \"hi\" 65 1.5}}"),
            "1.234568e+03 1.2e-05 1.23e+03 6869 A float64");
  EXPECT_EQ(parse_error_of("{{printf \"%p\" 1}}"), "template: :1: printf verb %p not supported by vigil");
  // The flags on strings, and %G, as Go's fmt prints them.
  EXPECT_EQ(run("{{printf \"%#v|%+q|%#q|%#q|% x|%#x|% #X|%G|%G\" \"a\" \"é\" \"a\" \"a`b\" \"hi\" \"hi\" \"hi\" 1e-7 2.5}}"),
            "\"a\"|\"\\u00e9\"|`a`|\"a`b\"|68 69|0x6869|0X68 0X69|1E-07|2.5");
  // The precision of %x on a string counts bytes; %#g keeps its zeros (%#v of a float does not).
  EXPECT_EQ(run("{{printf \"%.1x|% .1x|%#.2x|%10.1x\" \"é\" \"éa\" \"éa\" \"éa\"}}"), "c3|c3|0xc3a9|        c3");
  EXPECT_EQ(run("{{printf \"%#g|%#.3g|%#g|%#v|%#g\" 1.0 1.0 0.0 1.0 1e-7}}"), "1.00000|1.00|0.00000|1|1.00000e-07");
}

TEST(functions, strings) {
  EXPECT_EQ(run("{{upper \"héllo\"}} {{lower \"ÀB\"}} {{title \"hello wORLD-x_y\"}}"), "HÉLLO àb Hello WORLD-X_y");
  // Unicode's simple case mappings, past Latin, Greek and Cyrillic (Armenian, Georgian, Deseret).
  EXPECT_EQ(run("{{upper \"աբ ⱥ ǆ ß\"}} {{lower \"ԱԲ Ⱥ Ǆ Ჱ 𐐀\"}} {{title \"ⴀ ա\"}}"), "ԱԲ Ⱥ Ǆ ß աբ ⱥ ǆ ჱ 𐐨 Ⴀ Ա");
  // title uses the title case: the digraphs have their own, Georgian Mkhedruli keeps its letters.
  EXPECT_EQ(run("{{title \"ǆungla ǉ ǳ ა\"}} {{upper \"ǆ ა\"}}"), "ǅungla ǈ ǲ ა Ǆ Ა");
  EXPECT_EQ(run("{{trimAll \"xy\" \"xyaxbyx\"}}|{{trimPrefix \"ab\" \"abc\"}}|{{trimSuffix \"bc\" \"abc\"}}"),
            "axb|c|a");
  EXPECT_EQ(run("{{trim \"\\u00a0 x \\u3000\"}}"), "x");
  EXPECT_EQ(run("{{hasPrefix \"a\" \"abc\"}} {{hasSuffix \"c\" \"abc\"}} {{contains \"z\" \"abc\"}}"),
            "true true false");
  EXPECT_EQ(run("{{replace \"\" \"-\" \"ab\"}}"), "-a-b-");
  EXPECT_EQ(run("{{splitList \",\" \"a,b,,c\"}} {{len (splitList \",\" \"a,b,,c\")}}"), "[a b  c] 4");
  EXPECT_EQ(run("{{squote \"a\" 1 nil}}"), "'a' '1'");
  EXPECT_EQ(run("{{quote \"tab\\there\" \"é\\x01\"}}"), "\"tab\\there\" \"é\\x01\"");
  EXPECT_EQ(run("{{toString 1.5}} {{toString (list 1 2)}}"), "1.5 [1 2]");
  EXPECT_EQ(run("{{env \"VIGIL_TEMPLATE_TEST_UNSET_VARIABLE\"}}|"), "|");
}

TEST(functions, lists) {
  EXPECT_EQ(run("{{list 1 \"a\" nil}}"), "[1 a <nil>]");
  EXPECT_EQ(run("{{first (list 1 2)}} {{last (list 1 2)}} {{first (list)}}"), "1 2 <no value>");
  EXPECT_EQ(run("{{slice (list 1 2 3) 1}} {{slice (list 1 2 3) 1 2}} {{slice (list 1 2 3)}}"), "[2 3] [2] [1 2 3]");
  EXPECT_EQ(run("{{slice \"abc\" 1}}"), "EXEC: template: :1:2: executing \"\" at <slice \"abc\" 1>: error calling "
                                        "slice: list should be type of slice or array but string");
  EXPECT_EQ(run("{{coalesce \"\" 0 \"x\"}} {{coalesce \"\" 0}}"), "x <no value>");
  EXPECT_EQ(run("{{ternary \"yes\" \"no\" true}} {{ternary \"yes\" \"no\" false}}"), "yes no");
  EXPECT_EQ(run("{{ternary \"yes\" \"no\" 1}}"),
            "EXEC: template: :1:21: executing \"\" at <1>: expected bool; found 1");
  EXPECT_EQ(run("{{dict \"a\" 1 \"b\"}}"), "map[a:1 b:]");
}

TEST(functions, crowdsec_helpers) {
  EXPECT_EQ(run("{{HTMLEscape \"<a href='x'>&\\\"\"}}"), "&lt;a href=&#39;x&#39;&gt;&amp;&#34;");
  EXPECT_FALSE(run("{{Hostname}}").empty());
  EXPECT_EQ(run("{{Hostname}}").find("EXEC"), std::string::npos);
  EXPECT_EQ(run("{{(CrowdsecCTI \"1.2.3.4\").Ip}}|{{(CrowdsecCTI \"1.2.3.4\").GetBackgroundNoiseScore}}|{{(CrowdsecCTI "
                "\"1.2.3.4\").IsFalsePositive}}|{{(CrowdsecCTI \"1.2.3.4\").AsName}}"),
            "|0|false|<nil>");
}

// ---- section 7: errors ------------------------------------------------------------------------

TEST(errors, parse) {
  EXPECT_EQ(parse_error_of("{{if}}"), "template: :1: missing value for if");
  EXPECT_EQ(parse_error_of("{{Foo}}"), "template: :1: function \"Foo\" not defined");
  EXPECT_EQ(parse_error_of("{{if .}}x"), "template: :1: unexpected EOF");
  EXPECT_EQ(parse_error_of("a\nb\n{{if}}"), "template: :3: missing value for if");
  EXPECT_EQ(parse_error_of("{{uuidv4}}"), "template: :1: function \"uuidv4\" not supported by vigil");
  EXPECT_EQ(parse_error_of("{{.x | sha256sum}}"), "template: :1: function \"sha256sum\" not supported by vigil");
  EXPECT_EQ(parse_error_of("{{end}}"), "template: :1: unexpected {{end}}");
  EXPECT_EQ(parse_error_of("{{else}}"), "template: :1: unexpected {{else}}");
  EXPECT_EQ(parse_error_of("{{.x"), "template: :1: unclosed action");
  EXPECT_EQ(parse_error_of("{{\"abc}}"), "template: :1: unterminated quoted string");
  EXPECT_EQ(parse_error_of("{{1 | 2}}"), "template: :1: non executable command in pipeline stage 2");
  EXPECT_EQ(parse_error_of("{{(1}}"), "template: :1: unclosed left paren");
  EXPECT_EQ(parse_error_of("{{$x, $y := 1}}"), "template: :1: too many declarations in command");
  EXPECT_EQ(parse_error_of("{{.a-b}}"), "template: :1: bad character U+002D '-'");
  EXPECT_EQ(parse_error_of("{{99999999999999999999}}"), "template: :1: integer overflow: \"99999999999999999999\"");
  EXPECT_EQ(parse_error_of("{{1.5.x}}"), "template: :1: unexpected . after term \"1.5\"");
  EXPECT_NE(parse_error_of("{{template \"x\"}}").find("not supported by vigil"), std::string::npos);
  EXPECT_NE(parse_error_of("{{define \"x\"}}{{end}}").find("not supported by vigil"), std::string::npos);
  EXPECT_NE(parse_error_of("{{block \"x\" .}}{{end}}").find("not supported by vigil"), std::string::npos);
  EXPECT_NE(parse_error_of("{{with .}}{{else with .}}{{end}}").find("not supported by vigil"), std::string::npos);
  auto r = templ::parse("a\n{{Foo}}");
  ASSERT_TRUE(std::holds_alternative<parse_error>(r));
  EXPECT_EQ(std::get<parse_error>(r).line, 2);
}

TEST(errors, execution) {
  const engine::alert pod = pod_exec_alert();
  value list = alerts({&pod});
  const value no_source = list.items()[0].with_field("Source", value::nil_object(source_type()));
  const value without_source = value::list({no_source}, "[]*models.Alert");
  EXPECT_EQ(run("{{$a := index . 0}}{{$a.Source.Value}}", without_source),
            "EXEC: template: :1:23: executing \"\" at <$a.Source.Value>: nil pointer evaluating *models.Source.Value");
  EXPECT_EQ(run("{{range .}}{{.Source.Value}}{{end}}", without_source),
            "EXEC: template: :1:20: executing \"\" at <.Source.Value>: nil pointer evaluating *models.Source.Value");
  EXPECT_EQ(with_a("{{index (GetMeta $a \"kind\") 0}}", pod),
            "EXEC: template: :1:21: executing \"\" at <index (GetMeta $a \"k...>: error calling index: reflect: slice "
            "index out of range");
  EXPECT_EQ(with_a("{{upper (GetMeta $a \"user\")}}", pod),
            "EXEC: template: :1:39: executing \"\" at <\"user\">: wrong type for value; expected string; got []string");
  EXPECT_EQ(
      with_a("{{$a.scenario}}", pod),
      "EXEC: template: :1:23: executing \"\" at <$a.scenario>: can't evaluate field scenario in type *models.Alert");
  EXPECT_EQ(run("{{nil}}"), "EXEC: template: :1:2: executing \"\" at <nil>: nil is not a command");
  EXPECT_EQ(run("{{len 3}}"), "EXEC: template: :1:2: executing \"\" at <len 3>: error calling len: len of type int");
  EXPECT_NE(exec_error_of("{{len nil}}").find("error calling len"), std::string::npos);
  EXPECT_EQ(run("{{range .}}{{end}}", str("abc")),
            "EXEC: template: :1:8: executing \"\" at <{{range .}}{{end}}>: range can't iterate over abc");
  EXPECT_EQ(run("{{upper .x}}", map_of({})),
            "EXEC: template: :1:8: executing \"\" at <.x>: invalid value; expected string");
  EXPECT_EQ(with_a("{{upper $a.ScenarioHash}}{{upper .x}}", pod), "EXEC: template: :1:52: executing \"\" at <.x>: "
                                                                  "can't evaluate field x in type []*models.Alert");
  EXPECT_EQ(
      run("{{print}}{{printf}}"),
      "EXEC: template: :1:11: executing \"\" at <printf>: wrong number of args for printf: want at least 1 got 0");
  EXPECT_EQ(run("{{1 2}}"), "EXEC: template: :1:2: executing \"\" at <1>: can't give argument to non-function 1");
}

// A template can build a value nested as deep as a list it ranges over is long, and a shared
// value whose printed form doubles at every step. Printing either used to recurse until the
// stack ran out, or walk 2^40 leaves; both are now execution errors.
TEST(errors, values_too_deep_or_too_large_to_print) {
  auto over = [](std::size_t n, const std::string& body, const std::string& tail) {
    return "{{$x := list}}{{range splitList \"\" \"" + std::string(n, 'a') + "\"}}" + body + "{{end}}" + tail;
  };
  EXPECT_EQ(run(over(999, "{{$x = list $x}}", "{{len $x}}")), "1");
  EXPECT_NE(exec_error_of(over(1000, "{{$x = list $x}}", "{{len $x}}")).find("result nested more than 1000 deep"),
            std::string::npos);
  EXPECT_NE(exec_error_of(over(50000, "{{$x = list $x}}", "{{$x}}")).find("nested more than 1000 deep"),
            std::string::npos);
  EXPECT_NE(exec_error_of(over(50000, "{{$x = dict \"k\" $x}}", "{{toJson $x}}")).find("nested more than 1000 deep"),
            std::string::npos);
  const std::string doubling = "{{$x = list $x $x}}";
  EXPECT_EQ(run(over(3, doubling, "{{$x}}")), "[[[[] []] [[] []]] [[[] []] [[] []]]]");
  EXPECT_NE(exec_error_of(over(40, doubling, "{{print $x}}")).find("result larger than 16 MiB"), std::string::npos);
  EXPECT_NE(exec_error_of(over(40, doubling, "{{toJson $x}}")).find("result larger than 16 MiB"), std::string::npos);
  EXPECT_NE(exec_error_of(over(40, doubling, "{{$x}}")).find("16 MiB"), std::string::npos);
  // Many arguments share one bound: each used to be printed up to 16 MiB before the check.
  const std::string many = " $x $x $x $x $x $x $x $x $x $x $x $x $x $x $x $x";
  EXPECT_NE(exec_error_of(over(40, doubling, "{{join \",\" (list" + many + ")}}")).find("16 MiB"), std::string::npos);
  EXPECT_NE(exec_error_of(over(40, doubling, "{{quote" + many + "}}")).find("16 MiB"), std::string::npos);
  EXPECT_NE(exec_error_of(over(40, doubling, "{{squote" + many + "}}")).find("16 MiB"), std::string::npos);
  EXPECT_NE(exec_error_of(over(22, doubling, "{{dict (print $x) 1 (print $x) 2 (print $x) 3}}")).find("MiB"),
            std::string::npos);
}

TEST(errors, nothing_is_printed_on_failure_semantics) {
  // The caller discards the output; execute() still reports the failure as a return value.
  auto r = templ::parse("ok {{.a.b}}");
  ASSERT_TRUE(std::holds_alternative<templ>(r));
  std::string out;
  std::string err;
  EXPECT_FALSE(std::get<templ>(r).execute(map_of({{"a", value::nil()}}), out, err));
  EXPECT_FALSE(err.empty());
  EXPECT_TRUE(std::get<templ>(r).execute(map_of({{"a", map_of({{"b", str("x")}})}}), out, err));
  EXPECT_EQ(out, "ok x");
  EXPECT_TRUE(err.empty());
}

// ---- toJson ----------------------------------------------------------------------------------

TEST(to_json, numbers_and_strings) {
  EXPECT_EQ(to_json(flt(1e6)), "1000000");
  EXPECT_EQ(to_json(flt(1e21)), "1e+21");
  EXPECT_EQ(to_json(flt(1e-7)), "1e-7");
  EXPECT_EQ(to_json(flt(0.000001)), "0.000001");
  EXPECT_EQ(to_json(flt(123456789012345678.0)), "123456789012345680");
  EXPECT_EQ(to_json(value::floating(0.1F, "float32")), "0.1");
  EXPECT_EQ(to_json(flt(1.0 / 0.0)), "");
  EXPECT_EQ(to_json(str("a<b>&\"\\\n\x01\xff\xE2\x80\xA8")),
            "\"a\\u003cb\\u003e\\u0026\\\"\\\\\\n\\u0001\\ufffd\\u2028\"");
  EXPECT_EQ(to_json(map_of({{"b", num(1)}, {"a", value::nil_list("[]string")}, {"c", lst({})}})),
            "{\"a\":null,\"b\":1,\"c\":[]}");
  EXPECT_EQ(run("{{. | toJson}}", flt(1.0 / 0.0)), "");
}

TEST(to_json, alerts) {
  engine::alert a = bruteforce_with_ban();
  a.capacity = 5;
  a.remediation = true;
  const value v = alerts_value({alert_view{&a, 42, "vigil-1", "u-1", at("2023-05-17T15:08:23.5Z")}});
  const std::string want =
      "[{\"capacity\":5,\"created_at\":\"2023-05-17T15:08:23Z\",\"decisions\":[{\"duration\":\"4h\",\"origin\":"
      "\"crowdsec\",\"scenario\":\"crowdsecurity/"
      "k8s-audit-api-server-bruteforce\",\"scope\":\"Ip\",\"simulated\":false,"
      "\"type\":\"ban\",\"until\":\"2023-05-17T19:08:22Z\",\"value\":\"10.0.0.9\"}],\"events\":[{\"meta\":[{\"key\":"
      "\"source_ip\",\"value\":\"10.0.0.9\"},{\"key\":\"user\",\"value\":\"u\"}],\"timestamp\":\"2023-05-17T15:08:22."
      "76396Z\"}],\"events_count\":1,\"id\":42,\"labels\":null,\"leakspeed\":\"0s\",\"machine_id\":\"vigil-1\","
      "\"message\":\"Ip 10.0.0.9 performed 'crowdsecurity/k8s-audit-api-server-bruteforce' (1 events over 0s) at "
      "2023-05-17 15:08:22.76396 +0000 UTC\",\"remediation\":true,\"scenario\":\"crowdsecurity/"
      "k8s-audit-api-server-bruteforce\",\"scenario_hash\":\"\",\"scenario_version\":\"\",\"simulated\":false,"
      "\"source\":"
      "{\"ip\":\"10.0.0.9\",\"scope\":\"Ip\",\"value\":\"10.0.0.9\"},\"start_at\":\"2023-05-17T15:08:22.76396Z\","
      "\"stop_at\":\"2023-05-17T15:08:22.76396Z\",\"uuid\":\"u-1\"}]";
  EXPECT_EQ(to_json(v), want);
  EXPECT_EQ(run("{{.|toJson}}", v), want); // the default HTTP template
}

TEST(to_json, omitempty_and_null) {
  const engine::alert pod = pod_exec_alert();
  const std::string json = to_json(alerts({&pod}));
  EXPECT_EQ(json.find("\"created_at\""), std::string::npos);
  EXPECT_EQ(json.find("\"id\""), std::string::npos);
  EXPECT_EQ(json.find("\"remediation\""), std::string::npos);
  EXPECT_EQ(json.find("\"meta\":null"), std::string::npos); // alert context: omitempty
  EXPECT_NE(json.find("\"decisions\":null"), std::string::npos);
  EXPECT_NE(json.find("\"capacity\":0"), std::string::npos); // a set pointer to 0 is kept
}

// ---- the output bound (rules/template/internal.h) ---------------------------------------------

// Go would build gigabytes for these; vigil stops at 16 MiB with an error naming the node.
TEST(output_bound, a_huge_width_over_every_field_is_an_error) {
  const engine::alert pod = pod_exec_alert();
  const engine::alert two = two_ip_alert();
  // The fuzzer's find: a width of 2,499,999 applied to every field of every alert, twice.
  const std::string err = exec_error_of(R"({{range $i, $a := .}}{{printf "%-2499999s|%5d" $ $i}}{{end}})",
                                        alerts({&pod, &two}));
  EXPECT_NE(err.find("error calling printf: result larger than 16 MiB"), std::string::npos) << err;
}

TEST(output_bound, amplifying_functions_and_the_output_itself) {
  // replace with an empty `old` inserts `new` at every rune: 20,001 x 1,000 bytes.
  const std::string big_new(1000, 'x');
  EXPECT_NE(exec_error_of(R"({{replace "" ")" + big_new + R"(" (printf "%20000s" "")}})")
                .find("error calling replace: result larger than 16 MiB"),
            std::string::npos);
  // Each action stays under the bound, their sum does not.
  std::string many;
  for (int i = 0; i < 20; ++i) {
    many += R"({{printf "%1000000s" ""}})";
  }
  EXPECT_NE(exec_error_of(many).find("output larger than 16 MiB"), std::string::npos);
  // Under the bound, widths are Go's, however large.
  EXPECT_EQ(run(R"({{printf "%1000000s" "a"}})").size(), 1000000u);
  EXPECT_EQ(run(R"({{printf "%-3s|%05d" "a" 7}})"), "a  |00007");
}

} // namespace
} // namespace vigil::rules::tmpl
