#include "rules/profiles/profiles.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <sstream>

#include <simdjson.h>
#include <yaml-cpp/yaml.h>

#include "engine/event/duration.h"
#include "engine/config/yaml_keys.h"

namespace vigil::rules {

namespace {

using expr::binding;
using expr::path_segment;
using expr::value_hint;

enum alert_slot : std::uint32_t {
  s_remediation,
  s_scenario,
  s_message,
  s_scope,
  s_value,
  s_events_count,
  s_capacity,
  s_leakspeed,
  s_start_at,
  s_stop_at,
  s_simulated,
  s_true,
  s_sources, // JSON list
  s_events,  // JSON list
  s_labels,  // JSON object
  s_source,  // JSON object
  s_decisions, // JSON list (empty: the profiles are what makes decisions)
  s_alert_meta, // JSON list (empty: vigil's alerts carry their meta on their events)
  s_empty_string,
  s_zero,
  s_zero_float,
  s_machine_id,
  s_range,
  s_meta_base, // GetMeta("k"): s_meta_base + index into the schema's key table
};

// Compile-time view of `Alert` (exact Go field and method names, as CrowdSec's models.Alert).
class alert_schema final : public expr::schema {
 public:
  std::variant<binding, std::string> bind(std::span<const path_segment> path) const override {
    if (path[0].name != "Alert") {
      return "unknown name " + std::string(path[0].name);
    }
    if (path.size() < 2) {
      return std::string("Alert must be followed by a field or a method");
    }
    const path_segment& f = path[1];
    const std::string_view n = f.name;
    auto b = [](std::uint32_t slot, std::size_t consumed, value_hint h) { return binding{slot, consumed, h}; };
    if (f.call) {
      if (n == "GetScenario") return b(s_scenario, 2, value_hint::string);
      if (n == "GetScope") return b(s_scope, 2, value_hint::string);
      if (n == "GetValue") return b(s_value, 2, value_hint::string);
      if (n == "GetEventsCount") return b(s_events_count, 2, value_hint::integer);
      if (n == "GetSources") return b(s_sources, 2, value_hint::list);
      if (n == "HasRemediation") return b(s_true, 2, value_hint::boolean);
      if (n == "GetMeta" && f.has_argument) {
        auto it = std::find(meta_keys.begin(), meta_keys.end(), std::string(f.argument));
        if (it == meta_keys.end()) {
          meta_keys.emplace_back(f.argument);
          it = meta_keys.end() - 1;
        }
        return b(s_meta_base + static_cast<std::uint32_t>(it - meta_keys.begin()), 2, value_hint::string);
      }
      return "type Alert has no method " + std::string(n);
    }
    if (n == "Remediation") return b(s_remediation, 2, value_hint::boolean);
    if (n == "Scenario") return b(s_scenario, 2, value_hint::string);
    if (n == "Message") return b(s_message, 2, value_hint::string);
    if (n == "EventsCount") return b(s_events_count, 2, value_hint::integer);
    if (n == "Capacity") return b(s_capacity, 2, value_hint::integer);
    if (n == "Leakspeed") return b(s_leakspeed, 2, value_hint::string);
    if (n == "StartAt") return b(s_start_at, 2, value_hint::string);
    if (n == "StopAt") return b(s_stop_at, 2, value_hint::string);
    if (n == "Simulated") return b(s_simulated, 2, value_hint::boolean);
    if (n == "Events") return b(s_events, 2, value_hint::any);
    if (n == "Labels") return b(s_labels, 2, value_hint::any);
    // What CrowdSec's LAPI has in these when it runs the profiles: the alert is not stored yet
    // (ID 0), it holds no decision yet, and without the geoip enricher (the k8s-audit
    // collection does not pull it in) the source's country and AS are empty.
    if (n == "Decisions") return b(s_decisions, 2, value_hint::any);
    if (n == "Meta") return b(s_alert_meta, 2, value_hint::any);
    if (n == "MachineID") return b(s_machine_id, 2, value_hint::string);
    if (n == "UUID" || n == "ScenarioHash" || n == "ScenarioVersion") return b(s_empty_string, 2, value_hint::string);
    if (n == "ID") return b(s_zero, 2, value_hint::integer);
    if (n == "CreatedAt") return b(s_stop_at, 2, value_hint::string);
    if (n == "Source") {
      if (path.size() < 3 || path[2].call) {
        return b(s_source, 2, value_hint::any);
      }
      const std::string_view sf = path[2].name;
      if (sf == "Scope") return b(s_scope, 3, value_hint::string);
      if (sf == "Value" || sf == "IP") return b(s_value, 3, value_hint::string);
      if (sf == "Range") return b(s_range, 3, value_hint::string);
      if (sf == "AsName" || sf == "AsNumber" || sf == "Cn") return b(s_empty_string, 3, value_hint::string);
      if (sf == "Latitude" || sf == "Longitude") return b(s_zero_float, 3, value_hint::any);
      return "type Source has no field " + std::string(sf);
    }
    return "type Alert has no field " + std::string(n);
  }

