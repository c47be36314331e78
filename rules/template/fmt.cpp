// Go's fmt and encoding/json as templates observe them: how an action prints its value,
// print/println/printf, sprig's strval, and toJson (sections 6 and 8 of the contract).
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>

#include "rules/template/internal.h"

namespace vigil::rules::tmpl::detail {
namespace {

// A double's shortest round-trip digits and decimal exponent: value = d[0].d[1:] × 10^exp.
struct decimal_digits {
  bool negative = false;
  std::string digits;
  int exp = 0;
  std::string scientific; // the same number as "d.ddde±XX" (what Go's %e shortest prints)
};

decimal_digits shortest_digits(double d, bool f32) {
  char buf[64];
  const auto res = f32 ? std::to_chars(buf, buf + sizeof buf, static_cast<float>(d), std::chars_format::scientific)
                       : std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  decimal_digits out;
  out.scientific.assign(buf, res.ptr);
  std::size_t i = 0;
  const std::string& s = out.scientific;
  if (s[0] == '-') {
    out.negative = true;
    i = 1;
  }
  for (; i < s.size() && s[i] != 'e'; ++i) {
    if (s[i] != '.') {
      out.digits += s[i];
    }
  }
  int e = 0;
  std::from_chars(s.data() + i + (s[i + 1] == '+' ? 2 : 1), s.data() + s.size(), e);
  out.exp = e;
  return out;
}

// Plain decimal notation with exactly the shortest digits (strconv 'f' with precision -1).
std::string fixed_layout(const decimal_digits& d) {
  std::string out = d.negative ? "-" : "";
  const int nd = static_cast<int>(d.digits.size());
  const int dp = d.exp + 1; // digits before the decimal point
  if (dp <= 0) {
    out += "0.";
    out.append(static_cast<std::size_t>(-dp), '0');
    out += d.digits;
  } else if (dp >= nd) {
    out += d.digits;
    out.append(static_cast<std::size_t>(dp - nd), '0');
  } else {
    out.append(d.digits, 0, static_cast<std::size_t>(dp));
    out += '.';
    out.append(d.digits, static_cast<std::size_t>(dp));
  }
  return out;
}

bool is_f32(const value& v) {
  return std::string_view(v.base_type()) == "float32";
}

std::size_t rune_count(std::string_view s) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size();) {
    char32_t r = 0;
    i += decode_rune(s, i, r);
    ++n;
  }
  return n;
}

// One printf directive's flags (Go's fmt.fmtFlags plus width and precision).
struct fmt_flags {
  bool minus = false, plus = false, sharp = false, space = false, zero = false, plus_v = false, sharp_v = false;
  bool has_width = false, has_prec = false;
  int width = 0, prec = 0;
};

class printer {
 public:
  explicit printer(std::string& out) : out_(out) {}
  fmt_flags f;

  void arg(const value& v, char32_t verb, int depth);

 private:
  std::string& out_;

  // Past max_template_output the caller fails anyway: padding stops just beyond it.
  void padding(std::size_t n, char c) {
    if (out_.size() + n > max_template_output) {
      n = out_.size() > max_template_output ? 0 : max_template_output + 1 - out_.size();
    }
    out_.append(n, c);
  }
  void pad(std::string_view s) {
    if (!f.has_width || f.width <= 0) {
      out_ += s;
      return;
    }
    const std::size_t n = rune_count(s);
    const std::size_t w = static_cast<std::size_t>(f.width);
    if (n >= w) {
      out_ += s;
    } else if (f.minus) {
      out_ += s;
      padding(w - n, ' ');
    } else {
      padding(w - n, f.zero ? '0' : ' ');
      out_ += s;
    }
  }
  void bad_verb(char32_t verb, const value& v);
  void fmt_bool(bool b) { pad(b ? "true" : "false"); }
  void fmt_integer(std::int64_t i, bool is_unsigned, int base, char32_t verb);
  void fmt_float(double d, bool f32, char32_t verb);
  void alternate_float(std::string& num, char32_t verb) const;
  void fmt_string(const std::string& s, char32_t verb);
  std::string truncate(const std::string& s) const {
    if (!f.has_prec) {
      return s;
    }
    std::size_t i = 0;
    for (int n = 0; i < s.size() && n < f.prec; ++n) {
      char32_t r = 0;
      i += decode_rune(s, i, r);
    }
    return s.substr(0, i);
  }
};

