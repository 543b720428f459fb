"""One engine for Python and C++: a user's own C++ extension (cpp_peer.cc),
built against the package's engine, shares IDs, reset/unload, tasks, thread
ends and the engine's keyed store (tls.cpp) with Python (docs/python-cpp.md).

Under `bazel test`, Bazel builds the extension against //core:libtls-core.so.3
and passes its path. Against an installed wheel (tools/test_wheels.py) this
file builds it as a user would, with a C++ compiler and `python -m tls
--includes --libs`, and skips, saying why, if there is no compiler."""

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import unittest
import weakref

import tls

# Bazel passes its build as the first argument; `python -m unittest` passes none.
PEER_PATH = sys.argv.pop(1) if len(sys.argv) > 1 and sys.argv[1].endswith(".so") else None
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpp_peer.cc")
_built = {}


def build_peer():
    """The path of a tls_cpp_peer extension: Bazel's, else one compiled now
    against the installed package; None (and why) if it cannot be built."""
    if PEER_PATH:
        return PEER_PATH, None
    if "path" in _built or "why" in _built:
        return _built.get("path"), _built.get("why")
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        _built["why"] = "no C++ compiler (c++, g++ or $CXX) to build the extension with"
        return None, _built["why"]
    flags = subprocess.run([sys.executable, "-m", "tls", "--includes", "--libs"],
                           capture_output=True, text=True, check=True).stdout.split()
    out_dir = tempfile.mkdtemp(prefix="tls-cpp-peer.")
    out = os.path.join(out_dir, "tls_cpp_peer" + sysconfig.get_config_var("EXT_SUFFIX"))
    cmd = [cxx, "-std=c++20", "-O1", "-shared", "-fPIC", SOURCE,
           "-I" + sysconfig.get_paths()["include"], *flags, "-o", out]
    step = subprocess.run(cmd, capture_output=True, text=True)
    if step.returncode != 0:
        raise RuntimeError(f"building the extension failed: {' '.join(cmd)}\n{step.stderr}")
    _built["path"] = out
    return out, None


