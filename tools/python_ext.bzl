"""Build helpers for the Python extension and its wheels.

`optimized_file` re-exports a file built with `--compilation_mode=opt`, whatever
the command line says: the wheels ship an optimised extension even from a plain
`bazel build` or `bazel test //...` (fastbuild), so wheel tests check what ships.
`tls_extension` declares one variant of the `tls._tls` extension (//bindings).
`engine_extension` declares a C++ extension of the kind a user builds against
the wheel: one that links the same engine as `tls._tls` (tests, examples,
benchmarks).
"""

load("@local_python//:defs.bzl", "PY_TAG")
load("@rules_cc//cc:defs.bzl", "cc_binary")
load("//tools:copts.bzl", "TLS_COPTS")

_TESTING_SRCS = ["testing.cc", "testing.h"]

# The engine, as the one shared library every extension of the process links.
_ENGINE = "//core:libtls-core.so.3"

def _linking_the_engine(name, srcs, py_tag, copts, linkopts, linker_inputs, deps, **kwargs):
    """A CPython extension (a shared object) that links the shared engine."""
    cc_binary(
        name = name,
        srcs = srcs,
        additional_linker_inputs = linker_inputs + [_ENGINE],
        copts = TLS_COPTS + copts,
        linkopts = linkopts + ["$(location %s)" % _ENGINE],
        linkshared = True,
        linkstatic = True,
        deps = deps + [
            "//core:shared_headers",
            "@local_python//:headers_" + py_tag,
        ],
        **kwargs
    )

def tls_extension(name, py_tag, testing):
    """Declares one variant of the `tls._tls` extension. Call from //bindings.

    Args:
      name: the .so target, e.g. "release/cp312/tls/_tls.so".
      py_tag: the CPython it is built for, e.g. "cp312".
      testing: whether it carries the test-only `_tls._testing` hooks.
    """
    _linking_the_engine(
        name = name,
        srcs = native.glob(["*.cc", "*.h"], exclude = [] if testing else _TESTING_SRCS),
        py_tag = py_tag,
        copts = ["-fvisibility=hidden"],
        local_defines = ["TLS_TESTING_HOOKS"] if testing else [],
        # Export only PyInit__tls. The engine is not in this module: it links
        # libtls-core.so.3, which the package carries in tls/lib/ (RPATH
        # $ORIGIN/lib), so that a user's extension linking the same library
        # shares its engine (docs/python-cpp.md).
        linker_inputs = ["exports.lds"],
        linkopts = [
            "-Wl,--version-script=$(location exports.lds)",
            "-Wl,-rpath,$$ORIGIN/lib",
        ],
        visibility = ["//python:__pkg__", "//tools:__pkg__"],
        # pybind11 only for testing.cc: the shipped variants are plain C API
        # (bindings/BUILD, "Binding style"), and without its headers in their
        # sandbox a pybind11 include there fails to build.
        deps = [
            ":python_header",
            "//core:embedder_header",
        ] + (["@pybind11"] if testing else []),
    )

def engine_extension(name, srcs, copts = [], linkopts = [], **kwargs):
    """Declares a C++ extension that links the engine as a user's does.

    For the default CPython, as an extension built against the wheel is
    (docs/python-cpp.md): the shared //core:libtls-core.so.3, found by its
    SONAME once `import tls` has loaded it, and the public headers only.

    Args:
      name: the .so target; its file name is the module's (`x.so` imports as x).
      srcs: the extension's C++ sources.
      copts: compiler options besides TLS_COPTS.
      linkopts: linker options besides the engine.
      **kwargs: cc_binary's (testonly, local_defines, tags, visibility...).
    """
    _linking_the_engine(
        name = name,
        srcs = srcs,
        py_tag = PY_TAG,
        copts = copts,
        linkopts = linkopts,
        linker_inputs = [],
        deps = ["//bindings:python_header"],
        **kwargs
    )

def _opt_transition_impl(
        settings,  # @unused
        attr):  # @unused
    return {"//command_line_option:compilation_mode": "opt"}

_opt_transition = transition(
    implementation = _opt_transition_impl,
    inputs = [],
    outputs = ["//command_line_option:compilation_mode"],
)

def _optimized_file_impl(ctx):
    srcs = ctx.files.src
    if len(srcs) != 1:
        fail("src must be exactly one file, got %s" % srcs)
    out = ctx.actions.declare_file(ctx.attr.out)
    ctx.actions.symlink(output = out, target_file = srcs[0])
    return [DefaultInfo(files = depset([out]))]

optimized_file = rule(
    implementation = _optimized_file_impl,
    doc = "The single file of `src`, built with --compilation_mode=opt, as `out`.",
    attrs = {
        "src": attr.label(cfg = _opt_transition, mandatory = True),
        "out": attr.string(mandatory = True),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)
