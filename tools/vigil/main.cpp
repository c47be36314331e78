// vigil: Kubernetes audit-log security engine. Entry point: dispatches to the subcommands.
#include <cstdio>

#include "tools/vigil/commands.h"

#ifndef VIGIL_VERSION
#define VIGIL_VERSION "0.1.0"
#endif

namespace {

// A repeatable flag takes one value each time it is given (`--rules A --rules B`), never the
// words after it: `vigil replay --rules DIR a.json b.json` replays both files, where CLI11's
// default read every file but the last as a rules path.
void one_value_per_flag(CLI::App& app) {
  for (CLI::Option* o : app.get_options()) {
    if (o->get_positional()) {
      continue;
    }
    if (o->get_items_expected_max() > 1) {
      o->allow_extra_args(false);
    }
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    one_value_per_flag(*sub);
  }
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"vigil: Kubernetes audit-log security engine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", VIGIL_VERSION);
  const vigil::cli::command replay = vigil::cli::add_replay(app);
  const vigil::cli::command rules = vigil::cli::add_rules(app);
  const vigil::cli::command explain = vigil::cli::add_explain(app);
  const vigil::cli::command run = vigil::cli::add_run(app);
  const vigil::cli::command check = vigil::cli::add_check_config(app);
  const vigil::cli::command store = vigil::cli::add_store_commands(app);
  const vigil::cli::command metrics = vigil::cli::add_metrics(app);
  const vigil::cli::command notifications = vigil::cli::add_notifications(app);
  one_value_per_flag(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; a usage error exits 2, as every other error vigil reports
    // before it starts (CLI11's own codes, 105 and up, say nothing a script can rely on).
    return app.exit(e) == 0 ? 0 : 2;
  }
  for (const CLI::App* sub : app.get_subcommands()) {
    if (sub->get_name() == "replay") {
      return replay();
    }
    if (sub->get_name() == "rules") {
      return rules();
    }
    if (sub->get_name() == "explain") {
      return explain();
    }
    if (sub->get_name() == "run") {
      return run();
    }
    if (sub->get_name() == "check-config") {
      return check();
    }
    if (sub->get_name() == "notifications") {
      return notifications();
    }
    if (sub->get_name() == "metrics") {
      return metrics();
    }
    if (sub->get_name() == "alerts" || sub->get_name() == "decisions" || sub->get_name() == "bouncers") {
      return store();
    }
  }
  return 2;
}
