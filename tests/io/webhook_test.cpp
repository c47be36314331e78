// The daemon end to end: the real `vigil run` binary on loopback (port 0), driven over HTTP.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <simdjson.h>

#include "io/store/store.h"
#include "tests/support/process.h"
#include "tests/support/files.h"

namespace vigil {
namespace {

namespace fs = std::filesystem;
using test::child;
using test::http_client;

const std::string vigil_bin = VIGIL_BINARY;
const fs::path realworld = "../shared/data/realworld";

using test::slurp;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) {
      out.push_back(line);
    }
  }
  return out;
}

std::string event_list(const std::vector<std::string>& events, std::size_t from, std::size_t n) {
  std::string out = R"({"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[)";
  for (std::size_t i = from; i < from + n && i < events.size(); ++i) {
    if (i > from) {
      out += ',';
    }
    out += events[i];
  }
  return out + "]}";
}

// What identifies an alert across sources (datasource_type/path differ between file and webhook).
std::multiset<std::string> alert_keys(const std::string& json_lines) {
  std::multiset<std::string> keys;
  simdjson::dom::parser p;
  for (const auto& line : lines_of(json_lines)) {
    simdjson::dom::element a;
    if (p.parse(line).get(a) != simdjson::SUCCESS) {
      ADD_FAILURE() << "not JSON: " << line;
      continue;
    }
    keys.insert(std::string(std::string_view(a["scenario"])) + "|" + std::string(std::string_view(a["source_ip"])) +
                "|" + std::to_string(int64_t(a["events_count"])) + "|" + std::string(std::string_view(a["user"])) +
                "|" + std::string(std::string_view(a["stop_at"])));
  }
  return keys;
}

std::string burst(const std::string& ip, int code, int n, int second) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    char ts[64];
    std::snprintf(ts, sizeof ts, "2026-02-01T10:00:%02d.%03dZ", second + i / 2, (i % 2) * 500);
    out += R"({"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"b-)" + ip + "-" +
           std::to_string(i) + R"(","stage":"ResponseComplete","verb":"get","user":{"username":"mallory"},"sourceIPs":[")" +
           ip + R"("],"objectRef":{"resource":"secrets"},"responseStatus":{"code":)" + std::to_string(code) +
           R"(},"requestReceivedTimestamp":")" + ts + "\"}\n";
  }
  return out;
}

TEST(webhook, fixtures_posted_as_batches_give_the_same_alerts_as_replay) {
  if (!fs::exists(realworld)) {
    GTEST_SKIP();
  }
  std::string all;
  for (const auto& e : fs::directory_iterator(realworld / "falco-trace-files")) {
    if (e.is_regular_file() && e.path().filename() != "fal_01_003.json") {
      all += slurp(e.path()) + "\n";
    }
  }
  all += slurp(realworld / "crowdsec-hub/k8s-audit-pod-exec-file.log") + "\n";
  all += slurp(realworld / "crowdsec-hub/k8s-audit-priv-pod-file.log") + "\n";
  all += slurp(realworld / "audit2rbac/demo.log");
  all += burst("198.51.100.7", 401, 9, 0) + burst("198.51.100.8", 403, 4, 1);
  // Two Falco traces reuse another trace's auditID: the webhook drops such repeats as resent
  // events, so keep the first of each (auditID, stage) on both sides.
  std::vector<std::string> events;
  {
    std::set<std::string> ids;
    simdjson::dom::parser p;
    for (const auto& line : lines_of(all)) {
      simdjson::dom::element e;
      ASSERT_EQ(p.parse(line).get(e), simdjson::SUCCESS) << line;
      std::string_view id, stage;
      if (e["auditID"].get(id) == simdjson::SUCCESS) {
        if (e["stage"].get(stage) != simdjson::SUCCESS) {
          stage = {};
        }
        if (!ids.insert(std::string(id) + "|" + std::string(stage)).second) {
          continue;
        }
      }
      events.push_back(line);
    }
    all.clear();
    for (const auto& e : events) {
      all += e + "\n";
    }
  }
  ASSERT_GT(events.size(), 100u);

  const fs::path file = fs::path(::testing::TempDir()) / ("vigil_webhook_events_" + std::to_string(getpid()) + ".jsonl");
  std::ofstream(file) << all;
  // The shipped rules, then the hub's own files: their filters branch on datasource_type, so the
  // webhook ("k8s-audit") and replay ("file") run different specialized matchers.
  std::vector<std::vector<std::string>> rule_args = {{}};
  const std::string hub = "../shared/data/crowdsec-hub/scenarios/crowdsecurity";
  if (fs::exists(hub)) {
    rule_args.push_back({"--rules", hub});
  }
  for (const auto& rules : rule_args) {
    std::vector<std::string> replay_args = {vigil_bin, "replay", "-o", "json", "--workers", "2"};
    replay_args.insert(replay_args.end(), rules.begin(), rules.end());
    replay_args.push_back(file.string());
    child replay(replay_args);
    ASSERT_EQ(replay.stop(0), 0) << replay.stderr_text;

    std::vector<std::string> run_args = {vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off",
                                         "--listen", "127.0.0.1:0", "-o", "json", "--workers", "2"};
    run_args.insert(run_args.end(), rules.begin(), rules.end());
    child daemon(run_args);
    const int port = test::start_daemon(daemon);
    ASSERT_NE(port, 0) << daemon.stderr_text;
    http_client c(port);
    ASSERT_TRUE(c.connected());
    std::size_t accepted = 0;
    for (std::size_t i = 0; i < events.size(); i += 17) { // uneven batches, one connection
      const auto r = c.request("POST", "/audit/webhook/event", event_list(events, i, 17));
      ASSERT_EQ(r.status, 200) << r.body;
      simdjson::dom::parser p;
      accepted += static_cast<std::size_t>(int64_t(p.parse(r.body)["accepted"]));
    }
    EXPECT_EQ(accepted, events.size());
    ASSERT_EQ(daemon.stop(), 0) << daemon.stderr_text;
    EXPECT_NE(daemon.stderr_text.find("stopped: " + std::to_string(events.size()) + " events processed"),
              std::string::npos)
        << daemon.stderr_text;

    const auto from_replay = alert_keys(replay.stdout_text);
    const auto from_webhook = alert_keys(daemon.stdout_text);
    EXPECT_GE(from_replay.size(), 9u);
    EXPECT_EQ(from_webhook, from_replay) << (rules.empty() ? "shipped rules" : "hub rules");
    EXPECT_EQ(from_webhook.count("crowdsecurity/k8s-audit-api-server-bruteforce|198.51.100.7|6|mallory|2026-02-01T10:00:02.5Z"),
              1u);
  }
}

// Many clients at once against a deliberately small in-flight limit: some batches get 429, the
// clients retry, and every event is counted exactly once. A resent batch is a duplicate.
//
// The 429s must not depend on how fast the workers happen to be on the machine running the test:
// before the clients start, a batch far larger than the limit is admitted (nothing is in flight,
// so it is), and a small batch follows on the same connection at once. The workers need tens of
// milliseconds for the large one, a loopback round trip takes a fraction of one, so the small
// batch finds the pipeline over its limit and is refused. Should a stall of the host ever let the
// workers finish first, the pair is sent again (new auditIDs), up to 20 times.
TEST(webhook, concurrent_clients_with_429_and_retries_lose_nothing) {
#ifdef NDEBUG
  const int batches_per_client = 500;
#else
  const int batches_per_client = 100;
#endif
  const int clients = 4;
  const int batch_size = 400;
  const int large_batch_size = 20000;
  child daemon({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "--listen", "127.0.0.1:0", "-o", "json", "--workers", "2", "--max-in-flight", "600"});
  const int port = test::start_daemon(daemon);
  ASSERT_NE(port, 0) << daemon.stderr_text;

  const auto batch = [](const std::string& id_prefix, int size) {
    std::string body = R"({"kind":"EventList","items":[)";
    for (int i = 0; i < size; ++i) {
      if (i > 0) {
        body += ',';
      }
      body += R"({"kind":"Event","level":"Metadata","auditID":")" + id_prefix + std::to_string(i) +
              R"(","stage":"ResponseComplete","verb":"get","user":{"username":"u"},"sourceIPs":["10.0.)" +
              std::to_string(i % 7) + "." + std::to_string(i % 250) +
              R"("],"objectRef":{"resource":"pods"},"responseStatus":{"code":200},"requestReceivedTimestamp":"2026-02-01T10:00:00Z"})";
    }
    return body + "]}";
  };
  std::atomic<long> accepted{0}, too_many{0}, failures{0};
  // Posts until the batch is admitted, retrying on 429; false on anything else.
  const auto post = [&](http_client& c, const std::string& body) {
    for (int attempt = 0; attempt < 10000; ++attempt) {
      const auto r = c.request("POST", "/audit/webhook/event", body);
      if (r.status == 200) {
        simdjson::dom::parser p;
        accepted += int64_t(p.parse(r.body)["accepted"]);
        return true;
      }
      if (r.status != 429) {
        ADD_FAILURE() << "status " << r.status << ": " << r.body;
        break;
      }
      ++too_many;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ++failures;
    return false;
  };

  long expected = 0;
  {
    http_client c(port);
    for (int pair = 0; pair < 20 && too_many.load() == 0; ++pair) {
      const std::string large = batch("large-" + std::to_string(pair) + "-", large_batch_size);
      const std::string small = batch("small-" + std::to_string(pair) + "-", batch_size);
      ASSERT_TRUE(post(c, large));
      ASSERT_TRUE(post(c, small));
      expected += large_batch_size + batch_size;
    }
  }
  EXPECT_GT(too_many.load(), 0) << "the in-flight limit was never reached: the test proves nothing about 429";

  // The concurrent clients meet the limit when they happen to overlap inside the workers; their
  // 429s are reported, not required (how often depends on the machine's speed).
  const long too_many_before_clients = too_many.load();
  std::vector<std::thread> pool;
  for (int t = 0; t < clients; ++t) {
    pool.emplace_back([&, t] {
      http_client c(port);
      for (int b = 0; b < batches_per_client; ++b) {
        const std::string prefix = std::string("c").append(std::to_string(t)).append("-").append(std::to_string(b)) + "-";
        if (!post(c, batch(prefix, batch_size))) {
          break;
        }
      }
    });
  }
  for (auto& th : pool) {
    th.join();
  }
  expected += static_cast<long>(clients) * batches_per_client * batch_size;
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(accepted.load(), expected);
  RecordProperty("answers_429_to_concurrent_clients", std::to_string(too_many.load() - too_many_before_clients));

  // A batch resent after it was admitted (its answer lost: kube-apiserver sends the same bytes
  // again) is not counted twice.
  http_client c(port);
  const std::string last_batch = "c" + std::to_string(clients - 1) + "-" + std::to_string(batches_per_client - 1) + "-";
  const auto dup = c.request("POST", "/audit/webhook/event", batch(last_batch, batch_size));
  ASSERT_EQ(dup.status, 200);
  EXPECT_NE(dup.body.find("\"accepted\":0,\"duplicates\":" + std::to_string(batch_size) + ","), std::string::npos)
      << dup.body;
  // New events that reuse auditIDs already seen are new: a client of the apiserver chooses its
  // auditID (the Audit-ID header), and must not hide an event behind an earlier one's.
  std::string reused = R"({"kind":"EventList","items":[)";
  for (int i = 0; i < 3; ++i) {
    reused += std::string(i > 0 ? "," : "") + R"({"auditID":")" + last_batch + std::to_string(i) +
              R"(","stage":"ResponseComplete","verb":"create","sourceIPs":["10.0.0.1"]})";
  }
  reused += "]}";
  const auto fresh = c.request("POST", "/audit/webhook/event", reused);
  ASSERT_EQ(fresh.status, 200);
  EXPECT_NE(fresh.body.find("\"accepted\":3,\"duplicates\":0"), std::string::npos) << fresh.body;
  expected += 3;

  ASSERT_EQ(daemon.stop(), 0);
  EXPECT_NE(daemon.stderr_text.find("stopped: " + std::to_string(expected) + " events processed"), std::string::npos)
      << daemon.stderr_text.substr(daemon.stderr_text.size() > 2000 ? daemon.stderr_text.size() - 2000 : 0);
}

