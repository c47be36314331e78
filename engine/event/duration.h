#pragma once
// Go time.Duration text, as CrowdSec scenario files write it ("10s", "1m", "1h30m", "500ms") and
// as CrowdSec prints it in alerts ("0s", "6.2s", "1m0s", "30.18165ms").

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine/event/timestamp.h"

namespace vigil::engine {

/// Parses like Go's time.ParseDuration: a sequence of decimal numbers with optional fraction and
/// a unit (ns, us, µs, ms, s, m, h), optionally signed; "0" alone is allowed.
std::optional<unix_nanos> parse_go_duration(std::string_view text) noexcept;

/// Formats like Go's Duration.String().
std::string format_go_duration(unix_nanos d);

} // namespace vigil::engine
