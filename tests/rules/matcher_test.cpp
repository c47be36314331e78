// The matcher's lifted (hyperscan) string tests must give exactly what evaluating each filter on
// its own gives: same verdict, same errors, on every real event we have and on adversarial ones.
#include "rules/matcher/matcher.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <unistd.h>

#include "engine/counters/counters.h"
#include "engine/event/reader.h"
#include "engine/parse/meta.h"
#include "rules/matcher/ruleset.h"
#include "tests/support/files.h"

namespace vigil::rules {
namespace {

namespace fs = std::filesystem;

// Runs every event of `text` through the matcher and through each plain filter, comparing.
class comparing_sink final : public engine::event_sink {
 public:
  // `specialized`: the matcher the workers use for events of `source_type` (see
  // ruleset::by_source), else the generic one.
  // `per_event_stats`: check the matcher's error counts after every event (reading stats());
  // without it they are only read at the end, as the pipeline reads them (flush_counters()).
  comparing_sink(const ruleset& rs, const char* source_type, bool specialized = true, bool per_event_stats = true)
      : per_event_stats_(per_event_stats),
        rs_(rs),
        matcher_(rs.matcher_at(specialized ? rs.matcher_index(source_type) : 0)),
        ctx_(matcher_),
        type_(source_type) {}

  void on_event(const engine::audit_event& ev, const engine::position& where) override {
    engine::build_meta(ev, engine::source_info{type_, "test", ""}, meta_);
    env_.reset(&ev, &meta_);
    std::vector<std::uint64_t> errors_before;
    if (per_event_stats_) {
      for (const rule_stats& st : ctx_.stats()) {
        errors_before.push_back(st.errors);
      }
    }
    matcher_.match(ctx_, env_, matched_);
    for (std::uint32_t i = 0; i < rs_.scenarios.size(); ++i) {
      const expr::bool_result plain = rs_.scenarios[i].filter->eval_bool(env_);
      const bool lifted_match = std::find(matched_.begin(), matched_.end(), i) != matched_.end();
      const bool plain_match = plain.err == expr::eval_error::none && plain.value;
      EXPECT_EQ(lifted_match, plain_match) << rs_.scenarios[i].name << " at line " << where.line;
      if (per_event_stats_) {
        EXPECT_EQ(ctx_.stats()[i].errors - errors_before[i], plain.err != expr::eval_error::none ? 1u : 0u)
            << rs_.scenarios[i].name << " at line " << where.line;
      }
      matches += plain_match ? 1 : 0;
      errors += plain.err != expr::eval_error::none ? 1 : 0;
      if (rule_errors.size() < rs_.scenarios.size()) {
        rule_errors.resize(rs_.scenarios.size());
      }
      rule_errors[i] += plain.err != expr::eval_error::none ? 1 : 0;
      ++evaluations;
    }
  }
  void on_error(const engine::position&, const engine::failure&) override {}

  std::size_t evaluations = 0, matches = 0, errors = 0;
  std::vector<std::uint64_t> rule_errors; // per rule, from the plain evaluation

  // Publishes the matcher's counts to the counters registry.
  void flush() { ctx_.flush_counters(); }

  // The matcher's error count, checked rule by rule against the plain evaluation's.
  std::uint64_t matcher_errors() const {
    std::uint64_t n = 0;
    const auto& stats = ctx_.stats();
    for (std::size_t i = 0; i < stats.size(); ++i) {
      n += stats[i].errors;
      EXPECT_EQ(stats[i].errors, i < rule_errors.size() ? rule_errors[i] : 0u) << rs_.scenarios[i].name;
    }
    return n;
  }

