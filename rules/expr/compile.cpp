// Parser + static checker: builds the program's node tree directly (docs/expr-subset.md §3, §4,
// §16). Precedence climbing mirrors expr-lang's parser so that the odd cases (`not a == b`,
// `a ?? b + c`, `a < b < c`) parse the same way.

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>

#include "rules/expr/builtins.h"
#include "rules/expr/expr.h"
#include "rules/expr/lexer.h"
#include "rules/expr/program_data.h"

namespace vigil::expr {
namespace {

using detail::tok;
using detail::token;
using h = value_hint;

constexpr int max_depth = 200;  // nesting limit: keeps evaluation recursion bounded

struct op_info {
  std::string_view name;
  int prec;
  bool right_assoc;
};
constexpr op_info binary_ops[] = {
    {"|", 0, false},           {"or", 10, false},        {"||", 10, false},       {"and", 15, false},
    {"&&", 15, false},         {"==", 20, false},        {"!=", 20, false},       {"<", 20, false},
    {">", 20, false},          {">=", 20, false},        {"<=", 20, false},       {"in", 20, false},
    {"matches", 20, false},    {"contains", 20, false},  {"startsWith", 20, false}, {"endsWith", 20, false},
    {"..", 25, false},         {"+", 30, false},         {"-", 30, false},        {"*", 60, false},
    {"/", 60, false},          {"%", 60, false},         {"**", 100, true},       {"^", 100, true},
    {"??", 500, false},
};

const op_info* find_binary(const token& t) {
  if (t.kind != tok::punct && t.kind != tok::ident) {
    return nullptr;
  }
  for (const auto& o : binary_ops) {
    if (o.name == t.text) {
      return &o;
    }
  }
  return nullptr;
}

bool negatable(const token& t) {
  return t.kind == tok::ident &&
         (t.text == "in" || t.text == "matches" || t.text == "contains" || t.text == "startsWith" || t.text == "endsWith");
}

bool is_comparison(std::string_view op) { return op == "<" || op == ">" || op == "<=" || op == ">="; }
bool known(h x) { return x != h::any; }
bool numeric(h x) { return x == h::integer || x == h::floating; }

h hint_of(const value& v) {
  switch (v.kind) {
    case value_kind::nil: return h::nil;
    case value_kind::boolean: return h::boolean;
    case value_kind::integer: return h::integer;
    case value_kind::floating: return h::floating;
    case value_kind::string: return h::string;
    case value_kind::list: return h::list;
    case value_kind::map: return h::map;
    default: return h::any;
  }
}

struct parse_abort {};

class compiler {
 public:
  compiler(std::string_view src, const schema& s) : schema_(s), d_(std::make_shared<detail::program_data>()) {
    d_->source = std::string(src);
  }

  std::variant<program, std::vector<diagnostic>> run() {
    diagnostic lex_err;
    auto toks = detail::tokenize(d_->source, lex_err);
    if (!toks) {
      return std::vector<diagnostic>{lex_err};
    }
    toks_ = std::move(*toks);
    try {
      node_id root = parse_expression(0);
      if (cur().kind != tok::eof) {
        syntax_error(cur(), "unexpected token " + describe(cur()));
      }
      d_->root = root;
    } catch (const parse_abort&) {
    }
    if (!diags_.empty()) {
      return std::move(diags_);
    }
    return program(std::move(d_));
  }

 private:
  // ---------- tokens and errors ----------
  const token& cur() const { return toks_[pos_]; }
  const token& peek(std::size_t k = 1) const { return toks_[std::min(pos_ + k, toks_.size() - 1)]; }
  void next() {
    if (pos_ + 1 < toks_.size()) {
      ++pos_;
    }
  }
  static std::string describe(const token& t) {
    if (t.kind == tok::eof) {
      return "EOF";
    }
    return "\"" + std::string(t.text) + "\"";
  }
  [[noreturn]] void syntax_error(const token& t, std::string msg) {
    diags_.push_back({t.line, t.column, std::move(msg)});
    throw parse_abort{};
  }
  void error(uint32_t line, uint32_t col, std::string msg) { diags_.push_back({line, col, std::move(msg)}); }
  void error(const token& t, std::string msg) { error(t.line, t.column, std::move(msg)); }
  void expect(std::string_view p) {
    if (!cur().is_punct(p)) {
      syntax_error(cur(), "unexpected token " + describe(cur()) + ", expected \"" + std::string(p) + "\"");
    }
    next();
  }

