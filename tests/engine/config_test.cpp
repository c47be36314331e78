#include "engine/config/config.h"

#include <gtest/gtest.h>

namespace vigil::config {
namespace {

std::vector<error> errors_of(const std::string& text) {
  auto r = load_text(text, "vigil.yaml");
  if (auto* e = std::get_if<std::vector<error>>(&r)) {
    return *e;
  }
  return {};
}

TEST(config, defaults_from_an_empty_file) {
  auto r = load_text("", "vigil.yaml");
  ASSERT_TRUE(std::holds_alternative<settings>(r));
  const settings& s = std::get<settings>(r);
  EXPECT_EQ(s.workers, 0u);
  EXPECT_EQ(s.max_in_flight, 32768u);
  EXPECT_TRUE(s.rules.empty());
  EXPECT_EQ(s.cluster, "");
}

TEST(config, values_and_relative_rule_paths) {
  auto r = load_text("workers: 2\nmax_in_flight: 1000\ncluster: prod-eu\nrules: [crowdsecurity]\n", "rules/vigil.yaml");
  ASSERT_TRUE(std::holds_alternative<settings>(r)) << std::get<std::vector<error>>(r)[0].to_string();
  const settings& s = std::get<settings>(r);
  EXPECT_EQ(s.workers, 2u);
  EXPECT_EQ(s.max_in_flight, 1000u);
  EXPECT_EQ(s.cluster, "prod-eu");
  ASSERT_EQ(s.rules.size(), 1u);
  EXPECT_EQ(s.rules[0], "rules/crowdsecurity");
}

TEST(config, every_error_is_reported_with_its_position) {
  const auto errs = errors_of("workers: many\nmax_in_flight: 0\ncolour: red\nrules: [does/not/exist]\ncluster: [a]\n");
  ASSERT_EQ(errs.size(), 5u);
  EXPECT_EQ(errs[0].line, 1u);
  EXPECT_NE(errs[0].message.find("workers: expected an integer"), std::string::npos);
  EXPECT_EQ(errs[1].line, 2u);
  EXPECT_NE(errs[1].message.find("between 1 and"), std::string::npos);
  EXPECT_EQ(errs[2].line, 3u);
  EXPECT_NE(errs[2].message.find("unknown key 'colour'"), std::string::npos);
  EXPECT_EQ(errs[3].line, 4u);
  EXPECT_NE(errs[3].message.find("does not exist"), std::string::npos);
  EXPECT_EQ(errs[4].line, 5u);
  EXPECT_EQ(errs[0].to_string().rfind("vigil.yaml:1:", 0), 0u);
}

TEST(config, invalid_yaml_and_missing_file) {
  const auto errs = errors_of("workers: [1\n");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs[0].message.find("invalid YAML"), std::string::npos);
  auto r = load("/nonexistent/vigil.yaml");
  ASSERT_TRUE(std::holds_alternative<std::vector<error>>(r));
  EXPECT_NE(std::get<std::vector<error>>(r)[0].message.find("cannot open"), std::string::npos);
}

} // namespace
} // namespace vigil::config
