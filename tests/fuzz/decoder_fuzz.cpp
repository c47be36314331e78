// libFuzzer target for the audit stream reader: arbitrary bytes, fed whole and then in two
// non-final pieces, must never crash, hang or read out of bounds, and both ways must agree on how
// many events and errors they found. The same bytes framed as lines must give the same events
// and errors through feed_documents (runs parsed with one stage-1 pass) as line by line.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

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

  // One document per non-blank line, trailing blanks left out, as the pipeline frames a file.
  std::vector<vigil::engine::reader::framed_document> docs;
  std::uint64_t line = 1;
  for (std::size_t at = 0; at < size;) {
    std::size_t end = at;
    while (end < size && buf[end] != '\n') {
      ++end;
    }
    std::size_t last = end;
    while (last > at && (buf[last - 1] == ' ' || buf[last - 1] == '\t' || buf[last - 1] == '\r')) {
      --last;
    }
    if (last > at) {
      docs.push_back(vigil::engine::reader::framed_document{at, last - at, line});
    }
    at = end + 1;
    ++line;
  }
  counting_sink one_by_one, in_runs;
  vigil::engine::reader r3(options), r4(options);
  for (const auto& d : docs) {
    r3.feed_document(buf.data() + d.offset, d.size, d.line, "fuzz", one_by_one);
  }
  r4.feed_documents(buf.data(), docs, "fuzz", in_runs);
  if (one_by_one.events != in_runs.events || one_by_one.errors != in_runs.errors ||
      one_by_one.checksum != in_runs.checksum) {
    std::abort();
  }
  return 0;
}
