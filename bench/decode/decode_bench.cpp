// Decoder throughput: vigil's reader (framing + simdjson DOM parse + field extraction) against
// simdjson's own parse of the same bytes, the ceiling.
//
// Run notes: use a Release build and a quiet machine; pin for stable numbers:
//   taskset -c 1 build/bench/decode_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only
// Inputs: the perfspec dataset (16,563 Metadata-level events of a real kubeadm cluster) from
// ../shared/data/realworld, or the file named by VIGIL_BENCH_PERFSPEC; and one RequestResponse pod
// creation (examples/audit/privileged-pod.jsonl) repeated 10,000 times as JSON lines.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "engine/event/event.h"
#include "engine/event/reader.h"
#include "engine/event/timestamp.h"

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string perfspec() {
  const char* env = std::getenv("VIGIL_BENCH_PERFSPEC");
  const std::string path = env != nullptr ? env
                                          : std::string(VIGIL_SOURCE_DIR) +
                                                "/../shared/data/realworld/perfspec-kubernetes-event-dataset/"
                                                "audit-logs.reconstructed.jsonl";
  return slurp(path);
}

std::string pod_creations() {
  std::string one = slurp(std::string(VIGIL_SOURCE_DIR) + "/examples/audit/privileged-pod.jsonl");
  while (!one.empty() && (one.back() == '\n' || one.back() == '\r')) {
    one.pop_back();
  }
  std::string out;
  for (int i = 0; i < 10000; ++i) {
    out += one;
    out += '\n';
  }
  return out;
}

class null_sink final : public vigil::engine::event_sink {
 public:
  void on_event(const vigil::engine::audit_event& ev, const vigil::engine::position&) override {
    benchmark::DoNotOptimize(ev.verb.data());
    ++events;
  }
  void on_error(const vigil::engine::position&, const vigil::engine::failure&) override { ++errors; }
  std::size_t events = 0, errors = 0;
};

const std::string& input(int which) {
  static const std::string perf = perfspec();
  static const std::string pods = pod_creations();
  return which == 0 ? perf : pods;
}

// The same inputs followed by the padding simdjson needs, built once.
const std::string& padded_input(int which) {
  static const std::string perf = input(0) + std::string(simdjson::SIMDJSON_PADDING, '\0');
  static const std::string pods = input(1) + std::string(simdjson::SIMDJSON_PADDING, '\0');
  return which == 0 ? perf : pods;
}

void report(benchmark::State& state, std::size_t items, std::size_t bytes_per_iteration) {
  state.SetItemsProcessed(static_cast<std::int64_t>(items));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes_per_iteration));
}

// vigil's reader over the whole input: what `vigil replay` and the webhook do per batch.
void BM_vigil_reader(benchmark::State& state) {
  const std::string& in = input(static_cast<int>(state.range(0)));
  if (in.empty()) {
    state.SkipWithError("input file not found");
    return;
  }
  const std::string& buf = padded_input(static_cast<int>(state.range(0)));
  vigil::engine::reader reader;
  std::size_t events = 0;
  for (auto _ : state) {
    null_sink sink;
    reader.reset();
    reader.feed(buf.data(), in.size(), true, "bench", sink);
    if (sink.errors != 0 || sink.events == 0) {
      state.SkipWithError("decode errors: the benchmark did no real work");
      return;
    }
    events += sink.events;
  }
  report(state, events, in.size());
}

// vigil's reader over the input framed as lines first, as the pipeline's workers get a file's
// documents: runs of them share one stage-1 pass (reader::feed_documents).
void BM_vigil_framed(benchmark::State& state) {
  const std::string& in = input(static_cast<int>(state.range(0)));
  if (in.empty()) {
    state.SkipWithError("input file not found");
    return;
  }
  const std::string& buf = padded_input(static_cast<int>(state.range(0)));
  std::vector<vigil::engine::reader::framed_document> docs;
  std::uint64_t line = 1;
  for (std::size_t pos = 0; pos < in.size(); ++line) {
    std::size_t eol = in.find('\n', pos);
    if (eol == std::string::npos) {
      eol = in.size();
    }
    if (eol > pos) {
      docs.push_back(vigil::engine::reader::framed_document{pos, eol - pos, line});
    }
    pos = eol + 1;
  }
  vigil::engine::reader reader;
  std::size_t events = 0;
  for (auto _ : state) {
    null_sink sink;
    reader.feed_documents(buf.data(), docs, "bench", sink);
    if (sink.errors != 0 || sink.events == 0) {
      state.SkipWithError("decode errors: the benchmark did no real work");
      return;
    }
    events += sink.events;
  }
  report(state, events, in.size());
}

