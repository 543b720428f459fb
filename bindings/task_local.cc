#include "bindings/task_local.h"

#include <structmember.h>

#include "bindings/fast_calls.h"
#include "bindings/py_compat.h"

namespace tls::bindings {
namespace {

// ---- AttrKey -------------------------------------------------------------
//
// The store key of one attribute name of one task_local object (or, with no
// name, of the marker that its __init__ ran). Hashed and compared by
// identity (object's), so no user key equals it and a lookup runs no Python
// code; it holds strs only, so it needs no garbage collection.

struct AttrKeyObject {
  PyObject_HEAD PyObject* owner;  // the task_local's type's __qualname__ (str)
  PyObject* name;                 // the attribute's name, or nullptr for the marker
};

PyTypeObject* g_attr_key_type = nullptr;

PyObject* NewAttrKey(PyObject* owner, PyObject* name) {
  auto* key = PyObject_New(AttrKeyObject, g_attr_key_type);
  if (key == nullptr) return nullptr;
  Py_INCREF(owner);
  Py_XINCREF(name);
  key->owner = owner;
  key->name = name;
  return reinterpret_cast<PyObject*>(key);
}

void AttrKeyDealloc(PyObject* op) {
  auto* key = reinterpret_cast<AttrKeyObject*>(op);
  PyTypeObject* type = Py_TYPE(op);
  Py_XDECREF(key->owner);
  Py_XDECREF(key->name);
  PyObject_Free(op);
  Py_DECREF(type);
}

// What tls.threads() lists for the key: `<task_local Request.user>`.
PyObject* AttrKeyRepr(PyObject* op) {
  auto* key = reinterpret_cast<AttrKeyObject*>(op);
  if (key->owner == nullptr) return PyUnicode_FromString("<task_local key>");
  if (key->name == nullptr)
    return PyUnicode_FromFormat("<task_local %U: __init__ ran>", key->owner);
  return PyUnicode_FromFormat("<task_local %U.%U>", key->owner, key->name);
}

// Only task_local makes keys (a key from anywhere else would name nothing).
PyObject* AttrKeyNew(PyTypeObject* type, PyObject*, PyObject*) {
  PyErr_Format(PyExc_TypeError, "cannot create '%.100s' instances", type->tp_name);
  return nullptr;
}

PyType_Slot g_attr_key_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(&AttrKeyNew)},
    {Py_tp_dealloc, reinterpret_cast<void*>(&AttrKeyDealloc)},
    {Py_tp_repr, reinterpret_cast<void*>(&AttrKeyRepr)},
    {Py_tp_doc, const_cast<char*>("A tls.task_local attribute's key in the store (not API).")},
    {0, nullptr},
};

PyType_Spec g_attr_key_spec = {
    "tls._task_local_key", sizeof(AttrKeyObject), 0, Py_TPFLAGS_DEFAULT, g_attr_key_slots,
};

// ---- task_local ----------------------------------------------------------

struct TaskLocalObject {
  PyObject_HEAD PyObject* args;  // for __init__ in each new view
  PyObject* kwargs;              // or nullptr
  PyObject* weakrefs;
  PyObject* keys;      // {name: AttrKey}, one per name ever set; shared by every thread
  PyObject* owner;     // the type's __qualname__, for the keys' repr
  PyObject* init_key;  // the marker's AttrKey, or nullptr: the type has no __init__ of its own
};

TaskLocalObject* AsTaskLocal(PyObject* op) { return reinterpret_cast<TaskLocalObject*>(op); }

PyObject* g_dict_name = nullptr;  // "__dict__", interned at import

bool HasOwnInit(PyTypeObject* type) { return type->tp_init != PyBaseObject_Type.tp_init; }

// `name` as an exact str (a new reference): a str subclass's value, so that
// no subclass __eq__/__hash__ runs on lookups and no object with a __dict__
// is kept by the keys. nullptr with a TypeError if it is not a str (as for
// any object's attributes).
PyObject* ExactName(PyObject* name) {
  if (PyUnicode_CheckExact(name)) {
    Py_INCREF(name);
    return name;
  }
  if (!PyUnicode_Check(name)) {
    PyErr_Format(PyExc_TypeError, "attribute name must be string, not '%.200s'",
                 Py_TYPE(name)->tp_name);
    return nullptr;
  }
  return PyUnicode_FromObject(name);
}

