"""The wheels built by //python:wheels: one per supported CPython found, each
well-formed, tagged cpXY-cpXY-<manylinux tag>, carrying an optimised and
stripped release extension without the test hooks, with full metadata. The
default interpreter's wheel installs with `pip install --no-index` into a
fresh venv, where `import tls` works in a new process.

Args: docs/python.md, the default wheel, then every wheel."""

import base64
import csv
import email.parser
import hashlib
import io
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import unittest
import zipfile

import manylinux

PYTHON_DOC = sys.argv.pop(1) if len(sys.argv) > 1 else None
WHEEL = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else None
WHEELS = [os.path.abspath(sys.argv.pop(1)) for _ in range(len(sys.argv) - 1)]
CHECK = textwrap.dedent("""
    import sys, threading, tls
    assert tls.__file__.startswith(sys.prefix), tls.__file__
    tls.set("k", "main")
    seen = []
    def worker():
        tls.set("k", "worker")
        tls.at_exit(lambda: seen.append(("exit", tls.get("k"), tls.id())))
    t = threading.Thread(target=worker)
    t.start(); t.join()
    assert seen and seen[0][:2] == ("exit", "worker") and seen[0][2] != tls.id(), seen
    assert tls.get("k") == "main"
    tls.at_exit(lambda: print("main exit", tls.get("k"), flush=True))
    print("ok", tls.__file__.endswith("__init__.py"), flush=True)
""")


# Interpreter tag, ABI tag (cp313t for the free-threaded 3.13), platform.
VERSION = "0.4.0"  # python/BUILD's
DIST_INFO = f"tls-{VERSION}.dist-info/"
ENGINE_SONAME = "libtls-core.so.3"
ENGINE = "tls/lib/" + ENGINE_SONAME
NAME = re.compile("tls-" + re.escape(VERSION) +
                  r"-(cp3\d+)-(cp3\d+t?)-(manylinux_2_\d+_x86_64)\.whl")


