"""The native half: RocksDB's C API plus our FileSystem (filesystem.cc), through cffi in ABI
mode, and the hot paths (fast.cc) as a CPython module, ``_fast``, in the same library.

Both are compiled with g++ against Debian's librocksdb-dev and this Python's headers on first
import, into a cache directory keyed by the sources, the library's version and the Python
ABI, so later imports only load it. Without g++, librocksdb-dev or Python.h this module
raises ImportError saying what to install; nothing else in zcsdfs imports it.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import cffi

INSTALL_HINT = "apt-get install g++ librocksdb-dev python3-dev"
# Debian's python3 has its headers in python3-dev; another build of Python ships its own.
PYTHON_HINT = (INSTALL_HINT if sys.executable.startswith("/usr/bin/") or sys.base_prefix == "/usr"
               else f"a Python with its development headers ({sys.base_prefix} has none)")
HEADER = "/usr/include/rocksdb/c.h"
SOURCES = [os.path.join(os.path.dirname(__file__), name) for name in ("filesystem.cc", "fast.cc")]
PYTHON_INCLUDE = sysconfig.get_paths()["include"]

CDEF = """
typedef struct rocksdb_t rocksdb_t;
typedef struct rocksdb_options_t rocksdb_options_t;
typedef struct rocksdb_block_based_table_options_t rocksdb_block_based_table_options_t;
typedef struct rocksdb_cache_t rocksdb_cache_t;
typedef struct rocksdb_filterpolicy_t rocksdb_filterpolicy_t;
typedef struct rocksdb_slicetransform_t rocksdb_slicetransform_t;
typedef struct rocksdb_writeoptions_t rocksdb_writeoptions_t;
typedef struct rocksdb_readoptions_t rocksdb_readoptions_t;
typedef struct rocksdb_flushoptions_t rocksdb_flushoptions_t;
typedef struct rocksdb_compactoptions_t rocksdb_compactoptions_t;
typedef struct rocksdb_writebatch_t rocksdb_writebatch_t;
typedef struct rocksdb_iterator_t rocksdb_iterator_t;
typedef struct rocksdb_snapshot_t rocksdb_snapshot_t;
typedef struct rocksdb_livefiles_t rocksdb_livefiles_t;

rocksdb_t* rocksdb_open(const rocksdb_options_t*, const char* name, char** errptr);
void rocksdb_close(rocksdb_t*);
void rocksdb_destroy_db(const rocksdb_options_t*, const char* name, char** errptr);
void rocksdb_put(rocksdb_t*, const rocksdb_writeoptions_t*, const char* key, size_t keylen,
                 const char* val, size_t vallen, char** errptr);
char* rocksdb_get(rocksdb_t*, const rocksdb_readoptions_t*, const char* key, size_t keylen,
                  size_t* vallen, char** errptr);
void rocksdb_delete(rocksdb_t*, const rocksdb_writeoptions_t*, const char* key, size_t keylen,
                    char** errptr);
void rocksdb_write(rocksdb_t*, const rocksdb_writeoptions_t*, rocksdb_writebatch_t*, char** errptr);
void rocksdb_free(void*);
char* rocksdb_property_value(rocksdb_t*, const char* propname);
void rocksdb_flush(rocksdb_t*, const rocksdb_flushoptions_t*, char** errptr);
void rocksdb_compact_range_opt(rocksdb_t*, rocksdb_compactoptions_t*, const char* start_key,
                               size_t start_key_len, const char* limit_key, size_t limit_key_len);

rocksdb_writebatch_t* rocksdb_writebatch_create(void);
void rocksdb_writebatch_destroy(rocksdb_writebatch_t*);
void rocksdb_writebatch_clear(rocksdb_writebatch_t*);
int rocksdb_writebatch_count(rocksdb_writebatch_t*);
void rocksdb_writebatch_put(rocksdb_writebatch_t*, const char* key, size_t klen, const char* val,
                            size_t vlen);
void rocksdb_writebatch_delete(rocksdb_writebatch_t*, const char* key, size_t klen);
void rocksdb_writebatch_delete_range(rocksdb_writebatch_t*, const char* start_key, size_t start_key_len,
                                     const char* end_key, size_t end_key_len);

rocksdb_writeoptions_t* rocksdb_writeoptions_create(void);
void rocksdb_writeoptions_destroy(rocksdb_writeoptions_t*);
void rocksdb_writeoptions_set_sync(rocksdb_writeoptions_t*, unsigned char);
void rocksdb_writeoptions_disable_WAL(rocksdb_writeoptions_t*, int disable);

rocksdb_readoptions_t* rocksdb_readoptions_create(void);
void rocksdb_readoptions_destroy(rocksdb_readoptions_t*);
void rocksdb_readoptions_set_snapshot(rocksdb_readoptions_t*, const rocksdb_snapshot_t*);
void rocksdb_readoptions_set_iterate_upper_bound(rocksdb_readoptions_t*, const char* key, size_t keylen);
void rocksdb_readoptions_set_iterate_lower_bound(rocksdb_readoptions_t*, const char* key, size_t keylen);
void rocksdb_readoptions_set_fill_cache(rocksdb_readoptions_t*, unsigned char);
void rocksdb_readoptions_set_total_order_seek(rocksdb_readoptions_t*, unsigned char);
void rocksdb_readoptions_set_read_tier(rocksdb_readoptions_t*, int);
unsigned char rocksdb_key_may_exist(rocksdb_t*, const rocksdb_readoptions_t*, const char* key, size_t key_len,
                                    char** value, size_t* val_len, const char* timestamp, size_t timestamp_len,
                                    unsigned char* value_found);

