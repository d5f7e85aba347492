// RocksDB's FileSystem over a zcsdfs volume: every file operation is a call into Python
// through the callback table that zcsdfs.rocksdb installs with zr_set_callbacks (cffi
// callbacks, which take the GIL themselves: RocksDB's background threads call them too).
//
// A callback returns 0 or Linux's errno; ``fs`` names the Python-side bridge (one per
// DB), ``h`` a file that bridge opened. Built by zcsdfs.rocksdb._build with g++ into a
// shared library linked with librocksdb; the Python side uses RocksDB's own C API
// (rocksdb/c.h) for everything that is not the file system.

#include <rocksdb/c.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/options.h>
#include <rocksdb/version.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

using rocksdb::Env;
using rocksdb::FileLock;
using rocksdb::FileOptions;
using rocksdb::FileSystem;
using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

extern "C" {
struct zr_callbacks {
  int (*open)(uint64_t fs, const char* path, int mode, uint64_t* h, uint64_t* size);
  int (*close)(uint64_t fs, uint64_t h);
  int (*read)(uint64_t fs, uint64_t h, uint64_t offset, size_t n, char* buf, size_t* got);
  int (*write)(uint64_t fs, uint64_t h, uint64_t offset, const char* buf, size_t n);
  int (*sync)(uint64_t fs, uint64_t h, int data_only);
  int (*truncate)(uint64_t fs, uint64_t h, uint64_t size);
  int (*hint)(uint64_t fs, uint64_t h, int hint);
  int (*stat)(uint64_t fs, const char* path, uint64_t* size, uint64_t* mtime_ns, uint64_t* nlink,
              int* is_dir);
  int (*inode)(uint64_t fs, const char* path, uint64_t* ino);
  int (*children)(uint64_t fs, const char* path, void* out);
  int (*path_op)(uint64_t fs, int op, const char* a, const char* b);
  int (*free_space)(uint64_t fs, uint64_t* bytes);
  int (*lock)(uint64_t fs, const char* path, int acquire);
};
}

static zr_callbacks cb;

namespace zcsdfs {

enum OpenMode { READ = 0, CREATE_TRUNC = 1, CREATE_KEEP = 2, DIRECTORY = 3 };
enum PathOp { UNLINK = 0, MKDIR = 1, RMDIR = 2, RENAME = 3, LINK = 4 };

static IOStatus status(int err, const std::string& what, const std::string& path) {
  if (err == 0) return IOStatus::OK();
  std::string msg = what + " " + path + ": " + std::strerror(err);
  if (err == ENOENT) return IOStatus::PathNotFound(msg);
  if (err == ENOSPC) return IOStatus::NoSpace(msg);
  return IOStatus::IOError(msg);
}

struct Handle {
  uint64_t fs;
  uint64_t h;
  std::string path;
  bool open = true;
  Handle(uint64_t fs_, uint64_t h_, std::string p) : fs(fs_), h(h_), path(std::move(p)) {}
  int close() {
    if (!open) return 0;
    open = false;
    return cb.close(fs, h);
  }
  ~Handle() { close(); }
};

class SequentialFile : public rocksdb::FSSequentialFile {
  Handle f_;
  uint64_t pos_ = 0;
 public:
  SequentialFile(uint64_t fs, uint64_t h, const std::string& p) : f_(fs, h, p) {}
  IOStatus Read(size_t n, const IOOptions&, Slice* result, char* scratch, IODebugContext*) override {
    size_t got = 0;
    int err = cb.read(f_.fs, f_.h, pos_, n, scratch, &got);
    if (err) return status(err, "While reading", f_.path);
    pos_ += got;
    *result = Slice(scratch, got);
    return IOStatus::OK();
  }
  IOStatus PositionedRead(uint64_t offset, size_t n, const IOOptions&, Slice* result, char* scratch,
                          IODebugContext*) override {
    size_t got = 0;
    int err = cb.read(f_.fs, f_.h, offset, n, scratch, &got);
    if (err) return status(err, "While pread", f_.path);
    *result = Slice(scratch, got);
    return IOStatus::OK();
  }
  IOStatus Skip(uint64_t n) override { pos_ += n; return IOStatus::OK(); }
  IOStatus InvalidateCache(size_t, size_t) override { return IOStatus::OK(); }
};

// Table files are immutable once written: a reader keeps the whole file in memory while
// the process-wide budget (zr_set_file_cache) allows, as the kernel's page cache does for
// RocksDB on a local file system, so its reads make no call into Python. Beyond the budget,
// or for files that change (RocksDB reads only finished tables this way), reads go to Python.
static std::mutex cache_mutex;
static uint64_t cache_budget = 0, cache_used = 0;

class RandomAccessFile : public rocksdb::FSRandomAccessFile {
  mutable Handle f_;
  std::string data_;
  bool cached_ = false;

