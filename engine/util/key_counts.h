#pragma once
// Event counts by a short string key (a verb, a resource name) for the replay summary, kept by
// each worker on its hot path.
//
// One flat array with linear probing and the keys' hashes stored beside them: a lookup is a hash,
// usually one slot and one compare, where std::unordered_map chased a node and divided by its
// bucket count. The key counted last is remembered, since consecutive audit events often share
// their verb and resource. At most `max_keys` distinct keys are held: the keys come from the
// input, and a hostile or broken file with millions of resource names must not grow the table
// (or the summary) without bound; the events of keys beyond the bound are counted in others().
// Allocates only when a new key arrives or the table grows.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/util/word_hash.h"

namespace vigil::engine {

class key_counts {
 public:
  explicit key_counts(std::size_t max_keys = 4096) : max_keys_(max_keys) { slots_.resize(16); }

  void add(std::string_view key) {
    if (last_ != npos && slots_[last_].key == key) {
      ++slots_[last_].count;
      return;
    }
    const std::uint64_t h = word_hash(key);
    std::size_t i = h & (slots_.size() - 1);
    while (slots_[i].used) {
      if (slots_[i].hash == h && slots_[i].key == key) {
        ++slots_[i].count;
        last_ = i;
        return;
      }
      i = (i + 1) & (slots_.size() - 1);
    }
    if (size_ == max_keys_) {
      ++others_;
      return;
    }
    slots_[i] = slot{h, 1, std::string(key), true};
    ++size_;
    last_ = i;
    if (2 * size_ > slots_.size()) {
      grow();
    }
  }

  /// Calls f(key, count) for every key held, in no particular order.
  template <class F>
  void for_each(F&& f) const {
    for (const slot& s : slots_) {
      if (s.used) {
        f(std::string_view(s.key), s.count);
      }
    }
  }

  /// Distinct keys held.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// Events whose key arrived after max_keys others: counted, not named.
  [[nodiscard]] std::uint64_t others() const noexcept { return others_; }

 private:
  static constexpr std::size_t npos = ~std::size_t{0};
  struct slot {
    std::uint64_t hash = 0;
    std::uint64_t count = 0;
    std::string key;
    bool used = false;
  };

  // Doubles the array, so it stays at most half full (the remembered slot is forgotten: it moved).
  void grow() {
    std::vector<slot> old(slots_.size() * 2);
    old.swap(slots_);
    last_ = npos;
    for (slot& s : old) {
      if (!s.used) {
        continue;
      }
      std::size_t i = s.hash & (slots_.size() - 1);
      while (slots_[i].used) {
        i = (i + 1) & (slots_.size() - 1);
      }
      slots_[i] = std::move(s);
    }
  }

  std::vector<slot> slots_;
  std::size_t size_ = 0;
  std::size_t max_keys_;
  std::size_t last_ = npos;
  std::uint64_t others_ = 0;
};

} // namespace vigil::engine
