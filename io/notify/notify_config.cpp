#include "io/notify/notify_config.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "engine/event/duration.h"
#include "rules/template/template.h"
#include "engine/config/yaml_keys.h"

namespace vigil::io {

namespace {

// What CrowdSec ships when a file has no `format` (its default slack.yaml / http.yaml / file.yaml).
constexpr const char* default_slack_format =
    "{{range . -}}\n{{$alert := . -}}\n{{range .Decisions -}}\n{{if $alert.Source.Cn -}}\n"
    ":flag-{{$alert.Source.Cn}}: <https://www.whois.com/whois/{{.Value}}|{{.Value}}> will get {{.Type}} for next "
    "{{.Duration}} for triggering {{.Scenario}} on machine '{{$alert.MachineID}}'. "
    "<https://app.crowdsec.net/cti/{{.Value}}|CrowdSec CTI>{{end}}\n{{if not $alert.Source.Cn -}}\n"
    ":pirate_flag: <https://www.whois.com/whois/{{.Value}}|{{.Value}}> will get {{.Type}} for next {{.Duration}} "
    "for triggering {{.Scenario}} on machine '{{$alert.MachineID}}'.  "
    "<https://app.crowdsec.net/cti/{{.Value}}|CrowdSec CTI>{{end}}\n{{end -}}\n{{end -}}\n";
constexpr const char* default_http_format = "{{.|toJson}}";
constexpr const char* default_file_format =
    "{{range . -}}\n { \"time\": \"{{.StopAt}}\", \"program\": \"crowdsec\", \"alert\": {{. | toJson }} }\n{{ end -}}\n";

// CrowdSec's other plugin types: skipped with a warning rather than refused.
const std::set<std::string> crowdsec_only_types = {"email", "splunk", "sentinel", "elasticsearch", "dummy"};

// ${VAR} from the environment; an undefined variable is left as written (and reported).
std::string expand_env(const std::string& v, std::vector<std::string>& undefined) {
  std::string out;
  std::size_t i = 0;
  while (i < v.size()) {
    const std::size_t open = v.find("${", i);
    const std::size_t close = open == std::string::npos ? open : v.find('}', open + 2);
    if (close == std::string::npos) {
      out.append(v, i);
      break;
    }
    out.append(v, i, open - i);
    const std::string name = v.substr(open + 2, close - open - 2);
    if (const char* val = std::getenv(name.c_str()); val != nullptr) {
      out += val;
    } else {
      out.append(v, open, close + 1 - open);
      undefined.push_back(name);
    }
    i = close + 1;
  }
  return out;
}

class doc_loader {
 public:
  doc_loader(const std::string& file, const std::string& text, std::vector<config::error>& errors,
             std::vector<std::string>& warnings)
      : file_(file), text_(text), errors_(errors), warnings_(warnings) {}

  void fail(const YAML::Mark& m, std::string message) {
    errors_.push_back(config::error{file_, static_cast<std::uint32_t>(m.line + 1),
                                    static_cast<std::uint32_t>(m.column + 1), std::move(message)});
  }

  std::string scalar(const YAML::Node& v, const std::string& key) {
    if (!v.IsScalar()) {
      fail(v.Mark(), key + ": expected a string");
      return {};
    }
    std::vector<std::string> undefined;
    std::string s = expand_env(v.Scalar(), undefined);
    for (const auto& u : undefined) {
      warnings_.push_back(file_ + ":" + std::to_string(v.Mark().line + 1) + ": " + key + ": ${" + u +
                          "} is not set in the environment (kept as written)");
    }
    return s;
  }

  template <class T>
  bool number(const YAML::Node& v, const std::string& key, T& out) {
    const std::string s = scalar(v, key);
    try {
      std::size_t used = 0;
      const long long n = std::stoll(s, &used);
      if (used == s.size() && n >= 0 && static_cast<unsigned long long>(n) <= std::numeric_limits<T>::max()) {
        out = static_cast<T>(n);
        return true;
      }
    } catch (...) { // config load: a bad number is reported below
    }
    fail(v.Mark(), key + ": expected an integer from 0 to " + std::to_string(std::numeric_limits<T>::max()) +
                       ", got '" + s + "'");
    return false;
  }

  bool boolean(const YAML::Node& v, const std::string& key, bool& out) {
    const std::string s = scalar(v, key);
    if (s == "true" || s == "yes" || s == "on") {
      out = true;
    } else if (s == "false" || s == "no" || s == "off") {
      out = false;
    } else {
      fail(v.Mark(), key + ": expected true or false, got '" + s + "'");
      return false;
    }
    return true;
  }

  bool duration(const YAML::Node& v, const std::string& key, engine::unix_nanos& out) {
    const std::string s = scalar(v, key);
    const auto d = engine::parse_go_duration(s);
    if (!d || *d < 0) {
      fail(v.Mark(), key + ": expected a duration such as 30s or 1m, got '" + s + "'");
      return false;
    }
    out = *d;
    return true;
  }

