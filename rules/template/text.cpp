// UTF-8 and the few Unicode properties the template functions need (Go's unicode.IsPrint,
// IsSpace, case mapping, strconv.Quote). Without Go's tables, the properties are exact for
// ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic and approximated elsewhere (unassigned
// code points count as printable, other scripts have no case).
#include <cstdint>

#include "rules/template/internal.h"
#include "rules/unicode_case.h"
#include "rules/unicode_print.h"

namespace vigil::rules::tmpl::detail {
namespace {

constexpr char32_t rune_error = 0xFFFD;

bool in(char32_t r, char32_t lo, char32_t hi) noexcept {
  return r >= lo && r <= hi;
}

void append_hex(std::string& out, std::uint32_t v, int digits) {
  static constexpr char hex[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) {
    out += hex[(v >> (4 * i)) & 0xF];
  }
}

// strconv's appendEscapedRune for a double-quoted string or a single-quoted rune.
void append_escaped(std::string& out, char32_t r, char quote) {
  if (r == static_cast<char32_t>(quote) || r == '\\') {
    out += '\\';
    out += static_cast<char>(r);
    return;
  }
  if (is_print(r)) {
    append_rune(out, r);
    return;
  }
  switch (r) {
  case '\a':
    out += "\\a";
    return;
  case '\b':
    out += "\\b";
    return;
  case '\f':
    out += "\\f";
    return;
  case '\n':
    out += "\\n";
    return;
  case '\r':
    out += "\\r";
    return;
  case '\t':
    out += "\\t";
    return;
  case '\v':
    out += "\\v";
    return;
  default:
    break;
  }
  if (r < ' ' || r == 0x7F) {
    out += "\\x";
    append_hex(out, r, 2);
  } else if (r > 0x10FFFF || in(r, 0xD800, 0xDFFF)) {
    out += "\\ufffd";
  } else if (r < 0x10000) {
    out += "\\u";
    append_hex(out, r, 4);
  } else {
    out += "\\U";
    append_hex(out, r, 8);
  }
}

} // namespace

std::size_t decode_rune(std::string_view s, std::size_t i, char32_t& r) noexcept {
  const auto b0 = static_cast<unsigned char>(s[i]);
  r = rune_error;
  if (b0 < 0x80) {
    r = b0;
    return 1;
  }
  std::size_t n = 0;
  char32_t min = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
    r = b0 & 0x1F;
    min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    r = b0 & 0x0F;
    min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    r = b0 & 0x07;
    min = 0x10000;
  } else {
    r = rune_error;
    return 1;
  }
  if (i + n > s.size()) {
    r = rune_error;
    return 1;
  }
  for (std::size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      r = rune_error;
      return 1;
    }
    r = (r << 6) | (b & 0x3F);
  }
  if (r < min || r > 0x10FFFF || in(r, 0xD800, 0xDFFF)) {
    r = rune_error;
    return 1;
  }
  return n;
}

