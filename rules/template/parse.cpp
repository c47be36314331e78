// Lexer and parser of Go text/template (sections 3 and 4 of the contract): the same tokens,
// trim markers, comments, constants, scoping of variables and error messages as Go's
// text/template/parse, producing the tree of ast.h. Functions are resolved here, so an unknown
// or unsupported function is a load-time error.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <vector>

#include "rules/template/ast.h"
#include "rules/template/internal.h"
#include "rules/template/template.h"

namespace vigil::rules::tmpl {
namespace {

using detail::decode_rune;
using detail::go_quote;

constexpr int max_depth = 100; // nesting of parentheses and blocks; keeps the recursion (and the stack) bounded

enum class tok : std::uint8_t {
  error,
  eof,
  text,
  left_delim,
  right_delim,
  space,
  identifier,
  field,
  variable,
  dot,
  nil,
  boolean,
  number,
  char_constant,
  complex,
  string,
  raw_string,
  pipe,
  declare,
  assign,
  left_paren,
  right_paren,
  char_,
  kw_block,
  kw_break,
  kw_continue,
  kw_define,
  kw_else,
  kw_end,
  kw_if,
  kw_range,
  kw_template,
  kw_with,
};

struct token {
  tok type = tok::eof;
  std::uint32_t pos = 0;
  std::string_view val;
  std::string msg; ///< error tokens: the lexer's message
};

bool is_space_char(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Go's %#U: "U+0021 '!'".
std::string rune_desc(char32_t r) {
  char buf[16];
  const auto res = std::to_chars(buf, buf + sizeof buf, static_cast<std::uint32_t>(r), 16);
  std::string hex(buf, res.ptr);
  for (char& c : hex) {
    c = (c >= 'a' && c <= 'f') ? static_cast<char>(c - 0x20) : c;
  }
  while (hex.size() < 4) {
    hex.insert(hex.begin(), '0');
  }
  std::string out = "U+" + hex;
  if (detail::is_print(r)) {
    out += " '";
    detail::append_rune(out, r);
    out += '\'';
  }
  return out;
}

class lexer {
 public:
  explicit lexer(std::string_view in) : in_(in) {}

  std::vector<token> run() {
    while (lex_text()) {
    }
    out_.push_back(token{tok::eof, static_cast<std::uint32_t>(in_.size()), {}, {}});
    return std::move(out_);
  }

 private:
  std::string_view in_;
  std::size_t pos_ = 0;
  int paren_ = 0;
  std::vector<token> out_;

  void emit(tok t, std::size_t start, std::size_t end) {
    out_.push_back(token{t, static_cast<std::uint32_t>(start), in_.substr(start, end - start), {}});
  }
  bool error(std::size_t at, std::string msg) {
    out_.push_back(token{tok::error, static_cast<std::uint32_t>(at), {}, std::move(msg)});
    return false;
  }
  char32_t rune_at(std::size_t p, std::size_t& width) const {
    char32_t r = 0;
    width = decode_rune(in_, p, r);
    return r;
  }
  bool alnum_at(std::size_t p) const {
    if (p >= in_.size()) {
      return false;
    }
    std::size_t w = 0;
    const char32_t r = rune_at(p, w);
    return r == '_' || detail::is_letter_or_digit(r);
  }
  // `-` then one space character: the left trim marker.
  bool has_left_trim(std::size_t p) const { return p + 1 < in_.size() && in_[p] == '-' && is_space_char(in_[p + 1]); }
  // 0: not at a right delimiter; 1: "}}"; 2: " -}}" (trim marker).
  int at_right_delim(std::size_t p) const {
    if (p + 3 < in_.size() && is_space_char(in_[p]) && in_[p + 1] == '-' && in_.substr(p + 2, 2) == "}}") {
      return 2;
    }
    return in_.substr(p, 2) == "}}" ? 1 : 0;
  }
  bool at_terminator(std::size_t p) const {
    if (p >= in_.size()) {
      return true;
    }
    const char c = in_[p];
    if (is_space_char(c) || c == '.' || c == ',' || c == '|' || c == ':' || c == ')' || c == '(') {
      return true;
    }
    return in_.substr(p, 2) == "}}";
  }

  // Text up to the next action, trimmed as the action's left marker asks; then the action.
  bool lex_text() {
    const std::size_t x = in_.find("{{", pos_);
    if (x == std::string_view::npos) {
      if (pos_ < in_.size()) {
        emit(tok::text, pos_, in_.size());
      }
      pos_ = in_.size();
      return false;
    }
    std::size_t end = x;
    if (has_left_trim(x + 2)) {
      while (end > pos_ && is_space_char(in_[end - 1])) {
        --end;
      }
    }
    if (end > pos_) {
      emit(tok::text, pos_, end);
    }
    pos_ = x + 2;
    const std::size_t after = has_left_trim(pos_) ? 2 : 0;
    if (in_.substr(pos_ + after, 2) == "/*") {
      return lex_comment(x, pos_ + after + 2);
    }
    emit(tok::left_delim, x, x + 2);
    pos_ += after;
    paren_ = 0;
    return lex_inside_action();
  }

  bool lex_comment(std::size_t start, std::size_t p) {
    const std::size_t y = in_.find("*/", p);
    if (y == std::string_view::npos) {
      return error(start, "unclosed comment");
    }
    std::size_t q = y + 2;
    const int delim = at_right_delim(q);
    if (delim == 0) {
      return error(q, "comment ends before closing delimiter");
    }
    q += delim == 2 ? 4 : 2;
    if (delim == 2) {
      while (q < in_.size() && is_space_char(in_[q])) {
        ++q;
      }
    }
    pos_ = q;
    return true;
  }

  bool lex_inside_action() {
    for (;;) {
      const int delim = at_right_delim(pos_);
      if (delim != 0) {
        if (paren_ != 0) {
          return error(pos_, "unclosed left paren");
        }
        if (delim == 2) {
          pos_ += 2;
        }
        emit(tok::right_delim, pos_, pos_ + 2);
        pos_ += 2;
        if (delim == 2) {
          while (pos_ < in_.size() && is_space_char(in_[pos_])) {
            ++pos_;
          }
        }
        return true;
      }
      if (pos_ >= in_.size()) {
        return error(pos_, "unclosed action");
      }
      const char c = in_[pos_];
      bool ok = true;
      if (is_space_char(c)) {
        lex_space();
        continue;
      }
      switch (c) {
      case '=':
        emit(tok::assign, pos_, pos_ + 1);
        ++pos_;
        break;
      case ':':
        if (pos_ + 1 >= in_.size() || in_[pos_ + 1] != '=') {
          return error(pos_, "expected :=");
        }
        emit(tok::declare, pos_, pos_ + 2);
        pos_ += 2;
        break;
      case '|':
        emit(tok::pipe, pos_, pos_ + 1);
        ++pos_;
        break;
      case '"':
        ok = lex_quote();
        break;
      case '`':
        ok = lex_raw_quote();
        break;
      case '$':
        ok = lex_field_or_variable(tok::variable);
        break;
      case '\'':
        ok = lex_char();
        break;
      case '.':
        ok = pos_ + 1 < in_.size() && !is_digit(in_[pos_ + 1]) ? lex_field_or_variable(tok::field) : lex_number();
        break;
      case '(':
        ++paren_;
        emit(tok::left_paren, pos_, pos_ + 1);
        ++pos_;
        break;
      case ')':
        if (--paren_ < 0) {
          return error(pos_, "unexpected right paren");
        }
        emit(tok::right_paren, pos_, pos_ + 1);
        ++pos_;
        break;
      default:
        if (c == '+' || c == '-' || is_digit(c)) {
          ok = lex_number();
        } else if (alnum_at(pos_)) {
          ok = lex_identifier();
        } else {
          std::size_t w = 0;
          const char32_t r = rune_at(pos_, w);
          if (r < 0x80 && r > 0x20 && r < 0x7F) {
            emit(tok::char_, pos_, pos_ + 1);
            ++pos_;
          } else {
            return error(pos_, "unrecognized character in action: " + rune_desc(r));
          }
        }
        break;
      }
      if (!ok) {
        return false;
      }
    }
  }

  void lex_space() {
    const std::size_t start = pos_;
    while (pos_ < in_.size() && is_space_char(in_[pos_])) {
      ++pos_;
    }
    // In " -}}" the last space belongs to the closing delimiter.
    if (at_right_delim(pos_ - 1) == 2) {
      --pos_;
      if (pos_ == start) {
        return;
      }
    }
    emit(tok::space, start, pos_);
  }

  bool lex_quote() { return lex_escaped('"', tok::string, "unterminated quoted string"); }

  // A "..." string or a '.' character constant: escapes skipped, a newline or the end is an error.
  bool lex_escaped(char close, tok kind, const char* unterminated) {
    const std::size_t start = pos_++;
    for (;;) {
      if (pos_ >= in_.size() || in_[pos_] == '\n') {
        return error(start, unterminated);
      }
      const char c = in_[pos_++];
      if (c == '\\') {
        if (pos_ >= in_.size() || in_[pos_] == '\n') {
          return error(start, unterminated);
        }
        ++pos_;
      } else if (c == close) {
        break;
      }
    }
    emit(kind, start, pos_);
    return true;
  }

  bool lex_raw_quote() {
    const std::size_t start = pos_;
    const std::size_t end = in_.find('`', pos_ + 1);
    if (end == std::string_view::npos) {
      return error(start, "unterminated raw quoted string");
    }
    pos_ = end + 1;
    emit(tok::raw_string, start, pos_);
    return true;
  }

  bool lex_char() { return lex_escaped('\'', tok::char_constant, "unterminated character constant"); }

  // `$name` / `$`, or `.Name` / `.`.
  bool lex_field_or_variable(tok type) {
    const std::size_t start = pos_++;
    if (at_terminator(pos_)) {
      emit(type == tok::variable ? tok::variable : tok::dot, start, pos_);
      return true;
    }
    while (alnum_at(pos_)) {
      std::size_t w = 0;
      rune_at(pos_, w);
      pos_ += w;
    }
    if (!at_terminator(pos_)) {
      std::size_t w = 0;
      return error(pos_, "bad character " + rune_desc(rune_at(pos_, w)));
    }
    emit(type, start, pos_);
    return true;
  }

  bool lex_identifier() {
    const std::size_t start = pos_;
    while (alnum_at(pos_)) {
      std::size_t w = 0;
      rune_at(pos_, w);
      pos_ += w;
    }
    if (!at_terminator(pos_)) {
      std::size_t w = 0;
      return error(pos_, "bad character " + rune_desc(rune_at(pos_, w)));
    }
    const std::string_view word = in_.substr(start, pos_ - start);
    static constexpr std::pair<std::string_view, tok> keywords[] = {{"block", tok::kw_block},
                                                                    {"break", tok::kw_break},
                                                                    {"continue", tok::kw_continue},
                                                                    {"define", tok::kw_define},
                                                                    {"else", tok::kw_else},
                                                                    {"end", tok::kw_end},
                                                                    {"if", tok::kw_if},
                                                                    {"range", tok::kw_range},
                                                                    {"nil", tok::nil},
                                                                    {"template", tok::kw_template},
                                                                    {"with", tok::kw_with},
                                                                    {"true", tok::boolean},
                                                                    {"false", tok::boolean}};
    tok type = tok::identifier;
    for (const auto& [kw, t] : keywords) {
      if (kw == word) {
        type = t;
      }
    }
    emit(type, start, pos_);
    return true;
  }

  bool accept(std::string_view set) {
    if (pos_ < in_.size() && set.find(in_[pos_]) != std::string_view::npos) {
      ++pos_;
      return true;
    }
    return false;
  }
  void accept_run(std::string_view set) {
    while (accept(set)) {
    }
  }

  bool scan_number() {
    accept("+-");
    std::string_view digits = "0123456789_";
    if (accept("0")) {
      if (accept("xX")) {
        digits = "0123456789abcdefABCDEF_";
      } else if (accept("oO")) {
        digits = "01234567_";
      } else if (accept("bB")) {
        digits = "01_";
      }
    }
    accept_run(digits);
    if (accept(".")) {
      accept_run(digits);
    }
    if (digits.size() == 11 && accept("eE")) {
      accept("+-");
      accept_run("0123456789_");
    }
    if (digits.size() == 23 && accept("pP")) {
      accept("+-");
      accept_run("0123456789_");
    }
    accept("i");
    if (alnum_at(pos_)) { // the next thing must not be alphanumeric
      std::size_t w = 0;
      rune_at(pos_, w);
      pos_ += w;
      return false;
    }
    return true;
  }

  bool lex_number() {
    const std::size_t start = pos_;
    if (!scan_number()) {
      return error(start, "bad number syntax: " + go_quote(in_.substr(start, pos_ - start)));
    }
    if (pos_ < in_.size() && (in_[pos_] == '+' || in_[pos_] == '-')) { // complex: 1+2i
      if (!scan_number() || in_[pos_ - 1] != 'i') {
        return error(start, "bad number syntax: " + go_quote(in_.substr(start, pos_ - start)));
      }
      emit(tok::complex, start, pos_);
      return true;
    }
    emit(tok::number, start, pos_);
    return true;
  }
};

// ---- constants -------------------------------------------------------------------------------

int hex_digit(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// One escape or rune of a quoted literal (strconv.UnquoteChar); appends its bytes to `out`.
bool unquote_char(std::string_view s, std::size_t& i, char quote, std::string& out, char32_t& rune) {
  const char c = s[i];
  if (c == quote && (quote == '\'' || quote == '"')) {
    return false;
  }
  if (static_cast<unsigned char>(c) >= 0x80) {
    const std::size_t w = decode_rune(s, i, rune);
    out.append(s, i, w);
    i += w;
    return true;
  }
  if (c != '\\') {
    rune = static_cast<unsigned char>(c);
    out += c;
    ++i;
    return true;
  }
  if (i + 1 >= s.size()) {
    return false;
  }
  const char e = s[i + 1];
  i += 2;
  switch (e) {
  case 'a':
    rune = '\a';
    break;
  case 'b':
    rune = '\b';
    break;
  case 'f':
    rune = '\f';
    break;
  case 'n':
    rune = '\n';
    break;
  case 'r':
    rune = '\r';
    break;
  case 't':
    rune = '\t';
    break;
  case 'v':
    rune = '\v';
    break;
  case '\\':
    rune = '\\';
    break;
  case '\'':
  case '"':
    if (e != quote) {
      return false;
    }
    rune = static_cast<unsigned char>(e);
    break;
  case 'x':
  case 'u':
  case 'U': {
    const std::size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
    if (i + n > s.size()) {
      return false;
    }
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < n; ++k) {
      const int d = hex_digit(s[i + k]);
      if (d < 0) {
        return false;
      }
      v = v * 16 + static_cast<std::uint32_t>(d);
    }
    i += n;
    if (e == 'x') { // a single byte, not a rune
      rune = v;
      out += static_cast<char>(v);
      return true;
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
      return false;
    }
    rune = v;
    break;
  }
  case '0':
  case '1':
  case '2':
  case '3':
  case '4':
  case '5':
  case '6':
  case '7': {
    std::uint32_t v = static_cast<std::uint32_t>(e - '0');
    if (i + 2 > s.size()) {
      return false;
    }
    for (std::size_t k = 0; k < 2; ++k) {
      const char d = s[i + k];
      if (d < '0' || d > '7') {
        return false;
      }
      v = v * 8 + static_cast<std::uint32_t>(d - '0');
    }
    i += 2;
    if (v > 255) {
      return false;
    }
    rune = v;
    out += static_cast<char>(v);
    return true;
  }
  default:
    return false;
  }
  detail::append_rune(out, rune);
  return true;
}

// strconv.Unquote of a "…" or `…` literal.
bool unquote(std::string_view lit, std::string& out) {
  if (lit.size() < 2) {
    return false;
  }
  const std::string_view body = lit.substr(1, lit.size() - 2);
  if (lit[0] == '`') {
    for (const char c : body) {
      if (c != '\r') { // Go drops carriage returns from raw strings
        out += c;
      }
    }
    return true;
  }
  for (std::size_t i = 0; i < body.size();) {
    if (body[i] == '\n') {
      return false;
    }
    char32_t r = 0;
    if (!unquote_char(body, i, '"', out, r)) {
      return false;
    }
  }
  return true;
}

// Go's underscoreOK: underscores only between digits (or after a base prefix).
bool underscores_ok(std::string_view s) {
  char saw = '^';
  std::size_t i = 0;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    s.remove_prefix(1);
  }
  bool hex = false;
  if (s.size() >= 2 && s[0] == '0' && std::string_view("bBoOxX").find(s[1]) != std::string_view::npos) {
    i = 2;
    saw = '0';
    hex = s[1] == 'x' || s[1] == 'X';
  }
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (is_digit(c) || (hex && hex_digit(c) >= 0)) {
      saw = '0';
      continue;
    }
    if (c == '_') {
      if (saw != '0') {
        return false;
      }
      saw = '_';
      continue;
    }
    if (saw == '_') {
      return false;
    }
    saw = '!';
  }
  return saw != '_';
}

// strconv.ParseUint(s, 0, 64).
bool parse_uint(std::string_view s, std::uint64_t& out) {
  if (s.empty()) {
    return false;
  }
  const std::string_view orig = s;
  int base = 10;
  if (s[0] == '0' && s.size() > 1) {
    const char c = s[1];
    if (s.size() >= 3 && (c == 'x' || c == 'X')) {
      base = 16;
      s.remove_prefix(2);
    } else if (s.size() >= 3 && (c == 'o' || c == 'O')) {
      base = 8;
      s.remove_prefix(2);
    } else if (s.size() >= 3 && (c == 'b' || c == 'B')) {
      base = 2;
      s.remove_prefix(2);
    } else {
      base = 8;
      s.remove_prefix(1);
    }
  }
  std::uint64_t v = 0;
  bool underscores = false;
  for (const char c : s) {
    if (c == '_') {
      underscores = true;
      continue;
    }
    const int d = hex_digit(c);
    if (d < 0 || d >= base) {
      return false;
    }
    if (v > (UINT64_MAX - static_cast<std::uint64_t>(d)) / static_cast<std::uint64_t>(base)) {
      return false; // out of range
    }
    v = v * static_cast<std::uint64_t>(base) + static_cast<std::uint64_t>(d);
  }
  if (underscores && !underscores_ok(orig)) {
    return false;
  }
  out = v;
  return true;
}

// strconv.ParseInt(s, 0, 64).
bool parse_int(std::string_view s, std::int64_t& out) {
  bool neg = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  std::uint64_t u = 0;
  if (!parse_uint(s, u)) {
    return false;
  }
  if (neg) {
    if (u > static_cast<std::uint64_t>(INT64_MAX) + 1) {
      return false;
    }
    out = static_cast<std::int64_t>(0 - u);
    return true;
  }
  if (u > static_cast<std::uint64_t>(INT64_MAX)) {
    return false;
  }
  out = static_cast<std::int64_t>(u);
  return true;
}

// strconv.ParseFloat(s, 64): decimal or hexadecimal (with a p exponent) floating-point text.
bool parse_float(std::string_view s, double& out) {
  if (s.find('_') != std::string_view::npos && !underscores_ok(s)) {
    return false;
  }
  std::string t;
  for (const char c : s) {
    if (c != '_') {
      t += c;
    }
  }
  bool neg = false;
  std::string_view v = t;
  if (!v.empty() && (v[0] == '+' || v[0] == '-')) {
    neg = v[0] == '-';
    v.remove_prefix(1);
  }
  std::chars_format fmt = std::chars_format::general;
  if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
    if (v.find_first_of("pP") == std::string_view::npos) {
      return false;
    }
    v.remove_prefix(2);
    fmt = std::chars_format::hex;
  }
  if (v.empty() || !(is_digit(v[0]) || v[0] == '.' || (fmt == std::chars_format::hex && hex_digit(v[0]) >= 0))) {
    return false;
  }
  double d = 0;
  const auto res = std::from_chars(v.data(), v.data() + v.size(), d, fmt);
  if (res.ec != std::errc() || res.ptr != v.data() + v.size()) {
    return false;
  }
  out = neg ? -d : d;
  return true;
}

