#include "engine/config/config.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "engine/config/yaml_keys.h"

namespace vigil::config {

namespace {

namespace fs = std::filesystem;

bool parse_duration_ms(const std::string& text, std::uint32_t& out) {
  // Go-style: 500ms, 10s, 1m, 1h (one unit).
  std::size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    ++i;
  }
  if (i == 0 || i > 9) {
    return false;
  }
  const unsigned long long n = std::stoull(text.substr(0, i));
  const std::string unit = text.substr(i);
  const unsigned long long ms = unit == "ms" ? n : unit == "s" ? n * 1000 : unit == "m" ? n * 60000 : unit == "h" ? n * 3600000 : ~0ULL;
  if (ms == ~0ULL || ms == 0 || ms > 86400000ULL) {
    return false;
  }
  out = static_cast<std::uint32_t>(ms);
  return true;
}

struct loader {
  const std::string& file;
  std::vector<error> errors;

  std::string where(const YAML::Node& n) const { return file + ":" + std::to_string(n.Mark().line + 1); }

  // A path relative to the configuration file's directory; empty stays empty ("none").
  std::string path_of(const YAML::Node& n, const fs::path& base) {
    fs::path p = n.as<std::string>();
    if (p.is_relative() && !p.empty() && !base.empty()) {
      p = base / p;
    }
    return p.string();
  }

  void strings(const YAML::Node& n, const char* key, std::vector<std::string>& out) {
    if (n.IsScalar()) {
      out.push_back(n.as<std::string>());
    } else if (n.IsSequence()) {
      for (const auto& item : n) {
        if (item.IsScalar()) {
          out.push_back(item.as<std::string>());
        } else {
          fail(item.Mark(), std::string(key) + ": expected a string");
        }
      }
    } else {
      fail(n.Mark(), std::string(key) + ": expected a string or a list of strings");
    }
  }

