#include "rules/scenario/scenario.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "engine/config/yaml_keys.h"
#include "engine/alert/alert.h"
#include "engine/event/duration.h"
#include "rules/scenario/event_env.h"

namespace vigil::rules {

namespace {

namespace fs = std::filesystem;

const std::set<std::string, std::less<>> known_keys = {
    "type",     "name",      "description", "filter",     "groupby", "distinct", "capacity",
    "leakspeed", "duration", "blackhole",   "cache_size", "reprocess", "scope",  "labels",
    // informational, accepted as CrowdSec does
    "debug", "format", "references", "version", "author",
};
const std::set<std::string, std::less<>> unsupported_keys = {
    "cancel_on", "overflow_filter", "condition", "bayesian_prior", "bayesian_threshold", "bayesian_conditions", "data",
};

// Collects the errors of one document with positions.
struct context {
  const std::string& file;
  const std::string& text;
  load_result& out;
  bool failed = false;

  void error(const YAML::Mark& m, std::string message) {
    failed = true;
    out.errors.push_back(load_error{file, static_cast<std::uint32_t>(m.line + 1),
                                    static_cast<std::uint32_t>(m.column + 1), std::move(message)});
  }
};

// Where the text of a scalar starts in the file, to turn an expression's own line:column into the
// file's. Block scalars (| or >) start on the next line at their indentation; quoted scalars one
// column after the quote.
struct scalar_origin {
  std::uint32_t line;   // 1-based file line of the expression's first line
  std::uint32_t column; // 1-based file column of the expression's first character
  bool block;
  std::uint32_t indent; // block scalars: column offset of every line
};

scalar_origin locate_scalar(const std::string& text, const YAML::Mark& m) {
  scalar_origin o{static_cast<std::uint32_t>(m.line + 1), static_cast<std::uint32_t>(m.column + 1), false, 0};
  if (m.pos < 0 || static_cast<std::size_t>(m.pos) >= text.size()) {
    return o;
  }
  const auto pos = static_cast<std::size_t>(m.pos);
  const char c = text[pos];
  if (c == '"' || c == '\'') {
    ++o.column;
  } else if (c == '|' || c == '>') {
    // The header: chomping (+ or -) and an indentation digit, in either order.
    std::uint32_t indicator = 0;
    for (std::size_t h = pos + 1; h < text.size() && (text[h] == '+' || text[h] == '-' || (text[h] >= '1' && text[h] <= '9'));
         ++h) {
      indicator = text[h] >= '1' && text[h] <= '9' ? static_cast<std::uint32_t>(text[h] - '0') : indicator;
    }
    std::size_t p = text.find('\n', pos);
    if (p == std::string::npos) {
      return o;
    }
    o.block = true;
    o.line = static_cast<std::uint32_t>(m.line + 2); // the content's first line, blank or not
    if (indicator != 0) {
      // Content indentation is the parent's plus the digit: the parent's is that of the line
      // holding the key.
      const std::size_t bol = text.rfind('\n', pos) == std::string::npos ? 0 : text.rfind('\n', pos) + 1;
      std::uint32_t parent = 0;
      while (bol + parent < pos && text[bol + parent] == ' ') {
        ++parent;
      }
      o.indent = parent + indicator;
    } else {
      // Otherwise that of the first line that is not blank.
      while (p != std::string::npos && p + 1 < text.size()) {
        std::size_t q = p + 1;
        std::uint32_t indent = 0;
        while (q < text.size() && text[q] == ' ') {
          ++indent;
          ++q;
        }
        if (q < text.size() && text[q] != '\n' && text[q] != '\r') {
          o.indent = indent;
          break;
        }
        p = text.find('\n', q);
      }
    }
    o.column = o.indent + 1;
  }
  return o;
}

// True if every path `p` reads is a meta key or a constant of the evt schema (event_env.h): what
// an expression can be given on a bucket's kept events, whose audit event is gone.
bool reads_meta_only(const expr::program& p) {
  for (const expr::node& n : p.nodes()) {
    if (n.kind != expr::node_kind::load) {
      continue;
    }
    const bool meta = n.slot < engine::meta_key_count;
    const bool constant = n.slot == slot_empty_string || n.slot == slot_nil || n.slot == slot_log_type_label ||
                          n.slot == slot_false || n.slot == slot_log_type || n.slot == slot_log_word;
    if (!meta && !constant) {
      return false;
    }
  }
  return true;
}

std::optional<expr::program> compile_expr(context& ctx, const YAML::Node& node, const char* key) {
  static const event_schema schema;
  const std::string src = node.as<std::string>();
  auto result = expr::compile(src, schema);
  if (auto* p = std::get_if<expr::program>(&result)) {
    return std::move(*p);
  }
  const scalar_origin o = locate_scalar(ctx.text, node.Mark());
  // Positions inside the expression map onto the file where its text is there as it is: a
  // literal block (|), or a plain or quoted scalar whose file bytes are the expression's (no
  // escape, no folded line). Otherwise (a > block, "a \" b", a scalar over several lines) every
  // error points at the value's start; the message still gives the expression's own position.
  const auto pos = static_cast<std::size_t>(node.Mark().pos);
  const char style = pos < ctx.text.size() ? ctx.text[pos] : ' ';
  const bool quoted = style == '"' || style == '\'';
  const bool exact = o.block ? style == '|'
                             : pos + (quoted ? 1 : 0) <= ctx.text.size() &&
                                   std::string_view(ctx.text).substr(pos + (quoted ? 1 : 0), src.size()) == src &&
                                   src.find('\n') == std::string::npos;
  // Where the text really ends: an "unexpected end" found past trailing blank lines is shown
  // just after the last character written.
  std::uint32_t last_line = 1, last_col = 0, cur_line = 1, cur_col = 0;
  for (const char c : src) {
    if (c == '\n') {
      ++cur_line;
      cur_col = 0;
      continue;
    }
    ++cur_col;
    if (c != ' ' && c != '\t' && c != '\r') {
      last_line = cur_line;
      last_col = cur_col;
    }
  }
  for (expr::diagnostic d : std::get<std::vector<expr::diagnostic>>(result)) {
    if (d.line > last_line || (d.line == last_line && d.column > last_col + 1)) {
      d.line = last_line;
      d.column = last_col + 1;
    }
    std::uint32_t line = o.line + (d.line > 0 ? d.line - 1 : 0);
    std::uint32_t column = d.line <= 1 ? o.column + (d.column > 0 ? d.column - 1 : 0) : o.indent + d.column;
    if (!exact) {
      line = static_cast<std::uint32_t>(node.Mark().line + 1);
      column = static_cast<std::uint32_t>(node.Mark().column + 1);
    }
    ctx.failed = true;
    ctx.out.errors.push_back(load_error{ctx.file, line, column,
                                        std::string(key) + ": " + d.message + " (expression line " +
                                            std::to_string(d.line) + ", column " + std::to_string(d.column) +
                                            ")"});
  }
  return std::nullopt;
}

std::optional<std::string> scalar(context& ctx, const YAML::Node& node, const char* key) {
  if (!node.IsScalar()) {
    ctx.error(node.Mark(), std::string(key) + ": expected a string");
    return std::nullopt;
  }
  return node.as<std::string>();
}

std::optional<engine::unix_nanos> duration(context& ctx, const YAML::Node& node, const char* key) {
  auto text = scalar(ctx, node, key);
  if (!text) {
    return std::nullopt;
  }
  auto d = engine::parse_go_duration(*text);
  if (!d || *d < 0) {
    ctx.error(node.Mark(), std::string(key) + ": invalid duration '" + *text + "' (Go syntax: 10s, 1m, 1h30m, 500ms)");
    return std::nullopt;
  }
  return d;
}

std::optional<std::int64_t> integer(context& ctx, const YAML::Node& node, const char* key) {
  std::int64_t v;
  if (!node.IsScalar() || !YAML::convert<std::int64_t>::decode(node, v)) {
    ctx.error(node.Mark(), std::string(key) + ": expected an integer");
    return std::nullopt;
  }
  return v;
}

std::optional<bool> boolean(context& ctx, const YAML::Node& node, const char* key) {
  bool v;
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, v)) {
    ctx.error(node.Mark(), std::string(key) + ": expected true or false");
    return std::nullopt;
  }
  return v;
}