void printer::bad_verb(char32_t verb, const value& v) {
  const fmt_flags saved = f;
  f = fmt_flags{};
  out_ += "%!";
  append_rune(out_, verb);
  out_ += '(';
  if (v.kind_of() == value::kind::none || (v.kind_of() == value::kind::nil && !v.is_pointer())) {
    out_ += "<nil>";
  } else {
    out_ += v.type_name();
    out_ += '=';
    arg(v, 'v', 0);
  }
  out_ += ')';
  f = saved;
}

void printer::fmt_integer(std::int64_t i, bool is_unsigned, int base, char32_t verb) {
  const bool negative = !is_unsigned && i < 0;
  std::uint64_t u = negative ? ~static_cast<std::uint64_t>(i) + 1 : static_cast<std::uint64_t>(i);
  int prec = 0;
  if (f.has_prec) {
    prec = f.prec;
    if (prec == 0 && u == 0) { // precision 0 and value 0 print nothing but the padding
      const bool zero = f.zero;
      f.zero = false;
      pad("");
      f.zero = zero;
      return;
    }
  } else if (f.zero && !f.minus && f.has_width) {
    prec = f.width;
    if (negative || f.plus || f.space) {
      --prec; // room for the sign
    }
  }
  const char* digits = verb == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string buf;
  do {
    buf += digits[u % static_cast<std::uint64_t>(base)];
    u /= static_cast<std::uint64_t>(base);
  } while (u != 0);
  while (static_cast<int>(buf.size()) < prec) {
    buf += '0';
  }
  if (f.sharp) {
    if (base == 2) {
      buf += "b0";
    } else if (base == 8 && buf.back() != '0') {
      buf += '0';
    } else if (base == 16) {
      buf += verb == 'X' ? "X0" : "x0";
    }
  }
  if (verb == 'O') {
    buf += "o0";
  }
  if (negative) {
    buf += '-';
  } else if (f.plus) {
    buf += '+';
  } else if (f.space) {
    buf += ' ';
  }
  std::string s(buf.rbegin(), buf.rend());
  const bool zero = f.zero;
  f.zero = false; // zero padding was done above, as precision
  pad(s);
  f.zero = zero;
}

// The # flag on a float: a decimal point always, and for %g %G %v %x the trailing zeros kept,
// up to the precision's count of significant digits (6 when none is given).
void printer::alternate_float(std::string& num, char32_t verb) const {
  int digits = 0;
  if (verb == 'v' || verb == 'g' || verb == 'G' || verb == 'x' || verb == 'X') {
    digits = f.has_prec ? f.prec : 6;
  }
  std::string tail; // the exponent, put back after the zeros
  bool point = false;
  bool nonzero = false;
  const std::size_t begin = !num.empty() && (num[0] == '-' || num[0] == '+') ? 1 : 0;
  for (std::size_t i = begin; i < num.size(); ++i) {
    const char c = num[i];
    const bool exponent = c == 'p' || c == 'P' || ((c == 'e' || c == 'E') && verb != 'x' && verb != 'X');
    if (exponent) {
      tail = num.substr(i);
      num.resize(i);
      break;
    }
    if (c == '.') {
      point = true;
      continue;
    }
    nonzero = nonzero || c != '0';
    if (nonzero) {
      --digits; // significant digits are counted from the first that is not 0
    }
  }
  if (!point) {
    if (num.size() == begin + 1 && num[begin] == '0') {
      --digits; // a lone 0 counts once
    }
    num += '.';
  }
  for (; digits > 0; --digits) {
    num += '0';
  }
  num += tail;
}

