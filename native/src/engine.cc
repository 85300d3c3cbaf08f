// Threaded CPU engine, backend choice, dequantize / qmatmul / metrics / stats. No N-API here.
#include "engine.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#ifdef APL_HAVE_CUDA
#include "cuda/check_cuda.h"
#include "cuda/cuda.h"
#endif

namespace apl {

int resolve_threads(int threads) {
  if (threads > 0) return threads;
  unsigned h = std::thread::hardware_concurrency();
  return h ? (int)h : 1;
}

namespace {

/**
 * The threads parallel_chunks hands its work to, started once and kept: on a VM a thread started while its
 * parent runs can wait most of a millisecond before it gets the other core (0.7 ms measured on the 2-core
 * Firecracker host, against 0.08 ms to wake a kept one), and convert starts a job per tensor. Never freed:
 * the workers are detached and block on `cv` until the process ends.
 */
struct ChunkPool {
  // One job at a time: a second caller (or a nested one) takes another pool (pool_run).
  std::atomic<bool> busy{false};
  std::mutex mu;
  std::condition_variable cv, done;
  const std::function<void()>* job = nullptr;
  int64_t gen = 0;
  int started = 0, want = 0, taken = 0, running = 0;

  void loop(int64_t seen) {
    std::unique_lock<std::mutex> l(mu);
    for (;;) {
      cv.wait(l, [&] { return gen != seen; });
      seen = gen;
      if (taken >= want) continue;  // enough helpers for this job already
      taken++;
      const std::function<void()>* f = job;
      l.unlock();
      (*f)();  // parallel_chunks' worker: it catches what its chunks throw
      l.lock();
      if (--running == 0) done.notify_all();
    }
  }

  bool run(int helpers, const std::function<void()>& f) {
    if (busy.exchange(true, std::memory_order_acquire)) return false;
    struct Release {
      std::atomic<bool>& b;
      ~Release() { b.store(false, std::memory_order_release); }
    } release{busy};
    {
      std::lock_guard<std::mutex> l(mu);
      try {
        for (; started < helpers; started++) std::thread(&ChunkPool::loop, this, gen).detach();
      } catch (...) {  // no more threads: the caller's own path reports it
        return false;
      }
      job = &f;
      want = running = helpers;
      taken = 0;
      gen++;
    }
    cv.notify_all();
    f();
    std::unique_lock<std::mutex> l(mu);
    done.wait(l, [&] { return running == 0; });
    job = nullptr;
    return true;
  }
};

}  // namespace

bool pool_run(int helpers, const std::function<void()>& job) {
  // A few pools, each one job at a time: convert quantizes the next tensor's first chunk while the current
  // one runs, and a second caller that started its own threads paid each time for the start and for their
  // fresh pages (the thread-local scratch, the stack; a 4 KiB fault costs ≈ 12 µs in this project's VMs): ≈
  // 160 threads started per conversion of a 22-layer model. A nested call takes the next free pool.
  constexpr int kPools = 4;
  static ChunkPool* pools = new ChunkPool[kPools];
  if (helpers <= 0) return false;
  for (int i = 0; i < kPools; i++)
    if (pools[i].run(helpers, job)) return true;
  return false;
}

namespace {

/**
 * run_kept's threads: each takes the oldest job posted, runs it, and waits for the next. At most kMax of
 * them; past that a job waits for one (jobs never wait on each other, so that only delays them). A caller
 * that posts again the moment its job signalled can find its thread not yet waiting and start another, so the
 * count may creep up to kMax over a long session, never past it.
 */
struct KeptRunners {
  static constexpr int kMax = 16;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> jobs;
  int threads = 0, idle = 0;  // idle: waiting for a job

  void loop() {
    std::unique_lock<std::mutex> l(mu);
    for (;;) {
      idle++;
      cv.wait(l, [&] { return !jobs.empty(); });
      idle--;
      std::function<void()> f = std::move(jobs.front());
      jobs.pop_front();
      l.unlock();
      f();
      f = nullptr;  // what it holds is released before the thread waits again
      l.lock();
    }
  }