// YAML labels to JSON: scalars that read as booleans or integers stay typed (remediation: true,
// confidence: 3), everything else is a string; sequences and maps recurse.
void yaml_to_json(std::string& out, const YAML::Node& n) {
  if (n.IsSequence()) {
    out += '[';
    bool first = true;
    for (const auto& item : n) {
      if (!first) {
        out += ',';
      }
      first = false;
      yaml_to_json(out, item);
    }
    out += ']';
  } else if (n.IsMap()) {
    out += '{';
    bool first = true;
    for (const auto& kv : n) {
      if (!first) {
        out += ',';
      }
      first = false;
      engine::append_json_string(out, kv.first.as<std::string>());
      out += ':';
      yaml_to_json(out, kv.second);
    }
    out += '}';
  } else if (n.IsNull()) {
    out += "null";
  } else {
    const std::string s = n.as<std::string>();
    bool b;
    std::int64_t i;
    if (n.Tag() != "!" && (s == "true" || s == "false")) {
      YAML::convert<bool>::decode(n, b);
      out += b ? "true" : "false";
    } else if (n.Tag() != "!" && YAML::convert<std::int64_t>::decode(n, i) && !s.empty() &&
               s.find_first_not_of("-0123456789") == std::string::npos) {
      out += std::to_string(i);
    } else {
      engine::append_json_string(out, s);
    }
  }
}

