// libFuzzer entry point: parse arbitrary bytes as a notification template and, when it parses,
// run it over two alerts (one with a decision, one without). Templates come from configuration
// files, so the bar is: no crash, no hang, bounded memory, an error message rather than an abort.
// Build with clang -fsanitize=fuzzer (VIGIL_FUZZ).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rules/template/template.h"

namespace {

namespace tmpl = vigil::rules::tmpl;
namespace engine = vigil::engine;

engine::alert sample(const char* scenario, const char* ip, bool ban) {
  engine::alert a;
  a.scenario = scenario;
  a.scope = "Ip";
  a.value = a.source_ip = ip;
  a.message = std::string("Ip ") + ip + " performed '" + scenario + "'";
  a.events_count = 2;
  a.start_at = 1'684'336'102'763'960'000;
  a.stop_at = a.start_at + 1'000'000'000;
  a.leakspeed = "10s";
  for (int i = 0; i < 2; ++i) {
    engine::event_payload e;
    e.time = a.start_at + i;
    e.meta = {{"namespace", "foo"}, {"resource_name", "pod-<1>"}, {"source_ip", ip}, {"user", "u\"ser"}};
    a.events.push_back(e);
  }
  if (ban) {
    engine::decision d;
    d.value = ip;
    d.scenario = scenario;
    d.duration = 4LL * 3600 * 1'000'000'000;
    d.until = a.stop_at + d.duration;
    a.decisions.push_back(d);
  }
  return a;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const engine::alert a = sample("crowdsecurity/k8s-audit-api-server-bruteforce", "10.0.0.9", true);
  static const engine::alert b = sample("crowdsecurity/k8s-audit-pod-exec", "192.168.49.1", false);
  static const tmpl::value dot = tmpl::alerts_value({tmpl::alert_view{&a, 1, "vigil", "u-1", a.stop_at},
                                                     tmpl::alert_view{&b, 2, "vigil", "u-2", b.stop_at}});
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = tmpl::templ::parse(text);
  if (auto* t = std::get_if<tmpl::templ>(&parsed)) {
    std::string out, error;
    (void)t->execute(dot, out, error);
  }
  return 0;
}
