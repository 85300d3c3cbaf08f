// N-API bindings of the inference engine: inferInfo(), inferLinear(w, x, n, threads, variant) and the
// InferModel class (forward / reset / dispose). native/forward.ts validates arguments first; the sizes are
// checked again here so a bad call can never read out of bounds.
#include "infer_addon.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine.h"
#include "infer/hugepages.h"
#include "infer/linear.h"
#include "infer/model.h"
#ifdef APL_HAVE_CUDA
#include "cuda/forward.h"
#include "cuda/infer.h"
#endif

namespace apl {
namespace {

using infer::Linear;

struct Keep {
  std::vector<Napi::ObjectReference> refs;
  void add(const Napi::Value& v) { refs.push_back(Napi::Persistent(v.As<Napi::Object>())); }
};

const uint8_t* bytes(const Napi::Value& v, size_t expect, const std::string& what, Keep* keep) {
  if (!v.IsTypedArray()) throw std::runtime_error(what + " must be a typed array");
  Napi::TypedArray t = v.As<Napi::TypedArray>();
  if (t.ByteLength() != expect)
    throw std::runtime_error(what + " has " + std::to_string(t.ByteLength()) + " bytes, expected " +
                             std::to_string(expect));
  if (keep) keep->add(v);
  return static_cast<const uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
}

int64_t num(const Napi::Object& o, const char* k) {
  Napi::Value v = o.Get(k);
  if (!v.IsNumber()) throw std::runtime_error(std::string(k) + " must be a number");
  return v.As<Napi::Number>().Int64Value();
}

std::string str(const Napi::Object& o, const char* k) {
  Napi::Value v = o.Get(k);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}

Linear linear_of(const Napi::Value& v, const std::string& what, Keep* keep, bool allow_kq = false) {
  if (!v.IsObject()) throw std::runtime_error(what + " must be a weight object");
  Napi::Object o = v.As<Napi::Object>();
  Linear w;
  w.rows = num(o, "rows");
  w.cols = num(o, "cols");
  if (w.rows < 1 || w.cols < 1) throw std::runtime_error(what + ": rows and cols must be positive");
  std::string kind = str(o, "kind");
  if (kind == "packed") {
    w.kind = 0;
    w.bits = (int)num(o, "bits");
    w.group = num(o, "groupSize");
    std::string sd = str(o, "scaleDtype");
    if (sd != "f16" && sd != "f32") throw std::runtime_error(what + ": scaleDtype must be f16 or f32");
    w.f16 = sd == "f16";
    const char* why = infer::check_linear(w);
    if (*why) throw std::runtime_error(what + ": " + why);
    size_t pb = (size_t)(w.rows * w.gpr() * (w.f16 ? 2 : 4));
    w.q = bytes(o.Get("q"), (size_t)(w.rows * w.row_bytes()), what + ".q", keep);
    w.scales = bytes(o.Get("scales"), pb, what + ".scales", keep);
    w.zeros = bytes(o.Get("zeros"), pb, what + ".zeros", keep);
  } else if (kind == "float") {
    w.kind = 1;
    std::string d = str(o, "dtype");
    w.dtype = d == "f32" ? kF32 : d == "f16" ? kF16 : d == "bf16" ? kBF16 : -1;
    if (w.dtype < 0) throw std::runtime_error(what + ": dtype must be f32, f16 or bf16");
    w.data = bytes(o.Get("data"), (size_t)(w.rows * w.cols * dtype_size(w.dtype)), what + ".data", keep);
  } else if (kind == "kquant") {  // the CPU kernels (infer/kquant_ref.h) and the GPU forward
    w.kind = 2;
    w.bits = (int)num(o, "bits");
    w.kq_group = (int)num(o, "group");
    w.group = w.kq_group;
    w.kq_super = (int)num(o, "super");
    w.kq_sbits = (int)num(o, "scaleBits");
    w.kq_mbits = (int)num(o, "minBits");
    const char* why = infer::check_linear(w);
    if (*why) throw std::runtime_error(what + ": " + why);
    size_t sb = (size_t)(w.rows * ((w.cols + w.kq_super - 1) / w.kq_super) * 2);
    w.q = bytes(o.Get("q"), (size_t)(w.rows * w.row_bytes()), what + ".q", keep);
    w.codes = bytes(o.Get("codes"), (size_t)(w.rows * ((w.gpr() * (w.kq_sbits + w.kq_mbits) + 7) / 8)),
                    what + ".codes", keep);
    w.kd = bytes(o.Get("d"), sb, what + ".d", keep);
    w.kdmin = bytes(o.Get("dmin"), sb, what + ".dmin", keep);
  } else {
    throw std::runtime_error(what + ": kind must be 'packed', 'float' or 'kquant'");
  }
  return w;
}

const infer::Kernel& kernel_of(const Napi::Value& v) {
  if (!v.IsString()) return infer::select_kernel();
  std::string name = v.As<Napi::String>().Utf8Value();
  const infer::Kernel* k = infer::kernel_by_name(name.c_str());
  if (!k) throw std::runtime_error("kernel variant '" + name + "' is not available on this CPU");
  return *k;
}

template <class F>
Napi::Value guarded(Napi::Env env, F f) {
  try {
    return f();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

Napi::Value InferInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  auto v = infer::available_kernels();
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); i++) a.Set((uint32_t)i, v[i]->name);
  o.Set("variants", a);
  o.Set("selected", infer::select_kernel().name);
  o.Set("threads", resolve_threads(0));
#ifdef APL_HAVE_CUDA
  o.Set("cuda", true);
#else
  o.Set("cuda", false);
#endif
  return o;
}

// inferLinear(w, x: Float32Array, n, threads, variant?: string, gpu?: boolean) → Float32Array (n × rows)
Napi::Value InferLinear(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Linear w = linear_of(info[0], "weight", nullptr);
    int64_t n = info[2].As<Napi::Number>().Int64Value();
    if (n < 0) throw std::runtime_error("n must be non-negative");
    const float* x = reinterpret_cast<const float*>(bytes(info[1], (size_t)(n * w.cols) * 4, "x", nullptr));
    int threads = resolve_threads(info[3].As<Napi::Number>().Int32Value());
    Napi::Float32Array y = Napi::Float32Array::New(env, (size_t)(n * w.rows));
    if (info.Length() > 5 && info[5].ToBoolean()) {
#ifdef APL_HAVE_CUDA
      std::string err;
      if (!cuda::infer_linear(w, x, n, y.Data(), &err)) throw std::runtime_error("CUDA: " + err);
      return y;
#else
      throw std::runtime_error("this build has no CUDA support");
#endif
    }
    const infer::Kernel& k = kernel_of(info[4]);
    infer::ActQ act;
    infer::linear(w, x, n, y.Data(), infer::shared_pool(threads), k, act);
    return y;
  });
}

