#pragma once
// RFC 3339 timestamps as Kubernetes writes them (metav1.Time / metav1.MicroTime):
// "2023-05-17T15:08:22.763960Z", "2017-09-11T19:55:05Z", "2019-01-01T10:00:00.5+02:00".

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vigil::engine {

/// Nanoseconds since the Unix epoch, UTC.
using unix_nanos = std::int64_t;

/// Parses an RFC 3339 date-time (`T` or `t` or space separator, optional fraction, `Z`/`z` or a
/// ±HH:MM offset). Leniency: a missing zone means UTC ("2022-12-09 21:06:52.94", as Panther's
/// normalised logs write it); digits past the 9th of the fraction are ignored.
/// Returns nullopt on any syntax or range error.
/// Hot path: no allocation, no exception.
std::optional<unix_nanos> parse_rfc3339(std::string_view text) noexcept;

/// Formats like Go's time.RFC3339Nano in UTC: trailing zeros of the fraction are dropped and the
/// fraction disappears when it is zero ("2023-05-17T15:08:22.76396Z", "2017-09-11T19:55:05Z").
/// This is how CrowdSec's `timestamp` meta prints. Not for the hot path.
std::string format_rfc3339_nano(unix_nanos t);

/// The same into `out`, which must hold 40 bytes; returns the length. No allocation.
std::size_t format_rfc3339_nano(unix_nanos t, char* out) noexcept;

} // namespace vigil::engine