void printer::fmt_float(double d, bool f32, char32_t verb) {
  std::string num;
  if (std::isnan(d)) {
    num = "NaN";
  } else if (std::isinf(d)) {
    num = d > 0 ? "+Inf" : "-Inf";
  } else if ((verb == 'g' || verb == 'G') && !f.has_prec) {
    num = format_float(d, f32);
  } else {
    char buf[512];
    std::chars_format cf = std::chars_format::general;
    int prec = f.has_prec ? f.prec : 6;
    switch (verb) {
    case 'e':
    case 'E':
      cf = std::chars_format::scientific;
      break;
    case 'f':
    case 'F':
      cf = std::chars_format::fixed;
      break;
    case 'x':
    case 'X':
      cf = std::chars_format::hex;
      prec = f.has_prec ? f.prec : -1;
      break;
    default:
      break;
    }
    std::to_chars_result res{};
    if (prec < 0) {
      res = f32 ? std::to_chars(buf, buf + sizeof buf, static_cast<float>(d), cf)
                : std::to_chars(buf, buf + sizeof buf, d, cf);
    } else {
      res = f32 ? std::to_chars(buf, buf + sizeof buf, static_cast<float>(d), cf, prec)
                : std::to_chars(buf, buf + sizeof buf, d, cf, prec);
    }
    if (res.ec != std::errc()) {
      num = format_float(d, f32);
    } else {
      num.assign(buf, res.ptr);
    }
    if (cf == std::chars_format::hex) {
      // Go writes 0x1.8p+00: a prefix and at least two exponent digits.
      const bool neg = num[0] == '-';
      std::string hex = neg ? "-0x" : "0x";
      const std::size_t p = num.find('p');
      const std::size_t mant = neg ? 1 : 0;
      if (p != std::string::npos && num.size() - p == 3) {
        hex.append(num, mant, p + 2 - mant);
        hex += '0';
        hex += num.back();
      } else {
        hex.append(num, mant, std::string::npos);
      }
      num = std::move(hex);
    }
  }
  if (f.sharp && std::isfinite(d) && verb != 'b') {
    alternate_float(num, verb);
  }
  if ((verb == 'E' || verb == 'G' || verb == 'X') && std::isfinite(d)) {
    for (char& c : num) {
      if (c >= 'a' && c <= 'z') {
        c = static_cast<char>(c - 0x20);
      }
    }
  }
  if (num[0] != '-' && num[0] != '+') {
    num.insert(num.begin(), '+');
  }
  if (f.space && num[0] == '+' && !f.plus) {
    num[0] = ' ';
  }
  if (num[1] == 'I' || num[1] == 'N') { // infinities and NaN are never zero padded
    const bool zero = f.zero;
    f.zero = false;
    if (num[1] == 'N' && !f.space && !f.plus) {
      num.erase(0, 1);
    }
    pad(num);
    f.zero = zero;
    return;
  }
  if (f.plus || num[0] != '+') {
    if (f.zero && !f.minus && f.has_width && f.width > static_cast<int>(num.size())) {
      out_ += num[0];
      padding(static_cast<std::size_t>(f.width) - num.size(), '0');
      out_.append(num, 1);
      return;
    }
    pad(num);
    return;
  }
  pad(std::string_view(num).substr(1));
}

void printer::fmt_string(const std::string& s, char32_t verb) {
  switch (verb) {
  case 'v':
    if (f.sharp_v) { // Go syntax: the string quoted
      pad(go_quote(truncate(s)));
      return;
    }
    pad(truncate(s));
    return;
  case 's':
    pad(truncate(s));
    return;
  case 'q': {
    // %#q: backquoted when it can be; %+q: every non-ASCII rune escaped.
    const std::string t = truncate(s);
    pad(f.sharp && can_backquote(t) ? "`" + t + "`" : go_quote(t, f.plus));
    return;
  }
  case 'x':
  case 'X': {
    // % x puts a space between bytes; %#x a 0x before them (before each with the space flag).
    const char* digits = verb == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
    const char* prefix = verb == 'X' ? "0X" : "0x";
    std::string hex;
    // The precision counts bytes of the input here, not runes.
    const std::string t = f.has_prec && f.prec >= 0 && static_cast<std::size_t>(f.prec) < s.size()
                              ? s.substr(0, static_cast<std::size_t>(f.prec))
                              : s;
    for (std::size_t i = 0; i < t.size(); ++i) {
      if (f.space && i > 0) {
        hex += ' ';
      }
      if (f.sharp && (f.space || i == 0)) {
        hex += prefix;
      }
      const auto c = static_cast<unsigned char>(t[i]);
      hex += digits[c >> 4];
      hex += digits[c & 0xF];
    }
    pad(hex);
    return;
  }
  default:
    bad_verb(verb, value::string(s));
  }
}