  // ---------- node construction ----------
  node_id add(node n, const token& at) {
    n.line = at.line;
    n.column = at.column;
    int d = 1;
    for (node_id c : {n.a, n.b, n.c}) {
      if (c != no_node) {
        d = std::max(d, depth_[c] + 1);
      }
    }
    for (uint32_t i = 0; i < n.args_count; ++i) {
      d = std::max(d, depth_[d_->args[n.args_begin + i]] + 1);
    }
    if (d > max_depth) {
      syntax_error(at, "expression is too deeply nested");
    }
    d_->nodes.push_back(n);
    depth_.push_back(d);
    return static_cast<node_id>(d_->nodes.size() - 1);
  }
  const node& at(node_id id) const { return d_->nodes[id]; }
  h hint(node_id id) const { return d_->nodes[id].hint; }
  bool is_literal(node_id id) const { return at(id).kind == node_kind::literal; }
  std::optional<bool> literal_bool(node_id id) const {
    if (is_literal(id) && at(id).constant.kind == value_kind::boolean) {
      return at(id).constant.as_bool();
    }
    return std::nullopt;
  }

  std::string_view intern(const std::string& s) {
    auto buf = std::make_unique<char[]>(s.size() + 1);
    std::memcpy(buf.get(), s.data(), s.size());
    buf[s.size()] = '\0';
    std::string_view v(buf.get(), s.size());
    d_->strings.push_back(std::move(buf));
    return v;
  }

  node_id literal(value v, const token& t) {
    node n;
    n.kind = node_kind::literal;
    n.constant = v;
    n.hint = hint_of(v);
    return add(n, t);
  }

  node_id make_member(node_id obj, std::string_view key, bool optional, const token& t) {
    h oh = hint(obj);
    if (oh == h::string || numeric(oh) || oh == h::boolean || oh == h::nil) {
      error(t, "cannot fetch " + std::string(key) + " from " + to_string(oh));
    }
    node n;
    n.kind = node_kind::member;
    n.a = obj;
    n.constant = value::string(key);
    n.flags = optional ? flag_optional : 0;
    return add(n, t);
  }

  node_id make_index(node_id obj, node_id idx, bool optional, const token& t) {
    if (is_literal(idx) && at(idx).constant.kind == value_kind::string) {
      return make_member(obj, at(idx).constant.as_string(), optional, t);
    }
    h oh = hint(obj);
    if (numeric(oh) || oh == h::boolean || oh == h::nil) {
      error(t, std::string("cannot fetch index from ") + to_string(oh));
    }
    node n;
    n.kind = node_kind::index;
    n.a = obj;
    n.b = idx;
    n.flags = optional ? flag_optional : 0;
    return add(n, t);
  }

  node_id make_not(node_id x, const token& t) {
    h xh = hint(x);
    if (known(xh) && xh != h::boolean) {
      error(t, std::string("invalid operation: not (mismatched type ") + to_string(xh) + ")");
    }
    if (auto b = literal_bool(x)) {
      return literal(value::boolean(!*b), t);
    }
    node n;
    n.kind = node_kind::not_;
    n.a = x;
    n.hint = h::boolean;
    return add(n, t);
  }

  node_id make_unary_num(bool minus, node_id x, const token& t) {
    h xh = hint(x);
    if (known(xh) && !numeric(xh)) {
      error(t, std::string("invalid operation: ") + (minus ? "-" : "+") + " (mismatched type " + to_string(xh) + ")");
    }
    if (is_literal(x) && at(x).constant.is_number()) {
      value v = at(x).constant;
      if (minus) {
        v = v.kind == value_kind::integer ? value::integer(static_cast<int64_t>(0ull - static_cast<uint64_t>(v.as_int())))
                                          : value::floating(-v.as_float());
      }
      return literal(v, t);
    }
    node n;
    n.kind = minus ? node_kind::negate : node_kind::plus;
    n.a = x;
    n.hint = numeric(xh) ? xh : h::any;
    return add(n, t);
  }

  void mismatch(const token& t, std::string_view op, h a, h b) {
    error(t, "invalid operation: " + std::string(op) + " (mismatched types " + to_string(a) + " and " + to_string(b) +
                 ")");
  }

