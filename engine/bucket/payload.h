#pragma once
// What a bucket keeps of each event it holds: the event time and the event's meta key/values
// (sorted by key), which become the alert's `events` list on overflow. A bucket holds at most
// capacity+1 of them; they are recycled, and assign() reuses their storage, so a warmed-up shard
// pours without heap allocation.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/event/timestamp.h"

namespace vigil::engine {

struct event_payload {
  unix_nanos time = 0;
  /// Meta key/value pairs, sorted by key, as CrowdSec lists an alert's event meta.
  std::vector<std::pair<std::string, std::string>> meta;

  /// Copies `other` into this payload, reusing this payload's string and vector storage.
  void assign(const event_payload& other) {
    time = other.time;
    if (meta.size() > other.meta.size()) {
      meta.resize(other.meta.size());
    }
    for (std::size_t i = 0; i < other.meta.size(); ++i) {
      if (i < meta.size()) {
        meta[i].first.assign(other.meta[i].first);
        meta[i].second.assign(other.meta[i].second);
      } else {
        meta.emplace_back(other.meta[i]);
      }
    }
  }

  /// Value of a meta key, empty if absent.
  [[nodiscard]] std::string_view get(std::string_view key) const noexcept {
    for (const auto& [k, v] : meta) {
      if (k == key) {
        return v;
      }
    }
    return {};
  }
};

} // namespace vigil::engine
