#include "bindings/wrapped.h"

#include <structmember.h>

#include <cstddef>
#include <memory>
#include <new>

#include "bindings/py_compat.h"
#include "bindings/tasks.h"

namespace tls::bindings {
namespace {

struct WrappedObject {
  PyObject_HEAD PyObject* fn;
  PyObject* context;   // contextvars.Context at wrap time; each call runs in a copy
  PyObject* snapshot;  // tls.Snapshot at wrap time
  PyObject* dict;      // attributes set on the wrapper, or nullptr
  PyObject* weakrefs;
  vectorcallfunc vectorcall;
};

WrappedObject* AsWrapped(PyObject* op) { return reinterpret_cast<WrappedObject*>(op); }

PyTypeObject* g_wrapped_type = nullptr;
PyObject* g_marker_name = nullptr;  // "_is_coroutine_marker", interned at import
PyObject* g_refusal = nullptr;      // tls._tasks._refuse_deferred_body

// fn, or nullptr with an error once the collector cleared the wrapper (a
// __del__ in the same garbage cycle may still reach it).
PyObject* FnOf(PyObject* op) {
  PyObject* fn = AsWrapped(op)->fn;
  if (fn == nullptr) PyErr_SetString(PyExc_RuntimeError, "tls.wrap: the wrapper was cleared");
  return fn;
}

// Runs the snapshot's task in a fresh copy of the context: the arguments
// with fn put first (in the slot vectorcall lets a callee borrow, when the
// caller offers it).
PyObject* WrappedCall(PyObject* op, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
  WrappedObject* self = AsWrapped(op);
  if (FnOf(op) == nullptr) return nullptr;
  const Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
  const Py_ssize_t total = nargs + (kwnames != nullptr ? PyTuple_GET_SIZE(kwnames) : 0);
  PyObject* const* with_fn;
  PyObject* borrowed_slot = nullptr;
  std::unique_ptr<PyObject*[]> copy;
  if ((nargsf & PY_VECTORCALL_ARGUMENTS_OFFSET) != 0) {
    PyObject** slot = const_cast<PyObject**>(args) - 1;
    borrowed_slot = *slot;
    *slot = self->fn;
    with_fn = slot;
  } else {
    copy.reset(new (std::nothrow) PyObject*[static_cast<size_t>(total) + 1]);
    if (copy == nullptr) return PyErr_NoMemory();
    copy[0] = self->fn;
    for (Py_ssize_t i = 0; i < total; ++i) copy[static_cast<size_t>(i) + 1] = args[i];
    with_fn = copy.get();
  }
  Py_INCREF(op);  // fn, the snapshot and the context outlive the call
  PyObject* result = nullptr;
  if (PyObject* context = PyContext_Copy(self->context)) {
    if (PyContext_Enter(context) == 0) {
      result = RunInSnapshot(self->snapshot, with_fn, nargs + 1, kwnames);
      if (PyContext_Exit(context) < 0) Py_CLEAR(result);
    }
    Py_DECREF(context);
  }
  if (copy == nullptr) const_cast<PyObject**>(args)[-1] = borrowed_slot;  // as it was
  Py_DECREF(op);
  return result;
}

// Whether calling fn surely runs its body: a plain Python function (or a
// bound method of one) whose code makes no generator, coroutine or async
// generator and that inspect.markcoroutinefunction did not mark. False means
// "ask inspect" (python/tls/_tasks.py, _refuse_deferred_body).
bool FunctionRunsItsBody(PyObject* inner);

bool PlainlyRunsItsBody(PyObject* fn) {
  PyObject* inner = PyMethod_Check(fn) ? PyMethod_GET_FUNCTION(fn) : fn;
  if (!PyFunction_Check(inner)) return false;
#ifdef Py_GIL_DISABLED
  // Its __code__ and __dict__ may be assigned by another thread meanwhile.
  bool plain = false;
  Py_BEGIN_CRITICAL_SECTION(inner);
  plain = FunctionRunsItsBody(inner);
  Py_END_CRITICAL_SECTION();
  return plain;
#else
  return FunctionRunsItsBody(inner);
#endif
}

// PlainlyRunsItsBody for a function object.
bool FunctionRunsItsBody(PyObject* inner) {
  auto* code = reinterpret_cast<PyCodeObject*>(PyFunction_GET_CODE(inner));
  if ((code->co_flags & (CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR)) != 0) return false;
  PyObject* dict = reinterpret_cast<PyFunctionObject*>(inner)->func_dict;
  if (dict == nullptr || PyDict_GET_SIZE(dict) == 0) return true;
  PyObject* marker = nullptr;
  const int marked = DictGetItemRef(dict, g_marker_name, &marker);
  Py_XDECREF(marker);
  if (marked < 0) PyErr_Clear();  // inspect will tell
  return marked == 0;
}

// _plainly_runs_its_body(fn): the same, for tls.ThreadPoolExecutor.submit.
PyObject* PlainlyRunsItsBodyCall(PyObject*, PyObject* fn) {
  return PyBool_FromLong(PlainlyRunsItsBody(fn));
}

// _set_refusal(check): the Python check for everything else (called once by
// tls._tasks at import): check(fn, api, example) raises TypeError or returns.
PyObject* SetRefusal(PyObject*, PyObject* check) {
  Py_INCREF(check);
  Py_XSETREF(g_refusal, check);
  Py_RETURN_NONE;
}

PyObject* MakeWrapped(PyObject* fn);

// wrap(fn, /)
PyObject* Wrap(PyObject*, PyObject* fn) {
  if (!PyCallable_Check(fn)) {
    PyErr_Format(PyExc_TypeError, "wrap() argument must be callable, not %.200s",
                 Py_TYPE(fn)->tp_name);
    return nullptr;
  }
  if (!PlainlyRunsItsBody(fn)) {
    if (g_refusal == nullptr) {
      PyErr_SetString(PyExc_RuntimeError, "tls.wrap: tls._tasks is not imported");
      return nullptr;
    }
    PyObject* checked = PyObject_CallFunction(g_refusal, "Oss", fn, "wrap", "tls.wrap({})");
    if (checked == nullptr) return nullptr;
    Py_DECREF(checked);
  }
  return MakeWrapped(fn);
}

PyObject* MakeWrapped(PyObject* fn) {
  PyObject* context = PyContext_CopyCurrent();
  if (context == nullptr) return nullptr;
  PyObject* snapshot = CaptureAll();
  if (snapshot == nullptr) {
    Py_DECREF(context);
    return nullptr;
  }
  auto* self = PyObject_GC_New(WrappedObject, g_wrapped_type);
  if (self == nullptr) {
    Py_DECREF(context);
    Py_DECREF(snapshot);
    return nullptr;
  }
  Py_INCREF(fn);
  self->fn = fn;
  self->context = context;
  self->snapshot = snapshot;
  self->dict = nullptr;
  self->weakrefs = nullptr;
  self->vectorcall = &WrappedCall;
  PyObject_GC_Track(self);
  return reinterpret_cast<PyObject*>(self);
}

int WrappedTraverse(PyObject* op, visitproc visit, void* arg) {
  WrappedObject* self = AsWrapped(op);
  Py_VISIT(Py_TYPE(op));
  Py_VISIT(self->fn);
  Py_VISIT(self->context);
  Py_VISIT(self->snapshot);
  Py_VISIT(self->dict);
  return 0;
}

int WrappedClear(PyObject* op) {
  WrappedObject* self = AsWrapped(op);
  Py_CLEAR(self->fn);
  Py_CLEAR(self->context);
  Py_CLEAR(self->snapshot);
  Py_CLEAR(self->dict);
  return 0;
}

void WrappedDealloc(PyObject* op) {
  PyTypeObject* type = Py_TYPE(op);
  PyObject_GC_UnTrack(op);
  if (AsWrapped(op)->weakrefs != nullptr) PyObject_ClearWeakRefs(op);
  WrappedClear(op);
  PyObject_GC_Del(op);
  Py_DECREF(type);
}

// fn.__dict__[name] as a new reference in *entry: 1 found, 0 not (no such
// entry, or fn has no __dict__), -1 with an error of fn's own.
int FnDictEntry(PyObject* fn, PyObject* name, PyObject** entry) {
  *entry = nullptr;
  PyObject* fn_dict = PyObject_GetAttrString(fn, "__dict__");
  if (fn_dict == nullptr) {
    if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return -1;
    PyErr_Clear();
    return 0;
  }
  const int found = PyDict_Check(fn_dict) ? DictGetItemRef(fn_dict, name, entry) : 0;
  Py_DECREF(fn_dict);
  return found;
}

// Its own attributes first (those set on it, the type's), then the entries
// of fn's __dict__, as functools.wraps would have copied them.
PyObject* WrappedGetAttr(PyObject* op, PyObject* name) {
  PyObject* found = PyObject_GenericGetAttr(op, name);
  if (found != nullptr || !PyErr_ExceptionMatches(PyExc_AttributeError)) return found;
  PyObject* fn = AsWrapped(op)->fn;
  if (fn == nullptr) return nullptr;
  PyObject *type, *value, *traceback;  // the AttributeError, kept unless fn's __dict__ decides
  PyErr_Fetch(&type, &value, &traceback);
  PyObject* entry = nullptr;
  if (FnDictEntry(fn, name, &entry) == 0) {
    PyErr_Restore(type, value, traceback);
    return nullptr;
  }
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(traceback);
  return entry;  // found, or nullptr with fn's own error
}

// As a function does: a wrapper held by a class binds to its instances.
PyObject* WrappedDescrGet(PyObject* op, PyObject* obj, PyObject*) {
  if (obj == nullptr || obj == Py_None) {
    Py_INCREF(op);
    return op;
  }
  return PyMethod_New(op, obj);
}

PyObject* WrappedRepr(PyObject* op) {
  PyObject* fn = AsWrapped(op)->fn;
  return fn != nullptr ? PyUnicode_FromFormat("<tls.wrap of %R>", fn)
                       : PyUnicode_FromString("<tls.wrap, cleared>");
}

// fn's attribute `name`, read when asked (functools.wraps copies it), unless
// one was set on the wrapper (then kept in its own dict, as a function keeps it).
PyObject* FnAttr(PyObject* op, void* name) {
  const char* attr = static_cast<const char*>(name);
  if (PyObject* own = AsWrapped(op)->dict) {
    PyObject* key = PyUnicode_FromString(attr);
    if (key == nullptr) return nullptr;
    PyObject* set = nullptr;
    const int found = DictGetItemRef(own, key, &set);
    Py_DECREF(key);
    if (found != 0) return set;  // found, or an error
  }
  PyObject* fn = FnOf(op);
  return fn != nullptr ? PyObject_GetAttrString(fn, attr) : nullptr;
}

int SetFnAttr(PyObject* op, PyObject* value, void* name) {
  if (value == nullptr) {
    PyErr_Format(PyExc_TypeError, "cannot delete %s", static_cast<const char*>(name));
    return -1;
  }
  PyObject* own = PyObject_GenericGetDict(op, nullptr);  // made on first use
  if (own == nullptr) return -1;
  const int rc = PyDict_SetItemString(own, static_cast<const char*>(name), value);
  Py_DECREF(own);
  return rc;
}

// Only tls.wrap makes wrappers.
PyObject* WrappedNew(PyTypeObject* type, PyObject*, PyObject*) {
  PyErr_Format(PyExc_TypeError, "cannot create '%.100s' instances: use tls.wrap(fn)",
               type->tp_name);
  return nullptr;
}

PyObject* FnWrapped(PyObject* op, void*) {
  PyObject* fn = FnOf(op);
  Py_XINCREF(fn);
  return fn;
}

PyGetSetDef g_wrapped_getset[] = {
    {"__wrapped__", &FnWrapped, nullptr, "the wrapped callable", nullptr},
    {"__name__", &FnAttr, &SetFnAttr, "the wrapped callable's", const_cast<char*>("__name__")},
    {"__qualname__", &FnAttr, &SetFnAttr, "the wrapped callable's",
     const_cast<char*>("__qualname__")},
    {"__doc__", &FnAttr, &SetFnAttr, "the wrapped callable's", const_cast<char*>("__doc__")},
    {"__module__", &FnAttr, &SetFnAttr, "the wrapped callable's", const_cast<char*>("__module__")},
    {"__dict__", &PyObject_GenericGetDict, &PyObject_GenericSetDict, "its own attributes", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyMemberDef g_wrapped_members[] = {
    {"__dictoffset__", T_PYSSIZET, offsetof(WrappedObject, dict), READONLY, nullptr},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(WrappedObject, weakrefs), READONLY, nullptr},
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(WrappedObject, vectorcall), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

PyType_Slot g_wrapped_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(&WrappedNew)},
    {Py_tp_dealloc, reinterpret_cast<void*>(&WrappedDealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(&WrappedTraverse)},
    {Py_tp_clear, reinterpret_cast<void*>(&WrappedClear)},
    {Py_tp_getattro, reinterpret_cast<void*>(&WrappedGetAttr)},
    {Py_tp_descr_get, reinterpret_cast<void*>(&WrappedDescrGet)},
    {Py_tp_repr, reinterpret_cast<void*>(&WrappedRepr)},
    {Py_tp_call, reinterpret_cast<void*>(&PyVectorcall_Call)},
    {Py_tp_getset, g_wrapped_getset},
    {Py_tp_members, g_wrapped_members},
    {0, nullptr},
};

PyType_Spec g_wrapped_spec = {
    "tls._tls._Wrapped",
    sizeof(WrappedObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    g_wrapped_slots,
};

constexpr char kWrapDoc[] =
    "wrap($module, fn, /)\n--\n\n"
    "wrap captures the calling thread's tls values and its contextvars now,\n"
    "and returns a callable that runs ``fn`` as a task in them, on whatever\n"
    "thread calls it, as often as it is called.\n\n"
    "Each call is a task of its own (``Snapshot.run``) in its own copy of the\n"
    "captured context (as ``contextvars.copy_context().run``), so calls may\n"
    "overlap on any threads, and what one call sets (tls or ContextVar) is not\n"
    "seen by the next. The callable reads as ``fn`` does (name, docstring,\n"
    "``__wrapped__``, as functools.wraps gives) and binds as a method when a\n"
    "class holds it.\n\n"
    "A generator function, ``async def`` function or async generator function\n"
    "(also through functools.partial or a bound method) raises TypeError: a\n"
    "call would only make the generator or coroutine, and its body would run\n"
    "later, outside the task. Consume it inside instead:\n"
    "``tls.wrap(lambda: list(gen()))``, ``tls.wrap(lambda: asyncio.run(main()))``.\n\n"
    "Example::\n\n"
    "    tls.set(\"request\", \"r-42\")\n"
    "    threading.Thread(target=tls.wrap(handle)).start()   # handle sees \"r-42\"";

PyMethodDef g_wrapped_methods[] = {
    {"wrap", &Wrap, METH_O, kWrapDoc},
    {"_plainly_runs_its_body", &PlainlyRunsItsBodyCall, METH_O,
     "_plainly_runs_its_body($module, fn, /)\n--\n\n"
     "Whether fn is a plain function inspect need not look at (not API)."},
    {"_set_refusal", &SetRefusal, METH_O,
     "_set_refusal($module, check, /)\n--\n\n"
     "Sets the Python check wrap() asks about other callables (not API)."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

int RegisterWrapped(PyObject* module) {
  g_marker_name = PyUnicode_InternFromString("_is_coroutine_marker");  // kept for good
  if (g_marker_name == nullptr) return -1;
  g_wrapped_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&g_wrapped_spec));
  if (g_wrapped_type == nullptr) return -1;  // kept for good, as the Snapshot type
  return PyModule_AddFunctions(module, g_wrapped_methods);
}

}  // namespace tls::bindings
