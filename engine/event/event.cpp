#include "engine/event/event.h"

#include <cmath>
#include <cstring>
#include <iterator>
#include <new>
#include <type_traits>

namespace vigil::engine {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

inline bool is_null(element v) noexcept {
  return v.type() == element_type::NULL_VALUE;
}

// Reads a string field; null counts as absent. Returns false on a wrong type.
inline bool read_string(element v, std::string_view& out) noexcept {
  if (v.type() == element_type::STRING) {
    out = std::string_view(v.get_c_str().value_unsafe(), v.get_string_length().value_unsafe());
    return true;
  }
  return is_null(v);
}

inline bool read_string_array(element v, simdjson::dom::array& out) noexcept {
  if (is_null(v)) {
    return true;
  }
  if (v.type() != element_type::ARRAY) {
    return false;
  }
  out = v.get_array().value_unsafe();
  for (element item : out) {
    if (item.type() != element_type::STRING) {
      return false;
    }
  }
  return true;
}

// Bits of audit_event::root_seen: the root_member values, then the other keys decode_event knows.
constexpr std::uint32_t bit(root_member m) noexcept {
  return 1u << static_cast<unsigned>(m);
}
constexpr std::uint32_t seen_source_ips = 1u << (root_member_count + 0);
constexpr std::uint32_t seen_timestamp = 1u << (root_member_count + 1);
constexpr std::uint32_t seen_stage_timestamp = 1u << (root_member_count + 2);
constexpr std::uint32_t seen_request_received = 1u << (root_member_count + 3);
static_assert(root_member_count + 4 <= 32);

// A recognized top-level key, in any case: a second one makes member() send callers to the JSON.
inline void note_key(audit_event& out, std::uint32_t b) noexcept {
  out.keys_repeated = out.keys_repeated || (out.root_seen & b) != 0;
  out.root_seen |= b;
}

decode_status fail(decode_error e, const char* field) noexcept {
  return decode_status{e, field};
}

// A string member of the root: noted, and its bit in root_strings when it holds a string.
inline bool read_root_string(element v, std::string_view& target, audit_event& out, root_member m) noexcept {
  note_key(out, bit(m));
  if (v.type() == element_type::STRING) {
    target = std::string_view(v.get_c_str().value_unsafe(), v.get_string_length().value_unsafe());
    out.root_strings |= bit(m);
    return true;
  }
  return is_null(v);
}

constexpr std::uint32_t bit(nested_member m) noexcept {
  return 1u << static_cast<unsigned>(m);
}

// A recognized key inside user, impersonatedUser, objectRef or responseStatus: `seen` holds the
// object's keys so far; a second one makes nested() send callers to the JSON.
inline void note_nested(audit_event& ev, std::uint32_t& seen, std::uint32_t b) noexcept {
  ev.keys_repeated = ev.keys_repeated || (seen & b) != 0;
  seen |= b;
}

// A string field of a nested object: read like read_string, and its nested_strings bit set when
// it holds a string.
inline bool read_nested_string(element v, std::string_view& target, audit_event& ev, nested_member m) noexcept {
  if (v.type() == element_type::STRING) {
    target = std::string_view(v.get_c_str().value_unsafe(), v.get_string_length().value_unsafe());
    ev.nested_strings |= bit(m);
    return true;
  }
  return is_null(v);
}

// `username_field` is user_username or impersonated_user_username; uid follows it.
decode_status read_user(element v, user_info& out, audit_event& ev, event_field present_bit, nested_member username_field,
                        const char* name) noexcept {
  if (is_null(v)) {
    return {};
  }
  if (v.type() != element_type::OBJECT) {
    return fail(decode_error::wrong_type, name);
  }
  ev.present |= present_bit;
  const auto uid_field = static_cast<nested_member>(static_cast<unsigned>(username_field) + 1);
  std::uint32_t seen = 0;
  const simdjson::dom::object fields = v.get_object().value_unsafe();
  for (auto field : fields) {
    const std::string_view k = field.key;
    bool ok = true;
    if (key_is(k, "username")) {
      note_nested(ev, seen, 1);
      ok = read_nested_string(field.value, out.username, ev, username_field);
    } else if (key_is(k, "uid")) {
      note_nested(ev, seen, 2);
      ok = read_nested_string(field.value, out.uid, ev, uid_field);
    } else if (key_is(k, "groups")) {
      ok = read_string_array(field.value, out.groups);
      out.has_groups = ok && !is_null(field.value);
    }
    if (!ok) {
      return fail(decode_error::wrong_type, name);
    }
  }
  return {};
}

decode_status read_object_ref(element v, audit_event& ev) noexcept {
  if (is_null(v)) {
    return {};
  }
  if (v.type() != element_type::OBJECT) {
    return fail(decode_error::wrong_type, "objectRef");
  }
  ev.present |= has_object_ref;
  object_ref& out = ev.object;
  std::uint32_t seen = 0;
  const simdjson::dom::object fields = v.get_object().value_unsafe();
  for (auto field : fields) {
    const std::string_view k = field.key;
    std::string_view* target = nullptr;
    nested_member m = nested_member::count_;
    switch (k.size()) {
    case 3:
      if (key_is(k, "uid")) {
        target = &out.uid;
        m = nested_member::object_ref_uid;
      }
      break;
    case 4:
      if (key_is(k, "name")) {
        target = &out.name;
        m = nested_member::object_ref_name;
      }
      break;
    case 8:
      if (key_is(k, "resource")) {
        target = &out.resource;
        m = nested_member::object_ref_resource;
      } else if (key_is(k, "apigroup")) {
        target = &out.api_group;
        m = nested_member::object_ref_api_group;
      }
      break;
    case 9:
      if (key_is(k, "namespace")) {
        target = &out.namespace_;
        m = nested_member::object_ref_namespace;
      }
      break;
    case 10:
      if (key_is(k, "apiversion")) {
        target = &out.api_version;
        m = nested_member::object_ref_api_version;
      }
      break;
    case 11:
      if (key_is(k, "subresource")) {
        target = &out.subresource;
        m = nested_member::object_ref_subresource;
      }
      break;
    case 15:
      if (key_is(k, "resourceversion")) {
        target = &out.resource_version;
        m = nested_member::object_ref_resource_version;
      }
      break;
    default:
      break;
    }
    if (target != nullptr) {
      note_nested(ev, seen, bit(m));
      if (!read_nested_string(field.value, *target, ev, m)) {
        return fail(decode_error::wrong_type, "objectRef");
      }
    }
  }
  if ((ev.nested_strings & bit(nested_member::object_ref_namespace)) != 0) {
    ev.present |= has_object_namespace;
  }
  if ((ev.nested_strings & bit(nested_member::object_ref_name)) != 0) {
    ev.present |= has_object_name;
  }
  return {};
}

decode_status read_response_status(element v, audit_event& out) noexcept {
  if (is_null(v)) {
    return {};
  }
  if (v.type() != element_type::OBJECT) {
    return fail(decode_error::wrong_type, "responseStatus");
  }
  out.present |= has_response_status;
  std::uint32_t seen = 0;
  const simdjson::dom::object fields = v.get_object().value_unsafe();
  for (auto field : fields) {
    const std::string_view k = field.key;
    if (key_is(k, "code")) {
      note_nested(out, seen, 1);
      if (is_null(field.value)) {
        continue;
      }
      // An integer, or a whole number written as a float (401.0, 4.01e2): to CrowdSec both are
      // the same float64.
      std::int64_t code = 0;
      double real = 0;
      const bool integer = field.value.get_int64().get(code) == simdjson::SUCCESS;
      const bool whole = !integer && field.value.get_double().get(real) == simdjson::SUCCESS && real >= INT32_MIN &&
                         real <= INT32_MAX && real == std::trunc(real);
      if (whole) {
        code = static_cast<std::int64_t>(real);
      }
      if (!(integer || whole) || code < INT32_MIN || code > INT32_MAX) {
        return fail(decode_error::wrong_type, "responseStatus.code");
      }
      out.response_code = static_cast<std::int32_t>(code);
      out.present |= has_response_code;
    } else if (key_is(k, "reason")) {
      note_nested(out, seen, 2);
      if (!read_nested_string(field.value, out.response_reason, out, nested_member::response_status_reason)) {
        return fail(decode_error::wrong_type, "responseStatus.reason");
      }
    } else if (key_is(k, "status")) {
      note_nested(out, seen, 4);
      if (!read_nested_string(field.value, out.response_status, out, nested_member::response_status_status)) {
        return fail(decode_error::wrong_type, "responseStatus.status");
      }
    }
  }
  return {};
}

decode_status read_time(element v, unix_nanos& out, std::uint32_t& present, event_field bit,
                        const char* name) noexcept {
  std::string_view s;
  if (!read_string(v, s)) {
    return fail(decode_error::wrong_type, name);
  }
  if (s.empty() && is_null(v)) {
    return {};
  }
  auto t = parse_rfc3339(s);
  if (!t) {
    return fail(decode_error::bad_timestamp, name);
  }
  out = *t;
  present |= bit;
  return {};
}

} // namespace

