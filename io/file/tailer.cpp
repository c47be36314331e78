#include "io/file/tailer.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string_view>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/counters/counters.h"
#include "engine/util/warn.h"

namespace vigil::io {

namespace {

constexpr std::size_t read_bytes = 4u << 20;
constexpr std::size_t max_document = 64u << 20;

// Where a file was left: its inode, the offset reached, and a hash of its first bytes (up to
// head_bytes), which tells a file rewritten in place (truncated and written again past the
// offset) from the same file grown.
struct saved_position {
  std::uint64_t inode = 0;
  std::uint64_t offset = 0;
  std::uint64_t head_size = 0;
  std::uint64_t head_hash = 0;
};

constexpr std::size_t head_bytes = 256;

saved_position load_position(const std::string& file) {
  saved_position p;
  std::ifstream in(file);
  if (in) {
    in >> p.inode >> p.offset;
    if (!(in >> p.head_size >> p.head_hash)) { // a position written before the head was kept
      p.head_size = p.head_hash = 0;
    }
  }
  return p;
}

// Written to a temporary file and renamed, so a crash never leaves a half-written position.
// False (errno set) when it could not be written.
bool save_position(const std::string& file, const saved_position& p) {
  if (file.empty()) {
    return true;
  }
  const std::string tmp = file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << p.inode << ' ' << p.offset << ' ' << p.head_size << ' ' << p.head_hash << '\n';
    out.flush();
    if (!out) {
      return false;
    }
  }
  return std::rename(tmp.c_str(), file.c_str()) == 0;
}

// The first bytes of the open file, up to head_bytes.
std::string read_head(int fd) {
  std::string head(head_bytes, '\0');
  const ssize_t n = ::pread(fd, head.data(), head.size(), 0);
  head.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return head;
}

std::uint64_t hash_of(std::string_view bytes) { return std::hash<std::string_view>{}(bytes); }

// Whether a file whose first bytes are `head` starts as the one `saved` describes (a position
// saved before the head was kept says nothing against it).
bool starts_as_saved(std::string_view head, const saved_position& saved) {
  return saved.head_size == 0 ||
         (head.size() >= saved.head_size && hash_of(head.substr(0, saved.head_size)) == saved.head_hash);
}

int open_by_inode(const std::string& dir, std::uint64_t inode);

// The file `saved` describes, rotated away from `path` while vigil was down, opened (-1 if it is
// gone): found by its inode beside the file `path` names now (a symbolic link's target first),
// holding at least the saved offset, and starting as it did (not another file that reuses the
// inode since). Its first bytes in `head`.
int open_rotated(const std::string& path, const saved_position& saved, std::string& head) {
  std::error_code ec;
  const std::filesystem::path target = std::filesystem::canonical(path, ec);
  int fd = ec ? -1 : open_by_inode(target.parent_path().string(), saved.inode);
  if (fd < 0) {
    const std::string dir = std::filesystem::path(path).parent_path().string();
    fd = open_by_inode(dir.empty() ? "." : dir, saved.inode);
  }
  struct stat st {};
  if (fd >= 0 && ::fstat(fd, &st) == 0 && saved.offset <= static_cast<std::uint64_t>(st.st_size)) {
    head = read_head(fd);
    if (starts_as_saved(head, saved)) {
      return fd;
    }
  }
  if (fd >= 0) {
    ::close(fd);
  }
  return -1;
}

// The file with inode `inode` in `dir` (where a rotation renamed it), opened; -1 if none.
int open_by_inode(const std::string& dir, std::uint64_t inode) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return -1;
  }
  int fd = -1;
  while (const dirent* e = ::readdir(d)) {
    if (static_cast<std::uint64_t>(e->d_ino) != inode) {
      continue;
    }
    const int f = ::openat(::dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (f >= 0 && ::fstat(f, &st) == 0 && S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_ino) == inode) {
      fd = f;
      break;
    }
    if (f >= 0) {
      ::close(f);
    }
  }
  ::closedir(d);
  return fd;
}

} // namespace

tailer::tailer(pipeline::pipeline& pl, tail_options opts) : pl_(pl), opts_(std::move(opts)) {
  struct stat st {};
  existed_at_start_ = ::stat(opts_.path.c_str(), &st) == 0;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "vigil-tail"); // per-thread CPU in top, perf, /proc
    run();
  });
}

tailer::~tailer() { stop(); }

void tailer::stop() {
  stop_ = true;
  if (thread_.joinable()) {
    thread_.join();
  }
}

