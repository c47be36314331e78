#pragma once
// Runtime values of the filter language (docs/expr-subset.md §5).
//
// A `value` is a small trivially copyable handle: it never owns memory. Strings are views into
// the event's JSON DOM, the compiled program's literals, host storage, or the per-thread
// evaluation arena (results of `+`, `upper()`, `filter()`...; valid until the next evaluation
// on the same thread). JSON arrays and objects stay `simdjson::dom::element`s and are walked
// lazily; JSON scalars are converted to value scalars as soon as they are fetched.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include <simdjson.h>

namespace vigil::expr {

// Evaluation failure kinds. Evaluation never throws: every failure is one of these codes.
// Data-dependent failures (nil chains, wrong JSON types...) are normal: the host counts them and
// treats the rule as false for that event (design.md, difference 1).
enum class eval_error : uint8_t {
  none = 0,
  nil_fetch,           // member/index of nil: `cannot fetch k from <nil>`
  type_mismatch,       // operator applied to the wrong kinds (`nil < 1`, `"a" + 1`, `.x` on an array)
  index_out_of_range,  // `a[3]` with len(a) == 1
  not_bool,            // `&&`/`||`/`not`/`?:`/predicate operand, or eval_bool's result, is not a bool
  division_by_zero,    // integer `%` by zero
  limit,               // per-thread evaluation arena exhausted (huge filter()/map()/concatenation)
  regex,               // a regular expression failed: a scan (scratch allocation), or a computed pattern that is not valid RE2
  host,                // environment::load reported a failure (e.g. `Alert.GetScope()` with no Source)
  unsupported,         // a recognised builtin vigil does not implement for this argument shape
  chain_nil_,          // internal: `?.` short-circuit in flight; never returned by program::eval
};

// Short English name of an error kind, for metrics labels ("nil_fetch"...).
const char* to_string(eval_error e) noexcept;

enum class value_kind : uint8_t {
  nil,
  boolean,
  integer,   // int64
  floating,  // double
  string,    // string_view
  list,      // contiguous values owned by the program (constant lists) or by the eval arena
  map,       // a map literal: `size` (key, value) pairs stored flat, keys always strings, no repeats
  json,      // simdjson array or object (scalars are always converted)
  error_,    // only produced by environment::load to report a failure; see value::fail()
};

// Static type of an expression or of a bound path, as far as the compiler knows it. `any`
// means "only known at run time" (every JSON path). Used for the load-time checks of §16 and by
// hosts to verify that a filter yields a bool (`program::result_hint()`).
enum class value_hint : uint8_t {
  any,
  nil,
  boolean,
  integer,
  floating,
  string,
  list,  // array
  map,   // map/object (e.g. a JSON object known to be an object)
};

const char* to_string(value_hint h) noexcept;

struct value {
  value_kind kind = value_kind::nil;
  union {
    bool b;
    int64_t i;
    double f;
    eval_error err;
  } u{.i = 0};
  // string: (ptr, size) of the bytes; list: (ptr to `value`, count); map: (ptr to 2 * count
  // `value`s: key, value, key, value...); integer and floating: size 1 when read from JSON
  // (`json_number()`), where CrowdSec has a float64 whatever the digits.
  const void* ptr = nullptr;
  std::size_t size = 0;
  simdjson::dom::element json_{};  // only meaningful when kind == json

  static value nil() noexcept { return {}; }
  static value boolean(bool b) noexcept {
    value v;
    v.kind = value_kind::boolean;
    v.u.b = b;
    return v;
  }
  static value integer(int64_t i) noexcept {
    value v;
    v.kind = value_kind::integer;
    v.u.i = i;
    return v;
  }
  // An integer read from a JSON document (json_number()): what from_json gives for its digits.
  static value json_integer(int64_t i) noexcept {
    value v = integer(i);
    v.size = 1;
    return v;
  }
  static value floating(double f) noexcept {
    value v;
    v.kind = value_kind::floating;
    v.u.f = f;
    return v;
  }
  static value string(std::string_view s) noexcept {
    value v;
    v.kind = value_kind::string;
    v.ptr = s.data();
    v.size = s.size();
    return v;
  }
  static value list(const value* items, std::size_t n) noexcept {
    value v;
    v.kind = value_kind::list;
    v.ptr = items;
    v.size = n;
    return v;
  }
  static value map(const value* pairs, std::size_t n) noexcept {
    value v;
    v.kind = value_kind::map;
    v.ptr = pairs;
    v.size = n;
    return v;
  }
  // A JSON element: arrays/objects stay JSON, scalars become nil/bool/int/float/string.
  // Integers are kept as int64 (uint64 beyond int64 becomes a double); §5.1 allows it.
  static value from_json(simdjson::dom::element e) noexcept;
  // Returned by environment::load to make the evaluation fail with `e` (e.g. eval_error::host).
  static value fail(eval_error e) noexcept {
    value v;
    v.kind = value_kind::error_;
    v.u.err = e;
    return v;
  }