TEST(webhook, every_error_status_with_its_body) {
  child daemon({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "--listen", "127.0.0.1:0", "-o", "json", "--workers", "1", "--token", "s3cret",
                "--max-body-size", "4096"});
  const int port = test::start_daemon(daemon);
  ASSERT_NE(port, 0) << daemon.stderr_text;
  const std::string path = "/audit/webhook/event";
  const std::string ok_batch =
      R"({"kind":"EventList","items":[{"auditID":"e1","stage":"ResponseComplete","verb":"create","user":{"username":"u"},"sourceIPs":["192.0.2.1"],"objectRef":{"resource":"pods","subresource":"exec","namespace":"n","name":"p"},"requestReceivedTimestamp":"2026-02-01T10:00:00Z"}]})";
  const std::vector<std::string> auth = {"Content-Type: application/json", "Authorization: Bearer s3cret"};
  {
    http_client c(port);
    const auto r = c.request("POST", path, ok_batch);
    EXPECT_EQ(r.status, 401);
    EXPECT_NE(r.body.find("missing bearer token"), std::string::npos);
    EXPECT_NE(r.headers.find("WWW-Authenticate: Bearer"), std::string::npos);
  }
  {
    http_client c(port);
    EXPECT_EQ(c.request("POST", path, ok_batch, {"Content-Type: application/json", "Authorization: Bearer nope"}).status,
              401);
  }
  {
    http_client c(port);
    const auto r = c.request("GET", path, "", auth);
    EXPECT_EQ(r.status, 405);
    EXPECT_NE(r.headers.find("Allow: POST"), std::string::npos);
  }
  {
    http_client c(port);
    EXPECT_EQ(c.request("POST", "/other", ok_batch, auth).status, 404);
  }
  {
    http_client c(port);
    EXPECT_EQ(c.request("POST", path, ok_batch, {"Content-Type: text/plain", "Authorization: Bearer s3cret"}).status,
              415);
  }
  {
    http_client c(port);
    const auto r = c.request("POST", path, std::string(5000, ' '), auth);
    EXPECT_EQ(r.status, 413);
    EXPECT_NE(r.body.find("max_body_size"), std::string::npos);
  }
  {
    http_client c(port);
    const auto r = c.request("POST", path, "this is not json", auth);
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("\"error\""), std::string::npos);
  }
  {
    http_client c(port);
    const auto r = c.request("POST", path, R"({"kind":"EventList","items":[{"verb":"get","auditID":"g1"},{"kind":0},{"verb": tru}]})", auth);
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("\"accepted\":1"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("{\"index\":1,\"reason\":\"not an audit event: field 'kind' has the wrong type\"}"),
              std::string::npos)
        << r.body;
    EXPECT_NE(r.body.find("{\"index\":2,\"reason\":\"invalid JSON"), std::string::npos) << r.body;
  }
  {
    // Keep-alive: several requests on one connection; a cluster taken from the path suffix;
    // Expect: 100-continue; a chunked body.
    http_client c(port);
    const auto r1 = c.request("POST", path + "/prod-eu", ok_batch,
                              {"Content-Type: application/json", "Authorization: Bearer s3cret", "Expect: 100-continue"});
    EXPECT_EQ(r1.status, 200) << r1.body;
    const std::string second = R"({"kind":"EventList","items":[]})";
    std::string chunked = "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: "
                          "Bearer s3cret\r\nTransfer-Encoding: chunked\r\n\r\n";
    char hex[16];
    std::snprintf(hex, sizeof hex, "%zx", second.size());
    chunked += std::string(hex) + "\r\n" + second + "\r\n0\r\n\r\n";
    ASSERT_TRUE(c.send_raw(chunked));
    const auto r2 = c.read_response();
    EXPECT_EQ(r2.status, 200) << r2.body;
    EXPECT_NE(r2.body.find("\"accepted\":0"), std::string::npos);
  }
  ASSERT_EQ(daemon.stop(), 0);
  EXPECT_NE(daemon.stdout_text.find("\"cluster\":\"prod-eu\""), std::string::npos) << daemon.stdout_text;
  EXPECT_NE(daemon.stdout_text.find("crowdsecurity/k8s-audit-pod-exec"), std::string::npos);
}