 public:
  RandomAccessFile(uint64_t fs, uint64_t h, const std::string& p, uint64_t size) : f_(fs, h, p) {
    {
      std::lock_guard<std::mutex> g(cache_mutex);
      if (size == 0 || cache_used + size > cache_budget) return;
      cache_used += size;
    }
    data_.resize(size);
    size_t got = 0;
    if (cb.read(f_.fs, f_.h, 0, size, &data_[0], &got) == 0 && got == size) {
      cached_ = true;
    } else {
      std::lock_guard<std::mutex> g(cache_mutex);
      cache_used -= size;
      std::string().swap(data_);
    }
  }
  ~RandomAccessFile() override {
    if (cached_) {
      std::lock_guard<std::mutex> g(cache_mutex);
      cache_used -= data_.size();
    }
  }
  IOStatus Read(uint64_t offset, size_t n, const IOOptions&, Slice* result, char* scratch,
                IODebugContext*) const override {
    if (cached_) {
      if (offset >= data_.size()) n = 0;
      else if (n > data_.size() - offset) n = data_.size() - offset;
      if (n) std::memcpy(scratch, data_.data() + offset, n);  // into scratch: blocks may outlive us
      *result = Slice(scratch, n);
      return IOStatus::OK();
    }
    size_t got = 0;
    int err = cb.read(f_.fs, f_.h, offset, n, scratch, &got);
    if (err) return status(err, "While pread", f_.path);
    *result = Slice(scratch, got);
    return IOStatus::OK();
  }
  IOStatus Prefetch(uint64_t, size_t, const IOOptions&, IODebugContext*) override {
    return IOStatus::OK();
  }
  IOStatus InvalidateCache(size_t, size_t) override { return IOStatus::OK(); }
};

// Appends are gathered here and handed to Python in large pieces: RocksDB flushes its WAL
// writer after every write, and one callback per put would cost more than the put. Sync,
// Fsync, Close and Truncate write the buffer out first, so what RocksDB syncs is durable;
// what it did not sync may be lost if the process dies, as with any in-process file system.
class WritableFile : public rocksdb::FSWritableFile {
  static constexpr size_t kBuffer = 256 << 10;
  Handle f_;
  uint64_t written_;  // bytes in the file (before the buffer)
  std::string buf_;
  std::mutex mu_;

  int Drain() {
    if (buf_.empty()) return 0;
    int err = cb.write(f_.fs, f_.h, written_, buf_.data(), buf_.size());
    if (!err) {
      written_ += buf_.size();
      buf_.clear();
    }
    return err;
  }