  node_id make_binary(std::string_view op, node_id l, node_id r, const token& t) {
    h lh = hint(l), rh = hint(r);
    node n;
    n.a = l;
    n.b = r;
    n.hint = h::boolean;
    if (op == "&&" || op == "and" || op == "||" || op == "or") {
      bool is_and = op == "&&" || op == "and";
      if ((known(lh) && lh != h::boolean) || (known(rh) && rh != h::boolean)) {
        mismatch(t, op, lh, rh);
      }
      auto lb = literal_bool(l), rb = literal_bool(r);
      // §11 constant folding: the folded-away side is never evaluated.
      if (is_and) {
        if (lb) {
          return *lb ? r : l;
        }
        if (rb) {
          return *rb ? l : r;
        }
      } else {
        if (lb) {
          return *lb ? l : r;
        }
        if (rb) {
          return *rb ? r : l;
        }
      }
      n.kind = is_and ? node_kind::and_ : node_kind::or_;
      n.hint = lh == h::boolean && rh == h::boolean ? h::boolean : h::any;
      return add(n, t);
    }
    if (op == "==" || op == "!=") {
      if (known(lh) && known(rh) && lh != h::nil && rh != h::nil && lh != rh && !(numeric(lh) && numeric(rh))) {
        mismatch(t, op, lh, rh);
      }
      n.kind = op == "==" ? node_kind::eq : node_kind::ne;
      return add(n, t);
    }
    if (is_comparison(op)) {
      bool ok_l = !known(lh) || numeric(lh) || lh == h::string;
      bool ok_r = !known(rh) || numeric(rh) || rh == h::string;
      bool pair = !known(lh) || !known(rh) || (numeric(lh) && numeric(rh)) || lh == rh;
      if (!ok_l || !ok_r || !pair) {
        mismatch(t, op, lh, rh);
      }
      n.kind = op == "<" ? node_kind::lt : op == "<=" ? node_kind::le : op == ">" ? node_kind::gt : node_kind::ge;
      return add(n, t);
    }
    if (op == "in") {
      if (is_literal(r) && (at(r).flags & flag_string_literals) != 0) {
        if (known(lh) && lh != h::string && lh != h::nil) {
          error(t, std::string("cannot use ") + to_string(lh) + " as a key of a string set (mismatched types " +
                       to_string(lh) + " and string)");
        }
        std::vector<std::string_view> items;
        const value& lst = at(r).constant;
        for (std::size_t i = 0; i < lst.list_size(); ++i) {
          items.push_back(lst.list_data()[i].as_string());
        }
        d_->sets.emplace_back(std::move(items));
        n.kind = node_kind::in_set;
        n.slot = static_cast<uint32_t>(d_->sets.size() - 1);
        return add(n, t);
      }
      if (rh == h::string || numeric(rh) || rh == h::boolean) {
        error(t, std::string("operator \"in\" not defined on ") + to_string(rh));
      }
      n.kind = node_kind::in_list;
      return add(n, t);
    }
    if (op == "contains" || op == "startsWith" || op == "endsWith") {
      if ((known(lh) && lh != h::string && lh != h::nil) || (known(rh) && rh != h::string && rh != h::nil)) {
        mismatch(t, op, lh, rh);
      }
      n.kind = op == "contains" ? node_kind::contains : op == "startsWith" ? node_kind::starts_with : node_kind::ends_with;
      return add(n, t);
    }
    if (op == "matches") {
      if (known(lh) && lh != h::string && lh != h::nil) {
        mismatch(t, op, lh, rh);
      }
      // A literal pattern is compiled by hyperscan at load time (a bad one is a load error); a
      // computed one is compiled when evaluated, each distinct pattern once per thread (a bad
      // one is an evaluation error), as expr compiles it per evaluation (§10.1).
      if (!is_literal(r)) {
        if (known(rh) && rh != h::string) {
          mismatch(t, op, lh, rh);
        }
        n.kind = node_kind::matches_dynamic;
        return add(n, t);
      }
      if (at(r).constant.kind != value_kind::string) {
        mismatch(t, op, lh, rh);
        n.kind = node_kind::literal;
        n.constant = value::boolean(false);
        return add(n, t);
      }
      auto re = detail::regex_db::compile(at(r).constant.as_string());
      if (auto* msg = std::get_if<std::string>(&re)) {
        error(at(r).line, at(r).column, "invalid regular expression: " + *msg);
        n.kind = node_kind::literal;
        n.constant = value::boolean(false);
        return add(n, t);
      }
      d_->regexes.push_back(std::move(std::get<detail::regex_db>(re)));
      n.kind = node_kind::matches;
      n.slot = static_cast<uint32_t>(d_->regexes.size() - 1);
      return add(n, t);
    }
    if (op == "??") {
      n.kind = node_kind::coalesce;
      n.hint = lh == h::nil ? rh : (lh == rh ? lh : h::any);
      return add(n, t);
    }
    // arithmetic
    bool strings = lh == h::string && rh == h::string;
    bool ok_l = !known(lh) || numeric(lh) || (op == "+" && lh == h::string);
    bool ok_r = !known(rh) || numeric(rh) || (op == "+" && rh == h::string);
    bool pair = !known(lh) || !known(rh) || (numeric(lh) && numeric(rh)) || strings;
    if (!ok_l || !ok_r || !pair || (op == "%" && (lh == h::floating || rh == h::floating))) {
      mismatch(t, op, lh, rh);
    }
    if (op == "+") {
      n.kind = node_kind::add;
    } else if (op == "-") {
      n.kind = node_kind::sub;
    } else if (op == "*") {
      n.kind = node_kind::mul;
    } else if (op == "/") {
      n.kind = node_kind::div;
    } else if (op == "%") {
      n.kind = node_kind::mod;
    } else {
      n.kind = node_kind::pow;
    }
    if (n.kind == node_kind::div || n.kind == node_kind::pow) {
      n.hint = h::floating;
    } else if (strings) {
      n.hint = h::string;
    } else if (lh == h::integer && rh == h::integer) {
      n.hint = h::integer;
    } else if (numeric(lh) && numeric(rh)) {
      n.hint = h::floating;
    } else {
      n.hint = h::any;
    }
    return add(n, t);
  }