// ---- parser ----------------------------------------------------------------------------------

enum class marker : std::uint8_t { none, end, else_ };

class parser {
 public:
  parser(tree& t, std::vector<token> toks) : t_(t), toks_(std::move(toks)) {}

  parse_error error;

  bool parse() {
    while (peek().type != tok::eof) {
      if (failed_) {
        return false;
      }
      node n;
      marker m = marker::none;
      if (!text_or_action(n, m)) {
        return false;
      }
      if (m != marker::none) {
        return fail(n.pos, m == marker::end ? "unexpected {{end}}" : "unexpected {{else}}");
      }
      t_.root.push_back(std::move(n));
    }
    return !failed_;
  }

 private:
  tree& t_;
  std::vector<token> toks_;
  std::size_t i_ = 0;
  std::vector<std::string> vars_{"$"};
  int range_depth_ = 0;
  int depth_ = 0;
  bool failed_ = false;

  bool fail(std::uint32_t pos, const std::string& msg) {
    if (!failed_) {
      failed_ = true;
      error.line = t_.line_of(pos);
      error.message = "template: :" + std::to_string(error.line) + ": " + msg;
    }
    return false;
  }

  const token& next() {
    const token& t = toks_[std::min(i_, toks_.size() - 1)];
    ++i_;
    if (t.type == tok::error) {
      fail(t.pos, t.msg);
    }
    return t;
  }
  void backup() { --i_; }
  const token& peek() {
    const token& t = next();
    backup();
    return t;
  }
  const token& next_non_space() {
    const token* t = &next();
    while (t->type == tok::space) {
      t = &next();
    }
    return *t;
  }
  const token& peek_non_space() {
    const token& t = next_non_space();
    backup();
    return t;
  }

