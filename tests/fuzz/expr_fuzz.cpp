// libFuzzer entry point: compile arbitrary bytes as a filter and, when it compiles, evaluate it
// against a small fixed audit event. Build with clang -fsanitize=fuzzer (VIGIL_FUZZ).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rules/expr/expr.h"

namespace {

namespace ex = vigil::expr;

// evt.Meta.<k> (slot 0..2 known keys, 3 = any other key -> ""), evt.Unmarshaled.k8s_audit
// (slot 4), evt.Unmarshaled.<other> (slot 5 -> nil).
class fuzz_schema : public ex::schema {
 public:
  std::variant<ex::binding, std::string> bind(std::span<const ex::path_segment> p) const override {
    if (p[0].name != "evt") {
      return "unknown name " + std::string(p[0].name);
    }
    if (p.size() < 3 || p[1].call || p[2].call) {
      return std::string("evt needs a field and a key");
    }
    if (p[1].name == "Meta") {
      uint32_t slot = p[2].name == "log_type" ? 0 : p[2].name == "user" ? 1 : p[2].name == "datasource_type" ? 2 : 3;
      return ex::binding{slot, 3, ex::value_hint::string};
    }
    if (p[1].name == "Unmarshaled") {
      return ex::binding{p[2].name == "k8s_audit" ? 4u : 5u, 3, ex::value_hint::any};
    }
    return "type Event has no field " + std::string(p[1].name);
  }
};

constexpr std::string_view event_json =
    R"({"verb":"create","user":{"username":"minikube-user"},"sourceIPs":["192.168.49.1",""],)"
    R"("objectRef":{"resource":"pods","subresource":"exec"},"responseStatus":{"code":101},)"
    R"("requestObject":{"spec":{"hostNetwork":true,"containers":[{"securityContext":{"privileged":true}}],)"
    R"("volumes":[{"emptyDir":{}},{"hostPath":{"path":"/etc"}}],"n":[1,2.5,-3,null,true]}},)"
    R"("annotations":{"authorization.k8s.io/decision":"forbid"}})";

class fuzz_env : public ex::environment {
 public:
  fuzz_env() { doc_ = parser_.parse(event_json.data(), event_json.size()).value_unsafe(); }
  ex::value load(uint32_t slot) const noexcept override {
    switch (slot) {
      case 0: return ex::value::string("k8s-audit");
      case 1: return ex::value::string("minikube-user");
      case 2: return ex::value::string("file");
      case 4: return ex::value::from_json(doc_);
      case 5: return ex::value::nil();
      default: return ex::value::string("");
    }
  }

 private:
  simdjson::dom::parser parser_;
  simdjson::dom::element doc_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const fuzz_schema schema;
  static const fuzz_env env;
  std::string_view src(reinterpret_cast<const char*>(data), size);
  auto r = ex::compile(src, schema);
  if (auto* p = std::get_if<ex::program>(&r)) {
    (void)p->eval(env);
    (void)p->eval_bool(env);
  }
  return 0;
}
