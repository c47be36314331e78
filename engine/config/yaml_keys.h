#pragma once
// Repeated mapping keys in a loaded YAML document. yaml-cpp keeps both pairs and a lookup finds
// the first, while most tools (and a reader of the file) take the last; Go's YAML decoders refuse
// the file. Every loader of vigil's and CrowdSec's files refuses it too, at the repeated key.

#include <set>
#include <string>

#include <yaml-cpp/yaml.h>

namespace vigil::config {

/// Calls `repeated(key_node)` for each key that repeats an earlier key of its mapping, at any
/// depth of `node`.
template <class Repeated>
void find_repeated_keys(const YAML::Node& node, Repeated&& repeated) {
  if (node.IsMap()) {
    std::set<std::string> seen;
    for (const auto& kv : node) {
      if (kv.first.IsScalar() && kv.first.Scalar() != "<<" && !seen.insert(kv.first.Scalar()).second) {
        repeated(kv.first);
      }
      find_repeated_keys(kv.second, repeated);
    }
  } else if (node.IsSequence()) {
    for (const auto& item : node) {
      find_repeated_keys(item, repeated);
    }
  }
}

/// The message for a repeated key.
inline std::string repeated_key_message(const YAML::Node& key) {
  return "duplicate key '" + key.Scalar() + "': a key may appear once in a mapping";
}

} // namespace vigil::config