void append_rune(std::string& out, char32_t r) {
  if (r > 0x10FFFF || in(r, 0xD800, 0xDFFF)) {
    r = rune_error;
  }
  if (r < 0x80) {
    out += static_cast<char>(r);
  } else if (r < 0x800) {
    out += static_cast<char>(0xC0 | (r >> 6));
    out += static_cast<char>(0x80 | (r & 0x3F));
  } else if (r < 0x10000) {
    out += static_cast<char>(0xE0 | (r >> 12));
    out += static_cast<char>(0x80 | ((r >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (r & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (r >> 18));
    out += static_cast<char>(0x80 | ((r >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((r >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (r & 0x3F));
  }
}

bool is_space(char32_t r) noexcept {
  switch (r) {
  case '\t':
  case '\n':
  case '\v':
  case '\f':
  case '\r':
  case ' ':
  case 0x85:
  case 0xA0:
  case 0x1680:
  case 0x2028:
  case 0x2029:
  case 0x202F:
  case 0x205F:
  case 0x3000:
    return true;
  default:
    return in(r, 0x2000, 0x200A);
  }
}

bool is_letter_or_digit(char32_t r) noexcept {
  if (r < 0x80) {
    return (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z');
  }
  if (r <= 0xFF) {
    return r == 0xAA || r == 0xB5 || r == 0xBA || (r >= 0xC0 && r != 0xD7 && r != 0xF7);
  }
  if (is_space(r) || !is_print(r)) {
    return false;
  }
  // Punctuation and symbol blocks; everything else is taken for a letter.
  return !(in(r, 0x2000, 0x2BFF) || in(r, 0x3000, 0x303F) || in(r, 0xFE30, 0xFE4F) || in(r, 0xFF00, 0xFF0F) ||
           in(r, 0xFF1A, 0xFF20) || in(r, 0x1F000, 0x1FAFF));
}

char32_t to_upper(char32_t r) noexcept {
  if (r < 0x80) {
    return r >= 'a' && r <= 'z' ? r - 0x20 : r;
  }
  if (char32_t m = 0; unicode_case(r, true, m)) {
    return m;
  }
  // Without the C library's tables: the common scripts.
  if (r == 0xB5) {
    return 0x39C;
  }
  if ((in(r, 0xE0, 0xFE) && r != 0xF7)) {
    return r - 0x20;
  }
  if (r == 0xFF) {
    return 0x178;
  }
  if (in(r, 0x100, 0x12F) || in(r, 0x132, 0x137) || in(r, 0x14A, 0x177)) {
    return (r & 1) != 0 ? r - 1 : r;
  }
  if (in(r, 0x139, 0x148) || in(r, 0x179, 0x17E)) {
    return (r & 1) == 0 ? r - 1 : r;
  }
  if (r == 0x131) {
    return 'I';
  }
  if (r == 0x17F) {
    return 'S';
  }
  if (in(r, 0x3B1, 0x3C1) || in(r, 0x3C3, 0x3CB)) {
    return r - 0x20;
  }
  if (r == 0x3C2) {
    return 0x3A3;
  }
  if (r == 0x3AC) {
    return 0x386;
  }
  if (in(r, 0x3AD, 0x3AF)) {
    return r - 0x25;
  }
  if (r == 0x3CC) {
    return 0x38C;
  }
  if (in(r, 0x3CD, 0x3CE)) {
    return r - 0x3F;
  }
  if (in(r, 0x430, 0x44F)) {
    return r - 0x20;
  }
  if (in(r, 0x450, 0x45F)) {
    return r - 0x50;
  }
  if (in(r, 0x460, 0x481) || in(r, 0x48A, 0x4BF)) {
    return (r & 1) != 0 ? r - 1 : r;
  }
  if (in(r, 0xFF41, 0xFF5A)) {
    return r - 0x20;
  }
  return r;
}

char32_t to_title(char32_t r) noexcept {
  // The four Latin digraphs have a title case of their own (U+01C5, U+01C8, U+01CB, U+01F2).
  if (in(r, 0x1C4, 0x1CC)) {
    return 0x1C5 + 3 * ((r - 0x1C4) / 3);
  }
  if (in(r, 0x1F1, 0x1F3)) {
    return 0x1F2;
  }
  // Georgian Mkhedruli letters are their own title case (their upper case is Mtavruli).
  if (in(r, 0x10D0, 0x10FA) || in(r, 0x10FD, 0x10FF)) {
    return r;
  }
  return to_upper(r);
}

char32_t to_lower(char32_t r) noexcept {
  if (r < 0x80) {
    return r >= 'A' && r <= 'Z' ? r + 0x20 : r;
  }
  if (char32_t m = 0; unicode_case(r, false, m)) {
    return m;
  }
  // Without the C library's tables: the common scripts.
  if (in(r, 0xC0, 0xDE) && r != 0xD7) {
    return r + 0x20;
  }
  if (r == 0x178) {
    return 0xFF;
  }
  if (r == 0x130) {
    return 'i';
  }
  if (in(r, 0x100, 0x12F) || in(r, 0x132, 0x137) || in(r, 0x14A, 0x177)) {
    return (r & 1) == 0 ? r + 1 : r;
  }
  if (in(r, 0x139, 0x148) || in(r, 0x179, 0x17E)) {
    return (r & 1) != 0 ? r + 1 : r;
  }
  if (in(r, 0x391, 0x3A1) || in(r, 0x3A3, 0x3AB)) {
    return r + 0x20;
  }
  if (r == 0x386) {
    return 0x3AC;
  }
  if (in(r, 0x388, 0x38A)) {
    return r + 0x25;
  }
  if (r == 0x38C) {
    return 0x3CC;
  }
  if (in(r, 0x38E, 0x38F)) {
    return r + 0x3F;
  }
  if (in(r, 0x410, 0x42F)) {
    return r + 0x20;
  }
  if (in(r, 0x400, 0x40F)) {
    return r + 0x50;
  }
  if (in(r, 0x460, 0x481) || in(r, 0x48A, 0x4BF)) {
    return (r & 1) == 0 ? r + 1 : r;
  }
  if (in(r, 0xFF21, 0xFF3A)) {
    return r + 0x20;
  }
  return r;
}

} // namespace vigil::rules::tmpl::detail

namespace vigil::rules::tmpl {

std::string go_quote(std::string_view s) { return detail::go_quote(s, false); }

} // namespace vigil::rules::tmpl

namespace vigil::rules::tmpl::detail {

std::string go_quote(std::string_view s, bool ascii_only) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    char32_t r = 0;
    const std::size_t w = decode_rune(s, i, r);
    if (w == 1 && r == rune_error) {
      out += "\\x"; // an invalid byte is shown as such
      append_hex(out, static_cast<unsigned char>(s[i]), 2);
    } else if (ascii_only && r >= 0x80) {
      out += r < 0x10000 ? "\\u" : "\\U";
      append_hex(out, r, r < 0x10000 ? 4 : 8);
    } else {
      append_escaped(out, r, '"');
    }
    i += w;
  }
  out += '"';
  return out;
}

bool can_backquote(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    char32_t r = 0;
    const std::size_t w = decode_rune(s, i, r);
    if ((w == 1 && r == rune_error) || (r < ' ' && r != '\t') || r == '`' || r == 0x7F || r == 0xFEFF) {
      return false;
    }
    i += w;
  }
  return true;
}

} // namespace vigil::rules::tmpl

namespace vigil::rules::tmpl::detail {

std::string go_quote_rune(char32_t r) {
  std::string out = "'";
  if (r > 0x10FFFF || in(r, 0xD800, 0xDFFF)) {
    r = rune_error;
  }
  append_escaped(out, r, '\'');
  out += '\'';
  return out;
}

} // namespace vigil::rules::tmpl::detail
