// `vigil rules list`, `vigil rules test DIR`, `vigil explain FILE`.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "engine/event/reader.h"
#include "engine/pipeline/pipeline.h"
#include "engine/parse/meta.h"
#include "io/file/file_source.h"
#include "io/file/replay_source.h"
#include "rules/matcher/explain.h"
#include "rules/matcher/ruleset.h"
#include "rules/scenario/event_env.h"
#include "tools/vigil/commands.h"

namespace vigil::cli {

namespace {

namespace fs = std::filesystem;

std::shared_ptr<const rules::ruleset> load_or_report(const std::vector<std::string>& paths, const char* cmd) {
  auto loaded = rules::load_ruleset(paths);
  if (auto* errors = std::get_if<std::vector<rules::load_error>>(&loaded)) {
    for (const auto& e : *errors) {
      std::fprintf(stderr, "%s\n", e.to_string().c_str());
    }
    std::fprintf(stderr, "vigil %s: %zu error(s) in the rules\n", cmd, errors->size());
    return nullptr;
  }
  return std::get<std::shared_ptr<const rules::ruleset>>(loaded);
}

const char* type_name(engine::bucket_type t) {
  switch (t) {
    case engine::bucket_type::trigger:
      return "trigger";
    case engine::bucket_type::leaky:
      return "leaky";
    case engine::bucket_type::counter:
      return "counter";
  }
  return "?";
}

// ---------- rules list ----------

struct list_options {
  std::vector<std::string> rules;
  std::string output = "table";
};

int run_list(const list_options& o) {
  auto rs = load_or_report(o.rules, "rules list");
  if (!rs) {
    return 2;
  }
  if (o.output == "json") {
    std::string out = "[";
    for (std::size_t i = 0; i < rs->scenarios.size(); ++i) {
      const auto& s = rs->scenarios[i];
      if (i > 0) {
        out += ',';
      }
      out += "{\"name\":";
      engine::append_json_string(out, s.name);
      out += ",\"type\":";
      engine::append_json_string(out, type_name(s.bucket.type));
      out += ",\"description\":";
      engine::append_json_string(out, s.description);
      out += ",\"file\":";
      engine::append_json_string(out, s.file);
      out += ",\"capacity\":" + std::to_string(s.bucket.capacity) + ",\"leakspeed\":";
      engine::append_json_string(out, s.leakspeed_text);
      out += ",\"groupby\":";
      engine::append_json_string(out, s.groupby ? s.groupby->source() : std::string_view());
      out += ",\"remediation\":";
      out += s.remediation ? "true" : "false";
      out += ",\"labels\":" + s.labels_json + "}";
    }
    out += "]\n";
    std::fputs(out.c_str(), stdout);
    return 0;
  }
  std::printf("%-52s %-8s %-9s %-10s %s\n", "NAME", "TYPE", "CAPACITY", "LEAKSPEED", "FILE");
  for (const auto& s : rs->scenarios) {
    std::printf("%-52s %-8s %-9lld %-10s %s\n", s.name.c_str(), type_name(s.bucket.type),
                static_cast<long long>(s.bucket.capacity), s.leakspeed_text.c_str(), s.file.c_str());
  }
  std::printf("%zu rules, %zu lifted tests on %zu string fields (%zu of them scanned by hyperscan, the others "
              "looked up and compared; integers compared)\n",
              rs->scenarios.size(), rs->match->lifted_tests(), rs->match->string_fields(),
              rs->match->hyperscan_databases());
  for (const auto& [type, m] : rs->by_source) {
    // The filters read evt.Meta.datasource_type: events of each kind of source get a matcher
    // that knows it (only the live branch of each filter is read).
    std::printf("  for %s sources: %zu lifted tests on %zu string fields (%zu scanned), %zu rules decided by them "
                "alone\n",
                type.c_str(), m->lifted_tests(), m->string_fields(), m->hyperscan_databases(),
                m->rules_decided_by_tests());
  }
  return 0;
}

// ---------- explain ----------

struct explain_options {
  std::vector<std::string> files;
  std::vector<std::string> rules;
  std::string source_type = "file";
  bool all = false;
};

class explain_sink final : public engine::event_sink {
 public:
  explain_sink(const rules::ruleset& rs, const explain_options& o, const std::string& file)
      : rs_(rs), o_(o), file_(file) {}

