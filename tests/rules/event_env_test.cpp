// The `evt` environment: evt.Unmarshaled.k8s_audit.<member> loaded from what the decoder recorded
// must be exactly what walking the event's JSON gives, whatever the keys' case, repetitions,
// nulls and types.
#include "rules/scenario/event_env.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <simdjson.h>

#include "engine/event/event.h"
#include "engine/parse/meta.h"

namespace vigil::rules {
namespace {

// Events with every shape a top-level member can take: absent, null, a string, an object, another
// type where the decoder allows it, in JSON and Go spelling, alone and repeated in another case.
const std::vector<std::string> tricky_events = {
    R"({"verb":"get"})",
    R"({"verb":""})",
    R"({"verb":null,"stage":"ResponseComplete"})",
    R"({"Verb":"list"})",
    R"({"verb":"get","Verb":"list"})",
    R"({"VERB":"watch","verb":"get"})",
    R"({"verb":"get","verb":"list"})",
    R"({"verb":"get","VERB":null})",
    R"({"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a","stage":"ResponseComplete","requestURI":"/api","verb":"get","userAgent":"kubectl/v1.29"})",
    R"({"Kind":"Event","APIVersion":"audit.k8s.io/v1","Level":"Request","AuditID":"b","Stage":"Panic","RequestURI":"/x","Verb":"create","UserAgent":"curl"})",
    R"({"verb":"get","user":{"username":"alice","groups":["a"]},"impersonatedUser":{"username":"bob"}})",
    R"({"verb":"get","user":null,"impersonatedUser":null})",
    R"({"verb":"get","User":{"username":"carol"},"user":{"username":"dave"}})",
    R"({"verb":"get","objectRef":{"resource":"pods","subresource":"exec"}})",
    R"({"verb":"get","ObjectRef":{"Resource":"pods"}})",
    R"({"verb":"get","objectRef":null})",
    R"({"verb":"get","objectRef":{"resource":"pods"},"objectref":{"resource":"secrets"}})",
    R"({"verb":"get","responseStatus":{"code":403,"reason":"Forbidden"}})",
    R"({"verb":"get","ResponseStatus":{"Code":401}})",
    R"({"verb":"get","responseStatus":null})",
    R"({"verb":"get","requestObject":{"kind":"Pod","spec":{"hostNetwork":true}}})",
    R"({"verb":"get","requestObject":"text"})",
    R"({"verb":"get","requestObject":12})",
    R"({"verb":"get","requestObject":[1,2]})",
    R"({"verb":"get","requestObject":false})",
    R"({"verb":"get","requestObject":null})",
    R"({"verb":"get","RequestObject":{"kind":"Pod"},"requestobject":{"kind":"Secret"}})",
    R"({"verb":"get","responseObject":{"kind":"Status"}})",
    R"({"verb":"get","responseObject":null,"ResponseObject":{"kind":"Status"}})",
    R"({"verb":"get","annotations":{"authorization.k8s.io/decision":"forbid"}})",
    R"({"verb":"get","annotations":{}})",
    R"({"verb":"get","annotations":null})",
    R"({"verb":"get","Annotations":{"a":"b"},"annotations":{"a":"c"}})",
    R"({"verb":"get","sourceIPs":["10.0.0.1"],"SourceIPs":["10.0.0.2"],"objectRef":{"resource":"pods"}})",
    R"({"verb":"get","objectRef":{"resource":"pods","Resource":"secrets"}})",
    R"({"verb":"get","objectRef":{"Resource":"pods","SubResource":"exec"}})",
    R"({"verb":"get","objectRef":{"resource":null,"namespace":""}})",
    R"({"verb":"get","objectRef":{}})",
    R"({"verb":"get","objectRef":{"apiGroup":"apps","APIGroup":"x"}})",
    R"({"verb":"get","objectRef":{"APIVersion":"v1","resourceVersion":"5","uid":"id","name":"n"}})",
    R"({"verb":"get","responseStatus":{"code":null}})",
    R"({"verb":"get","responseStatus":{"Code":401,"code":403}})",
    R"({"verb":"get","responseStatus":{"status":"Failure","reason":"Forbidden","code":403,"details":{"code":1}}})",
    R"({"verb":"get","responseStatus":{}})",
    R"({"verb":"get","user":{"username":"a","UserName":"b"}})",
    R"({"verb":"get","user":{"UID":"u1"},"impersonatedUser":{"uid":"u2","username":null}})",
    R"({"verb":"get","timestamp":"2024-01-01T00:00:00Z","stageTimestamp":"2024-01-01T00:00:00Z","requestReceivedTimestamp":"2024-01-01T00:00:00Z"})",
};

// Two values are the same when they have the same kind and content; JSON values must be the same
// element of the same document (the walk and the slot hand out views, not copies).
void expect_same(const expr::value& a, const expr::value& b, const std::string& what) {
  ASSERT_EQ(a.kind, b.kind) << what;
  if (a.kind == expr::value_kind::string) {
    EXPECT_EQ(a.as_string(), b.as_string()) << what;
    EXPECT_EQ(a.as_string().data(), b.as_string().data()) << what;
  } else if (a.kind == expr::value_kind::json) {
    EXPECT_EQ(simdjson::minify(a.as_json()), simdjson::minify(b.as_json())) << what;
    EXPECT_EQ(a.as_json().type(), b.as_json().type()) << what;
  } else {
    EXPECT_TRUE(expr::equal(a, b)) << what;
  }
}

// A file event decoded, its meta built, and an environment over both. The parser's document
// must outlive the evaluations.
struct loaded_event {
  engine::audit_event ev;
  engine::event_meta meta;
  event_env env;

