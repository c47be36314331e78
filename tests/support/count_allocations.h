#pragma once
// Replaces the global operator new and delete with ones that count every allocation of the
// process in test::allocations (and its bytes in test::allocated_bytes), for the tests of "no
// heap allocation once warm" and of memory use. Include it in exactly one source file of a test
// binary (it defines the replacements).

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace vigil::test {
inline std::atomic<std::uint64_t> allocations{0};
inline std::atomic<std::uint64_t> allocated_bytes{0};
} // namespace vigil::test

void* operator new(std::size_t n) {
  vigil::test::allocations.fetch_add(1, std::memory_order_relaxed);
  vigil::test::allocated_bytes.fetch_add(n, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) {
    return p;
  }
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  vigil::test::allocations.fetch_add(1, std::memory_order_relaxed);
  vigil::test::allocated_bytes.fetch_add(n, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) {
    return p;
  }
  throw std::bad_alloc();
}
// The nothrow forms too (simdjson uses them): left to the sanitizer's runtime, they would be
// freed by the delete below and reported as a mismatch.
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  vigil::test::allocations.fetch_add(1, std::memory_order_relaxed);
  vigil::test::allocated_bytes.fetch_add(n, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  vigil::test::allocations.fetch_add(1, std::memory_order_relaxed);
  vigil::test::allocated_bytes.fetch_add(n, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
// Not inlined: GCC 12 would otherwise see free() applied to what its operator new returned and
// warn of a mismatch (-Wmismatched-new-delete), which is exactly the pairing intended here.
namespace vigil::test::detail {
[[gnu::noinline]] inline void release(void* p) noexcept { std::free(p); }
} // namespace vigil::test::detail
void operator delete(void* p) noexcept { vigil::test::detail::release(p); }
void operator delete[](void* p) noexcept { vigil::test::detail::release(p); }
void operator delete(void* p, std::size_t) noexcept { vigil::test::detail::release(p); }
void operator delete[](void* p, std::size_t) noexcept { vigil::test::detail::release(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { vigil::test::detail::release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { vigil::test::detail::release(p); }
