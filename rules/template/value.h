#pragma once
// The values a notification template sees: a stand-in for the Go values CrowdSec hands to
// text/template (docs: /work/shared/docs/go-template-subset.md, sections 2, 5 and 6).
//
// Go distinguishes things a C++ variant would merge, and templates can observe the difference:
// "no value" (an invalid reflect.Value: a missing map key) prints `<no value>` while nil prints
// `<nil>`; a pointer to a string (an optional model field) prints like the string but `eq`
// refuses it; a nil list prints `[]` but encodes as JSON `null`. The `value` below keeps those
// distinctions. Aggregates are shared and immutable, so copies are cheap.

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace vigil::rules::tmpl {

class value;

/// How an argument is converted before a function or method receives it: the Go parameter
/// types whose conversion rules text/template applies (section 5.1).
enum class param : std::uint8_t {
  any,     ///< interface{}: "no value" becomes nil; pointers are passed as they are
  reflect, ///< reflect.Value (Go's built-ins): "no value" stays "no value"
  string,  ///< string: optional strings are dereferenced
  boolean, ///< bool
  alert,   ///< *models.Alert
};

/// A method of an object type. Returns false with `error` set to stop the execution, as a Go
/// method returning a non-nil error does.
using method_fn = bool (*)(const value& self, std::span<const value> args, value& result, std::string& error);

struct method_info {
  std::string name;
  std::vector<param> params;
  method_fn fn = nullptr;
};

struct field_info {
  std::string name;       ///< Go field name: what `.Name` selects
  std::string json;       ///< JSON key; empty = never encoded (json:"-")
  bool omitempty = false; ///< dropped from JSON when empty (false, 0, "", nil, length 0)
};

/// A Go struct type. Objects are used through a pointer (the name says so: "*models.Alert"),
/// as CrowdSec's models are; a struct held by value has a name without the star.
struct object_type {
  std::string name;                 ///< as Go messages print it
  std::vector<field_info> fields;   ///< in declaration order (printing and JSON order)
  std::vector<method_info> methods; ///< what `.Name` finds before fields

  /// A shared type, as the built-in values (CrowdSec's models, the CTI client's) declare theirs.
  static std::shared_ptr<const object_type> make(std::string name, std::vector<field_info> fields,
                                                 std::vector<method_info> methods = {});

  /// Index of a field, or -1.
  [[nodiscard]] int field_index(std::string_view field) const noexcept;
  /// A method by name, or nullptr.
  [[nodiscard]] const method_info* method(std::string_view method_name) const noexcept;
};

/// A Go time.Time: an instant plus the zone it is shown in.
struct time_value {
  std::int64_t unix = 0;   ///< seconds since the Unix epoch
  std::int32_t nanos = 0;  ///< 0..999999999
  std::int32_t offset = 0; ///< seconds east of UTC
  std::string zone;        ///< abbreviation ("UTC", "CEST"); empty for an unnamed fixed offset
};

class value {
 public:
  enum class kind : std::uint8_t {
    none,     ///< "no value": an invalid reflect.Value (missing map key)
    nil,      ///< untyped nil (nil interface), or an unset optional scalar (is_pointer())
    boolean,  ///< bool
    integer,  ///< any Go integer type (type_name() tells which)
    floating, ///< float64 or float32
    string,   ///< string
    list,     ///< slice; may be nil (is_nil()), which differs from empty only in JSON
    map,      ///< map with string keys, iterated in key order; may be nil
    object,   ///< struct (usually through a pointer, which may be nil)
    time,     ///< time.Time
  };
  using list_type = std::vector<value>;
  using map_type = std::map<std::string, value, std::less<>>;

  /// "No value".
  value() = default;

  static value nil();
  static value boolean(bool b);
  /// `type` is the Go type name used in messages; it must have static storage duration.
  static value integer(std::int64_t i, const char* type = "int");
  static value floating(double d, const char* type = "float64");
  static value string(std::string s);
  static value list(list_type items, const char* type = "[]interface {}");
  static value nil_list(const char* type);
  static value map(map_type entries, const char* type = "map[string]interface {}");
  static value nil_map(const char* type);
  static value object(std::shared_ptr<const object_type> type, list_type fields);
  /// A nil pointer to an object of `type`.
  static value nil_object(std::shared_ptr<const object_type> type);
  /// A set Go pointer to the scalar `v` (bool, integer, float or string): an optional field.
  static value optional(value v);
  /// A nil Go pointer to a scalar of Go type `type` ("string", "int32", "bool").
  static value unset(const char* type);
  static value time(time_value t);

  [[nodiscard]] kind kind_of() const noexcept { return kind_; }
  /// True for optional scalars (set or not); objects carry their pointer-ness in their type name.
  [[nodiscard]] bool is_pointer() const noexcept { return pointer_; }
  /// nil, unset optional, nil list, nil map or nil object pointer.
  [[nodiscard]] bool is_nil() const noexcept;
  /// Go's truth (section 5.2): empty values are false, structs always true.
  [[nodiscard]] bool truth() const noexcept;

  [[nodiscard]] bool as_bool() const noexcept;
  [[nodiscard]] std::int64_t as_int() const noexcept;
  [[nodiscard]] double as_float() const noexcept;
  /// The string (empty if this is not a string).
  [[nodiscard]] const std::string& as_string() const noexcept;
  /// Elements of a list (empty for a nil list or a non-list).
  [[nodiscard]] const list_type& items() const noexcept;
  /// Entries of a map (empty for a nil map or a non-map).
  [[nodiscard]] const map_type& entries() const noexcept;
  /// Object type (nullptr if this is not an object).
  [[nodiscard]] const object_type* object_kind() const noexcept;
  [[nodiscard]] const std::shared_ptr<const object_type>& object_type_ptr() const noexcept;
  /// Field values of an object in declaration order (empty for a nil object).
  [[nodiscard]] const list_type& fields() const noexcept;
  /// A field by Go name, or "no value".
  [[nodiscard]] value field(std::string_view name) const;
  /// A copy of this object with one field replaced (unchanged if there is no such field).
  [[nodiscard]] value with_field(std::string_view name, value v) const;
  [[nodiscard]] const time_value& as_time() const noexcept;

  /// The Go type as messages print it: "string", "*string", "[]string", "*models.Alert".
  [[nodiscard]] std::string type_name() const;
  /// For optional scalars and nil: the pointed-to type ("string"); otherwise type_name().
  [[nodiscard]] const char* base_type() const noexcept { return type_ != nullptr ? type_ : ""; }
  /// The same value without its pointer (an optional scalar becomes the scalar; unset stays nil).
  [[nodiscard]] value deref() const;
  /// How many lists, maps and objects are nested in this value (a scalar 0, `[1]` 1, `[[1]]` 2),
  /// saturating at 65,535. Templates may not build values deeper than `max_nesting`.
  [[nodiscard]] std::uint16_t nesting() const noexcept { return nesting_; }
  static constexpr std::uint16_t max_nesting = 1000;

 private:
  struct object_ref {
    std::shared_ptr<const object_type> type;
    std::shared_ptr<const list_type> fields; ///< nullptr: nil pointer
  };
  using payload =
      std::variant<std::monostate, bool, std::int64_t, double, std::string, std::shared_ptr<const list_type>,
                   std::shared_ptr<const map_type>, object_ref, std::shared_ptr<const time_value>>;

  kind kind_ = kind::none;
  bool pointer_ = false;
  std::uint16_t nesting_ = 0;
  const char* type_ = nullptr;
  payload data_;
};

} // namespace vigil::rules::tmpl