// The ceiling: simdjson's DOM parse of each line, nothing else (no framing, no field extraction).
void BM_simdjson_parse_lines(benchmark::State& state) {
  const std::string& in = input(static_cast<int>(state.range(0)));
  if (in.empty()) {
    state.SkipWithError("input file not found");
    return;
  }
  const std::string& buf = padded_input(static_cast<int>(state.range(0)));
  simdjson::dom::parser parser;
  std::size_t docs = 0;
  for (auto _ : state) {
    std::size_t pos = 0;
    while (pos < in.size()) {
      std::size_t eol = in.find('\n', pos);
      if (eol == std::string::npos) {
        eol = in.size();
      }
      simdjson::dom::element doc;
      if (parser.parse(buf.data() + pos, eol - pos, false).get(doc) != simdjson::SUCCESS) {
        state.SkipWithError("parse error");
        return;
      }
      benchmark::DoNotOptimize(doc);
      ++docs;
      pos = eol + 1;
    }
  }
  report(state, docs, in.size());
}

// Another ceiling: simdjson's batched parse_many over the whole buffer (one stage-1 pass).
void BM_simdjson_parse_many(benchmark::State& state) {
  const std::string& in = input(static_cast<int>(state.range(0)));
  if (in.empty()) {
    state.SkipWithError("input file not found");
    return;
  }
  const std::string& buf = padded_input(static_cast<int>(state.range(0)));
  simdjson::dom::parser parser;
  // One thread, as vigil's reader parses: Debian's simdjson is built with threads, and a threaded
  // parse_many runs the next batch's stage 1 on a helper thread whose time the benchmark's CPU
  // column leaves out.
  parser.threaded = false;
  std::size_t docs = 0;
  for (auto _ : state) {
    simdjson::dom::document_stream stream;
    if (parser.parse_many(buf.data(), in.size(), 1 << 20).get(stream) != simdjson::SUCCESS) {
      state.SkipWithError("parse_many error");
      return;
    }
    for (auto doc : stream) {
      benchmark::DoNotOptimize(doc);
      ++docs;
    }
  }
  report(state, docs, in.size());
}

// The webhook's parse: the same events as 400-item EventList bodies (kube-apiserver's batch),
// each body one DOM parse, as the HTTP loop does. Against parse_many over the same events as
// lines, it says whether a body's DOM being large (several MB of tape) costs more per event.
void BM_simdjson_eventlist(benchmark::State& state) {
  const std::string& in = input(static_cast<int>(state.range(0)));
  if (in.empty()) {
    state.SkipWithError("input file not found");
    return;
  }
  static std::vector<std::string> bodies[2];
  std::vector<std::string>& mine = bodies[state.range(0)];
  constexpr std::size_t batch = 400;
  std::size_t events = 0;
  if (mine.empty()) {
    std::string body;
    std::size_t in_body = 0;
    auto close = [&] {
      body += "]}";
      body.append(simdjson::SIMDJSON_PADDING, '\0');
      mine.push_back(std::move(body));
      body.clear();
      in_body = 0;
    };
    for (std::size_t at = 0; at < in.size();) {
      std::size_t end = in.find('\n', at);
      end = end == std::string::npos ? in.size() : end;
      if (end > at) {
        body += in_body == 0 ? R"({"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[)" : ",";
        body.append(in, at, end - at);
        if (++in_body == batch) {
          close();
        }
      }
      at = end + 1;
    }
    if (in_body > 0) {
      close();
    }
  }
  simdjson::dom::parser parser;
  std::size_t bytes = 0;
  for (const std::string& b : mine) {
    bytes += b.size() - simdjson::SIMDJSON_PADDING;
  }
  for (auto _ : state) {
    for (const std::string& b : mine) {
      simdjson::dom::element root;
      simdjson::dom::array items;
      if (parser.parse(b.data(), b.size() - simdjson::SIMDJSON_PADDING, false).get(root) != simdjson::SUCCESS ||
          root["items"].get(items) != simdjson::SUCCESS) {
        state.SkipWithError("EventList parse error");
        return;
      }
      events += items.size();
    }
  }
  report(state, events, bytes);
}

