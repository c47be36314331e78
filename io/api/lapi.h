#pragma once
// The local API for CrowdSec bouncers (docs/lapi.md): GET /v1/decisions/stream and
// GET /v1/decisions, authenticated by X-Api-Key, answered from the store. An existing bouncer
// (crowdsec-firewall-bouncer, ...) works against it unmodified.
//
// Threading: runs on the HTTP server's loop thread with its own store connection.

#include <map>
#include <memory>
#include <string>

#include "engine/counters/counters.h"
#include "io/http/server.h"
#include "io/store/store.h"

namespace vigil::io {

/// SHA-256 of a key, lower-case hex: how keys are kept in the store.
std::string hash_api_key(const std::string& key);

/// A new random API key (32 bytes, hex).
std::string new_api_key();

class lapi {
 public:
  explicit lapi(std::unique_ptr<store> s);
  ~lapi();
  int precheck(const http::request& req, http::response& res);
  void handle(http::request& req, http::response& res);

 private:
  std::unique_ptr<store> store_;
  std::uint32_t forbidden_id_;
  std::uint32_t requests_id_;
  std::uint32_t store_busy_id_;
  /// cs_lapi_request_duration_seconds{endpoint, method}, by "endpoint method".
  std::map<std::string, counters::histogram> durations_;
};

} // namespace vigil::io
