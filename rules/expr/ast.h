#pragma once
// The compiled form of a filter: a tree of nodes stored flat in the program (parents refer to
// children by index). It is the evaluated structure itself, and it is public so that later passes
// can inspect it, e.g. to lift string predicates into hyperscan databases:
//
//   eq/ne           a = load (slot, no dynamic part) , b = literal string
//   in_set          a = <any>, set_id -> program::string_set(set_id)     (`x in ["a", "b"]`)
//   starts_with / ends_with / contains   b = literal string
//   matches         regex_id -> program::regex_pattern(regex_id)
//
// A node is immutable after compile(); node indices are stable for the program's lifetime.

#include <cstdint>
#include <limits>

#include "rules/expr/value.h"

namespace vigil::expr {

using node_id = uint32_t;
inline constexpr node_id no_node = std::numeric_limits<node_id>::max();

enum class node_kind : uint8_t {
  literal,        // `constant` (scalars, and constant-folded lists of literals)
  load,           // environment::load(slot): a bound root path (`evt.Meta.user`)
  element,        // `#` inside a predicate (current element)
  element_index,  // `#index` inside a predicate
  member,         // a.key / a["key"] / a?.key with a constant string key (`constant`)
  index,          // a[b] / a?.[b] with a computed key or an integer index
  chain,          // end of a member chain containing `?.`: turns the short-circuit into nil
  not_,           // not a / !a
  negate,         // -a
  plus,           // +a
  and_,           // a && b (short-circuit; right side returned unchanged)
  or_,            // a || b
  eq,             // a == b
  ne,             // a != b
  lt,
  le,
  gt,
  ge,
  in_list,        // a in b (b array/map/nil, element-wise ==)
  in_set,         // a in ["lit", ...]: hash-set lookup, nil looked up as "" (§9.1)
  contains,
  starts_with,
  ends_with,
  matches,        // a matches <literal pattern> (regex_id)
  matches_dynamic, // a matches b, b computed: compiled per pattern when evaluated (RE2, cached per thread)
  add,
  sub,
  mul,
  div,
  mod,
  pow,
  coalesce,       // a ?? b
  ternary,        // a ? b : c
  array,          // [x, y, ...] with non-constant items (children via program::args)
  map_,           // {k: v, ...} with a non-constant part (children key, value, key, value... via args)
  call,           // builtin function `fn` (children via program::args)
  predicate,      // any/all/none/one/filter/map/count: a = collection, b = predicate (or no_node)
};

// Flags on a node.
enum node_flag : uint8_t {
  flag_optional = 1,        // member/index reached through `?.`; load: a consumed segment was `?.`
  flag_string_literals = 2, // literal list made only of string literals (§9.1)
};

// Builtin function identifiers (node_kind::call / predicate). Names in builtins.cpp.
enum class builtin : uint16_t {
  none,
  // predicates (node_kind::predicate)
  any, all, none_, one, filter, map, count,
  // expr builtins
  len, upper, lower, trim, trim_prefix, trim_suffix, has_prefix, has_suffix, index_of,
  to_int, to_float, to_string, type, first, last, get, abs, split, replace, keys, values, to_json,
  // CrowdSec helpers (the cheap ones)
  cs_upper, cs_lower, cs_trim_space, cs_trim, cs_trim_prefix, cs_trim_suffix, cs_index,
  cs_is_ipv4, cs_is_ipv6, cs_is_ip, cs_to_string, cs_atof, cs_key_exists,
  cs_split, cs_split_n, cs_split_after, cs_split_after_n, cs_join, cs_replace, cs_replace_all, cs_fields,
  cs_trim_left, cs_trim_right, cs_index_any, cs_get, cs_ip_in_range, cs_ip_to_range, cs_b64_decode,
  cs_path_unescape, cs_query_unescape, cs_path_escape, cs_query_escape, cs_match, cs_float_approx_equal,
  // CrowdSec helpers for profiles (duration_expr)
  cs_sprintf, cs_decisions_count, cs_decisions_since_count,
};

struct node {
  node_kind kind = node_kind::literal;
  uint8_t flags = 0;
  builtin fn = builtin::none;
  value_hint hint = value_hint::any;  // static type
  node_id a = no_node;
  node_id b = no_node;
  node_id c = no_node;
  uint32_t args_begin = 0;  // array/call: children are program::args()[args_begin, +args_count)
  uint32_t args_count = 0;
  uint32_t slot = 0;      // load: the schema's slot; in_set: set id; matches: regex id
  uint32_t line = 0;      // 1-based position of the operator/operand in the source
  uint32_t column = 0;
  value constant{};       // literal value; member key (string)

  bool optional() const noexcept { return (flags & flag_optional) != 0; }
};

}  // namespace vigil::expr
