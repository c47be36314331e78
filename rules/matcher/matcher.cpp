#include "rules/matcher/matcher.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <utility>

#include <hs/hs.h>

#include "engine/counters/counters.h"
#include "engine/util/word_hash.h"
#include "rules/expr/regex.h"

namespace vigil::rules {

namespace {

using expr::node;
using expr::node_id;
using expr::node_kind;
using expr::no_node;

// int_set: `== 401`, `!= 401`, `in [401, 403]` against integer literals, decided by comparing
// when the field holds an integer (no pattern); false (true if negated) on any string.
enum class test_kind : std::uint8_t { exact, in_set, prefix, suffix, substring, regex, int_set };

struct field_path {
  std::uint32_t slot = 0;
  std::vector<std::string> keys;
  std::vector<std::uint8_t> optional; // per step: [0] the load, [i] keys[i-1]; `?.`
  bool chain = false;                 // wrapped in a chain node: `?.` short-circuits to nil
};

// What a field's path gives on one event, as the evaluator would see it.
enum field_state : std::uint8_t {
  other = 0,     // a non-string value, or a failed load: the evaluator decides
  string_ = 1,   // a string: the bits decide
  nil_clean = 2, // nil without error (a missing member, or a `?.` short-circuit)
  fails_nil = 3, // the path fails: a member of nil without `?.` (nil_fetch)
  fails_type = 4, // the path fails: a member of a scalar or array (type_mismatch)
  integer_ = 5,   // an integer, on a field with integer tests: their bits decide them
};

struct lifted_test {
  std::uint32_t field;
  test_kind kind;
  bool negate;       // `!=`: the bit says "equal"
  bool empty_result; // the test's value on "" (literal tests only)
  std::int8_t nonempty_const = -1; // value on any non-empty string when no pattern is needed
  bool nil_result = false; // the test's value on nil: == false, != true, `in` looks up "", others false
  std::vector<std::int64_t> ints; // int_set: the literals, sorted
};

// The literals of a field's `==` and `in` tests, found by hashing the field's string once instead
// of scanning it: a hyperscan scan has a fixed cost of a few hundred instructions, most of what
// testing a short string costs. Open addressing over a power-of-two table at most half full;
// built once, read concurrently.
class literal_table {
 public:
  /// Adds `literal` (non-empty) as a value of `test`; the same pair twice is kept once.
  void add(std::string_view literal, std::uint32_t test) { pending_.emplace_back(std::string(literal), test); }

  /// Lays the literals out for lookup; call once, after the last add().
  void build() {
    std::sort(pending_.begin(), pending_.end());
    pending_.erase(std::unique(pending_.begin(), pending_.end()), pending_.end());
    std::size_t size = 2;
    while (size < pending_.size() * 2) {
      size *= 2;
    }
    slots_.assign(size, entry{});
    mask_ = size - 1;
    for (std::size_t i = 0; i < pending_.size();) {
      const std::string& lit = pending_[i].first;
      entry e{engine::word_hash(lit), static_cast<std::uint32_t>(text_.size()), static_cast<std::uint32_t>(lit.size()),
              static_cast<std::uint32_t>(tests_.size()), 0};
      text_ += lit;
      for (; i < pending_.size() && pending_[i].first == lit; ++i) {
        tests_.push_back(pending_[i].second);
        ++e.tests_count;
      }
      std::size_t at = e.hash & mask_;
      while (slots_[at].tests_count != 0) {
        at = (at + 1) & mask_;
      }
      slots_[at] = e;
    }
    pending_.clear();
    pending_.shrink_to_fit();
  }

  [[nodiscard]] bool empty() const noexcept { return tests_.empty(); }

  /// Calls `f(test)` for every test that has `s` among its literals.
  template <typename F>
  void find(std::string_view s, F&& f) const noexcept {
    const std::uint64_t h = engine::word_hash(s);
    for (std::size_t at = h & mask_;; at = (at + 1) & mask_) {
      const entry& e = slots_[at];
      if (e.tests_count == 0) {
        return;
      }
      if (e.hash == h && e.text_size == s.size() && std::memcmp(text_.data() + e.text_begin, s.data(), s.size()) == 0) {
        for (std::uint32_t k = 0; k < e.tests_count; ++k) {
          f(tests_[e.tests_begin + k]);
        }
        return;
      }
    }
  }

 private:
  struct entry {
    std::uint64_t hash = 0;
    std::uint32_t text_begin = 0, text_size = 0;
    std::uint32_t tests_begin = 0, tests_count = 0; // 0: an empty slot
  };
  std::vector<std::pair<std::string, std::uint32_t>> pending_;
  std::vector<entry> slots_;
  std::size_t mask_ = 0;
  std::string text_;
  std::vector<std::uint32_t> tests_;
};

// A `startsWith` or `endsWith` test with its literal, compared in place: a field with a few of
// them and no substring or regex test needs no scan at all.
struct affix_test {
  std::string literal;
  std::uint32_t test = 0;
  bool suffix = false;

  [[nodiscard]] bool holds(std::string_view s) const noexcept {
    return s.size() >= literal.size() &&
           std::memcmp(s.data() + (suffix ? s.size() - literal.size() : 0), literal.data(), literal.size()) == 0;
  }
};

struct field_db {
  field_path path;
  std::vector<std::uint32_t> tests;
  std::vector<std::uint32_t> int_tests; // the int_set tests among `tests`
  literal_table literals;               // the `==` and `in` literals among `tests`
  std::vector<affix_test> affixes;      // prefixes and suffixes, when compared in place
  hs_database_t* db = nullptr;          // the other string tests (substrings, regexes, many affixes)

