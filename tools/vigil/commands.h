#pragma once
// The subcommands of the `vigil` program. Each registers its options on the CLI11 app and returns
// the function that runs it (exit status).

#include <functional>
#include <memory>
#include <optional>
#include <vector>
#include <string>

#include <CLI/CLI.hpp>

namespace vigil::rules {
class profile_set;
}
namespace vigil::config {
struct settings;
}
namespace vigil::io {
struct notification;
}

namespace vigil::cli {

/// The profiles of `path` (or the embedded defaults when empty); null after printing every error.
std::shared_ptr<const rules::profile_set> load_profiles_or_report(const std::string& path, const char* cmd);

/// vigil.yaml (may be empty) plus a CrowdSec configuration directory (may be empty) into `cfg`;
/// false after printing every error. Warnings are logged.
bool load_settings_or_report(const std::string& config_path, const std::string& crowdsec_dir, config::settings& cfg);

/// The notifications of these files/directories; nullopt after printing every error. With
/// `profiles`, says which names they use that no file defines.
std::optional<std::vector<io::notification>> load_notifications_or_report(const std::vector<std::string>& paths,
                                                                         const rules::profile_set* profiles);

/// "vigil@<hostname>": the MachineID notifications show.
std::string machine_id();

/// Appends `,"key":"value"` (no comma when `first`) to a JSON object being written (-o json).
void json_field(std::string& out, const char* key, const std::string& v, bool first = false);

/// Log line in CrowdSec's text format on stderr.
void log_line(const char* level, const std::string& msg);

using command = std::function<int()>;

/// `vigil replay FILE...`: decode audit files and print a summary.
command add_replay(CLI::App& app);

/// `vigil rules list|test`.
command add_rules(CLI::App& app);

/// `vigil run`: the daemon.
command add_run(CLI::App& app);

/// `vigil check-config`.
command add_check_config(CLI::App& app);

/// `vigil alerts list`, `vigil decisions list|add|delete`. Registers both subcommands.
command add_store_commands(CLI::App& app);

/// `vigil metrics`: the daemon's counters as tables.
command add_metrics(CLI::App& app);

/// `vigil notifications list|inspect|test`.
command add_notifications(CLI::App& app);

/// `vigil explain FILE...`.
command add_explain(CLI::App& app);

} // namespace vigil::cli
