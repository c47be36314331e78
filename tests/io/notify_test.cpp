// Notifications: plugin files as CrowdSec writes them, the tutorial's Slack template rendered to
// the byte through a loopback receiver standing in for Slack, retries and giving up, grouping,
// the file plugin's rotation, bounded queues, and the CLI (`vigil notifications`, --crowdsec-dir).
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "engine/counters/counters.h"
#include "io/notify/notifier.h"
#include "rules/template/template.h"
#include "tests/support/process.h"
#include "tests/support/files.h"
#include "tests/support/receiver.h"

namespace vigil::io {
namespace {

namespace fs = std::filesystem;
using test::child;
using test::receiver;

const std::string vigil_bin = VIGIL_BINARY;
const fs::path hub = "../shared/data/crowdsec-hub";
constexpr engine::unix_nanos sec = 1'000'000'000;

using test::slurp;

fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::path(::testing::TempDir()) / ("vigil_notify_" + std::to_string(getpid())) / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

fs::path write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

// The tutorial's notification file, as the hub's collection page prints it, pointed at `url`.
std::string tutorial_slack_yaml(const std::string& url) {
  const std::string md = slurp(hub / "collections/crowdsecurity/k8s-audit.md");
  const std::size_t at = md.find("```yaml\ntype: slack");
  EXPECT_NE(at, std::string::npos);
  const std::size_t start = at + 8;
  std::string yaml = md.substr(start, md.find("```", start) - start);
  const std::size_t hook = yaml.find("<WEBHOOK_URL>");
  EXPECT_NE(hook, std::string::npos);
  return yaml.replace(hook, 13, url);
}

// The tutorial's profile, then CrowdSec's default ones.
std::string tutorial_profiles() {
  const std::string md = slurp(hub / "collections/crowdsecurity/k8s-audit.md");
  const std::size_t at = md.find("```yaml\nname: k8s_audit_notification");
  const std::size_t start = at + 8;
  return md.substr(start, md.find("```", start) - start) +
         "name: default_ip_remediation\nfilters:\n - Alert.Remediation == true && Alert.GetScope() == \"Ip\"\n"
         "decisions:\n - type: ban\n   duration: 4h\non_success: break\n";
}

std::vector<notification> load_one(const std::string& yaml) {
  std::vector<notification> out;
  std::vector<config::error> errors;
  std::vector<std::string> warnings;
  load_notifications_text(yaml, "n.yaml", out, errors, warnings);
  for (const auto& e : errors) {
    ADD_FAILURE() << e.to_string();
  }
  return out;
}

engine::alert exec_alert(const std::string& ip) {
  engine::alert a;
  a.scenario = "crowdsecurity/k8s-audit-pod-exec";
  a.message = "exec by " + ip;
  a.scope = "Ip";
  a.value = a.source_ip = ip;
  a.events_count = 1;
  engine::event_payload e;
  e.time = 1'700'000'000 * sec;
  e.meta = {{"namespace", "foo"}, {"resource_name", "test-pod-1"}, {"source_ip", ip}, {"user", "minikube-user"}};
  a.events.push_back(e);
  return a;
}

std::uint64_t counter(const std::string& name, const std::string& plugin, const std::string& type,
                      const char* reason = nullptr) {
  auto& r = counters::registry::global();
  if (reason != nullptr) {
    return r.read(name, {{"name", plugin}, {"type", type}, {"reason", reason}});
  }
  return r.read(name, {{"name", plugin}, {"type", type}});
}

TEST(notify, tutorial_slack_file_loads_with_its_template_and_keys) {
  const auto n = load_one(tutorial_slack_yaml("https://hooks.slack.com/services/T/B/X"));
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0].name, "slack_k8s_audit");
  EXPECT_EQ(n[0].type, notify_type::slack);
  EXPECT_EQ(n[0].log_level, "info");
  EXPECT_EQ(n[0].webhook, "https://hooks.slack.com/services/T/B/X");
  EXPECT_EQ(n[0].timeout, 5 * sec); // CrowdSec's default
  // YAML's literal block: indentation removed, the trailing space of line 1 kept, one final newline.
  EXPECT_EQ(n[0].format.substr(0, 28), "Kubernetes Security Alert: \n");
  EXPECT_EQ(n[0].format.substr(n[0].format.size() - 10), "{{end -}}\n");
}

