"""Repository rules that let Bazel 4.2.3 build this project with no network.

Bazel's built-in defaults fetch three repositories from GitHub on first use. Each
rule here provides a local replacement built from Debian packages (see
tools/setup.sh); nothing is downloaded. `.bazelrc` makes any download that is still
attempted fail at once.
"""

def _debian_rules_cc_impl(rctx):
    # Debian's rules_cc 0.0.4 calls use_cpp_toolchain(), which Bazel 4.2.3's
    # @bazel_tools does not export. Copy it and spell the toolchain out instead.
    src = rctx.attr.path
    if not rctx.path(src).exists:
        fail("rules_cc not found at %s: run tools/setup.sh (Debian package bazel-rules-cc)" % src)
    rctx.execute(["cp", "-r", src + "/.", "."])
    for f in [
        "cc/private/rules_impl/cc_flags_supplier.bzl",
        "cc/private/rules_impl/compiler_flag.bzl",
    ]:
        text = rctx.read(f)
        text = text.replace(', "use_cpp_toolchain")', ")")
        text = text.replace("use_cpp_toolchain()", '["@bazel_tools//tools/cpp:toolchain_type"]')
        rctx.file(f, text)

debian_rules_cc = repository_rule(
    implementation = _debian_rules_cc_impl,
    attrs = {"path": attr.string(default = "/usr/share/bazel/rules/cc")},
    local = True,
)

def _stub_coverage_tools_impl(rctx):
    # Every test depends on @remote_coverage_tools. `bazel coverage` is not
    # supported offline; these targets fail loudly if it is ever attempted.
    rctx.file("fail.sh", "#!/bin/sh\necho 'bazel coverage is not available offline' >&2\nexit 1\n", executable = True)
    rctx.file("BUILD", """
package(default_visibility = ["//visibility:public"])
sh_binary(name = "coverage_report_generator", srcs = ["fail.sh"])
sh_binary(name = "lcov_merger", srcs = ["fail.sh"])
""")

stub_coverage_tools = repository_rule(implementation = _stub_coverage_tools_impl)

def _stub_rules_java_impl(rctx):
    # The default Java toolchain registration loads @rules_java; this project has
    # no Java, so forwarding the macros to the native rules is enough.
    rctx.file("BUILD", "")
    rctx.file("java/BUILD", "")
    rctx.file("java/defs.bzl", """
def java_binary(**kw): native.java_binary(**kw)
def java_import(**kw): native.java_import(**kw)
def java_library(**kw): native.java_library(**kw)
def java_plugin(**kw): native.java_plugin(**kw)
def java_test(**kw): native.java_test(**kw)
def java_toolchain(**kw): native.java_toolchain(**kw)
def java_runtime(**kw): native.java_runtime(**kw)
def java_package_configuration(**kw): native.java_package_configuration(**kw)
""")

stub_rules_java = repository_rule(implementation = _stub_rules_java_impl)

_PLATFORMS_DEFAULT = "/var/cache/tls-platforms"

def _platforms_dir(rctx):
    return rctx.os.environ.get("TLS_PLATFORMS") or _PLATFORMS_DEFAULT

def _local_pybind11_impl(rctx):
    # pybind11 3.1 from sid, header-only, fetched by tools/setup_platforms.sh
    # into the platforms cache: the one pybind11 every extension is built with
    # (bookworm's 2.10 knows neither CPython 3.14 nor free-threaded builds).
    src = _platforms_dir(rctx) + "/pybind11/include/pybind11"
    if not rctx.path(src + "/pybind11.h").exists:
        fail("pybind11 not found at %s: run tools/setup_platforms.sh pybind11" % src)
    rctx.symlink(src, "pybind11")
    rctx.symlink(_platforms_dir(rctx) + "/pybind11/VERSION", "VERSION")
    rctx.file("BUILD", """
load("@rules_cc//cc:defs.bzl", "cc_library")
package(default_visibility = ["//visibility:public"])
exports_files(["VERSION"])
# Header-only. The Python headers are not a dependency here: each extension
# adds the ones of the CPython it is built for (@local_python//:headers_cpXY).
cc_library(
    name = "pybind11",
    hdrs = glob(["pybind11/**/*.h"]),
    # -isystem here: ahead of /usr/include, where bookworm's pybind11 2.10
    # may also be installed.
    includes = ["."],
)
""")