  void on_event(const engine::audit_event& ev, const engine::position& where) override {
    engine::build_meta(ev, engine::source_info{o_.source_type, file_, ""}, meta_);
    env_.reset(&ev, &meta_);
    std::printf("%s:%llu%s: %.*s %.*s%s%.*s by %.*s from %.*s\n", file_.c_str(),
                static_cast<unsigned long long>(where.line),
                where.item >= 0 ? (" item " + std::to_string(where.item)).c_str() : "", static_cast<int>(ev.verb.size()),
                ev.verb.data(), static_cast<int>(ev.object.resource.size()), ev.object.resource.data(),
                ev.object.subresource.empty() ? "" : "/", static_cast<int>(ev.object.subresource.size()),
                ev.object.subresource.data(), static_cast<int>(ev.user.username.size()), ev.user.username.data(),
                static_cast<int>(ev.source_ip.size()), ev.source_ip.data());
    for (const auto& sc : rs_.scenarios) {
      const rules::explanation e = rules::explain(*sc.filter, env_);
      if (e.matched) {
        std::printf("  MATCH  %s\n", sc.name.c_str());
        continue;
      }
      if (!o_.all && e.error == expr::eval_error::none) {
        continue;
      }
      std::printf("  %s  %s\n", e.error == expr::eval_error::none ? "miss " : "error", sc.name.c_str());
      for (const auto& [text, what] : e.culprits) {
        std::printf("         %s  <- %s\n", what.c_str(), text.c_str());
      }
    }
  }

  void on_error(const engine::position& where, const engine::failure& why) override {
    std::printf("%s:%llu: %s\n", file_.c_str(), static_cast<unsigned long long>(where.line),
                engine::describe(why).c_str());
  }

 private:
  const rules::ruleset& rs_;
  const explain_options& o_;
  const std::string& file_;
  engine::event_meta meta_;
  rules::event_env env_;
};

int run_explain(const explain_options& o) {
  auto rs = load_or_report(o.rules, "explain");
  if (!rs) {
    return 2;
  }
  int status = 0;
  engine::reader reader;
  for (const std::string& f : o.files) {
    explain_sink sink(*rs, o, f);
    const auto r = io::read_file(f, reader, sink);
    if (!r.ok) {
      std::fprintf(stderr, "vigil explain: %s\n", r.error.c_str());
      status = 2;
    }
  }
  return status;
}

// ---------- rules test ----------

struct test_options {
  std::string dir;
  std::vector<std::string> rules;
};

class collecting_output final : public pipeline::output_handler {
 public:
  void on_alert(const engine::alert& a) override { alerts.push_back(a); }
  void on_error(const std::string&) override { ++errors; }
  std::vector<engine::alert> alerts;
  std::size_t errors = 0;
};

// One fixture folder: input files (*.json, *.jsonl, *.log) and expect.yaml:
//   source_type: file            # optional: file (default) or k8s-audit
//   rules: [path, ...]           # optional, relative to the folder; default: --rules or the pack
//   malformed: 0                 # optional: expected malformed events
//   alerts:                      # exactly these alerts, in any order
//     - scenario: crowdsecurity/k8s-audit-pod-exec
//       source_ip: 192.168.49.1  # optional checks: source_ip, events_count, remediation, user,
//       events_count: 1          # namespace, resource_name, kind, and meta (of the last event)
std::vector<std::string> run_case(const fs::path& dir, const test_options& o) {
  std::vector<std::string> problems;
  YAML::Node expect;
  try {
    expect = YAML::LoadFile((dir / "expect.yaml").string());
  } catch (const YAML::Exception& e) {
    return {"expect.yaml: " + std::string(e.what())};
  }
  std::vector<std::string> rule_paths = o.rules;
  if (expect["rules"]) {
    rule_paths.clear();
    for (const auto& r : expect["rules"]) {
      rule_paths.push_back((dir / r.as<std::string>()).string());
    }
  }
  auto rs = load_or_report(rule_paths, "rules test");
  if (!rs) {
    return {"rules failed to load"};
  }
  const std::string source_type = expect["source_type"] ? expect["source_type"].as<std::string>() : "file";
  collecting_output out;
  pipeline::options po;
  po.workers = 1;
  pipeline::pipeline pl(rs, po, out);
  std::vector<fs::path> inputs;
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto ext = e.path().extension();
    if (e.is_regular_file() && (ext == ".json" || ext == ".jsonl" || ext == ".log")) {
      inputs.push_back(e.path());
    }
  }
  std::sort(inputs.begin(), inputs.end());
  if (inputs.empty()) {
    return {"no input file (*.json, *.jsonl, *.log)"};
  }
  for (const auto& in : inputs) {
    io::replay_file(io::replay_source{in.string(), in.filename().string(), "", source_type}, pl);
  }
  const pipeline::totals t = pl.finish();
  if (expect["malformed"] && t.malformed != expect["malformed"].as<std::uint64_t>()) {
    problems.push_back("malformed events: got " + std::to_string(t.malformed) + ", want " +
                       expect["malformed"].as<std::string>());
  }
  std::vector<bool> used(out.alerts.size(), false);
  const YAML::Node wanted = expect["alerts"];
  const std::size_t n_wanted = wanted ? wanted.size() : 0;
  for (std::size_t w = 0; w < n_wanted; ++w) {
    const YAML::Node want = wanted[w];
    bool found = false;
    for (std::size_t i = 0; i < out.alerts.size() && !found; ++i) {
      const engine::alert& a = out.alerts[i];
      if (used[i] || a.scenario != want["scenario"].as<std::string>()) {
        continue;
      }
      auto eq = [&](const char* key, const std::string& got) { return !want[key] || want[key].as<std::string>() == got; };
      bool ok = eq("source_ip", a.source_ip) && eq("user", a.user) && eq("namespace", a.namespace_) &&
                eq("resource_name", a.resource_name) && eq("kind", a.kind) &&
                eq("events_count", std::to_string(a.events_count)) &&
                eq("remediation", a.remediation ? "true" : "false");
      if (ok && want["meta"] && !a.events.empty()) {
        for (const auto& kv : want["meta"]) {
          ok = ok && a.events.back().get(kv.first.as<std::string>()) == kv.second.as<std::string>();
        }
      }
      if (ok) {
        used[i] = found = true;
      }
    }
    if (!found) {
      problems.push_back("missing alert #" + std::to_string(w + 1) + " (" + want["scenario"].as<std::string>() + ")");
    }
  }
  for (std::size_t i = 0; i < out.alerts.size(); ++i) {
    if (!used[i]) {
      problems.push_back("unexpected alert: " + out.alerts[i].message);
    }
  }
  return problems;
}

int run_test(const test_options& o) {
  std::vector<fs::path> cases;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(o.dir, ec)) {
    if (e.is_directory() && fs::exists(e.path() / "expect.yaml")) {
      cases.push_back(e.path());
    }
  }
  if (ec) {
    std::fprintf(stderr, "vigil rules test: %s: %s\n", o.dir.c_str(), ec.message().c_str());
    return 2;
  }
  std::sort(cases.begin(), cases.end());
  std::size_t failed = 0;
  for (const auto& c : cases) {
    const auto problems = run_case(c, o);
    std::printf("%s %s\n", problems.empty() ? "PASS" : "FAIL", c.filename().c_str());
    for (const auto& p : problems) {
      std::printf("     %s\n", p.c_str());
    }
    failed += problems.empty() ? 0 : 1;
  }
  std::printf("%zu passed, %zu failed\n", cases.size() - failed, failed);
  if (cases.empty()) {
    std::fprintf(stderr, "vigil rules test: no case folder (with expect.yaml) under %s\n", o.dir.c_str());
    return 2;
  }
  return failed == 0 ? 0 : 1;
}

} // namespace