rocksdb_iterator_t* rocksdb_create_iterator(rocksdb_t*, const rocksdb_readoptions_t*);
void rocksdb_iter_destroy(rocksdb_iterator_t*);
unsigned char rocksdb_iter_valid(const rocksdb_iterator_t*);
void rocksdb_iter_seek_to_first(rocksdb_iterator_t*);
void rocksdb_iter_seek_to_last(rocksdb_iterator_t*);
void rocksdb_iter_seek(rocksdb_iterator_t*, const char* k, size_t klen);
void rocksdb_iter_seek_for_prev(rocksdb_iterator_t*, const char* k, size_t klen);
void rocksdb_iter_next(rocksdb_iterator_t*);
void rocksdb_iter_prev(rocksdb_iterator_t*);
const char* rocksdb_iter_key(const rocksdb_iterator_t*, size_t* klen);
const char* rocksdb_iter_value(const rocksdb_iterator_t*, size_t* vlen);
void rocksdb_iter_get_error(const rocksdb_iterator_t*, char** errptr);

const rocksdb_snapshot_t* rocksdb_create_snapshot(rocksdb_t*);
void rocksdb_release_snapshot(rocksdb_t*, const rocksdb_snapshot_t*);

rocksdb_flushoptions_t* rocksdb_flushoptions_create(void);
void rocksdb_flushoptions_destroy(rocksdb_flushoptions_t*);
void rocksdb_flushoptions_set_wait(rocksdb_flushoptions_t*, unsigned char);
rocksdb_compactoptions_t* rocksdb_compactoptions_create(void);
void rocksdb_compactoptions_destroy(rocksdb_compactoptions_t*);
void rocksdb_compactoptions_set_bottommost_level_compaction(rocksdb_compactoptions_t*, unsigned char);

rocksdb_options_t* rocksdb_options_create(void);
void rocksdb_options_destroy(rocksdb_options_t*);
void rocksdb_options_set_create_if_missing(rocksdb_options_t*, unsigned char);
void rocksdb_options_set_error_if_exists(rocksdb_options_t*, unsigned char);
void rocksdb_options_set_write_buffer_size(rocksdb_options_t*, size_t);
void rocksdb_options_set_max_write_buffer_number(rocksdb_options_t*, int);
void rocksdb_options_set_compression(rocksdb_options_t*, int);
void rocksdb_options_set_block_based_table_factory(rocksdb_options_t*, rocksdb_block_based_table_options_t*);
void rocksdb_options_set_max_open_files(rocksdb_options_t*, int);
void rocksdb_options_set_prefix_extractor(rocksdb_options_t*, rocksdb_slicetransform_t*);
void rocksdb_options_set_info_log_level(rocksdb_options_t*, int);
void rocksdb_options_set_max_background_jobs(rocksdb_options_t*, int);
void rocksdb_options_set_level0_file_num_compaction_trigger(rocksdb_options_t*, int);
void rocksdb_options_set_target_file_size_base(rocksdb_options_t*, uint64_t);
void rocksdb_options_set_max_bytes_for_level_base(rocksdb_options_t*, uint64_t);
void rocksdb_options_set_disable_auto_compactions(rocksdb_options_t*, int);
void rocksdb_options_set_recycle_log_file_num(rocksdb_options_t*, size_t);
void rocksdb_options_set_use_fsync(rocksdb_options_t*, int);
void rocksdb_options_set_num_levels(rocksdb_options_t*, int);
rocksdb_slicetransform_t* rocksdb_slicetransform_create_fixed_prefix(size_t);

rocksdb_block_based_table_options_t* rocksdb_block_based_options_create(void);
void rocksdb_block_based_options_destroy(rocksdb_block_based_table_options_t*);
void rocksdb_block_based_options_set_block_size(rocksdb_block_based_table_options_t*, size_t);
void rocksdb_block_based_options_set_block_cache(rocksdb_block_based_table_options_t*, rocksdb_cache_t*);
void rocksdb_block_based_options_set_no_block_cache(rocksdb_block_based_table_options_t*, unsigned char);
void rocksdb_block_based_options_set_filter_policy(rocksdb_block_based_table_options_t*, rocksdb_filterpolicy_t*);
rocksdb_cache_t* rocksdb_cache_create_lru(size_t capacity);
void rocksdb_cache_destroy(rocksdb_cache_t*);
rocksdb_filterpolicy_t* rocksdb_filterpolicy_create_bloom_full(double bits_per_key);

