// A persistent thread pool for the forward pass: one run() per matmul, so workers spin briefly between runs
// (decode issues a few hundred runs per token) and sleep when idle. The caller's thread is one of the
// workers.
#pragma once

#include <stdint.h>

#include <atomic>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace apl {
namespace infer {

class Pool {
 public:
  explicit Pool(int threads);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  int threads() const { return (int)workers_.size() + 1; }
  /** Runs fn(i) for i in [0, ntasks) over the pool; rethrows the first exception. */
  void run(int64_t ntasks, const std::function<void(int64_t)>& fn);
  /** The calling thread's index in its pool: 1 … threads − 1 for a worker, 0 for any other thread. */
  static int thread_index();

 private:
  void worker(int index);
  bool work(uint64_t gen);
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  // high 32 bits: generation, low 32 bits: next task index
  std::atomic<uint64_t> counter_{0};
  std::atomic<int64_t> done_{0};
  // Read by workers before they claim (acquire), written after the last generation is closed (release): a
  // worker holding a stale counter value that sees the new count then finds the counter closed, so its claim
  // fails.
  std::atomic<int64_t> ntasks_{0};
  const std::function<void(int64_t)>* fn_ = nullptr;
  std::exception_ptr error_;
  std::mutex error_mu_;
  bool stop_ = false;
};

/** A pool per thread count, shared by every caller with that count (created on first use, never freed). */
Pool& shared_pool(int threads);

}  // namespace infer
}  // namespace apl
