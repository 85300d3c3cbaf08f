// DirectFile: an append-only output file written with O_DIRECT from reused, aligned staging buffers (the NPZ
// writer's sink, server/src/formats/npz-writer.ts). Writing a new file through the page cache makes the
// kernel hand out fresh page-cache pages, which on a virtual machine the host backs on first touch: the
// copying core pays for it (docs/PERFORMANCE.md, "The NPZ write stage"). With O_DIRECT the device reads the
// staging buffers itself and the cores stay free for quantizing.
//
//   write(bytes): Promise    copies the bytes into the staging buffers on a libuv pool thread (the caller may
//                            reuse its buffer once it resolves); full buffers go to the file's own writer
//                            thread.
//   patch(at, bytes)         overwrites bytes already appended (a member's CRC-32 in its local header): in
//   the
//                            staging buffer when still there, else queued after the earlier writes (read,
//                            modify, write of the aligned block under O_DIRECT).
//   close(): Promise         writes the rest (the last block padded to the alignment, then ftruncate to the
//   exact
//                            size), closes; rejects with the first write error.
//   abort()                  stops the writer thread and closes the file (the caller removes it).
//   direct()                 whether O_DIRECT is in use: a file system that refuses it (EINVAL at open, or at
//                            the first write) gets ordinary writes of the same bytes instead.
//
// Errors are plain Errors with `code` (the errno name: ENOSPC, EIO, ...) and a message naming the file.
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <napi.h>

#if !defined(_WIN32)
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#endif

namespace apl {

#if !defined(_WIN32)
namespace {

// O_DIRECT offsets, lengths and addresses: a multiple of the logical block size (512 or 4096).
constexpr size_t kAlign = 4096;
constexpr size_t kHuge = (size_t)2 << 20;

const char* errno_name(int e) {
  static const struct {
    int e;
    const char* name;
  } names[] = {{ENOSPC, "ENOSPC"}, {EIO, "EIO"},
               {EINVAL, "EINVAL"}, {EACCES, "EACCES"},
               {EPERM, "EPERM"},   {EROFS, "EROFS"},
               {ENOENT, "ENOENT"}, {ENOTDIR, "ENOTDIR"},
               {EISDIR, "EISDIR"}, {EDQUOT, "EDQUOT"},
               {EFBIG, "EFBIG"},   {EBADF, "EBADF"},
               {EEXIST, "EEXIST"}, {EMFILE, "EMFILE"},
               {ENFILE, "ENFILE"}, {ENAMETOOLONG, "ENAMETOOLONG"},
               {ENOMEM, "ENOMEM"}, {ECANCELED, "ECANCELED"}};
  for (const auto& n : names)
    if (n.e == e) return n.name;
  return "EIO";
}

struct Op {
  int buf = -1;                // a staging buffer to write (index), or -1: a patch
  int64_t at = 0;              // file offset
  size_t len = 0;              // bytes of the buffer that belong to the file
  std::vector<uint8_t> bytes;  // the patch
};

class Core {
 public:
  Core(std::string path, bool want_direct, size_t buf_bytes, int nbufs) : path_(std::move(path)) {
    buf_bytes_ = (buf_bytes + kAlign - 1) / kAlign * kAlign;
    if (buf_bytes_ < kAlign) buf_bytes_ = kAlign;
    int flags = O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC;
#ifdef O_DIRECT
    // APL_IO_REFUSE_DIRECT (tests): 1 answers O_DIRECT at open with EINVAL, `write` the first O_DIRECT write.
    const char* refuse = getenv("APL_IO_REFUSE_DIRECT");
    refuse_write_ = refuse && strcmp(refuse, "write") == 0;
    if (want_direct && (!getenv_flag("APL_IO_REFUSE_DIRECT") || refuse_write_)) {
      fd_ = ::open(path_.c_str(), flags | O_DIRECT, 0666);
      direct_ = fd_ >= 0;
    } else if (want_direct) {
      errno = EINVAL;  // test hook: as a file system that refuses O_DIRECT answers
    }
    if (fd_ < 0 && (!want_direct || errno == EINVAL)) fd_ = ::open(path_.c_str(), flags, 0666);
#else
    (void)want_direct;
    fd_ = ::open(path_.c_str(), flags, 0666);
#endif
    if (fd_ < 0) {
      open_errno_ = errno;
      return;
    }
    for (int i = 0; i < nbufs; i++) {
      void* p = nullptr;
      size_t al =
          buf_bytes_ >= kHuge ? kHuge : kAlign;  // 2 MiB-aligned: huge pages where the system gives them
      if (posix_memalign(&p, al, buf_bytes_) != 0) {
        open_errno_ = ENOMEM;
        return;
      }
      bufs_.push_back(static_cast<uint8_t*>(p));
      free_.push_back(i);
    }
    if (posix_memalign(&scratch_, kAlign, 2 * kAlign) != 0) {
      open_errno_ = ENOMEM;
      return;
    }
    thread_ = std::thread([this] { run(); });
  }

