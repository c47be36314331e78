#pragma once
// The audit event view: the fields rules read, pointing into the simdjson document that holds the
// event. Nothing is copied; a view is valid until the decoder that produced it parses its next
// document. Field names follow audit.k8s.io/v1 (v1beta1 has the same JSON names).

#include <cstdint>
#include <cstring>
#include <string_view>

#include <simdjson.h>

#include "engine/event/timestamp.h"

namespace vigil::engine {

/// authentication.k8s.io/v1 UserInfo as it appears in `user` and `impersonatedUser`.
struct user_info {
  std::string_view username;
  std::string_view uid;
  simdjson::dom::array groups; ///< valid only if has_groups (a default array must not be iterated)
  bool has_groups = false;
};

/// audit.k8s.io ObjectReference.
struct object_ref {
  std::string_view resource;
  std::string_view subresource;
  std::string_view namespace_;
  std::string_view name;
  std::string_view uid;
  std::string_view api_group;
  std::string_view api_version;
  std::string_view resource_version;
};

/// Which optional parts of the event were present in the JSON.
enum event_field : std::uint32_t {
  has_user = 1u << 0,
  has_impersonated_user = 1u << 1,
  has_object_ref = 1u << 2,
  has_response_status = 1u << 3,
  has_request_object = 1u << 4,
  has_response_object = 1u << 5,
  has_annotations = 1u << 6,
  has_source_ips = 1u << 7,
  has_request_received = 1u << 8,
  has_stage_timestamp = 1u << 9,
  has_response_code = 1u << 10,
  has_object_namespace = 1u << 11, ///< objectRef.namespace is present (possibly "")
  has_object_name = 1u << 12,      ///< objectRef.name is present (possibly "")
  has_legacy_timestamp = 1u << 13, ///< the `timestamp` field of pre-v1 captures
};

/// The top-level members a filter can read without walking the JSON (see audit_event::member):
/// decode_event records what each one holds as it reads the event.
enum class root_member : std::uint8_t {
  kind,
  api_version,
  level,
  audit_id,
  stage,
  request_uri,
  verb,
  user_agent,
  user,
  impersonated_user,
  object_ref,
  response_status,
  request_object,
  response_object,
  annotations,
  count_,
};
inline constexpr std::size_t root_member_count = static_cast<std::size_t>(root_member::count_);

/// The member's name in the audit.k8s.io JSON ("objectRef") and as a Go field ("ObjectRef").
std::string_view root_member_json_name(root_member m) noexcept;
std::string_view root_member_go_name(root_member m) noexcept;

/// The fields of user, impersonatedUser, objectRef and responseStatus that a filter can read
/// without walking the JSON (see audit_event::nested).
enum class nested_member : std::uint8_t {
  object_ref_resource,
  object_ref_subresource,
  object_ref_namespace,
  object_ref_name,
  object_ref_uid,
  object_ref_api_group,
  object_ref_api_version,
  object_ref_resource_version,
  user_username,
  user_uid, ///< follows user_username
  impersonated_user_username,
  impersonated_user_uid, ///< follows impersonated_user_username
  response_status_code,
  response_status_reason,
  response_status_status,
  count_,
};
inline constexpr std::size_t nested_member_count = static_cast<std::size_t>(nested_member::count_);

/// The object a nested member belongs to.
root_member nested_member_parent(nested_member m) noexcept;
/// The member's name in the JSON ("resource") and as a Go field ("Resource").
std::string_view nested_member_json_name(nested_member m) noexcept;
std::string_view nested_member_go_name(nested_member m) noexcept;

/// What audit_event::member found.
enum class member_lookup : std::uint8_t {
  absent,    ///< no key of that name in any case (nested: the parent is absent or null)
  found,     ///< the one key of that name (in any case) holds the value given
  ambiguous, ///< the name occurs more than once (in different cases): walk the JSON instead
};

/// A member's value as found: a string, an integer, other JSON (requestObject may hold any type),
/// or null (no flag).
struct member_value {
  simdjson::dom::element json; ///< valid when is_json; never null
  std::string_view text;       ///< valid when is_string
  std::int64_t integer = 0;    ///< valid when is_integer (responseStatus.code)
  bool is_json = false;
  bool is_string = false;
  bool is_integer = false;
};

/// One decoded Kubernetes audit Event. Strings are empty when the field is absent.
struct audit_event {
  simdjson::dom::element root; ///< the whole Event object, for any other path on demand

