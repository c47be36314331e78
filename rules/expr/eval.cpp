// Tree-walking evaluator. Hot path: noexcept, no heap after the first evaluation on a thread
// (the per-thread arena below is allocated once), no string formatting.

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <memory>

#include "engine/util/utf8.h"
#include "rules/expr/program_data.h"
#include "rules/unicode_case.h"
#include "rules/unicode_print.h"

namespace vigil::expr {
namespace detail {
namespace {

// Storage for values built during one evaluation (array literals with dynamic items, filter/map
// results, concatenations, upper/lower). Reset at the start of every top-level evaluation.
struct arena {
  static constexpr std::size_t value_cap = 16 * 1024;
  static constexpr std::size_t char_cap = 256 * 1024;
  std::unique_ptr<value[]> vals;
  std::unique_ptr<char[]> chars;
  std::size_t vused = 0;
  std::size_t cused = 0;

  value* values(std::size_t n) noexcept {
    if (!vals) {
      vals.reset(new (std::nothrow) value[value_cap]);
    }
    if (!vals || n > value_cap - vused) {
      return nullptr;
    }
    value* p = vals.get() + vused;
    vused += n;
    return p;
  }
  char* bytes(std::size_t n) noexcept {
    if (!chars) {
      chars.reset(new (std::nothrow) char[char_cap]);
    }
    if (!chars || n > char_cap - cused) {
      return nullptr;
    }
    char* p = chars.get() + cused;
    cused += n;
    return p;
  }
  // The free bytes at the end, for text whose length is known only once written (`text_out`).
  char* tail(std::size_t& room) noexcept {
    if (!chars) {
      chars.reset(new (std::nothrow) char[char_cap]);
    }
    room = chars ? char_cap - cused : 0;
    return chars ? chars.get() + cused : nullptr;
  }
};
thread_local arena tl_arena;

// Text written in place at the end of the arena's bytes, claimed by done(). Nothing else may take
// arena bytes while one is open; value storage (`arena::values`) is separate and may be used.
class text_out {
 public:
  text_out() noexcept : base_(tl_arena.tail(room_)) {}
  void put(std::string_view s) noexcept {
    if (s.size() > room_ - len_) {
      ok_ = false;
      return;
    }
    if (!s.empty()) {
      std::memcpy(base_ + len_, s.data(), s.size());
    }
    len_ += s.size();
  }
  void put(char c) noexcept { put(std::string_view(&c, 1)); }
  void fail() noexcept { ok_ = false; }
  bool ok() const noexcept { return ok_; }
  eval_error done(value& out) noexcept {
    if (!ok_) {
      return eval_error::limit;
    }
    tl_arena.cused += len_;
    out = value::string({base_ == nullptr ? "" : base_, len_});
    return eval_error::none;
  }

 private:
  std::size_t room_ = 0;
  char* base_;
  std::size_t len_ = 0;
  bool ok_ = true;
};

struct frame {
  value elem;
  int64_t index;
};

using ee = eval_error;
using vk = value_kind;

bool is_array(const value& v) noexcept { return v.kind == vk::list || v.is_json_array(); }

// Calls f(value) for each element; f returns false to stop. Returns false if stopped.
template <typename F>
bool for_each(const value& arr, F&& f) noexcept {
  if (arr.kind == vk::list) {
    for (std::size_t i = 0; i < arr.list_size(); ++i) {
      if (!f(arr.list_data()[i])) {
        return false;
      }
    }
    return true;
  }
  // Copy the array handle first: ranging over value_unsafe() of a temporary result dangles.
  simdjson::dom::array items = arr.as_json().get_array().value_unsafe();
  for (auto e : items) {
    if (!f(value::from_json(e))) {
      return false;
    }
  }
  return true;
}

std::size_t array_size(const value& v) noexcept {
  return v.kind == vk::list ? v.list_size() : v.as_json().get_array().value_unsafe().size();
}

// Element i (0 <= i < size) of an array.
value array_at(const value& v, std::size_t i) noexcept {
  if (v.kind == vk::list) {
    return v.list_data()[i];
  }
  simdjson::dom::element e;
  if (v.as_json().get_array().value_unsafe().at(i).get(e) != simdjson::SUCCESS) {
    return value::nil();
  }
  return value::from_json(e);
}

// Go-style int conversion of an array index: floats truncate; false when not a usable number.
bool to_index(const value& k, int64_t& out) noexcept {
  if (k.kind == vk::integer) {
    out = k.as_int();
    return true;
  }
  if (k.kind == vk::floating && std::isfinite(k.as_float()) && std::fabs(k.as_float()) < 9.2e18) {
    out = static_cast<int64_t>(k.as_float());
    return true;
  }
  return false;
}

std::size_t utf8_length(std::string_view s) noexcept {
  std::size_t n = 0;
  for (char c : s) {
    n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  }
  return n;
}


// The bytes of the first `n` runes of s (an invalid byte is one rune, as Go counts it).
std::size_t rune_prefix(std::string_view s, std::size_t n) noexcept {
  std::size_t i = 0;
  for (; i < s.size() && n > 0; --n) {
    const std::size_t w = util::utf8_sequence(s, i);
    i += w == 0 ? 1 : w;
  }
  return i;
}

// Nesting bound of string() and toJSON() (JSON documents are bounded by the parser, map literals
// by the source, but a bound keeps the recursion safe whatever a host hands in).
constexpr int max_print_depth = 256;


// The code point of the UTF-8 sequence s[i, i + len) (len from utf8_sequence, 1-4).
uint32_t decode_rune(std::string_view s, std::size_t i, std::size_t len) noexcept {
  const auto b = [&](std::size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(s[i + k])); };
  switch (len) {
    case 1: return b(0);
    case 2: return ((b(0) & 0x1Fu) << 6) | (b(1) & 0x3Fu);
    case 3: return ((b(0) & 0x0Fu) << 12) | ((b(1) & 0x3Fu) << 6) | (b(2) & 0x3Fu);
    default: return ((b(0) & 0x07u) << 18) | ((b(1) & 0x3Fu) << 12) | ((b(2) & 0x3Fu) << 6) | (b(3) & 0x3Fu);
  }
}

// The runes of s, a byte that is not UTF-8 counting as one (as Go counts it).
std::size_t rune_count(std::string_view s) noexcept {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size(); ++n) {
    const std::size_t w = util::utf8_sequence(s, i);
    i += w == 0 ? 1 : w;
  }
  return n;
}

// strconv.CanBackquote: one line, no control character but tab, no backquote, valid UTF-8.
bool can_backquote(std::string_view s) noexcept {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t w = util::utf8_sequence(s, i);
    if (w == 0) {
      return false;
    }
    const uint32_t r = decode_rune(s, i, w);
    if ((r < ' ' && r != '\t') || r == '`' || r == 0x7F || r == 0xFEFF) {
      return false;
    }
    i += w;
  }
  return true;
}

// strconv.Quote (with `ascii`, QuoteToASCII) of s into out (room for cap bytes): its length, or
// 0 if it does not fit.
std::size_t go_quote(std::string_view s, char* out, std::size_t cap, bool ascii) noexcept {
  static const char* hex = "0123456789abcdef";
  std::size_t n = 0;
  auto put = [&](char c) {
    if (n < cap) {
      out[n] = c;
    }
    ++n;
  };
  auto put_hex = [&](uint32_t v, int digits) {
    for (int k = digits - 1; k >= 0; --k) {
      put(hex[(v >> (4 * k)) & 15]);
    }
  };
  put('"');
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t w = util::utf8_sequence(s, i);
    if (w == 0) { // not UTF-8: the byte, escaped
      put('\\');
      put('x');
      put_hex(static_cast<unsigned char>(s[i]), 2);
      ++i;
      continue;
    }
    const uint32_t r = decode_rune(s, i, w);
    const char named = r == '\a' ? 'a' : r == '\b' ? 'b' : r == '\f' ? 'f' : r == '\n' ? 'n'
                     : r == '\r' ? 'r' : r == '\t' ? 't' : r == '\v' ? 'v' : 0;
    if (r == '"' || r == '\\') {
      put('\\');
      put(static_cast<char>(r));
    } else if (named != 0) {
      put('\\');
      put(named);
    } else if (r < 0x20 || r == 0x7F) {
      put('\\');
      put('x');
      put_hex(r, 2);
    } else if (!rules::is_print(r) || (ascii && r >= 0x80)) { // rules/unicode_print.h, as the templates
      put('\\');
      put(r < 0x10000 ? 'u' : 'U');
      put_hex(r, r < 0x10000 ? 4 : 8);
    } else {
      for (std::size_t k = 0; k < w; ++k) {
        put(s[i + k]);
      }
    }
    i += w;
  }
  put('"');
  return n <= cap ? n : 0;
}

constexpr uint32_t rune_error = 0xFFFD;

// UTF-8 bytes of the code point `r` (a valid one: case mapping never yields a surrogate).
std::size_t encode_rune(char32_t r, char (&out)[4]) noexcept {
  if (r < 0x80) {
    out[0] = static_cast<char>(r);
    return 1;
  }
  if (r < 0x800) {
    out[0] = static_cast<char>(0xC0 | (r >> 6));
    out[1] = static_cast<char>(0x80 | (r & 0x3F));
    return 2;
  }
  if (r < 0x10000) {
    out[0] = static_cast<char>(0xE0 | (r >> 12));
    out[1] = static_cast<char>(0x80 | ((r >> 6) & 0x3F));
    out[2] = static_cast<char>(0x80 | (r & 0x3F));
    return 3;
  }
  out[0] = static_cast<char>(0xF0 | (r >> 18));
  out[1] = static_cast<char>(0x80 | ((r >> 12) & 0x3F));
  out[2] = static_cast<char>(0x80 | ((r >> 6) & 0x3F));
  out[3] = static_cast<char>(0x80 | (r & 0x3F));
  return 4;
}

