#include "engine/event/reader.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "engine/counters/counters.h"
#include "engine/util/utf8.h"

namespace vigil::engine {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

struct decoder_counters {
  counters::id read, decoded, bytes, documents, as_go;
  counters::id errors_syntax, errors_truncated, errors_too_large, errors_not_object, errors_not_event,
      errors_wrong_type, errors_bad_timestamp, errors_no_audit_fields;

  static const decoder_counters& get() {
    static const decoder_counters c = [] {
      auto& r = counters::registry::global();
      const char* err_help = "Audit lines or items rejected by the decoder, by kind";
      auto err = [&](const char* kind) { return r.define("vigil_decoder_errors_total", err_help, {{"kind", kind}}); };
      return decoder_counters{
          r.define("vigil_decoder_events_read_total", "Audit events (items or lines) seen by the decoder"),
          r.define("vigil_decoder_events_decoded_total", "Audit events decoded successfully"),
          r.define("vigil_decoder_bytes_total", "Bytes consumed by the decoder"),
          r.define("vigil_decoder_documents_total", "JSON documents parsed (lines, objects, lists)"),
          r.define("vigil_decoder_read_as_go_total",
                   "Documents simdjson refused and read as Go's encoding/json reads them (bytes that are not "
                   "UTF-8, lone surrogates, integers past 64 bits)"),
          err("syntax"),
          err("truncated"),
          err("too_large"),
          err("not_object"),
          err("not_event"),
          err("wrong_type"),
          err("bad_timestamp"),
          err("no_audit_fields"),
      };
    }();
    return c;
  }
};

inline bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// `broken`: a string holds a raw line break, which no valid JSON has (control characters in a
// string must be escaped). It is how a line cut in the middle of a string looks: the value ends
// with that line, or the bracket matching would run on with every quote's meaning inverted and
// take the following lines (good events) as the rest of this one.
enum class scan_result { complete, incomplete, too_large, broken };

// Finds the end of the JSON object or array starting at `p` by bracket matching, aware of strings
// and escapes but not validating anything else (simdjson validates afterwards). `out` is set for
// `complete` (past the closing bracket) and `broken` (past the line break).
scan_result scan_value_end(const char* p, const char* end, std::size_t max_bytes, const char*& out) noexcept {
  const char* start = p;
  std::size_t depth = 0;
  while (p < end) {
    if (static_cast<std::size_t>(p - start) > max_bytes) {
      return scan_result::too_large;
    }
    const char c = *p;
    if (c == '"') {
      ++p;
      while (p < end && *p != '"') {
        const char* next = p + ((*p == '\\') ? 2 : 1);
        const char* brk = next <= end && next[-1] == '\n' ? next - 1 : nullptr;
        if (brk != nullptr) {
          out = brk + 1;
          return scan_result::broken;
        }
        p = next;
      }
      if (p >= end) {
        return scan_result::incomplete;
      }
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth <= 1) {
        out = p + 1;
        return scan_result::complete;
      }
      --depth;
    }
    ++p;
  }
  return scan_result::incomplete;
}

inline std::uint64_t count_lines(const char* begin, const char* end) noexcept {
  return static_cast<std::uint64_t>(std::count(begin, end, '\n'));
}

inline const char* skip_space(const char* p, const char* end) noexcept {
  while (p < end && is_space(*p)) {
    ++p;
  }
  return p;
}

} // namespace