  std::string_view kind;        ///< "Event", or empty when the capture omitted it
  std::string_view api_version; ///< "audit.k8s.io/v1", "audit.k8s.io/v1beta1", or empty
  std::string_view level;       ///< None, Metadata, Request, RequestResponse
  std::string_view audit_id;
  std::string_view stage; ///< RequestReceived, ResponseStarted, ResponseComplete, Panic
  std::string_view request_uri;
  std::string_view verb;
  std::string_view user_agent;
  user_info user;
  user_info impersonated_user;
  simdjson::dom::array source_ips; ///< valid only if has(has_source_ips)
  std::string_view source_ip;      ///< sourceIPs[0], the client as the apiserver saw it
  object_ref object;
  std::int32_t response_code = 0;         ///< responseStatus.code, valid if has_response_code
  std::string_view response_reason;       ///< responseStatus.reason
  std::string_view response_status;       ///< responseStatus.status ("Success", "Failure")
  simdjson::dom::element request_object;  ///< valid if has_request_object
  simdjson::dom::element response_object; ///< valid if has_response_object
  simdjson::dom::object annotations;      ///< valid if has_annotations
  unix_nanos request_received = 0;        ///< requestReceivedTimestamp, valid if has_request_received
  unix_nanos stage_time = 0;              ///< stageTimestamp, valid if has_stage_timestamp
  unix_nanos legacy_time = 0;             ///< `timestamp` (audit.k8s.io/v1alpha1 and old v1beta1)
  std::uint32_t present = 0;              ///< event_field bits
  /// Top-level keys decode_event recognized, one bit per key in any case (null values included),
  /// and whether one came twice.
  std::uint32_t root_seen = 0;
  std::uint32_t root_strings = 0;   ///< root_member bits of the string members that hold a string
  std::uint32_t nested_strings = 0; ///< nested_member bits of the string fields that hold a string
  /// A recognized key came twice (in any case) at the root or in user, impersonatedUser,
  /// objectRef or responseStatus.
  bool keys_repeated = false;
  /// The root's object members as JSON, valid with their has_* bit (user, objectRef, ...).
  simdjson::dom::element user_json, impersonated_user_json, object_ref_json, response_status_json, annotations_json;

  [[nodiscard]] bool has(event_field f) const noexcept { return (present & f) != 0; }

  /// A top-level member as a JSON walk of the root would find it by its name in any case (the
  /// value of the only key that matches the name case-insensitively, or nothing), read from what
  /// decode_event recorded instead of walking. `ambiguous` when the name occurs more than once:
  /// then which key a walk picks depends on the spelling asked for, so the caller walks.
  [[nodiscard]] member_lookup member(root_member m, member_value& out) const noexcept;
  /// The same for a field of a member object (objectRef.resource): `absent` when the parent is
  /// absent or null, else `found` with the field's value (null when it has none), or `ambiguous`.
  [[nodiscard]] member_lookup nested(nested_member m, member_value& out) const noexcept;

  /// Value of an annotation such as "authorization.k8s.io/decision"; empty if absent or not a string.
  [[nodiscard]] std::string_view annotation(std::string_view key) const noexcept;

  /// Any other value by JSON pointer ("/requestObject/spec/hostNetwork"); an error if absent.
  [[nodiscard]] simdjson::simdjson_result<simdjson::dom::element> at(std::string_view pointer) const noexcept {
    return root.at_pointer(pointer);
  }
};

/// Why an object was not accepted as an audit Event.
enum class decode_error : std::uint8_t {
  none,
  not_object,      ///< the item is not a JSON object
  not_event,       ///< kind/apiVersion say it is something else (e.g. an EventList nested as an item)
  wrong_type,      ///< a known field has the wrong JSON type (`{"kind": 0}`)
  bad_timestamp,   ///< a timestamp field is not RFC 3339
  no_audit_fields, ///< none of auditID, verb, requestURI, stage is present
};

/// Short machine-readable name, used as the `kind` label of the error counter.
const char* to_string(decode_error e) noexcept;

/// The result of decode_event: on failure, the field that was wrong (a static string) if any.
struct decode_status {
  decode_error error = decode_error::none;
  const char* field = nullptr;

  [[nodiscard]] bool ok() const noexcept { return error == decode_error::none; }
};

/// A key name as decode_event (and decode_bench) spell it for comparison: lowercase letters a-z
/// only, checked when compiling (a literal with any other character does not compile).
struct lowercase_key {
  std::string_view text;
  consteval lowercase_key(const char* literal) : text(literal) { // NOLINT: implicit on purpose
    for (const char c : text) {
      if (c < 'a' || c > 'z') {
        throw "key_is compares against lowercase letters a-z only";
      }
    }
  }
};

/// ASCII case-insensitive equality against such a key. With letters only, OR-ing 0x20 into a key
/// byte is exact: only the letter itself and its capital give the letter (bytes >= 0x80, digits
/// and punctuation give something else), so eight bytes compare at once. A per-byte loop with a
/// range test was a tenth of decode_event's time.
inline bool key_is(std::string_view key, lowercase_key literal) noexcept {
  const std::string_view lower = literal.text;
  const std::size_t n = key.size();
  if (n != lower.size()) {
    return false;
  }
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t k, l;
    std::memcpy(&k, key.data() + i, 8);
    std::memcpy(&l, lower.data() + i, 8);
    if ((k | 0x2020202020202020ull) != l) {
      return false;
    }
  }
  if (i + 4 <= n) {
    std::uint32_t k, l;
    std::memcpy(&k, key.data() + i, 4);
    std::memcpy(&l, lower.data() + i, 4);
    if ((k | 0x20202020u) != l) {
      return false;
    }
    i += 4;
  }
  for (; i < n; ++i) {
    if ((static_cast<unsigned char>(key[i]) | 0x20u) != static_cast<unsigned char>(lower[i])) {
      return false;
    }
  }
  return true;
}

/// Fills `out` from one JSON element. Hot path: no allocation, no exception.
/// Keys are matched ASCII-case-insensitively (as Go's encoding/json does for struct fields).
decode_status decode_event(simdjson::dom::element element, audit_event& out) noexcept;

} // namespace vigil::engine
