#pragma once
// The `evt` object that scenario filters, groupby and distinct expressions see, bound to vigil's
// decoded audit event and its meta map. Compile-time: event_schema resolves the paths CrowdSec
// filters use to slots. Run-time: event_env loads those slots from one event, without allocating.
//
//   evt.Meta.<key>, evt.Meta["key"], evt.GetMeta("key")   the parser's meta (missing key: "")
//   evt.Unmarshaled.k8s_audit...                            the audit event as JSON (keys resolved
//                                                           case-insensitively, exact case first)
//   evt.Unmarshaled.k8s_audit.<member>                      a top-level member the decoder read
//                                                           (verb, objectRef, ...; JSON or Go
//                                                           spelling, no `?.`): its own slot,
//                                                           loaded without walking the event
//   evt.Unmarshaled.k8s_audit.<member>.<field>              the same for objectRef.resource,
//                                                           user.username, responseStatus.code...
//                                                           (`?.` allowed before the field)
//   evt.Parsed.program, evt.Line.Labels.type                "k8s-audit"
//   evt.Line.Module / evt.Line.Src                          datasource_type / datasource_path
//   evt.StrTime                                             requestReceivedTimestamp as written
//   evt.Parsed.<other>, evt.Enriched.<key>                  "" (nothing fills them in vigil)
//
// Not available (load error naming the path): evt.Line.Raw and evt.Parsed.message (vigil never
// keeps the raw text; filters read the decoded event instead), and any other evt field.

#include <array>
#include <cstdint>
#include <string>
#include <variant>

#include "engine/event/event.h"
#include "engine/parse/meta.h"
#include "rules/expr/expr.h"

namespace vigil::rules {

/// Slots of the `evt` schema. Meta keys occupy slots 0..meta_key_count-1.
enum event_slot : std::uint32_t {
  slot_audit_json = engine::meta_key_count, ///< evt.Unmarshaled.k8s_audit
  slot_empty_string,                        ///< constant ""
  slot_nil,                                 ///< constant nil
  slot_log_type_label,                      ///< constant "k8s-audit"
  slot_str_time,                            ///< requestReceivedTimestamp text
  slot_marshaled_time,                      ///< evt.MarshaledTime: that time in RFC 3339 (nanoseconds)
  slot_false,                               ///< constant false (evt.Whitelisted)
  slot_log_type,                            ///< constant 0, CrowdSec's types.LOG (evt.Type)
  slot_log_word,                            ///< constant "log" (evt.GetType())
  slot_meta_map,                            ///< evt.Meta itself: a map of the keys present
  slot_event_fields,                        ///< evt itself: a map naming the Event's fields
  /// evt.Unmarshaled.k8s_audit.<member> for the members of engine::root_member, two slots each:
  /// the JSON spelling ("objectRef"), then the Go field's ("ObjectRef"). Loaded from what the
  /// decoder recorded, without walking the event; the same value as the walk.
  slot_root_member,
  /// evt.Unmarshaled.k8s_audit.<member>.<field> for engine::nested_member (objectRef.resource,
  /// ResponseStatus.Code, ...), four slots each: JSON then Go spelling (both segments the same),
  /// each without then with `?.` before the field. These slots apply that `?.` themselves.
  slot_nested_member = slot_root_member + 2 * engine::root_member_count,
  slot_count = slot_nested_member + 4 * engine::nested_member_count,
};

class event_schema final : public expr::schema {
 public:
  std::variant<expr::binding, std::string> bind(std::span<const expr::path_segment> path) const override;
};

/// One event's values. Point it at an event and its meta, then evaluate programs against it.
/// Not thread-safe; one per worker.
class event_env final : public expr::environment {
 public:
  void reset(const engine::audit_event* event, const engine::event_meta* meta) noexcept {
    event_ = event;
    meta_ = meta;
  }
  expr::value load(std::uint32_t slot) const noexcept override;

 private:
  expr::value load_nested(std::uint32_t i) const noexcept;

  const engine::audit_event* event_ = nullptr;
  const engine::event_meta* meta_ = nullptr;
  mutable char time_text_[40] = {}; ///< evt.MarshaledTime of the current event
  /// evt.Meta as a map (key, value, key, value...) of the current event, built when read.
  mutable std::array<expr::value, 2 * engine::meta_key_count> meta_pairs_{};
};

} // namespace vigil::rules
