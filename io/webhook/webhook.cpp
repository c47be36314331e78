#include "io/webhook/webhook.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>

#include <simdjson.h>

#include "engine/counters/counters.h"
#include "engine/event/reader.h"

namespace vigil::io {

namespace {

// The dedupe key of a batch: its body's bytes and its cluster. kube-apiserver resends a batch
// whose answer it did not get as the same bytes; a resend is recognized whole, never an event
// by its auditID, which a client of the apiserver chooses (its Audit-ID header): an auditID seen
// before must not hide a new event. The standard library's string hash reads 8 bytes at a time;
// the key only has to be stable within one process.
std::uint64_t dedupe_key(std::string_view body, std::string_view cluster) noexcept {
  const std::hash<std::string_view> h;
  const std::uint64_t k = (h(body) * 0x9E3779B97F4A7C15ULL) ^ h(cluster) ^ body.size();
  return k == 0 ? 1 : k; // 0 marks an empty slot
}

// Remembers recent 64-bit keys in two generations of a flat hash table: lookups check both,
// inserts go to the young one, and when it is half full the old one is wiped and they swap.
// Memory is fixed at construction; nothing is allocated per batch.
class recent_keys {
 public:
  explicit recent_keys(std::size_t entries) {
    std::size_t cap = 1024;
    while (cap < entries) {
      cap <<= 1;
    }
    mask_ = cap - 1;
    table_ = std::make_unique<std::uint64_t[]>(2 * cap); // zeroed: every slot empty
    gen_[0] = table_.get();
    gen_[1] = table_.get() + cap;
  }
  recent_keys(const recent_keys&) = delete;
  recent_keys& operator=(const recent_keys&) = delete;

  [[nodiscard]] bool contains(std::uint64_t k) const noexcept { return find(gen_[0], k) || find(gen_[1], k); }

  void insert(std::uint64_t k) noexcept {
    if (contains(k)) {
      return;
    }
    if (used_ * 2 >= mask_ + 1) {
      young_ ^= 1;
      std::memset(gen_[young_], 0, (mask_ + 1) * sizeof(std::uint64_t));
      used_ = 0;
    }
    std::uint64_t* t = gen_[young_];
    std::size_t i = k & mask_;
    while (t[i] != 0) {
      i = (i + 1) & mask_;
    }
    t[i] = k;
    ++used_;
  }

 private:
  bool find(const std::uint64_t* t, std::uint64_t k) const noexcept {
    std::size_t i = k & mask_;
    while (t[i] != 0) {
      if (t[i] == k) {
        return true;
      }
      i = (i + 1) & mask_;
    }
    return false;
  }

  std::unique_ptr<std::uint64_t[]> table_;
  std::uint64_t* gen_[2] = {nullptr, nullptr};
  std::size_t mask_ = 0;
  std::size_t used_ = 0;
  int young_ = 0;
};

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) {
    return false;
  }
  unsigned char d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    d |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return d == 0;
}

bool valid_cluster_name(std::string_view s) noexcept {
  if (s.empty() || s.size() > 253) {
    return false;
  }
  for (const char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
          c == '.')) {
      return false;
    }
  }
  return true;
}

// An item the workers parse themselves, from its bytes.
pipeline::document raw_document(const engine::item_span& span) noexcept {
  return pipeline::document{static_cast<std::uint32_t>(span.offset), static_cast<std::uint32_t>(span.size), 1,
                            pipeline::document::raw};
}

// A header value's token without the optional white space around it, in lower case (media
// types and content codings compare without regard to case).
std::string header_token(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) {
    v.remove_prefix(1);
  }
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) {
    v.remove_suffix(1);
  }
  std::string out(v);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return out;
}

std::string json_error(std::string_view message) {
  std::string out = "{\"error\":";
  engine::append_json_string(out, message);
  out += '}';
  return out;
}

// More items than kube-apiserver ever batches (400 by default, --audit-webhook-batch-max-size):
// a body of millions of tiny items is refused before it is decoded, which would hold about
// 700 bytes and take microseconds of the loop thread per item.
constexpr std::size_t max_batch_items = 1u << 17;

std::string too_many_items() {
  return "more than " + std::to_string(max_batch_items) + " items in one request";
}

} // namespace