class WheelContentsTest(unittest.TestCase):
    """Each check runs on every wheel (one subTest per wheel)."""

    def setUp(self):
        self.assertTrue(WHEELS, "pass docs/python.md, the default wheel, then every wheel")

    def wheels(self):
        for path in WHEELS:
            with self.subTest(wheel=os.path.basename(path)), zipfile.ZipFile(path) as zf:
                yield path, zf

    def extension(self, path, zf):
        tag = NAME.fullmatch(os.path.basename(path)).group(2)
        suffix = f".cpython-{tag[2:]}-x86_64-linux-gnu.so"
        return zf.read("tls/_tls" + suffix)

    def metadata(self, zf):
        return email.parser.Parser().parsestr(zf.read(DIST_INFO + "METADATA").decode())

    def test_one_wheel_per_interpreter_and_the_default_is_this_one(self):
        tags = [NAME.fullmatch(os.path.basename(w)).group(2) for w in WHEELS]
        self.assertEqual(len(tags), len(set(tags)))
        self.assertIn(WHEEL, WHEELS)
        me = "cp%d%d" % sys.version_info[:2]
        self.assertEqual(NAME.fullmatch(os.path.basename(WHEEL)).groups()[:2], (me, me))

    def test_file_name_and_wheel_tag_agree(self):
        for path, zf in self.wheels():
            match = NAME.fullmatch(os.path.basename(path))
            self.assertIsNotNone(match, f"name is tls-{VERSION}-cpXY-cpXY[t]-manylinux_2_N_x86_64.whl")
            self.assertEqual(match.group(1), match.group(2).rstrip("t"))
            wheel = zf.read(DIST_INFO + "WHEEL").decode()
            self.assertIn("Root-Is-Purelib: false", wheel)
            self.assertIn("Tag: " + "-".join(match.groups()), wheel)

    def test_platform_tag_is_the_strongest_the_extension_allows(self):
        order = [f"{t}_x86_64" for t, _ in manylinux.POLICIES]
        for path, zf in self.wheels():
            platform = NAME.fullmatch(os.path.basename(path)).group(3)
            tags = [manylinux.strongest_tag(*manylinux.read_needs(binary), [ENGINE_SONAME])
                    for binary in (self.extension(path, zf), zf.read(ENGINE))]
            self.assertEqual(max(tags, key=order.index), platform)

    def test_extension_links_the_engine_the_wheel_carries(self):
        for path, zf in self.wheels():
            so = self.extension(path, zf)
            needed, _ = manylinux.read_needs(so)
            self.assertIn(ENGINE_SONAME, needed)
            self.assertIn(b"$ORIGIN/lib\0", so)  # its RUNPATH: tls/lib/ beside it
            engine = zf.read(ENGINE)
            self.assertIn(ENGINE_SONAME.encode() + b"\0", engine)  # its SONAME
            self.assertNotIn(b".symtab\0", engine)
            self.assertNotIn(b"__assert_fail", engine)

    def test_wheel_carries_what_cpp_builds_against(self):
        for path, zf in self.wheels():
            names = set(zf.namelist())
            for header in ("tls.h", "store.h", "slot.h", "internal/abi.h", "python.h"):
                self.assertIn("tls/include/tls/" + header, names)
            self.assertNotIn("tls/include/tls/embedder.h", names)  # bindings only
            config = zf.read("tls/lib/cmake/TlsCore/TlsCoreConfig.cmake").decode()
            self.assertIn("add_library(tls::core SHARED IMPORTED)", config)
            version = zf.read("tls/lib/cmake/TlsCore/TlsCoreConfigVersion.cmake").decode()
            self.assertIn(f'set(PACKAGE_VERSION "{VERSION}")', version)
            pc = zf.read("tls/lib/pkgconfig/tls-core.pc").decode()
            self.assertIn(f"Version: {VERSION}", pc)
            self.assertIn("prefix=${pcfiledir}/../..", pc)

    def test_extension_is_optimised_stripped_and_has_no_test_hooks(self):
        for path, zf in self.wheels():
            so = self.extension(path, zf)
            self.assertEqual(so[:4], b"\x7fELF")
            self.assertGreater(len(so), 10_000)
            # Stripped: no static symbol table left (.dynsym stays).
            self.assertNotIn(b".symtab\0", so)
            # Optimised build (-c opt defines NDEBUG): no assert() left to call.
            self.assertNotIn(b"__assert_fail", so)
            # The release build has no `_testing` submodule.
            self.assertNotIn(b"run_in_native_thread", so)
            self.assertNotIn(b"_testing", so)

    def test_extension_is_plain_c_api_without_pybind11(self):
        # The binding style (bindings/BUILD): pybind11 builds only the test
        # hooks. Its internals would leave their ID string ("__pybind11_
        # internals_v...") and type names in the module.
        for path, zf in self.wheels():
            self.assertNotIn(b"pybind11", self.extension(path, zf))

    def test_record_lists_every_file_with_its_hash(self):
        for path, zf in self.wheels():
            names = set(zf.namelist())
            for required in ("METADATA", "WHEEL", "RECORD", "top_level.txt", "LICENSE"):
                self.assertIn(DIST_INFO + required, names)
            record = list(csv.reader(io.StringIO(zf.read(DIST_INFO + "RECORD").decode())))
            self.assertEqual({row[0] for row in record}, names)
            for name, digest, size in record:
                if name.endswith("RECORD"):
                    continue
                data = zf.read(name)
                expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                self.assertEqual((digest, int(size)), ("sha256=" + expected, len(data)), name)
            for stub in ("tls/__init__.pyi", "tls/py.typed", "tls/__init__.py"):
                self.assertIn(stub, names)

    def test_metadata_says_thread_local_storage_at_first_glance(self):
        for path, zf in self.wheels():
            meta = self.metadata(zf)
            self.assertTrue(meta["Summary"].startswith("Thread-local storage"), meta["Summary"])
            self.assertIn("not Transport Layer Security", meta["Summary"])
            self.assertIn("thread-local", meta["Keywords"].split(","))
            body = meta.get_payload()
            self.assertIn("thread-local storage", body.splitlines()[0].lower())
            self.assertIn("not TLS/SSL", body.splitlines()[0])

    def test_metadata_license_classifiers_links_and_requires_python(self):
        for path, zf in self.wheels():
            meta = self.metadata(zf)
            self.assertEqual(meta["Metadata-Version"], "2.1")
            self.assertEqual(meta["License"], "MIT")
            self.assertIn("MIT License", zf.read(DIST_INFO + "LICENSE").decode())
            classifiers = meta.get_all("Classifier")
            for c in ("Typing :: Typed", "Operating System :: POSIX :: Linux",
                      "License :: OSI Approved :: MIT License"):
                self.assertIn(c, classifiers)
            tag = NAME.fullmatch(os.path.basename(path)).group(1)
            self.assertIn(f"Programming Language :: Python :: 3.{tag[3:]}", classifiers)
            self.assertGreaterEqual(len(meta.get_all("Project-URL")), 2)
            self.assertEqual(meta["Requires-Python"], ">=3.9")

    def test_long_description_is_the_python_doc(self):
        with open(PYTHON_DOC, encoding="utf-8") as f:
            doc = f.read()
        section = doc.split("\n", 1)[1].strip()  # all but its `# ` title line
        for path, zf in self.wheels():
            meta = self.metadata(zf)
            self.assertTrue(meta["Description-Content-Type"].startswith("text/markdown"))
            self.assertIn(section, meta.get_payload())

class WheelInstallTest(unittest.TestCase):
    def test_pip_installs_offline_into_a_fresh_venv_and_tls_works(self):
        self.assertIsNotNone(WHEEL, "pass the default wheel")
        with tempfile.TemporaryDirectory(dir=os.environ.get("TEST_TMPDIR")) as tmp:
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": tmp,
                "PIP_NO_INDEX": "1",
                "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                "PIP_NO_CACHE_DIR": "1",
            }
            venv = os.path.join(tmp, "venv")
            # sys.executable is the default python3 (the one Bazel found on PATH).
            subprocess.run([sys.executable, "-m", "venv", venv], check=True, env=env)
            python = os.path.join(venv, "bin", "python")
            pip = subprocess.run(
                [python, "-m", "pip", "install", "--no-index", WHEEL],
                env=env, capture_output=True, text=True)
            self.assertEqual(pip.returncode, 0, pip.stdout + pip.stderr)
            # -I: ignore PYTHONPATH and the current folder; only the venv counts.
            run = subprocess.run([python, "-I", "-c", CHECK], cwd=tmp, env=env,
                                 capture_output=True, text=True, timeout=120)
            self.assertEqual(run.returncode, 0, run.stderr)
            self.assertEqual(run.stdout, "ok True\nmain exit main\n")


if __name__ == "__main__":
    unittest.main()
