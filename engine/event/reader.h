#pragma once
// The audit stream reader: turns bytes in any of the shapes Kubernetes audit data arrives in into
// decoded events, reporting every bad line or item with its position and going on with the next.
//
// Shapes, detected per document (so they may even be mixed):
//  - one Event object, on one line or pretty-printed over many;
//  - JSON lines, one Event per line;
//  - an EventList {"kind":"EventList","items":[...]} as kube-apiserver's webhook posts it, or a
//    file of EventList lines;
//  - a JSON array of Events.
//
// Recovery: a line that is not valid JSON is reported and skipped. A list (array or EventList)
// that does not parse as a whole is split item by item, so one broken item costs one item.
//
// Threading contract: a reader is owned by one thread. Event views passed to the sink are valid
// only during the on_event() call (they point into the reader's parser).

#include <cstddef>
#include <cstdint>
#include <string>
#include <span>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "engine/event/event.h"

namespace vigil::engine {

/// Where an event or an error came from. `line` is 1-based; `item` is the index inside a list, or
/// -1 when the event was a document of its own.
struct position {
  std::string_view origin; ///< file name, "-" for stdin, or a webhook source name
  std::uint64_t line = 0;
  std::int64_t item = -1;
};

/// What went wrong with one line or item.
struct failure {
  simdjson::error_code json = simdjson::SUCCESS; ///< not SUCCESS: the bytes are not valid JSON
  decode_status status;                          ///< otherwise: the JSON is not an audit Event
  bool incomplete = false;                       ///< the input ended inside a document
  bool too_large = false;                        ///< the document exceeds max_document_bytes
  bool after_malformed = false;                  ///< the rest of a list, not split after a malformed item
  std::uint64_t last_line = 0;                   ///< for a multi-line document, its last line

  /// Counter label: "syntax", "truncated", "too_large", or the decode_error name.
  [[nodiscard]] const char* kind() const noexcept;
};

/// Human-readable reason, e.g. "invalid JSON: the JSON document has an improper structure" or
/// "not an audit event: field 'kind' has the wrong type". Allocates: not for the hot path.
std::string describe(const failure& f);

/// Receives what the reader decodes.
class event_sink {
 public:
  virtual ~event_sink() = default;
  virtual void on_event(const audit_event& event, const position& where) = 0;
  virtual void on_error(const position& where, const failure& why) = 0;
};

struct reader_options {
  /// Largest single document (line, pretty-printed object, or whole EventList) accepted.
  std::size_t max_document_bytes = 64u << 20;
  /// Largest JSON nesting depth accepted.
  std::size_t max_depth = 256;
};

/// Counts kept by one reader (the global counter registry gets the same numbers).
struct reader_stats {
  std::uint64_t events_read = 0; ///< decoded + malformed
  std::uint64_t decoded = 0;
  std::uint64_t malformed = 0;
  std::uint64_t bytes = 0;
};

/// Length of the JSON object or array starting at `begin` found by bracket matching (string
/// aware, nothing else validated), 0 if the input ends first or the value exceeds `max_bytes`.
/// A string holding a raw line break (invalid JSON: a line cut inside a string) ends the value
/// just past that line break, so a cut line costs only itself, not the lines after it.
/// Used by framers that split input into documents without parsing it.
std::size_t find_document_end(const char* begin, const char* end, std::size_t max_bytes) noexcept;

/// One line of input as the framers see it: [begin, end) without trailing blanks, and eol (the
/// '\n' or the end of the input).
struct line_span {
  const char* begin;
  const char* end;
  const char* eol;
};

/// Skips blank space from `p` (counting newlines into `line`) and finds the next line. False when
/// the input ends first, or when the line may continue past `end` and `final` is false; `p` is
/// then the first byte not consumed. Shared by the reader and the pipeline's framer.
bool next_line(const char*& p, const char* end, bool final, std::uint64_t& line, line_span& out) noexcept;

/// One item of a JSON list located by split_items: bytes [offset, offset + size) of the input.
/// `complete` is false for an item that is not a bracket-balanced object or array.
struct item_span {
  std::size_t offset;
  std::size_t size;
  bool complete;
};

/// Splits the items of a JSON array, or of the "items" array of an object (an EventList),
/// without parsing them. False when there is no such list. Stops once `out` holds more than
/// `max_items`. Used by the webhook for a body that is not valid JSON as a whole, to read its
/// items one by one.
bool split_items(const char* begin, const char* end, std::size_t max_bytes, std::size_t max_items,
                 std::vector<item_span>& out);

/// False when the strings of the JSON value [begin, end) are not where strings can be (one
/// followed by a bare word): a string left open earlier has turned the quotes inside out, so
/// the value's end found by bracket matching is a guess. True for a value refused for other
/// reasons (depth, a number, `tru`): its bounds are sure.
bool item_bounds_trusted(const char* begin, const char* end) noexcept;

/// Counts a document of `bytes` bytes parsed outside a reader (vigil_decoder_documents_total and
/// _bytes_total), whose events then go through reader::feed_decoded.
void count_parsed_batch(std::size_t bytes) noexcept;

/// Counts a document read as Go reads it (rewrite_as_go_reads) by a parser of its own.
void count_read_as_go() noexcept;

/// Go's encoding/json (CrowdSec's) reads some JSON simdjson refuses: text that is not UTF-8 in a
/// string (each bad byte a U+FFFD), a \u escape of a lone UTF-16 surrogate (a U+FFFD), an
/// integer past 64 bits (the nearest float64). kube-apiserver logs a patch's bytes as the client
/// sent them, so an audit event can hold any of these, and refusing the event would hide it.
/// Writes into `out` what Go reads in `in`, in a form simdjson takes (EF BF BD, \ufffd, the
/// integer with ".0"); false when there is nothing to rewrite. Run only on a document simdjson
/// refused with one of go_readable_error's errors.
bool rewrite_as_go_reads(std::string_view in, std::string& out);

/// The simdjson errors rewrite_as_go_reads may cure.
[[nodiscard]] inline bool go_readable_error(simdjson::error_code e) noexcept {
  return e == simdjson::UTF8_ERROR || e == simdjson::STRING_ERROR || e == simdjson::NUMBER_ERROR;
}

/// What to parse again after simdjson refused `in` with `err`: what Go reads there, written into
/// `buf` with simdjson's padding after it (the view leaves the padding out); empty when `err` is
/// not one Go reads past or there is nothing to rewrite.
std::string_view as_go_reads(std::string_view in, simdjson::error_code err, std::string& buf);

class reader {
 public:
  explicit reader(reader_options options = {});

