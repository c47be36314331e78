// Execution of a parsed template (section 5 of the contract), following Go's text/template
// exec.go: pipelines pass their value as the last argument, arguments are converted to the
// parameter types, fields and methods are looked up on objects and maps, variables are scoped
// to the enclosing block, and errors carry Go's "executing ... at <node>" context.
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "rules/template/ast.h"
#include "rules/template/internal.h"
#include "rules/template/template.h"

namespace vigil::rules::tmpl {
namespace {

using detail::func_info;
using k = value::kind;

enum class flow : std::uint8_t { normal, break_, continue_, error };

// The node an execution error points at (Go's state.at).
struct at_ref {
  enum class what : std::uint8_t { none, arg, cmd, pipe, node } w = what::none;
  const void* p = nullptr;

  at_ref() = default;
  explicit at_ref(const arg_node& n) : w(what::arg), p(&n) {}
  explicit at_ref(const command_node& n) : w(what::cmd), p(&n) {}
  explicit at_ref(const pipe_node& n) : w(what::pipe), p(&n) {}
  explicit at_ref(const node& n) : w(what::node), p(&n) {}
};

// A function or a bound method, with its parameter types.
struct callable {
  std::string_view name;
  std::span<const param> params;
  bool variadic = false;
  const func_info* fn = nullptr;
  const method_info* method = nullptr;
  const value* self = nullptr;
};

// A few time.Time methods, for `{{(toDate "2006-01-02" .x).Unix}}` and the like.
bool time_format(const value& self, std::span<const value> args, value& result, std::string&) {
  result = value::string(detail::format_time(self.as_time(), args[0].as_string()));
  return true;
}
bool time_unix(const value& self, std::span<const value>, value& result, std::string&) {
  result = value::integer(self.as_time().unix, "int64");
  return true;
}
bool time_utc(const value& self, std::span<const value>, value& result, std::string&) {
  result = value::time(detail::time_in_utc(self.as_time().unix, self.as_time().nanos));
  return true;
}
bool time_local(const value& self, std::span<const value>, value& result, std::string&) {
  result = value::time(detail::time_in_local(self.as_time().unix, self.as_time().nanos));
  return true;
}
bool time_year(const value& self, std::span<const value>, value& result, std::string&) {
  result = value::integer(std::stoll(detail::format_time(self.as_time(), "2006")));
  return true;
}
bool time_string_method(const value& self, std::span<const value>, value& result, std::string&) {
  result = value::string(detail::time_string(self.as_time()));
  return true;
}

const method_info* time_method(std::string_view name) {
  static const method_info methods[] = {
      {"Format", {param::string}, time_format},
      {"Local", {}, time_local},
      {"String", {}, time_string_method},
      {"UTC", {}, time_utc},
      {"Unix", {}, time_unix},
      {"Year", {}, time_year},
  };
  for (const method_info& m : methods) {
    if (m.name == name) {
      return &m;
    }
  }
  return nullptr;
}

const char* param_type_name(param p) {
  switch (p) {
  case param::any:
    return "interface {}";
  case param::reflect:
    return "reflect.Value";
  case param::string:
    return "string";
  case param::boolean:
    return "bool";
  case param::alert:
    return "*models.Alert";
  }
  return "";
}

class executor {
 public:
  executor(const tree& t, std::string& out) : t_(t), out_(out) {}

  std::string error;

  bool run(const value& dot) {
    vars_.emplace_back("$", dot);
    return walk_list(dot, t_.root) != flow::error;
  }

 private:
  const tree& t_;
  std::string& out_;
  std::vector<std::pair<std::string, value>> vars_;
  at_ref at_;

  void at(const at_ref& r) { at_ = r; }

