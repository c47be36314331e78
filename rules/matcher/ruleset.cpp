#include "rules/matcher/ruleset.h"

#include <set>

namespace vigil::rules {

namespace {

// True if a filter loads `slot` (evt.Meta.<key>, evt.Meta["key"], evt.GetMeta("key")).
bool reads_slot(const std::vector<scenario>& scenarios, std::uint32_t slot) {
  for (const scenario& sc : scenarios) {
    for (const expr::node& n : sc.filter->nodes()) {
      if (n.kind == expr::node_kind::load && n.slot == slot) {
        return true;
      }
    }
  }
  return false;
}

} // namespace

std::variant<std::shared_ptr<const ruleset>, std::vector<load_error>> load_ruleset(
    const std::vector<std::string>& paths) {
  load_result loaded;
  if (paths.empty()) {
    load_builtin_scenarios(loaded);
  }
  for (const std::string& p : paths) {
    const std::size_t before = loaded.scenarios.size();
    const std::size_t errors_before = loaded.errors.size();
    load_scenarios(p, loaded);
    // A security engine started on a path without rules would watch nothing and say nothing: a
    // wrong directory, an unmounted volume. Refused, as a broken rule is.
    if (loaded.scenarios.size() == before && loaded.errors.size() == errors_before) {
      loaded.errors.push_back(load_error{p, 0, 0, "no scenario found (scenario files end in .yaml or .yml)"});
    }
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
  // Every event's log_type is "k8s-audit" (the parser sets it) and its datasource_type is its
  // source's: for the two kinds of sources, matchers that know both.
  const auto log_type = static_cast<std::uint32_t>(engine::meta_key::log_type);
  const auto datasource_type = static_cast<std::uint32_t>(engine::meta_key::datasource_type);
  if (reads_slot(rs->scenarios, datasource_type)) {
    for (const char* type : {"file", "k8s-audit"}) {
      auto variant = matcher::build(rs->scenarios, {{log_type, "k8s-audit"}, {datasource_type, type}});
      if (auto* err = std::get_if<std::string>(&variant)) {
        return std::vector<load_error>{load_error{"", 0, 0, *err}};
      }
      rs->by_source.emplace_back(type, std::make_unique<matcher>(std::move(std::get<matcher>(variant))));
    }
  }
  return std::shared_ptr<const ruleset>(std::move(rs));
}

} // namespace vigil::rules