local_pybind11 = repository_rule(
    implementation = _local_pybind11_impl,
    environ = ["TLS_PLATFORMS"],
    local = True,
)

# CPython versions the Python package supports: the oldest still maintained that
# has every C API the extension calls (PyObject_CallNoArgs is new in 3.9), up to
# the newest the suite has run on. Interpreters outside the range are skipped.
MIN_PYTHON = (3, 9)
MAX_PYTHON = (3, 15)

_QUERY = """
import json, os, platform, sys, sysconfig
inc = sysconfig.get_paths()["include"]
print(json.dumps({
    "impl": platform.python_implementation(),
    "version": list(sys.version_info[:2]),
    "executable": sys.executable,
    "include": inc,
    "headers": os.path.exists(os.path.join(inc, "Python.h")),
    "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"),
    "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
}))
"""

def _query(rctx, python):
    res = rctx.execute([python, "-c", _QUERY])
    if res.return_code != 0:
        return None
    info = json.decode(res.stdout.strip())

    # A sid interpreter runs inside the chroot (tools/sid_python.sh), where its
    # headers are the chroot's: the host compiles against the self-contained
    # copy tools/setup_platforms.sh made next to the wrapper.
    bin_dir = rctx.path(python).dirname
    copied = "%s/include/python%d.%d" % ((bin_dir.dirname,) + tuple(info["version"]))
    if bin_dir.get_child("run-in-chroot").exists:
        info["include"] = copied
        info["headers"] = True
        info["executable"] = str(python)  # the wrapper: sys.executable is the chroot's path
    return info

def _version_key(xy):
    # "3.13" before "3.13t" before "3.14".
    return [int(p) for p in xy.rstrip("t").split(".")] + [1 if xy.endswith("t") else 0]

def _skip_reason(info):
    """Why an interpreter gets no extension, or None if it is supported."""
    if info["impl"] != "CPython":
        return "%s is not CPython (the extension uses CPython's C API)" % info["impl"]
    v = tuple(info["version"])
    if v < MIN_PYTHON:
        return ("CPython %d.%d is not supported: the oldest supported is %d.%d " +
                "(%d.%d lacks C API the extension calls, e.g. PyObject_CallNoArgs, " +
                "and is past its end of life)") % (v + MIN_PYTHON + v)
    if v > MAX_PYTHON:
        return ("CPython %d.%d is newer than %d.%d, the newest the Python suite " +
                "has run on: raise MAX_PYTHON in tools/offline_repos.bzl after it passes") % (v + MAX_PYTHON)
    if not info["headers"]:
        return "no Python.h under %s (install its development headers)" % info["include"]
    return None

