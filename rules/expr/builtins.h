#pragma once
// Internal: builtin function table (§12) and the CrowdSec helper names (§13).

#include <cstdint>
#include <string_view>

#include "rules/expr/ast.h"

namespace vigil::expr::detail {

struct builtin_info {
  std::string_view name;
  builtin id;
  uint8_t min_args;
  uint8_t max_args;
  bool predicate;     // takes a closure as its 2nd argument
  value_hint result;  // static result type
};

// nullptr when `name` is not a builtin vigil implements.
const builtin_info* find_builtin(std::string_view name) noexcept;
// True for every §13 helper name and every expr builtin name vigil recognises but does not
// implement (so the diagnostic can say "not supported" rather than "unknown").
bool is_known_unsupported(std::string_view name) noexcept;

}  // namespace vigil::expr::detail