 private:
  const bool per_event_stats_;
  const ruleset& rs_;
  const matcher& matcher_;
  matcher::context ctx_;
  event_env env_;
  engine::event_meta meta_;
  std::vector<std::uint32_t> matched_;
  const char* type_;
};

using test::slurp;

void run(const std::string& text, comparing_sink& sink) {
  engine::reader reader;
  std::string buf = text + std::string(simdjson::SIMDJSON_PADDING, '\0');
  reader.feed(buf.data(), text.size(), true, "t", sink);
}

std::shared_ptr<const ruleset> must_load(const std::vector<std::string>& paths) {
  auto r = load_ruleset(paths);
  if (auto* e = std::get_if<std::vector<load_error>>(&r)) {
    ADD_FAILURE() << (*e)[0].to_string();
    return nullptr;
  }
  return std::get<std::shared_ptr<const ruleset>>(r);
}

std::string all_realworld() {
  std::string all;
  for (const char* dir : {"falco-trace-files", "panther-analysis", "crowdsec-hub", "audit2rbac"}) {
    const fs::path d = fs::path("../shared/data/realworld") / dir;
    if (!fs::exists(d)) {
      continue;
    }
    for (const auto& e : fs::directory_iterator(d)) {
      if (e.is_regular_file()) {
        all += slurp(e.path()) + "\n";
      }
    }
  }
  all += slurp("../shared/data/realworld/perfspec-kubernetes-event-dataset/audit-logs.reconstructed.jsonl");
  return all;
}

TEST(matcher, lifted_equals_plain_on_real_events_shipped_rules) {
  auto rs = must_load({});
  ASSERT_TRUE(rs);
  EXPECT_GE(rs->match->lifted_tests(), 8u); // distinct tests: log_type == 'k8s-audit' is one for all seven
  EXPECT_GT(rs->match->string_fields(), 3u);
  // Every string test of the shipped rules is an `==`, an `in` or one startsWith (evt.Meta.user):
  // looked up or compared in place, none scanned.
  EXPECT_EQ(rs->match->hyperscan_databases(), 0u);
  const std::string events = all_realworld();
  if (events.size() < 1000) {
    GTEST_SKIP() << "no ../shared/data/realworld";
  }
  for (const char* type : {"file", "k8s-audit"}) {
    comparing_sink sink(*rs, type);
    run(events, sink);
    EXPECT_GT(sink.evaluations, 100000u);
    EXPECT_GT(sink.matches, 10u);
    EXPECT_EQ(sink.matcher_errors(), sink.errors);
  }
}

TEST(matcher, lifted_equals_plain_on_real_events_hub_rules) {
  const std::string hub = "../shared/data/crowdsec-hub/scenarios/crowdsecurity";
  if (!fs::exists(hub)) {
    GTEST_SKIP() << "no hub files";
  }
  auto rs = must_load({hub});
  ASSERT_TRUE(rs);
  // The hub's filters read evt.Meta.datasource_type: one matcher per kind of source.
  ASSERT_EQ(rs->by_source.size(), 2u);
  EXPECT_EQ(rs->matcher_index("file"), 1u);
  EXPECT_EQ(rs->matcher_index("k8s-audit"), 2u);
  EXPECT_EQ(rs->matcher_index("something-else"), 0u);
  const std::string events = all_realworld();
  for (const char* type : {"file", "k8s-audit"}) {
    for (const bool specialized : {true, false}) {
      comparing_sink sink(*rs, type, specialized);
      run(events, sink);
      EXPECT_GT(sink.matches, 10u) << type;
      EXPECT_EQ(sink.matcher_errors(), sink.errors) << type;
    }
  }
  // Specialized, only one branch of each filter is read: for files, none of the capitalized
  // (webhook) keys.
  EXPECT_LT(rs->by_source[0].second->lifted_tests(), rs->match->lifted_tests());
  EXPECT_LT(rs->by_source[0].second->string_fields(), rs->match->string_fields());
  // Folded to one branch, anonymous-access, pod-exec, service-account-access-denied and
  // bruteforce (its code in [401, 403] is an integer test) are plain conjunctions of lifted tests,
  // for either kind of source; unfolded, every hub filter is an ||.
  EXPECT_EQ(rs->match->rules_decided_by_tests(), 0u);
  EXPECT_EQ(rs->by_source[0].second->rules_decided_by_tests(), 4u);
  EXPECT_EQ(rs->by_source[1].second->rules_decided_by_tests(), 4u);
}

TEST(matcher, shipped_rules_need_no_per_source_matcher) {
  auto rs = must_load({});
  ASSERT_TRUE(rs);
  EXPECT_TRUE(rs->by_source.empty()); // no shipped filter reads evt.Meta.datasource_type
  EXPECT_EQ(rs->matcher_index("file"), 0u);
}

// Every liftable operator, with literals that need escaping and the "" corner cases, against
// events where the field is a string, empty, missing, null, a number, an object or an array.
// Rules and events with every kind of value where a string, a number or an object is expected.
const std::string adversarial_rules = R"(type: trigger
name: t/eq
description: d
filter: evt.Unmarshaled.k8s_audit.verb == 'get' || evt.Unmarshaled.k8s_audit.userAgent == 'a.b*c(d)'
---
type: trigger
name: t/ne
description: d
filter: evt.Unmarshaled.k8s_audit.verb != 'get' && evt.Meta.user != ''
---
type: trigger
name: t/in
description: d
filter: evt.Unmarshaled.k8s_audit.objectRef?.resource in ['pods', '', 'secrets']
---
type: trigger
name: t/notin
description: d
filter: evt.Unmarshaled.k8s_audit.objectRef?.resource not in ['pods', 'x\ny']
---
type: trigger
name: t/prefix
description: d
filter: evt.Meta.user startsWith 'system:' || evt.Unmarshaled.k8s_audit.requestURI startsWith ''
---
type: trigger
name: t/suffix
description: d
filter: evt.Unmarshaled.k8s_audit.requestURI endsWith '/exec' && evt.Meta.user endsWith ''
---
type: trigger
name: t/contains
description: d
filter: evt.Unmarshaled.k8s_audit.requestURI contains '?watch=' || evt.Unmarshaled.k8s_audit.verb contains ''
---
type: trigger
name: t/matches
description: d
filter: evt.Unmarshaled.k8s_audit.userAgent matches '^kubectl/v1\\.[0-9]+' || evt.Meta.user matches 'adm.n$'
---
type: trigger
name: t/annotation
description: d
filter: evt.Unmarshaled.k8s_audit.annotations["authorization.k8s.io/decision"] == "forbid"
---
type: trigger
name: t/eq-empty
description: d
filter: evt.Unmarshaled.k8s_audit.verb == '' || evt.Unmarshaled.k8s_audit.stage in ['']
---
type: trigger
name: t/object
description: d
filter: evt.Unmarshaled.k8s_audit.requestObject?.kind == 'Pod' || evt.Unmarshaled.k8s_audit.requestObject?.spec?.nodeName in ['a', 'b']
---
type: trigger
name: t/gated-shared
description: d
filter: evt.Meta.log_type == 'k8s-audit' && evt.Unmarshaled.k8s_audit.verb in ['get', 'list'] && evt.Unmarshaled.k8s_audit.objectRef?.resource == 'pods'
---
type: trigger
name: t/gated-after-failing-path
description: d
filter: evt.Meta.log_type == 'k8s-audit' && evt.Unmarshaled.k8s_audit.annotations["authorization.k8s.io/decision"] == 'forbid' && evt.Meta.user == 'admin'
---
type: trigger
name: t/gated-non-optional
description: d
filter: evt.Unmarshaled.k8s_audit.objectRef.resource == 'pods' && evt.Unmarshaled.k8s_audit.verb == 'get'
---
type: trigger
name: t/gated-nested
description: d
filter: evt.Unmarshaled.k8s_audit.verb == 'get' && evt.Unmarshaled.k8s_audit.requestObject.spec.nodeName == 'a' && evt.Unmarshaled.k8s_audit.userAgent startsWith 'kubectl'
---
type: trigger
name: t/gated-negated-first
description: d
filter: "!(evt.Meta.user startsWith 'system:') && evt.Unmarshaled.k8s_audit.objectRef?.resource in ['pods', 'secrets'] && evt.Unmarshaled.k8s_audit.verb != 'list'"
---
type: trigger
name: t/source-branches
description: hub style, folded to one branch per kind of source
filter: evt.Meta.log_type == 'k8s-audit' && ((evt.Meta.datasource_type == "k8s-audit" && evt.Unmarshaled.k8s_audit.Verb == 'get' && evt.Unmarshaled.k8s_audit.ObjectRef?.Resource == 'pods') || (evt.Meta.datasource_type != "k8s-audit" && evt.Unmarshaled.k8s_audit.verb == 'get' && evt.Unmarshaled.k8s_audit.objectRef.resource == 'pods'))
---
type: trigger
name: t/source-or-decides
description: d
filter: evt.Meta.datasource_type == "file" || evt.Unmarshaled.k8s_audit.verb == 'get'
---
type: trigger
name: t/source-and-decides
description: d
filter: evt.Meta.datasource_type != "file" && evt.Unmarshaled.k8s_audit.objectRef.resource in ['pods']
---
type: trigger
name: t/source-last
description: decided conjunct after one that may fail
filter: evt.Unmarshaled.k8s_audit.requestObject.spec.nodeName == 'a' && evt.Meta.datasource_type == "k8s-audit"
---
type: trigger
name: t/source-non-bool
description: true && <string> is the string, not a bool (an error)
filter: evt.Meta.datasource_type in ["file", "x"] && evt.Unmarshaled.k8s_audit.verb
---
type: trigger
name: t/source-negated
description: d
filter: "!(evt.Meta.datasource_type == 'k8s-audit') && evt.Meta.user startsWith 'system:'"
---
type: trigger
name: t/source-only
description: d
filter: evt.Meta.datasource_type == "file"
---
type: trigger
name: t/source-never
description: d
filter: evt.Meta.datasource_type == "syslog" && evt.Unmarshaled.k8s_audit.verb == 'get'
---
type: trigger
name: t/value-in
description: numbers; a missing responseStatus is an error
filter: evt.Meta.log_type == 'k8s-audit' && evt.Unmarshaled.k8s_audit.responseStatus.code in [401, 403]
---
type: trigger
name: t/value-eq-optional
description: d
filter: evt.Unmarshaled.k8s_audit.responseStatus?.code == 200 || 403 == evt.Unmarshaled.k8s_audit.responseStatus?.code
---
type: trigger
name: t/value-bool
description: d
filter: evt.Unmarshaled.k8s_audit.verb == 'create' && evt.Unmarshaled.k8s_audit.requestObject?.spec?.hostNetwork == true
---
type: trigger
name: t/value-nil
description: d
filter: evt.Unmarshaled.k8s_audit.requestObject != nil && evt.Unmarshaled.k8s_audit.stage == nil
---
type: trigger
name: t/value-mixed
description: d
filter: evt.Unmarshaled.k8s_audit.requestObject?.spec?.replicas in [4.01e2, "401", true, nil] && !(evt.Unmarshaled.k8s_audit.verb in [])
---
type: trigger
name: t/value-ne
description: d
filter: evt.Unmarshaled.k8s_audit.requestObject?.spec?.hostNetwork != false && evt.Unmarshaled.k8s_audit.requestObject.spec.replicas != 401.0
---
type: trigger
name: t/int-in-any-type
description: integer tests on a field that holds every JSON type
filter: evt.Unmarshaled.k8s_audit.requestObject?.spec?.replicas in [401, 7, 7] && evt.Unmarshaled.k8s_audit.verb != 'x'
---
type: trigger
name: t/int-ne-first
description: d
filter: 401 != evt.Unmarshaled.k8s_audit.requestObject?.spec?.replicas && evt.Unmarshaled.k8s_audit.verb startsWith 'c'
---
type: trigger
name: t/int-and-string-tests-on-one-field
description: string tests on a field that is sometimes a number (startsWith fails on numbers)
filter: evt.Unmarshaled.k8s_audit.requestObject?.spec?.replicas in ['401', 'x'] || evt.Unmarshaled.k8s_audit.requestObject?.spec?.replicas == 401 || evt.Unmarshaled.k8s_audit.requestObject?.spec?.replicas startsWith '4'
---
type: trigger
name: t/int-not-in-non-optional
description: a missing spec is an error, a missing responseStatus too
filter: evt.Unmarshaled.k8s_audit.responseStatus.code not in [200, 201] && evt.Unmarshaled.k8s_audit.requestObject.spec.replicas == 401
)";

const std::string adversarial_events = R"json({"verb":"get","user":{"username":"system:admin"},"requestURI":"/api/v1/pods/x/exec","userAgent":"kubectl/v1.26.1","objectRef":{"resource":"pods"},"requestObject":{"kind":"Pod","spec":{"nodeName":"a"}}}
{"verb":"list","user":{"username":""},"requestURI":"/api?watch=1","userAgent":"a.b*c(d)","objectRef":{"resource":""},"stage":"","requestObject":{"kind":5,"spec":{"nodeName":7}}}
{"verb":"","user":{"username":"admin"},"requestURI":"","objectRef":{"resource":"x\ny"},"annotations":{"authorization.k8s.io/decision":"forbid"},"requestObject":[1,2]}
{"verb":"x","requestURI":null,"objectRef":null,"annotations":null,"requestObject":{"kind":null,"spec":null}}
{"verb":"create","annotations":{"authorization.k8s.io/decision":1},"requestObject":"str"}
{"auditID":"only"}
{"verb":"GET","objectRef":{"resource":"PODS"},"userAgent":"KUBECTL/v1.2","requestURI":"/exec/","requestObject":{"KIND":"Pod","spec":{"NodeName":"b"}}}
{"verb":"create","stage":"ResponseComplete","responseStatus":{"code":401},"requestObject":{"spec":{"hostNetwork":true,"replicas":401}}}
{"verb":"create","responseStatus":{"code":403},"requestObject":{"spec":{"hostNetwork":"true","replicas":401.0}}}
{"verb":"create","stage":null,"requestObject":{"spec":{"hostNetwork":false,"replicas":"401"}}}
{"verb":"get","responseStatus":{"code":null},"requestObject":{"spec":{"hostNetwork":null,"replicas":null}}}
{"verb":"get","responseStatus":{},"requestObject":{"spec":5}}
{"verb":"create","responseStatus":{"code":200},"requestObject":{"spec":{"hostNetwork":{},"replicas":[401]}}}
{"verb":"list","responseStatus":{"code":401},"requestObject":{"spec":{"replicas":true}}}
{"verb":"list","requestObject":{"spec":{"replicas":{"a":1}}}}
{"verb":"list","responseStatus":{"code":200},"requestObject":{"spec":{"replicas":4.01e2}}}
{"verb":"create","responseStatus":{"code":500},"requestObject":{"spec":{"replicas":7}}}
{"verb":"create","responseStatus":{"code":201},"requestObject":{"spec":{"replicas":401}}}
{"verb":"create","responseStatus":{"code":404},"requestObject":{"spec":{"replicas":"x"}}}
{"verb":"create","responseStatus":{"code":404},"requestObject":{"spec":{"replicas":"x"}}}
{"verb":"create","responseStatus":{"code":403},"requestObject":{"spec":{"replicas":""}}}
{"verb":"create","responseStatus":{"code":403},"requestObject":{"spec":{"replicas":-401}}}
{"verb":"create","responseStatus":{"code":403},"requestObject":{"spec":{"replicas":18446744073709551615}}}
{"verb":"create","responseStatus":{"code":403},"requestObject":{"spec":{"replicas":401}}}
{"verb":"create","responseStatus":{"code":403},"requestObject":{"spec":{"replicas":"401"}}}
)json";