const char* to_string(decode_error e) noexcept {
  switch (e) {
  case decode_error::none:
    return "none";
  case decode_error::not_object:
    return "not_object";
  case decode_error::not_event:
    return "not_event";
  case decode_error::wrong_type:
    return "wrong_type";
  case decode_error::bad_timestamp:
    return "bad_timestamp";
  case decode_error::no_audit_fields:
    return "no_audit_fields";
  }
  return "unknown";
}

std::string_view audit_event::annotation(std::string_view key) const noexcept {
  if (!has(has_annotations)) {
    return {};
  }
  element v;
  if (annotations.at_key(key).get(v) != simdjson::SUCCESS || v.type() != element_type::STRING) {
    return {};
  }
  return std::string_view(v.get_c_str().value_unsafe(), v.get_string_length().value_unsafe());
}

namespace {
// The JSON and Go spellings of each root_member, in enum order.
struct member_names {
  std::string_view json, go;
};
constexpr member_names root_table[] = {
    {"kind", "Kind"},
    {"apiVersion", "APIVersion"},
    {"level", "Level"},
    {"auditID", "AuditID"},
    {"stage", "Stage"},
    {"requestURI", "RequestURI"},
    {"verb", "Verb"},
    {"userAgent", "UserAgent"},
    {"user", "User"},
    {"impersonatedUser", "ImpersonatedUser"},
    {"objectRef", "ObjectRef"},
    {"responseStatus", "ResponseStatus"},
    {"requestObject", "RequestObject"},
    {"responseObject", "ResponseObject"},
    {"annotations", "Annotations"},
};
static_assert(std::size(root_table) == root_member_count);
} // namespace