  // False if `text` does not parse or decode as an audit event.
  bool load(simdjson::dom::parser& parser, const std::string& text) {
    simdjson::dom::element root;
    if (parser.parse(text).get(root) != simdjson::SUCCESS || !engine::decode_event(root, ev).ok()) {
      return false;
    }
    engine::build_meta(ev, engine::source_info{"file", "t", ""}, meta);
    env.reset(&ev, &meta);
    return true;
  }
};

TEST(event_env, every_member_slot_loads_what_the_json_walk_finds) {
  simdjson::dom::parser parser;
  event_schema schema;
  std::size_t found = 0, repeated = 0;
  for (const std::string& text : tricky_events) {
    loaded_event e;
    ASSERT_TRUE(e.load(parser, text)) << text;
    repeated += e.ev.keys_repeated ? 1 : 0;
    for (std::size_t m = 0; m < engine::root_member_count; ++m) {
      const auto member = static_cast<engine::root_member>(m);
      for (const std::string_view name : {engine::root_member_json_name(member), engine::root_member_go_name(member)}) {
        const expr::path_segment path[] = {{"evt"}, {"Unmarshaled"}, {"k8s_audit"}, {name}};
        auto b = schema.bind(path);
        ASSERT_TRUE(std::holds_alternative<expr::binding>(b)) << name;
        const expr::binding bound = std::get<expr::binding>(b);
        ASSERT_EQ(bound.consumed, 4u) << name;
        ASSERT_GE(bound.slot, slot_root_member) << name;
        const expr::value walked = expr::json_member(e.ev.root.get_object().value_unsafe(), name);
        const expr::value loaded = e.env.load(bound.slot);
        expect_same(loaded, walked, text + " ." + std::string(name));
        found += walked.is_nil() ? 0 : 1;
      }
    }
  }
  // The corpus exercises both paths: members read from the decoder and repeated names walked.
  EXPECT_GT(found, 40u);
  EXPECT_GE(repeated, 10u);
}

// Whole expressions: a path bound to a member slot gives the same result and the same error as
// the same path walked from evt.Unmarshaled.k8s_audit (the parenthesized form is not bound).
TEST(event_env, filters_on_member_slots_equal_the_walk) {
  const std::vector<std::string> paths = {
      "verb",
      "Verb",
      "objectRef?.resource",
      "ObjectRef?.Resource",
      "objectRef.resource",
      "objectRef.subresource == 'exec'",
      "responseStatus.code in [401, 403]",
      "ResponseStatus.Code",
      "requestObject != nil",
      "requestObject?.spec?.hostNetwork == true",
      "requestObject.kind",
      "annotations['authorization.k8s.io/decision'] == 'forbid'",
      "user.username startsWith 'system:'",
      "impersonatedUser?.username",
      "userAgent contains 'kubectl'",
      "requestObject?.kind in ['Pod', 'Status']",
      "verb.x",
      "objectRef?.resource.x",
      "objectRef?.resource?.x",
      "objectRef.resource.x",
      "objectRef?.subresource",
      "ObjectRef?.Subresource",
      "objectRef.Resource",
      "responseStatus.code + 1",
      "responseStatus?.code",
      "ResponseStatus?.Code in [401]",
      "responseStatus?.reason",
      "ResponseStatus.Status",
      "user?.username",
      "User.Username",
      "impersonatedUser.uid",
      "ImpersonatedUser?.UID",
      "objectRef?.apiGroup",
      "ObjectRef?.APIGroup",
      "objectRef?.apiVersion",
      "objectRef?.resourceVersion",
      "ObjectRef.UID",
      "objectRef?.name",
      "objectRef?.namespace == ''",
  };
  event_schema schema;
  simdjson::dom::parser parser;
  std::size_t errors = 0;
  for (const std::string& p : paths) {
    auto bound = expr::compile("evt.Unmarshaled.k8s_audit." + p, schema);
    auto walked = expr::compile("(evt.Unmarshaled.k8s_audit)." + p, schema);
    ASSERT_TRUE(std::holds_alternative<expr::program>(bound)) << p;
    ASSERT_TRUE(std::holds_alternative<expr::program>(walked)) << p;
    // The bound form really loads a member slot, the other the whole event.
    const auto& bp = std::get<expr::program>(bound);
    const auto& wp = std::get<expr::program>(walked);
    bool bound_member = false, walked_member = false;
    for (const expr::node& n : bp.nodes()) {
      bound_member = bound_member || (n.kind == expr::node_kind::load && n.slot >= slot_root_member);
    }
    for (const expr::node& n : wp.nodes()) {
      walked_member = walked_member || (n.kind == expr::node_kind::load && n.slot >= slot_root_member);
    }
    EXPECT_TRUE(bound_member) << p;
    EXPECT_FALSE(walked_member) << p;
    for (const std::string& text : tricky_events) {
      loaded_event e;
      ASSERT_TRUE(e.load(parser, text)) << text;
      const expr::eval_result a = bp.eval(e.env);
      const expr::eval_result b = wp.eval(e.env);
      ASSERT_EQ(a.err, b.err) << p << " on " << text;
      errors += a.err != expr::eval_error::none ? 1 : 0;
      if (a.err == expr::eval_error::none) {
        expect_same(a.v, b.v, p + " on " + text);
      }
    }
  }
  EXPECT_GT(errors, 20u); // nil fetches and type mismatches are compared too
}

TEST(event_env, only_plain_member_paths_in_either_spelling_get_a_slot) {
  event_schema schema;
  auto slot_of = [&](std::vector<expr::path_segment> path) {
    auto b = schema.bind(path);
    return std::get<expr::binding>(b).slot;
  };
  const expr::path_segment evt{"evt"}, un{"Unmarshaled"}, k8s{"k8s_audit"};
  EXPECT_GE(slot_of({evt, un, k8s, {"objectRef"}}), slot_root_member);
  EXPECT_GE(slot_of({evt, un, k8s, {"ObjectRef"}}), slot_root_member);
  EXPECT_NE(slot_of({evt, un, k8s, {"objectRef"}}), slot_of({evt, un, k8s, {"ObjectRef"}}));
  // Another spelling, `?.` (a nil slot would short-circuit the rest of the chain), a method call:
  // the whole event, walked.
  EXPECT_EQ(slot_of({evt, un, k8s, {"objectref"}}), slot_audit_json);
  EXPECT_EQ(slot_of({evt, un, k8s, {"objectRef", true}}), slot_audit_json);
  EXPECT_EQ(slot_of({evt, un, {"k8s_audit", true}, {"objectRef"}}), slot_audit_json);
  EXPECT_EQ(slot_of({evt, un, k8s, {"sourceIPs"}}), slot_audit_json);
  EXPECT_EQ(slot_of({evt, un, k8s}), slot_audit_json);

  // Fields of member objects, `?.` before the field included, in one spelling throughout.
  for (const auto& path : std::vector<std::vector<expr::path_segment>>{
           {evt, un, k8s, {"objectRef"}, {"resource", true}},
           {evt, un, k8s, {"objectRef"}, {"resource"}},
           {evt, un, k8s, {"ObjectRef"}, {"Resource", true}},
           {evt, un, k8s, {"responseStatus"}, {"code"}},
           {evt, un, k8s, {"User"}, {"Username"}},
       }) {
    const expr::binding b = std::get<expr::binding>(schema.bind(path));
    EXPECT_GE(b.slot, slot_nested_member) << path[3].name << "." << path[4].name;
    EXPECT_EQ(b.consumed, 5u);
    EXPECT_TRUE(b.applies_optional);
  }
  const auto mixed = std::get<expr::binding>(schema.bind(std::vector<expr::path_segment>{evt, un, k8s, {"objectRef"}, {"Resource"}}));
  EXPECT_EQ(mixed.consumed, 4u); // the member's slot; the field is walked
  EXPECT_FALSE(mixed.applies_optional);
  const auto through_optional =
      std::get<expr::binding>(schema.bind(std::vector<expr::path_segment>{evt, un, k8s, {"objectRef", true}, {"resource"}}));
  EXPECT_EQ(through_optional.slot, slot_audit_json);
}

// The Event fields CrowdSec sets on every parsed log line: MarshaledTime (the event's time in
// RFC 3339), Whitelisted (false: vigil has no whitelists), Type (0, types.LOG), GetType() ("log").
TEST(event_env, crowdsec_event_fields) {
  event_schema schema;
  simdjson::dom::parser parser;
  auto eval = [&](const std::string& filter, const std::string& event) {
    auto compiled = expr::compile(filter, schema);
    if (const auto* diags = std::get_if<std::vector<expr::diagnostic>>(&compiled)) {
      return "load: " + diags->front().message;
    }
    loaded_event e;
    EXPECT_TRUE(e.load(parser, event)) << event;
    const expr::bool_result r = std::get<expr::program>(compiled).eval_bool(e.env);
    return std::string(r.err != expr::eval_error::none ? "error" : r.value ? "true" : "false");
  };
  const std::string timed = R"({"verb":"get","requestReceivedTimestamp":"2024-01-01T10:00:00.250000Z"})";
  EXPECT_EQ(eval("evt.MarshaledTime == '2024-01-01T10:00:00.25Z'", timed), "true");
  EXPECT_EQ(eval("evt.MarshaledTime == ''", R"({"verb":"get"})"), "true");
  EXPECT_EQ(eval("!evt.Whitelisted && evt.Type == 0 && evt.GetType() == 'log'", timed), "true");
  EXPECT_NE(eval("evt.Time != nil", timed).find("load: evt.Time is not available"), std::string::npos);
  // evt.Meta is a map of the keys the parser set (case-sensitive), and `in` on evt names its
  // fields (expr-subset.md 8.1 and 9).
  const std::string who = R"({"verb":"get","user":{"username":"bob"},"objectRef":{"namespace":""}})";
  EXPECT_EQ(eval("'user' in evt.Meta && !('User' in evt.Meta) && !('namespace' in evt.Meta)", who), "true");
  EXPECT_EQ(eval("len(evt.Meta) >= 2 && 'log_type' in evt.Meta", who), "true");
  EXPECT_EQ(eval("'Meta' in evt && 'Unmarshaled' in evt && !('meta' in evt)", who), "true");
}

// CrowdSec's parser skips a static whose value is empty: the meta key is absent, as when the
// expression gives nil. Reading it still gives "".
TEST(event_env, meta_keys_with_an_empty_value_are_absent) {
  simdjson::dom::parser parser;
  event_schema schema;
  loaded_event e;
  ASSERT_TRUE(e.load(parser, R"({"verb":"get","user":{"username":""},"sourceIPs":[""],)"
                             R"("objectRef":{"namespace":"","name":"web"},"requestObject":{"kind":""}})"));
  using engine::meta_key;
  for (const meta_key k : {meta_key::user, meta_key::source_ip, meta_key::namespace_, meta_key::kind}) {
    EXPECT_FALSE(e.meta.has(k)) << engine::meta_key_name(k);
  }
  EXPECT_TRUE(e.meta.has(meta_key::resource_name));
  EXPECT_TRUE(e.meta.has(meta_key::log_type));
  auto compiled = expr::compile("evt.Meta.namespace == '' && evt.Meta.user == '' && evt.Meta.resource_name == 'web'", schema);
  ASSERT_TRUE(std::holds_alternative<expr::program>(compiled));
  const expr::bool_result r = std::get<expr::program>(compiled).eval_bool(e.env);
  EXPECT_EQ(r.err, expr::eval_error::none);
  EXPECT_TRUE(r.value);
  loaded_event full;
  ASSERT_TRUE(full.load(parser, R"({"verb":"get","user":{"username":"bob"},"sourceIPs":["10.0.0.1"],)"
                                R"("objectRef":{"namespace":"ns"},"requestObject":{"kind":"Pod"}})"));
  for (const meta_key k : {meta_key::user, meta_key::source_ip, meta_key::namespace_, meta_key::kind}) {
    EXPECT_TRUE(full.meta.has(k)) << engine::meta_key_name(k);
  }
}

} // namespace
} // namespace vigil::rules