  // Meta keys used by GetMeta("k") calls, in slot order (filled while compiling).
  mutable std::vector<std::string> meta_keys;
};

// GetDecisionsCount's source: set by the daemon (its store), absent in replay (answers 0).
decisions_counter& counter_hook() {
  static decisions_counter hook;
  return hook;
}

// One alert's values. Lists and objects come from a small JSON rendering of the alert.
class alert_env final : public expr::environment {
 public:
  std::int64_t decisions_count(std::string_view value, std::string_view since) const noexcept override {
    engine::unix_nanos window = 0;
    if (!since.empty()) {
      const auto d = engine::parse_go_duration(since);
      if (!d || *d < 0) {
        return -1;
      }
      window = *d;
    }
    const decisions_counter& hook = counter_hook();
    return hook ? hook(value, window) : 0;
  }

  alert_env(const engine::alert& a, const std::vector<std::string>& meta_keys) : a_(a), meta_keys_(meta_keys) {}

  expr::value load(std::uint32_t slot) const noexcept override {
    switch (slot) {
      case s_remediation: return expr::value::boolean(a_.remediation);
      case s_scenario: return expr::value::string(a_.scenario);
      case s_message: return expr::value::string(a_.message);
      case s_scope: return expr::value::string(a_.scope);
      case s_value: return expr::value::string(a_.value);
      case s_events_count: return expr::value::integer(static_cast<std::int64_t>(a_.events_count));
      case s_capacity: return expr::value::integer(a_.capacity);
      case s_leakspeed: return expr::value::string(a_.leakspeed);
      case s_start_at: return expr::value::string(time_text(a_.start_at, start_));
      case s_stop_at: return expr::value::string(time_text(a_.stop_at, stop_));
      case s_simulated: return expr::value::boolean(false);
      case s_true: return expr::value::boolean(true);
      case s_sources: return member("sources");
      case s_events: return member("events");
      case s_labels: return member("labels");
      case s_source: return member("source");
      case s_decisions: return member("decisions");
      case s_alert_meta: return member("meta");
      case s_empty_string: return expr::value::string({});
      case s_zero: return expr::value::integer(0);
      case s_zero_float: return expr::value::floating(0.0);
      case s_machine_id: return expr::value::string("vigil");
      case s_range: return expr::value::string(a_.scope == "Range" ? std::string_view(a_.value) : std::string_view());
      default: break;
    }
    const std::size_t k = slot - s_meta_base;
    if (k < meta_keys_.size()) {
      for (const auto& e : a_.events) {
        for (const auto& [key, v] : e.meta) {
          if (key == meta_keys_[k]) {
            return expr::value::string(v);
          }
        }
      }
      return expr::value::string({});
    }
    return expr::value::nil();
  }

 private:
  // Built on first use: most profiles only read scalars, and an alert's JSON rendering and its
  // parse would otherwise cost more than the whole evaluation.
  void render() const {
    rendered_ = true;
    std::string json = "{\"sources\":[";
    if (!a_.value.empty()) {
      engine::append_json_string(json, a_.value);
    }
    json += "],\"source\":{\"Scope\":";
    engine::append_json_string(json, a_.scope);
    json += ",\"Value\":";
    engine::append_json_string(json, a_.value);
    json += ",\"IP\":";
    engine::append_json_string(json, a_.value);
    json += ",\"Range\":";
    engine::append_json_string(json, a_.scope == "Range" ? std::string_view(a_.value) : std::string_view());
    json += R"(,"AsName":"","AsNumber":"","Cn":"","Latitude":0,"Longitude":0},"decisions":[],"meta":[])";
    json += ",\"labels\":" + (a_.labels_json.empty() ? std::string("{}") : a_.labels_json) + ",\"events\":[";
    for (std::size_t i = 0; i < a_.events.size(); ++i) {
      json += i > 0 ? ",{\"Meta\":[" : "{\"Meta\":[";
      bool first = true;
      for (const auto& [k, v] : a_.events[i].meta) {
        json += first ? "{\"key\":" : ",{\"key\":";
        first = false;
        engine::append_json_string(json, k);
        json += ",\"value\":";
        engine::append_json_string(json, v);
        json += '}';
      }
      json += "],\"Timestamp\":";
      engine::append_json_string(json, engine::format_rfc3339_nano(a_.events[i].time));
      json += '}';
    }
    json += "]}";
    if (parser_.parse(json).get(root_) != simdjson::SUCCESS) {
      root_ = {};
    }
  }