  // Go's item.String(), for "unexpected X in Y".
  static std::string describe(const token& t) {
    switch (t.type) {
    case tok::eof:
      return "EOF";
    case tok::error:
      return t.msg;
    case tok::kw_block:
    case tok::kw_break:
    case tok::kw_continue:
    case tok::kw_define:
    case tok::kw_else:
    case tok::kw_end:
    case tok::kw_if:
    case tok::kw_range:
    case tok::kw_template:
    case tok::kw_with:
    case tok::nil:
    case tok::dot:
      return "<" + std::string(t.val) + ">";
    default:
      break;
    }
    std::size_t i = 0;
    int runes = 0;
    for (; i < t.val.size() && runes < 10; ++runes) {
      char32_t r = 0;
      i += decode_rune(t.val, i, r);
    }
    return i < t.val.size() ? go_quote(t.val.substr(0, i)) + "..." : go_quote(t.val);
  }

  bool unexpected(const token& t, std::string_view context) {
    if (t.type == tok::error) {
      return fail(t.pos, t.msg);
    }
    return fail(t.pos, "unexpected " + describe(t) + " in " + std::string(context));
  }

  bool has_var(std::string_view name) const { return std::find(vars_.begin(), vars_.end(), name) != vars_.end(); }

  bool text_or_action(node& n, marker& m) {
    const token& t = next_non_space();
    if (t.type == tok::text) {
      n.kind = node_kind::text;
      n.pos = t.pos;
      n.text = std::string(t.val);
      return true;
    }
    if (t.type == tok::left_delim) {
      return action(n, m);
    }
    return unexpected(t, "input");
  }

