// The functions a notification template can call (section 8): Go's text/template built-ins,
// the sprig subset vigil implements, and CrowdSec's four helpers. Each one keeps the semantics
// (argument order, nil handling, error text) of the Go function it stands for.
#include <charconv>
#include <climits>
#include <cstdlib>
#include <string>
#include <vector>

#include <unistd.h>

#include "rules/template/internal.h"
#include "rules/template/template.h"

namespace vigil::rules::tmpl::detail {
namespace {

using k = value::kind;
constexpr const char* nil_deref = "runtime error: invalid memory address or nil pointer dereference";

// reflect.Value arguments see an untyped nil as an invalid value (indirectInterface).
bool invalid(const value& v) {
  return v.kind_of() == k::none || (v.kind_of() == k::nil && !v.is_pointer());
}

bool is_untyped_nil(const value& v) {
  return v.kind_of() == k::nil && !v.is_pointer();
}

// reflect.Kind.String() of a value's dynamic type, for sprig's messages.
std::string kind_name(const value& v) {
  if (v.is_pointer()) {
    return "ptr";
  }
  switch (v.kind_of()) {
  case k::boolean:
    return "bool";
  case k::integer:
  case k::floating:
    return v.base_type();
  case k::string:
    return "string";
  case k::list:
    return "slice";
  case k::map:
    return "map";
  case k::object:
    return !v.object_kind()->name.empty() && v.object_kind()->name[0] == '*' ? "ptr" : "struct";
  case k::time:
    return "struct";
  default:
    return "invalid";
  }
}

value str(std::string s) {
  return value::string(std::move(s));
}

// ---- Go built-ins ------------------------------------------------------------------------

bool fn_and(std::span<value> args, value& result, std::string&) {
  for (const value& a : args) {
    result = a;
    if (!a.truth()) {
      return true;
    }
  }
  return true;
}

bool fn_or(std::span<value> args, value& result, std::string&) {
  for (const value& a : args) {
    result = a;
    if (a.truth()) {
      return true;
    }
  }
  return true;
}

bool fn_not(std::span<value> args, value& result, std::string&) {
  result = value::boolean(!args[0].truth());
  return true;
}

bool fn_len(std::span<value> args, value& result, std::string& error) {
  const value& v = args[0];
  if (v.kind_of() == k::none) {
    error = "reflect: call of reflect.Value.Type on zero Value";
    return false;
  }
  if (v.kind_of() == k::nil || (v.kind_of() == k::object && v.is_nil())) {
    error = "len of nil pointer";
    return false;
  }
  switch (v.kind_of()) {
  case k::string:
    result = value::integer(static_cast<std::int64_t>(v.as_string().size()));
    return true;
  case k::list:
    result = value::integer(static_cast<std::int64_t>(v.items().size()));
    return true;
  case k::map:
    result = value::integer(static_cast<std::int64_t>(v.entries().size()));
    return true;
  default: {
    std::string t = v.is_pointer() ? v.base_type() : v.type_name(); // Go reports the type behind the pointer
    if (v.kind_of() == k::object && !t.empty() && t[0] == '*') {
      t.erase(0, 1);
    }
    error = "len of type " + t;
    return false;
  }
  }
}

bool fn_index(std::span<value> args, value& result, std::string& error) {
  value item = args[0];
  if (invalid(item)) {
    error = "index of untyped nil";
    return false;
  }
  for (std::size_t n = 1; n < args.size(); ++n) {
    value index = is_untyped_nil(args[n]) ? value{} : args[n];
    if (item.is_nil() && item.kind_of() != k::list && item.kind_of() != k::map) {
      error = "index of nil pointer";
      return false;
    }
    if (item.is_pointer()) {
      item = item.deref();
    }
    switch (item.kind_of()) {
    case k::list:
    case k::string: {
      const std::size_t len = item.kind_of() == k::list ? item.items().size() : item.as_string().size();
      if (index.kind_of() == k::none) {
        error = "cannot index slice/array with nil";
        return false;
      }
      if (index.kind_of() != k::integer || index.is_pointer()) {
        error = "cannot index slice/array with type " + index.type_name();
        return false;
      }
      const std::int64_t x = index.as_int();
      if (x < 0 || static_cast<std::uint64_t>(x) > len) {
        error = "index out of range: " + std::to_string(x);
        return false;
      }
      if (static_cast<std::size_t>(x) == len) { // Go checks x > len, then reflect panics on x == len
        error = item.kind_of() == k::list ? "reflect: slice index out of range" : "reflect: string index out of range";
        return false;
      }
      if (item.kind_of() == k::list) {
        item = value(item.items()[static_cast<std::size_t>(x)]);
      } else {
        item = value::integer(static_cast<unsigned char>(item.as_string()[static_cast<std::size_t>(x)]), "uint8");
      }
      break;
    }
    case k::map: {
      if (index.kind_of() == k::none) {
        error = "value is nil; should be of type string";
        return false;
      }
      if (index.kind_of() != k::string || index.is_pointer()) {
        error = "value has type " + index.type_name() + "; should be string";
        return false;
      }
      const auto& m = item.entries();
      const auto it = m.find(index.as_string());
      if (it != m.end()) {
        item = it->second;
      } else {
        // The zero value of the element type.
        const std::string_view t = item.base_type();
        item = t == "map[string]string" ? value::string("") : t == "map[string]int" ? value::integer(0) : value::nil();
      }
      break;
    }
    default:
      error = "can't index item of type " + item.type_name();
      return false;
    }
  }
  result = item;
  return true;
}

bool fn_print(std::span<value> args, value& result, std::string&) {
  result = str(sprint(args));
  return true;
}

bool fn_println(std::span<value> args, value& result, std::string&) {
  result = str(sprintln(args));
  return true;
}

bool fn_printf(std::span<value> args, value& result, std::string&) {
  result = str(sprintf(args[0].as_string(), args.subspan(1)));
  return true;
}

// text/template's evalArgs: the arguments as text, pointers dereferenced, nil as "<no value>".
std::string eval_args(std::span<value> args) {
  if (args.size() == 1 && args[0].kind_of() == k::string && !args[0].is_pointer()) {
    return args[0].as_string();
  }
  std::vector<value> conv;
  conv.reserve(args.size());
  for (const value& a : args) {
    if (invalid(a)) {
      conv.push_back(str("<no value>"));
    } else if (a.is_pointer() && a.kind_of() != k::nil) {
      conv.push_back(a.deref());
    } else {
      conv.push_back(a);
    }
  }
  return sprint(conv, true);
}

std::string html_escape(std::string_view s, bool nul_to_replacement) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    switch (c) {
    case '\0':
      out += nul_to_replacement ? std::string_view("\xEF\xBF\xBD") : std::string_view("\0", 1);
      break;
    case '"':
      out += "&#34;";
      break;
    case '\'':
      out += "&#39;";
      break;
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    default:
      out += c;
    }
  }
  return out;
}