  static std::string_view time_text(engine::unix_nanos t, std::string& cache) {
    if (cache.empty()) {
      cache = engine::format_rfc3339_nano(t);
    }
    return cache;
  }

  expr::value member(const char* key) const noexcept {
    if (!rendered_) {
      render();
    }
    simdjson::dom::element e;
    if (root_.type() != simdjson::dom::element_type::OBJECT || root_[key].get(e) != simdjson::SUCCESS) {
      return expr::value::nil();
    }
    return expr::value::from_json(e);
  }

  const engine::alert& a_;
  const std::vector<std::string>& meta_keys_;
  mutable bool rendered_ = false;
  mutable simdjson::dom::parser parser_;
  mutable simdjson::dom::element root_{};
  mutable std::string start_, stop_;
};

const alert_schema& schema() {
  static const alert_schema s;
  return s;
}

std::optional<next_step> parse_step(const std::string& v, bool allow_apply, bool error_step) {
  if (v.empty()) return next_step::unset;
  if (v == "continue") return next_step::continue_;
  if (v == "break") return next_step::break_;
  if (v == "apply" && allow_apply) return next_step::apply;
  if (v == "ignore" && error_step) return next_step::ignore;
  return std::nullopt;
}

// Go durations, plus whole days ("2d") as CrowdSec accepts in profiles.
std::optional<engine::unix_nanos> parse_profile_duration(const std::string& text) {
  if (text.size() > 1 && text.back() == 'd' && text.find_first_not_of("0123456789") == text.size() - 1) {
    // Up to the largest whole number of days a 64-bit count of nanoseconds holds (Go's
    // durations stop there too); past it, or unparsable, the duration is invalid.
    constexpr std::int64_t day = 86400LL * 1'000'000'000LL;
    std::int64_t days = 0;
    const char* end = text.data() + text.size() - 1;
    if (std::from_chars(text.data(), end, days).ptr != end || days > INT64_MAX / day) {
      return std::nullopt;
    }
    return days * day;
  }
  return engine::parse_go_duration(text);
}

} // namespace

std::variant<profile_set, std::vector<load_error>> profile_set::load_text(const std::string& text,
                                                                          const std::string& file) {
  profile_set out;
  std::vector<load_error> errors;
  out.append(text, file, errors);
  return checked(std::move(out), std::move(errors), file);
}

std::variant<profile_set, std::vector<load_error>> profile_set::checked(profile_set out, std::vector<load_error> errors,
                                                                        const std::string& file) {
  if (out.profiles_.empty() && errors.empty()) {
    errors.push_back(load_error{file, 0, 0, "zero profiles loaded"});
  }
  if (!errors.empty()) {
    return errors;
  }
  return out;
}

void profile_set::append(const std::string& text, const std::string& file, std::vector<load_error>& errors) {
  profile_set& out = *this;
  auto fail = [&](const YAML::Mark& m, std::string msg) {
    errors.push_back(load_error{file, static_cast<std::uint32_t>(m.line + 1), static_cast<std::uint32_t>(m.column + 1),
                                std::move(msg)});
  };
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    fail(e.mark, "invalid YAML: " + e.msg);
    return;
  }
  for (const YAML::Node& doc : docs) {
    if (!config::check_yaml_document(doc, [&](const YAML::Node& n, const std::string& m) { fail(n.Mark(), m); })) {
      return;
    }
  }
  static const std::set<std::string> keys = {"name",          "debug",         "filters",    "decisions",
                                             "duration_expr", "notifications", "on_success", "on_failure",
                                             "on_error"};
  auto compile = [&](const YAML::Node& n, const char* what) -> std::optional<expr::program> {
    if (!n.IsScalar()) {
      fail(n.Mark(), std::string(what) + ": expected an expression");
      return std::nullopt;
    }
    auto r = expr::compile(n.as<std::string>(), schema());
    if (auto* p = std::get_if<expr::program>(&r)) {
      return std::move(*p);
    }
    for (const auto& d : std::get<std::vector<expr::diagnostic>>(r)) {
      fail(n.Mark(), std::string(what) + ": " + d.message + " (expression line " + std::to_string(d.line) +
                         ", column " + std::to_string(d.column) + ")");
    }
    return std::nullopt;
  };
  for (const YAML::Node& doc : docs) {
    if (doc.IsNull()) {
      continue;
    }
    if (!doc.IsMap()) {
      fail(doc.Mark(), "a profile must be a YAML mapping");
      continue;
    }
    profile p;
    p.file = file;
    p.line = static_cast<std::uint32_t>(doc.Mark().line + 1);
    for (const auto& kv : doc) {
      const std::string k = kv.first.as<std::string>();
      if (keys.count(k) == 0) {
        fail(kv.first.Mark(), "unknown key '" + k + "'");
      }
    }
    p.name = doc["name"] && doc["name"].IsScalar() ? doc["name"].as<std::string>() : "";
    if (p.name.empty()) {
      fail(doc.Mark(), "a profile needs a name");
    }
    if (const YAML::Node f = doc["filters"]) {
      if (!f.IsSequence()) {
        fail(f.Mark(), "filters: expected a list of expressions");
      } else {
        for (const auto& item : f) {
          if (auto prog = compile(item, "filters")) {
            if (prog->result_hint() != value_hint::boolean && prog->result_hint() != value_hint::any) {
              fail(item.Mark(), "filters: must be a boolean expression");
            }
            p.filters.push_back(std::move(*prog));
          }
        }
      }
    }
    if (const YAML::Node ds = doc["decisions"]) {
      if (!ds.IsSequence()) {
        fail(ds.Mark(), "decisions: expected a list");
      } else {
        for (const auto& d : ds) {
          decision_spec spec;
          if (!d.IsMap()) {
            fail(d.Mark(), "decisions: each decision is a mapping (type, duration, scope)");
            continue;
          }
          for (const auto& kv : d) {
            const std::string k = kv.first.as<std::string>();
            if (k == "type") {
              spec.type = kv.second.as<std::string>();
            } else if (k == "duration") {
              auto dur = parse_profile_duration(kv.second.as<std::string>());
              if (!dur || *dur <= 0) {
                fail(kv.second.Mark(), "decisions.duration: invalid duration '" + kv.second.as<std::string>() + "'");
              } else {
                spec.duration = *dur;
              }
            } else if (k == "scope") {
              spec.scope = kv.second.as<std::string>();
            } else if (k == "origin") {
              const std::string origin = kv.second.as<std::string>();
              spec.origin = origin.empty() ? "crowdsec" : "crowdsec/" + origin;
            } else if (k == "simulated") {
              // A simulated decision is one bouncers must not enforce. vigil has no simulation
              // mode, and taking the key as read would turn a dry run into real bans: refused.
              bool simulated = false;
              if (!YAML::convert<bool>::decode(kv.second, simulated)) {
                fail(kv.second.Mark(), "decisions.simulated: expected true or false");
              } else if (simulated) {
                fail(kv.second.Mark(), "decisions.simulated: simulated decisions are not supported: vigil would "
                                       "enforce them; remove the decision or the profile to keep a dry run");
              }
            } else if (k != "value") { // CrowdSec takes the value from the alert whatever it says
              fail(kv.first.Mark(), "decisions: unknown key '" + k + "'");
            }
          }
          p.decisions.push_back(spec);
        }
      }
    }
    if (const YAML::Node de = doc["duration_expr"]) {
      p.duration_expr = compile(de, "duration_expr");
    }
    if (const YAML::Node ns = doc["notifications"]) {
      if (!ns.IsSequence()) {
        fail(ns.Mark(), "notifications: expected a list of notification names");
      } else {
        for (const auto& n : ns) {
          p.notifications.push_back(n.as<std::string>());
        }
      }
    }
    struct step_key {
      const char* key;
      next_step* target;
      bool apply, error;
    };
    for (const step_key& s : {step_key{"on_success", &p.on_success, false, false},
                              step_key{"on_failure", &p.on_failure, true, false},
                              step_key{"on_error", &p.on_error, true, true}}) {
      if (const YAML::Node v = doc[s.key]) {
        const auto st = parse_step(v.as<std::string>(), s.apply, s.error);
        if (!st) {
          fail(v.Mark(), std::string(s.key) + ": invalid value '" + v.as<std::string>() + "'");
        } else {
          *s.target = *st;
        }
      }
    }
    out.profiles_.push_back(std::move(p));
  }
}