// Loads `copies` copies of the adversarial rules (renamed t<k>/...), runs the adversarial events
// through the matcher for both kinds of source, generic and specialized, and compares with the
// plain evaluation, event by event and rule by rule.
void compare_adversarial(int copies) {
  const std::string dir = ::testing::TempDir() + "/vigil_matcher_rules_" + std::to_string(getpid()) + "_" +
                          std::to_string(copies);
  fs::create_directories(dir);
  {
    std::ofstream out(dir + "/ops.yaml");
    for (int k = 0; k < copies; ++k) {
      std::string text = adversarial_rules;
      for (std::size_t at = 0; (at = text.find("name: t/", at)) != std::string::npos; at += 8) {
        text.replace(at, 8, "name: t" + std::to_string(k) + "/");
      }
      out << (k > 0 ? "\n---\n" : "") << text;
    }
  }
  auto rs = must_load({dir});
  ASSERT_TRUE(rs);
  EXPECT_GE(rs->match->lifted_tests(), 15u);
  if (copies > 1) {
    EXPECT_GT(rs->scenarios.size(), 128u); // the rule lists span three words of the bitset
  }
  ASSERT_EQ(rs->by_source.size(), 2u); // the t/source-* rules read evt.Meta.datasource_type
  const counters::registry& reg = counters::registry::global();
  for (const char* type : {"file", "k8s-audit"}) {
    for (const bool specialized : {true, false}) {
      // What flush_counters() publishes must be what stats() says, rule by rule.
      std::vector<std::uint64_t> published_before;
      for (const scenario& sc : rs->scenarios) {
        published_before.push_back(reg.read("vigil_rule_eval_errors_total", {{"rule", sc.name}}));
      }
      const std::uint64_t by_kind_before = reg.read_all("vigil_rule_eval_errors_by_kind_total");
      comparing_sink sink(*rs, type, specialized);
      run(adversarial_events, sink);
      EXPECT_EQ(sink.evaluations, 25u * rs->scenarios.size());
      EXPECT_GT(sink.matches, 10u * static_cast<unsigned>(copies));
      EXPECT_GT(sink.errors, 0u); // numbers in string sets, strings fetched from non-objects...
      EXPECT_EQ(sink.matcher_errors(), sink.errors) << type << (specialized ? " specialized" : " generic");
      // The published counters, with nothing read from the context before the flush.
      comparing_sink quiet(*rs, type, specialized, false);
      run(adversarial_events, quiet);
      quiet.flush();
      for (std::size_t i = 0; i < rs->scenarios.size(); ++i) {
        EXPECT_EQ(reg.read("vigil_rule_eval_errors_total", {{"rule", rs->scenarios[i].name}}) - published_before[i],
                  i < quiet.rule_errors.size() ? quiet.rule_errors[i] : 0u)
            << rs->scenarios[i].name;
      }
      EXPECT_EQ(reg.read_all("vigil_rule_eval_errors_by_kind_total") - by_kind_before, quiet.errors);
      EXPECT_EQ(quiet.matcher_errors(), quiet.errors);
      // Then the first sink's: both together.
      sink.flush();
      for (std::size_t i = 0; i < rs->scenarios.size(); ++i) {
        EXPECT_EQ(reg.read("vigil_rule_eval_errors_total", {{"rule", rs->scenarios[i].name}}) - published_before[i],
                  2 * (i < sink.rule_errors.size() ? sink.rule_errors[i] : 0u))
            << rs->scenarios[i].name;
      }
      EXPECT_EQ(reg.read_all("vigil_rule_eval_errors_by_kind_total") - by_kind_before, 2 * sink.errors);
    }
  }
}

