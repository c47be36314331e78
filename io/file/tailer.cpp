#include "io/file/tailer.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/counters/counters.h"

namespace vigil::io {

namespace {

constexpr std::size_t read_bytes = 4u << 20;
constexpr std::size_t max_document = 64u << 20;

struct saved_position {
  std::uint64_t inode = 0;
  std::uint64_t offset = 0;
};

saved_position load_position(const std::string& file) {
  saved_position p;
  std::ifstream in(file);
  if (in) {
    in >> p.inode >> p.offset;
  }
  return p;
}

// Written to a temporary file and renamed, so a crash never leaves a half-written position.
void save_position(const std::string& file, std::uint64_t inode, std::uint64_t offset) {
  if (file.empty()) {
    return;
  }
  const std::string tmp = file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << inode << ' ' << offset << '\n';
  }
  std::rename(tmp.c_str(), file.c_str());
}

} // namespace

tailer::tailer(pipeline::pipeline& pl, tail_options opts) : pl_(pl), opts_(std::move(opts)) {
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
  pipeline::chunk_pool pool;

  int fd = -1;
  std::uint64_t inode = 0;
  std::uint64_t offset = 0;   // of the first byte not yet consumed (start of `carry`)
  std::uint64_t line = 1;
  std::string carry;
  bool first_open = true;

  auto open_file = [&](bool resume) {
    fd = ::open(opts_.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return false;
    }
    struct stat st {};
    fstat(fd, &st);
    inode = static_cast<std::uint64_t>(st.st_ino);
    offset = 0;
    line = 1;
    carry.clear();
    if (resume) {
      const saved_position saved = opts_.position_file.empty() ? saved_position{} : load_position(opts_.position_file);
      if (saved.inode == inode && saved.offset <= static_cast<std::uint64_t>(st.st_size)) {
        offset = saved.offset; // the same file as before the restart: go on where we stopped
      } else if (!opts_.from_beginning) {
        offset = static_cast<std::uint64_t>(st.st_size);
      }
      // Line numbers of what follows: count the lines before the resume point.
      line = 1;
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

  // Reads what is there, submits every complete line; returns the bytes read.
  auto pump = [&]() -> std::size_t {
    auto chunk = new_chunk(carry.size() + read_bytes);
    std::memcpy(chunk->data.data(), carry.data(), carry.size());
    const ssize_t n = ::read(fd, chunk->data.data() + carry.size(), read_bytes);
    if (n <= 0) {
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
    save_position(opts_.position_file, inode, offset);
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
    save_position(opts_.position_file, inode, offset);
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

  while (!stop_) {
    if (fd < 0) {
      if (!open_file(first_open)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(opts_.poll_ms));
        continue;
      }
      first_open = false;
    }
    const bool got = pump() > 0;
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
      flush_carry(); // the old file is finished: its last line even without a line break
      ::close(fd);
      fd = -1;
      ++rotations_;
      counters::add(rotations_id);
      if (!open_file(false)) {
        continue;
      }
      save_position(opts_.position_file, inode, 0);
      continue;
    }
    if (static_cast<std::uint64_t>(by_fd.st_size) < offset + carry.size()) {
      // Truncated in place (copytruncate): what was read of the old contents is finished, then
      // start over at the beginning.
      flush_carry();
      ::lseek(fd, 0, SEEK_SET);
      offset = 0;
      line = 1;
      carry.clear();
      ++rotations_;
      counters::add(rotations_id);
      continue;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(opts_.poll_ms));
  }
  if (fd >= 0) {
    ::close(fd);
  }
}

} // namespace vigil::io