bool fn_html(std::span<value> args, value& result, std::string&) {
  result = str(html_escape(eval_args(args), true));
  return true;
}

bool fn_js(std::span<value> args, value& result, std::string&) {
  static constexpr char hex[] = "0123456789ABCDEF";
  const std::string s = eval_args(args);
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\'':
        out += "\\'";
        break;
      case '"':
        out += "\\\"";
        break;
      case '<':
        out += "\\u003C";
        break;
      case '>':
        out += "\\u003E";
        break;
      case '&':
        out += "\\u0026";
        break;
      case '=':
        out += "\\u003D";
        break;
      default:
        if (c < ' ') {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xF];
        } else {
          out += static_cast<char>(c);
        }
      }
      continue;
    }
    char32_t r = 0;
    const std::size_t w = decode_rune(s, i, r);
    if (is_print(r)) {
      out.append(s, i, w);
    } else {
      char buf[16];
      const auto res = std::to_chars(buf, buf + sizeof buf, static_cast<std::uint32_t>(r), 16);
      std::string h(buf, res.ptr);
      for (char& ch : h) {
        ch = (ch >= 'a' && ch <= 'f') ? static_cast<char>(ch - 0x20) : ch;
      }
      while (h.size() < 4) {
        h.insert(h.begin(), '0');
      }
      out += "\\u" + h;
    }
    i += w;
  }
  result = str(std::move(out));
  return true;
}

bool fn_urlquery(std::span<value> args, value& result, std::string&) {
  static constexpr char hex[] = "0123456789ABCDEF";
  const std::string s = eval_args(args);
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~') {
      out += ch;
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xF];
    }
  }
  result = str(std::move(out));
  return true;
}

enum class basic : std::uint8_t { invalid, boolean, integer, unsigned_, floating, string };

basic basic_kind(const value& v) {
  if (v.is_pointer()) {
    return basic::invalid;
  }
  switch (v.kind_of()) {
  case k::boolean:
    return basic::boolean;
  case k::integer:
    return v.base_type()[0] == 'u' ? basic::unsigned_ : basic::integer;
  case k::floating:
    return basic::floating;
  case k::string:
    return basic::string;
  default:
    return basic::invalid;
  }
}

constexpr const char* bad_comparison = "incompatible types for comparison";
constexpr const char* bad_comparison_type = "invalid type for comparison";

