// Go's time.Time as templates use it: Format and Parse with Go reference layouts
// ("2006-01-02T15:04:05Z07:00"), Time.String, and the zones of sprig's `now`, `date`,
// `dateInZone` and `toDate`: UTC, Local, and IANA names read from the system's zoneinfo files.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <ctime>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <sys/time.h>

#include "rules/template/internal.h"

namespace vigil::rules::tmpl::detail {
namespace {

constexpr std::string_view short_months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::string_view long_months[] = {"January", "February", "March",     "April",   "May",      "June",
                                            "July",    "August",   "September", "October", "November", "December"};
constexpr std::string_view short_days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::string_view long_days[] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  return a / b - ((a % b != 0 && (a < 0) != (b < 0)) ? 1 : 0);
}

// Days since 1970-01-01 of a proleptic Gregorian date, and back (Howard Hinnant's algorithms).
std::int64_t days_from_civil(std::int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = floor_div(y, 400);
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct civil {
  std::int64_t year = 0;
  int month = 1, day = 1, hour = 0, minute = 0, second = 0, weekday = 0, yday = 1;
};

civil civil_from(const time_value& t) {
  const std::int64_t local = t.unix + t.offset;
  const std::int64_t days = floor_div(local, 86400);
  const std::int64_t secs = local - days * 86400;
  civil c;
  c.hour = static_cast<int>(secs / 3600);
  c.minute = static_cast<int>(secs / 60 % 60);
  c.second = static_cast<int>(secs % 60);
  c.weekday = static_cast<int>(((days % 7) + 11) % 7); // 1970-01-01 was a Thursday
  const std::int64_t z = days + 719468;
  const std::int64_t era = floor_div(z, 146097);
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  c.day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  c.month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  c.year = yoe + era * 400 + (c.month <= 2 ? 1 : 0);
  c.yday = static_cast<int>(days - days_from_civil(c.year, 1, 1) + 1);
  return c;
}

bool is_leap(std::int64_t y) {
  return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

int days_in(int month, std::int64_t year) {
  static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && is_leap(year) ? 29 : days[month - 1];
}

// The local zone at an instant: offset and abbreviation (from TZ or /etc/localtime).
bool local_zone(std::int64_t unix, std::int32_t& offset, std::string& name) {
  const auto t = static_cast<std::time_t>(unix);
  std::tm tm{};
  if (localtime_r(&t, &tm) == nullptr) {
    return false;
  }
  offset = static_cast<std::int32_t>(tm.tm_gmtoff);
  name = tm.tm_zone != nullptr ? tm.tm_zone : "";
  return true;
}

// A zone read from a TZif file (RFC 8536): its transitions and the local time types.
struct tz_type {
  std::int32_t offset = 0;
  bool dst = false;
  std::string abbreviation;
};
// One end of a POSIX TZ rule ("M3.5.0/2"): a day of the year and a local time on it.
struct tz_rule_date {
  enum kind_t : std::uint8_t { julian, day_of_year, month_week_day } kind = month_week_day;
  int day = 0, week = 0, month = 0; // Jn: day 1..365; n: day 0..365; Mm.w.d: month, week, weekday
  std::int32_t time = 7200;         // seconds after local midnight (RFC 8536: -167h..167h)
};

// The footer of a version 2+ file: the rule for times after its last transition ("CET-1CEST,
// M3.5.0,M10.5.0/3").
struct tz_posix {
  tz_type std_type, dst_type;
  bool has_dst = false;
  tz_rule_date start, end;
};

struct tz_zone {
  std::vector<std::int64_t> transitions; // ascending Unix seconds
  std::vector<std::uint8_t> type_at;     // the type in force from transitions[i]
  std::vector<tz_type> types;
  std::optional<tz_posix> rule;          // for times from the last transition on
};

// A POSIX TZ string parser (RFC 8536 section 3.3, Go's time.tzset); nullopt if it is not one.
class posix_tz_parser {
 public:
  explicit posix_tz_parser(std::string_view s) : s_(s) {}

  std::optional<tz_posix> parse() {
    tz_posix r;
    std::int32_t off = 0;
    if (!name(r.std_type.abbreviation) || !offset(off, 24)) {
      return std::nullopt;
    }
    r.std_type.offset = -off; // POSIX counts west of Greenwich as positive
    if (s_.empty()) {
      return r;
    }
    r.has_dst = true;
    r.dst_type.dst = true;
    if (!name(r.dst_type.abbreviation)) {
      return std::nullopt;
    }
    r.dst_type.offset = r.std_type.offset + 3600;
    if (!s_.empty() && s_.front() != ',') {
      if (!offset(off, 24)) {
        return std::nullopt;
      }
      r.dst_type.offset = -off;
    }
    if (s_.empty()) {
      s_ = ",M3.2.0,M11.1.0"; // no rule: the US one, as Go and glibc take it
    }
    if (!eat(',') || !date(r.start) || !eat(',') || !date(r.end) || !s_.empty()) {
      return std::nullopt;
    }
    return r;
  }

 private:
  bool eat(char c) {
    if (s_.empty() || s_.front() != c) {
      return false;
    }
    s_.remove_prefix(1);
    return true;
  }
  bool number(int& n, int max) {
    std::size_t i = 0;
    n = 0;
    while (i < s_.size() && s_[i] >= '0' && s_[i] <= '9' && n <= max) {
      n = n * 10 + (s_[i++] - '0');
    }
    s_.remove_prefix(i);
    return i > 0 && n <= max;
  }
  bool name(std::string& out) {
    if (eat('<')) {
      const std::size_t close = s_.find('>');
      if (close == std::string_view::npos || close < 3) {
        return false;
      }
      out = std::string(s_.substr(0, close));
      s_.remove_prefix(close + 1);
      return true;
    }
    std::size_t i = 0;
    while (i < s_.size() && ((s_[i] >= 'A' && s_[i] <= 'Z') || (s_[i] >= 'a' && s_[i] <= 'z'))) {
      ++i;
    }
    if (i < 3) {
      return false;
    }
    out = std::string(s_.substr(0, i));
    s_.remove_prefix(i);
    return true;
  }
  // [+-]hh[:mm[:ss]], hours up to `max_hours`.
  bool offset(std::int32_t& out, int max_hours) {
    int sign = 1;
    if (eat('-')) {
      sign = -1;
    } else {
      eat('+');
    }
    int h = 0, m = 0, sec = 0;
    if (!number(h, max_hours)) {
      return false;
    }
    if (eat(':') && (!number(m, 59) || (eat(':') && !number(sec, 59)))) {
      return false;
    }
    out = sign * (h * 3600 + m * 60 + sec);
    return true;
  }
  bool date(tz_rule_date& d) {
    if (eat('J')) {
      d.kind = tz_rule_date::julian;
      if (!number(d.day, 365) || d.day < 1) {
        return false;
      }
    } else if (eat('M')) {
      d.kind = tz_rule_date::month_week_day;
      if (!number(d.month, 12) || d.month < 1 || !eat('.') || !number(d.week, 5) || d.week < 1 || !eat('.') ||
          !number(d.day, 6)) {
        return false;
      }
    } else {
      d.kind = tz_rule_date::day_of_year;
      if (!number(d.day, 365)) {
        return false;
      }
    }
    d.time = 7200;
    return !eat('/') || offset(d.time, 167);
  }

  std::string_view s_;
};

// Unix seconds of a rule's transition in `year`, `off` being the UTC offset in force before it.
std::int64_t rule_transition(std::int64_t year, const tz_rule_date& r, std::int32_t off) {
  std::int64_t day = 0; // days since the epoch
  switch (r.kind) {
  case tz_rule_date::julian: // 1..365, February 29 never counted
    day = days_from_civil(year, 1, 1) + r.day - 1 + (is_leap(year) && r.day >= 60 ? 1 : 0);
    break;
  case tz_rule_date::day_of_year: // 0..365
    day = days_from_civil(year, 1, 1) + r.day;
    break;
  case tz_rule_date::month_week_day: {
    const std::int64_t first = days_from_civil(year, r.month, 1);
    const int first_weekday = static_cast<int>(((first % 7) + 11) % 7); // 1970-01-01 was a Thursday
    int dom = 1 + (r.day - first_weekday + 7) % 7;
    for (int w = 1; w < r.week && dom + 7 <= days_in(r.month, year); ++w) {
      dom += 7;
    }
    day = first + dom - 1;
    break;
  }
  }
  return day * 86400 + r.time - off;
}

// The local time type the footer rule gives at `unix`.
const tz_type& rule_type_at(const tz_posix& r, std::int64_t unix) {
  if (!r.has_dst) {
    return r.std_type;
  }
  const std::int64_t year = civil_from(time_value{unix, 0, 0, {}}).year;
  const std::int64_t start = rule_transition(year, r.start, r.std_type.offset);
  const std::int64_t end = rule_transition(year, r.end, r.dst_type.offset);
  const bool dst = start <= end ? (unix >= start && unix < end) : (unix < end || unix >= start);
  return dst ? r.dst_type : r.std_type;
}

std::int64_t be(const std::string& d, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v = (v << 8) | static_cast<unsigned char>(d[at + static_cast<std::size_t>(i)]);
  }
  if (bytes == 4) {
    return static_cast<std::int32_t>(static_cast<std::uint32_t>(v));
  }
  return static_cast<std::int64_t>(v);
}

// Parses the version 2+ data block (64-bit times); nullptr if the file is not one.
std::unique_ptr<tz_zone> parse_tzif(const std::string& d) {
  constexpr std::size_t header = 44;
  auto counts = [&](std::size_t at, std::int64_t (&c)[6]) {
    if (d.size() < at + header || d.compare(at, 4, "TZif") != 0) {
      return false;
    }
    for (int i = 0; i < 6; ++i) { // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
      c[i] = be(d, at + 20 + 4 * static_cast<std::size_t>(i), 4);
      if (c[i] < 0 || c[i] > 100000) {
        return false;
      }
    }
    return true;
  };
  std::int64_t c1[6], c[6];
  if (!counts(0, c1) || d.size() < 5 || d[4] < '2') {
    return nullptr;
  }
  const std::size_t v1 = static_cast<std::size_t>(c1[3] * 5 + c1[4] * 6 + c1[5] + c1[2] * 8 + c1[1] + c1[0]);
  const std::size_t at = header + v1;
  if (!counts(at, c)) {
    return nullptr;
  }
  const auto timecnt = static_cast<std::size_t>(c[3]), typecnt = static_cast<std::size_t>(c[4]),
             charcnt = static_cast<std::size_t>(c[5]);
  const std::size_t times = at + header, indices = times + 8 * timecnt, type_recs = indices + timecnt,
                    chars = type_recs + 6 * typecnt;
  if (typecnt == 0 || d.size() < chars + charcnt) {
    return nullptr;
  }
  auto z = std::make_unique<tz_zone>();
  for (std::size_t i = 0; i < timecnt; ++i) {
    z->transitions.push_back(be(d, times + 8 * i, 8));
    const auto t = static_cast<std::uint8_t>(d[indices + i]);
    if (t >= typecnt) {
      return nullptr;
    }
    z->type_at.push_back(t);
  }
  // The footer follows the data block: "\n<POSIX TZ string>\n".
  const std::size_t footer = chars + charcnt + 12 * static_cast<std::size_t>(c[2]) + static_cast<std::size_t>(c[1]) +
                             static_cast<std::size_t>(c[0]);
  if (footer < d.size() && d[footer] == '\n') {
    const std::size_t close = d.find('\n', footer + 1);
    if (close != std::string::npos && close - footer - 1 <= 256) {
      z->rule = posix_tz_parser(std::string_view(d).substr(footer + 1, close - footer - 1)).parse();
    }
  }
  for (std::size_t i = 0; i < typecnt; ++i) {
    tz_type t;
    t.offset = static_cast<std::int32_t>(be(d, type_recs + 6 * i, 4));
    t.dst = d[type_recs + 6 * i + 4] != 0;
    const auto idx = static_cast<unsigned char>(d[type_recs + 6 * i + 5]);
    if (idx < charcnt) {
      const std::size_t end = d.find('\0', chars + idx);
      t.abbreviation = d.substr(chars + idx, std::min(end, chars + charcnt) - chars - idx);
    }
    z->types.push_back(std::move(t));
  }
  return z;
}

// Go's LoadLocation name check: no "..", not absolute, no backslash, nothing odd.
bool valid_zone_name(std::string_view name) {
  if (name.empty() || name.size() > 128 || name.front() == '/' || name.find("..") != std::string_view::npos) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '/' ||
           ch == '_' || ch == '-' || ch == '+';
  });
}

