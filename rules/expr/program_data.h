#pragma once
// Internal: what a compiled program owns. Shared (read-only) by all copies of a `program`.

#include <memory>
#include <string>
#include <vector>

#include "rules/expr/ast.h"
#include "rules/expr/expr.h"
#include "rules/expr/regex.h"

namespace vigil::expr::detail {

struct program_data {
  std::string source;
  std::vector<node> nodes;
  std::vector<node_id> args;
  node_id root = no_node;
  // Owned storage for decoded string literals and constant lists (stable addresses).
  std::vector<std::unique_ptr<char[]>> strings;
  std::vector<std::unique_ptr<value[]>> lists;
  std::vector<string_set> sets;
  std::vector<regex_db> regexes;
};

// Tree-walking evaluator (eval.cpp).
eval_result evaluate(const program_data& p, const environment& env, const uint32_t* lifts = nullptr,
                     node_id from = no_node) noexcept;

}  // namespace vigil::expr::detail