  // The file line of the template's line `line`: a literal block (|) holds the template's lines
  // as they are, from the next line on. Any other style folds or escapes them (a `>` block, a
  // quoted "a\n{{if}}"), so its errors point at the value's first line.
  std::uint32_t format_line(const YAML::Node& v, std::uint32_t line) const {
    const std::size_t pos = static_cast<std::size_t>(v.Mark().pos);
    const auto at = static_cast<std::uint32_t>(v.Mark().line + 1);
    const bool literal = pos < text_.size() && text_[pos] == '|';
    return literal ? at + 1 + (line > 0 ? line - 1 : 0) : at;
  }

  void load(const YAML::Node& doc, std::vector<notification>& out) {
    if (doc.IsNull()) {
      return;
    }
    if (!doc.IsMap()) {
      fail(doc.Mark(), "a notification is a mapping (type, name, format, ...)");
      return;
    }
    notification n;
    n.origin = file_ + ":" + std::to_string(doc.Mark().line + 1);
    std::string type;
    if (const YAML::Node t = doc["type"]; t && t.IsScalar()) {
      type = t.Scalar();
    }
    if (crowdsec_only_types.contains(type)) {
      const YAML::Node name = doc["name"];
      warnings_.push_back(n.origin + ": notification '" + (name && name.IsScalar() ? name.Scalar() : "") + "' of type " +
                          type + " is a CrowdSec plugin vigil does not have (slack, http, file): skipped");
      return;
    }
    YAML::Node format_node;
    const std::size_t errors_before = errors_.size();
    for (const auto& kv : doc) {
      const std::string k = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (k == "type") {
        type = scalar(v, k);
      } else if (k == "name") {
        n.name = scalar(v, k);
      } else if (k == "format") {
        format_node = v;
        if (!v.IsScalar()) {
          fail(v.Mark(), "format: expected a string (a template)");
        }
      } else if (k == "group_wait") {
        duration(v, k, n.group_wait);
      } else if (k == "group_threshold") {
        number(v, k, n.group_threshold);
      } else if (k == "max_retry") {
        number(v, k, n.max_retry);
      } else if (k == "timeout") {
        // As CrowdSec's plugins: no timeout (0) means the default, 5s, not a send that may hang.
        if (duration(v, k, n.timeout) && n.timeout == 0) {
          n.timeout = 5'000'000'000;
        }
      } else if (k == "log_level") {
        n.log_level = scalar(v, k);
        static const std::set<std::string> levels = {"trace", "debug", "info", "warn", "warning", "error", "fatal", "panic"};
        if (!levels.contains(n.log_level)) {
          fail(v.Mark(), "log_level: expected trace, debug, info, warn, error, fatal or panic, got '" + n.log_level + "'");
        }
      } else if (k == "webhook") {
        n.webhook = scalar(v, k);
      } else if (k == "channel") {
        n.channel = scalar(v, k);
      } else if (k == "username") {
        n.username = scalar(v, k);
      } else if (k == "icon_emoji") {
        n.icon_emoji = scalar(v, k);
      } else if (k == "icon_url") {
        n.icon_url = scalar(v, k);
      } else if (k == "url") {
        n.url = scalar(v, k);
      } else if (k == "method") {
        n.method = scalar(v, k);
        std::transform(n.method.begin(), n.method.end(), n.method.begin(), ::toupper);
      } else if (k == "headers") {
        if (!v.IsMap()) {
          fail(v.Mark(), "headers: expected a mapping of header names to values");
          continue;
        }
        for (const auto& h : v) {
          n.headers.emplace_back(h.first.as<std::string>(), scalar(h.second, "headers." + h.first.as<std::string>()));
        }
      } else if (k == "skip_tls_verification") {
        boolean(v, k, n.skip_tls_verification);
      } else if (k == "log_path") {
        n.log_path = scalar(v, k);
      } else if (k == "rotate") {
        if (!v.IsMap()) {
          fail(v.Mark(), "rotate: expected a mapping (enabled, max_size, max_files, max_age, compress)");
          continue;
        }
        for (const auto& r : v) {
          const std::string rk = r.first.as<std::string>();
          if (rk == "enabled") {
            boolean(r.second, "rotate.enabled", n.rotate);
          } else if (rk == "max_size") {
            number(r.second, "rotate.max_size", n.rotate_max_size_mb);
          } else if (rk == "max_files") {
            number(r.second, "rotate.max_files", n.rotate_max_files);
          } else if (rk == "max_age") {
            number(r.second, "rotate.max_age", n.rotate_max_age_days);
          } else if (rk == "compress") {
            boolean(r.second, "rotate.compress", n.rotate_compress);
          } else {
            fail(r.first.Mark(), "rotate: unknown key '" + rk + "' (enabled, max_size, max_files, max_age, compress)");
          }
        }
      } else {
        fail(kv.first.Mark(), "unknown key '" + k + "'");
      }
    }
    if (type.empty()) {
      fail(doc.Mark(), "missing required field 'type'");
      return;
    }
    if (type == "slack") {
      n.type = notify_type::slack;
    } else if (type == "http") {
      n.type = notify_type::http;
    } else if (type == "file") {
      n.type = notify_type::file;
    } else {
      fail(doc["type"].Mark(), "type: unknown notification type '" + type + "' (slack, http or file)");
      return;
    }
    if (n.name.empty()) {
      fail(doc.Mark(), "missing required field 'name'");
    }
    if (n.type == notify_type::slack && n.webhook.empty()) {
      fail(doc.Mark(), "slack notification '" + n.name + "': missing 'webhook' (the Slack incoming-webhook URL)");
    }
    if (n.type == notify_type::http && n.url.empty()) {
      fail(doc.Mark(), "http notification '" + n.name + "': missing 'url'");
    }
    if (n.type == notify_type::file && n.log_path.empty()) {
      fail(doc.Mark(), "file notification '" + n.name + "': missing 'log_path'");
    }
    if (n.rotate && n.rotate_max_size_mb == 0) {
      fail(doc["rotate"].Mark(), "rotate.max_size: must be at least 1 (MB)");
    }
    const bool own_format = format_node && format_node.IsScalar();
    if (own_format) {
      n.format = format_node.Scalar();
    } else {
      n.format = n.type == notify_type::slack ? default_slack_format
                 : n.type == notify_type::http ? default_http_format
                                               : default_file_format;
    }
    auto parsed = rules::tmpl::templ::parse(n.format);
    if (auto* e = std::get_if<rules::tmpl::parse_error>(&parsed)) {
      const std::uint32_t line =
          own_format ? format_line(format_node, e->line) : static_cast<std::uint32_t>(doc.Mark().line + 1);
      errors_.push_back(config::error{file_, line, 1, "format: " + e->message});
      return;
    }
    if (errors_.size() != errors_before) {
      return;
    }
    n.templ = std::make_shared<const rules::tmpl::templ>(std::move(std::get<rules::tmpl::templ>(parsed)));
    out.push_back(std::move(n));
  }