// A zone by IANA name, read once from the zoneinfo directory (ZONEINFO, else /usr/share/zoneinfo)
// and kept; nullptr if there is no such zone. Zones that do not load are remembered too, up to a
// bound, so a name from the data cannot grow the cache without end.
const tz_zone* load_zone(std::string_view name) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<tz_zone>, std::less<>> cache;
  if (!valid_zone_name(name)) {
    return nullptr;
  }
  std::lock_guard lock(mu);
  if (const auto it = cache.find(name); it != cache.end()) {
    return it->second.get();
  }
  const char* dir = std::getenv("ZONEINFO");
  const std::string path = std::string(dir != nullptr && *dir != '\0' ? dir : "/usr/share/zoneinfo") + "/" +
                           std::string(name);
  std::ifstream in(path, std::ios::binary);
  std::unique_ptr<tz_zone> z;
  if (in) {
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (data.size() <= (1u << 20)) {
      z = parse_tzif(data);
    }
  }
  // Every zone that loads is kept (there are as many as the zoneinfo directory holds); names
  // that do not load are remembered up to a bound, so names from the data cannot grow the cache.
  static std::size_t misses = 0;
  if (z == nullptr) {
    if (misses >= 1024) {
      return nullptr;
    }
    ++misses;
  }
  return cache.emplace(std::string(name), std::move(z)).first->second.get();
}

