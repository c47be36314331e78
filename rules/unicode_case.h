#pragma once
// Unicode simple case mapping, what Go's unicode.ToUpper and unicode.ToLower give, read from the C
// library's C.UTF-8 tables (glibc's libc-bin ships them). Where those tables are missing,
// `unicode_case` returns false and the caller keeps its own fallback.

#include <locale.h>
#include <wctype.h>

namespace vigil::rules {

inline locale_t utf8_ctype() noexcept {
  static const locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
  return loc;
}

/// The upper- (or lower-) case mapping of the code point `r` into `out`; false without tables.
inline bool unicode_case(char32_t r, bool upper, char32_t& out) noexcept {
  const locale_t loc = utf8_ctype();
  if (loc == static_cast<locale_t>(nullptr)) {
    return false;
  }
  const auto w = static_cast<wint_t>(r);
  out = static_cast<char32_t>(upper ? towupper_l(w, loc) : towlower_l(w, loc));
  return true;
}

} // namespace vigil::rules