void tailer::run() {
  auto& reg = counters::registry::global();
  const counters::id rotations_id =
      reg.define("vigil_file_rotations_total", "Log rotations followed by file tailers", {{"path", opts_.path}});
  const counters::id position_errors =
      reg.define("vigil_file_position_errors_total", "Positions a file tailer could not save", {{"path", opts_.path}});
  pipeline::chunk_pool pool;

  int fd = -1;
  std::uint64_t inode = 0;
  std::uint64_t offset = 0;   // of the first byte not yet consumed (start of `carry`)
  std::uint64_t line = 1;
  std::string carry;
  std::string head; // the file's first bytes as last read (up to head_bytes)
  bool first_open = true;
  bool position_warned = false;
  int last_open_error = 0; // errno of the last failed open, said once

  auto save = [&] {
    if (!save_position(opts_.position_file, saved_position{inode, offset, head.size(), hash_of(head)})) {
      counters::add(position_errors);
      if (!position_warned) {
        position_warned = true;
        util::warn("cannot save the position in " + opts_.path + " to " + opts_.position_file + ": " +
                   std::strerror(errno) + " (a restart would not know where it stopped)");
      }
    }
  };

  auto open_file = [&](bool resume) {
    fd = ::open(opts_.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      // Missing: waited for (said at start). Another reason (permissions) is said once per
      // reason, or the file would go unread without a word.
      if (errno != ENOENT && errno != last_open_error) {
        util::warn("cannot open " + opts_.path + ": " + std::strerror(errno) + " (trying again)");
      }
      last_open_error = errno;
      return false;
    }
    last_open_error = 0;
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd); // a directory or a device under the name: waited out like a missing file
      fd = -1;
      return false;
    }
    inode = static_cast<std::uint64_t>(st.st_ino);
    offset = 0;
    line = 1;
    carry.clear();
    head = read_head(fd);
    if (resume) {
      const saved_position saved = opts_.position_file.empty() ? saved_position{} : load_position(opts_.position_file);
      const bool same_head = starts_as_saved(head, saved);
      if (saved.inode == 0) {
        // Never followed: at its end (`start: end`, as tail -f and CrowdSec) if it was there
        // when vigil started, else from its beginning.
        offset = opts_.from_beginning || !existed_at_start_ ? 0 : static_cast<std::uint64_t>(st.st_size);
      } else if (saved.inode == inode && saved.offset <= static_cast<std::uint64_t>(st.st_size) && same_head) {
        offset = saved.offset; // the same file as before the restart: go on where we stopped
      } else if (saved.inode != inode) {
        // Rotated while vigil was down. The rest of the old file comes first if the rotation
        // left it beside (renamed): the rotation check then moves on to this file, from its
        // beginning. Without it, this file is read from its beginning.
        std::string old_head;
        if (const int old = open_rotated(opts_.path, saved, old_head); old >= 0) {
          ::close(fd);
          fd = old;
          inode = saved.inode;
          head = std::move(old_head);
          offset = saved.offset;
        } else {
          util::warn(opts_.path + ": the file vigil was reading when it stopped is no longer beside it: what was written "
                     "to it after the saved position, and to any file rotated in between, was not read; reading the "
                     "current file from its beginning");
        }
      }
      // Otherwise the same inode rewritten in place while vigil was down (shorter, or other
      // first bytes): from its beginning.
      // Line numbers of what follows: count the lines before the resume point.
      std::vector<char> buf(1u << 20);
      std::uint64_t left = offset;
      while (left > 0) {
        const ssize_t n = ::read(fd, buf.data(), static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size())));
        if (n <= 0) {
          break;
        }
        line += static_cast<std::uint64_t>(std::count(buf.data(), buf.data() + n, '\n'));
        left -= static_cast<std::uint64_t>(n);
      }
    }
    ::lseek(fd, static_cast<off_t>(offset), SEEK_SET);
    return true;
  };

  // A chunk for `capacity` bytes of this file.
  auto new_chunk = [&](std::size_t capacity) {
    auto chunk = pool.get(capacity);
    chunk->origin = opts_.path;
    chunk->source_type = "file";
    chunk->source_path = opts_.path;
    chunk->cluster = opts_.cluster;
    return chunk;
  };

  // Truncated and written again past the offset (copytruncate under a busy writer), which the
  // size alone does not show: the first bytes changed.
  auto rewritten = [&] {
    std::string now = read_head(fd);
    if (now.size() < head.size() || now.compare(0, head.size(), head) != 0) {
      return true;
    }
    head = std::move(now);
    return false;
  };
  bool rewrite_seen = false; // pump found the file rewritten: start over at its beginning

  // Reads what is there, submits every complete line; returns the bytes read (0 when the file
  // turned out to be rewritten: rewrite_seen).
  auto pump = [&]() -> std::size_t {
    auto chunk = new_chunk(carry.size() + read_bytes);
    std::memcpy(chunk->data.data(), carry.data(), carry.size());
    const ssize_t n = ::read(fd, chunk->data.data() + carry.size(), read_bytes);
    if (n <= 0) {
      return 0;
    }
    // Looked at after the read: bytes read once the file was rewritten may be the middle of the
    // new contents, and are dropped (read again from the beginning), never taken for the rest
    // of the old ones. Lines written to the old contents just before the truncation may be lost
    // (copytruncate's own window); none is read twice.
    if (rewritten()) {
      rewrite_seen = true;
      return 0;
    }
    const std::size_t size = carry.size() + static_cast<std::size_t>(n);
    chunk->size = size;
    std::size_t documents = 0;
    const std::size_t used = pl_.submit_framed(chunk, false, line, max_document, documents);
    documents_ += documents;
    offset += used;
    carry.assign(chunk->data.data() + used, size - used);
    if (carry.size() > max_document) {
      offset += carry.size(); // a line longer than any document: skipped (the worker never sees it)
      carry.clear();
    }
    save();
    return static_cast<std::size_t>(n);
  };

  std::uint64_t pending_at = UINT64_MAX; // offset of the document pending since pending_since
  auto pending_since = std::chrono::steady_clock::now();
  // Frames the first `n` bytes of `carry`, `final`: as if the input ended there (a document that
  // never closed is then reported as the cut line it is).
  auto frame_carry = [&](std::size_t n, bool final) {
    pending_at = UINT64_MAX;
    if (n == 0) {
      return;
    }
    auto chunk = new_chunk(n);
    std::memcpy(chunk->data.data(), carry.data(), n);
    chunk->size = n;
    std::size_t documents = 0;
    const std::size_t used = pl_.submit_framed(chunk, final, line, max_document, documents);
    documents_ += documents;
    offset += used;
    carry.erase(0, used);
    save();
  };
  // The file is finished (rotated, truncated): all it holds, its last line even without a line
  // break.
  auto flush_carry = [&] { frame_carry(carry.size(), true); };
  // How long complete lines may wait behind a document that has not closed. A multi-line
  // document is written in one go; one still open after this, with whole lines after it, is a
  // line cut short (a crash, a full disk), and waiting for its end would hold every later event
  // back until max_document bytes had come. Timed from when that document was first seen
  // pending, whether or not more lines keep coming.
  constexpr auto pending_give_up = std::chrono::seconds(1);
  auto give_up_on_pending = [&] {
    if (carry.find('\n') == std::string::npos) {
      pending_at = UINT64_MAX;
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (offset != pending_at) {
      pending_at = offset;
      pending_since = now;
    } else if (now - pending_since >= pending_give_up) {
      // Only the stuck document's first line is taken as cut; what follows is framed as usual,
      // so a document still being written after it keeps its own time to finish.
      frame_carry(carry.find('\n') + 1, true);
      frame_carry(carry.size(), false);
    }
  };

  // Truncated in place (copytruncate): what was read of the old contents is finished, then
  // start over at the beginning.
  auto start_over = [&] {
    flush_carry();
    ::lseek(fd, 0, SEEK_SET);
    offset = 0;
    line = 1;
    carry.clear();
    head = read_head(fd);
    ++rotations_;
    counters::add(rotations_id);
  };
  while (!stop_) {
    if (fd < 0) {
      if (!open_file(first_open)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(opts_.poll_ms));
        continue;
      }
      first_open = false;
    }
    const bool got = pump() > 0;
    if (rewrite_seen) {
      rewrite_seen = false;
      start_over();
      continue;
    }
    give_up_on_pending();
    if (got) {
      continue;
    }
    // At the end of what was written. Rotated (a new file under the name) or truncated?
    struct stat by_name {};
    struct stat by_fd {};
    const bool named = ::stat(opts_.path.c_str(), &by_name) == 0;
    fstat(fd, &by_fd);
    if (named && static_cast<std::uint64_t>(by_name.st_ino) != inode) {
      while (pump() > 0) { // lines written to the old file before the writer moved on
      }
      rewrite_seen = false; // the old file is finished either way
      flush_carry(); // the old file is finished: its last line even without a line break
      ::close(fd);
      fd = -1;
      ++rotations_;
      counters::add(rotations_id);
      if (!open_file(false)) {
        continue;
      }
      save();
      continue;
    }
    if (static_cast<std::uint64_t>(by_fd.st_size) < offset + carry.size()) {
      start_over(); // truncated in place (copytruncate)
      continue;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(opts_.poll_ms));
  }
  if (fd >= 0) {
    ::close(fd);
  }
}

} // namespace vigil::io
