// N-API bindings. native/index.ts validates every argument and passes one plain options object; here it is
// copied into a QuantJob and run by an async worker that never touches N-API off the main thread. Progress
// goes through AsyncProgressWorker; cancellation sets an atomic flag the CPU threads poll between chunks of
// rows.
#ifndef NAPI_VERSION
#define NAPI_VERSION 8  // one build loads in Node 20, Node 24 and Electron
#endif
#include <napi.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "crc32.h"
#include "engine.h"
#include "infer_addon.h"
#include "io.h"
#include "kquant_addon.h"
#include "quant_worker.h"
#include "stats.h"

namespace apl {

bool read_check(const Napi::Object& o, int64_t rows, int64_t cols, CheckJob* out) {
  Napi::Value cv = o.Get("check");
  if (!cv.IsObject()) return false;
  Napi::Object c = cv.As<Napi::Object>();
  Napi::Value xv = c.Get("x"), rv = c.Get("rows");
  if (!xv.IsTypedArray() || !rv.IsTypedArray())
    throw Napi::TypeError::New(o.Env(), "check.x and check.rows must be typed arrays");
  Napi::TypedArray xt = xv.As<Napi::TypedArray>(), rt = rv.As<Napi::TypedArray>();
  const uint8_t* x = static_cast<const uint8_t*>(xt.ArrayBuffer().Data()) + xt.ByteOffset();
  const uint8_t* r = static_cast<const uint8_t*>(rt.ArrayBuffer().Data()) + rt.ByteOffset();
  size_t xs = xt.ByteLength(), rs = rt.ByteLength();
  out->n = c.Get("n").As<Napi::Number>().Int64Value();
  out->m = (int64_t)(rs / 4);
  out->x = reinterpret_cast<const float*>(x);
  out->rows = reinterpret_cast<const int32_t*>(r);
  Napi::Value fv = c.Get("fSqFrom"), yv = c.Get("y"), qv = c.Get("yq");
  out->f_sq_from = fv.IsNumber() ? fv.As<Napi::Number>().DoubleValue() : 0;
  bool ok = out->n >= 0 && xs == (size_t)(out->n * cols) * 4 && rs % 4 == 0 && ((uintptr_t)x & 3) == 0 &&
            ((uintptr_t)r & 3) == 0;
  // The products' outputs: a Float64Array and a Float32Array of n × m values, both or neither.
  if (ok && (yv.IsTypedArray() || qv.IsTypedArray())) {
    ok = yv.IsTypedArray() && qv.IsTypedArray() &&
         yv.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array &&
         qv.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array &&
         yv.As<Napi::TypedArray>().ElementLength() == (size_t)(out->n * out->m) &&
         qv.As<Napi::TypedArray>().ElementLength() == (size_t)(out->n * out->m);
    if (ok) {
      Napi::TypedArray yt = yv.As<Napi::TypedArray>(), qt = qv.As<Napi::TypedArray>();
      out->y_out =
          reinterpret_cast<double*>(static_cast<uint8_t*>(yt.ArrayBuffer().Data()) + yt.ByteOffset());
      out->yq_out =
          reinterpret_cast<float*>(static_cast<uint8_t*>(qt.ArrayBuffer().Data()) + qt.ByteOffset());
    }
  }
  for (int64_t i = 0; ok && i < out->m; i++)
    ok = out->rows[i] >= 0 && out->rows[i] < rows && (i == 0 || out->rows[i] > out->rows[i - 1]);
  if (!ok)
    throw Napi::RangeError::New(o.Env(), "quantize: inconsistent check (call it through native/index.ts)");
  return true;
}

Napi::Object check_object(Napi::Env env, const CheckOut& k) {
  Napi::Object c = Napi::Object::New(env);
  c.Set("fSq", k.f_sq);
  c.Set("ySq", k.y_sq);
  c.Set("dySq", k.dy_sq);
  return c;
}

}  // namespace apl

