#pragma once
// What a bucket keeps of each event it holds: the event time and the event's meta key/values
// (sorted by key), which become the alert's `events` list on overflow. A bucket holds at most
// capacity+1 of them; they are recycled, and assign() reuses their storage, so a warmed-up shard
// pours without heap allocation.
//
// The meta pairs live in one buffer per payload (one heap block, not two strings per pair), and
// the parser's own keys are stored as a one-byte id: 100,000 live buckets hold 600,000 payloads,
// so this layout is most of the engine's memory.

#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/event/timestamp.h"
#include "engine/parse/meta.h"

namespace vigil::engine {

/// Key/value pairs in one buffer. Per entry: a key byte (1 + meta_key for the parser's keys, 0
/// then a length-prefixed name for any other), then the length-prefixed value. Lengths are
/// LEB128, so values may hold any byte.
class meta_list {
 public:
  using entry = std::pair<std::string_view, std::string_view>;

  meta_list() = default;
  meta_list(std::initializer_list<entry> items) {
    for (const entry& e : items) {
      push_back(e.first, e.second);
    }
  }
  /// From any range of string pairs (a vector of std::pair<std::string, std::string>, ...).
  template <class Range, class = decltype(std::begin(std::declval<const Range&>()))>
  meta_list(const Range& items) { // NOLINT(google-explicit-constructor): a drop-in for the old vector
    for (const auto& [k, v] : items) {
      push_back(k, v);
    }
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  /// Empties the list, keeping its storage.
  void clear() noexcept {
    buf_.clear();
    size_ = 0;
  }
  /// Appends a pair whose key is one of the parser's (the worker's path: no name lookup).
  void push_back(meta_key key, std::string_view value) {
    buf_.push_back(static_cast<char>(1 + static_cast<unsigned>(key)));
    put_length(value.size());
    buf_.append(value);
    ++size_;
  }
  void push_back(std::string_view key, std::string_view value) {
    meta_key k{};
    if (meta_key_from_name(key, k)) {
      buf_.push_back(static_cast<char>(1 + static_cast<unsigned>(k)));
    } else {
      buf_.push_back('\0');
      put_length(key.size());
      buf_.append(key);
    }
    put_length(value.size());
    buf_.append(value);
    ++size_;
  }
  /// Copies `other`, reusing this list's storage.
  void assign(const meta_list& other) {
    buf_.assign(other.buf_);
    size_ = other.size_;
  }

  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = entry;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = entry;

    iterator() = default;
    iterator(const char* p, const char* end) : p_(p), end_(end) { load(); }
    entry operator*() const noexcept { return cur_; }
    iterator& operator++() noexcept {
      p_ = next_;
      load();
      return *this;
    }
    iterator operator++(int) noexcept {
      iterator old = *this;
      ++*this;
      return old;
    }
    bool operator==(const iterator& o) const noexcept { return p_ == o.p_; }

   private:
    void load() noexcept {
      if (p_ == end_) {
        return;
      }
      const char* q = p_;
      const auto id = static_cast<unsigned char>(*q++);
      if (id != 0) {
        cur_.first = meta_key_name(static_cast<meta_key>(id - 1));
      } else {
        const std::size_t n = get_length(q);
        cur_.first = std::string_view(q, n);
        q += n;
      }
      const std::size_t n = get_length(q);
      cur_.second = std::string_view(q, n);
      next_ = q + n;
    }
    const char* p_ = nullptr;
    const char* end_ = nullptr;
    const char* next_ = nullptr;
    entry cur_;
  };

  [[nodiscard]] iterator begin() const noexcept { return {buf_.data(), buf_.data() + buf_.size()}; }
  [[nodiscard]] iterator end() const noexcept { return {buf_.data() + buf_.size(), buf_.data() + buf_.size()}; }
  /// The i-th pair (a scan: lists are short).
  [[nodiscard]] entry operator[](std::size_t i) const noexcept {
    iterator it = begin();
    while (i-- > 0) {
      ++it;
    }
    return *it;
  }
  /// The value of one of the parser's keys, empty if absent: compares key bytes, not names (a
  /// parser key's name is always stored as its byte).
  [[nodiscard]] std::string_view find(meta_key key) const noexcept {
    const auto want = static_cast<unsigned char>(1 + static_cast<unsigned>(key));
    const char* q = buf_.data();
    const char* const end = q + buf_.size();
    while (q != end) {
      const auto id = static_cast<unsigned char>(*q++);
      if (id == 0) {
        q += get_length(q); // a key by name
      }
      const std::size_t n = get_length(q);
      if (id == want) {
        return {q, n};
      }
      q += n;
    }
    return {};
  }
  /// Bytes held (for memory accounting).
  [[nodiscard]] std::size_t capacity_bytes() const noexcept { return buf_.capacity(); }

 private:
  void put_length(std::size_t n) {
    while (n >= 0x80) {
      buf_.push_back(static_cast<char>(0x80 | (n & 0x7f)));
      n >>= 7;
    }
    buf_.push_back(static_cast<char>(n));
  }
  static std::size_t get_length(const char*& q) noexcept {
    std::size_t n = 0;
    for (unsigned shift = 0;; shift += 7) {
      const auto b = static_cast<unsigned char>(*q++);
      n |= static_cast<std::size_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        return n;
      }
    }
  }

  std::string buf_;
  std::uint32_t size_ = 0;
};

struct event_payload {
  unix_nanos time = 0;
  /// Meta key/value pairs, sorted by key, as CrowdSec lists an alert's event meta.
  meta_list meta;

  /// Copies `other` into this payload, reusing this payload's storage.
  void assign(const event_payload& other) {
    time = other.time;
    meta.assign(other.meta);
  }

  /// Value of one of the parser's meta keys, empty if absent.
  [[nodiscard]] std::string_view get(meta_key key) const noexcept { return meta.find(key); }
  /// Value of a meta key, empty if absent.
  [[nodiscard]] std::string_view get(std::string_view key) const noexcept {
    for (const auto& [k, v] : meta) {
      if (k == key) {
        return v;
      }
    }
    return {};
  }
};

} // namespace vigil::engine