 public:
  WritableFile(uint64_t fs, uint64_t h, const std::string& p, uint64_t at, const FileOptions& o)
      : rocksdb::FSWritableFile(o), f_(fs, h, p), written_(at) {}
  ~WritableFile() override { Drain(); }
  IOStatus Append(const Slice& data, const IOOptions&, IODebugContext*) override {
    std::lock_guard<std::mutex> g(mu_);
    if (buf_.empty() && data.size() >= kBuffer) {
      int err = cb.write(f_.fs, f_.h, written_, data.data(), data.size());
      if (err) return status(err, "While appending to file", f_.path);
      written_ += data.size();
      return IOStatus::OK();
    }
    buf_.append(data.data(), data.size());
    if (buf_.size() >= kBuffer) return status(Drain(), "While appending to file", f_.path);
    return IOStatus::OK();
  }
  IOStatus Truncate(uint64_t size, const IOOptions&, IODebugContext*) override {
    std::lock_guard<std::mutex> g(mu_);
    int err = Drain();
    if (!err) err = cb.truncate(f_.fs, f_.h, size);
    if (err) return status(err, "While ftruncate file", f_.path);
    written_ = size;
    return IOStatus::OK();
  }
  IOStatus Close(const IOOptions&, IODebugContext*) override {
    std::lock_guard<std::mutex> g(mu_);
    int err = Drain();
    int err2 = f_.close();
    return status(err ? err : err2, "While closing file", f_.path);
  }
  IOStatus Flush(const IOOptions&, IODebugContext*) override { return IOStatus::OK(); }
  IOStatus Sync(const IOOptions&, IODebugContext*) override {
    std::lock_guard<std::mutex> g(mu_);
    int err = Drain();
    if (!err) err = cb.sync(f_.fs, f_.h, 1);
    return status(err, "While fdatasync", f_.path);
  }
  IOStatus Fsync(const IOOptions&, IODebugContext*) override {
    std::lock_guard<std::mutex> g(mu_);
    int err = Drain();
    if (!err) err = cb.sync(f_.fs, f_.h, 0);
    return status(err, "While fsync", f_.path);
  }
  bool IsSyncThreadSafe() const override { return true; }
  void SetWriteLifeTimeHint(Env::WriteLifeTimeHint hint) override {
    write_hint_ = hint;
    cb.hint(f_.fs, f_.h, static_cast<int>(hint));
  }
  uint64_t GetFileSize(const IOOptions&, IODebugContext*) override {
    std::lock_guard<std::mutex> g(mu_);
    return written_ + buf_.size();
  }
  IOStatus InvalidateCache(size_t, size_t) override { return IOStatus::OK(); }
};

class Directory : public rocksdb::FSDirectory {
  Handle f_;
 public:
  Directory(uint64_t fs, uint64_t h, const std::string& p) : f_(fs, h, p) {}
  IOStatus Fsync(const IOOptions&, IODebugContext*) override {
    return status(cb.sync(f_.fs, f_.h, 0), "While fsync directory", f_.path);
  }
  IOStatus Close(const IOOptions&, IODebugContext*) override {
    return status(f_.close(), "While closing directory", f_.path);
  }
};

struct Lock : public FileLock {
  uint64_t fs;
  std::string path;
};

class VolumeFileSystem : public FileSystem {
  uint64_t fs_;

  IOStatus Open(const std::string& path, int mode, uint64_t* h, uint64_t* size) {
    int err = cb.open(fs_, path.c_str(), mode, h, size);
    return status(err, "While open a file", path);
  }
  int Stat(const std::string& path, uint64_t* size, uint64_t* mtime, uint64_t* nlink, int* is_dir) {
    return cb.stat(fs_, path.c_str(), size, mtime, nlink, is_dir);
  }
  IOStatus PathOp(int op, const std::string& a, const std::string& b, const std::string& what) {
    return status(cb.path_op(fs_, op, a.c_str(), b.c_str()), what, a);
  }

 public:
  explicit VolumeFileSystem(uint64_t fs) : fs_(fs) {}
  const char* Name() const override { return "ZcsdfsVolumeFileSystem"; }

