#pragma once
// The alert and decision store. `store` is the interface callers use; `sqlite_store` is the
// embedded default (SQLite in WAL mode, ./vigil.db). A server database can be added behind the
// same interface without touching callers.
//
// Threading: a store is used from one thread at a time (the emitter's writer, or a CLI command);
// other processes may read the same SQLite file concurrently (WAL).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/alert/alert.h"

namespace vigil::io {

struct stored_decision {
  std::int64_t id = 0;
  std::int64_t alert_id = 0; ///< 0 for decisions added by hand
  engine::decision d;
  engine::unix_nanos created_at = 0;
};

struct stored_alert {
  std::int64_t id = 0;
  engine::unix_nanos created_at = 0;
  std::string scenario, message, scope, value, user, namespace_, resource_name, kind, cluster;
  std::uint64_t events_count = 0;
  engine::unix_nanos start_at = 0, stop_at = 0;
  bool remediation = false;
  std::string labels_json, events_json;
  std::size_t decisions = 0;
};

struct alert_filter {
  std::string scenario;          ///< exact name; empty: all
  engine::unix_nanos since = 0;  ///< created at or after; 0: all
  std::size_t limit = 100;
};

struct decision_filter {
  std::string value;       ///< exact IP; empty: all
  std::string scenario;    ///< empty: all
  bool include_expired = false;
  engine::unix_nanos now = 0; ///< for expiry
};

/// One bouncer (an API key) and its stream position.
struct bouncer {
  std::string name;
  engine::unix_nanos created_at = 0;
  engine::unix_nanos last_pull = 0;     ///< 0: never pulled
  std::int64_t last_decision_id = 0;    ///< newest decision id it has been sent
};

/// What a bouncer's stream call asks for (comma lists already split; empty = no filter).
struct stream_filter {
  std::vector<std::string> scopes = {"ip"}; ///< lower-case scopes; default Ip only
  std::vector<std::string> origins;
  std::vector<std::string> scenarios_containing;
  std::vector<std::string> scenarios_not_containing;
};

/// Active decisions counted by (scenario, origin, type): cs_active_decisions.
struct decision_count {
  std::string scenario, origin, type;
  std::uint64_t count = 0;
};

/// What one apply_retention() removed.
struct retention_result {
  std::size_t alerts = 0;
  std::size_t decisions = 0;
};

/// How long an expired decision is kept after its alert has been removed (24 hours).
inline constexpr engine::unix_nanos decision_grace = 24LL * 3600 * 1'000'000'000;

struct stream_answer {
  std::vector<stored_decision> added;
  std::vector<stored_decision> deleted;
  bool ok = true; ///< false: the store refused (busy, locked); nothing was pulled, `last_error()` says why
};

class store {
 public:
  virtual ~store() = default;
  /// Saves alerts (with their decisions) in one transaction; returns their ids, or nothing (and
  /// `last_error()` says why) when the transaction was rolled back.
  virtual std::vector<std::int64_t> save_alerts(const std::vector<engine::alert>& alerts, engine::unix_nanos now) = 0;
  virtual const std::string& last_error() const = 0;
  virtual std::int64_t add_decision(const engine::decision& d, engine::unix_nanos now) = 0;
  /// What delete_decisions returns when the store refused the change (`last_error()` says why).
  static constexpr std::size_t failed = static_cast<std::size_t>(-1);
  /// Deletes active decisions matching (value and/or id); returns how many, or `failed`.
  virtual std::size_t delete_decisions(const std::string& value, std::int64_t id, engine::unix_nanos now) = 0;
  virtual std::vector<stored_alert> list_alerts(const alert_filter& f) = 0;
  virtual std::vector<stored_decision> list_decisions(const decision_filter& f) = 0;
  /// Decisions ever taken on `value` (expired and deleted ones included) created at or after
  /// `since`: what CrowdSec's GetDecisionsCount counts, for escalating ban durations. As there,
  /// `value` is an address or range, and the Ip and Range decisions that contain it count.
  virtual std::int64_t count_decisions(const std::string& value, engine::unix_nanos since) = 0;
  /// Active (not expired, not deleted) decisions at `now`, grouped by scenario, origin and type.
  virtual std::vector<decision_count> count_active_decisions(engine::unix_nanos now) = 0;
  /// CrowdSec's `flush`: keep at most `max_items` alerts and none older than `max_age` (0: no limit).
  /// Decisions outlive their alert while they can matter: a decision is deleted once its alert
  /// is gone (or it was added by hand) and it expired more than `decision_grace` before `now`,
  /// so every bouncer that pulls within that time is told of its end.
  virtual retention_result apply_retention(std::size_t max_items, engine::unix_nanos max_age,
                                           engine::unix_nanos now) = 0;

  /// Bouncers: keys are stored as SHA-256 hex; a name or key can be registered once.
  virtual bool add_bouncer(const std::string& name, const std::string& key_hash, engine::unix_nanos now,
                           std::string& error) = 0;
  /// 1 deleted, 0 no such bouncer, -1 the store refused the change (`last_error()` says why).
  virtual int delete_bouncer(const std::string& name) = 0;
  virtual std::vector<bouncer> list_bouncers() = 0;
  /// The bouncer owning a key hash, if any.
  virtual std::optional<bouncer> find_bouncer(const std::string& key_hash) = 0;
  /// The decisions stream of a bouncer (per-key memory kept in the store, across restarts):
  /// on startup every active decision; otherwise what was added and what was deleted or expired
  /// since its last pull. Updates its position.
  virtual stream_answer pull_stream(const std::string& bouncer_name, bool startup, const stream_filter& f,
                                    engine::unix_nanos now) = 0;
};

/// Opens (creating if needed) a SQLite store. On failure returns null and sets `error`.
/// `busy_ms`: how long a statement waits for another connection's lock before it fails.
std::unique_ptr<store> open_sqlite_store(const std::string& path, std::string& error, int busy_ms = 5000);

} // namespace vigil::io
