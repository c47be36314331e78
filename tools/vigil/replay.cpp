// `vigil replay FILE...`: reads audit files (JSON lines, single Event, EventList, JSON array; "-"
// for stdin) through the same worker/shard pipeline as the daemon, prints alerts on stdout
// (CrowdSec's message per line, or JSON lines with --output json) and a summary on stderr.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include "engine/config/config.h"
#include "engine/pipeline/pipeline.h"
#include "io/file/replay_source.h"
#include "rules/matcher/ruleset.h"
#include "tools/vigil/commands.h"

namespace vigil::cli {

namespace {

struct replay_options {
  std::string config;
  std::string profiles;
  std::vector<std::string> files;
  std::vector<std::string> rules;
  std::string output = "text";
  std::string cluster;
  unsigned workers = 0;
  std::size_t max_errors_shown = 100;
  bool no_counts = false;
};

void print_counts(const char* title, const std::map<std::string, std::uint64_t>& m, std::uint64_t not_named) {
  std::vector<std::pair<std::string, std::uint64_t>> rows(m.begin(), m.end());
  std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::fprintf(stderr, "%-56s %10s\n", title, "events");
  for (const auto& [key, n] : rows) {
    std::fprintf(stderr, "  %-54s %10llu\n", key.c_str(), static_cast<unsigned long long>(n));
  }
  if (not_named != 0) {
    // Each worker names at most 4,096 distinct keys: a file with more does not grow the summary.
    std::fprintf(stderr, "  %-54s %10llu\n", "(further keys, not named)", static_cast<unsigned long long>(not_named));
  }
}

// Runs on the emitter thread: the only writer of stdout and of error lines.
class printer final : public pipeline::output_handler {
 public:
  printer(bool json, std::size_t max_errors) : json_(json), max_errors_(max_errors) {}

  void on_alert(const engine::alert& a) override {
    if (json_) {
      engine::write_json_line(stdout, line_, a);
    } else if (!a.further_source) { // an overflow's message once, whatever its sources
      std::fprintf(stdout, "%s\n", a.message.c_str());
    }
  }

  // Alerts sit in stdout's buffer (run_replay sizes it) until it fills, or until the pipeline
  // has been idle for emitter_idle: a reader of the output waits at most that long.
  void on_idle() override { std::fflush(stdout); }

  void on_error(const std::string& message) override {
    if (++errors_ <= max_errors_) {
      std::fprintf(stderr, "%s\n", message.c_str());
    }
  }

  std::uint64_t errors() const { return errors_; }

