#include "rules/expr/value.h"

#include <cstring>

#include "rules/expr/expr.h"

namespace vigil::expr {

const char* to_string(eval_error e) noexcept {
  switch (e) {
    case eval_error::none: return "none";
    case eval_error::nil_fetch: return "nil_fetch";
    case eval_error::type_mismatch: return "type_mismatch";
    case eval_error::index_out_of_range: return "index_out_of_range";
    case eval_error::not_bool: return "not_bool";
    case eval_error::division_by_zero: return "division_by_zero";
    case eval_error::limit: return "limit";
    case eval_error::regex: return "regex";
    case eval_error::host: return "host";
    case eval_error::unsupported: return "unsupported";
    case eval_error::chain_nil_: return "chain_nil";
  }
  return "unknown";
}

const char* to_string(value_hint h) noexcept {
  switch (h) {
    case value_hint::any: return "interface {}";
    case value_hint::nil: return "<nil>";
    case value_hint::boolean: return "bool";
    case value_hint::integer: return "int";
    case value_hint::floating: return "float64";
    case value_hint::string: return "string";
    case value_hint::list: return "array";
    case value_hint::map: return "map";
  }
  return "unknown";
}

namespace {
value json_marked(value v) noexcept {
  v.size = 1;  // see value::json_number()
  return v;
}
}  // namespace

value value::from_json(simdjson::dom::element e) noexcept {
  using simdjson::dom::element_type;
  switch (e.type()) {
    case element_type::ARRAY:
    case element_type::OBJECT: {
      value v;
      v.kind = value_kind::json;
      v.json_ = e;
      return v;
    }
    case element_type::INT64: return json_marked(integer(e.get_int64().value_unsafe()));
    case element_type::UINT64: return json_marked(floating(static_cast<double>(e.get_uint64().value_unsafe())));
    case element_type::DOUBLE: return json_marked(floating(e.get_double().value_unsafe()));
    case element_type::STRING: return string(e.get_string().value_unsafe());
    case element_type::BOOL: return boolean(e.get_bool().value_unsafe());
    case element_type::NULL_VALUE: return nil();
  }
  return nil();
}

namespace {

bool ascii_iequal(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') {
      x = static_cast<char>(x + 32);
    }
    if (y >= 'A' && y <= 'Z') {
      y = static_cast<char>(y + 32);
    }
    if (x != y) {
      return false;
    }
  }
  return true;
}

bool is_array(const value& v) noexcept { return v.kind == value_kind::list || v.is_json_array(); }

std::size_t array_size(const value& v) noexcept {
  return v.kind == value_kind::list ? v.list_size() : simdjson::dom::array(v.json_.get_array().value_unsafe()).size();
}

// Both sides of a comparison walked in step: a list by index, a JSON array by its iterator.
class array_cursor {
 public:
  explicit array_cursor(const value& v) noexcept : v_(v) {
    if (v.kind != value_kind::list) {
      arr_ = v.json_.get_array().value_unsafe();
      it_ = arr_.begin();
    }
  }
  value next() noexcept {
    if (v_.kind == value_kind::list) {
      return v_.list_data()[i_++];
    }
    value out = value::from_json(*it_);
    ++it_;
    return out;
  }
  bool from_json() const noexcept { return v_.kind == value_kind::json; }

 private:
  const value& v_;
  std::size_t i_ = 0;
  simdjson::dom::array arr_{};
  simdjson::dom::array::iterator it_{};
};

bool strict_equal(const value& a, bool a_json, const value& b, bool b_json) noexcept;

// Arrays element by element; `strict` compares the elements as map values do (§6 rule 6).
bool arrays_equal(const value& a, const value& b, bool strict) noexcept {
  const std::size_t n = array_size(a);
  if (n != array_size(b)) {
    return false;
  }
  array_cursor ca(a), cb(b);
  for (std::size_t i = 0; i < n; ++i) {
    const value x = ca.next(), y = cb.next();
    if (!(strict ? strict_equal(x, ca.from_json(), y, cb.from_json()) : equal(x, y))) {
      return false;
    }
  }
  return true;
}

// Exact-key lookup, as Go's map index is.
bool exact_member(const value& obj, std::string_view key, value& out) noexcept {
  bool found = false;
  for_each_entry(obj, [&](std::string_view k, const value& v) {
    if (k == key) {
      out = v;
      found = true;
    }
    return !found;
  });
  return found;
}

