#pragma once
// Go text/template, the subset CrowdSec notification `format:` strings use (Go built-ins, part
// of sprig, CrowdSec's helpers), with byte-identical output for the templates users copy from
// CrowdSec. Contract: /work/shared/docs/go-template-subset.md.
//
//   auto r = vigil::rules::tmpl::templ::parse(format_text);      // once, at config load
//   if (auto* e = std::get_if<parse_error>(&r)) { ...config error at e->line... }
//   std::string out, err;
//   if (!std::get<templ>(r).execute(alerts_value(views), out, err)) { ...count, log err... }
//
// A parsed template is immutable: copies share it and execute() may run on any thread. Errors
// are return values, never exceptions.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "engine/alert/alert.h"
#include "engine/event/timestamp.h"
#include "rules/template/value.h"

namespace vigil::rules::tmpl {

struct parse_error {
  int line = 0;        ///< 1-based line of the template text
  std::string message; ///< Go's shape: `template: :LINE: MSG`
};

struct tree; // the parsed form (rules/template/ast.h)

class templ {
 public:
  /// Parses `text` (the template after YAML processing). Unknown functions, sprig functions
  /// vigil does not implement, `template`/`define`/`block` and `else with` are parse errors.
  static std::variant<templ, parse_error> parse(std::string_view text);

  /// Runs the template with `dot` as `.` and `$`. On success `out` holds the whole output. On
  /// failure returns false, `error` has Go's shape
  /// (`template: :LINE:COL: executing "" at <NODE>: MSG`) and `out` must be discarded.
  bool execute(const value& dot, std::string& out, std::string& error) const;

 private:
  explicit templ(std::shared_ptr<const tree> t) : tree_(std::move(t)) {}
  std::shared_ptr<const tree> tree_;
};

/// sprig's toJson: Go's encoding/json (map keys sorted, `<` `>` `&` escaped as \u003c \u003e
/// \u0026, Go number formatting, model objects with their JSON names and omitempty rules).
/// Returns "" when the value cannot be encoded (NaN, infinities), as sprig does.
std::string to_json(const value& v);

/// A Go encoding/json string literal (quotes included): `<` `>` `&`, U+2028/2029 and control
/// bytes escaped, invalid UTF-8 as \ufffd. What Slack payloads and toJson strings look like.
void append_go_json_string(std::string& out, std::string_view s);

/// One alert to show to a template, with what the store adds to it.
struct alert_view {
  const engine::alert* alert = nullptr;
  std::int64_t id = 0;
  std::string machine_id;
  std::string uuid;
  engine::unix_nanos created_at = 0; ///< 0: unknown (CreatedAt is then "")
};

/// `s` as Go's strconv.Quote writes it: in double quotes, with Go's escapes for quotes,
/// backslashes, control characters, non-printable runes and invalid UTF-8 bytes.
std::string go_quote(std::string_view s);

/// The `[]*models.Alert` list of section 2 built from vigil alerts.
value alerts_value(const std::vector<alert_view>& alerts);

/// The models.Alert type (fields and methods of section 2), for hand-built values.
const std::shared_ptr<const object_type>& alert_type();
/// The models.Source type.
const std::shared_ptr<const object_type>& source_type();
/// The models.Decision type.
const std::shared_ptr<const object_type>& decision_type();
/// The models.Event type.
const std::shared_ptr<const object_type>& event_type();
/// The models.MetaItems0 type ({Key, Value}).
const std::shared_ptr<const object_type>& meta_item_type();

} // namespace vigil::rules::tmpl
