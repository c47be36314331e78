#include "io/file/replay_source.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace vigil::io {

namespace {

constexpr std::size_t chunk_bytes = 4u << 20;
constexpr std::size_t max_document = 64u << 20;

// Reads from `read_some` until EOF, framing and submitting chunk by chunk.
template <class ReadSome>
bool pump(const replay_source& src, pipeline::pipeline& pl, ReadSome&& read_some) {
  const std::string origin = src.origin.empty() ? src.path : src.origin;
  std::string carry;
  std::uint64_t line = 1;
  bool eof = false;
  bool ok = true;
  pipeline::chunk_pool pool;
  while (!eof) {
    auto chunk = pool.get(carry.size() + chunk_bytes);
    chunk->origin = origin;
    chunk->source_type = src.source_type;
    chunk->source_path = origin;
    chunk->cluster = src.cluster;
    std::memcpy(chunk->data.data(), carry.data(), carry.size());
    std::size_t size = carry.size();
    while (size < carry.size() + chunk_bytes) {
      const long n = read_some(chunk->data.data() + size, carry.size() + chunk_bytes - size);
      if (n < 0) {
        ok = false;
        eof = true;
        break;
      }
      if (n == 0) {
        eof = true;
        break;
      }
      size += static_cast<std::size_t>(n);
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
    std::fprintf(stderr, "vigil: %s: %s\n", src.path.c_str(), std::strerror(errno));
    return false;
  }
  const bool ok = pump(src, pl, [&](char* buf, std::size_t n) -> long {
    while (true) {
      const ssize_t r = ::read(fd, buf, n);
      if (r < 0 && errno == EINTR) {
        continue;
      }
      if (r < 0) {
        std::fprintf(stderr, "vigil: %s: %s\n", src.path.c_str(), std::strerror(errno));
      }
      return static_cast<long>(r);
    }
  });
  if (!is_stdin) {
    ::close(fd);
  }
  return ok;
}

void replay_buffer(std::string_view data, const replay_source& src, pipeline::pipeline& pl) {
  std::size_t pos = 0;
  pump(src, pl, [&](char* buf, std::size_t n) -> long {
    const std::size_t take = std::min(n, data.size() - pos);
    std::memcpy(buf, data.data() + pos, take);
    pos += take;
    return static_cast<long>(take);
  });
}

} // namespace vigil::io