// The tutorial's Slack file over a real hub fixture (the pod exec), end to end through the daemon:
// what reaches "Slack" is the JSON slack-go posts, with the text CrowdSec renders, to the byte.
TEST(notify, tutorial_slack_payload_from_the_daemon_is_exact) {
  receiver slack;
  const fs::path dir = temp_dir("e2e");
  std::string yaml = tutorial_slack_yaml(slack.url("/services/T0/B0/secret"));
  yaml += "channel: \"#k8s-alerts\"\nusername: vigil\nicon_emoji: \":shield:\"\n";
  write(dir / "notifications/slack.yaml", yaml);
  write(dir / "profiles.yaml", tutorial_profiles());
  const std::string fixture = fs::absolute(hub / ".tests/k8s-audit-pod-exec-file/k8s-audit-pod-exec-file.log").string();
  const fs::path cfg = write(dir / "vigil.yaml", "workers: 1\nstore:\n  path: " + (dir / "v.db").string() +
                                                     "\nprofiles: profiles.yaml\nnotifications: notifications\n"
                                                     "sources:\n  - type: file\n    mode: cat\n    paths: [" +
                                                     fixture + "]\n");
  child d({vigil_bin, "run", "-c", cfg.string(), "--api-listen", "off", "--metrics-listen", "off", "--listen",
           "127.0.0.1:0"});
  ASSERT_NE(test::start_daemon(d), 0) << d.stderr_text;
  const auto got = slack.wait_for(1);
  ASSERT_EQ(got.size(), 1u) << d.stderr_text;
  EXPECT_EQ(got[0].method, "POST");
  EXPECT_EQ(got[0].path, "/services/T0/B0/secret");
  EXPECT_NE(got[0].headers.find("Content-Type: application/json"), std::string::npos);
  EXPECT_EQ(got[0].body,
            R"({"username":"vigil","icon_emoji":":shield:","channel":"#k8s-alerts","text":"Kubernetes Security Alert: \n- Scenario: crowdsecurity/k8s-audit-pod-exec\n - Source IP: [192.168.49.1]\n - User: [minikube-user]\n - Namespace: [foo]\n - Resource Name: [test-pod-1]\n - Resource Kind: []\n----\n"})");
  ASSERT_EQ(d.stop(), 0);
  EXPECT_EQ(slack.all().size(), 1u); // one alert, one message
}

TEST(notify, retries_on_500_then_delivers) {
  receiver hook({500, 500, 200});
  auto n = load_one("type: http\nname: retry_ok\nformat: '{{range .}}{{.Scenario}}{{end}}'\nmax_retry: 3\nurl: " +
                    hook.url() + "\nheaders:\n  X-Token: abc\n");
  ASSERT_EQ(n.size(), 1u);
  delivery_result result;
  notifier_options o;
  o.first_backoff = std::chrono::milliseconds(20);
  o.on_done = [&](const delivery_result& r) { result = r; };
  {
    notifier sender(n, o);
    sender.submit(exec_alert("10.0.0.1"), 7, {"retry_ok"});
    sender.stop(std::chrono::seconds(20));
  }
  const auto got = hook.all();
  ASSERT_EQ(got.size(), 3u);
  for (const auto& r : got) {
    EXPECT_EQ(r.body, "crowdsecurity/k8s-audit-pod-exec");
    EXPECT_NE(r.headers.find("X-Token: abc"), std::string::npos);
    // No Content-Type the file did not set, as CrowdSec's Go client sends none.
    EXPECT_EQ(r.headers.find("Content-Type"), std::string::npos) << r.headers;
  }
  EXPECT_TRUE(result.ok);
  EXPECT_EQ(result.attempts, 3u);
  EXPECT_EQ(counter("vigil_notification_sent_total", "retry_ok", "http"), 1u);
  EXPECT_EQ(counter("vigil_notification_failures_total", "retry_ok", "http", "attempt"), 2u);
  EXPECT_EQ(counter("vigil_notification_failures_total", "retry_ok", "http", "gave_up"), 0u);
}

// Redirects are followed as Go's http.Client follows them: a 307 resends the body to the new
// place. A timeout of 0 is CrowdSec's default (5s), not a send that may hang forever.
TEST(notify, redirects_are_followed_and_a_zero_timeout_is_the_default) {
  receiver hook({307, 200});
  auto n = load_one("type: http\nname: moved\ntimeout: 0s\nmax_retry: 0\nformat: '{{range .}}{{.Scenario}}{{end}}'\nurl: " +
                    hook.url() + "\n");
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0].timeout, 5'000'000'000);
  {
    notifier sender(n, {});
    sender.submit(exec_alert("10.0.0.9"), 1, {"moved"});
    sender.stop(std::chrono::seconds(10));
  }
  const auto got = hook.all();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].path, "/moved");
  EXPECT_EQ(got[1].body, "crowdsecurity/k8s-audit-pod-exec");
  EXPECT_EQ(counter("vigil_notification_sent_total", "moved", "http"), 1u);
}