// Whether `name` (an exact str) is "__dict__".
bool IsDictName(PyObject* name) {
  return name == g_dict_name || PyUnicode_Compare(name, g_dict_name) == 0;
}

// The key of `name` as a new reference, made on its first use (one key per
// name, whichever thread makes it first). nullptr with an error.
PyObject* KeyFor(TaskLocalObject* self, PyObject* name) {
  PyObject* key = nullptr;
  if (DictGetItemRef(self->keys, name, &key) != 0) return key;  // found, or an error
  PyObject* made = NewAttrKey(self->owner, name);
  if (made == nullptr) return nullptr;
  PyObject* kept = PyDict_SetDefault(self->keys, name, made);  // borrowed: the winner
  Py_XINCREF(kept);
  Py_DECREF(made);
  return kept;
}

// Runs the type's __init__ if this view (thread or task) has not yet: its
// marker is not in the store. 0, or -1 with an error (the marker is taken
// back, so the next use tries again, as CPython's local does).
int EnsureInit(TaskLocalObject* self) {
  if (self->init_key == nullptr) return 0;
  PyObject* ran = StoreGet(self->init_key);
  if (ran != nullptr) {
    Py_DECREF(ran);
    return 0;
  }
  if (PyErr_Occurred() || StoreSet(self->init_key, Py_True) < 0) return -1;
  PyObject* args = self->args != nullptr ? (Py_INCREF(self->args), self->args) : PyTuple_New(0);
  if (args == nullptr) return -1;
  PyObject* op = reinterpret_cast<PyObject*>(self);
  const int rc = Py_TYPE(op)->tp_init(op, args, self->kwargs);
  Py_DECREF(args);
  if (rc < 0) {
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    if (StoreDelete(self->init_key) < 0) PyErr_WriteUnraisable(op);
    PyErr_Restore(type, value, traceback);
    return -1;
  }
  return 0;
}

// This view's attributes as a new dict (names in the order first set).
PyObject* ViewDict(TaskLocalObject* self) {
  PyObject* dict = PyDict_New();
  if (dict == nullptr) return nullptr;
  PyObject* items = PyDict_Items(self->keys);  // a copy: values' code may run below
  if (items == nullptr) {
    Py_DECREF(dict);
    return nullptr;
  }
  for (Py_ssize_t i = 0, n = PyList_GET_SIZE(items); i < n; ++i) {
    PyObject* item = PyList_GET_ITEM(items, i);
    PyObject* value = StoreGet(PyTuple_GET_ITEM(item, 1));
    if (value == nullptr && PyErr_Occurred()) {
      Py_DECREF(items);
      Py_DECREF(dict);
      return nullptr;
    }
    const int rc = value != nullptr ? PyDict_SetItem(dict, PyTuple_GET_ITEM(item, 0), value) : 0;
    Py_XDECREF(value);
    if (rc < 0) {
      Py_DECREF(items);
      Py_DECREF(dict);
      return nullptr;
    }
  }
  Py_DECREF(items);
  return dict;
}

PyObject* GetAttrNamed(TaskLocalObject* self, PyObject* name) {
  PyObject* op = reinterpret_cast<PyObject*>(self);
  if (EnsureInit(self) < 0) return nullptr;
  if (IsDictName(name)) return ViewDict(self);
  PyObject* key = nullptr;
  const int known = DictGetItemRef(self->keys, name, &key);
  if (known < 0) return nullptr;
  if (known > 0) {
    PyObject* value = StoreGet(key);
    Py_DECREF(key);
    if (value != nullptr || PyErr_Occurred()) return value;
  }
  // The class's attributes and descriptors (methods, __slots__, properties),
  // or the AttributeError.
  return PyObject_GenericGetAttr(op, name);
}

