#pragma once
// A hash for short strings (verbs, resource names, user names, literals of rules), read a word at
// a time: whole 8-byte words, then the last (overlapping) word, or for a key under 8 bytes its two
// halves (4-7 bytes) or its first, middle and last bytes (1-3 bytes), each mixed by a
// multiplication. For the hot path's lookups of such keys it costs a few instructions per word,
// where std::hash's Murmur loop cost most of the lookup. Not for keys an attacker chooses to
// collide on in a table that grows without bound: the tables that use it are bounded or fixed.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace vigil::engine {

[[nodiscard]] inline std::uint64_t word_hash(std::string_view s) noexcept {
  constexpr std::uint64_t k = 0x9e3779b97f4a7c15ull;
  const char* p = s.data();
  const std::size_t n = s.size();
  std::uint64_t h = (n + 1) * k;
  auto mix = [&h](std::uint64_t w) {
    h = (h ^ w) * k;
    h ^= h >> 29;
  };
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    mix(w);
  }
  if (i < n) {
    std::uint64_t w = 0;
    if (n >= 8) {
      std::memcpy(&w, p + n - 8, 8);
    } else if (n >= 4) {
      std::uint32_t a, b;
      std::memcpy(&a, p, 4);
      std::memcpy(&b, p + n - 4, 4);
      w = (std::uint64_t{a} << 32) | b;
    } else {
      w = (std::uint64_t{static_cast<unsigned char>(p[0])} << 16) |
          (std::uint64_t{static_cast<unsigned char>(p[n / 2])} << 8) | static_cast<unsigned char>(p[n - 1]);
    }
    mix(w);
  }
  return h ^ (h >> 32);
}

} // namespace vigil::engine
