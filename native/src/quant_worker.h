// The N-API side both quantize calls share (addon.cc's quantize on a QuantJob, kquant_addon.cc's kqQuantize
// on a KqJob): an AsyncProgressWorker that runs the engine on a kept thread (run_kept) while Execute sends
// the rows done every 25 ms as progress, resolves its promise with the result object, and the { promise,
// cancel } handle a call returns.
#pragma once

#ifndef NAPI_VERSION
#define NAPI_VERSION 8  // one build loads in Node 20, Node 24 and Electron
#endif
#include <napi.h>

#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "engine.h"
#include "kquant_addon.h"

namespace apl {

/** { relError, snrDb, cosine, maxAbsError } of the metrics. */
inline Napi::Object metrics_object(Napi::Env env, const MetricsOut& m) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("relError", m.rel_error);
  o.Set("snrDb", m.snr_db);
  o.Set("cosine", m.cosine);
  o.Set("maxAbsError", m.max_abs);
  return o;
}

/** The metrics' raw sums { sdd, sxx, sww, sxw, maxAbs } (a tensor's running sums between its calls). */
inline Napi::Object sums_object(Napi::Env env, const MetricsAcc& m) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("sdd", m.sdd);
  o.Set("sxx", m.sxx);
  o.Set("sww", m.sww);
  o.Set("sxw", m.sxw);
  o.Set("maxAbs", m.max_abs);
  return o;
}

/** options.metricsFrom (sums_object's shape, validated by native/load.ts) into *m; zero sums when absent. */
inline void read_metrics_from(const Napi::Object& o, MetricsAcc* m) {
  Napi::Value v = o.Get("metricsFrom");
  if (!v.IsObject()) return;
  Napi::Object s = v.As<Napi::Object>();
  m->sdd = s.Get("sdd").As<Napi::Number>().DoubleValue();
  m->sxx = s.Get("sxx").As<Napi::Number>().DoubleValue();
  m->sww = s.Get("sww").As<Napi::Number>().DoubleValue();
  m->sxw = s.Get("sxw").As<Napi::Number>().DoubleValue();
  m->max_abs = s.Get("maxAbs").As<Napi::Number>().DoubleValue();
}

/**
 * The worker of one quantize call: Run(job_, backend_, threads_, control, check) off the main thread; the
 * promise resolves to { backend } plus { cancelled: true, error } when cancelled, { error, code (a scale
 * overflow, when kOverflowCode), badIndex } on an error, else { metrics, check } as asked. The derived class
 * fills job_, check_ / has_check_, backend_, threads_ and keep_ (the options object, kept alive with its
 * buffers) from the options.
 */
template <class Job, QuantStatus (*Run)(const Job&, int, int, Control*, const CheckJob*), bool kOverflowCode>
class EngineWorker : public Napi::AsyncProgressWorker<int64_t> {
 public:
  EngineWorker(Napi::Env env, const char* name)
      : Napi::AsyncProgressWorker<int64_t>(env, name),
        deferred_(Napi::Promise::Deferred::New(env)),
        ctl_(std::make_shared<Control>()) {}

  Napi::Promise promise() { return deferred_.Promise(); }
  std::shared_ptr<Control> control() { return ctl_; }

  void Execute(const ExecutionProgress& progress) override {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    run_kept([&]() {
      try {
        result_ = Run(job_, backend_, threads_, ctl_.get(), has_check_ ? &check_ : nullptr);
      } catch (const std::exception& e) {
        result_.status = -1;
        result_.error = std::string("native engine failure: ") + e.what();
      } catch (...) {  // a kept thread must not end on it
        result_.status = -1;
        result_.error = "native engine failure";
      }
      std::lock_guard<std::mutex> g(mu);
      done = true;
      cv.notify_all();
    });
    int64_t sent = -1;
    std::unique_lock<std::mutex> lk(mu);
    while (!done) {
      cv.wait_for(lk, std::chrono::milliseconds(25));
      int64_t v = ctl_->rows_done.load();
      if (v != sent && !done) {
        sent = v;
        progress.Send(&v, 1);
      }
    }
  }

  void OnProgress(const int64_t* data, size_t count) override {
    if (finished_ || !count || progress_.IsEmpty()) return;
    if (*data <= reported_) return;
    reported_ = *data;
    progress_.Call({Napi::Number::New(Env(), (double)*data)});
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    int64_t done = ctl_->rows_done.load();
    if (result_.status == kOk && !progress_.IsEmpty() && done > reported_) {
      reported_ = done;
      progress_.Call({Napi::Number::New(env, (double)done)});
    }
    finished_ = true;
    Napi::Object r = Napi::Object::New(env);
    r.Set("backend", result_.backend);
    if (result_.status == kCancelled) {
      r.Set("cancelled", true);
      r.Set("error", "cancelled");
    } else if (result_.status != kOk) {
      r.Set("error", result_.error);
      if (kOverflowCode && result_.status == kScaleOverflow) r.Set("code", kScaleOverflowCode);
      if (result_.bad >= 0) r.Set("badIndex", (double)result_.bad);
    } else {
      if (result_.has_metrics) {
        r.Set("metrics", metrics_object(env, result_.metrics));
        r.Set("metricsSums", sums_object(env, result_.sums));
      }
      if (result_.has_check) r.Set("check", check_object(env, result_.check));
    }
    deferred_.Resolve(r);
  }

  void OnError(const Napi::Error& e) override {
    finished_ = true;
    deferred_.Reject(e.Value());
  }

 protected:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Control> ctl_;
  Job job_{};
  CheckJob check_{};
  bool has_check_ = false;
  int backend_ = 0, threads_ = 0;
  QuantStatus result_;
  Napi::ObjectReference keep_;
  Napi::FunctionReference progress_;
  int64_t reported_ = 0;
  bool finished_ = false;
};

/** Queues the worker w and returns the call's handle: { promise, cancel() } (cancel sets the engine's flag).
 */
template <class Worker>
Napi::Object queue_worker(Napi::Env env, Worker* w) {
  std::shared_ptr<Control> ctl = w->control();
  Napi::Object job = Napi::Object::New(env);
  job.Set("promise", w->promise());
  job.Set("cancel", Napi::Function::New(
                        env, [ctl](const Napi::CallbackInfo&) { ctl->cancel = true; }, "cancel"));
  w->Queue();
  return job;
}

}  // namespace apl
