"""examples/python_cpp under `bazel test`: handler.py with the extension Bazel
built against //core:libtls-core.so.3 (check.sh builds it with CMake against
an installed wheel instead) prints expected_output.txt.

Args: request_ext.so, handler.py, expected_output.txt."""

import os
import subprocess
import sys
import unittest

EXTENSION, HANDLER, EXPECTED = (os.path.abspath(a) for a in sys.argv[1:4])
del sys.argv[1:4]


class HandlerTest(unittest.TestCase):
    def test_cpp_parts_log_the_ids_python_set_and_both_sides_end_in_order(self):
        env = dict(os.environ)
        # //python:tls's package first (as this test's own sys.path has it), then
        # the folder of request_ext.so.
        env["PYTHONPATH"] = os.pathsep.join(sys.path + [os.path.dirname(EXTENSION)])
        run = subprocess.run([sys.executable, HANDLER], env=env, capture_output=True,
                             text=True, timeout=120)
        self.assertEqual(run.returncode, 0, run.stderr)
        with open(EXPECTED) as f:
            self.assertEqual(run.stdout, f.read())


if __name__ == "__main__":
    unittest.main()
