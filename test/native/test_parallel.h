// parallel_chunks (engine.h) over pool_run's kept threads: every chunk once, whatever the thread count; an
// exception in a chunk reaches the caller and leaves the pool usable; a nested call and two callers at once
// (each in a pool of its own) finish with every chunk run once, and two callers at once start no thread after
// the first rounds (convert's prefetch: a kernel call beside another). Included by test_kernels.cc (its CHECK
// macro and counters).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "../../native/src/engine.h"

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

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
#if defined(__linux__)
  // Two callers at once, 100 jobs each of two threads, each chunk a few microseconds of work so the jobs
  // overlap: the threads that ran chunks, by kernel thread id (never reused soon, unlike std::thread::id).
  // Kept pools: the two callers and the pools' kept threads, at most 2 + 4 × 4 (four pools; a pool keeps as
  // many threads as the largest job it ran asked for, four above). Threads started per job gave a new id to
  // most of the 80 jobs.
  std::mutex mu;
  std::set<long> tids;
  std::vector<std::thread> two;
  for (int i = 0; i < 2; i++)
    two.emplace_back([&] {
      for (int k = 0; k < 100; k++)
        parallel_chunks(2, 64, [&](int64_t c) {
          volatile double x = (double)c;
          for (int s = 0; s < 2000; s++) x = x * 1.0000001 + 1e-9;
          const long tid = (long)syscall(SYS_gettid);
          std::lock_guard<std::mutex> g(mu);
          tids.insert(tid);
          return true;
        });
    });
  for (auto& t : two) t.join();
  CHECK(tids.size() <= 18,
        "two callers at once, 200 jobs: %zu threads ran chunks, expected at most 18 (kept pools)",
        tids.size());

  // run_kept: two callers, 100 jobs each, each waiting for its job before posting the next. Every job runs
  // once, on a kept thread (at most 16), never the caller's; more jobs at once than threads all run too.
  std::set<long> runner_tids;
  std::atomic<int> ran{0}, on_caller{0};
  std::vector<std::thread> posters;
  for (int i = 0; i < 2; i++)
    posters.emplace_back([&] {
      const long me = (long)syscall(SYS_gettid);
      for (int k = 0; k < 100; k++) {
        std::mutex m;
        std::condition_variable cv;
        bool done = false;
        run_kept([&] {
          const long tid = (long)syscall(SYS_gettid);
          {
            std::lock_guard<std::mutex> g(mu);
            runner_tids.insert(tid);
          }
          if (tid == me) on_caller++;
          ran++;
          std::lock_guard<std::mutex> g(m);
          done = true;
          cv.notify_all();
        });
        std::unique_lock<std::mutex> l(m);
        cv.wait(l, [&] { return done; });
      }
    });
  for (auto& t : posters) t.join();
  CHECK(ran.load() == 200 && on_caller.load() == 0, "run_kept: %d of 200 jobs ran, %d on the caller",
        ran.load(), on_caller.load());
  CHECK(runner_tids.size() <= 16, "run_kept: 200 jobs on %zu threads, expected at most 16 (kept)",
        runner_tids.size());
  std::atomic<int> wide{0}, gate{0};
  for (int k = 0; k < 40; k++)
    run_kept([&] {
      while (gate.load() == 0) std::this_thread::yield();  // 40 at once: past the 16 threads, the rest wait
      wide++;
    });
  gate = 1;
  for (int spin = 0; spin < 20000 && wide.load() < 40; spin++)
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  CHECK(wide.load() == 40, "run_kept: %d of 40 jobs at once ran", wide.load());
#endif
}