  bool action(node& n, marker& m) {
    const token& t = next_non_space();
    switch (t.type) {
    case tok::kw_block:
    case tok::kw_define:
    case tok::kw_template:
      return fail(t.pos,
                  "{{" + std::string(t.val) + "}} is not supported by vigil (a notification format is one template)");
    case tok::kw_break:
    case tok::kw_continue:
      return loop_control(n, t);
    case tok::kw_else:
      return else_control(n, m);
    case tok::kw_end: {
      const token& d = next_non_space();
      if (d.type != tok::right_delim) {
        return unexpected(d, "end");
      }
      n.pos = t.pos;
      m = marker::end;
      return true;
    }
    case tok::kw_if:
      n.kind = node_kind::if_;
      return control(n, "if");
    case tok::kw_range:
      n.kind = node_kind::range;
      return control(n, "range");
    case tok::kw_with:
      n.kind = node_kind::with;
      return control(n, "with");
    default:
      break;
    }
    backup();
    n.kind = node_kind::action;
    n.pos = peek().pos;
    n.pipe = std::make_unique<pipe_node>();
    return pipeline(*n.pipe, "command", tok::right_delim);
  }

  bool loop_control(node& n, const token& t) {
    const bool is_break = t.type == tok::kw_break;
    const std::string name = is_break ? "{{break}}" : "{{continue}}";
    const token& d = next_non_space();
    if (d.type != tok::right_delim) {
      return unexpected(d, name);
    }
    if (range_depth_ == 0) {
      return fail(t.pos, name + " outside {{range}}");
    }
    n.kind = is_break ? node_kind::break_ : node_kind::continue_;
    n.pos = t.pos;
    return true;
  }