std::variant<profile_set, std::vector<load_error>> profile_set::load(const std::string& path) {
  auto read = [](const std::string& p, std::string& text) {
    std::ifstream in(p, std::ios::binary);
    if (!in) {
      return false;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
    return true;
  };
  std::string text;
  if (!read(path, text)) {
    return std::vector<load_error>{load_error{path, 0, 0, "cannot open the profiles file"}};
  }
  // As CrowdSec: a `.local` file beside it holds the user's own profiles, evaluated first.
  profile_set out;
  std::vector<load_error> errors;
  const std::string local = path + ".local";
  if (std::string local_text; read(local, local_text)) {
    out.append(local_text, local, errors);
  }
  out.append(text, path, errors);
  return checked(std::move(out), std::move(errors), path);
}

profile_set profile_set::defaults() {
  static const char* text = R"(name: k8s_audit_notification
filters:
  - Alert.Remediation == false && Alert.GetScenario() startsWith "crowdsecurity/k8s-audit"
notifications:
  - slack_k8s_audit
on_success: break
---
name: default_ip_remediation
filters:
  - Alert.Remediation == true && Alert.GetScope() == "Ip"
decisions:
  - type: ban
    duration: 4h
on_success: break
---
name: default_range_remediation
filters:
  - Alert.Remediation == true && Alert.GetScope() == "Range"
decisions:
  - type: ban
    duration: 4h
on_success: break
)";
  return std::get<profile_set>(load_text(text, "(embedded default profiles)"));
}

