// parallel_chunks (engine.h) over pool_run's kept threads: every chunk once, whatever the thread count; an
// exception in a chunk reaches the caller and leaves the pool usable; a nested call and two callers at once
// (the pool busy: they start their own threads) finish with every chunk run once. Included by test_kernels.cc
// (its CHECK macro and counters).
#pragma once

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "../../native/src/engine.h"

static bool each_chunk_once(int threads, int64_t n) {
  std::vector<std::atomic<int>> hits((size_t)n);
  for (auto& h : hits) h = 0;
  parallel_chunks(threads, n, [&](int64_t c) {
    hits[(size_t)c]++;
    return true;
  });
  for (auto& h : hits)
    if (h.load() != 1) return false;
  return true;
}

static void test_parallel_chunks() {
  for (int threads : {1, 2, 3, 5, 2})
    for (int64_t n : {0, 1, 2, 7, 1000})
      CHECK(each_chunk_once(threads, n), "parallel_chunks(%d threads, %lld chunks): every chunk once",
            threads, (long long)n);
  bool thrown = false;
  try {
    parallel_chunks(3, 400, [&](int64_t c) -> bool {
      if (c == 123) throw std::runtime_error("chunk 123");
      return true;
    });
  } catch (const std::runtime_error& e) {
    thrown = std::string(e.what()) == "chunk 123";
  }
  CHECK(thrown, "an exception in a chunk reaches the caller");
  CHECK(each_chunk_once(3, 500), "the pool runs the next job after an exception");
  std::atomic<int> inner{0};
  parallel_chunks(2, 8, [&](int64_t) {
    inner += each_chunk_once(2, 50) ? 1 : 0;  // nested: the pool is busy, so it starts its own threads
    return true;
  });
  CHECK(inner.load() == 8, "nested parallel_chunks: %d of 8 inner jobs ran every chunk once", inner.load());
  std::atomic<int> ok{0};
  std::vector<std::thread> callers;
  for (int i = 0; i < 3; i++)
    callers.emplace_back([&] {
      for (int k = 0; k < 20; k++) ok += each_chunk_once(2, 300) ? 1 : 0;
    });
  for (auto& t : callers) t.join();
  CHECK(ok.load() == 60, "three callers at once: %d of 60 jobs ran every chunk once", ok.load());
}