void printer::arg(const value& v, char32_t verb, int depth) {
  using k = value::kind;
  if (out_.size() > max_template_output) {
    return; // the caller fails on the size: stop walking (a shared value may hold 2^40 leaves)
  }
  if (v.kind_of() == k::none || (v.kind_of() == k::nil && !v.is_pointer())) {
    if (depth > 0 || verb == 'v' || verb == 'T') {
      pad("<nil>");
    } else {
      bad_verb(verb, v);
    }
    return;
  }
  if (verb == 'T' && depth == 0) {
    pad(v.type_name());
    return;
  }
  if (v.is_pointer()) {
    if (v.kind_of() == k::nil) {
      if (verb == 'v') {
        pad("<nil>");
      } else {
        bad_verb(verb, v);
      }
      return;
    }
    arg(v.deref(), verb, depth); // Go prints an address here; vigil prints the value (section 2)
    return;
  }
  switch (v.kind_of()) {
  case k::boolean:
    if (verb == 't' || verb == 'v') {
      fmt_bool(v.as_bool());
    } else {
      bad_verb(verb, v);
    }
    return;
  case k::integer: {
    const std::string_view t = v.base_type();
    const bool is_unsigned = !t.empty() && t[0] == 'u';
    switch (verb) {
    case 'v':
    case 'd':
      fmt_integer(v.as_int(), is_unsigned, 10, verb);
      return;
    case 'b':
      fmt_integer(v.as_int(), is_unsigned, 2, verb);
      return;
    case 'o':
    case 'O':
      fmt_integer(v.as_int(), is_unsigned, 8, verb);
      return;
    case 'x':
    case 'X':
      fmt_integer(v.as_int(), is_unsigned, 16, verb);
      return;
    case 'c': {
      std::string s;
      const std::int64_t i = v.as_int();
      append_rune(s, i < 0 || i > 0x10FFFF ? 0xFFFD : static_cast<char32_t>(i));
      pad(s);
      return;
    }
    case 'q': {
      const std::int64_t i = v.as_int();
      pad(go_quote_rune(i < 0 || i > 0x10FFFF ? 0xFFFD : static_cast<char32_t>(i)));
      return;
    }
    case 'U': {
      char buf[32];
      const auto res = std::to_chars(buf, buf + sizeof buf, static_cast<std::uint64_t>(v.as_int()), 16);
      std::string hex(buf, res.ptr);
      for (char& c : hex) {
        if (c >= 'a' && c <= 'f') {
          c = static_cast<char>(c - 0x20);
        }
      }
      while (hex.size() < 4) {
        hex.insert(hex.begin(), '0');
      }
      pad("U+" + hex);
      return;
    }
    default:
      bad_verb(verb, v);
      return;
    }
  }
  case k::floating:
    switch (verb) {
    case 'v':
      fmt_float(v.as_float(), is_f32(v), 'g');
      return;
    case 'b':
    case 'g':
    case 'G':
    case 'x':
    case 'X':
    case 'e':
    case 'E':
    case 'f':
    case 'F':
      fmt_float(v.as_float(), is_f32(v), verb);
      return;
    default:
      bad_verb(verb, v);
      return;
    }
  case k::string:
    fmt_string(v.as_string(), verb);
    return;
  case k::list: {
    out_ += '[';
    bool first = true;
    for (const value& e : v.items()) {
      if (!first) {
        out_ += ' ';
      }
      first = false;
      arg(e, verb, depth + 1);
    }
    out_ += ']';
    return;
  }
  case k::map: {
    out_ += "map[";
    bool first = true;
    for (const auto& [key, e] : v.entries()) {
      if (!first) {
        out_ += ' ';
      }
      first = false;
      arg(value::string(key), verb, depth + 1);
      out_ += ':';
      arg(e, verb, depth + 1);
    }
    out_ += ']';
    return;
  }
  case k::object: {
    if (v.is_nil()) {
      if (verb == 'v' || depth > 0) {
        pad("<nil>");
      } else {
        bad_verb(verb, v);
      }
      return;
    }
    const object_type* t = v.object_kind();
    if (depth == 0 && !t->name.empty() && t->name[0] == '*') {
      out_ += '&';
    }
    out_ += '{';
    for (std::size_t i = 0; i < v.fields().size(); ++i) {
      if (i > 0) {
        out_ += ' ';
      }
      if (f.plus_v) {
        out_ += t->fields[i].name;
        out_ += ':';
      }
      arg(v.fields()[i], verb, depth + 1);
    }
    out_ += '}';
    return;
  }
  case k::time:
    if (verb == 'v' || verb == 's') {
      pad(time_string(v.as_time()));
    } else if (verb == 'q') {
      pad(go_quote(time_string(v.as_time())));
    } else {
      bad_verb(verb, v);
    }
    return;
  default:
    return;
  }
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
        out += static_cast<char>(c);
        continue;
      }
      switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default: // other control bytes and the HTML-sensitive < > &
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 0xF];
        break;
      }
      continue;
    }
    char32_t r = 0;
    const std::size_t w = decode_rune(s, i, r);
    if (w == 1 && r == 0xFFFD) {
      out += "\\ufffd"; // invalid UTF-8
    } else if (r == 0x2028 || r == 0x2029) {
      out += r == 0x2028 ? "\\u2028" : "\\u2029";
    } else {
      out.append(s, i, w);
    }
    i += w;
  }
  out += '"';
}