  IOStatus NewSequentialFile(const std::string& f, const FileOptions&,
                             std::unique_ptr<rocksdb::FSSequentialFile>* r, IODebugContext*) override {
    uint64_t h, size;
    IOStatus s = Open(f, READ, &h, &size);
    if (s.ok()) r->reset(new SequentialFile(fs_, h, f));
    return s;
  }
  IOStatus NewRandomAccessFile(const std::string& f, const FileOptions&,
                               std::unique_ptr<rocksdb::FSRandomAccessFile>* r, IODebugContext*) override {
    uint64_t h, size;
    IOStatus s = Open(f, READ, &h, &size);
    if (s.ok()) r->reset(new RandomAccessFile(fs_, h, f, size));
    return s;
  }
  IOStatus NewWritableFile(const std::string& f, const FileOptions& o,
                           std::unique_ptr<rocksdb::FSWritableFile>* r, IODebugContext*) override {
    uint64_t h, size;
    IOStatus s = Open(f, CREATE_TRUNC, &h, &size);
    if (s.ok()) r->reset(new WritableFile(fs_, h, f, 0, o));
    return s;
  }
  IOStatus ReopenWritableFile(const std::string& f, const FileOptions& o,
                              std::unique_ptr<rocksdb::FSWritableFile>* r, IODebugContext*) override {
    uint64_t h, size;
    IOStatus s = Open(f, CREATE_KEEP, &h, &size);
    if (s.ok()) r->reset(new WritableFile(fs_, h, f, size, o));
    return s;
  }
  // A recycled WAL: renamed, then written over from the start (as PosixFileSystem does).
  IOStatus ReuseWritableFile(const std::string& f, const std::string& old, const FileOptions& o,
                             std::unique_ptr<rocksdb::FSWritableFile>* r, IODebugContext*) override {
    IOStatus s = PathOp(RENAME, old, f, "While renaming a log to reuse");
    if (!s.ok()) return s;
    uint64_t h, size;
    s = Open(f, CREATE_KEEP, &h, &size);
    if (s.ok()) r->reset(new WritableFile(fs_, h, f, 0, o));
    return s;
  }
  IOStatus NewDirectory(const std::string& name, const IOOptions&,
                        std::unique_ptr<rocksdb::FSDirectory>* r, IODebugContext*) override {
    uint64_t h, size;
    IOStatus s = Open(name, DIRECTORY, &h, &size);
    if (s.ok()) r->reset(new Directory(fs_, h, name));
    return s;
  }
  IOStatus FileExists(const std::string& f, const IOOptions&, IODebugContext*) override {
    uint64_t size, mtime, nlink;
    int is_dir;
    int err = Stat(f, &size, &mtime, &nlink, &is_dir);
    if (err == ENOENT || err == ENOTDIR) return IOStatus::NotFound();
    return status(err, "While stat a file for existence", f);
  }
  IOStatus GetChildren(const std::string& dir, const IOOptions&, std::vector<std::string>* result,
                       IODebugContext*) override {
    result->clear();
    return status(cb.children(fs_, dir.c_str(), result), "While opendir", dir);
  }
  IOStatus DeleteFile(const std::string& f, const IOOptions&, IODebugContext*) override {
    return PathOp(UNLINK, f, "", "while unlink() file");
  }
  IOStatus Truncate(const std::string& f, size_t size, const IOOptions&, IODebugContext*) override {
    uint64_t h, old;
    IOStatus s = Open(f, CREATE_KEEP, &h, &old);
    if (!s.ok()) return s;
    Handle handle(fs_, h, f);
    return status(cb.truncate(fs_, h, size), "While truncate file", f);
  }
  IOStatus CreateDir(const std::string& d, const IOOptions&, IODebugContext*) override {
    return PathOp(MKDIR, d, "", "While mkdir");
  }
  IOStatus CreateDirIfMissing(const std::string& d, const IOOptions&, IODebugContext*) override {
    int err = cb.path_op(fs_, MKDIR, d.c_str(), "");
    if (err == EEXIST) {
      uint64_t size, mtime, nlink;
      int is_dir = 0;
      err = Stat(d, &size, &mtime, &nlink, &is_dir);
      if (!err && !is_dir) return IOStatus::IOError("`" + d + "' exists but is not a directory");
    }
    return status(err, "While mkdir if missing", d);
  }
  IOStatus DeleteDir(const std::string& d, const IOOptions&, IODebugContext*) override {
    return PathOp(RMDIR, d, "", "file rmdir");
  }
  IOStatus GetFileSize(const std::string& f, const IOOptions&, uint64_t* size, IODebugContext*) override {
    uint64_t mtime, nlink;
    int is_dir;
    return status(Stat(f, size, &mtime, &nlink, &is_dir), "while stat a file for size", f);
  }
  IOStatus GetFileModificationTime(const std::string& f, const IOOptions&, uint64_t* mtime,
                                   IODebugContext*) override {
    uint64_t size, nlink;
    int is_dir;
    return status(Stat(f, &size, mtime, &nlink, &is_dir), "while stat a file for modification time", f);
  }
  IOStatus RenameFile(const std::string& src, const std::string& dst, const IOOptions&,
                      IODebugContext*) override {
    return PathOp(RENAME, src, dst, "While renaming a file to " + dst + ":");
  }
  IOStatus LinkFile(const std::string& src, const std::string& dst, const IOOptions&,
                    IODebugContext*) override {
    return PathOp(LINK, src, dst, "while link file to " + dst + ":");
  }
  IOStatus NumFileLinks(const std::string& f, const IOOptions&, uint64_t* count, IODebugContext*) override {
    uint64_t size, mtime;
    int is_dir;
    return status(Stat(f, &size, &mtime, count, &is_dir), "while stat a file for num file links", f);
  }
  IOStatus AreFilesSame(const std::string& a, const std::string& b, const IOOptions&, bool* res,
                        IODebugContext*) override {
    uint64_t ia, ib;
    int err = cb.inode(fs_, a.c_str(), &ia);
    if (!err) err = cb.inode(fs_, b.c_str(), &ib);
    if (err) return status(err, "While stat", a);
    *res = ia == ib;
    return IOStatus::OK();
  }
  // The lock is the volume's (bridge.py keeps the set): a second open of a DB in this
  // process fails as RocksDB's PosixFileSystem makes it fail.
  IOStatus LockFile(const std::string& f, const IOOptions&, FileLock** lock, IODebugContext*) override {
    *lock = nullptr;
    int err = cb.lock(fs_, f.c_str(), 1);
    if (err == EAGAIN) return IOStatus::IOError("lock hold by current process: " + f, "No locks available");
    if (err) return status(err, "While lock file", f);
    Lock* l = new Lock;
    l->fs = fs_;
    l->path = f;
    *lock = l;
    return IOStatus::OK();
  }
  IOStatus UnlockFile(FileLock* lock, const IOOptions&, IODebugContext*) override {
    Lock* l = static_cast<Lock*>(lock);
    int err = cb.lock(l->fs, l->path.c_str(), 0);
    std::string path = l->path;
    delete l;
    return status(err, "While unlock file", path);
  }
  IOStatus GetTestDirectory(const IOOptions&, std::string* path, IODebugContext*) override {
    *path = "/rocksdbtest";
    return IOStatus::OK();
  }
  IOStatus GetAbsolutePath(const std::string& p, const IOOptions&, std::string* out, IODebugContext*) override {
    *out = (!p.empty() && p[0] == '/') ? p : "/" + p;
    return IOStatus::OK();
  }
  IOStatus IsDirectory(const std::string& p, const IOOptions&, bool* is_dir, IODebugContext*) override {
    uint64_t size, mtime, nlink;
    int d = 0;
    int err = Stat(p, &size, &mtime, &nlink, &d);
    if (!err) *is_dir = d != 0;
    return status(err, "While stat", p);
  }
  IOStatus GetFreeSpace(const std::string& p, const IOOptions&, uint64_t* free, IODebugContext*) override {
    return status(cb.free_space(fs_, free), "While statfs", p);
  }
};

struct Environment {
  std::shared_ptr<FileSystem> fs;
  std::unique_ptr<Env> env;
};

}  // namespace zcsdfs