  bool fail(const std::string& msg) {
    std::uint32_t pos = 0;
    std::string context;
    switch (at_.w) {
    case at_ref::what::none:
      error = "template: : " + msg;
      return false;
    case at_ref::what::arg:
      pos = static_cast<const arg_node*>(at_.p)->pos;
      context = detail::to_string(*static_cast<const arg_node*>(at_.p));
      break;
    case at_ref::what::cmd:
      pos = static_cast<const command_node*>(at_.p)->pos;
      context = detail::to_string(*static_cast<const command_node*>(at_.p));
      break;
    case at_ref::what::pipe:
      pos = static_cast<const pipe_node*>(at_.p)->pos;
      context = detail::to_string(*static_cast<const pipe_node*>(at_.p));
      break;
    case at_ref::what::node:
      pos = static_cast<const node*>(at_.p)->pos;
      context = detail::to_string(*static_cast<const node*>(at_.p));
      break;
    }
    // Go shows at most 20 runes of the node.
    std::size_t i = 0;
    int runes = 0;
    for (; i < context.size() && runes < 20; ++runes) {
      char32_t r = 0;
      i += detail::decode_rune(context, i, r);
    }
    if (i < context.size()) {
      context = context.substr(0, i) + "...";
    }
    error = "template: :" + std::to_string(t_.line_of(pos)) + ":" + std::to_string(t_.col_of(pos)) +
            ": executing \"\" at <" + context + ">: " + msg;
    return false;
  }

  // ---- variables -------------------------------------------------------------------------

  bool var_value(const std::string& name, value& v) {
    for (auto it = vars_.rbegin(); it != vars_.rend(); ++it) {
      if (it->first == name) {
        v = it->second;
        return true;
      }
    }
    return fail("undefined variable: " + name);
  }

  bool set_var(const std::string& name, const value& v) {
    for (auto it = vars_.rbegin(); it != vars_.rend(); ++it) {
      if (it->first == name) {
        it->second = v;
        return true;
      }
    }
    return fail("undefined variable: " + name);
  }

  // ---- walking the tree -------------------------------------------------------------------

  static std::string over_bound() {
    return "larger than " + std::to_string(detail::max_template_output >> 20) + " MiB";
  }

  flow within_bound() {
    if (out_.size() > detail::max_template_output) {
      fail("output " + over_bound());
      return flow::error;
    }
    return flow::normal;
  }

  flow walk_list(const value& dot, const std::vector<node>& list) {
    for (const node& n : list) {
      const flow f = walk(dot, n);
      if (f != flow::normal) {
        return f;
      }
    }
    return flow::normal;
  }

  flow walk(const value& dot, const node& n) {
    at(at_ref(n));
    switch (n.kind) {
    case node_kind::text:
      out_ += n.text;
      return within_bound();
    case node_kind::action: {
      value v;
      if (!eval_pipeline(dot, *n.pipe, v)) {
        return flow::error;
      }
      if (n.pipe->decl.empty()) { // a declaration prints nothing
        detail::print_action(out_, v);
      }
      return within_bound();
    }
    case node_kind::if_:
    case node_kind::with:
      return walk_if_or_with(dot, n);
    case node_kind::range:
      return walk_range(dot, n);
    case node_kind::break_:
      return flow::break_;
    case node_kind::continue_:
      return flow::continue_;
    }
    return flow::normal;
  }

  flow walk_if_or_with(const value& dot, const node& n) {
    const std::size_t mark = vars_.size();
    value v;
    if (!eval_pipeline(dot, *n.pipe, v)) {
      return flow::error;
    }
    flow f = flow::normal;
    if (v.truth()) {
      f = walk_list(n.kind == node_kind::with ? v : dot, n.list);
    } else if (n.has_else) {
      f = walk_list(dot, n.else_list);
    }
    vars_.resize(mark);
    return f;
  }