bool append_json_float(std::string& out, double d, bool f32) {
  if (std::isnan(d) || std::isinf(d)) {
    return false;
  }
  const double a = std::fabs(d);
  bool exponent = false;
  if (a != 0) {
    exponent = f32 ? (static_cast<float>(a) < 1e-6F || static_cast<float>(a) >= 1e21F) : (a < 1e-6 || a >= 1e21);
  }
  const decimal_digits dd = shortest_digits(d, f32);
  if (!exponent) {
    out += fixed_layout(dd);
    return true;
  }
  std::string s = dd.scientific;
  const std::size_t n = s.size();
  if (n >= 4 && s[n - 4] == 'e' && s[n - 3] == '-' && s[n - 2] == '0') { // e-07 -> e-7
    s.erase(n - 2, 1);
  }
  out += s;
  return true;
}

// encoding/json's isEmptyValue, for omitempty.
bool json_empty(const value& v) {
  using k = value::kind;
  if (v.is_pointer()) {
    return v.kind_of() == k::nil;
  }
  switch (v.kind_of()) {
  case k::none:
  case k::nil:
    return true;
  case k::boolean:
    return !v.as_bool();
  case k::integer:
    return v.as_int() == 0;
  case k::floating:
    return v.as_float() == 0;
  case k::string:
    return v.as_string().empty();
  case k::list:
    return v.items().empty();
  case k::map:
    return v.entries().empty();
  case k::object:
    return v.is_nil();
  case k::time:
    return false;
  }
  return false;
}

} // namespace

std::string format_float(double d, bool f32) {
  if (std::isnan(d)) {
    return "NaN";
  }
  if (std::isinf(d)) {
    return d > 0 ? "+Inf" : "-Inf";
  }
  const decimal_digits dd = shortest_digits(d, f32);
  if (dd.exp < -4 || dd.exp >= 6) {
    return dd.scientific;
  }
  return fixed_layout(dd);
}

void print_value(std::string& out, const value& v, int depth) {
  printer p(out);
  p.arg(v, 'v', depth);
}

void print_action(std::string& out, const value& v) {
  if (v.kind_of() == value::kind::none) {
    out += "<no value>";
    return;
  }
  // text/template dereferences a top-level pointer, so an object prints {…} rather than &{…}.
  print_value(out, v, v.kind_of() == value::kind::object ? 1 : 0);
}

