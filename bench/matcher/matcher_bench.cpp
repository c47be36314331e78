// Rule matching cost per event as the rule count grows: the scaling curve of the hyperscan-grouped
// matcher (rules/matcher/matcher.h). Goal: the cost per event at 1,000 rules stays within 2x of
// its cost at 10 rules.
//
// Rule sets of N = 7 (the shipped pack alone), 10, 100 and 1,000 scenarios: the 7 shipped rules
// plus N - 7 synthetic CrowdSec k8s-audit scenarios generated deterministically from a few
// realistic shapes (string equality, `in` lists, startsWith / endsWith / contains, != and
// annotation lookups on evt.Meta.* and evt.Unmarshaled.k8s_audit.*, with a non-lifted tail on some),
// each with its own verbs / resources / namespaces / users; about half of the values are taken
// from the real capture (so rules do match), the rest name tenants that never appear.
//
// Events: the perfspec capture (16,563 Metadata-level events of a real kubeadm cluster) from
// ../shared/data/realworld, or the file named by VIGIL_BENCH_PERFSPEC, plus the repo's
// examples/audit files (pod creations, exec, anonymous requests, an EventList); without the
// capture, examples/audit/perfspec-sample.jsonl stands in. Events are decoded once, outside the
// timing, each into its own simdjson document; the timed loop does per event what the worker does
// (pipeline.cpp, worker::on_event): engine::build_meta, event_env::reset, matcher::match.
//
// Counters: events/s (items_per_second), time_per_event, rules, lifted tests, field databases,
// matches per 1,000 events, build time of the rule set. Real work: every event matched against
// every rule (the context's evaluation counts), some matches, and for N >= 100 some synthetic-rule
// matches (at N = 10 the three synthetic rules happen not to match this stream, as most rules
// never fire); otherwise the benchmark fails (SkipWithError). VIGIL_BENCH_RULE_STATS=1 prints the
// matches per rule on stderr.
//
//   build/bench/matcher_bench --benchmark_counters_tabular=true
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "engine/event/reader.h"
#include "engine/parse/meta.h"
#include "rules/matcher/ruleset.h"
#include "rules/scenario/event_env.h"

