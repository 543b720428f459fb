"""build_wheel writes a wheel (PEP 427) from files given on the command line.

Used by //python:wheel; needs only the standard library (no setuptools, no
`wheel` package, no network). The archive is deterministic: fixed timestamps,
files in a fixed order.

METADATA follows core metadata 2.1. The long description is
--description-head followed by the body of --description-body (a markdown
document without its `# ` title line: the head has its own), read at build time
so it cannot drift from the docs. --license-file goes into the .dist-info.

Example:
  build_wheel.py --out tls-0.4.0-cp311-cp311-manylinux_2_34_x86_64.whl --name tls \
      --version 0.4.0 --tag cp311-cp311-manylinux_2_34_x86_64 \
      --classifier "Typing :: Typed" --description-body docs/python.md \
      --file tls/__init__.py=python/tls/__init__.py ...
"""

import argparse
import base64
import hashlib
import zipfile

_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"{path},sha256={digest.decode()},{len(data)}"


def _entry(path: str, executable: bool = False) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(path, date_time=_EPOCH)
    info.external_attr = (0o755 if executable else 0o644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def document_body(path: str) -> str:
    """The markdown document at `path` without its leading `# ` title line."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(lines).strip() + "\n"


def metadata(args: argparse.Namespace) -> str:
    fields = [
        ("Metadata-Version", "2.1"),
        ("Name", args.name),
        ("Version", args.version),
        ("Summary", args.summary),
        ("Keywords", args.keywords),
        ("Author", args.author),
        ("License", args.license),
    ]
    fields += [("Classifier", c) for c in args.classifier]
    fields += [("Project-URL", u) for u in args.project_url]
    fields += [("Requires-Python", args.requires_python)]
    fields += [("License-File", f.partition("=")[0]) for f in args.license_file]
    description = ""
    if args.description_head or args.description_body:
        fields.append(("Description-Content-Type", "text/markdown; charset=UTF-8"))
        parts = []
        if args.description_head:
            with open(args.description_head, encoding="utf-8") as f:
                parts.append(f.read().strip() + "\n")
        if args.description_body:
            parts.append(document_body(args.description_body))
        description = "\n" + "\n".join(parts)
    return "".join(f"{k}: {v}\n" for k, v in fields if v) + description


def build(args: argparse.Namespace) -> None:
    files = {}
    for spec in args.file:
        dest, _, src = spec.partition("=")
        with open(src, "rb") as f:
            files[dest] = f.read()
    top_level = sorted({dest.split("/")[0] for dest in files})
    dist_info = f"{args.name}-{args.version}.dist-info"
    wheel = "\n".join([
        "Wheel-Version: 1.0",
        "Generator: tls build_wheel.py",
        "Root-Is-Purelib: false",
        f"Tag: {args.tag}",
        "",
    ])
    for spec in args.license_file:
        dest, _, src = spec.partition("=")
        with open(src, "rb") as f:
            files[f"{dist_info}/{dest}"] = f.read()
    files[f"{dist_info}/METADATA"] = metadata(args).encode()
    files[f"{dist_info}/WHEEL"] = wheel.encode()
    files[f"{dist_info}/top_level.txt"] = ("\n".join(top_level) + "\n").encode()

    record_path = f"{dist_info}/RECORD"
    record = [_record_line(path, data) for path, data in sorted(files.items())]
    record.append(f"{record_path},,")
    files[record_path] = ("\n".join(record) + "\n").encode()

    with zipfile.ZipFile(args.out, "w") as whl:
        # dist-info last, RECORD last of all, as installers expect.
        order = sorted(files, key=lambda p: (p.startswith(dist_info), p == record_path, p))
        for path in order:
            whl.writestr(_entry(path, executable=path.endswith(".so")), files[path])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the .whl to write")
    parser.add_argument("--name", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--tag", required=True, help="python-abi-platform, e.g. cp311-cp311-linux_x86_64")
    parser.add_argument("--requires-python", default="")
    parser.add_argument("--summary", default="")
    parser.add_argument("--keywords", default="", help="comma-separated")
    parser.add_argument("--author", default="")
    parser.add_argument("--license", default="", help="e.g. MIT")
    parser.add_argument("--license-file", action="append", default=[],
                        help="NAME=SRC: put SRC in the .dist-info as NAME")
    parser.add_argument("--classifier", action="append", default=[])
    parser.add_argument("--project-url", action="append", default=[], help="'Label, URL'")
    parser.add_argument("--description-head", help="markdown that opens the long description")
    parser.add_argument("--description-body",
                        help="a markdown document whose body (without its `# ` title) follows the head")
    parser.add_argument("--file", action="append", default=[], help="DEST=SRC: put SRC at DEST in the wheel")
    build(parser.parse_args())


if __name__ == "__main__":
    main()