// Go's eq for one pair; false with `error` set when the pair cannot be compared.
bool equal(const value& a, const value& b, bool& truth, std::string& error) {
  const basic k1 = basic_kind(a);
  const basic k2 = basic_kind(b);
  truth = false;
  if (k1 != k2) {
    if (k1 == basic::integer && k2 == basic::unsigned_) {
      truth = a.as_int() >= 0 && a.as_int() == b.as_int();
    } else if (k1 == basic::unsigned_ && k2 == basic::integer) {
      truth = b.as_int() >= 0 && a.as_int() == b.as_int();
    } else if (!invalid(a) && !invalid(b)) {
      error = bad_comparison;
      return false;
    }
    return true;
  }
  switch (k1) {
  case basic::boolean:
    truth = a.as_bool() == b.as_bool();
    return true;
  case basic::integer:
  case basic::unsigned_:
    truth = a.as_int() == b.as_int();
    return true;
  case basic::floating:
    truth = a.as_float() == b.as_float();
    return true;
  case basic::string:
    truth = a.as_string() == b.as_string();
    return true;
  case basic::invalid:
    break;
  }
  // Neither is a basic kind: nils compare by nil-ness; lists and maps are not comparable.
  const bool nil_a = invalid(a) || a.is_nil();
  const bool nil_b = invalid(b) || b.is_nil();
  if (nil_a || nil_b) {
    truth = nil_a == nil_b;
    return true;
  }
  if (b.kind_of() == k::list || b.kind_of() == k::map || a.kind_of() == k::list || a.kind_of() == k::map) {
    const value& bad = (b.kind_of() == k::list || b.kind_of() == k::map) ? b : a;
    error = "non-comparable type " + text_of(bad) + ": " + bad.type_name();
    return false;
  }
  if (a.type_name() != b.type_name()) {
    error = bad_comparison;
    return false;
  }
  if (a.kind_of() == k::object) {
    truth = &a.fields() == &b.fields(); // pointer identity
  } else if (a.kind_of() == k::time) {
    const time_value& x = a.as_time();
    const time_value& y = b.as_time();
    truth = x.unix == y.unix && x.nanos == y.nanos && x.offset == y.offset && x.zone == y.zone;
  } else { // two set pointers to scalars: vigil compares what they point to
    return equal(a.deref(), b.deref(), truth, error);
  }
  return true;
}

bool fn_eq(std::span<value> args, value& result, std::string& error) {
  if (args.size() < 2) {
    error = "missing argument for comparison";
    return false;
  }
  for (std::size_t i = 1; i < args.size(); ++i) {
    bool truth = false;
    if (!equal(args[0], args[i], truth, error)) {
      return false;
    }
    if (truth) {
      result = value::boolean(true);
      return true;
    }
  }
  result = value::boolean(false);
  return true;
}

bool fn_ne(std::span<value> args, value& result, std::string& error) {
  bool truth = false;
  if (!equal(args[0], args[1], truth, error)) {
    return false;
  }
  result = value::boolean(!truth);
  return true;
}

bool less(const value& a, const value& b, bool& truth, std::string& error) {
  const basic k1 = basic_kind(a);
  const basic k2 = basic_kind(b);
  if (k1 == basic::invalid || k2 == basic::invalid) {
    error = bad_comparison_type;
    return false;
  }
  truth = false;
  if (k1 != k2) {
    if (k1 == basic::integer && k2 == basic::unsigned_) {
      truth = a.as_int() < 0 || static_cast<std::uint64_t>(a.as_int()) < static_cast<std::uint64_t>(b.as_int());
    } else if (k1 == basic::unsigned_ && k2 == basic::integer) {
      truth = b.as_int() >= 0 && static_cast<std::uint64_t>(a.as_int()) < static_cast<std::uint64_t>(b.as_int());
    } else {
      error = bad_comparison;
      return false;
    }
    return true;
  }
  switch (k1) {
  case basic::boolean:
    error = bad_comparison_type;
    return false;
  case basic::integer:
    truth = a.as_int() < b.as_int();
    return true;
  case basic::unsigned_:
    truth = static_cast<std::uint64_t>(a.as_int()) < static_cast<std::uint64_t>(b.as_int());
    return true;
  case basic::floating:
    truth = a.as_float() < b.as_float();
    return true;
  case basic::string:
    truth = a.as_string() < b.as_string();
    return true;
  default:
    return true;
  }
}

bool fn_lt(std::span<value> args, value& result, std::string& error) {
  bool lt = false;
  if (!less(args[0], args[1], lt, error)) {
    return false;
  }
  result = value::boolean(lt);
  return true;
}

bool fn_le(std::span<value> args, value& result, std::string& error) {
  bool lt = false;
  bool eq = false;
  if (!less(args[0], args[1], lt, error) || (!lt && !equal(args[0], args[1], eq, error))) {
    return false;
  }
  result = value::boolean(lt || eq);
  return true;
}

bool fn_gt(std::span<value> args, value& result, std::string& error) {
  if (!fn_le(args, result, error)) {
    return false;
  }
  result = value::boolean(!result.as_bool());
  return true;
}

bool fn_ge(std::span<value> args, value& result, std::string& error) {
  if (!fn_lt(args, result, error)) {
    return false;
  }
  result = value::boolean(!result.as_bool());
  return true;
}

// ---- sprig -------------------------------------------------------------------------------

bool fn_to_json(std::span<value> args, value& result, std::string&) {
  std::string out;
  result = str(append_json(out, args[0]) ? std::move(out) : std::string());
  return true;
}

bool fn_join(std::span<value> args, value& result, std::string&) {
  const std::string& sep = args[0].as_string();
  const value& v = args[1];
  std::string out;
  if (v.kind_of() == k::list && !v.is_pointer()) {
    bool first = true;
    for (const value& e : v.items()) {
      if (out.size() > max_template_output) {
        break; // the caller fails on the size; each element may be 16 MiB on its own
      }
      if (invalid(e)) {
        continue; // sprig's strslice drops nil elements
      }
      if (!first) {
        out += sep;
      }
      first = false;
      out += text_of(e);
    }
  } else if (!invalid(v)) {
    out = text_of(v);
  }
  result = str(std::move(out));
  return true;
}

