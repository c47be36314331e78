#pragma once
// The rule files shipped in rules/crowdsecurity/, embedded at build time.

#include <string_view>
#include <vector>

namespace vigil::rules {

struct builtin_file {
  std::string_view path; ///< "rules/crowdsecurity/<file>.yaml"
  std::string_view text;
};

const std::vector<builtin_file>& builtin_files();

} // namespace vigil::rules
