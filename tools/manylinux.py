"""manylinux.py: the strongest manylinux tag an x86_64 extension qualifies for.

No auditwheel here (it is on PyPI only), so this is our own check, standard
library only. It reads the ELF file itself: the libraries it needs (DT_NEEDED)
and the symbol versions it needs from each (.gnu.version_r), then finds the
oldest manylinux policy that allows all of them.

    manylinux.py show  EXT.so                    the needs and the tag
    manylinux.py check --tag manylinux_2_34_x86_64 [--vendored LIB.so.N] EXT.so
        fails (exit 1) if EXT.so (or a library the wheel carries beside it,
        --vendored, named by its SONAME) needs more than the tag allows, or if
        they qualify for a stronger (older) tag than the one declared.

The policy facts are those of pypa/auditwheel's manylinux-policy.json (x86_64):
the newest GLIBC_, GLIBCXX_, CXXABI_ and GCC_ symbol versions each policy
allows. A version is allowed if it is not newer than that maximum; the few
non-numeric ones (CXXABI_TM_1, CXXABI_FLOAT128, GLIBC_ABI_DT_RELR) are listed
by the first policy that has them. Libraries: only glibc's (libc, libm,
libpthread, libdl, librt, and ld-linux-x86-64.so.2, the dynamic loader, which
a module needs for __tls_get_addr), libstdc++ and libgcc_s. auditwheel also
allows a few more (libz, X11, GL ...); we neither need nor allow them.
"""

import argparse
import os
import struct
import sys

# (tag, {family: newest numeric version allowed}, first policy for named versions)
POLICIES = [
    ("manylinux_2_17", {"GLIBC": "2.17", "GLIBCXX": "3.4.19", "CXXABI": "1.3.7", "GCC": "4.8.0"}),
    ("manylinux_2_24", {"GLIBC": "2.24", "GLIBCXX": "3.4.22", "CXXABI": "1.3.10", "GCC": "4.8.0"}),
    ("manylinux_2_28", {"GLIBC": "2.28", "GLIBCXX": "3.4.24", "CXXABI": "1.3.11", "GCC": "7.0.0"}),
    ("manylinux_2_31", {"GLIBC": "2.31", "GLIBCXX": "3.4.28", "CXXABI": "1.3.12", "GCC": "7.0.0"}),
    ("manylinux_2_34", {"GLIBC": "2.34", "GLIBCXX": "3.4.29", "CXXABI": "1.3.13", "GCC": "7.0.0"}),
    ("manylinux_2_36", {"GLIBC": "2.36", "GLIBCXX": "3.4.30", "CXXABI": "1.3.13", "GCC": "12.0.0"}),
    ("manylinux_2_39", {"GLIBC": "2.39", "GLIBCXX": "3.4.33", "CXXABI": "1.3.15", "GCC": "14.0.0"}),
]
NAMED = {  # non-numeric symbol versions -> the first policy (above) allowing them
    "CXXABI_TM_1": "manylinux_2_17",
    "CXXABI_FLOAT128": "manylinux_2_24",
    "GLIBC_ABI_DT_RELR": "manylinux_2_36",
}
ALLOWED_LIBS = {
    "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
    "ld-linux-x86-64.so.2", "libstdc++.so.6", "libgcc_s.so.1",
}
ARCH = "x86_64"
_EM_X86_64 = 62
_SHT_DYNAMIC = 6
_SHT_GNU_VERNEED = 0x6FFFFFFE
_DT_NEEDED = 1


class NotAllowed(Exception):
    """The binary needs something no policy in the table allows."""