  ~Core() {
    abort();
    for (uint8_t* b : bufs_) free(b);
    free(scratch_);
  }

  int open_errno() const { return open_errno_; }
  const std::string& path() const { return path_; }
  bool direct() {
    std::lock_guard<std::mutex> g(mu_);
    return direct_;
  }

  /** Appends n bytes (a pool thread): waits for a free staging buffer when all are queued. 0 or an errno. */
  int append(const uint8_t* src, size_t n) {
    std::unique_lock<std::mutex> lk(mu_);
    while (n > 0) {
      if (err_) return err_;
      if (stopping_) return ECANCELED;
      if (fill_ < 0) {
        cv_.wait(lk, [&] { return !free_.empty() || err_ || stopping_; });
        if (err_ || stopping_) continue;
        fill_ = free_.back();
        free_.pop_back();
        fill_len_ = 0;
      }
      size_t k = std::min(n, buf_bytes_ - fill_len_);
      uint8_t* dst = bufs_[fill_] + fill_len_;
      lk.unlock();  // the copy runs unlocked: only this thread touches the fill buffer's free part
      memcpy(dst, src, k);
      lk.lock();
      fill_len_ += k;
      src += k;
      n -= k;
      if (fill_len_ == buf_bytes_) submit_locked(buf_bytes_);
    }
    return err_;
  }

  /** Overwrites bytes already appended; false when they lie past the end. Runs on the main thread. */
  bool patch(int64_t at, const uint8_t* b, size_t n) {
    std::lock_guard<std::mutex> g(mu_);
    if (at < 0 || at + (int64_t)n > total_ + (int64_t)fill_len_) return false;
    int64_t mem0 = total_;  // where the fill buffer starts in the file
    if (at < mem0) {
      size_t k = (size_t)std::min<int64_t>((int64_t)n, mem0 - at);
      Op op;
      op.at = at;
      op.bytes.assign(b, b + k);
      queue_.push_back(std::move(op));
      cv_.notify_all();
      at += k;
      b += k;
      n -= k;
    }
    if (n) memcpy(bufs_[fill_] + (at - mem0), b, n);
    return true;
  }

  /** Writes the rest, waits for the writer thread, truncates to the exact size and closes: 0 or an errno. */
  int finish() {
    std::unique_lock<std::mutex> lk(mu_);
    int64_t size = total_ + (int64_t)fill_len_;
    if (fill_ >= 0 && fill_len_ > 0 && !err_) {
      size_t padded = (fill_len_ + kAlign - 1) / kAlign * kAlign;
      memset(bufs_[fill_] + fill_len_, 0, padded - fill_len_);
      submit_locked(fill_len_);
    }
    cv_.wait(lk, [&] { return (queue_.empty() && !busy_) || stopping_; });
    int e = err_;
    lk.unlock();
    stop();
    std::lock_guard<std::mutex> g(fd_mu_);
    if (fd_ < 0) return e ? e : ECANCELED;  // aborted meanwhile
    if (!e && ::ftruncate(fd_, size) != 0) e = errno, what_ = "truncating";
    if (::close(fd_) != 0 && !e) e = errno, what_ = "closing";
    fd_ = -1;
    return e;
  }

