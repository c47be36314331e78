// `vigil explain`: for a miss, the first false (or failing) sub-expression, as written in the rule.
#include "rules/matcher/explain.h"

#include <filesystem>
#include <stdexcept>

#include <gtest/gtest.h>

#include "engine/event/reader.h"
#include "engine/parse/meta.h"
#include "rules/matcher/ruleset.h"
#include "rules/scenario/event_env.h"

namespace vigil::rules {
namespace {

class one_event final : public engine::event_sink {
 public:
  explicit one_event(std::string json) : text_(std::move(json)) {
    text_.append(simdjson::SIMDJSON_PADDING, '\0');
    reader_.feed(text_.data(), text_.size() - simdjson::SIMDJSON_PADDING, true, "t", *this);
  }
  void on_event(const engine::audit_event& ev, const engine::position&) override {
    event_ = ev;
    engine::build_meta(event_, engine::source_info{"file", "t", ""}, meta_);
    env_.reset(&event_, &meta_);
  }
  void on_error(const engine::position&, const engine::failure& f) override { ADD_FAILURE() << engine::describe(f); }
  const event_env& env() const { return env_; }

 private:
  std::string text_;
  engine::reader reader_;
  engine::audit_event event_;
  engine::event_meta meta_;
  event_env env_;
};

const scenario& find(const ruleset& rs, const std::string& name) {
  for (const auto& s : rs.scenarios) {
    if (s.name == name) {
      return s;
    }
  }
  throw std::runtime_error("no scenario " + name);
}

TEST(explain, names_the_first_false_conjunct) {
  auto loaded = load_ruleset({});
  const auto& rs = *std::get<std::shared_ptr<const ruleset>>(loaded);
  const one_event ev(R"({"verb":"get","objectRef":{"resource":"pods","subresource":"log"},"responseStatus":{"code":200}})");
  const explanation e = explain(*find(rs, "crowdsecurity/k8s-audit-pod-exec").filter, ev.env());
  EXPECT_FALSE(e.matched);
  ASSERT_EQ(e.culprits.size(), 1u);
  EXPECT_EQ(e.culprits[0].first, "evt.Unmarshaled.k8s_audit.objectRef?.subresource == 'exec'");
  EXPECT_EQ(e.culprits[0].second, "false");
}

TEST(explain, names_the_failing_conjunct_and_its_error) {
  auto loaded = load_ruleset({});
  const auto& rs = *std::get<std::shared_ptr<const ruleset>>(loaded);
  const one_event ev(R"({"verb":"get","stage":"RequestReceived"})");
  const explanation e = explain(*find(rs, "crowdsecurity/k8s-audit-api-server-bruteforce").filter, ev.env());
  EXPECT_FALSE(e.matched);
  EXPECT_EQ(e.error, expr::eval_error::nil_fetch);
  ASSERT_EQ(e.culprits.size(), 1u);
  EXPECT_EQ(e.culprits[0].first, "evt.Unmarshaled.k8s_audit.responseStatus.code in [401, 403]");
  EXPECT_EQ(e.culprits[0].second, "error: nil_fetch");
}

TEST(explain, descends_into_both_branches_of_an_or) {
  const std::string hub = "../shared/data/crowdsec-hub/scenarios/crowdsecurity";
  if (!std::filesystem::exists(hub)) {
    GTEST_SKIP();
  }
  auto loaded = load_ruleset({hub});
  const auto& rs = *std::get<std::shared_ptr<const ruleset>>(loaded);
  const one_event ev(R"({"verb":"create","objectRef":{"resource":"pods","subresource":"attach"}})");
  const explanation e = explain(*find(rs, "crowdsecurity/k8s-audit-pod-exec").filter, ev.env());
  EXPECT_FALSE(e.matched);
  ASSERT_EQ(e.culprits.size(), 2u);
  EXPECT_EQ(e.culprits[0].first, "evt.Meta.datasource_type == \"k8s-audit\"");
  EXPECT_EQ(e.culprits[1].first, "evt.Unmarshaled.k8s_audit.objectRef?.subresource == 'exec'");
}

TEST(explain, a_match_has_no_culprit) {
  auto loaded = load_ruleset({});
  const auto& rs = *std::get<std::shared_ptr<const ruleset>>(loaded);
  const one_event ev(R"({"verb":"create","objectRef":{"resource":"pods","subresource":"exec"}})");
  const explanation e = explain(*find(rs, "crowdsecurity/k8s-audit-pod-exec").filter, ev.env());
  EXPECT_TRUE(e.matched);
  EXPECT_TRUE(e.culprits.empty());
}

} // namespace
} // namespace vigil::rules
