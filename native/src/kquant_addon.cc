// N-API bindings of the two-level-scale type (kquant.h), registered by addon.cc's Init through kq_register.
// native/kquant.ts validates every argument first; the sizes are checked again here so a bad call can never
// read or write out of bounds. Quantization runs in an AsyncProgressWorker (progress, cancellation), like
// quantize() in addon.cc.
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include "kquant_addon.h"

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "kquant_engine.h"
#include "quant_worker.h"

namespace apl {

namespace {

struct Bytes {
  uint8_t* data;
  size_t size;
};
Bytes bytes(const Napi::Value& v, const char* what) {
  if (!v.IsTypedArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a typed array");
  Napi::TypedArray t = v.As<Napi::TypedArray>();
  return Bytes{static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset(), t.ByteLength()};
}
int dtype_of(const Napi::Value& v) {
  std::string s = v.As<Napi::String>().Utf8Value();
  return s == "f32" ? kF32 : s == "f16" ? kF16 : s == "bf16" ? kBF16 : -1;
}
int64_t num(const Napi::Object& o, const char* k) { return o.Get(k).As<Napi::Number>().Int64Value(); }

KqParams params(const Napi::Object& o) {
  KqParams p{(int)num(o, "bits"), (int)num(o, "group"), (int)num(o, "super"), (int)num(o, "sbits"),
             (int)num(o, "mbits")};
  std::string e = kq_check_params(p);
  if (!e.empty()) throw Napi::RangeError::New(o.Env(), "kquant: " + e);
  return p;
}

/** q, codes, d, dmin of o, checked against rows × cols under p. */
void outputs(const Napi::Object& o, int64_t rows, int64_t cols, const KqParams& p, Bytes* q, Bytes* c,
             Bytes* d, Bytes* m) {
  *q = bytes(o.Get("q"), "q");
  *c = bytes(o.Get("codes"), "codes");
  *d = bytes(o.Get("d"), "d");
  *m = bytes(o.Get("dmin"), "dmin");
  size_t sb = (size_t)(rows * kq_supers_per_row(cols, p.super) * 2);
  if (rows < 0 || cols < 1 || q->size != (size_t)(rows * packed_row_bytes(cols, p.bits)) ||
      c->size != (size_t)(rows * kq_code_row_bytes(cols, p)) || d->size != sb || m->size != sb)
    throw Napi::RangeError::New(o.Env(), "kquant: inconsistent sizes (call it through native/kquant.ts)");
}

// kquant's result carries no `code` for a scale overflow (the groupwise one does).
class KqWorker : public EngineWorker<KqJob, &kq_quantize, false> {
 public:
  KqWorker(Napi::Env env, const Napi::Object& o, Napi::Value progress) : EngineWorker(env, "apl.kqQuantize") {
    int dt = dtype_of(o.Get("dtype"));
    if (dt < 0) throw Napi::TypeError::New(env, "kquant: dtype must be f32, f16 or bf16");
    job_.p = params(o);
    job_.dtype = dt;
    job_.rows = num(o, "rows");
    job_.cols = num(o, "cols");
    Bytes data = bytes(o.Get("data"), "data"), q, c, d, m;
    outputs(o, job_.rows, job_.cols, job_.p, &q, &c, &d, &m);
    if (data.size != (size_t)(job_.rows * job_.cols * dtype_size(dt)))
      throw Napi::RangeError::New(env, "kquant: data size does not match rows × cols");
    job_.data = data.data;
    job_.q = q.data;
    job_.codes = c.data;
    job_.d = d.data;
    job_.dmin = m.data;
    job_.metrics = o.Get("metrics").ToBoolean();
    read_metrics_from(o, &job_.metrics_from);
    has_check_ = read_check(o, job_.rows, job_.cols, &check_);
    backend_ = (int)num(o, "gpu");
    threads_ = (int)num(o, "threads");
    keep_ = Napi::Persistent(o);
    if (progress.IsFunction()) progress_ = Napi::Persistent(progress.As<Napi::Function>());
  }
};

Napi::Value Quantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "kqQuantize(options, onProgress?)");
  return queue_worker(env, new KqWorker(env, info[0].As<Napi::Object>(), info[1]));
}

KqTensor tensor(const Napi::Object& o) {
  KqTensor t{};
  t.p = params(o);
  t.rows = num(o, "rows");
  t.cols = num(o, "cols");
  Bytes q, c, d, m;
  outputs(o, t.rows, t.cols, t.p, &q, &c, &d, &m);
  t.q = q.data;
  t.codes = c.data;
  t.d = d.data;
  t.dmin = m.data;
  return t;
}

Napi::Value Dequantize(const Napi::CallbackInfo& info) {
  KqTensor t = tensor(info[0].As<Napi::Object>());
  Bytes out = bytes(info[1], "out");
  if (out.size != (size_t)(t.rows * t.cols) * 4)
    throw Napi::RangeError::New(info.Env(), "kqDequantize: bad output size");
  kq_dequantize(t, reinterpret_cast<float*>(out.data), 0);
  return info.Env().Undefined();
}

Napi::Value ErrorMetrics(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes data = bytes(info[0], "data");
  int dt = dtype_of(info[1]);
  KqTensor t = tensor(info[2].As<Napi::Object>());
  if (dt < 0 || data.size != (size_t)(t.rows * t.cols * dtype_size(dt)))
    throw Napi::RangeError::New(env, "kqErrorMetrics: reference size or dtype does not match");
  return metrics_object(env, kq_error_metrics(data.data, dt, t, 0));
}

Napi::Value Kernel(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), kq_select_kernel().name);
}

}  // namespace

void kq_register(Napi::Env env, Napi::Object exports) {
  exports.Set("kqQuantize", Napi::Function::New(env, Quantize, "kqQuantize"));
  exports.Set("kqDequantize", Napi::Function::New(env, Dequantize, "kqDequantize"));
  exports.Set("kqErrorMetrics", Napi::Function::New(env, ErrorMetrics, "kqErrorMetrics"));
  exports.Set("kqKernel", Napi::Function::New(env, Kernel, "kqKernel"));
}

}  // namespace apl
