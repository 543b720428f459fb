#include "bindings/local.h"

#include <pthread.h>
#include <structmember.h>

#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#include "bindings/py_state.h"
#include "bindings/python_access.h"
#include "bindings/snapshot_holds.h"
#include "bindings/thread_end.h"
#include "tls/embedder.h"
#include "tls/slot.h"

namespace tls::bindings {
namespace {

class ThreadDict;

// Every thread's dict of one local, for the garbage collector (tp_traverse,
// tp_clear). Shared by the object and each ThreadDict: a thread may still be
// closing its dict when the object is gone (the engine takes it out of the
// Slot first).
struct ThreadDicts {
  std::mutex lock;  // never held while Python code runs
  ThreadDict* head = nullptr;
  // While the object dies: the dicts its Slot released on the dying thread
  // (which alone touches this), to be freed once the Slot is gone (so no Python code runs inside
  // ~Slot, which must not be unwound through).
  std::vector<PyObject*> released;
};

// The ThreadDicts of the local dying on this thread (its Slot is being
// destroyed here), or nullptr.
thread_local constinit ThreadDicts* t_releasing = nullptr;

// A thread's attributes of one local: the engine's value in its Slot.
class ThreadDict {
 public:
  // Holds a new reference to `dict`. Runs no Python code.
  // Made on the thread whose attributes it holds (a ThreadSlot's Emplace).
  ThreadDict(PyObject* dict, std::shared_ptr<ThreadDicts> all) noexcept
      : dict_(dict), thread_(pthread_self()), all_(std::move(all)) {
    Py_INCREF(dict_);
    std::lock_guard<std::mutex> hold(all_->lock);
    next_ = all_->head;
    if (next_ != nullptr) next_->prev_ = this;
    all_->head = this;
  }
  // Unload, Del or after Close: releases the dict without running Python
  // code here (python_access.h).
  ~ThreadDict() {
    {
      std::lock_guard<std::mutex> hold(all_->lock);
      if (prev_ != nullptr) prev_->next_ = next_;
      if (next_ != nullptr) next_->prev_ = prev_;
      if (all_->head == this) all_->head = next_;
    }
    if (dict_ != nullptr) ReleaseFromDestructor(dict_);
  }
  ThreadDict(const ThreadDict&) = delete;
  ThreadDict& operator=(const ThreadDict&) = delete;

  // The engine's close: at the thread's end (after its at_exit handlers) and
  // at its Reset, calls close() once on each value that has one, then empties
  // the dict. When the object dies, only hands the dict over (see above).
  void Close() {
    if (t_releasing == all_.get()) {    // only the dying thread touches `released`
      all_->released.push_back(dict_);  // the dying object frees it
      dict_ = nullptr;
      return;
    }
    tls::embedder::CloseRound round;
    PythonCall py;
    if (!py) return;  // Python is gone or going: leak
    py.Run([&] {
      PyObject* values = PyDict_Values(dict_);  // a close() may change the dict
      if (values == nullptr) {
        PyErr_WriteUnraisable(dict_);
        return;
      }
      for (Py_ssize_t i = 0, n = PyList_GET_SIZE(values); i < n; ++i) {
        PyObject* value = PyList_GET_ITEM(values, i);
        if (!MayHaveClose(value)) continue;  // a str, an int...: nothing to close
        if (!round.Claim(value)) continue;   // under two names, or also a keyed value
        if (!round.at_end()) ClosingNow(value);
        CloseValue(value);
      }
      Py_DECREF(values);
      PyDict_Clear(dict_);
    });
  }

  PyObject* dict() const noexcept { return dict_; }
  pthread_t thread() const noexcept { return thread_; }
  const ThreadDict* next() const noexcept { return next_; }