  flow walk_range(const value& dot, const node& n) {
    at(at_ref(n));
    const std::size_t mark = vars_.size();
    value v;
    if (!eval_pipeline(dot, *n.pipe, v)) {
      return flow::error;
    }
    if (v.is_pointer() && v.kind_of() != k::nil) {
      v = v.deref();
    }
    const pipe_node& p = *n.pipe;
    const std::size_t body_mark = vars_.size();
    // One iteration: set the range variables, run the body, drop what the body declared.
    auto one = [&](const value& index, const value& elem) {
      if (!p.decl.empty()) {
        if (p.is_assign) {
          if (!set_var(p.decl[0], p.decl.size() > 1 ? index : elem)) {
            return flow::error;
          }
        } else {
          vars_[vars_.size() - 1].second = elem; // the last declared variable gets the element
        }
      }
      if (p.decl.size() > 1) {
        if (p.is_assign) {
          if (!set_var(p.decl[1], elem)) {
            return flow::error;
          }
        } else {
          vars_[vars_.size() - 2].second = index;
        }
      }
      const flow f = walk_list(elem, n.list);
      vars_.resize(body_mark);
      return f;
    };
    bool iterated = false;
    switch (v.kind_of()) {
    case k::list: {
      const auto& items = v.items();
      for (std::size_t i = 0; i < items.size(); ++i) {
        iterated = true;
        const flow f = one(value::integer(static_cast<std::int64_t>(i)), items[i]);
        if (f == flow::error) {
          return f;
        }
        if (f == flow::break_) {
          break;
        }
      }
      break;
    }
    case k::map:
      for (const auto& [key, elem] : v.entries()) {
        iterated = true;
        const flow f = one(value::string(key), elem);
        if (f == flow::error) {
          return f;
        }
        if (f == flow::break_) {
          break;
        }
      }
      break;
    case k::none:
      break;
    default: {
      at(at_ref(n));
      std::string text;
      detail::print_value(text, v, 0);
      fail("range can't iterate over " + text);
      return flow::error;
    }
    }
    flow f = flow::normal;
    if (!iterated && n.has_else) {
      f = walk_list(dot, n.else_list);
      if (f == flow::break_) {
        f = flow::normal; // Go: a break in a range's else ends that range, not the one around it
      }
    }
    vars_.resize(mark);
    return f;
  }

  // ---- pipelines and commands -------------------------------------------------------------

  bool eval_pipeline(const value& dot, const pipe_node& p, value& result) {
    at(at_ref(p));
    value v;
    bool have = false;
    for (const command_node& cmd : p.cmds) {
      value r;
      if (!eval_command(dot, cmd, have ? &v : nullptr, r)) {
        return false;
      }
      if (r.kind_of() == k::nil && !r.is_pointer()) {
        r = value{}; // an interface{} holding nil is "no value" once it leaves a command
      }
      v = std::move(r);
      have = true;
    }
    for (const std::string& name : p.decl) {
      if (p.is_assign) {
        if (!set_var(name, v)) {
          return false;
        }
      } else {
        vars_.emplace_back(name, v);
      }
    }
    result = std::move(v);
    return true;
  }

  bool not_a_function(std::span<const arg_node> args, const value* final) {
    if (args.size() > 1 || final != nullptr) {
      return fail("can't give argument to non-function " + detail::to_string(args[0]));
    }
    return true;
  }

  bool eval_command(const value& dot, const command_node& cmd, const value* final, value& result) {
    const arg_node& first = cmd.args[0];
    const std::span<const arg_node> args(cmd.args);
    switch (first.kind) {
    case arg_kind::field:
      return eval_field_node(dot, first, args, final, result);
    case arg_kind::chain:
      return eval_chain_node(dot, first, args, final, result);
    case arg_kind::identifier:
      return eval_function(dot, first, at_ref(cmd), args, final, result);
    case arg_kind::pipe:
      return not_a_function(args, final) && eval_pipeline(dot, *first.pipe, result);
    case arg_kind::variable:
      return eval_variable_node(dot, first, args, final, result);
    default:
      break;
    }
    at(at_ref(first));
    if (!not_a_function(args, final)) {
      return false;
    }
    switch (first.kind) {
    case arg_kind::boolean:
      result = value::boolean(first.truth);
      return true;
    case arg_kind::dot:
      result = dot;
      return true;
    case arg_kind::nil:
      return fail("nil is not a command");
    case arg_kind::number:
      return ideal_constant(first, result);
    case arg_kind::string:
      result = value::string(first.str);
      return true;
    default:
      return fail("can't evaluate command " + detail::go_quote(detail::to_string(first)));
    }
  }

