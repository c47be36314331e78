#pragma once
// Alerts: what a bucket overflow becomes. Built on the worker that owns the bucket (off the
// per-event path: once per overflow), handed to the emitter thread, printed as CrowdSec's log
// line or as one JSON object per line (`--output json`, schema in docs/alerts.md).

#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/bucket/payload.h"
#include "engine/event/timestamp.h"

namespace vigil::engine {

/// What an alert needs to know about its scenario (copied from the loaded rule).
struct alert_origin {
  std::string_view name;
  std::string_view labels_json; ///< the scenario's labels as a JSON object
  std::string_view leakspeed;   ///< Go Duration.String() ("10s", "0s")
  std::string_view scope_type;  ///< "Ip" unless the scenario says otherwise
  std::int64_t capacity = 0;
  bool remediation = false;
  bool reprocess = false;
};

/// A decision taken on an alert by a profile (a ban a bouncer enforces).
struct decision {
  std::string type = "ban";
  std::string scope = "Ip";
  std::string value;
  std::string origin = "crowdsec";
  std::string scenario;
  unix_nanos duration = 0;
  unix_nanos until = 0; ///< expiry time
};

/// `now + duration`, held at the largest time there is rather than overflowing (a profile may
/// ask for hundreds of years).
constexpr unix_nanos expiry(unix_nanos now, unix_nanos duration) noexcept {
  return duration > INT64_MAX - now ? INT64_MAX : now + duration;
}

struct alert {
  std::string scenario;
  std::string message;   ///< CrowdSec format: "Ip 1.2.3.4 performed '<scenario>' (6 events over 2.1s) at ..."
  std::string scope;     ///< "Ip"
  std::string value;     ///< the source IP when it is a valid IP, else ""
  std::string source_ip; ///< meta source_ip of the last event, as it was (may be invalid or empty)
  std::string user, namespace_, resource_name, kind, cluster;
  std::uint64_t events_count = 0;
  unix_nanos start_at = 0; ///< first event of the bucket (CrowdSec First_ts)
  unix_nanos stop_at = 0;  ///< overflow time (Ovflw_ts)
  unix_nanos last_at = 0;  ///< last event (Last_ts)
  std::int64_t capacity = 0;
  std::string leakspeed;
  bool remediation = false;
  bool reprocess = false;
  /// One more alert of an overflow with several sources (one per source): the overflow's message
  /// was logged with the first, as CrowdSec logs it once per overflow.
  bool further_source = false;
  std::string labels_json;
  std::vector<event_payload> events; ///< the bucket's queued events, oldest first
  std::vector<decision> decisions;   ///< filled by the profiles on the emitter thread
  std::vector<std::string> notifications; ///< plugins the profiles named, filled with the decisions
};

/// Fills `a` from an overflow, reusing its storage (every field is set; decisions and
/// notifications are emptied). `events` are the bucket's queued payloads (oldest first). The
/// alert's value is the last event's source_ip for scope Ip (empty if it is not an address);
/// for another scope it is `scope_value`, the scenario's scope expression evaluated by the caller
/// (for Range, empty unless it is an address range).
void make_alert(alert& a, const alert_origin& origin, std::uint64_t events_count, unix_nanos first, unix_nanos last,
                unix_nanos at, const event_payload* const* events, std::size_t n_events,
                std::string_view scope_value = {});

/// CrowdSec's message for `a` with `value` as the source ("UNKNOWN", an address, "N sources").
void write_message(alert& a, std::string_view value);

/// An Ip-scoped overflow whose events come from several addresses (a bucket grouped by user,
/// say) is, as in CrowdSec, one alert per distinct source, each saying "Ip N sources performed
/// ...". Returns how many sources `a` has (0 if not Ip-scoped or without a valid address; an
/// event without one is no source). With one, `a` is made its alert (the last event may have
/// had no address). With more: `sources` gets them, in order of first appearance, and `a` is
/// made the first one's (value, source_ip, message); the caller copies it for the others.
std::size_t split_sources(alert& a, std::vector<std::string>& sources);

/// Shares `events` (an overflow's, taken out of `first`) among the alerts split_sources made:
/// `first` gets those of sources[0] and those with no address, others[k] those of sources[k + 1].
/// Each alert holds its own source's events, not every event of the overflow.
void share_events(std::vector<event_payload>& events, alert& first, std::span<alert* const> others,
                  const std::vector<std::string>& sources);

/// Builds a new alert from an overflow (as above).
alert make_alert(const alert_origin& origin, std::uint64_t events_count, unix_nanos first, unix_nanos last,
                 unix_nanos at, const event_payload* const* events, std::size_t n_events,
                 std::string_view scope_value = {});

/// One line of JSON (no trailing newline) with the keys of design.md: scenario, message,
/// source_ip, user, namespace, resource_name, kind, cluster, events_count, start_at, stop_at,
/// remediation, labels, decisions; plus scope, value, capacity, leakspeed and events.
std::string to_json(const alert& a);

/// The same line appended to `out` (a caller that keeps `out` allocates nothing once warm).
void append_json(std::string& out, const alert& a);

/// Writes the line and a newline to `f`, built in `buffer` (kept by the caller between alerts).
void write_json_line(std::FILE* f, std::string& buffer, const alert& a);

namespace detail {
/// The most bytes the line of `a` can take (without its newline): the buffer the writers size
/// once and fill without checks. Exposed for the tests that hold the writers to it.
std::size_t json_line_bound(const alert& a);
} // namespace detail

/// True if `s` is an IPv4 or IPv6 address.
bool is_ip(std::string_view s) noexcept;

/// A CIDR range ("10.0.0.0/8", "2001:db8::/32"), as a Range decision holds it.
struct ip_prefix {
  int family = 0;               // AF_INET or AF_INET6
  unsigned char addr[16] = {};  // network byte order; 4 bytes used for IPv4
  int bits = 0;                 // 0..32 or 0..128
};

/// Parses "<address>/<bits>"; nullopt for anything else (no exception, any input).
std::optional<ip_prefix> parse_prefix(std::string_view s) noexcept;

/// An address (as a prefix of all its bits: 32 or 128) or a CIDR range; nullopt for anything else.
std::optional<ip_prefix> parse_ip_or_prefix(std::string_view s) noexcept;

/// True if every address of `inner` is in `outer` (same family only).
bool prefix_covers(const ip_prefix& outer, const ip_prefix& inner) noexcept;

/// The address of `p` as inet_ntop writes it ("1.2.3.4", "2001:db8::1"), without the bits.
std::string format_address(const ip_prefix& p);

/// Go's time.Time.String() for a UTC time: "2023-05-17 15:08:22.76396 +0000 UTC".
std::string format_go_time(unix_nanos t);

/// Appends `s` to `out` as a JSON string literal.
void append_json_string(std::string& out, std::string_view s);

/// Appends an event's meta as a JSON object ({"key":"value",...}, in the list's order).
void append_meta_json(std::string& out, const meta_list& meta);

} // namespace vigil::engine