 private:
  PyObject* dict_;
  const pthread_t thread_;  // its owner: a ThreadSlot value never moves
  std::shared_ptr<ThreadDicts> all_;
  ThreadDict* prev_ = nullptr;  // in all_'s list, under its lock
  ThreadDict* next_ = nullptr;
};

// Py_NewRef and Py_XNewRef are 3.10+.
PyObject* NewRef(PyObject* o) {
  Py_INCREF(o);
  return o;
}
PyObject* XNewRef(PyObject* o) {
  Py_XINCREF(o);
  return o;
}

struct LocalObject {
  PyObject_HEAD PyObject* args;  // for __init__ in each new thread
  PyObject* kwargs;              // or nullptr
  PyObject* weakrefs;
  tls::ThreadSlot<ThreadDict>* slot;
  std::shared_ptr<ThreadDicts>* dicts;
  LocalObject* live_prev;  // in the list of live locals, under g_live_lock
  LocalObject* live_next;
  bool live;  // in that list
};

LocalObject* AsLocal(PyObject* self) { return reinterpret_cast<LocalObject*>(self); }

// Every live local with its Slot, oldest first, for TakeLocalDicts. Taken
// before an object's ThreadDicts lock, never while Python code runs.
std::mutex g_live_lock;
LocalObject* g_live_head = nullptr;
LocalObject* g_live_tail = nullptr;

void AddLive(LocalObject* self) {
  std::lock_guard<std::mutex> hold(g_live_lock);
  self->live_prev = g_live_tail;
  self->live_next = nullptr;
  (g_live_tail != nullptr ? g_live_tail->live_next : g_live_head) = self;
  g_live_tail = self;
  self->live = true;
}

void RemoveLive(LocalObject* self) {
  std::lock_guard<std::mutex> hold(g_live_lock);
  if (!self->live) return;
  (self->live_prev != nullptr ? self->live_prev->live_next : g_live_head) = self->live_next;
  (self->live_next != nullptr ? self->live_next->live_prev : g_live_tail) = self->live_prev;
  self->live = false;
}

PyObject* g_dict_name = nullptr;  // "__dict__", interned at import

// 1 if `name` is "__dict__", 0 if not, -1 with an error. A name that is not
// a str is compared as CPython's local does (its __eq__ decides).
int IsDictName(PyObject* name) {
  if (name == g_dict_name) return 1;
  if (PyUnicode_CheckExact(name)) {
    return PyUnicode_GET_LENGTH(name) == 8 && PyUnicode_Compare(name, g_dict_name) == 0 ? 1 : 0;
  }
  return PyObject_RichCompareBool(name, g_dict_name, Py_EQ);
}

PyObject* MakeThreadDict(LocalObject* self, bool run_init);

// The calling thread's dict of `self` as a new reference, made (and the
// subclass's __init__ run) on this thread's first use. nullptr with an error.
PyObject* ThisThreadsDict(LocalObject* self) {
  if (ThreadDict* mine = self->slot->Get()) return NewRef(mine->dict());
  return MakeThreadDict(self, /*run_init=*/true);
}

PyObject* MakeThreadDict(LocalObject* self, bool run_init) {
  if (EnsureThreadEndHook() < 0) return nullptr;
  PyObject* dict = PyDict_New();
  if (dict == nullptr) return nullptr;
  // PyDict_New may run the garbage collector, and a __del__ this object's
  // dict on this thread: keep that one.
  if (ThreadDict* made_meanwhile = self->slot->Get()) {
    Py_DECREF(dict);
    return NewRef(made_meanwhile->dict());
  }
  try {
    self->slot->Emplace(dict, *self->dicts);
  } catch (const std::bad_alloc&) {
    Py_DECREF(dict);
    return PyErr_NoMemory();
  } catch (const std::exception& e) {
    Py_DECREF(dict);
    return PyErr_Format(PyExc_RuntimeError, "tls.local: cannot store this thread's dict: %s",
                        e.what());
  }
  Py_DECREF(dict);  // the ThreadDict holds it
  PyTypeObject* type = Py_TYPE(self);
  if (run_init && type->tp_init != PyBaseObject_Type.tp_init) {
    PyObject* args = self->args != nullptr ? NewRef(self->args) : PyTuple_New(0);
    if (args == nullptr) return nullptr;
    const int failed = type->tp_init(reinterpret_cast<PyObject*>(self), args, self->kwargs);
    Py_DECREF(args);
    if (failed < 0) {
      self->slot->Del();  // as CPython: the next use in this thread tries again
      return nullptr;
    }
  }
  // __init__ may have reset this thread (emptying it): start over, once.
  if (ThreadDict* mine = self->slot->Get()) return NewRef(mine->dict());
  return MakeThreadDict(self, /*run_init=*/false);
}

PyObject* LocalNew(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  if (type->tp_init == PyBaseObject_Type.tp_init &&
      (PyTuple_GET_SIZE(args) != 0 || (kwargs != nullptr && PyDict_GET_SIZE(kwargs) != 0))) {
    PyErr_SetString(PyExc_TypeError, "Initialization arguments are not supported");
    return nullptr;
  }
  auto* self = reinterpret_cast<LocalObject*>(type->tp_alloc(type, 0));
  if (self == nullptr) return nullptr;
  self->args = NewRef(args);
  self->kwargs = XNewRef(kwargs);
  try {
    self->dicts = new std::shared_ptr<ThreadDicts>(std::make_shared<ThreadDicts>());
    self->slot = new tls::ThreadSlot<ThreadDict>();
  } catch (const std::bad_alloc&) {
    Py_DECREF(self);
    return PyErr_NoMemory();
  }
  AddLive(self);
  // This thread's dict now: type.__call__ runs __init__ here next.
  PyObject* dict = MakeThreadDict(self, /*run_init=*/false);
  if (dict == nullptr) {
    Py_DECREF(self);
    return nullptr;
  }
  Py_DECREF(dict);
  return reinterpret_cast<PyObject*>(self);
}

int LocalTraverse(PyObject* op, visitproc visit, void* arg) {
  LocalObject* self = AsLocal(op);
  Py_VISIT(Py_TYPE(op));
  Py_VISIT(self->args);
  Py_VISIT(self->kwargs);
  if (self->dicts == nullptr) return 0;
  ThreadDicts& all = **self->dicts;
  std::lock_guard<std::mutex> hold(all.lock);
  for (const ThreadDict* d = all.head; d != nullptr; d = d->next()) Py_VISIT(d->dict());
  return 0;
}

// Breaks cycles through the object: its arguments and every thread's
// attributes go (the dicts stay, empty).
int LocalClear(PyObject* op) {
  LocalObject* self = AsLocal(op);
  Py_CLEAR(self->args);
  Py_CLEAR(self->kwargs);
  if (self->dicts == nullptr) return 0;
  std::vector<PyObject*> dicts;
  {
    ThreadDicts& all = **self->dicts;
    std::lock_guard<std::mutex> hold(all.lock);
    for (const ThreadDict* d = all.head; d != nullptr; d = d->next()) {
      if (d->dict() != nullptr) dicts.push_back(NewRef(d->dict()));
    }
  }
  for (PyObject* d : dicts) {  // outside the lock: values' __del__ run here
    PyDict_Clear(d);
    Py_DECREF(d);
  }
  return 0;
}

void LocalDealloc(PyObject* op) {
  LocalObject* self = AsLocal(op);
  PyTypeObject* type = Py_TYPE(op);
  PyObject_GC_UnTrack(op);
  if (self->weakrefs != nullptr) PyObject_ClearWeakRefs(op);
  RemoveLive(self);  // before its Slot goes: TakeLocalDicts reads the dicts
  std::vector<PyObject*> released;
  if (self->slot != nullptr) {
    // Every thread's dict comes out of the Slot here, handed over by
    // ThreadDict::Close, and is freed below, after ~Slot.
    ThreadDicts* all = self->dicts->get();
    ThreadDicts* outer = t_releasing;
    t_releasing = all;
    delete self->slot;
    t_releasing = outer;
    released.swap(all->released);
  }
  delete self->dicts;
  Py_XDECREF(self->args);
  Py_XDECREF(self->kwargs);
  type->tp_free(op);
  for (PyObject* d : released) Py_DECREF(d);  // values' __del__ may run
  Py_DECREF(type);
}

PyObject* LocalGetAttr(PyObject* op, PyObject* name) {
  PyObject* dict = ThisThreadsDict(AsLocal(op));
  if (dict == nullptr) return nullptr;
  const int is_dict = IsDictName(name);
  if (is_dict != 0) {
    if (is_dict > 0) return dict;
    Py_DECREF(dict);
    return nullptr;
  }
  PyObject* value = _PyObject_GenericGetAttrWithDict(op, name, dict, 0);
  Py_DECREF(dict);
  return value;
}

int LocalSetAttr(PyObject* op, PyObject* name, PyObject* value) {
  const int is_dict = IsDictName(name);
  if (is_dict < 0) return -1;
  if (is_dict > 0) {
    PyErr_Format(PyExc_AttributeError, "'%.100s' object attribute '%S' is read-only",
                 Py_TYPE(op)->tp_name, g_dict_name);
    return -1;
  }
  PyObject* dict = ThisThreadsDict(AsLocal(op));
  if (dict == nullptr) return -1;
  const int result = _PyObject_GenericSetAttrWithDict(op, name, value, dict);
  Py_DECREF(dict);
  return result;
}

PyMemberDef g_local_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(LocalObject, weakrefs), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

constexpr char kLocalDoc[] =
    "local()\n--\n\n"
    "Thread-local data, as threading.local, that cleans up after itself.\n\n"
    "Each thread sees its own attributes. When a thread ends (after its\n"
    "at_exit handlers), and at its tls.reset(), each attribute value with a\n"
    "close() method is closed once and the attributes are dropped. Tasks on a\n"
    "pool thread see the worker's attributes. When the object dies, every\n"
    "thread's attributes are released at once (not closed). Subclasses' __init__\n"
    "runs again, with the constructor's arguments, in each thread that uses\n"
    "the object.";

PyType_Slot g_local_slots[] = {
    {Py_tp_doc, const_cast<char*>(kLocalDoc)},
    {Py_tp_new, reinterpret_cast<void*>(&LocalNew)},
    {Py_tp_dealloc, reinterpret_cast<void*>(&LocalDealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(&LocalTraverse)},
    {Py_tp_clear, reinterpret_cast<void*>(&LocalClear)},
    {Py_tp_getattro, reinterpret_cast<void*>(&LocalGetAttr)},
    {Py_tp_setattro, reinterpret_cast<void*>(&LocalSetAttr)},
    {Py_tp_members, g_local_members},
    {0, nullptr},
};

PyType_Spec g_local_spec = {
    "tls.local",
    sizeof(LocalObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    g_local_slots,
};

}  // namespace

bool TakeLocalDicts(std::vector<LocalDictRef>& out) {
  const size_t first = out.size();
  try {
    std::lock_guard<std::mutex> live(g_live_lock);
    for (LocalObject* self = g_live_head; self != nullptr; self = self->live_next) {
      ThreadDicts& all = **self->dicts;
      std::lock_guard<std::mutex> hold(all.lock);
      for (const ThreadDict* d = all.head; d != nullptr; d = d->next()) {
        if (d->dict() == nullptr) continue;  // handed to its dying object
        out.push_back(LocalDictRef{d->thread(), reinterpret_cast<PyObject*>(Py_TYPE(self)),
                                   d->dict()});  // if it throws, no reference was taken
        Py_INCREF(out.back().type);
        Py_INCREF(out.back().dict);
      }
    }
  } catch (const std::bad_alloc&) {
    for (size_t i = first; i < out.size(); ++i) {  // no lock held here: may run __del__
      Py_DECREF(out[i].type);
      Py_DECREF(out[i].dict);
    }
    out.erase(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
    PyErr_NoMemory();
    return false;
  }
  return true;
}

int RegisterLocal(PyObject* module) {
  g_dict_name = PyUnicode_InternFromString("__dict__");  // kept for good
  if (g_dict_name == nullptr) return -1;
  PyObject* type = PyType_FromSpec(&g_local_spec);
  if (type == nullptr) return -1;
  if (PyModule_AddObject(module, "local", type) < 0) {
    Py_DECREF(type);
    return -1;
  }
  return 0;
}

}  // namespace tls::bindings