  // A number constant where no type is expected: float if written like one, else int.
  bool ideal_constant(const arg_node& n, value& result) {
    at(at_ref(n));
    const number_const& c = n.num;
    const std::string& text = n.text;
    const bool hex_int = text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X') &&
                         text.find_first_of("pP") == std::string::npos;
    const bool rune_int = !text.empty() && text[0] == '\'';
    if (c.is_float && !hex_int && !rune_int && text.find_first_of(".eEpP") != std::string::npos) {
      result = value::floating(c.f);
      return true;
    }
    if (c.is_int) {
      result = value::integer(c.i);
      return true;
    }
    if (c.is_uint) {
      return fail(text + " overflows int");
    }
    result = value{};
    return true;
  }

  bool eval_field_node(const value& dot, const arg_node& n, std::span<const arg_node> args, const value* final,
                       value& result) {
    at(at_ref(n));
    return eval_field_chain(dot, dot, n, n.fields, args, final, result);
  }

  bool eval_chain_node(const value& dot, const arg_node& n, std::span<const arg_node> args, const value* final,
                       value& result) {
    at(at_ref(n));
    if (n.inner->kind == arg_kind::nil) {
      return fail("indirection through explicit nil in " + detail::to_string(n));
    }
    value v;
    if (!eval_arg_raw(dot, *n.inner, v)) {
      return false;
    }
    return eval_field_chain(dot, v, n, n.fields, args, final, result);
  }

  bool eval_variable_node(const value& dot, const arg_node& n, std::span<const arg_node> args, const value* final,
                          value& result) {
    at(at_ref(n));
    value v;
    if (!var_value(n.text, v)) {
      return false;
    }
    if (n.fields.empty()) {
      if (!not_a_function(args, final)) {
        return false;
      }
      result = std::move(v);
      return true;
    }
    return eval_field_chain(dot, v, n, n.fields, args, final, result);
  }

  // `.A.B.C args`: only the last selector receives the arguments.
  bool eval_field_chain(const value& dot, const value& receiver, const arg_node& n,
                        const std::vector<std::string>& fields, std::span<const arg_node> args, const value* final,
                        value& result) {
    value r = receiver;
    for (std::size_t i = 0; i + 1 < fields.size(); ++i) {
      value next;
      if (!eval_field(dot, fields[i], n, {}, nullptr, r, next)) {
        return false;
      }
      r = std::move(next);
    }
    return eval_field(dot, fields.back(), n, args, final, r, result);
  }

  bool eval_field(const value& dot, const std::string& name, const arg_node& n, std::span<const arg_node> args,
                  const value* final, const value& receiver, value& result) {
    if (receiver.kind_of() == k::none) {
      result = value{}; // chaining on "no value" keeps giving "no value"
      return true;
    }
    const std::string type = receiver.type_name();
    if (receiver.kind_of() == k::nil && !receiver.is_pointer()) {
      return fail("nil pointer evaluating interface {}." + name);
    }
    const method_info* m = nullptr;
    if (receiver.kind_of() == k::object) {
      m = receiver.object_kind()->method(name);
    } else if (receiver.kind_of() == k::time && !receiver.is_pointer()) {
      m = time_method(name);
    }
    if (m != nullptr) {
      const callable c{name, m->params, false, nullptr, m, &receiver};
      return eval_call(dot, c, at_ref(n), args, final, result);
    }
    const bool has_args = args.size() > 1 || final != nullptr;
    switch (receiver.kind_of()) {
    case k::object: {
      const int idx = receiver.object_kind()->field_index(name);
      if (idx < 0) {
        break;
      }
      if (receiver.is_nil()) {
        return fail("nil pointer evaluating " + type + "." + name);
      }
      if (has_args) {
        return fail(name + " has arguments but cannot be invoked as function");
      }
      result = receiver.fields()[static_cast<std::size_t>(idx)];
      return true;
    }
    case k::map: {
      if (receiver.is_pointer()) {
        break;
      }
      if (has_args) {
        return fail(name + " is not a method but has arguments");
      }
      const auto& entries = receiver.entries();
      const auto it = entries.find(name);
      result = it != entries.end() ? it->second : value{};
      return true;
    }
    case k::nil: // an unset optional
      return fail("nil pointer evaluating " + type + "." + name);
    default:
      break;
    }
    return fail("can't evaluate field " + name + " in type " + type);
  }