namespace {

// Finds the list of items: the document itself if it is an array, else the value of a top-level
// "items" key of an object. Returns the '[' or nullptr.
const char* locate_list(const char* begin, const char* end, std::size_t max_bytes) noexcept {
  const char* p = skip_space(begin, end);
  if (p < end && *p == '{') {
    ++p;
    bool found = false;
    while (p < end) {
      p = skip_space(p, end);
      if (p >= end || *p != '"') {
        return nullptr;
      }
      const char* key_end = p + 1;
      while (key_end < end && *key_end != '"') {
        key_end += (*key_end == '\\') ? 2 : 1;
      }
      if (key_end >= end) {
        return nullptr;
      }
      const std::string_view key(p + 1, static_cast<std::size_t>(key_end - p - 1));
      p = skip_space(key_end + 1, end);
      if (p >= end || *p != ':') {
        return nullptr;
      }
      p = skip_space(p + 1, end);
      if (key == "items" && p < end && *p == '[') {
        found = true;
        break;
      }
      // Skip the value: a container by bracket matching, a scalar up to the next , or }.
      if (p < end && (*p == '{' || *p == '[')) {
        const char* value_end = nullptr;
        if (scan_value_end(p, end, max_bytes, value_end) != scan_result::complete) {
          return nullptr;
        }
        p = value_end;
      } else if (p < end && *p == '"') {
        ++p;
        while (p < end && *p != '"') {
          p += (*p == '\\') ? 2 : 1;
        }
        ++p;
      } else {
        while (p < end && *p != ',' && *p != '}') {
          ++p;
        }
      }
      p = skip_space(p, end);
      if (p < end && *p == ',') {
        ++p;
      } else {
        return nullptr;
      }
    }
    if (!found) {
      return nullptr;
    }
  }
  if (p >= end || *p != '[') {
    return nullptr;
  }
  return p;
}

} // namespace

bool split_items(const char* begin, const char* end, std::size_t max_bytes, std::size_t max_items,
                 std::vector<item_span>& out) {
  const char* p = locate_list(begin, end, max_bytes);
  if (p == nullptr) {
    return false;
  }
  ++p;
  while (true) {
    p = skip_space(p, end);
    if (p >= end || *p == ']' || out.size() > max_items) {
      return true;
    }
    const char* item_end = nullptr;
    const scan_result r =
        *p == '{' || *p == '[' ? scan_value_end(p, end, max_bytes, item_end) : scan_result::incomplete;
    if (r != scan_result::complete) {
      // Scalars and cut items: the item runs to the next ',' or ']' at this depth, unvalidated.
      const char* q = p;
      while (q < end && *q != ',' && *q != ']') {
        ++q;
      }
      out.push_back(item_span{static_cast<std::size_t>(p - begin), static_cast<std::size_t>(q - p), false});
      if (r != scan_result::complete && (*p == '{' || *p == '[')) {
        return true; // the rest of the list is unreadable
      }
      p = q;
    } else {
      out.push_back(item_span{static_cast<std::size_t>(p - begin), static_cast<std::size_t>(item_end - p), true});
      p = item_end;
    }
    p = skip_space(p, end);
    if (p < end && *p == ',') {
      ++p;
    }
  }
}

bool next_line(const char*& p, const char* end, bool final, std::uint64_t& line, line_span& out) noexcept {
  while (p < end && is_space(*p)) {
    line += *p == '\n' ? 1 : 0;
    ++p;
  }
  if (p >= end) {
    return false;
  }
  const char* eol = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
  if (eol == nullptr) {
    if (!final) {
      return false; // the line may continue in the next buffer
    }
    eol = end;
  }
  const char* line_end = eol;
  while (line_end > p && is_space(line_end[-1])) {
    --line_end;
  }
  out = line_span{p, line_end, eol};
  return true;
}

std::size_t find_document_end(const char* begin, const char* end, std::size_t max_bytes) noexcept {
  const char* out = nullptr;
  if (begin >= end) {
    return 0;
  }
  const scan_result r = scan_value_end(begin, end, max_bytes, out);
  if (r != scan_result::complete && r != scan_result::broken) {
    return 0;
  }
  return static_cast<std::size_t>(out - begin);
}

const char* failure::kind() const noexcept {
  if (too_large) {
    return "too_large";
  }
  if (incomplete) {
    return "truncated";
  }
  if (json != simdjson::SUCCESS || after_malformed) {
    return "syntax";
  }
  return to_string(status.error);
}

