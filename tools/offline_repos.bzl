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

def _local_python_impl(rctx):
    # The Python that runs the tests is the one whose headers the extension
    # is built against: `python3` on PATH, or $PYTHON_BIN_PATH.
    python = rctx.os.environ.get("PYTHON_BIN_PATH") or rctx.which("python3")
    if not python:
        fail("python3 not found on PATH")
    res = rctx.execute([python, "-c", "\n".join([
        "import sys, sysconfig",
        "print(sys.executable)",
        "print(sysconfig.get_paths()['include'])",
        "print(sysconfig.get_config_var('EXT_SUFFIX'))",
        "print('cp%d%d' % sys.version_info[:2])",
    ])])
    if res.return_code != 0:
        fail("cannot query %s: %s" % (python, res.stderr))
    exe, include, ext_suffix, tag = res.stdout.strip().split("\n")
    rctx.symlink(include, "include")
    rctx.file("defs.bzl", "\n".join([
        "PYTHON = %r" % exe,
        "EXT_SUFFIX = %r" % ext_suffix,
        "PY_TAG = %r" % tag,
        "",
    ]))
    rctx.file("BUILD", """
load("@bazel_tools//tools/python:toolchain.bzl", "py_runtime_pair")
package(default_visibility = ["//visibility:public"])
cc_library(
    name = "headers",
    hdrs = glob(["include/**/*.h"]),
    includes = ["include"],
)
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
""" % (exe, exe))

local_python = repository_rule(
    implementation = _local_python_impl,
    environ = ["PYTHON_BIN_PATH", "PATH"],
    local = True,
)
