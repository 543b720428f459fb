"""The wheel built by //python:wheel is well-formed, carries the extension, and
installs with `pip install --no-index` into a fresh venv of the default
python3, where `import tls` works in a new process."""

import base64
import csv
import hashlib
import io
import os
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import unittest
import zipfile

WHEEL = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else None

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


class WheelContentsTest(unittest.TestCase):
    def setUp(self):
        self.assertIsNotNone(WHEEL, "pass the wheel's path")
        self.zf = zipfile.ZipFile(WHEEL)
        self.addCleanup(self.zf.close)

    def test_file_name_has_this_interpreters_tags(self):
        tag = "cp%d%d" % sys.version_info[:2]
        platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
        self.assertEqual(os.path.basename(WHEEL), f"tls-0.1.0-{tag}-{tag}-{platform}.whl")

    def test_extension_is_inside_the_wheel(self):
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        info = self.zf.getinfo("tls/_tls" + suffix)
        self.assertGreater(info.file_size, 10_000)
        self.assertEqual(self.zf.read(info.filename)[:4], b"\x7fELF")

    def test_metadata_wheel_and_record_with_hashes(self):
        names = set(self.zf.namelist())
        for required in ("METADATA", "WHEEL", "RECORD", "top_level.txt"):
            self.assertIn("tls-0.1.0.dist-info/" + required, names)
        wheel = self.zf.read("tls-0.1.0.dist-info/WHEEL").decode()
        self.assertIn("Root-Is-Purelib: false", wheel)
        self.assertIn("Tag: " + os.path.basename(WHEEL)[len("tls-0.1.0-"):-len(".whl")], wheel)
        record = list(csv.reader(io.StringIO(self.zf.read("tls-0.1.0.dist-info/RECORD").decode())))
        recorded = {row[0] for row in record}
        self.assertEqual(recorded, names)
        for path, digest, size in record:
            if path.endswith("RECORD"):
                continue
            data = self.zf.read(path)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            self.assertEqual((digest, int(size)), ("sha256=" + expected, len(data)), path)
        for stub in ("tls/__init__.pyi", "tls/py.typed", "tls/__init__.py"):
            self.assertIn(stub, names)


class WheelInstallTest(unittest.TestCase):
    def test_pip_installs_offline_into_a_fresh_venv_and_tls_works(self):
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
