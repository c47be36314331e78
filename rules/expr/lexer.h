#pragma once
// Internal: tokenizer for the expr subset (§2). Compile-time only.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rules/expr/expr.h"

namespace vigil::expr::detail {

enum class tok : uint8_t { eof, ident, integer, floating, string, punct };

struct token {
  tok kind = tok::eof;
  std::string_view text;  // source slice (punctuation / identifier spelling)
  std::string str;        // decoded string literal
  int64_t i = 0;
  double f = 0;
  uint32_t line = 1;
  uint32_t column = 1;

  bool is(std::string_view p) const noexcept { return (kind == tok::punct || kind == tok::ident) && text == p; }
  bool is_punct(std::string_view p) const noexcept { return kind == tok::punct && text == p; }
};

// Tokenize all of `source`; the last token is eof. On a lexical error returns nullopt and sets
// `err` (first error only).
std::optional<std::vector<token>> tokenize(std::string_view source, diagnostic& err);

}  // namespace vigil::expr::detail
