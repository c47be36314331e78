#include "rules/matcher/matcher.h"

#include <cstdio>
#include <map>

#include <hs/hs.h>

#include "engine/counters/counters.h"
#include "rules/expr/regex.h"

namespace vigil::rules {

namespace {

using expr::node;
using expr::node_id;
using expr::node_kind;
using expr::no_node;

enum class test_kind : std::uint8_t { exact, in_set, prefix, suffix, substring, regex };

struct field_path {
  std::uint32_t slot = 0;
  std::vector<std::string> keys;
};

struct lifted_test {
  std::uint32_t field;
  test_kind kind;
  bool negate;       // `!=`: the bit says "equal"
  bool empty_result; // the test's value on "" (literal tests only)
  std::int8_t nonempty_const = -1; // value on any non-empty string when no pattern is needed
};

struct field_db {
  field_path path;
  std::vector<std::uint32_t> tests;
  hs_database_t* db = nullptr;
};

// Hyperscan literal: every byte that is not alphanumeric escaped as \xHH.
std::string escape_literal(std::string_view s) {
  std::string out;
  for (const unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
      out += static_cast<char>(c);
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

// A plain field path: load, then members with constant keys, optionally wrapped in a chain.
bool as_field(const expr::program& p, node_id id, field_path& out) {
  const auto nodes = p.nodes();
  if (id == no_node) {
    return false;
  }
  if (nodes[id].kind == node_kind::chain) {
    id = nodes[id].a;
  }
  std::vector<std::string> keys;
  while (nodes[id].kind == node_kind::member) {
    if (nodes[id].constant.kind != expr::value_kind::string) {
      return false;
    }
    keys.emplace(keys.begin(), nodes[id].constant.as_string());
    id = nodes[id].a;
  }
  if (nodes[id].kind != node_kind::load) {
    return false;
  }
  out.slot = nodes[id].slot;
  out.keys = std::move(keys);
  return true;
}

bool literal_string(const expr::program& p, node_id id, std::string_view& out) {
  if (id == no_node) {
    return false;
  }
  const node& n = p.nodes()[id];
  if (n.kind != node_kind::literal || n.constant.kind != expr::value_kind::string) {
    return false;
  }
  out = n.constant.as_string();
  return true;
}

struct rule_counters {
  counters::id evaluations, matches, errors;
};

} // namespace

// The leading conjuncts of a filter's top-level && chain that are lifted tests (or their
// negation). They are decided from the bits in order: a false one decides the rule (every earlier
// conjunct was true, so the evaluator would stop there too); when all conjuncts are lifted and
// true, the rule matches. Anything else falls back to evaluating the filter.
struct prefix_test {
  std::uint32_t test;
  bool negated;
};
struct rule_plan {
  std::vector<prefix_test> prefix;
  bool complete = false; // the whole filter is the conjunction of `prefix`
};

struct matcher::impl {
  const std::vector<scenario>* scenarios = nullptr;
  std::vector<expr::program> filters;
  std::vector<rule_plan> plans;
  std::vector<field_db> fields;
  std::vector<lifted_test> tests;
  std::vector<rule_counters> rule_ids;
  std::vector<counters::id> error_kind_ids; // by eval_error value

  ~impl() {
    for (field_db& f : fields) {
      if (f.db != nullptr) {
        hs_free_database(f.db);
      }
    }
  }
};

struct matcher::context::state {
  hs_scratch_t* scratch = nullptr;
  std::vector<std::uint8_t> bits;          // per lifted test: 1 if the pattern matched
  std::vector<std::uint8_t> field_string;  // per field: 1 if the field is a string on this event
  std::vector<std::uint8_t> field_empty;   // per field: 1 if that string is ""
  std::vector<std::string> last;           // per field: the string the bits were computed for
  std::vector<std::uint8_t> last_valid;

  ~state() {
    if (scratch != nullptr) {
      hs_free_scratch(scratch);
    }
  }
};

namespace {

// The environment the lifted filters see: loads come from the event, lifted tests from the bits.
class lifted_env final : public expr::environment {
 public:
  lifted_env(const event_env& base, const std::vector<lifted_test>& tests, const matcher::context::state& st)
      : base_(base), tests_(tests), st_(st) {}

  expr::value load(std::uint32_t slot) const noexcept override { return base_.load(slot); }

  bool lifted(std::uint32_t id, bool& result) const noexcept override {
    const lifted_test& t = tests_[id];
    if (st_.field_string[t.field] == 0) {
      return false; // nil, number, missing object...: the evaluator decides
    }
    if (st_.field_empty[t.field] != 0) {
      if (t.kind == test_kind::regex) {
        return false;
      }
      result = t.empty_result;
      return true;
    }
    result = t.nonempty_const >= 0 ? t.nonempty_const != 0 : (st_.bits[id] != 0) != t.negate;
    return true;
  }

 private:
  const event_env& base_;
  const std::vector<lifted_test>& tests_;
  const matcher::context::state& st_;
};

int on_hs_match(unsigned id, unsigned long long, unsigned long long, unsigned, void* ctx) {
  static_cast<std::uint8_t*>(ctx)[id] = 1;
  return 0;
}

// Reads a field the way the evaluator would when every step finds an object; anything else
// yields a non-string value and the field's tests are left to the evaluator.
expr::value resolve(const field_path& f, const event_env& env) noexcept {
  expr::value v = env.load(f.slot);
  for (const std::string& key : f.keys) {
    if (!v.is_json_object()) {
      return expr::value::nil();
    }
    v = expr::json_member(v.as_json().get_object().value_unsafe(), key);
  }
  return v;
}

} // namespace

std::variant<matcher, std::string> matcher::build(const std::vector<scenario>& scenarios) {
  auto m = std::make_unique<impl>();
  m->scenarios = &scenarios;
  std::map<std::string, std::uint32_t> field_index;
  struct pattern {
    std::string expression;
    unsigned flags;
    unsigned id;
  };
  std::vector<std::vector<pattern>> patterns;

  auto field_of = [&](const field_path& f) {
    std::string key = std::to_string(f.slot);
    for (const std::string& k : f.keys) {
      key += '\0';
      key += k;
    }
    auto [it, inserted] = field_index.emplace(key, static_cast<std::uint32_t>(m->fields.size()));
    if (inserted) {
      m->fields.push_back(field_db{f, {}, nullptr});
      patterns.emplace_back();
    }
    return it->second;
  };
  const unsigned literal_flags = HS_FLAG_SINGLEMATCH;

  for (const scenario& sc : scenarios) {
    const expr::program& p = *sc.filter;
    const auto nodes = p.nodes();
    std::vector<std::uint32_t> lifts(nodes.size(), 0);
    for (node_id id = 0; id < nodes.size(); ++id) {
      const node& n = nodes[id];
      field_path f;
      std::string_view lit;
      std::vector<std::string> exprs; // patterns of this test (all share its id)
      lifted_test t{0, test_kind::exact, false, false, -1};
      bool ok = false;
      switch (n.kind) {
        case node_kind::eq:
        case node_kind::ne:
          if ((as_field(p, n.a, f) && literal_string(p, n.b, lit)) ||
              (as_field(p, n.b, f) && literal_string(p, n.a, lit))) {
            t.kind = test_kind::exact;
            t.negate = n.kind == node_kind::ne;
            t.empty_result = lit.empty() != t.negate;
            if (!lit.empty()) {
              exprs.push_back("\\A" + escape_literal(lit) + "\\z");
            }
            ok = true;
          }
          break;
        case node_kind::in_set:
          if (as_field(p, n.a, f)) {
            t.kind = test_kind::in_set;
            for (std::string_view item : p.set(n.slot).items()) {
              if (item.empty()) {
                t.empty_result = true;
              } else {
                exprs.push_back("\\A" + escape_literal(item) + "\\z");
              }
            }
            ok = true;
          }
          break;
        case node_kind::starts_with:
        case node_kind::ends_with:
        case node_kind::contains:
          if (as_field(p, n.a, f) && literal_string(p, n.b, lit)) {
            t.empty_result = lit.empty();
            if (lit.empty()) {
              t.kind = test_kind::substring; // "" is in every string
              ok = true;
              break;
            }
            const std::string e = escape_literal(lit);
            t.kind = n.kind == node_kind::starts_with ? test_kind::prefix
                     : n.kind == node_kind::ends_with ? test_kind::suffix
                                                      : test_kind::substring;
            exprs.push_back(t.kind == test_kind::prefix ? "\\A" + e : (t.kind == test_kind::suffix ? e + "\\z" : e));
            ok = true;
          }
          break;
        case node_kind::matches:
          if (as_field(p, n.a, f)) {
            t.kind = test_kind::regex;
            exprs.push_back(expr::detail::hyperscan_expression(p.regex_pattern(n.slot)));
            ok = true;
          }
          break;
        default:
          break;
      }
      if (!ok) {
        continue;
      }
      t.field = field_of(f);
      const auto test_id = static_cast<std::uint32_t>(m->tests.size());
      m->tests.push_back(t);
      m->fields[t.field].tests.push_back(test_id);
      if (exprs.empty()) {
        // Only "" literals: `== ""` is false on a non-empty string, `!= ""` true, `in [""]` false,
        // `contains ""` / `startsWith ""` / `endsWith ""` true. No pattern needed.
        const bool equality = t.kind == test_kind::exact || t.kind == test_kind::in_set;
        m->tests[test_id].nonempty_const = static_cast<std::int8_t>(equality ? t.negate : true);
      }
      for (std::string& e : exprs) {
        const unsigned flags = t.kind == test_kind::regex ? expr::detail::hyperscan_flags() : literal_flags;
        patterns[t.field].push_back(pattern{std::move(e), flags, test_id});
      }
      lifts[id] = test_id + 1;
    }
    // Flatten the && chain of the root, left to right.
    std::vector<node_id> conjuncts;
    std::vector<node_id> stack{p.root()};
    while (!stack.empty()) {
      const node_id id = stack.back();
      stack.pop_back();
      if (nodes[id].kind == node_kind::and_) {
        stack.push_back(nodes[id].b);
        stack.push_back(nodes[id].a);
      } else {
        conjuncts.push_back(id);
      }
    }
    rule_plan plan;
    plan.complete = true;
    for (const node_id c : conjuncts) {
      if (lifts[c] != 0) {
        plan.prefix.push_back(prefix_test{lifts[c] - 1, false});
      } else if (nodes[c].kind == node_kind::not_ && lifts[nodes[c].a] != 0) {
        plan.prefix.push_back(prefix_test{lifts[nodes[c].a] - 1, true});
      } else {
        plan.complete = false;
        break;
      }
    }
    m->plans.push_back(std::move(plan));
    m->filters.push_back(p.with_lifts(std::move(lifts)));
  }

  for (std::size_t fi = 0; fi < m->fields.size(); ++fi) {
    if (patterns[fi].empty()) {
      continue; // only tests against "" on this field: answered without a scan
    }
    std::vector<const char*> exprs;
    std::vector<unsigned> flags, ids;
    for (const pattern& pt : patterns[fi]) {
      exprs.push_back(pt.expression.c_str());
      flags.push_back(pt.flags);
      ids.push_back(pt.id);
    }
    hs_compile_error_t* err = nullptr;
    if (hs_compile_multi(exprs.data(), flags.data(), ids.data(), static_cast<unsigned>(exprs.size()), HS_MODE_BLOCK,
                         nullptr, &m->fields[fi].db, &err) != HS_SUCCESS) {
      std::string msg = err != nullptr && err->message != nullptr ? err->message : "unknown error";
      hs_free_compile_error(err);
      return "hyperscan rejected the string tests of a field: " + msg;
    }
  }

  auto& reg = counters::registry::global();
  for (const scenario& sc : scenarios) {
    m->rule_ids.push_back(rule_counters{
        reg.define("vigil_rule_evaluations_total", "Filter evaluations, per rule", {{"rule", sc.name}}),
        reg.define("vigil_rule_matches_total", "Events matched by the filter, per rule", {{"rule", sc.name}}),
        reg.define("vigil_rule_eval_errors_total",
                   "Filter evaluation errors (the rule is false for that event), per rule", {{"rule", sc.name}}),
    });
  }
  for (int e = 0; e <= static_cast<int>(expr::eval_error::chain_nil_); ++e) {
    m->error_kind_ids.push_back(reg.define("vigil_rule_eval_errors_by_kind_total", "Filter evaluation errors, by kind",
                                           {{"kind", expr::to_string(static_cast<expr::eval_error>(e))}}));
  }
  return matcher(std::move(m));
}

matcher::matcher(std::unique_ptr<impl> p) noexcept : impl_(std::move(p)) {}
matcher::matcher(matcher&&) noexcept = default;
matcher& matcher::operator=(matcher&&) noexcept = default;
matcher::~matcher() = default;

std::size_t matcher::lifted_tests() const noexcept { return impl_->tests.size(); }
std::size_t matcher::size() const noexcept { return impl_->filters.size(); }
std::size_t matcher::field_databases() const noexcept {
  std::size_t n = 0;
  for (const field_db& f : impl_->fields) {
    n += f.db != nullptr ? 1 : 0;
  }
  return n;
}

matcher::context::context(const matcher& m) : state_(std::make_unique<state>()), stats_(m.size()) {
  const impl& im = *m.impl_;
  for (const field_db& f : im.fields) {
    if (f.db != nullptr && hs_alloc_scratch(f.db, &state_->scratch) != HS_SUCCESS) {
      std::fprintf(stderr, "vigil: hyperscan scratch allocation failed\n");
      std::abort();
    }
  }
  state_->bits.assign(im.tests.size(), 0);
  state_->field_string.assign(im.fields.size(), 0);
  state_->field_empty.assign(im.fields.size(), 0);
  state_->last.assign(im.fields.size(), std::string());
  state_->last_valid.assign(im.fields.size(), 0);
  for (std::string& s : state_->last) {
    s.reserve(64);
  }
}
matcher::context::~context() = default;
matcher::context::context(context&&) noexcept = default;

void matcher::match(context& ctx, const event_env& env, std::vector<std::uint32_t>& out) const noexcept {
  out.clear();
  const impl& im = *impl_;
  context::state& st = *ctx.state_;

  // 1. Read every field once; scan it unless it is the string of the previous event.
  for (std::size_t fi = 0; fi < im.fields.size(); ++fi) {
    const field_db& f = im.fields[fi];
    const expr::value v = resolve(f.path, env);
    if (v.kind != expr::value_kind::string) {
      st.field_string[fi] = 0;
      continue;
    }
    st.field_string[fi] = 1;
    const std::string_view s = v.as_string();
    st.field_empty[fi] = s.empty() ? 1 : 0;
    if (s.empty() || f.db == nullptr) {
      continue;
    }
    if (st.last_valid[fi] != 0 && st.last[fi] == s) {
      continue; // bits of this field's tests still hold
    }
    for (const std::uint32_t t : f.tests) {
      st.bits[t] = 0;
    }
    if (hs_scan(f.db, s.data(), static_cast<unsigned>(s.size()), 0, st.scratch, on_hs_match, st.bits.data()) !=
        HS_SUCCESS) {
      st.field_string[fi] = 0; // let the evaluator decide
      st.last_valid[fi] = 0;
      continue;
    }
    if (s.size() <= st.last[fi].capacity()) {
      st.last[fi].assign(s); // no allocation: long values are simply not cached
      st.last_valid[fi] = 1;
    } else {
      st.last_valid[fi] = 0;
    }
  }

  // 2. Decide each rule from its lifted prefix when possible, else run its filter with the lifted
  // tests answered from the bits.
  const lifted_env lenv(env, im.tests, st);
  for (std::uint32_t i = 0; i < im.filters.size(); ++i) {
    const rule_plan& plan = im.plans[i];
    int decided = -1; // -1: evaluate; 0: false; 1: true
    std::size_t k = 0;
    for (; k < plan.prefix.size(); ++k) {
      bool v;
      if (!lenv.lifted(plan.prefix[k].test, v)) {
        break;
      }
      if (v == plan.prefix[k].negated) {
        decided = 0;
        break;
      }
    }
    if (decided < 0 && plan.complete && k == plan.prefix.size()) {
      decided = 1;
    }
    expr::bool_result r;
    if (decided >= 0) {
      r.value = decided == 1;
    } else {
      r = im.filters[i].eval_bool(lenv);
    }
    rule_stats& rs = ctx.stats_[i];
    ++rs.evaluations;
    counters::add(im.rule_ids[i].evaluations);
    if (r.err != expr::eval_error::none) {
      ++rs.errors;
      counters::add(im.rule_ids[i].errors);
      counters::add(im.error_kind_ids[static_cast<std::size_t>(r.err)]);
      continue;
    }
    if (r.value) {
      ++rs.matches;
      counters::add(im.rule_ids[i].matches);
      out.push_back(i);
    }
  }
}

} // namespace vigil::rules