template <char32_t (*map)(char32_t) noexcept>
std::string map_runes(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    char32_t r = 0;
    i += decode_rune(s, i, r);
    append_rune(out, map(r));
  }
  return out;
}

bool fn_upper(std::span<value> args, value& result, std::string&) {
  result = str(map_runes<to_upper>(args[0].as_string()));
  return true;
}

bool fn_lower(std::span<value> args, value& result, std::string&) {
  result = str(map_runes<to_lower>(args[0].as_string()));
  return true;
}

// strings.Title: upper-case every rune that follows a separator.
bool fn_title(std::span<value> args, value& result, std::string&) {
  const std::string& s = args[0].as_string();
  std::string out;
  char32_t prev = ' ';
  for (std::size_t i = 0; i < s.size();) {
    char32_t r = 0;
    i += decode_rune(s, i, r);
    bool separator = false;
    if (prev < 0x80) {
      separator = !(is_letter_or_digit(prev) || prev == '_');
    } else {
      separator = !is_letter_or_digit(prev) && is_space(prev);
    }
    append_rune(out, separator ? to_title(r) : r);
    prev = r;
  }
  result = str(std::move(out));
  return true;
}

// Trims runes matching `pred` from both ends.
template <typename Pred>
std::string trim_runes(std::string_view s, Pred pred) {
  std::size_t start = 0;
  while (start < s.size()) {
    char32_t r = 0;
    const std::size_t w = decode_rune(s, start, r);
    if (!pred(r)) {
      break;
    }
    start += w;
  }
  std::size_t end = s.size();
  while (end > start) {
    std::size_t b = end - 1; // find the start of the last rune
    while (b > start && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80 && end - b < 4) {
      --b;
    }
    char32_t r = 0;
    const std::size_t w = decode_rune(s, b, r);
    if (b + w != end) { // not a valid sequence ending here: the last byte alone
      b = end - 1;
      r = 0xFFFD;
    }
    if (!pred(r)) {
      break;
    }
    end = b;
  }
  return std::string(s.substr(start, end - start));
}

bool fn_trim(std::span<value> args, value& result, std::string&) {
  result = str(trim_runes(args[0].as_string(), [](char32_t r) { return is_space(r); }));
  return true;
}

bool fn_trim_all(std::span<value> args, value& result, std::string&) {
  const std::string& cutset = args[0].as_string();
  std::vector<char32_t> set;
  for (std::size_t i = 0; i < cutset.size();) {
    char32_t r = 0;
    i += decode_rune(cutset, i, r);
    set.push_back(r);
  }
  result = str(trim_runes(args[1].as_string(), [&set](char32_t r) {
    for (const char32_t c : set) {
      if (c == r) {
        return true;
      }
    }
    return false;
  }));
  return true;
}

bool fn_trim_prefix(std::span<value> args, value& result, std::string&) {
  const std::string& pre = args[0].as_string();
  const std::string& s = args[1].as_string();
  result = str(s.starts_with(pre) ? s.substr(pre.size()) : s);
  return true;
}

bool fn_trim_suffix(std::span<value> args, value& result, std::string&) {
  const std::string& suf = args[0].as_string();
  const std::string& s = args[1].as_string();
  result = str(s.ends_with(suf) ? s.substr(0, s.size() - suf.size()) : s);
  return true;
}

bool fn_replace(std::span<value> args, value& result, std::string&) {
  const std::string& old_s = args[0].as_string();
  const std::string& new_s = args[1].as_string();
  const std::string& s = args[2].as_string();
  std::string out;
  if (old_s.empty()) { // Go inserts `new` before every rune and at the end
    for (std::size_t i = 0; i < s.size() && out.size() <= max_template_output;) {
      char32_t r = 0;
      const std::size_t w = decode_rune(s, i, r);
      out += new_s;
      out.append(s, i, w);
      i += w;
    }
    out += new_s;
  } else {
    std::size_t pos = 0;
    for (std::size_t hit; out.size() <= max_template_output && (hit = s.find(old_s, pos)) != std::string::npos;
         pos = hit + old_s.size()) {
      out.append(s, pos, hit - pos);
      out += new_s;
    }
    out.append(s, pos);
  }
  result = str(std::move(out));
  return true;
}

bool fn_contains(std::span<value> args, value& result, std::string&) {
  result = value::boolean(args[1].as_string().find(args[0].as_string()) != std::string::npos);
  return true;
}

bool fn_has_prefix(std::span<value> args, value& result, std::string&) {
  result = value::boolean(args[1].as_string().starts_with(args[0].as_string()));
  return true;
}

bool fn_has_suffix(std::span<value> args, value& result, std::string&) {
  result = value::boolean(args[1].as_string().ends_with(args[0].as_string()));
  return true;
}

bool fn_default(std::span<value> args, value& result, std::string&) {
  result = args.size() < 2 || !args[1].truth() ? args[0] : args[1];
  return true;
}

bool fn_empty(std::span<value> args, value& result, std::string&) {
  result = value::boolean(!args[0].truth());
  return true;
}

bool fn_coalesce(std::span<value> args, value& result, std::string&) {
  for (const value& a : args) {
    if (a.truth()) {
      result = a;
      return true;
    }
  }
  result = value::nil();
  return true;
}