def load_peer():
    path, why = build_peer()
    if path is None:
        raise unittest.SkipTest(why)
    spec = importlib.util.spec_from_file_location("tls_cpp_peer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Session:
    """A plain object with no C++ form."""


def on_thread(fn):
    """fn() on a new threading.Thread; its result after join()."""
    box = {}
    t = threading.Thread(target=lambda: box.update(result=fn()))
    t.start()
    t.join()
    return box["result"]


class OneEngineTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.peer = load_peer()

    def setUp(self):
        tls.reset()
        self.peer.take_log()

    def test_extension_links_the_engine_the_package_loaded(self):
        with open("/proc/self/maps") as f:
            engines = {line.split()[-1] for line in f if "libtls-core.so" in line}
        self.assertEqual(len(engines), 1, engines)

    def test_ids_agree_between_python_and_cpp_on_every_thread(self):
        self.assertEqual(self.peer.id(), tls.id())
        pairs = [on_thread(lambda: (tls.id(), self.peer.id())) for _ in range(8)]
        for py_id, cpp_id in pairs:
            self.assertEqual(py_id, cpp_id)
        self.assertEqual(len({p for p, _ in pairs}), 8)

    def test_unload_gives_both_sides_the_same_new_id(self):
        def body():
            before = tls.id()
            tls.unload()
            return before, self.peer.id(), tls.id()
        before, cpp_after, py_after = on_thread(body)
        self.assertNotEqual(before, cpp_after)
        self.assertEqual(cpp_after, py_after)

    def test_reset_closes_the_extensions_values_and_forgets_them(self):
        def body():
            self.peer.set_closing("conn", "a")
            self.peer.set_str("user", "ada")
            tls.reset()
            return self.peer.take_log(), self.peer.get_str("user")
        log, user = on_thread(body)
        self.assertEqual(log, ["close a"])
        self.assertIsNone(user)

    def test_extensions_values_closed_before_join_returns(self):
        late = []
        for i in range(200):
            t = threading.Thread(target=self.peer.set_closing, args=("conn", str(i)))
            t.start()
            t.join()
            if self.peer.take_log() != [f"close {i}"]:
                late.append(i)
        self.assertEqual(late, [])

    def test_thread_end_runs_handlers_of_both_languages_newest_first_then_cpp_then_python_values(self):
        class PyValue:
            def close(inner):
                self.peer.log("close python value")

        def body():
            tls.at_exit(lambda: self.peer.log("python at_exit 1"))
            self.peer.at_exit("cpp 2")
            tls.at_exit(lambda: self.peer.log(f"python at_exit 3 sees {self.peer.get_str('k')}"))
            self.peer.set_str("k", "v")
            self.peer.set_closing("cpp", "cpp value")
            tls.set("py", PyValue())
        on_thread(body)
        self.assertEqual(self.peer.take_log(), [
            "python at_exit 3 sees v", "at_exit cpp 2", "python at_exit 1",
            "close cpp value", "close python value"])

    def test_a_native_threads_cpp_store_outlives_its_gil_sections(self):
        self.assertEqual(self.peer.native_gil_sections(), ("kept", True))

    def test_pool_task_sees_the_submitters_cpp_values(self):
        self.peer.set_str("request", "r-17")
        tls.cpp.set("trace", "t-9")
        with tls.ThreadPoolExecutor(max_workers=1) as pool:
            seen = pool.submit(lambda: (self.peer.get_str("request"), self.peer.get_str("trace"),
                                        tls.id() == self.peer.id())).result()
        self.assertEqual(seen, ("r-17", "t-9", True))

    def test_cpp_wrap_carries_python_set_values_to_a_cpp_thread(self):
        tls.cpp.set("request", "r-18")
        value, task_id, thread_id = self.peer.on_cpp_thread("request")
        self.assertEqual(value, "r-18")
        self.assertNotEqual(task_id, thread_id)  # the task has its own ID
        self.assertNotIn(task_id, (tls.id(), 0))


class CrossLanguageValuesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.peer = load_peer()

    def setUp(self):
        tls.reset()

    def test_cpp_reads_what_python_set_with_tls_cpp(self):
        tls.cpp.set("request_id", "r-1 é")
        tls.cpp.set("rows", 7)
        self.assertEqual(self.peer.get_str("request_id"), "r-1 é")
        self.assertEqual(self.peer.get_int64("rows"), 7)

    def test_python_reads_what_cpp_set(self):
        self.peer.set_str("user", "ada")
        self.peer.set_int("rows", -3)  # a C++ int: every integer type reads as int
        self.assertEqual(tls.cpp.get("user"), "ada")
        self.assertEqual(tls.cpp.get("rows"), -3)

    def test_a_cpp_type_with_no_python_form_is_a_type_error_naming_it(self):
        self.peer.set_point("p")
        with self.assertRaisesRegex(TypeError, r"'p' is a .*Point"):
            tls.cpp.get("p")

    def test_cpp_reads_a_python_object_as_tls_python_object(self):
        handler = object()
        tls.cpp.set("handler", handler)
        self.assertIs(self.peer.get_object("handler"), handler)

    def test_python_reads_an_object_cpp_holds_as_itself(self):
        logger = Session()
        self.peer.set_object("logger", logger)
        self.assertIs(tls.cpp.get("logger"), logger)
        ref = weakref.ref(logger)
        del logger
        self.assertIsNotNone(ref())  # the store holds it
        tls.reset()
        self.assertIsNone(ref())

    def test_a_cpp_task_on_a_cpp_thread_carries_a_held_object_and_lets_it_go(self):
        session = Session()
        ref = weakref.ref(session)
        tls.cpp.set("session", session)
        tls.cpp.set("request", "r-19")
        del session
        self.assertEqual(self.peer.on_cpp_thread("request")[0], "r-19")
        self.assertIsNotNone(ref())
        tls.cpp.delete("session")
        self.assertIsNone(ref())

    def test_an_object_dropped_off_python_is_released_at_the_next_bytecode_boundaries(self):
        # The last handle goes on a std::thread with no Python state: no GIL is
        # taken there; the main thread (this test's) drops it soon after.
        session = Session()
        ref = weakref.ref(session)
        tls.cpp.set("k", session)
        del session
        self.peer.drop_off_thread("k")
        for _ in range(10_000):
            if ref() is None:
                break
        self.assertIsNone(ref())

    def test_python_store_and_engine_store_are_apart(self):
        tls.set("k", "python")
        self.assertIsNone(self.peer.get_str("k"))
        tls.cpp.set("k", "engine")
        self.assertEqual(tls.get("k"), "python")
        self.assertEqual(self.peer.get_str("k"), "engine")


class TlsCppTest(unittest.TestCase):
    """tls.cpp on its own: the mapping, the key rule, the errors."""

    def setUp(self):
        tls.reset()

    def test_each_context_type_round_trips(self):
        for value in ["text", "", "ü€😀", b"\x00\xff", True, False, 0, -1, 2**63 - 1, -2**63,
                      2**64 - 1, 1.5, float("inf"), None]:
            with self.subTest(value=value):
                tls.cpp.set("k", value)
                got = tls.cpp.get("k", "missing")
                self.assertEqual(got, value)
                self.assertIs(type(got), type(value))

    def test_subclasses_of_str_int_float_are_stored_as_their_base_type(self):
        import enum

        class Color(enum.IntEnum):
            RED = 1

        class Name(str):
            pass
        for value, base in ((Color.RED, int), (Name("ada"), str), (True, bool)):
            with self.subTest(value=value):
                tls.cpp.set("k", value)
                got = tls.cpp.get("k")
                self.assertIs(type(got), base)
                self.assertEqual(got, value)

    def test_str_and_int_keys_are_the_cpp_string_and_integer_keys(self):
        tls.cpp.set("1", "text key")
        tls.cpp.set(1, "integer key")
        tls.cpp.set(2**64 - 1, "unsigned key")
        self.assertEqual(tls.cpp.get("1"), "text key")
        self.assertEqual(tls.cpp.get(1), "integer key")
        self.assertEqual(tls.cpp.get(2**64 - 1), "unsigned key")

    def test_keys_show_in_threads_as_cpp_keys(self):
        tls.cpp.set("request_id", "r")
        me = next(r for r in tls.threads() if r.id == tls.id())
        self.assertIn('"request_id"', me.cpp_keys)  # C++'s Key::ToString, quoted
        self.assertNotIn("'request_id'", me.python_keys)

    def test_any_other_object_is_held_and_read_back_as_itself(self):
        for value in (object(), [1, 2], {"a": 1}, Session(), 1 + 2j):
            with self.subTest(value=value):
                tls.cpp.set("k", value)
                self.assertIs(tls.cpp.get("k"), value)

    def test_a_held_object_is_released_when_replaced_deleted_reset_or_its_thread_ends(self):
        def released_by(end):
            value = Session()
            ref = weakref.ref(value)
            tls.cpp.set("k", value)
            del value
            alive = ref() is not None
            end()
            return alive and ref() is None
        self.assertTrue(released_by(lambda: tls.cpp.set("k", 1)))
        self.assertTrue(released_by(lambda: tls.cpp.delete("k")))
        self.assertTrue(released_by(tls.reset))
        refs = []

        def body():
            value = Session()
            refs.append(weakref.ref(value))
            tls.cpp.set("k", value)
        on_thread(body)
        self.assertIsNone(refs[0]())

    def test_held_objects_are_released_not_closed(self):
        closed = []

        class Closeable:
            def close(self):
                closed.append(self)
        tls.cpp.set("k", Closeable())
        tls.reset()
        on_thread(lambda: tls.cpp.set("k", Closeable()))
        self.assertEqual(closed, [])

    def test_missing_key_gives_the_default(self):
        self.assertIsNone(tls.cpp.get("nothing"))
        self.assertEqual(tls.cpp.get("nothing", 5), 5)

    def test_delete_removes_and_says_whether_it_was_there(self):
        tls.cpp.set("k", 1)
        self.assertTrue(tls.cpp.delete("k"))
        self.assertFalse(tls.cpp.delete("k"))
        self.assertIsNone(tls.cpp.get("k"))

    def test_other_keys_are_type_errors(self):
        for call in (lambda: tls.cpp.set(1.5, 1), lambda: tls.cpp.set(("a",), 1),
                     lambda: tls.cpp.get(b"k"), lambda: tls.cpp.delete(None)):
            with self.subTest(call=call), self.assertRaises(TypeError):
                call()

    def test_integers_outside_int64_and_uint64_are_overflow_errors(self):
        for n in (2**64, -2**63 - 1):
            with self.subTest(n=n):
                with self.assertRaises(OverflowError):
                    tls.cpp.set("k", n)
                with self.assertRaises(OverflowError):
                    tls.cpp.set(n, 1)

    def test_wrong_argument_counts_read_like_python(self):
        with self.assertRaisesRegex(TypeError, r"set\(\)"):
            tls.cpp.set("k")
        with self.assertRaisesRegex(TypeError, r"get\(\)"):
            tls.cpp.get()

    def test_values_are_per_thread(self):
        tls.cpp.set("k", "main")
        self.assertIsNone(on_thread(lambda: tls.cpp.get("k")))
        self.assertEqual(tls.cpp.get("k"), "main")

    def test_tasks_carry_them_and_a_tasks_own_stay_in_the_task(self):
        tls.cpp.set("k", "submitter")
        with tls.ThreadPoolExecutor(max_workers=1) as pool:
            def task():
                seen = tls.cpp.get("k")
                tls.cpp.set("k", "task")
                tls.cpp.set("own", 1)
                return seen
            self.assertEqual(pool.submit(task).result(), "submitter")
            self.assertEqual(pool.submit(lambda: tls.cpp.get("own")).result(), None)
        self.assertEqual(tls.cpp.get("k"), "submitter")

    def test_reset_releases_them(self):
        tls.cpp.set("k", "v")
        tls.reset()
        self.assertIsNone(tls.cpp.get("k"))

    def test_functions_are_named_as_tls_cpp(self):
        self.assertEqual(tls.cpp.set.__module__, "tls.cpp")
        self.assertEqual(tls.cpp.__all__, ["delete", "get", "set"])


if __name__ == "__main__":
    unittest.main()