// The bytes of a typed array argument as a span (throws when it is not one).
infer::ByteSpan span_of(const Napi::Value& v) {
  if (!v.IsTypedArray()) throw std::runtime_error("bytes must be a typed array");
  Napi::TypedArray t = v.As<Napi::TypedArray>();
  const uintptr_t p = (uintptr_t)t.ArrayBuffer().Data() + t.ByteOffset();
  return {p, p + t.ByteLength()};
}

// inferHugePages(bytes: Uint8Array) → the bytes of it now in 2 MiB pages (infer/hugepages.h; the same advice
// the model gives its weights, so the bench's bandwidth pass reads memory as the weights are read).
Napi::Value InferHugePages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const infer::ByteSpan s = span_of(info[0]);
    return Napi::Number::New(env, (double)infer::advise_huge_pages({s}));
  });
}

// inferArena(bytes: Uint8Array) → { offset, bytes, advised }: the weight arena's advice (infer/hugepages.h
// advise_arena), given before the first touch; native/weight-arena.ts places the weights from offset on.
Napi::Value InferArena(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const infer::ByteSpan s = span_of(info[0]);
    const infer::ArenaAdvice a = infer::advise_arena(s.lo, s.hi - s.lo);
    Napi::Object o = Napi::Object::New(env);
    o.Set("offset", Napi::Number::New(env, (double)a.offset));
    o.Set("bytes", Napi::Number::New(env, (double)a.bytes));
    o.Set("advised", Napi::Boolean::New(env, a.advised));
    return o;
  });
}

