#pragma once
// vigil.yaml: the daemon's and replay's configuration. Strict: an unknown key, a wrong type or an
// out-of-range value is an error naming file:line:column, and every error is reported. Every key
// is documented, with its default, in docs/configuration.md.

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace vigil::config {

/// One audit webhook listener.
struct webhook_source {
  std::string name;                        ///< counter label; default "host:port"
  std::string host = "127.0.0.1";
  std::uint16_t port = 9876;
  std::string path = "/audit/webhook/event";
  std::string cluster;                     ///< empty: the top-level cluster
  std::vector<std::string> tokens;         ///< bearer tokens; empty: no authentication
  std::string tls_cert, tls_key, tls_client_ca;
  std::size_t max_body_size = 32u << 20;
  std::size_t max_connections = 1024;      ///< open at once; beyond, connections that never spoke go first
  std::uint32_t header_timeout_ms = 10000, body_timeout_ms = 30000, idle_timeout_ms = 60000;
  std::string origin;                      ///< "file:line" where it was configured
};

/// Audit log files: read once at start (`mode: cat`) or followed (`mode: tail`, the default).
struct file_source {
  std::vector<std::string> paths;
  std::string cluster;
  bool tail = true;
  bool from_beginning = false;  ///< tail: where to start a file with no saved position
  std::string position_dir = "."; ///< tail: where positions are kept across restarts
  std::string origin;
};

struct settings {
  std::string file;                    ///< where the settings came from ("" = embedded default)
  unsigned workers = 0;                ///< worker threads; 0 = one per core
  std::size_t max_in_flight = 1u << 15; ///< documents admitted but not yet processed
  bool max_in_flight_set = false;       ///< the file gave max_in_flight (replay has its own default)
  std::vector<std::string> rules;      ///< scenario files/directories; empty = the shipped pack
  std::string cluster;                 ///< cluster name stamped on events
  std::string profiles;                ///< profiles.yaml; empty = the embedded default profiles
  std::vector<std::string> notifications; ///< notification plugin files or directories
  std::string store_path = "vigil.db"; ///< SQLite store; empty: no store
  std::string api_listen = "127.0.0.1:8080"; ///< local API for bouncers; empty: off
  std::string api_tls_cert, api_tls_key;     ///< serve the local API over HTTPS
  std::string metrics_listen = "127.0.0.1:6060"; ///< Prometheus /metrics; empty: off
  std::size_t store_max_items = 5000;  ///< retention, as CrowdSec's db flush.max_items (0: no limit)
  std::uint32_t store_max_age_hours = 7 * 24; ///< retention, as flush.max_age (0: no limit)
  std::vector<webhook_source> webhooks; ///< empty: the embedded default webhook
  std::vector<file_source> files;
  std::vector<std::string> warnings;   ///< entries skipped on purpose (e.g. other CrowdSec datasources)
};

struct error {
  std::string file;
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  std::string message;
  [[nodiscard]] std::string to_string() const;
};

/// Splits "ADDRESS:PORT" ("[::1]:9876" for IPv6); false when it is not of that form.
bool parse_listen(const std::string& text, std::string& host, std::uint16_t& port);

/// Loads and validates a vigil.yaml. Relative rule paths are resolved against the file's folder.
std::variant<settings, std::vector<error>> load(const std::string& path);

/// The same from text (`file` names it in errors and anchors relative paths).
std::variant<settings, std::vector<error>> load_text(const std::string& text, const std::string& file);

/// Adds the k8s-audit entries of a CrowdSec acquisition file (acquis.yaml, several documents) to
/// `out`: `source: k8s-audit` webhooks (listen_addr, listen_port, webhook_path, labels; the older
/// spelling `k8s_audit` is accepted with a warning) and file acquisitions (`filename:` /
/// `filenames:`) labelled `type: k8s-audit`. Other datasources are skipped with one warning each.
/// Errors are appended to `errors`.
void load_acquis(const std::string& path, settings& out, std::vector<error>& errors);

/// Reads a CrowdSec configuration directory as the k8s-audit tutorial lays it out: acquis.yaml and
/// acquis.d/*.yaml (k8s-audit entries; others skipped with a warning), profiles.yaml,
/// notifications/, and the k8s-audit scenarios of scenarios/ (others skipped with a warning).
/// Adds to `out`; errors are appended to `errors`.
void load_crowdsec_dir(const std::string& dir, settings& out, std::vector<error>& errors);

} // namespace vigil::config