std::string describe(const failure& f) {
  if (f.too_large) {
    return "document larger than the configured maximum";
  }
  if (f.incomplete) {
    return "truncated JSON: the input ends inside a document";
  }
  if (f.after_malformed) {
    return "not read: the list cannot be split reliably after the malformed item before this one";
  }
  if (f.json != simdjson::SUCCESS) {
    return std::string("invalid JSON: ") + simdjson::error_message(f.json);
  }
  std::string field = f.status.field != nullptr ? std::string(" '") + f.status.field + "'" : std::string();
  switch (f.status.error) {
  case decode_error::not_object:
    return "not an audit event: not a JSON object";
  case decode_error::not_event:
    return "not an audit event: field" + field + " names another kind of object";
  case decode_error::wrong_type:
    return "not an audit event: field" + field + " has the wrong type";
  case decode_error::bad_timestamp:
    return "not an audit event: field" + field + " is not an RFC 3339 time";
  case decode_error::no_audit_fields:
    return "not an audit event: none of auditID, verb, requestURI, stage, user, objectRef";
  case decode_error::none:
    break;
  }
  return "unknown error";
}

namespace {
// One parse_many window: its documents are parsed in one stage-1 pass, so it is bounded (the
// parser's buffers grow to it once).
constexpr std::size_t window_bytes = 256 * 1024;

bool blank(const char* p, const char* end) noexcept {
  for (; p < end; ++p) {
    if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
      return false;
    }
  }
  return true;
}
} // namespace

reader::reader(reader_options options) : options_(options) {
  (void)decoder_counters::get();
  // Depth is fixed up front; capacity grows with the largest document seen (no steady-state allocation).
  if (parser_.allocate(64 * 1024, options_.max_depth) != simdjson::SUCCESS) {
    std::abort(); // start-up: out of memory
  }
  // feed_documents' windows fit in one batch: parse_many never needs simdjson's stage-1 thread.
  parser_.threaded = false;
  gathered_.reserve(window_bytes + simdjson::SIMDJSON_PADDING);
}

void reader::report(const position& where, const failure& why, event_sink& sink) {
  const auto& c = decoder_counters::get();
  ++stats_.events_read;
  ++stats_.malformed;
  counters::add(c.read);
  counters::id err;
  if (why.too_large) {
    err = c.errors_too_large;
  } else if (why.incomplete) {
    err = c.errors_truncated;
  } else if (why.json != simdjson::SUCCESS) {
    err = c.errors_syntax;
  } else {
    switch (why.status.error) {
    case decode_error::not_object:
      err = c.errors_not_object;
      break;
    case decode_error::not_event:
      err = c.errors_not_event;
      break;
    case decode_error::wrong_type:
      err = c.errors_wrong_type;
      break;
    case decode_error::bad_timestamp:
      err = c.errors_bad_timestamp;
      break;
    default:
      err = c.errors_no_audit_fields;
      break;
    }
  }
  counters::add(err);
  sink.on_error(where, why);
}

void reader::dispatch_item(element item, const position& where, event_sink& sink) {
  const decode_status st = decode_event(item, event_);
  if (!st.ok()) {
    failure f;
    f.status = st;
    report(where, f, sink);
    return;
  }
  accept(where, sink);
}

void reader::accept(const position& where, event_sink& sink) {
  const auto& c = decoder_counters::get();
  ++stats_.events_read;
  ++stats_.decoded;
  counters::add(c.read);
  counters::add(c.decoded);
  sink.on_event(event_, where);
}