// inferArenaPopulate(bytes: Uint8Array) → Promise<number>: populate_back on a libuv pool thread (the arena's
// pages faulted in from the back while the loader reads into it from the front); the bytes faulted in.
class PopulateWorker : public Napi::AsyncWorker {
 public:
  PopulateWorker(Napi::Env env, Napi::TypedArray t)
      : Napi::AsyncWorker(env, "apl.arena"), deferred_(Napi::Promise::Deferred::New(env)) {
    keep_ = Napi::Persistent(t.As<Napi::Object>());  // the buffer stays alive until the pages are in
    lo_ = (uintptr_t)t.ArrayBuffer().Data() + t.ByteOffset();
    hi_ = lo_ + t.ByteLength();
  }
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override { done_ = infer::populate_back(lo_, hi_); }
  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), (double)done_)); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference keep_;
  uintptr_t lo_ = 0, hi_ = 0;
  int64_t done_ = 0;
};

Napi::Value InferArenaPopulate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsTypedArray()) throw std::runtime_error("bytes must be a typed array");
    auto* w = new PopulateWorker(env, info[0].As<Napi::TypedArray>());
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  });
}

// inferMemRead(bytes: Uint8Array, threads) → a checksum: reads every byte once over the pool (the bandwidth
// measurement of bench/decode.bench.ts).
Napi::Value InferMemRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsTypedArray()) throw std::runtime_error("bytes must be a typed array");
    Napi::TypedArray t = info[0].As<Napi::TypedArray>();
    const uint8_t* p = static_cast<const uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
    const int64_t n = (int64_t)t.ByteLength() / 8, chunk = 1 << 17;
    std::vector<uint64_t> sums((size_t)((n + chunk - 1) / chunk), 0);
    infer::shared_pool(resolve_threads(info[1].As<Napi::Number>().Int32Value()))
        .run((int64_t)sums.size(), [&](int64_t c) {
          uint64_t a[4] = {0, 0, 0, 0};
          int64_t hi = std::min(n, (c + 1) * chunk), i = c * chunk;
          for (; i + 4 <= hi; i += 4)
            for (int k = 0; k < 4; k++) {
              uint64_t v;
              memcpy(&v, p + (i + k) * 8, 8);
              a[k] += v;
            }
          for (; i < hi; i++) {
            uint64_t v;
            memcpy(&v, p + i * 8, 8);
            a[0] += v;
          }
          sums[(size_t)c] = a[0] + a[1] + a[2] + a[3];
        });
    uint64_t s = 0;
    for (uint64_t v : sums) s += v;
    return Napi::Number::New(env, (double)(s & 0xffffffffu));
  });
}

