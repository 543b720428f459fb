"""tools/manylinux.py: the tag follows the newest symbol version of each
family, disallowed libraries and too-new versions fail, and the declared tag
must be exactly the strongest one."""

import os
import shutil
import sys
import tempfile
import unittest

import manylinux

EXTENSION = sys.argv.pop(1) if len(sys.argv) > 1 else None
ENGINE = sys.argv.pop(1) if len(sys.argv) > 1 else None  # the library it needs, vendored
BASE = {"libc.so.6": {"GLIBC_2.2.5", "GLIBC_2.14"}, "libstdc++.so.6": {"GLIBCXX_3.4", "CXXABI_1.3"}}


def needs(lib=None, *names):
    """(libraries, {library: versions}): BASE plus `names` needed from `lib`."""
    versions = {name: set(v) for name, v in BASE.items()}
    if lib:
        versions.setdefault(lib, set()).update(names)
    return sorted(versions), versions


class StrongestTagTest(unittest.TestCase):
    def test_old_needs_get_the_oldest_policy(self):
        self.assertEqual(manylinux.strongest_tag(*needs()), "manylinux_2_17_x86_64")

    def test_each_family_can_decide(self):
        cases = [
            ("libc.so.6", "GLIBC_2.34", "manylinux_2_34_x86_64"),
            ("libc.so.6", "GLIBC_2.18", "manylinux_2_24_x86_64"),
            ("libstdc++.so.6", "GLIBCXX_3.4.25", "manylinux_2_31_x86_64"),
            ("libstdc++.so.6", "GLIBCXX_3.4.30", "manylinux_2_36_x86_64"),
            ("libstdc++.so.6", "CXXABI_1.3.13", "manylinux_2_34_x86_64"),
            ("libgcc_s.so.1", "GCC_7.0.0", "manylinux_2_28_x86_64"),
            ("libstdc++.so.6", "CXXABI_FLOAT128", "manylinux_2_24_x86_64"),
        ]
        for lib, version, tag in cases:
            with self.subTest(version=version):
                self.assertEqual(manylinux.strongest_tag(*needs(lib, version)), tag)

    def test_versions_compare_numerically_not_as_text(self):
        # "2.4" < "2.17" < "2.34": text order would say otherwise.
        self.assertEqual(manylinux.strongest_tag(*needs("libc.so.6", "GLIBC_2.4")),
                         "manylinux_2_17_x86_64")

    def test_a_library_outside_the_policy_fails(self):
        names, versions = needs()
        with self.assertRaisesRegex(manylinux.NotAllowed, "libz.so.1"):
            manylinux.strongest_tag(names + ["libz.so.1"], versions)

    def test_a_version_newer_than_every_policy_fails(self):
        with self.assertRaisesRegex(manylinux.NotAllowed, "GLIBC_2.99"):
            manylinux.strongest_tag(*needs("libc.so.6", "GLIBC_2.99"))

    def test_a_vendored_library_is_allowed_and_its_versions_are_not_the_systems(self):
        names, versions = needs()
        versions["libtls-core.so.3"] = {"NOT_A_POLICY_1.0"}
        with self.assertRaisesRegex(manylinux.NotAllowed, "libtls-core.so.3"):
            manylinux.strongest_tag(names + ["libtls-core.so.3"], versions)
        self.assertEqual(
            manylinux.strongest_tag(names + ["libtls-core.so.3"], versions, ["libtls-core.so.3"]),
            "manylinux_2_17_x86_64")

    def test_an_unknown_version_family_fails(self):
        with self.assertRaisesRegex(manylinux.NotAllowed, "OPENSSL_3.0.0"):
            manylinux.strongest_tag(*needs("libc.so.6", "OPENSSL_3.0.0"))


@unittest.skipUnless(EXTENSION, "pass an extension's path")
class RealExtensionTest(unittest.TestCase):
    def test_reads_needs_from_the_elf_file(self):
        with open(EXTENSION, "rb") as f:
            needed, versions = manylinux.read_needs(f.read())
        self.assertIn("libc.so.6", needed)
        self.assertTrue(any(v.startswith("GLIBC_2.") for v in versions["libc.so.6"]))

    def test_check_accepts_only_the_strongest_tag(self):
        order = [f"{t}_x86_64" for t, _ in manylinux.POLICIES]
        tags = []
        for binary in (EXTENSION, ENGINE):
            with open(binary, "rb") as f:
                tags.append(manylinux.strongest_tag(*manylinux.read_needs(f.read()),
                                                    [os.path.basename(ENGINE)]))
        best = max(tags, key=order.index)
        self.assertEqual(manylinux.check(EXTENSION, best, [ENGINE]), [])
        for tag in (t for t in order if t != best):
            with self.subTest(tag=tag):
                self.assertEqual(len(manylinux.check(EXTENSION, tag, [ENGINE])), 1)

    def test_the_extension_needs_the_engine_it_is_shipped_with(self):
        self.assertNotEqual(manylinux.check(EXTENSION, "manylinux_2_34_x86_64"), [])
        with open(EXTENSION, "rb") as f:
            needed, _ = manylinux.read_needs(f.read())
        self.assertIn(os.path.basename(ENGINE), needed)

    def test_not_an_elf_file_is_an_error(self):
        with tempfile.TemporaryDirectory(dir=os.environ.get("TEST_TMPDIR")) as tmp:
            path = os.path.join(tmp, "x.so")
            shutil.copy(__file__, path)
            with open(path, "rb") as f, self.assertRaises(ValueError):
                manylinux.read_needs(f.read())


if __name__ == "__main__":
    unittest.main()
