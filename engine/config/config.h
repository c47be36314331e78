#pragma once
// vigil.yaml: the daemon's and replay's configuration. Strict: an unknown key, a wrong type or an
// out-of-range value is an error naming file:line:column, and every error is reported. Every key
// is documented, with its default, in docs/configuration.md.

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace vigil::config {

struct settings {
  std::string file;                    ///< where the settings came from ("" = embedded default)
  unsigned workers = 0;                ///< worker threads; 0 = one per core
  std::size_t max_in_flight = 1u << 15; ///< documents admitted but not yet processed
  std::vector<std::string> rules;      ///< scenario files/directories; empty = the shipped pack
  std::string cluster;                 ///< cluster name stamped on events
};

struct error {
  std::string file;
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  std::string message;
  [[nodiscard]] std::string to_string() const;
};

/// Loads and validates a vigil.yaml. Relative rule paths are resolved against the file's folder.
std::variant<settings, std::vector<error>> load(const std::string& path);

/// The same from text (`file` names it in errors and anchors relative paths).
std::variant<settings, std::vector<error>> load_text(const std::string& text, const std::string& file);

} // namespace vigil::config