void reader::dispatch(element root, const position& where, event_sink& sink) {
  counters::add(decoder_counters::get().documents);
  position at = where;
  if (root.type() == element_type::ARRAY) {
    at.item = 0;
    const simdjson::dom::array list = root.get_array().value_unsafe();
    for (element item : list) {
      dispatch_item(item, at, sink);
      ++at.item;
    }
    return;
  }
  if (root.type() == element_type::OBJECT) {
    // Decode first: the common case is an Event, and decode_event reads `kind` on its way.
    const decode_status st = decode_event(root, event_);
    if (st.ok()) {
      accept(where, sink);
      return;
    }
    if (event_.kind == "EventList") {
      simdjson::dom::array items;
      element items_el;
      if (root["items"].get(items_el) == simdjson::SUCCESS && items_el.type() == element_type::NULL_VALUE) {
        return; // an empty batch: Go encodes a nil slice as null
      }
      if (root["items"].get(items) != simdjson::SUCCESS) {
        failure f;
        f.status = decode_status{decode_error::wrong_type, "items"};
        report(where, f, sink);
        return;
      }
      at.item = 0;
      for (element item : items) {
        dispatch_item(item, at, sink);
        ++at.item;
      }
      return;
    }
    failure f;
    f.status = st;
    report(where, f, sink);
    return;
  }
  dispatch_item(root, where, sink);
}

namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
    return (c | 0x20) - 'a' + 10;
  }
  return -1;
}

// The code unit of the \uXXXX escape at s[i] (s[i] == '\\'), or -1.
int escaped_unit(std::string_view s, std::size_t i) noexcept {
  if (i + 6 > s.size() || s[i] != '\\' || s[i + 1] != 'u') {
    return -1;
  }
  int v = 0;
  for (std::size_t k = i + 2; k < i + 6; ++k) {
    const int h = hex_value(s[k]);
    if (h < 0) {
      return -1;
    }
    v = v * 16 + h;
  }
  return v;
}

} // namespace

