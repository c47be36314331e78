// Loading scenario files: the shipped pack, the hub's own files, and every kind of bad file.
#include "rules/scenario/scenario.h"

#include <filesystem>
#include <map>

#include <gtest/gtest.h>
#include <simdjson.h>

namespace vigil::rules {
namespace {

const std::string hub_dir = "../shared/data/crowdsec-hub/scenarios/crowdsecurity";

// Label maps compared regardless of key order.
std::map<std::string, std::string> sorted_fields(simdjson::dom::element obj) {
  std::map<std::string, std::string> out;
  for (auto field : simdjson::dom::object(obj)) {
    out[std::string(field.key)] = simdjson::to_string(field.value);
  }
  return out;
}

const scenario* find(const load_result& r, const std::string& name) {
  for (const auto& s : r.scenarios) {
    if (s.name == name) {
      return &s;
    }
  }
  return nullptr;
}

TEST(scenario, builtin_pack_loads_the_seven_crowdsec_scenarios) {
  load_result r;
  load_builtin_scenarios(r);
  ASSERT_TRUE(r.ok()) << r.errors[0].to_string();
  ASSERT_EQ(r.scenarios.size(), 7u);
  const scenario* bf = find(r, "crowdsecurity/k8s-audit-api-server-bruteforce");
  ASSERT_NE(bf, nullptr);
  EXPECT_EQ(bf->bucket.type, engine::bucket_type::leaky);
  EXPECT_EQ(bf->bucket.capacity, 5);
  EXPECT_EQ(bf->bucket.leakspeed, 10'000'000'000LL);
  EXPECT_EQ(bf->bucket.blackhole, 60'000'000'000LL);
  EXPECT_EQ(bf->leakspeed_text, "10s");
  EXPECT_TRUE(bf->groupby.has_value());
  EXPECT_TRUE(bf->reprocess);
  EXPECT_TRUE(bf->remediation);
  for (const char* name : {"crowdsecurity/k8s-audit-anonymous-access", "crowdsecurity/k8s-audit-pod-exec",
                           "crowdsecurity/k8s-audit-pod-host-network", "crowdsecurity/k8s-audit-pod-host-path-volume",
                           "crowdsecurity/k8s-audit-privileged-pod-creation",
                           "crowdsecurity/k8s-audit-service-account-access-denied"}) {
    const scenario* s = find(r, name);
    ASSERT_NE(s, nullptr) << name;
    EXPECT_EQ(s->bucket.type, engine::bucket_type::trigger) << name;
    EXPECT_FALSE(s->remediation) << name;
    EXPECT_EQ(s->leakspeed_text, "0s");
  }
}

// The hub's own files load unmodified and describe the same buckets and labels as the pack.
TEST(scenario, hub_files_load_unmodified_and_match_the_pack) {
  if (!std::filesystem::exists(hub_dir)) {
    GTEST_SKIP() << "no " << hub_dir;
  }
  load_result hub, pack;
  load_scenarios(hub_dir, hub);
  load_builtin_scenarios(pack);
  ASSERT_TRUE(hub.ok()) << hub.errors[0].to_string();
  ASSERT_EQ(hub.scenarios.size(), 7u);
  simdjson::dom::parser p1, p2;
  for (const auto& h : hub.scenarios) {
    const scenario* mine = find(pack, h.name);
    ASSERT_NE(mine, nullptr) << h.name;
    EXPECT_EQ(h.bucket.type, mine->bucket.type) << h.name;
    EXPECT_EQ(h.bucket.capacity, mine->bucket.capacity) << h.name;
    EXPECT_EQ(h.bucket.leakspeed, mine->bucket.leakspeed) << h.name;
    EXPECT_EQ(h.bucket.blackhole, mine->bucket.blackhole) << h.name;
    EXPECT_EQ(h.remediation, mine->remediation) << h.name;
    EXPECT_EQ(h.reprocess, mine->reprocess) << h.name;
    EXPECT_EQ(h.groupby.has_value(), mine->groupby.has_value()) << h.name;
    simdjson::dom::element a, b;
    ASSERT_EQ(p1.parse(h.labels_json).get(a), simdjson::SUCCESS);
    ASSERT_EQ(p2.parse(mine->labels_json).get(b), simdjson::SUCCESS);
    EXPECT_EQ(sorted_fields(a), sorted_fields(b)) << h.name;
  }
}

load_result load_text(const std::string& text) {
  load_result r;
  load_scenarios_from_text(text, "test.yaml", r);
  return r;
}

bool has_error(const load_result& r, std::uint32_t line, const std::string& fragment) {
  for (const auto& e : r.errors) {
    if ((line == 0 || e.line == line) && e.message.find(fragment) != std::string::npos) {
      return true;
    }
  }
  return false;
}

std::string dump(const load_result& r) {
  std::string s;
  for (const auto& e : r.errors) {
    s += e.to_string() + "\n";
  }
  return s;
}

TEST(scenario, remediation_is_a_yaml_boolean_only) {
  const std::string head = "type: trigger\nname: t/x\ndescription: d\nfilter: \"true\"\nlabels:\n  remediation: ";
  for (const auto& [value, expected] : std::vector<std::pair<std::string, bool>>{
           {"true", true}, {"false", false}, {"\"true\"", false}, {"'true'", false}, {"1", false}}) {
    const load_result r = load_text(head + value + "\n");
    ASSERT_TRUE(r.errors.empty()) << dump(r);
    ASSERT_EQ(r.scenarios.size(), 1u);
    EXPECT_EQ(r.scenarios[0].remediation, expected) << value << " -> " << r.scenarios[0].labels_json;
  }
}

TEST(scenario, every_error_of_a_file_is_reported_with_its_line) {
  const load_result r = load_text(R"(type: trigger
name: a/one
description: first
filter: evt.Meta.user == 'x'
capacity: 3
colour: blue
---
type: leaky
name: a/two
description: second
filter: "true"
capacity: 0
leakspeed: 10 seconds
cancel_on:
  filter: "true"
---
type: bayesian
name: a/three
description: third
filter: "true"
)");
  EXPECT_TRUE(r.scenarios.empty());
  EXPECT_TRUE(has_error(r, 5, "invalid capacity '3': must be 0")) << dump(r);
  EXPECT_TRUE(has_error(r, 6, "unknown key 'colour'")) << dump(r);
  EXPECT_TRUE(has_error(r, 12, "invalid capacity '0': must be > 0")) << dump(r);
  EXPECT_TRUE(has_error(r, 13, "invalid duration '10 seconds'")) << dump(r);
  EXPECT_TRUE(has_error(r, 14, "'cancel_on' is not supported")) << dump(r);
  EXPECT_TRUE(has_error(r, 17, "type 'bayesian' is not supported")) << dump(r);
  EXPECT_EQ(r.errors[0].file, "test.yaml");
}

// Bounds the bucket maths cannot honour are load errors, not a silently smaller bucket: its
// life after the last event, (capacity + 1) x leakspeed in nanoseconds, must fit 64 bits. A
// groupby that can never give a string is refused (CrowdSec stops on one). A cache_size past
// 32 bits is no limit, as any cache at least as large as the queue.
TEST(scenario, bounds_the_buckets_cannot_honour_are_load_errors) {
  const load_result r = load_text(R"(type: leaky
name: a/huge
description: d
filter: "true"
capacity: 100
leakspeed: 100000h
---
type: leaky
name: a/groupby
description: d
filter: "true"
groupby: evt.Meta.user == 'x'
capacity: 1
leakspeed: 1s
---
type: leaky
name: a/groupby-map
description: d
filter: "true"
groupby: evt.Meta
capacity: 1
leakspeed: 1s
)");
  EXPECT_TRUE(has_error(r, 6, "leakspeed: (capacity + 1) x leakspeed is over 292 years")) << dump(r);
  EXPECT_TRUE(has_error(r, 12, "groupby: must give a string, not bool")) << dump(r);
  EXPECT_TRUE(has_error(r, 20, "groupby: must give a string, not map")) << dump(r);
  const load_result ok = load_text(R"(type: leaky
name: a/fits
description: d
filter: "true"
groupby: evt.Meta.user
capacity: 100
leakspeed: 20000h
cache_size: 4294967297
)");
  ASSERT_TRUE(ok.errors.empty()) << dump(ok);
  EXPECT_EQ(ok.scenarios[0].bucket.cache_size, UINT32_MAX);
}

TEST(scenario, filter_errors_point_into_the_file) {
  const load_result r = load_text(R"(type: trigger
name: a/b
description: d
filter: |
  evt.Meta.log_type == 'k8s-audit' &&
  evt.Meta.user startsWith
)");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.errors[0].line, 6u) << dump(r);
  EXPECT_NE(r.errors[0].message.find("filter:"), std::string::npos);

  const load_result unknown = load_text("type: trigger\nname: a/b\ndescription: d\nfilter: evt.meta.user == 'x'\n");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.errors[0].line, 4u);
  EXPECT_GE(unknown.errors[0].column, 9u) << dump(unknown);
  EXPECT_NE(unknown.errors[0].message.find("meta"), std::string::npos) << dump(unknown);

  const load_result raw = load_text("type: trigger\nname: a/b\ndescription: d\nfilter: evt.Line.Raw contains 'x'\n");
  EXPECT_TRUE(has_error(raw, 4, "evt.Line.Raw is not available")) << dump(raw);

  // A quoted scalar whose file text is the expression's maps column for column; one with an
  // escape, or a folded block, points at the value's start (never past a line's end), and the
  // message keeps the expression's own position.
  auto first = [](const std::string& filter) {
    const load_result r = load_text("type: trigger\nname: a/b\ndescription: d\nfilter: " + filter + "\n");
    EXPECT_FALSE(r.ok()) << filter;
    return r.errors.empty() ? load_error{} : r.errors[0];
  };
  const load_error plain_quoted = first("\"evt.Meta.user == foo\"");
  EXPECT_EQ(plain_quoted.line, 4u);
  EXPECT_EQ(plain_quoted.column, 27u) << plain_quoted.to_string(); // `foo`
  const load_error escaped = first("\"evt.Meta.user == \\\"a\\\" && foo\"");
  EXPECT_EQ(escaped.line, 4u);
  EXPECT_EQ(escaped.column, 9u) << escaped.to_string(); // the value's opening quote
  EXPECT_NE(escaped.message.find("(expression line 1, column 25)"), std::string::npos) << escaped.to_string();
  const load_error folded = first(">\n  evt.Meta.user == 'a' &&\n  foo");
  EXPECT_EQ(folded.line, 4u) << folded.to_string();
  EXPECT_EQ(folded.column, 9u) << folded.to_string();
  // A literal block's blank first line is the expression's line 1; an indentation digit sets
  // the indentation (|2: two spaces, the rest is the expression's).
  const load_error blank = first("|\n\n  evt.Meta.user == foo");
  EXPECT_EQ(blank.line, 6u) << blank.to_string();
  EXPECT_EQ(blank.column, 20u) << blank.to_string();
  const load_error indicator = first("|2\n    evt.Meta.user == foo");
  EXPECT_EQ(indicator.line, 5u) << indicator.to_string();
  EXPECT_EQ(indicator.column, 22u) << indicator.to_string();
  // A byte order mark before the file changes no position.
  const load_result bom = load_text("\xEF\xBB\xBFtype: trigger\nname: a/b\ndescription: d\nfilter: \"evt.Meta.user == foo\"\n");
  ASSERT_FALSE(bom.errors.empty());
  EXPECT_EQ(bom.errors[0].line, 4u);
  EXPECT_EQ(bom.errors[0].column, 27u) << bom.errors[0].to_string();
}

TEST(scenario, required_keys_and_types) {
  const load_result r = load_text("type: leaky\nfilter: \"true\"\ncapacity: five\n");
  EXPECT_TRUE(has_error(r, 0, "bucket must have name")) << dump(r);
  EXPECT_TRUE(has_error(r, 0, "description is mandatory")) << dump(r);
  EXPECT_TRUE(has_error(r, 3, "capacity: expected an integer")) << dump(r);
  EXPECT_TRUE(has_error(r, 0, "leakspeed is required")) << dump(r);

  const load_result counter = load_text("type: counter\nname: c\ndescription: d\nfilter: \"true\"\ncapacity: -1\n");
  EXPECT_TRUE(has_error(counter, 0, "duration is required")) << dump(counter);

  const load_result ok = load_text(
      "type: counter\nname: c\ndescription: d\nfilter: \"true\"\ncapacity: -1\nduration: 1m\ndistinct: evt.Meta.user\n"
      "scope:\n  type: Ip\n  expression: evt.Meta.source_ip\nreferences: [x]\ndebug: false\n");
  EXPECT_TRUE(ok.ok()) << dump(ok);
  ASSERT_EQ(ok.scenarios.size(), 1u);
  EXPECT_TRUE(ok.scenarios[0].bucket.has_distinct);
  EXPECT_EQ(ok.scenarios[0].bucket.duration, 60'000'000'000LL);
}

TEST(scenario, range_and_custom_scopes_take_a_meta_expression) {
  const std::string head = "type: trigger\nname: t/x\ndescription: d\nfilter: \"true\"\nscope:\n  type: ";
  for (const char* scope : {"Range\n  expression: IpToRange(evt.Meta.source_ip, '/24')",
                            "username\n  expression: evt.Meta.user", "Ip\n  expression: evt.Unmarshaled.k8s_audit.verb"}) {
    const load_result r = load_text(head + scope + "\n");
    ASSERT_TRUE(r.ok()) << scope << "\n" << dump(r);
    // With Ip the expression is ignored (as CrowdSec ignores it), whatever it reads.
    EXPECT_EQ(r.scenarios[0].scope_expression.has_value(), r.scenarios[0].scope_type != "Ip") << scope;
  }
  // No GeoIP here to give a Range: the expression is required. And it sees the kept meta only.
  const load_result bare = load_text(head + "Range\n");
  EXPECT_TRUE(has_error(bare, 6, "needs scope.expression, e.g. IpToRange(evt.Meta.source_ip, '/24')")) << dump(bare);
  const load_result deep = load_text(head + "Range\n  expression: IpToRange(evt.Unmarshaled.k8s_audit.sourceIPs[0], '/24')\n");
  EXPECT_TRUE(has_error(deep, 7, "may read evt.Meta only")) << dump(deep);
  EXPECT_TRUE(deep.scenarios.empty());
}

TEST(scenario, invalid_yaml_is_located) {
  const load_result r = load_text("type: trigger\nname: [unclosed\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].message.find("invalid YAML"), std::string::npos);
  EXPECT_GE(r.errors[0].line, 2u);
}

TEST(scenario, non_boolean_filter_is_rejected_at_load) {
  const load_result r = load_text("type: trigger\nname: a\ndescription: d\nfilter: evt.Meta.user\n");
  EXPECT_TRUE(has_error(r, 4, "must be a boolean")) << dump(r);
}

TEST(scenario, a_repeated_key_is_an_error) {
  const load_result r = load_text("type: trigger\nname: t/x\ndescription: d\nfilter: \"true\"\nlabels:\n  a: 1\n  a: 2\nfilter: \"false\"\n");
  EXPECT_TRUE(has_error(r, 7, "duplicate key 'a'"));
  EXPECT_TRUE(has_error(r, 8, "duplicate key 'filter'"));
  // Labels that contain themselves crashed the loader (turning them into JSON recursed forever).
  const load_result self = load_text("type: trigger\nname: t/x\ndescription: d\nfilter: \"true\"\nlabels: &a {x: *a}\n");
  EXPECT_TRUE(has_error(self, 5, "an alias refers to a node that contains it"));
  const load_result map_key = load_text("type: trigger\nname: t/x\ndescription: d\nfilter: \"true\"\nlabels:\n  {a: 1}: x\n");
  EXPECT_TRUE(has_error(map_key, 6, "a mapping key must be a plain value"));
}

} // namespace
} // namespace vigil::rules
