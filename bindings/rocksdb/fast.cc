// The hot paths of zcsdfs.rocksdb.DB as a CPython module (zcsdfs.rocksdb._fast), built into
// the same shared library as filesystem.cc: one call per get, put or delete, straight from
// Python's arguments to RocksDB's C++ API and back to a bytes object.
//
// Through cffi's ABI mode each of these was a libffi call into RocksDB's C API, which copies
// a value twice (std::string, then a malloc'd copy) and needs an error cell per call; here a
// Get lands in a PinnableSlice (no copy out of the block cache or memtable) and is copied
// once, into the bytes returned. The GIL is released around RocksDB's work, so its flush and
// compaction threads can run the file system's Python callbacks meanwhile.
//
// Handles cross as integers (the addresses of the C API's structs, which hold the C++
// object first, as rocksdb/db/c.cc defines them); 0 is a closed DB.

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <rocksdb/c.h>
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>

#include <string>

struct rocksdb_t { rocksdb::DB* rep; };
struct rocksdb_readoptions_t { rocksdb::ReadOptions rep; };  // first member: all we touch
struct rocksdb_writeoptions_t { rocksdb::WriteOptions rep; };
struct rocksdb_iterator_t { rocksdb::Iterator* rep; };

namespace {

PyObject* error_class = nullptr;  // zcsdfs.rocksdb.RocksDBError, set by init()

PyObject* raise_status(const rocksdb::Status& s) {
  PyErr_SetString(error_class ? error_class : PyExc_OSError, s.ToString().c_str());
  return nullptr;
}

template <typename T>
bool handle(PyObject* arg, T** out) {
  void* p = PyLong_AsVoidPtr(arg);
  if (p == nullptr) {
    if (!PyErr_Occurred())
      PyErr_SetString(error_class ? error_class : PyExc_ValueError, "Invalid argument: the DB is closed");
    return false;
  }
  *out = static_cast<T*>(p);
  return true;
}

// A key or value: bytes without a copy, any other buffer (bytearray, memoryview) through the
// buffer protocol; anything else is the TypeError key_bytes raises.
struct Bytes {
  Py_buffer view{};
  bool held = false;
  rocksdb::Slice slice;
  ~Bytes() {
    if (held) PyBuffer_Release(&view);
  }
  bool take(PyObject* o, const char* what) {
    if (PyBytes_CheckExact(o)) {
      slice = rocksdb::Slice(PyBytes_AS_STRING(o), PyBytes_GET_SIZE(o));
      return true;
    }
    if (PyBytes_Check(o) || PyByteArray_Check(o) || PyMemoryView_Check(o)) {
      if (PyObject_GetBuffer(o, &view, PyBUF_SIMPLE) != 0) return false;
      held = true;
      slice = rocksdb::Slice(static_cast<const char*>(view.buf), view.len);
      return true;
    }
    PyErr_Format(PyExc_TypeError, "a %s must be bytes, not %s", what, Py_TYPE(o)->tp_name);
    return false;
  }
};

bool nargs(Py_ssize_t n, Py_ssize_t want, const char* name) {
  if (n == want) return true;
  PyErr_Format(PyExc_TypeError, "%s takes %zd arguments (%zd given)", name, want, n);
  return false;
}

// get(db, readoptions, key, default) -> the value, or default when the key is absent
PyObject* get(PyObject*, PyObject* const* args, Py_ssize_t n) {
  rocksdb_t* db;
  rocksdb_readoptions_t* ro;
  Bytes key;
  if (!nargs(n, 4, "get") || !handle(args[0], &db) || !handle(args[1], &ro) || !key.take(args[2], "key"))
    return nullptr;
  rocksdb::PinnableSlice value;
  rocksdb::Status s;
  Py_BEGIN_ALLOW_THREADS
  s = db->rep->Get(ro->rep, db->rep->DefaultColumnFamily(), key.slice, &value);
  Py_END_ALLOW_THREADS
  if (s.IsNotFound()) {
    Py_INCREF(args[3]);
    return args[3];
  }
  if (!s.ok()) return raise_status(s);
  return PyBytes_FromStringAndSize(value.data(), value.size());
}

// put(db, writeoptions, key, value)
PyObject* put(PyObject*, PyObject* const* args, Py_ssize_t n) {
  rocksdb_t* db;
  rocksdb_writeoptions_t* wo;
  Bytes key, value;
  if (!nargs(n, 4, "put") || !handle(args[0], &db) || !handle(args[1], &wo) || !key.take(args[2], "key") ||
      !value.take(args[3], "value"))
    return nullptr;
  rocksdb::Status s;
  Py_BEGIN_ALLOW_THREADS
  s = db->rep->Put(wo->rep, key.slice, value.slice);
  Py_END_ALLOW_THREADS
  if (!s.ok()) return raise_status(s);
  Py_RETURN_NONE;
}

// delete(db, writeoptions, key)
PyObject* del(PyObject*, PyObject* const* args, Py_ssize_t n) {
  rocksdb_t* db;
  rocksdb_writeoptions_t* wo;
  Bytes key;
  if (!nargs(n, 3, "delete") || !handle(args[0], &db) || !handle(args[1], &wo) || !key.take(args[2], "key"))
    return nullptr;
  rocksdb::Status s;
  Py_BEGIN_ALLOW_THREADS
  s = db->rep->Delete(wo->rep, key.slice);
  Py_END_ALLOW_THREADS
  if (!s.ok()) return raise_status(s);
  Py_RETURN_NONE;
}

PyObject* slice_bytes(const rocksdb::Slice& s) { return PyBytes_FromStringAndSize(s.data(), s.size()); }

// iterator(db, readoptions) -> a new iterator's handle (RocksDB copies the options, but not
// the bounds they point to: those must outlive the iterator)
PyObject* iterator(PyObject*, PyObject* const* args, Py_ssize_t n) {
  rocksdb_t* db;
  rocksdb_readoptions_t* ro;
  if (!nargs(n, 2, "iterator") || !handle(args[0], &db) || !handle(args[1], &ro)) return nullptr;
  rocksdb_iterator_t* it = new rocksdb_iterator_t;
  Py_BEGIN_ALLOW_THREADS
  it->rep = db->rep->NewIterator(ro->rep);
  Py_END_ALLOW_THREADS
  return PyLong_FromVoidPtr(it);
}

PyObject* iterator_free(PyObject*, PyObject* arg) {
  rocksdb_iterator_t* it;
  if (!handle(arg, &it)) return nullptr;
  Py_BEGIN_ALLOW_THREADS
  delete it->rep;
  delete it;
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

// The moves release the GIL: one may read a block through the file system's callbacks.
#define MOVE(name, call)                               \
  PyObject* name(PyObject*, PyObject* arg) {           \
    rocksdb_iterator_t* it;                            \
    if (!handle(arg, &it)) return nullptr;             \
    Py_BEGIN_ALLOW_THREADS                             \
    it->rep->call();                                   \
    Py_END_ALLOW_THREADS                               \
    Py_RETURN_NONE;                                    \
  }
MOVE(seek_to_first, SeekToFirst)
MOVE(seek_to_last, SeekToLast)
MOVE(next, Next)
MOVE(prev, Prev)

#define SEEK(name, call)                                                                    \
  PyObject* name(PyObject*, PyObject* const* args, Py_ssize_t n) {                          \
    rocksdb_iterator_t* it;                                                                 \
    Bytes key;                                                                              \
    if (!nargs(n, 2, #name) || !handle(args[0], &it) || !key.take(args[1], "key")) return nullptr; \
    Py_BEGIN_ALLOW_THREADS                                                                  \
    it->rep->call(key.slice);                                                               \
    Py_END_ALLOW_THREADS                                                                    \
    Py_RETURN_NONE;                                                                         \
  }
SEEK(seek, Seek)
SEEK(seek_for_prev, SeekForPrev)

PyObject* valid(PyObject*, PyObject* arg) {
  rocksdb_iterator_t* it;
  if (!handle(arg, &it)) return nullptr;
  return PyBool_FromLong(it->rep->Valid());
}

// key(iterator), value(iterator), item(iterator): the current entry (the iterator is valid)
PyObject* key(PyObject*, PyObject* arg) {
  rocksdb_iterator_t* it;
  if (!handle(arg, &it)) return nullptr;
  return slice_bytes(it->rep->key());
}

PyObject* value(PyObject*, PyObject* arg) {
  rocksdb_iterator_t* it;
  if (!handle(arg, &it)) return nullptr;
  return slice_bytes(it->rep->value());
}

PyObject* item(PyObject*, PyObject* arg) {
  rocksdb_iterator_t* it;
  if (!handle(arg, &it)) return nullptr;
  PyObject* k = slice_bytes(it->rep->key());
  if (k == nullptr) return nullptr;
  PyObject* v = slice_bytes(it->rep->value());
  if (v == nullptr) {
    Py_DECREF(k);
    return nullptr;
  }
  PyObject* pair = PyTuple_Pack(2, k, v);
  Py_DECREF(k);
  Py_DECREF(v);
  return pair;
}

// check(iterator): raise the error that ended an iteration, if one did
PyObject* check(PyObject*, PyObject* arg) {
  rocksdb_iterator_t* it;
  if (!handle(arg, &it)) return nullptr;
  rocksdb::Status s = it->rep->status();
  if (!s.ok()) return raise_status(s);
  Py_RETURN_NONE;
}

PyObject* init(PyObject*, PyObject* cls) {
  Py_XDECREF(error_class);
  Py_INCREF(cls);
  error_class = cls;
  Py_RETURN_NONE;
}

PyMethodDef methods[] = {
    {"get", (PyCFunction)(void (*)(void))get, METH_FASTCALL, "get(db, readoptions, key, default)"},
    {"put", (PyCFunction)(void (*)(void))put, METH_FASTCALL, "put(db, writeoptions, key, value)"},
    {"delete", (PyCFunction)(void (*)(void))del, METH_FASTCALL, "delete(db, writeoptions, key)"},
    {"iterator", (PyCFunction)(void (*)(void))iterator, METH_FASTCALL, "iterator(db, readoptions) -> handle"},
    {"iterator_free", iterator_free, METH_O, "iterator_free(iterator)"},
    {"seek_to_first", seek_to_first, METH_O, "seek_to_first(iterator)"},
    {"seek_to_last", seek_to_last, METH_O, "seek_to_last(iterator)"},
    {"next", next, METH_O, "next(iterator)"},
    {"prev", prev, METH_O, "prev(iterator)"},
    {"seek", (PyCFunction)(void (*)(void))seek, METH_FASTCALL, "seek(iterator, key)"},
    {"seek_for_prev", (PyCFunction)(void (*)(void))seek_for_prev, METH_FASTCALL, "seek_for_prev(iterator, key)"},
    {"valid", valid, METH_O, "valid(iterator)"},
    {"key", key, METH_O, "key(iterator)"},
    {"value", value, METH_O, "value(iterator)"},
    {"item", item, METH_O, "item(iterator) -> (key, value)"},
    {"check", check, METH_O, "check(iterator): raise its error, if any"},
    {"init", init, METH_O, "init(error_class): what RocksDB's errors are raised as"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fast", "zcsdfs.rocksdb's hot paths", -1, methods};

}  // namespace

extern "C" PyMODINIT_FUNC PyInit__fast(void) { return PyModule_Create(&module); }
