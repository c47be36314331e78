#include "io/file/file_source.h"

#include <cerrno>
#include <cstring>
#include <memory>

#include <fcntl.h>
#include <unistd.h>

namespace vigil::io {

namespace {

// A growable byte buffer that always keeps SIMDJSON_PADDING readable bytes past its end.
class padded_buffer {
 public:
  explicit padded_buffer(std::size_t capacity) { grow(capacity); }
  char* data() noexcept { return data_.get(); }
  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  void resize(std::size_t n) noexcept { size_ = n; }
  void grow(std::size_t capacity) {
    std::unique_ptr<char[]> next(new char[capacity + simdjson::SIMDJSON_PADDING]);
    if (size_ > 0) {
      std::memcpy(next.get(), data_.get(), size_);
    }
    std::memset(next.get() + size_, 0, capacity + simdjson::SIMDJSON_PADDING - size_);
    data_ = std::move(next);
    capacity_ = capacity;
  }
  void drop_front(std::size_t n) noexcept {
    std::memmove(data_.get(), data_.get() + n, size_ - n);
    size_ -= n;
  }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

} // namespace

file_read_result read_file(const std::string& path, engine::reader& reader, engine::event_sink& sink,
                           const file_read_options& options) {
  file_read_result result;
  const bool is_stdin = path == "-";
  const int fd = is_stdin ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    result.ok = false;
    result.error = path + ": " + std::strerror(errno);
    return result;
  }
  reader.reset();
  padded_buffer buf(options.chunk_bytes * 2);
  bool eof = false;
  while (!eof) {
    if (buf.capacity() - buf.size() < options.chunk_bytes) {
      buf.grow(buf.capacity() * 2);
    }
    const ssize_t n = ::read(fd, buf.data() + buf.size(), options.chunk_bytes);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      result.ok = false;
      result.error = path + ": " + std::strerror(errno);
      break;
    }
    eof = n == 0;
    buf.resize(buf.size() + static_cast<std::size_t>(n));
    result.bytes += static_cast<std::size_t>(n);
    const std::size_t used = reader.feed(buf.data(), buf.size(), eof, is_stdin ? "-" : path, sink);
    buf.drop_front(used);
    // Clear stale bytes left behind by the move so the padding stays harmless.
    std::memset(buf.data() + buf.size(), 0, simdjson::SIMDJSON_PADDING);
  }
  if (!is_stdin) {
    ::close(fd);
  }
  return result;
}

} // namespace vigil::io