// A body of countless tiny items (a few bytes each, about 700 bytes and microseconds of the loop
// thread each once decoded) is refused before it is decoded, whether it is valid JSON or not;
// bad items past the 100 the answer names are counted without being described.
// Connections that no request passed the check on (silent, or stalled after one byte, or without
// the token) fill max_connections but cannot lock a client out: the oldest of them makes room.
// Then idle connections do; only when every connection has a request under way is a new one
// refused.
TEST(webhook, connections_without_credentials_make_room_for_a_client) {
  child daemon({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "--listen", "127.0.0.1:0", "-o", "json",
                "--workers", "1", "--max-connections", "3", "--token", "t0k"});
  const int port = test::start_daemon(daemon);
  ASSERT_NE(port, 0) << daemon.stderr_text;
  const std::string path = "/audit/webhook/event";
  const std::vector<std::string> auth = {"Content-Type: application/json", "Authorization: Bearer t0k"};
  std::vector<std::unique_ptr<http_client>> holders;
  for (int i = 0; i < 3; ++i) {
    holders.push_back(std::make_unique<http_client>(port));
    ASSERT_TRUE(holders.back()->connected());
    if (i == 1) {
      ASSERT_TRUE(holders.back()->send_raw("P")); // a byte, then nothing
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20)); // accepted in this order
  }
  http_client c(port);
  EXPECT_EQ(c.request("POST", path, R"({"kind":"EventList","items":[{"verb":"get"}]})", auth).status, 200);
  EXPECT_EQ(holders[0]->read_response(2000).status, 0); // the oldest made room
  http_client d(port), e(port);
  EXPECT_EQ(d.request("POST", path, R"({"kind":"EventList","items":[{"verb":"list"}]})", auth).status, 200);
  EXPECT_EQ(e.request("POST", path, R"({"kind":"EventList","items":[{"verb":"watch"}]})", auth).status, 200);
  // c, d and e are idle between requests: the oldest of them makes room for f.
  http_client f(port);
  EXPECT_EQ(f.request("POST", path, R"({"kind":"EventList","items":[{"verb":"head"}]})", auth).status, 200);
  // Three requests under way (headers passed, bodies still coming): a fourth client is refused.
  std::vector<std::unique_ptr<http_client>> sending;
  for (int i = 0; i < 3; ++i) {
    sending.push_back(std::make_unique<http_client>(port));
    ASSERT_TRUE(sending.back()->send_raw("POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                         "Authorization: Bearer t0k\r\nContent-Length: 100\r\n\r\n{"));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  http_client g(port);
  EXPECT_EQ(g.request("POST", path, R"({"kind":"EventList","items":[{"verb":"patch"}]})", auth).status, 0);
  sending.clear(); // shutdown would wait for their bodies
  ASSERT_EQ(daemon.stop(), 0);
  EXPECT_NE(daemon.stderr_text.find("stopped: 4 events processed"), std::string::npos) << daemon.stderr_text;
}

// A client flooding the server with connections from its address closes its own oldest, not
// another client's connection still on its way to a request (a TLS handshake, headers coming).
TEST(webhook, a_connection_flood_closes_the_flooder_s_own_connections) {
  child daemon({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "--listen", "127.0.0.1:0", "-o", "json",
                "--workers", "1", "--max-connections", "3", "--token", "t0k"});
  const int port = test::start_daemon(daemon);
  ASSERT_NE(port, 0) << daemon.stderr_text;
  // Connections from 127.0.0.2 (any 127/8 address reaches the loopback listener).
  auto from_other_address = [port] {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(0x7F000002);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    return fd;
  };
  std::vector<int> flood;
  for (int i = 0; i < 2; ++i) {
    flood.push_back(from_other_address());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::string body = R"({"kind":"EventList","items":[{"verb":"get"}]})";
  const std::string request = "POST /audit/webhook/event HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              "Authorization: Bearer t0k\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  http_client client(port);
  ASSERT_TRUE(client.send_raw(request.substr(0, 20))); // on its way: no request passed yet
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (int i = 0; i < 5; ++i) { // each needs room: the flood's own oldest goes
    flood.push_back(from_other_address());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(client.send_raw(request.substr(20)));
  EXPECT_EQ(client.read_response().status, 200);
  for (const int fd : flood) {
    ::close(fd);
  }
  ASSERT_EQ(daemon.stop(), 0);
}

TEST(webhook, countless_tiny_items_are_refused_before_decoding) {
  child daemon({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "--listen", "127.0.0.1:0", "-o", "json",
                "--workers", "1"});
  const int port = test::start_daemon(daemon);
  ASSERT_NE(port, 0) << daemon.stderr_text;
  const std::string path = "/audit/webhook/event";
  const std::string json = "Content-Type: application/json";
  auto list = [](std::size_t n, const std::string& last) {
    std::string body = R"({"kind":"EventList","items":[)";
    for (std::size_t i = 0; i < n; ++i) {
      body += i == 0 ? "{}" : ",{}";
    }
    return body + last + "]}";
  };
  http_client c(port);
  const std::string too_many = R"({"error":"more than 131072 items in one request"})";
  const auto valid = c.request("POST", path, list(131073, ""), {json});
  EXPECT_EQ(valid.status, 413);
  EXPECT_EQ(valid.body, too_many);
  http_client c2(port);
  const auto broken = c2.request("POST", path, list(131073, R"(,{"verb":tru})"), {json});
  EXPECT_EQ(broken.status, 413);
  EXPECT_EQ(broken.body, too_many);
  http_client c3(port);
  const auto many = c3.request("POST", path, list(5000, R"(,{"verb":"get"})"), {json});
  EXPECT_EQ(many.status, 200);
  EXPECT_EQ(many.body.rfind(R"({"accepted":1,"duplicates":0,"rejected":[{"index":0,"reason":"not an audit event)", 0), 0u)
      << many.body.substr(0, 200);
  EXPECT_EQ(std::count(many.body.begin(), many.body.end(), '{'), 1 + 100) << "the first 100 named";
  EXPECT_NE(many.body.find(R"(,"rejected_total":5000})"), std::string::npos) << many.body.substr(many.body.size() - 100);
  ASSERT_EQ(daemon.stop(), 0);
  EXPECT_NE(daemon.stderr_text.find("stopped: 1 events processed"), std::string::npos) << daemon.stderr_text;
}

// Items Go's encoding/json reads and simdjson refuses (bytes that are not UTF-8, a lone
// surrogate, an integer past 64 bits) are read as CrowdSec reads them, in a body that is valid
// otherwise and in one with a broken item beside them: an attacker's patch bytes, logged as sent,
// must not hide the event.
TEST(webhook, items_go_reads_are_read_as_go_reads_them) {
  child daemon({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "--listen", "127.0.0.1:0", "-o", "json",
                "--workers", "1"});
  const int port = test::start_daemon(daemon);
  ASSERT_NE(port, 0) << daemon.stderr_text;
  auto exec = [](const std::string& name, const std::string& extra) {
    return R"({"auditID":")" + name + R"(","stage":"ResponseComplete","verb":"create","user":{"username":"u"},)"
           R"("sourceIPs":["192.0.2.7"],"objectRef":{"resource":"pods","subresource":"exec","name":")" + name +
           R"("},"requestReceivedTimestamp":"2026-02-01T10:00:00Z","x":)" + extra + "}";
  };
  const std::string path = "/audit/webhook/event";
  http_client c(port);
  const auto whole = c.request("POST", path,
                               R"({"kind":"EventList","items":[)" + exec("utf8", "\"a\xff" "b\"") + "," +
                                   exec("surrogate", R"("\udc00")") + "," + exec("bigint", "18446744073709551616") + "]}",
                               {"Content-Type: application/json"});
  EXPECT_EQ(whole.status, 200);
  EXPECT_EQ(whole.body, R"({"accepted":3,"duplicates":0,"rejected":[]})");
  const auto split = c.request("POST", path,
                               R"({"kind":"EventList","items":[)" + exec("utf8-2", "\"\xfe\"") + R"(,{"verb":tru}]})",
                               {"Content-Type: application/json"});
  EXPECT_EQ(split.status, 200);
  EXPECT_EQ(split.body.rfind(R"({"accepted":1,"duplicates":0,"rejected":[{"index":1,)", 0), 0u) << split.body;
  ASSERT_EQ(daemon.stop(), 0);
  for (const char* name : {"utf8", "surrogate", "bigint", "utf8-2"}) {
    EXPECT_NE(daemon.stdout_text.find(std::string("\"resource_name\":\"") + name + "\""), std::string::npos) << name;
  }
}

TEST(webhook, odd_requests_get_one_clear_answer_each) {
  child daemon({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "--listen", "127.0.0.1:0", "-o", "json",
                "--workers", "1", "--max-body-size", "100000"});
  const int port = test::start_daemon(daemon);
  ASSERT_NE(port, 0) << daemon.stderr_text;
  const std::string path = "/audit/webhook/event";
  auto event = [](const std::string& id) {
    return R"({"auditID":")" + id +
           R"(","stage":"ResponseComplete","verb":"create","user":{"username":"u"},"sourceIPs":["192.0.2.1"],"objectRef":{"resource":"pods","subresource":"exec","namespace":"n","name":")" +
           id + R"("},"requestReceivedTimestamp":"2026-02-01T10:00:00Z"})";
  };
  auto batch = [&](const std::string& id) { return R"({"kind":"EventList","items":[)" + event(id) + "]}"; };
  const std::string json = "Content-Type: application/json";
  {
    http_client c(port);
    const auto r = c.request("POST", path, std::string(200000, ' '), {json});
    EXPECT_EQ(r.status, 413);
    EXPECT_EQ(r.body, R"x({"error":"body larger than max_body_size (100000 bytes)"})x");
  }
  {
    // Media types compare without regard to case; a compressed body is refused for what it is.
    http_client c(port);
    EXPECT_EQ(c.request("POST", path, batch("case"), {"Content-Type: Application/JSON; charset=utf-8"}).status, 200);
    const auto r = c.request("POST", path, batch("gz"), {json, "Content-Encoding: gzip"});
    EXPECT_EQ(r.status, 415);
    EXPECT_NE(r.body.find("unsupported content encoding 'gzip'"), std::string::npos) << r.body;
  }
  {
    // An Upgrade is ignored: one answer, and the connection goes on in HTTP/1.1.
    http_client c(port);
    const auto r1 = c.request("POST", path, batch("up1"), {json, "Connection: Upgrade", "Upgrade: websocket"});
    EXPECT_EQ(r1.status, 200) << r1.body;
    const auto r2 = c.request("POST", path, batch("up2"), {json});
    EXPECT_EQ(r2.status, 200) << r2.body;
    EXPECT_NE(r2.body.find("\"accepted\":1"), std::string::npos) << r2.body;
  }
  {
    // The same, with the body coming in a later read than the headers.
    http_client c(port);
    const std::string body = batch("up3");
    ASSERT_TRUE(c.send_raw("POST " + path + " HTTP/1.1\r\nHost: x\r\n" + json + "\r\nConnection: Upgrade\r\n"
                           "Upgrade: websocket\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n"));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_TRUE(c.send_raw(body));
    const auto r = c.read_response();
    EXPECT_EQ(r.status, 200) << r.body;
  }
  {
    // An item refused for its depth has sure bounds: the items after it are taken.
    http_client c(port);
    const std::string deep = R"({"verb":"get","x":)" + std::string(300, '[') + std::string(300, ']') + "}";
    const auto r = c.request("POST", path, R"({"kind":"EventList","items":[)" + deep + "," + event("deep1") + "]}", {json});
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("\"accepted\":1,"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("{\"index\":0,\"reason\":\"invalid JSON: The JSON document was too deep"), std::string::npos)
        << r.body;
  }
  {
    // A request pipelined after one that says Connection: close is not processed (RFC 9112
    // 9.6): one answer, then the connection closes.
    http_client c(port);
    const std::string first = batch("closing"), second = batch("after-close");
    ASSERT_TRUE(c.send_raw("POST " + path + " HTTP/1.1\r\nHost: x\r\n" + json + "\r\nConnection: close\r\nContent-Length: " +
                           std::to_string(first.size()) + "\r\n\r\n" + first + "POST " + path + " HTTP/1.1\r\nHost: x\r\n" +
                           json + "\r\nContent-Length: " + std::to_string(second.size()) + "\r\n\r\n" + second));
    const auto r = c.read_response();
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.headers.find("Connection: close"), std::string::npos) << r.headers;
    EXPECT_EQ(c.read_response(2000).status, 0); // no second answer: the connection is closed
  }
  {
    // A request line the parser took for the start of "HEAD": the 400 still has its body.
    http_client c(port);
    ASSERT_TRUE(c.send_raw("HELLO\r\n\r\n"));
    const auto r = c.read_response();
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("malformed HTTP request"), std::string::npos) << r.headers << r.body;
  }
  for (const std::string& body : {std::string("[xyz"), std::string(R"({"kind":"EventList","items":[{"verb":"get")"),
                                 R"({"kind":"EventList","items":[{"verb":"get","x":)" + std::string(300, '[') +
                                     std::string(300, ']') + "}]}"}) {
    // Not JSON, and no item of it usable: 400, as for a body without any list.
    http_client c(port);
    const auto r = c.request("POST", path, body, {json});
    EXPECT_EQ(r.status, 400) << body.substr(0, 60) << ": " << r.body;
    EXPECT_NE(r.body.find("not a usable audit batch"), std::string::npos) << r.body;
  }
  {
    // A string left open in item 1 of a one-line batch: item 0 is taken; what follows is not
    // split into items, where the string in item 2 would otherwise pass for an event.
    http_client c(port);
    const std::string body = R"({"kind":"EventList","items":[)" + event("ok0") + R"(,{"verb":"get, "auditID":"x"},)" +
                             R"({"auditID":"y","annotations":{"note":"},{\"verb\":\"delete\"},{"}},)" + event("ok3") + "]}";
    const auto r = c.request("POST", path, body, {json});
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("\"accepted\":1,"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("{\"index\":1,\"reason\":\"invalid JSON"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("{\"index\":2,\"reason\":\"not read"), std::string::npos) << r.body;
  }
  {
    // The same with no item told apart after the broken one: its own reason says the rest of
    // the list was not read (the good item after it is inside what looks like its string).
    http_client c(port);
    const std::string body =
        R"({"kind":"EventList","items":[)" + event("ok4") + R"(,{"verb":"get, "auditID":"x"},)" + event("lost5") + "]}";
    const auto r = c.request("POST", path, body, {json});
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("\"accepted\":1,"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("the list is not read past this item (where it ends is in doubt)\"}]}"), std::string::npos)
        << r.body;
  }
  ASSERT_EQ(daemon.stop(), 0);
  for (const char* pod : {"case", "up1", "up2", "up3", "deep1", "ok0", "closing"}) {
    EXPECT_NE(daemon.stdout_text.find("\"resource_name\":\"" + std::string(pod) + "\""), std::string::npos) << pod;
  }
  EXPECT_EQ(daemon.stdout_text.find("\"resource_name\":\"gz\""), std::string::npos);
  EXPECT_EQ(daemon.stdout_text.find("\"resource_name\":\"after-close\""), std::string::npos);
  EXPECT_EQ(daemon.stdout_text.find("\"resource_name\":\"ok3\""), std::string::npos);
}

