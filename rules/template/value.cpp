// The template value model: construction, accessors, Go type names and truth.
#include "rules/template/value.h"

#include <algorithm>
#include <cstdint>
#include <utility>

namespace vigil::rules::tmpl {
namespace {

const value::list_type& empty_list() {
  static const value::list_type e;
  return e;
}
const value::map_type& empty_map() {
  static const value::map_type e;
  return e;
}
const std::string& empty_string() {
  static const std::string e;
  return e;
}

} // namespace

std::shared_ptr<const object_type> object_type::make(std::string name, std::vector<field_info> fields,
                                                     std::vector<method_info> methods) {
  auto t = std::make_shared<object_type>();
  t->name = std::move(name);
  t->fields = std::move(fields);
  t->methods = std::move(methods);
  return t;
}

int object_type::field_index(std::string_view field) const noexcept {
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].name == field) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

const method_info* object_type::method(std::string_view method_name) const noexcept {
  for (const method_info& m : methods) {
    if (m.name == method_name) {
      return &m;
    }
  }
  return nullptr;
}

value value::nil() {
  value v;
  v.kind_ = kind::nil;
  return v;
}

value value::boolean(bool b) {
  value v;
  v.kind_ = kind::boolean;
  v.type_ = "bool";
  v.data_ = b;
  return v;
}

value value::integer(std::int64_t i, const char* type) {
  value v;
  v.kind_ = kind::integer;
  v.type_ = type;
  v.data_ = i;
  return v;
}

value value::floating(double d, const char* type) {
  value v;
  v.kind_ = kind::floating;
  v.type_ = type;
  v.data_ = d;
  return v;
}

value value::string(std::string s) {
  value v;
  v.kind_ = kind::string;
  v.type_ = "string";
  v.data_ = std::move(s);
  return v;
}

namespace {
// One more than the deepest of `items`, saturating.
template <typename Range, typename Get>
std::uint16_t nesting_over(const Range& items, Get get) noexcept {
  std::uint16_t deepest = 0;
  for (const auto& item : items) {
    deepest = std::max(deepest, get(item).nesting());
  }
  return deepest == UINT16_MAX ? deepest : static_cast<std::uint16_t>(deepest + 1);
}
} // namespace

value value::list(list_type items, const char* type) {
  value v;
  v.kind_ = kind::list;
  v.nesting_ = nesting_over(items, [](const value& e) -> const value& { return e; });
  v.type_ = type;
  v.data_ = std::make_shared<const list_type>(std::move(items));
  return v;
}

value value::nil_list(const char* type) {
  value v;
  v.kind_ = kind::list;
  v.type_ = type;
  v.data_ = std::shared_ptr<const list_type>();
  return v;
}

value value::map(map_type entries, const char* type) {
  value v;
  v.kind_ = kind::map;
  v.nesting_ = nesting_over(entries, [](const auto& kv) -> const value& { return kv.second; });
  v.type_ = type;
  v.data_ = std::make_shared<const map_type>(std::move(entries));
  return v;
}

value value::nil_map(const char* type) {
  value v;
  v.kind_ = kind::map;
  v.type_ = type;
  v.data_ = std::shared_ptr<const map_type>();
  return v;
}

value value::object(std::shared_ptr<const object_type> type, list_type fields) {
  value v;
  v.kind_ = kind::object;
  fields.resize(type->fields.size());
  v.nesting_ = nesting_over(fields, [](const value& e) -> const value& { return e; });
  v.data_ = object_ref{std::move(type), std::make_shared<const list_type>(std::move(fields))};
  return v;
}

value value::nil_object(std::shared_ptr<const object_type> type) {
  value v;
  v.kind_ = kind::object;
  v.data_ = object_ref{std::move(type), nullptr};
  return v;
}

value value::optional(value v) {
  v.pointer_ = true;
  return v;
}

value value::unset(const char* type) {
  value v;
  v.kind_ = kind::nil;
  v.pointer_ = true;
  v.type_ = type;
  return v;
}

value value::time(time_value t) {
  value v;
  v.kind_ = kind::time;
  v.type_ = "time.Time";
  v.data_ = std::make_shared<const time_value>(std::move(t));
  return v;
}

