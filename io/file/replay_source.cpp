#include "io/file/replay_source.h"

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/util/warn.h"

namespace vigil::io {

namespace {

// A file or a pipe is read 1 MiB at a time (about 1,000 generated events). With `vigil replay`'s
// 2,048 events in flight, about three chunks' buffers cycle through the pool, so the kernel's
// copy of the file lands in memory still in the caches; 4 MiB chunks (with 8,192 in flight) cost
// the reading thread a fifth more CPU (bench/RESULTS.md, "Session 16").
constexpr std::size_t chunk_bytes = 1u << 20;
// How long a pipe's first bytes may wait for more to fill their chunk. Submitting each read
// (64 KiB at most) cost `cat file | vigil replay -` half as much CPU again as the file itself.
constexpr std::chrono::milliseconds stream_batch_wait{10};
constexpr std::size_t max_document = 64u << 20;
// How long whole lines of a stream may wait behind a document that has not closed: one still
// open after this, with lines after it, is a line cut short, not a document being written.
constexpr std::chrono::milliseconds pending_give_up{1000};

// Reads from `read_some` until EOF, framing and submitting chunk by chunk. A chunk is submitted
// when it is full, or when `more_ready(first)` (after each read; `first` for a chunk's first)
// says no more is coming soon: events written to a pipe are processed while its writer is still
// writing. A document cut by the end of a chunk starts the next one, which is at least twice its
// size, so a large document is copied a bounded number of times, not once per read (a pause
// counts only once a line has ended, see below).
//
// In a stream, a document that has stayed open for pending_give_up with whole lines after it (a
// line cut short, then more events) is given up on: its first line is reported and the lines
// after it go on, instead of every later event waiting for a closing bracket that will never
// come. `stalled(age)` says whether a document pending for `age` is to be given up on now,
// waiting (for a stream) at most until it is pending_give_up old for more input to come first.
template <class ReadSome, class MoreReady, class Stalled>
bool pump(const replay_source& src, pipeline::pipeline& pl, ReadSome&& read_some,
          MoreReady&& more_ready, Stalled&& stalled) {
  const std::string origin = src.origin.empty() ? src.path : src.origin;
  std::string carry;
  std::uint64_t line = 1;
  bool eof = false;
  bool ok = true;
  pipeline::chunk_pool pool;
  auto stamp = [&](pipeline::input_chunk& chunk) {
    chunk.origin = origin;
    chunk.source_type = src.source_type;
    chunk.source_path = origin;
    chunk.cluster = src.cluster;
  };
  std::uint64_t pending_line = 0; // first line of the document pending since pending_since
  auto pending_since = std::chrono::steady_clock::now();
  while (!eof) {
    const std::size_t nl = carry.rfind('\n');
    if (nl == std::string::npos) {
      pending_line = 0;
    } else if (line != pending_line) {
      pending_line = line;
      pending_since = std::chrono::steady_clock::now();
    }
    if (nl != std::string::npos && stalled(std::chrono::steady_clock::now() - pending_since)) {
      // Only the stuck document's first line is taken as cut (framed as if the input ended
      // there); what follows is framed as usual, so a document still being written after it
      // keeps its own time to finish.
      for (const bool cut : {true, false}) {
        const std::size_t n = cut ? carry.find('\n') + 1 : carry.size();
        if (n == 0) {
          continue;
        }
        auto chunk = pool.get(n);
        stamp(*chunk);
        std::memcpy(chunk->data.data(), carry.data(), n);
        chunk->size = n;
        std::size_t documents = 0;
        carry.erase(0, pl.submit_framed(chunk, cut, line, max_document, documents));
      }
      pending_line = 0;
    }
    const std::size_t capacity = carry.size() + std::max(chunk_bytes, carry.size());
    auto chunk = pool.get(capacity);
    stamp(*chunk);
    std::memcpy(chunk->data.data(), carry.data(), carry.size());
    std::size_t size = carry.size();
    bool first = true;
    while (size < capacity) {
      const long n = read_some(chunk->data.data() + size, capacity - size);
      if (n < 0) {
        ok = false;
        eof = true;
        break;
      }
      if (n == 0) {
        eof = true;
        break;
      }
      const std::size_t before = size;
      size += static_cast<std::size_t>(n);
      // A pause submits what came, unless a document larger than a stream chunk is pending and
      // no line has ended since: then the chunk fills first (twice the pending size), or each
      // pause in a slowly written large document would copy all of it again.
      const bool may_complete = carry.size() < chunk_bytes ||
                                std::memchr(chunk->data.data() + before, '\n', size - before) != nullptr;
      if (size < capacity && may_complete && !more_ready(first)) {
        break;
      }
      first = false;
    }
    chunk->size = size;
    std::size_t documents = 0;
    const std::size_t used = pl.submit_framed(chunk, eof, line, max_document, documents);
    carry.assign(chunk->data.data() + used, size - used);
    if (carry.size() > max_document) {
      std::fprintf(stderr, "%s:%llu: document larger than %zu bytes: the rest of the input is skipped\n",
                   origin.c_str(), static_cast<unsigned long long>(line), max_document);
      break;
    }
  }
  return ok;
}

} // namespace

bool replay_file(const replay_source& src, pipeline::pipeline& pl) {
  const bool is_stdin = src.path == "-";
  const int fd = is_stdin ? STDIN_FILENO : ::open(src.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    util::warn(src.path + ": " + std::strerror(errno));
    return false;
  }
  // A pipe or terminal may be a live stream: waiting for a whole chunk would hold its events
  // back, so its chunks are submitted once it has paused for stream_batch_wait.
  struct stat st{};
  const bool stream = ::fstat(fd, &st) == 0 && !S_ISREG(st.st_mode);
  const bool ok = pump(
      src, pl,
      [&](char* buf, std::size_t n) -> long {
        while (true) {
          const ssize_t r = ::read(fd, buf, n);
          if (r < 0 && errno == EINTR) {
            continue;
          }
          if (r < 0) {
            util::warn(src.path + ": " + std::strerror(errno));
          }
          return static_cast<long>(r);
        }
      },
      [&, deadline = std::chrono::steady_clock::time_point{}](bool first) mutable {
        if (!stream) {
          return true;
        }
        const auto now = std::chrono::steady_clock::now();
        if (first) {
          deadline = now + stream_batch_wait;
        }
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
        pollfd p{fd, POLLIN, 0};
        return left > 0 && ::poll(&p, 1, static_cast<int>(left)) > 0;
      },
      [&](std::chrono::steady_clock::duration age) {
        if (!stream) {
          return false; // a file's end comes soon enough: final framing then settles it
        }
        if (age >= pending_give_up) {
          return true;
        }
        pollfd p{fd, POLLIN, 0};
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(pending_give_up - age).count();
        return ::poll(&p, 1, static_cast<int>(left)) == 0; // nothing more came meanwhile
      });
  if (!is_stdin) {
    ::close(fd);
  }
  return ok;
}

void replay_buffer(std::string_view data, const replay_source& src, pipeline::pipeline& pl) {
  std::size_t pos = 0;
  pump(
      src, pl,
      [&](char* buf, std::size_t n) -> long {
        const std::size_t take = std::min(n, data.size() - pos);
        std::memcpy(buf, data.data() + pos, take);
        pos += take;
        return static_cast<long>(take);
      },
      [](bool) { return true; }, [](std::chrono::steady_clock::duration) { return false; });
}

} // namespace vigil::io