using vigil::engine::key_is; // the decoder's own key comparison

// Reads the string fields of one object (user, objectRef, responseStatus), skipping the others.
std::size_t read_flat(simdjson::ondemand::object obj) {
  std::size_t n = 0;
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) {
      return 0;
    }
    simdjson::ondemand::value v = field.value();
    std::string_view text;
    if (v.type().value_unsafe() == simdjson::ondemand::json_type::string && v.get_string().get(text) == simdjson::SUCCESS) {
      n += text.size();
    } else if (key_is(key, "code")) {
      std::int64_t code = 0;
      n += v.get_int64().get(code) == simdjson::SUCCESS ? 1 : 0;
    } else if (key_is(key, "groups")) {
      for (auto g : v.get_array()) {
        n += g.get_string().value_unsafe().size();
      }
    }
  }
  return n;
}

// Another ceiling, for a design vigil does not have: simdjson On Demand over runs of lines
// (iterate_many, one stage-1 pass per run like parse_many), reading the fields decode_event
// reads (the strings, user, objectRef, responseStatus, sourceIPs, both timestamps parsed) and
// skipping requestObject, responseObject and annotations without building them. What a parse
// that builds only what a rule reads could save over the DOM; it does not check the skipped
// values as fully as the DOM parse does, which vigil's malformed-input counting relies on.
void BM_ondemand_fields_skip_objects(benchmark::State& state) {
  const std::string& in = input(static_cast<int>(state.range(0)));
  if (in.empty()) {
    state.SkipWithError("input file not found");
    return;
  }
  const std::string& buf = padded_input(static_cast<int>(state.range(0)));
  simdjson::ondemand::parser parser;
  parser.threaded = false; // as in BM_simdjson_parse_many
  std::size_t docs = 0;
  for (auto _ : state) {
    simdjson::ondemand::document_stream stream;
    if (parser.iterate_many(buf.data(), in.size(), 1 << 20).get(stream) != simdjson::SUCCESS) {
      state.SkipWithError("iterate_many error");
      return;
    }
    for (auto doc : stream) {
      simdjson::ondemand::object root;
      if (doc.get_object().get(root) != simdjson::SUCCESS) {
        state.SkipWithError("not an object");
        return;
      }
      std::size_t got = 0;
      for (auto field : root) {
        std::string_view key;
        if (field.unescaped_key().get(key) != simdjson::SUCCESS) {
          state.SkipWithError("bad key");
          return;
        }
        simdjson::ondemand::value v = field.value();
        if (key_is(key, "requestobject") || key_is(key, "responseobject") || key_is(key, "annotations")) {
          continue; // skipped, not built
        }
        if (key_is(key, "user") || key_is(key, "impersonateduser") || key_is(key, "objectref") ||
            key_is(key, "responsestatus")) {
          got += read_flat(v.get_object().value_unsafe());
        } else if (key_is(key, "sourceips")) {
          for (auto ip : v.get_array()) {
            got += ip.get_string().value_unsafe().size();
          }
        } else if (key_is(key, "requestreceivedtimestamp") || key_is(key, "stagetimestamp")) {
          const auto t = vigil::engine::parse_rfc3339(v.get_string().value_unsafe());
          got += t ? 1 : 0;
        } else if (v.type().value_unsafe() == simdjson::ondemand::json_type::string) {
          got += v.get_string().value_unsafe().size();
        }
      }
      if (got == 0) {
        state.SkipWithError("no fields read: the benchmark did no real work");
        return;
      }
      benchmark::DoNotOptimize(got);
      ++docs;
    }
  }
  report(state, docs, in.size());
}

} // namespace

// Argument 0: perfspec (Metadata events, ~425 B); 1: RequestResponse pod creation (~6 KB).
BENCHMARK(BM_simdjson_parse_lines)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_simdjson_parse_many)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_simdjson_eventlist)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_vigil_reader)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_vigil_framed)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ondemand_fields_skip_objects)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