TEST(matcher, lifted_equals_plain_on_adversarial_values) { compare_adversarial(1); }

// Over 64 rules, the matcher's rule lists span several words of its candidate bitset, and rules
// failing on the same field share a group across words: 5 copies give 170 rules.
TEST(matcher, lifted_equals_plain_with_rules_across_words) { compare_adversarial(5); }

// The matcher keeps each field's last string (up to 64 bytes) and skips the scan when the next
// event's is the same: values that share the first 64 bytes, or differ only in their last byte,
// around that bound, must each be scanned again.
TEST(matcher, cached_field_strings_around_their_bound) {
  const std::string dir = ::testing::TempDir() + "/vigil_matcher_cache_" + std::to_string(getpid());
  fs::create_directories(dir);
  {
    std::ofstream(dir + "/ops.yaml") << adversarial_rules;
  }
  auto rs = must_load({dir});
  ASSERT_TRUE(rs);
  auto uri = [](std::size_t size, std::string_view tail) {
    return "/api/v1/" + std::string(size - 8 - tail.size(), 'p') + std::string(tail);
  };
  const std::vector<std::string> uris = {
      uri(64, "/exec"), uri(64, "/exec"), uri(64, "/exed"), uri(64, "/exec"),
      uri(64, "/exec") + "x", uri(64, "/exec"), uri(65, "/exec"), uri(65, "/exec"),
      uri(63, "/exec"), uri(64, "?watch="), uri(100, "?watch="), uri(100, "?watch=") + "1",
      uri(100, "?watch="), uri(100, "?watcH="), uri(100, "?watch="), "", uri(64, "?watch="),
  };
  std::string events;
  for (const std::string& u : uris) {
    events += R"({"verb":"get","requestURI":")" + u + R"(","user":{"username":"system:x"}})" "\n";
  }
  for (const char* type : {"file", "k8s-audit"}) {
    comparing_sink sink(*rs, type);
    run(events, sink);
    EXPECT_EQ(sink.evaluations, uris.size() * rs->scenarios.size());
    EXPECT_GE(sink.matches, 8u); // t/suffix and t/contains hold on about half of them
  }
}