  // One entry of `sources:` (vigil's own spelling).
  void source(const YAML::Node& src, const fs::path& base, settings& out) {
    if (!src.IsMap() || !src["type"] || !src["type"].IsScalar()) {
      fail(src.Mark(), "sources: each entry needs a type (webhook or file)");
      return;
    }
    const std::string type = src["type"].as<std::string>();
    if (type == "webhook") {
      static const std::set<std::string> keys = {"type", "name", "listen", "path", "cluster", "tokens", "tls",
                                                 "max_body_size", "max_connections", "timeouts"};
      webhook_source w;
      w.origin = where(src);
      for (const auto& kv : src) {
        const std::string k = kv.first.as<std::string>();
        const YAML::Node& v = kv.second;
        if (keys.count(k) == 0) {
          fail(kv.first.Mark(), "webhook source: unknown key '" + k + "'");
        } else if (k == "name" || k == "path" || k == "cluster") {
          if (!v.IsScalar()) {
            fail(v.Mark(), k + ": expected a string");
            continue;
          }
          (k == "name" ? w.name : k == "path" ? w.path : w.cluster) = v.as<std::string>();
          if (k == "path" && w.path.empty()) {
            fail(v.Mark(), "path: cannot be empty (the webhook's URL path, e.g. /audit/webhook/event)");
          }
        } else if (k == "listen") {
          if (!v.IsScalar() || !parse_listen(v.as<std::string>(), w.host, w.port)) {
            fail(v.Mark(), "listen: expected ADDRESS:PORT");
          }
        } else if (k == "tokens") {
          strings(v, "tokens", w.tokens);
        } else if (k == "max_body_size") {
          std::int64_t n = 0;
          if (integer(v, "max_body_size", 1024, std::int64_t(1) << 31, n)) {
            w.max_body_size = static_cast<std::size_t>(n);
          }
        } else if (k == "max_connections") {
          std::int64_t n = 0;
          if (integer(v, "max_connections", 1, 1 << 20, n)) {
            w.max_connections = static_cast<std::size_t>(n);
          }
        } else if (k == "tls") {
          if (!v.IsMap()) {
            fail(v.Mark(), "tls: expected a mapping with cert, key and optionally client_ca");
            continue;
          }
          for (const auto& t : v) {
            const std::string tk = t.first.as<std::string>();
            if (tk != "cert" && tk != "key" && tk != "client_ca") {
              fail(t.first.Mark(), "tls: unknown key '" + tk + "'");
              continue;
            }
            const std::string p = path_of(t.second, base);
            if (!fs::exists(p)) {
              fail(t.second.Mark(), "tls." + tk + ": " + p + " does not exist");
            }
            (tk == "cert" ? w.tls_cert : tk == "key" ? w.tls_key : w.tls_client_ca) = p;
          }
          if (w.tls_cert.empty() || w.tls_key.empty()) {
            fail(v.Mark(), "tls: cert and key are both required");
          }
        } else if (k == "timeouts") {
          if (!v.IsMap()) {
            fail(v.Mark(), "timeouts: expected a mapping (header, body, idle)");
            continue;
          }
          for (const auto& t : v) {
            const std::string tk = t.first.as<std::string>();
            std::uint32_t* target = tk == "header" ? &w.header_timeout_ms
                                    : tk == "body" ? &w.body_timeout_ms
                                    : tk == "idle" ? &w.idle_timeout_ms
                                                   : nullptr;
            if (target == nullptr) {
              fail(t.first.Mark(), "timeouts: unknown key '" + tk + "'");
            } else if (!t.second.IsScalar() || !parse_duration_ms(t.second.as<std::string>(), *target)) {
              fail(t.second.Mark(), "timeouts." + tk + ": expected a duration from 1ms to 24h, such as 10s or 500ms");
            }
          }
        }
      }
      if (!w.path.empty() && w.path[0] != '/') {
        w.path = "/" + w.path;
      }
      out.webhooks.push_back(std::move(w));
    } else if (type == "file") {
      file_source f;
      f.origin = where(src);
      for (const auto& kv : src) {
        const std::string k = kv.first.as<std::string>();
        if (k == "type") {
          continue;
        }
        if (k == "paths") {
          std::vector<std::string> ps;
          strings(kv.second, "paths", ps);
          for (const auto& p : ps) {
            f.paths.push_back(fs::path(p).is_relative() && !base.empty() ? (base / p).string() : p);
            std::error_code ec;
            if (fs::is_directory(f.paths.back(), ec)) {
              fail(kv.second.Mark(), "paths: " + f.paths.back() + " is a directory, not a file");
            }
          }
        } else if (k == "cluster") {
          f.cluster = kv.second.as<std::string>();
        } else if (k == "mode") {
          const std::string mode = kv.second.as<std::string>();
          if (mode != "cat" && mode != "tail") {
            fail(kv.second.Mark(), "mode: '" + mode + "' is not a mode: cat (read once) or tail (follow)");
          }
          f.tail = mode == "tail";
        } else if (k == "start") {
          const std::string start = kv.second.as<std::string>();
          if (start != "end" && start != "beginning") {
            fail(kv.second.Mark(), "start: end or beginning");
          }
          f.from_beginning = start == "beginning";
        } else if (k == "position_dir") {
          f.position_dir = path_of(kv.second, base);
          std::error_code ec;
          if (!fs::is_directory(f.position_dir, ec)) {
            fail(kv.second.Mark(), "position_dir: " + f.position_dir + " is not a directory (positions could not be saved)");
          }
        } else {
          fail(kv.first.Mark(), "file source: unknown key '" + k + "'");
        }
      }
      if (f.paths.empty()) {
        fail(src.Mark(), "file source: paths is required");
      }
      out.files.push_back(std::move(f));
    } else {
      fail(src["type"].Mark(), "sources: unknown type '" + type + "' (webhook or file)");
    }
  }

  void fail(const YAML::Mark& m, std::string msg) {
    errors.push_back(error{file, static_cast<std::uint32_t>(m.line + 1), static_cast<std::uint32_t>(m.column + 1),
                           std::move(msg)});
  }

