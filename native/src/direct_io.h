// The writer core of DirectFile (io.cc), without N-API: the staging buffers, the file's own writer thread,
// O_DIRECT with its fallback, in-place CRC patches and the final ftruncate. io.cc wraps it for JavaScript.
#pragma once
#if !defined(_WIN32)
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace apl {
namespace direct_io {

// O_DIRECT offsets, lengths and addresses: a multiple of the logical block size (512 or 4096).
constexpr size_t kAlign = 4096;
constexpr size_t kHuge = (size_t)2 << 20;

/** APL_HUGE=0: no huge-page advice (A/B runs; the same switch as the model's weights, infer/hugepages.h). */
inline bool huge_off() {
  const char* v = getenv("APL_HUGE");
  return v && strcmp(v, "0") == 0;
}

inline const char* errno_name(int e) {
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
#elif defined(__APPLE__) && defined(F_NOCACHE)
    // macOS has no O_DIRECT; F_NOCACHE is its analogue (the writes bypass the unified buffer cache; aligned
    // writes go straight to the device). Compiled on macOS only, and untested: no macOS machine here.
    fd_ = ::open(path_.c_str(), flags, 0666);
    if (fd_ >= 0 && want_direct && !getenv_flag("APL_IO_REFUSE_DIRECT"))
      direct_ = ::fcntl(fd_, F_NOCACHE, 1) == 0;
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
#if defined(__linux__) && defined(MADV_HUGEPAGE)
      // 2 MiB pages from the first touch: page by page, a fresh 8 MiB staging buffer costs 2048 faults (≈ 12
      // µs each in this project's VMs; docs/PERFORMANCE.md, "Fresh pages"). Best effort, APL_HUGE=0 leaves
      // them.
      if (al == kHuge && !huge_off()) madvise(p, buf_bytes_ / kHuge * kHuge, MADV_HUGEPAGE);
#endif
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
#elif defined(__APPLE__) && defined(F_NOCACHE)
    if (::fcntl(fd_, F_NOCACHE, 0) != 0) return false;  // (untested, as at open)
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
}  // namespace direct_io
}  // namespace apl
#endif