class InferModel : public Napi::ObjectWrap<InferModel> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "InferModel",
        {InstanceMethod("forward", &InferModel::Forward), InstanceMethod("reset", &InferModel::Reset),
         InstanceMethod("dispose", &InferModel::Dispose),
         InstanceMethod("constructionError", &InferModel::ConstructionError),
         InstanceMethod("info", &InferModel::Info)});
  }

  // new InferModel(config, weights, invFreq: Float32Array, threads, variant?, gpu?: boolean)
  InferModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<InferModel>(info) {
    Napi::Env env = info.Env();
    try {
      Napi::Object c = info[0].As<Napi::Object>();
      Napi::Object w = info[1].As<Napi::Object>();
      const bool gpu = info.Length() > 5 && info[5].ToBoolean();
      infer::ModelConfig mc;
      mc.hidden = num(c, "hiddenSize");
      mc.inter = num(c, "intermediateSize");
      mc.layers = num(c, "numLayers");
      mc.heads = num(c, "numHeads");
      mc.kv_heads = num(c, "numKvHeads");
      mc.head_dim = num(c, "headDim");
      mc.vocab = num(c, "vocabSize");
      mc.eps = (float)c.Get("rmsNormEps").As<Napi::Number>().DoubleValue();
      mc.gelu_tanh = str(c, "hiddenAct") == "gelu_tanh";
      mc.embed_scale = c.Get("embedScale").ToBoolean();
      mc.norm_add_one = c.Get("normAddOne").ToBoolean();
      Napi::Value sw = c.Get("slidingWindow");
      mc.sliding_window = sw.IsNumber() ? sw.As<Napi::Number>().Int64Value() : 0;
      mc.context = num(c, "contextLength");
      mc.kv_f16 = str(c, "kvCache") != "f32";  // float16 unless asked for float32
      mc.rope_mscale = (float)c.Get("ropeMscale").As<Napi::Number>().DoubleValue();
      if (!info[2].IsTypedArray()) throw std::runtime_error("invFreq must be a Float32Array");
      Napi::Float32Array inv = info[2].As<Napi::Float32Array>();
      mc.inv_freq.assign(inv.Data(), inv.Data() + inv.ElementLength());
      const int64_t H = mc.hidden;
      infer::ModelWeights mw;
      mw.embed = linear_of(w.Get("embed"), "embed", &keep_, gpu);
      mw.lm_head = linear_of(w.Get("lmHead"), "lmHead", &keep_, gpu);
      mw.final_norm =
          reinterpret_cast<const float*>(bytes(w.Get("finalNorm"), (size_t)H * 4, "finalNorm", &keep_));
      Napi::Value lv = w.Get("layers");
      if (!lv.IsArray()) throw std::runtime_error("weights.layers must be an array");
      Napi::Array layers = lv.As<Napi::Array>();
      for (uint32_t i = 0; i < layers.Length(); i++) {
        Napi::Object L = layers.Get(i).As<Napi::Object>();
        std::string p = "layers[" + std::to_string(i) + "].";
        infer::LayerWeights lw;
        lw.in_norm =
            reinterpret_cast<const float*>(bytes(L.Get("inputNorm"), (size_t)H * 4, p + "inputNorm", &keep_));
        lw.post_norm = reinterpret_cast<const float*>(
            bytes(L.Get("postAttnNorm"), (size_t)H * 4, p + "postAttnNorm", &keep_));
        lw.q = linear_of(L.Get("q"), p + "q", &keep_, gpu);
        lw.k = linear_of(L.Get("k"), p + "k", &keep_, gpu);
        lw.v = linear_of(L.Get("v"), p + "v", &keep_, gpu);
        lw.o = linear_of(L.Get("o"), p + "o", &keep_, gpu);
        lw.gate = linear_of(L.Get("gate"), p + "gate", &keep_, gpu);
        lw.up = linear_of(L.Get("up"), p + "up", &keep_, gpu);
        lw.down = linear_of(L.Get("down"), p + "down", &keep_, gpu);
        mw.layers.push_back(lw);
      }
      if (gpu) {
#ifdef APL_HAVE_CUDA
        std::string err;
        gpu_.reset(cuda::GpuModel::create(mc, mw, &err));
        if (!gpu_) throw std::runtime_error("backend 'gpu': " + err);
        keep_.refs.clear();  // the weights live on the device now
        return;
#else
        throw std::runtime_error(
            "backend 'gpu': this build has no CUDA support (nvcc was not found when the addon was built)");
#endif
      }
      int threads = resolve_threads(info[3].As<Napi::Number>().Int32Value());
      model_.reset(new infer::Model(mc, mw, threads, kernel_of(info[4])));
    } catch (const Napi::Error& e) {
      fail(e.Message());
    } catch (const std::exception& e) {
      fail(e.what());
    }
  }

 private:
  infer::Model& model(Napi::Env env) {
    if (!model_) throw Napi::Error::New(env, "the model was disposed");
    return *model_;
  }
  bool on_gpu() const {
#ifdef APL_HAVE_CUDA
    return gpu_ != nullptr;
#else
    return false;
#endif
  }

  // forward(tokens: Int32Array, pos, allLogits) → Float32Array
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (on_gpu()) return ForwardGpu(info);
    infer::Model& m = model(env);
    return guarded(env, [&]() -> Napi::Value {
      if (!info[0].IsTypedArray()) throw std::runtime_error("tokens must be an Int32Array");
      Napi::Int32Array t = info[0].As<Napi::Int32Array>();
      int64_t n = (int64_t)t.ElementLength();
      int64_t pos = info[1].As<Napi::Number>().Int64Value();
      bool all = info[2].ToBoolean();
      int64_t vocab = info[3].As<Napi::Number>().Int64Value();
      Napi::Float32Array out = Napi::Float32Array::New(env, (size_t)((all ? n : 1) * vocab));
      m.forward(t.Data(), n, pos, all, out.Data());
      return out;
    });
  }
  Napi::Value ForwardGpu(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
#ifdef APL_HAVE_CUDA
      if (!info[0].IsTypedArray()) throw std::runtime_error("tokens must be an Int32Array");
      Napi::Int32Array t = info[0].As<Napi::Int32Array>();
      int64_t n = (int64_t)t.ElementLength();
      int64_t pos = info[1].As<Napi::Number>().Int64Value();
      bool all = info[2].ToBoolean();
      int64_t vocab = info[3].As<Napi::Number>().Int64Value();
      Napi::Float32Array out = Napi::Float32Array::New(env, (size_t)((all ? n : 1) * vocab));
      std::string err;
      if (!gpu_->forward(t.Data(), n, pos, all, out.Data(), &err)) throw std::runtime_error(err);
      return out;
#else
      throw std::runtime_error("no GPU model");
#endif
    });
  }
  Napi::Value Reset(const Napi::CallbackInfo& info) {
#ifdef APL_HAVE_CUDA
    if (gpu_) {
      gpu_->reset();
      return info.Env().Undefined();
    }
#endif
    model(info.Env()).reset();
    return info.Env().Undefined();
  }
  // Why construction failed ('' when it did not). The constructor never throws: a C++ exception out of an
  // ObjectWrap constructor leaves V8 a finalizer for the unwound instance, and a later GC may run it on freed
  // memory (a rare, timing-dependent crash). forward.ts reads this right after `new` and throws in JavaScript
  // instead.
  Napi::Value ConstructionError(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), error_);
  }
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
#ifdef APL_HAVE_CUDA
    gpu_.reset();