  /** Stops the writer thread (after the write in progress) and closes the file. */
  void abort() {
    stop();
    std::lock_guard<std::mutex> g(fd_mu_);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  int error() {
    std::lock_guard<std::mutex> g(mu_);
    return err_;
  }
  std::string what() {
    std::lock_guard<std::mutex> g(mu_);
    return what_;
  }

 private:
  static bool getenv_flag(const char* name) {
    const char* v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
  }

  void submit_locked(size_t len) {
    Op op;
    op.buf = fill_;
    op.at = total_;
    op.len = len;
    total_ += (int64_t)len;
    fill_ = -1;
    fill_len_ = 0;
    queue_.push_back(std::move(op));
    cv_.notify_all();
  }

  void stop() {
    {
      std::lock_guard<std::mutex> g(mu_);
      stopping_ = true;
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
  }

  /** pwrite all of it; EINTR and short writes retried. 0 or an errno. */
  int write_all(const uint8_t* p, size_t n, int64_t at) {
    while (n > 0) {
      ssize_t w = ::pwrite(fd_, p, n, (off_t)at);
      if (w < 0) {
        if (errno == EINTR) continue;
        return errno;
      }
      if (w == 0) return ENOSPC;
      p += w;
      n -= (size_t)w;
      at += w;
    }
    return 0;
  }

  /** Leaves O_DIRECT for ordinary writes (a file system that accepted the flag at open but not the write). */
  bool drop_direct() {
#ifdef O_DIRECT
    int fl = ::fcntl(fd_, F_GETFL);
    if (fl < 0 || ::fcntl(fd_, F_SETFL, fl & ~O_DIRECT) != 0) return false;
    std::lock_guard<std::mutex> g(mu_);
    direct_ = false;
    return true;
#else
    return false;
#endif
  }

  int do_write(const Op& op) {
    bool d;
    {
      std::lock_guard<std::mutex> g(mu_);
      d = direct_;
    }
    size_t n = d ? (op.len + kAlign - 1) / kAlign * kAlign : op.len;
    int e = d && refuse_write_ ? EINVAL : write_all(bufs_[op.buf], n, op.at);
    if (e == EINVAL && d && drop_direct()) e = write_all(bufs_[op.buf], op.len, op.at);
    if (e) what_ = "writing";
    return e;
  }

  int do_patch(const Op& op) {
    bool d;
    {
      std::lock_guard<std::mutex> g(mu_);
      d = direct_;
    }
    if (!d) {
      int e = write_all(op.bytes.data(), op.bytes.size(), op.at);
      if (e) what_ = "writing";
      return e;
    }
    // Read, modify, write the aligned block(s) that hold the bytes (already on disk: the writes before it in
    // the queue are done). A patch never crosses more than one block boundary (the callers patch 4 bytes).
    int64_t b0 = op.at / (int64_t)kAlign * (int64_t)kAlign;
    int64_t b1 = (op.at + (int64_t)op.bytes.size() + (int64_t)kAlign - 1) / (int64_t)kAlign * (int64_t)kAlign;
    if (b1 - b0 > (int64_t)(2 * kAlign)) return EINVAL;
    uint8_t* s = static_cast<uint8_t*>(scratch_);
    size_t n = (size_t)(b1 - b0), got = 0;
    while (got < n) {
      ssize_t r = ::pread(fd_, s + got, n - got, (off_t)(b0 + (int64_t)got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        what_ = "reading back";
        return r < 0 ? errno : EIO;
      }
      got += (size_t)r;
    }
    memcpy(s + (op.at - b0), op.bytes.data(), op.bytes.size());
    int e = write_all(s, n, b0);
    if (e) what_ = "writing";
    return e;
  }

  void run() {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
      cv_.wait(lk, [&] { return !queue_.empty() || stopping_; });
      if (queue_.empty() || stopping_) break;  // finish() stops it only once the queue is empty
      Op op = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      bool skip = err_ != 0;
      lk.unlock();
      int e = skip ? 0 : (op.buf >= 0 ? do_write(op) : do_patch(op));
      lk.lock();
      busy_ = false;
      if (e && !err_) err_ = e;
      if (op.buf >= 0) free_.push_back(op.buf);
      cv_.notify_all();
    }
  }

  std::string path_;
  int fd_ = -1;
  int open_errno_ = 0;
  bool direct_ = false;
  bool refuse_write_ = false;
  size_t buf_bytes_ = 0;
  std::vector<uint8_t*> bufs_;
  std::vector<int> free_;
  void* scratch_ = nullptr;
  int fill_ = -1;
  size_t fill_len_ = 0;
  int64_t total_ = 0;  // bytes handed to the writer thread (the fill buffer starts here)
  std::deque<Op> queue_;
  bool busy_ = false;
  bool stopping_ = false;
  int err_ = 0;
  std::string what_;
  std::mutex mu_, fd_mu_;
  std::condition_variable cv_;
  std::thread thread_;
};

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