  // ---------- grammar ----------
  struct depth_guard {
    compiler& c;
    explicit depth_guard(compiler& cc, const token& t) : c(cc) {
      if (++c.nesting_ > max_depth) {
        c.syntax_error(t, "expression is too deeply nested");
      }
    }
    ~depth_guard() { --c.nesting_; }
  };

  node_id parse_expression(int prec) {
    depth_guard g(*this, cur());
    node_id left = parse_primary();
    std::string_view prev_op;
    while (true) {
      token op_tok = cur();
      bool negate = false;
      if (op_tok.kind == tok::ident && op_tok.text == "not") {
        if (!negatable(peek())) {
          syntax_error(peek(), "unexpected token " + describe(peek()));
        }
        const op_info* o = find_binary(peek());
        if (o->prec < prec) {
          break;
        }
        next();
        negate = true;
        op_tok = cur();
      }
      const op_info* o = find_binary(op_tok);
      if (o == nullptr || o->prec < prec) {
        break;
      }
      next();
      if (o->name == "|") {
        syntax_error(op_tok, "the pipe operator `|` is not supported");
      }
      if (o->name == "..") {
        syntax_error(op_tok, "the range operator `..` is not supported");
      }
      if (prev_op == "??" && o->name != "??") {
        syntax_error(op_tok, "Operator (" + std::string(o->name) +
                                 ") and coalesce expressions (?\?) cannot be mixed. Wrap either by parentheses.");
      }
      prev_op = o->name;
      if (is_comparison(o->name)) {
        left = parse_comparison(left, op_tok, o->prec);
        continue;
      }
      node_id right = parse_expression(o->right_assoc ? o->prec : o->prec + 1);
      left = make_binary(o->name, left, right, op_tok);
      if (negate) {
        left = make_not(left, op_tok);
      }
    }
    if (prec == 0) {
      left = parse_conditional(left);
    }
    return left;
  }

  // `a < b < c` is `a < b && b < c` (expr >= 1.16.9).
  node_id parse_comparison(node_id left, token op_tok, int prec) {
    node_id root = no_node;
    while (true) {
      node_id right = parse_expression(prec + 1);
      node_id cmp = make_binary(op_tok.text, left, right, op_tok);
      root = root == no_node ? cmp : make_binary("&&", root, cmp, op_tok);
      left = right;
      op_tok = cur();
      if (!(op_tok.kind == tok::punct && is_comparison(op_tok.text))) {
        break;
      }
      next();
    }
    return root;
  }