std::string_view root_member_json_name(root_member m) noexcept {
  return root_table[static_cast<std::size_t>(m)].json;
}

std::string_view root_member_go_name(root_member m) noexcept {
  return root_table[static_cast<std::size_t>(m)].go;
}

namespace {
struct nested_names {
  root_member parent;
  std::string_view json, go;
};
constexpr nested_names nested_table[] = {
    {root_member::object_ref, "resource", "Resource"},
    {root_member::object_ref, "subresource", "Subresource"},
    {root_member::object_ref, "namespace", "Namespace"},
    {root_member::object_ref, "name", "Name"},
    {root_member::object_ref, "uid", "UID"},
    {root_member::object_ref, "apiGroup", "APIGroup"},
    {root_member::object_ref, "apiVersion", "APIVersion"},
    {root_member::object_ref, "resourceVersion", "ResourceVersion"},
    {root_member::user, "username", "Username"},
    {root_member::user, "uid", "UID"},
    {root_member::impersonated_user, "username", "Username"},
    {root_member::impersonated_user, "uid", "UID"},
    {root_member::response_status, "code", "Code"},
    {root_member::response_status, "reason", "Reason"},
    {root_member::response_status, "status", "Status"},
};
static_assert(std::size(nested_table) == nested_member_count);
} // namespace

root_member nested_member_parent(nested_member m) noexcept {
  return nested_table[static_cast<std::size_t>(m)].parent;
}
std::string_view nested_member_json_name(nested_member m) noexcept {
  return nested_table[static_cast<std::size_t>(m)].json;
}
std::string_view nested_member_go_name(nested_member m) noexcept {
  return nested_table[static_cast<std::size_t>(m)].go;
}