def read_needs(data: bytes):
    """(DT_NEEDED libraries, {library: {symbol versions}}) of an ELF64 LE file."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    machine = struct.unpack_from("<H", data, 0x12)[0]
    if machine != _EM_X86_64:
        raise ValueError(f"ELF machine {machine}: only x86_64 policies are known")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = []
    for i in range(shnum):
        (_name, sh_type, _flags, _addr, offset, size, link, info, _align, _entsize) = \
            struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
        sections.append((sh_type, offset, size, link, info))

    def string(strtab, index):
        start = sections[strtab][1] + index
        return data[start:data.index(b"\0", start)].decode()

    needed = []
    versions = {}
    for sh_type, offset, size, link, info in sections:
        if sh_type == _SHT_DYNAMIC:
            for pos in range(offset, offset + size, 16):
                tag, val = struct.unpack_from("<qQ", data, pos)
                if tag == _DT_NEEDED:
                    needed.append(string(link, val))
        elif sh_type == _SHT_GNU_VERNEED:
            pos = offset
            for _ in range(info):
                _ver, count, file_, aux, next_ = struct.unpack_from("<HHIII", data, pos)
                names = versions.setdefault(string(link, file_), set())
                apos = pos + aux
                for _ in range(count):
                    _hash, _flags, _other, name, anext = struct.unpack_from("<IHHII", data, apos)
                    names.add(string(link, name))
                    apos += anext
                pos += next_
    return needed, versions


def _key(version: str):
    return tuple(int(p) for p in version.split("."))


def _split(symbol_version: str):
    family, _, version = symbol_version.partition("_")
    return family, version


def deciding_versions(versions):
    """{family: newest numeric version needed} over all libraries."""
    newest = {}
    for names in versions.values():
        for sv in names:
            family, version = _split(sv)
            if sv in NAMED or not version.replace(".", "").isdigit():
                continue
            if family not in newest or _key(version) > _key(newest[family]):
                newest[family] = version
    return newest


def strongest_tag(needed, versions, vendored=()):
    """The oldest policy allowing every library and symbol version needed, as a
    platform tag (e.g. manylinux_2_34_x86_64). Raises NotAllowed otherwise.
    `vendored`: names of libraries the wheel carries itself (auditwheel's
    repair does the same): allowed, and their symbol versions are ours, not
    the system's."""
    vendored = set(vendored)
    versions = {lib: names for lib, names in versions.items() if lib not in vendored}
    bad_libs = sorted(set(needed) - ALLOWED_LIBS - vendored)
    if bad_libs:
        raise NotAllowed(f"needs libraries no manylinux policy allows: {', '.join(bad_libs)}")
    order = [tag for tag, _ in POLICIES]
    floor = 0  # index of the oldest policy that could still do
    for names in versions.values():
        for sv in sorted(names):
            family, version = _split(sv)
            if sv in NAMED:
                floor = max(floor, order.index(NAMED[sv]))
                continue
            if family not in POLICIES[0][1] or not version.replace(".", "").isdigit():
                raise NotAllowed(f"needs symbol version {sv}, which no manylinux policy allows")
            for i, (_tag, limits) in enumerate(POLICIES):
                if _key(version) <= _key(limits[family]):
                    floor = max(floor, i)
                    break
            else:
                raise NotAllowed(f"needs {sv}, newer than the newest policy here "
                                 f"({POLICIES[-1][0]}: {family}_{POLICIES[-1][1][family]})")
    return f"{order[floor]}_{ARCH}"


def check(path, tag, vendored=()):
    """Problems with declaring `tag` for the binary at `path` (empty: fine).

    `vendored`: paths of the libraries the wheel carries beside it, each under
    its SONAME (python/BUILD's tls/lib/libtls-core.so.3). `path` may need
    them; each must itself qualify for `tag`, and the wheel's tag is the
    strongest one that all of them allow."""
    names = [os.path.basename(v) for v in vendored]
    binaries = [path] + list(vendored)
    order = [f"{t}_{ARCH}" for t, _ in POLICIES]
    if tag not in order:
        return [f"{path}: declared tag {tag} is not one of {', '.join(order)}"]
    best, newest = order[0], {}
    for binary in binaries:
        with open(binary, "rb") as f:
            needed, versions = read_needs(f.read())
        try:
            own = strongest_tag(needed, versions, names)
        except NotAllowed as e:
            return [f"{binary}: {e}"]
        best = max(best, own, key=order.index)
        for family, v in deciding_versions(
                {lib: n for lib, n in versions.items() if lib not in names}).items():
            if family not in newest or _key(v) > _key(newest[family]):
                newest[family] = v
    needs = ", ".join(f"{family}_{v}" for family, v in sorted(newest.items()))
    what = path if not vendored else f"{path} with {', '.join(names)}"
    if order.index(best) > order.index(tag):
        return [f"{what}: needs {needs}: that is {best}, more than the declared {tag}"]
    if best != tag:
        return [f"{what}: qualifies for {best} (needs {needs}), stronger than the declared "
                f"{tag}: declare {best} (python/BUILD, MANYLINUX)"]
    return []


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    show = sub.add_parser("show", help="print the needs and the strongest tag")
    show.add_argument("so")
    chk = sub.add_parser("check", help="fail unless TAG is exactly the strongest tag")
    chk.add_argument("--tag", required=True)
    chk.add_argument("--vendored", action="append", default=[],
                     help="a library the wheel carries beside SO, named by its SONAME")
    chk.add_argument("so")
    args = ap.parse_args(argv)
    if args.cmd == "show":
        with open(args.so, "rb") as f:
            needed, versions = read_needs(f.read())
        print("needed:", " ".join(needed))
        for lib, names in sorted(versions.items()):
            print(f"  {lib}: {' '.join(sorted(names, key=lambda n: (_split(n)[0], n)))}")
        print("newest:", " ".join(f"{k}_{v}" for k, v in sorted(deciding_versions(versions).items())))
        try:
            print("tag:", strongest_tag(needed, versions))
        except NotAllowed as e:
            print("tag: none:", e)
            return 1
        return 0
    problems = check(args.so, args.tag, args.vendored)
    for p in problems:
        print("manylinux check: " + p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
