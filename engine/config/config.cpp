#include "engine/config/config.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

namespace vigil::config {

namespace {

namespace fs = std::filesystem;

struct loader {
  const std::string& file;
  std::vector<error> errors;

  void fail(const YAML::Mark& m, std::string msg) {
    errors.push_back(error{file, static_cast<std::uint32_t>(m.line + 1), static_cast<std::uint32_t>(m.column + 1),
                           std::move(msg)});
  }

  bool integer(const YAML::Node& n, const char* key, std::int64_t min, std::int64_t max, std::int64_t& out) {
    if (!n.IsScalar() || !YAML::convert<std::int64_t>::decode(n, out)) {
      fail(n.Mark(), std::string(key) + ": expected an integer");
      return false;
    }
    if (out < min || out > max) {
      fail(n.Mark(), std::string(key) + ": must be between " + std::to_string(min) + " and " + std::to_string(max) +
                         ", got " + std::to_string(out));
      return false;
    }
    return true;
  }
};

} // namespace

std::string error::to_string() const {
  std::string s = file;
  if (line > 0) {
    s += ':' + std::to_string(line) + ':' + std::to_string(column);
  }
  return s + ": " + message;
}

std::variant<settings, std::vector<error>> load_text(const std::string& text, const std::string& file) {
  loader l{file, {}};
  settings out;
  out.file = file;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    l.fail(e.mark, "invalid YAML: " + e.msg);
    return l.errors;
  }
  if (root.IsNull()) {
    return out; // an empty file: every default
  }
  if (!root.IsMap()) {
    l.fail(root.Mark(), "the configuration must be a YAML mapping");
    return l.errors;
  }
  const fs::path base = fs::path(file).parent_path();
  static const std::set<std::string> known = {"workers", "max_in_flight", "rules", "cluster"};
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (known.count(key) == 0) {
      l.fail(kv.first.Mark(), "unknown key '" + key + "' (see docs/configuration.md)");
      continue;
    }
    std::int64_t n = 0;
    if (key == "workers") {
      if (l.integer(v, "workers", 0, 256, n)) {
        out.workers = static_cast<unsigned>(n);
      }
    } else if (key == "max_in_flight") {
      if (l.integer(v, "max_in_flight", 1, 1 << 24, n)) {
        out.max_in_flight = static_cast<std::size_t>(n);
      }
    } else if (key == "cluster") {
      if (!v.IsScalar()) {
        l.fail(v.Mark(), "cluster: expected a string");
      } else {
        out.cluster = v.as<std::string>();
      }
    } else if (key == "rules") {
      std::vector<YAML::Node> items;
      if (v.IsScalar()) {
        items.push_back(v);
      } else if (v.IsSequence()) {
        for (const auto& item : v) {
          items.push_back(item);
        }
      } else {
        l.fail(v.Mark(), "rules: expected a path or a list of paths");
      }
      for (const auto& item : items) {
        if (!item.IsScalar()) {
          l.fail(item.Mark(), "rules: expected a path");
          continue;
        }
        fs::path p = item.as<std::string>();
        if (p.is_relative() && !base.empty()) {
          p = base / p;
        }
        if (!fs::exists(p)) {
          l.fail(item.Mark(), "rules: " + p.string() + " does not exist");
          continue;
        }
        out.rules.push_back(p.string());
      }
    }
  }
  if (!l.errors.empty()) {
    return l.errors;
  }
  return out;
}

std::variant<settings, std::vector<error>> load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::vector<error>{error{path, 0, 0, "cannot open the configuration file"}};
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return load_text(ss.str(), path);
}

} // namespace vigil::config
