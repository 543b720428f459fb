"""CPython's own tests of threading.local, run against tls.local.

The file is the running interpreter's Lib/test/test_threading_local.py (pyenv
installs have it; Debian's interpreters in libpython3.X-testsuite). It is read
from there, not copied into this repository, and two of its tests are pointed
at the class under test before it runs:

- test_threading_local_clear_race creates ``threading.local()`` directly; here
  it creates ``self._local()``.
- the second doctest run means to re-run _threading_local's doctest against
  the C class, but the doctest's globals were copied from the module before
  its setUp rebinds ``_threading_local.local``, so it re-tests the pure-Python
  class. Here setUp puts tls.local into the doctest's own globals.

The pure-Python class's own test case (PyThreadingLocalTest) is left out: it
does not test tls.local. Everything else runs unchanged, on tls.local.
"""

import doctest
import importlib.util
import sys
import types
import unittest

import tls

CLEAR_RACE_BEFORE = "_ = threading.local()"
CLEAR_RACE_AFTER = "_ = self._local()"


def load_cpython_module():
    spec = importlib.util.find_spec("test.test_threading_local")
    if spec is None or spec.origin is None:
        raise unittest.SkipTest(
            "this interpreter has no Lib/test/test_threading_local.py "
            "(Debian: install libpython3.X-testsuite)")
    with open(spec.origin, encoding="utf-8") as f:
        source = f.read()
    if CLEAR_RACE_BEFORE not in source:
        raise AssertionError(
            f"{spec.origin}: test_threading_local_clear_race changed; "
            "update the patch in this file")
    source = source.replace(CLEAR_RACE_BEFORE, CLEAR_RACE_AFTER)
    module = types.ModuleType("cpython_test_threading_local")
    module.__file__ = spec.origin
    exec(compile(source, spec.origin, "exec"), module.__dict__)
    return module


class CPythonTestFileMissing(unittest.TestCase):
    reason = ""

    def test_cpython_test_threading_local(self):
        self.skipTest(self.reason)


def load_tests(loader, tests, pattern):
    try:
        upstream = load_cpython_module()
    except unittest.SkipTest as e:  # an interpreter without its test suite
        CPythonTestFileMissing.reason = str(e)
        return loader.loadTestsFromTestCase(CPythonTestFileMissing)

    class TlsLocalTest(upstream.ThreadLocalTest):
        _local = tls.local

    suite = unittest.TestSuite()
    suite.addTests(loader.loadTestsFromTestCase(TlsLocalTest))

    def use_tls_local(test):
        test.globs["local"] = tls.local

    suite.addTests(doctest.DocTestSuite("_threading_local", setUp=use_tls_local))
    suite.addTests(loader.loadTestsFromTestCase(DoctestUsesTheClassUnderTest))
    return suite


class DoctestUsesTheClassUnderTest(unittest.TestCase):
    """The doctest fix must be able to fail: its globals name tls.local."""

    def test_doctest_globals_name_tls_local(self):
        seen = []
        suite = doctest.DocTestSuite(
            "_threading_local", setUp=lambda t: (t.globs.update(local=tls.local),
                                                 seen.append(t.globs["local"])))
        if suite.countTestCases() == 0:
            self.skipTest("_threading_local has no doctest in this CPython")
        suite.run(unittest.TestResult())
        self.assertTrue(seen)
        self.assertTrue(all(x is tls.local for x in seen))


if __name__ == "__main__":
    unittest.main()
