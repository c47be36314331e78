// libFuzzer target for the audit stream reader: arbitrary bytes, fed whole and then in two
// non-final pieces, must never crash, hang or read out of bounds, and both ways must agree on how
// many events and errors they found.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "engine/event/reader.h"

namespace {

class counting_sink final : public vigil::engine::event_sink {
 public:
  void on_event(const vigil::engine::audit_event& ev, const vigil::engine::position&) override {
    ++events;
    // Touch every view so ASan sees any dangling pointer.
    checksum += ev.verb.size() + ev.user.username.size() + ev.source_ip.size() + ev.object.resource.size() +
                ev.annotation("authorization.k8s.io/decision").size();
  }
  void on_error(const vigil::engine::position&, const vigil::engine::failure& why) override {
    ++errors;
    checksum += vigil::engine::describe(why).size();
  }
  std::size_t events = 0, errors = 0, checksum = 0;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  vigil::engine::reader_options options;
  options.max_document_bytes = 1 << 16;
  std::string buf(reinterpret_cast<const char*>(data), size);
  buf.append(simdjson::SIMDJSON_PADDING, '\0');

  counting_sink whole;
  vigil::engine::reader r1(options);
  r1.feed(buf.data(), size, true, "fuzz", whole);

  // Same bytes split at a point chosen by the input, as a file read would split them.
  counting_sink split;
  vigil::engine::reader r2(options);
  const std::size_t cut = size == 0 ? 0 : data[0] % (size + 1);
  std::string first(buf.data(), cut);
  first.append(simdjson::SIMDJSON_PADDING, '\0');
  const std::size_t used = r2.feed(first.data(), cut, false, "fuzz", split);
  std::string rest(buf.data() + used, size - used);
  rest.append(simdjson::SIMDJSON_PADDING, '\0');
  r2.feed(rest.data(), size - used, true, "fuzz", split);

  if (whole.events != split.events || whole.errors != split.errors) {
    std::abort();
  }
  return 0;
}