member_lookup audit_event::nested(nested_member m, member_value& out) const noexcept {
  if (keys_repeated) {
    return member_lookup::ambiguous;
  }
  event_field parent = has_object_ref;
  switch (nested_member_parent(m)) {
  case root_member::user: parent = has_user; break;
  case root_member::impersonated_user: parent = has_impersonated_user; break;
  case root_member::response_status: parent = has_response_status; break;
  default: break;
  }
  if (!has(parent)) {
    return member_lookup::absent;
  }
  out = member_value{};
  out.is_string = (nested_strings & bit(m)) != 0;
  switch (m) {
  case nested_member::object_ref_resource: out.text = object.resource; break;
  case nested_member::object_ref_subresource: out.text = object.subresource; break;
  case nested_member::object_ref_namespace: out.text = object.namespace_; break;
  case nested_member::object_ref_name: out.text = object.name; break;
  case nested_member::object_ref_uid: out.text = object.uid; break;
  case nested_member::object_ref_api_group: out.text = object.api_group; break;
  case nested_member::object_ref_api_version: out.text = object.api_version; break;
  case nested_member::object_ref_resource_version: out.text = object.resource_version; break;
  case nested_member::user_username: out.text = user.username; break;
  case nested_member::user_uid: out.text = user.uid; break;
  case nested_member::impersonated_user_username: out.text = impersonated_user.username; break;
  case nested_member::impersonated_user_uid: out.text = impersonated_user.uid; break;
  case nested_member::response_status_code:
    out.is_integer = has(has_response_code);
    out.integer = response_code;
    break;
  case nested_member::response_status_reason: out.text = response_reason; break;
  case nested_member::response_status_status: out.text = response_status; break;
  case nested_member::count_: break;
  }
  return member_lookup::found;
}

member_lookup audit_event::member(root_member m, member_value& out) const noexcept {
  const std::uint32_t b = bit(m);
  if ((root_seen & b) == 0) {
    return member_lookup::absent;
  }
  if (keys_repeated) {
    return member_lookup::ambiguous;
  }
  out = member_value{};
  auto object = [&out](bool present, element v) {
    if (present) {
      out.json = v;
      out.is_json = true;
    }
  };
  switch (m) {
  case root_member::kind: out.text = kind; break;
  case root_member::api_version: out.text = api_version; break;
  case root_member::level: out.text = level; break;
  case root_member::audit_id: out.text = audit_id; break;
  case root_member::stage: out.text = stage; break;
  case root_member::request_uri: out.text = request_uri; break;
  case root_member::verb: out.text = verb; break;
  case root_member::user_agent: out.text = user_agent; break;
  case root_member::user: object(has(has_user), user_json); break;
  case root_member::impersonated_user: object(has(has_impersonated_user), impersonated_user_json); break;
  case root_member::object_ref: object(has(has_object_ref), object_ref_json); break;
  case root_member::response_status: object(has(has_response_status), response_status_json); break;
  case root_member::request_object: object(has(has_request_object), request_object); break;
  case root_member::response_object: object(has(has_response_object), response_object); break;
  case root_member::annotations: object(has(has_annotations), annotations_json); break;
  case root_member::count_: break;
  }
  out.is_string = (root_strings & b) != 0;
  return member_lookup::found;
}

