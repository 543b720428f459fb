"""One optimised, stripped, manylinux-checked wheel per CPython (see python/BUILD)."""

load("//tools:python_ext.bzl", "optimized_file")

def tls_wheel(name, py, version, platform, metadata_args, files, extra_srcs, engine, cpp_files):
    """Declares `name` -> tls-<version>-<python tag>-<abi tag>-<platform>.whl.

    The extension is //bindings' release variant for `py`, built with
    compilation_mode=opt whatever the command line, stripped of its symbol table
    (--strip-unneeded), then checked: the build fails unless `platform` is
    exactly the strongest manylinux tag its real needs allow (tools/manylinux.py).

    Args:
      name: the wheel's target, by convention "wheel_<tag>".
      py: {"tag", "python_tag", "ext_suffix"} of one CPython (@local_python//:defs.bzl
        PYTHONS): tag is the ABI tag (cp313, or cp313t for a free-threaded build).
      version: the package version.
      platform: the platform tag, e.g. "manylinux_2_34_x86_64".
      metadata_args: build_wheel.py flags for METADATA.
      files: {source label: path in the wheel} besides the extension.
      extra_srcs: other files metadata_args refer to with $(location).
      engine: the optimised, stripped libtls-core.so.3 the extension links,
        shipped as tls/lib/libtls-core.so.3 (the extension's RPATH is
        $ORIGIN/lib) and checked with it.
      cpp_files: {source label: path in the wheel} for building C++ against
        that engine: its headers, CMake package and pkg-config file.
    """
    tag = py["tag"]
    extension = "tls/_tls" + py["ext_suffix"]
    optimized_file(
        name = tag + "_opt",
        src = "//bindings:release/%s/tls/_tls.so" % tag,
        out = "release/%s/_tls.unstripped.so" % tag,
    )
    native.genrule(
        name = tag + "_extension",
        srcs = [":%s_opt" % tag, engine],
        outs = ["release/%s/%s" % (tag, extension)],
        cmd = " && ".join([
            "$(STRIP) --strip-unneeded -o $@ $(location :%s_opt)" % tag,
            "$(location //tools:manylinux) check --tag %s --vendored $(location %s) $@" % (
                platform,
                engine,
            ),
        ]),
        toolchains = ["@bazel_tools//tools/cpp:current_cc_toolchain"],
        tools = ["//tools:manylinux"],
    )
    wheel_files = dict(files)
    wheel_files.update(cpp_files)
    wheel_files[":%s_extension" % tag] = extension
    wheel_files[engine] = "tls/lib/libtls-core.so.3"
    native.genrule(
        name = name,
        srcs = wheel_files.keys() + extra_srcs,
        outs = ["tls-%s-%s-%s-%s.whl" % (version, py["python_tag"], tag, platform)],
        cmd = " ".join([
            "$(location :build_wheel)",
            "--out $@",
            "--tag %s-%s-%s" % (py["python_tag"], tag, platform),
        ] + metadata_args + [
            "--file %s=$(location %s)" % (dest, src)
            for src, dest in wheel_files.items()
        ]),
        tools = [":build_wheel"],
        visibility = ["//visibility:public"],
    )
