#include "rules/scenario/event_env.h"

#include <optional>

#include "engine/event/timestamp.h"

namespace vigil::rules {

namespace {

using expr::binding;
using expr::path_segment;
using expr::value_hint;

binding bound(std::uint32_t slot, std::size_t consumed, value_hint hint) {
  return binding{.slot = slot, .consumed = consumed, .hint = hint};
}

std::variant<binding, std::string> bind_meta_key(std::string_view key, std::size_t consumed) {
  engine::meta_key k;
  if (engine::meta_key_from_name(key, k)) {
    return bound(static_cast<std::uint32_t>(k), consumed, value_hint::string);
  }
  // A map of strings: a key nobody sets reads as "".
  return bound(slot_empty_string, consumed, value_hint::string);
}

// The slot of evt.Unmarshaled.k8s_audit.<name>, for the two spellings of each root_member.
std::optional<std::uint32_t> root_member_slot(std::string_view name) {
  for (std::size_t m = 0; m < engine::root_member_count; ++m) {
    const auto member = static_cast<engine::root_member>(m);
    if (name == engine::root_member_json_name(member)) {
      return static_cast<std::uint32_t>(slot_root_member + 2 * m);
    }
    if (name == engine::root_member_go_name(member)) {
      return static_cast<std::uint32_t>(slot_root_member + 2 * m + 1);
    }
  }
  return std::nullopt;
}

// The slot of evt.Unmarshaled.k8s_audit.<parent>.<field> (or <parent>?.<field>), both segments
// in JSON spelling or both in Go spelling.
std::optional<std::uint32_t> nested_member_slot(std::string_view parent, std::string_view field, bool optional) {
  for (std::size_t m = 0; m < engine::nested_member_count; ++m) {
    const auto member = static_cast<engine::nested_member>(m);
    const engine::root_member p = engine::nested_member_parent(member);
    std::uint32_t spelling;
    if (parent == engine::root_member_json_name(p) && field == engine::nested_member_json_name(member)) {
      spelling = 0;
    } else if (parent == engine::root_member_go_name(p) && field == engine::nested_member_go_name(member)) {
      spelling = 1;
    } else {
      continue;
    }
    return static_cast<std::uint32_t>(slot_nested_member + 4 * m + 2 * spelling + (optional ? 1 : 0));
  }
  return std::nullopt;
}

// A recorded member as the evaluator sees it: what value::from_json gives for the same JSON.
expr::value as_value(const engine::member_value& v) noexcept {
  if (v.is_string) {
    return expr::value::string(v.text);
  }
  if (v.is_integer) {
    return expr::value::json_integer(v.integer); // a JSON number: a float64 to CrowdSec
  }
  return v.is_json ? expr::value::from_json(v.json) : expr::value::nil();
}

} // namespace

std::variant<binding, std::string> event_schema::bind(std::span<const path_segment> path) const {
  if (path[0].name != "evt") {
    return "unknown name " + std::string(path[0].name);
  }
  if (path.size() < 2) {
    return bound(slot_event_fields, 1, value_hint::any); // 'Meta' in evt
  }
  const path_segment& field = path[1];
  const std::string_view f = field.name;
  if (field.call) {
    if (f == "GetMeta" && field.has_argument) {
      return bind_meta_key(field.argument, 2);
    }
    if (f == "GetType") {
      return bound(slot_log_word, 2, value_hint::string); // every event is a log event
    }
    return "type Event has no method " + std::string(f);
  }
  if (f == "Meta") {
    if (path.size() == 2) {
      return bound(slot_meta_map, 2, value_hint::map); // 'user' in evt.Meta, len(evt.Meta)
    }
    if (path[2].call) {
      return std::string("evt.Meta is a map: read it by key (evt.Meta.user, evt.Meta[\"user\"])");
    }
    return bind_meta_key(path[2].name, 3);
  }
  if (f == "Unmarshaled") {
    if (path.size() < 3 || path[2].call) {
      return std::string("evt.Unmarshaled is only available by key (evt.Unmarshaled.k8s_audit)");
    }
    if (path[2].name == "k8s_audit") {
      // A top-level member the decoder has read, spelled as the JSON or the Go struct spells it,
      // gets its own slot. Not through `?.`: a slot that loads nil would short-circuit the rest
      // of the chain, where the walk goes on (and fails on a member of nil).
      if (path.size() >= 4 && !path[3].call && !path[1].optional && !path[2].optional && !path[3].optional) {
        if (path.size() >= 5 && !path[4].call) {
          if (auto slot = nested_member_slot(path[3].name, path[4].name, path[4].optional)) {
            binding b = bound(*slot, 5, value_hint::any);
            b.applies_optional = true;
            return b;
          }
        }
        if (auto slot = root_member_slot(path[3].name)) {
          return bound(*slot, 4, value_hint::any);
        }
      }
      return bound(slot_audit_json, 3, value_hint::any);
    }
    return bound(slot_nil, 3, value_hint::any);
  }
  if (f == "Parsed") {
    if (path.size() < 3 || path[2].call) {
      return std::string("evt.Parsed is only available by key (evt.Parsed.program)");
    }
    if (path[2].name == "message") {
      return std::string("evt.Parsed.message is not available in vigil: filters read the decoded event "
                         "(evt.Unmarshaled.k8s_audit...)");
    }
    if (path[2].name == "program") {
      return bound(slot_log_type_label, 3, value_hint::string);
    }
    return bound(slot_empty_string, 3, value_hint::string);
  }
  if (f == "Enriched") {
    if (path.size() < 3 || path[2].call) {
      return std::string("evt.Enriched is only available by key");
    }
    return bound(slot_empty_string, 3, value_hint::string);
  }
  if (f == "Line") {
    if (path.size() < 3 || path[2].call) {
      return std::string("evt.Line is only available by field (evt.Line.Labels.type, evt.Line.Src)");
    }
    const std::string_view sub = path[2].name;
    if (sub == "Raw") {
      return std::string("evt.Line.Raw is not available in vigil: filters read the decoded event "
                         "(evt.Unmarshaled.k8s_audit...)");
    }
    if (sub == "Src") {
      return bound(static_cast<std::uint32_t>(engine::meta_key::datasource_path), 3, value_hint::string);
    }
    if (sub == "Module") {
      return bound(static_cast<std::uint32_t>(engine::meta_key::datasource_type), 3, value_hint::string);
    }
    if (sub == "Labels") {
      if (path.size() < 4 || path[3].call) {
        return std::string("evt.Line.Labels is only available by key (evt.Line.Labels.type)");
      }
      return bound(path[3].name == "type" ? slot_log_type_label : slot_empty_string, 4, value_hint::string);
    }
    return "type Line has no field " + std::string(sub);
  }
  if (f == "StrTime") {
    return bound(slot_str_time, 2, value_hint::string);
  }
  if (f == "MarshaledTime") {
    return bound(slot_marshaled_time, 2, value_hint::string);
  }
  if (f == "Whitelisted") {
    return bound(slot_false, 2, value_hint::boolean); // vigil has no whitelists
  }
  if (f == "Type") {
    return bound(slot_log_type, 2, value_hint::integer);
  }
  if (f == "Time") {
    return std::string("evt.Time is not available in vigil (a Go time.Time): use evt.StrTime or evt.MarshaledTime");
  }
  return "type Event has no field " + std::string(f);
}

// A nested slot: `i` is 4 * nested_member + 2 * spelling (0 JSON, 1 Go) + (1 if `?.`).
expr::value event_env::load_nested(std::uint32_t i) const noexcept {
  const auto member = static_cast<engine::nested_member>(i / 4);
  const bool go = (i / 2) % 2 != 0;
  const bool optional = i % 2 != 0;
  // A member of a nil parent: `?.` short-circuits the chain, `.` fails (as the evaluator does).
  const expr::value nil_parent = expr::value::fail(optional ? expr::eval_error::chain_nil_ : expr::eval_error::nil_fetch);
  engine::member_value v;
  switch (event_->nested(member, v)) {
    case engine::member_lookup::absent:
      return nil_parent;
    case engine::member_lookup::found:
      return as_value(v);
    case engine::member_lookup::ambiguous:
      break;
  }
  // A key repeated in another case: walk, with the spellings of the filter.
  const engine::root_member parent = engine::nested_member_parent(member);
  const expr::value obj = expr::json_member(event_->root.get_object().value_unsafe(),
                                            go ? engine::root_member_go_name(parent)
                                               : engine::root_member_json_name(parent));
  if (obj.is_nil()) {
    return nil_parent;
  }
  if (!obj.is_json_object()) {
    return expr::value::fail(expr::eval_error::type_mismatch);
  }
  return expr::json_member(obj.as_json().get_object().value_unsafe(),
                           go ? engine::nested_member_go_name(member) : engine::nested_member_json_name(member));
}

expr::value event_env::load(std::uint32_t slot) const noexcept {
  if (slot < engine::meta_key_count) {
    return expr::value::string(meta_->get(static_cast<engine::meta_key>(slot)));
  }
  switch (slot) {
    case slot_audit_json:
      return expr::value::from_json(event_->root);
    case slot_empty_string:
      return expr::value::string({});
    case slot_log_type_label:
      return expr::value::string("k8s-audit");
    case slot_str_time: {
      std::string_view s;
      if (event_->root["requestReceivedTimestamp"].get(s) == simdjson::SUCCESS) {
        return expr::value::string(s);
      }
      return expr::value::string({});
    }
    case slot_marshaled_time:
      if (!event_->has(engine::has_request_received)) {
        return expr::value::string({});
      }
      return expr::value::string({time_text_, engine::format_rfc3339_nano(event_->request_received, time_text_)});
    case slot_false:
      return expr::value::boolean(false);
    case slot_log_type:
      return expr::value::integer(0);
    case slot_log_word:
      return expr::value::string("log");
    case slot_event_fields: {
      // The fields of CrowdSec's types.Event, for `in` (their values are not read this way).
      static const auto fields = [] {
        std::array<expr::value, 34> f{};
        std::size_t i = 0;
        for (const char* name : {"Type", "ExpectMode", "Whitelisted", "WhitelistReason", "Stage", "Line", "Parsed",
                                 "Enriched", "Unmarshaled", "Overflow", "Time", "StrTime", "StrTimeFormat",
                                 "MarshaledTime", "Process", "Meta", "Appsec"}) {
          f[i++] = expr::value::string(name);
          f[i++] = expr::value::nil();
        }
        return f;
      }();
      return expr::value::map(fields.data(), fields.size() / 2);
    }
    case slot_meta_map: {
      // The keys the parser set, as CrowdSec's map holds them (an empty value is not set).
      std::size_t n = 0;
      for (std::size_t k = 0; k < engine::meta_key_count; ++k) {
        const auto key = static_cast<engine::meta_key>(k);
        if (meta_->has(key) && !meta_->get(key).empty()) {
          meta_pairs_[2 * n] = expr::value::string(engine::meta_key_name(key));
          meta_pairs_[2 * n + 1] = expr::value::string(meta_->get(key));
          ++n;
        }
      }
      return expr::value::map(meta_pairs_.data(), n);
    }
    default:
      break;
  }
  if (slot >= slot_nested_member && slot < slot_count) {
    return load_nested(slot - slot_nested_member);
  }
  if (slot >= slot_root_member && slot < slot_count) {
    const std::uint32_t i = slot - slot_root_member;
    const auto member = static_cast<engine::root_member>(i / 2);
    engine::member_value v;
    switch (event_->member(member, v)) {
      case engine::member_lookup::absent:
        return expr::value::nil();
      case engine::member_lookup::found:
        return as_value(v);
      case engine::member_lookup::ambiguous:
        break;
    }
    // A name that occurs in several cases: the key a walk picks depends on the spelling.
    const std::string_view name =
        (i % 2 == 0) ? engine::root_member_json_name(member) : engine::root_member_go_name(member);
    return expr::json_member(event_->root.get_object().value_unsafe(), name);
  }
  return expr::value::nil();
}

} // namespace vigil::rules