// The local time type of `z` at `unix`. Before the first transition: the first standard type,
// as Go does; from the last one on, the file's footer rule when it has one (Debian's files list
// transitions to 2037 and carry the rule for later years).
const tz_type& zone_type_at(const tz_zone& z, std::int64_t unix) {
  if (z.rule && (z.transitions.empty() || unix >= z.transitions.back())) {
    return rule_type_at(*z.rule, unix);
  }
  const auto it = std::upper_bound(z.transitions.begin(), z.transitions.end(), unix);
  if (it == z.transitions.begin()) {
    for (const tz_type& t : z.types) {
      if (!t.dst) {
        return t;
      }
    }
    return z.types.front();
  }
  return z.types[z.type_at[static_cast<std::size_t>(it - z.transitions.begin() - 1)]];
}

enum class std_code : std::uint8_t {
  none,
  month,
  long_month,
  num_month,
  zero_month,
  week_day,
  long_week_day,
  day,
  under_day,
  zero_day,
  under_year_day,
  zero_year_day,
  hour,
  hour12,
  zero_hour12,
  minute,
  zero_minute,
  second,
  zero_second,
  long_year,
  year,
  pm,
  lower_pm,
  tz,
  iso8601_tz,
  iso8601_seconds_tz,
  iso8601_short_tz,
  iso8601_colon_tz,
  iso8601_colon_seconds_tz,
  num_tz,
  num_seconds_tz,
  num_short_tz,
  num_colon_tz,
  num_colon_seconds_tz,
  frac_second0,
  frac_second9,
};

