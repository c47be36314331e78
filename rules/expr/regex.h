#pragma once
// Internal: a constant `matches` pattern compiled by hyperscan at load time (§10.1).
// Scans use one scratch per thread, allocated lazily and grown only when a program with a bigger
// database was compiled since (a process-wide prototype scratch is kept for that purpose).

#include <string>
#include <string_view>
#include <variant>

struct hs_database;

namespace vigil::expr::detail {

// The hyperscan expression and flags regex_db uses for an RE2 pattern (RE2's `$` rewritten), for
// hosts that group many patterns of many rules in one database with the same semantics.
// Valid only for patterns regex_db::compile put on hyperscan (regex_db::on_hyperscan).
std::string hyperscan_expression(std::string_view re2_pattern);
unsigned hyperscan_flags() noexcept;

// `text matches pattern` for a pattern computed at evaluation (§10.1): 1 = match, 0 = no match,
// -1 = not a valid RE2 pattern. Compiled with RE2 (Go's regexp is RE2's syntax and semantics),
// each distinct pattern once per thread: the last 64 stay compiled, so a pattern read from a
// few values costs no compilation in steady state.
int dynamic_search(std::string_view text, std::string_view pattern) noexcept;

// `text` as Go's regexp reads it: each byte that is not UTF-8 a U+FFFD (rewritten into `buf`
// only when there is one).
std::string_view as_go_reads(std::string_view text, std::string& buf);

class regex_db {
 public:
  // Compile an RE2-syntax pattern; on failure the error text: RE2's verdict in Go's words, or
  // our own clearer one for backreferences.
  static std::variant<regex_db, std::string> compile(std::string_view pattern);

  regex_db(regex_db&& o) noexcept : db_(o.db_), pattern_(std::move(o.pattern_)) { o.db_ = nullptr; }
  regex_db& operator=(regex_db&&) = delete;
  regex_db(const regex_db&) = delete;
  ~regex_db();

  // 1 = match, 0 = no match, -1 = scan failure (scratch allocation). Unanchored search.
  int search(std::string_view text) const noexcept;
  const std::string& pattern() const noexcept { return pattern_; }
  // Whether hyperscan runs the pattern (hyperscan_expression() is then exact); if not, RE2 does,
  // compiled once per thread (the patterns where the two dialects part: see hyperscan_exact).
  bool on_hyperscan() const noexcept { return db_ != nullptr; }

 private:
  regex_db(hs_database* db, std::string pattern) noexcept : db_(db), pattern_(std::move(pattern)) {}
  hs_database* db_ = nullptr;
  std::string pattern_;
};

}  // namespace vigil::expr::detail