  bool else_control(node& n, marker& m) {
    const token& p = peek_non_space();
    if (p.type == tok::kw_if) { // {{else if …}}: the `if` is left for the enclosing control
      n.pos = p.pos;
      m = marker::else_;
      return true;
    }
    if (p.type == tok::kw_with) {
      return fail(p.pos, "{{else with}} is not supported by vigil (use {{else}}{{with …}}…{{end}})");
    }
    const token& d = next_non_space();
    if (d.type != tok::right_delim) {
      return unexpected(d, "else");
    }
    n.pos = d.pos;
    m = marker::else_;
    return true;
  }

  bool item_list(std::vector<node>& list, marker& m) {
    while (peek_non_space().type != tok::eof) {
      if (failed_) {
        return false;
      }
      node n;
      marker k = marker::none;
      if (!text_or_action(n, k)) {
        return false;
      }
      if (k != marker::none) {
        m = k;
        return true;
      }
      list.push_back(std::move(n));
    }
    return fail(peek().pos, "unexpected EOF");
  }

  // if / range / with: pipeline, body, optional else; variables declared inside end with it.
  bool control(node& n, const std::string& context) {
    if (++depth_ > max_depth) {
      return fail(peek().pos, "max expression depth exceeded");
    }
    const std::size_t mark = vars_.size();
    n.pipe = std::make_unique<pipe_node>();
    if (!pipeline(*n.pipe, context, tok::right_delim)) {
      return false;
    }
    n.pos = n.pipe->pos;
    if (context == "range") {
      ++range_depth_;
    }
    marker m = marker::none;
    const bool ok = item_list(n.list, m);
    if (context == "range") {
      --range_depth_;
    }
    if (!ok) {
      return false;
    }
    if (m == marker::else_) {
      n.has_else = true;
      if (context == "if" && peek().type == tok::kw_if) {
        next();
        node nested;
        nested.kind = node_kind::if_;
        if (!control(nested, "if")) {
          return false;
        }
        n.else_list.push_back(std::move(nested));
      } else {
        marker m2 = marker::none;
        if (!item_list(n.else_list, m2)) {
          return false;
        }
        if (m2 != marker::end) {
          return fail(peek().pos, "expected end; found {{else}}");
        }
      }
    }
    vars_.resize(mark);
    --depth_;
    return true;
  }