void load_document(context& ctx, const YAML::Node& doc) {
  if (doc.IsNull()) {
    return; // an empty document (e.g. a trailing ---)
  }
  if (!doc.IsMap()) {
    ctx.error(doc.Mark(), "a scenario must be a YAML mapping");
    return;
  }
  scenario sc;
  sc.file = ctx.file;
  sc.line = static_cast<std::uint32_t>(doc.Mark().line + 1);
  for (const auto& kv : doc) {
    const std::string key = kv.first.as<std::string>();
    if (unsupported_keys.count(key) != 0) {
      ctx.error(kv.first.Mark(), "'" + key + "' is not supported by vigil yet");
    } else if (known_keys.count(key) == 0) {
      ctx.error(kv.first.Mark(), "unknown key '" + key + "'");
    }
  }
  auto get = [&](const char* key) { return doc[key]; };

  std::string type = "leaky";
  if (auto n = get("type")) {
    type = scalar(ctx, n, "type").value_or("");
  } else {
    ctx.error(doc.Mark(), "type is required (trigger, leaky or counter)");
  }
  if (auto n = get("name")) {
    sc.name = scalar(ctx, n, "name").value_or("");
  }
  if (sc.name.empty()) {
    ctx.error(doc.Mark(), "bucket must have name");
  }
  sc.bucket.name = sc.name;
  if (auto n = get("description")) {
    sc.description = scalar(ctx, n, "description").value_or("");
  }
  if (sc.description.empty()) {
    ctx.error(doc.Mark(), "description is mandatory");
  }
  if (auto n = get("capacity")) {
    sc.bucket.capacity = integer(ctx, n, "capacity").value_or(0);
  }
  if (auto n = get("leakspeed")) {
    sc.bucket.leakspeed = duration(ctx, n, "leakspeed").value_or(0);
  }
  if (auto n = get("duration")) {
    sc.bucket.duration = duration(ctx, n, "duration").value_or(0);
  }
  if (auto n = get("blackhole")) {
    sc.bucket.blackhole = duration(ctx, n, "blackhole").value_or(0);
  }
  if (auto n = get("cache_size")) {
    const std::int64_t c = integer(ctx, n, "cache_size").value_or(0);
    if (c < 0) {
      ctx.error(n.Mark(), "cache_size: must be >= 0");
    }
    // A cache at least as large as any queue is no limit: beyond 32 bits it stays the largest.
    sc.bucket.cache_size = static_cast<std::uint32_t>(std::clamp<std::int64_t>(c, 0, UINT32_MAX));
  }
  if (auto n = get("reprocess")) {
    sc.reprocess = boolean(ctx, n, "reprocess").value_or(false);
  }

  const YAML::Mark type_mark = get("type") ? get("type").Mark() : doc.Mark();
  const YAML::Mark cap_mark = get("capacity") ? get("capacity").Mark() : doc.Mark();
  if (type == "leaky") {
    sc.bucket.type = engine::bucket_type::leaky;
    if (sc.bucket.capacity <= 0) {
      ctx.error(cap_mark, "invalid capacity '" + std::to_string(sc.bucket.capacity) + "': must be > 0");
    }
    if (!get("leakspeed")) {
      ctx.error(doc.Mark(), "leakspeed is required for a leaky bucket");
    } else if (sc.bucket.leakspeed == 0) {
      ctx.error(get("leakspeed").Mark(), "leakspeed: must be > 0");
    } else if (sc.bucket.capacity > 0 &&
               sc.bucket.leakspeed > std::numeric_limits<std::int64_t>::max() / (sc.bucket.capacity + 1)) {
      // The bucket counts time in nanoseconds: (capacity + 1) x leakspeed, its life after its last
      // event, must fit in 64 bits (about 292 years), or the capacity would silently shrink.
      ctx.error(get("leakspeed").Mark(), "leakspeed: (capacity + 1) x leakspeed is over 292 years");
    }
  } else if (type == "trigger") {
    sc.bucket.type = engine::bucket_type::trigger;
    if (sc.bucket.capacity != 0) {
      ctx.error(cap_mark, "invalid capacity '" + std::to_string(sc.bucket.capacity) + "': must be 0");
    }
    sc.bucket.leakspeed = 0;
  } else if (type == "counter") {
    sc.bucket.type = engine::bucket_type::counter;
    if (sc.bucket.capacity != -1) {
      ctx.error(cap_mark, "invalid capacity '" + std::to_string(sc.bucket.capacity) + "': must be -1");
    }
    if (sc.bucket.duration <= 0) {
      ctx.error(doc.Mark(), "duration is required for a counter");
    }
  } else if (type == "conditional" || type == "bayesian") {
    ctx.error(type_mark, "type '" + type + "' is not supported by vigil yet");
  } else if (!type.empty()) {
    ctx.error(type_mark, "unknown type '" + type + "' (trigger, leaky or counter)");
  }
  sc.leakspeed_text = engine::format_go_duration(sc.bucket.leakspeed);

  if (auto n = get("filter"); n && n.IsScalar() && !n.as<std::string>().empty()) {
    if (auto p = compile_expr(ctx, n, "filter")) {
      if (p->result_hint() != expr::value_hint::boolean && p->result_hint() != expr::value_hint::any) {
        ctx.error(n.Mark(), std::string("filter: must be a boolean expression, not ") + to_string(p->result_hint()));
      }
      sc.filter = std::move(*p);
    }
  } else {
    ctx.error(n ? n.Mark() : doc.Mark(), "filter is required");
  }
  if (auto n = get("groupby")) {
    if (scalar(ctx, n, "groupby")) {
      sc.groupby = compile_expr(ctx, n, "groupby");
      // CrowdSec stops on a groupby that gives no string; one that never can is refused here.
      if (sc.groupby && sc.groupby->result_hint() != expr::value_hint::string &&
          sc.groupby->result_hint() != expr::value_hint::any) {
        ctx.error(n.Mark(), std::string("groupby: must give a string, not ") + to_string(sc.groupby->result_hint()));
      }
    }
  }
  if (auto n = get("distinct")) {
    if (scalar(ctx, n, "distinct")) {
      sc.distinct = compile_expr(ctx, n, "distinct");
      sc.bucket.has_distinct = true;
    }
  }
  // A reload keeps this scenario's buckets only if their keys and distinct values mean the same.
  sc.bucket.keyed_by = std::string(sc.groupby ? sc.groupby->source() : "") + '\n' +
                       std::string(sc.distinct ? sc.distinct->source() : "");
  if (auto n = get("scope")) {
    if (!n.IsMap()) {
      ctx.error(n.Mark(), "scope: expected a mapping with type and expression");
    } else {
      for (const auto& kv : n) {
        const std::string k = kv.first.as<std::string>();
        if (k != "type" && k != "expression") {
          ctx.error(kv.first.Mark(), "scope: unknown key '" + k + "'");
        }
      }
      if (n["type"]) {
        sc.scope_type = scalar(ctx, n["type"], "scope.type").value_or("Ip");
      }
      if (n["expression"]) {
        sc.scope_expression = compile_expr(ctx, n["expression"], "scope.expression");
      }
      // With Ip, CrowdSec ignores the expression, and so does vigil. A Range or custom scope
      // takes the alert's value from the expression (CrowdSec evaluates it on the bucket's
      // events; vigil on the last one, whose meta the bucket keeps: so it may read evt.Meta
      // only). Without an expression CrowdSec's Range comes from GeoIP enrichment, which vigil
      // does not have.
      if (sc.scope_type == "Ip") {
        sc.scope_expression.reset();
      } else if (sc.scope_type.empty()) {
        ctx.error(n["type"].Mark(), "scope.type: expected Ip, Range or a custom scope name");
      } else if (!n["expression"]) {
        ctx.error(n["type"].Mark(), "scope type '" + sc.scope_type + "' needs scope.expression, e.g. " +
                                        (sc.scope_type == "Range" ? "IpToRange(evt.Meta.source_ip, '/24')"
                                                                  : "evt.Meta.user") +
                                        " (vigil has no GeoIP enrichment to give a source range)");
      } else if (sc.scope_expression && !reads_meta_only(*sc.scope_expression)) {
        ctx.error(n["expression"].Mark(),
                  "scope.expression may read evt.Meta only: vigil evaluates it on the overflowing bucket's "
                  "last event, of which the bucket keeps the meta");
      }
    }
  }
  sc.labels_json = "{}";
  if (auto n = get("labels")) {
    if (!n.IsMap()) {
      ctx.error(n.Mark(), "labels: expected a mapping");
    } else {
      sc.labels_json.clear();
      yaml_to_json(sc.labels_json, n);
      // CrowdSec takes remediation only from a YAML boolean: a quoted "true" is a string, as
      // the labels' JSON above shows it.
      if (auto r = n["remediation"]; r && r.IsScalar()) {
        sc.remediation = r.Tag() != "!" && r.Scalar() == "true";
      }
    }
  }
  if (!ctx.failed) {
    ctx.out.scenarios.push_back(std::move(sc));
  }
}

} // namespace