  void post(std::function<void()> f) {
    std::unique_lock<std::mutex> l(mu);
    jobs.push_back(std::move(f));
    // a waiting thread for every job posted, or two calls at once would run one after the other
    if (idle >= (int)jobs.size() || threads >= kMax) {
      cv.notify_one();
      return;
    }
    try {
      std::thread(&KeptRunners::loop, this).detach();
      threads++;
    } catch (...) {  // no thread: run it here
      std::function<void()> g = std::move(jobs.back());
      jobs.pop_back();
      l.unlock();
      g();
    }
  }
};

}  // namespace

void run_kept(std::function<void()> job) {
  static KeptRunners* runners = new KeptRunners();
  runners->post(std::move(job));
}

static std::string value_text(float v) {
  if (std::isnan(v)) return "NaN";
  return v > 0 ? "Infinity" : "-Infinity";
}

static void describe_error(const QuantJob& j, QuantStatus& st) {
  char buf[256];
  if (st.status == kNonFinite) {
    float v = 0;
    int64_t i = st.bad;
    if (j.dtype == kF32) {
      memcpy(&v, j.data + i * 4, 4);
    } else {
      uint16_t h;
      memcpy(&h, j.data + i * 2, 2);
      v = j.dtype == kF16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
    snprintf(buf, sizeof buf, "%s at index %lld (row %lld, column %lld)", value_text(v).c_str(), (long long)i,
             (long long)(i / j.cols), (long long)(i % j.cols));
    st.error = buf;
  } else if (st.status == kScaleOverflow) {
    snprintf(buf, sizeof buf,
             "the group at index %lld has values too large for %s scales; use scaleDtype 'f32'",
             (long long)st.bad, j.f16 ? "f16" : "f32");
    st.error = buf;
  } else if (st.status == kCancelled) {
    st.error = "cancelled";
  }
}

QuantStatus quantize_cpu(const QuantJob& j, int threads, Control* ctl, const CpuKernel* kernel,
                         OutputCheck* check) {
  const CpuKernel& k = kernel ? *kernel : select_kernel();
  QuantStatus st;
  st.backend = std::string("cpu-") + k.name;
  st = run_rows(
      j, threads, ctl, check, std::move(st),
      [&] {
        thread_local std::vector<float> row;
        thread_local std::vector<uint8_t> qv;
        if ((int64_t)row.size() < j.cols) row.resize((size_t)j.cols);
        if ((int64_t)qv.size() < j.cols) qv.resize((size_t)j.cols);
        return RowScratch{row.data(), qv.data()};
      },
      [&](int64_t r, RowScratch& s, MetricsAcc* m, int64_t* bad) { return k.quantize_row(j, r, s, m, bad); });
  if (st.status != kOk) describe_error(j, st);
  return st;
}

/** The output check of a job quantized elsewhere (the GPU): its tasks and every row's products, threaded. */
static CheckOut check_after(const QuantJob& j, const CheckJob& c, int threads) {
  OutputCheck chk(j, c);
  int64_t per = rows_per_chunk(j.cols), nchunks = (j.rows + per - 1) / per, extra = chk.tasks();
  parallel_chunks(resolve_threads(threads), extra + nchunks, [&](int64_t i) {
    if (i < extra)
      chk.run_task(i);
    else
      chk.rows_done((i - extra) * per, std::min(j.rows, (i - extra + 1) * per));
    return true;
  });
  return chk.finish();
}

/**
 * The output check of a job quantized on the GPU: its products there (cuda/check.cu, the same float64
 * chains), Σ‖f‖² on the CPU threads. APL_CHECK_CPU=1, or a CUDA error (named in *note), runs it all
 * on the CPU.
 */
static CheckOut check_on_gpu(const QuantJob& j, const CheckJob& c, int threads, std::string* note) {
#ifdef APL_HAVE_CUDA
  const char* force = std::getenv("APL_CHECK_CPU");
  if (c.m > 0 && !(force && force[0] == '1')) {
    std::vector<double> y((size_t)(c.n * c.m));
    std::vector<float> yq((size_t)(c.n * c.m));
    if (cuda::check_products(j, c, y.data(), yq.data(), note)) {
      OutputCheck chk(j, c);
      chk.set_products(y.data(), yq.data());
      parallel_chunks(resolve_threads(threads), chk.tasks(), [&](int64_t i) {
        chk.run_task(i);
        return true;
      });
      return chk.finish();
    }
  }
#else
  (void)note;
#endif
  return check_after(j, c, threads);
}

GpuInfo gpu_info() {
  GpuInfo g;
#ifdef APL_HAVE_CUDA
  g.available = cuda::available(&g.name, &g.reason);
#else
  g.reason = "this build has no CUDA support (nvcc was not found when the addon was built)";
#endif
  return g;
}

/** Re-quantizes a few rows on the CPU and compares them with what the GPU wrote (a cheap guard: results must
 * match). */
static bool gpu_rows_match(const QuantJob& j) {
  if (j.rows == 0) return true;
  int64_t picks[3] = {0, j.rows / 2, j.rows - 1};
  int64_t rb = packed_row_bytes(j.cols, j.bits);
  int64_t pb = groups_per_row(j.cols, j.group) * (j.f16 ? 2 : 4);
  std::vector<uint8_t> q((size_t)rb), s((size_t)pb), z((size_t)pb), qv((size_t)j.cols);
  std::vector<float> row((size_t)j.cols);
  RowScratch scratch{row.data(), qv.data()};
  for (int64_t r : picks) {
    QuantJob t = j;
    t.data = j.data + (size_t)(r * j.cols) * dtype_size(j.dtype);
    t.rows = 1;
    t.metrics = false;
    t.q = q.data();
    t.scales = s.data();
    t.zeros = z.data();
    int64_t bad = -1;
    if (select_kernel().quantize_row(t, 0, scratch, nullptr, &bad) != kOk) return false;
    if (memcmp(q.data(), j.q + r * rb, (size_t)rb) || memcmp(s.data(), j.scales + r * pb, (size_t)pb) ||
        memcmp(z.data(), j.zeros + r * pb, (size_t)pb))
      return false;
  }
  return true;
}

QuantStatus quantize(const QuantJob& j, int backend, int threads, Control* ctl, const CheckJob* check) {
  if (backend != 0) {
    GpuInfo g = gpu_info();
    if (!g.available) {
      if (backend == 1) {
        QuantStatus st;
        st.status = -1;
        st.error = "backend 'gpu' was requested but no GPU is usable: " + g.reason;
        return st;
      }
    } else {
#ifdef APL_HAVE_CUDA
      QuantStatus st;
      st.backend = "cuda:" + g.name;
      MetricsAcc m = j.metrics_from;
      std::string err;
      float ms = 0;
      int rc = cuda::quantize(j, j.metrics ? &m : nullptr, &st.bad, &err, &ms);
      if (rc == kOk && !gpu_rows_match(j)) {
        rc = -1;
        err = "the GPU result differs from the CPU reference on sampled rows";
      }
      if (rc == kOk) {
        if (ctl) ctl->rows_done.store(j.rows);
        if (j.metrics) {
          st.has_metrics = true;
          st.metrics = finish_metrics(m);
          st.sums = m;
        }
        if (check) {
          std::string note;
          st.has_check = true;
          st.check = check_on_gpu(j, *check, threads, &note);
          if (!note.empty()) st.backend += " (output check on the CPU: " + note + ")";
        }
        return st;
      }
      if (rc > 0) {
        st.status = rc;
        describe_error(j, st);
        return st;
      }
      if (backend == 1) {
        st.status = -1;
        st.error = "CUDA: " + err;
        return st;
      }
      // auto: fall through to the CPU (and say why in the backend name)
      std::unique_ptr<OutputCheck> chk(check ? new OutputCheck(j, *check) : nullptr);
      QuantStatus cpu = quantize_cpu(j, threads, ctl, nullptr, chk.get());
      cpu.backend += " (GPU not used: " + err + ")";
      return cpu;
#endif
    }
  }
  std::unique_ptr<OutputCheck> chk(check ? new OutputCheck(j, *check) : nullptr);
  return quantize_cpu(j, threads, ctl, nullptr, chk.get());
}

// ---------------------------------------------------------------------------------------------------------------

void dequantize(const QTensor& w, float* out, int threads) {
  int64_t per = rows_per_chunk(w.cols);
  int64_t nchunks = (w.rows + per - 1) / per;
  parallel_chunks(resolve_threads(threads), nchunks, [&](int64_t c) {
    int64_t r1 = std::min(w.rows, (c + 1) * per);
    for (int64_t r = c * per; r < r1; r++) dequantize_row(w, r, out + r * w.cols);
    return true;
  });
}

void qmatmul(const float* x, int64_t n, const QTensor& w, float* y, int threads) {
  int64_t per = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, w.cols));
  int64_t nchunks = (w.rows + per - 1) / per;
  parallel_chunks(resolve_threads(threads), nchunks, [&](int64_t c) {
    std::vector<float> d((size_t)w.cols);
    int64_t r1 = std::min(w.rows, (c + 1) * per);
    for (int64_t r = c * per; r < r1; r++) {
      dequantize_row(w, r, d.data());
      for (int64_t i = 0; i < n; i++) {
        const float* xi = x + i * w.cols;
        double acc = 0;
        for (int64_t k = 0; k < w.cols; k++) acc += (double)xi[k] * d[(size_t)k];
        y[i * w.rows + r] = (float)acc;
      }
    }
    return true;
  });
}

MetricsOut error_metrics(const uint8_t* data, int dtype, const QTensor& w, int threads) {
  return metrics_against(data, dtype, w.rows, w.cols, threads,
                         [&w](int64_t r, float* dst) { dequantize_row(w, r, dst); });
}

MetricsOut compare_metrics(const float* x, const float* w, int64_t n) {
  MetricsAcc m;
  for (int64_t i = 0; i < n; i++) m.add(x[i], w[i]);
  return finish_metrics(m);
}

}  // namespace apl