bool fn_ternary(std::span<value> args, value& result, std::string&) {
  result = args[2].as_bool() ? args[0] : args[1];
  return true;
}

bool fn_list(std::span<value> args, value& result, std::string&) {
  result = value::list(value::list_type(args.begin(), args.end()));
  return true;
}

bool fn_dict(std::span<value> args, value& result, std::string& error) {
  value::map_type m;
  std::size_t key_bytes = 0;
  for (std::size_t i = 0; i < args.size(); i += 2) {
    std::string key = text_of(args[i]);
    key_bytes += key.size();
    if (key_bytes > max_template_output) {
      error = "keys larger than " + std::to_string(max_template_output >> 20) + " MiB";
      return false;
    }
    m[std::move(key)] = i + 1 < args.size() ? args[i + 1] : str("");
  }
  result = value::map(std::move(m));
  return true;
}

bool first_or_last(const value& v, bool first, value& result, std::string& error) {
  if (is_untyped_nil(v)) {
    error = nil_deref; // reflect.TypeOf(nil).Kind()
    return false;
  }
  if (v.kind_of() != k::list || v.is_pointer()) {
    error = std::string("Cannot find ") + (first ? "first" : "last") + " on type " + kind_name(v);
    return false;
  }
  const auto& items = v.items();
  result = items.empty() ? value::nil() : (first ? items.front() : items.back());
  return true;
}

bool fn_first(std::span<value> args, value& result, std::string& error) {
  return first_or_last(args[0], true, result, error);
}

bool fn_last(std::span<value> args, value& result, std::string& error) {
  return first_or_last(args[0], false, result, error);
}

// Each non-nil argument as text, wrapped by `wrap`, joined by spaces (sprig's quote / squote).
template <class Wrap>
value join_wrapped(std::span<value> args, Wrap wrap) {
  std::string out;
  bool first = true;
  for (const value& a : args) {
    if (out.size() > max_template_output) {
      break; // the caller fails on the size; each argument may be 16 MiB on its own
    }
    if (is_untyped_nil(a)) {
      continue;
    }
    if (!first) {
      out += ' ';
    }
    first = false;
    out += wrap(text_of(a));
  }
  return str(std::move(out));
}

bool fn_quote(std::span<value> args, value& result, std::string&) {
  result = join_wrapped(args, [](const std::string& t) { return go_quote(t); });
  return true;
}

bool fn_squote(std::span<value> args, value& result, std::string&) {
  result = join_wrapped(args, [](const std::string& t) { return '\'' + t + '\''; });
  return true;
}

bool fn_to_string(std::span<value> args, value& result, std::string&) {
  result = str(text_of(args[0]));
  return true;
}

bool fn_split_list(std::span<value> args, value& result, std::string&) {
  const std::string& sep = args[0].as_string();
  const std::string& s = args[1].as_string();
  value::list_type parts;
  if (sep.empty()) { // one element per rune
    for (std::size_t i = 0; i < s.size();) {
      char32_t r = 0;
      const std::size_t w = decode_rune(s, i, r);
      parts.push_back(str(s.substr(i, w)));
      i += w;
    }
  } else {
    std::size_t pos = 0;
    for (std::size_t hit; (hit = s.find(sep, pos)) != std::string::npos; pos = hit + sep.size()) {
      parts.push_back(str(s.substr(pos, hit - pos)));
    }
    parts.push_back(str(s.substr(pos)));
  }
  result = value::list(std::move(parts), "[]string");
  return true;
}

// spf13/cast's ToInt, which sprig uses for indices: numbers, numeric strings, bools; else 0.
std::int64_t to_int(const value& a) {
  const value v = a.deref();
  switch (v.kind_of()) {
  case k::integer:
    return v.as_int();
  case k::floating:
    return static_cast<std::int64_t>(v.as_float());
  case k::boolean:
    return v.as_bool() ? 1 : 0;
  case k::string: {
    std::string_view s = v.as_string();
    bool neg = false;
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
      neg = s[0] == '-';
      s.remove_prefix(1);
    }
    int base = 10;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
      base = 16;
      s.remove_prefix(2);
    }
    std::int64_t n = 0;
    const auto res = std::from_chars(s.data(), s.data() + s.size(), n, base);
    if (res.ec != std::errc() || res.ptr != s.data() + s.size()) {
      return 0;
    }
    return neg ? -n : n;
  }
  default:
    return 0;
  }
}

bool fn_slice(std::span<value> args, value& result, std::string& error) {
  const value& l = args[0];
  if (is_untyped_nil(l)) {
    error = nil_deref;
    return false;
  }
  if (l.kind_of() != k::list || l.is_pointer()) {
    error = "list should be type of slice or array but " + kind_name(l);
    return false;
  }
  const auto& items = l.items();
  if (items.empty()) {
    result = value::nil();
    return true;
  }
  const std::int64_t len = static_cast<std::int64_t>(items.size());
  const std::int64_t start = args.size() > 1 ? to_int(args[1]) : 0;
  const std::int64_t end = args.size() > 2 ? to_int(args[2]) : len;
  if (start < 0 || end < start || end > len) {
    error = "reflect.Value.Slice: slice index out of bounds";
    return false;
  }
  result = value::list(value::list_type(items.begin() + start, items.begin() + end), l.base_type());
  return true;
}