decode_status decode_event(element e, audit_event& out) noexcept {
  // Reset in place: `out = audit_event{}` zeroed a 532-byte temporary and then copied it over,
  // 12% of this function's time.
  static_assert(std::is_trivially_destructible_v<audit_event>);
  ::new (static_cast<void*>(&out)) audit_event{};
  if (e.type() != element_type::OBJECT) {
    return fail(decode_error::not_object, nullptr);
  }
  out.root = e;
  bool audit_fields = false;
  const simdjson::dom::object fields = e.get_object().value_unsafe();
  for (auto field : fields) {
    const std::string_view k = field.key;
    const element v = field.value;
    decode_status st;
    bool ok = true;
    // Dispatch on length first: one compare per key for the common fields.
    switch (k.size()) {
    case 4:
      if (key_is(k, "kind")) {
        ok = read_root_string(v, out.kind, out, root_member::kind);
        st.field = "kind";
      } else if (key_is(k, "verb")) {
        ok = read_root_string(v, out.verb, out, root_member::verb);
        st.field = "verb";
        audit_fields = true;
      } else if (key_is(k, "user")) {
        note_key(out, bit(root_member::user));
        out.user_json = v;
        st = read_user(v, out.user, out, has_user, nested_member::user_username, "user");
        audit_fields = true;
      }
      break;
    case 5:
      if (key_is(k, "level")) {
        ok = read_root_string(v, out.level, out, root_member::level);
        st.field = "level";
      } else if (key_is(k, "stage")) {
        ok = read_root_string(v, out.stage, out, root_member::stage);
        st.field = "stage";
        audit_fields = true;
      }
      break;
    case 7:
      if (key_is(k, "auditid")) {
        ok = read_root_string(v, out.audit_id, out, root_member::audit_id);
        st.field = "auditID";
        audit_fields = true;
      }
      break;
    case 9:
      if (key_is(k, "objectref")) {
        note_key(out, bit(root_member::object_ref));
        out.object_ref_json = v;
        st = read_object_ref(v, out);
        audit_fields = true;
      } else if (key_is(k, "sourceips")) {
        note_key(out, seen_source_ips);
        ok = read_string_array(v, out.source_ips);
        st.field = "sourceIPs";
        if (ok && !is_null(v)) {
          out.present |= has_source_ips;
          for (element ip : out.source_ips) {
            out.source_ip = std::string_view(ip.get_c_str().value_unsafe(), ip.get_string_length().value_unsafe());
            break;
          }
        }
      } else if (key_is(k, "timestamp")) {
        note_key(out, seen_timestamp);
        st = read_time(v, out.legacy_time, out.present, has_legacy_timestamp, "timestamp");
      } else if (key_is(k, "useragent")) {
        ok = read_root_string(v, out.user_agent, out, root_member::user_agent);
        st.field = "userAgent";
      }
      break;
    case 10:
      if (key_is(k, "apiversion")) {
        ok = read_root_string(v, out.api_version, out, root_member::api_version);
        st.field = "apiVersion";
      } else if (key_is(k, "requesturi")) {
        ok = read_root_string(v, out.request_uri, out, root_member::request_uri);
        st.field = "requestURI";
        audit_fields = true;
      }
      break;
    case 11:
      if (key_is(k, "annotations")) {
        note_key(out, bit(root_member::annotations));
        if (is_null(v)) {
          // absent, as far as the decoded fields go
        } else if (v.type() != element_type::OBJECT) {
          ok = false;
          st.field = "annotations";
        } else {
          out.annotations = v.get_object().value_unsafe();
          out.annotations_json = v;
          out.present |= has_annotations;
        }
      }
      break;
    case 13:
      if (key_is(k, "requestobject")) {
        note_key(out, bit(root_member::request_object));
        if (!is_null(v)) {
          out.request_object = v;
          out.present |= has_request_object;
        }
      }
      break;
    case 14:
      if (key_is(k, "responsestatus")) {
        note_key(out, bit(root_member::response_status));
        out.response_status_json = v;
        st = read_response_status(v, out);
      } else if (key_is(k, "responseobject")) {
        note_key(out, bit(root_member::response_object));
        if (!is_null(v)) {
          out.response_object = v;
          out.present |= has_response_object;
        }
      } else if (key_is(k, "stagetimestamp")) {
        note_key(out, seen_stage_timestamp);
        st = read_time(v, out.stage_time, out.present, has_stage_timestamp, "stageTimestamp");
      }
      break;
    case 16:
      if (key_is(k, "impersonateduser")) {
        note_key(out, bit(root_member::impersonated_user));
        out.impersonated_user_json = v;
        st = read_user(v, out.impersonated_user, out, has_impersonated_user, nested_member::impersonated_user_username,
                       "impersonatedUser");
      }
      break;
    case 24:
      if (key_is(k, "requestreceivedtimestamp")) {
        note_key(out, seen_request_received);
        st = read_time(v, out.request_received, out.present, has_request_received, "requestReceivedTimestamp");
      }
      break;
    default:
      break;
    }
    if (!ok) {
      return fail(decode_error::wrong_type, st.field);
    }
    if (!st.ok()) {
      return st;
    }
  }
  if (!out.kind.empty() && out.kind != "Event") {
    return fail(decode_error::not_event, "kind");
  }
  if (!out.api_version.empty() && out.api_version.substr(0, 13) != "audit.k8s.io/") {
    return fail(decode_error::not_event, "apiVersion");
  }
  if (!audit_fields) {
    return fail(decode_error::no_audit_fields, nullptr);
  }
  return {};
}

} // namespace vigil::engine