TEST(webhook, bind_errors_are_reported) {
  child first({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "--listen", "127.0.0.1:0", "--workers", "1"});
  const int port = test::start_daemon(first);
  ASSERT_NE(port, 0);
  child second({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "--listen", "127.0.0.1:" + std::to_string(port), "--workers", "1"});
  EXPECT_EQ(second.stop(0), 2);
  EXPECT_NE(second.stderr_text.find("cannot listen on 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << second.stderr_text;
  EXPECT_EQ(first.stop(SIGINT), 0);
}

} // namespace
} // namespace vigil

namespace vigil {
namespace {

std::string write_temp(const std::string& name, const std::string& text) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("vigil_run_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / name) << text;
  return (dir / name).string();
}

const std::string exec_event =
    R"({"auditID":"f1","stage":"ResponseComplete","verb":"create","user":{"username":"u"},"sourceIPs":["192.0.2.44"],"objectRef":{"resource":"pods","subresource":"exec"},"requestReceivedTimestamp":"2026-02-01T10:00:00Z"})";

TEST(run, configured_sources_two_listeners_and_a_file) {
  const std::string log = write_temp("audit.log", exec_event + "\n");
  write_temp("acquis.yaml", "source: k8s-audit\nlisten_addr: 127.0.0.1\nlisten_port: 0\nwebhook_path: /second\n"
                            "labels:\n  type: k8s-audit\n---\nsource: journalctl\nlabels:\n  type: syslog\n");
  const std::string cfg = write_temp("vigil.yaml", "workers: 1\ncluster: lab\nacquis: acquis.yaml\nsources:\n"
                                                   "  - type: webhook\n    listen: 127.0.0.1:0\n    cluster: first\n"
                                                   "  - type: file\n    paths: [audit.log]\n    mode: cat\n");
  child check({vigil_bin, "check-config", "-c", cfg});
  EXPECT_EQ(check.stop(0), 0) << check.stderr_text;
  EXPECT_NE(check.stdout_text.find("configuration OK: 3 profiles, 7 rules, 0 notification(s), 2 webhook listener(s), 1 file source(s)"),
            std::string::npos)
      << check.stdout_text;

  child d({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "-c", cfg, "-o", "json"});
  ASSERT_TRUE(d.wait_for_stderr("/second")) << d.stderr_text;
  EXPECT_NE(d.stderr_text.find("'journalctl' skipped"), std::string::npos) << d.stderr_text;
  ASSERT_TRUE(d.wait_for_stderr("read " + log)) << d.stderr_text;
  const std::size_t at = d.stderr_text.find("127.0.0.1:", d.stderr_text.find("/second") - 30) + 10;
  const int second_port = std::stoi(d.stderr_text.substr(at));
  http_client c(second_port);
  const auto r = c.request("POST", "/second", R"({"kind":"EventList","items":[)" + exec_event + "]}");
  EXPECT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(d.stop(), 0);
  // The file event (cluster lab) and the webhook event, the same event, both alert.
  EXPECT_EQ(std::count(d.stdout_text.begin(), d.stdout_text.end(), '\n'), 2) << d.stdout_text;
  EXPECT_NE(d.stdout_text.find("\"cluster\":\"lab\""), std::string::npos);
}

TEST(run, files_only_open_no_listener_and_rules_must_exist) {
  // The embedded default webhook stands in for absent sources only: a configuration of files
  // does not also open an unauthenticated listener.
  const std::string only_log = write_temp("only.log", exec_event + "\n");
  const std::string cfg =
      write_temp("files-only.yaml", "sources:\n  - type: file\n    paths: [only.log]\n    mode: cat\n");
  child check({vigil_bin, "check-config", "-c", cfg});
  EXPECT_EQ(check.stop(0), 0) << check.stderr_text;
  EXPECT_NE(check.stdout_text.find("0 webhook listener(s), 1 file source(s)"), std::string::npos) << check.stdout_text;
  // With no listener at all (the local API and metrics off too), it reads its files and stops on
  // a signal.
  child files_only({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "-c", cfg, "-o", "json"});
  EXPECT_TRUE(files_only.wait_for_stderr("read " + only_log)) << files_only.stderr_text;
  EXPECT_EQ(files_only.stop(), 0) << files_only.stderr_text;
  EXPECT_NE(files_only.stdout_text.find("k8s-audit-pod-exec"), std::string::npos) << files_only.stdout_text;
  child with_flag({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "-c", cfg, "--listen", "127.0.0.1:0"});
  EXPECT_TRUE(with_flag.wait_for_stderr("vigil listening on http://127.0.0.1:")) << with_flag.stderr_text;
  EXPECT_EQ(with_flag.stop(), 0);

  // A rules directory without a scenario is an error, not an engine that watches nothing.
  const fs::path empty = fs::path(::testing::TempDir()) / (std::string("vigil_no_rules_").append(std::to_string(::getpid())));
  fs::create_directories(empty);
  child none({vigil_bin, "check-config", "--rules", empty.string()});
  EXPECT_EQ(none.stop(0), 2);
  EXPECT_NE(none.stderr_text.find(empty.string() + ": no scenario found"), std::string::npos) << none.stderr_text;
  child run({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "--listen", "127.0.0.1:0", "--rules",
             empty.string()});
  EXPECT_EQ(run.stop(0), 2) << run.stderr_text;
}

// Two tailed paths never share a position file (k_a/x.log and k/a_x.log both gave
// vigil-tail..._k_a_x.log.pos, so each restart replayed one of them); a path without `_` keeps
// the name earlier versions gave it.
TEST(run, tailed_paths_have_positions_of_their_own) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("vigil_posnames_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "k_a");
  fs::create_directories(dir / "k");
  std::ofstream(dir / "k_a" / "x.log") << exec_event << "\n";
  std::ofstream(dir / "k" / "a_x.log") << exec_event << "\n";
  std::ofstream(dir / "plain.log") << exec_event << "\n";
  const std::string cfg = (dir / "vigil.yaml").string();
  std::ofstream(cfg) << "sources:\n  - type: file\n    paths: [k_a/x.log, k/a_x.log, plain.log]\n    position_dir: .\n";
  child d({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "-c", cfg, "-o", "json"});
  ASSERT_TRUE(d.wait_for_stderr("plain.log (position in")) << d.stderr_text;
  EXPECT_EQ(d.stop(), 0) << d.stderr_text;
  // The directory part is spelled the same in all three (the test's temporary directory may
  // itself hold an `_`): compare the endings.
  EXPECT_NE(d.stderr_text.find("k%5Fa_x.log.pos)"), std::string::npos) << d.stderr_text;
  EXPECT_NE(d.stderr_text.find("_k_a%5Fx.log.pos)"), std::string::npos) << d.stderr_text;
  EXPECT_NE(d.stderr_text.find("_plain.log.pos)"), std::string::npos) << d.stderr_text;

  // A position saved under the earlier name goes to the path whose file it describes (its
  // inode): k/a/x.log's, not k_a/x.log's, though both had that name.
  fs::create_directories(dir / "k" / "a");
  const fs::path kax = dir / "k" / "a" / "x.log";
  std::ofstream(kax) << exec_event << "\n";
  std::string earlier = kax.string();
  std::replace(earlier.begin(), earlier.end(), '/', '_');
  struct stat st {};
  ASSERT_EQ(::stat(kax.c_str(), &st), 0);
  std::ofstream(dir / ("vigil-tail" + earlier + ".pos")) << st.st_ino << ' ' << st.st_size << "\n";
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".pos" && e.path().string().find("k%5Fa_x.log") != std::string::npos) {
      fs::remove(e.path()); // k_a/x.log starts without a position
    }
  }
  std::ofstream(cfg) << "sources:\n  - type: file\n    paths: [k_a/x.log, k/a/x.log]\n    position_dir: .\n"
                        "    start: beginning\n";
  child again({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "-c", cfg, "-o", "json"});
  ASSERT_TRUE(again.wait_for_stderr("a/x.log (position in")) << again.stderr_text;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(again.stop(), 0) << again.stderr_text;
  // k_a/x.log read from its beginning; k/a/x.log went on from its moved position: nothing new.
  EXPECT_EQ(std::count(again.stdout_text.begin(), again.stdout_text.end(), '\n'), 1) << again.stdout_text;
  EXPECT_FALSE(fs::exists(dir / ("vigil-tail" + earlier + ".pos")));
}