bool fn_now(std::span<value>, value& result, std::string&) {
  result = value::time(time_now());
  return true;
}

// sprig's dateInZone: a time, or Unix seconds as an int; anything else means "now".
bool fn_date_in_zone(std::span<value> args, value& result, std::string&) {
  const value& d = args[1];
  time_value t;
  const std::string_view type = d.base_type();
  if (d.kind_of() == k::time && !d.is_pointer()) {
    t = d.as_time();
  } else if (d.kind_of() == k::integer && !d.is_pointer() && (type == "int" || type == "int64" || type == "int32")) {
    t = time_in_utc(d.as_int(), 0);
  } else {
    t = time_now();
  }
  const std::string_view zone = args.size() > 2 ? std::string_view(args[2].as_string()) : "Local";
  result = str(format_time(time_in_zone(t, zone), args[0].as_string()));
  return true;
}

bool fn_to_date(std::span<value> args, value& result, std::string&) {
  time_value t;
  if (!parse_time(args[0].as_string(), args[1].as_string(), t)) {
    t = time_in_utc(zero_time_unix, 0); // sprig ignores the error: the zero time
  }
  result = value::time(std::move(t));
  return true;
}

bool fn_env(std::span<value> args, value& result, std::string&) {
  const char* v = std::getenv(args[0].as_string().c_str());
  result = str(v != nullptr ? v : "");
  return true;
}

// ---- CrowdSec helpers --------------------------------------------------------------------

bool fn_get_meta(std::span<value> args, value& result, std::string& error) {
  const value& alert = args[0];
  if (alert.is_nil()) {
    error = nil_deref;
    return false;
  }
  const std::string& key = args[1].as_string();
  value::list_type found;
  for (const value& event : alert.field("Events").items()) {
    for (const value& item : event.field("Meta").items()) {
      if (item.field("Key").as_string() == key) {
        found.push_back(str(item.field("Value").as_string()));
      }
    }
  }
  result = found.empty() ? value::nil_list("[]string") : value::list(std::move(found), "[]string");
  return true;
}

bool fn_hostname(std::span<value>, value& result, std::string& error) {
  char buf[HOST_NAME_MAX + 1] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) {
    error = "hostname: cannot get the host name";
    return false;
  }
  result = str(buf);
  return true;
}

bool fn_html_escape(std::span<value> args, value& result, std::string&) {
  result = str(html_escape(args[0].as_string(), false));
  return true;
}

bool cti_zero_list(const value&, std::span<const value>, value& result, std::string&) {
  result = value::nil_list("[]string");
  return true;
}
bool cti_zero_int(const value&, std::span<const value>, value& result, std::string&) {
  result = value::integer(0);
  return true;
}
bool cti_false(const value&, std::span<const value>, value& result, std::string&) {
  result = value::boolean(false);
  return true;
}
bool cti_zero_score(const value&, std::span<const value>, value& result, std::string&) {
  result = value::floating(0, "float32");
  return true;
}

// The empty *cticlient.SmokeItem CrowdSec's CrowdsecCTI returns when the lookup fails.
value empty_smoke_item() {
  static const auto score = object_type::make("cticlient.CTIScore", {{"Aggressiveness", "aggressiveness", false},
                                                                     {"Threat", "threat", false},
                                                                     {"Trust", "trust", false},
                                                                     {"Anomaly", "anomaly", false},
                                                                     {"Total", "total", false}});
  static const auto scores = object_type::make("cticlient.CTIScores", {{"Overall", "overall", false},
                                                                       {"LastDay", "last_day", false},
                                                                       {"LastWeek", "last_week", false},
                                                                       {"LastMonth", "last_month", false}});
  static const auto location = object_type::make("cticlient.CTILocationInfo", {{"Country", "country", false},
                                                                               {"City", "city", false},
                                                                               {"Latitude", "latitude", false},
                                                                               {"Longitude", "longitude", false}});
  static const auto history = object_type::make("cticlient.CTIHistory", {{"FirstSeen", "first_seen", false},
                                                                         {"LastSeen", "last_seen", false},
                                                                         {"FullAge", "full_age", false},
                                                                         {"DaysAge", "days_age", false}});
  static const auto classifications =
      object_type::make("cticlient.CTIClassifications",
                        {{"FalsePositives", "false_positives", false}, {"Classifications", "classifications", false}});
  static const auto item = object_type::make("*cticlient.SmokeItem",
                                             {{"IpRangeScore", "ip_range_score", false},
                                              {"Ip", "ip", false},
                                              {"IpRange", "ip_range", false},
                                              {"AsName", "as_name", false},
                                              {"AsNum", "as_num", false},
                                              {"Location", "location", false},
                                              {"ReverseDNS", "reverse_dns", false},
                                              {"Behaviors", "behaviors", false},
                                              {"History", "history", false},
                                              {"Classifications", "classifications", false},
                                              {"AttackDetails", "attack_details", false},
                                              {"TargetCountries", "target_countries", false},
                                              {"BackgroundNoiseScore", "background_noise_score", false},
                                              {"Scores", "scores", false},
                                              {"References", "references", false},
                                              {"IsOk", "", false}},
                                             {{"GetAttackDetails", {}, cti_zero_list},
                                              {"GetBackgroundNoiseScore", {}, cti_zero_int},
                                              {"GetBehaviors", {}, cti_zero_list},
                                              {"GetClassifications", {}, cti_zero_list},
                                              {"GetFalsePositives", {}, cti_zero_list},
                                              {"GetMaliciousnessScore", {}, cti_zero_score},
                                              {"IsFalsePositive", {}, cti_false},
                                              {"IsPartOfCommunityBlocklist", {}, cti_false}});
  const value zero = value::integer(0);
  const value one_score = value::object(score, {zero, zero, zero, zero, zero});
  return value::object(item, {zero, str(""), value::unset("string"), value::unset("string"), value::unset("int"),
                              value::object(location, {value::unset("string"), value::unset("string"),
                                                       value::unset("float64"), value::unset("float64")}),
                              value::unset("string"), value::nil_list("[]*cticlient.CTIBehavior"),
                              value::object(history, {value::unset("string"), value::unset("string"), zero, zero}),
                              value::object(classifications, {value::nil_list("[]cticlient.CTIClassification"),
                                                              value::nil_list("[]cticlient.CTIClassification")}),
                              value::nil_list("[]*cticlient.CTIAttackDetails"), value::nil_map("map[string]int"),
                              value::unset("int"), value::object(scores, {one_score, one_score, one_score, one_score}),
                              value::nil_list("[]cticlient.CTIReferences"), value::boolean(false)});
}