  bool eval_function(const value& dot, const arg_node& n, const at_ref& call_node, std::span<const arg_node> args,
                     const value* final, value& result) {
    at(at_ref(n));
    const func_info& f = *n.fn;
    const callable c{f.name, std::span<const param>(f.params, f.n_params), f.variadic, &f, nullptr, nullptr};
    return eval_call(dot, c, call_node, args, final, result);
  }

  bool eval_call(const value& dot, const callable& c, const at_ref& call_node, std::span<const arg_node> args,
                 const value* final, value& result) {
    const std::span<const arg_node> real = args.empty() ? args : args.subspan(1);
    const std::size_t num_in = real.size() + (final != nullptr ? 1 : 0);
    const std::size_t n_params = c.params.size();
    std::size_t num_fixed = real.size();
    const std::string name(c.name);
    if (c.variadic) {
      num_fixed = n_params - 1;
      if (num_in < num_fixed) {
        return fail("wrong number of args for " + name + ": want at least " + std::to_string(n_params - 1) + " got " +
                    std::to_string(real.size()));
      }
    } else if (num_in != n_params) {
      return fail("wrong number of args for " + name + ": want " + std::to_string(n_params) + " got " +
                  std::to_string(num_in));
    }
    if (c.fn != nullptr && (c.name == "and" || c.name == "or")) { // short-circuit
      const bool is_or = c.name == "or";
      value v;
      for (const arg_node& a : real) {
        if (!eval_arg(dot, param::reflect, a, v)) {
          return false;
        }
        if (v.truth() == is_or) {
          result = std::move(v);
          return true;
        }
      }
      if (final != nullptr) {
        v = *final;
      }
      result = std::move(v);
      return true;
    }
    std::vector<value> argv(num_in);
    std::size_t i = 0;
    for (; i < num_fixed && i < real.size(); ++i) {
      if (!eval_arg(dot, c.params[i], real[i], argv[i])) {
        return false;
      }
    }
    if (c.variadic) {
      for (; i < real.size(); ++i) {
        if (!eval_arg(dot, c.params[n_params - 1], real[i], argv[i])) {
          return false;
        }
      }
    }
    if (final != nullptr) {
      param t = c.params[n_params - 1];
      if (c.variadic && num_in - 1 < num_fixed) {
        t = c.params[num_in - 1];
      }
      if (!validate(*final, t, argv[i])) {
        return false;
      }
    }
    std::string err;
    const bool ok = c.fn != nullptr ? c.fn->fn(argv, result, err) : c.method->fn(*c.self, argv, result, err);
    if (!ok) {
      at(call_node);
      return fail("error calling " + name + ": " + err);
    }
    if (result.kind_of() == value::kind::string && result.as_string().size() > detail::max_template_output) {
      at(call_node);
      return fail("error calling " + name + ": result " + over_bound());
    }
    if (result.nesting() > value::max_nesting) {
      // Printing or encoding such a value would recurse as deep; Go's growing stacks allow it,
      // a thread's fixed stack does not.
      at(call_node);
      return fail("error calling " + name + ": result nested more than " + std::to_string(value::max_nesting) +
                  " deep");
    }
    return true;
  }

