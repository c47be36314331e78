#include "engine/counters/counters.h"
#include "engine/util/warn.h"

#include <cstdio>

#include <array>
#include <atomic>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace vigil::counters {

namespace {

using detail::slot;

// The slots one thread writes. Chunks are allocated on first touch and never freed while the
// thread lives, so readers can follow the chunk pointers without a lock on the writer's side.
struct thread_block {
  std::array<std::atomic<slot*>, registry::max_chunks> chunks{};
  std::array<std::unique_ptr<slot[]>, registry::max_chunks> owned{};

  slot* chunk(std::uint32_t index) noexcept {
    slot* c = chunks[index].load(std::memory_order_acquire);
    if (c != nullptr) {
      return c;
    }
    // First touch of this chunk by this thread: the only allocation, once per thread and chunk.
    owned[index].reset(new slot[registry::chunk_size]);
    for (std::uint32_t i = 0; i < registry::chunk_size; ++i) {
      owned[index][i].store(0, std::memory_order_relaxed);
    }
    c = owned[index].get();
    chunks[index].store(c, std::memory_order_release);
    return c;
  }

  std::uint64_t read(id counter) const noexcept {
    const slot* c = chunks[counter >> registry::chunk_bits].load(std::memory_order_acquire);
    return c == nullptr ? 0 : c[counter & (registry::chunk_size - 1)].load(std::memory_order_relaxed);
  }
};

} // namespace

struct registry::impl {
  mutable std::mutex mu;
  std::deque<sample> defs; // value field unused here; deque keeps references stable
  std::unordered_map<std::string, id> by_key;
  std::vector<thread_block*> live;
  std::vector<std::uint64_t> retired = std::vector<std::uint64_t>(max_counters, 0);

  std::uint64_t sum(id counter) const {
    std::uint64_t total = retired[counter];
    for (const thread_block* b : live) {
      total += b->read(counter);
    }
    return total;
  }
};

registry::registry() : impl_(new impl) {
}
registry::~registry() {
  delete impl_;
}

registry& registry::global() noexcept {
  // Leaked on purpose: thread_local blocks of late-exiting threads fold into it at exit.
  static registry* r = new registry();
  return *r;
}

std::string render_labels(std::initializer_list<label> labels) {
  return render_labels(std::vector<label>(labels));
}

std::string render_labels(const std::vector<label>& labels) {
  std::string out;
  for (const label& l : labels) {
    if (!out.empty()) {
      out += ',';
    }
    out.append(l.key);
    out += "=\"";
    for (char ch : l.value) {
      if (ch == '\\' || ch == '"') {
        out += '\\';
        out += ch;
      } else if (ch == '\n') {
        out += "\\n";
      } else {
        out += ch;
      }
    }
    out += '"';
  }
  return out;
}

id registry::define(std::string_view name, std::string_view help, std::initializer_list<label> labels, kind type) {
  return define(name, help, std::vector<label>(labels), type);
}

id registry::define(std::string_view name, std::string_view help, const std::vector<label>& labels, kind type) {
  std::string rendered = render_labels(labels);
  std::string key = std::string(name) + '{' + rendered + '}';
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (auto it = impl_->by_key.find(key); it != impl_->by_key.end()) {
    return it->second;
  }
  if (impl_->defs.size() >= max_counters - 1) {
    // Too many label sets (a label fed by the outside, such as a webhook client's address, can
    // grow without bound): the last slot counts everything defined past the limit, and the
    // process keeps running. Said once.
    if (impl_->defs.size() == max_counters - 1) {
      util::warn("more than " + std::to_string(max_counters - 1) + " counter label sets; " + std::string(name) + "{" +
                 rendered + "} and any later new ones are counted together in vigil_counters_overflowed_total");
      impl_->defs.push_back(sample{"vigil_counters_overflowed_total", "",
                                   "Counts of label sets defined past the registry's limit, added together", kind::counter,
                                   0});
      impl_->by_key.emplace("vigil_counters_overflowed_total{}", max_counters - 1);
    }
    return max_counters - 1;
  }
  auto next = static_cast<id>(impl_->defs.size());
  impl_->defs.push_back(sample{std::string(name), std::move(rendered), std::string(help), type, 0});
  impl_->by_key.emplace(std::move(key), next);
  return next;
}

std::uint64_t registry::read(id counter) const noexcept {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->sum(counter);
}

