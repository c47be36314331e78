#include "rules/expr/regex.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <hs/hs.h>
#include <re2/re2.h>
#include <simdjson.h>

#include "engine/util/utf8.h"

namespace vigil::expr::detail {
namespace {

// Prototype scratch big enough for every database compiled so far; threads clone it when the
// generation moves (only after a new program was compiled).
std::mutex proto_mu;
hs_scratch_t* proto = nullptr;
std::atomic<uint64_t> proto_gen{0};

struct thread_scratch {
  hs_scratch_t* s = nullptr;
  uint64_t gen = 0;
  ~thread_scratch() {
    if (s != nullptr) {
      hs_free_scratch(s);
    }
  }
};
thread_local thread_scratch tls;

int on_match(unsigned, unsigned long long, unsigned long long, unsigned, void* ctx) {
  *static_cast<bool*>(ctx) = true;
  return 1;  // stop at the first match
}

// A clearer word than RE2's "invalid escape sequence" for a backreference, which RE2 refuses
// (\1 to \7 followed by an octal digit is an octal escape, not one).
std::string backreference_error(std::string_view p) {
  for (std::size_t i = 0; i + 1 < p.size(); ++i) {
    if (p[i] != '\\') {
      continue;
    }
    const char e = p[++i];
    const bool octal = e >= '1' && e <= '7' && i + 1 < p.size() && p[i + 1] >= '0' && p[i + 1] <= '7';
    if (e >= '1' && e <= '9' && !octal) {
      return "invalid escape sequence: backreferences are not supported";
    }
  }
  return {};
}

// Whether the pattern uses \C, which RE2 has and Go's regexp refuses.
bool has_any_byte_escape(std::string_view p) noexcept {
  for (std::size_t i = 0; i + 1 < p.size(); ++i) {
    if (p[i] != '\\') {
      continue;
    }
    const char e = p[++i];
    if (e == 'C') {
      return true;
    }
    if (e == 'Q') { // \Q...\E is literal text: a \C there is two characters
      const std::size_t end = p.find("\\E", i + 1);
      if (end == std::string_view::npos) {
        return false;
      }
      i = end + 1;
    }
  }
  return false;
}

// Named groups as Go's regexp reads them. Go (since 1.22) takes `(?<name>re)` for
// `(?P<name>re)`, which Debian's RE2 refuses: `pattern` is what to compile, the input or
// `respelled` with each `(?<` that opens a group (not one inside a class or \Q...\E; `(?<=` and
// `(?<!` stay, refused as Go refuses them) spelled `(?P<`, the added P's at `added` there. Go
// takes only ASCII letters, digits and `_` in a name, where RE2 takes any letter: `bad_name` is
// the first group that names another way, as written (`(?<é>`).
struct go_named_groups {
  std::string_view pattern;
  std::vector<std::size_t> added;
  std::string_view bad_name;
};

go_named_groups with_go_named_groups(std::string_view p, std::string& respelled) {
  go_named_groups g{p, {}, {}};
  if (p.find("(?") == std::string_view::npos) {
    return g;
  }
  respelled.clear();
  bool in_class = false;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      std::size_t end = i + 2;
      if (p[i + 1] == 'Q') { // literal text up to \E (or the end)
        end = p.find("\\E", i + 2);
        end = end == std::string_view::npos ? p.size() : end + 2;
      }
      respelled.append(p.substr(i, end - i));
      i = end - 1;
      continue;
    }
    if (in_class) {
      if (c == '[' && i + 1 < p.size() && p[i + 1] == ':') { // [:alpha:] does not end the class
        const std::size_t end = p.find(":]", i + 2);
        if (end != std::string_view::npos) {
          respelled.append(p.substr(i, end + 2 - i));
          i = end + 1;
          continue;
        }
      }
      in_class = c != ']';
      respelled.push_back(c);
      continue;
    }
    if (c == '[') {
      in_class = true;
      respelled.push_back(c);
      for (const char lead : {'^', ']'}) { // `[^`, then a leading ']' is literal
        if (i + 1 < p.size() && p[i + 1] == lead) {
          respelled.push_back(p[++i]);
        }
      }
      continue;
    }
    const bool angle = p.substr(i, 3) == "(?<" && i + 3 < p.size() && p[i + 3] != '=' && p[i + 3] != '!';
    const bool python = p.substr(i, 4) == "(?P<";
    if (angle || python) {
      const std::size_t name_at = i + (angle ? 3 : 4);
      const std::size_t close = p.find('>', name_at);
      if (close != std::string_view::npos && g.bad_name.empty()) {
        for (std::size_t k = name_at; k < close; ++k) {
          const char n = p[k];
          if (!(n == '_' || (n >= '0' && n <= '9') || (n >= 'a' && n <= 'z') || (n >= 'A' && n <= 'Z'))) {
            g.bad_name = p.substr(i, close + 1 - i);
            break;
          }
        }
      }
      if (angle) {
        respelled.append("(?");
        g.added.push_back(respelled.size());
        respelled.append("P<");
        i += 2;
        continue;
      }
    }
    respelled.push_back(c);
  }
  if (!g.added.empty()) {
    g.pattern = respelled;
  }
  return g;
}