std::set<std::string> profile_set::notification_names() const {
  std::set<std::string> names;
  for (const auto& p : profiles_) {
    names.insert(p.notifications.begin(), p.notifications.end());
  }
  return names;
}

profile_outcome profile_set::evaluate(const engine::alert& a, engine::unix_nanos now) const {
  profile_outcome out;
  const alert_env env(a, schema().meta_keys);
  for (const profile& p : profiles_) {
    bool matched = false;
    bool failed = false;
    for (const expr::program& f : p.filters) {
      const expr::bool_result r = f.eval_bool(env);
      if (r.err != expr::eval_error::none) {
        failed = true;
        ++out.errors;
        continue;
      }
      if (r.value) {
        matched = true;
        break; // OR'ed: the decisions are applied once
      }
    }
    if (!matched && failed) {
      if (p.on_error == next_step::apply) {
        matched = true;
      } else if (p.on_error == next_step::break_) {
        break;
      } else {
        continue;
      }
    }
    if (!matched) {
      if (p.on_failure == next_step::break_) {
        break;
      }
      continue;
    }
    out.profiles.push_back(p.name);
    // As CrowdSec's local API does: an alert takes the decisions of the first matched profile
    // that has any; later matched profiles only add their notifications.
    const bool takes_decisions = out.decisions.empty() && !p.decisions.empty() && !a.value.empty();
    engine::unix_nanos duration_override = 0;
    if (takes_decisions && p.duration_expr) {
      const expr::eval_result r = p.duration_expr->eval(env);
      std::optional<engine::unix_nanos> d;
      if (r.err == expr::eval_error::none && r.v.kind == expr::value_kind::string) {
        d = parse_profile_duration(std::string(r.v.as_string()));
      }
      if (d && *d > 0) {
        duration_override = *d;
      } else {
        ++out.errors; // the decision keeps its configured duration
      }
    }
    if (takes_decisions) { // (no source IP: nothing a bouncer could enforce)
      for (const decision_spec& spec : p.decisions) {
        engine::decision d;
        d.type = spec.type;
        d.scope = spec.scope.empty() ? a.scope : spec.scope;
        d.origin = spec.origin;
        d.value = a.value;
        d.scenario = a.scenario;
        d.duration = duration_override != 0 ? duration_override : spec.duration;
        d.until = engine::expiry(now, d.duration);
        out.decisions.push_back(std::move(d));
      }
    }
    for (const std::string& n : p.notifications) {
      if (std::find(out.notifications.begin(), out.notifications.end(), n) == out.notifications.end()) {
        out.notifications.push_back(n);
      }
    }
    if (p.on_success == next_step::break_) {
      break;
    }
  }
  return out;
}

void set_decisions_counter(decisions_counter hook) { counter_hook() = std::move(hook); }

} // namespace vigil::rules