TEST(notify, gives_up_after_max_retry_plus_one_tries) {
  receiver hook({500});
  auto n = load_one("type: http\nname: give_up\nmax_retry: 2\nurl: " + hook.url() + "\n");
  delivery_result result;
  notifier_options o;
  o.first_backoff = std::chrono::milliseconds(20);
  o.on_done = [&](const delivery_result& r) { result = r; };
  {
    notifier sender(n, o);
    sender.submit(exec_alert("10.0.0.2"), 0, {"give_up", "not_configured"});
    sender.stop(std::chrono::seconds(20));
  }
  EXPECT_EQ(hook.all().size(), 3u);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.attempts, 3u);
  EXPECT_NE(result.error.find("HTTP 500"), std::string::npos) << result.error;
  EXPECT_EQ(counter("vigil_notification_failures_total", "give_up", "http", "gave_up"), 1u);
  EXPECT_EQ(counter("vigil_notification_sent_total", "give_up", "http"), 0u);
  // The default http format is the alert list as JSON.
  EXPECT_EQ(hook.all()[0].body.substr(0, 2), "[{");
  EXPECT_NE(hook.all()[0].body.find("\"scenario\":\"crowdsecurity/k8s-audit-pod-exec\""), std::string::npos);
}

// group_threshold 2 with group_wait: checked every second, sent in chunks of 2.
TEST(notify, groups_are_chunked_by_threshold) {
  receiver hook;
  auto n = load_one("type: http\nname: grouped\ngroup_threshold: 2\ngroup_wait: 30s\nformat: '{{len .}}:{{range "
                    ".}}{{.Source.Value}};{{end}}'\nurl: " +
                    hook.url() + "\n");
  {
    notifier sender(n, {});
    for (int i = 1; i <= 5; ++i) {
      sender.submit(exec_alert("10.0.1." + std::to_string(i)), i, {"grouped"});
    }
    const auto got = hook.wait_for(3);
    ASSERT_EQ(got.size(), 3u); // the whole flush: 2 + 2 + 1
    EXPECT_EQ(got[0].body, "2:10.0.1.1;10.0.1.2;");
    EXPECT_EQ(got[1].body, "2:10.0.1.3;10.0.1.4;");
    EXPECT_EQ(got[2].body, "1:10.0.1.5;");
    sender.stop(std::chrono::seconds(5));
  }
}

// A listening socket that never answers (connections wait in its backlog): its descriptor, and
// its port in `port`; -1 on failure.
int hanging_endpoint(int& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 1024) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return -1;
  }
  port = ntohs(a.sin_port);
  return fd;
}

