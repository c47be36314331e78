#pragma once
// Test helper: a sink that keeps a copy of what the reader produced, so tests can assert on it
// after the views have expired.

#include <cstdint>
#include <string>
#include <vector>

#include "engine/event/reader.h"

namespace vigil::test {

struct seen_event {
  std::string verb, user, source_ip, resource, subresource, namespace_, name, audit_id, stage, level;
  std::string api_version, impersonated, user_agent, request_uri, reason, decision;
  std::int32_t code = 0;
  bool has_code = false;
  std::int64_t received = 0;
  std::int64_t stage_time = 0;
  std::uint64_t line = 0;
  std::int64_t item = -1;
  std::uint32_t present = 0;
  std::vector<std::string> groups;
  std::string request_kind; ///< requestObject.kind
};

struct seen_error {
  std::uint64_t line = 0;
  std::int64_t item = -1;
  std::string kind;   ///< failure::kind()
  std::string reason; ///< describe()
};

class collect_sink final : public engine::event_sink {
 public:
  void on_event(const engine::audit_event& ev, const engine::position& where) override {
    seen_event s;
    s.verb = ev.verb;
    s.user = ev.user.username;
    s.source_ip = ev.source_ip;
    s.resource = ev.object.resource;
    s.subresource = ev.object.subresource;
    s.namespace_ = ev.object.namespace_;
    s.name = ev.object.name;
    s.audit_id = ev.audit_id;
    s.stage = ev.stage;
    s.level = ev.level;
    s.api_version = ev.api_version;
    s.impersonated = ev.impersonated_user.username;
    s.user_agent = ev.user_agent;
    s.request_uri = ev.request_uri;
    s.reason = ev.response_reason;
    s.decision = ev.annotation("authorization.k8s.io/decision");
    s.code = ev.response_code;
    s.has_code = ev.has(engine::has_response_code);
    s.received = ev.request_received;
    s.stage_time = ev.stage_time;
    s.line = where.line;
    s.item = where.item;
    s.present = ev.present;
    if (ev.user.has_groups) {
      for (auto g : ev.user.groups) {
        s.groups.emplace_back(std::string_view(g));
      }
    }
    if (ev.has(engine::has_request_object)) {
      std::string_view kind;
      if (ev.request_object["kind"].get(kind) == simdjson::SUCCESS) {
        s.request_kind = kind;
      }
    }
    events.push_back(std::move(s));
  }

  void on_error(const engine::position& where, const engine::failure& why) override {
    errors.push_back(seen_error{where.line, where.item, why.kind(), engine::describe(why)});
  }

  std::vector<seen_event> events;
  std::vector<seen_error> errors;
};

/// Feeds a whole string to a fresh reader as one final buffer (with the padding simdjson needs).
inline collect_sink decode_all(std::string text, engine::reader_options options = {}) {
  collect_sink sink;
  engine::reader reader(options);
  const std::size_t size = text.size();
  text.append(simdjson::SIMDJSON_PADDING, '\0');
  reader.feed(text.data(), size, true, "test", sink);
  return sink;
}

} // namespace vigil::test