command add_rules(CLI::App& app) {
  CLI::App* rules = app.add_subcommand("rules", "List the loaded rules or run rule fixtures");
  rules->require_subcommand(1);
  auto lo = std::make_shared<list_options>();
  CLI::App* list = rules->add_subcommand("list", "List the loaded scenarios");
  list->add_option("--rules", lo->rules, "Scenario file or directory (repeatable); default: the shipped rules");
  list->add_option("-o,--output", lo->output, "table or json")->check(CLI::IsMember({"table", "json"}));
  auto to = std::make_shared<test_options>();
  CLI::App* test = rules->add_subcommand("test", "Run fixture folders (input events + expect.yaml)");
  test->add_option("dir", to->dir, "Folder holding one sub-folder per case")->required();
  test->add_option("--rules", to->rules, "Scenario file or directory (repeatable); default: the shipped rules");
  return [list, lo, to] { return list->parsed() ? run_list(*lo) : run_test(*to); };
}

command add_explain(CLI::App& app) {
  auto o = std::make_shared<explain_options>();
  CLI::App* sub = app.add_subcommand("explain", "Show, for each event, which rules matched and why the others did not");
  sub->add_option("files", o->files, "Audit files; - for stdin")->required();
  sub->add_option("--rules", o->rules, "Scenario file or directory (repeatable); default: the shipped rules");
  sub->add_option("--source-type", o->source_type, "datasource_type of the events: file or k8s-audit")
      ->check(CLI::IsMember({"file", "k8s-audit"}));
  sub->add_flag("--all", o->all, "Also explain the rules that did not match (default: matches and errors only)");
  return [o] { return run_explain(*o); };
}

} // namespace vigil::cli
