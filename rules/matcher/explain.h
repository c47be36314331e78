#pragma once
// Why a filter did not match: the first sub-expression of its && chain that was false (or failed),
// descending into || branches. For `vigil explain`; not for the hot path.

#include <string>
#include <vector>

#include "rules/expr/expr.h"

namespace vigil::rules {

struct explanation {
  bool matched = false;
  expr::eval_error error = expr::eval_error::none; ///< set when the whole filter failed
  /// For a miss: the false (or failing) sub-expressions, as written in the rule, with what they
  /// gave ("false", or the error kind). Several entries when every branch of an || failed.
  std::vector<std::pair<std::string, std::string>> culprits;
};

explanation explain(const expr::program& filter, const expr::environment& env);

} // namespace vigil::rules