  bool integer(const YAML::Node& n, const char* key, std::int64_t min, std::int64_t max, std::int64_t& out) {
    if (!n.IsScalar() || !YAML::convert<std::int64_t>::decode(n, out)) {
      fail(n.Mark(), std::string(key) + ": expected an integer");
      return false;
    }
    if (out < min || out > max) {
      fail(n.Mark(), std::string(key) + ": must be between " + std::to_string(min) + " and " + std::to_string(max) +
                         ", got " + std::to_string(out));
      return false;
    }
    return true;
  }
};

} // namespace

bool parse_listen(const std::string& s, std::string& host, std::uint16_t& port) {
  const std::size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return false;
  }
  host = s.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string p = s.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos || std::stoul(p) > 65535) {
    return false;
  }
  port = static_cast<std::uint16_t>(std::stoul(p));
  return true;
}

std::string error::to_string() const {
  std::string s = file;
  if (line > 0) {
    s += ':' + std::to_string(line) + ':' + std::to_string(column);
  }
  return s + ": " + message;
}

std::variant<settings, std::vector<error>> load_text(const std::string& text, const std::string& file) {
  loader l{file, {}};
  settings out;
  out.file = file;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    l.fail(e.mark, "invalid YAML: " + e.msg);
    return l.errors;
  }
  if (root.IsNull()) {
    return out; // an empty file: every default
  }
  if (!check_yaml_document(root, [&](const YAML::Node& n, const std::string& m) { l.fail(n.Mark(), m); })) {
    return l.errors;
  }
  if (!root.IsMap()) {
    l.fail(root.Mark(), "the configuration must be a YAML mapping");
    return l.errors;
  }
  const fs::path base = fs::path(file).parent_path();
  std::optional<YAML::Mark> api_listen_at; // api.listen set to an address
  static const std::set<std::string> known = {"workers", "max_in_flight", "rules",   "cluster",
                                              "sources", "acquis",        "profiles", "store", "api", "metrics",
                                              "notifications"};
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (known.count(key) == 0) {
      l.fail(kv.first.Mark(), "unknown key '" + key + "' (see docs/configuration.md)");
      continue;
    }
    std::int64_t n = 0;
    if (key == "workers") {
      if (l.integer(v, "workers", 0, 256, n)) {
        out.workers = static_cast<unsigned>(n);
      }
    } else if (key == "max_in_flight") {
      if (l.integer(v, "max_in_flight", 1, 1 << 24, n)) {
        out.max_in_flight = static_cast<std::size_t>(n);
        out.max_in_flight_set = true;
      }
    } else if (key == "cluster") {
      if (!v.IsScalar()) {
        l.fail(v.Mark(), "cluster: expected a string");
      } else {
        out.cluster = v.as<std::string>();
      }
    } else if (key == "store") {
      if (!v.IsMap()) {
        l.fail(v.Mark(), "store: expected a mapping (path, max_items, max_age)");
        continue;
      }
      for (const auto& kv2 : v) {
        const std::string k = kv2.first.as<std::string>();
        std::int64_t n = 0;
        if (k == "path") {
          out.store_path = kv2.second.IsNull() ? "" : l.path_of(kv2.second, base);
        } else if (k == "max_items") {
          if (l.integer(kv2.second, "store.max_items", 0, 1LL << 40, n)) {
            out.store_max_items = static_cast<std::size_t>(n);
          }
        } else if (k == "max_age") {
          const std::string text = kv2.second.as<std::string>();
          const bool unit = text.size() > 1 && text.size() < 8 && (text.back() == 'd' || text.back() == 'h') &&
                            text.find_first_not_of("0123456789") == text.size() - 1;
          if (unit) {
            const auto n = static_cast<std::uint32_t>(std::stoul(text.substr(0, text.size() - 1)));
            out.store_max_age_hours = text.back() == 'd' ? n * 24 : n;
          } else if (text == "0") {
            out.store_max_age_hours = 0;
          } else {
            l.fail(kv2.second.Mark(), "store.max_age: expected hours or days (168h, 7d) or 0");
          }
        } else {
          l.fail(kv2.first.Mark(), "store: unknown key '" + k + "'");
        }
      }
    } else if (key == "api" || key == "metrics") {
      if (!v.IsMap()) {
        l.fail(v.Mark(), key + ": expected a mapping (listen)");
        continue;
      }
      for (const auto& kv2 : v) {
        const std::string k = kv2.first.as<std::string>();
        if (k == "tls" && key == "api") {
          if (!kv2.second.IsMap()) {
            l.fail(kv2.second.Mark(), "api.tls: expected a mapping (cert, key)");
            continue;
          }
          for (const auto& t : kv2.second) {
            const std::string tk = t.first.as<std::string>();
            if (tk != "cert" && tk != "key") {
              l.fail(t.first.Mark(), "api.tls: unknown key '" + tk + "' (cert, key)");
              continue;
            }
            const std::string p = l.path_of(t.second, base);
            if (!fs::exists(p)) {
              l.fail(t.second.Mark(), "api.tls." + tk + ": " + p + " does not exist");
            }
            (tk == "cert" ? out.api_tls_cert : out.api_tls_key) = p;
          }
          if (out.api_tls_cert.empty() != out.api_tls_key.empty()) {
            l.fail(kv2.second.Mark(), "api.tls: cert and key are both required");
          }
          continue;
        }
        if (k != "listen") {
          l.fail(kv2.first.Mark(), key + ": unknown key '" + k + "'" + (key == "api" ? " (listen, tls)" : " (listen)"));
          continue;
        }
        std::string host;
        std::uint16_t port = 0;
        const std::string text = kv2.second.IsNull() ? "" : kv2.second.as<std::string>();
        if (!text.empty() && !parse_listen(text, host, port)) {
          l.fail(kv2.second.Mark(), key + ".listen: expected ADDRESS:PORT (or empty to turn it off)");
        } else {
          (key == "api" ? out.api_listen : out.metrics_listen) = text;
          if (key == "api" && !text.empty()) {
            api_listen_at = kv2.second.Mark();
          }
        }
      }
    } else if (key == "profiles") {
      if (!v.IsScalar()) {
        l.fail(v.Mark(), "profiles: expected a path");
      } else {
        const std::string p = l.path_of(v, base);
        if (!fs::exists(p)) {
          l.fail(v.Mark(), "profiles: " + p + " does not exist");
        } else {
          out.profiles = p;
        }
      }
    } else if (key == "sources") {
      if (!v.IsSequence()) {
        l.fail(v.Mark(), "sources: expected a list");
      } else {
        for (const auto& src : v) {
          l.source(src, base, out);
        }
      }
    } else if (key == "acquis") {
      std::vector<YAML::Node> items;
      if (v.IsSequence()) {
        for (const auto& item : v) {
          items.push_back(item);
        }
      } else {
        items.push_back(v);
      }
      for (const auto& item : items) {
        if (!item.IsScalar()) {
          l.fail(item.Mark(), "acquis: expected a path");
          continue;
        }
        fs::path p = item.as<std::string>();
        if (p.is_relative() && !base.empty()) {
          p = base / p;
        }
        if (!fs::exists(p)) {
          l.fail(item.Mark(), "acquis: " + p.string() + " does not exist");
          continue;
        }
        if (fs::is_directory(p)) {
          l.fail(item.Mark(), "acquis: " + p.string() +
                                  " is a directory: list its files (acquis: [acquis.yaml, acquis.d/k8s.yaml]), or give "
                                  "vigil run --crowdsec-dir the CrowdSec directory that holds acquis.d/");
          continue;
        }
        load_acquis(p.string(), out, l.errors);
      }
    } else if (key == "rules" || key == "notifications") {
      std::vector<std::string>& target = key == "rules" ? out.rules : out.notifications;
      std::vector<YAML::Node> items;
      if (v.IsScalar()) {
        items.push_back(v);
      } else if (v.IsSequence()) {
        for (const auto& item : v) {
          items.push_back(item);
        }
      } else {
        l.fail(v.Mark(), key + ": expected a path or a list of paths");
      }
      for (const auto& item : items) {
        if (!item.IsScalar()) {
          l.fail(item.Mark(), key + ": expected a path");
          continue;
        }
        fs::path p = item.as<std::string>();
        if (p.is_relative() && !base.empty()) {
          p = base / p;
        }
        if (!fs::exists(p)) {
          l.fail(item.Mark(), key + ": " + p.string() + " does not exist");
          continue;
        }
        target.push_back(p.string());
      }
    }
  }
  if (api_listen_at && out.store_path.empty()) {
    // The local API serves the store's decisions: asked for without one, it would be off without
    // a word, and bouncers would only fail to connect.
    l.fail(*api_listen_at, "api.listen: the local API serves the store's decisions, and store.path turns the store "
                           "off: set a store path, or turn the API off with an empty listen");
  }
  if (!l.errors.empty()) {
    return l.errors;
  }
  return out;
}

