#include <algorithm>
#include <cctype>
#include <cstring>
#include <string_view>

#include <sqlite3.h>

#include "io/store/store.h"

namespace vigil::io {

namespace {

// Prepared statement with RAII and small helpers; errors are reported as text.
class statement {
 public:
  statement(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &st_, nullptr); }
  ~statement() { sqlite3_finalize(st_); }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;
  bool ok() const { return st_ != nullptr; }
  statement& text(int i, const std::string& v) {
    sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  /// Binds without a copy: `v` must stay valid until the statement is reset.
  statement& text_ref(int i, std::string_view v) {
    sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  statement& integer(int i, std::int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  int step() { return sqlite3_step(st_); }
  void reset() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }
  std::int64_t col_int(int i) { return sqlite3_column_int64(st_, i); }
  std::string col_text(int i) {
    const auto* p = sqlite3_column_text(st_, i);
    return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p));
  }

 private:
  sqlite3_stmt* st_ = nullptr;
};

// A decisions row selected as: id, alert_id, type, scope, value, origin, scenario, duration,
// created_at, until.
stored_decision decision_row(statement& q) {
  stored_decision d;
  d.id = q.col_int(0);
  d.alert_id = q.col_int(1);
  d.d.type = q.col_text(2);
  d.d.scope = q.col_text(3);
  d.d.value = q.col_text(4);
  d.d.origin = q.col_text(5);
  d.d.scenario = q.col_text(6);
  d.d.duration = q.col_int(7);
  d.created_at = q.col_int(8);
  d.d.until = q.col_int(9);
  return d;
}

// page_size applies to a new database only (an existing one keeps its own): 16 KiB pages
// write a group of alerts in a third of the WAL frames, and the emitter's CPU for the store
// drops by about a fifth (bench/RESULTS.md, session 5).
const char* schema_sql = R"(
PRAGMA page_size=16384;
PRAGMA journal_mode=WAL;
PRAGMA synchronous=NORMAL;
PRAGMA cache_size=-32768;
CREATE TABLE IF NOT EXISTS alerts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at INTEGER NOT NULL,
  scenario TEXT NOT NULL, message TEXT NOT NULL, scope TEXT NOT NULL, value TEXT NOT NULL,
  user TEXT, namespace TEXT, resource_name TEXT, kind TEXT, cluster TEXT,
  events_count INTEGER NOT NULL, start_at INTEGER NOT NULL, stop_at INTEGER NOT NULL,
  remediation INTEGER NOT NULL, labels TEXT NOT NULL, events TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS alerts_created ON alerts(created_at);
CREATE INDEX IF NOT EXISTS alerts_scenario ON alerts(scenario);
CREATE TABLE IF NOT EXISTS decisions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  alert_id INTEGER NOT NULL DEFAULT 0,
  type TEXT NOT NULL, scope TEXT NOT NULL, value TEXT NOT NULL, origin TEXT NOT NULL, scenario TEXT NOT NULL,
  duration INTEGER NOT NULL, created_at INTEGER NOT NULL, until INTEGER NOT NULL, deleted_at INTEGER);
CREATE INDEX IF NOT EXISTS decisions_value ON decisions(value);
CREATE INDEX IF NOT EXISTS decisions_until ON decisions(until);
CREATE INDEX IF NOT EXISTS decisions_scope ON decisions(scope COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS bouncers (
  name TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL,
  last_pull INTEGER NOT NULL DEFAULT 0, last_decision_id INTEGER NOT NULL DEFAULT 0);
)";

