// `vigil replay FILE...`: reads audit files (JSON lines, single Event, EventList, JSON array; "-"
// for stdin), decodes every event, and prints a summary on stderr.
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/event/reader.h"
#include "io/file/file_source.h"
#include "tools/vigil/commands.h"

namespace vigil::cli {

namespace {

struct replay_options {
  std::vector<std::string> files;
  std::size_t max_errors_shown = 100;
};

// Counts events by verb and resource, and prints decode errors as file:line: reason.
class summary_sink final : public engine::event_sink {
 public:
  explicit summary_sink(std::size_t max_errors_shown) : max_errors_shown_(max_errors_shown) {}

  void on_event(const engine::audit_event& ev, const engine::position&) override {
    bump(verbs_, ev.verb.empty() ? std::string_view("(none)") : ev.verb);
    bump(resources_, ev.object.resource.empty() ? std::string_view("(none)") : ev.object.resource);
  }

  void on_error(const engine::position& where, const engine::failure& why) override {
    ++errors_;
    if (errors_ > max_errors_shown_) {
      return;
    }
    if (where.item >= 0) {
      std::fprintf(stderr, "%.*s:%llu: item %lld: %s\n", static_cast<int>(where.origin.size()), where.origin.data(),
                   static_cast<unsigned long long>(where.line), static_cast<long long>(where.item),
                   engine::describe(why).c_str());
    } else {
      std::fprintf(stderr, "%.*s:%llu: %s\n", static_cast<int>(where.origin.size()), where.origin.data(),
                   static_cast<unsigned long long>(where.line), engine::describe(why).c_str());
    }
  }

  void print_tables() const {
    if (errors_ > max_errors_shown_) {
      std::fprintf(stderr, "... and %llu more malformed events not shown\n",
                   static_cast<unsigned long long>(errors_ - max_errors_shown_));
    }
    print_counts("verb", verbs_);
    print_counts("resource", resources_);
  }

 private:
  using counts = std::map<std::string, std::uint64_t, std::less<>>;

  static void bump(counts& m, std::string_view key) {
    auto it = m.find(key);
    if (it == m.end()) {
      it = m.emplace(std::string(key), 0).first;
    }
    ++it->second;
  }

  static void print_counts(const char* title, const counts& m) {
    std::vector<std::pair<std::string, std::uint64_t>> rows(m.begin(), m.end());
    std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    std::fprintf(stderr, "%-24s %10s\n", title, "events");
    for (const auto& [key, n] : rows) {
      std::fprintf(stderr, "  %-22s %10llu\n", key.c_str(), static_cast<unsigned long long>(n));
    }
  }

  counts verbs_;
  counts resources_;
  std::uint64_t errors_ = 0;
  std::size_t max_errors_shown_;
};

int run_replay(const replay_options& opts) {
  engine::reader reader;
  summary_sink sink(opts.max_errors_shown);
  int status = 0;
  for (const std::string& file : opts.files) {
    const io::file_read_result r = io::read_file(file, reader, sink);
    if (!r.ok) {
      std::fprintf(stderr, "vigil replay: %s\n", r.error.c_str());
      status = 2;
    }
  }
  const engine::reader_stats& s = reader.stats();
  std::fprintf(stderr, "%llu events read, %llu decoded, %llu malformed\n",
               static_cast<unsigned long long>(s.events_read), static_cast<unsigned long long>(s.decoded),
               static_cast<unsigned long long>(s.malformed));
  sink.print_tables();
  return status;
}

} // namespace

command add_replay(CLI::App& app) {
  auto opts = std::make_shared<replay_options>();
  CLI::App* sub = app.add_subcommand("replay", "Read audit files and print what they contain");
  sub->add_option("files", opts->files, "Audit files: JSON lines, Event, EventList or JSON array; - for stdin")
      ->required();
  sub->add_option("--max-errors", opts->max_errors_shown, "Malformed events printed before the rest are only counted")
      ->capture_default_str();
  return [opts] { return run_replay(*opts); };
}

} // namespace vigil::cli