TEST(run, bad_configuration_is_reported_with_positions_and_refused) {
  const std::string cfg = write_temp("broken.yaml", "workers: lots\nsources:\n  - type: webhook\n    listen: x\n");
  child check({vigil_bin, "check-config", "-c", cfg});
  EXPECT_EQ(check.stop(0), 2);
  EXPECT_NE(check.stderr_text.find("broken.yaml:1:10: workers: expected an integer"), std::string::npos)
      << check.stderr_text;
  EXPECT_NE(check.stderr_text.find("broken.yaml:4:13: listen: expected ADDRESS:PORT"), std::string::npos)
      << check.stderr_text;
  child d({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "-c", cfg});
  EXPECT_EQ(d.stop(0), 2);
}

} // namespace
} // namespace vigil

namespace vigil {
namespace {

std::string exec_batch(const std::string& id) {
  return R"({"kind":"EventList","items":[{"auditID":")" + id +
         R"(","stage":"ResponseComplete","verb":"create","user":{"username":"u"},"sourceIPs":["192.0.2.60"],"objectRef":{"resource":"pods","subresource":"exec"},"requestReceivedTimestamp":"2026-02-01T10:00:00Z"}]})";
}

std::string exec_rule(const std::string& name) {
  return "type: trigger\nname: " + name + "\ndescription: exec\nfilter: evt.Unmarshaled.k8s_audit.objectRef?.subresource == 'exec'\n";
}

TEST(run, sighup_reloads_rules_and_a_broken_file_keeps_the_old_set) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("vigil_reload_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "exec.yaml") << exec_rule("test/exec-v1");
  child d({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "--listen", "127.0.0.1:0", "-o", "json", "--workers", "2", "--rules", dir.string()});
  const int port = test::start_daemon(d);
  ASSERT_NE(port, 0) << d.stderr_text;
  http_client c(port);
  ASSERT_EQ(c.request("POST", "/audit/webhook/event", exec_batch("r1")).status, 200);

  std::ofstream(dir / "exec.yaml", std::ios::trunc) << "type: trigger\nname: broken\nfilter: evt.Meta.user ==\n";
  ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
  ASSERT_TRUE(d.wait_for_stderr("reload failed")) << d.stderr_text;
  ASSERT_EQ(c.request("POST", "/audit/webhook/event", exec_batch("r2")).status, 200);

  std::ofstream(dir / "exec.yaml", std::ios::trunc) << exec_rule("test/exec-v2");
  ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
  ASSERT_TRUE(d.wait_for_stderr("rules reloaded: 1 rules")) << d.stderr_text;
  ASSERT_EQ(c.request("POST", "/audit/webhook/event", exec_batch("r3")).status, 200);
  ASSERT_EQ(d.stop(), 0);
  EXPECT_EQ(test::count_substr(d.stdout_text, "\"scenario\":\"test/exec-v1\""), 2u) << d.stdout_text;
  EXPECT_EQ(test::count_substr(d.stdout_text, "\"scenario\":\"test/exec-v2\""), 1u) << d.stdout_text;
}

} // namespace
} // namespace vigil

namespace vigil {
namespace {

// SIGTERM while clients keep posting: every batch answered 200 is processed (and nothing else);
// the rest get 503 or a closed connection.
TEST(run, shutdown_under_load_loses_nothing_acknowledged) {
  child d({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "--listen", "127.0.0.1:0", "--workers", "2"});
  const int port = test::start_daemon(d);
  ASSERT_NE(port, 0) << d.stderr_text;
  std::atomic<long> acknowledged{0}, refused{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < 3; ++t) {
    clients.emplace_back([&, t] {
      int b = 0;
      while (!stop) {
        http_client c(port);
        if (!c.connected()) {
          return; // the listener is gone
        }
        while (!stop) {
          std::string body = R"({"kind":"EventList","items":[)";
          for (int i = 0; i < 100; ++i) {
            body += std::string(i ? "," : "") + R"({"auditID":"s)" + std::to_string(t) + "-" + std::to_string(b) + "-" +
                    std::to_string(i) + R"(","stage":"ResponseComplete","verb":"get","sourceIPs":["10.1.1.)" +
                    std::to_string(i) + R"("],"requestReceivedTimestamp":"2026-02-01T10:00:00Z"})";
          }
          body += "]}";
          ++b;
          const auto r = c.request("POST", "/audit/webhook/event", body);
          if (r.status == 200) {
            simdjson::dom::parser p;
            acknowledged += int64_t(p.parse(r.body)["accepted"]);
          } else {
            ++refused;
            break; // 503, or the connection was closed: reconnect (or find the listener gone)
          }
        }
      }
    });
  }
  http_client keep_alive(port);
  ASSERT_EQ(keep_alive.request("POST", "/audit/webhook/event", R"({"kind":"EventList","items":[]})").status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // Under load, wait (bounded) until some batches are through, so the drain has work to finish.
  for (int i = 0; i < 1000 && acknowledged.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(::kill(d.pid(), SIGTERM), 0);
  ASSERT_TRUE(d.wait_for_stderr("received SIGTERM"));
  // A keep-alive client asking during the drain is told to come back later.
  const auto late = keep_alive.request("POST", "/audit/webhook/event", R"({"kind":"EventList","items":[]})");
  EXPECT_EQ(late.status, 503) << late.body;
  EXPECT_NE(late.headers.find("Retry-After"), std::string::npos);
  const int status = d.stop(0);
  stop = true;
  for (auto& c : clients) {
    c.join();
  }
  EXPECT_EQ(status, 0);
  EXPECT_GT(acknowledged.load(), 0);
  EXPECT_NE(d.stderr_text.find("stopped: " + std::to_string(acknowledged.load()) + " events processed"),
            std::string::npos)
      << "acknowledged " << acknowledged.load() << "\n"
      << d.stderr_text;
}

TEST(run, stalled_clients_are_timed_out) {
  const std::string cfg = write_temp("timeouts.yaml", "sources:\n  - type: webhook\n    listen: 127.0.0.1:0\n"
                                                      "    timeouts: {header: 300ms, idle: 300ms}\n");
  child d({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "-c", cfg, "--workers", "1"});
  const int port = test::start_daemon(d);
  ASSERT_NE(port, 0) << d.stderr_text;
  http_client stalled(port);
  ASSERT_TRUE(stalled.send_raw("POST /audit/webhook/event HTTP/1.1\r\nHost: x\r\nContent-Le"));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(stalled.read_response(5000).status, 0); // closed by the server, no answer
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(4));
  http_client idle(port);
  ASSERT_EQ(idle.request("POST", "/audit/webhook/event", R"({"kind":"EventList","items":[]})").status, 200);
  EXPECT_EQ(idle.read_response(5000).status, 0); // the idle keep-alive connection is closed too
  ASSERT_EQ(d.stop(), 0);
}

} // namespace
} // namespace vigil

namespace vigil {
namespace {

// An EventList of `n` lists refused with 401 for mallory from `ip`, one
// second apart from 10:00:00 (six within ten seconds make a bruteforce alert and its ban).
std::string refused_batch(const std::string& id_prefix, const std::string& ip, int n) {
  std::string batch = R"({"kind":"EventList","items":[)";
  for (int i = 0; i < n; ++i) {
    batch += std::string(i ? "," : "") + R"({"auditID":")" + id_prefix + std::to_string(i) +
             R"(","stage":"ResponseComplete","verb":"list","user":{"username":"mallory"},"sourceIPs":[")" + ip +
             R"("],"responseStatus":{"code":401},"requestReceivedTimestamp":"2026-02-01T10:00:0)" + std::to_string(i) +
             R"(Z"})";
  }
  return batch + "]}";
}

// Decisions are matched by their text, so the CLI writes addresses as Go prints them: one
// address spelled two ways is one decision, and an IPv4-mapped IPv6 address is its IPv4.
TEST(run, decision_addresses_are_stored_in_one_spelling) {
  const std::string db = write_temp("spelling.db", "");
  fs::remove(db);
  const std::string cfg = write_temp("spelling.yaml", "store:\n  path: spelling.db\n");
  child add6({vigil_bin, "decisions", "add", "-c", cfg, "--ip", "2001:DB8:0::2", "--duration", "4h"});
  ASSERT_EQ(add6.stop(0), 0) << add6.stderr_text;
  EXPECT_NE(add6.stdout_text.find("on Ip 2001:db8::2 "), std::string::npos) << add6.stdout_text;
  child add4({vigil_bin, "decisions", "add", "-c", cfg, "--ip", "::ffff:192.0.2.4", "--duration", "4h"});
  ASSERT_EQ(add4.stop(0), 0) << add4.stderr_text;
  EXPECT_NE(add4.stdout_text.find("on Ip 192.0.2.4 "), std::string::npos) << add4.stdout_text;
  child del({vigil_bin, "decisions", "delete", "-c", cfg, "--ip", "2001:db8::0:2"});
  ASSERT_EQ(del.stop(0), 0) << del.stderr_text;
  EXPECT_EQ(del.stdout_text, "1 decision(s) deleted\n");
}

// Alerts the store refuses (locked by another process) are kept and retried; at shutdown they
// get a bounded time more, and an alert stored then keeps its ban. None is lost without a word.
TEST(run, alerts_the_store_refused_are_retried_at_shutdown) {
  const std::string db = write_temp("locked.db", "");
  fs::remove(db);
  const std::string cfg = write_temp("locked.yaml", "workers: 1\nstore:\n  path: locked.db\n"
                                                    "sources:\n  - type: webhook\n    listen: 127.0.0.1:0\n");
  child d({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "-c", cfg});
  const int port = test::start_daemon(d);
  ASSERT_NE(port, 0) << d.stderr_text;
  // Another process holds the database for 7 s, longer than a write waits for it (5 s).
  child lock({"/usr/bin/python3", "-c",
              "import sqlite3,sys,time\nc=sqlite3.connect(sys.argv[1],isolation_level=None)\nc.execute('BEGIN EXCLUSIVE')\n"
              "print('locked',flush=True)\ntime.sleep(7)\nc.execute('COMMIT')\n",
              db});
  ASSERT_TRUE(lock.wait_for_stdout("locked")) << lock.stderr_text;
  http_client c(port);
  const std::string batch = refused_batch("lk", "198.51.100.67", 6);
  ASSERT_EQ(c.request("POST", "/audit/webhook/event", batch).status, 200);
  ASSERT_TRUE(d.wait_for_stderr("kept for retry")) << d.stderr_text;
  EXPECT_EQ(d.stop(), 0) << d.stderr_text;
  EXPECT_EQ(lock.wait_exit(), 0);
  child list({vigil_bin, "decisions", "list", "-c", cfg, "-o", "json"});
  ASSERT_EQ(list.stop(0), 0) << list.stderr_text;
  EXPECT_NE(list.stdout_text.find("\"value\":\"198.51.100.67\""), std::string::npos) << list.stdout_text << d.stderr_text;
}

