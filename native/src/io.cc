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
//
// mapFile(path, offset, length): Promise<Uint8Array | null>   a read-only view of the file's bytes
//                            [offset, offset + length), mapped (mmap, MAP_POPULATE on a libuv pool thread: a
//                            file not in the page cache is read there). Convert's source rows with
//                            APL_CONVERT_MMAP=1 (server/src/convert/mapped-rows.ts: opt-in; on this VM a
//                            mapped page's first access costs about what copying it does). null where the
//                            runtime refuses external array buffers (Electron's V8 sandbox): the caller
//                            reads.
// unmapFile(view): boolean   unmaps at once (the view's buffer is detached: length 0 afterwards); false for a
//                            view that is not a mapping or is unmapped already. A mapping never unmapped is
//                            unmapped when its buffer is collected.
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <napi.h>
#include <sys/mman.h>

#include <unordered_map>

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

/** A mapping: its base and length (page-aligned), unmapped by unmapFile or by the buffer's finalizer. */
struct Mapping {
  void* base;
  size_t len;
};
// Live mappings by base address; touched on the main thread only (OnOK, unmapFile, finalizers).
std::unordered_map<void*, Mapping*>& live_maps() {
  static std::unordered_map<void*, Mapping*> m;
  return m;
}

void unmap(Mapping* m) {
  if (!m->base) return;
  live_maps().erase(m->base);
  munmap(m->base, m->len);
  m->base = nullptr;
}

class MapWorker : public Napi::AsyncWorker {
 public:
  MapWorker(Napi::Env env, std::string path, int64_t offset, size_t length)
      : Napi::AsyncWorker(env, "apl.map"),
        deferred_(Napi::Promise::Deferred::New(env)),
        path_(std::move(path)),
        offset_(offset),
        length_(length) {}
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      e_ = errno;
      return;
    }
    struct stat st;
    const int64_t page = sysconf(_SC_PAGESIZE);
    base_off_ = offset_ / page * page;
    len_ = length_ + (size_t)(offset_ - base_off_);
    if (fstat(fd, &st) != 0) {
      e_ = errno;
    } else if (offset_ + (int64_t)length_ > (int64_t)st.st_size) {
      e_ = EINVAL;  // past the end: the caller's read reports it
    } else if (length_ > 0) {
      void* p = mmap(nullptr, len_, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, (off_t)base_off_);
      if (p == MAP_FAILED)
        e_ = errno;
      else
        base_ = p;
    }
    ::close(fd);
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (e_) {
      deferred_.Reject(io_error(env, path_, "mapping", e_).Value());
      return;
    }
    if (!base_) {  // an empty range
      deferred_.Resolve(Napi::Uint8Array::New(env, 0));
      return;
    }
    auto* m = new Mapping{base_, len_};
    napi_value ab;
    napi_status s = napi_create_external_arraybuffer(
        env, base_, len_,
        [](napi_env, void*, void* hint) {
          auto* m = static_cast<Mapping*>(hint);
          unmap(m);
          delete m;
        },
        m, &ab);
    if (s != napi_ok) {  // external buffers refused: the caller reads the bytes instead
      munmap(base_, len_);
      delete m;
      deferred_.Resolve(env.Null());
      return;
    }
    live_maps()[base_] = m;
    Napi::ArrayBuffer buf(env, ab);
    deferred_.Resolve(Napi::Uint8Array::New(env, length_, buf, (size_t)(offset_ - base_off_)));
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string path_;
  int64_t offset_, base_off_ = 0;
  size_t length_, len_ = 0;
  void* base_ = nullptr;
  int e_ = 0;
};

Napi::Value MapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber())
    throw Napi::TypeError::New(env, "mapFile(path, offset, length): bad arguments");
  double off = info[1].As<Napi::Number>().DoubleValue();
  double len = info[2].As<Napi::Number>().DoubleValue();
  if (!(off >= 0 && len >= 0 && off + len <= 9007199254740991.0) || off != (int64_t)off ||
      len != (int64_t)len)
    throw Napi::RangeError::New(env, "mapFile: offset and length must be non-negative integers");
  auto* w = new MapWorker(env, info[0].As<Napi::String>(), (int64_t)off, (size_t)len);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

Napi::Value UnmapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) return Napi::Boolean::New(env, false);
  Napi::ArrayBuffer ab = info[0].As<Napi::TypedArray>().ArrayBuffer();
  auto it = live_maps().find(ab.Data());
  if (it == live_maps().end() || it->second->len != ab.ByteLength()) return Napi::Boolean::New(env, false);
  Mapping* m = it->second;
  ab.Detach();  // every view of it now has length 0: nothing reads the pages after they are gone
  unmap(m);     // the finalizer, when the buffer is collected, finds it unmapped and only frees m
  return Napi::Boolean::New(env, true);
}

}  // namespace

void register_io(Napi::Env env, Napi::Object exports) {
  exports.Set("DirectFile", DirectFile::Define(env));
  exports.Set("mapFile", Napi::Function::New(env, MapFile, "mapFile"));
  exports.Set("unmapFile", Napi::Function::New(env, UnmapFile, "unmapFile"));
}

#else

void register_io(Napi::Env, Napi::Object) {}  // Windows: the TypeScript writer (no O_DIRECT here)

#endif

}  // namespace apl
