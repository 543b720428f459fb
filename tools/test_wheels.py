#!/usr/bin/env python3
"""test_wheels.py: the Python suite against each installed wheel.

For every wheel given: a fresh venv of the CPython it is tagged for, then
`pip install --no-index <wheel>`, the one-line check from docs/python.md
(`import tls; tls.set('k', 1); print(tls.get('k'), tls.id())`), and every test
file of tests/python, run by that venv's python from a folder holding only the
tests, so `import tls` finds the installed package and not the source tree.

    tools/test_wheels.py --pythons PYTHONS_TXT WHEEL...

PYTHONS_TXT is @local_python's pythons.txt ("X.Y cpXY EXT_SUFFIX EXECUTABLE"
lines); `./dev test-wheels` passes it and builds the wheels first. Tests that
need the test build's C++-side hooks (tls._tls._testing, not in the release
wheel) skip and say so; wheel_test.py checks the build outputs and runs under
`bazel test` instead. Exit status 1 if anything failed.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python")
NOT_HERE = {"wheel_test.py"}  # checks the build's files, not an installed package
SMOKE = "import tls; tls.set('k', 1); print(tls.get('k'), tls.id())"
# A free-threaded wheel must leave the GIL off: the module declares
# Py_MOD_GIL_NOT_USED, else importing it turns the GIL back on (with a warning).
GIL_OFF = "import sys, tls; assert not sys._is_gil_enabled(), 'import tls enabled the GIL'"
WHERE = "import sys, tls; assert tls.__file__.startswith(sys.prefix), tls.__file__"


def interpreters(pythons_txt):
    """{"cp312": "/path/to/python3", ...} from pythons.txt (skipped lines left out)."""
    found = {}
    with open(pythons_txt) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4 and parts[1].startswith("cp"):
                found[parts[1]] = parts[3]
    return found


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def runner_for(python):
    """What runs a venv's python made by `python`: nothing for the host's own,
    the chroot's run-in-chroot beside a sid interpreter's wrapper
    (tools/setup_platforms.sh), since sid's binaries need sid's glibc."""
    chroot = os.path.join(os.path.dirname(python), "run-in-chroot")
    return [chroot] if os.path.exists(chroot) else []


def test_one(wheel, python, workdir, free_threaded):
    """Installs `wheel` into a fresh venv of `python` and runs the suite.
    Returns (ok, lines to print)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_CACHE_DIR="1")
    venv = os.path.join(workdir, "venv")
    out = []
    step = run([python, "-m", "venv", venv], env=env)
    if step.returncode != 0:
        return False, [f"  venv failed:\n{step.stderr}"]
    vpython = runner_for(python) + [os.path.join(venv, "bin", "python")]
    step = run(vpython + ["-m", "pip", "install", "--no-index", wheel], env=env)
    if step.returncode != 0:
        return False, [f"  pip install --no-index failed:\n{step.stdout}{step.stderr}"]
    tests = os.path.join(workdir, "tests")
    os.mkdir(tests)
    for name in sorted(os.listdir(TESTS)):
        if (name.endswith((".py", ".txt", ".cc")) and name not in NOT_HERE):
            shutil.copy(os.path.join(TESTS, name), tests)
    for code in (WHERE, GIL_OFF, SMOKE) if free_threaded else (WHERE, SMOKE):
        step = run(vpython + ["-c", code], cwd=tests, env=env, timeout=60)
        if step.returncode != 0:
            return False, out + [f"  python -c {code!r} failed:\n{step.stderr}"]
    out.append(f"  python -c {SMOKE!r}: {step.stdout.strip()}")
    if free_threaded:
        # The suite with the GIL kept off whatever any module says.
        env["PYTHON_GIL"] = "0"
        out.append("  free-threaded: import tls leaves the GIL off; the suite runs with PYTHON_GIL=0")
    ok = True
    for name in sorted(n for n in os.listdir(tests) if n.endswith("_test.py")):
        start = time.monotonic()
        step = run(vpython + ["-m", "unittest", "-v", name[:-3]], cwd=tests, env=env, timeout=1200)
        lines = step.stderr.strip().splitlines() or ["(no output)"]
        ran = next((line.split(" in ")[0] for line in lines if line.startswith("Ran ")), "")
        out.append(f"  {name:22} {ran:14} {lines[-1]:18} {time.monotonic() - start:5.1f} s")
        if step.returncode != 0:
            ok = False
            out.append(step.stdout + step.stderr)
        # Which tests skipped, and why.
        skips = re.findall(r"^(\w+) \(.*\) \.\.\. skipped '(.*)'$", step.stderr, re.M)
        out += [f"      skipped {test}: {why}" for test, why in skips]
    return ok, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pythons", required=True, help="@local_python's pythons.txt")
    ap.add_argument("wheels", nargs="+")
    args = ap.parse_args()
    found = interpreters(args.pythons)
    failed = []
    began = time.monotonic()
    for wheel in args.wheels:
        tag = os.path.basename(wheel).split("-")[3]  # the ABI tag: cp313, cp313t
        start = time.monotonic()
        print(f"== {os.path.basename(wheel)}", flush=True)
        if tag not in found:
            print(f"  no interpreter for {tag} in {args.pythons}")
            failed.append(wheel)
            continue
        with tempfile.TemporaryDirectory(prefix=f"tls-wheel-{tag}.") as workdir:
            ok, lines = test_one(os.path.abspath(wheel), found[tag], workdir, tag.endswith("t"))
        print("\n".join(lines))
        print(f"  {'passed' if ok else 'FAILED'} with {found[tag]} in {time.monotonic() - start:.0f} s",
              flush=True)
        if not ok:
            failed.append(wheel)
    print(f"== {len(args.wheels) - len(failed)} of {len(args.wheels)} wheels passed "
          f"in {time.monotonic() - began:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