// A dead endpoint (connections accepted, never answered) never makes submit() wait: the alerts
// are queued at once, the queue is bounded (the excess counted), and shutdown abandons what is
// left after its grace period, counted too.
TEST(notify, a_dead_endpoint_is_counted_never_waited_for) {
  int hang_port = 0;
  const int hang = hanging_endpoint(hang_port);
  ASSERT_GE(hang, 0);
  auto n = load_one("type: slack\nname: dead\ntimeout: 30s\ngroup_wait: 1h\nformat: '{{len .}}'\nwebhook: http://127.0.0.1:" +
                    std::to_string(hang_port) + "/x\n");
  notifier_options o;
  o.max_pending_per_plugin = 100;
  std::mutex log_mu;
  std::vector<std::string> drop_lines;
  o.log = [&](const char*, const std::string& msg) {
    if (msg.find("dropped") != std::string::npos) {
      std::lock_guard<std::mutex> l(log_mu);
      drop_lines.push_back(msg);
    }
  };
  {
    notifier sender(n, o);
    for (int i = 0; i < 1000; ++i) {
      sender.submit(exec_alert("10.0.2.1"), i, {"dead"});
    }
    EXPECT_EQ(counter("vigil_notification_alerts_total", "dead", "slack"), 1000u);
    sender.stop(std::chrono::milliseconds(300));
  }
  ::close(hang);
  EXPECT_EQ(counter("vigil_notification_failures_total", "dead", "slack", "dropped"), 900u);
  // Logged as counts, not a line per alert: the first drop at once, the other 899 when the
  // notifier stops (within the 10 s between two such lines).
  ASSERT_EQ(drop_lines.size(), 2u);
  EXPECT_EQ(drop_lines[0].rfind("notification dead: 1 alert(s) dropped, 100 alerts already waiting to be sent", 0), 0u)
      << drop_lines[0];
  EXPECT_EQ(drop_lines[1].rfind("notification dead: 899 alert(s) dropped, 100 alerts already waiting to be sent", 0),
            0u)
      << drop_lines[1];
  // Sends to one plugin go one at a time, in order: the first hangs, the other 99 wait behind it.
  EXPECT_EQ(counter("vigil_notification_failures_total", "dead", "slack", "abandoned"), 100u);
  EXPECT_EQ(counter("vigil_notification_sent_total", "dead", "slack"), 0u);
}