// RE2's verdict on a pattern, as Go's regexp words it ("invalid repeat count: `{1001}`"), or
// "" when it is a pattern.
std::string re2_error(std::string_view p, const std::vector<std::size_t>& added = {}) {
  re2::RE2::Options options; // RE2's defaults are Go's: UTF-8, `.` without \n, ^ $ at the ends
  options.set_log_errors(false);
  const re2::RE2 re(re2::StringPiece(p.data(), p.size()), options);
  if (re.ok()) {
    return {};
  }
  const char* what = "invalid pattern";
  switch (re.error_code()) {
    case re2::RE2::ErrorBadEscape: what = "invalid escape sequence"; break;
    case re2::RE2::ErrorBadCharClass: what = "invalid character class"; break;
    case re2::RE2::ErrorBadCharRange: what = "invalid character class range"; break;
    case re2::RE2::ErrorMissingBracket: what = "missing closing ]"; break;
    case re2::RE2::ErrorMissingParen: what = "missing closing )"; break;
    case re2::RE2::ErrorUnexpectedParen: what = "unexpected )"; break;
    case re2::RE2::ErrorTrailingBackslash: what = "trailing backslash at end of expression"; break;
    case re2::RE2::ErrorRepeatArgument: what = "missing argument to repetition operator"; break;
    case re2::RE2::ErrorRepeatSize: what = "invalid repeat count"; break;
    case re2::RE2::ErrorRepeatOp: what = "invalid nested repetition operator"; break;
    case re2::RE2::ErrorBadPerlOp: what = "invalid or unsupported Perl syntax"; break;
    case re2::RE2::ErrorBadUTF8: what = "invalid UTF-8"; break;
    case re2::RE2::ErrorBadNamedCapture: what = "invalid named capture"; break;
    case re2::RE2::ErrorPatternTooLarge: what = "expression too large"; break;
    default: break;
  }
  if (re.error_arg().empty()) {
    return what;
  }
  // The part of the pattern quoted as written: without the P's a `(?<name>` was given.
  const std::string& arg = re.error_arg();
  std::string quoted;
  const std::size_t at = added.empty() ? std::string_view::npos : p.find(arg);
  for (std::size_t k = 0; k < arg.size(); ++k) {
    if (at == std::string_view::npos || std::find(added.begin(), added.end(), at + k) == added.end()) {
      quoted.push_back(arg[k]);
    }
  }
  return std::string(what) + ": `" + quoted + "`";
}

// Whether hyperscan, given translate()'s rewrite, finds a match exactly when RE2 does. Where
// the two dialects part and the rewrite does not bridge them, RE2 runs the pattern instead:
// \Q...\E (the rewrite would edit inside it), \v and \S inside a class (PCRE's \s holds the
// vertical tab), Unicode classes \p \P (case folding differs), \C, `{,n}`, a POSIX class
// inside a bracket (the rewrite does not follow it), multi-line mode (Go's ^ matches after a
// final \n, PCRE's does not) and any flag turned off.
bool hyperscan_exact(std::string_view p) {
  bool in_class = false;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[++i];
      if (e == 'Q' || e == 'v' || e == 'p' || e == 'P' || e == 'C' || (e == 'S' && in_class)) {
        return false;
      }
      continue;
    }
    if (in_class) {
      if (c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
        return false; // [:alpha:] inside a class: its ']' is not the class's end
      }
      in_class = c != ']';
      continue;
    }
    if (c == '[') {
      in_class = true;
      if (i + 1 < p.size() && p[i + 1] == '^') {
        ++i;
      }
      if (i + 1 < p.size() && p[i + 1] == ']') {
        ++i; // a leading ']' is literal
      }
      continue;
    }
    if (c == '{' && i + 1 < p.size() && p[i + 1] == ',') {
      return false;
    }
    if (c == '(' && i + 1 < p.size() && p[i + 1] == '?') {
      // Any flag turned off, and multi-line mode anywhere (Go's ^ matches after a final \n,
      // PCRE's does not), are RE2's.
      for (std::size_t j = i + 2; j < p.size() && std::string_view("imsU-").find(p[j]) != std::string_view::npos; ++j) {
        if (p[j] == '-' || p[j] == 'm') {
          return false;
        }
      }
    }
  }
  return true;
}

