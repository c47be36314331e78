#pragma once
// The subcommands of the `vigil` program. Each registers its options on the CLI11 app and returns
// the function that runs it (exit status).

#include <functional>

#include <CLI/CLI.hpp>

namespace vigil::cli {

using command = std::function<int()>;

/// `vigil replay FILE...`: decode audit files and print a summary.
command add_replay(CLI::App& app);

/// `vigil rules list|test`.
command add_rules(CLI::App& app);

/// `vigil run`: the daemon.
command add_run(CLI::App& app);

/// `vigil check-config`.
command add_check_config(CLI::App& app);

/// `vigil explain FILE...`.
command add_explain(CLI::App& app);

} // namespace vigil::cli