std::string text_of(const value& v) {
  if (v.kind_of() == value::kind::string && !v.is_pointer()) {
    return v.as_string();
  }
  std::string out;
  print_value(out, v, 0);
  return out;
}

std::string sprint(std::span<const value> args, bool deref_objects) {
  std::string out;
  printer p(out);
  bool prev_string = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const bool is_string = args[i].kind_of() == value::kind::string && !args[i].is_pointer();
    if (i > 0 && !is_string && !prev_string) {
      out += ' '; // a space only between two operands that are not strings
    }
    p.arg(args[i], 'v', deref_objects && args[i].kind_of() == value::kind::object ? 1 : 0);
    prev_string = is_string;
  }
  return out;
}

std::string sprintln(std::span<const value> args) {
  std::string out;
  printer p(out);
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (i > 0) {
      out += ' ';
    }
    p.arg(args[i], 'v', 0);
  }
  out += '\n';
  return out;
}

std::string sprintf(std::string_view format, std::span<const value> args) {
  std::string out;
  printer p(out);
  std::size_t argn = 0;
  const std::size_t end = format.size();
  auto parse_num = [&](std::size_t& i, int& n) {
    bool any = false;
    n = 0;
    while (i < end && format[i] >= '0' && format[i] <= '9') {
      if (n < 1'000'000) {
        n = n * 10 + (format[i] - '0');
      }
      any = true;
      ++i;
    }
    return any;
  };
  auto int_arg = [&](int& n) {
    if (argn >= args.size()) {
      return false;
    }
    const value a = args[argn++].deref();
    if (a.kind_of() != value::kind::integer || a.as_int() > 1'000'000 || a.as_int() < -1'000'000) {
      return false;
    }
    n = static_cast<int>(a.as_int());
    return true;
  };
  for (std::size_t i = 0; i < end && out.size() <= max_template_output;) {
    const std::size_t start = i;
    while (i < end && format[i] != '%') {
      ++i;
    }
    out.append(format, start, i - start);
    if (i >= end) {
      break;
    }
    ++i; // the '%'
    p.f = fmt_flags{};
    for (; i < end; ++i) {
      const char c = format[i];
      if (c == '#') {
        p.f.sharp = true;
      } else if (c == '0') {
        p.f.zero = !p.f.minus;
      } else if (c == '+') {
        p.f.plus = true;
      } else if (c == '-') {
        p.f.minus = true;
        p.f.zero = false;
      } else if (c == ' ') {
        p.f.space = true;
      } else {
        break;
      }
    }
    if (i < end && format[i] == '*') {
      ++i;
      p.f.has_width = int_arg(p.f.width);
      if (!p.f.has_width) {
        out += "%!(BADWIDTH)";
      } else if (p.f.width < 0) {
        p.f.minus = true;
        p.f.zero = false;
        p.f.width = -p.f.width;
      }
    } else {
      p.f.has_width = parse_num(i, p.f.width);
    }
    if (i < end && format[i] == '.') {
      ++i;
      if (i < end && format[i] == '*') {
        ++i;
        p.f.has_prec = int_arg(p.f.prec);
        if (p.f.prec < 0) {
          p.f.has_prec = false;
        }
        if (!p.f.has_prec) {
          out += "%!(BADPREC)";
        }
      } else {
        parse_num(i, p.f.prec);
        p.f.has_prec = true;
      }
    }
    if (i >= end) {
      out += "%!(NOVERB)";
      break;
    }
    char32_t verb = 0;
    i += decode_rune(format, i, verb);
    if (verb == '%') {
      out += '%';
      continue;
    }
    if (argn >= args.size()) {
      out += "%!";
      append_rune(out, verb);
      out += "(MISSING)";
      continue;
    }
    if (verb == 'v' && p.f.plus) {
      p.f.plus = false;
      p.f.plus_v = true;
    }
    if (verb == 'v' && p.f.sharp) { // %#v is Go syntax, not the # flag of the value's own verb
      p.f.sharp = false;
      p.f.sharp_v = true;
    }
    p.arg(args[argn++], verb, 0);
  }
  if (argn < args.size()) {
    p.f = fmt_flags{};
    out += "%!(EXTRA ";
    for (std::size_t i = argn; i < args.size(); ++i) {
      if (i > argn) {
        out += ", ";
      }
      const value& a = args[i];
      if (a.kind_of() == value::kind::none || (a.kind_of() == value::kind::nil && !a.is_pointer())) {
        out += "<nil>";
      } else {
        out += a.type_name();
        out += '=';
        p.arg(a, 'v', 0);
      }
    }
    out += ')';
  }
  return out;
}