std::string lower(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

bool keep(const stored_decision& d, const stream_filter& f) {
  auto in = [](const std::vector<std::string>& list, const std::string& v) {
    return list.empty() || std::find(list.begin(), list.end(), v) != list.end();
  };
  if (!in(f.scopes, lower(d.d.scope)) || !in(f.origins, d.d.origin)) {
    return false;
  }
  // CrowdSec matches the scenario parts case-insensitively (ent's ContainsFold).
  const std::string scenario = lower(d.d.scenario);
  if (!f.scenarios_containing.empty()) {
    bool any = false;
    for (const auto& part : f.scenarios_containing) {
      any = any || scenario.find(lower(part)) != std::string::npos;
    }
    if (!any) {
      return false;
    }
  }
  for (const auto& part : f.scenarios_not_containing) {
    if (scenario.find(lower(part)) != std::string::npos) {
      return false;
    }
  }
  return true;
}

// The events column of an alert, into `out` (reused from alert to alert).
void events_json(const engine::alert& a, std::string& out) {
  out.clear();
  out.push_back('[');
  for (std::size_t i = 0; i < a.events.size(); ++i) {
    out += i > 0 ? ",{\"timestamp\":" : "{\"timestamp\":";
    engine::append_json_string(out, engine::format_rfc3339_nano(a.events[i].time));
    out += ",\"meta\":";
    engine::append_meta_json(out, a.events[i].meta);
    out += '}';
  }
  out += ']';
}

// Closes the connection once the statements declared after it are finalized.
struct connection {
  sqlite3* db;
  explicit connection(sqlite3* d) : db(d) {}
  ~connection() { sqlite3_close(db); }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
};

// Resets a statement kept across calls, whatever way its use ends: a statement left stepped
// would hold its read transaction open.
class resetting {
 public:
  explicit resetting(statement& s) : s_(s) {}
  ~resetting() { s_.reset(); }
  resetting(const resetting&) = delete;
  resetting& operator=(const resetting&) = delete;
  statement* operator->() { return &s_; }

 private:
  statement& s_;
};

class sqlite_store final : public store {
 public:
  // The emitter's inserts are prepared once: preparing them for every alert took about a tenth
  // of the emitter's time (bench/RESULTS.md, session 9).
  explicit sqlite_store(sqlite3* db)
      : conn_(db), db_(db),
        insert_alert_(db, "INSERT INTO alerts (created_at, scenario, message, scope, value, user, namespace, "
                          "resource_name, kind, cluster, events_count, start_at, stop_at, remediation, labels, "
                          "events) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)"),
        insert_decision_(db, "INSERT INTO decisions (alert_id, type, scope, value, origin, scenario, duration, "
                             "created_at, until) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)") {}

  std::vector<std::int64_t> save_alerts(const std::vector<engine::alert>& alerts, engine::unix_nanos now) override {
    std::vector<std::int64_t> ids;
    if (!exec("BEGIN IMMEDIATE")) {
      return {};
    }
    bool ok = true;
    std::string events;
    for (const engine::alert& a : alerts) {
      events_json(a, events);
      {
        resetting ins(insert_alert_);
        ins->integer(1, now).text_ref(2, a.scenario).text_ref(3, a.message).text_ref(4, a.scope);
        ins->text_ref(5, a.value).text_ref(6, a.user).text_ref(7, a.namespace_).text_ref(8, a.resource_name);
        ins->text_ref(9, a.kind).text_ref(10, a.cluster).integer(11, static_cast<std::int64_t>(a.events_count));
        ins->integer(12, a.start_at).integer(13, a.stop_at).integer(14, a.remediation ? 1 : 0);
        ins->text_ref(15, a.labels_json.empty() ? std::string_view("{}") : std::string_view(a.labels_json));
        ins->text_ref(16, events);
        ok = ins->step() == SQLITE_DONE;
      }
      if (!ok) {
        break;
      }
      const std::int64_t id = sqlite3_last_insert_rowid(db_);
      ids.push_back(id);
      for (const engine::decision& d : a.decisions) {
        ok = ok && insert_decision(d, id, now);
      }
      if (!ok) {
        break;
      }
    }
    if (!ok) {
      error_ = sqlite3_errmsg(db_);
      exec("ROLLBACK");
      return {};
    }
    if (!exec("COMMIT")) {
      exec("ROLLBACK");
      return {};
    }
    return ids;
  }

  const std::string& last_error() const override { return error_; }

  std::int64_t add_decision(const engine::decision& d, engine::unix_nanos now) override {
    if (!insert_decision(d, 0, now)) {
      error_ = sqlite3_errmsg(db_);
      return 0;
    }
    return sqlite3_last_insert_rowid(db_);
  }

  std::size_t delete_decisions(const std::string& value, std::int64_t id, engine::unix_nanos now) override {
    statement del(db_, "UPDATE decisions SET deleted_at = ?1 WHERE deleted_at IS NULL AND until > ?1 "
                       "AND (?2 = '' OR value = ?2) AND (?3 = 0 OR id = ?3)");
    del.integer(1, now).text(2, value).integer(3, id);
    if (del.step() != SQLITE_DONE) {
      error_ = sqlite3_errmsg(db_);
      return failed;
    }
    return static_cast<std::size_t>(sqlite3_changes(db_));
  }

  std::vector<stored_alert> list_alerts(const alert_filter& f) override {
    statement q(db_, "SELECT a.id, a.created_at, a.scenario, a.message, a.scope, a.value, a.user, a.namespace, "
                     "a.resource_name, a.kind, a.cluster, a.events_count, a.start_at, a.stop_at, a.remediation, "
                     "a.labels, a.events, (SELECT COUNT(*) FROM decisions d WHERE d.alert_id = a.id) "
                     "FROM alerts a WHERE (?1 = '' OR a.scenario = ?1) AND a.created_at >= ?2 "
                     "ORDER BY a.id DESC LIMIT ?3");
    q.text(1, f.scenario).integer(2, f.since).integer(3, static_cast<std::int64_t>(f.limit));
    std::vector<stored_alert> out;
    while (q.step() == SQLITE_ROW) {
      stored_alert a;
      a.id = q.col_int(0);
      a.created_at = q.col_int(1);
      a.scenario = q.col_text(2);
      a.message = q.col_text(3);
      a.scope = q.col_text(4);
      a.value = q.col_text(5);
      a.user = q.col_text(6);
      a.namespace_ = q.col_text(7);
      a.resource_name = q.col_text(8);
      a.kind = q.col_text(9);
      a.cluster = q.col_text(10);
      a.events_count = static_cast<std::uint64_t>(q.col_int(11));
      a.start_at = q.col_int(12);
      a.stop_at = q.col_int(13);
      a.remediation = q.col_int(14) != 0;
      a.labels_json = q.col_text(15);
      a.events_json = q.col_text(16);
      a.decisions = static_cast<std::size_t>(q.col_int(17));
      out.push_back(std::move(a));
    }
    return out;
  }

  std::vector<stored_decision> list_decisions(const decision_filter& f) override {
    statement q(db_, "SELECT id, alert_id, type, scope, value, origin, scenario, duration, created_at, until "
                     "FROM decisions WHERE (?1 = '' OR value = ?1) AND (?2 = '' OR scenario = ?2) "
                     "AND (?3 = 1 OR (deleted_at IS NULL AND until > ?4)) ORDER BY id");
    q.text(1, f.value).text(2, f.scenario).integer(3, f.include_expired ? 1 : 0).integer(4, f.now);
    std::vector<stored_decision> out;
    while (q.step() == SQLITE_ROW) {
      out.push_back(decision_row(q));
    }
    return out;
  }

  std::int64_t count_decisions(const std::string& value, engine::unix_nanos since) override {
    // CrowdSec counts the Ip and Range decisions that contain the address (or whole range);
    // a value that is neither counts nothing.
    const auto where = engine::parse_ip_or_prefix(value);
    if (!where) {
      return 0;
    }
    // Ip decisions by value (the query as written, and its canonical form: ::ffff:1.2.3.4 is
    // 1.2.3.4), Range decisions by scope; each half on its own index.
    statement q(db_, "SELECT value FROM decisions INDEXED BY decisions_value WHERE value IN (?1, ?3) AND scope = 'Ip' COLLATE NOCASE "
                     "AND created_at >= ?2 UNION ALL "
                     "SELECT value FROM decisions WHERE scope = 'Range' COLLATE NOCASE AND created_at >= ?2");
    q.text(1, value).integer(2, since).text(3, engine::format_address(*where));
    std::int64_t n = 0;
    while (q.step() == SQLITE_ROW) {
      const auto held = engine::parse_ip_or_prefix(q.col_text(0));
      n += held && engine::prefix_covers(*held, *where) ? 1 : 0;
    }
    return n;
  }

  std::vector<decision_count> count_active_decisions(engine::unix_nanos now) override {
    statement q(db_, "SELECT scenario, origin, type, COUNT(*) FROM decisions WHERE deleted_at IS NULL AND until > ?1 "
                     "GROUP BY scenario, origin, type");
    q.integer(1, now);
    std::vector<decision_count> out;
    while (q.step() == SQLITE_ROW) {
      out.push_back(decision_count{q.col_text(0), q.col_text(1), q.col_text(2), static_cast<std::uint64_t>(q.col_int(3))});
    }
    return out;
  }

  retention_result apply_retention(std::size_t max_items, engine::unix_nanos max_age, engine::unix_nanos now) override {
    retention_result removed;
    exec("BEGIN IMMEDIATE");
    if (max_age > 0) {
      statement del(db_, "DELETE FROM alerts WHERE created_at < ?1");
      del.integer(1, now - max_age);
      del.step();
      removed.alerts += static_cast<std::size_t>(sqlite3_changes(db_));
    }
    if (max_items > 0) {
      // Ids only grow, so the newest max_items are those above the (max_items+1)-th newest id: a
      // walk of max_items rowids and a range delete, instead of a scan of the whole table.
      statement del(db_, "DELETE FROM alerts WHERE id <= (SELECT id FROM alerts ORDER BY id DESC LIMIT 1 OFFSET ?1)");
      del.integer(1, static_cast<std::int64_t>(max_items));
      del.step();
      removed.alerts += static_cast<std::size_t>(sqlite3_changes(db_));
    }
    {
      // What CrowdSec's flush does with a flushed alert's decisions and with orphans, a day
      // later: a walk of the expired ones (decisions_until), each looked up by its alert id.
      statement del(db_, "DELETE FROM decisions WHERE until < ?1 AND NOT EXISTS "
                         "(SELECT 1 FROM alerts WHERE alerts.id = decisions.alert_id)");
      del.integer(1, now - decision_grace);
      del.step();
      removed.decisions = static_cast<std::size_t>(sqlite3_changes(db_));
    }
    exec("COMMIT");
    return removed;
  }

  bool add_bouncer(const std::string& name, const std::string& key_hash, engine::unix_nanos now,
                   std::string& error) override {
    statement ins(db_, "INSERT INTO bouncers (name, key_hash, created_at) VALUES (?1, ?2, ?3)");
    ins.text(1, name).text(2, key_hash).integer(3, now);
    if (ins.step() != SQLITE_DONE) {
      // A name or key already registered breaks the table's uniqueness; anything else (a
      // locked or read-only database) is the store's own error.
      const int rc = sqlite3_extended_errcode(db_);
      error = rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY
                  ? "bouncer '" + name + "' already exists"
                  : std::string("store: ") + sqlite3_errmsg(db_);
      return false;
    }
    return true;
  }

  int delete_bouncer(const std::string& name) override {
    statement del(db_, "DELETE FROM bouncers WHERE name = ?1");
    del.text(1, name);
    if (del.step() != SQLITE_DONE) {
      error_ = sqlite3_errmsg(db_);
      return -1;
    }
    return sqlite3_changes(db_) > 0 ? 1 : 0;
  }

  std::vector<bouncer> list_bouncers() override {
    statement q(db_, "SELECT name, created_at, last_pull, last_decision_id FROM bouncers ORDER BY name");
    std::vector<bouncer> out;
    while (q.step() == SQLITE_ROW) {
      out.push_back(bouncer{q.col_text(0), q.col_int(1), q.col_int(2), q.col_int(3)});
    }
    return out;
  }

  std::optional<bouncer> find_bouncer(const std::string& key_hash) override {
    statement q(db_, "SELECT name, created_at, last_pull, last_decision_id FROM bouncers WHERE key_hash = ?1");
    q.text(1, key_hash);
    if (q.step() != SQLITE_ROW) {
      return std::nullopt;
    }
    return bouncer{q.col_text(0), q.col_int(1), q.col_int(2), q.col_int(3)};
  }

  // True if a decision other than `gone` on its scope and value is active and passes the filter.
  bool still_enforced(const stored_decision& gone, const stream_filter& f, engine::unix_nanos now) {
    statement q(db_, "SELECT id, alert_id, type, scope, value, origin, scenario, duration, created_at, until, "
                     "deleted_at FROM decisions WHERE value = ?1 AND scope = ?2 AND id != ?3 AND "
                     "deleted_at IS NULL AND until > ?4");
    q.text(1, gone.d.value).text(2, gone.d.scope).integer(3, gone.id).integer(4, now);
    while (q.step() == SQLITE_ROW) {
      if (keep(decision_row(q), f)) {
        return true;
      }
    }
    return false;
  }

  stream_answer pull_stream(const std::string& name, bool startup, const stream_filter& f,
                            engine::unix_nanos now) override {
    stream_answer out;
    std::int64_t last_id = 0;
    engine::unix_nanos last_pull = 0;
    // One write transaction: the cursor saved below must be the snapshot the answer was read
    // from, or a decision the emitter commits in between is sent twice (or never). A store that
    // stays locked makes the pull fail whole (the bouncer asks again), never half done.
    if (!exec("BEGIN IMMEDIATE")) {
      out.ok = false;
      return out;
    }
    {
      statement q(db_, "SELECT last_pull, last_decision_id FROM bouncers WHERE name = ?1");
      q.text(1, name);
      if (q.step() == SQLITE_ROW) {
        last_pull = q.col_int(0);
        last_id = q.col_int(1);
      }
    }
    std::int64_t max_id = last_id;
    {
      statement q(db_, "SELECT MAX(id) FROM decisions");
      if (q.step() == SQLITE_ROW) {
        max_id = q.col_int(0);
      }
    }
    if (startup) {
      for (auto& d : list_decisions(decision_filter{.now = now})) {
        if (keep(d, f)) {
          out.added.push_back(std::move(d));
        }
      }
    } else {
      // New: active decisions it has not been sent. Deleted: decisions it was sent -- they
      // existed at its last pull (id <= last) and were active then -- that were deleted or
      // expired since. A decision added and deleted between two pulls was never sent, and one
      // already reported deleted is not reported again when its time runs out.
      statement q(db_, "SELECT id, alert_id, type, scope, value, origin, scenario, duration, created_at, until, "
                       "deleted_at FROM decisions WHERE (id > ?1 AND deleted_at IS NULL AND until > ?3) OR "
                       "(id <= ?1 AND until > ?2 AND (deleted_at IS NULL OR deleted_at > ?2) AND "
                       "(deleted_at IS NOT NULL OR until <= ?3)) ORDER BY id");
      q.integer(1, last_id).integer(2, last_pull).integer(3, now);
      while (q.step() == SQLITE_ROW) {
        stored_decision d = decision_row(q);
        if (!keep(d, f)) {
          continue;
        }
        (d.id > last_id ? out.added : out.deleted).push_back(std::move(d));
      }
      // A bouncer removes by value: a deletion while another decision on the same value is
      // still active (a longer ban over a shorter one) would lift that ban early. Such a
      // deletion is not sent; the value's last decision to end is.
      std::erase_if(out.deleted, [&](const stored_decision& gone) { return still_enforced(gone, f, now); });
    }
    statement up(db_, "UPDATE bouncers SET last_pull = ?1, last_decision_id = ?2 WHERE name = ?3");
    up.integer(1, now).integer(2, max_id).text(3, name);
    const bool updated = up.step() == SQLITE_DONE;
    if (!updated) {
      error_ = std::string("saving the bouncer's position: ") + sqlite3_errmsg(db_);
    }
    if (!updated || !exec("COMMIT")) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return stream_answer{{}, {}, false};
    }
    return out;
  }

  bool exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) == SQLITE_OK) {
      return true;
    }
    error_ = std::string(sql) + ": " + sqlite3_errmsg(db_);
    return false;
  }

 private:
  bool insert_decision(const engine::decision& d, std::int64_t alert_id, engine::unix_nanos now) {
    resetting ins(insert_decision_);
    ins->integer(1, alert_id).text_ref(2, d.type).text_ref(3, d.scope).text_ref(4, d.value);
    ins->text_ref(5, d.origin).text_ref(6, d.scenario).integer(7, d.duration).integer(8, now).integer(9, d.until);
    return ins->step() == SQLITE_DONE;
  }

  connection conn_; // first: closed after the statements below are finalized
  sqlite3* db_;
  std::string error_;
  statement insert_alert_;
  statement insert_decision_;
};

} // namespace

std::unique_ptr<store> open_sqlite_store(const std::string& path, std::string& error, int busy_ms) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    error = path + ": " + (db != nullptr ? sqlite3_errmsg(db) : "cannot open");
    sqlite3_close(db);
    return nullptr;
  }
  sqlite3_busy_timeout(db, busy_ms);
  char* msg = nullptr;
  if (sqlite3_exec(db, schema_sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    error = path + ": " + (msg != nullptr ? msg : "cannot create the schema");
    sqlite3_free(msg);
    sqlite3_close(db);
    return nullptr;
  }
  return std::make_unique<sqlite_store>(db);
}

} // namespace vigil::io