// Alerts handed to a delivery leave vigil_notification_pending (alerts not yet in a group) for
// vigil_notification_unfinished, which holds them while the delivery waits its turn, is sent,
// or waits for a retry; an abandoned delivery leaves it too.
TEST(notify, unfinished_deliveries_are_a_gauge) {
  receiver hook({500});
  auto n = load_one("type: http\nname: retrying\nmax_retry: 5\nformat: '{{len .}}'\nurl: " + hook.url() + "\n");
  notifier_options o;
  o.first_backoff = std::chrono::seconds(60);
  {
    notifier sender(n, o);
    sender.submit(exec_alert("10.0.4.1"), 1, {"retrying"});
    sender.submit(exec_alert("10.0.4.2"), 2, {"retrying"});
    ASSERT_EQ(hook.wait_for(1).size(), 1u);
    // The first send failed and waits a minute for its retry; the second waits behind it.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (counter("vigil_notification_failures_total", "retrying", "http", "attempt") == 0 &&
           std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_EQ(counter("vigil_notification_failures_total", "retrying", "http", "attempt"), 1u);
    EXPECT_EQ(counter("vigil_notification_unfinished", "retrying", "http"), 2u);
    EXPECT_EQ(counter("vigil_notification_pending", "retrying", "http"), 0u);
    sender.stop(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(hook.all().size(), 1u);
  EXPECT_EQ(counter("vigil_notification_failures_total", "retrying", "http", "abandoned"), 2u);
  EXPECT_EQ(counter("vigil_notification_unfinished", "retrying", "http"), 0u);
}

TEST(notify, template_errors_are_counted_and_nothing_is_sent) {
  receiver hook;
  auto n = load_one("type: http\nname: broken_tpl\nformat: '{{index (GetMeta (index . 0) \"kind\") 0}}'\nurl: " +
                    hook.url() + "\n");
  {
    notifier sender(n, {});
    sender.submit(exec_alert("10.0.3.1"), 0, {"broken_tpl"});
    sender.stop(std::chrono::seconds(5));
  }
  EXPECT_EQ(hook.all().size(), 0u);
  EXPECT_EQ(counter("vigil_notification_failures_total", "broken_tpl", "http", "template"), 1u);
}

TEST(notify, file_plugin_appends_and_rotates_by_size) {
  const fs::path dir = temp_dir("file");
  const std::string log = (dir / "alerts.log").string();
  auto n = load_one("type: file\nname: to_file\nformat: '{{range .}}{{.Message}}{{end}}'\nlog_path: " + log +
                    "\nrotate:\n  enabled: true\n  max_size: 1\n  max_files: 2\n");
  ASSERT_EQ(n.size(), 1u);
  {
    notifier sender(n, {});
    for (char c : std::string("abc")) {
      engine::alert a = exec_alert("10.0.4.1");
      a.message = std::string(700 * 1024, c); // 700 KB: every second one rotates the file
      sender.submit(a, 0, {"to_file"});
    }
    sender.stop(std::chrono::seconds(10));
  }
  EXPECT_EQ(slurp(log), std::string(700 * 1024, 'c'));
  EXPECT_EQ(slurp(log + ".1"), std::string(700 * 1024, 'b'));
  EXPECT_EQ(slurp(log + ".2"), std::string(700 * 1024, 'a'));
  EXPECT_EQ(counter("vigil_notification_sent_total", "to_file", "file"), 3u);
}

// A burst larger than max_deliveries is delivered, not dropped: what does not fit waits with the
// pending alerts and goes as soon as sends finish (a file's at once), well before the next tick.
TEST(notify, a_burst_over_max_deliveries_waits_instead_of_being_dropped) {
  const fs::path dir = temp_dir("burst");
  const std::string log = (dir / "alerts.log").string();
  auto n = load_one("type: file\nname: burst\nformat: '{{range .}}{{.Message}};{{end}}'\nlog_path: " + log + "\n");
  ASSERT_EQ(n.size(), 1u);
  notifier_options o;
  o.max_deliveries = 10;
  {
    notifier sender(n, o);
    for (int i = 0; i < 500; ++i) {
      engine::alert a = exec_alert("10.0.5.1");
      a.message = "alert " + std::to_string(i);
      sender.submit(a, i, {"burst"});
    }
    // All 500 within a few ticks: 10 at a time, one batch after another.
    for (int waited = 0; waited < 3000 && counter("vigil_notification_sent_total", "burst", "file") < 500; ++waited) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_EQ(counter("vigil_notification_sent_total", "burst", "file"), 500u);
    sender.stop(std::chrono::seconds(5));
  }
  EXPECT_EQ(counter("vigil_notification_failures_total", "burst", "file", "dropped"), 0u);
  const std::string text = slurp(log);
  EXPECT_EQ(std::count(text.begin(), text.end(), ';'), 500);
  EXPECT_EQ(text.substr(0, 16), "alert 0;alert 1;"); // in order
  EXPECT_NE(text.find(";alert 499;"), std::string::npos);
}

// The limit on unfinished deliveries is each plugin's: a Slack that is down (its sends retry for
// minutes) must not hold back the file plugin's audit trail.
TEST(notify, a_dead_endpoint_does_not_hold_back_the_other_plugins) {
  int hang_port = 0;
  const int hang = hanging_endpoint(hang_port);
  ASSERT_GE(hang, 0);
  auto n = load_one("type: http\nname: stuck\ntimeout: 30s\nformat: '{{len .}}'\nurl: http://127.0.0.1:" +
                    std::to_string(hang_port) + "/x\n");
  const fs::path dir = temp_dir("beside_dead");
  const std::string log = (dir / "alerts.log").string();
  auto file = load_one("type: file\nname: trail\nformat: '{{range .}}{{.Message}};{{end}}'\nlog_path: " + log + "\n");
  n.insert(n.end(), file.begin(), file.end());
  notifier_options o;
  o.max_deliveries = 5;
  {
    notifier sender(n, o);
    for (int i = 0; i < 50; ++i) {
      sender.submit(exec_alert("10.0.6.1"), i, {"stuck", "trail"});
    }
    for (int waited = 0; waited < 5000 && counter("vigil_notification_sent_total", "trail", "file") < 50; ++waited) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_EQ(counter("vigil_notification_sent_total", "trail", "file"), 50u);
    sender.stop(std::chrono::milliseconds(200));
  }
  ::close(hang);
  EXPECT_EQ(counter("vigil_notification_sent_total", "stuck", "http"), 0u);
}

TEST(notify, config_errors_are_located_and_env_is_expanded_outside_format) {
  ::setenv("VIGIL_TEST_HOOK", "https://hooks.example/abc", 1);
  std::vector<notification> out;
  std::vector<config::error> errors;
  std::vector<std::string> warnings;
  load_notifications_text("type: slack\nname: env\nwebhook: ${VIGIL_TEST_HOOK}\nformat: '${VIGIL_TEST_HOOK}'\n"
                          "---\ntype: email\nname: mail\nsmtp_host: x\n"
                          "---\ntype: slack\nname: bad\nwebhok: x\n"
                          "---\ntype: http\nname: tpl\nurl: http://x\nformat: |\n  line one\n  {{if}}\n"
                          "---\ntype: pager\nname: p\n"
                          // Folded or quoted templates do not keep their lines: the error is at the value.
                          "---\ntype: http\nname: dq\nurl: http://x\nformat: \"line1\\n{{if}}\"\nmax_retry: 1\n"
                          "---\ntype: http\nname: folded\nurl: http://x\nformat: >\n  a\n\n  b\n\n  {{if}}\n",
                          "n.yaml", out, errors, warnings);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].webhook, "https://hooks.example/abc");
  EXPECT_EQ(out[0].format, "${VIGIL_TEST_HOOK}");
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("type email"), std::string::npos);
  std::string all;
  for (const auto& e : errors) {
    all += e.to_string() + "\n";
  }
  EXPECT_NE(all.find("n.yaml:12:1: unknown key 'webhok'"), std::string::npos) << all;
  EXPECT_NE(all.find("missing 'webhook'"), std::string::npos) << all;
  EXPECT_NE(all.find("n.yaml:19:1: format: template: :2: missing value for if"), std::string::npos) << all;
  EXPECT_NE(all.find("unknown notification type 'pager'"), std::string::npos) << all;
  EXPECT_NE(all.find("n.yaml:27:1: format: template: :2: missing value for if"), std::string::npos) << all;
  EXPECT_NE(all.find("n.yaml:33:1: format: template: :3: missing value for if"), std::string::npos) << all;
  EXPECT_EQ(all.find("smtp_host"), std::string::npos) << "a skipped plugin's own keys are not checked";

  // A byte order mark before the file changes no line.
  std::vector<config::error> bom_errors;
  load_notifications_text("\xEF\xBB\xBFtype: http\nname: b\nurl: http://x\nformat: |\n  a\n  {{if}}\n", "b.yaml", out,
                          bom_errors, warnings);
  ASSERT_EQ(bom_errors.size(), 1u);
  EXPECT_EQ(bom_errors[0].to_string(), "b.yaml:6:1: format: template: :2: missing value for if");
}