struct webhook::impl {
  pipeline::pipeline& pl;
  webhook_options opts;
  pipeline::chunk_pool chunks;   // bodies and their parses, recycled once the workers are done
  // Every batch, into its chunk's document; and item by item, into its own document, for a
  // body that is not valid JSON as a whole.
  simdjson::dom::parser parser;
  recent_keys seen;
  engine::audit_event scratch; // the fallback path decodes items one at a time into it
  std::vector<engine::item_span> spans;
  std::string as_go; // a body or item rewritten as Go reads it (engine::rewrite_as_go_reads)
  std::vector<pipeline::document> docs; // the batch's accepted documents, in order
  counters::id requests, hits, accepted, rejected, duplicates, refused, bad_bodies;
  counters::histogram batch_events;

  impl(pipeline::pipeline& p, webhook_options o)
      : pl(p), opts(std::move(o)), seen(opts.dedupe_entries) {
    auto& r = counters::registry::global();
    const counters::label src{"source", opts.name};
    requests = r.define("cs_k8sauditsource_requests_total", "Total number of requests received", {src});
    hits = r.define("cs_k8sauditsource_hits_total", "Total number of events received by k8s-audit source",
                    {src, {"datasource_type", "k8s-audit"}, {"acquis_type", "k8s-audit"}});
    const char* help = "Audit events received by the webhook, by outcome";
    accepted = r.define("vigil_webhook_events_total", help, {src, {"result", "accepted"}});
    rejected = r.define("vigil_webhook_events_total", help, {src, {"result", "rejected"}});
    duplicates = r.define("vigil_webhook_events_total", help, {src, {"result", "duplicate"}});
    refused = r.define("vigil_webhook_batches_refused_total", "Batches answered 429 (in-flight limit)", {src});
    bad_bodies = r.define("vigil_webhook_bad_bodies_total",
                          "Batches answered 400 (nothing usable) or 413 (too many items)", {src});
    batch_events = counters::histogram("vigil_webhook_batch_events", "Audit events per accepted batch",
                                       {1, 10, 50, 100, 200, 400, 800, 1600, 5000}, {src});
  }

  // Cluster of a request: the path suffix if any, else the configured one. False for other paths.
  bool route(std::string_view path, std::string_view& cluster) const {
    const std::string_view base = opts.path;
    if (path == base) {
      cluster = opts.cluster;
      return true;
    }
    if (path.size() > base.size() + 1 && path.substr(0, base.size()) == base && path[base.size()] == '/' &&
        valid_cluster_name(path.substr(base.size() + 1))) {
      cluster = path.substr(base.size() + 1);
      return true;
    }
    return false;
  }

  // One item of a body that is not valid JSON as a whole, parsed on its own (as Go reads it if
  // simdjson refuses it only for what Go reads).
  simdjson::error_code parse_item(const char* p, std::size_t len, simdjson::dom::element& item, bool& as_go_read) {
    as_go_read = false;
    const simdjson::error_code err = parser.parse(p, len, false).get(item);
    const std::string_view go = engine::as_go_reads(std::string_view(p, len), err, as_go);
    if (go.empty() || parser.parse(go.data(), go.size(), false).get(item) != simdjson::SUCCESS) {
      return err;
    }
    as_go_read = true;
    return simdjson::SUCCESS;
  }

  // One decoded item: rejected now (false), or kept for route().
  bool classify(const engine::decode_status& st, std::size_t index, const pipeline::document& doc,
                std::string& rejects, std::size_t& n_rejected, std::string_view reason_if_bad) {
    if (!st.ok() || !reason_if_bad.empty()) {
      if (n_rejected < named_rejects) {
        engine::failure f;
        f.status = st;
        reject(index, reason_if_bad.empty() ? engine::describe(f) : std::string(reason_if_bad), rejects, n_rejected);
      } else {
        ++n_rejected; // counted, not described: a body of a million bad items costs no strings
      }
      return false;
    }
    kept.push_back(doc);
    return true;
  }

  // The classified items: all duplicates if the batch is a resend, else all accepted, in order.
  void route(bool resent) {
    if (resent) {
      n_duplicates = kept.size();
    } else {
      docs.insert(docs.end(), kept.begin(), kept.end());
    }
    kept.clear();
  }