// RE2's `$` (without (?m)) matches only at the end of the text; hyperscan's (PCRE's) also
// matches before a final "\n". Rewrite `$` to `\z` (multi-line patterns are RE2's).
std::string translate(std::string_view p) {
  // Only patterns hyperscan_exact() accepts come here: none has multi-line mode.
  bool in_class = false;
  std::string out;
  for (std::size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      if (e == 's' || (e == 'S' && !in_class)) {
        // RE2's \s is [\t\n\f\r ]; PCRE's (hyperscan's) also holds \v. ([\S] stays PCRE's.)
        out += e == 'S' ? "[^\\t\\n\\f\\r ]" : in_class ? "\\t\\n\\f\\r " : "[\\t\\n\\f\\r ]";
        ++i;
        continue;
      }
      if (e >= '0' && e <= '7') {
        // An octal escape (re2_check refused the backreferences): up to three digits, as a
        // code point, so that PCRE cannot read it as a backreference.
        unsigned code = 0;
        std::size_t j = i + 1;
        for (; j < p.size() && j < i + 4 && p[j] >= '0' && p[j] <= '7'; ++j) {
          code = code * 8 + static_cast<unsigned>(p[j] - '0');
        }
        char hex[16];
        std::snprintf(hex, sizeof hex, "\\x{%x}", code);
        out += hex;
        i = j - 1;
        continue;
      }
      out += c;
      out += p[++i];
      continue;
    }
    if (c == '(' && !in_class && i + 1 < p.size() && p[i + 1] == '?') {
      // Flag groups: hyperscan has no U (ungreedy). Whether a match exists, all `matches` asks,
      // does not depend on greediness, so U is dropped.
      std::size_t j = i + 2;
      while (j < p.size() && std::string_view("imsU-").find(p[j]) != std::string_view::npos) {
        ++j;
      }
      if (j < p.size() && j > i + 2 && (p[j] == ')' || p[j] == ':')) {
        std::string flags;
        for (std::size_t k = i + 2; k < j; ++k) {
          if (p[k] != 'U') {
            flags += p[k];
          }
        }
        if (!flags.empty() && flags.back() == '-') {
          flags.pop_back();
        }
        if (!flags.empty() || p[j] == ':') {
          out += "(?" + flags + p[j];
        }
        i = j;
        continue;
      }
    }
    if (in_class) {
      in_class = c != ']';
    } else if (c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < p.size() && p[i + 1] == '^') {
        out += p[++i];
      }
      if (i + 1 < p.size() && p[i + 1] == ']') {
        out += p[++i];
      }
      continue;
    } else if (c == '$') {
      out += "\\z";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

// Length of the valid UTF-8 sequence starting at s[i] (1-4), or 0 if the bytes there are not one
// (Go's utf8.DecodeRuneInString returns RuneError, width 1, for those).
std::string_view as_go_reads(std::string_view text, std::string& buf) {
  if (simdjson::validate_utf8(text.data(), text.size())) {
    return text;
  }
  buf.clear();
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t w = util::utf8_sequence(text, i);
    if (w == 0) {
      buf += "\xEF\xBF\xBD"; // U+FFFD, one rune for the byte, as Go decodes it
      ++i;
    } else {
      buf.append(text.substr(i, w));
      i += w;
    }
  }
  return buf;
}

std::string hyperscan_expression(std::string_view re2_pattern) { return translate(re2_pattern); }

unsigned hyperscan_flags() noexcept { return HS_FLAG_SINGLEMATCH | HS_FLAG_UTF8 | HS_FLAG_ALLOWEMPTY; }