namespace {

using apl::Control;
using apl::QuantJob;
using apl::QuantStatus;

int dtype_code(const std::string& s) {
  if (s == "f32") return apl::kF32;
  if (s == "f16") return apl::kF16;
  if (s == "bf16") return apl::kBF16;
  return -1;
}

struct Bytes {
  uint8_t* data;
  size_t size;
};
Bytes bytes_of(const Napi::Value& v, const char* what) {
  if (!v.IsTypedArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a typed array");
  Napi::TypedArray t = v.As<Napi::TypedArray>();
  uint8_t* base = static_cast<uint8_t*>(t.ArrayBuffer().Data());
  return Bytes{base + t.ByteOffset(), t.ByteLength()};
}

using apl::metrics_object;

class QuantWorker : public apl::EngineWorker<QuantJob, &apl::quantize, true> {
 public:
  QuantWorker(Napi::Env env, const Napi::Object& o, Napi::Value progress)
      : EngineWorker(env, "apl.quantize") {
    int dt = dtype_code(o.Get("dtype").As<Napi::String>().Utf8Value());
    if (dt < 0) throw Napi::TypeError::New(env, "dtype must be f32, f16 or bf16");
    Bytes data = bytes_of(o.Get("data"), "data");
    Bytes q = bytes_of(o.Get("q"), "q");
    Bytes s = bytes_of(o.Get("scales"), "scales");
    Bytes z = bytes_of(o.Get("zeros"), "zeros");
    job_.data = data.data;
    job_.dtype = dt;
    job_.rows = o.Get("rows").As<Napi::Number>().Int64Value();
    job_.cols = o.Get("cols").As<Napi::Number>().Int64Value();
    job_.bits = o.Get("bits").As<Napi::Number>().Int32Value();
    job_.group = o.Get("groupSize").As<Napi::Number>().Int64Value();
    job_.symmetric = o.Get("symmetric").ToBoolean();
    job_.optimized = o.Get("optimized").ToBoolean();
    job_.f16 = o.Get("f16").ToBoolean();
    job_.metrics = o.Get("metrics").ToBoolean();
    apl::read_metrics_from(o, &job_.metrics_from);
    job_.q = q.data;
    job_.scales = s.data;
    job_.zeros = z.data;
    backend_ = o.Get("gpu").As<Napi::Number>().Int32Value();
    threads_ = o.Get("threads").As<Napi::Number>().Int32Value();
    // The same checks as index.ts, so a bad call can never read or write out of bounds.
    int64_t gpr = apl::groups_per_row(job_.cols, job_.group);
    size_t pb = (size_t)(job_.rows * gpr * (job_.f16 ? 2 : 4));
    bool bits_ok = job_.bits == 1 || job_.bits == 2 || job_.bits == 4 || job_.bits == 8;
    if (!bits_ok || job_.rows < 0 || job_.cols < 1 || job_.group < 1 ||
        data.size != (size_t)(job_.rows * job_.cols * apl::dtype_size(dt)) ||
        q.size != (size_t)(job_.rows * apl::packed_row_bytes(job_.cols, job_.bits)) || s.size != pb ||
        z.size != pb)
      throw Napi::RangeError::New(env, "quantize: inconsistent sizes (call it through native/index.ts)");
    has_check_ = apl::read_check(o, job_.rows, job_.cols, &check_);
    keep_ = Napi::Persistent(o);
    if (progress.IsFunction()) progress_ = Napi::Persistent(progress.As<Napi::Function>());
  }
};

Napi::Value Quantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "quantize(options, onProgress?)");
  return apl::queue_worker(env, new QuantWorker(env, info[0].As<Napi::Object>(), info[1]));
}