  node_id parse_conditional(node_id cond) {
    while (cur().is_punct("?")) {
      token q = cur();
      next();
      node_id yes;
      if (cur().is_punct(":")) {
        yes = cond;  // `a ?: b`
      } else {
        yes = parse_expression(0);
        if (!cur().is_punct(":")) {
          syntax_error(cur(), "unexpected token " + describe(cur()) + ", expected \":\"");
        }
      }
      next();
      node_id no = parse_expression(0);
      h ch = hint(cond);
      if (known(ch) && ch != h::boolean) {
        error(q, std::string("non-bool expression (type ") + to_string(ch) + ") used as condition");
      }
      node n;
      n.kind = node_kind::ternary;
      n.a = cond;
      n.b = yes;
      n.c = no;
      n.hint = hint(yes) == hint(no) ? hint(yes) : h::any;
      cond = add(n, q);
    }
    return cond;
  }

  node_id parse_primary() {
    token t = cur();
    if ((t.kind == tok::ident && t.text == "not") || t.is_punct("!")) {
      next();
      node_id x = parse_expression(50);
      return parse_postfix(make_not(x, t), false);
    }
    if (t.is_punct("-") || t.is_punct("+")) {
      next();
      node_id x = parse_expression(90);
      return parse_postfix(make_unary_num(t.text == "-", x, t), false);
    }
    if (t.is_punct("(")) {
      next();
      node_id x = parse_expression(0);
      expect(")");
      return parse_postfix(x, false);
    }
    return parse_secondary();
  }

  node_id parse_secondary() {
    token t = cur();
    switch (t.kind) {
      case tok::integer: next(); return parse_postfix(literal(value::integer(t.i), t), false);
      case tok::floating: next(); return parse_postfix(literal(value::floating(t.f), t), false);
      case tok::string: next(); return parse_postfix(literal(value::string(intern(t.str)), t), false);
      case tok::eof: syntax_error(t, "unexpected end of expression");
      case tok::ident: {
        if (t.text == "true" || t.text == "false") {
          next();
          return parse_postfix(literal(value::boolean(t.text == "true"), t), false);
        }
        if (t.text == "nil") {
          next();
          return parse_postfix(literal(value::nil(), t), false);
        }
        if (t.text == "let" || t.text == "if") {
          syntax_error(t, "`" + std::string(t.text) + "` is not supported");
        }
        if (t.text == "$env") {
          syntax_error(t, "`$env` is not supported");
        }
        if (find_binary(t) != nullptr || t.text == "not") {
          syntax_error(t, "unexpected token " + describe(t));
        }
        if (peek().is_punct("(")) {
          return parse_postfix(parse_call(), false);
        }
        return parse_path();
      }
      case tok::punct: break;
    }
    if (t.is_punct("[")) {
      return parse_postfix(parse_array(), false);
    }
    if (t.is_punct("{")) {
      return parse_postfix(parse_map(), false);
    }
    if (t.is_punct("#")) {
      if (closure_depth_ == 0) {
        syntax_error(t, "cannot use pointer accessor outside predicate");
      }
      next();
      node n;
      n.kind = node_kind::element;
      if (cur().kind == tok::ident && cur().column == t.column + 1 && cur().line == t.line) {
        if (cur().text != "index") {
          syntax_error(cur(), "`#" + std::string(cur().text) + "` is not supported");
        }
        next();
        n.kind = node_kind::element_index;
        n.hint = h::integer;
      }
      return parse_postfix(add(n, t), false);
    }
    if (t.is_punct(".")) {
      if (closure_depth_ == 0) {
        syntax_error(t, "cannot use pointer accessor outside predicate");
      }
      next();
      if (cur().kind != tok::ident) {
        syntax_error(cur(), "unexpected token " + describe(cur()));
      }
      token name = cur();
      next();
      node e;
      e.kind = node_kind::element;
      node_id el = add(e, t);
      return parse_postfix(make_member(el, name.text, false, name), false);
    }
    syntax_error(t, "unexpected token " + describe(t));
  }