bool fn_crowdsec_cti(std::span<value>, value& result, std::string&) {
  result = empty_smoke_item(); // vigil has no CTI client: CrowdSec's answer when the lookup fails
  return true;
}

constexpr param A = param::any;
constexpr param R = param::reflect;
constexpr param S = param::string;
constexpr param B = param::boolean;

const func_info functions[] = {
    // Go built-ins (sprig's slice replaces Go's).
    {"and", {R, R}, 2, true, fn_and},
    {"or", {R, R}, 2, true, fn_or},
    {"not", {R}, 1, false, fn_not},
    {"len", {R}, 1, false, fn_len},
    {"index", {R, R}, 2, true, fn_index},
    {"print", {A}, 1, true, fn_print},
    {"println", {A}, 1, true, fn_println},
    {"printf", {S, A}, 2, true, fn_printf},
    {"html", {A}, 1, true, fn_html},
    {"js", {A}, 1, true, fn_js},
    {"urlquery", {A}, 1, true, fn_urlquery},
    {"eq", {R, R}, 2, true, fn_eq},
    {"ne", {R, R}, 2, false, fn_ne},
    {"lt", {R, R}, 2, false, fn_lt},
    {"le", {R, R}, 2, false, fn_le},
    {"gt", {R, R}, 2, false, fn_gt},
    {"ge", {R, R}, 2, false, fn_ge},
    // sprig.
    {"toJson", {A}, 1, false, fn_to_json},
    {"join", {S, A}, 2, false, fn_join},
    {"upper", {S}, 1, false, fn_upper},
    {"lower", {S}, 1, false, fn_lower},
    {"title", {S}, 1, false, fn_title},
    {"trim", {S}, 1, false, fn_trim},
    {"trimAll", {S, S}, 2, false, fn_trim_all},
    {"trimPrefix", {S, S}, 2, false, fn_trim_prefix},
    {"trimSuffix", {S, S}, 2, false, fn_trim_suffix},
    {"replace", {S, S, S}, 3, false, fn_replace},
    {"contains", {S, S}, 2, false, fn_contains},
    {"hasPrefix", {S, S}, 2, false, fn_has_prefix},
    {"hasSuffix", {S, S}, 2, false, fn_has_suffix},
    {"default", {A, A}, 2, true, fn_default},
    {"empty", {A}, 1, false, fn_empty},
    {"coalesce", {A}, 1, true, fn_coalesce},
    {"ternary", {A, A, B}, 3, false, fn_ternary},
    {"list", {A}, 1, true, fn_list},
    {"dict", {A}, 1, true, fn_dict},
    {"first", {A}, 1, false, fn_first},
    {"last", {A}, 1, false, fn_last},
    {"quote", {A}, 1, true, fn_quote},
    {"squote", {A}, 1, true, fn_squote},
    {"toString", {A}, 1, false, fn_to_string},
    {"splitList", {S, S}, 2, false, fn_split_list},
    {"slice", {A, A}, 2, true, fn_slice},
    {"now", {}, 0, false, fn_now},
    {"date", {S, A}, 2, false, fn_date_in_zone},
    {"dateInZone", {S, A, S}, 3, false, fn_date_in_zone},
    {"toDate", {S, S}, 2, false, fn_to_date},
    {"env", {S}, 1, false, fn_env},
    // CrowdSec.
    {"GetMeta", {param::alert, S}, 2, false, fn_get_meta},
    {"Hostname", {}, 0, false, fn_hostname},
    {"HTMLEscape", {S}, 1, false, fn_html_escape},
    {"CrowdsecCTI", {A}, 1, true, fn_crowdsec_cti},
};

