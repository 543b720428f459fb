"""mypy's stubtest finds nothing wrong between tls/__init__.pyi and the `tls`
this interpreter imports (the test build under `bazel test`, an installed wheel
under tools/test_wheels.py).

mypy comes from Debian's python3-mypy (tools/setup.sh), which is installed for
Debian's Python 3.11 only. Its .py sources run on every supported CPython, so
the test puts just what stubtest needs on PYTHONPATH, in a temp folder:
  mypy/ (its mypyc .so files load on 3.11 only; other versions use the .py
  files), mypy_extensions, tomli (read by mypy on Python < 3.11), and
  typing_extensions: Debian's 4.4.0 fails to import on 3.12+ ("type
  'typing.TypeVar' is not an acceptable base type"), so the copy pip vendors in
  this interpreter's own site-packages is preferred (it is newer).
Not all of /usr/lib/python3/dist-packages: its other compiled modules are for 3.11.
stubtest_allowlist.txt lists what mypy 1.0.1 cannot know about Python 3.13.
"""

import glob
import importlib.util
import os
import subprocess
import sys
import tempfile
import unittest

DEBIAN = "/usr/lib/python3/dist-packages"
ALLOWLIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stubtest_allowlist.txt")


def vendored_typing_extensions():
    spec = importlib.util.find_spec("pip")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "_vendor", "typing_extensions.py")
    return path if os.path.exists(path) else None


def mypy_path(folder):
    """Links what stubtest needs into `folder`; returns it."""
    links = [os.path.join(DEBIAN, "mypy"), os.path.join(DEBIAN, "mypy_extensions.py")]
    links += glob.glob(os.path.join(DEBIAN, "*__mypyc.cpython-*.so"))  # mypyc's runtime (3.11)
    if sys.version_info < (3, 11):
        links.append(os.path.join(DEBIAN, "tomli"))
    # What newer mypy (sid's 2.x, for 3.14 and 3.15 in the chroot) imports too.
    links += [p for p in (os.path.join(DEBIAN, m) for m in ("librt", "ast_serialize", "pathspec"))
              if os.path.exists(p)]
    typing_extensions = vendored_typing_extensions() or os.path.join(DEBIAN, "typing_extensions.py")
    for src in links:
        os.symlink(src, os.path.join(folder, os.path.basename(src)))
    os.symlink(typing_extensions, os.path.join(folder, "typing_extensions.py"))
    return folder


class StubtestTest(unittest.TestCase):
    def test_stubtest_is_clean(self):
        self.assertTrue(os.path.exists(os.path.join(DEBIAN, "mypy", "stubtest.py")),
                        "Debian's python3-mypy is missing: run tools/setup.sh")
        with tempfile.TemporaryDirectory(dir=os.environ.get("TEST_TMPDIR")) as tmp:
            os.mkdir(os.path.join(tmp, "path"))
            os.mkdir(os.path.join(tmp, "work"))  # mypy must not see the links as user modules
            path = [mypy_path(os.path.join(tmp, "path"))] + [p for p in sys.path if p]
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(path), MYPY_CACHE_DIR=os.path.join(tmp, ".cache"))
            # The allowlist is for 3.13+ only (elsewhere its entries are unused,
            # which stubtest reports as errors).
            allow = ["--allowlist", ALLOWLIST] if sys.version_info >= (3, 13) else []
            # 3.14+ run sid's mypy 2.x, which knows the attributes the list
            # names for bookworm's mypy: there they are unused, not wrong.
            allow += ["--ignore-unused-allowlist"] if sys.version_info >= (3, 14) else []
            run = subprocess.run(
                [sys.executable, "-m", "mypy.stubtest", "tls"] + allow,
                cwd=os.path.join(tmp, "work"), env=env, capture_output=True, text=True, timeout=600)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertIn("Success", run.stdout)


if __name__ == "__main__":
    unittest.main()
