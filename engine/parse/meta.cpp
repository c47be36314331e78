#include "engine/parse/meta.h"

namespace vigil::engine {

namespace {

constexpr std::array<std::string_view, meta_key_count> names = {
    "cluster", "datasource_path", "datasource_type", "kind",      "log_type",
    "namespace", "resource_name", "source_ip",       "timestamp", "user",
};

} // namespace

std::string_view meta_key_name(meta_key k) noexcept { return names[static_cast<std::size_t>(k)]; }

bool meta_key_from_name(std::string_view name, meta_key& out) noexcept {
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) {
      out = static_cast<meta_key>(i);
      return true;
    }
  }
  return false;
}

void build_meta(const audit_event& ev, const source_info& source, event_meta& out) noexcept {
  out.present = 0;
  out.values = {};
  // CrowdSec's parser skips a static whose value is empty ("Empty value for ..., skip"), so the
  // key is absent then, as it is when the expression fails or gives nil (`sourceIPs[0]` on an
  // empty list, `objectRef?.namespace` without the key). Reading an absent key gives "" anyway.
  auto set = [&out](meta_key k, std::string_view v) {
    if (!v.empty()) {
      out.set(k, v);
    }
  };
  out.set(meta_key::log_type, "k8s-audit");
  set(meta_key::datasource_type, source.datasource_type);
  set(meta_key::datasource_path, source.datasource_path);
  set(meta_key::cluster, source.cluster); // absent for single-cluster setups, as in CrowdSec
  if (ev.has(has_user)) {
    set(meta_key::user, ev.user.username);
  }
  if (ev.has(has_source_ips) && ev.source_ips.size() > 0) {
    set(meta_key::source_ip, ev.source_ip);
  }
  if (ev.has(has_object_namespace)) {
    set(meta_key::namespace_, ev.object.namespace_);
  }
  if (ev.has(has_object_name)) {
    set(meta_key::resource_name, ev.object.name);
  }
  if (ev.has(has_request_object) && ev.request_object.type() == simdjson::dom::element_type::OBJECT) {
    std::string_view kind;
    if (ev.request_object["kind"].get(kind) == simdjson::SUCCESS) {
      set(meta_key::kind, kind);
    }
  }
  if (ev.has(has_request_received)) {
    out.timestamp_nanos = ev.request_received;
    out.timestamp_ready = false;
    out.set(meta_key::timestamp, {}); // formatted by get() when first read
  }
}

unix_nanos event_time(const audit_event& ev, unix_nanos fallback) noexcept {
  if (ev.has(has_request_received)) {
    return ev.request_received;
  }
  if (ev.has(has_stage_timestamp)) {
    return ev.stage_time;
  }
  if (ev.has(has_legacy_timestamp)) {
    return ev.legacy_time;
  }
  return fallback;
}

} // namespace vigil::engine
