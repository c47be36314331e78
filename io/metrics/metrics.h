#pragma once
// /metrics: the counter registry in Prometheus text format (version 0.0.4), served by the HTTP
// server on its own listener (127.0.0.1:6060 by default, as CrowdSec's). Counters are summed over
// the per-thread slots at scrape time: nothing shared is written on the hot path.

#include <string>

#include "io/http/server.h"

namespace vigil::io {

/// Every counter of the global registry, grouped by name, with # HELP and # TYPE lines.
std::string render_prometheus();

/// Header checks for the metrics listener: GET /metrics only.
int metrics_precheck(const http::request& req, http::response& res);
void metrics_handle(http::request& req, http::response& res);

} // namespace vigil::io
