#pragma once
// Internal to vigil_template: the parsed form of a template, the shape of Go's text/template/parse
// tree (lists of text and actions; pipelines of commands; commands of operands). Positions are
// byte offsets into tree::text, which execution errors turn into LINE:COL as Go does.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vigil::rules::tmpl {

namespace detail {
struct func_info;
}

struct pipe_node;

enum class arg_kind : std::uint8_t {
  dot,        ///< .
  nil,        ///< nil
  boolean,    ///< true / false
  number,     ///< 42, 1.5, 'a', 0x2A
  string,     ///< "…" or `…`
  field,      ///< .A.B (fields)
  variable,   ///< $x.A.B (text = "$x", fields = selectors)
  identifier, ///< a function name
  chain,      ///< (pipe).A / func.A: inner, then fields
  pipe,       ///< ( pipeline )
};

/// A number constant: untyped until used, so it keeps every reading that is exact.
struct number_const {
  bool is_int = false, is_uint = false, is_float = false;
  std::int64_t i = 0;
  std::uint64_t u = 0;
  double f = 0;
};

struct arg_node {
  arg_kind kind = arg_kind::dot;
  std::uint32_t pos = 0;
  std::string text;                      ///< source text of a constant, function name, "$x"
  std::string str;                       ///< decoded string constant
  bool truth = false;                    ///< boolean constant
  number_const num;                      ///< number constant
  std::vector<std::string> fields;       ///< selectors without their dots
  std::unique_ptr<arg_node> inner;       ///< chain: what the selectors apply to
  std::unique_ptr<pipe_node> pipe;       ///< parenthesized pipeline
  const detail::func_info* fn = nullptr; ///< identifier: resolved at parse time
};

struct command_node {
  std::uint32_t pos = 0;
  std::vector<arg_node> args; ///< args[0] is the function, field or value
};

struct pipe_node {
  std::uint32_t pos = 0;
  bool is_assign = false;        ///< `$x = …` rather than `$x := …`
  std::vector<std::string> decl; ///< declared or assigned variables ("$x")
  std::vector<command_node> cmds;
};

enum class node_kind : std::uint8_t { text, action, if_, range, with, break_, continue_ };

struct node {
  node_kind kind = node_kind::text;
  std::uint32_t pos = 0;
  std::string text;                ///< text node
  std::unique_ptr<pipe_node> pipe; ///< action, if, range, with
  std::vector<node> list;          ///< body
  std::vector<node> else_list;     ///< else branch
  bool has_else = false;
};

struct tree {
  std::string text;                    ///< the template source
  std::vector<std::uint32_t> newlines; ///< offsets of '\n' in text, for LINE:COL
  std::vector<node> root;

  /// 1-based line of a byte offset.
  [[nodiscard]] int line_of(std::uint32_t pos) const;
  /// Go's column: bytes since the start of the line (0-based).
  [[nodiscard]] int col_of(std::uint32_t pos) const;
};

namespace detail {
/// Go's String() of the nodes, used as the <NODE> of execution errors.
std::string to_string(const arg_node& n);
std::string to_string(const command_node& n);
std::string to_string(const pipe_node& n);
std::string to_string(const node& n);
} // namespace detail

} // namespace vigil::rules::tmpl