apl::QTensor qtensor(const Napi::Object& w) {
  Napi::Env env = w.Env();
  apl::QTensor t{};
  Bytes q = bytes_of(w.Get("q"), "q"), s = bytes_of(w.Get("scales"), "scales"),
        z = bytes_of(w.Get("zeros"), "zeros");
  t.q = q.data;
  t.scales = s.data;
  t.zeros = z.data;
  t.rows = w.Get("rows").As<Napi::Number>().Int64Value();
  t.cols = w.Get("cols").As<Napi::Number>().Int64Value();
  t.bits = w.Get("bits").As<Napi::Number>().Int32Value();
  t.group = w.Get("groupSize").As<Napi::Number>().Int64Value();
  t.f16 = w.Get("f16").ToBoolean();
  int64_t gpr = t.group > 0 && t.cols > 0 ? apl::groups_per_row(t.cols, t.group) : 0;
  size_t pb = (size_t)(t.rows * gpr * (t.f16 ? 2 : 4));
  bool bits_ok = t.bits == 1 || t.bits == 2 || t.bits == 4 || t.bits == 8;
  if (!bits_ok || t.rows < 0 || t.cols < 1 || t.group < 1 ||
      q.size != (size_t)(t.rows * apl::packed_row_bytes(t.cols, t.bits)) || s.size != pb || z.size != pb)
    throw Napi::RangeError::New(env, "quantized tensor: inconsistent sizes");
  return t;
}

Napi::Value Dequantize(const Napi::CallbackInfo& info) {
  apl::QTensor t = qtensor(info[0].As<Napi::Object>());
  Bytes out = bytes_of(info[1], "out");
  if (out.size != (size_t)(t.rows * t.cols) * 4)
    throw Napi::RangeError::New(info.Env(), "dequantize: bad output size");
  apl::dequantize(t, reinterpret_cast<float*>(out.data), 0);
  return info.Env().Undefined();
}

Napi::Value ErrorMetrics(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes data = bytes_of(info[0], "data");
  int dt = dtype_code(info[1].As<Napi::String>().Utf8Value());
  apl::QTensor t = qtensor(info[2].As<Napi::Object>());
  if (dt < 0 || data.size != (size_t)(t.rows * t.cols * apl::dtype_size(dt)))
    throw Napi::RangeError::New(env, "errorMetrics: reference size or dtype does not match");
  return metrics_object(env, apl::error_metrics(data.data, dt, t, 0));
}

/** compareMetrics(x: Float32Array, w: Float32Array) → metrics of w against the reference x. */
Napi::Value CompareMetrics(const Napi::CallbackInfo& info) {
  Bytes x = bytes_of(info[0], "x");
  Bytes w = bytes_of(info[1], "w");
  if (x.size != w.size || (x.size & 3) || ((uintptr_t)x.data & 3) || ((uintptr_t)w.data & 3))
    throw Napi::RangeError::New(info.Env(), "compareMetrics: x and w must be Float32Arrays of one length");
  return metrics_object(info.Env(),
                        apl::compare_metrics(reinterpret_cast<const float*>(x.data),
                                             reinterpret_cast<const float*>(w.data), (int64_t)x.size / 4));
}

Napi::Value QMatmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes x = bytes_of(info[0], "x");
  int64_t n = info[1].As<Napi::Number>().Int64Value();
  apl::QTensor t = qtensor(info[2].As<Napi::Object>());
  Bytes y = bytes_of(info[3], "out");
  if (n < 0 || x.size != (size_t)(n * t.cols) * 4 || y.size != (size_t)(n * t.rows) * 4)
    throw Napi::RangeError::New(env, "qmatmul: bad sizes");
  apl::qmatmul(reinterpret_cast<const float*>(x.data), n, t, reinterpret_cast<float*>(y.data), 0);
  return env.Undefined();
}

// Element decoding and statistics (stats.h). dtype is the ElemType code; native/index.ts checks sizes first.
int elem_code(const Napi::CallbackInfo& info, int k, const char* fn) {
  int t = info[k].As<Napi::Number>().Int32Value();
  if (apl::elem_size(t) == 0) throw Napi::TypeError::New(info.Env(), std::string(fn) + ": bad dtype code");
  return t;
}

/** decode(bytes, dtype, littleEndian, out: Float64Array, outOffset) → elements decoded. */
Napi::Value Decode(const Napi::CallbackInfo& info) {
  Bytes b = bytes_of(info[0], "bytes");
  int t = elem_code(info, 1, "decode");
  bool le = info[2].ToBoolean();
  Bytes out = bytes_of(info[3], "out");
  int64_t off = info[4].As<Napi::Number>().Int64Value();
  int64_t n = (int64_t)b.size / apl::elem_size(t);
  if (off < 0 || (size_t)((off + n) * 8) > out.size)
    throw Napi::RangeError::New(info.Env(), "decode: output too small");
  apl::decode_elems(b.data, n, t, le, reinterpret_cast<double*>(out.data) + off);
  return Napi::Number::New(info.Env(), (double)n);
}