// The rune at s[i] and its width in bytes (an invalid byte is U+FFFD, width 1, as in Go).
uint32_t rune_at(std::string_view s, std::size_t i, std::size_t& width) noexcept {
  const std::size_t len = util::utf8_sequence(s, i);
  width = len == 0 ? 1 : len;
  return len == 0 ? rune_error : decode_rune(s, i, len);
}

// The rune that ends s (non-empty) and its width.
uint32_t last_rune(std::string_view s, std::size_t& width) noexcept {
  for (std::size_t back = 1; back <= 4 && back <= s.size(); ++back) {
    const std::size_t at = s.size() - back;
    if ((static_cast<unsigned char>(s[at]) & 0xC0) != 0x80) {
      if (util::utf8_sequence(s, at) == back) {
        width = back;
        return decode_rune(s, at, back);
      }
      break;
    }
  }
  width = 1;
  return static_cast<unsigned char>(s.back()) < 0x80 ? static_cast<unsigned char>(s.back()) : rune_error;
}

bool has_rune(std::string_view set, uint32_t r) noexcept {
  for (std::size_t i = 0, w = 0; i < set.size(); i += w) {
    if (rune_at(set, i, w) == r) {
      return true;
    }
  }
  return false;
}

// Go's strings.Trim/TrimLeft/TrimRight: `cut` is a set of code points.
std::string_view trim_set(std::string_view s, std::string_view cut, bool left, bool right) noexcept {
  std::size_t w = 0;
  while (left && !s.empty() && has_rune(cut, rune_at(s, 0, w))) {
    s.remove_prefix(w);
  }
  while (right && !s.empty() && has_rune(cut, last_rune(s, w))) {
    s.remove_suffix(w);
  }
  return s;
}

// unicode.IsSpace
bool is_unicode_space(uint32_t r) noexcept {
  switch (r) {
    case '\t': case '\n': case '\v': case '\f': case '\r': case ' ': case 0x85: case 0xA0: case 0x1680:
    case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000: return true;
    default: return r >= 0x2000 && r <= 0x200A;
  }
}