std::string check_printf_format(std::string_view format) {
  static constexpr std::string_view supported = "vsdqxXfFeEgGtcobUT%";
  for (std::size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      continue;
    }
    ++i;
    while (i < format.size() && std::string_view("#0+- ").find(format[i]) != std::string_view::npos) {
      ++i;
    }
    while (i < format.size() && ((format[i] >= '0' && format[i] <= '9') || format[i] == '*' || format[i] == '.')) {
      ++i;
    }
    if (i >= format.size()) {
      return {};
    }
    char32_t verb = 0;
    const std::size_t w = decode_rune(format, i, verb);
    if (verb >= 0x80 || supported.find(static_cast<char>(verb)) == std::string_view::npos) {
      std::string msg = "printf verb %";
      msg.append(format, i, w);
      msg += " not supported by vigil";
      return msg;
    }
    i += w - 1;
  }
  return {};
}

bool append_json(std::string& out, const value& v) {
  using k = value::kind;
  if (out.size() > max_template_output) {
    return true; // the caller fails on the size: stop walking (a shared value may hold 2^40 leaves)
  }
  if (v.is_pointer()) {
    if (v.kind_of() == k::nil) {
      out += "null";
      return true;
    }
    return append_json(out, v.deref());
  }
  switch (v.kind_of()) {
  case k::none:
  case k::nil:
    out += "null";
    return true;
  case k::boolean:
    out += v.as_bool() ? "true" : "false";
    return true;
  case k::integer:
    if (!std::string_view(v.base_type()).empty() && v.base_type()[0] == 'u') {
      out += std::to_string(static_cast<std::uint64_t>(v.as_int()));
    } else {
      out += std::to_string(v.as_int());
    }
    return true;
  case k::floating:
    return append_json_float(out, v.as_float(), is_f32(v));
  case k::string:
    append_json_string(out, v.as_string());
    return true;
  case k::list: {
    if (v.is_nil()) {
      out += "null";
      return true;
    }
    out += '[';
    bool first = true;
    for (const value& e : v.items()) {
      if (!first) {
        out += ',';
      }
      first = false;
      if (!append_json(out, e)) {
        return false;
      }
    }
    out += ']';
    return true;
  }
  case k::map: {
    if (v.is_nil()) {
      out += "null";
      return true;
    }
    out += '{';
    bool first = true;
    for (const auto& [key, e] : v.entries()) {
      if (!first) {
        out += ',';
      }
      first = false;
      append_json_string(out, key);
      out += ':';
      if (!append_json(out, e)) {
        return false;
      }
    }
    out += '}';
    return true;
  }
  case k::object: {
    if (v.is_nil()) {
      out += "null";
      return true;
    }
    const object_type* t = v.object_kind();
    out += '{';
    bool first = true;
    for (std::size_t i = 0; i < t->fields.size(); ++i) {
      const field_info& fi = t->fields[i];
      const value& e = v.fields()[i];
      if (fi.json.empty() || (fi.omitempty && json_empty(e))) {
        continue;
      }
      if (!first) {
        out += ',';
      }
      first = false;
      append_json_string(out, fi.json);
      out += ':';
      if (!append_json(out, e)) {
        return false;
      }
    }
    out += '}';
    return true;
  }
  case k::time:
    append_json_string(out, format_time(v.as_time(), "2006-01-02T15:04:05.999999999Z07:00"));
    return true;
  }
  return false;
}

} // namespace vigil::rules::tmpl::detail

namespace vigil::rules::tmpl {

void append_go_json_string(std::string& out, std::string_view s) { detail::append_json_string(out, s); }

} // namespace vigil::rules::tmpl
