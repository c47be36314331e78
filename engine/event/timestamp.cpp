#include "engine/event/timestamp.h"

#include <cstring>

namespace vigil::engine {

namespace {

constexpr std::int64_t nanos_per_second = 1'000'000'000;

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) noexcept {
  if (pos + n > s.size()) {
    return false;
  }
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    const unsigned d = static_cast<unsigned char>(s[i]) - '0';
    if (d > 9) {
      return false;
    }
    v = v * 10 + static_cast<int>(d);
  }
  out = v;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's civil algorithm).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, int& y, unsigned& m, unsigned& d) noexcept {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<int>(static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0));
}

bool leap(int y) noexcept {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

} // namespace

std::optional<unix_nanos> parse_rfc3339(std::string_view s) noexcept {
  if (s.size() < 20) {
    return std::nullopt;
  }
  // The events of a stream share their minute, and every event carries two or three timestamps:
  // each thread keeps the last valid "YYYY-MM-DDTHH:MM" it read with its value, and a timestamp
  // that starts with the same 16 bytes takes the value instead of validating and converting the
  // date again.
  struct minute_memo {
    char prefix[16];
    std::int64_t seconds = 0;
    bool valid = false;
  };
  thread_local minute_memo memo;
  std::int64_t minute_seconds;
  if (memo.valid && std::memcmp(s.data(), memo.prefix, sizeof memo.prefix) == 0) {
    minute_seconds = memo.seconds;
  } else {
    int year, month, day, hour, minute;
    if (!digits(s, 0, 4, year) || s[4] != '-' || !digits(s, 5, 2, month) || s[7] != '-' || !digits(s, 8, 2, day) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s, 11, 2, hour) || s[13] != ':' ||
        !digits(s, 14, 2, minute)) {
      return std::nullopt;
    }
    static constexpr int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month < 1 || month > 12 || day < 1 || day > month_days[month - 1] + static_cast<int>(month == 2 && leap(year)) ||
        hour > 23 || minute > 59) {
      return std::nullopt;
    }
    minute_seconds = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
                     hour * 3600 + minute * 60;
    std::memcpy(memo.prefix, s.data(), sizeof memo.prefix);
    memo.seconds = minute_seconds;
    memo.valid = true;
  }
  int second;
  if (s[16] != ':' || !digits(s, 17, 2, second) || second > 60) {
    return std::nullopt;
  }
  std::size_t pos = 19;
  std::int64_t frac = 0;
  if (s.size() == 27 && s[19] == '.' && (s[26] == 'Z' || s[26] == 'z')) {
    // metav1.MicroTime, as every apiserver writes it: ".ffffffZ" read as one word.
    std::uint64_t w;
    std::memcpy(&w, s.data() + 19, 8);
    const std::uint64_t digits6 = (w >> 8) & 0x0000ffffffffffffull;
    // Each byte is a digit iff its high nibble is 3 and adding 6 keeps it there.
    constexpr std::uint64_t high = 0x0000f0f0f0f0f0f0ull;
    if ((digits6 & high) == 0x0000303030303030ull && ((digits6 + 0x0000060606060606ull) & high) == 0x0000303030303030ull) {
      // Two leading zero digits make eight; then pairs, quads, the whole (the first digit is
      // the lowest byte).
      std::uint64_t v = (digits6 - 0x0000303030303030ull) << 16;
      v = v * 10 + (v >> 8);
      v = (((v & 0x000000ff000000ffull) * (100 + (1000000ull << 32))) +
           (((v >> 16) & 0x000000ff000000ffull) * (1 + (10000ull << 32)))) >>
          32;
      frac = static_cast<std::int64_t>(v) * 1000;
      pos = 26; // the zone, read below
    }
  }
  if (s[pos] == '.' || s[pos] == ',') {
    ++pos;
    std::size_t n = 0;
    while (pos < s.size() && static_cast<unsigned>(static_cast<unsigned char>(s[pos]) - '0') <= 9u) {
      if (n < 9) {
        frac = frac * 10 + (s[pos] - '0');
      }
      ++n;
      ++pos;
    }
    if (n == 0) {
      return std::nullopt;
    }
    for (std::size_t i = n; i < 9; ++i) {
      frac *= 10;
    }
  }
  std::int64_t offset_seconds = 0;
  if (pos == s.size()) {
    // No zone: UTC, as log pipelines that normalise timestamps (Panther) write them.
  } else if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    int oh, om;
    if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' || !digits(s, pos + 4, 2, om) ||
        oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_seconds = (oh * 3600 + om * 60) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) {
    return std::nullopt;
  }
  const std::int64_t secs = minute_seconds + second - offset_seconds;
  return secs * nanos_per_second + frac;
}

std::size_t format_rfc3339_nano(unix_nanos t, char* out) noexcept {
  std::int64_t secs = t / nanos_per_second;
  std::int64_t frac = t % nanos_per_second;
  if (frac < 0) {
    frac += nanos_per_second;
    --secs;
  }
  std::int64_t days = secs / 86400;
  std::int64_t rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  int y;
  unsigned m, d;
  civil_from_days(days, y, m, d);
  // Fixed-width fields written by hand: snprintf is too slow for the per-event path.
  auto put2 = [&](std::size_t at, unsigned v) {
    out[at] = static_cast<char>('0' + v / 10);
    out[at + 1] = static_cast<char>('0' + v % 10);
  };
  if (y < 0 || y > 9999) {
    y = y < 0 ? 0 : 9999;
  }
  put2(0, static_cast<unsigned>(y / 100));
  put2(2, static_cast<unsigned>(y % 100));
  out[4] = '-';
  put2(5, m);
  out[7] = '-';
  put2(8, d);
  out[10] = 'T';
  put2(11, static_cast<unsigned>(rem / 3600));
  out[13] = ':';
  put2(14, static_cast<unsigned>(rem / 60 % 60));
  out[16] = ':';
  put2(17, static_cast<unsigned>(rem % 60));
  std::size_t n = 19;
  if (frac != 0) {
    out[n++] = '.';
    char digits[9];
    for (int i = 8; i >= 0; --i) {
      digits[i] = static_cast<char>('0' + frac % 10);
      frac /= 10;
    }
    int last = 8;
    while (digits[last] == '0') {
      --last;
    }
    for (int i = 0; i <= last; ++i) {
      out[n++] = digits[i];
    }
  }
  out[n++] = 'Z';
  return n;
}

std::string format_rfc3339_nano(unix_nanos t) {
  char buf[40];
  return std::string(buf, format_rfc3339_nano(t, buf));
}

} // namespace vigil::engine
