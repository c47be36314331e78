// What it costs to bring a file into memory, three ways: the CPU time (user + system) of read()
// into a 1 MiB buffer (what `vigil replay` does), of mapping it 16 MiB at a time and touching
// every page, and of the same mapping with MAP_POPULATE. The file should be in the page cache
// (read it once first): the figure is then the copy, or the page-table work, not the disk.
// Usage: build/bench/read_cost FILE [ROUNDS]
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

namespace {

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

constexpr std::size_t page = 4096;

// Sums one byte per page, so every page is brought in and the work cannot be optimised away.
std::uint64_t by_read(int fd) {
  std::vector<char> buf(1u << 20);
  std::uint64_t sum = 0;
  ::lseek(fd, 0, SEEK_SET);
  ssize_t n;
  while ((n = ::read(fd, buf.data(), buf.size())) > 0) {
    for (ssize_t i = 0; i < n; i += page) {
      sum += static_cast<unsigned char>(buf[static_cast<std::size_t>(i)]);
    }
  }
  return sum;
}

std::uint64_t by_map(int fd, std::size_t size, bool populate) {
  constexpr std::size_t window = 16u << 20;
  std::uint64_t sum = 0;
  for (std::size_t off = 0; off < size; off += window) {
    const std::size_t len = std::min(window, size - off);
    void* m = ::mmap(nullptr, len, PROT_READ, MAP_PRIVATE | (populate ? MAP_POPULATE : 0), fd, static_cast<off_t>(off));
    if (m == MAP_FAILED) {
      std::perror("mmap");
      std::exit(1);
    }
    const auto* p = static_cast<const unsigned char*>(m);
    for (std::size_t i = 0; i < len; i += page) {
      sum += p[i];
    }
    ::munmap(m, len);
  }
  return sum;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE [ROUNDS]\n", argv[0]);
    return 2;
  }
  const int fd = ::open(argv[1], O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::perror(argv[1]);
    return 2;
  }
  const auto size = static_cast<std::size_t>(::lseek(fd, 0, SEEK_END));
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  by_read(fd); // into the page cache
  const std::uint64_t expect = by_read(fd);
  std::printf("%-28s %10s  (%zu MB, CPU seconds per pass)\n", "method", "CPU s", size / 1000000);
  for (int r = 0; r < rounds; ++r) {
    struct way {
      const char* name;
      int kind;
    };
    for (const way w : {way{"read() 1 MiB", 0}, way{"mmap 16 MiB, touch", 1}, way{"mmap 16 MiB, MAP_POPULATE", 2}}) {
      const double c0 = cpu_seconds();
      const std::uint64_t sum = w.kind == 0 ? by_read(fd) : by_map(fd, size, w.kind == 2);
      const double c = cpu_seconds() - c0;
      if (sum != expect) {
        std::fprintf(stderr, "%s read different bytes\n", w.name);
        return 1;
      }
      std::printf("%-28s %10.3f\n", w.name, c);
    }
  }
  ::close(fd);
  return 0;
}