  node_id parse_array() {
    token open = cur();
    next();
    std::vector<node_id> items;
    while (!cur().is_punct("]")) {
      items.push_back(parse_expression(0));
      if (cur().is_punct(",")) {
        next();
        continue;
      }
      if (!cur().is_punct("]")) {
        syntax_error(cur(), "unexpected token " + describe(cur()) + ", expected \"]\"");
      }
    }
    next();
    bool all_literal = true, all_strings = !items.empty();
    for (node_id i : items) {
      all_literal = all_literal && is_literal(i);
      all_strings = all_strings && is_literal(i) && at(i).constant.kind == value_kind::string;
    }
    if (all_literal) {
      // Constant-fold the list into program-owned storage.
      auto buf = std::make_unique<value[]>(items.size() + 1);
      for (std::size_t k = 0; k < items.size(); ++k) {
        buf[k] = at(items[k]).constant;
      }
      value v = value::list(buf.get(), items.size());
      d_->lists.push_back(std::move(buf));
      node n;
      n.kind = node_kind::literal;
      n.constant = v;
      n.hint = h::list;
      n.flags = all_strings ? flag_string_literals : 0;
      return add(n, open);
    }
    node n;
    n.kind = node_kind::array;
    n.hint = h::list;
    n.args_begin = static_cast<uint32_t>(d_->args.size());
    n.args_count = static_cast<uint32_t>(items.size());
    d_->args.insert(d_->args.end(), items.begin(), items.end());
    return add(n, open);
  }

  // {key: value, ...}: a key is a name, a string, or a parenthesised expression giving a string
  // (expr builds a map[string]any; a number key is refused here rather than failing each event).
  node_id parse_map() {
    token open = cur();
    next();
    std::vector<node_id> items;  // key, value, key, value...
    while (!cur().is_punct("}")) {
      token k = cur();
      node_id key = no_node;
      if (k.kind == tok::ident) {
        next();
        key = literal(value::string(intern(std::string(k.text))), k);
      } else if (k.kind == tok::string) {
        next();
        key = literal(value::string(intern(k.str)), k);
      } else if (k.is_punct("(")) {
        next();
        key = parse_expression(0);
        expect(")");
        const h kh = hint(key);
        if (known(kh) && kh != h::string) {
          error(k, "a map key must be a string (got " + std::string(to_string(kh)) + ")");
        }
      } else if (k.kind == tok::integer || k.kind == tok::floating) {
        syntax_error(k, "a map key must be a string: write '" + std::string(k.text) + "'");
      } else {
        syntax_error(k, "unexpected token " + describe(k) + ", expected a map key");
      }
      expect(":");
      items.push_back(key);
      items.push_back(parse_expression(0));
      if (cur().is_punct(",")) {
        next();
        continue;
      }
      if (!cur().is_punct("}")) {
        syntax_error(cur(), "unexpected token " + describe(cur()) + ", expected \"}\"");
      }
    }
    next();
    bool all_literal = true;
    for (node_id i : items) {
      all_literal = all_literal && is_literal(i);
    }
    if (all_literal) {
      // Constant-fold into program-owned storage; a repeated key keeps its first value (expr's
      // OpMap stores the pairs last to first).
      auto buf = std::make_unique<value[]>(items.size() + 1);
      std::size_t used = 0;
      for (std::size_t k = 0; k < items.size(); k += 2) {
        const value key = at(items[k]).constant;
        std::size_t slot = 0;
        while (slot < used && buf[2 * slot].as_string() != key.as_string()) {
          ++slot;
        }
        if (slot < used) {
          continue;
        }
        buf[2 * slot] = key;
        buf[2 * slot + 1] = at(items[k + 1]).constant;
        ++used;
      }
      value v = value::map(buf.get(), used);
      d_->lists.push_back(std::move(buf));
      node n;
      n.kind = node_kind::literal;
      n.constant = v;
      n.hint = h::map;
      return add(n, open);
    }
    node n;
    n.kind = node_kind::map_;
    n.hint = h::map;
    n.args_begin = static_cast<uint32_t>(d_->args.size());
    n.args_count = static_cast<uint32_t>(items.size());
    d_->args.insert(d_->args.end(), items.begin(), items.end());
    return add(n, open);
  }

  static path_segment segment(std::string_view name, bool optional) {
    path_segment s;
    s.name = name;
    s.optional = optional;
    return s;
  }