/** statsAdd(state: Float64Array(7), bytes, dtype, littleEndian): adds one chunk to the state in place. */
Napi::Value StatsAdd(const Napi::CallbackInfo& info) {
  Bytes st = bytes_of(info[0], "state");
  Bytes b = bytes_of(info[1], "bytes");
  int t = elem_code(info, 2, "statsAdd");
  if (st.size != apl::kStatsLen * 8 || ((uintptr_t)st.data & 7))
    throw Napi::RangeError::New(info.Env(), "statsAdd: state must be a Float64Array(7)");
  apl::stats_add(reinterpret_cast<double*>(st.data), b.data, (int64_t)b.size / apl::elem_size(t), t,
                 info[3].ToBoolean());
  return info.Env().Undefined();
}

/** histogram(bytes, dtype, littleEndian, min, max, counts: Float64Array(bins)). */
Napi::Value Histogram(const Napi::CallbackInfo& info) {
  Bytes b = bytes_of(info[0], "bytes");
  int t = elem_code(info, 1, "histogram");
  Bytes c = bytes_of(info[5], "counts");
  int bins = (int)(c.size / 8);
  if (bins < 1 || ((uintptr_t)c.data & 7))
    throw Napi::RangeError::New(info.Env(), "histogram: bad counts array");
  apl::histogram(b.data, (int64_t)b.size / apl::elem_size(t), t, info[2].ToBoolean(),
                 info[3].As<Napi::Number>().DoubleValue(), info[4].As<Napi::Number>().DoubleValue(), bins,
                 reinterpret_cast<double*>(c.data));
  return info.Env().Undefined();
}

/**
 * crc32(bytes, crc): zlib's crc32 continuing from crc, with PCLMULQDQ (crc32.h); undefined where the CPU
 * lacks it (the caller's zlib is as fast there).
 */
Napi::Value Crc32(const Napi::CallbackInfo& info) {
  if (!apl::crc32_fast()) return info.Env().Undefined();
  Bytes b = bytes_of(info[0], "bytes");
  const uint32_t crc = info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 0;
  return Napi::Number::New(info.Env(), apl::crc32(crc, b.data, b.size));
}

Napi::Value EngineInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("native", true);
  o.Set("simd", apl::select_kernel().name);
  o.Set("cpuFeatures", apl::cpu_features());
  o.Set("threads", apl::resolve_threads(0));
  apl::GpuInfo g = apl::gpu_info();
  Napi::Object gpu = Napi::Object::New(env);
  gpu.Set("available", g.available);
  if (g.available)
    gpu.Set("name", g.name);
  else
    gpu.Set("reason", g.reason);
  o.Set("gpu", gpu);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("quantize", Napi::Function::New(env, Quantize, "quantize"));
  exports.Set("dequantize", Napi::Function::New(env, Dequantize, "dequantize"));
  exports.Set("errorMetrics", Napi::Function::New(env, ErrorMetrics, "errorMetrics"));
  exports.Set("compareMetrics", Napi::Function::New(env, CompareMetrics, "compareMetrics"));
  exports.Set("qmatmul", Napi::Function::New(env, QMatmul, "qmatmul"));
  exports.Set("decode", Napi::Function::New(env, Decode, "decode"));
  exports.Set("statsAdd", Napi::Function::New(env, StatsAdd, "statsAdd"));
  exports.Set("histogram", Napi::Function::New(env, Histogram, "histogram"));
  exports.Set("engineInfo", Napi::Function::New(env, EngineInfo, "engineInfo"));
  exports.Set("crc32", Napi::Function::New(env, Crc32, "crc32"));
  apl::kq_register(env, exports);
  apl::register_infer(env, exports);
  apl::register_io(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(apl_quant, Init)