struct chunk {
  std::string_view prefix;
  std_code code = std_code::none;
  std::string_view suffix;
  int frac_digits = 0;
  char frac_sep = '.';
};

bool starts_with(std::string_view s, std::size_t i, std::string_view p) {
  return s.substr(i, p.size()) == p;
}
bool is_digit_at(std::string_view s, std::size_t i) {
  return i < s.size() && s[i] >= '0' && s[i] <= '9';
}

// Go's nextStdChunk: the text before the first layout element, the element, and the rest.
chunk next_chunk(std::string_view layout) {
  for (std::size_t i = 0; i < layout.size(); ++i) {
    const char c = layout[i];
    auto make = [&](std_code code, std::size_t len) {
      return chunk{layout.substr(0, i), code, layout.substr(i + len)};
    };
    auto lower_after = [&](std::size_t j) { return j < layout.size() && layout[j] >= 'a' && layout[j] <= 'z'; };
    switch (c) {
    case 'J':
      if (starts_with(layout, i, "Jan")) {
        if (starts_with(layout, i, "January")) {
          return make(std_code::long_month, 7);
        }
        if (!lower_after(i + 3)) {
          return make(std_code::month, 3);
        }
      }
      break;
    case 'M':
      if (starts_with(layout, i, "Mon")) {
        if (starts_with(layout, i, "Monday")) {
          return make(std_code::long_week_day, 6);
        }
        if (!lower_after(i + 3)) {
          return make(std_code::week_day, 3);
        }
      }
      if (starts_with(layout, i, "MST")) {
        return make(std_code::tz, 3);
      }
      break;
    case '0':
      if (i + 1 < layout.size() && layout[i + 1] >= '1' && layout[i + 1] <= '6') {
        static constexpr std_code zero_x[] = {std_code::zero_month,  std_code::zero_day,    std_code::zero_hour12,
                                              std_code::zero_minute, std_code::zero_second, std_code::year};
        return make(zero_x[layout[i + 1] - '1'], 2);
      }
      if (starts_with(layout, i, "002")) {
        return make(std_code::zero_year_day, 3);
      }
      break;
    case '1':
      if (starts_with(layout, i, "15")) {
        return make(std_code::hour, 2);
      }
      return make(std_code::num_month, 1);
    case '2':
      if (starts_with(layout, i, "2006")) {
        return make(std_code::long_year, 4);
      }
      return make(std_code::day, 1);
    case '_':
      if (starts_with(layout, i, "_2")) {
        if (starts_with(layout, i, "_2006")) { // a literal _ then the year
          return chunk{layout.substr(0, i + 1), std_code::long_year, layout.substr(i + 5)};
        }
        return make(std_code::under_day, 2);
      }
      if (starts_with(layout, i, "__2")) {
        return make(std_code::under_year_day, 3);
      }
      break;
    case '3':
      return make(std_code::hour12, 1);
    case '4':
      return make(std_code::minute, 1);
    case '5':
      return make(std_code::second, 1);
    case 'P':
      if (starts_with(layout, i, "PM")) {
        return make(std_code::pm, 2);
      }
      break;
    case 'p':
      if (starts_with(layout, i, "pm")) {
        return make(std_code::lower_pm, 2);
      }
      break;
    case '-':
      if (starts_with(layout, i, "-070000")) {
        return make(std_code::num_seconds_tz, 7);
      }
      if (starts_with(layout, i, "-07:00:00")) {
        return make(std_code::num_colon_seconds_tz, 9);
      }
      if (starts_with(layout, i, "-0700")) {
        return make(std_code::num_tz, 5);
      }
      if (starts_with(layout, i, "-07:00")) {
        return make(std_code::num_colon_tz, 6);
      }
      if (starts_with(layout, i, "-07")) {
        return make(std_code::num_short_tz, 3);
      }
      break;
    case 'Z':
      if (starts_with(layout, i, "Z070000")) {
        return make(std_code::iso8601_seconds_tz, 7);
      }
      if (starts_with(layout, i, "Z07:00:00")) {
        return make(std_code::iso8601_colon_seconds_tz, 9);
      }
      if (starts_with(layout, i, "Z0700")) {
        return make(std_code::iso8601_tz, 5);
      }
      if (starts_with(layout, i, "Z07:00")) {
        return make(std_code::iso8601_colon_tz, 6);
      }
      if (starts_with(layout, i, "Z07")) {
        return make(std_code::iso8601_short_tz, 3);
      }
      break;
    case '.':
    case ',':
      if (i + 1 < layout.size() && (layout[i + 1] == '0' || layout[i + 1] == '9')) {
        const char ch = layout[i + 1];
        std::size_t j = i + 1;
        while (j < layout.size() && layout[j] == ch) {
          ++j;
        }
        if (!is_digit_at(layout, j)) { // only a fraction if the run of digits ends here
          chunk out{layout.substr(0, i), ch == '0' ? std_code::frac_second0 : std_code::frac_second9, layout.substr(j)};
          out.frac_digits = static_cast<int>(j - (i + 1));
          out.frac_sep = c;
          return out;
        }
      }
      break;
    default:
      break;
    }
  }
  return chunk{layout, std_code::none, {}};
}