int hex_digit(char c) noexcept {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

// An address as 16 bytes (IPv4 as ::ffff:a.b.c.d, as Go's net.IP holds it); false if not one.
bool parse_address16(std::string_view s, unsigned char out[16], bool& v4) noexcept {
  char buf[64];
  if (s.empty() || s.size() >= sizeof buf) {
    return false;
  }
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  if (inet_pton(AF_INET, buf, out + 12) == 1) {
    std::memset(out, 0, 10);
    out[10] = out[11] = 0xFF;
    v4 = true;
    return true;
  }
  if (inet_pton(AF_INET6, buf, out) != 1) {
    return false;
  }
  static constexpr unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  v4 = std::memcmp(out, mapped, 12) == 0;  // Go: To4() of a mapped address is an IPv4 address
  return true;
}

// Decimal bits: digits only (net.ParseCIDR), or with an optional '+' (`atoi`: strconv.Atoi).
bool parse_bits(std::string_view s, int& bits, bool atoi = false) noexcept {
  if (atoi && !s.empty() && s.front() == '+') {
    s.remove_prefix(1);
  }
  auto r = std::from_chars(s.data(), s.data() + s.size(), bits);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && !s.empty() && s.front() != '-';
}

// Zeroes every bit of a 16-byte address past the first `bits`.
void mask_address(unsigned char a[16], int bits) noexcept {
  for (int k = 0; k < 16; ++k) {
    const int keep = std::clamp(bits - 8 * k, 0, 8);
    a[k] &= static_cast<unsigned char>(0xFF00u >> keep);
  }
}

// strings.TrimSpace: Unicode white space at both ends.
std::string_view trim_space(std::string_view s) noexcept {
  std::size_t w = 0;
  while (!s.empty() && is_unicode_space(rune_at(s, 0, w))) {
    s.remove_prefix(w);
  }
  while (!s.empty() && is_unicode_space(last_rune(s, w))) {
    s.remove_suffix(w);
  }
  return s;
}

// Go %v of a float64 = strconv 'g' with shortest digits: exponent form when exp < -4 || exp >= 6
// (fmt.Sprint(1e6) == "1e+06", fmt.Sprint(401.0) == "401").
std::size_t format_float(double f, char* buf, std::size_t cap) noexcept {
  if (std::isnan(f)) {
    std::memcpy(buf, "NaN", 3);
    return 3;
  }
  if (std::isinf(f)) {
    std::memcpy(buf, f > 0 ? "+Inf" : "-Inf", 4);
    return 4;
  }
  auto sci = std::to_chars(buf, buf + cap, f, std::chars_format::scientific);
  std::string_view s(buf, static_cast<std::size_t>(sci.ptr - buf));
  auto epos = s.find('e');
  int exp = 0;
  std::from_chars(s.data() + epos + (s[epos + 1] == '+' ? 2 : 1), s.data() + s.size(), exp);
  if (exp < -4 || exp >= 6) {
    return s.size();
  }
  auto fix = std::to_chars(buf, buf + cap, f, std::chars_format::fixed);
  return static_cast<std::size_t>(fix.ptr - buf);
}

// strconv.FormatFloat(f, 'f', -1, 64): the shortest digits that read back as `f`, written out
// without an exponent (2^60 is 1152921504606847000, not its exact 1152921504606846976). `cap`
// must hold the 330 characters of the longest (1e-6 <= |f| < 1e21 in practice).
std::size_t shortest_fixed(double f, char* buf, std::size_t cap) noexcept {
  char sci[32];
  const auto r = std::to_chars(sci, sci + sizeof sci, f, std::chars_format::scientific);
  const std::string_view s(sci, static_cast<std::size_t>(r.ptr - sci));
  const std::size_t e_at = s.find('e');
  int exp = 0;
  std::from_chars(s.data() + e_at + (s[e_at + 1] == '+' ? 2 : 1), s.data() + s.size(), exp);
  char digits[24];
  std::size_t nd = 0;
  bool negative = false;
  for (std::size_t i = 0; i < e_at; ++i) {
    if (s[i] == '-') {
      negative = true;
    } else if (s[i] != '.') {
      digits[nd++] = s[i];
    }
  }
  std::size_t len = 0;
  auto put = [&](char c) {
    if (len < cap) {
      buf[len++] = c;
    }
  };
  if (negative) {
    put('-');
  }
  if (exp >= 0) {
    for (std::size_t i = 0; i < nd || static_cast<int>(i) <= exp; ++i) {
      if (static_cast<int>(i) == exp + 1) {
        put('.');
      }
      put(i < nd ? digits[i] : '0');
    }
  } else {
    put('0');
    put('.');
    for (int i = -1; i > exp; --i) {
      put('0');
    }
    for (std::size_t i = 0; i < nd; ++i) {
      put(digits[i]);
    }
  }
  return len;
}

class evaluator {
 public:
  evaluator(const program_data& p, const environment& env, const uint32_t* lifts) noexcept
      : p_(p), env_(env), lifts_(lifts) {}

  ee eval(node_id id, const frame* f, value& out) noexcept {
    const node& n = p_.nodes[id];
    if (lifts_ != nullptr && lifts_[id] != 0) {
      bool r;
      if (env_.lifted(lifts_[id] - 1, r)) {
        out = value::boolean(r);
        return ee::none;
      }
    }
    switch (n.kind) {
      case node_kind::literal: out = n.constant; return ee::none;
      case node_kind::load:
        out = env_.load(n.slot);
        if (out.kind == vk::error_) {
          return out.u.err == ee::none ? ee::host : out.u.err;
        }
        return out.is_nil() && n.optional() ? ee::chain_nil_ : ee::none;
      case node_kind::element:
        if (f == nullptr) {
          return ee::type_mismatch;
        }
        out = f->elem;
        return ee::none;
      case node_kind::element_index:
        if (f == nullptr) {
          return ee::type_mismatch;
        }
        out = value::integer(f->index);
        return ee::none;
      case node_kind::member: {
        value obj;
        if (ee e = eval(n.a, f, obj); e != ee::none) {
          return e;
        }
        return member(obj, n.constant.as_string(), n.optional(), out);
      }
      case node_kind::index: return index(n, f, out);
      case node_kind::chain: {
        ee e = eval(n.a, f, out);
        if (e == ee::chain_nil_) {
          out = value::nil();
          return ee::none;
        }
        return e;
      }
      case node_kind::not_: {
        if (ee e = eval(n.a, f, out); e != ee::none) {
          return e;
        }
        if (out.kind != vk::boolean) {
          return ee::not_bool;
        }
        out = value::boolean(!out.as_bool());
        return ee::none;
      }
      case node_kind::negate:
      case node_kind::plus: {
        if (ee e = eval(n.a, f, out); e != ee::none) {
          return e;
        }
        if (!out.is_number()) {
          return ee::type_mismatch;
        }
        if (n.kind == node_kind::negate) {
          out = out.kind == vk::integer ? value::integer(static_cast<int64_t>(0ull - static_cast<uint64_t>(out.as_int())))
                                        : value::floating(-out.as_float());
        }
        return ee::none;
      }
      case node_kind::and_:
      case node_kind::or_: {
        if (ee e = eval(n.a, f, out); e != ee::none) {
          return e;
        }
        if (out.kind != vk::boolean) {
          return ee::not_bool;
        }
        if (out.as_bool() == (n.kind == node_kind::or_)) {
          return ee::none;  // decided by the left side
        }
        return eval(n.b, f, out);  // right side returned unchanged (§7)
      }
      case node_kind::ternary: {
        value c;
        if (ee e = eval(n.a, f, c); e != ee::none) {
          return e;
        }
        if (c.kind != vk::boolean) {
          return ee::not_bool;
        }
        return eval(c.as_bool() ? n.b : n.c, f, out);
      }
      case node_kind::coalesce: {
        if (ee e = eval(n.a, f, out); e != ee::none) {
          return e;
        }
        return out.is_nil() ? eval(n.b, f, out) : ee::none;
      }
      case node_kind::in_set: {
        value x;
        if (ee e = eval(n.a, f, x); e != ee::none) {
          return e;
        }
        if (x.kind == vk::string) {
          out = value::boolean(p_.sets[n.slot].contains(x.as_string()));
        } else if (x.is_nil()) {
          out = value::boolean(p_.sets[n.slot].contains(""));  // nil is looked up as "" (§9.1)
        } else {
          return ee::type_mismatch;
        }
        return ee::none;
      }
      case node_kind::matches: {
        value x;
        if (ee e = eval(n.a, f, x); e != ee::none) {
          return e;
        }
        if (x.is_nil()) {
          out = value::boolean(false);
          return ee::none;
        }
        if (x.kind != vk::string) {
          return ee::type_mismatch;
        }
        int r = p_.regexes[n.slot].search(x.as_string());
        if (r < 0) {
          return ee::regex;
        }
        out = value::boolean(r == 1);
        return ee::none;
      }
      case node_kind::array: {
        value* items = tl_arena.values(n.args_count);
        if (items == nullptr) {
          return ee::limit;
        }
        for (uint32_t k = 0; k < n.args_count; ++k) {
          if (ee e = eval(p_.args[n.args_begin + k], f, items[k]); e != ee::none) {
            return e;
          }
        }
        out = value::list(items, n.args_count);
        return ee::none;
      }
      case node_kind::map_: return map_literal(n, f, out);
      case node_kind::predicate: return predicate(n, f, out);
      case node_kind::call: return call(n, f, out);
      default: break;
    }
    // Binary operators evaluating both sides.
    value l, r;
    if (ee e = eval(n.a, f, l); e != ee::none) {
      return e;
    }
    if (ee e = eval(n.b, f, r); e != ee::none) {
      return e;
    }
    return binary(n.kind, l, r, out);
  }

 private:
  static ee member(const value& obj, std::string_view key, bool optional, value& out) noexcept {
    if (obj.is_nil()) {
      return optional ? ee::chain_nil_ : ee::nil_fetch;
    }
    if (obj.is_object()) {
      out = object_member(obj, key);
      return ee::none;
    }
    return ee::type_mismatch;  // arrays: `invalid operation: int(string)`; scalars: cannot fetch
  }

  ee index(const node& n, const frame* f, value& out) noexcept {
    value obj, key;
    if (ee e = eval(n.a, f, obj); e != ee::none) {
      return e;
    }
    if (obj.is_nil()) {
      return n.optional() ? ee::chain_nil_ : ee::nil_fetch;
    }
    if (ee e = eval(n.b, f, key); e != ee::none) {
      return e;
    }
    if (obj.is_object()) {
      if (key.kind != vk::string) {
        return ee::type_mismatch;
      }
      return member(obj, key.as_string(), false, out);
    }
    if (!is_array(obj)) {
      return ee::type_mismatch;
    }
    int64_t i = 0;
    if (!to_index(key, i)) {
      return ee::type_mismatch;
    }
    auto size = static_cast<int64_t>(array_size(obj));
    if (i < 0) {
      i += size;
    }
    if (i < 0 || i >= size) {
      return ee::index_out_of_range;
    }
    out = array_at(obj, static_cast<std::size_t>(i));
    return ee::none;
  }

  static ee compare(node_kind k, const value& l, const value& r, value& out) noexcept {
    int c = 0;
    if (l.is_number() && r.is_number()) {
      if (l.kind == vk::integer && r.kind == vk::integer) {
        c = l.as_int() < r.as_int() ? -1 : (l.as_int() > r.as_int() ? 1 : 0);
      } else {
        double a = l.as_number(), b = r.as_number();
        if (std::isnan(a) || std::isnan(b)) {
          out = value::boolean(false);
          return ee::none;
        }
        c = a < b ? -1 : (a > b ? 1 : 0);
      }
    } else if (l.kind == vk::string && r.kind == vk::string) {
      c = l.as_string().compare(r.as_string());
    } else {
      return ee::type_mismatch;
    }
    bool res = k == node_kind::lt ? c < 0 : k == node_kind::le ? c <= 0 : k == node_kind::gt ? c > 0 : c >= 0;
    out = value::boolean(res);
    return ee::none;
  }

  static ee arith(node_kind k, const value& l, const value& r, value& out) noexcept {
    if (!l.is_number() || !r.is_number()) {
      return ee::type_mismatch;
    }
    bool ints = l.kind == vk::integer && r.kind == vk::integer;
    if (k == node_kind::mod) {
      if (!ints) {
        return ee::type_mismatch;
      }
      if (r.as_int() == 0) {
        return ee::division_by_zero;
      }
      out = value::integer(r.as_int() == -1 ? 0 : l.as_int() % r.as_int());
      return ee::none;
    }
    if (k == node_kind::div) {
      out = value::floating(l.as_number() / r.as_number());
      return ee::none;
    }
    if (k == node_kind::pow) {
      out = value::floating(std::pow(l.as_number(), r.as_number()));
      return ee::none;
    }
    if (ints) {
      // Go integers wrap around.
      auto a = static_cast<uint64_t>(l.as_int()), b = static_cast<uint64_t>(r.as_int());
      uint64_t v = k == node_kind::add ? a + b : k == node_kind::sub ? a - b : a * b;
      out = value::integer(static_cast<int64_t>(v));
      return ee::none;
    }
    double a = l.as_number(), b = r.as_number();
    out = value::floating(k == node_kind::add ? a + b : k == node_kind::sub ? a - b : a * b);
    return ee::none;
  }

  static ee binary(node_kind k, const value& l, const value& r, value& out) noexcept {
    switch (k) {
      case node_kind::eq: out = value::boolean(equal(l, r)); return ee::none;
      case node_kind::ne: out = value::boolean(!equal(l, r)); return ee::none;
      case node_kind::lt:
      case node_kind::le:
      case node_kind::gt:
      case node_kind::ge: return compare(k, l, r, out);
      case node_kind::in_list: {
        if (r.is_nil()) {
          out = value::boolean(false);
          return ee::none;
        }
        if (r.is_object()) {
          if (l.kind != vk::string) {
            return ee::type_mismatch;
          }
          bool found = false;
          object_member(r, l.as_string(), &found);
          out = value::boolean(found);
          return ee::none;
        }
        if (!is_array(r)) {
          return ee::type_mismatch;
        }
        bool found = !for_each(r, [&](const value& e) { return !equal(l, e); });
        out = value::boolean(found);
        return ee::none;
      }
      case node_kind::matches_dynamic: {
        if (l.is_nil()) {
          out = value::boolean(false);
          return ee::none;
        }
        if (l.kind != vk::string || r.kind != vk::string) {
          return ee::type_mismatch;
        }
        const int found = dynamic_search(l.as_string(), r.as_string());
        if (found < 0) {
          return ee::regex;
        }
        out = value::boolean(found == 1);
        return ee::none;
      }
      case node_kind::contains:
      case node_kind::starts_with:
      case node_kind::ends_with: {
        if (l.is_nil() || r.is_nil()) {
          out = value::boolean(false);
          return ee::none;
        }
        if (l.kind != vk::string || r.kind != vk::string) {
          return ee::type_mismatch;
        }
        std::string_view a = l.as_string(), b = r.as_string();
        bool res = k == node_kind::contains      ? a.find(b) != std::string_view::npos
                   : k == node_kind::starts_with ? a.starts_with(b)
                                                 : a.ends_with(b);
        out = value::boolean(res);
        return ee::none;
      }
      case node_kind::add:
        if (l.kind == vk::string && r.kind == vk::string) {
          std::size_t n = l.size + r.size;
          char* p = tl_arena.bytes(n);
          if (p == nullptr) {
            return ee::limit;
          }
          if (l.size != 0) {
            std::memcpy(p, l.ptr, l.size);
          }
          if (r.size != 0) {
            std::memcpy(p + l.size, r.ptr, r.size);
          }
          out = value::string({p, n});
          return ee::none;
        }
        return arith(k, l, r, out);
      case node_kind::sub:
      case node_kind::mul:
      case node_kind::div:
      case node_kind::mod:
      case node_kind::pow: return arith(k, l, r, out);
      default: return ee::type_mismatch;
    }
  }

  ee predicate(const node& n, const frame* outer, value& out) noexcept {
    value coll;
    if (ee e = eval(n.a, outer, coll); e != ee::none) {
      return e;
    }
    if (!is_array(coll)) {
      return coll.is_nil() ? ee::nil_fetch : ee::type_mismatch;
    }
    const builtin fn = n.fn;
    std::size_t size = array_size(coll);
    value* results = nullptr;
    if (fn == builtin::filter || fn == builtin::map) {
      results = tl_arena.values(size);
      if (results == nullptr && size != 0) {
        return ee::limit;
      }
    }
    std::size_t hits = 0;
    std::size_t produced = 0;
    ee err = ee::none;
    frame fr{value::nil(), 0};
    for_each(coll, [&](const value& elem) {
      fr.elem = elem;
      value pv;
      if (n.b == no_node) {
        pv = elem;  // count(arr): counts `true` elements
      } else if ((err = eval(n.b, &fr, pv)) != ee::none) {
        return false;
      }
      ++fr.index;
      if (fn == builtin::map) {
        results[produced++] = pv;
        return true;
      }
      if (pv.kind != vk::boolean) {
        err = ee::not_bool;
        return false;
      }
      bool t = pv.as_bool();
      if (t) {
        ++hits;
        if (fn == builtin::filter) {
          results[produced++] = elem;
        }
      }
      if ((fn == builtin::any && t) || (fn == builtin::all && !t) || (fn == builtin::none_ && t)) {
        return false;
      }
      return true;
    });
    if (err != ee::none) {
      return err;
    }
    switch (fn) {
      case builtin::any: out = value::boolean(hits > 0); break;
      case builtin::all: out = value::boolean(static_cast<int64_t>(hits) == fr.index); break;
      case builtin::none_: out = value::boolean(hits == 0); break;
      case builtin::one: out = value::boolean(hits == 1); break;
      case builtin::count: out = value::integer(static_cast<int64_t>(hits)); break;
      default: out = value::list(results, produced); break;
    }
    return ee::none;
  }

  // Go's fmt.Sprint of one value (expr's string(), Sprintf's %v).
  static ee to_string_value(const value& v, value& out) noexcept {
    switch (v.kind) {
      case vk::string: out = v; return ee::none;
      case vk::nil: out = value::string("<nil>"); return ee::none;
      case vk::boolean: out = value::string(v.as_bool() ? "true" : "false"); return ee::none;
      default: break;
    }
    text_out t;
    if (ee e = print_go(v, t); e != ee::none) {
      return e;
    }
    return t.done(out);
  }

  // CrowdSec's IpInRange: false for an address or a range that does not parse (net.ParseCIDR).
  static bool ip_in_range(std::string_view ip, std::string_view range) noexcept {
    const std::size_t slash = range.find('/');
    unsigned char a[16], net[16];
    bool a4 = false, n4 = false;
    int bits = 0;
    if (slash == std::string_view::npos || !parse_address16(ip, a, a4) ||
        !parse_address16(range.substr(0, slash), net, n4) || !parse_bits(range.substr(slash + 1), bits)) {
      return false;
    }
    // net.ParseCIDR: a dotted-quad network takes at most 32 bits; anything else 128.
    const bool dotted = range.substr(0, slash).find(':') == std::string_view::npos;
    if (bits > (dotted ? 32 : 128) || a4 != n4) {
      return false;  // IPNet.Contains: an IPv4 address is never in an IPv6 network, nor the reverse
    }
    const int total = dotted ? bits + 96 : bits;
    mask_address(a, total);
    mask_address(net, total);
    return std::memcmp(a, net, 16) == 0;
  }

  // CrowdSec's IpToRange(ip, "24" or "/24"): the masked network in CIDR form, "" when either
  // argument does not parse or the mask is longer than the address.
  static ee ip_to_range(std::string_view ip, std::string_view mask, value& out) noexcept {
    if (mask.starts_with('/')) {
      mask.remove_prefix(1);
    }
    unsigned char a[16];
    bool v4 = false;
    int bits = 0;
    if (!parse_bits(mask, bits, true) || !parse_address16(ip, a, v4) || bits > (v4 ? 32 : 128)) {
      out = value::string("");
      return ee::none;
    }
    mask_address(a, v4 ? bits + 96 : bits);
    char text[INET6_ADDRSTRLEN + 8];
    if (v4 && inet_ntop(AF_INET, a + 12, text, INET6_ADDRSTRLEN) == nullptr) {
      out = value::string("");
      return ee::none;
    }
    char bits_text[8];
    const auto r = std::to_chars(bits_text, bits_text + sizeof bits_text, bits);
    text_out t;
    if (v4) {
      t.put(std::string_view(text));
    } else {
      put_ipv6(a, t);
    }
    t.put('/');
    t.put({bits_text, static_cast<std::size_t>(r.ptr - bits_text)});
    return t.done(out);
  }

  // Go's IP.String of an IPv6 address: lower-case hex groups, the longest run of two or more
  // zero groups (the first of equal runs) as "::", never the dotted form inet_ntop gives
  // addresses whose first 96 bits are zero.
  static void put_ipv6(const unsigned char a[16], text_out& t) noexcept {
    int best = -1, best_len = 0;
    for (int i = 0; i < 8;) {
      int j = i;
      while (j < 8 && a[2 * j] == 0 && a[2 * j + 1] == 0) {
        ++j;
      }
      if (j - i > best_len && j - i >= 2) {
        best = i;
        best_len = j - i;
      }
      i = j == i ? i + 1 : j;
    }
    for (int i = 0; i < 8; ++i) {
      if (i == best) {
        t.put("::");
        i += best_len - 1;
        continue;
      }
      if (i > 0 && i != best + best_len) {
        t.put(':');
      }
      char h[8];
      const auto r = std::to_chars(h, h + sizeof h, (a[2 * i] << 8) | a[2 * i + 1], 16);
      t.put({h, static_cast<std::size_t>(r.ptr - h)});
    }
  }

  // strings.Fields: the runs between Unicode white space, as views into `s`.
  static ee fields(std::string_view s, value& out) noexcept {
    std::size_t n = 0;
    for (int pass = 0; pass < 2; ++pass) {
      value* items = nullptr;
      if (pass == 1) {
        items = tl_arena.values(n);
        if (items == nullptr && n != 0) {
          return ee::limit;
        }
        out = value::list(items, n);
        n = 0;
      }
      std::size_t start = 0, w = 0;
      bool in_field = false;
      for (std::size_t i = 0; i <= s.size(); i += w) {
        const bool space = i == s.size() || is_unicode_space(rune_at(s, i, w));
        if (i == s.size()) {
          w = 1;
        }
        if (!space && !in_field) {
          start = i;
          in_field = true;
        } else if (space && in_field) {
          if (items != nullptr) {
            items[n] = value::string(s.substr(start, i - start));
          }
          ++n;
          in_field = false;
        }
      }
    }
    return ee::none;
  }

  // strings.IndexAny: the byte index of the first rune of `s` that is in `chars`, or -1.
  static int64_t index_any(std::string_view s, std::string_view chars) noexcept {
    for (std::size_t i = 0, w = 0; i < s.size(); i += w) {
      if (has_rune(chars, rune_at(s, i, w))) {
        return static_cast<int64_t>(i);
      }
    }
    return -1;
  }

  // strings.Join of a list of strings; any other element is a type error, as in CrowdSec.
  static ee join(const value& list, std::string_view sep, value& out) noexcept {
    if (!is_array(list)) {
      return ee::type_mismatch;
    }
    text_out t;
    bool first = true, bad = false;
    for_each(list, [&](const value& e) {
      if (e.kind != vk::string) {
        bad = true;
        return false;
      }
      if (!first) {
        t.put(sep);
      }
      first = false;
      t.put(e.as_string());
      return true;
    });
    if (bad) {
      return ee::type_mismatch;
    }
    return t.done(out);
  }

  // base64.StdEncoding.DecodeString (padding required; CR and LF skipped); an error otherwise.
  static ee b64_decode(std::string_view s, value& out) noexcept {
    auto sextet = [](char c) {
      return c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : c >= '0' && c <= '9' ? c - '0' + 52
             : c == '+' ? 62 : c == '/' ? 63 : -1;
    };
    text_out t;
    uint32_t acc = 0;
    int have = 0, pad = 0;
    for (char c : s) {
      if (c == '\r' || c == '\n') {
        continue;
      }
      if (c == '=') {
        if (have < 2 || ++pad > 2) {
          return ee::type_mismatch;
        }
        continue;
      }
      const int v = sextet(c);
      if (v < 0 || pad != 0) {
        return ee::type_mismatch;
      }
      acc = (acc << 6) | static_cast<uint32_t>(v);
      if (++have == 4) {
        const char b[3] = {static_cast<char>(acc >> 16), static_cast<char>(acc >> 8), static_cast<char>(acc)};
        t.put({b, 3});
        acc = 0;
        have = 0;
      }
    }
    if (pad != 0) {
      if (have + pad != 4) {
        return ee::type_mismatch;
      }
      acc <<= 6 * pad;
      const char b[2] = {static_cast<char>(acc >> 16), static_cast<char>(acc >> 8)};
      t.put({b, static_cast<std::size_t>(3 - pad)});
    } else if (have != 0) {
      return ee::type_mismatch;
    }
    return t.done(out);
  }

  // url.QueryUnescape ('+' is a space) or url.PathUnescape; CrowdSec returns the input unchanged
  // when an escape is malformed.
  static ee url_unescape(std::string_view s, bool query, value& out) noexcept {
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '%' && (i + 2 >= s.size() || hex_digit(s[i + 1]) < 0 || hex_digit(s[i + 2]) < 0)) {
        out = value::string(s);
        return ee::none;
      }
    }
    text_out t;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '%') {
        t.put(static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2])));
        i += 2;
      } else {
        t.put(query && s[i] == '+' ? ' ' : s[i]);
      }
    }
    return t.done(out);
  }

  // url.QueryEscape (space as '+') or url.PathEscape (one path segment).
  static ee url_escape(std::string_view s, bool query, value& out) noexcept {
    static constexpr char hex[] = "0123456789ABCDEF";
    text_out t;
    for (char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                         c == '_' || c == '.' || c == '~' ||
                         (!query && (c == '$' || c == '&' || c == '+' || c == ':' || c == '=' || c == '@'));
      if (plain) {
        t.put(ch);
      } else if (query && c == ' ') {
        t.put('+');
      } else {
        const char e[3] = {'%', hex[c >> 4], hex[c & 15]};
        t.put({e, 3});
      }
    }
    return t.done(out);
  }

  // CrowdSec's Match(pattern, name): `*` any run of bytes, `?` one byte; once the name is used
  // up only "" or "*" is left to match. Computed row by row (the reference recurses).
  static ee glob_match(std::string_view p, std::string_view n, value& out) noexcept {
    const std::size_t w = n.size() + 1;
    char* next = tl_arena.bytes(2 * w);  // row i + 1, then row i
    if (next == nullptr) {
      return ee::limit;
    }
    char* row = next + w;
    for (std::size_t j = 0; j < w; ++j) {
      next[j] = j == n.size() ? 1 : 0;  // the empty pattern matches the empty name only
    }
    for (std::size_t i = p.size(); i-- > 0;) {
      row[n.size()] = (i + 1 == p.size() && p[i] == '*') ? 1 : 0;
      char any_later = next[n.size()];
      for (std::size_t j = n.size(); j-- > 0;) {
        any_later = static_cast<char>(any_later | next[j]);
        if (p[i] == '*') {
          row[j] = any_later;
        } else {
          row[j] = (p[i] == '?' || p[i] == n[j]) ? next[j + 1] : 0;
        }
      }
      std::swap(row, next);
    }
    out = value::boolean(next[0] != 0);
    return ee::none;
  }

  ee map_literal(const node& n, const frame* f, value& out) noexcept {
    const uint32_t pairs = n.args_count / 2;
    value* kv = tl_arena.values(2 * static_cast<std::size_t>(pairs));
    if (kv == nullptr && pairs != 0) {
      return ee::limit;
    }
    std::size_t used = 0;
    for (uint32_t k = 0; k < pairs; ++k) {
      value key, val;
      if (ee e = eval(p_.args[n.args_begin + 2 * k], f, key); e != ee::none) {
        return e;
      }
      if (key.kind != vk::string) {
        return ee::type_mismatch;  // expr builds a map[string]any
      }
      if (ee e = eval(p_.args[n.args_begin + 2 * k + 1], f, val); e != ee::none) {
        return e;
      }
      std::size_t at = 0;
      while (at < used && kv[2 * at].as_string() != key.as_string()) {
        ++at;
      }
      if (at < used) {
        continue;  // a repeated key keeps its first value: expr stores the pairs last to first
      }
      kv[2 * at] = key;
      kv[2 * at + 1] = val;
      ++used;
    }
    out = value::map(kv, used);
    return ee::none;
  }

  // An object's entries sorted by key, as Go prints and marshals maps: keys[i] is the i-th key
  // (its entry index in u.i), vals[u.i] its value. Both live in the arena's value storage.
  static ee sorted_entries(const value& obj, value*& keys, value*& vals, std::size_t& n) noexcept {
    n = object_size(obj);
    keys = tl_arena.values(2 * n);
    if (keys == nullptr && n != 0) {
      return ee::limit;
    }
    vals = keys + n;
    std::size_t i = 0;
    for_each_entry(obj, [&](std::string_view k, const value& v) {
      keys[i] = value::string(k);
      keys[i].u.i = static_cast<int64_t>(i);
      vals[i] = v;
      ++i;
      return true;
    });
    std::sort(keys, keys + n, [](const value& a, const value& b) {
      const int c = a.as_string().compare(b.as_string());
      return c != 0 ? c < 0 : a.u.i < b.u.i;
    });
    return ee::none;
  }

  // Go's %v of a value (fmt.Sprint): `[1 a]`, `map[a:1 b:[2]]`, `<nil>`; map keys sorted.
  static ee print_go(const value& v, text_out& t, int depth = 0) noexcept {
    if (depth > max_print_depth) {
      return ee::limit;
    }
    char buf[64];
    switch (v.kind) {
      case vk::nil: t.put("<nil>"); break;
      case vk::boolean: t.put(v.as_bool() ? "true" : "false"); break;
      case vk::integer:
        t.put({buf, v.json_number() ? format_float(static_cast<double>(v.as_int()), buf, sizeof buf)
                                    : static_cast<std::size_t>(std::to_chars(buf, buf + sizeof buf, v.as_int()).ptr - buf)});
        break;
      case vk::floating: t.put({buf, format_float(v.as_float(), buf, sizeof buf)}); break;
      case vk::string: t.put(v.as_string()); break;
      case vk::list:
      case vk::map:
      case vk::json: {
        if (is_array(v)) {
          t.put('[');
          bool first = true;
          ee err = ee::none;
          for_each(v, [&](const value& e) {
            if (!first) {
              t.put(' ');
            }
            first = false;
            err = print_go(e, t, depth + 1);
            return err == ee::none;
          });
          if (err != ee::none) {
            return err;
          }
          t.put(']');
          break;
        }
        value *keys = nullptr, *vals = nullptr;
        std::size_t n = 0;
        if (ee e = sorted_entries(v, keys, vals, n); e != ee::none) {
          return e;
        }
        t.put("map[");
        for (std::size_t i = 0; i < n; ++i) {
          if (i != 0) {
            t.put(' ');
          }
          t.put(keys[i].as_string());
          t.put(':');
          if (ee e = print_go(vals[keys[i].u.i], t, depth + 1); e != ee::none) {
            return e;
          }
        }
        t.put(']');
        break;
      }
      default: return ee::type_mismatch;
    }
    return t.ok() ? ee::none : ee::limit;
  }

  // A string as Go's encoding/json writes it: HTML-safe (<, >, & as \u003c...), U+2028 and
  // U+2029 escaped, invalid UTF-8 as U+FFFD.
  static void put_json_string(std::string_view s, text_out& t) noexcept {
    static constexpr char hex[] = "0123456789abcdef";
    t.put('"');
    std::size_t i = 0;
    while (i < s.size()) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x80) {
        switch (c) {
          case '"': t.put("\\\""); break;
          case '\\': t.put("\\\\"); break;
          case '\n': t.put("\\n"); break;
          case '\r': t.put("\\r"); break;
          case '\t': t.put("\\t"); break;
          case '\b': t.put("\\b"); break;
          case '\f': t.put("\\f"); break;
          default:
            if (c < 0x20 || c == '<' || c == '>' || c == '&') {
              const char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
              t.put({u, 6});
            } else {
              t.put(static_cast<char>(c));
            }
        }
        ++i;
        continue;
      }
      const std::size_t len = util::utf8_sequence(s, i);
      if (len == 0) {
        t.put("\\ufffd");
        ++i;
        continue;
      }
      const std::string_view seq = s.substr(i, len);
      if (seq == "\xE2\x80\xA8" || seq == "\xE2\x80\xA9") {
        t.put(seq[2] == '\xA8' ? "\\u2028" : "\\u2029");
      } else {
        t.put(seq);
      }
      i += len;
    }
    t.put('"');
  }

  // expr's toJSON: json.MarshalIndent(v, "", "  "), map keys sorted.
  static ee print_json(const value& v, text_out& t, int depth = 0) noexcept {
    if (depth > max_print_depth) {
      return ee::limit;
    }
    auto newline = [&](int level) {
      t.put('\n');
      for (int k = 0; k < level; ++k) {
        t.put("  ");
      }
    };
    char buf[64];
    switch (v.kind) {
      case vk::nil: t.put("null"); break;
      case vk::boolean: t.put(v.as_bool() ? "true" : "false"); break;
      case vk::integer:
        if (!v.json_number()) {
          t.put({buf, static_cast<std::size_t>(std::to_chars(buf, buf + sizeof buf, v.as_int()).ptr - buf)});
          break;
        }
        [[fallthrough]];  // a JSON number is a float64: marshalled as one
      case vk::floating: {
        const double f = v.kind == vk::integer ? static_cast<double>(v.as_int()) : v.as_float();
        if (!std::isfinite(f)) {
          return ee::type_mismatch;  // json: unsupported value: NaN
        }
        // encoding/json: shortest digits, exponent form below 1e-6 and from 1e21, e-07 as e-7.
        const double a = std::fabs(f);
        const bool sci = a != 0 && (a < 1e-6 || a >= 1e21);
        if (!sci) {
          t.put({buf, shortest_fixed(f, buf, sizeof buf)});
          break;
        }
        auto r = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
        std::size_t len = static_cast<std::size_t>(r.ptr - buf);
        if (len >= 4 && buf[len - 4] == 'e' && buf[len - 3] == '-' && buf[len - 2] == '0') {
          buf[len - 2] = buf[len - 1];
          --len;
        }
        t.put({buf, len});
        break;
      }
      case vk::string: put_json_string(v.as_string(), t); break;
      case vk::list:
      case vk::map:
      case vk::json: {
        if (is_array(v)) {
          if (array_size(v) == 0) {
            t.put("[]");
            break;
          }
          t.put('[');
          bool first = true;
          ee err = ee::none;
          for_each(v, [&](const value& e) {
            if (!first) {
              t.put(',');
            }
            first = false;
            newline(depth + 1);
            err = print_json(e, t, depth + 1);
            return err == ee::none;
          });
          if (err != ee::none) {
            return err;
          }
          newline(depth);
          t.put(']');
          break;
        }
        value *keys = nullptr, *vals = nullptr;
        std::size_t n = 0;
        if (ee e = sorted_entries(v, keys, vals, n); e != ee::none) {
          return e;
        }
        if (n == 0) {
          t.put("{}");
          break;
        }
        t.put('{');
        for (std::size_t i = 0; i < n; ++i) {
          if (i != 0) {
            t.put(',');
          }
          newline(depth + 1);
          put_json_string(keys[i].as_string(), t);
          t.put(": ");
          if (ee e = print_json(vals[keys[i].u.i], t, depth + 1); e != ee::none) {
            return e;
          }
        }
        newline(depth);
        t.put('}');
        break;
      }
      default: return ee::type_mismatch;
    }
    return t.ok() ? ee::none : ee::limit;
  }

  // Go's strings.SplitN(s, sep, n) (n < 0: every part): the parts are views into `s`.
  static ee split(std::string_view s, std::string_view sep, int64_t n, bool after, value& out) noexcept {
    if (n == 0) {
      out = value::list(nullptr, 0);
      return ee::none;
    }
    std::size_t parts = 0;
    if (sep.empty()) {
      for (std::size_t i = 0; i < s.size(); ++parts) {
        const std::size_t len = util::utf8_sequence(s, i);
        i += len == 0 ? 1 : len;
      }
    } else {
      parts = 1;
      for (std::size_t at = s.find(sep); at != std::string_view::npos; at = s.find(sep, at + sep.size())) {
        ++parts;
      }
    }
    if (n > 0 && parts > static_cast<std::size_t>(n)) {
      parts = static_cast<std::size_t>(n);
    }
    value* items = tl_arena.values(parts);
    if (items == nullptr && parts != 0) {
      return ee::limit;
    }
    std::size_t i = 0;
    for (std::size_t k = 0; k < parts; ++k) {
      if (k + 1 == parts) {
        items[k] = value::string(s.substr(i));  // the last part keeps the rest
        break;
      }
      std::size_t len = 0;
      std::size_t next = 0;
      if (sep.empty()) {
        len = util::utf8_sequence(s, i);
        len = len == 0 ? 1 : len;
        next = i + len;
      } else {
        const std::size_t at = s.find(sep, i);
        len = at - i + (after ? sep.size() : 0);
        next = at + sep.size();
      }
      items[k] = value::string(s.substr(i, len));
      i = next;
    }
    out = value::list(items, parts);
    return ee::none;
  }

  // Go's strings.ReplaceAll; an empty `old` matches before every UTF-8 sequence and at the end.
  static ee replace_all(std::string_view s, std::string_view old, std::string_view with, value& out,
                        int64_t limit = -1) noexcept {
    if (old == with || limit == 0 || (!old.empty() && s.find(old) == std::string_view::npos)) {
      out = value::string(s);
      return ee::none;
    }
    text_out t;
    std::size_t i = 0;
    if (old.empty()) {
      for (; i < s.size() && limit != 0; --limit) {
        t.put(with);
        std::size_t len = util::utf8_sequence(s, i);
        len = len == 0 ? 1 : len;
        t.put(s.substr(i, len));
        i += len;
      }
      if (limit != 0) {
        t.put(with);
      }
      t.put(s.substr(i));
      return t.done(out);
    }
    for (std::size_t at = s.find(old); at != std::string_view::npos && limit != 0; at = s.find(old, i), --limit) {
      t.put(s.substr(i, at - i));
      t.put(with);
      i = at + old.size();
    }
    t.put(s.substr(i));
    return t.done(out);
  }

  // keys(m) or values(m): in the map literal's order, or the JSON object's document order.
  static ee keys_or_values(const value& m, bool keys, value& out) noexcept {
    if (!m.is_object()) {
      return ee::type_mismatch;
    }
    const std::size_t n = object_size(m);
    value* items = tl_arena.values(n);
    if (items == nullptr && n != 0) {
      return ee::limit;
    }
    std::size_t i = 0;
    for_each_entry(m, [&](std::string_view k, const value& v) {
      items[i++] = keys ? value::string(k) : v;
      return true;
    });
    out = value::list(items, n);
    return ee::none;
  }

  // strings.ToUpper / ToLower: Unicode simple case mapping rune by rune (ASCII without a lookup).
  // As strings.Map does, a byte that is not UTF-8 comes out as U+FFFD.
  static ee case_map(const value& v, bool up, value& out) noexcept {
    if (v.kind != vk::string) {
      return ee::type_mismatch;
    }
    const std::string_view s = v.as_string();
    text_out t;
    for (std::size_t i = 0; i < s.size();) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x80) {
        t.put(static_cast<char>(up && c >= 'a' && c <= 'z' ? c - 32 : !up && c >= 'A' && c <= 'Z' ? c + 32 : c));
        ++i;
        continue;
      }
      const std::size_t len = util::utf8_sequence(s, i);
      char32_t mapped = 0;
      if (len == 0) {
        t.put("\xEF\xBF\xBD");
        ++i;
        continue;
      }
      if (!rules::unicode_case(decode_rune(s, i, len), up, mapped)) {
        t.put(s.substr(i, len));  // no case tables: as it is
        i += len;
        continue;
      }
      char enc[4];
      t.put({enc, encode_rune(mapped, enc)});
      i += len;
    }
    return t.done(out);
  }

  static bool parse_ip(std::string_view s, int family) noexcept {
    char buf[64];
    if (s.size() >= sizeof buf) {
      return false;
    }
    std::memcpy(buf, s.data(), s.size());
    buf[s.size()] = '\0';
    unsigned char addr[16];
    return inet_pton(family, buf, addr) == 1;
  }

  // Go's type name of `v` in fmt's error forms: a number read from JSON is Go's float64.
  static const char* go_type_name(const value& v) noexcept {
    switch (v.kind) {
      case vk::string: return "string";
      case vk::integer: return v.json_number() ? "float64" : "int";
      case vk::floating: return "float64";
      case vk::boolean: return "bool";
      case vk::nil: return "<nil>";
      default: return is_array(v) ? "[]interface {}" : v.is_object() ? "map[string]interface {}" : "<nil>";
    }
  }

  // Go's fmt.Sprintf for the verbs duration_expr and messages use: %d %s %v %f %t %q %x %%, with
  // flags (-, 0, +, space), width and precision. A verb that does not fit its argument prints as
  // Go does: %!d(string=x), %!s(int=3), %!f(int=3). Missing arguments print %!d(MISSING), extra
  // ones %!(EXTRA int=1, string=x). The result is at most 8 KiB (an evaluation error beyond).
  static ee sprintf(const value* a, uint32_t n, value& out) noexcept {
    if (a[0].kind != vk::string) {
      return ee::type_mismatch;
    }
    const std::string_view fmt = a[0].as_string();
    char buf[8192];
    std::size_t len = 0;
    auto put = [&](std::string_view s) {
      const std::size_t k = std::min(s.size(), sizeof buf - len);
      if (k > 0) { // an empty view may have a null data pointer
        std::memcpy(buf + len, s.data(), k);
      }
      len += k;
      return k == s.size();
    };
    uint32_t next = 1;
    for (std::size_t i = 0; i < fmt.size(); ++i) {
      if (fmt[i] != '%') {
        if (!put(fmt.substr(i, 1))) {
          return ee::limit;
        }
        continue;
      }
      std::size_t j = i + 1;
      bool minus = false, zero = false, plus = false, space = false, sharp = false;
      for (; j < fmt.size(); ++j) {
        const char c = fmt[j];
        if (c == '#') {
          sharp = true;
        } else if (c == '-') {
          minus = true;
        } else if (c == '0') {
          zero = true;
        } else if (c == '+') {
          plus = true;
        } else if (c == ' ') {
          space = true;
        } else {
          break;
        }
      }
      int width = 0, precision = -1;
      while (j < fmt.size() && fmt[j] >= '0' && fmt[j] <= '9') {
        width = std::min(width * 10 + (fmt[j++] - '0'), static_cast<int>(sizeof buf) + 1); // past it: too long
      }
      if (j < fmt.size() && fmt[j] == '.') {
        precision = 0;
        for (++j; j < fmt.size() && fmt[j] >= '0' && fmt[j] <= '9'; ++j) {
          precision = std::min(precision * 10 + (fmt[j] - '0'), static_cast<int>(sizeof buf) + 1);
        }
      }
      if (j >= fmt.size()) {
        if (!put("%!(NOVERB)")) {
          return ee::limit;
        }
        break;
      }
      const char verb = fmt[j];
      i = j;
      if (verb == 'v') {
        plus = false; // Go: %+v is another form of %v (field names), not a sign
      }
      if (verb == '%') {
        if (!put("%")) {
          return ee::limit;
        }
        continue;
      }
      char quoted[sizeof buf + 16]; // %q, %x of a string, an integer, %f: at most the result's size
      const bool missing = next >= n;
      const value v = missing ? value::nil() : a[next++];
      bool numeric = false;
      bool bad = missing;
      std::string_view long_text; // what the directive prints, before padding
      auto text = [&](std::string_view s) { long_text = s; };
      std::size_t runes = std::string::npos; // a string body's width in runes (npos: its bytes)
      if (!missing && (is_array(v) || v.is_object()) && (verb == 's' || verb == 'd' || verb == 't' || verb == 'f')) {
        // Go applies the verb to each element: for elements that fit it, that is the %v form.
        value sv;
        if (to_string_value(v, sv) != ee::none) {
          bad = true;
        } else {
          long_text = sv.as_string();
        }
      } else if (!missing) {
        switch (verb) {
          case 'd':
          case 'x':
          case 'X':
            if (v.kind == vk::integer) {
              // Digits, at least `precision` of them (none for 0 at precision 0), then Go's 0x
              // prefix for %#x after the sign.
              const int64_t x = v.as_int();
              const uint64_t mag = x < 0 ? 0 - static_cast<uint64_t>(x) : static_cast<uint64_t>(x);
              char digits[32];
              std::size_t dl = static_cast<std::size_t>(
                  std::to_chars(digits, digits + sizeof digits, mag, verb == 'd' ? 10 : 16).ptr - digits);
              if (precision == 0 && mag == 0) {
                dl = 0; // and no prefix either
              }
              // Go: zero padding to a width is a precision (a sign keeps its place), so the zeros
              // come after a sign and a 0x.
              if (precision < 0 && zero && !minus && width > 0) {
                precision = width - (x < 0 || plus || space ? 1 : 0);
              }
              if (verb == 'X') {
                for (std::size_t k = 0; k < dl; ++k) {
                  digits[k] = static_cast<char>(std::toupper(static_cast<unsigned char>(digits[k])));
                }
              }
              std::size_t ql = 0;
              if (x < 0) {
                quoted[ql++] = '-';
              }
              if (sharp && verb != 'd' && dl > 0) {
                quoted[ql++] = '0';
                quoted[ql++] = verb == 'X' ? 'X' : 'x';
              }
              for (std::size_t k = dl; precision > 0 && k < static_cast<std::size_t>(precision); ++k) {
                quoted[ql++] = '0';
              }
              std::memcpy(quoted + ql, digits, dl);
              ql += dl;
              long_text = std::string_view(quoted, ql);
              numeric = true;
              zero = false; // the zeros are in (a precision turns the 0 flag off in Go too)
            } else if (v.kind == vk::string && verb != 'd') {
              // Bytes in hex; the precision counts input bytes, % x spaces them, %#x prefixes.
              const char* hex = verb == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
              std::string_view in = v.as_string();
              if (precision >= 0 && in.size() > static_cast<std::size_t>(precision)) {
                in = in.substr(0, static_cast<std::size_t>(precision));
              }
              // 2 digits a byte, a space between bytes, 0x before the first (or each, with a space).
              const std::size_t bytes = in.size();
              const std::size_t need = 2 * bytes + (space && bytes > 0 ? bytes - 1 : 0) +
                                       (sharp ? 2 * (space ? bytes : std::min<std::size_t>(bytes, 1)) : 0);
              if (need > sizeof quoted) {
                return ee::limit;
              }
              std::size_t ql = 0;
              for (std::size_t k = 0; k < in.size(); ++k) {
                if (space && k > 0) {
                  quoted[ql++] = ' ';
                }
                if (sharp && (space || k == 0)) {
                  quoted[ql++] = '0';
                  quoted[ql++] = verb == 'X' ? 'X' : 'x';
                }
                const auto c = static_cast<unsigned char>(in[k]);
                quoted[ql++] = hex[c >> 4];
                quoted[ql++] = hex[c & 15];
              }
              long_text = std::string_view(quoted, ql);
            } else {
              bad = true;
            }
            break;
          case 'f':
          case 'F':
            // A float, or a number read from JSON (a float64 to Go whatever its digits).
            if (v.kind == vk::floating || v.json_number()) {
              const auto r = std::to_chars(quoted, quoted + sizeof quoted, v.as_number(), std::chars_format::fixed,
                                           precision < 0 ? 6 : precision);
              if (r.ec != std::errc()) {
                return ee::limit; // longer than a result may be
              }
              std::size_t fl = static_cast<std::size_t>(r.ptr - quoted);
              if (sharp && std::string_view(quoted, fl).find('.') == std::string_view::npos && fl < sizeof quoted) {
                quoted[fl++] = '.'; // %#f keeps its decimal point
              }
              long_text = std::string_view(quoted, fl);
              numeric = true;
            } else {
              bad = true;
            }
            break;
          case 't':
            if (v.kind == vk::boolean) {
              text(v.as_bool() ? "true" : "false");
            } else {
              bad = true;
            }
            break;
          case 's':
          case 'v':
          case 'q':
            if (v.kind == vk::string) {
              // The precision counts runes, as Go's does.
              long_text = v.as_string();
              if (precision >= 0) {
                long_text = long_text.substr(0, rune_prefix(long_text, static_cast<std::size_t>(precision)));
              }
              if (verb == 'q' && sharp && can_backquote(long_text)) { // %#q: `raw` when it can be
                if (long_text.size() + 2 > sizeof quoted) {
                  return ee::limit;
                }
                quoted[0] = '`';
                std::memcpy(quoted + 1, long_text.data(), long_text.size());
                quoted[long_text.size() + 1] = '`';
                long_text = std::string_view(quoted, long_text.size() + 2);
              } else if (verb == 'q' || (verb == 'v' && sharp)) { // %+q: ASCII only; %#v: Go syntax
                const std::size_t ql = go_quote(long_text, quoted, sizeof quoted, plus);
                if (ql == 0) {
                  return ee::limit;
                }
                long_text = std::string_view(quoted, ql);
              }
              runes = rune_count(long_text);
            } else if (verb == 'v') {
              value sv;
              if (to_string_value(v, sv) != ee::none) {
                bad = true;
              } else {
                text(sv.as_string());
                numeric = v.is_number();
              }
            } else {
              bad = true;
            }
            break;
          default:
            bad = true;
        }
      }
      if (bad) {
        // Go: %!d(string=x), %!d(MISSING)
        char b[160];
        std::size_t bl = 0;
        auto add = [&](std::string_view s) {
          const std::size_t k = std::min(s.size(), sizeof b - bl);
          if (k > 0) {
            std::memcpy(b + bl, s.data(), k);
          }
          bl += k;
        };
        add("%!");
        add(std::string_view(&verb, 1));
        if (missing) {
          add("(MISSING)");
        } else {
          value sv;
          add("(");
          add(go_type_name(v));
          if (v.kind != vk::nil && to_string_value(v, sv) == ee::none) {
            add("=");
            add(sv.as_string());
          }
          add(")");
        }
        if (!put({b, bl})) {
          return ee::limit;
        }
        continue;
      }
      std::string_view body = long_text;
      std::string_view sign;
      if (numeric && (plus || space) && !body.empty() && body[0] != '-') {
        sign = plus ? "+" : " ";
      }
      const std::size_t shown = (runes != std::string::npos ? runes : body.size()) + sign.size();
      const std::size_t pad = width > 0 && static_cast<std::size_t>(width) > shown ? static_cast<std::size_t>(width) - shown : 0;
      bool ok = true;
      if (!minus && !(zero && numeric)) {
        for (std::size_t k = 0; k < pad && ok; ++k) {
          ok = put(" ");
        }
      }
      if (numeric && !body.empty() && body[0] == '-') {
        ok = ok && put("-");
        body.remove_prefix(1);
      }
      ok = ok && put(sign);
      if (!minus && zero && numeric) {
        for (std::size_t k = 0; k < pad && ok; ++k) {
          ok = put("0");
        }
      }
      ok = ok && put(body);
      if (minus) {
        for (std::size_t k = 0; k < pad && ok; ++k) {
          ok = put(" ");
        }
      }
      if (!ok) {
        return ee::limit;
      }
    }
    // Arguments no verb took: Go appends %!(EXTRA type=value, ...).
    for (uint32_t k = next; k < n; ++k) {
      value sv;
      const bool shown = a[k].kind != vk::nil && to_string_value(a[k], sv) == ee::none;
      if (!put(k == next ? "%!(EXTRA " : ", ") || !put(go_type_name(a[k])) ||
          !put(a[k].kind == vk::nil ? "" : "=") || !put(shown ? sv.as_string() : std::string_view()) ||
          (k + 1 == n && !put(")"))) {
        return ee::limit;
      }
    }
    char* p = tl_arena.bytes(len);
    if (p == nullptr && len > 0) {
      return ee::limit;
    }
    if (len > 0) {
      std::memcpy(p, buf, len);
    }
    out = value::string({p == nullptr ? "" : p, len});
    return ee::none;
  }

  ee call(const node& n, const frame* f, value& out) noexcept {
    value a[16];
    for (uint32_t k = 0; k < n.args_count && k < 16; ++k) {
      if (ee e = eval(p_.args[n.args_begin + k], f, a[k]); e != ee::none) {
        return e;
      }
    }
    auto str = [&](int k) { return a[k].kind == vk::string; };
    switch (n.fn) {
      case builtin::len:
        if (a[0].kind == vk::string) {
          out = value::integer(static_cast<int64_t>(utf8_length(a[0].as_string())));
        } else if (is_array(a[0])) {
          out = value::integer(static_cast<int64_t>(array_size(a[0])));
        } else if (a[0].is_object()) {
          out = value::integer(static_cast<int64_t>(object_size(a[0])));
        } else {
          return ee::type_mismatch;
        }
        return ee::none;
      case builtin::upper:
      case builtin::cs_upper: return case_map(a[0], true, out);
      case builtin::lower:
      case builtin::cs_lower: return case_map(a[0], false, out);
      case builtin::trim:
      case builtin::cs_trim:
      case builtin::cs_trim_space:
        if (!str(0) || (n.args_count == 2 && !str(1))) {
          return ee::type_mismatch;
        }
        out = value::string(n.args_count == 2 ? trim_set(a[0].as_string(), a[1].as_string(), true, true)
                                              : trim_space(a[0].as_string()));
        return ee::none;
      case builtin::trim_prefix:
      case builtin::cs_trim_prefix:
      case builtin::trim_suffix:
      case builtin::cs_trim_suffix: {
        if (!str(0) || !str(1)) {
          return ee::type_mismatch;
        }
        std::string_view s = a[0].as_string(), x = a[1].as_string();
        bool prefix = n.fn == builtin::trim_prefix || n.fn == builtin::cs_trim_prefix;
        if (prefix && s.starts_with(x)) {
          s.remove_prefix(x.size());
        } else if (!prefix && s.ends_with(x)) {
          s.remove_suffix(x.size());
        }
        out = value::string(s);
        return ee::none;
      }
      case builtin::has_prefix:
      case builtin::has_suffix:
        if (!str(0) || !str(1)) {
          return ee::type_mismatch;
        }
        out = value::boolean(n.fn == builtin::has_prefix ? a[0].as_string().starts_with(a[1].as_string())
                                                         : a[0].as_string().ends_with(a[1].as_string()));
        return ee::none;
      case builtin::index_of:
      case builtin::cs_index: {
        if (!str(0) || !str(1)) {
          return ee::type_mismatch;
        }
        auto pos = a[0].as_string().find(a[1].as_string());
        out = value::integer(pos == std::string_view::npos ? -1 : static_cast<int64_t>(pos));
        return ee::none;
      }
      case builtin::to_int: {
        int64_t i = 0;
        if (a[0].kind == vk::integer || a[0].kind == vk::floating) {
          if (!to_index(a[0], i)) {
            return ee::type_mismatch;
          }
        } else if (a[0].kind == vk::string) {
          std::string_view s = a[0].as_string();
          const char* b = s.data();
          const char* e = s.data() + s.size();
          if (b != e && *b == '+') {
            ++b;
          }
          auto r = std::from_chars(b, e, i);
          if (r.ec != std::errc() || r.ptr != e || b == e || (b != s.data() && *b == '-')) {
            return ee::type_mismatch;
          }
        } else {
          return ee::type_mismatch;
        }
        out = value::integer(i);
        return ee::none;
      }
      case builtin::to_float:
      case builtin::cs_atof: {
        if (a[0].is_number()) {
          out = value::floating(a[0].as_number());
          return ee::none;
        }
        if (!str(0)) {
          return ee::type_mismatch;
        }
        std::string_view s = a[0].as_string();
        const char* b = s.data();
        const char* e = s.data() + s.size();
        if (b != e && *b == '+') {
          ++b;
        }
        double d = 0;
        auto r = std::from_chars(b, e, d);
        if (r.ec != std::errc() || r.ptr != e || b == e) {
          if (n.fn == builtin::cs_atof) {
            out = value::floating(0);  // CrowdSec's Atof logs and returns 0
            return ee::none;
          }
          return ee::type_mismatch;
        }
        out = value::floating(d);
        return ee::none;
      }
      case builtin::to_string:
      case builtin::cs_to_string: return to_string_value(a[0], out);
      case builtin::split: {
        if (!str(0) || !str(1) || (n.args_count == 3 && a[2].kind != vk::integer)) {
          return ee::type_mismatch;
        }
        return split(a[0].as_string(), a[1].as_string(), n.args_count == 3 ? a[2].as_int() : -1, false, out);
      }
      case builtin::replace:
        if (!str(0) || !str(1) || !str(2)) {
          return ee::type_mismatch;
        }
        return replace_all(a[0].as_string(), a[1].as_string(), a[2].as_string(), out);
      case builtin::keys:
      case builtin::values: return keys_or_values(a[0], n.fn == builtin::keys, out);
      case builtin::cs_split:
      case builtin::cs_split_after:
      case builtin::cs_split_n:
      case builtin::cs_split_after_n: {
        const bool with_n = n.fn == builtin::cs_split_n || n.fn == builtin::cs_split_after_n;
        if (!str(0) || !str(1) || (with_n && a[2].kind != vk::integer)) {
          return ee::type_mismatch;
        }
        const bool after = n.fn == builtin::cs_split_after || n.fn == builtin::cs_split_after_n;
        return split(a[0].as_string(), a[1].as_string(), with_n ? a[2].as_int() : -1, after, out);
      }
      case builtin::cs_join:
        if (!str(1)) {
          return ee::type_mismatch;
        }
        return join(a[0], a[1].as_string(), out);
      case builtin::cs_replace:
      case builtin::cs_replace_all: {
        const bool limited = n.fn == builtin::cs_replace;
        if (!str(0) || !str(1) || !str(2) || (limited && a[3].kind != vk::integer)) {
          return ee::type_mismatch;
        }
        return replace_all(a[0].as_string(), a[1].as_string(), a[2].as_string(), out, limited ? a[3].as_int() : -1);
      }
      case builtin::cs_fields:
        if (!str(0)) {
          return ee::type_mismatch;
        }
        return fields(a[0].as_string(), out);
      case builtin::cs_trim_left:
      case builtin::cs_trim_right:
        if (!str(0) || !str(1)) {
          return ee::type_mismatch;
        }
        out = value::string(trim_set(a[0].as_string(), a[1].as_string(), n.fn == builtin::cs_trim_left,
                                     n.fn == builtin::cs_trim_right));
        return ee::none;
      case builtin::cs_index_any:
        if (!str(0) || !str(1)) {
          return ee::type_mismatch;
        }
        out = value::integer(index_any(a[0].as_string(), a[1].as_string()));
        return ee::none;
      case builtin::cs_get: {
        // Get([]string, int): "" past the end; a negative index fails, as it panics in Go.
        if (!is_array(a[0]) || a[1].kind != vk::integer) {
          return ee::type_mismatch;
        }
        if (a[1].as_int() < 0) {
          return ee::index_out_of_range;
        }
        const auto i = static_cast<std::size_t>(a[1].as_int());
        if (i >= array_size(a[0])) {
          out = value::string("");
          return ee::none;
        }
        out = array_at(a[0], i);
        return out.kind == vk::string ? ee::none : ee::type_mismatch;
      }
      case builtin::cs_ip_in_range:
        if (!str(0) || !str(1)) {
          return ee::type_mismatch;
        }
        out = value::boolean(ip_in_range(a[0].as_string(), a[1].as_string()));
        return ee::none;
      case builtin::cs_ip_to_range:
        if (!str(0) || !str(1)) {
          return ee::type_mismatch;
        }
        return ip_to_range(a[0].as_string(), a[1].as_string(), out);
      case builtin::cs_b64_decode:
        if (!str(0)) {
          return ee::type_mismatch;
        }
        return b64_decode(a[0].as_string(), out);
      case builtin::cs_path_unescape:
      case builtin::cs_query_unescape:
        if (!str(0)) {
          return ee::type_mismatch;
        }
        return url_unescape(a[0].as_string(), n.fn == builtin::cs_query_unescape, out);
      case builtin::cs_path_escape:
      case builtin::cs_query_escape:
        if (!str(0)) {
          return ee::type_mismatch;
        }
        return url_escape(a[0].as_string(), n.fn == builtin::cs_query_escape, out);
      case builtin::cs_match:
        if (!str(0) || !str(1)) {
          return ee::type_mismatch;
        }
        return glob_match(a[0].as_string(), a[1].as_string(), out);
      case builtin::cs_float_approx_equal:
        if (!a[0].is_number() || !a[1].is_number()) {
          return ee::type_mismatch;
        }
        out = value::boolean(std::fabs(a[0].as_number() - a[1].as_number()) < 1e-6);
        return ee::none;
      case builtin::to_json: {
        text_out t;
        if (ee e = print_json(a[0], t); e != ee::none) {
          return e;
        }
        return t.done(out);
      }
      case builtin::cs_sprintf: return sprintf(a, n.args_count, out);
      case builtin::cs_decisions_count:
      case builtin::cs_decisions_since_count: {
        if (!str(0) || (n.fn == builtin::cs_decisions_since_count && !str(1))) {
          return ee::type_mismatch;
        }
        const int64_t c = env_.decisions_count(a[0].as_string(),
                                               n.fn == builtin::cs_decisions_since_count ? a[1].as_string() : "");
        if (c < 0) {
          return ee::type_mismatch;
        }
        out = value::integer(c);
        return ee::none;
      }
      case builtin::type: {
        const char* t = "unknown";
        switch (a[0].kind) {
          case vk::nil: t = "nil"; break;
          case vk::boolean: t = "bool"; break;
          case vk::integer: t = a[0].json_number() ? "float" : "int"; break;
          case vk::floating: t = "float"; break;
          case vk::string: t = "string"; break;
          case vk::list: t = "array"; break;
          case vk::map: t = "map"; break;
          case vk::json: t = a[0].is_json_array() ? "array" : "map"; break;
          default: break;
        }
        out = value::string(t);
        return ee::none;
      }
      case builtin::first:
      case builtin::last: {
        if (!is_array(a[0])) {
          return ee::type_mismatch;
        }
        std::size_t size = array_size(a[0]);
        out = size == 0 ? value::nil() : array_at(a[0], n.fn == builtin::first ? 0 : size - 1);
        return ee::none;
      }
      case builtin::get: {
        if (a[0].is_object()) {
          if (!str(1)) {
            return ee::type_mismatch;
          }
          out = object_member(a[0], a[1].as_string());
          return ee::none;
        }
        if (!is_array(a[0])) {
          return a[0].is_nil() ? (out = value::nil(), ee::none) : ee::type_mismatch;
        }
        int64_t i = 0;
        if (!to_index(a[1], i)) {
          return ee::type_mismatch;
        }
        auto size = static_cast<int64_t>(array_size(a[0]));
        if (i < 0) {
          i += size;
        }
        out = i < 0 || i >= size ? value::nil() : array_at(a[0], static_cast<std::size_t>(i));
        return ee::none;
      }
      case builtin::abs:
        if (a[0].kind == vk::integer) {
          out = a[0].as_int() < 0 ? value::integer(static_cast<int64_t>(0ull - static_cast<uint64_t>(a[0].as_int()))) : a[0];
        } else if (a[0].kind == vk::floating) {
          out = value::floating(std::fabs(a[0].as_float()));
        } else {
          return ee::type_mismatch;
        }
        return ee::none;
      case builtin::cs_is_ipv4:
      case builtin::cs_is_ipv6:
      case builtin::cs_is_ip: {
        if (!str(0)) {
          return ee::type_mismatch;
        }
        bool v4 = parse_ip(a[0].as_string(), AF_INET), v6 = !v4 && parse_ip(a[0].as_string(), AF_INET6);
        out = value::boolean(n.fn == builtin::cs_is_ipv4 ? v4 : n.fn == builtin::cs_is_ipv6 ? v6 : (v4 || v6));
        return ee::none;
      }
      case builtin::cs_key_exists: {
        if (!str(0)) {
          return ee::type_mismatch;
        }
        bool found = false;
        if (a[1].is_object()) {
          object_member(a[1], a[0].as_string(), &found);
        } else if (!a[1].is_nil()) {
          return ee::type_mismatch;
        }
        out = value::boolean(found);
        return ee::none;
      }
      default: return ee::unsupported;
    }
  }

  const program_data& p_;
  const environment& env_;
  const uint32_t* lifts_;
};

}  // namespace