// sprig v3 (3.2.2 to 3.3.0) names vigil does not implement, and Go's `call`.
constexpr std::string_view unsupported[] = {"call",
                                            "hello",
                                            "ago",
                                            "date_in_zone",
                                            "date_modify",
                                            "dateModify",
                                            "duration",
                                            "durationRound",
                                            "htmlDate",
                                            "htmlDateInZone",
                                            "must_date_modify",
                                            "mustDateModify",
                                            "mustToDate",
                                            "unixEpoch",
                                            "abbrev",
                                            "abbrevboth",
                                            "trunc",
                                            "untitle",
                                            "substr",
                                            "repeat",
                                            "trimall",
                                            "nospace",
                                            "initials",
                                            "randAlphaNum",
                                            "randAlpha",
                                            "randAscii",
                                            "randNumeric",
                                            "swapcase",
                                            "shuffle",
                                            "snakecase",
                                            "camelcase",
                                            "kebabcase",
                                            "wrap",
                                            "wrapWith",
                                            "cat",
                                            "indent",
                                            "nindent",
                                            "plural",
                                            "sha1sum",
                                            "sha256sum",
                                            "sha512sum",
                                            "adler32sum",
                                            "atoi",
                                            "int64",
                                            "int",
                                            "float64",
                                            "seq",
                                            "toDecimal",
                                            "split",
                                            "splitn",
                                            "toStrings",
                                            "until",
                                            "untilStep",
                                            "add1",
                                            "add",
                                            "sub",
                                            "div",
                                            "mod",
                                            "mul",
                                            "randInt",
                                            "add1f",
                                            "addf",
                                            "subf",
                                            "divf",
                                            "mulf",
                                            "biggest",
                                            "max",
                                            "min",
                                            "maxf",
                                            "minf",
                                            "ceil",
                                            "floor",
                                            "round",
                                            "sortAlpha",
                                            "all",
                                            "any",
                                            "compact",
                                            "mustCompact",
                                            "fromJson",
                                            "toPrettyJson",
                                            "toRawJson",
                                            "mustFromJson",
                                            "mustToJson",
                                            "mustToPrettyJson",
                                            "mustToRawJson",
                                            "deepCopy",
                                            "mustDeepCopy",
                                            "typeOf",
                                            "typeIs",
                                            "typeIsLike",
                                            "kindOf",
                                            "kindIs",
                                            "deepEqual",
                                            "expandenv",
                                            "getHostByName",
                                            "base",
                                            "dir",
                                            "clean",
                                            "ext",
                                            "isAbs",
                                            "osBase",
                                            "osClean",
                                            "osDir",
                                            "osExt",
                                            "osIsAbs",
                                            "b64enc",
                                            "b64dec",
                                            "b32enc",
                                            "b32dec",
                                            "tuple",
                                            "get",
                                            "set",
                                            "unset",
                                            "hasKey",
                                            "pluck",
                                            "keys",
                                            "pick",
                                            "omit",
                                            "merge",
                                            "mergeOverwrite",
                                            "mustMerge",
                                            "mustMergeOverwrite",
                                            "values",
                                            "append",
                                            "push",
                                            "mustAppend",
                                            "mustPush",
                                            "prepend",
                                            "mustPrepend",
                                            "mustFirst",
                                            "rest",
                                            "mustRest",
                                            "mustLast",
                                            "initial",
                                            "mustInitial",
                                            "reverse",
                                            "mustReverse",
                                            "uniq",
                                            "mustUniq",
                                            "without",
                                            "mustWithout",
                                            "has",
                                            "mustHas",
                                            "mustSlice",
                                            "concat",
                                            "dig",
                                            "chunk",
                                            "mustChunk",
                                            "bcrypt",
                                            "htpasswd",
                                            "genPrivateKey",
                                            "derivePassword",
                                            "buildCustomCert",
                                            "genCA",
                                            "genCAWithKey",
                                            "genSelfSignedCert",
                                            "genSelfSignedCertWithKey",
                                            "genSignedCert",
                                            "genSignedCertWithKey",
                                            "encryptAES",
                                            "decryptAES",
                                            "randBytes",
                                            "uuidv4",
                                            "semver",
                                            "semverCompare",
                                            "fail",
                                            "regexMatch",
                                            "mustRegexMatch",
                                            "regexFindAll",
                                            "mustRegexFindAll",
                                            "regexFind",
                                            "mustRegexFind",
                                            "regexReplaceAll",
                                            "mustRegexReplaceAll",
                                            "regexReplaceAllLiteral",
                                            "mustRegexReplaceAllLiteral",
                                            "regexSplit",
                                            "mustRegexSplit",
                                            "regexQuoteMeta",
                                            "urlParse",
                                            "urlJoin"};

} // namespace

const func_info* find_function(std::string_view name) noexcept {
  for (const func_info& f : functions) {
    if (f.name == name) {
      return &f;
    }
  }
  return nullptr;
}

bool is_unsupported_function(std::string_view name) noexcept {
  for (const std::string_view u : unsupported) {
    if (u == name) {
      return true;
    }
  }
  return false;
}

} // namespace vigil::rules::tmpl::detail
