"""The extension @bazel_tools' MODULE.bazel uses: an empty @buildozer_binary."""

def _empty_repo_impl(rctx):
    rctx.file("BUILD", "# No buildozer here: see tools/offline_modules/README.md in @tls.\n")

_empty_repo = repository_rule(implementation = _empty_repo_impl)

def _buildozer_binary_impl(
        module_ctx):  # @unused
    _empty_repo(name = "buildozer_binary")

buildozer_binary = module_extension(implementation = _buildozer_binary_impl)
