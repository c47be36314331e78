#pragma once
// Checks every loader of vigil's and CrowdSec's files makes on a loaded YAML document.
// - A repeated mapping key: yaml-cpp keeps both pairs and a lookup finds the first, while most
//   tools (and a reader of the file) take the last; Go's YAML decoders refuse the file.
// - An alias inside the node it names (`a: &x [*x]`): the document is infinite, and any walk of
//   it (ours, or turning labels into JSON) would recurse until the stack ran out.

#include <set>
#include <string>

#include <yaml-cpp/yaml.h>

namespace vigil::config {

namespace detail {
// Containers are known by their place in the text (an alias is the node it names): `on_path`
// holds those being walked, `done` those already checked, so a file of aliases of aliases is
// walked once per node.
template <class Report>
bool check_yaml_node(const YAML::Node& node, Report& report, std::set<int>& on_path, std::set<int>& done) {
  if (!(node.IsMap() || node.IsSequence())) {
    return true;
  }
  const int at = node.Mark().pos;
  if (on_path.count(at) != 0) {
    report(node, "an alias refers to a node that contains it: the document would be infinite");
    return false;
  }
  if (!done.insert(at).second) {
    return true;
  }
  on_path.insert(at);
  bool ok = true;
  if (node.IsMap()) {
    std::set<std::string> seen;
    for (const auto& kv : node) {
      if (kv.first.IsScalar() && kv.first.Scalar() != "<<" && !seen.insert(kv.first.Scalar()).second) {
        report(kv.first, "duplicate key '" + kv.first.Scalar() + "': a key may appear once in a mapping");
      }
      ok = ok && check_yaml_node(kv.first, report, on_path, done) && check_yaml_node(kv.second, report, on_path, done);
    }
  } else {
    for (const auto& item : node) {
      ok = ok && check_yaml_node(item, report, on_path, done);
    }
  }
  on_path.erase(at);
  return ok;
}
} // namespace detail

/// Calls `report(node, message)` for each key repeated in its mapping and for an alias inside
/// the node it names. False after the latter: the document must not be walked any further.
template <class Report>
bool check_yaml_document(const YAML::Node& doc, Report&& report) {
  std::set<int> on_path;
  std::set<int> done;
  return detail::check_yaml_node(doc, report, on_path, done);
}

} // namespace vigil::config