void load_acquis(const std::string& path, settings& out, std::vector<error>& errors) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errors.push_back(error{path, 0, 0, "cannot open the acquisition file"});
    return;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  loader l{path, {}};
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(ss.str());
  } catch (const YAML::Exception& e) {
    l.fail(e.mark, "invalid YAML: " + e.msg);
    errors.insert(errors.end(), l.errors.begin(), l.errors.end());
    return;
  }
  const fs::path base = fs::path(path).parent_path();
  for (const YAML::Node& doc : docs) {
    if (doc.IsNull()) {
      continue;
    }
    if (!check_yaml_document(doc, [&](const YAML::Node& n, const std::string& m) { l.fail(n.Mark(), m); })) {
      continue;
    }
    if (!doc.IsMap()) {
      l.fail(doc.Mark(), "an acquisition must be a YAML mapping");
      continue;
    }
    std::string type;
    if (doc["labels"] && doc["labels"].IsMap() && doc["labels"]["type"]) {
      type = doc["labels"]["type"].as<std::string>();
    }
    std::string source = doc["source"] ? doc["source"].as<std::string>() : (doc["filename"] || doc["filenames"] ? "file" : "");
    if (source == "k8s_audit") {
      out.warnings.push_back(l.where(doc) + ": source k8s_audit is the old name of k8s-audit; accepted");
      source = "k8s-audit";
    }
    if (source == "k8s-audit") {
      static const std::set<std::string> keys = {"source", "listen_addr", "listen_port", "webhook_path", "labels",
                                                 "log_level", "mode", "name", "use_time_machine", "unique_id",
                                                 "transform"};
      webhook_source w;
      w.origin = l.where(doc);
      for (const auto& kv : doc) {
        const std::string k = kv.first.as<std::string>();
        if (keys.count(k) == 0) {
          l.fail(kv.first.Mark(), "unknown field \"" + k + "\"");
        }
      }
      if (!doc["listen_addr"] || doc["listen_addr"].as<std::string>().empty()) {
        l.fail(doc.Mark(), "listen_addr cannot be empty");
      } else {
        w.host = doc["listen_addr"].as<std::string>();
      }
      std::int64_t port = 0;
      if (!doc["listen_port"]) {
        l.fail(doc.Mark(), "listen_port cannot be empty");
      } else if (l.integer(doc["listen_port"], "listen_port", 0, 65535, port)) {
        w.port = static_cast<std::uint16_t>(port);
      }
      if (!doc["webhook_path"] || doc["webhook_path"].as<std::string>().empty()) {
        l.fail(doc.Mark(), "webhook_path cannot be empty");
      } else {
        w.path = doc["webhook_path"].as<std::string>();
        if (w.path[0] != '/') {
          w.path = "/" + w.path;
        }
      }
      if (!doc["labels"]) {
        l.fail(doc.Mark(), "missing labels");
      } else if (type != "k8s-audit") {
        out.warnings.push_back(l.where(doc) + ": labels.type is '" + type +
                               "', not k8s-audit: CrowdSec's k8s-audit parser would not read these events; vigil does");
      }
      if (doc["mode"] && doc["mode"].as<std::string>() == "cat") {
        l.fail(doc["mode"].Mark(), "cat mode is set but the k8s-audit datasource only supports tail");
      }
      w.name = doc["name"] ? doc["name"].as<std::string>() : w.host + ":" + std::to_string(w.port);
      out.webhooks.push_back(std::move(w));
    } else if (source == "file") {
      if (type != "k8s-audit") {
        out.warnings.push_back(l.where(doc) + ": file acquisition with labels.type '" + type + "' skipped (not k8s-audit)");
        continue;
      }
      file_source f;
      f.tail = !(doc["mode"] && doc["mode"].as<std::string>() == "cat"); // CrowdSec's default is tail
      f.origin = l.where(doc);
      std::vector<std::string> ps;
      if (doc["filename"]) {
        l.strings(doc["filename"], "filename", ps);
      }
      if (doc["filenames"]) {
        l.strings(doc["filenames"], "filenames", ps);
      }
      for (const auto& p : ps) {
        f.paths.push_back(fs::path(p).is_relative() && !base.empty() ? (base / p).string() : p);
      }
      out.files.push_back(std::move(f));
    } else {
      out.warnings.push_back(l.where(doc) + ": datasource '" + source + "' skipped (vigil reads Kubernetes audit events only)");
    }
  }
  errors.insert(errors.end(), l.errors.begin(), l.errors.end());
}