 private:
  bool json_;
  std::string line_; // the JSON line being written, kept between alerts
  std::size_t max_errors_;
  std::uint64_t errors_ = 0;
};

int run_replay(const replay_options& opts) {
  if (opts.output != "text" && opts.output != "json") {
    std::fprintf(stderr, "vigil replay: --output must be text or json, got '%s'\n", opts.output.c_str());
    return 2;
  }
  config::settings cfg;
  if (!opts.config.empty()) {
    auto c = config::load(opts.config);
    if (auto* errors = std::get_if<std::vector<config::error>>(&c)) {
      for (const auto& e : *errors) {
        std::fprintf(stderr, "%s\n", e.to_string().c_str());
      }
      std::fprintf(stderr, "vigil replay: %zu error(s) in the configuration\n", errors->size());
      return 2;
    }
    cfg = std::get<config::settings>(c);
  }
  // Command-line flags override the file.
  const std::vector<std::string>& rule_paths = opts.rules.empty() ? cfg.rules : opts.rules;
  const unsigned workers = opts.workers != 0 ? opts.workers : cfg.workers;
  const std::string cluster = opts.cluster.empty() ? cfg.cluster : opts.cluster;
  auto loaded = rules::load_ruleset(rule_paths);
  if (auto* errors = std::get_if<std::vector<rules::load_error>>(&loaded)) {
    for (const auto& e : *errors) {
      std::fprintf(stderr, "%s\n", e.to_string().c_str());
    }
    std::fprintf(stderr, "vigil replay: %zu error(s) in the rules, nothing replayed\n", errors->size());
    return 2;
  }
  auto rules = std::get<std::shared_ptr<const rules::ruleset>>(loaded);
  auto profiles = load_profiles_or_report(opts.profiles.empty() ? cfg.profiles : opts.profiles, "replay");
  if (!profiles) {
    return 2;
  }
  // One write per 256 KiB of alerts instead of one per stdio's default 4 KiB: a busy replay
  // wrote about four alerts per system call.
  static char stdout_buffer[256 * 1024];
  if (::isatty(STDOUT_FILENO) == 0) {
    std::setvbuf(stdout, stdout_buffer, _IOFBF, sizeof stdout_buffer);
  }
  printer out(opts.output == "json", opts.max_errors_shown);
  pipeline::options po;
  po.workers = workers;
  // Replay waits instead of answering 429, so it needs no room for bursts: about two of the
  // reader's 1 MiB chunks (io/file/replay_source.cpp) keep the worker fed (when the reader
  // resumes, the worker still has a chunk queued, about a millisecond of work), and the buffers
  // the reader fills are still in the caches. Measured against 8,192 with 4 MiB chunks, the
  // whole process spent 4-9% less CPU (1 worker) and the 2-worker replay ran 7-11% faster
  // (bench/RESULTS.md, "Session 16"), as 8,192 had done against 32,768 before.
  constexpr std::size_t replay_max_in_flight = 2048;
  po.max_in_flight = cfg.max_in_flight_set ? cfg.max_in_flight : replay_max_in_flight;
  po.count_verbs_resources = !opts.no_counts;
  po.profiles = profiles;
  const auto started = std::chrono::steady_clock::now();
  pipeline::pipeline pl(rules, po, out);
  int status = 0;
  for (const std::string& file : opts.files) {
    if (!io::replay_file(io::replay_source{file, file, cluster}, pl)) {
      status = 2;
    }
  }
  const pipeline::totals t = pl.finish();
  std::fflush(stdout);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  if (out.errors() > opts.max_errors_shown) {
    std::fprintf(stderr, "... and %llu more malformed events not shown\n",
                 static_cast<unsigned long long>(out.errors() - opts.max_errors_shown));
  }
  std::fprintf(stderr, "%llu events read, %llu decoded, %llu malformed\n",
               static_cast<unsigned long long>(t.events_read), static_cast<unsigned long long>(t.decoded),
               static_cast<unsigned long long>(t.malformed));
  // CPU time of every thread (reader, workers, emitter; user and system): events per CPU-second
  // is the throughput per core the process would have if its work were spread perfectly.
  const auto seconds_of = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; };
  const double cpu = seconds_of(ru.ru_utime) + seconds_of(ru.ru_stime);
  std::fprintf(stderr,
               "%llu alerts (%zu rules, %u workers) in %.3f s: %.0f events/s, peak RSS %.1f MB, "
               "CPU %.3f s (%.0f events per CPU-second)\n",
               static_cast<unsigned long long>(t.alerts), rules->scenarios.size(), pl.workers(), secs,
               secs > 0 ? static_cast<double>(t.events_read) / secs : 0.0, static_cast<double>(ru.ru_maxrss) / 1024.0,
               cpu, cpu > 0 ? static_cast<double>(t.events_read) / cpu : 0.0);
  // The same CPU time by thread. Events per worker CPU-second is what one worker's core keeps
  // up with; the reading thread (the kernel's copy of the file, framing) and the emitter (alerts)
  // run beside the workers.
  double workers_cpu = 0.0;
  for (const double w : t.worker_cpu_seconds) {
    workers_cpu += w;
  }
  std::fprintf(stderr,
               "CPU by thread: workers %.3f s (%.0f events per worker CPU-second), emitter %.3f s, "
               "reading and the rest %.3f s\n",
               workers_cpu, workers_cpu > 0 ? static_cast<double>(t.events_read) / workers_cpu : 0.0,
               t.emitter_cpu_seconds, std::max(0.0, cpu - workers_cpu - t.emitter_cpu_seconds));
  if (t.events_per_worker.size() > 1) {
    // Chunks go to the workers in turn; pours go to the worker that owns their bucket.
    std::string split;
    for (const std::uint64_t n : t.events_per_worker) {
      split += split.empty() ? "" : " / ";
      split += std::to_string(n);
    }
    std::fprintf(stderr, "events per worker: %s; pours forwarded between workers: %llu\n", split.c_str(),
                 static_cast<unsigned long long>(t.forwarded));
  }
  if (!opts.no_counts) {
    print_counts("verb", t.by_verb, t.verbs_not_named);
    print_counts("resource", t.by_resource, t.resources_not_named);
  }
  std::fprintf(stderr, "%-56s %10s %12s\n", "scenario", "alerts", "eval errors");
  for (std::size_t i = 0; i < rules->scenarios.size(); ++i) {
    std::fprintf(stderr, "  %-54s %10llu %12llu\n", rules->scenarios[i].name.c_str(),
                 static_cast<unsigned long long>(t.alerts_per_scenario[i]),
                 static_cast<unsigned long long>(t.eval_errors_per_scenario[i]));
  }
  return status;
}

} // namespace

std::shared_ptr<const rules::profile_set> load_profiles_or_report(const std::string& path, const char* cmd) {
  if (path.empty()) {
    return std::make_shared<const rules::profile_set>(rules::profile_set::defaults());
  }
  auto r = rules::profile_set::load(path);
  if (auto* errors = std::get_if<std::vector<rules::load_error>>(&r)) {
    for (const auto& e : *errors) {
      std::fprintf(stderr, "%s\n", e.to_string().c_str());
    }
    std::fprintf(stderr, "vigil %s: %zu error(s) in the profiles\n", cmd, errors->size());
    return nullptr;
  }
  return std::make_shared<const rules::profile_set>(std::move(std::get<rules::profile_set>(r)));
}

command add_replay(CLI::App& app) {
  auto opts = std::make_shared<replay_options>();
  CLI::App* sub = app.add_subcommand("replay", "Run audit files through the rules and print the alerts");
  sub->add_option("-c,--config", opts->config, "vigil.yaml (see docs/configuration.md); flags override it");
  sub->add_option("files", opts->files, "Audit files: JSON lines, Event, EventList or JSON array; - for stdin")
      ->required();
  sub->add_option("--rules", opts->rules,
                  "Scenario file or directory (repeatable); default: the shipped crowdsecurity rules");
  sub->add_option("-o,--output", opts->output, "Alert format on stdout: text or json")->capture_default_str();
  sub->add_option("--workers", opts->workers, "Worker threads (default: one per core)")->check(CLI::Range(0, 256));
  sub->add_option("--profiles", opts->profiles, "profiles.yaml (default: CrowdSec's defaults + the k8s-audit notification profile)");
  sub->add_option("--cluster", opts->cluster, "Cluster name stamped on the events");
  sub->add_flag("--no-counts", opts->no_counts, "Do not count events by verb and resource in the summary");
  sub->add_option("--max-errors", opts->max_errors_shown, "Malformed events printed before the rest are only counted")
      ->capture_default_str();
  return [opts] { return run_replay(*opts); };
}

} // namespace vigil::cli