const rocksdb_livefiles_t* rocksdb_livefiles(rocksdb_t*);
int rocksdb_livefiles_count(const rocksdb_livefiles_t*);
const char* rocksdb_livefiles_name(const rocksdb_livefiles_t*, int index);
int rocksdb_livefiles_level(const rocksdb_livefiles_t*, int index);
size_t rocksdb_livefiles_size(const rocksdb_livefiles_t*, int index);
const char* rocksdb_livefiles_smallestkey(const rocksdb_livefiles_t*, int index, size_t* size);
const char* rocksdb_livefiles_largestkey(const rocksdb_livefiles_t*, int index, size_t* size);
void rocksdb_livefiles_destroy(const rocksdb_livefiles_t*);

struct zr_callbacks {
  int (*open)(uint64_t fs, const char* path, int mode, uint64_t* h, uint64_t* size);
  int (*close)(uint64_t fs, uint64_t h);
  int (*read)(uint64_t fs, uint64_t h, uint64_t offset, size_t n, char* buf, size_t* got);
  int (*write)(uint64_t fs, uint64_t h, uint64_t offset, const char* buf, size_t n);
  int (*sync)(uint64_t fs, uint64_t h, int data_only);
  int (*truncate)(uint64_t fs, uint64_t h, uint64_t size);
  int (*hint)(uint64_t fs, uint64_t h, int hint);
  int (*stat)(uint64_t fs, const char* path, uint64_t* size, uint64_t* mtime, uint64_t* nlink,
              int* is_dir);
  int (*inode)(uint64_t fs, const char* path, uint64_t* ino);
  int (*children)(uint64_t fs, const char* path, void* out);
  int (*path_op)(uint64_t fs, int op, const char* a, const char* b);
  int (*free_space)(uint64_t fs, uint64_t* bytes);
  int (*lock)(uint64_t fs, const char* path, int acquire);
};
void zr_set_callbacks(const struct zr_callbacks*);
uint64_t zr_set_file_cache(uint64_t budget);
void zr_push_child(void* out, const char* name, size_t len);
void* zr_env_new(uint64_t fs);
void zr_env_free(void* env);
int zr_options_set_env(rocksdb_options_t*, void* env);
uint64_t zr_snapshot_sequence(const rocksdb_snapshot_t*);
int zr_version(void);
"""


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "zcsdfs", "rocksdb")


def _fingerprint() -> str:
    """Sources, compiler-visible library version, the librocksdb file and the Python ABI:
    a change rebuilds."""
    h = hashlib.sha256()
    for source in SOURCES:
        with open(source, "rb") as f:
            h.update(f.read())
    h.update(f"{sys.implementation.cache_tag}:{sysconfig.get_config_var('EXT_SUFFIX')}".encode())
    for path in ("/usr/include/rocksdb/version.h", "/usr/lib/x86_64-linux-gnu/librocksdb.so"):
        try:
            st = os.stat(path)
            h.update(f"{path}:{st.st_size}:{st.st_mtime_ns}".encode())
        except OSError:
            pass
    return h.hexdigest()[:16]


def _missing(detail: str, hint: str = INSTALL_HINT) -> ImportError:
    return ImportError(f"zcsdfs.rocksdb needs g++, librocksdb-dev and Python's headers to build its native "
                       f"part ({detail}): {hint}")


def _build(target: str) -> None:
    compiler = shutil.which(os.environ.get("CXX", "g++"))
    if compiler is None:
        raise _missing("no g++ found")
    if not os.path.exists(HEADER):
        raise _missing(f"no {HEADER}")
    if not os.path.exists(os.path.join(PYTHON_INCLUDE, "Python.h")):
        raise _missing(f"no Python.h in {PYTHON_INCLUDE}", PYTHON_HINT)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=os.path.dirname(target))
    os.close(fd)
    try:
        run = subprocess.run([compiler, "-std=c++17", "-O2", "-fPIC", "-shared",
                              f"-I{PYTHON_INCLUDE}", "-o", tmp, *SOURCES, "-lrocksdb"],
                             capture_output=True, text=True)
        if run.returncode != 0:
            lines = run.stderr.strip().splitlines() or ["no output"]
            first = next((line for line in lines if "error" in line), lines[-1])
            if "rocksdb" in first and ("No such file" in first or "cannot find" in first):
                raise _missing(f"g++ failed: {first}")
            raise ImportError(f"zcsdfs.rocksdb: compiling {' '.join(SOURCES)} failed: {first}")
        os.replace(tmp, target)  # atomic: a concurrent importer sees the old file or the whole new one
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load():
    """(ffi, lib, fast): the library built for these sources, built now if the cache lacks it."""
    target = os.path.join(_cache_dir(), f"zcsdfs_rocksdb_{_fingerprint()}.so")
    if not os.path.exists(target):
        _build(target)
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    try:
        lib = ffi.dlopen(target)
    except OSError as exc:
        raise _missing(f"cannot load {target}: {exc}") from None
    # the same file again, as a module: dlopen hands back the library cffi opened
    spec = importlib.util.spec_from_file_location(
        f"{__package__}._fast", target, loader=importlib.machinery.ExtensionFileLoader(f"{__package__}._fast", target))
    fast = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fast)
    return ffi, lib, fast


ffi, lib, fast = load()