  // A root identifier and its static member chain, bound through the schema.
  node_id parse_path() {
    token root = cur();
    next();
    std::vector<path_segment> segs;
    std::vector<token> seg_tok;
    segs.push_back(segment(root.text, false));
    seg_tok.push_back(root);
    bool any_optional = false;
    while (true) {
      const token& t = cur();
      bool opt = t.is_punct("?.");
      if ((t.is_punct(".") || opt) && peek().kind == tok::ident) {
        token name = peek();
        next();
        next();
        path_segment s = segment(name.text, opt);
        if (cur().is_punct("(")) {
          s.call = true;
          next();
          if (cur().kind == tok::string && peek().is_punct(")")) {
            s.has_argument = true;
            s.argument = intern(cur().str);
            next();
          } else if (!cur().is_punct(")")) {
            syntax_error(cur(), "method arguments must be a single string literal");
          }
          next();
        }
        any_optional = any_optional || opt;
        segs.push_back(s);
        seg_tok.push_back(name);
        continue;
      }
      bool opt_bracket = opt && peek().is_punct("[");
      if ((t.is_punct("[") || opt_bracket) && peek(opt_bracket ? 2 : 1).kind == tok::string &&
          peek(opt_bracket ? 3 : 2).is_punct("]")) {
        if (opt_bracket) {
          next();
        }
        next();
        token key = cur();
        next();
        next();
        any_optional = any_optional || opt_bracket;
        segs.push_back(segment(intern(key.str), opt_bracket));
        seg_tok.push_back(key);
        continue;
      }
      break;
    }
    node_id cur_node;
    std::size_t consumed = segs.size();
    auto res = schema_.bind(std::span<const path_segment>(segs));
    if (auto* msg = std::get_if<std::string>(&res)) {
      error(root, *msg);
      node n;
      n.kind = node_kind::literal;  // placeholder: compile fails anyway
      n.hint = h::any;
      cur_node = add(n, root);
    } else {
      const binding& b = std::get<binding>(res);
      consumed = std::clamp<std::size_t>(b.consumed, 1, segs.size());
      node n;
      n.kind = node_kind::load;
      n.slot = b.slot;
      n.hint = b.hint;
      for (std::size_t k = 0; k < consumed && !b.applies_optional; ++k) {
        if (segs[k].optional) {
          n.flags |= flag_optional;
        }
      }
      cur_node = add(n, root);
      for (std::size_t k = consumed; k < segs.size(); ++k) {
        if (segs[k].call) {
          error(seg_tok[k], "unknown method " + std::string(segs[k].name));
          continue;
        }
        cur_node = make_member(cur_node, segs[k].name, segs[k].optional, seg_tok[k]);
      }
    }
    return parse_postfix(cur_node, any_optional);
  }

  node_id parse_postfix(node_id x, bool any_optional) {
    token start = cur();
    while (true) {
      const token& t = cur();
      bool opt = t.is_punct("?.");
      if ((t.is_punct(".") || opt) && !(opt && peek().is_punct("["))) {
        token op = t;
        next();
        if (cur().kind != tok::ident) {
          syntax_error(cur(), "unexpected token " + describe(cur()));
        }
        token name = cur();
        next();
        if (cur().is_punct("(")) {
          syntax_error(name, "method " + std::string(name.text) + " is not available on this value");
        }
        any_optional = any_optional || opt;
        x = make_member(x, name.text, opt, name);
        continue;
      }
      if (t.is_punct("[") || opt) {
        token op = t;
        if (opt) {
          next();
        }
        next();
        if (cur().is_punct(":")) {
          syntax_error(cur(), "slices are not supported");
        }
        node_id idx = parse_expression(0);
        if (cur().is_punct(":")) {
          syntax_error(cur(), "slices are not supported");
        }
        expect("]");
        any_optional = any_optional || opt;
        x = make_index(x, idx, opt, op);
        continue;
      }
      if (t.is_punct("(")) {
        syntax_error(t, "this value is not callable");
      }
      break;
    }
    if (any_optional) {
      node n;
      n.kind = node_kind::chain;
      n.a = x;
      n.hint = hint(x);
      return add(n, start);
    }
    return x;
  }