def _local_python_impl(rctx):
    # The default interpreter runs `bazel test`'s py_tests: `python3` on PATH, or
    # $PYTHON_BIN_PATH. Every other CPython found (pyenv's versions/*) gets an
    # extension and a wheel too, one per X.Y (the default wins its X.Y).
    default = rctx.os.environ.get("PYTHON_BIN_PATH") or rctx.which("python3")
    if not default:
        fail("python3 not found on PATH")
    candidates = [str(default)]
    pyenv_root = rctx.os.environ.get("PYENV_ROOT") or (rctx.os.environ.get("HOME", "/root") + "/.pyenv")
    versions_dir = rctx.path(pyenv_root + "/versions")
    if versions_dir.exists:
        for d in sorted([str(p) for p in versions_dir.readdir()]):
            if rctx.path(d + "/bin/python3").exists:
                candidates.append(d + "/bin/python3")

    # The newer platforms tools/setup_platforms.sh builds, if it has: the sid
    # chroot's CPythons (through their wrappers) and the free-threaded 3.13t.
    platforms = _platforms_dir(rctx)
    for python in [
        platforms + "/python3.13t/bin/python3.13t",
        platforms + "/sid-python/3.14/bin/python3.14",
        platforms + "/sid-python/3.15/bin/python3.15",
    ]:
        if rctx.path(python).exists:
            candidates.append(python)

    pythons = {}  # "3.11" -> query result
    skipped = {}  # "3.8" -> reason
    default_xy = None  # set by the first candidate, or fail() above it
    for i, python in enumerate(candidates):
        info = _query(rctx, python)
        if info == None:
            if i == 0:
                fail("cannot run %s" % python)
            continue

        # X.Y, or X.Yt for a free-threaded build (its own ABI, its own wheel).
        xy = "%d.%d" % tuple(info["version"]) + ("t" if info["free_threaded"] else "")
        if xy in pythons or xy in skipped:
            continue
        reason = _skip_reason(info)
        if reason:
            if i == 0:
                fail("the default interpreter %s: %s. Point PYTHON_BIN_PATH at a supported one." % (python, reason))
            skipped[xy] = reason
            print("tls: skipping %s (%s): %s" % (python, xy, reason))  # buildifier: disable=print
            continue

        # tag: the ABI tag (cp313, cp313t), which names the targets;
        # python_tag: the interpreter tag of the wheel's name (cp313 for both).
        info["python_tag"] = "cp%d%d" % tuple(info["version"])
        info["tag"] = info["python_tag"] + ("t" if info["free_threaded"] else "")
        pythons[xy] = info
        if i == 0:
            default_xy = xy

    default_info = pythons[default_xy]
    headers = []
    lines = []
    for xy in sorted(pythons, key = _version_key):
        info = pythons[xy]
        rctx.symlink(info["include"], "include_" + info["tag"])
        headers.append("""
cc_library(
    name = "headers_{tag}",
    hdrs = glob(["include_{tag}/**/*.h"]),
    includes = ["include_{tag}"],
)""".format(tag = info["tag"]))
        lines.append("%s %s %s %s" % (xy, info["tag"], info["ext_suffix"], info["executable"]))
    for xy in sorted(skipped):
        lines.append("%s skipped: %s" % (xy, skipped[xy]))
    rctx.file("pythons.txt", "\n".join(lines) + "\n")

    rctx.file("defs.bzl", "\n".join([
        "# Generated by tools/offline_repos.bzl (local_python): the CPythons found on this machine.",
        "PYTHON = %r" % default_info["executable"],
        "EXT_SUFFIX = %r" % default_info["ext_suffix"],
        "PY_TAG = %r" % default_info["tag"],
        "# X.Y -> {tag, ext_suffix, executable}, for every supported CPython found.",
        "PYTHONS = %r" % {
            xy: {k: pythons[xy][k] for k in ("tag", "python_tag", "ext_suffix", "executable", "free_threaded")}
            for xy in sorted(pythons, key = _version_key)
        },
        "# X.Y -> why it gets no wheel.",
        "SKIPPED = %r" % skipped,
        "MIN_PYTHON = %r" % "%d.%d" % MIN_PYTHON,
        "MAX_PYTHON = %r" % "%d.%d" % MAX_PYTHON,
        "",
    ]))
    rctx.file("BUILD", """
load("@bazel_tools//tools/python:toolchain.bzl", "py_runtime_pair")
package(default_visibility = ["//visibility:public"])
exports_files(["pythons.txt"])
alias(name = "headers", actual = ":headers_%s")
%s
py_runtime(
    name = "runtime",
    interpreter_path = "%s",
    python_version = "PY3",
    stub_shebang = "#!%s",
)
py_runtime_pair(name = "runtime_pair", py3_runtime = ":runtime")
toolchain(
    name = "toolchain",
    toolchain = ":runtime_pair",
    toolchain_type = "@bazel_tools//tools/python:toolchain_type",
)
""" % (default_info["tag"], "\n".join(headers), default_info["executable"], default_info["executable"]))

local_python = repository_rule(
    implementation = _local_python_impl,
    environ = ["PYTHON_BIN_PATH", "PATH", "PYENV_ROOT", "HOME", "TLS_PLATFORMS"],
    local = True,
)

def _native_rules_stub_impl(rctx):
    # The BUILD files load py_*/sh_* from @rules_python and @rules_shell, as
    # Bazel 8+ requires (those rules left the global namespace). Bazel 4 has
    # them built in and the real repositories cannot be fetched offline: these
    # stand-ins forward each load to the native rule.
    rctx.file("BUILD", "")
    for path, names in rctx.attr.files.items():
        rctx.file(path.rsplit("/", 1)[0] + "/BUILD", "")
        rctx.file(path, "".join([
            "def {0}(**kwargs):\n    native.{0}(**kwargs)\n".format(n)
            for n in names
        ]))

native_rules_stub = repository_rule(
    implementation = _native_rules_stub_impl,
    attrs = {"files": attr.string_list_dict(mandatory = True)},
    doc = "A repository whose .bzl files forward rule macros to Bazel's native rules.",
)