 private:
  const std::string& file_;
  const std::string& text_;
  std::vector<config::error>& errors_;
  std::vector<std::string>& warnings_;
};

} // namespace

const char* type_name(notify_type t) noexcept {
  switch (t) {
  case notify_type::slack:
    return "slack";
  case notify_type::http:
    return "http";
  case notify_type::file:
    return "file";
  }
  return "?";
}

void load_notifications_text(const std::string& file_text, const std::string& file, std::vector<notification>& out,
                             std::vector<config::error>& errors, std::vector<std::string>& warnings) {
  const std::string text = config::without_bom(file_text);
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    errors.push_back(config::error{file, static_cast<std::uint32_t>(e.mark.line + 1),
                                   static_cast<std::uint32_t>(e.mark.column + 1), e.msg});
    return;
  }
  for (const auto& d : docs) {
    const bool finite = config::check_yaml_document(d, [&](const YAML::Node& n, const std::string& m) {
      errors.push_back(config::error{file, static_cast<std::uint32_t>(n.Mark().line + 1),
                                     static_cast<std::uint32_t>(n.Mark().column + 1), m});
    });
    if (!finite) {
      return;
    }
  }
  doc_loader l(file, text, errors, warnings);
  const std::size_t first_new = out.size();
  for (const auto& d : docs) {
    l.load(d, out);
  }
  for (std::size_t i = first_new; i < out.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (out[j].name == out[i].name) {
        const auto colon = out[i].origin.rfind(':');
        errors.push_back(config::error{file, static_cast<std::uint32_t>(std::stoul(out[i].origin.substr(colon + 1))), 1,
                                       "notification '" + out[i].name + "' is already defined at " + out[j].origin});
        break;
      }
    }
  }
}

void load_notifications(const std::string& path, std::vector<notification>& out, std::vector<config::error>& errors,
                        std::vector<std::string>& warnings) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::string> files;
  if (fs::is_directory(path, ec)) {
    for (const auto& e : fs::directory_iterator(path, ec)) {
      const std::string ext = e.path().extension().string();
      if (e.is_regular_file() && (ext == ".yaml" || ext == ".yml")) {
        files.push_back(e.path().string());
      }
    }
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(path);
  }
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      errors.push_back(config::error{f, 0, 0, "cannot read the notification file"});
      continue;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    load_notifications_text(ss.str(), f, out, errors, warnings);
  }
}

} // namespace vigil::io