std::variant<settings, std::vector<error>> load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::vector<error>{error{path, 0, 0, "cannot open the configuration file"}};
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return load_text(ss.str(), path);
}

} // namespace vigil::config

namespace vigil::config {

void load_crowdsec_dir(const std::string& dir, settings& out, std::vector<error>& errors) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    errors.push_back(error{dir, 0, 0, "--crowdsec-dir: not a directory"});
    return;
  }
  const fs::path root(dir);
  // Acquisition: acquis.yaml, then acquis.d/*.yaml (sorted), as CrowdSec reads them.
  std::vector<fs::path> acquis;
  if (fs::exists(root / "acquis.yaml", ec)) {
    acquis.push_back(root / "acquis.yaml");
  }
  std::vector<fs::path> more;
  for (const auto& e : fs::directory_iterator(root / "acquis.d", ec)) {
    const std::string ext = e.path().extension().string();
    if (e.is_regular_file() && (ext == ".yaml" || ext == ".yml")) {
      more.push_back(e.path());
    }
  }
  std::sort(more.begin(), more.end());
  acquis.insert(acquis.end(), more.begin(), more.end());
  for (const auto& a : acquis) {
    load_acquis(a.string(), out, errors);
  }
  if (acquis.empty()) {
    out.warnings.push_back(dir + ": no acquis.yaml nor acquis.d/: the default webhook is used");
  }
  if (fs::exists(root / "profiles.yaml", ec)) {
    out.profiles = (root / "profiles.yaml").string();
  }
  if (fs::is_directory(root / "notifications", ec)) {
    out.notifications.push_back((root / "notifications").string());
  }
  // Scenarios: the k8s-audit ones (their filter reads k8s-audit events); the others (ssh, http, ...)
  // are skipped with one warning each. CrowdSec's scenarios/ holds symlinks into the hub: followed.
  if (!fs::is_directory(root / "scenarios", ec)) {
    return;
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(root / "scenarios", ec)) {
    const std::string ext = e.path().extension().string();
    if ((ext == ".yaml" || ext == ".yml") && fs::is_regular_file(e.path(), ec)) {
      files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  std::size_t kept = 0;
  for (const auto& f : files) {
    bool k8s = false;
    try {
      for (const YAML::Node& doc : YAML::LoadAllFromFile(f.string())) {
        const YAML::Node filter = doc.IsMap() ? doc["filter"] : YAML::Node();
        k8s = k8s || (filter && filter.IsScalar() && filter.Scalar().find("k8s-audit") != std::string::npos);
      }
    } catch (const YAML::Exception&) {
      k8s = true; // let the scenario loader report it with its location
    }
    if (k8s) {
      out.rules.push_back(f.string());
      ++kept;
    } else {
      out.warnings.push_back(f.string() + ": not a k8s-audit scenario: skipped");
    }
  }
  if (kept == 0) {
    out.warnings.push_back(dir + "/scenarios: no k8s-audit scenario: the shipped rules are used");
  }
}

} // namespace vigil::config
