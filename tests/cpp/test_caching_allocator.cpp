// The caching allocator behind CPU and CUDA storages, over a counting fake raw allocator: size
// classes, steady-state reuse without raw calls, the cache bound, the out-of-memory retry and its
// error, the disabled mode, and concurrent use.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <set>
#include <thread>
#include <vector>

#include "src/core/caching_allocator.hpp"
#include "tests/cpp/reference.hpp"

using tse::detail::CachingAllocator;
using tse::test::contains;
using tse::test::thrown_message;

namespace {

/// malloc / free that count their calls and can be told to fail.
struct FakeRaw {
  std::atomic<int> allocs{0}, frees{0}, fail_next{0};
  std::set<void*> live;
  std::mutex mu;

  CachingAllocator make(size_t max_cached, bool enabled = true) {
    return CachingAllocator(
        "test allocator",
        [this](size_t n) -> void* {
          if (fail_next > 0) {
            --fail_next;
            return nullptr;
          }
          ++allocs;
          void* p = std::malloc(n);
          std::lock_guard<std::mutex> lock(mu);
          live.insert(p);
          return p;
        },
        [this](void* p) {
          ++frees;
          {
            std::lock_guard<std::mutex> lock(mu);
            CHECK(live.erase(p) == 1);  // only what it handed out, once
          }
          std::free(p);
        },
        max_cached, enabled);
  }
};

}  // namespace

TEST_CASE("caching allocator: size classes are 64-byte granules, then at most 25% over the request") {
  CHECK(CachingAllocator::size_class(0) == 64);
  CHECK(CachingAllocator::size_class(1) == 64);
  CHECK(CachingAllocator::size_class(65) == 128);
  CHECK(CachingAllocator::size_class(4096) == 4096);
  size_t prev = 0;
  for (size_t n = 1; n < (size_t{1} << 26); n = n * 3 / 2 + 1) {
    const size_t c = CachingAllocator::size_class(n);
    CHECK(c >= n);
    CHECK(c % 64 == 0);
    if (n > 4096) CHECK(c <= n + n / 4 + 64);
    CHECK(c >= prev);  // monotone
    prev = c;
  }
  for (size_t p = 4096; p <= (size_t{1} << 30); p <<= 1) CHECK(CachingAllocator::size_class(p) == p);
}

TEST_CASE("caching allocator: steady state makes no raw calls") {
  FakeRaw raw;
  {
    CachingAllocator a = raw.make(size_t{1} << 30);
    const std::vector<size_t> sizes = {10, 1000, 5000, 70000, 1 << 20};
    for (int step = 0; step < 5; ++step) {
      std::vector<std::pair<void*, size_t>> held;
      for (size_t n : sizes) held.push_back({a.allocate(n), n});
      for (auto [p, n] : held) a.deallocate(p, n);
      if (step == 0) CHECK(raw.allocs == static_cast<int>(sizes.size()));
    }
    CHECK(raw.allocs == static_cast<int>(sizes.size()));  // every later step reused the first step's blocks
    CHECK(raw.frees == 0);
    CHECK(a.stats().reuses == 4 * sizes.size());
    // A request of another size in the same class reuses the block too.
    void* p = a.allocate(70000);
    a.deallocate(p, 70000);
    void* q = a.allocate(69000);
    CHECK(q == p);
    a.deallocate(q, 69000);
    a.release_all();
    CHECK(a.stats().cached_bytes == 0);
    CHECK(raw.frees == raw.allocs);
  }
  CHECK(raw.live.empty());
}

TEST_CASE("caching allocator: the cache bound, the disabled mode and destruction free what is cached") {
  FakeRaw raw;
  {
    CachingAllocator a = raw.make(8192);
    void* p1 = a.allocate(4096);
    void* p2 = a.allocate(4096);
    void* p3 = a.allocate(4096);
    a.deallocate(p1, 4096);
    a.deallocate(p2, 4096);
    CHECK(a.stats().cached_bytes == 8192);
    a.deallocate(p3, 4096);  // over the bound: straight back
    CHECK(raw.frees == 1);
    CHECK(a.stats().cached_bytes == 8192);
  }
  CHECK(raw.live.empty());  // the destructor released the two cached blocks

  FakeRaw off;
  CachingAllocator a = off.make(size_t{1} << 30, /*enabled=*/false);
  void* p = a.allocate(100);
  a.deallocate(p, 100);
  CHECK(off.frees == 1);
  CHECK(a.stats().cached_bytes == 0);
  p = a.allocate(100);
  CHECK(off.allocs == 2);
  a.deallocate(p, 100);
}

TEST_CASE("caching allocator: out of memory returns the cache, retries once, then names the request") {
  FakeRaw raw;
  CachingAllocator a = raw.make(size_t{1} << 30);
  void* cached = a.allocate(1 << 16);
  a.deallocate(cached, 1 << 16);
  raw.fail_next = 1;  // the first try fails; the retry after releasing the cache succeeds
  void* p = a.allocate(1 << 20);
  CHECK(p != nullptr);
  CHECK(raw.frees == 1);  // the cached block went back before the retry
  CHECK(a.stats().cached_bytes == 0);
  a.deallocate(p, 1 << 20);
  raw.fail_next = 2;
  const std::string msg = thrown_message<tse::Error>([&] { a.allocate(123456); });
  CHECK(contains(msg, "test allocator"));
  CHECK(contains(msg, "out of memory"));
  CHECK(contains(msg, "123456"));
}

TEST_CASE("caching allocator: concurrent allocations and frees from 4 threads keep the books") {
  FakeRaw raw;
  {
    CachingAllocator a = raw.make(size_t{1} << 24);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&a, t] {
        std::vector<std::pair<void*, size_t>> held;
        for (int i = 0; i < 2000; ++i) {
          const size_t n = 64 + static_cast<size_t>((i * 7919 + t * 104729) % 20000);
          held.push_back({a.allocate(n), n});
          static_cast<char*>(held.back().first)[n - 1] = 1;  // the block holds n bytes
          if (held.size() > 8) {
            a.deallocate(held.front().first, held.front().second);
            held.erase(held.begin());
          }
        }
        for (auto [p, n] : held) a.deallocate(p, n);
      });
    for (auto& th : threads) th.join();
    const auto s = a.stats();
    CHECK(s.raw_allocations == static_cast<uint64_t>(raw.allocs.load()));
    CHECK(s.raw_allocations - s.raw_frees == raw.live.size());  // every live raw block is cached
    CHECK(s.reuses > 0);
  }
  CHECK(raw.live.empty());
}