bool value::is_nil() const noexcept {
  switch (kind_) {
  case kind::nil:
    return true;
  case kind::list:
    return std::get<std::shared_ptr<const list_type>>(data_) == nullptr;
  case kind::map:
    return std::get<std::shared_ptr<const map_type>>(data_) == nullptr;
  case kind::object:
    return std::get<object_ref>(data_).fields == nullptr;
  default:
    return false;
  }
}

bool value::truth() const noexcept {
  if (pointer_) {
    return kind_ != kind::nil; // a set pointer is true whatever it points to
  }
  switch (kind_) {
  case kind::none:
  case kind::nil:
    return false;
  case kind::boolean:
    return as_bool();
  case kind::integer:
    return as_int() != 0;
  case kind::floating:
    return as_float() != 0;
  case kind::string:
    return !as_string().empty();
  case kind::list:
    return !items().empty();
  case kind::map:
    return !entries().empty();
  case kind::object:
    return !is_nil();
  case kind::time:
    return true;
  }
  return false;
}

bool value::as_bool() const noexcept {
  const bool* b = std::get_if<bool>(&data_);
  return b != nullptr && *b;
}

std::int64_t value::as_int() const noexcept {
  const std::int64_t* i = std::get_if<std::int64_t>(&data_);
  return i != nullptr ? *i : 0;
}

double value::as_float() const noexcept {
  const double* d = std::get_if<double>(&data_);
  return d != nullptr ? *d : 0.0;
}

const std::string& value::as_string() const noexcept {
  const std::string* s = std::get_if<std::string>(&data_);
  return s != nullptr ? *s : empty_string();
}

const value::list_type& value::items() const noexcept {
  const auto* l = std::get_if<std::shared_ptr<const list_type>>(&data_);
  return l != nullptr && *l != nullptr ? **l : empty_list();
}

const value::map_type& value::entries() const noexcept {
  const auto* m = std::get_if<std::shared_ptr<const map_type>>(&data_);
  return m != nullptr && *m != nullptr ? **m : empty_map();
}

const object_type* value::object_kind() const noexcept {
  const auto* o = std::get_if<object_ref>(&data_);
  return o != nullptr ? o->type.get() : nullptr;
}

const std::shared_ptr<const object_type>& value::object_type_ptr() const noexcept {
  static const std::shared_ptr<const object_type> none;
  const auto* o = std::get_if<object_ref>(&data_);
  return o != nullptr ? o->type : none;
}

const value::list_type& value::fields() const noexcept {
  const auto* o = std::get_if<object_ref>(&data_);
  return o != nullptr && o->fields != nullptr ? *o->fields : empty_list();
}

value value::field(std::string_view name) const {
  const object_type* t = object_kind();
  if (t == nullptr || is_nil()) {
    return {};
  }
  const int i = t->field_index(name);
  return i < 0 ? value{} : fields()[static_cast<std::size_t>(i)];
}

value value::with_field(std::string_view name, value v) const {
  const object_type* t = object_kind();
  if (t == nullptr || is_nil()) {
    return *this;
  }
  const int i = t->field_index(name);
  if (i < 0) {
    return *this;
  }
  list_type copy = fields();
  copy[static_cast<std::size_t>(i)] = std::move(v);
  value out = *this;
  out.nesting_ = nesting_over(copy, [](const value& e) -> const value& { return e; });
  out.data_ = object_ref{object_type_ptr(), std::make_shared<const list_type>(std::move(copy))};
  return out;
}

const time_value& value::as_time() const noexcept {
  static const time_value zero;
  const auto* t = std::get_if<std::shared_ptr<const time_value>>(&data_);
  return t != nullptr && *t != nullptr ? **t : zero;
}

std::string value::type_name() const {
  std::string base;
  switch (kind_) {
  case kind::none:
    return "<nil>";
  case kind::nil:
    if (!pointer_) {
      return "interface {}";
    }
    return std::string("*") + base_type();
  case kind::object:
    return object_kind()->name;
  default:
    base = base_type();
    break;
  }
  return pointer_ ? "*" + base : base;
}

value value::deref() const {
  value v = *this;
  v.pointer_ = false;
  return v;
}

} // namespace vigil::rules::tmpl