std::variant<regex_db, std::string> regex_db::compile(std::string_view written) {
  // RE2 (Go's regexp syntax and semantics) decides what is a pattern: what it refuses is an
  // error worded as Go words it, what it takes is never refused.
  // Go's regexp has no \C (any byte), which RE2 takes: refused as Go refuses it.
  if (has_any_byte_escape(written)) {
    return std::string("invalid escape sequence: `\\C`");
  }
  std::string respelled;
  const go_named_groups groups = with_go_named_groups(written, respelled);
  const std::string_view pattern = groups.pattern;
  if (std::string err = re2_error(pattern, groups.added); !err.empty()) {
    std::string ours = backreference_error(pattern);
    return ours.empty() ? err : ours;
  }
  if (!groups.bad_name.empty()) {
    return "invalid named capture: `" + std::string(groups.bad_name) + "`";
  }
  if (!hyperscan_exact(pattern)) {
    return regex_db(nullptr, std::string(pattern));
  }
  std::string text = translate(pattern);
  hs_database_t* db = nullptr;
  hs_compile_error_t* cerr = nullptr;
  // RE2 defaults: `.` excludes \n (no DOTALL), `^`/`$` at text boundaries (no MULTILINE).
  unsigned flags = hyperscan_flags();
  if (hs_compile(text.c_str(), flags, HS_MODE_BLOCK, nullptr, &db, &cerr) != HS_SUCCESS) {
    // A valid RE2 pattern hyperscan cannot take (`a{0}`, too large a repeat...): RE2 runs it.
    hs_free_compile_error(cerr);
    return regex_db(nullptr, std::string(pattern));
  }
  {
    std::lock_guard lock(proto_mu);
    if (hs_alloc_scratch(db, &proto) != HS_SUCCESS) {
      hs_free_database(db);
      return std::string("cannot allocate hyperscan scratch");
    }
    proto_gen.fetch_add(1, std::memory_order_release);
  }
  return regex_db(db, std::string(pattern));
}

regex_db::~regex_db() {
  if (db_ != nullptr) {
    hs_free_database(db_);
  }
}

int regex_db::search(std::string_view text) const noexcept {
  if (db_ == nullptr) {
    return dynamic_search(text, pattern_);
  }
  uint64_t gen = proto_gen.load(std::memory_order_acquire);
  if (tls.s == nullptr || tls.gen != gen) {
    std::lock_guard lock(proto_mu);
    if (tls.s != nullptr) {
      hs_free_scratch(tls.s);
      tls.s = nullptr;
    }
    if (proto == nullptr || hs_clone_scratch(proto, &tls.s) != HS_SUCCESS) {
      return -1;
    }
    tls.gen = proto_gen.load(std::memory_order_relaxed);
  }
  // HS_FLAG_UTF8 databases have undefined results on invalid UTF-8: such text is matched as Go
  // reads it, each bad byte a U+FFFD.
  thread_local std::string go_text;
  text = as_go_reads(text, go_text);
  bool matched = false;
  const char* data = text.empty() ? "" : text.data();
  hs_error_t rc = hs_scan(db_, data, static_cast<unsigned>(text.size()), 0, tls.s, on_match, &matched);
  if (rc != HS_SUCCESS && rc != HS_SCAN_TERMINATED) {
    return -1;
  }
  return matched ? 1 : 0;
}

int dynamic_search(std::string_view text, std::string_view pattern) noexcept {
  struct entry {
    std::string pattern;
    std::unique_ptr<re2::RE2> re; // null: not a valid pattern
  };
  constexpr std::size_t kept = 64;
  thread_local entry cache[kept];
  thread_local std::size_t next = 0;
  thread_local std::size_t used = 0;
  const entry* hit = nullptr;
  for (std::size_t i = 0; i < used; ++i) {
    if (cache[i].pattern == pattern) {
      hit = &cache[i];
      break;
    }
  }
  if (hit == nullptr) {
    entry& e = cache[next];
    next = (next + 1) % kept;
    used = used < kept ? used + 1 : kept;
    e.pattern.assign(pattern);
    re2::RE2::Options options; // RE2's defaults are Go's: UTF-8, `.` without \n, ^ $ at the ends
    options.set_log_errors(false);
    std::string respelled;
    const go_named_groups groups = with_go_named_groups(pattern, respelled);
    e.re = std::make_unique<re2::RE2>(re2::StringPiece(groups.pattern.data(), groups.pattern.size()), options);
    // Go has no \C, and takes only ASCII names: invalid patterns there.
    if (!e.re->ok() || has_any_byte_escape(pattern) || !groups.bad_name.empty()) {
      e.re.reset();
    }
    hit = &e;
  }
  if (hit->re == nullptr) {
    return -1;
  }
  thread_local std::string go_text;
  text = as_go_reads(text, go_text);
  return re2::RE2::PartialMatch(re2::StringPiece(text.data(), text.size()), *hit->re) ? 1 : 0;
}

}  // namespace vigil::expr::detail