// The repository's example notification files load, and render a pod exec as intended.
TEST(notify, the_example_files_load_and_render) {
  ::setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T/B/X", 1);
  std::vector<notification> out;
  std::vector<config::error> errors;
  std::vector<std::string> warnings;
  load_notifications("examples/notifications", out, errors, warnings);
  for (const auto& e : errors) {
    ADD_FAILURE() << e.to_string();
  }
  EXPECT_TRUE(warnings.empty());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].name, "alerts_file"); // files in name order
  EXPECT_EQ(out[1].name, "slack_k8s_audit");
  EXPECT_EQ(out[1].webhook, "https://hooks.slack.com/services/T/B/X");
  engine::alert a = exec_alert("10.0.0.7");
  const rules::tmpl::value dot = rules::tmpl::alerts_value({rules::tmpl::alert_view{&a, 1, "vigil", "u", 0}});
  std::string text, error;
  ASSERT_TRUE(out[1].templ->execute(dot, text, error)) << error;
  EXPECT_EQ(text, "Kubernetes Security Alert: \n- Scenario: crowdsecurity/k8s-audit-pod-exec\n - Source IP: 10.0.0.7\n"
                  " - User: minikube-user\n - Namespace: foo\n - Resource: ? test-pod-1\n----\n");
  ASSERT_TRUE(out[0].templ->execute(dot, text, error)) << error;
  EXPECT_EQ(text.substr(0, 10), "{\"time\": \"");
  EXPECT_NE(text.find("\"alert\": {"), std::string::npos) << text;
}