  // An argument evaluated without conversion (Go's evalArg with no expected type).
  bool eval_arg_raw(const value& dot, const arg_node& n, value& v) {
    const std::span<const arg_node> self(&n, 1);
    switch (n.kind) {
    case arg_kind::dot:
      v = dot;
      return true;
    case arg_kind::field:
      return eval_field_node(dot, n, self, nullptr, v);
    case arg_kind::variable:
      return eval_variable_node(dot, n, self, nullptr, v);
    case arg_kind::pipe:
      return eval_pipeline(dot, *n.pipe, v);
    case arg_kind::identifier:
      return eval_function(dot, n, at_ref(n), self, nullptr, v);
    case arg_kind::chain:
      return eval_chain_node(dot, n, self, nullptr, v);
    default:
      return fail("can't evaluate " + detail::to_string(n));
    }
  }

  bool eval_arg(const value& dot, param type, const arg_node& n, value& result) {
    at(at_ref(n));
    switch (n.kind) {
    case arg_kind::dot:
      return validate(dot, type, result);
    case arg_kind::nil:
      switch (type) {
      case param::any:
        result = value::nil();
        return true;
      case param::reflect:
        result = value{};
        return true;
      case param::alert:
        result = value::nil_object(alert_type());
        return true;
      default:
        return fail(std::string("cannot assign nil to ") + param_type_name(type));
      }
    case arg_kind::field:
    case arg_kind::variable:
    case arg_kind::pipe:
    case arg_kind::identifier:
    case arg_kind::chain: {
      value v;
      return eval_arg_raw(dot, n, v) && validate(v, type, result);
    }
    default:
      break;
    }
    // Constants take the parameter's type.
    switch (type) {
    case param::boolean:
      if (n.kind == arg_kind::boolean) {
        result = value::boolean(n.truth);
        return true;
      }
      return fail("expected bool; found " + detail::to_string(n));
    case param::string:
      if (n.kind == arg_kind::string) {
        result = value::string(n.str);
        return true;
      }
      return fail("expected string; found " + detail::to_string(n));
    case param::alert:
      return fail("can't handle " + detail::to_string(n) + " for arg of type *models.Alert");
    case param::any:
    case param::reflect:
      break;
    }
    switch (n.kind) {
    case arg_kind::boolean:
      result = value::boolean(n.truth);
      return true;
    case arg_kind::number:
      return ideal_constant(n, result);
    case arg_kind::string:
      result = value::string(n.str);
      return true;
    default:
      return fail("can't evaluate " + detail::to_string(n));
    }
  }

  // Go's validateType: a value converted to a parameter type, or the error saying why not.
  bool validate(const value& v, param type, value& out) {
    switch (type) {
    case param::any:
      out = v.kind_of() == k::none ? value::nil() : v;
      return true;
    case param::reflect:
      out = v;
      return true;
    case param::string:
    case param::boolean: {
      const k want = type == param::string ? k::string : k::boolean;
      const std::string tname = param_type_name(type);
      if (v.kind_of() == k::none) {
        return fail("invalid value; expected " + tname);
      }
      if (!v.is_pointer() && v.kind_of() == want) {
        out = v;
        return true;
      }
      if (v.is_pointer() && v.base_type() == tname) {
        if (v.kind_of() == k::nil) {
          return fail("dereference of nil pointer of type " + tname);
        }
        out = v.deref();
        return true;
      }
      return fail("wrong type for value; expected " + tname + "; got " + v.type_name());
    }
    case param::alert:
      if (v.kind_of() == k::none) {
        out = value::nil_object(alert_type());
        return true;
      }
      if (v.kind_of() == k::object && v.object_kind()->name == "*models.Alert") {
        out = v;
        return true;
      }
      return fail("wrong type for value; expected *models.Alert; got " + v.type_name());
    }
    return false;
  }
};

} // namespace

bool templ::execute(const value& dot, std::string& out, std::string& error) const {
  out.clear();
  error.clear();
  executor ex(*tree_, out);
  if (!ex.run(dot)) {
    error = std::move(ex.error);
    return false;
  }
  return true;
}

} // namespace vigil::rules::tmpl