std::uint64_t registry::read_all(std::string_view name) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < impl_->defs.size(); ++i) {
    if (impl_->defs[i].name == name) {
      total += impl_->sum(static_cast<id>(i));
    }
  }
  return total;
}

std::uint64_t registry::read(std::string_view name, std::initializer_list<label> labels) const {
  std::string key = std::string(name) + '{' + render_labels(labels) + '}';
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->by_key.find(key);
  return it == impl_->by_key.end() ? 0 : impl_->sum(it->second);
}

std::vector<sample> registry::snapshot() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<sample> out(impl_->defs.begin(), impl_->defs.end());
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i].value = impl_->sum(static_cast<id>(i));
  }
  return out;
}

namespace {

// Set when the calling thread's block has been folded into the registry at thread exit: a count
// that comes later (from another thread_local's destructor) goes straight to the registry.
thread_local constinit bool thread_block_folded = false;

// Registers the calling thread's block with the global registry on first use and folds its
// totals into the registry when the thread exits, so nothing counted is ever lost.
struct thread_attachment {
  thread_block block;
  thread_attachment() {
    registry::impl& r = *registry::global().impl_;
    std::lock_guard<std::mutex> lock(r.mu);
    r.live.push_back(&block);
    detail::thread_chunks = block.chunks.data();
  }
  ~thread_attachment() {
    // A later add() on this thread (another thread_local's destructor) takes the slow path,
    // which adds to the registry's totals: this block is about to be freed.
    detail::thread_chunks = nullptr;
    thread_block_folded = true;
    registry::impl& r = *registry::global().impl_;
    std::lock_guard<std::mutex> lock(r.mu);
    for (std::uint32_t c = 0; c < registry::max_chunks; ++c) {
      const slot* s = block.chunks[c].load(std::memory_order_acquire);
      if (s == nullptr) {
        continue;
      }
      for (std::uint32_t i = 0; i < registry::chunk_size; ++i) {
        r.retired[(c << registry::chunk_bits) + i] += s[i].load(std::memory_order_relaxed);
      }
    }
    std::erase(r.live, &block);
  }
};

thread_block& local_block() noexcept {
  thread_local thread_attachment attachment;
  return attachment.block;
}

} // namespace

namespace detail {
thread_local constinit const std::atomic<slot*>* thread_chunks = nullptr;

void add_first_touch(id counter, std::uint64_t n) noexcept {
  if (thread_block_folded) {
    registry::impl& r = *registry::global().impl_;
    std::lock_guard<std::mutex> lock(r.mu);
    r.retired[counter] += n;
    return;
  }
  local_block().chunk(counter >> registry::chunk_bits); // attaches the thread, allocates the chunk
  add(counter, n);                                       // now on the inline path
}
} // namespace detail

void set(id counter, std::uint64_t value) noexcept {
  if (thread_block_folded) {
    return; // a gauge set by a thread past its exit: its slot is gone, and so is its owner
  }
  local_block().chunk(counter >> registry::chunk_bits)[counter & (registry::chunk_size - 1)].store(
      value, std::memory_order_relaxed);
}

histogram::histogram(std::string_view family, std::string_view help, std::vector<double> bounds,
                     std::initializer_list<label> labels)
    : bounds_(std::move(bounds)) {
  registry& r = registry::global();
  const std::string f(family);
  sum_scale_ = f.ends_with("_seconds") ? 1e9 : 1.0;
  std::vector<label> with_le(labels);
  with_le.push_back(label{"le", ""});
  std::vector<std::string> le_text;
  for (double b : bounds_) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", b);
    le_text.emplace_back(buf);
  }
  le_text.emplace_back("+Inf");
  for (const std::string& le : le_text) {
    with_le.back().value = le;
    buckets_.push_back(r.define(f + "_bucket", help, with_le, kind::histogram));
  }
  sum_ = r.define(f + "_sum", help, std::vector<label>(labels), kind::histogram);
  count_ = r.define(f + "_count", help, std::vector<label>(labels), kind::histogram);
}

void histogram::observe(double v) noexcept {
  if (buckets_.empty()) {
    return;
  }
  // Cumulative at observation time (a handful of per-thread adds), so a scrape needs no
  // bucket arithmetic and every bucket is monotonic on its own.
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (v <= bounds_[i]) {
      add(buckets_[i]);
    }
  }
  add(buckets_.back());
  add(sum_, v <= 0 ? 0 : static_cast<std::uint64_t>(v * sum_scale_ + 0.5));
  add(count_);
}

} // namespace vigil::counters
