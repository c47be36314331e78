#pragma once
// A loaded, compiled, immutable rule set: the scenarios and their matcher. Built once (at start,
// or on reload), then shared read-only by every worker.

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "rules/matcher/matcher.h"
#include "rules/scenario/scenario.h"

namespace vigil::rules {

struct ruleset {
  std::vector<scenario> scenarios;
  std::unique_ptr<matcher> match; ///< refers to `scenarios`: a ruleset never moves once built
  /// Matchers specialized for the events of one datasource_type ("file", "k8s-audit"), built
  /// when a filter reads evt.Meta.datasource_type (the hub's do, to pick capitalized or
  /// lowerCamel keys): see matcher::build's constants.
  std::vector<std::pair<std::string, std::unique_ptr<matcher>>> by_source;

  /// Index of the matcher for events of `datasource_type`: 0 is `match`, i + 1 is by_source[i].
  [[nodiscard]] std::size_t matcher_index(std::string_view datasource_type) const noexcept {
    for (std::size_t i = 0; i < by_source.size(); ++i) {
      if (by_source[i].first == datasource_type) {
        return i + 1;
      }
    }
    return 0;
  }
  [[nodiscard]] const matcher& matcher_at(std::size_t index) const noexcept {
    return index == 0 ? *match : *by_source[index - 1].second;
  }
  [[nodiscard]] std::size_t matchers() const noexcept { return 1 + by_source.size(); }
};

/// Loads the shipped rule pack when `paths` is empty, else every scenario file under `paths`
/// (files or directories). Returns every load error of every file, or the built rule set.
std::variant<std::shared_ptr<const ruleset>, std::vector<load_error>> load_ruleset(
    const std::vector<std::string>& paths);

} // namespace vigil::rules