void append_int(std::string& out, std::int64_t v, int width) {
  if (v < 0) {
    out += '-';
    v = -v;
  }
  const std::string digits = std::to_string(v);
  for (int i = static_cast<int>(digits.size()); i < width; ++i) {
    out += '0';
  }
  out += digits;
}

bool is_iso_tz(std_code c) {
  return c == std_code::iso8601_tz || c == std_code::iso8601_seconds_tz || c == std_code::iso8601_short_tz ||
         c == std_code::iso8601_colon_tz || c == std_code::iso8601_colon_seconds_tz;
}

// getnum: one or two digits (exactly two when `fixed`).
bool get_num(std::string_view& s, bool fixed, int& out) {
  if (!is_digit_at(s, 0)) {
    return false;
  }
  if (!is_digit_at(s, 1)) {
    if (fixed) {
      return false;
    }
    out = s[0] - '0';
    s.remove_prefix(1);
    return true;
  }
  out = (s[0] - '0') * 10 + (s[1] - '0');
  s.remove_prefix(2);
  return true;
}

bool get_num3(std::string_view& s, bool fixed, int& out) {
  int n = 0;
  std::size_t i = 0;
  for (; i < 3 && is_digit_at(s, i); ++i) {
    n = n * 10 + (s[i] - '0');
  }
  if (i == 0 || (fixed && i != 3)) {
    return false;
  }
  out = n;
  s.remove_prefix(i);
  return true;
}

bool lookup(std::string_view& s, const std::string_view* names, int n, int& out) {
  for (int i = 0; i < n; ++i) {
    const std::string_view name = names[i];
    if (s.size() < name.size()) {
      continue;
    }
    bool eq = true;
    for (std::size_t k = 0; k < name.size(); ++k) {
      char a = s[k];
      char b = name[k];
      a = (a >= 'A' && a <= 'Z') ? static_cast<char>(a + 0x20) : a;
      b = (b >= 'A' && b <= 'Z') ? static_cast<char>(b + 0x20) : b;
      if (a != b) {
        eq = false;
        break;
      }
    }
    if (eq) {
      out = i;
      s.remove_prefix(name.size());
      return true;
    }
  }
  return false;
}

// Go's skip: the literal text between elements; a space matches any run of spaces.
bool skip(std::string_view& value, std::string_view prefix) {
  while (!prefix.empty()) {
    if (prefix[0] == ' ') {
      if (!value.empty() && value[0] != ' ') {
        return false;
      }
      while (!prefix.empty() && prefix[0] == ' ') {
        prefix.remove_prefix(1);
      }
      while (!value.empty() && value[0] == ' ') {
        value.remove_prefix(1);
      }
      continue;
    }
    if (value.empty() || value[0] != prefix[0]) {
      return false;
    }
    prefix.remove_prefix(1);
    value.remove_prefix(1);
  }
  return true;
}

bool parse_nanos(std::string_view value, std::size_t nbytes, std::int32_t& out) {
  if (value.empty() || (value[0] != '.' && value[0] != ',')) {
    return false;
  }
  if (nbytes > 10) {
    nbytes = 10;
  }
  std::int32_t ns = 0;
  std::size_t i = 1;
  for (; i < nbytes; ++i) {
    if (!is_digit_at(value, i)) {
      return false;
    }
    ns = ns * 10 + (value[i] - '0');
  }
  for (std::size_t k = nbytes - 1; k < 9; ++k) {
    ns *= 10;
  }
  out = ns;
  return true;
}

// Length of a zone abbreviation at the start of `value` (Go's parseTimeZone), 0 if none.
std::size_t zone_length(std::string_view value) {
  if (value.size() < 3) {
    return 0;
  }
  if (value.substr(0, 4) == "ChST" || value.substr(0, 4) == "MeST") {
    return 4;
  }
  if (value.substr(0, 3) == "GMT") {
    std::size_t n = 3;
    if (n < value.size() && (value[n] == '+' || value[n] == '-')) {
      std::size_t k = n + 1;
      while (is_digit_at(value, k)) {
        ++k;
      }
      if (k > n + 1) {
        n = k;
      }
    }
    return n;
  }
  if (value[0] == '+' || value[0] == '-') {
    std::size_t k = 1;
    while (is_digit_at(value, k) && k < 3) {
      ++k;
    }
    return k > 1 ? k : 0;
  }
  std::size_t upper = 0;
  while (upper < 6 && upper < value.size() && value[upper] >= 'A' && value[upper] <= 'Z') {
    ++upper;
  }
  switch (upper) {
  case 3:
    return 3;
  case 4:
    return value[3] == 'T' || value.substr(0, 4) == "WITA" ? 4 : 0;
  case 5:
    return value[4] == 'T' ? 5 : 0;
  default:
    return 0;
  }
}

// Unix time of a civil date-time taken as local time (Go's Date with time.Local).
std::int64_t local_to_unix(std::int64_t civil_secs) {
  std::int32_t off1 = 0;
  std::int32_t off2 = 0;
  std::string name;
  if (!local_zone(civil_secs, off1, name)) {
    return civil_secs;
  }
  const std::int64_t guess = civil_secs - off1;
  if (!local_zone(guess, off2, name) || off2 == off1) {
    return guess;
  }
  return civil_secs - off2;
}

} // namespace