eval_result evaluate(const program_data& p, const environment& env, const uint32_t* lifts, node_id from) noexcept {
  tl_arena.vused = 0;
  tl_arena.cused = 0;
  eval_result r;
  r.err = evaluator(p, env, lifts).eval(from == no_node ? p.root : from, nullptr, r.v);
  if (r.err == eval_error::chain_nil_) {
    r.err = eval_error::none;  // defensive: every chain is wrapped, so this is not expected
    r.v = value::nil();
  }
  if (r.err != eval_error::none) {
    r.v = value::nil();
  }
  return r;
}

}  // namespace detail

// ---------- program ----------

eval_result program::eval(const environment& env) const noexcept {
  return detail::evaluate(*d_, env, lifts_ ? lifts_->data() : nullptr);
}

eval_result program::eval_node(node_id id, const environment& env) const noexcept {
  return detail::evaluate(*d_, env, nullptr, id);
}

bool_result program::eval_bool(const environment& env) const noexcept {
  eval_result r = detail::evaluate(*d_, env, lifts_ ? lifts_->data() : nullptr);
  if (r.err != eval_error::none) {
    return {false, r.err};
  }
  if (r.v.kind != value_kind::boolean) {
    return {false, eval_error::not_bool};
  }
  return {r.v.as_bool(), eval_error::none};
}

program program::with_lifts(std::vector<uint32_t> lifts) const {
  lifts.resize(d_->nodes.size(), 0);
  return program(d_, std::make_shared<const std::vector<uint32_t>>(std::move(lifts)));
}

value_hint program::result_hint() const noexcept { return d_->nodes[d_->root].hint; }
std::string_view program::source() const noexcept { return d_->source; }
node_id program::root() const noexcept { return d_->root; }
std::span<const node> program::nodes() const noexcept { return d_->nodes; }
std::span<const node_id> program::args() const noexcept { return d_->args; }
const string_set& program::set(uint32_t set_id) const noexcept { return d_->sets[set_id]; }
std::string_view program::regex_pattern(uint32_t regex_id) const noexcept { return d_->regexes[regex_id].pattern(); }
bool program::regex_on_hyperscan(uint32_t regex_id) const noexcept { return d_->regexes[regex_id].on_hyperscan(); }

}  // namespace vigil::expr