#endif
    model_.reset();
    keep_.refs.clear();
    return info.Env().Undefined();
  }
  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
#ifdef APL_HAVE_CUDA
    if (gpu_) {
      o.Set("backend", gpu_->name());
      o.Set("threads", 1);
      o.Set("kvBytes", (double)gpu_->kv_bytes());
      o.Set("length", (double)gpu_->length());
      return o;
    }
#endif
    infer::Model& m = model(env);
    o.Set("backend", std::string("cpu-") + m.kernel().name);
    o.Set("threads", m.threads());
    o.Set("kvBytes", (double)m.kv_bytes());
    o.Set("length", (double)m.length());
    return o;
  }

  void fail(const std::string& why) {
    error_ = why.empty() ? std::string("the model could not be created") : why;
#ifdef APL_HAVE_CUDA
    gpu_.reset();
#endif
    model_.reset();
    keep_.refs.clear();
  }

  std::string error_;
  std::unique_ptr<infer::Model> model_;
#ifdef APL_HAVE_CUDA
  std::unique_ptr<cuda::GpuModel> gpu_;
#endif
  Keep keep_;
};

}  // namespace

void register_infer(Napi::Env env, Napi::Object exports) {
  exports.Set("inferInfo", Napi::Function::New(env, InferInfo, "inferInfo"));
  exports.Set("inferLinear", Napi::Function::New(env, InferLinear, "inferLinear"));
  exports.Set("inferArena", Napi::Function::New(env, InferArena, "inferArena"));
  exports.Set("inferArenaPopulate", Napi::Function::New(env, InferArenaPopulate, "inferArenaPopulate"));
  exports.Set("inferHugePages", Napi::Function::New(env, InferHugePages, "inferHugePages"));
  exports.Set("inferMemRead", Napi::Function::New(env, InferMemRead, "inferMemRead"));
  exports.Set("InferModel", InferModel::Define(env));
}

}  // namespace apl