TEST(run, alerts_and_decisions_reach_the_store_and_the_cli) {
  const std::string db = write_temp("cli.db", "");
  fs::remove(db);
  const std::string cfg = write_temp("store.yaml", "workers: 1\nstore:\n  path: cli.db\n  max_items: 100\n  max_age: 7d\n"
                                                   "sources:\n  - type: webhook\n    listen: 127.0.0.1:0\n");
  child d({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "-c", cfg});
  const int port = test::start_daemon(d);
  ASSERT_NE(port, 0) << d.stderr_text;
  http_client c(port);
  const std::string batch = refused_batch("bf", "198.51.100.66", 7);
  ASSERT_EQ(c.request("POST", "/audit/webhook/event", batch).status, 200);
  ASSERT_EQ(d.stop(), 0);
  // The local API's line, as CrowdSec's LAPI logs it (machine "vigil", the decision's origin).
  EXPECT_NE(d.stderr_text.find("(vigil/crowdsec) crowdsecurity/k8s-audit-api-server-bruteforce by ip 198.51.100.66 : "
                               "4h ban on Ip 198.51.100.66"),
            std::string::npos)
      << d.stderr_text;

  child list({vigil_bin, "decisions", "list", "-c", cfg, "-o", "json"});
  ASSERT_EQ(list.stop(0), 0) << list.stderr_text;
  EXPECT_EQ(test::count_substr(list.stdout_text, "\"value\":\"198.51.100.66\""), 1u) << list.stdout_text;
  EXPECT_NE(list.stdout_text.find("\"duration\":\"4h0m0s\""), std::string::npos);

  child alerts({vigil_bin, "alerts", "list", "-c", cfg, "-o", "json", "--scenario",
                "crowdsecurity/k8s-audit-api-server-bruteforce"});
  ASSERT_EQ(alerts.stop(0), 0);
  EXPECT_EQ(test::count_substr(alerts.stdout_text, "\"events_count\":6"), 1u) << alerts.stdout_text;

  child add({vigil_bin, "decisions", "add", "-c", cfg, "--ip", "192.0.2.200", "--duration", "1h"});
  ASSERT_EQ(add.stop(0), 0) << add.stderr_text;
  child del({vigil_bin, "decisions", "delete", "-c", cfg, "--ip", "198.51.100.66"});
  ASSERT_EQ(del.stop(0), 0);
  EXPECT_NE(del.stdout_text.find("1 decision(s) deleted"), std::string::npos);
  child table({vigil_bin, "decisions", "list", "-c", cfg});
  ASSERT_EQ(table.stop(0), 0);
  EXPECT_NE(table.stdout_text.find("192.0.2.200"), std::string::npos) << table.stdout_text;
  EXPECT_EQ(table.stdout_text.find("198.51.100.66"), std::string::npos) << table.stdout_text;

  child bad({vigil_bin, "decisions", "add", "-c", cfg, "--ip", "not-an-ip"});
  EXPECT_EQ(bad.stop(0), 2);
}

// Retention runs as the daemon starts (then after every 1,000 alerts and at least once a
// minute): a store left with an alert past max_age and a decision that expired days ago, whose
// alert is gone, is cleaned before any new alert comes.
TEST(run, retention_applies_at_start) {
  const std::string db = write_temp("old.db", "");
  fs::remove(db);
  const engine::unix_nanos now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count();
  const engine::unix_nanos day = 86400LL * 1'000'000'000;
  {
    std::string error;
    auto s = io::open_sqlite_store(db, error);
    ASSERT_TRUE(s) << error;
    engine::alert old;
    old.scenario = "crowdsecurity/k8s-audit-anonymous-access";
    old.message = "old";
    old.scope = "Ip";
    old.value = "198.51.100.1";
    engine::decision d;
    d.value = old.value;
    d.scenario = old.scenario;
    d.duration = day;
    d.until = now - 29 * day;
    old.decisions.push_back(d);
    ASSERT_EQ(s->save_alerts({old}, now - 30 * day).size(), 1u);
    old.message = "recent";
    old.value = "198.51.100.2";
    old.decisions.clear();
    ASSERT_EQ(s->save_alerts({old}, now - day).size(), 1u);
  }
  const std::string cfg = write_temp("old.yaml", "workers: 1\nstore:\n  path: old.db\n  max_age: 7d\n"
                                                 "sources:\n  - type: webhook\n    listen: 127.0.0.1:0\n");
  child d({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "off", "-c", cfg});
  ASSERT_NE(test::start_daemon(d), 0) << d.stderr_text;
  EXPECT_TRUE(d.wait_for_stderr("store: retention deleted 1 alert(s) and 1 expired decision(s)")) << d.stderr_text;
  child alerts({vigil_bin, "alerts", "list", "-c", cfg, "-o", "json"});
  ASSERT_EQ(alerts.stop(0), 0) << alerts.stderr_text;
  EXPECT_EQ(alerts.stdout_text.find("198.51.100.1"), std::string::npos) << alerts.stdout_text;
  EXPECT_NE(alerts.stdout_text.find("198.51.100.2"), std::string::npos) << alerts.stdout_text;
  child list({vigil_bin, "decisions", "list", "-c", cfg, "--all", "-o", "json"});
  ASSERT_EQ(list.stop(0), 0) << list.stderr_text;
  EXPECT_EQ(list.stdout_text.find("198.51.100.1"), std::string::npos) << list.stdout_text;
  EXPECT_EQ(d.stop(), 0);
}

} // namespace
} // namespace vigil

