#pragma once
// Go's unicode.IsPrint, which strconv.Quote follows to decide what to escape: shared by the
// filter language (Sprintf's %q) and the templates (quote, printf %q, js). Without Go's tables
// it is exact for ASCII and Latin-1, and elsewhere rejects the spaces, format characters,
// private use areas and noncharacters Go rejects; a code point Unicode has not assigned counts
// as printable, where Go's tables say it is not.

namespace vigil::rules {

namespace detail_print {
constexpr bool in(char32_t r, char32_t lo, char32_t hi) noexcept { return r >= lo && r <= hi; }
} // namespace detail_print

/// Format characters (Cf) and other non-printables Go's tables list outside the blocks
/// is_print handles wholesale.
constexpr bool is_format_char(char32_t r) noexcept {
  using detail_print::in;
  return in(r, 0x600, 0x605) || r == 0x61C || r == 0x6DD || r == 0x70F || in(r, 0x890, 0x891) || r == 0x8E2 ||
         r == 0x180E || in(r, 0x200B, 0x200F) || in(r, 0x202A, 0x202E) || in(r, 0x2060, 0x2064) ||
         in(r, 0x2066, 0x206F) || r == 0xFEFF || in(r, 0xFFF9, 0xFFFB) || r == 0x110BD || r == 0x110CD ||
         in(r, 0x13430, 0x1343F) || in(r, 0x1BCA0, 0x1BCA3) || in(r, 0x1D173, 0x1D17A) || r == 0xE0001 ||
         in(r, 0xE0020, 0xE007F);
}

/// Go's unicode.IsPrint (letters, marks, numbers, punctuation, symbols and ASCII space).
constexpr bool is_print(char32_t r) noexcept {
  using detail_print::in;
  if (r < 0x80) {
    return r >= 0x20 && r < 0x7F;
  }
  if (r <= 0xFF) {
    return r > 0xA0 && r != 0xAD; // C1 controls, NBSP and the soft hyphen are not printable
  }
  if (r > 0x10FFFF || in(r, 0xD800, 0xDFFF) || in(r, 0xE000, 0xF8FF) || r >= 0xF0000) {
    return false; // invalid, surrogates, private use
  }
  if (in(r, 0xFDD0, 0xFDEF) || (r & 0xFFFE) == 0xFFFE) {
    return false; // noncharacters
  }
  if (r == 0x1680 || in(r, 0x2000, 0x200A) || r == 0x2028 || r == 0x2029 || r == 0x202F || r == 0x205F || r == 0x3000) {
    return false; // spaces other than U+0020
  }
  return !is_format_char(r);
}

} // namespace vigil::rules
