// DirectFile: an append-only output file written with O_DIRECT from reused, aligned staging buffers (the NPZ
// writer's sink, server/src/formats/npz-writer.ts). Writing a new file through the page cache makes the
// kernel hand out fresh page-cache pages, which on a virtual machine the host backs on first touch: the
// copying core pays for it (docs/PERFORMANCE.md, "The NPZ write stage"). With O_DIRECT the device reads the
// staging buffers itself and the cores stay free for quantizing.
//
//   write(bytes): Promise    copies the bytes into the staging buffers on a libuv pool thread (the caller may
//                            reuse its buffer once it resolves); full buffers go to the file's own writer
//                            thread.
//   patch(at, bytes)         overwrites bytes already appended (a member's CRC-32 in its local header):
//                            in the staging buffer when still there, else queued after the earlier writes
//                            (read, modify, write of the aligned block under O_DIRECT).
//   close(): Promise         writes the rest (the last block padded to the alignment, then ftruncate to
//                            the exact size), closes; rejects with the first write error.
//   abort()                  stops the writer thread and closes the file (the caller removes it).
//   direct()                 whether O_DIRECT is in use: a file system that refuses it (EINVAL at open, or at
//                            the first write) gets ordinary writes of the same bytes instead.
//
// Errors are plain Errors with `code` (the errno name: ENOSPC, EIO, ...) and a message naming the file.
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <napi.h>

#include "direct_io.h"

namespace apl {

#if !defined(_WIN32)
namespace {

using direct_io::Core;
using direct_io::errno_name;

Napi::Error io_error(Napi::Env env, const std::string& path, const std::string& what, int e) {
  Napi::Error err =
      Napi::Error::New(env, path + ": " + what + " failed: " + strerror(e) + " (" + errno_name(e) + ")");
  err.Set("code", Napi::String::New(env, errno_name(e)));
  err.Set("errno", Napi::Number::New(env, -e));
  err.Set("path", Napi::String::New(env, path));
  return err;
}

class DirectFile;

/** write(bytes) and close() run here, off the main thread. */
class IoWorker : public Napi::AsyncWorker {
 public:
  IoWorker(Napi::Env env, Napi::Object self, Core* core, Napi::Value bytes, const uint8_t* p, size_t n,
           bool close)
      : Napi::AsyncWorker(env, "apl.io"),
        deferred_(Napi::Promise::Deferred::New(env)),
        core_(core),
        p_(p),
        n_(n),
        close_(close) {
    self_ = Napi::Persistent(self);
    if (!bytes.IsUndefined()) keep_ = Napi::Persistent(bytes.As<Napi::Object>());
  }
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override { e_ = close_ ? core_->finish() : core_->append(p_, n_); }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (e_ == ECANCELED)
      deferred_.Reject(io_error(env, core_->path(), "writing (aborted)", e_).Value());
    else if (e_)
      deferred_.Reject(
          io_error(env, core_->path(), core_->what().empty() ? "writing" : core_->what(), e_).Value());
    else
      deferred_.Resolve(env.Undefined());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference self_, keep_;
  Core* core_;
  const uint8_t* p_;
  size_t n_;
  bool close_;
  int e_ = 0;
};

class DirectFile : public Napi::ObjectWrap<DirectFile> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "DirectFile",
        {InstanceMethod("write", &DirectFile::Write), InstanceMethod("patch", &DirectFile::Patch),
         InstanceMethod("close", &DirectFile::Close), InstanceMethod("abort", &DirectFile::Abort),
         InstanceMethod("direct", &DirectFile::Direct)});
  }

  /** new DirectFile(path, { direct: boolean, bufferBytes: number, buffers: number }) */
  explicit DirectFile(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DirectFile>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString() || !info[1].IsObject())
      throw Napi::TypeError::New(env, "DirectFile(path, options): bad arguments");
    std::string path = info[0].As<Napi::String>();
    Napi::Object o = info[1].As<Napi::Object>();
    bool direct = o.Get("direct").ToBoolean();
    double bb =
        o.Get("bufferBytes").IsNumber() ? o.Get("bufferBytes").As<Napi::Number>().DoubleValue() : 8 << 20;
    double nb = o.Get("buffers").IsNumber() ? o.Get("buffers").As<Napi::Number>().DoubleValue() : 3;
    if (!(bb >= 4096 && bb <= (1 << 30)) || !(nb >= 2 && nb <= 16))
      throw Napi::RangeError::New(env, "DirectFile: bufferBytes must be 4 KiB..1 GiB and buffers 2..16");
    core_.reset(new Core(path, direct, (size_t)bb, (int)nb));
    if (int e = core_->open_errno()) {
      core_->abort();
      throw io_error(env, path, "creating", e);
    }
  }

 private:
  void check_open(Napi::Env env) {
    if (closed_) throw Napi::Error::New(env, core_->path() + ": the file is already closed");
  }

  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_open(env);
    if (!info[0].IsTypedArray())
      throw Napi::TypeError::New(env, "DirectFile.write: bytes must be a typed array");
    Napi::TypedArray t = info[0].As<Napi::TypedArray>();
    const uint8_t* p = static_cast<const uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
    auto* w = new IoWorker(env, Value(), core_.get(), info[0], p, t.ByteLength(), false);
    Napi::Promise pr = w->promise();
    w->Queue();
    return pr;
  }

  Napi::Value Patch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_open(env);
    if (!info[0].IsNumber() || !info[1].IsTypedArray())
      throw Napi::TypeError::New(env, "DirectFile.patch(at, bytes): bad arguments");
    double at = info[0].As<Napi::Number>().DoubleValue();
    Napi::TypedArray t = info[1].As<Napi::TypedArray>();
    const uint8_t* p = static_cast<const uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
    if (!(at >= 0) || !core_->patch((int64_t)at, p, t.ByteLength()))
      throw Napi::RangeError::New(env, core_->path() + ": patch outside the bytes written");
    return env.Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_open(env);
    closed_ = true;
    auto* w = new IoWorker(env, Value(), core_.get(), env.Undefined(), nullptr, 0, true);
    Napi::Promise pr = w->promise();
    w->Queue();
    return pr;
  }

  Napi::Value Abort(const Napi::CallbackInfo& info) {
    closed_ = true;
    core_->abort();
    return info.Env().Undefined();
  }

  Napi::Value Direct(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), core_->direct());
  }

  std::unique_ptr<Core> core_;
  bool closed_ = false;
};

}  // namespace

void register_io(Napi::Env env, Napi::Object exports) { exports.Set("DirectFile", DirectFile::Define(env)); }

#else

void register_io(Napi::Env, Napi::Object) {}  // Windows: the TypeScript writer (no O_DIRECT here)

#endif

}  // namespace apl