  bool pipeline(pipe_node& pipe, const std::string& context, tok end) {
    pipe.pos = peek_non_space().pos;
    std::uint32_t decl_pos = pipe.pos;
    for (;;) { // declarations: `$x :=`, `$x =`, `$i, $e :=` (range)
      const std::size_t save = i_;
      const token& v = next_non_space();
      if (v.type != tok::variable) {
        i_ = save;
        break;
      }
      const token& nx = next_non_space();
      if (nx.type == tok::assign || nx.type == tok::declare) {
        pipe.is_assign = nx.type == tok::assign;
        pipe.decl.emplace_back(v.val);
        decl_pos = v.pos;
        break;
      }
      if (nx.type == tok::char_ && nx.val == ",") {
        pipe.decl.emplace_back(v.val);
        if (context == "range" && pipe.decl.size() < 2) {
          const token& p = peek_non_space();
          if (p.type == tok::variable || p.type == tok::right_delim || p.type == tok::right_paren) {
            continue;
          }
          return fail(p.pos, "range can only initialize variables");
        }
        return fail(nx.pos, "too many declarations in " + context);
      }
      i_ = save;
      break;
    }
    if (pipe.is_assign) {
      for (const std::string& name : pipe.decl) {
        if (!has_var(name)) {
          return fail(decl_pos, "undefined variable \"" + name + "\"");
        }
      }
    } else {
      vars_.insert(vars_.end(), pipe.decl.begin(), pipe.decl.end());
    }
    for (;;) {
      const token& t = next_non_space();
      if (t.type == end) {
        return check_pipeline(pipe, context, t.pos);
      }
      switch (t.type) {
      case tok::boolean:
      case tok::char_constant:
      case tok::complex:
      case tok::dot:
      case tok::field:
      case tok::identifier:
      case tok::number:
      case tok::nil:
      case tok::raw_string:
      case tok::string:
      case tok::variable:
      case tok::left_paren: {
        backup();
        command_node cmd;
        if (!command(cmd)) {
          return false;
        }
        pipe.cmds.push_back(std::move(cmd));
        break;
      }
      default:
        return unexpected(t, context);
      }
    }
  }

  bool check_pipeline(const pipe_node& pipe, const std::string& context, std::uint32_t pos) {
    if (pipe.cmds.empty()) {
      return fail(pos, "missing value for " + context);
    }
    for (std::size_t i = 1; i < pipe.cmds.size(); ++i) {
      switch (pipe.cmds[i].args[0].kind) {
      case arg_kind::boolean:
      case arg_kind::dot:
      case arg_kind::nil:
      case arg_kind::number:
      case arg_kind::string:
        return fail(pipe.cmds[i].pos, "non executable command in pipeline stage " + std::to_string(i + 1));
      default:
        break;
      }
    }
    return true;
  }

