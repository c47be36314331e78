#pragma once
// vigil's implementation of the expr-lang subset used by CrowdSec filters
// (contract: docs/expr-subset.md). Compile once at load time, evaluate per event.
//
//   auto r = vigil::expr::compile(filter_text, my_schema);
//   if (auto* diags = std::get_if<std::vector<diagnostic>>(&r)) { ...report... }
//   const program& p = std::get<program>(r);
//   auto [ok, err] = p.eval_bool(my_event_env);   // hot path: noexcept, no heap
//
// Threading: a `program` is immutable; copies share state; eval() may run concurrently on any
// number of threads. Each thread lazily allocates one hyperscan scratch and one evaluation arena
// (first evaluation on that thread); after that evaluation never touches the heap.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "rules/expr/ast.h"
#include "rules/expr/value.h"

namespace vigil::expr {

// One step of a static member chain starting at a root identifier:
//   `evt.Meta["user"]`           -> {evt} {Meta} {user}
//   `x.ObjectRef?.Resource`      -> {x} {ObjectRef} {Resource, optional}
//   `evt.GetMeta("k")`           -> {evt} {GetMeta, call, argument "k"}
//   `Alert.GetScenario()`        -> {Alert} {GetScenario, call, no argument}
// The first segment is the root identifier. Method calls are part of the chain only when they
// have zero arguments or a single string literal argument.
struct path_segment {
  std::string_view name;
  bool optional = false;      // reached through `?.`
  bool call = false;          // `name(...)`
  bool has_argument = false;  // call with one string-literal argument
  std::string_view argument;  // that argument (decoded)
};

// What the host bound: loading `slot` yields the value of the first `consumed` segments; the
// compiler turns the remaining segments into dynamic member operations on the loaded value
// (§8.1 case-insensitive rule for JSON objects). `hint` is the static type of the loaded value.
struct binding {
  uint32_t slot = 0;
  std::size_t consumed = 0;  // 1..path.size(); unconsumed call segments are load errors
  value_hint hint = value_hint::any;
  // The slot applies the `?.` of the consumed segments itself: its load returns
  // value::fail(eval_error::chain_nil_) where a `?.` short-circuits, and nil where the value is
  // nil. Otherwise a nil load short-circuits whenever a consumed segment was `?.`.
  bool applies_optional = false;
};

// Compile-time view of the root names (the engine provides `evt`, profiles provide `Alert`).
class schema {
 public:
  virtual ~schema() = default;
  // Bind a prefix of `path` (never empty). Return an error message for unknown names/fields,
  // e.g. "unknown name Evt", "type Event has no field meta"; it becomes a located diagnostic.
  virtual std::variant<binding, std::string> bind(std::span<const path_segment> path) const = 0;
};

// Per-event values of the bound slots. Called on the hot path: must not throw or allocate.
// Return value::from_json(...) for JSON, value::string(...) for host strings (they must outlive
// the evaluation), value::nil() for absent things, value::fail(eval_error::host) to fail.
class environment {
 public:
  virtual ~environment() = default;
  virtual value load(uint32_t slot) const noexcept = 0;

  // Lifted predicates (see program::with_lifts): the host may already know the boolean result of
  // a node, computed for many rules at once (hyperscan). Return true and set `result` to use it;
  // return false to let the evaluator compute the node as usual (e.g. the field was not a string).
  virtual bool lifted(uint32_t lift_id, bool& result) const noexcept {
    (void)lift_id;
    (void)result;
    return false;
  }

  // CrowdSec's GetDecisionsCount / GetDecisionsSinceCount (profiles): how many decisions the
  // store holds on `value`, created within the Go duration `since` ("" = ever); -1 when `since`
  // is not a duration. Hosts without a store answer 0.
  virtual int64_t decisions_count(std::string_view value, std::string_view since) const noexcept {
    (void)value;
    (void)since;
    return 0;
  }
};

// A load-time error. line/column are 1-based, counted in bytes within the expression text.
struct diagnostic {
  uint32_t line = 0;
  uint32_t column = 0;
  std::string message;
};

struct eval_result {
  value v;
  eval_error err = eval_error::none;
};

struct bool_result {
  bool value = false;  // false whenever err != none
  eval_error err = eval_error::none;
};

// Hash set of the strings of an all-string-literal list (§9.1), built at compile time.
class string_set {
 public:
  explicit string_set(std::vector<std::string_view> items);
  bool contains(std::string_view s) const noexcept;
  const std::vector<std::string_view>& items() const noexcept { return items_; }

 private:
  std::vector<std::string_view> items_;  // distinct, in source order
  std::vector<uint32_t> table_;          // open addressing: index+1 into items_, 0 = empty
  uint64_t mask_ = 0;
};

namespace detail {
struct program_data;
}

class program {
 public:
  explicit program(std::shared_ptr<const detail::program_data> d) noexcept : d_(std::move(d)) {}

  // Evaluate against one event. noexcept, no heap after the first call on a thread. Values in
  // the result may point into the per-thread arena: valid until the next eval on this thread.
  eval_result eval(const environment& env) const noexcept;
  // eval() for filters: a non-bool final value (including nil) is eval_error::not_bool.
  bool_result eval_bool(const environment& env) const noexcept;
  // Evaluates one sub-expression (a node outside any predicate closure), e.g. one conjunct of a
  // filter, for `vigil explain`. Not for the hot path.
  eval_result eval_node(node_id id, const environment& env) const noexcept;

  // Static type of the whole expression (boolean for every hub filter; `any` when unknown).
  value_hint result_hint() const noexcept;
  std::string_view source() const noexcept;

  // Inspection (see ast.h).
  node_id root() const noexcept;
  std::span<const node> nodes() const noexcept;
  std::span<const node_id> args() const noexcept;
  const string_set& set(uint32_t set_id) const noexcept;
  std::string_view regex_pattern(uint32_t regex_id) const noexcept;
  // Whether hyperscan runs that pattern, so a host may group it with others (else RE2 does).
  bool regex_on_hyperscan(uint32_t regex_id) const noexcept;

  // A copy of this program in which the nodes of `lifts` first ask environment::lifted(id) for
  // their result. `lifts` maps node_id -> lift id + 1 (0 = not lifted); size() == nodes().size().
  // The host must answer exactly what evaluating the node would give, or decline.
  program with_lifts(std::vector<uint32_t> lifts) const;

 private:
  program(std::shared_ptr<const detail::program_data> d, std::shared_ptr<const std::vector<uint32_t>> lifts) noexcept
      : d_(std::move(d)), lifts_(std::move(lifts)) {}
  std::shared_ptr<const detail::program_data> d_;
  std::shared_ptr<const std::vector<uint32_t>> lifts_;  // null: nothing lifted
};

// Compile `source`. On failure returns every diagnostic found (at least the first syntax error,
// and all name/type errors of a syntactically valid text). Never throws.
//
// Supported: the grammar of §3 minus map literals, literals of §2, all operators of §4 except
// pipe/range/slices, `?.`/`?.[]`, predicates `any all none one filter map count` with `{...}`,
// `#`, `#index`, `.field`, builtins of builtins.cpp. Rejected with a located diagnostic: `let`,
// `if`, `;`, `|`, `..`, slices, map literals, bytes literals, `$env`, unknown functions, CrowdSec
// helpers vigil does not implement, and `matches` with a non-literal pattern (patterns are
// compiled by hyperscan at load, so the right side must be a string literal).
std::variant<program, std::vector<diagnostic>> compile(std::string_view source, const schema& s);

}  // namespace vigil::expr