struct rocksdb_options_t { rocksdb::Options rep; };  // as rocksdb/db/c.cc defines them
struct rocksdb_snapshot_t { const rocksdb::Snapshot* rep; };

extern "C" {

void zr_set_callbacks(const zr_callbacks* table) { cb = *table; }

// How many bytes of table files readers may keep in memory, in all (0: none). Returns the
// bytes kept now.
uint64_t zr_set_file_cache(uint64_t budget) {
  std::lock_guard<std::mutex> g(zcsdfs::cache_mutex);
  zcsdfs::cache_budget = budget;
  return zcsdfs::cache_used;
}

void zr_push_child(void* out, const char* name, size_t len) {
  static_cast<std::vector<std::string>*>(out)->emplace_back(name, len);
}

// An Env whose file system is bridge ``fs``; set it on options with zr_options_set_env.
void* zr_env_new(uint64_t fs) {
  auto* e = new zcsdfs::Environment;
  e->fs = std::make_shared<zcsdfs::VolumeFileSystem>(fs);
  e->env = rocksdb::NewCompositeEnv(e->fs);
  return e;
}

void zr_env_free(void* env) { delete static_cast<zcsdfs::Environment*>(env); }

// 0, or -1 when this library's rocksdb_options_t is not the layout assumed above.
int zr_options_set_env(rocksdb_options_t* opt, void* env) {
  size_t was = opt->rep.write_buffer_size;
  rocksdb_options_set_write_buffer_size(opt, 12345679);
  bool same = opt->rep.write_buffer_size == 12345679;
  rocksdb_options_set_write_buffer_size(opt, was);
  if (!same) return -1;
  opt->rep.env = static_cast<zcsdfs::Environment*>(env)->env.get();
  return 0;
}

// The sequence number a snapshot reads at (the C API of 7.8 has no call for it).
uint64_t zr_snapshot_sequence(const rocksdb_snapshot_t* snap) { return snap->rep->GetSequenceNumber(); }

int zr_version(void) { return ROCKSDB_MAJOR * 10000 + ROCKSDB_MINOR * 100 + ROCKSDB_PATCH; }

}
