#pragma once
// UTF-8 as Go decodes it (unicode/utf8): what is a valid sequence, so that text which is not
// UTF-8 can be read the way CrowdSec's Go code reads it, each bad byte one U+FFFD. Shared by the
// filters' regular expressions and the decoder's reading of JSON Go accepts and simdjson refuses.

#include <cstddef>
#include <string_view>

namespace vigil::util {

/// Length of the valid UTF-8 sequence at s[i] (1-4), or 0 if the bytes there are not one (Go's
/// utf8.DecodeRuneInString returns RuneError, width 1, for those: overlong forms, surrogates,
/// code points past U+10FFFF, cut sequences).
inline std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
  const auto b = [&](std::size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u; };
  const unsigned c = b(0);
  if (c < 0x80) {
    return 1;
  }
  const auto cont = [&](std::size_t k) { return (b(k) & 0xC0u) == 0x80u; };
  if (c >= 0xC2 && c <= 0xDF) {
    return cont(1) ? 2 : 0;
  }
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned c1 = b(1);
    const bool ok1 = c == 0xE0 ? (c1 >= 0xA0 && c1 <= 0xBF) : c == 0xED ? (c1 >= 0x80 && c1 <= 0x9F) : cont(1);
    return ok1 && cont(2) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned c1 = b(1);
    const bool ok1 = c == 0xF0 ? (c1 >= 0x90 && c1 <= 0xBF) : c == 0xF4 ? (c1 >= 0x80 && c1 <= 0x8F) : cont(1);
    return ok1 && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

} // namespace vigil::util
