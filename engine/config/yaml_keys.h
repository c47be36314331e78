#pragma once
// Checks every loader of vigil's and CrowdSec's files makes on a loaded YAML document.
// - A repeated mapping key: yaml-cpp keeps both pairs and a lookup finds the first, while most
//   tools (and a reader of the file) take the last; Go's YAML decoders refuse the file.
// - An alias inside the node it names (`a: &x [*x]`): the document is infinite, and any walk of
//   it (ours, or turning labels into JSON) would recurse until the stack ran out.
// - A list or a mapping as a mapping key (`[a, b]: 1`): the loaders read keys as strings.

#include <set>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace vigil::config {

namespace detail {
// `on_path` holds the containers being walked (an alias is the very node it names: Node::is),
// `done` the places in the text of those already checked, so a file of aliases of aliases is
// walked once per node. Mapping keys are plain values: vigil's files have no other kind, and
// a list or map as a key would be refused by every loader anyway.
template <class Report>
bool check_yaml_node(const YAML::Node& node, Report& report, std::vector<YAML::Node>& on_path, std::set<int>& done) {
  if (!(node.IsMap() || node.IsSequence())) {
    return true;
  }
  for (const YAML::Node& walking : on_path) {
    if (walking.is(node)) {
      report(node, "an alias refers to a node that contains it: the document would be infinite");
      return false;
    }
  }
  if (!done.insert(node.Mark().pos).second) {
    return true;
  }
  on_path.push_back(node);
  bool ok = true;
  if (node.IsMap()) {
    std::set<std::string> seen;
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) {
        report(kv.first, "a mapping key must be a plain value, not a list or a mapping");
        ok = false;
        break;
      }
      if (kv.first.Scalar() != "<<" && !seen.insert(kv.first.Scalar()).second) {
        report(kv.first, "duplicate key '" + kv.first.Scalar() + "': a key may appear once in a mapping");
      }
      if (!check_yaml_node(kv.second, report, on_path, done)) {
        ok = false;
        break;
      }
    }
  } else {
    for (const auto& item : node) {
      if (!check_yaml_node(item, report, on_path, done)) {
        ok = false;
        break;
      }
    }
  }
  on_path.pop_back();
  return ok;
}
} // namespace detail

/// `text` without a leading UTF-8 byte order mark. yaml-cpp skips the mark and counts positions
/// from after it, so a loader that reads the file text at a node's position must give yaml-cpp
/// and itself the same text.
inline std::string without_bom(const std::string& text) {
  return text.rfind("\xEF\xBB\xBF", 0) == 0 ? text.substr(3) : text;
}

/// Calls `report(node, message)` for each key repeated in its mapping, for a key that is a list
/// or a mapping, and for an alias inside the node it names. False after either of the last two:
/// the document must not be walked any further.
template <class Report>
bool check_yaml_document(const YAML::Node& doc, Report&& report) {
  std::vector<YAML::Node> on_path;
  std::set<int> done;
  return detail::check_yaml_node(doc, report, on_path, done);
}

} // namespace vigil::config
