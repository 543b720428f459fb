"""Importing tls after threads started: the extension keeps each thread's dict
in an initial-exec thread_local (bindings/dict_cache.h), so glibc must give
threads that already run a zeroed copy of its static TLS block at import. Each
case runs in a fresh interpreter that has not imported tls yet."""

import os
import shutil
import subprocess
import unittest

from support import run_python

# Threads started (and parked) before the first `import tls`; then each, and the
# main thread, uses every part of the API that reaches the thread's dict.
LATE_IMPORT = """
import sys, threading
assert "tls" not in sys.modules
go = threading.Event()
results = {}

def worker(n):
    go.wait()
    import tls
    log = []
    class Closer:
        def close(self): log.append(n)
    got = [tls.get("k"), tls.get("k", "dflt")]
    tls.set("k", n)
    got.append(tls.get("k"))
    tls.set("c", Closer())
    tls.reset()                       # closes c, forgets k
    got += [tls.get("k"), log == [n]]
    tls.set("k", n)
    snap = tls.capture()
    got.append(snap.run(lambda: (tls.get("k"), tls.set("k", -n), tls.get("k"))[::2]))
    got.append(tls.get("k"))          # the task's set stayed in the task
    tls.unload()
    got.append(tls.get("k"))
    tls.set("k", n)
    got.append(tls.get("k"))
    results[n] = got

threads = [threading.Thread(target=worker, args=(n,)) for n in range(1, 9)]
for t in threads:
    t.start()
import tls                            # late: eight threads already run
tls.set("k", "main")
go.set()
for t in threads:
    t.join()
want = {n: [None, "dflt", n, None, True, (n, -n), n, None, n] for n in range(1, 9)}
assert results == want, results
assert tls.get("k") == "main"
print("ok")
"""


class LateImportTest(unittest.TestCase):
    def test_threads_started_before_import_use_tls(self):
        proc = run_python(LATE_IMPORT)
        self.assertEqual((proc.returncode, proc.stdout, proc.stderr), (0, "ok\n", ""))

    def test_late_import_takes_the_static_tls_path(self):
        # What the case above exercises: a module that glibc must place in
        # static TLS when it is loaded (DF_STATIC_TLS), as initial-exec needs.
        readelf = shutil.which("readelf")
        if readelf is None:
            self.skipTest("readelf (binutils) not found")
        proc = run_python("import tls._tls; print(tls._tls.__file__)")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        path = proc.stdout.strip()
        self.assertTrue(os.path.isfile(path), path)
        dynamic = subprocess.run([readelf, "-d", path], capture_output=True, text=True,
                                 check=True).stdout
        flags = [line for line in dynamic.splitlines() if "(FLAGS)" in line]
        self.assertTrue(flags and "STATIC_TLS" in flags[0], dynamic)


if __name__ == "__main__":
    unittest.main()