  bool is_nil() const noexcept { return kind == value_kind::nil; }
  bool is_number() const noexcept { return kind == value_kind::integer || kind == value_kind::floating; }
  // A number read from a JSON document: a float64 to CrowdSec, even when vigil keeps it an int64.
  bool json_number() const noexcept { return is_number() && size == 1; }
  bool as_bool() const noexcept { return u.b; }
  int64_t as_int() const noexcept { return u.i; }
  double as_float() const noexcept { return u.f; }
  // Integer or float, as a double.
  double as_number() const noexcept { return kind == value_kind::integer ? static_cast<double>(u.i) : u.f; }
  std::string_view as_string() const noexcept { return {static_cast<const char*>(ptr), size}; }
  const value* list_data() const noexcept { return static_cast<const value*>(ptr); }
  std::size_t list_size() const noexcept { return size; }
  const value* map_data() const noexcept { return static_cast<const value*>(ptr); }
  std::size_t map_size() const noexcept { return size; }
  simdjson::dom::element as_json() const noexcept { return json_; }
  bool is_json_array() const noexcept {
    return kind == value_kind::json && json_.type() == simdjson::dom::element_type::ARRAY;
  }
  bool is_json_object() const noexcept {
    return kind == value_kind::json && json_.type() == simdjson::dom::element_type::OBJECT;
  }
  // A map literal or a JSON object.
  bool is_object() const noexcept { return kind == value_kind::map || is_json_object(); }
};

static_assert(std::is_trivially_copyable_v<value>, "value must stay a plain handle");

// `a == b` of §6 (never fails): numbers compare numerically across int/float, strings byte-wise,
// arrays element-wise (recursively, numerically). Maps compare key by key (exact keys) and
// type-strict on their values: every JSON number is a float64 there, as in CrowdSec, so two JSON
// objects compare their numbers numerically, while `{'code': 401}` (an int) never equals a JSON
// object, and `{'a': 1} != {'a': 1.0}`.
bool equal(const value& a, const value& b) noexcept;

// §8.1: member `key` of a JSON object, exact-case key first, else the first key equal under
// ASCII case folding (document order). Missing → nil. `found` (optional) tells absent from null.
value json_member(simdjson::dom::object obj, std::string_view key, bool* found = nullptr) noexcept;

// Number of entries of a map literal or JSON object (`v.is_object()`).
inline std::size_t object_size(const value& v) noexcept {
  return v.kind == value_kind::map ? v.map_size() : v.as_json().get_object().value_unsafe().size();
}

// Calls f(key, value) for every entry of a map literal (in order) or JSON object (document order)
// until f returns false; returns false if stopped. `v.is_object()`.
template <typename F>
bool for_each_entry(const value& obj, F&& f) noexcept {
  if (obj.kind == value_kind::map) {
    for (std::size_t i = 0; i < obj.map_size(); ++i) {
      if (!f(obj.map_data()[2 * i].as_string(), obj.map_data()[2 * i + 1])) {
        return false;
      }
    }
    return true;
  }
  simdjson::dom::object o = obj.as_json().get_object().value_unsafe();
  for (auto kv : o) {
    if (!f(kv.key, value::from_json(kv.value))) {
      return false;
    }
  }
  return true;
}

// Member `key` of a map literal (exact key) or a JSON object (json_member's rule). Missing → nil.
value object_member(const value& obj, std::string_view key, bool* found = nullptr) noexcept;

}  // namespace vigil::expr
