#include "rules/matcher/ruleset.h"

#include <set>

namespace vigil::rules {

std::variant<std::shared_ptr<const ruleset>, std::vector<load_error>> load_ruleset(
    const std::vector<std::string>& paths) {
  load_result loaded;
  if (paths.empty()) {
    load_builtin_scenarios(loaded);
  }
  for (const std::string& p : paths) {
    load_scenarios(p, loaded);
  }
  std::set<std::string, std::less<>> names;
  for (const scenario& sc : loaded.scenarios) {
    if (!names.insert(sc.name).second) {
      loaded.errors.push_back(load_error{sc.file, sc.line, 0, "scenario '" + sc.name + "' is defined twice"});
    }
  }
  if (!loaded.ok()) {
    return std::move(loaded.errors);
  }
  auto rs = std::make_shared<ruleset>();
  rs->scenarios = std::move(loaded.scenarios);
  auto built = matcher::build(rs->scenarios);
  if (auto* err = std::get_if<std::string>(&built)) {
    return std::vector<load_error>{load_error{"", 0, 0, *err}};
  }
  rs->match = std::make_unique<matcher>(std::move(std::get<matcher>(built)));
  return std::shared_ptr<const ruleset>(std::move(rs));
}

} // namespace vigil::rules
