#pragma once
// Notification delivery: the emitter hands alerts over (a copy, never waiting on the network);
// one notifier thread groups them per plugin as CrowdSec's broker does (group_wait,
// group_threshold), renders each group with the plugin's template, and delivers it — Slack and
// HTTP through libcurl's multi interface, files by appending — with a timeout per try and
// exponential backoff with jitter (1s doubling to 30s, ±30%), giving up after max_retry + 1 tries
// (or after 5 minutes when max_retry is 0). Every failure is logged once and counted; queues are
// bounded, and what overflows them is counted and logged, never waited for.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/alert/alert.h"
#include "io/notify/notify_config.h"

namespace vigil::io {

struct delivery_result {
  std::string name;
  bool ok = false;
  unsigned attempts = 0;
  std::size_t alerts = 0;
  std::string error; ///< the last failure ("" when ok)
};

struct notifier_options {
  std::string machine_id = "vigil";
  /// Log sink: level ("info", "warning", "error", "debug") and message.
  std::function<void(const char*, const std::string&)> log;
  /// Called on the notifier thread when a group is delivered or given up on.
  std::function<void(const delivery_result&)> on_done;
  std::size_t max_pending_per_plugin = 10000; ///< alerts waiting for their group
  std::size_t max_deliveries = 1000;          ///< per plugin: groups being delivered or waiting to retry (more wait as pending)
  /// The backoff's first interval (1s as CrowdSec); tests shorten it.
  std::chrono::milliseconds first_backoff{1000};
};

class notifier {
 public:
  notifier(std::vector<notification> configs, notifier_options o);
  ~notifier();
  notifier(const notifier&) = delete;
  notifier& operator=(const notifier&) = delete;

  /// Queues a copy of `a` for each named plugin (unknown names are ignored: the daemon warned at
  /// start). `id` is its store id (0 if none). Called on the emitter thread; takes a short lock.
  void submit(const engine::alert& a, std::int64_t id, const std::vector<std::string>& names);

  /// Sends what is pending now (ignoring group_wait), waits up to `grace` for deliveries and their
  /// retries to finish, then abandons the rest (counted and logged). Idempotent.
  void stop(std::chrono::milliseconds grace);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// The request body a Slack incoming webhook receives for `text` (slack-go's WebhookMessage:
/// username, icon_emoji, icon_url, channel, text; empty fields omitted).
std::string slack_payload(const notification& n, const std::string& text);

} // namespace vigil::io
