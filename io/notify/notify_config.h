#pragma once
// Notification plugin files, as CrowdSec writes them (notifications/*.yaml, several documents per
// file): the common keys (type, name, format, group_wait, group_threshold, max_retry, timeout,
// log_level) and the keys of the slack, http and file plugins. Strict: an unknown key or a bad
// value is an error naming file:line; a template error names the line inside `format` too.
// `${VAR}` is expanded from the environment in every value except `format` (as CrowdSec does).
// The types CrowdSec has and vigil does not (email, splunk, sentinel, elasticsearch) are skipped
// with a warning. Reference: docs/notifications.md.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/config/config.h"
#include "engine/event/timestamp.h"

namespace vigil::rules::tmpl {
class templ;
}

namespace vigil::io {

enum class notify_type : std::uint8_t { slack, http, file };

struct notification {
  std::string name;
  notify_type type = notify_type::slack;
  std::string origin; ///< "file:line" of the document
  std::string format; ///< the template text (per-type default when the file has none)
  std::shared_ptr<const rules::tmpl::templ> templ;
  engine::unix_nanos group_wait = 0;    ///< 0: unset
  std::size_t group_threshold = 0;      ///< 0: unset
  unsigned max_retry = 0;               ///< 0: retry with backoff for up to 5 minutes
  engine::unix_nanos timeout = 5'000'000'000; ///< per try
  std::string log_level = "info";
  // slack
  std::string webhook, channel, username, icon_emoji, icon_url;
  // http
  std::string url, method = "POST";
  std::vector<std::pair<std::string, std::string>> headers;
  bool skip_tls_verification = false;
  // file
  std::string log_path;
  bool rotate = false;
  std::uint64_t rotate_max_size_mb = 500;
  unsigned rotate_max_files = 5;
  unsigned rotate_max_age_days = 5; ///< accepted; rotation is by size
  bool rotate_compress = false;     ///< accepted; rotated files are kept uncompressed
};

[[nodiscard]] const char* type_name(notify_type t) noexcept;

/// Loads every notification of a file, or of every *.yaml / *.yml file of a directory (sorted).
/// Appends to `out`, `errors` and `warnings`. A name defined twice is an error.
void load_notifications(const std::string& path, std::vector<notification>& out, std::vector<config::error>& errors,
                        std::vector<std::string>& warnings);

/// The same from text (`file` names it in errors).
void load_notifications_text(const std::string& text, const std::string& file, std::vector<notification>& out,
                             std::vector<config::error>& errors, std::vector<std::string>& warnings);

} // namespace vigil::io