  bool command(command_node& cmd) {
    cmd.pos = peek_non_space().pos;
    for (;;) {
      peek_non_space();
      arg_node op;
      bool have = false;
      if (!operand(op, have)) {
        return false;
      }
      if (have) {
        cmd.args.push_back(std::move(op));
      }
      const token& t = next();
      if (t.type == tok::space) {
        continue;
      }
      if (t.type == tok::right_delim || t.type == tok::right_paren) {
        backup();
        break;
      }
      if (t.type == tok::pipe) {
        break;
      }
      return unexpected(t, "operand");
    }
    if (cmd.args.empty()) {
      return fail(cmd.pos, "empty command");
    }
    // vigil implements part of fmt: a constant format is checked now rather than at send time.
    if (cmd.args.size() >= 2 && cmd.args[0].kind == arg_kind::identifier && cmd.args[0].text == "printf" &&
        cmd.args[1].kind == arg_kind::string) {
      const std::string msg = detail::check_printf_format(cmd.args[1].str);
      if (!msg.empty()) {
        return fail(cmd.args[1].pos, msg);
      }
    }
    return true;
  }

  bool operand(arg_node& op, bool& have) {
    if (!term(op, have)) {
      return false;
    }
    if (!have || peek().type != tok::field) {
      return !failed_;
    }
    const std::uint32_t pos = peek().pos;
    std::vector<std::string> sel;
    while (peek().type == tok::field) {
      sel.emplace_back(next().val.substr(1));
    }
    switch (op.kind) {
    case arg_kind::field:
    case arg_kind::variable:
      op.fields.insert(op.fields.end(), sel.begin(), sel.end());
      op.pos = pos; // Go positions the node at the first selector after the term
      return true;
    case arg_kind::boolean:
    case arg_kind::string:
    case arg_kind::number:
    case arg_kind::nil:
    case arg_kind::dot:
      return fail(pos, "unexpected . after term " + go_quote(detail::to_string(op)));
    default: {
      arg_node chain;
      chain.kind = arg_kind::chain;
      chain.pos = pos;
      chain.fields = std::move(sel);
      chain.inner = std::make_unique<arg_node>(std::move(op));
      op = std::move(chain);
      return true;
    }
    }
  }

  bool term(arg_node& op, bool& have) {
    const token& t = next_non_space();
    have = true;
    op.pos = t.pos;
    op.text = std::string(t.val);
    switch (t.type) {
    case tok::identifier:
      op.kind = arg_kind::identifier;
      op.fn = detail::find_function(t.val);
      if (op.fn == nullptr) {
        const std::string what =
            detail::is_unsupported_function(t.val) ? "\" not supported by vigil" : "\" not defined";
        return fail(t.pos, "function \"" + std::string(t.val) + what);
      }
      return true;
    case tok::dot:
      op.kind = arg_kind::dot;
      return true;
    case tok::nil:
      op.kind = arg_kind::nil;
      return true;
    case tok::variable:
      if (!has_var(t.val)) {
        return fail(t.pos, "undefined variable \"" + std::string(t.val) + "\"");
      }
      op.kind = arg_kind::variable;
      return true;
    case tok::field:
      op.kind = arg_kind::field;
      op.fields.emplace_back(t.val.substr(1));
      return true;
    case tok::boolean:
      op.kind = arg_kind::boolean;
      op.truth = t.val == "true";
      return true;
    case tok::char_constant:
    case tok::number:
    case tok::complex:
      return number(op, t);
    case tok::left_paren:
      if (++depth_ > max_depth) {
        return fail(t.pos, "max expression depth exceeded");
      }
      op.kind = arg_kind::pipe;
      op.pipe = std::make_unique<pipe_node>();
      if (!pipeline(*op.pipe, "parenthesized pipeline", tok::right_paren)) {
        return false;
      }
      --depth_;
      return true;
    case tok::string:
    case tok::raw_string:
      op.kind = arg_kind::string;
      if (!unquote(t.val, op.str)) {
        return fail(t.pos, "invalid syntax");
      }
      return true;
    default:
      backup();
      have = false;
      return !failed_;
    }
  }

