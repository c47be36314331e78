#pragma once
// Internal to vigil_template: the pieces the parser, the executor and the functions share
// (text helpers, Go fmt printing, Go time layouts, the function table).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "rules/template/value.h"
#include "rules/unicode_print.h"

namespace vigil::rules::tmpl {
/// strconv.Quote (declared in template.h as well, for users outside the template code).
std::string go_quote(std::string_view s);
} // namespace vigil::rules::tmpl

namespace vigil::rules::tmpl::detail {

// ---- Unicode text (text.cpp) --------------------------------------------------------------

/// Decodes the UTF-8 rune at s[i]; returns its width. An invalid byte gives U+FFFD, width 1.
std::size_t decode_rune(std::string_view s, std::size_t i, char32_t& r) noexcept;
void append_rune(std::string& out, char32_t r);
/// Go's unicode.IsPrint (rules/unicode_print.h, shared with the filter language).
using rules::is_print;
/// Go's unicode.IsSpace.
bool is_space(char32_t r) noexcept;
/// Go's unicode.IsLetter || unicode.IsDigit, approximated for non-ASCII runes.
bool is_letter_or_digit(char32_t r) noexcept;
/// Go's unicode.ToUpper / ToLower (simple case mapping) for the Latin, Greek and Cyrillic
/// scripts; other runes are returned unchanged.
char32_t to_upper(char32_t r) noexcept;
/// unicode.ToTitle: to_upper, except the digraphs (ǆ → ǅ) and Georgian, whose title case differs.
char32_t to_title(char32_t r) noexcept;
char32_t to_lower(char32_t r) noexcept;
using tmpl::go_quote;
/// strconv.Quote, or with `ascii_only` strconv.QuoteToASCII (every non-ASCII rune escaped).
std::string go_quote(std::string_view s, bool ascii_only);
/// strconv.CanBackquote: one line, no control character but tab, no backquote, valid UTF-8.
bool can_backquote(std::string_view s);
/// strconv.QuoteRune.
std::string go_quote_rune(char32_t r);

// ---- Go fmt (fmt.cpp) ---------------------------------------------------------------------

/// A float as Go's %v prints it (shortest digits, exponent form outside [1e-4, 1e21)).
std::string format_float(double d, bool f32);
/// fmt's %v of one operand; `depth` 0 is a top-level operand (a pointer to a struct prints &{…}).
void print_value(std::string& out, const value& v, int depth);
/// What an action `{{pipeline}}` writes for its value.
void print_action(std::string& out, const value& v);
/// sprig's strval: the text of a value (strings as they are, everything else as %v).
std::string text_of(const value& v);
/// fmt.Sprint / fmt.Sprintln / fmt.Sprintf.
/// fmt.Sprint; `deref_objects`: an object pointer prints as its struct ({…}, not &{…}), as the
/// arguments of html, js and urlquery do (text/template's printableValue dereferences them).
std::string sprint(std::span<const value> args, bool deref_objects = false);
std::string sprintln(std::span<const value> args);
std::string sprintf(std::string_view format, std::span<const value> args);
/// The most a template may produce, as its output or as any string along the way (a printf
/// result, a replace). Go has no bound; a template whose widths or doublings run past it (a
/// `%9999999s` applied to every field of an alert, a string doubled in a range) is an error
/// instead of gigabytes. A notification is kilobytes; a group of alerts as JSON a few MiB.
inline constexpr std::size_t max_template_output = 16u << 20;

/// "" if every verb of a constant printf format is one vigil implements, else the message.
std::string check_printf_format(std::string_view format);
/// Go encoding/json; false when the value cannot be encoded (NaN, infinity).
bool append_json(std::string& out, const value& v);

// ---- Go time (time.cpp) -------------------------------------------------------------------

/// Unix seconds of Go's zero time, 0001-01-01T00:00:00Z.
inline constexpr std::int64_t zero_time_unix = -62135596800LL;

time_value time_in_utc(std::int64_t unix, std::int32_t nanos);
time_value time_in_local(std::int64_t unix, std::int32_t nanos);
/// `t` shown in the zone called `zone` ("UTC", "Local", ""); an unknown zone gives UTC.
time_value time_in_zone(const time_value& t, std::string_view zone);
time_value time_now();
/// time.Time.Format with a Go reference layout.
std::string format_time(const time_value& t, std::string_view layout);
/// time.ParseInLocation(layout, text, time.Local); false on any error.
bool parse_time(std::string_view layout, std::string_view text, time_value& out);
/// time.Time.String(): "2023-05-17 15:08:22.76396 +0000 UTC".
std::string time_string(const time_value& t);

// ---- functions (funcs.cpp) ----------------------------------------------------------------

/// A template function. Returns false with `error` set when the call fails (Go: a non-nil
/// error result or a recovered panic); the executor prefixes "error calling NAME: ".
using func_fn = bool (*)(std::span<value> args, value& result, std::string& error);

struct func_info {
  std::string_view name;
  param params[3];       ///< declared parameter types (the last one repeats when variadic)
  std::uint8_t n_params; ///< number of declared parameters, including the variadic one
  bool variadic;
  func_fn fn;
};

/// The function called `name`, or nullptr.
const func_info* find_function(std::string_view name) noexcept;
/// True for sprig (and Go) function names vigil recognises but does not implement.
bool is_unsupported_function(std::string_view name) noexcept;

} // namespace vigil::rules::tmpl::detail