bool objects_equal(const value& a, const value& b) noexcept {
  if (object_size(a) != object_size(b)) {
    return false;
  }
  // Two JSON objects: both sides' numbers are float64 in CrowdSec, so compare them numerically;
  // with a map literal on either side, the comparison is type-strict (§6 rule 6).
  const bool both_json = a.kind == value_kind::json && b.kind == value_kind::json;
  return for_each_entry(a, [&](std::string_view k, const value& x) {
    value y;
    if (!exact_member(b, k, y)) {
      return false;
    }
    return both_json ? equal(x, y) : strict_equal(x, a.kind == value_kind::json, y, b.kind == value_kind::json);
  });
}

// Go's deep equality of interface values inside a map: same dynamic type, then same value. A
// number read from JSON is a float64 (`*_json`); an integer literal is an int.
bool strict_equal(const value& a, bool a_json, const value& b, bool b_json) noexcept {
  if (a.is_number() && b.is_number()) {
    const bool af = a_json || a.json_number() || a.kind == value_kind::floating;
    const bool bf = b_json || b.json_number() || b.kind == value_kind::floating;
    if (af != bf) {
      return false;
    }
    return af ? a.as_number() == b.as_number() : a.u.i == b.u.i;
  }
  if (is_array(a) || is_array(b)) {
    return is_array(a) && is_array(b) && arrays_equal(a, b, true);
  }
  if (a.is_object() || b.is_object()) {
    if (!(a.is_object() && b.is_object()) || object_size(a) != object_size(b)) {
      return false;
    }
    return for_each_entry(a, [&](std::string_view k, const value& x) {
      value y;
      return exact_member(b, k, y) && strict_equal(x, a.kind == value_kind::json, y, b.kind == value_kind::json);
    });
  }
  return equal(a, b);
}

}  // namespace

bool equal(const value& a, const value& b) noexcept {
  if (a.is_number() && b.is_number()) {
    if (a.kind == value_kind::integer && b.kind == value_kind::integer) {
      return a.u.i == b.u.i;
    }
    return a.as_number() == b.as_number();
  }
  if (is_array(a) || is_array(b)) { // an array never equals an object (both may be json)
    return is_array(a) && is_array(b) && arrays_equal(a, b, false);
  }
  if (a.is_object() || b.is_object()) {
    return a.is_object() && b.is_object() && objects_equal(a, b);
  }
  if (a.kind != b.kind) {
    return false;
  }
  switch (a.kind) {
    case value_kind::nil: return true;
    case value_kind::boolean: return a.u.b == b.u.b;
    case value_kind::string: return a.as_string() == b.as_string();
    default: return false;
  }
}

value json_member(simdjson::dom::object obj, std::string_view key, bool* found) noexcept {
  simdjson::dom::element folded;
  bool have_folded = false;
  simdjson::dom::element exact;
  bool have_exact = false;
  for (auto kv : obj) {
    if (kv.key == key) {
      exact = kv.value;  // a key written twice: the last one, as Go's encoding/json keeps
      have_exact = true;
      continue;
    }
    if (!have_exact && !have_folded && ascii_iequal(kv.key, key)) {
      folded = kv.value;
      have_folded = true;
    }
  }
  if (have_exact) {
    if (found != nullptr) {
      *found = true;
    }
    return value::from_json(exact);
  }
  if (found != nullptr) {
    *found = have_folded;
  }
  return have_folded ? value::from_json(folded) : value::nil();
}

value object_member(const value& obj, std::string_view key, bool* found) noexcept {
  if (obj.kind == value_kind::json) {
    return json_member(obj.json_.get_object().value_unsafe(), key, found);
  }
  value out;
  const bool hit = exact_member(obj, key, out);
  if (found != nullptr) {
    *found = hit;
  }
  return out;
}

// --- string_set ---

namespace {
uint64_t fnv1a(std::string_view s) noexcept {
  uint64_t h = 1469598103934665603ull;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}
}  // namespace

string_set::string_set(std::vector<std::string_view> items) {
  std::size_t cap = 4;
  while (cap < items.size() * 2) {
    cap *= 2;
  }
  table_.assign(cap, 0);
  mask_ = cap - 1;
  for (auto s : items) {
    if (contains(s)) {
      continue;
    }
    items_.push_back(s);
    uint64_t h = fnv1a(s) & mask_;
    while (table_[h] != 0) {
      h = (h + 1) & mask_;
    }
    table_[h] = static_cast<uint32_t>(items_.size());
  }
}

bool string_set::contains(std::string_view s) const noexcept {
  uint64_t h = fnv1a(s) & mask_;
  while (table_[h] != 0) {
    if (items_[table_[h] - 1] == s) {
      return true;
    }
    h = (h + 1) & mask_;
  }
  return false;
}

}  // namespace vigil::expr