  // Go's parse.newNumber: every exact reading of the constant (int, uint, float).
  bool number(arg_node& op, const token& t) {
    op.kind = arg_kind::number;
    number_const& n = op.num;
    const std::string_view text = t.val;
    if (t.type == tok::complex || (!text.empty() && text.back() == 'i')) {
      return fail(t.pos, "complex constant " + std::string(text) + " is not supported by vigil");
    }
    if (t.type == tok::char_constant) {
      std::size_t i = 1;
      std::string bytes;
      char32_t r = 0;
      if (text.size() < 3 || !unquote_char(text, i, '\'', bytes, r)) {
        return fail(t.pos, "invalid syntax");
      }
      if (text.substr(i) != "'") {
        return fail(t.pos, "malformed character constant: " + std::string(text));
      }
      n.is_int = n.is_uint = n.is_float = true;
      n.i = static_cast<std::int64_t>(r);
      n.u = r;
      n.f = static_cast<double>(r);
      return true;
    }
    std::uint64_t u = 0;
    if (parse_uint(text, u)) {
      n.is_uint = true;
      n.u = u;
    }
    std::int64_t i = 0;
    if (parse_int(text, i)) {
      n.is_int = true;
      n.i = i;
      if (i == 0) { // -0
        n.is_uint = true;
        n.u = 0;
      }
    }
    if (n.is_int) {
      n.is_float = true;
      n.f = static_cast<double>(n.i);
    } else if (n.is_uint) {
      n.is_float = true;
      n.f = static_cast<double>(n.u);
    } else {
      double f = 0;
      if (parse_float(text, f)) {
        if (text.find_first_of(".eEpP") == std::string_view::npos) {
          return fail(t.pos, "integer overflow: " + go_quote(text));
        }
        n.is_float = true;
        n.f = f;
        if (f >= -9.2233720368547758e18 && f < 9.2233720368547758e18 &&
            static_cast<double>(static_cast<std::int64_t>(f)) == f) {
          n.is_int = true;
          n.i = static_cast<std::int64_t>(f);
        }
        if (f >= 0 && f < 1.8446744073709552e19 && static_cast<double>(static_cast<std::uint64_t>(f)) == f) {
          n.is_uint = true;
          n.u = static_cast<std::uint64_t>(f);
        }
      }
    }
    if (!n.is_int && !n.is_uint && !n.is_float) {
      return fail(t.pos, "illegal number syntax: " + go_quote(text));
    }
    return true;
  }
};

void append_joined(std::string& out, const std::vector<std::string>& fields) {
  for (const std::string& f : fields) {
    out += '.';
    out += f;
  }
}

} // namespace

int tree::line_of(std::uint32_t pos) const {
  return 1 + static_cast<int>(std::lower_bound(newlines.begin(), newlines.end(), pos) - newlines.begin());
}

int tree::col_of(std::uint32_t pos) const {
  const auto it = std::lower_bound(newlines.begin(), newlines.end(), pos);
  if (it == newlines.begin()) {
    return static_cast<int>(pos);
  }
  return static_cast<int>(pos - (*(it - 1) + 1));
}

namespace detail {

std::string to_string(const arg_node& n) {
  std::string out;
  switch (n.kind) {
  case arg_kind::dot:
    return ".";
  case arg_kind::nil:
    return "nil";
  case arg_kind::boolean:
    return n.truth ? "true" : "false";
  case arg_kind::number:
  case arg_kind::string:
  case arg_kind::identifier:
    return n.text;
  case arg_kind::field:
    append_joined(out, n.fields);
    return out;
  case arg_kind::variable:
    out = n.text;
    append_joined(out, n.fields);
    return out;
  case arg_kind::chain:
    out = to_string(*n.inner);
    append_joined(out, n.fields);
    return out;
  case arg_kind::pipe:
    return "(" + to_string(*n.pipe) + ")";
  }
  return out;
}

std::string to_string(const command_node& n) {
  std::string out;
  for (std::size_t i = 0; i < n.args.size(); ++i) {
    if (i > 0) {
      out += ' ';
    }
    out += to_string(n.args[i]);
  }
  return out;
}

std::string to_string(const pipe_node& n) {
  std::string out;
  for (std::size_t i = 0; i < n.decl.size(); ++i) {
    out += i > 0 ? ", " : "";
    out += n.decl[i];
  }
  if (!n.decl.empty()) {
    out += n.is_assign ? " = " : " := ";
  }
  for (std::size_t i = 0; i < n.cmds.size(); ++i) {
    if (i > 0) {
      out += " | ";
    }
    out += to_string(n.cmds[i]);
  }
  return out;
}

std::string to_string(const node& n) {
  auto list = [](const std::vector<node>& l) {
    std::string s;
    for (const node& e : l) {
      s += to_string(e);
    }
    return s;
  };
  switch (n.kind) {
  case node_kind::text:
    return n.text;
  case node_kind::action:
    return "{{" + to_string(*n.pipe) + "}}";
  case node_kind::break_:
    return "{{break}}";
  case node_kind::continue_:
    return "{{continue}}";
  case node_kind::if_:
  case node_kind::range:
  case node_kind::with: {
    const char* kw = n.kind == node_kind::if_ ? "if" : n.kind == node_kind::range ? "range" : "with";
    std::string out = std::string("{{") + kw + " " + to_string(*n.pipe) + "}}" + list(n.list);
    if (n.has_else) {
      out += "{{else}}" + list(n.else_list);
    }
    return out + "{{end}}";
  }
  }
  return {};
}

} // namespace detail

std::variant<templ, parse_error> templ::parse(std::string_view text) {
  auto t = std::make_shared<tree>();
  t->text = std::string(text);
  for (std::size_t i = 0; i < t->text.size(); ++i) {
    if (t->text[i] == '\n') {
      t->newlines.push_back(static_cast<std::uint32_t>(i));
    }
  }
  lexer lx(t->text);
  parser p(*t, lx.run());
  if (!p.parse()) {
    return p.error;
  }
  return templ(std::move(t));
}

} // namespace vigil::rules::tmpl