// `==` and `in` literals are found by hash, and up to 8 prefixes and suffixes alone on a field are
// compared in place; a ninth sends that field's affixes to hyperscan. Values equal to a literal,
// one byte longer or shorter, sharing only a prefix or suffix, differing in case, or colliding in
// their words must each give the evaluator's answer, whichever way the field is tested.
TEST(matcher, literals_by_hash_and_affixes_in_place_agree_with_the_evaluator) {
  const std::string dir = ::testing::TempDir() + "/vigil_matcher_literals_" + std::to_string(getpid());
  fs::create_directories(dir);
  std::string rules;
  auto rule = [&rules](const std::string& name, const std::string& filter) {
    rules += (rules.empty() ? "" : "---\n") + std::string("type: trigger\nname: ") + name +
             "\ndescription: d\nfilter: \"" + filter + "\"\n";
  };
  const std::string verb = "evt.Unmarshaled.k8s_audit.verb";
  const std::string uri = "evt.Unmarshaled.k8s_audit.requestURI";
  const std::string agent = "evt.Unmarshaled.k8s_audit.userAgent";
  // verb: literals only, shared by rules and repeated in lists; 8-byte words and their tails.
  rule("l/eq", verb + " == 'create'");
  rule("l/in", verb + " in ['get', 'list', 'watch', 'create', 'get', 'deletecollection', 'abcdefgh']");
  rule("l/ne", verb + " != 'abcdefgh' && " + verb + " != 'abcdefghi'");
  rule("l/not-in", "!(" + verb + " in ['abcdefgi', 'bcdefgh', 'x'])");
  // requestURI: 8 prefixes and suffixes, compared in place (no scan).
  rule("a/prefix", uri + " startsWith '/api/v1/' || " + uri + " startsWith '/apis/apps/v1/namespaces/'");
  rule("a/suffix", uri + " endsWith '/exec' && !(" + uri + " endsWith '/pods/exec')");
  rule("a/both", uri + " startsWith '/api' && " + uri + " endsWith 'log' && " + uri + " == '/api/v1/log'");
  rule("a/more", uri + " endsWith '?watch=1' || " + uri + " startsWith '/'");
  // userAgent: 9 affixes: hyperscan, alongside its `==` literal.
  std::string nine;
  for (int i = 0; i < 9; ++i) {
    nine += (i > 0 ? " || " : "") + agent + (i % 2 == 0 ? " startsWith 'kube" : " endsWith 'v1.") + std::to_string(i) +
            "'";
  }
  rule("h/nine", nine);
  rule("h/eq", agent + " == 'kubectl/v1.28'");
  fs::create_directories(dir);
  std::ofstream(dir + "/ops.yaml") << rules;
  auto rs = must_load({dir});
  ASSERT_TRUE(rs);
  EXPECT_EQ(rs->match->string_fields(), 3u);
  EXPECT_EQ(rs->match->hyperscan_databases(), 1u); // userAgent only

  const std::vector<std::string> verbs = {"create", "creat", "createx", "Create", "get", "list", "watch",
                                          "deletecollection", "deletecollectioN", "abcdefgh", "abcdefghi",
                                          "abcdefgi", "bcdefgh", "x", "", "abcdefg"};
  const std::vector<std::string> uris = {"/api/v1/pods", "/api/v1/", "/api/v1", "/apis/apps/v1/namespaces/x",
                                         "/api/v1/namespaces/a/pods/b/exec", "/api/v1/pods/exec", "/exec", "exec",
                                         "/api/v1/log", "/api/v1/logs", "/apilog", "/healthz?watch=1", "?watch=1",
                                         "/", "", "l"};
  const std::vector<std::string> agents = {"kubectl/v1.28", "kube0", "kube", "x/v1.1", "v1.1", "kube8x",
                                           "kubelet/v1.28 v1.7", "KUBE0", "", "kubectl/v1.2"};
  std::string events;
  std::size_t n = 0;
  for (std::size_t i = 0; i < 64; ++i) {
    events += R"({"verb":")" + verbs[i % verbs.size()] + R"(","requestURI":")" + uris[(i * 7) % uris.size()] +
              R"(","userAgent":")" + agents[(i * 3) % agents.size()] + "\"}\n";
    ++n;
  }
  for (const char* type : {"file", "k8s-audit"}) {
    comparing_sink sink(*rs, type);
    run(events, sink);
    EXPECT_EQ(sink.evaluations, n * rs->scenarios.size());
    EXPECT_GT(sink.matches, 60u);
    EXPECT_EQ(sink.matcher_errors(), sink.errors);
  }
}

// A context moved from has nothing left to count or publish, and the new one has it all.
TEST(matcher, a_moved_context_keeps_its_counts_and_leaves_none) {
  auto rs = must_load({});
  ASSERT_TRUE(rs);
  const matcher& m = rs->matcher_at(0);
  matcher::context from(m);
  event_env env;
  engine::event_meta meta;
  engine::audit_event ev;
  env.reset(&ev, &meta);
  std::vector<std::uint32_t> out;
  m.match(from, env, out);
  m.match(from, env, out);
  matcher::context to(std::move(from));
  from.flush_counters(); // NOLINT(bugprone-use-after-move): what a moved-from context must survive
  EXPECT_TRUE(from.stats().empty());
  ASSERT_EQ(to.stats().size(), rs->scenarios.size());
  EXPECT_EQ(to.stats()[0].evaluations, 2u);
  to.flush_counters();
}

} // namespace
} // namespace vigil::rules
