// The SQLite store: alerts with their decisions, expiry, deletion, retention, a restart, and a
// reader in another connection while a writer commits.
#include "io/store/store.h"

#include <algorithm>
#include <filesystem>
#include <atomic>
#include <thread>

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

namespace vigil::io {
namespace {

namespace fs = std::filesystem;
const engine::unix_nanos sec = 1'000'000'000;

std::string fresh_db(const char* name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("vigil_store_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const fs::path p = dir / name;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    fs::remove(p.string() + suffix);
  }
  return p.string();
}

std::unique_ptr<store> open(const std::string& path) {
  std::string error;
  auto s = open_sqlite_store(path, error);
  EXPECT_TRUE(s) << error;
  return s;
}

engine::alert bruteforce(const std::string& ip, engine::unix_nanos now, engine::unix_nanos ban) {
  engine::alert a;
  a.scenario = "crowdsecurity/k8s-audit-api-server-bruteforce";
  a.message = "Ip " + ip + " performed ...";
  a.scope = "Ip";
  a.value = ip;
  a.source_ip = ip;
  a.events_count = 6;
  a.remediation = true;
  a.labels_json = R"({"remediation":true})";
  engine::event_payload e;
  e.time = now;
  e.meta = {{"source_ip", ip}, {"user", "mallory"}};
  a.events.push_back(e);
  engine::decision d;
  d.value = ip;
  d.scenario = a.scenario;
  d.duration = ban;
  d.until = now + ban;
  a.decisions.push_back(d);
  return a;
}

TEST(store, alerts_and_decisions_survive_a_restart_and_expire_on_time) {
  const std::string db = fresh_db("restart.db");
  const engine::unix_nanos t0 = 1'700'000'000 * sec;
  {
    auto s = open(db);
    const auto ids = s->save_alerts({bruteforce("198.51.100.1", t0, 3600 * sec), bruteforce("198.51.100.2", t0, 60 * sec)}, t0);
    ASSERT_EQ(ids.size(), 2u);
  }
  auto s = open(db); // "restart"
  const auto alerts = s->list_alerts({});
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_EQ(alerts[0].value, "198.51.100.2"); // newest first
  EXPECT_EQ(alerts[0].decisions, 1u);
  EXPECT_NE(alerts[0].events_json.find("mallory"), std::string::npos);
  EXPECT_EQ(s->list_decisions({.now = t0 + 30 * sec}).size(), 2u);
  const auto later = s->list_decisions({.now = t0 + 120 * sec}); // the 60 s ban has expired
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].d.value, "198.51.100.1");
  EXPECT_EQ(later[0].d.until, t0 + 3600 * sec);
  EXPECT_EQ(s->list_decisions({.include_expired = true, .now = t0 + 120 * sec}).size(), 2u);
}

std::int64_t page_size_of(const std::string& path) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &q, nullptr), SQLITE_OK);
  const std::int64_t n = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : -1;
  sqlite3_finalize(q);
  sqlite3_close(db);
  return n;
}