namespace vigil {
namespace {

int api_port(child& d) {
  if (!d.wait_for_stderr("vigil local API listening on http://127.0.0.1:")) {
    return 0;
  }
  const std::size_t at = d.stderr_text.find("127.0.0.1:", d.stderr_text.find("local API listening")) + 10;
  return std::stoi(d.stderr_text.substr(at));
}

// A bouncer's view: the stream (startup, then deltas), the live query, and authentication.
TEST(lapi, stream_startup_then_deltas_live_queries_and_auth) {
  const std::string db = write_temp("lapi.db", "");
  fs::remove(db);
  const std::string cfg = write_temp("lapi.yaml", "workers: 1\nstore:\n  path: lapi.db\nsources:\n  - type: webhook\n"
                                                  "    listen: 127.0.0.1:0\napi:\n  listen: 127.0.0.1:0\n");
  child add({vigil_bin, "bouncers", "add", "firewall", "-c", cfg});
  ASSERT_EQ(add.stop(0), 0) << add.stderr_text;
  const std::size_t k = add.stdout_text.find("   ") + 3;
  const std::string key = add.stdout_text.substr(k, 64);
  ASSERT_EQ(key.find_first_not_of("0123456789abcdef"), std::string::npos) << add.stdout_text;
  const std::vector<std::string> auth = {"X-Api-Key: " + key};

  child d({vigil_bin, "run", "--metrics-listen", "127.0.0.1:0", "-c", cfg});
  const int port = test::start_daemon(d);
  const int aport = api_port(d);
  const int mport = test::metrics_port(d);
  ASSERT_NE(mport, 0) << d.stderr_text;
  ASSERT_NE(port, 0);
  ASSERT_NE(aport, 0) << d.stderr_text;
  {
    http_client refused(aport); // a refused request closes its connection
    const auto r = refused.request("GET", "/v1/decisions/stream?startup=true", "", {"X-Api-Key: wrong"});
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(r.body, R"({"message":"access forbidden"})");
  }
  {
    http_client refused(aport);
    const auto r = refused.request("HEAD", "/v1/decisions", "", {"X-Api-Key: wrong"});
    EXPECT_EQ(r.status, 403);
    EXPECT_TRUE(r.body.empty());
  }
  http_client api(aport);
  const auto first = api.request("GET", "/v1/decisions/stream?startup=true", "", auth);
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(first.body, R"({"new":null,"deleted":null})");
  // HEAD, which CrowdSec routes to the same handlers: GET's status and headers without a body, on
  // a connection that stays usable (a body there would read as the start of the next answer).
  const auto head = api.request("HEAD", "/v1/decisions?ip=192.0.2.1", "", auth);
  EXPECT_EQ(head.status, 200);
  EXPECT_NE(head.headers.find("Content-Length: 4"), std::string::npos) << head.headers; // "null"
  const auto after_head = api.request("GET", "/v1/decisions?ip=192.0.2.1", "", auth);
  EXPECT_EQ(after_head.headers.rfind("HTTP/1.1 200 OK", 0), 0u) << after_head.headers;
  EXPECT_EQ(after_head.body, "null");

  http_client hook(port);
  std::string batch = R"({"kind":"EventList","items":[)";
  for (int i = 0; i < 6; ++i) {
    batch += std::string(i ? "," : "") + R"({"auditID":"l)" + std::to_string(i) +
             R"(","stage":"ResponseComplete","verb":"list","sourceIPs":["198.51.100.77"],"responseStatus":{"code":403},"requestReceivedTimestamp":"2026-02-01T10:00:0)" +
             std::to_string(i) + R"(Z"})";
  }
  ASSERT_EQ(hook.request("POST", "/audit/webhook/event", batch + "]}").status, 200);
  test::http_response delta;
  for (int tries = 0; tries < 200; ++tries) { // the emitter stores decisions asynchronously
    // A HEAD on the stream is not a pull: the GET after it still gets the new decision.
    EXPECT_EQ(api.request("HEAD", "/v1/decisions/stream?", "", auth).status, 200);
    delta = api.request("GET", "/v1/decisions/stream?", "", auth);
    if (delta.body.find("198.51.100.77") != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_NE(delta.body.find("\"new\":[{\"id\":"), std::string::npos) << delta.body;
  EXPECT_NE(delta.body.find("\"value\":\"198.51.100.77\""), std::string::npos);
  EXPECT_NE(delta.body.find("\"type\":\"ban\""), std::string::npos);
  EXPECT_NE(delta.body.find("\"duration\":\"3h59m"), std::string::npos) << delta.body; // remaining, positive
  EXPECT_EQ(api.request("GET", "/v1/decisions/stream?", "", auth).body, R"({"new":null,"deleted":null})");

  const auto live = api.request("GET", "/v1/decisions?ip=198.51.100.77", "", auth);
  EXPECT_EQ(live.status, 200);
  EXPECT_EQ(live.body.front(), '[');
  EXPECT_EQ(api.request("GET", "/v1/decisions?ip=192.0.2.1", "", auth).body, "null");
  {
    http_client wrong_method(aport);
    const auto post = wrong_method.request("POST", "/v1/decisions", "", auth);
    EXPECT_EQ(post.status, 405);
    EXPECT_NE(post.headers.find("Allow: GET, HEAD"), std::string::npos) << post.headers;
  }
  {
    http_client webhook_head(port); // the webhook takes POST only: 405, and no body for a HEAD
    const auto r = webhook_head.request("HEAD", "/audit/webhook/event", "");
    EXPECT_EQ(r.status, 405);
    EXPECT_TRUE(r.body.empty());
  }
  // Ranges, IPv4 and IPv6, hold the addresses inside them; a range that is not one is refused.
  for (const char* range : {"10.1.0.0/16", "2001:db8::/32"}) {
    child r({vigil_bin, "decisions", "add", "-c", cfg, "--range", range});
    ASSERT_EQ(r.stop(0), 0) << r.stderr_text;
  }
  for (const char* bad : {"10.1.0.0/x", "10.1.0.0/33", "10.1.0.0", "2001:db8::/129", "host/8"}) {
    child r({vigil_bin, "decisions", "add", "-c", cfg, "--range", bad});
    EXPECT_EQ(r.stop(0), 2) << bad;
    EXPECT_NE(r.stderr_text.find("is not a range"), std::string::npos) << r.stderr_text;
  }
  EXPECT_NE(api.request("GET", "/v1/decisions?ip=10.1.200.3", "", auth).body.find("\"value\":\"10.1.0.0/16\""),
            std::string::npos);
  EXPECT_NE(api.request("GET", "/v1/decisions?ip=2001%3Adb8%3A%3A5", "", auth).body.find("\"value\":\"2001:db8::/32\""),
            std::string::npos);
  EXPECT_EQ(api.request("GET", "/v1/decisions?ip=2001:db9::5", "", auth).body, "null");
  // As in CrowdSec: `range` selects the decisions that contain the whole range, and
  // contains=false turns `ip` and `range` around (the decisions inside them).
  auto values_of = [&](const std::string& query) {
    std::string path = "/v1/decisions?";
    path += query;
    const auto r = api.request("GET", path, "", auth);
    EXPECT_EQ(r.status, 200) << query << " " << r.body;
    std::string found;
    for (std::size_t at = r.body.find("\"value\":\""); at != std::string::npos; at = r.body.find("\"value\":\"", at + 1)) {
      const std::size_t b = at + 9;
      if (!found.empty()) {
        found += ' ';
      }
      found.append(r.body, b, r.body.find('"', b) - b);
    }
    return found;
  };
  EXPECT_EQ(values_of("range=10.1.7.0/24"), "10.1.0.0/16");
  EXPECT_EQ(values_of("range=10.1.0.0/16"), "10.1.0.0/16");
  EXPECT_EQ(values_of("range=10.0.0.0/8"), "");
  EXPECT_EQ(values_of("range=10.0.0.0/8&contains=false"), "10.1.0.0/16");
  EXPECT_EQ(values_of("range=198.51.100.0/24"), "");
  EXPECT_EQ(values_of("range=198.51.100.0/24&contains=false"), "198.51.100.77");
  EXPECT_EQ(values_of("ip=10.1.200.3&contains=false"), "");
  EXPECT_EQ(values_of("ip=198.51.100.77&contains=0"), "198.51.100.77");
  EXPECT_EQ(values_of("ip=::ffff:198.51.100.77"), "198.51.100.77"); // IPv4-mapped is IPv4
  EXPECT_EQ(values_of("ip=::ffff:10.1.2.3"), "10.1.0.0/16");
  EXPECT_EQ(values_of("range=2001:db8:1::/48"), "2001:db8::/32");
  EXPECT_EQ(values_of("range=::/0&contains=false"), "2001:db8::/32");
  // What is neither an address nor a range, or a contains that is not a boolean, is a 400 with
  // a message; a malformed escape is taken as written (it used to throw and end the daemon).
  const auto odd = api.request("GET", "/v1/decisions?ip=%zz&type=%", "", auth);
  EXPECT_EQ(odd.status, 400);
  EXPECT_EQ(odd.body, R"({"message":"'%zz' is not an IP address or range"})");
  EXPECT_EQ(api.request("GET", "/v1/decisions?range=10.0.0.0/33", "", auth).status, 400);
  EXPECT_EQ(api.request("GET", "/v1/decisions?range=0.0.0.0/-0", "", auth).status, 400);
  const auto maybe = api.request("GET", "/v1/decisions?ip=10.1.200.3&contains=maybe", "", auth);
  EXPECT_EQ(maybe.status, 400);
  EXPECT_EQ(maybe.body, R"({"message":"invalid contains value: 'maybe'"})");
  EXPECT_EQ(values_of("type=ban&value=198.51.100.77"), "198.51.100.77");

  child del({vigil_bin, "decisions", "delete", "-c", cfg, "--ip", "198.51.100.77"});
  ASSERT_EQ(del.stop(0), 0);
  const auto gone = api.request("GET", "/v1/decisions/stream?", "", auth);
  EXPECT_NE(gone.body.find("\"new\":null,\"deleted\":[{"), std::string::npos) << gone.body;
  {
    // After a HEAD on a kept-alive connection, the 400 for garbage still has its body.
    http_client h(aport);
    EXPECT_EQ(h.request("HEAD", "/v1/decisions?ip=192.0.2.1", "", auth).status, 200);
    ASSERT_TRUE(h.send_raw("\x01garbage\r\n\r\n"));
    const auto bad = h.read_response();
    EXPECT_EQ(bad.status, 400);
    EXPECT_NE(bad.body.find("malformed HTTP request"), std::string::npos) << bad.headers;
  }
  // CrowdSec's LAPI metrics (cscli metrics' lapi and lapi-bouncer tables): every request per
  // route and method, refused ones included; the accepted ones per bouncer; the time to answer.
  http_client m(mport);
  const std::string metrics = m.request("GET", "/metrics", "", {}).body;
  EXPECT_NE(metrics.find("cs_lapi_route_requests_total{route=\"/v1/decisions\",method=\"HEAD\"} 3"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("cs_lapi_bouncer_requests_total{bouncer=\"firewall\",route=\"/v1/decisions\",method=\"GET\"} "),
            std::string::npos);
  EXPECT_NE(metrics.find("cs_lapi_request_duration_seconds_count{endpoint=\"/v1/decisions/stream\",method=\"GET\"} "),
            std::string::npos);
  EXPECT_NE(metrics.find("cs_lapi_bouncer_requests_total{bouncer=\"firewall\",route=\"/v1/decisions\",method=\"HEAD\"} 2"),
            std::string::npos); // of the three, one was refused (no bouncer)
  ASSERT_EQ(d.stop(), 0);

  // After a restart the bouncer (which never sends startup=true again) gets no stale re-send.
  child again({vigil_bin, "run", "--metrics-listen", "off", "-c", cfg});
  ASSERT_NE(test::start_daemon(again), 0);
  const int aport2 = api_port(again);
  ASSERT_NE(aport2, 0);
  http_client api2(aport2);
  EXPECT_EQ(api2.request("GET", "/v1/decisions/stream?", "", auth).body, R"({"new":null,"deleted":null})");
  ASSERT_EQ(again.stop(), 0);
}

} // namespace
} // namespace vigil

