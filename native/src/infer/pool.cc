#include "pool.h"

#include <map>
#include <memory>
#include <stdexcept>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define APL_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define APL_PAUSE() asm volatile("yield")
#else
#define APL_PAUSE() std::this_thread::yield()
#endif

namespace apl {
namespace infer {

namespace {
// The index of a closed generation: at least any task count, so nothing of it can be claimed.
constexpr uint64_t kClosed = 0xffffffffu;
thread_local int t_index = 0;
}  // namespace

int Pool::thread_index() { return t_index; }

Pool::Pool(int threads) {
  for (int i = 1; i < threads; i++) workers_.emplace_back([this, i]() { worker(i); });
}

Pool::~Pool() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

/** Claims and runs tasks of generation gen until none is left; false when gen is no longer current. */
bool Pool::work(uint64_t gen) {
  for (;;) {
    uint64_t v = counter_.load(std::memory_order_acquire);
    if ((v >> 32) != gen) return false;
    int64_t i = (int64_t)(v & 0xffffffffu);
    if (i >= ntasks_.load(std::memory_order_acquire)) return true;
    if (!counter_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) continue;
    try {
      (*fn_)(i);
    } catch (...) {
      std::lock_guard<std::mutex> g(error_mu_);
      if (!error_) error_ = std::current_exception();
    }
    done_.fetch_add(1, std::memory_order_acq_rel);
  }
}

void Pool::worker(int index) {
  t_index = index;
  uint64_t seen = 0;
  for (;;) {
    bool got = false;
    for (int spin = 0; spin < 4000; spin++) {
      if ((counter_.load(std::memory_order_acquire) >> 32) != seen) {
        got = true;
        break;
      }
      APL_PAUSE();
    }
    if (!got) {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&]() { return stop_ || (counter_.load() >> 32) != seen; });
      if (stop_) return;
    }
    seen = counter_.load(std::memory_order_acquire) >> 32;
    work(seen);
  }
}

void Pool::run(int64_t ntasks, const std::function<void(int64_t)>& fn) {
  if (ntasks <= 0) return;
  if (ntasks >= (int64_t)kClosed) throw std::length_error("Pool::run: too many tasks");
  if (workers_.empty() || ntasks == 1) {
    for (int64_t i = 0; i < ntasks; i++) fn(i);
    return;
  }
  uint64_t gen;
  {
    std::lock_guard<std::mutex> g(mu_);
    gen = (counter_.load() >> 32) + 1;
    // Close the last generation first: a worker that loaded its counter value (an index below the new count)
    // and then reads the new count below would otherwise claim a task of the finished run and call its dead
    // fn_.
    counter_.store(((gen - 1) << 32) | kClosed, std::memory_order_seq_cst);
    fn_ = &fn;
    done_.store(0);
    error_ = nullptr;
    ntasks_.store(ntasks, std::memory_order_release);
    counter_.store(gen << 32, std::memory_order_release);
  }
  cv_.notify_all();
  work(gen);
  // A worker descheduled mid-task (a busy machine) should not keep this thread spinning: yield after a while.
  for (int spin = 0; done_.load(std::memory_order_acquire) < ntasks; spin++) {
    if (spin < 2000)
      APL_PAUSE();
    else
      std::this_thread::yield();
  }
  if (error_) std::rethrow_exception(error_);
}

Pool& shared_pool(int threads) {
  static std::mutex mu;
  static std::map<int, std::unique_ptr<Pool>> pools;
  std::lock_guard<std::mutex> g(mu);
  auto& p = pools[threads];
  if (!p) p.reset(new Pool(threads));
  return *p;
}

}  // namespace infer
}  // namespace apl