time_value time_in_utc(std::int64_t unix, std::int32_t nanos) {
  return time_value{unix, nanos, 0, "UTC"};
}

time_value time_in_local(std::int64_t unix, std::int32_t nanos) {
  time_value t{unix, nanos, 0, "UTC"};
  std::int32_t offset = 0;
  std::string name;
  if (local_zone(unix, offset, name)) {
    t.offset = offset;
    t.zone = name;
  }
  return t;
}

time_value time_in_zone(const time_value& t, std::string_view zone) {
  if (zone == "Local") {
    return time_in_local(t.unix, t.nanos);
  }
  if (zone.empty() || zone == "UTC") {
    return time_in_utc(t.unix, t.nanos);
  }
  const tz_zone* z = load_zone(zone);
  if (z == nullptr) {
    return time_in_utc(t.unix, t.nanos); // sprig: a zone that does not load formats in UTC
  }
  const tz_type& type = zone_type_at(*z, t.unix);
  return time_value{t.unix, t.nanos, type.offset, type.abbreviation};
}

time_value time_now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return time_in_local(ts.tv_sec, static_cast<std::int32_t>(ts.tv_nsec));
}

std::string format_time(const time_value& t, std::string_view layout) {
  const civil c = civil_from(t);
  std::string out;
  while (!layout.empty()) {
    const chunk ch = next_chunk(layout);
    out += ch.prefix;
    if (ch.code == std_code::none) {
      break;
    }
    layout = ch.suffix;
    switch (ch.code) {
    case std_code::year:
      append_int(out, ((c.year % 100) + 100) % 100, 2);
      break;
    case std_code::long_year:
      append_int(out, c.year, 4);
      break;
    case std_code::month:
      out += short_months[c.month - 1];
      break;
    case std_code::long_month:
      out += long_months[c.month - 1];
      break;
    case std_code::num_month:
      append_int(out, c.month, 0);
      break;
    case std_code::zero_month:
      append_int(out, c.month, 2);
      break;
    case std_code::week_day:
      out += short_days[c.weekday];
      break;
    case std_code::long_week_day:
      out += long_days[c.weekday];
      break;
    case std_code::day:
      append_int(out, c.day, 0);
      break;
    case std_code::under_day:
      if (c.day < 10) {
        out += ' ';
      }
      append_int(out, c.day, 0);
      break;
    case std_code::zero_day:
      append_int(out, c.day, 2);
      break;
    case std_code::under_year_day:
      if (c.yday < 100) {
        out += ' ';
        if (c.yday < 10) {
          out += ' ';
        }
      }
      append_int(out, c.yday, 0);
      break;
    case std_code::zero_year_day:
      append_int(out, c.yday, 3);
      break;
    case std_code::hour:
      append_int(out, c.hour, 2);
      break;
    case std_code::hour12:
    case std_code::zero_hour12: {
      const int hr = c.hour % 12 == 0 ? 12 : c.hour % 12;
      append_int(out, hr, ch.code == std_code::hour12 ? 0 : 2);
      break;
    }
    case std_code::minute:
      append_int(out, c.minute, 0);
      break;
    case std_code::zero_minute:
      append_int(out, c.minute, 2);
      break;
    case std_code::second:
      append_int(out, c.second, 0);
      break;
    case std_code::zero_second:
      append_int(out, c.second, 2);
      break;
    case std_code::pm:
      out += c.hour >= 12 ? "PM" : "AM";
      break;
    case std_code::lower_pm:
      out += c.hour >= 12 ? "pm" : "am";
      break;
    case std_code::tz: {
      if (!t.zone.empty()) {
        out += t.zone;
        break;
      }
      std::int32_t zone = t.offset / 60;
      out += zone < 0 ? '-' : '+';
      zone = zone < 0 ? -zone : zone;
      append_int(out, zone / 60, 2);
      append_int(out, zone % 60, 2);
      break;
    }
    case std_code::frac_second0:
    case std_code::frac_second9: {
      const bool trim = ch.code == std_code::frac_second9;
      if (trim && (ch.frac_digits == 0 || t.nanos == 0)) {
        break;
      }
      std::string nine;
      append_int(nine, t.nanos, 9);
      std::size_t n = std::min<std::size_t>(9, static_cast<std::size_t>(ch.frac_digits));
      if (trim) {
        while (n > 0 && nine[n - 1] == '0') {
          --n;
        }
        if (n == 0) {
          break;
        }
      }
      out += ch.frac_sep;
      out.append(nine, 0, n);
      break;
    }
    default: { // the numeric and ISO 8601 zones
      if (t.offset == 0 && is_iso_tz(ch.code)) {
        out += 'Z';
        break;
      }
      std::int32_t zone = t.offset / 60;
      std::int32_t abs_offset = t.offset;
      if (zone < 0) {
        out += '-';
        zone = -zone;
        abs_offset = -abs_offset;
      } else {
        out += '+';
      }
      append_int(out, zone / 60, 2);
      const bool colon = ch.code == std_code::iso8601_colon_tz || ch.code == std_code::num_colon_tz ||
                         ch.code == std_code::iso8601_colon_seconds_tz || ch.code == std_code::num_colon_seconds_tz;
      if (colon) {
        out += ':';
      }
      if (ch.code != std_code::num_short_tz && ch.code != std_code::iso8601_short_tz) {
        append_int(out, zone % 60, 2);
      }
      if (ch.code == std_code::iso8601_seconds_tz || ch.code == std_code::num_seconds_tz ||
          ch.code == std_code::num_colon_seconds_tz || ch.code == std_code::iso8601_colon_seconds_tz) {
        if (colon) {
          out += ':';
        }
        append_int(out, abs_offset % 60, 2);
      }
      break;
    }
    }
  }
  return out;
}

