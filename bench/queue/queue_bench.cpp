// Worker inbox throughput: moodycamel queues, 1 producer thread -> 1 consumer thread, with the
// item shapes the pipeline moves (engine/pipeline/pipeline.cpp).
//
//  BM_blocking_work_item/B   BlockingConcurrentQueue<work_item> with the pipeline's traits (64
//                            semaphore spins), one wait_dequeue per item, as a worker does. An item
//                            is a shared_ptr to the input chunk plus a vector of B documents
//                            (offset, size, line), built by the producer as the framer does:
//                            B = 1 (one event per item) and 64 (a batch).
//  BM_blocking_bulk/B        the same with wait_dequeue_bulk (up to 256 at a time), as the emitter.
//  BM_blocking_pointer       BlockingConcurrentQueue<input_chunk*>: the queue alone.
//  BM_spin_pointer           ConcurrentQueue<input_chunk*> with try_dequeue in a spin loop (the
//                            chunk pool's free list): the lock-free ceiling.
// One iteration moves 100,000 items (consumer thread started and joined inside it). Reported:
// items/s (items_per_second) and time per item. Real work: the consumer received every item and the
// sum of their document sizes matches what the producer sent; otherwise SkipWithError.
//
// On a 2-core machine the two threads have a core each only when nothing else runs.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>
#include <concurrentqueue/blockingconcurrentqueue.h>

namespace {

struct input_chunk {
  std::string data;
  std::size_t size = 0;
};

struct document {
  std::uint32_t offset = 0;
  std::uint32_t size = 0;
  std::uint64_t line = 1;
};

// The pipeline's work_item shape (docs variant).
struct work_item {
  enum class kind : std::uint8_t { docs, stop };
  kind k = kind::docs;
  std::shared_ptr<input_chunk> chunk;
  std::vector<document> docs;
  std::unique_ptr<int> pour; // stands for the forwarded-pour pointer: moved, usually null
};

struct queue_traits : moodycamel::ConcurrentQueueDefaultTraits {
  static const int MAX_SEMA_SPINS = 64;
};
template <class T>
using blocking_queue = moodycamel::BlockingConcurrentQueue<T, queue_traits>;

constexpr std::size_t items_per_iteration = 100'000;

void report(benchmark::State& state, std::size_t items) {
  state.SetItemsProcessed(static_cast<std::int64_t>(items));
  state.counters["time_per_item"] =
      benchmark::Counter(static_cast<double>(items), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

work_item make_item(const std::shared_ptr<input_chunk>& chunk, std::size_t i, std::size_t batch) {
  work_item item;
  item.chunk = chunk;
  item.docs.reserve(batch);
  for (std::size_t d = 0; d < batch; ++d) {
    item.docs.push_back(document{static_cast<std::uint32_t>(d * 512), static_cast<std::uint32_t>(400 + (i & 63)),
                                 static_cast<std::uint64_t>(i * batch + d + 1)});
  }
  return item;
}

std::uint64_t expected_sum(std::size_t batch) {
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < items_per_iteration; ++i) {
    sum += batch * (400 + (i & 63));
  }
  return sum;
}

void BM_blocking_work_item(benchmark::State& state) {
  const std::size_t batch = static_cast<std::size_t>(state.range(0));
  const auto chunk = std::make_shared<input_chunk>();
  const std::uint64_t want = expected_sum(batch);
  std::size_t moved = 0;
  for (auto _ : state) {
    blocking_queue<work_item> q;
    std::uint64_t sum = 0;
    std::size_t got = 0;
    std::thread consumer([&] {
      work_item item;
      while (true) {
        q.wait_dequeue(item);
        if (item.k == work_item::kind::stop) {
          return;
        }
        for (const document& d : item.docs) {
          sum += d.size;
        }
        ++got;
        item = work_item{};
      }
    });
    for (std::size_t i = 0; i < items_per_iteration; ++i) {
      q.enqueue(make_item(chunk, i, batch));
    }
    work_item stop;
    stop.k = work_item::kind::stop;
    q.enqueue(std::move(stop));
    consumer.join();
    if (got != items_per_iteration || sum != want) {
      state.SkipWithError("no real work: items lost or corrupted");
      return;
    }
    moved += got;
  }
  report(state, moved);
}

void BM_blocking_bulk(benchmark::State& state) {
  const std::size_t batch = static_cast<std::size_t>(state.range(0));
  const auto chunk = std::make_shared<input_chunk>();
  const std::uint64_t want = expected_sum(batch);
  std::size_t moved = 0;
  for (auto _ : state) {
    blocking_queue<work_item> q;
    std::uint64_t sum = 0;
    std::size_t got = 0;
    std::thread consumer([&] {
      std::vector<work_item> items(256);
      while (true) {
        const std::size_t n = q.wait_dequeue_bulk(items.begin(), items.size());
        for (std::size_t k = 0; k < n; ++k) {
          if (items[k].k == work_item::kind::stop) {
            return;
          }
          for (const document& d : items[k].docs) {
            sum += d.size;
          }
          ++got;
          items[k] = work_item{};
        }
      }
    });
    for (std::size_t i = 0; i < items_per_iteration; ++i) {
      q.enqueue(make_item(chunk, i, batch));
    }
    work_item stop;
    stop.k = work_item::kind::stop;
    q.enqueue(std::move(stop));
    consumer.join();
    if (got != items_per_iteration || sum != want) {
      state.SkipWithError("no real work: items lost or corrupted");
      return;
    }
    moved += got;
  }
  report(state, moved);
}

template <class Queue, bool blocking>
void pointer_queue(benchmark::State& state) {
  std::vector<input_chunk> chunks(1024);
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    chunks[i].size = i;
  }
  std::uint64_t want = 0;
  for (std::size_t i = 0; i < items_per_iteration; ++i) {
    want += i & 1023;
  }
  std::size_t moved = 0;
  for (auto _ : state) {
    Queue q;
    std::uint64_t sum = 0;
    std::size_t got = 0;
    std::thread consumer([&] {
      input_chunk* c = nullptr;
      while (true) {
        if constexpr (blocking) {
          q.wait_dequeue(c);
        } else {
          while (!q.try_dequeue(c)) {
          }
        }
        if (c == nullptr) {
          return;
        }
        sum += c->size;
        ++got;
      }
    });
    for (std::size_t i = 0; i < items_per_iteration; ++i) {
      q.enqueue(&chunks[i & 1023]);
    }
    q.enqueue(nullptr);
    consumer.join();
    if (got != items_per_iteration || sum != want) {
      state.SkipWithError("no real work: items lost or corrupted");
      return;
    }
    moved += got;
  }
  report(state, moved);
}

void BM_blocking_pointer(benchmark::State& state) { pointer_queue<blocking_queue<input_chunk*>, true>(state); }
void BM_spin_pointer(benchmark::State& state) {
  pointer_queue<moodycamel::ConcurrentQueue<input_chunk*>, false>(state);
}

} // namespace

BENCHMARK(BM_blocking_work_item)->Arg(1)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_blocking_bulk)->Arg(1)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_blocking_pointer)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_spin_pointer)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