namespace {

namespace fs = std::filesystem;
using namespace vigil;

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// --- events -----------------------------------------------------------------------------------

// One event kept alive for the whole run: its JSON in its own simdjson document, and the decoded
// view pointing into it.
struct stored_event {
  simdjson::dom::document doc;
  engine::audit_event ev;
};

// Collects every event of a text (any shape the reader accepts) as minified JSON.
class collecting_sink final : public engine::event_sink {
 public:
  void on_event(const engine::audit_event& ev, const engine::position&) override {
    json.push_back(simdjson::minify(ev.root));
  }
  void on_error(const engine::position&, const engine::failure&) override { ++errors; }
  std::vector<std::string> json;
  std::size_t errors = 0;
};

struct event_stream {
  std::vector<std::unique_ptr<stored_event>> events;
  std::string description;
  std::string text; ///< the same events, one minified JSON per line, padded
  std::vector<engine::reader::framed_document> lines;
};

const event_stream& events() {
  static const event_stream stream = [] {
    event_stream s;
    const std::string src = VIGIL_SOURCE_DIR;
    const char* env = std::getenv("VIGIL_BENCH_PERFSPEC");
    fs::path perfspec = env != nullptr ? fs::path(env)
                                       : fs::path(src) / "../shared/data/realworld/perfspec-kubernetes-event-dataset/"
                                                         "audit-logs.reconstructed.jsonl";
    std::vector<fs::path> files;
    if (fs::exists(perfspec)) {
      files.push_back(perfspec);
      s.description = "perfspec capture + examples/audit";
    } else {
      files.push_back(fs::path(src) / "examples/audit/perfspec-sample.jsonl");
      s.description = "examples/audit only (perfspec capture not found)";
    }
    for (const char* f : {"audit2rbac-demo.jsonl", "falco-traces.jsonl", "pod-exec.jsonl", "privileged-pod.jsonl",
                          "webhook-batch.json"}) {
      files.push_back(fs::path(src) / "examples/audit" / f);
    }
    collecting_sink sink;
    for (const fs::path& f : files) {
      const std::string text = slurp(f);
      if (text.empty()) {
        continue;
      }
      const std::string buf = text + std::string(simdjson::SIMDJSON_PADDING, '\0');
      engine::reader reader;
      reader.feed(buf.data(), text.size(), true, f.filename().string(), sink);
    }
    simdjson::dom::parser parser;
    std::uint64_t line = 1;
    for (const std::string& j : sink.json) {
      s.lines.push_back(engine::reader::framed_document{s.text.size(), j.size(), line++});
      s.text += j;
      s.text += '\n';
    }
    s.text.append(simdjson::SIMDJSON_PADDING, '\0');
    for (const std::string& j : sink.json) {
      auto e = std::make_unique<stored_event>();
      simdjson::dom::element root;
      if (parser.parse_into_document(e->doc, j).get(root) != simdjson::SUCCESS ||
          !engine::decode_event(root, e->ev).ok()) {
        continue;
      }
      s.events.push_back(std::move(e));
    }
    return s;
  }();
  return stream;
}

// --- rules ------------------------------------------------------------------------------------

// Values seen in the perfspec capture (so that some synthetic rules match) ...
const std::vector<std::string> real_namespaces = {
    "kube-system", "kube-prometheus-stack", "argo-cd", "prometheus", "ingress-nginx", "loki",
    "cert-manager", "default", "redis", "kube-node-lease", "kubernetes-dashboard"};
const std::vector<std::string> real_resources = {
    "secrets", "leases", "services", "pods", "events", "configmaps", "serviceaccounts", "nodes",
    "endpointslices", "deployments", "persistentvolumes"};
const std::vector<std::string> real_users = {
    "kubernetes-admin",
    "system:serviceaccount:kube-prometheus-stack:my-kube-prometheus-stack-operator",
    "system:serviceaccount:cert-manager:my-cert-manager-cainjector",
    "system:kube-controller-manager",
    "system:apiserver",
    "system:serviceaccount:kube-system:resourcequota-controller",
    "system:kube-scheduler",
    "system:serviceaccount:kube-system:generic-garbage-collector"};
const std::vector<std::string> verbs = {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"};

// Deterministic pseudo-random choice per (rule, slot).
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

struct picker {
  std::uint64_t rule;
  std::uint64_t slot = 0;
  std::uint64_t next() { return mix(rule * 131 + ++slot); }
  bool real() { return next() % 2 == 0; }
  const std::string& from(const std::vector<std::string>& v) { return v[next() % v.size()]; }
  std::string ns() { return real() ? from(real_namespaces) : "tenant-" + std::to_string(rule); }
  std::string resource() { return real() ? from(real_resources) : "widgets" + std::to_string(rule) + ".example.com"; }
  std::string user() {
    return real() ? from(real_users) : "system:serviceaccount:tenant-" + std::to_string(rule) + ":deployer";
  }
  std::string verb_list(std::size_t n) {
    std::string out;
    const std::size_t start = next() % verbs.size();
    for (std::size_t k = 0; k < n; ++k) {
      out += (k != 0 ? ", '" : "'") + verbs[(start + k) % verbs.size()] + "'";
    }
    return out;
  }
};

// The filter (and bucket keys) of synthetic rule `i`, in one of eight shapes.
std::string synthetic_rule(std::size_t i) {
  picker p{i};
  std::string filter;
  std::string bucket = "type: trigger\n";
  switch (i % 8) {
    case 0: // namespaced secret reads by anyone but the namespace's own service accounts
    {
      const std::string ns = p.ns();
      filter = "evt.Meta.log_type == 'k8s-audit'\n  && evt.Meta.namespace == '" + ns +
               "'\n  && evt.Unmarshaled.k8s_audit.objectRef?.resource in ['secrets', 'configmaps']" +
               "\n  && evt.Unmarshaled.k8s_audit.verb in [" + p.verb_list(3) + "]" +
               "\n  && !(evt.Meta.user startsWith 'system:serviceaccount:" + ns + ":')";
      break;
    }
    case 1: // one user deleting one kind of object
      filter = "evt.Meta.user == '" + p.user() + "'\n  && evt.Unmarshaled.k8s_audit.verb in ['delete', 'deletecollection']" +
               "\n  && evt.Unmarshaled.k8s_audit.objectRef?.resource == '" + p.resource() + "'";
      break;
    case 2: // a namespace's service accounts writing a resource
      filter = "evt.Meta.log_type == 'k8s-audit'\n  && evt.Meta.user startsWith 'system:serviceaccount:" + p.ns() + ":'" +
               "\n  && evt.Unmarshaled.k8s_audit.objectRef?.resource == '" + p.resource() + "'" +
               "\n  && evt.Unmarshaled.k8s_audit.verb != 'get'";
      break;
    case 3: // request URI under a namespace's collection
      filter = "evt.Meta.log_type == 'k8s-audit'\n  && evt.Unmarshaled.k8s_audit.requestURI contains '/namespaces/" + p.ns() +
               "/" + p.resource() + "'\n  && evt.Unmarshaled.k8s_audit.verb in [" + p.verb_list(3) + "]";
      break;
    case 4: // deletions per user in a namespace: a leaky bucket
      filter = "evt.Meta.log_type == 'k8s-audit'\n  && evt.Meta.namespace == '" + p.ns() +
               "'\n  && evt.Unmarshaled.k8s_audit.verb in ['delete', 'deletecollection']";
      bucket = "type: leaky\ngroupby: evt.Meta.user\ncapacity: 10\nleakspeed: 1m\nblackhole: 5m\n";
      break;
    case 5: // a user's refused or missing requests (a non-lifted tail)
      filter = "evt.Meta.user startsWith '" + p.user().substr(0, 20) + "'" +
               "\n  && evt.Unmarshaled.k8s_audit.objectRef?.resource == '" + p.resource() + "'" +
               "\n  && evt.Unmarshaled.k8s_audit.responseStatus?.code in [403, 404]";
      break;
    case 6: // authorizer refusals in a namespace
      filter = "evt.Meta.log_type == 'k8s-audit'\n  && evt.Unmarshaled.k8s_audit.annotations[\"authorization.k8s.io/decision\"] == 'forbid'" +
               std::string("\n  && evt.Meta.namespace == '") + p.ns() + "'";
      break;
    default: // objects of a naming pattern touched by a verb
    {
      const std::string suffix = p.real() ? "-operator" : "-tenant" + std::to_string(i);
      filter = "evt.Meta.resource_name endsWith '" + suffix + "'\n  && evt.Unmarshaled.k8s_audit.verb == '" +
               verbs[p.next() % verbs.size()] + "'\n  && evt.Meta.user != 'system:apiserver'";
      break;
    }
  }
  char name[64];
  std::snprintf(name, sizeof name, "bench/synthetic-%04zu", i);
  std::string yaml = bucket;
  yaml += "name: " + std::string(name) + "\ndescription: synthetic rule " + std::to_string(i) + "\n";
  yaml += "filter: |\n  " + filter + "\n";
  yaml += "labels:\n  remediation: false\n  service: k8s\n";
  return yaml;
}

struct built_rules {
  std::shared_ptr<rules::ruleset> rs;
  double build_ms = 0;
  std::string error;
};

// The shipped pack plus total - 7 synthetic rules; built once per size.
const built_rules& rule_set(std::size_t total) {
  static std::map<std::size_t, built_rules> cache;
  auto it = cache.find(total);
  if (it != cache.end()) {
    return it->second;
  }
  built_rules& b = cache[total];
  const auto t0 = std::chrono::steady_clock::now();
  rules::load_result loaded;
  rules::load_builtin_scenarios(loaded);
  std::string yaml;
  for (std::size_t i = loaded.scenarios.size(); i < total; ++i) {
    yaml += (yaml.empty() ? "" : "---\n") + synthetic_rule(i);
  }
  if (!yaml.empty()) {
    rules::load_scenarios_from_text(yaml, "bench-synthetic.yaml", loaded);
  }
  if (!loaded.ok()) {
    b.error = loaded.errors[0].to_string();
    return b;
  }
  b.rs = std::make_shared<rules::ruleset>();
  b.rs->scenarios = std::move(loaded.scenarios);
  auto m = rules::matcher::build(b.rs->scenarios);
  if (auto* err = std::get_if<std::string>(&m)) {
    b.error = *err;
    b.rs.reset();
    return b;
  }
  b.rs->match = std::make_unique<rules::matcher>(std::move(std::get<rules::matcher>(m)));
  b.build_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return b;
}

// --- benchmark ---------------------------------------------------------------------------------

void BM_match(benchmark::State& state) {
  const std::size_t total = static_cast<std::size_t>(state.range(0));
  const built_rules& b = rule_set(total);
  if (!b.rs) {
    state.SkipWithError(("rule set did not build: " + b.error).c_str());
    return;
  }
  const rules::ruleset& rs = *b.rs;
  if (rs.scenarios.size() != total) {
    state.SkipWithError("rule set has the wrong size");
    return;
  }
  const event_stream& stream = events();
  if (stream.events.size() < 100) {
    state.SkipWithError("no events to match");
    return;
  }
  state.SetLabel(stream.description);
  const engine::source_info source{"file", "bench", ""};
  rules::matcher::context ctx(*rs.match);
  rules::event_env env;
  engine::event_meta meta;
  std::vector<std::uint32_t> matched;
  matched.reserve(rs.scenarios.size());
  std::size_t events_done = 0, matches = 0, synthetic_matches = 0;
  const std::uint32_t shipped = 7;
  for (auto _ : state) {
    for (const auto& e : stream.events) {
      engine::build_meta(e->ev, source, meta);
      env.reset(&e->ev, &meta);
      rs.match->match(ctx, env, matched);
      matches += matched.size();
      if (!matched.empty() && matched.back() >= shipped) {
        ++synthetic_matches;
      }
    }
    events_done += stream.events.size();
  }
  // Real work: every rule evaluated on every event, and matches found.
  std::uint64_t evaluations = 0;
  for (const auto& s : ctx.stats()) {
    evaluations += s.evaluations;
  }
  if (evaluations != static_cast<std::uint64_t>(events_done) * total || matches == 0 ||
      (total >= 100 && synthetic_matches == 0)) {
    state.SkipWithError("no real work: evaluations or matches missing");
    return;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(events_done));
  // Seconds per event (the console shows it as ns/us; summary.json converts to ns).
  state.counters["time_per_event"] =
      benchmark::Counter(static_cast<double>(events_done), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["rules"] = static_cast<double>(total);
  state.counters["lifted_tests"] = static_cast<double>(rs.match->lifted_tests());
  state.counters["fields"] = static_cast<double>(rs.match->string_fields());
  state.counters["hs_dbs"] = static_cast<double>(rs.match->hyperscan_databases());
  state.counters["matches_per_1k_events"] = 1000.0 * static_cast<double>(matches) / static_cast<double>(events_done);
  state.counters["events_in_stream"] = static_cast<double>(stream.events.size());
  state.counters["build_ms"] = b.build_ms;
  if (std::getenv("VIGIL_BENCH_RULE_STATS") != nullptr) {
    for (std::size_t i = 0; i < total; ++i) {
      std::fprintf(stderr, "%-40s %10llu matches\n", rs.scenarios[i].name.c_str(),
                   static_cast<unsigned long long>(ctx.stats()[i].matches));
    }
  }
}

// The worker's whole path per event, with the events hot in cache as they are in a replay: the
// reader parses and decodes them (runs of lines), then meta and the matcher. Arg 0: no matching
// (the parse + decode + meta baseline). The cold BM_match above walks 16,658 events parsed in
// advance, so its nanoseconds are mostly cache misses; here the difference between rule counts is
// the matching itself.
class matching_sink final : public engine::event_sink {
 public:
  explicit matching_sink(const rules::ruleset* rs) : rs_(rs) {
    if (rs_ != nullptr) {
      ctx_ = std::make_unique<rules::matcher::context>(*rs_->match);
    }
  }
  void on_event(const engine::audit_event& ev, const engine::position&) override {
    engine::build_meta(ev, source_, meta_);
    ++events;
    if (rs_ != nullptr) {
      env_.reset(&ev, &meta_);
      rs_->match->match(*ctx_, env_, matched_);
      matches += matched_.size();
    }
  }
  void on_error(const engine::position&, const engine::failure&) override { ++errors; }
  std::size_t events = 0, matches = 0, errors = 0;

 private:
  const rules::ruleset* rs_;
  std::unique_ptr<rules::matcher::context> ctx_;
  const engine::source_info source_{"file", "bench", ""};
  rules::event_env env_;
  engine::event_meta meta_;
  std::vector<std::uint32_t> matched_;
};

void BM_parse_and_match(benchmark::State& state) {
  const std::size_t total = static_cast<std::size_t>(state.range(0));
  const rules::ruleset* rs = nullptr;
  if (total > 0) {
    const built_rules& b = rule_set(total);
    if (!b.rs) {
      state.SkipWithError(("rule set did not build: " + b.error).c_str());
      return;
    }
    rs = b.rs.get();
  }
  const event_stream& stream = events();
  if (stream.lines.size() < 100) {
    state.SkipWithError("no events to match");
    return;
  }
  state.SetLabel(stream.description);
  engine::reader reader;
  matching_sink sink(rs);
  for (auto _ : state) {
    reader.feed_documents(stream.text.data(), stream.lines, "bench", sink);
  }
  // Real work: every event decoded (and matched, with rules).
  if (sink.errors != 0 || sink.events == 0 || (rs != nullptr && sink.matches == 0)) {
    state.SkipWithError("no real work: decode errors, or no matches");
    return;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(sink.events));
  state.counters["time_per_event"] =
      benchmark::Counter(static_cast<double>(sink.events), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["rules"] = static_cast<double>(total);
}

} // namespace

// Argument: total rules (7 = the shipped pack alone).
BENCHMARK(BM_match)->Arg(7)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_parse_and_match)->Arg(0)->Arg(7)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

// `matcher_bench --write-rules DIR` writes the synthetic part of each rule set as a scenario file,
// DIR/synthetic-<N>.yaml (N - 7 rules), and exits: with the shipped rules (rules/crowdsecurity) it
// gives `vigil replay` the same N rules (bench/profile/run.sh --curve counts their cost).
int main(int argc, char** argv) {
  if (argc == 3 && std::string_view(argv[1]) == "--write-rules") {
    const std::size_t shipped = [] {
      rules::load_result loaded;
      rules::load_builtin_scenarios(loaded);
      return loaded.scenarios.size();
    }();
    for (const std::size_t total : {std::size_t{10}, std::size_t{100}, std::size_t{1000}}) {
      const fs::path path = fs::path(argv[2]) / ("synthetic-" + std::to_string(total) + ".yaml");
      std::ofstream out(path);
      for (std::size_t i = shipped; i < total; ++i) {
        out << (i == shipped ? "" : "---\n") << synthetic_rule(i);
      }
      if (!out.flush()) {
        std::fprintf(stderr, "matcher_bench: cannot write %s\n", path.c_str());
        return 1;
      }
    }
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