// A new store uses 16 KiB pages (fewer WAL frames per group of alerts); a store created with
// SQLite's default 4 KiB pages (by an older vigil) opens as it is and keeps its data.
TEST(store, new_stores_use_16k_pages_and_older_ones_open_unchanged) {
  const engine::unix_nanos t0 = 1'700'000'000 * sec;
  const std::string fresh = fresh_db("pages-new.db");
  {
    auto s = open(fresh);
    ASSERT_EQ(s->save_alerts({bruteforce("198.51.100.7", t0, 60 * sec)}, t0).size(), 1u);
  }
  EXPECT_EQ(page_size_of(fresh), 16384);

  const std::string old = fresh_db("pages-old.db");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(old.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA page_size=4096; PRAGMA journal_mode=WAL; CREATE TABLE keep(x); INSERT INTO keep VALUES (42);",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  {
    auto s = open(old);
    ASSERT_EQ(s->save_alerts({bruteforce("198.51.100.8", t0, 60 * sec)}, t0).size(), 1u);
    EXPECT_EQ(s->list_alerts({}).size(), 1u);
  }
  EXPECT_EQ(page_size_of(old), 4096);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(old.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT x FROM keep", -1, &q, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(q, 0), 42);
  sqlite3_finalize(q);
  sqlite3_close(db);
}

TEST(store, manual_decisions_and_deletion) {
  auto s = open(fresh_db("manual.db"));
  const engine::unix_nanos now = 1'700'000'000 * sec;
  engine::decision d;
  d.value = "203.0.113.0/24";
  d.scope = "Range";
  d.origin = "cscli";
  d.scenario = "manual";
  d.duration = 3600 * sec;
  d.until = now + d.duration;
  const std::int64_t id = s->add_decision(d, now);
  s->save_alerts({bruteforce("203.0.113.7", now, 3600 * sec)}, now);
  EXPECT_EQ(s->list_decisions({.now = now}).size(), 2u);
  EXPECT_EQ(s->list_decisions({.value = "203.0.113.7", .now = now}).size(), 1u);
  const auto counts = s->count_active_decisions(now);
  ASSERT_EQ(counts.size(), 2u); // (manual, cscli, ban) and (bruteforce, crowdsec, ban)
  for (const auto& c : counts) {
    EXPECT_EQ(c.count, 1u);
    EXPECT_EQ(c.type, "ban");
  }
  EXPECT_EQ(s->delete_decisions("203.0.113.7", 0, now + sec), 1u);
  EXPECT_EQ(s->delete_decisions("", id, now + sec), 1u);
  EXPECT_EQ(s->delete_decisions("", id, now + sec), 0u); // already deleted
  EXPECT_TRUE(s->list_decisions({.now = now + 2 * sec}).empty());
  // GetDecisionsCount counts every decision ever taken on a value, deleted or expired included,
  // with CrowdSec's rule: the Ip and Range decisions that contain the address or range.
  s->save_alerts({bruteforce("203.0.113.7", now + 10 * sec, 60 * sec)}, now + 10 * sec);
  EXPECT_EQ(s->count_decisions("203.0.113.7", 0), 3); // two on the address, the /24 holding it
  EXPECT_EQ(s->count_decisions("203.0.113.7", now + 5 * sec), 1);
  EXPECT_EQ(s->count_decisions("203.0.113.8", 0), 1);
  EXPECT_EQ(s->count_decisions("203.0.113.0/25", 0), 1);
  EXPECT_EQ(s->count_decisions("203.0.0.0/16", 0), 0);
  EXPECT_EQ(s->count_decisions("192.0.2.1", 0), 0);
  EXPECT_EQ(s->count_decisions("not-an-address", 0), 0);
  EXPECT_EQ(s->count_decisions("::ffff:203.0.113.7", 0), 3); // IPv4-mapped: the same address
}

TEST(store, retention_by_count_and_age) {
  auto s = open(fresh_db("retention.db"));
  const engine::unix_nanos day = 86400 * sec;
  const engine::unix_nanos t0 = 1'700'000'000 * sec;
  for (int i = 0; i < 10; ++i) {
    s->save_alerts({bruteforce("10.0.0." + std::to_string(i), t0 + i * day, sec)}, t0 + i * day);
  }
  EXPECT_EQ(s->apply_retention(0, 7 * day, t0 + 9 * day).alerts, 2u); // days 0 and 1 are older than 7 days
  EXPECT_EQ(s->list_alerts({}).size(), 8u);
  EXPECT_EQ(s->apply_retention(5, 0, t0 + 9 * day).alerts, 3u);
  const auto left = s->list_alerts({});
  ASSERT_EQ(left.size(), 5u);
  EXPECT_EQ(left.back().value, "10.0.0.5");
  EXPECT_EQ(s->apply_retention(5, 0, t0 + 9 * day).alerts, 0u);  // exactly max_items left: nothing to remove
  EXPECT_EQ(s->apply_retention(50, 0, t0 + 9 * day).alerts, 0u); // fewer than max_items
  EXPECT_EQ(s->list_alerts({}).size(), 5u);
  EXPECT_EQ(s->list_alerts({.scenario = "other"}).size(), 0u);
}

// Decisions are not kept for ever: once their alert is gone (or they were added by hand), those
// that expired over a day ago go too. Active ones and recently expired ones stay, and so does
// every decision of an alert still kept.
TEST(store, retention_deletes_decisions_a_day_after_expiry_once_their_alert_is_gone) {
  auto s = open(fresh_db("retention_decisions.db"));
  const engine::unix_nanos hour = 3600 * sec;
  const engine::unix_nanos t0 = 1'700'000'000 * sec;
  // Alerts 1-4, oldest first: bans of 1 h, 1 h, 40 h and 1 h; the last alert is the one kept.
  s->save_alerts({bruteforce("10.0.0.1", t0, hour)}, t0);
  s->save_alerts({bruteforce("10.0.0.2", t0 + 10 * hour, hour)}, t0 + 10 * hour);
  s->save_alerts({bruteforce("10.0.0.3", t0, 40 * hour)}, t0);
  s->save_alerts({bruteforce("10.0.0.4", t0, hour)}, t0);
  engine::decision manual;
  manual.value = "192.0.2.1";
  manual.origin = "cscli";
  manual.scenario = "manual";
  manual.duration = hour;
  manual.until = t0 + hour;
  s->add_decision(manual, t0);
  manual.value = "192.0.2.2";
  manual.until = t0 + 100 * hour;
  s->add_decision(manual, t0);

  const engine::unix_nanos now = t0 + 30 * hour;
  const retention_result r = s->apply_retention(1, 0, now);
  EXPECT_EQ(r.alerts, 3u);
  // 10.0.0.1 (expired 29 h ago, alert gone) and the manual 192.0.2.1 (29 h ago) go. 10.0.0.2
  // expired 19 h ago: within the day. 10.0.0.3 is still active. 10.0.0.4's alert is kept.
  EXPECT_EQ(r.decisions, 2u);
  std::vector<std::string> values;
  for (const auto& d : s->list_decisions({.include_expired = true})) {
    values.push_back(d.d.value);
  }
  EXPECT_EQ(values, (std::vector<std::string>{"10.0.0.2", "10.0.0.3", "10.0.0.4", "192.0.2.2"}));
  EXPECT_EQ(s->list_decisions({.now = now}).size(), 2u); // the active ones are untouched

  // A day and a bit later, 10.0.0.2 has been expired for over a day; 10.0.0.3 expired 6 h ago.
  EXPECT_EQ(s->apply_retention(1, 0, t0 + 46 * hour).decisions, 1u);
  EXPECT_EQ(s->apply_retention(1, 0, t0 + 46 * hour).decisions, 0u);
  EXPECT_EQ(s->list_decisions({.include_expired = true}).size(), 3u);
  // Without any limit on alerts, only the decisions of alerts already gone or added by hand go.
  EXPECT_EQ(s->apply_retention(0, 0, t0 + 1000 * hour).decisions, 2u); // 10.0.0.3 and 192.0.2.2
  ASSERT_EQ(s->list_decisions({.include_expired = true}).size(), 1u);
  EXPECT_EQ(s->list_decisions({.include_expired = true})[0].d.value, "10.0.0.4");
}

TEST(store, readers_see_committed_alerts_while_a_writer_writes) {
  const std::string db = fresh_db("concurrent.db");
  auto writer = open(db);
  auto reader = open(db);
  std::atomic<bool> done{false}, reading{false};
  std::size_t max_seen = 0;
  std::thread r([&] {
    while (!done) {
      max_seen = std::max(max_seen, reader->list_alerts({.limit = 1000}).size());
      reading = true;
    }
  });
  while (!reading) { // the writes start once the reader is under way, however late its thread starts
    std::this_thread::yield();
  }
  for (int i = 0; i < 200; ++i) {
    writer->save_alerts({bruteforce("192.0.2." + std::to_string(i % 250), i * sec, sec)}, i * sec);
  }
  done = true;
  r.join();
  EXPECT_EQ(reader->list_alerts({.limit = 1000}).size(), 200u);
  EXPECT_GT(max_seen, 0u);
}

// The bouncer stream while the emitter commits: every decision reaches the bouncer exactly once,
// however the pulls interleave with the writes (the cursor is saved from the answer's snapshot).
TEST(store, stream_pulls_during_writes_send_each_decision_once) {
  const std::string db = fresh_db("stream.db");
  auto writer = open(db);
  auto api = open(db);
  std::string error;
  ASSERT_TRUE(api->add_bouncer("fw", std::string(64, 'a'), 0, error)) << error;
  const engine::unix_nanos now = 1'700'000'000 * sec;
  std::atomic<bool> done{false};
  std::vector<std::int64_t> sent;
  std::thread bouncer([&] {
    bool startup = true;
    bool last = false;
    while (!last) {
      last = done.load();
      for (const auto& d : api->pull_stream("fw", startup, {}, now).added) {
        sent.push_back(d.id);
      }
      startup = false;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  const int n = 300;
  for (int i = 0; i < n; ++i) {
    writer->save_alerts({bruteforce("198.51.100." + std::to_string(i % 250), now, 3600 * sec)}, now);
  }
  done = true;
  bouncer.join();
  std::sort(sent.begin(), sent.end());
  ASSERT_EQ(sent.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(sent[static_cast<std::size_t>(i)], i + 1);
  }
}

// What the stream reports as deleted: only decisions the bouncer was sent, each once, and not
// while another decision still bans the same value (a bouncer removes by value).
TEST(store, stream_deletions_are_sent_once_and_never_lift_a_ban_still_in_force) {
  auto s = open(fresh_db("stream_deleted.db"));
  std::string error;
  ASSERT_TRUE(s->add_bouncer("fw", std::string(64, 'b'), 0, error)) << error;
  const engine::unix_nanos t0 = 1'700'000'000 * sec;
  auto ban = [&](const std::string& ip, engine::unix_nanos at, engine::unix_nanos length) {
    engine::decision d;
    d.value = ip;
    d.origin = "cscli";
    d.scenario = "manual";
    d.duration = length;
    d.until = at + length;
    return s->add_decision(d, at);
  };
  auto ids = [](const std::vector<stored_decision>& v) {
    std::vector<std::int64_t> out;
    for (const auto& d : v) {
      out.push_back(d.id);
    }
    return out;
  };
  using list = std::vector<std::int64_t>;

  const std::int64_t long_ban = ban("192.0.2.1", t0, 3600 * sec);
  const std::int64_t short_sent = ban("192.0.2.2", t0, 3 * sec);
  auto a = s->pull_stream("fw", true, {}, t0);
  EXPECT_EQ(ids(a.added), (list{long_ban, short_sent}));

  // Added and deleted between two pulls: never sent, so never reported, not even when its
  // time runs out later.
  const std::int64_t unsent = ban("192.0.2.1", t0 + sec, 2 * sec);
  EXPECT_EQ(s->delete_decisions("", unsent, t0 + sec), 1u);
  // Sent, then deleted: reported once at the deletion, not again at its expiry.
  EXPECT_EQ(s->delete_decisions("", short_sent, t0 + sec), 1u);
  a = s->pull_stream("fw", false, {}, t0 + 2 * sec);
  EXPECT_TRUE(a.added.empty());
  EXPECT_EQ(ids(a.deleted), (list{short_sent}));
  a = s->pull_stream("fw", false, {}, t0 + 10 * sec);
  EXPECT_TRUE(a.added.empty());
  EXPECT_TRUE(a.deleted.empty()) << "expired after being reported deleted, or never sent: id " << a.deleted[0].id;

  // A shorter ban over a longer one on the same address: its expiry is not a deletion of the
  // address, which the longer ban still holds.
  const std::int64_t shorter = ban("192.0.2.1", t0 + 10 * sec, 5 * sec);
  a = s->pull_stream("fw", false, {}, t0 + 11 * sec);
  EXPECT_EQ(ids(a.added), (list{shorter}));
  a = s->pull_stream("fw", false, {}, t0 + 20 * sec);
  EXPECT_TRUE(a.deleted.empty()) << "192.0.2.1 is still banned by decision " << long_ban;
  // The same when the shorter one is deleted by hand.
  const std::int64_t manual = ban("192.0.2.1", t0 + 20 * sec, 60 * sec);
  EXPECT_EQ(ids(s->pull_stream("fw", false, {}, t0 + 21 * sec).added), (list{manual}));
  EXPECT_EQ(s->delete_decisions("", manual, t0 + 22 * sec), 1u);
  EXPECT_TRUE(s->pull_stream("fw", false, {}, t0 + 23 * sec).deleted.empty());
  // The last ban on the address to end is reported.
  a = s->pull_stream("fw", false, {}, t0 + 3601 * sec);
  EXPECT_EQ(ids(a.deleted), (list{long_ban}));
}

// A failed write is all or nothing and says why: the alert is not half-saved without its decision.
// A bouncer's stream filters: scopes (default Ip only), exact origins, and scenario parts matched
// case-insensitively as CrowdSec's ContainsFold matches them.
TEST(store, stream_filters) {
  auto s = open(fresh_db("stream_filters.db"));
  std::string error;
  ASSERT_TRUE(s->add_bouncer("fw", std::string(64, 'f'), 0, error)) << error;
  const engine::unix_nanos t0 = 1'700'000'000 * sec;
  auto ban = [&](const std::string& value, const std::string& scope, const std::string& origin,
                 const std::string& scenario) {
    engine::decision d;
    d.value = value;
    d.scope = scope;
    d.origin = origin;
    d.scenario = scenario;
    d.duration = 3600 * sec;
    d.until = t0 + d.duration;
    return s->add_decision(d, t0);
  };
  const std::int64_t k8s = ban("192.0.2.1", "Ip", "crowdsec", "crowdsecurity/k8s-audit-api-server-bruteforce");
  const std::int64_t ssh = ban("192.0.2.2", "Ip", "crowdsec", "custom/SSH-bf");
  const std::int64_t manual = ban("192.0.2.3", "Ip", "cscli", "manual 'ban' from cscli");
  const std::int64_t range = ban("198.51.100.0/24", "Range", "cscli", "manual");
  auto pull = [&](stream_filter f) {
    std::vector<std::int64_t> out;
    for (const auto& d : s->pull_stream("fw", true, f, t0).added) {
      out.push_back(d.id);
    }
    return out;
  };
  using list = std::vector<std::int64_t>;
  EXPECT_EQ(pull({}), (list{k8s, ssh, manual}));
  EXPECT_EQ(pull({.scopes = {"ip", "range"}}), (list{k8s, ssh, manual, range}));
  EXPECT_EQ(pull({.scopes = {"range"}}), (list{range}));
  EXPECT_EQ(pull({.origins = {"cscli"}}), (list{manual}));
  EXPECT_EQ(pull({.scenarios_containing = {"K8S-AUDIT"}}), (list{k8s}));
  EXPECT_EQ(pull({.scenarios_containing = {"ssh", "manual"}}), (list{ssh, manual}));
  EXPECT_EQ(pull({.scenarios_not_containing = {"Ssh"}}), (list{k8s, manual}));
  EXPECT_EQ(pull({.scenarios_containing = {"crowdsecurity"}, .scenarios_not_containing = {"BRUTEFORCE"}}), list{});
}

TEST(store, a_failed_transaction_rolls_back_and_reports) {
  const std::string db = fresh_db("fail.db");
  auto s = open(db);
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "CREATE TRIGGER no_bans BEFORE INSERT ON decisions BEGIN SELECT RAISE(ABORT, 'disk says no'); END;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  EXPECT_TRUE(s->save_alerts({bruteforce("192.0.2.9", sec, sec)}, sec).empty());
  EXPECT_NE(s->last_error().find("disk says no"), std::string::npos) << s->last_error();
  EXPECT_TRUE(s->list_alerts({}).empty());
  ASSERT_EQ(sqlite3_exec(raw, "DROP TRIGGER no_bans", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  EXPECT_EQ(s->save_alerts({bruteforce("192.0.2.9", sec, sec)}, sec).size(), 1u); // the retry lands
  EXPECT_EQ(s->list_decisions({.include_expired = true}).size(), 1u);
}

// A change the store refuses (here a trigger; a lock held too long, a full disk) is reported as
// such, not as "nothing matched" or "already exists".
TEST(store, refused_changes_are_reported_as_refused) {
  const std::string db = fresh_db("refuse.db");
  auto s = open(db);
  std::string error;
  ASSERT_TRUE(s->add_bouncer("fw", std::string(64, 'c'), 0, error)) << error;
  engine::decision d;
  d.value = "192.0.2.10";
  d.duration = 3600 * sec;
  d.until = 3600 * sec;
  ASSERT_GT(s->add_decision(d, 0), 0);
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  for (const char* sql : {"CREATE TRIGGER t1 BEFORE UPDATE ON decisions BEGIN SELECT RAISE(ABORT, 'no update'); END;",
                          "CREATE TRIGGER t2 BEFORE INSERT ON bouncers BEGIN SELECT RAISE(ABORT, 'no insert'); END;",
                          "CREATE TRIGGER t3 BEFORE DELETE ON bouncers BEGIN SELECT RAISE(ABORT, 'no delete'); END;"}) {
    ASSERT_EQ(sqlite3_exec(raw, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sql;
  }
  EXPECT_EQ(s->delete_decisions("192.0.2.10", 0, sec), store::failed);
  EXPECT_NE(s->last_error().find("no update"), std::string::npos) << s->last_error();
  EXPECT_FALSE(s->add_bouncer("fw2", std::string(64, 'd'), 0, error));
  EXPECT_NE(error.find("no insert"), std::string::npos) << error;
  EXPECT_EQ(s->delete_bouncer("fw"), -1);
  EXPECT_NE(s->last_error().find("no delete"), std::string::npos) << s->last_error();
  for (const char* sql : {"DROP TRIGGER t1", "DROP TRIGGER t2", "DROP TRIGGER t3"}) {
    ASSERT_EQ(sqlite3_exec(raw, sql, nullptr, nullptr, nullptr), SQLITE_OK);
  }
  sqlite3_close(raw);
  EXPECT_FALSE(s->add_bouncer("fw", std::string(64, 'e'), 0, error));
  EXPECT_EQ(error, "bouncer 'fw' already exists");
  EXPECT_EQ(s->delete_decisions("192.0.2.10", 0, sec), 1u);
  EXPECT_EQ(s->delete_bouncer("fw"), 1);
  EXPECT_EQ(s->delete_bouncer("fw"), 0);
}

// A pull whose position cannot be saved fails whole: nothing is answered, and the next pull
// gets what this one would have (no decision lost between two pulls, none sent twice).
TEST(store, a_pull_the_store_refuses_pulls_nothing) {
  const std::string db = fresh_db("pull.db");
  auto s = open(db);
  std::string error;
  ASSERT_TRUE(s->add_bouncer("fw", std::string(64, '1'), 0, error)) << error;
  engine::decision d;
  d.value = "192.0.2.11";
  d.duration = 3600 * sec;
  d.until = 3600 * sec;
  ASSERT_GT(s->add_decision(d, 0), 0);
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "CREATE TRIGGER t BEFORE UPDATE ON bouncers BEGIN SELECT RAISE(ABORT, 'busy'); END;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  const stream_answer refused = s->pull_stream("fw", false, {}, sec);
  EXPECT_FALSE(refused.ok);
  EXPECT_NE(s->last_error().find("busy"), std::string::npos) << s->last_error();
  ASSERT_EQ(sqlite3_exec(raw, "DROP TRIGGER t", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  const stream_answer next = s->pull_stream("fw", false, {}, sec);
  EXPECT_TRUE(next.ok);
  ASSERT_EQ(next.added.size(), 1u);
  EXPECT_EQ(next.added[0].d.value, "192.0.2.11");
  EXPECT_TRUE(s->pull_stream("fw", false, {}, sec).added.empty());
}

TEST(store, unopenable_path_is_an_error) {
  std::string error;
  EXPECT_EQ(open_sqlite_store("/nonexistent-dir/x/vigil.db", error), nullptr);
  EXPECT_NE(error.find("/nonexistent-dir/x/vigil.db"), std::string::npos);
}

} // namespace
} // namespace vigil::io
