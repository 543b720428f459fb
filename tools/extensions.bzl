"""Module extensions for MODULE.bazel (Bazel 7+).

`local_deps` declares, for this repository's own development only, the two
repositories that come from the machine rather than from a registry, through the
same rules the WORKSPACE uses: the CPython interpreters found (`@local_python`)
and the pybind11 headers of tools/setup_platforms.sh (`@pybind11`). Only a root
module evaluates it (dev_dependency), so a service that depends on @tls never
does; as the root module, MODULE.bazel is untested (see its header).
"""

load("//tools:offline_repos.bzl", "local_pybind11", "local_python")

def _local_deps_impl(
        module_ctx):  # @unused
    local_python(name = "local_python")
    local_pybind11(name = "pybind11")

local_deps = module_extension(implementation = _local_deps_impl)