  static constexpr std::size_t named_rejects = 100; // the answer names the first 100; all are counted

  void reject(std::size_t index, const std::string& reason, std::string& rejects, std::size_t& n_rejected) {
    if (n_rejected < named_rejects) {
      if (!rejects.empty()) {
        rejects += ',';
      }
      rejects += "{\"index\":" + std::to_string(index) + ",\"reason\":";
      engine::append_json_string(rejects, reason);
      rejects += '}';
    }
    ++n_rejected;
  }

  std::size_t n_duplicates = 0;
  std::vector<pipeline::document> kept;
};

webhook::webhook(pipeline::pipeline& pl, webhook_options opts) : impl_(std::make_unique<impl>(pl, std::move(opts))) {}
webhook::~webhook() = default;

int webhook::precheck(const http::request& req, http::response& res) {
  impl& w = *impl_;
  std::string_view cluster;
  if (!w.route(req.path, cluster)) {
    res.body = json_error("no such path; the audit webhook is at " + w.opts.path);
    return 404;
  }
  // As CrowdSec's handler counts: every request to the webhook's path, whatever its answer (a
  // request to another path never reaches that handler).
  counters::add(w.requests);
  if (req.method != "POST") {
    res.headers.emplace_back("Allow", "POST");
    res.body = json_error("method not allowed: use POST");
    return 405;
  }
  if (w.opts.require_client_cert && !req.client_cert_verified) {
    res.body = json_error(req.tls ? "a client certificate signed by the configured CA is required"
                                  : "TLS with a client certificate is required");
    return 401;
  }
  if (!w.opts.tokens.empty()) {
    const std::string_view auth = req.header("authorization");
    bool ok = false;
    if (auth.size() > 7 && (auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer ")) {
      for (const std::string& t : w.opts.tokens) {
        ok = constant_time_equal(auth.substr(7), t) || ok;
      }
    }
    if (!ok) {
      res.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"vigil\"");
      res.body = json_error(auth.empty() ? "missing bearer token" : "invalid bearer token");
      return 401;
    }
  }
  // Media types compare without regard to case (RFC 9110 8.3.1): "Application/JSON" is JSON.
  const std::string_view ct = req.header("content-type");
  if (!ct.empty()) {
    const std::string media = header_token(ct.substr(0, ct.find(';')));
    if (media != "application/json" && media != "text/json") {
      res.body = json_error("unsupported content type '" + std::string(ct) + "': send application/json");
      return 415;
    }
  }
  // kube-apiserver sends its batches uncompressed; a compressed body would only fail as JSON.
  const std::string encoding = header_token(req.header("content-encoding"));
  if (!encoding.empty() && encoding != "identity") {
    res.body = json_error("unsupported content encoding '" + std::string(req.header("content-encoding")) +
                          "': send the body uncompressed");
    return 415;
  }
  return 0;
}

