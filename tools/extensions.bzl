"""Module extensions for MODULE.bazel (Bazel 7+; UNTESTED here, see MODULE.bazel).

`local_deps` declares, for this repository's own development only, the two
repositories that come from the machine rather than from a registry: the CPython
interpreters found (`@local_python`, the same rule the WORKSPACE uses) and
Debian's pybind11 headers (`@pybind11`).
"""

load("@bazel_tools//tools/build_defs/repo:local.bzl", "new_local_repository")
load("//tools:offline_repos.bzl", "local_python")

def _local_deps_impl(
        module_ctx):  # @unused
    local_python(name = "local_python")
    new_local_repository(
        name = "pybind11",
        build_file = "//third_party:pybind11.BUILD",
        path = "/usr/include/pybind11",
    )

local_deps = module_extension(implementation = _local_deps_impl)