  /// True if some test of this field reads its string (else only integers and "" are tested).
  [[nodiscard]] bool tests_strings() const noexcept { return db != nullptr || !literals.empty() || !affixes.empty(); }
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

bool literal_int(const expr::program& p, node_id id, std::int64_t& out) {
  if (id == no_node) {
    return false;
  }
  const node& n = p.nodes()[id];
  if (n.kind != node_kind::literal || n.constant.kind != expr::value_kind::integer) {
    return false;
  }
  out = n.constant.as_int();
  return true;
}

// A non-empty list literal of integers only.
bool literal_ints(const expr::program& p, node_id id, std::vector<std::int64_t>& out) {
  if (id == no_node) {
    return false;
  }
  const node& n = p.nodes()[id];
  if (n.kind != node_kind::literal || n.constant.kind != expr::value_kind::list || n.constant.list_size() == 0) {
    return false;
  }
  for (std::size_t i = 0; i < n.constant.list_size(); ++i) {
    const expr::value& item = n.constant.list_data()[i];
    if (item.kind != expr::value_kind::integer) {
      return false;
    }
    out.push_back(item.as_int());
  }
  return true;
}

// A plain field path: load, then members with constant keys, optionally wrapped in a chain.
bool as_field(const expr::program& p, node_id id, field_path& out) {
  const auto nodes = p.nodes();
  if (id == no_node) {
    return false;
  }
  out.chain = nodes[id].kind == node_kind::chain;
  if (out.chain) {
    id = nodes[id].a;
  }
  std::vector<std::string> keys;
  std::vector<std::uint8_t> optional;
  // Members with a constant name, and indexes by a string literal (`annotations["a/b"]`), which
  // the evaluator resolves the same way on objects (and fails on the same things).
  while (nodes[id].kind == node_kind::member || nodes[id].kind == node_kind::index) {
    std::string_view key;
    if (nodes[id].kind == node_kind::member) {
      if (nodes[id].constant.kind != expr::value_kind::string) {
        return false;
      }
      key = nodes[id].constant.as_string();
    } else if (!literal_string(p, nodes[id].b, key)) {
      return false;
    }
    keys.emplace(keys.begin(), key);
    optional.emplace(optional.begin(), nodes[id].optional() ? 1 : 0);
    id = nodes[id].a;
  }
  if (nodes[id].kind != node_kind::load) {
    return false;
  }
  optional.emplace(optional.begin(), nodes[id].optional() ? 1 : 0);
  out.slot = nodes[id].slot;
  out.keys = std::move(keys);
  out.optional = std::move(optional);
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
// A set of rules as the words of the candidate bitset it touches: marking or clearing a list of
// hundreds of rules is then a few word operations instead of one read-modify-write per rule.
struct rule_mask {
  std::vector<std::pair<std::uint32_t, std::uint64_t>> words; // (word index, its bits), ascending

  static rule_mask of(const std::vector<std::uint32_t>& rules) {
    rule_mask m;
    for (const std::uint32_t r : rules) {
      const std::uint32_t w = r >> 6;
      if (m.words.empty() || m.words.back().first != w) {
        m.words.emplace_back(w, 0); // rules in ascending order (load order) give one entry per word
      }
      m.words.back().second |= std::uint64_t{1} << (r & 63);
    }
    return m;
  }
};

// A rule as its gate test sees it when it fires: the rule and the (up to three) more tests that
// may rule it out, with what surely_false() reads of each, stored inline so that the rules of a
// common gate are checked from one contiguous array.
struct gate_entry {
  struct quick_test {
    std::uint32_t test;
    std::uint32_t field;
    bool nil_result;     // the test's value on nil
    bool false_on_empty; // surely false on "": a literal test whose value on "" is false
  };
  std::uint32_t rule;
  std::uint32_t quick_count = 0;
  std::array<quick_test, 3> quick{};
};

struct rule_plan {
  std::vector<prefix_test> prefix;
  bool complete = false; // the whole filter is the conjunction of `prefix`
};

struct matcher::impl {
  const std::vector<scenario>* scenarios = nullptr;
  std::vector<expr::program> filters;
  std::vector<rule_plan> plans;
  // Gating: a rule whose first conjunct is a lifted positive test can only be true when that
  // test's pattern matched (on a non-empty string field). Such a rule is visited only when its
  // gate test fired, or when the gate's field was not a usable string; the others are visited
  // for every event. With many rules, most are never looked at.
  rule_mask ungated;                    // rules visited for every event
  std::vector<rule_mask> field_gated;       // per field: the rules gated by its tests
  std::vector<rule_mask> field_gated_empty; // ... whose gate may hold on ""
  std::vector<rule_mask> field_gated_nil;   // ... whose gate holds on nil
  // A gate may be a later conjunct than the first (the most selective one). The conjuncts
  // before it must then be decided without error for the skip to be exact: per field, the rules
  // with such an earlier conjunct on it, visited whenever the field is undecidable.
  std::vector<rule_mask> field_before_gate;
  // Per test: the rules it gates, each with up to three more conjuncts checked before a visit.
  std::vector<std::vector<gate_entry>> gate_entries;
  // When a field's path fails (a member of nil without `?.`, of a scalar...), every rule whose
  // lifted prefix reaches a test on it fails too, unless an earlier conjunct is false. Rules with
  // the same conjuncts before that test share the outcome: decided once per group.
  // A group that fails counts one error for the group; its rules' counts are brought up to date
  // at flush_counters() and stats() (context::state::group_errors).
  struct fail_group {
    std::vector<prefix_test> before; // the conjuncts before the first test on the field
    std::vector<std::uint32_t> rules;
    rule_mask mask;         // `rules` as a mask
    std::uint32_t index = 0; // among all fields' groups
  };
  std::vector<std::vector<fail_group>> fail_groups; // per field
  std::uint32_t fail_group_count = 0;
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
  std::vector<rule_stats> flushed;          // per rule: what the counters already have
  std::vector<std::uint64_t> errors_by_kind, errors_by_kind_flushed;
  std::vector<std::uint64_t> group_errors;  // per fail group: errors not yet added to its rules' stats
  bool groups_pending = false;
  std::vector<std::uint8_t> bits;          // per lifted test: 1 if the pattern matched
  std::vector<std::vector<std::uint32_t>> hits; // per field: the tests that matched its string
  std::vector<std::uint64_t> candidate_bits; // rules to visit for this event, one bit each
  std::vector<std::uint8_t> field_string;  // per field: its field_state on this event
  std::vector<std::uint8_t> field_empty;   // per field: 1 if that string is ""
  // The string a field's bits were computed for, when it fits (longer values are not cached).
  // A fixed buffer and memcpy: std::string::assign cost more than the compare it saves.
  struct cached_string {
    static constexpr std::size_t capacity = 64;
    char text[capacity];
    std::uint8_t size = 0;
    bool valid = false;
    [[nodiscard]] bool holds(std::string_view s) const noexcept {
      return valid && s.size() == size && std::memcmp(s.data(), text, size) == 0;
    }
    void keep(std::string_view s) noexcept {
      valid = s.size() <= capacity;
      if (valid) {
        std::memcpy(text, s.data(), s.size());
        size = static_cast<std::uint8_t>(s.size());
      }
    }
  };
  std::vector<cached_string> last; // per field

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

  bool lifted(std::uint32_t id, bool& result) const noexcept override { return decide(id, result); }

  // The same, callable without a virtual call from the matcher's own loop.
  bool decide(std::uint32_t id, bool& result) const noexcept {
    const lifted_test& t = tests_[id];
    if (st_.field_string[t.field] == field_state::nil_clean) {
      result = t.nil_result;
      return true;
    }
    if (st_.field_string[t.field] == field_state::integer_) {
      if (t.kind != test_kind::int_set) {
        return false; // a string test on a number: the evaluator decides
      }
      result = (st_.bits[id] != 0) != t.negate;
      return true;
    }
    if (st_.field_string[t.field] != field_state::string_) {
      return false; // an error on the path, a number...: the evaluator decides
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

// A positive lifted conjunct, carried in a gate entry, that is certainly false on this event
// (decided without error).
bool surely_false(const gate_entry::quick_test& q, const matcher::context::state& st) noexcept {
  const std::uint8_t fs = st.field_string[q.field];
  if (fs == field_state::nil_clean) {
    return !q.nil_result;
  }
  if (fs != field_state::string_) {
    return false;
  }
  if (st.field_empty[q.field] != 0) {
    return q.false_on_empty;
  }
  return st.bits[q.test] == 0;
}

struct scan_target {
  std::uint8_t* bits;
  std::vector<std::uint32_t>* hits;

  void hit(std::uint32_t id) noexcept {
    if (bits[id] == 0) { // several patterns (an `in` list) share a test id
      bits[id] = 1;
      hits->push_back(id); // capacity reserved for every test of the field: no allocation
    }
  }
};

int on_hs_match(unsigned id, unsigned long long, unsigned long long, unsigned, void* ctx) {
  static_cast<scan_target*>(ctx)->hit(id);
  return 0;
}

// Reads a field the way the evaluator does (member of an object: the value or nil; of nil: a
// `?.` short-circuit to nil inside a chain, else an error; of anything else: an error) and
// classifies the outcome. Errors and non-strings are left to the evaluator.
field_state resolve(const field_path& f, const event_env& env, expr::value& v) noexcept {
  v = env.load(f.slot);
  if (v.kind == expr::value_kind::error_) {
    // A slot that applies `?.` itself (objectRef?.resource) short-circuits with chain_nil_.
    if (v.u.err == expr::eval_error::chain_nil_ && f.chain) {
      return field_state::nil_clean;
    }
    // A slot that fails as a member of nil, or of a scalar, without `?.` (responseStatus.code with
    // no responseStatus): the path fails at its first step, as the evaluator would fail it.
    if (v.u.err == expr::eval_error::nil_fetch) {
      return field_state::fails_nil;
    }
    if (v.u.err == expr::eval_error::type_mismatch) {
      return field_state::fails_type;
    }
    return field_state::other;
  }
  if (v.is_nil() && f.optional[0] != 0) {
    return f.chain ? field_state::nil_clean : field_state::other;
  }
  for (std::size_t i = 0; i < f.keys.size(); ++i) {
    if (v.is_nil()) {
      if (f.optional[i + 1] != 0) {
        return f.chain ? field_state::nil_clean : field_state::other;
      }
      return field_state::fails_nil;
    }
    if (!v.is_json_object()) {
      return field_state::fails_type;
    }
    v = expr::json_member(v.as_json().get_object().value_unsafe(), f.keys[i]);
  }
  if (v.kind == expr::value_kind::string) {
    return field_state::string_;
  }
  return v.is_nil() ? field_state::nil_clean : field_state::other;
}

} // namespace

namespace {

// What is known of a filter's nodes before any event, given slots with constant values (see
// matcher::build): decided tests, and the nodes the evaluator can reach at all.
class constant_folding {
 public:
  constant_folding(const expr::program& p, const std::vector<slot_constant>& constants)
      : p_(p), constants_(constants), known_(p.nodes().size(), unknown), live_(p.nodes().size(), 0) {
    if (constants_.empty()) {
      live_.assign(live_.size(), 1); // nothing decided: every node may be evaluated
      return;
    }
    known_.assign(known_.size(), not_yet);
    for (node_id id = 0; id < known_.size(); ++id) {
      decide(id);
    }
    mark_live(p.root());
  }

  static constexpr std::int8_t unknown = -1;

  /// 1 or 0 when the node is a boolean decided at build time (it cannot fail), else unknown.
  [[nodiscard]] std::int8_t known(node_id id) const { return id == no_node ? unknown : known_[id]; }
  /// False for nodes only reachable past a decided short-circuit: the evaluator never gets there.
  [[nodiscard]] bool live(node_id id) const { return live_[id] != 0; }

  // The filter as a list of conjuncts evaluated left to right, each of which must be true, with
  // decided ones folded away: `true && B` is B, `false || B` and `B || false` are B, a
  // decided-true conjunct disappears. Returns false where a conjunct is decided false (the list
  // stops there). Decided tests stay lifted: a rule that is visited evaluates its whole filter,
  // and reads them from the bits.
  bool conjuncts(node_id id, std::vector<node_id>& out) const {
    const node& n = p_.nodes()[id];
    const std::int8_t k = known(id);
    if (k == 1) {
      return true;
    }
    if (k == 0) {
      return false;
    }
    if (n.kind == node_kind::and_) {
      if (known(n.a) == 1) {
        return conjuncts(n.b, out);
      }
      return conjuncts(n.a, out) && conjuncts(n.b, out);
    }
    if (n.kind == node_kind::or_ && known(n.a) == 0) {
      return conjuncts(n.b, out);
    }
    if (n.kind == node_kind::or_ && known(n.b) == 0) {
      // `A || false` needs A true, as a conjunct: a non-bool A fails either way (not_bool).
      return conjuncts(n.a, out);
    }
    out.push_back(id);
    return true;
  }

 private:
  static constexpr std::int8_t not_yet = -2;

  // Decides `id` once (its children first), recording the result in known_.
  std::int8_t decide(node_id id) {
    if (known_[id] == not_yet) {
      known_[id] = decide_node(id);
    }
    return known_[id];
  }

  std::int8_t decide_node(node_id id) {
    const node& n = p_.nodes()[id];
    switch (n.kind) {
      case node_kind::eq:
      case node_kind::ne: {
        const std::string* v = constant_of(n.a);
        std::string_view lit;
        if (v != nullptr ? literal_string(p_, n.b, lit) : ((v = constant_of(n.b)) != nullptr && literal_string(p_, n.a, lit))) {
          return static_cast<std::int8_t>((*v == lit) != (n.kind == node_kind::ne));
        }
        return unknown;
      }
      case node_kind::in_set: {
        const std::string* v = constant_of(n.a);
        return v == nullptr ? unknown : static_cast<std::int8_t>(p_.set(n.slot).contains(*v));
      }
      case node_kind::not_: {
        const std::int8_t a = decide(n.a);
        return a == unknown ? unknown : static_cast<std::int8_t>(!a);
      }
      case node_kind::and_:
      case node_kind::or_: {
        // The left side decides, or the result is the right side's (§7: returned unchanged).
        const std::int8_t a = decide(n.a);
        if (a == unknown) {
          return unknown;
        }
        return a == (n.kind == node_kind::or_ ? 1 : 0) ? a : decide(n.b);
      }
      default:
        return unknown;
    }
  }

  // The constant of a plain load of a constant slot (no member, no index), else null.
  const std::string* constant_of(node_id id) const {
    field_path f;
    if (!as_field(p_, id, f) || !f.keys.empty()) {
      return nullptr;
    }
    for (const slot_constant& c : constants_) {
      if (c.slot == f.slot) {
        return &c.value;
      }
    }
    return nullptr;
  }

  void mark_live(node_id id) {
    if (id == no_node || live_[id] != 0) {
      return;
    }
    live_[id] = 1;
    const node& n = p_.nodes()[id];
    mark_live(n.a);
    if ((n.kind == node_kind::and_ && known(n.a) == 0) || (n.kind == node_kind::or_ && known(n.a) == 1)) {
      return; // the right side is never evaluated
    }
    mark_live(n.b);
    mark_live(n.c);
    for (std::uint32_t k = 0; k < n.args_count; ++k) {
      mark_live(p_.args()[n.args_begin + k]);
    }
  }

  const expr::program& p_;
  const std::vector<slot_constant>& constants_;
  std::vector<std::int8_t> known_;
  std::vector<std::uint8_t> live_;
};

} // namespace

std::variant<matcher, std::string> matcher::build(const std::vector<scenario>& scenarios,
                                                  const std::vector<slot_constant>& constants) {
  auto m = std::make_unique<impl>();
  m->scenarios = &scenarios;
  std::map<std::string, std::uint32_t> field_index;
  struct pattern {
    std::string expression;
    unsigned flags;
    unsigned id;
    std::string_view affix; // a prefix or suffix test's literal (which `expression` escapes)
    test_kind kind;
  };
  std::vector<std::vector<pattern>> patterns;

  auto field_of = [&](const field_path& f) {
    // Paths that differ only in `?.` behave differently on nil: distinct fields.
    std::string key = std::to_string(f.slot) + (f.chain ? "c" : "-");
    for (const std::uint8_t o : f.optional) {
      key += o != 0 ? '?' : '.';
    }
    for (const std::string& k : f.keys) {
      key += '\0';
      key += k;
    }
    auto [it, inserted] = field_index.emplace(key, static_cast<std::uint32_t>(m->fields.size()));
    if (inserted) {
      m->fields.push_back(field_db{f, {}, {}, {}, {}, nullptr});
      patterns.emplace_back();
    }
    return it->second;
  };
  const unsigned literal_flags = HS_FLAG_SINGLEMATCH;
  // For choosing gates: how many literals each test has, and the distinct literals per field.
  std::vector<std::size_t> test_literals;
  std::vector<std::set<std::string>> field_literals;
  std::map<std::string, std::uint32_t> test_index; // a test's signature -> its id

  for (const scenario& sc : scenarios) {
    const expr::program& p = *sc.filter;
    const auto nodes = p.nodes();
    const constant_folding folding(p, constants);
    std::vector<std::uint32_t> lifts(nodes.size(), 0);
    for (node_id id = 0; id < nodes.size(); ++id) {
      const node& n = nodes[id];
      if (!folding.live(id)) {
        continue; // never evaluated: nothing to read or scan for it
      }
      field_path f;
      std::string_view lit;
      std::vector<std::string> exprs; // patterns of this test (all share its id)
      std::vector<std::string_view> literals; // `==` and `in`: the strings themselves, found by hash
      lifted_test t{0, test_kind::exact, false, false, -1};
      bool ok = false;
      switch (n.kind) {
        case node_kind::eq:
        case node_kind::ne: {
          std::int64_t number;
          if ((as_field(p, n.a, f) && literal_string(p, n.b, lit)) ||
              (as_field(p, n.b, f) && literal_string(p, n.a, lit))) {
            t.kind = test_kind::exact;
            t.negate = n.kind == node_kind::ne;
            t.empty_result = lit.empty() != t.negate;
            if (!lit.empty()) {
              exprs.push_back("\\A" + escape_literal(lit) + "\\z");
              literals.push_back(lit);
            }
            ok = true;
          } else if ((as_field(p, n.a, f) && literal_int(p, n.b, number)) ||
                     (as_field(p, n.b, f) && literal_int(p, n.a, number))) {
            t.kind = test_kind::int_set;
            t.negate = n.kind == node_kind::ne;
            t.ints.push_back(number);
            ok = true;
          }
          break;
        }
        case node_kind::in_list:
          if (as_field(p, n.a, f) && literal_ints(p, n.b, t.ints)) {
            t.kind = test_kind::int_set;
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
                literals.push_back(item);
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
          // Patterns RE2 runs (where hyperscan's dialect parts from Go's) stay with the evaluator.
          if (as_field(p, n.a, f) && p.regex_on_hyperscan(n.slot)) {
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
      if (t.kind == test_kind::int_set) {
        // Equality with a number: false on any string and on nil (true when negated).
        std::sort(t.ints.begin(), t.ints.end());
        t.ints.erase(std::unique(t.ints.begin(), t.ints.end()), t.ints.end());
        t.empty_result = t.negate;
        for (const std::int64_t i : t.ints) {
          exprs.push_back("#" + std::to_string(i)); // the signature only: no pattern is compiled
        }
      }
      t.field = field_of(f);
      // The same test written in many rules (`evt.Meta.log_type == 'k8s-audit'` opens most k8s
      // scenarios) is one test: one pattern, one bit, one hit per event.
      std::vector<std::string> sorted = exprs;
      std::sort(sorted.begin(), sorted.end());
      std::string signature = std::to_string(t.field) + '/' + std::to_string(static_cast<int>(t.kind)) +
                              (t.negate ? "!" : "=") + (t.empty_result ? "e" : "-");
      for (const std::string& e : sorted) {
        signature += '\0';
        signature += e;
      }
      if (const auto same = test_index.find(signature); same != test_index.end()) {
        lifts[id] = same->second + 1;
        continue;
      }
      test_index.emplace(std::move(signature), static_cast<std::uint32_t>(m->tests.size()));
      if (field_literals.size() < m->fields.size()) {
        field_literals.resize(m->fields.size());
      }
      if (t.kind == test_kind::int_set) {
        exprs.clear();
      }
      test_literals.push_back(exprs.size());
      for (const std::string& e : exprs) {
        field_literals[t.field].insert(e);
      }
      t.nil_result = t.kind == test_kind::exact || t.kind == test_kind::int_set ? t.negate
                     : t.kind == test_kind::in_set                             ? t.empty_result
                                                                               : false;
      const auto test_id = static_cast<std::uint32_t>(m->tests.size());
      m->tests.push_back(t);
      m->fields[t.field].tests.push_back(test_id);
      if (t.kind == test_kind::int_set) {
        m->fields[t.field].int_tests.push_back(test_id);
      }
      if (exprs.empty()) {
        // Only "" literals: `== ""` is false on a non-empty string, `!= ""` true, `in [""]` false,
        // `contains ""` / `startsWith ""` / `endsWith ""` true. No pattern needed.
        const bool equality = t.kind == test_kind::exact || t.kind == test_kind::in_set || t.kind == test_kind::int_set;
        m->tests[test_id].nonempty_const = static_cast<std::int8_t>(equality ? t.negate : true);
      }
      if (t.kind == test_kind::exact || t.kind == test_kind::in_set) {
        for (const std::string_view l : literals) {
          m->fields[t.field].literals.add(l, test_id);
        }
        exprs.clear(); // found by hash, not scanned
      }
      for (std::string& e : exprs) {
        const unsigned flags = t.kind == test_kind::regex ? expr::detail::hyperscan_flags() : literal_flags;
        const bool affix = t.kind == test_kind::prefix || t.kind == test_kind::suffix;
        patterns[t.field].push_back(pattern{std::move(e), flags, test_id, affix ? lit : std::string_view(), t.kind});
      }
      lifts[id] = test_id + 1;
    }
    // Flatten the && chain of the root, left to right (decided parts folded away).
    std::vector<node_id> conjuncts;
    rule_plan plan;
    plan.complete = folding.conjuncts(p.root(), conjuncts);
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

  // The gating lists as rule ids, in load order; impl keeps them as masks and gate entries.
  std::vector<std::uint32_t> ungated;
  std::vector<std::vector<std::uint32_t>> gated_by(m->tests.size());
  std::vector<std::vector<std::uint32_t>> field_gated(m->fields.size()), field_gated_empty(m->fields.size()),
      field_gated_nil(m->fields.size()), field_before_gate(m->fields.size());
  std::vector<std::vector<std::uint32_t>> quick(m->plans.size());
  m->fail_groups.resize(m->fields.size());
  {
    std::map<std::string, std::pair<std::uint32_t, std::size_t>> group_index; // signature -> (field, group)
    for (std::uint32_t i = 0; i < m->plans.size(); ++i) {
      const rule_plan& plan = m->plans[i];
      std::set<std::uint32_t> seen_fields;
      std::string signature;
      for (std::size_t k = 0; k < plan.prefix.size(); ++k) {
        const std::uint32_t f = m->tests[plan.prefix[k].test].field;
        if (seen_fields.insert(f).second) {
          const std::string key = std::to_string(f) + '|' + signature;
          auto it = group_index.find(key);
          if (it == group_index.end()) {
            m->fail_groups[f].push_back(
                impl::fail_group{std::vector<prefix_test>(plan.prefix.begin(), plan.prefix.begin() + static_cast<std::ptrdiff_t>(k)), {}});
            it = group_index.emplace(key, std::make_pair(f, m->fail_groups[f].size() - 1)).first;
          }
          m->fail_groups[f][it->second.second].rules.push_back(i);
        }
        signature += std::to_string(plan.prefix[k].test) + (plan.prefix[k].negated ? "!," : ",");
      }
    }
  }
  // Selectivity of a gate, estimated from the rules themselves: the share of the literals seen on
  // its field that the test accepts (`namespace == 'a'` among 50 namespaces: 1/50;
  // `log_type == 'k8s-audit'`, which every rule shares: 1; `verb in [3 verbs]` among 8: 3/8).
  // Prefixes and suffixes count double, substrings and regexes are poor gates. Lower is better.
  auto cost = [&](std::uint32_t test) {
    const lifted_test& t = m->tests[test];
    const double share = static_cast<double>(std::max<std::size_t>(1, test_literals[test])) /
                         static_cast<double>(std::max<std::size_t>(1, field_literals[t.field].size()));
    const double kind = t.kind == test_kind::exact || t.kind == test_kind::in_set ? 1
                        : t.kind == test_kind::prefix || t.kind == test_kind::suffix ? 2
                                                                                    : 8;
    return share * kind;
  };
  for (std::uint32_t i = 0; i < m->plans.size(); ++i) {
    const rule_plan& plan = m->plans[i];
    double best = -1;
    std::size_t best_k = 0;
    for (std::size_t k = 0; k < plan.prefix.size(); ++k) {
      const lifted_test& t = m->tests[plan.prefix[k].test];
      if (plan.prefix[k].negated || t.negate || t.nonempty_const >= 0) {
        continue;
      }
      if (const double c = cost(plan.prefix[k].test); best < 0 || c < best) {
        best = c;
        best_k = k;
      }
    }
    if (best >= 0) {
      const std::uint32_t test = plan.prefix[best_k].test;
      // Up to three more selective conjuncts, checked from the bits before the rule is visited.
      std::vector<std::pair<double, std::size_t>> more;
      for (std::size_t k = 0; k < plan.prefix.size(); ++k) {
        const lifted_test& t = m->tests[plan.prefix[k].test];
        if (k != best_k && !plan.prefix[k].negated && !t.negate && t.nonempty_const < 0 &&
            cost(plan.prefix[k].test) < 1) {
          more.emplace_back(cost(plan.prefix[k].test), k);
        }
      }
      std::sort(more.begin(), more.end());
      more.resize(std::min<std::size_t>(more.size(), 3));
      std::size_t last_k = best_k;
      for (const auto& [c, k] : more) {
        quick[i].push_back(plan.prefix[k].test);
        last_k = std::max(last_k, k);
      }
      for (std::size_t k = 0; k < last_k; ++k) {
        auto& before = field_before_gate[m->tests[plan.prefix[k].test].field];
        if (before.empty() || before.back() != i) {
          before.push_back(i);
        }
      }
      const lifted_test& t = m->tests[test];
      gated_by[test].push_back(i);
      field_gated[t.field].push_back(i);
      if (t.empty_result || t.kind == test_kind::regex) {
        field_gated_empty[t.field].push_back(i);
      }
      if (t.nil_result) {
        field_gated_nil[t.field].push_back(i);
      }
    } else {
      ungated.push_back(i);
    }
  }
  m->ungated = rule_mask::of(ungated);
  m->gate_entries.resize(m->tests.size());
  for (std::size_t t = 0; t < m->tests.size(); ++t) {
    for (const std::uint32_t r : gated_by[t]) {
      gate_entry e{r};
      for (const std::uint32_t q : quick[r]) {
        const lifted_test& qt = m->tests[q];
        e.quick[e.quick_count++] = {q, qt.field, qt.nil_result, qt.kind != test_kind::regex && !qt.empty_result};
      }
      m->gate_entries[t].push_back(e);
    }
  }
  for (std::size_t fi = 0; fi < m->fields.size(); ++fi) {
    m->field_gated.push_back(rule_mask::of(field_gated[fi]));
    m->field_gated_empty.push_back(rule_mask::of(field_gated_empty[fi]));
    m->field_gated_nil.push_back(rule_mask::of(field_gated_nil[fi]));
    m->field_before_gate.push_back(rule_mask::of(field_before_gate[fi]));
    for (impl::fail_group& g : m->fail_groups[fi]) {
      g.mask = rule_mask::of(g.rules);
      g.index = m->fail_group_count++;
    }
  }

  // A few prefixes and suffixes, alone on their field, are compared in place: cheaper than a scan
  // up to about this many (a scan's fixed cost is a few hundred instructions).
  constexpr std::size_t max_affixes_in_place = 8;
  for (std::size_t fi = 0; fi < m->fields.size(); ++fi) {
    m->fields[fi].literals.build();
    if (patterns[fi].size() <= max_affixes_in_place &&
        std::all_of(patterns[fi].begin(), patterns[fi].end(), [](const pattern& pt) {
          return pt.kind == test_kind::prefix || pt.kind == test_kind::suffix;
        })) {
      for (const pattern& pt : patterns[fi]) {
        m->fields[fi].affixes.push_back(affix_test{std::string(pt.affix), pt.id, pt.kind == test_kind::suffix});
      }
      patterns[fi].clear();
    }
    if (patterns[fi].empty()) {
      continue; // no test on this field needs a scan: literals, affixes, integers, "" only
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
std::size_t matcher::rules_decided_by_tests() const noexcept {
  return static_cast<std::size_t>(
      std::count_if(impl_->plans.begin(), impl_->plans.end(), [](const rule_plan& p) { return p.complete; }));
}
std::size_t matcher::string_fields() const noexcept {
  std::size_t n = 0;
  for (const field_db& f : impl_->fields) {
    n += f.tests_strings() ? 1 : 0;
  }
  return n;
}
std::size_t matcher::hyperscan_databases() const noexcept {
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
  owner_ = &m;
  state_->flushed.assign(im.filters.size(), rule_stats{});
  state_->errors_by_kind.assign(im.error_kind_ids.size(), 0);
  state_->errors_by_kind_flushed.assign(im.error_kind_ids.size(), 0);
  state_->group_errors.assign(im.fail_group_count, 0);
  state_->bits.assign(im.tests.size(), 0);
  state_->hits.resize(im.fields.size());
  for (std::size_t fi = 0; fi < im.fields.size(); ++fi) {
    state_->hits[fi].reserve(im.fields[fi].tests.size());
  }
  state_->candidate_bits.assign((im.filters.size() + 63) / 64, 0);
  state_->field_string.assign(im.fields.size(), 0);
  state_->field_empty.assign(im.fields.size(), 0);
  state_->last.assign(im.fields.size(), state::cached_string{});
}
matcher::context::~context() = default;
// A moved-from context has nothing to count or publish.
matcher::context::context(context&& o) noexcept
    : state_(std::move(o.state_)),
      stats_(std::move(o.stats_)),
      events_(o.events_),
      unflushed_(std::exchange(o.unflushed_, 0)),
      owner_(std::exchange(o.owner_, nullptr)) {}

void matcher::match(context& ctx, const event_env& env, std::vector<std::uint32_t>& out) const noexcept {
  out.clear();
  const impl& im = *impl_;
  context::state& st = *ctx.state_;

  // 1. Read every field once; scan it unless it is the string of the previous event.
  for (std::size_t fi = 0; fi < im.fields.size(); ++fi) {
    const field_db& f = im.fields[fi];
    expr::value v;
    st.field_string[fi] = resolve(f.path, env, v);
    if (st.field_string[fi] != field_state::string_) {
      // `other` with an integer in hand: the path's value (a path that fails stops on a value too).
      if (st.field_string[fi] == field_state::other && v.kind == expr::value_kind::integer && !f.int_tests.empty()) {
        // Decide the integer tests by comparing; the string tests are left to the evaluator.
        st.field_string[fi] = field_state::integer_;
        st.field_empty[fi] = 0;
        st.last[fi].valid = false; // the bits no longer belong to the cached string
        for (const std::uint32_t t : st.hits[fi]) {
          st.bits[t] = 0;
        }
        st.hits[fi].clear();
        for (const std::uint32_t t : f.int_tests) {
          const std::vector<std::int64_t>& ints = im.tests[t].ints;
          if (std::binary_search(ints.begin(), ints.end(), v.as_int())) {
            st.bits[t] = 1;
            st.hits[fi].push_back(t);
          }
        }
      }
      continue;
    }
    const std::string_view s = v.as_string();
    st.field_empty[fi] = s.empty() ? 1 : 0;
    if (s.empty() || !f.tests_strings()) {
      continue;
    }
    if (st.last[fi].holds(s)) {
      continue; // bits of this field's tests still hold
    }
    for (const std::uint32_t t : st.hits[fi]) {
      st.bits[t] = 0; // only the tests that matched last time can be set
    }
    st.hits[fi].clear();
    scan_target target{st.bits.data(), &st.hits[fi]};
    if (!f.literals.empty()) {
      f.literals.find(s, [&target](std::uint32_t t) { target.hit(t); });
    }
    for (const affix_test& a : f.affixes) {
      if (a.holds(s)) {
        target.hit(a.test);
      }
    }
    if (f.db != nullptr &&
        hs_scan(f.db, s.data(), static_cast<unsigned>(s.size()), 0, st.scratch, on_hs_match, &target) != HS_SUCCESS) {
      st.field_string[fi] = field_state::other; // let the evaluator decide
      st.last[fi].valid = false;
      continue;
    }
    st.last[fi].keep(s);
  }

  // 2. The rules worth visiting: the ungated ones, those whose gate test fired (and whose quick
  // checks did not rule them out), and those whose gate or an earlier conjunct cannot be decided
  // from the bits on this event. A bitset keeps them in load order, each once.
  std::vector<std::uint64_t>& cand = st.candidate_bits;
  std::fill(cand.begin(), cand.end(), 0);
  auto mark = [&cand](std::uint32_t r) { cand[r >> 6] |= std::uint64_t{1} << (r & 63); };
  auto mark_all = [&cand](const rule_mask& rules) {
    for (const auto& [w, bits] : rules.words) {
      cand[w] |= bits;
    }
  };
  mark_all(im.ungated);
  for (std::size_t fi = 0; fi < im.fields.size(); ++fi) {
    const std::uint8_t fs = st.field_string[fi];
    const bool decidable = fs == field_state::string_ || fs == field_state::nil_clean;
    if (!decidable) {
      mark_all(im.field_before_gate[fi]); // an earlier conjunct may fail with an error
      mark_all(im.field_gated[fi]);       // and the gate itself cannot be read from the bits
      continue;
    }
    if (im.field_gated[fi].words.empty()) {
      continue;
    }
    if (fs == field_state::nil_clean) {
      mark_all(im.field_gated_nil[fi]);
      continue;
    }
    if (st.field_empty[fi] != 0) {
      mark_all(im.field_gated_empty[fi]);
      continue;
    }
    for (const std::uint32_t t : st.hits[fi]) {
      for (const gate_entry& e : im.gate_entries[t]) {
        bool rejected = false;
        for (std::uint32_t k = 0; k < e.quick_count; ++k) {
          if (surely_false(e.quick[k], st)) {
            rejected = true;
            break;
          }
        }
        if (!rejected) {
          mark(e.rule);
        }
      }
    }
  }
  const lifted_env lenv(env, im.tests, st);
  // Failing fields: decide the rules that reach them in their prefix group by group, and take
  // them off the visit list (their outcome is known: an error, or false).
  for (std::size_t fi = 0; fi < im.fields.size(); ++fi) {
    const std::uint8_t fs = st.field_string[fi];
    if (fs != field_state::fails_nil && fs != field_state::fails_type) {
      continue;
    }
    const auto kind = fs == field_state::fails_nil ? expr::eval_error::nil_fetch : expr::eval_error::type_mismatch;
    for (const auto& g : im.fail_groups[fi]) {
      int outcome = 1; // 1: the failing test is reached (error); 0: an earlier conjunct is false
      for (const prefix_test& pt : g.before) {
        bool v;
        if (!lenv.decide(pt.test, v)) {
          outcome = -1; // undecidable (another failing field, a number...): leave to the visit
          break;
        }
        if (v == pt.negated) {
          outcome = 0;
          break;
        }
      }
      if (outcome < 0) {
        continue;
      }
      for (const auto& [w, bits] : g.mask.words) {
        cand[w] &= ~bits;
      }
      if (outcome == 1) {
        ++st.group_errors[g.index]; // added to each rule's errors by fold_group_errors()
        st.groups_pending = true;
        st.errors_by_kind[static_cast<std::size_t>(kind)] += g.rules.size();
      }
    }
  }
  ++ctx.events_;
  if (++ctx.unflushed_ >= 4096) {
    ctx.flush_counters();
  }

  // 3. Decide each candidate from its lifted prefix when possible, else run its filter with the
  // lifted tests answered from the bits.
  for (std::size_t w = 0; w < cand.size(); ++w) {
   for (std::uint64_t word = cand[w]; word != 0; word &= word - 1) {
    const auto i = static_cast<std::uint32_t>(w * 64 + static_cast<std::size_t>(__builtin_ctzll(word)));
    const rule_plan& plan = im.plans[i];
    int decided = -1; // -1: evaluate; 0: false; 1: true
    expr::eval_error fails = expr::eval_error::none;
    std::size_t k = 0;
    for (; k < plan.prefix.size(); ++k) {
      bool v;
      if (!lenv.decide(plan.prefix[k].test, v)) {
        // A path that fails makes this conjunct, hence the filter, fail as the evaluator would.
        const std::uint8_t fs = st.field_string[im.tests[plan.prefix[k].test].field];
        if (fs == field_state::fails_nil || fs == field_state::fails_type) {
          fails = fs == field_state::fails_nil ? expr::eval_error::nil_fetch : expr::eval_error::type_mismatch;
          decided = 0;
        }
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
      r.err = fails;
    } else {
      r = im.filters[i].eval_bool(lenv);
    }
    rule_stats& rs = ctx.stats_[i];
    if (r.err != expr::eval_error::none) {
      ++rs.errors; // the counters follow at flush_counters()
      ++st.errors_by_kind[static_cast<std::size_t>(r.err)];
      continue;
    }
    if (r.value) {
      ++rs.matches;
      out.push_back(i);
    }
   }
  }
}

void matcher::context::fold_group_errors() const noexcept {
  if (!state_ || owner_ == nullptr || !state_->groups_pending) {
    return;
  }
  state& st = *state_;
  for (const auto& groups : owner_->impl_->fail_groups) {
    for (const impl::fail_group& g : groups) {
      if (const std::uint64_t n = st.group_errors[g.index]; n != 0) {
        for (const std::uint32_t r : g.rules) {
          stats_[r].errors += n;
        }
        st.group_errors[g.index] = 0;
      }
    }
  }
  st.groups_pending = false;
}

void matcher::context::flush_counters() noexcept {
  if (unflushed_ == 0 || owner_ == nullptr) {
    return;
  }
  fold_group_errors();
  const impl& im = *owner_->impl_;
  state& st = *state_;
  for (std::size_t i = 0; i < im.rule_ids.size(); ++i) {
    const rule_counters& rc = im.rule_ids[i];
    counters::add(rc.evaluations, unflushed_);
    if (const std::uint64_t d = stats_[i].matches - st.flushed[i].matches; d != 0) {
      counters::add(rc.matches, d);
    }
    if (const std::uint64_t d = stats_[i].errors - st.flushed[i].errors; d != 0) {
      counters::add(rc.errors, d);
    }
    st.flushed[i] = stats_[i];
  }
  for (std::size_t k = 0; k < st.errors_by_kind.size(); ++k) {
    if (const std::uint64_t d = st.errors_by_kind[k] - st.errors_by_kind_flushed[k]; d != 0) {
      counters::add(im.error_kind_ids[k], d);
      st.errors_by_kind_flushed[k] = st.errors_by_kind[k];
    }
  }
  unflushed_ = 0;
}

} // namespace vigil::rules
