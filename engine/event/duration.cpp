#include "engine/event/duration.h"

#include <limits>

namespace vigil::engine {

std::optional<unix_nanos> parse_go_duration(std::string_view s) noexcept {
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") {
    return 0;
  }
  if (s.empty()) {
    return std::nullopt;
  }
  // Go accumulates in uint64 nanoseconds and rejects overflow.
  constexpr std::uint64_t max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  std::uint64_t total = 0;
  while (!s.empty()) {
    std::uint64_t whole = 0;
    std::size_t digits = 0;
    while (!s.empty() && s[0] >= '0' && s[0] <= '9') {
      if (whole > (max - 9) / 10) {
        return std::nullopt;
      }
      whole = whole * 10 + static_cast<std::uint64_t>(s[0] - '0');
      s.remove_prefix(1);
      ++digits;
    }
    std::uint64_t frac = 0, scale = 1;
    bool had_frac_digits = false;
    if (!s.empty() && s[0] == '.') {
      s.remove_prefix(1);
      while (!s.empty() && s[0] >= '0' && s[0] <= '9') {
        if (scale < 1'000'000'000'000'000ULL) {
          frac = frac * 10 + static_cast<std::uint64_t>(s[0] - '0');
          scale *= 10;
        }
        s.remove_prefix(1);
        had_frac_digits = true;
      }
    }
    if (digits == 0 && !had_frac_digits) {
      return std::nullopt;
    }
    std::size_t unit_len = 0;
    while (unit_len < s.size() && s[unit_len] != '.' && (s[unit_len] < '0' || s[unit_len] > '9')) {
      ++unit_len;
    }
    const std::string_view unit = s.substr(0, unit_len);
    s.remove_prefix(unit_len);
    std::uint64_t mult;
    if (unit == "ns") {
      mult = 1;
    } else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") {
      mult = 1'000;
    } else if (unit == "ms") {
      mult = 1'000'000;
    } else if (unit == "s") {
      mult = 1'000'000'000;
    } else if (unit == "m") {
      mult = 60'000'000'000ULL;
    } else if (unit == "h") {
      mult = 3'600'000'000'000ULL;
    } else {
      return std::nullopt; // missing or unknown unit
    }
    if (whole > max / mult) {
      return std::nullopt;
    }
    std::uint64_t v = whole * mult;
    if (frac > 0) {
      v += static_cast<std::uint64_t>(static_cast<long double>(frac) * (static_cast<long double>(mult) / scale));
    }
    if (v > max - total) {
      return std::nullopt;
    }
    total += v;
  }
  const auto t = static_cast<unix_nanos>(total);
  return negative ? -t : t;
}

namespace {

// Appends v / 10^prec with trailing zeros of the fraction removed (Go's fmtFrac + fmtInt).
void put_fraction(std::string& out, std::uint64_t v, int prec) {
  std::string frac;
  bool print = false;
  for (int i = 0; i < prec; ++i) {
    const auto digit = static_cast<char>('0' + v % 10);
    print = print || digit != '0';
    if (print) {
      frac.insert(frac.begin(), digit);
    }
    v /= 10;
  }
  out += std::to_string(v);
  if (print) {
    out += '.';
    out += frac;
  }
}

} // namespace

std::string format_go_duration(unix_nanos d) {
  if (d == 0) {
    return "0s";
  }
  std::string out;
  std::uint64_t u = d < 0 ? static_cast<std::uint64_t>(-(d + 1)) + 1 : static_cast<std::uint64_t>(d);
  if (d < 0) {
    out += '-';
  }
  if (u < 1'000'000'000ULL) {
    if (u < 1'000) {
      return out + std::to_string(u) + "ns";
    }
    if (u < 1'000'000) {
      put_fraction(out, u, 3);
      return out + "\xC2\xB5s";
    }
    put_fraction(out, u, 6);
    return out + "ms";
  }
  std::string secs;
  put_fraction(secs, u % 60'000'000'000ULL, 9);
  u /= 60'000'000'000ULL;
  if (u == 0) {
    return out + secs + "s";
  }
  const std::uint64_t minutes = u % 60;
  const std::uint64_t hours = u / 60;
  if (hours > 0) {
    out += std::to_string(hours) + "h";
  }
  return out + std::to_string(minutes) + "m" + secs + "s";
}

} // namespace vigil::engine
