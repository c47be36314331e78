#pragma once
// Test helper: a whole file as a string (empty if it cannot be read).

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace vigil::test {

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

} // namespace vigil::test
