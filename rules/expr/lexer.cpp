#include "rules/expr/lexer.h"

#include <cerrno>
#include <cstdlib>

namespace vigil::expr::detail {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ident_start(char c) {
  // Bytes >= 0x80 are accepted as (parts of) Unicode letters.
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool is_ident_char(char c) { return is_ident_start(c) || is_digit(c); }
int hex_value(char c) {
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

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

constexpr std::string_view puncts[] = {"?.", "??", "..", "==", "!=", "<=", ">=", "**", "&&", "||",
                                       "(",  ")",  "[",  "]",  "{",  "}",  ",",  ":",  ";",  ".",
                                       "?",  "#",  "!",  "<",  ">",  "+",  "-",  "*",  "/",  "%",
                                       "^",  "|",  "="};

class lexer {
 public:
  lexer(std::string_view s, diagnostic& err) : s_(s), err_(err) {}

  std::optional<std::vector<token>> run() {
    std::vector<token> out;
    while (true) {
      skip_space();
      if (failed_) {
        return std::nullopt;
      }
      token t;
      t.line = line_;
      t.column = col();
      if (pos_ >= s_.size()) {
        t.kind = tok::eof;
        out.push_back(std::move(t));
        return out;
      }
      char c = s_[pos_];
      std::size_t start = pos_;
      if (is_digit(c) || (c == '.' && pos_ + 1 < s_.size() && is_digit(s_[pos_ + 1]) &&
                          (out.empty() || !ends_operand(out.back())))) {
        number(t);
      } else if (is_ident_start(c)) {
        while (pos_ < s_.size() && is_ident_char(s_[pos_])) {
          ++pos_;
        }
        t.kind = tok::ident;
      } else if (c == '"' || c == '\'') {
        quoted(t, c);
      } else if (c == '`') {
        raw(t);
      } else {
        t.kind = tok::punct;
        std::size_t n = 0;
        for (auto p : puncts) {
          if (s_.substr(pos_, p.size()) == p) {
            n = p.size();
            break;
          }
        }
        // `a?.5:1` is a ternary, not optional chaining.
        if (n == 2 && s_.substr(pos_, 2) == "?." && pos_ + 2 < s_.size() && is_digit(s_[pos_ + 2])) {
          n = 1;
        }
        if (n == 0) {
          return fail(t.line, t.column, "unrecognized character: `" + std::string(1, c) + "`");
        }
        pos_ += n;
      }
      if (failed_) {
        return std::nullopt;
      }
      t.text = s_.substr(start, pos_ - start);
      out.push_back(std::move(t));
    }
  }

 private:
  static bool ends_operand(const token& t) {
    return t.kind == tok::ident || t.kind == tok::integer || t.kind == tok::floating || t.kind == tok::string ||
           t.is_punct(")") || t.is_punct("]") || t.is_punct("}");
  }

  uint32_t col() const { return static_cast<uint32_t>(pos_ - line_start_ + 1); }

  std::nullopt_t fail(uint32_t line, uint32_t column, std::string msg) {
    if (!failed_) {
      err_ = diagnostic{line, column, std::move(msg)};
      failed_ = true;
    }
    return std::nullopt;
  }

  void newline_at(std::size_t i) {
    ++line_;
    line_start_ = i + 1;
  }

  void skip_space() {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == '\n') {
        newline_at(pos_);
        ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f') {
        ++pos_;
      } else if (static_cast<unsigned char>(c) == 0xC2 && pos_ + 1 < s_.size() &&
                 (static_cast<unsigned char>(s_[pos_ + 1]) == 0xA0 || static_cast<unsigned char>(s_[pos_ + 1]) == 0x85)) {
        pos_ += 2;  // NBSP, NEL
      } else if (s_.substr(pos_, 2) == "//") {
        while (pos_ < s_.size() && s_[pos_] != '\n') {
          ++pos_;
        }
      } else if (s_.substr(pos_, 2) == "/*") {
        uint32_t l = line_, cc = col();
        pos_ += 2;
        while (pos_ < s_.size() && s_.substr(pos_, 2) != "*/") {
          if (s_[pos_] == '\n') {
            newline_at(pos_);
          }
          ++pos_;
        }
        if (pos_ >= s_.size()) {
          fail(l, cc, "unclosed comment");
          return;
        }
        pos_ += 2;
      } else {
        return;
      }
    }
  }

