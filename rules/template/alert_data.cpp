// vigil alerts as CrowdSec's notification templates see them: the `[]*models.Alert` data model
// of section 2 (field names, optional pointer fields, JSON names and omitempty rules, methods).
#include <string>
#include <vector>

#include "engine/event/duration.h"
#include "engine/event/timestamp.h"
#include "rules/template/internal.h"
#include "rules/template/template.h"

namespace vigil::rules::tmpl {
namespace {

constexpr const char* nil_deref = "runtime error: invalid memory address or nil pointer dereference";

value opt_string(std::string s) {
  return value::optional(value::string(std::move(s)));
}

// The string a *string field points to, "" when unset.
std::string deref_string(const value& v) {
  return v.kind_of() == value::kind::string ? v.as_string() : std::string();
}

bool get_scenario(const value& self, std::span<const value>, value& result, std::string& error) {
  if (self.is_nil()) {
    error = nil_deref;
    return false;
  }
  result = value::string(deref_string(self.field("Scenario")));
  return true;
}

// GetScope / GetValue read the Source, which Go dereferences without a check.
bool source_string(const value& self, const char* name, value& result, std::string& error) {
  const value src = self.field("Source");
  if (self.is_nil() || src.is_nil()) {
    error = nil_deref;
    return false;
  }
  result = value::string(deref_string(src.field(name)));
  return true;
}

bool get_scope(const value& self, std::span<const value>, value& result, std::string& error) {
  return source_string(self, "Scope", result, error);
}

bool get_value(const value& self, std::span<const value>, value& result, std::string& error) {
  return source_string(self, "Value", result, error);
}

bool get_events_count(const value& self, std::span<const value>, value& result, std::string& error) {
  if (self.is_nil()) {
    error = nil_deref;
    return false;
  }
  const value n = self.field("EventsCount");
  result = value::integer(n.kind_of() == value::kind::integer ? n.as_int() : 0, "int32");
  return true;
}

// Alert.GetMeta reads the alert context (Alert.Meta), not the events' meta: first match or "".
bool get_meta(const value& self, std::span<const value> args, value& result, std::string& error) {
  if (self.is_nil()) {
    error = nil_deref;
    return false;
  }
  const std::string& key = args[0].as_string();
  for (const value& item : self.field("Meta").items()) {
    if (!item.is_nil() && item.field("Key").as_string() == key) {
      result = value::string(item.field("Value").as_string());
      return true;
    }
  }
  result = value::string("");
  return true;
}

// Seconds-precision RFC 3339 in UTC (Go's time.RFC3339), as CrowdSec writes CreatedAt and Until.
std::string rfc3339_seconds(engine::unix_nanos t) {
  constexpr engine::unix_nanos second = 1'000'000'000;
  const engine::unix_nanos floored = t - (((t % second) + second) % second);
  return engine::format_rfc3339_nano(floored);
}

// The profile's duration as users write it ("4h", "1h30m"): Go's Duration.String() without
// trailing zero units, since CrowdSec shows the configured text and vigil keeps only the value.
std::string short_duration(engine::unix_nanos d) {
  std::string s = engine::format_go_duration(d);
  auto drop_zero_unit = [&s](const char* unit, char before) {
    const std::string suffix = std::string("0") + unit;
    if (s.size() > suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        s[s.size() - suffix.size() - 1] == before) {
      s.resize(s.size() - suffix.size());
    }
  };
  drop_zero_unit("s", 'm');
  drop_zero_unit("m", 'h');
  return s;
}

value meta_items(const engine::meta_list& meta) {
  value::list_type items;
  items.reserve(meta.size());
  for (const auto& [k, v] : meta) {
    items.push_back(value::object(meta_item_type(), {value::string(std::string(k)), value::string(std::string(v))}));
  }
  return value::list(std::move(items), "models.Meta");
}

value decision_value(const engine::decision& d) {
  return value::object(decision_type(), {
                                            opt_string(short_duration(d.duration)),                      // Duration
                                            value::integer(0, "int64"),                                  // ID
                                            opt_string(d.origin),                                        // Origin
                                            opt_string(d.scenario),                                      // Scenario
                                            opt_string(d.scope),                                         // Scope
                                            value::optional(value::boolean(false)),                      // Simulated
                                            opt_string(d.type),                                          // Type
                                            value::string(d.until != 0 ? rfc3339_seconds(d.until) : ""), // Until
                                            value::string(""),                                           // UUID
                                            opt_string(d.value),                                         // Value
                                        });
}

value event_value(const engine::event_payload& e) {
  return value::object(event_type(), {meta_items(e.meta), opt_string(engine::format_rfc3339_nano(e.time))});
}

value alert_value(const alert_view& view) {
  const engine::alert& a = *view.alert;
  value source = value::object(source_type(), {
                                                  value::string(""),             // AsName
                                                  value::string(""),             // AsNumber
                                                  value::string(""),             // Cn
                                                  value::string(a.value),        // IP
                                                  value::floating(0, "float32"), // Latitude
                                                  value::floating(0, "float32"), // Longitude
                                                  value::string(""),             // Range
                                                  opt_string(a.scope),           // Scope
                                                  opt_string(a.value),           // Value
                                              });
  value::list_type decisions;
  for (const engine::decision& d : a.decisions) {
    decisions.push_back(decision_value(d));
  }
  value::list_type events;
  for (const engine::event_payload& e : a.events) {
    events.push_back(event_value(e));
  }
  return value::object(
      alert_type(),
      {
          value::optional(value::integer(a.capacity, "int32")),                        // Capacity
          value::string(view.created_at != 0 ? rfc3339_seconds(view.created_at) : ""), // CreatedAt
          decisions.empty() ? value::nil_list("[]*models.Decision")                    // Decisions
                            : value::list(std::move(decisions), "[]*models.Decision"),
          value::list(std::move(events), "[]*models.Event"),                                   // Events
          value::optional(value::integer(static_cast<std::int64_t>(a.events_count), "int32")), // EventsCount
          value::integer(view.id, "int64"),                                                    // ID
          value::nil_list("[]string"),                                                         // Labels
          opt_string(a.leakspeed),                                                             // Leakspeed
          value::string(view.machine_id),                                                      // MachineID
          opt_string(a.message),                                                               // Message
          value::nil_list("models.Meta"),                                                      // Meta
          value::boolean(a.remediation),                                                       // Remediation
          opt_string(a.scenario),                                                              // Scenario
          opt_string(""),                                                                      // ScenarioHash
          opt_string(""),                                                                      // ScenarioVersion
          value::optional(value::boolean(false)),                                              // Simulated
          std::move(source),                                                                   // Source
          opt_string(engine::format_rfc3339_nano(a.start_at)),                                 // StartAt
          opt_string(engine::format_rfc3339_nano(a.stop_at)),                                  // StopAt
          value::string(view.uuid),                                                            // UUID
      });
}

} // namespace

const std::shared_ptr<const object_type>& alert_type() {
  static const std::shared_ptr<const object_type> t =
      object_type::make("*models.Alert",
                        {
                            {"Capacity", "capacity", false},
                            {"CreatedAt", "created_at", true},
                            {"Decisions", "decisions", false},
                            {"Events", "events", false},
                            {"EventsCount", "events_count", false},
                            {"ID", "id", true},
                            {"Labels", "labels", false},
                            {"Leakspeed", "leakspeed", false},
                            {"MachineID", "machine_id", true},
                            {"Message", "message", false},
                            {"Meta", "meta", true},
                            {"Remediation", "remediation", true},
                            {"Scenario", "scenario", false},
                            {"ScenarioHash", "scenario_hash", false},
                            {"ScenarioVersion", "scenario_version", false},
                            {"Simulated", "simulated", false},
                            {"Source", "source", false},
                            {"StartAt", "start_at", false},
                            {"StopAt", "stop_at", false},
                            {"UUID", "uuid", true},
                        },
                        {
                            {"GetEventsCount", {}, get_events_count},
                            {"GetMeta", {param::string}, get_meta},
                            {"GetScenario", {}, get_scenario},
                            {"GetScope", {}, get_scope},
                            {"GetValue", {}, get_value},
                        });
  return t;
}

const std::shared_ptr<const object_type>& source_type() {
  static const std::shared_ptr<const object_type> t =
      object_type::make("*models.Source", {
                                              {"AsName", "as_name", true},
                                              {"AsNumber", "as_number", true},
                                              {"Cn", "cn", true},
                                              {"IP", "ip", true},
                                              {"Latitude", "latitude", true},
                                              {"Longitude", "longitude", true},
                                              {"Range", "range", true},
                                              {"Scope", "scope", false},
                                              {"Value", "value", false},
                                          });
  return t;
}

const std::shared_ptr<const object_type>& decision_type() {
  static const std::shared_ptr<const object_type> t =
      object_type::make("*models.Decision", {
                                                {"Duration", "duration", false},
                                                {"ID", "id", true},
                                                {"Origin", "origin", false},
                                                {"Scenario", "scenario", false},
                                                {"Scope", "scope", false},
                                                {"Simulated", "simulated", true},
                                                {"Type", "type", false},
                                                {"Until", "until", true},
                                                {"UUID", "uuid", true},
                                                {"Value", "value", false},
                                            });
  return t;
}

const std::shared_ptr<const object_type>& event_type() {
  static const std::shared_ptr<const object_type> t =
      object_type::make("*models.Event", {{"Meta", "meta", false}, {"Timestamp", "timestamp", false}});
  return t;
}

const std::shared_ptr<const object_type>& meta_item_type() {
  static const std::shared_ptr<const object_type> t =
      object_type::make("*models.MetaItems0", {{"Key", "key", true}, {"Value", "value", true}});
  return t;
}

value alerts_value(const std::vector<alert_view>& alerts) {
  value::list_type items;
  items.reserve(alerts.size());
  for (const alert_view& v : alerts) {
    items.push_back(v.alert != nullptr ? alert_value(v) : value::nil_object(alert_type()));
  }
  return value::list(std::move(items), "[]*models.Alert");
}

std::string to_json(const value& v) {
  std::string out;
  if (!detail::append_json(out, v)) {
    return {};
  }
  return out;
}

} // namespace vigil::rules::tmpl
