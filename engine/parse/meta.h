#pragma once
// The parser stage: vigil's built-in equivalent of the CrowdSec hub parsers
// `crowdsecurity/non-syslog` (s00), `crowdsecurity/k8s-audit` (s01) and `dateparse-enrich` (s02).
// It turns a decoded audit event into the `evt.Meta` map that scenarios filter and group on:
//
//   user            user.username
//   source_ip       sourceIPs[0]
//   namespace       objectRef.namespace
//   resource_name   objectRef.name
//   kind            requestObject.kind
//   log_type        "k8s-audit"
//   datasource_type "k8s-audit" for webhook events, "file" for files
//   datasource_path the file as named in the configuration, or the webhook client's address
//   timestamp       requestReceivedTimestamp, as Go's RFC3339Nano prints it
//   cluster         the source's cluster name (vigil's own; absent when none is configured, so
//                   single-cluster alerts list exactly CrowdSec's meta)
//
// As in CrowdSec, a key whose source value is absent (no sourceIPs, no objectRef, no requestObject
// kind) is absent from the map, and reads as "" through evt.Meta. Views point into the event and
// the source description: valid as long as both are.

#include <array>
#include <cstdint>
#include <string_view>

#include "engine/event/event.h"

namespace vigil::engine {

/// Meta keys, in the sorted order CrowdSec lists an alert's event meta.
enum class meta_key : std::uint8_t {
  cluster,
  datasource_path,
  datasource_type,
  kind,
  log_type,
  namespace_,
  resource_name,
  source_ip,
  timestamp,
  user,
};
inline constexpr std::size_t meta_key_count = 10;

/// The key's name as scenarios write it (`evt.Meta.<name>`).
std::string_view meta_key_name(meta_key k) noexcept;

/// Looks a key up by name; false if it is not one the parser produces.
bool meta_key_from_name(std::string_view name, meta_key& out) noexcept;

/// Where events come from, as far as the parser needs to know.
struct source_info {
  std::string_view datasource_type; ///< "file" or "k8s-audit"
  std::string_view datasource_path; ///< file name, or the webhook client address
  std::string_view cluster;         ///< configured cluster name, may be empty
};

/// The meta map of one event. Fixed size, no heap.
struct event_meta {
  std::array<std::string_view, meta_key_count> values{};
  std::uint32_t present = 0; ///< bit (1 << key) set when the key exists
  /// The `timestamp` value is formatted on first read: most events never need it.
  unix_nanos timestamp_nanos = 0;
  mutable bool timestamp_ready = false;
  mutable char timestamp_buf[40]{};

  [[nodiscard]] bool has(meta_key k) const noexcept { return (present >> static_cast<unsigned>(k)) & 1u; }
  /// "" when absent, as evt.Meta.<k> reads in CrowdSec.
  [[nodiscard]] std::string_view get(meta_key k) const noexcept {
    if (k == meta_key::timestamp && !timestamp_ready && has(k)) {
      const std::size_t n = format_rfc3339_nano(timestamp_nanos, timestamp_buf);
      const_cast<event_meta*>(this)->values[static_cast<std::size_t>(k)] = std::string_view(timestamp_buf, n);
      timestamp_ready = true;
    }
    return values[static_cast<std::size_t>(k)];
  }
  void set(meta_key k, std::string_view v) noexcept {
    values[static_cast<std::size_t>(k)] = v;
    present |= 1u << static_cast<unsigned>(k);
  }
};

/// Fills `out` from `event` and `source`. Hot path: no allocation, no exception.
void build_meta(const audit_event& event, const source_info& source, event_meta& out) noexcept;

/// The event's time for buckets: requestReceivedTimestamp, else stageTimestamp, else the legacy
/// `timestamp` of old captures, else `fallback` (the time the event was received by vigil).
unix_nanos event_time(const audit_event& event, unix_nanos fallback) noexcept;

} // namespace vigil::engine