namespace vigil {
namespace {

// Bad items are counted once each: a resent batch counts them as duplicates, a 400 that names
// them counts them, and an item read as Go reads it counts once in vigil_decoder_read_as_go_total
// though the webhook and its worker both parse it.
TEST(metrics, bad_items_are_counted_once) {
  child d({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0",
           "--workers", "1"});
  const int port = test::start_daemon(d);
  ASSERT_NE(port, 0) << d.stderr_text;
  const int mport = test::metrics_port(d);
  ASSERT_NE(mport, 0) << d.stderr_text;
  const std::string path = "/audit/webhook/event";
  const std::string mix = R"({"kind":"EventList","items":[{"auditID":"g","verb":"get"},{"kind":"Pod"}]})";
  http_client c(port);
  EXPECT_EQ(c.request("POST", path, mix).body.rfind(R"({"accepted":1,"duplicates":0,"rejected":[{"index":1)", 0), 0u);
  EXPECT_EQ(c.request("POST", path, mix).body.rfind(R"({"accepted":0,"duplicates":1,"rejected":[{"index":1)", 0), 0u);
  EXPECT_EQ(c.request("POST", path, R"({"kind":"EventList","items":[{"kind":"Pod"},tru]})").status, 400);
  EXPECT_EQ(c.request("POST", path, "{\"kind\":\"EventList\",\"items\":[{\"verb\":\"get\",\"userAgent\":\"B\xff\"},"
                                    "{\"verb\":\"get\",\"n\":1E400}]}")
                .body.rfind(R"({"accepted":1,)", 0),
            0u);
  test::http_response r;
  for (int tries = 0; tries < 200; ++tries) {
    http_client m(mport);
    r = m.request("GET", "/metrics", "", {});
    if (r.body.find("vigil_decoder_events_decoded_total 2") != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::string src = "source=\"127.0.0.1:0\",";
  EXPECT_NE(r.body.find("vigil_webhook_events_total{" + src + "result=\"rejected\"} 4\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("vigil_webhook_events_total{" + src + "result=\"duplicate\"} 2\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("cs_parser_hits_ko_total{source=\"127.0.0.1\",type=\"k8s-audit\",acquis_type=\"k8s-audit\"} 4\n"),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("vigil_decoder_read_as_go_total 1\n"), std::string::npos) << r.body;
  ASSERT_EQ(d.stop(), 0);
}

// /metrics in Prometheus text format, with CrowdSec's names beside vigil's.
TEST(metrics, prometheus_text_with_crowdsec_and_vigil_names) {
  child d({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0",
           "--workers", "1", "--max-body-size", "4096"});
  const int port = test::start_daemon(d);
  ASSERT_NE(port, 0) << d.stderr_text;
  const int mport = test::metrics_port(d);
  ASSERT_NE(mport, 0) << d.stderr_text;
  // Requests to the webhook's path are counted whatever their answer (a 413 included); requests
  // to other paths are not, as CrowdSec's handler never sees them.
  {
    http_client other_path(port);
    EXPECT_EQ(other_path.request("GET", "/", "", {}).status, 404);
    http_client too_large(port);
    EXPECT_EQ(too_large.request("POST", "/audit/webhook/event", std::string(5000, ' ')).status, 413);
  }
  http_client hook(port);
  const std::string batch =
      R"({"kind":"EventList","items":[{"auditID":"m1","stage":"ResponseComplete","verb":"get","sourceIPs":["192.0.2.3"],"responseStatus":{"code":401}},{"kind":0}]})";
  ASSERT_EQ(hook.request("POST", "/audit/webhook/event", batch).status, 200);
  const std::string poured = "cs_bucket_poured_total{source=\"127.0.0.1\",type=\"k8s-audit\","
                             "name=\"crowdsecurity/k8s-audit-api-server-bruteforce\"} 1";
  test::http_response r;
  for (int tries = 0; tries < 200; ++tries) {
    http_client m(mport);
    r = m.request("GET", "/metrics", "", {});
    // The pour is counted after the event is decoded: wait for both.
    if (r.body.find("vigil_decoder_events_decoded_total 1") != std::string::npos &&
        r.body.find(poured) != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.headers.find("text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(r.body.find("# TYPE cs_k8sauditsource_hits_total counter"), std::string::npos);
  EXPECT_NE(r.body.find("cs_k8sauditsource_hits_total{source=\"127.0.0.1:"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(",datasource_type=\"k8s-audit\",acquis_type=\"k8s-audit\"} 2"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("result=\"rejected\"} 1"), std::string::npos);
  EXPECT_NE(r.body.find("vigil_decoder_events_decoded_total 1"), std::string::npos);
  EXPECT_NE(r.body.find("# HELP cs_k8sauditsource_requests_total Total number of requests received"), std::string::npos);
  // The source is the listen address as configured (CrowdSec's label), here port 0.
  EXPECT_NE(r.body.find("cs_k8sauditsource_requests_total{source=\"127.0.0.1:0\"} 2\n"), std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("cs_parser_hits_ok_total{source=\"127.0.0.1\",type=\"k8s-audit\",acquis_type=\"k8s-audit\"} 1"),
            std::string::npos)
      << r.body;
  // The rejected item entered the parser and failed there, as a malformed line of a file does.
  EXPECT_NE(r.body.find("cs_parser_hits_total{source=\"127.0.0.1\",type=\"k8s-audit\"} 2"), std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("cs_parser_hits_ko_total{source=\"127.0.0.1\",type=\"k8s-audit\",acquis_type=\"k8s-audit\"} 1"),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("cs_info{version=\"vigil-0.1.0\"} 1"), std::string::npos);
  // A 401 is poured into the bruteforce bucket, counted with its source and type as CrowdSec does.
  EXPECT_NE(r.body.find(poured), std::string::npos) << r.body;
  // Every family served is documented in docs/metrics.md, by name or by a pattern such as
  // `vigil_decoder_*_total`.
  std::ifstream doc_file("docs/metrics.md");
  ASSERT_TRUE(doc_file) << "run from the project root";
  const std::string doc((std::istreambuf_iterator<char>(doc_file)), std::istreambuf_iterator<char>());
  std::vector<std::pair<std::string, std::string>> patterns; // (before the *, after it)
  for (std::size_t open = doc.find('`'); open != std::string::npos;) {
    const std::size_t close = doc.find('`', open + 1);
    if (close == std::string::npos) {
      break;
    }
    const std::string token = doc.substr(open + 1, close - open - 1);
    if (const std::size_t star = token.find('*'); star != std::string::npos && token.find(' ') == std::string::npos) {
      patterns.emplace_back(token.substr(0, star), token.substr(star + 1));
    }
    open = doc.find('`', close + 1);
  }
  std::size_t families = 0;
  std::istringstream lines(r.body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# TYPE ", 0) != 0) {
      continue;
    }
    const std::string name = line.substr(7, line.find(' ', 7) - 7);
    ++families;
    const bool by_prefix = std::any_of(patterns.begin(), patterns.end(), [&](const auto& p) {
      return name.size() >= p.first.size() + p.second.size() && name.rfind(p.first, 0) == 0 &&
             name.compare(name.size() - p.second.size(), p.second.size(), p.second) == 0;
    });
    EXPECT_TRUE(doc.find("`" + name + "`") != std::string::npos || by_prefix) << name << " is not in docs/metrics.md";
  }
  EXPECT_GT(families, 30u);
  http_client other(mport);
  EXPECT_EQ(other.request("GET", "/nope", "", {}).status, 404);
  http_client head_client(mport); // an early answer (the 404) ends its connection
  const auto head = head_client.request("HEAD", "/metrics", "", {});
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_NE(head.headers.find("Content-Length: "), std::string::npos) << head.headers;
  const auto post = head_client.request("POST", "/metrics", "x", {});
  EXPECT_EQ(post.status, 405);
  EXPECT_NE(post.headers.find("Allow: GET, HEAD"), std::string::npos) << post.headers;

  // `vigil metrics` reads the same endpoint and prints cscli-like tables.
  const std::string url = "http://127.0.0.1:" + std::to_string(mport) + "/metrics";
  child tables({vigil_bin, "metrics", "--url", url});
  ASSERT_EQ(tables.stop(0), 0) << tables.stderr_text;
  EXPECT_NE(tables.stdout_text.find("Acquisition Metrics:"), std::string::npos) << tables.stdout_text;
  EXPECT_NE(tables.stdout_text.find("Scenario Metrics:"), std::string::npos);
  // cscli's acquisition row: "<type>:<source>", read 2, parsed 1, unparsed 1 (the item the
  // webhook rejected), poured 1; whitelisted zero, printed "-" as cscli prints a zero.
  EXPECT_NE(tables.stdout_text.find("  k8s-audit:127.0.0.1 "), std::string::npos) << tables.stdout_text;
  const std::size_t acq = tables.stdout_text.find("  k8s-audit:127.0.0.1 ");
  std::istringstream acq_row(tables.stdout_text.substr(acq, tables.stdout_text.find('\n', acq) - acq));
  std::vector<std::string> cells{std::istream_iterator<std::string>(acq_row), std::istream_iterator<std::string>()};
  EXPECT_EQ(cells, (std::vector<std::string>{"k8s-audit:127.0.0.1", "2", "1", "1", "1", "-"})) << tables.stdout_text;
  child json({vigil_bin, "metrics", "--url", url, "-o", "json"});
  ASSERT_EQ(json.stop(0), 0);
  EXPECT_NE(json.stdout_text.find("{\"name\":\"cs_info\",\"labels\":{\"version\":\"vigil-0.1.0\"},\"value\":1}"),
            std::string::npos)
      << json.stdout_text.substr(0, 500);
  ASSERT_EQ(d.stop(), 0);
  child down({vigil_bin, "metrics", "--url", url});
  EXPECT_EQ(down.stop(0), 2);
  EXPECT_NE(down.stderr_text.find("cannot read"), std::string::npos);
}

} // namespace
} // namespace vigil

namespace vigil {
namespace {

// loadgen accounts for every event it sent: accepted, rejected by the server, or in a batch
// never answered 200 (here a 413), and replaces the connection the server closed after the
// 413 instead of failing every later batch on it. Exit status 1 since not every event was taken.
TEST(loadgen, reports_what_became_of_every_event_and_replaces_closed_connections) {
  child d({vigil_bin, "run", "--api-listen", "off", "--metrics-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0",
           "--workers", "1", "--max-body-size", "3000"});
  const int port = test::start_daemon(d);
  ASSERT_NE(port, 0) << d.stderr_text;
  const int mport = test::metrics_port(d);
  ASSERT_NE(mport, 0) << d.stderr_text;
  const std::string file = testing::TempDir() + "vigil_loadgen_events.jsonl";
  {
    std::ofstream out(file);
    for (int i = 0; i < 31; ++i) {
      if (i == 20) {
        out << "{\"kind\":0}\n"; // an item the webhook rejects
        continue;
      }
      const std::string agent = i == 7 ? std::string(4000, 'a') : "curl"; // its batch is over 3000 bytes
      out << R"({"auditID":"lg-)" << i << R"(","stage":"ResponseComplete","verb":"get","userAgent":")" << agent
          << R"(","sourceIPs":["192.0.2.9"],"responseStatus":{"code":200},"requestReceivedTimestamp":"2026-02-01T10:00:00Z"})"
          << "\n";
    }
  }
  child lg({LOADGEN_BINARY, "--port", std::to_string(port), "--metrics-port", std::to_string(mport), "--file", file,
            "--batch", "5", "--connections", "1"});
  EXPECT_EQ(lg.stop(0), 1) << lg.stdout_text << lg.stderr_text;
  EXPECT_NE(lg.stdout_text.find("events: sent 31, accepted 25, duplicates 0, rejected 1, not accepted (non-2xx) 5; "
                                "reconnects 1\n"),
            std::string::npos)
      << lg.stdout_text;
  EXPECT_NE(lg.stdout_text.find("answers: 200 x6 413 x1\n"), std::string::npos) << lg.stdout_text;
  EXPECT_NE(lg.stdout_text.find("server counted 25 accepted events (difference 0)"), std::string::npos) << lg.stdout_text;
  ASSERT_EQ(d.stop(), 0);
}

} // namespace
} // namespace vigil