bool rewrite_as_go_reads(std::string_view in, std::string& out) {
  out.clear();
  bool changed = false;
  bool in_string = false;
  for (std::size_t i = 0; i < in.size();) {
    const char c = in[i];
    if (in_string) {
      if (c == '"') {
        in_string = false;
        out += c;
        ++i;
      } else if (c == '\\') {
        const int unit = escaped_unit(in, i);
        if (unit >= 0xD800 && unit <= 0xDBFF) {
          const int low = escaped_unit(in, i + 6);
          if (low >= 0xDC00 && low <= 0xDFFF) {
            out.append(in.substr(i, 12)); // a surrogate pair
            i += 12;
          } else {
            out += "\\ufffd"; // Go: U+FFFD, then the next escape read on its own
            changed = true;
            i += 6;
          }
        } else if (unit >= 0xDC00 && unit <= 0xDFFF) {
          out += "\\ufffd";
          changed = true;
          i += 6;
        } else {
          const std::size_t n = std::min<std::size_t>(unit >= 0 ? 6 : 2, in.size() - i);
          out.append(in.substr(i, n));
          i += n;
        }
      } else {
        const std::size_t w = util::utf8_sequence(in, i);
        if (w == 0) {
          out += "\xEF\xBF\xBD";
          changed = true;
          ++i;
        } else {
          out.append(in.substr(i, w));
          i += w;
        }
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      out += c;
      ++i;
      continue;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      std::size_t end = i + 1;
      bool integer = true;
      std::size_t digits = c == '-' ? 0 : 1;
      for (; end < in.size(); ++end) {
        const char d = in[end];
        if (d >= '0' && d <= '9') {
          ++digits;
        } else if (d == '.' || d == 'e' || d == 'E' || d == '+' || d == '-') {
          integer = false;
        } else {
          break;
        }
      }
      out.append(in.substr(i, end - i));
      if (integer && digits > 18) { // past 64 bits or near: a float64, as Go reads every number here
        out += ".0";
        changed = true;
      }
      i = end;
      continue;
    }
    out += c; // anything else as it is: what is wrong there is wrong for Go too
    ++i;
  }
  return changed;
}

std::string_view as_go_reads(std::string_view in, simdjson::error_code err, std::string& buf) {
  if (!go_readable_error(err) || !rewrite_as_go_reads(in, buf)) {
    return {};
  }
  const std::size_t n = buf.size();
  buf.append(simdjson::SIMDJSON_PADDING, '\0');
  return std::string_view(buf.data(), n);
}

simdjson::error_code reader::parse(const char* p, std::size_t len, element& out) {
  simdjson::error_code err = len > parser_.capacity() ? parser_.allocate(len, options_.max_depth) : simdjson::SUCCESS;
  if (err == simdjson::SUCCESS) {
    err = parser_.parse(p, len, false).get(out);
  }
  const std::string_view go = as_go_reads(std::string_view(p, len), err, as_go_);
  if (go.empty()) {
    return err;
  }
  simdjson::error_code again =
      go.size() > parser_.capacity() ? parser_.allocate(go.size(), options_.max_depth) : simdjson::SUCCESS;
  if (again == simdjson::SUCCESS) {
    again = parser_.parse(go.data(), go.size(), false).get(out);
  }
  if (again != simdjson::SUCCESS) {
    return err; // still refused: the first reason is the one to give
  }
  count_read_as_go();
  return again;
}

bool item_bounds_trusted(const char* p, const char* end) noexcept {
  // Each string must be followed by what may follow a string in JSON. A string left open turns
  // the quotes after it inside out: the first "string" it then closes is followed by a bare word.
  while (p < end) {
    if (*p != '"') {
      ++p;
      continue;
    }
    ++p;
    while (p < end && *p != '"') {
      p += *p == '\\' ? 2 : 1;
    }
    if (p >= end) {
      return false;
    }
    p = skip_space(p + 1, end);
    if (p < end && *p != ':' && *p != ',' && *p != '}' && *p != ']') {
      return false;
    }
  }
  return true;
}

bool reader::recover_items(const char* begin, const char* end, const position& where, event_sink& sink) {
  const char* p = locate_list(begin, end, options_.max_document_bytes);
  if (p == nullptr) {
    return false;
  }
  ++p;
  position at = where;
  at.item = 0;
  while (true) {
    p = skip_space(p, end);
    if (p >= end) {
      // Cut after a whole item: the list never closes. One error for what is missing.
      at.line = where.line + count_lines(begin, p);
      failure f;
      f.incomplete = true;
      report(at, f, sink);
      break;
    }
    if (*p == ']') {
      break;
    }
    at.line = where.line + count_lines(begin, p);
    const char* item_end = nullptr;
    const scan_result r = *p == '{' || *p == '[' ? scan_value_end(p, end, options_.max_document_bytes, item_end)
                                                 : scan_result::incomplete;
    if (r != scan_result::complete) {
      failure f;
      f.json = simdjson::TAPE_ERROR;
      f.incomplete = r == scan_result::incomplete && (*p == '{' || *p == '[');
      report(at, f, sink);
      return true; // the rest of the list is unreadable: one error for it
    }
    const char* const item_start = p;
    element item;
    const auto err = parse(p, static_cast<std::size_t>(item_end - p), item);
    if (err != simdjson::SUCCESS) {
      failure f;
      f.json = err;
      report(at, f, sink);
      // Where a malformed item ends can be a guess: a string left open turns every later quote
      // inside out, and read that way a string's contents could pass for events. Then what
      // follows is not split into items. An item refused for its depth, a number or a typo in
      // `true` has sure bounds, and the items after it are read.
      p = skip_space(item_end, end);
      if (item_bounds_trusted(item_start, item_end)) {
        if (p < end && *p == ',') {
          ++p;
        }
        ++at.item;
        continue;
      }
      if (p < end && *p == ',') {
        p = skip_space(p + 1, end);
        ++at.item;
        at.line = where.line + count_lines(begin, p);
        failure rest;
        rest.after_malformed = true;
        report(at, rest, sink);
      }
      return true;
    } else {
      dispatch_item(item, at, sink);
    }
    ++at.item;
    p = skip_space(item_end, end);
    if (p < end && *p == ',') {
      ++p;
    }
  }
  return true;
}

void reader::feed_document(const char* data, std::size_t size, std::uint64_t line, std::string_view origin,
                           event_sink& sink) {
  element root;
  if (size <= options_.max_document_bytes && size <= parser_.capacity() && size > 0 && *data == '{' &&
      parser_.parse(data, size, false).get(root) == simdjson::SUCCESS) {
    dispatch_document(root, size, position{origin, line, -1}, sink);
    return;
  }
  reset(line);
  feed(data, size, true, origin, sink);
}

void reader::dispatch_document(element root, std::size_t bytes, const position& where, event_sink& sink) {
  stats_.bytes += bytes;
  counters::add(decoder_counters::get().bytes, bytes);
  dispatch(root, where, sink);
}

void reader::feed_documents(const char* base, std::span<const framed_document> docs, std::string_view origin,
                            event_sink& sink) {
  // What feed_document's fast path takes, and what fits a window.
  auto fits = [&](const framed_document& d) {
    return d.size > 0 && base[d.offset] == '{' && d.size <= options_.max_document_bytes && d.size < window_bytes;
  };
  std::size_t i = 0;
  while (i < docs.size()) {
    const framed_document& first = docs[i];
    if (!fits(first)) {
      feed_document(base + first.offset, first.size, first.line, origin, sink);
      ++i;
      continue;
    }
    // A run in place: whitespace between the documents, within one window.
    std::size_t j = i + 1;
    while (j < docs.size() && fits(docs[j]) && docs[j].offset + docs[j].size - first.offset <= window_bytes &&
           blank(base + docs[j - 1].offset + docs[j - 1].size, base + docs[j].offset)) {
      ++j;
    }
    if (j - i >= 2) {
      feed_run(base, docs.subspan(i, j - i), origin, sink);
      i = j;
      continue;
    }
    // Documents with other bytes between them (a worker's share of a chunk read for several):
    // copied one per line into a buffer of our own, then parsed as a run.
    gathered_.clear();
    gathered_docs_.clear();
    j = i;
    while (j < docs.size() && fits(docs[j]) && gathered_.size() + docs[j].size < window_bytes) {
      gathered_docs_.push_back(framed_document{gathered_.size(), docs[j].size, docs[j].line});
      gathered_.append(base + docs[j].offset, docs[j].size);
      gathered_ += '\n';
      ++j;
    }
    if (j - i >= 2) {
      const std::size_t used = gathered_.size();
      gathered_.append(simdjson::SIMDJSON_PADDING, '\0');
      feed_run(gathered_.data(), gathered_docs_, origin, sink);
      gathered_.resize(used);
      i = j;
    } else {
      feed_document(base + first.offset, first.size, first.line, origin, sink);
      ++i;
    }
  }
}

void reader::feed_run(const char* base, std::span<const framed_document> run, std::string_view origin,
                      event_sink& sink) {
  const std::size_t start = run.front().offset;
  const std::size_t size = run.back().offset + run.back().size - start;
  std::size_t k = 0;
  simdjson::dom::document_stream stream;
  if (parser_.parse_many(base + start, size, size).get(stream) == simdjson::SUCCESS) {
    auto it = stream.begin();
    for (; k < run.size() && it != stream.end(); ++k) {
      // The stream's document must be the framed one: same length (and same start, which the
      // blank gaps between the run's documents already imply once the previous one matched).
      const framed_document& d = run[k];
      element root;
      if ((*it).get(root) != simdjson::SUCCESS || it.current_index() != d.offset - start ||
          it.source().size() != d.size) {
        break;
      }
      dispatch_document(root, d.size, position{origin, d.line, -1}, sink);
      ++it; // parses the next document over this one: the sink is done with it
    }
  }
  // From the first document that did not come out as framed, one at a time (the parser is reused:
  // the stream is not touched again).
  for (; k < run.size(); ++k) {
    feed_document(base + run[k].offset, run[k].size, run[k].line, origin, sink);
  }
}

void reader::feed_decoded(const audit_event& event, std::uint64_t line, std::string_view origin, event_sink& sink) {
  const auto& c = decoder_counters::get();
  ++stats_.events_read;
  ++stats_.decoded;
  counters::add(c.read);
  counters::add(c.decoded);
  sink.on_event(event, position{origin, line, -1});
}

void count_read_as_go() noexcept { counters::add(decoder_counters::get().as_go); }

void count_parsed_batch(std::size_t bytes) noexcept {
  const auto& c = decoder_counters::get();
  counters::add(c.documents);
  counters::add(c.bytes, bytes);
}

std::size_t reader::feed(const char* data, std::size_t size, bool final, std::string_view origin, event_sink& sink) {
  const char* p = data;
  const char* const end = data + size;
  if (at_start_ && size < 3 && !final && std::memcmp(p, "\xEF\xBB\xBF", size) == 0) {
    return 0; // maybe the start of a byte order mark: wait for the rest
  }
  if (at_start_ && size >= 3 && std::memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
    p += 3; // UTF-8 byte order mark
  }
  at_start_ = false;
  const char* consumed = p;

  while (true) {
    line_span ln;
    const bool have = next_line(p, end, final, line_, ln);
    consumed = p;
    if (!have) {
      break;
    }
    const char* eol = ln.eol;
    const char* line_end = ln.end;
    const position where{origin, line_, -1};

    if (static_cast<std::size_t>(line_end - p) > options_.max_document_bytes) {
      failure f;
      f.too_large = true;
      report(where, f, sink);
      p = eol;
      continue;
    }
    // Fast path: the line is a whole document.
    element root;
    auto err = parse(p, static_cast<std::size_t>(line_end - p), root);
    if (err == simdjson::SUCCESS) {
      dispatch(root, where, sink);
      p = eol;
      continue;
    }

    // Maybe a document spread over several lines (pretty-printed Event, EventList, array).
    if (*p == '{' || *p == '[') {
      const char* doc_end = nullptr;
      const scan_result r = scan_value_end(p, end, options_.max_document_bytes, doc_end);
      if (r == scan_result::incomplete && !final) {
        break; // wait for more input
      }
      if (r == scan_result::complete && doc_end > line_end) {
        const std::size_t len = static_cast<std::size_t>(doc_end - p);
        const std::uint64_t lines = count_lines(p, doc_end);
        err = parse(p, len, root);
        if (err == simdjson::SUCCESS) {
          dispatch(root, where, sink);
        } else if (!recover_items(p, doc_end, where, sink)) {
          failure f;
          f.json = err;
          f.last_line = line_ + lines;
          report(where, f, sink);
        }
        line_ += lines;
        p = doc_end;
        continue;
      }
      if (r == scan_result::complete && doc_end <= line_end && recover_items(p, doc_end, where, sink)) {
        p = eol;
        continue;
      }
      if (r == scan_result::broken) {
        // Cut inside a string: the document ends with the line that breaks it (doc_end is past
        // that line break); the lines after it are read on their own.
        const char* brk = doc_end - 1;
        const std::uint64_t lines = count_lines(p, brk);
        failure f;
        f.json = simdjson::UNCLOSED_STRING;
        f.last_line = lines != 0 ? line_ + lines : 0;
        // A list cut inside its items keeps the items before the cut (recover_items reports
        // the cut one); a cut anywhere else is this document's error.
        const std::uint64_t errors_before = stats_.malformed;
        if (!recover_items(p, brk, where, sink) || stats_.malformed == errors_before) {
          report(where, f, sink);
        }
        line_ += lines;
        p = brk;
        continue;
      }
      // The input ends before the document closes. A one-line list keeps the items before the
      // one left open (recover_items reports that one).
      const std::uint64_t errors_before = stats_.malformed;
      if (r == scan_result::incomplete && recover_items(p, line_end, where, sink) && stats_.malformed != errors_before) {
        p = eol;
        continue;
      }
      failure f;
      f.json = err;
      f.too_large = r == scan_result::too_large;
      f.incomplete = r == scan_result::incomplete;
      report(where, f, sink);
      p = eol;
      continue;
    }
    failure f;
    f.json = err;
    report(where, f, sink);
    p = eol;
  }
  const auto used = static_cast<std::size_t>(consumed - data);
  stats_.bytes += used;
  counters::add(decoder_counters::get().bytes, used);
  return used;
}

} // namespace vigil::engine