TEST(notify, slack_payload_escapes_as_go_json_does) {
  notification n;
  n.channel = "#a";
  EXPECT_EQ(slack_payload(n, "<https://x|y> & \"q\"\n\t\x01"),
            R"({"channel":"#a","text":"\u003chttps://x|y\u003e \u0026 \"q\"\n\t\u0001"})");
}

// `vigil run --crowdsec-dir` on a directory laid out as the tutorial's: the k8s-audit entries are
// used, everything else (other datasources, other plugins, other scenarios) is skipped with one
// warning each; `vigil notifications list|inspect|test` read the same directory.
TEST(notify, crowdsec_dir_and_the_notifications_cli) {
  receiver slack;
  const fs::path dir = temp_dir("crowdsec");
  write(dir / "acquis.yaml", "filenames:\n  - /var/log/auth.log\nlabels:\n  type: syslog\n---\n"
                             "source: k8s-audit\nlisten_addr: 127.0.0.1\nlisten_port: 0\n"
                             "webhook_path: /audit/webhook/event\nlabels:\n  type: k8s-audit\n");
  write(dir / "acquis.d/journal.yaml", "source: journalctl\njournalctl_filter:\n  - _SYSTEMD_UNIT=ssh.service\n"
                                       "labels:\n  type: syslog\n");
  write(dir / "profiles.yaml", tutorial_profiles());
  write(dir / "notifications/slack.yaml", tutorial_slack_yaml(slack.url()));
  write(dir / "notifications/email.yaml", "type: email\nname: email_default\nsmtp_host: smtp.example\n");
  fs::create_directories(dir / "scenarios");
  for (const auto& e : fs::directory_iterator(hub / "scenarios/crowdsecurity")) {
    fs::copy_file(e.path(), dir / "scenarios" / e.path().filename(), fs::copy_options::overwrite_existing);
  }
  write(dir / "scenarios/ssh-bf.yaml", "type: leaky\nname: crowdsecurity/ssh-bf\n"
                                       "filter: \"evt.Meta.log_type == 'ssh_failed-auth'\"\nleakspeed: 10s\n"
                                       "capacity: 5\ngroupby: evt.Meta.source_ip\n");
  const fs::path cfg = write(dir / "vigil.yaml", "store:\n  path: " + (dir / "v.db").string() + "\n");

  child check({vigil_bin, "check-config", "-c", cfg.string(), "--crowdsec-dir", dir.string()});
  ASSERT_EQ(check.stop(0), 0) << check.stderr_text;
  EXPECT_NE(check.stdout_text.find("configuration OK: 2 profiles, 7 rules, 1 notification(s), 1 webhook listener(s)"),
            std::string::npos)
      << check.stdout_text;
  EXPECT_NE(check.stderr_text.find("ssh-bf.yaml: not a k8s-audit scenario: skipped"), std::string::npos);
  EXPECT_NE(check.stderr_text.find("journalctl"), std::string::npos) << check.stderr_text;
  EXPECT_NE(check.stderr_text.find("type email"), std::string::npos) << check.stderr_text;

  child list({vigil_bin, "notifications", "list", "--crowdsec-dir", dir.string()});
  ASSERT_EQ(list.stop(0), 0) << list.stderr_text;
  EXPECT_NE(list.stdout_text.find("slack_k8s_audit"), std::string::npos) << list.stdout_text;
  EXPECT_NE(list.stdout_text.find("k8s_audit_notification"), std::string::npos) << list.stdout_text;
  EXPECT_EQ(list.stdout_text.find("/hook"), std::string::npos) << "the webhook path is a secret";

  child inspect({vigil_bin, "notifications", "inspect", "slack_k8s_audit", "--crowdsec-dir", dir.string()});
  ASSERT_EQ(inspect.stop(0), 0) << inspect.stderr_text;
  EXPECT_NE(inspect.stdout_text.find("Kubernetes Security Alert: "), std::string::npos);

  child t({vigil_bin, "notifications", "test", "slack_k8s_audit", "--crowdsec-dir", dir.string()});
  ASSERT_EQ(t.stop(0), 0) << t.stderr_text;
  const auto got = slack.wait_for(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_NE(got[0].body.find("- Scenario: crowdsecurity/k8s-audit-pod-exec\\n - Source IP: [192.168.49.1]"),
            std::string::npos)
      << got[0].body;

  child missing({vigil_bin, "notifications", "test", "nope", "--crowdsec-dir", dir.string()});
  EXPECT_EQ(missing.stop(0), 1);

  // The daemon on the same directory: a pod exec posted to the acquis webhook reaches "Slack".
  child d({vigil_bin, "run", "-c", cfg.string(), "--crowdsec-dir", dir.string(), "--api-listen", "off",
           "--metrics-listen", "off"});
  const int port = test::start_daemon(d);
  ASSERT_NE(port, 0) << d.stderr_text;
  test::http_client hook(port);
  const std::string exec = slurp(hub / ".tests/k8s-audit-pod-exec-file/k8s-audit-pod-exec-file.log");
  ASSERT_EQ(hook.request("POST", "/audit/webhook/event", exec).status, 200);
  EXPECT_EQ(slack.wait_for(2).size(), 2u) << d.stderr_text;
  ASSERT_EQ(d.stop(), 0);
}

// The daemon's log lines (logrus's text format) quote their message: a quote or a line break in
// it, here in a scenario file's name, stays inside the msg field, on one line.
TEST(cli, log_lines_escape_quotes_and_line_breaks) {
  const fs::path dir = temp_dir("logquote");
  write(dir / "acquis.yaml", "source: k8s-audit\nlisten_addr: 127.0.0.1\nlisten_port: 0\n"
                             "webhook_path: /audit/webhook/event\nlabels:\n  type: k8s-audit\n");
  fs::create_directories(dir / "scenarios");
  write(dir / "scenarios/a\"b\nc\\d.yaml", "type: leaky\nname: crowdsecurity/ssh-bf\n"
                                           "filter: \"evt.Meta.log_type == 'x'\"\nleakspeed: 10s\n"
                                           "capacity: 5\ngroupby: evt.Meta.source_ip\n");
  child check({vigil_bin, "check-config", "--crowdsec-dir", dir.string()});
  ASSERT_EQ(check.stop(0), 0) << check.stderr_text;
  std::string line;
  for (std::size_t at = 0; at < check.stderr_text.size();) {
    const std::size_t end = check.stderr_text.find('\n', at);
    const std::string l = check.stderr_text.substr(at, end - at);
    if (l.find("not a k8s-audit scenario") != std::string::npos) {
      line = l;
    }
    at = end == std::string::npos ? end : end + 1;
  }
  ASSERT_FALSE(line.empty()) << check.stderr_text;
  EXPECT_EQ(line.rfind("time=\"", 0), 0u) << line; // the whole warning on one line
  EXPECT_NE(line.find("level=warning msg=\"" + (dir / "scenarios").string() +
                      "/a\\\"b\\nc\\\\d.yaml: not a k8s-audit scenario: skipped\""),
            std::string::npos)
      << line;
}

TEST(notifications, a_number_out_of_range_is_an_error_not_a_wrapped_value) {
  std::vector<notification> out;
  std::vector<config::error> errors;
  std::vector<std::string> warnings;
  load_notifications_text("type: http\nname: h\nurl: http://127.0.0.1:1/\nmax_retry: 4294967297\nformat: x\n", "n.yaml",
                          out, errors, warnings);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].to_string(), "n.yaml:4:12: max_retry: expected an integer from 0 to 4294967295, got '4294967297'");
}

TEST(notifications, a_repeated_key_is_an_error) {
  std::vector<notification> out;
  std::vector<config::error> errors;
  std::vector<std::string> warnings;
  load_notifications_text("type: http\nname: h\nurl: http://127.0.0.1:1/\nurl: http://127.0.0.1:2/\nformat: x\n", "n.yaml",
                          out, errors, warnings);
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors[0].to_string(), "n.yaml:4:1: duplicate key 'url': a key may appear once in a mapping");
}

} // namespace
} // namespace vigil::io