PyObject* TaskLocalGetAttr(PyObject* op, PyObject* given) {
  PyObject* name = ExactName(given);
  if (name == nullptr) return nullptr;
  PyObject* value = GetAttrNamed(AsTaskLocal(op), name);
  Py_DECREF(name);
  return value;
}

// The class's data descriptor for `name` (a __slots__ member, a property), as
// a new reference, or nullptr (with an error set only on failure).
PyObject* DataDescriptor(PyTypeObject* type, PyObject* name) {
  PyObject* found = TypeLookupRef(type, name);
  if (found != nullptr && Py_TYPE(found)->tp_descr_set == nullptr) Py_CLEAR(found);
  return found;
}

int SetAttrNamed(TaskLocalObject* self, PyObject* name, PyObject* value) {
  PyObject* op = reinterpret_cast<PyObject*>(self);
  if (IsDictName(name)) {
    PyErr_Format(PyExc_AttributeError, "'%.100s' object attribute '__dict__' is read-only",
                 Py_TYPE(op)->tp_name);
    return -1;
  }
  if (PyObject* descr = DataDescriptor(Py_TYPE(op), name)) {
    const int rc = Py_TYPE(descr)->tp_descr_set(descr, op, value);
    Py_DECREF(descr);
    return rc;
  }
  if (PyErr_Occurred() || EnsureInit(self) < 0) return -1;
  if (value != nullptr) {
    PyObject* key = KeyFor(self, name);
    if (key == nullptr) return -1;
    const int rc = StoreSet(key, value);
    Py_DECREF(key);
    return rc;
  }
  PyObject* key = nullptr;
  const int known = DictGetItemRef(self->keys, name, &key);
  if (known < 0) return -1;
  const int removed = known > 0 ? StoreDelete(key) : 0;
  Py_XDECREF(key);
  if (removed == 0) {
    PyErr_Format(PyExc_AttributeError, "'%.100s' object has no attribute '%U'",
                 Py_TYPE(op)->tp_name, name);
    return -1;
  }
  return removed < 0 ? -1 : 0;
}

int TaskLocalSetAttr(PyObject* op, PyObject* given, PyObject* value) {
  PyObject* name = ExactName(given);
  if (name == nullptr) return -1;
  const int rc = SetAttrNamed(AsTaskLocal(op), name, value);
  Py_DECREF(name);
  return rc;
}

PyObject* TaskLocalNew(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  if (!HasOwnInit(type) &&
      (PyTuple_GET_SIZE(args) != 0 || (kwargs != nullptr && PyDict_GET_SIZE(kwargs) != 0))) {
    PyErr_SetString(PyExc_TypeError, "Initialization arguments are not supported");
    return nullptr;
  }
  auto* self = reinterpret_cast<TaskLocalObject*>(type->tp_alloc(type, 0));
  if (self == nullptr) return nullptr;
  PyObject* op = reinterpret_cast<PyObject*>(self);
  Py_INCREF(args);
  self->args = args;
  Py_XINCREF(kwargs);
  self->kwargs = kwargs;
  self->keys = PyDict_New();
  self->owner = self->keys == nullptr
                    ? nullptr
                    : PyObject_GetAttrString(reinterpret_cast<PyObject*>(type), "__qualname__");
  if (self->owner == nullptr) {
    Py_DECREF(op);
    return nullptr;
  }
  if (HasOwnInit(type)) {
    // type.__call__ runs __init__ next, in this view: mark it as run here.
    self->init_key = NewAttrKey(self->owner, nullptr);
    if (self->init_key == nullptr || StoreSet(self->init_key, Py_True) < 0) {
      Py_DECREF(op);
      return nullptr;
    }
  }
  return op;
}

int TaskLocalTraverse(PyObject* op, visitproc visit, void* arg) {
  TaskLocalObject* self = AsTaskLocal(op);
  Py_VISIT(Py_TYPE(op));
  Py_VISIT(self->args);
  Py_VISIT(self->kwargs);
  return 0;
}

int TaskLocalClear(PyObject* op) {
  TaskLocalObject* self = AsTaskLocal(op);
  Py_CLEAR(self->args);
  Py_CLEAR(self->kwargs);
  return 0;
}