void webhook::handle(http::request& req, http::response& res) {
  impl& w = *impl_;
  std::string_view cluster;
  w.route(req.path, cluster);
  const std::size_t size = req.body.size();

  // The body moves into a recycled chunk, and the chunk's old buffer becomes the connection's
  // next body buffer: steady traffic allocates neither.
  std::shared_ptr<pipeline::input_chunk> chunk = w.chunks.get(0);
  chunk->data.swap(req.body);
  chunk->data.append(simdjson::SIMDJSON_PADDING, '\0');
  chunk->size = size;
  const std::string_view remote = req.remote.substr(0, req.remote.rfind(':'));
  chunk->origin.assign(w.opts.name).append(":").append(req.remote);
  chunk->source_type.assign("k8s-audit");
  chunk->source_path.assign(remote); // CrowdSec's Line.Src: the client address
  chunk->cluster.assign(cluster);
  const char* data = chunk->data.data();

  w.spans.clear();
  w.kept.clear();
  w.n_duplicates = 0;
  w.docs.clear();
  std::string rejects;
  std::size_t n_rejected = 0;

  // The batch is parsed and decoded once, here, into the chunk's own parse state: the workers
  // take the decoded events (document::item) instead of parsing them again.
  if (!chunk->parsed) {
    chunk->parsed = std::make_unique<pipeline::input_chunk::parse_state>();
  }
  // Both sized with room to spare: batch sizes vary, and a parse state regrown for every slightly
  // larger batch would fault fresh pages in again and again.
  simdjson::dom::parser& parser = w.parser;
  simdjson::dom::document& parsed = chunk->parsed->doc;
  // Parses `n` bytes into the chunk's document, both sized up first. The files' depth limit too
  // (reader_options::max_depth), not simdjson's default of 1024: the same event is accepted or
  // refused whichever way it comes.
  simdjson::dom::element root;
  auto parse_into_chunk = [&](const char* bytes, std::size_t n) {
    simdjson::error_code e = n > parser.capacity() ? parser.allocate(std::bit_ceil(n), engine::reader_options{}.max_depth)
                                                   : simdjson::SUCCESS;
    if (e == simdjson::SUCCESS && n > parsed.capacity()) {
      e = parsed.allocate(std::bit_ceil(n));
    }
    return e == simdjson::SUCCESS ? parser.parse_into_document(parsed, bytes, n, false).get(root) : e;
  };
  simdjson::error_code err = parse_into_chunk(data, size);
  if (const std::string_view go = engine::as_go_reads(std::string_view(data, size), err, w.as_go); !go.empty()) {
    // JSON Go reads and simdjson refuses (bytes that are not UTF-8, a lone surrogate, a long
    // integer): parsed as CrowdSec's Go code reads it. The parse does not point into its input.
    if (parse_into_chunk(go.data(), go.size()) == simdjson::SUCCESS) {
      err = simdjson::SUCCESS;
      engine::count_read_as_go();
    }
  }
  if (err == simdjson::SUCCESS) {
    // Valid JSON: find the items (an EventList, an array, or one Event).
    simdjson::dom::array items;
    bool is_list = root.type() == simdjson::dom::element_type::ARRAY;
    if (is_list) {
      items = root.get_array().value_unsafe();
    } else if (root.type() == simdjson::dom::element_type::OBJECT) {
      std::string_view kind;
      if (root["kind"].get(kind) == simdjson::SUCCESS && kind == "EventList") {
        simdjson::dom::element it;
        if (root["items"].get(it) == simdjson::SUCCESS && it.type() == simdjson::dom::element_type::ARRAY) {
          items = it.get_array().value_unsafe();
          is_list = true;
        } else if (root["items"].error() == simdjson::SUCCESS && it.type() != simdjson::dom::element_type::NULL_VALUE) {
          counters::add(w.bad_bodies);
          res.status = 400;
          res.body = json_error("EventList 'items' is not a list");
          return;
        } else {
          res.body = R"({"accepted":0,"duplicates":0,"rejected":[]})"; // an empty batch
          return;
        }
      }
    } else {
      counters::add(w.bad_bodies);
      res.status = 400;
      res.body = json_error("not an audit Event, EventList or array of Events");
      return;
    }
    if (is_list && items.size() > max_batch_items) {
      counters::add(w.bad_bodies);
      res.status = 413;
      res.body = json_error(too_many_items());
      return;
    }
    // The document list moves into a worker's inbox with each batch, so it starts empty: sized
    // once here rather than regrown (and reallocated) item by item. Capped: a body of millions
    // of tiny non-events must not reserve for all of them.
    w.docs.reserve(std::min<std::size_t>(is_list ? items.size() : 1, 8192));
    // Decoded once, here: the workers take these events as they are (document::item). A
    // rejected item gives its slot back.
    std::size_t index = 0;
    auto decode = [&](simdjson::dom::element item) {
      const std::size_t slot = chunk->events.size();
      engine::audit_event& ev = chunk->events.emplace_back();
      const engine::decode_status st = engine::decode_event(item, ev);
      pipeline::document doc;
      doc.item = static_cast<std::uint32_t>(slot);
      if (!w.classify(st, index++, doc, rejects, n_rejected, {})) {
        chunk->events.pop_back();
      }
    };
    if (is_list) {
      for (simdjson::dom::element item : items) {
        decode(item);
      }
    } else {
      decode(root);
    }
    engine::count_parsed_batch(size);
  } else {
    // Not valid JSON as a whole: keep what can be read item by item.
    const bool split = engine::split_items(data, data + size, w.opts.max_document_bytes, max_batch_items, w.spans);
    if (w.spans.size() > max_batch_items) {
      counters::add(w.bad_bodies);
      res.status = 413;
      res.body = json_error(too_many_items());
      return;
    }
    if (!split || w.spans.empty()) {
      counters::add(w.bad_bodies);
      res.status = 400;
      res.body = json_error(std::string("body is not a usable audit batch: ") + simdjson::error_message(err));
      return;
    }
    for (std::size_t i = 0; i < w.spans.size(); ++i) {
      const engine::item_span& span = w.spans[i];
      simdjson::dom::element item;
      bool as_go_read = false;
      const auto item_err =
          span.complete ? w.parse_item(data + span.offset, span.size, item, as_go_read) : simdjson::TAPE_ERROR;
      if (item_err != simdjson::SUCCESS) {
        // Where a malformed item ends can be a guess: a string left open turns every later quote
        // inside out, and read that way a string's contents could pass for events. Then what
        // follows is not split into items, and the answer says so. An item refused for its
        // depth, a number or a typo in `true` has sure bounds, and the items after it are read.
        const bool bounds_sure =
            span.complete && engine::item_bounds_trusted(data + span.offset, data + span.offset + span.size);
        w.classify(engine::decode_status{}, i, raw_document(span), rejects, n_rejected,
                   std::string("invalid JSON: ") + simdjson::error_message(item_err) +
                       (bounds_sure ? "" : "; the list is not read past this item (where it ends is in doubt)"));
        if (bounds_sure) {
          continue;
        }
        if (i + 1 < w.spans.size()) {
          w.reject(i + 1, "not read: the list cannot be split reliably after the malformed item " + std::to_string(i),
                   rejects, n_rejected);
        }
        break;
      }
      const engine::decode_status st = engine::decode_event(item, w.scratch);
      if (!w.classify(st, i, raw_document(span), rejects, n_rejected, {}) && as_go_read) {
        engine::count_read_as_go(); // a kept item is counted by its worker, which parses it again
      }
    }
    if (w.kept.empty()) {
      // Nothing usable: the same answer as a body with no list at all. The bad items it names
      // are counted as the items of any batch are.
      counters::add(w.rejected, n_rejected);
      w.pl.count_unparsed(*chunk, n_rejected);
      counters::add(w.bad_bodies);
      res.status = 400;
      res.body = R"({"error":)";
      engine::append_json_string(res.body, std::string("body is not a usable audit batch: ") + simdjson::error_message(err));
      res.body += ",\"rejected\":[" + rejects + "]}";
      return;
    }
  }

  const std::uint64_t key = dedupe_key(std::string_view(data, size), cluster);
  const bool resent = w.seen.contains(key);
  w.route(resent);
  const std::size_t n_accepted = w.docs.size();
  if (!w.pl.try_submit(chunk, w.docs)) {
    counters::add(w.refused);
    res.status = 429;
    res.headers.emplace_back("Retry-After", "1");
    res.body = json_error("too many events in flight: retry later; nothing of this batch was taken");
    return;
  }
  w.seen.insert(key);
  counters::add(w.hits, n_accepted + n_rejected + w.n_duplicates);
  w.batch_events.observe(static_cast<double>(n_accepted + n_rejected + w.n_duplicates));
  counters::add(w.accepted, n_accepted);
  if (resent) {
    // A resend: its bad items were counted the first time; the answer still names them.
    counters::add(w.duplicates, w.n_duplicates + n_rejected);
  } else {
    counters::add(w.rejected, n_rejected);
    w.pl.count_unparsed(*chunk, n_rejected);
    counters::add(w.duplicates, w.n_duplicates);
  }
  res.body = "{\"accepted\":" + std::to_string(n_accepted) + ",\"duplicates\":" + std::to_string(w.n_duplicates) +
             ",\"rejected\":[" + rejects + "]";
  if (n_rejected > 100) {
    res.body += ",\"rejected_total\":" + std::to_string(n_rejected);
  }
  res.body += '}';
}

} // namespace vigil::io
