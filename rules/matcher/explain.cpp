#include "rules/matcher/explain.h"

#include <algorithm>
#include <cctype>

namespace vigil::rules {

namespace {

using expr::node;
using expr::node_id;
using expr::node_kind;

// Byte offset in `src` of a 1-based line:column.
std::size_t offset_of(std::string_view src, std::uint32_t line, std::uint32_t column) {
  std::size_t pos = 0;
  for (std::uint32_t l = 1; l < line && pos < src.size(); ++l) {
    const std::size_t nl = src.find('\n', pos);
    if (nl == std::string_view::npos) {
      return src.size();
    }
    pos = nl + 1;
  }
  return std::min(src.size(), pos + (column > 0 ? column - 1 : 0));
}

// Trims spaces and the parentheses a split left unbalanced at either end.
std::string tidy(std::string_view s) {
  auto trim = [&] {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) {
      s.remove_prefix(1);
    }
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) {
      s.remove_suffix(1);
    }
  };
  auto balance = [&] {
    long b = 0;
    for (const char c : s) {
      b += c == '(' ? 1 : (c == ')' ? -1 : 0);
    }
    return b;
  };
  trim();
  while (!s.empty() && s.front() == '(' && balance() > 0) {
    s.remove_prefix(1);
    trim();
  }
  while (!s.empty() && s.back() == ')' && balance() < 0) {
    s.remove_suffix(1);
    trim();
  }
  // A fully parenthesised remainder: drop the outer pair.
  while (s.size() >= 2 && s.front() == '(' && s.back() == ')') {
    long depth = 0;
    bool outer = true;
    for (std::size_t i = 0; i < s.size(); ++i) {
      depth += s[i] == '(' ? 1 : (s[i] == ')' ? -1 : 0);
      if (depth == 0 && i + 1 < s.size()) {
        outer = false;
        break;
      }
    }
    if (!outer) {
      break;
    }
    s.remove_prefix(1);
    s.remove_suffix(1);
    trim();
  }
  std::string out;
  bool space = false;
  for (const char c : s) {
    if (std::isspace(static_cast<unsigned char>(c)) != 0) {
      space = true;
      continue;
    }
    if (space && !out.empty()) {
      out += ' ';
    }
    space = false;
    out += c;
  }
  return out;
}

struct walker {
  const expr::program& p;
  const expr::environment& env;
  std::string_view src;
  explanation& out;

  std::size_t op_len(std::size_t at) const {
    const std::string_view rest = src.substr(at);
    return rest.rfind("&&", 0) == 0 || rest.rfind("||", 0) == 0 ? 2 : (rest.rfind("and", 0) == 0 ? 3 : 2);
  }

  void report(node_id id, std::size_t begin, std::size_t end) {
    const expr::eval_result r = p.eval_node(id, env);
    std::string what = r.err != expr::eval_error::none ? std::string("error: ") + expr::to_string(r.err)
                       : r.v.kind == expr::value_kind::boolean ? (r.v.as_bool() ? "true" : "false")
                                                                : "not a boolean";
    out.culprits.emplace_back(tidy(src.substr(begin, end - begin)), std::move(what));
  }

  // Explains why node `id`, spanning [begin, end) of the source, is not true.
  void why_not(node_id id, std::size_t begin, std::size_t end) {
    const node& n = p.nodes()[id];
    const std::size_t op = offset_of(src, n.line, n.column);
    if (n.kind == node_kind::and_ && op > begin && op < end) {
      const expr::eval_result left = p.eval_node(n.a, env);
      if (left.err != expr::eval_error::none || left.v.kind != expr::value_kind::boolean || !left.v.as_bool()) {
        why_not(n.a, begin, op);
      } else {
        why_not(n.b, op + op_len(op), end);
      }
      return;
    }
    if (n.kind == node_kind::or_ && op > begin && op < end) {
      why_not(n.a, begin, op);
      const expr::eval_result left = p.eval_node(n.a, env);
      if (left.err == expr::eval_error::none) {
        why_not(n.b, op + op_len(op), end);
      }
      return;
    }
    report(id, begin, end);
  }
};

} // namespace

explanation explain(const expr::program& filter, const expr::environment& env) {
  explanation out;
  const expr::bool_result r = filter.eval_bool(env);
  out.matched = r.err == expr::eval_error::none && r.value;
  out.error = r.err;
  if (!out.matched) {
    walker w{filter, env, filter.source(), out};
    w.why_not(filter.root(), 0, filter.source().size());
  }
  return out;
}

} // namespace vigil::rules