// Drops the calling view's attributes and marker (not closed, as
// threading.local drops them); other threads' stay to their end or reset.
void DropThisViewsValues(TaskLocalObject* self) {
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  // A copy of the keys: values' __del__ may run, and use the object's other names.
  PyObject* keys = self->keys != nullptr ? PyDict_Values(self->keys) : nullptr;
  if (self->keys != nullptr && keys == nullptr) PyErr_WriteUnraisable(nullptr);
  for (Py_ssize_t i = 0, n = keys != nullptr ? PyList_GET_SIZE(keys) : 0; i < n; ++i) {
    if (StoreDelete(PyList_GET_ITEM(keys, i)) < 0) PyErr_WriteUnraisable(PyList_GET_ITEM(keys, i));
  }
  Py_XDECREF(keys);
  if (self->init_key != nullptr && StoreDelete(self->init_key) < 0) {
    PyErr_WriteUnraisable(self->init_key);
  }
  PyErr_Restore(type, value, traceback);
}

void TaskLocalDealloc(PyObject* op) {
  TaskLocalObject* self = AsTaskLocal(op);
  PyTypeObject* type = Py_TYPE(op);
  PyObject_GC_UnTrack(op);
  if (self->weakrefs != nullptr) PyObject_ClearWeakRefs(op);
  DropThisViewsValues(self);
  Py_CLEAR(self->args);
  Py_CLEAR(self->kwargs);
  Py_CLEAR(self->keys);
  Py_CLEAR(self->owner);
  Py_CLEAR(self->init_key);
  type->tp_free(op);
  Py_DECREF(type);
}

PyMemberDef g_task_local_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(TaskLocalObject, weakrefs), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

constexpr char kTaskLocalDoc[] =
    "task_local()\n--\n\n"
    "Thread-local data, as threading.local, that tasks carry.\n\n"
    "Each attribute is a tls value of the calling thread, so the rules of\n"
    "tls.set's values apply: a task (Snapshot.run, wrap, ThreadPoolExecutor)\n"
    "sees the attributes of the thread that submitted it, as they were at\n"
    "capture, never the pool thread's; what it sets is its own and is closed\n"
    "when it ends. Values with a close() method are closed once at the\n"
    "thread's end (after its at_exit handlers) and at its tls.reset().\n"
    "Subclasses' __init__ runs again, with the constructor's arguments, in\n"
    "each thread and task that starts without this object's attributes.\n"
    "__dict__ is a copy of the caller's attributes.";

PyType_Slot g_task_local_slots[] = {
    {Py_tp_doc, const_cast<char*>(kTaskLocalDoc)},
    {Py_tp_new, reinterpret_cast<void*>(&TaskLocalNew)},
    {Py_tp_dealloc, reinterpret_cast<void*>(&TaskLocalDealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(&TaskLocalTraverse)},
    {Py_tp_clear, reinterpret_cast<void*>(&TaskLocalClear)},
    {Py_tp_getattro, reinterpret_cast<void*>(&TaskLocalGetAttr)},
    {Py_tp_setattro, reinterpret_cast<void*>(&TaskLocalSetAttr)},
    {Py_tp_members, g_task_local_members},
    {0, nullptr},
};

PyType_Spec g_task_local_spec = {
    "tls.task_local",
    sizeof(TaskLocalObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    g_task_local_slots,
};

}  // namespace

int RegisterTaskLocal(PyObject* module) {
  g_dict_name = PyUnicode_InternFromString("__dict__");  // kept for good
  if (g_dict_name == nullptr) return -1;
  g_attr_key_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&g_attr_key_spec));
  if (g_attr_key_type == nullptr) return -1;  // kept for good: the keys outlive any module
  PyObject* type = PyType_FromSpec(&g_task_local_spec);
  if (type == nullptr) return -1;
  if (PyModule_AddObject(module, "task_local", type) < 0) {
    Py_DECREF(type);
    return -1;
  }
  return 0;
}

}  // namespace tls::bindings