std::string load_error::to_string() const {
  std::string s = file;
  if (line > 0) {
    s += ':' + std::to_string(line);
    if (column > 0) {
      s += ':' + std::to_string(column);
    }
  }
  return s + ": " + message;
}

void load_scenarios_from_text(const std::string& file_text, const std::string& file, load_result& out) {
  const std::string text = config::without_bom(file_text);
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    out.errors.push_back(load_error{file, static_cast<std::uint32_t>(e.mark.line + 1),
                                    static_cast<std::uint32_t>(e.mark.column + 1), "invalid YAML: " + e.msg});
    return;
  }
  for (const YAML::Node& doc : docs) {
    const bool finite = config::check_yaml_document(doc, [&](const YAML::Node& n, const std::string& m) {
      out.errors.push_back(load_error{file, static_cast<std::uint32_t>(n.Mark().line + 1),
                                      static_cast<std::uint32_t>(n.Mark().column + 1), m});
    });
    if (!finite) {
      return;
    }
  }
  for (const YAML::Node& doc : docs) {
    context ctx{file, text, out};
    try {
      load_document(ctx, doc);
    } catch (const YAML::Exception& e) {
      out.errors.push_back(load_error{file, static_cast<std::uint32_t>(e.mark.line + 1),
                                      static_cast<std::uint32_t>(e.mark.column + 1), e.msg});
    }
  }
}

void load_scenarios(const std::string& path, load_result& out) {
  std::error_code ec;
  std::vector<fs::path> files;
  if (fs::is_directory(path, ec)) {
    for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      const auto ext = it->path().extension();
      if (it->is_regular_file() && (ext == ".yaml" || ext == ".yml")) {
        files.push_back(it->path());
      }
    }
    std::sort(files.begin(), files.end());
  } else {
    files.emplace_back(path);
  }
  if (ec) {
    out.errors.push_back(load_error{path, 0, 0, ec.message()});
  }
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      out.errors.push_back(load_error{f.string(), 0, 0, "cannot open file"});
      continue;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    load_scenarios_from_text(ss.str(), f.string(), out);
  }
}

} // namespace vigil::rules

#include "rules/scenario/builtin.h"

namespace vigil::rules {

void load_builtin_scenarios(load_result& out) {
  for (const builtin_file& f : builtin_files()) {
    load_scenarios_from_text(std::string(f.text), std::string(f.path), out);
  }
}

} // namespace vigil::rules