  node_id parse_call() {
    token name = cur();
    next();
    next();  // (
    const detail::builtin_info* info = detail::find_builtin(name.text);
    if (info == nullptr) {
      if (detail::is_known_unsupported(name.text)) {
        syntax_error(name, "function " + std::string(name.text) + " is not supported by vigil");
      }
      syntax_error(name, "unknown func " + std::string(name.text));
    }
    std::vector<node_id> args;
    while (!cur().is_punct(")")) {
      bool closure_arg = info->predicate && args.size() == 1;
      if (closure_arg) {
        ++closure_depth_;
        if (cur().is_punct("{")) {
          next();
          args.push_back(parse_expression(0));
          expect("}");
        } else {
          args.push_back(parse_expression(0));
        }
        --closure_depth_;
      } else {
        args.push_back(parse_expression(0));
      }
      if (cur().is_punct(",")) {
        next();
        continue;
      }
      if (!cur().is_punct(")")) {
        syntax_error(cur(), "unexpected token " + describe(cur()) + ", expected \")\"");
      }
    }
    next();
    if (args.size() < info->min_args || args.size() > info->max_args) {
      error(name, (args.size() < info->min_args ? "not enough arguments to call " : "too many arguments to call ") +
                      std::string(name.text));
      return literal(value::nil(), name);
    }
    node n;
    n.fn = info->id;
    n.hint = info->result;
    if (info->predicate) {
      h ch = hint(args[0]);
      if (known(ch) && ch != h::list) {
        error(at(args[0]).line, at(args[0]).column,
              std::string("builtin ") + std::string(name.text) + " takes only array (got " + to_string(ch) + ")");
      }
      if (args.size() == 2 && info->id != builtin::map) {
        h ph = hint(args[1]);
        if (known(ph) && ph != h::boolean) {
          error(at(args[1]).line, at(args[1]).column,
                std::string("predicate should return boolean (got ") + to_string(ph) + ")");
        }
      }
      n.kind = node_kind::predicate;
      n.a = args[0];
      n.b = args.size() == 2 ? args[1] : no_node;
      return add(n, name);
    }
    check_call_args(*info, args, name);
    n.kind = node_kind::call;
    n.args_begin = static_cast<uint32_t>(d_->args.size());
    n.args_count = static_cast<uint32_t>(args.size());
    d_->args.insert(d_->args.end(), args.begin(), args.end());
    return add(n, name);
  }

  void check_call_args(const detail::builtin_info& info, const std::vector<node_id>& args, const token& name) {
    for (std::size_t k = 0; k < args.size(); ++k) {
      h ah = hint(args[k]);
      if (!known(ah)) {
        continue;
      }
      bool bad = false;
      switch (info.id) {
        case builtin::len: bad = numeric(ah) || ah == h::boolean || ah == h::nil; break;
        case builtin::to_int:
        case builtin::to_float:
        case builtin::abs: bad = !(numeric(ah) || (ah == h::string && info.id != builtin::abs)); break;
        case builtin::to_string:
        case builtin::type:
        case builtin::cs_to_string: break;
        case builtin::first:
        case builtin::last: bad = ah != h::list; break;
        case builtin::get: bad = k == 0 ? (ah != h::list && ah != h::map) : false; break;
        case builtin::cs_key_exists: bad = k == 0 ? ah != h::string : ah != h::map; break;
        case builtin::cs_sprintf: bad = k == 0 && ah != h::string; break; // then any values
        case builtin::split:
        case builtin::cs_split_n:
        case builtin::cs_split_after_n: bad = k < 2 ? ah != h::string : ah != h::integer; break;
        case builtin::cs_replace: bad = k < 3 ? ah != h::string : ah != h::integer; break;
        case builtin::cs_join: bad = k == 0 ? ah != h::list : ah != h::string; break;
        case builtin::cs_get: bad = k == 0 ? ah != h::list : ah != h::integer; break;
        case builtin::cs_float_approx_equal: bad = !numeric(ah); break;
        case builtin::keys:
        case builtin::values: bad = ah != h::map; break;
        case builtin::to_json: break;
        default: bad = ah != h::string; break;  // string helpers
      }
      if (bad) {
        error(at(args[k]).line, at(args[k]).column,
              std::string("invalid argument for ") + std::string(name.text) + " (type " + to_string(ah) + ")");
      }
    }
  }

  const schema& schema_;
  std::shared_ptr<detail::program_data> d_;
  std::vector<token> toks_;
  std::size_t pos_ = 0;
  std::vector<diagnostic> diags_;
  std::vector<int> depth_;
  int nesting_ = 0;
  int closure_depth_ = 0;
};

}  // namespace

std::variant<program, std::vector<diagnostic>> compile(std::string_view source, const schema& s) {
  try {
    return compiler(source, s).run();
  } catch (const std::exception& e) {
    return std::vector<diagnostic>{{1, 1, std::string("internal compiler error: ") + e.what()}};
  } catch (...) {
    return std::vector<diagnostic>{{1, 1, "internal compiler error"}};
  }
}

}  // namespace vigil::expr