  /// Decodes every complete document in [data, data + size).
  /// `data` must stay readable for size + SIMDJSON_PADDING bytes (the bytes past `size` are never
  /// interpreted). With `final` false, a document cut by the end of the buffer is left alone and
  /// the return value tells how many bytes were consumed: call again with the rest plus more data.
  /// With `final` true, everything is consumed and a cut document is reported as truncated.
  /// Line numbers continue from the previous call; call reset() between unrelated inputs.
  std::size_t feed(const char* data, std::size_t size, bool final, std::string_view origin, event_sink& sink);

  /// Decodes one document already framed by the caller (a line, a pretty-printed object or a
  /// list) whose first byte is on line `line`, with the same padding rule as feed(). Skips the
  /// line search of feed() on the common path; anything unusual goes through feed().
  void feed_document(const char* data, std::size_t size, std::uint64_t line, std::string_view origin,
                     event_sink& sink);

  /// A document framed by the caller in a buffer: bytes [offset, offset + size), first byte on
  /// line `line`.
  struct framed_document {
    std::size_t offset;
    std::size_t size;
    std::uint64_t line;
  };

  /// feed_document for each of `docs`, in order, all framed in `base` (same padding rule): the
  /// same events, errors and counts. Runs of objects share one simdjson stage-1 pass
  /// (parse_many over up to 256 KiB) instead of one per document: in place when only whitespace
  /// separates them, else copied one per line into a buffer of the reader's (a worker's share of
  /// a chunk). A document the stream does not give exactly as framed (a parse error, another
  /// boundary), and every one after it in its run, is parsed on its own instead.
  void feed_documents(const char* base, std::span<const framed_document> docs, std::string_view origin,
                      event_sink& sink);

  /// Passes on an event decoded elsewhere (the webhook decodes each item of a batch once, on
  /// its loop thread, and hands the events to the workers), counted as read and decoded. Its
  /// parse must outlive the call; the parsing side counts the document (count_parsed_batch).
  void feed_decoded(const audit_event& event, std::uint64_t line, std::string_view origin, event_sink& sink);

  /// Starts a new input whose first byte is on line `first_line`.
  void reset(std::uint64_t first_line = 1) noexcept {
    line_ = first_line;
    at_start_ = true;
  }

  [[nodiscard]] const reader_stats& stats() const noexcept { return stats_; }

 private:
  void dispatch(simdjson::dom::element root, const position& where, event_sink& sink);
  // A document of `bytes` bytes parsed whole: counted, then dispatched.
  void dispatch_document(simdjson::dom::element root, std::size_t bytes, const position& where, event_sink& sink);
  void dispatch_item(simdjson::dom::element item, const position& where, event_sink& sink);
  void accept(const position& where, event_sink& sink); // event_ holds a decoded event
  bool recover_items(const char* begin, const char* end, const position& where, event_sink& sink);
  void report(const position& where, const failure& why, event_sink& sink);
  void feed_run(const char* base, std::span<const framed_document> run, std::string_view origin, event_sink& sink);
  // [p, p + len) parsed into `out`; a document simdjson refuses but Go reads is parsed as Go
  // reads it (rewrite_as_go_reads).
  simdjson::error_code parse(const char* p, std::size_t len, simdjson::dom::element& out);

  reader_options options_;
  simdjson::dom::parser parser_;
  std::string gathered_;                        // feed_documents: documents copied into one run
  std::vector<framed_document> gathered_docs_; // and where they are in it
  std::string as_go_;                           // parse: a document rewritten as Go reads it
  audit_event event_;
  reader_stats stats_;
  std::uint64_t line_ = 1;
  bool at_start_ = true;
};

} // namespace vigil::engine
