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
    case element_type::INT64: return integer(e.get_int64().value_unsafe());
    case element_type::UINT64: return floating(static_cast<double>(e.get_uint64().value_unsafe()));
    case element_type::DOUBLE: return floating(e.get_double().value_unsafe());
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

bool arrays_equal(const value& a, const value& b) noexcept {
  if (array_size(a) != array_size(b)) {
    return false;
  }
  // Walk both in lockstep; JSON arrays only support forward iteration cheaply.
  if (a.kind == value_kind::list && b.kind == value_kind::list) {
    for (std::size_t i = 0; i < a.list_size(); ++i) {
      if (!equal(a.list_data()[i], b.list_data()[i])) {
        return false;
      }
    }
    return true;
  }
  if (a.kind == value_kind::list) {
    return arrays_equal(b, a);
  }
  auto ja = a.json_.get_array().value_unsafe();
  if (b.kind == value_kind::list) {
    std::size_t i = 0;
    for (auto e : ja) {
      if (!equal(value::from_json(e), b.list_data()[i++])) {
        return false;
      }
    }
    return true;
  }
  auto jb = b.json_.get_array().value_unsafe();
  auto it = jb.begin();
  for (auto e : ja) {
    if (!equal(value::from_json(e), value::from_json(*it))) {
      return false;
    }
    ++it;
  }
  return true;
}

bool objects_equal(simdjson::dom::object a, simdjson::dom::object b) noexcept {
  if (a.size() != b.size()) {
    return false;
  }
  for (auto kv : a) {
    simdjson::dom::element other;
    if (b.at_key(kv.key).get(other) != simdjson::SUCCESS) {
      return false;
    }
    if (!equal(value::from_json(kv.value), value::from_json(other))) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool equal(const value& a, const value& b) noexcept {
  if (a.is_number() && b.is_number()) {
    if (a.kind == value_kind::integer && b.kind == value_kind::integer) {
      return a.u.i == b.u.i;
    }
    return a.as_number() == b.as_number();
  }
  if (a.kind != b.kind && !(is_array(a) && is_array(b))) {
    return false;
  }
  switch (a.kind) {
    case value_kind::nil: return true;
    case value_kind::boolean: return a.u.b == b.u.b;
    case value_kind::string: return a.as_string() == b.as_string();
    case value_kind::list:
    case value_kind::json:
      if (is_array(a) || is_array(b)) { // an array never equals an object (both may be json)
        return is_array(a) && is_array(b) && arrays_equal(a, b);
      }
      if (a.is_json_object() && b.is_json_object()) {
        return objects_equal(a.json_.get_object().value_unsafe(), b.json_.get_object().value_unsafe());
      }
      return false;
    default: return false;
  }
}

value json_member(simdjson::dom::object obj, std::string_view key, bool* found) noexcept {
  simdjson::dom::element folded;
  bool have_folded = false;
  for (auto kv : obj) {
    if (kv.key == key) {
      if (found != nullptr) {
        *found = true;
      }
      return value::from_json(kv.value);
    }
    if (!have_folded && ascii_iequal(kv.key, key)) {
      folded = kv.value;
      have_folded = true;
    }
  }
  if (found != nullptr) {
    *found = have_folded;
  }
  return have_folded ? value::from_json(folded) : value::nil();
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