  void number(token& t) {
    std::size_t start = pos_;
    std::string digits;
    auto take_digits = [&](auto pred) {
      while (pos_ < s_.size() && (pred(s_[pos_]) || s_[pos_] == '_')) {
        if (s_[pos_] != '_') {
          digits += s_[pos_];
        }
        ++pos_;
      }
    };
    int base = 10;
    if (s_[pos_] == '0' && pos_ + 1 < s_.size()) {
      char p = s_[pos_ + 1];
      if (p == 'x' || p == 'X') {
        base = 16;
      } else if (p == 'o' || p == 'O') {
        base = 8;
      } else if (p == 'b' || p == 'B') {
        base = 2;
      }
    }
    if (base != 10) {
      pos_ += 2;
      take_digits([&](char c) {
        int h = hex_value(c);
        return h >= 0 && h < base;
      });
      if (digits.empty()) {
        fail(t.line, t.column, "invalid number literal");
        return;
      }
    } else {
      bool is_float = false;
      take_digits(is_digit);
      if (pos_ + 1 < s_.size() && s_[pos_] == '.' && is_digit(s_[pos_ + 1])) {
        is_float = true;
        digits += '.';
        ++pos_;
        take_digits(is_digit);
      } else if (pos_ < s_.size() && s_[pos_] == '.' && (pos_ + 1 >= s_.size() || (s_[pos_ + 1] != '.' && !is_ident_start(s_[pos_ + 1])))) {
        is_float = true;  // `1.`
        ++pos_;
      }
      if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
        std::size_t save = pos_;
        std::string exp = "e";
        ++pos_;
        if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) {
          exp += s_[pos_++];
        }
        if (pos_ < s_.size() && is_digit(s_[pos_])) {
          while (pos_ < s_.size() && is_digit(s_[pos_])) {
            exp += s_[pos_++];
          }
          digits += exp;
          is_float = true;
        } else {
          pos_ = save;
        }
      }
      if (pos_ < s_.size() && is_ident_start(s_[pos_])) {
        fail(t.line, t.column, "invalid number literal: `" + std::string(s_.substr(start, pos_ - start + 1)) + "`");
        return;
      }
      if (is_float) {
        t.kind = tok::floating;
        t.f = std::strtod(digits.c_str(), nullptr);
        return;
      }
    }
    errno = 0;
    unsigned long long v = std::strtoull(digits.c_str(), nullptr, base);
    if (errno == ERANGE || v > static_cast<unsigned long long>(INT64_MAX)) {
      fail(t.line, t.column, "integer literal out of range: " + std::string(s_.substr(start, pos_ - start)));
      return;
    }
    t.kind = tok::integer;
    t.i = static_cast<int64_t>(v);
  }

  void quoted(token& t, char q) {
    ++pos_;
    t.kind = tok::string;
    while (true) {
      if (pos_ >= s_.size() || s_[pos_] == '\n') {
        fail(t.line, t.column, "literal not terminated");
        return;
      }
      char c = s_[pos_];
      if (c == q) {
        ++pos_;
        return;
      }
      if (c != '\\') {
        t.str += c;
        ++pos_;
        continue;
      }
      uint32_t ec = col();
      if (pos_ + 1 >= s_.size()) {
        fail(t.line, ec, "literal not terminated");
        return;
      }
      char e = s_[pos_ + 1];
      pos_ += 2;
      switch (e) {
        case 'n': t.str += '\n'; break;
        case 't': t.str += '\t'; break;
        case 'r': t.str += '\r'; break;
        case 'a': t.str += '\a'; break;
        case 'b': t.str += '\b'; break;
        case 'f': t.str += '\f'; break;
        case 'v': t.str += '\v'; break;
        case '\\': t.str += '\\'; break;
        case '\'': t.str += '\''; break;
        case '"': t.str += '"'; break;
        case '?': t.str += '?'; break;
        case '`': t.str += '`'; break;
        case 'x': {
          int h1 = pos_ < s_.size() ? hex_value(s_[pos_]) : -1;
          int h2 = pos_ + 1 < s_.size() ? hex_value(s_[pos_ + 1]) : -1;
          if (h1 < 0 || h2 < 0) {
            fail(t.line, ec, "invalid char escape");
            return;
          }
          t.str += static_cast<char>(h1 * 16 + h2);
          pos_ += 2;
          break;
        }
        case 'u':
        case 'U': {
          uint32_t cp = 0;
          if (e == 'u' && pos_ < s_.size() && s_[pos_] == '{') {
            ++pos_;
            int n = 0;
            while (pos_ < s_.size() && hex_value(s_[pos_]) >= 0 && n < 8) {
              cp = cp * 16 + static_cast<uint32_t>(hex_value(s_[pos_++]));
              ++n;
            }
            if (n == 0 || pos_ >= s_.size() || s_[pos_] != '}') {
              fail(t.line, ec, "invalid char escape");
              return;
            }
            ++pos_;
          } else {
            int n = e == 'u' ? 4 : 8;
            for (int k = 0; k < n; ++k) {
              int h = pos_ < s_.size() ? hex_value(s_[pos_]) : -1;
              if (h < 0) {
                fail(t.line, ec, "invalid char escape");
                return;
              }
              cp = cp * 16 + static_cast<uint32_t>(h);
              ++pos_;
            }
          }
          if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            fail(t.line, ec, "escape sequence is invalid Unicode code point");
            return;
          }
          append_utf8(t.str, cp);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            uint32_t v = static_cast<uint32_t>(e - '0');
            for (int k = 0; k < 2; ++k) {
              if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '7') {
                fail(t.line, ec, "invalid char escape");
                return;
              }
              v = v * 8 + static_cast<uint32_t>(s_[pos_++] - '0');
            }
            if (v > 255) {
              fail(t.line, ec, "octal escape value > 255");
              return;
            }
            t.str += static_cast<char>(v);
            break;
          }
          fail(t.line, ec, "invalid char escape");
          return;
      }
    }
  }

  void raw(token& t) {
    ++pos_;
    t.kind = tok::string;
    while (pos_ < s_.size() && s_[pos_] != '`') {
      if (s_[pos_] == '\n') {
        newline_at(pos_);
      }
      t.str += s_[pos_++];
    }
    if (pos_ >= s_.size()) {
      fail(t.line, t.column, "literal not terminated");
      return;
    }
    ++pos_;
  }

  std::string_view s_;
  diagnostic& err_;
  std::size_t pos_ = 0;
  std::size_t line_start_ = 0;
  uint32_t line_ = 1;
  bool failed_ = false;
};

}  // namespace

std::optional<std::vector<token>> tokenize(std::string_view source, diagnostic& err) {
  return lexer(source, err).run();
}

}  // namespace vigil::expr::detail