bool parse_time(std::string_view layout, std::string_view value, time_value& out) {
  std::int64_t year = 0;
  int month = -1, day = -1, yday = -1, hour = 0, minute = 0, second = 0;
  std::int32_t nanos = 0;
  bool pm_set = false, am_set = false, utc = false;
  std::int32_t zone_offset = -1;
  bool has_offset = false;
  std::string zone_name;
  for (;;) {
    const chunk ch = next_chunk(layout);
    if (!skip(value, ch.prefix)) {
      return false;
    }
    if (ch.code == std_code::none) {
      if (!value.empty()) {
        return false; // extra text
      }
      break;
    }
    layout = ch.suffix;
    bool ok = true;
    switch (ch.code) {
    case std_code::year: {
      if (value.size() < 2 || !is_digit_at(value, 0) || !is_digit_at(value, 1)) {
        return false;
      }
      const int y = (value[0] - '0') * 10 + (value[1] - '0');
      year = y >= 69 ? 1900 + y : 2000 + y;
      value.remove_prefix(2);
      break;
    }
    case std_code::long_year:
      if (value.size() < 4) {
        return false;
      }
      year = 0;
      for (int i = 0; i < 4; ++i) {
        if (!is_digit_at(value, static_cast<std::size_t>(i))) {
          return false;
        }
        year = year * 10 + (value[static_cast<std::size_t>(i)] - '0');
      }
      value.remove_prefix(4);
      break;
    case std_code::month:
      ok = lookup(value, short_months, 12, month);
      ++month;
      break;
    case std_code::long_month:
      ok = lookup(value, long_months, 12, month);
      ++month;
      break;
    case std_code::num_month:
    case std_code::zero_month:
      ok = get_num(value, ch.code == std_code::zero_month, month) && month >= 1 && month <= 12;
      break;
    case std_code::week_day: {
      int ignored = 0;
      ok = lookup(value, short_days, 7, ignored);
      break;
    }
    case std_code::long_week_day: {
      int ignored = 0;
      ok = lookup(value, long_days, 7, ignored);
      break;
    }
    case std_code::day:
    case std_code::under_day:
    case std_code::zero_day:
      if (ch.code == std_code::under_day && !value.empty() && value[0] == ' ') {
        value.remove_prefix(1);
      }
      ok = get_num(value, ch.code == std_code::zero_day, day);
      break;
    case std_code::under_year_day:
    case std_code::zero_year_day:
      for (int i = 0; i < 2 && ch.code == std_code::under_year_day && !value.empty() && value[0] == ' '; ++i) {
        value.remove_prefix(1);
      }
      ok = get_num3(value, ch.code == std_code::zero_year_day, yday);
      break;
    case std_code::hour:
      ok = get_num(value, false, hour) && hour < 24;
      break;
    case std_code::hour12:
    case std_code::zero_hour12:
      ok = get_num(value, ch.code == std_code::zero_hour12, hour) && hour <= 12;
      break;
    case std_code::minute:
    case std_code::zero_minute:
      ok = get_num(value, ch.code == std_code::zero_minute, minute) && minute < 60;
      break;
    case std_code::second:
    case std_code::zero_second: {
      ok = get_num(value, ch.code == std_code::zero_second, second) && second < 60;
      // A fraction in the value but not in the layout is accepted.
      if (ok && value.size() >= 2 && (value[0] == '.' || value[0] == ',') && is_digit_at(value, 1)) {
        const chunk next = next_chunk(layout);
        if (next.code == std_code::frac_second0 || next.code == std_code::frac_second9) {
          break;
        }
        std::size_t n = 2;
        while (is_digit_at(value, n)) {
          ++n;
        }
        ok = parse_nanos(value, n, nanos);
        value.remove_prefix(n);
      }
      break;
    }
    case std_code::pm:
    case std_code::lower_pm: {
      if (value.size() < 2) {
        return false;
      }
      const std::string_view p = value.substr(0, 2);
      value.remove_prefix(2);
      const bool lower = ch.code == std_code::lower_pm;
      if (p == (lower ? "pm" : "PM")) {
        pm_set = true;
      } else if (p == (lower ? "am" : "AM")) {
        am_set = true;
      } else {
        return false;
      }
      break;
    }
    case std_code::tz: {
      if (value.substr(0, 3) == "UTC") {
        utc = true;
        value.remove_prefix(3);
        break;
      }
      const std::size_t n = zone_length(value);
      if (n == 0) {
        return false;
      }
      zone_name = std::string(value.substr(0, n));
      value.remove_prefix(n);
      break;
    }
    case std_code::frac_second0: {
      const std::size_t ndigit = 1 + static_cast<std::size_t>(ch.frac_digits);
      if (value.size() < ndigit) {
        return false;
      }
      ok = parse_nanos(value, ndigit, nanos);
      value.remove_prefix(ndigit);
      break;
    }
    case std_code::frac_second9: {
      if (value.size() < 2 || (value[0] != '.' && value[0] != ',') || !is_digit_at(value, 1)) {
        break; // the fraction is optional
      }
      std::size_t i = 0;
      while (is_digit_at(value, i + 1)) {
        ++i;
      }
      ok = parse_nanos(value, 1 + i, nanos);
      value.remove_prefix(1 + i);
      break;
    }
    default: { // numeric and ISO 8601 zones
      if (is_iso_tz(ch.code) && !value.empty() && value[0] == 'Z') {
        value.remove_prefix(1);
        utc = true;
        break;
      }
      std::string_view h, m, s = "00";
      char sign = 0;
      const bool colon = ch.code == std_code::iso8601_colon_tz || ch.code == std_code::num_colon_tz;
      const bool short_tz = ch.code == std_code::num_short_tz || ch.code == std_code::iso8601_short_tz;
      const bool colon_secs =
          ch.code == std_code::iso8601_colon_seconds_tz || ch.code == std_code::num_colon_seconds_tz;
      const bool secs = ch.code == std_code::iso8601_seconds_tz || ch.code == std_code::num_seconds_tz;
      std::size_t len = colon ? 6 : short_tz ? 3 : colon_secs ? 9 : secs ? 7 : 5;
      if (value.size() < len) {
        return false;
      }
      sign = value[0];
      h = value.substr(1, 2);
      if (colon) {
        if (value[3] != ':') {
          return false;
        }
        m = value.substr(4, 2);
      } else if (short_tz) {
        m = "00";
      } else if (colon_secs) {
        if (value[3] != ':' || value[6] != ':') {
          return false;
        }
        m = value.substr(4, 2);
        s = value.substr(7, 2);
      } else if (secs) {
        m = value.substr(3, 2);
        s = value.substr(5, 2);
      } else {
        m = value.substr(3, 2);
      }
      value.remove_prefix(len);
      int hh = 0, mm = 0, ss = 0;
      if (!get_num(h, true, hh) || !get_num(m, true, mm) || !get_num(s, true, ss)) {
        return false;
      }
      zone_offset = (hh * 60 + mm) * 60 + ss;
      if (sign == '-') {
        zone_offset = -zone_offset;
      } else if (sign != '+') {
        return false;
      }
      has_offset = true;
      break;
    }
    }
    if (!ok) {
      return false;
    }
  }
  if (pm_set && hour < 12) {
    hour += 12;
  } else if (am_set && hour == 12) {
    hour = 0;
  }
  if (yday >= 0) {
    if (yday < 1 || yday > (is_leap(year) ? 366 : 365)) {
      return false;
    }
    int m = 1;
    int d = yday;
    while (d > days_in(m, year)) {
      d -= days_in(m, year);
      ++m;
    }
    if ((month >= 0 && month != m) || (day >= 0 && day != d)) {
      return false;
    }
    month = m;
    day = d;
  } else {
    month = month < 0 ? 1 : month;
    day = day < 0 ? 1 : day;
  }
  if (day < 1 || day > days_in(month, year)) {
    return false;
  }
  const std::int64_t civil_secs = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
  if (utc) {
    out = time_in_utc(civil_secs, nanos);
    return true;
  }
  if (has_offset) {
    const std::int64_t unix = civil_secs - zone_offset;
    std::int32_t local_offset = 0;
    std::string local_name;
    if (local_zone(unix, local_offset, local_name) && local_offset == zone_offset &&
        (zone_name.empty() || local_name == zone_name)) {
      out = time_value{unix, nanos, local_offset, local_name};
    } else {
      out = time_value{unix, nanos, zone_offset, zone_name};
    }
    return true;
  }
  if (!zone_name.empty()) {
    std::int32_t local_offset = 0;
    std::string local_name;
    if (local_zone(civil_secs, local_offset, local_name) && local_name == zone_name) {
      out = time_value{civil_secs - local_offset, nanos, local_offset, local_name};
      return true;
    }
    // Unknown abbreviation: Go keeps the instant read as UTC and records the name with a guessed
    // offset (GMT+N gives N hours, anything else 0).
    int hours = 0;
    if (zone_name.size() > 3 && zone_name.compare(0, 3, "GMT") == 0) {
      const char* b = zone_name.data() + 3;
      std::from_chars(*b == '+' || *b == '-' ? b + 1 : b, zone_name.data() + zone_name.size(), hours);
      hours = *b == '-' ? -hours : hours;
    }
    out = time_value{civil_secs, nanos, hours * 3600, zone_name};
    return true;
  }
  out = time_in_local(local_to_unix(civil_secs), nanos);
  return true;
}

std::string time_string(const time_value& t) {
  return format_time(t, "2006-01-02 15:04:05.999999999 -0700 MST");
}

} // namespace vigil::rules::tmpl::detail
