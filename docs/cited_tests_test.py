"""Every test the docs cite exists, so their rule -> test tables cannot rot.

(Also: every relative link between README.md and docs/*.md resolves, anchors
included.)

Scans README.md and docs/*.md (outside fenced code blocks) for test names in
backticks and looks each one up in the test sources (tests/**/*.cc, *.h, *.py):

  `Suite.Name`, `Suite.Name/*`   a C++ TEST/TEST_F/TEST_P/TYPED_TEST(Suite, Name)
  `Suite.*`                      at least one C++ test in Suite
  `Class.test_name`              a unittest method of that class (tests/python)
  `module_test: Name`            a class or test method in tests/python/module_test.py
  `test_name`                    a test method of some Python test file
  `SomethingTest`                a Python test class or a C++ suite of that name

Nothing is hard-coded about which tests exist: the definitions are read from
whatever sources are present, so renames only need the docs updated. Run it
under Bazel (`bazel test //docs:cited_tests_test`) or from the repository root
(`python3 docs/cited_tests_test.py`). Arguments, if any, are the files to read:
the .md files are docs, the others sources.
"""

import ast
import collections
import glob
import os
import re
import sys
import unittest

_CPP_TEST = re.compile(
    r"\b(?:TEST|TEST_F|TEST_P|TYPED_TEST|TYPED_TEST_P)\s*\(\s*(\w+)\s*,\s*(\w+)\s*\)")
_SPAN = re.compile(r"`([^`\n]+)`")
_CPP_NAME = re.compile(r"([A-Z]\w*)\.([A-Z]\w*|\*)(?:/\*)?")
_PY_METHOD = re.compile(r"([A-Z]\w*)\.(test_\w+)")
_PY_IN_MODULE = re.compile(r"(\w+_test): (\w+)")
_PY_TEST = re.compile(r"test_\w+")
_TEST_CLASS = re.compile(r"[A-Z]\w*Test")


class Definitions:
    """The tests the sources define."""

    def __init__(self, sources):
        self.cpp = collections.defaultdict(set)  # suite -> names
        self.py_classes = collections.defaultdict(set)  # class -> test methods
        self.py_modules = collections.defaultdict(set)  # module -> classes and methods
        self.py_tests = set()  # every test method or function
        for path in sources:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            if path.endswith(".py"):
                self._add_python(os.path.basename(path)[:-3], text)
            else:
                for suite, name in _CPP_TEST.findall(text):
                    self.cpp[suite].add(name)

    def _add_python(self, module, text):
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                self.py_modules[module].add(node.name)
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        self.py_classes[node.name].add(item.name)
                        if item.name.startswith("test_"):
                            self.py_tests.add(item.name)
                            self.py_modules[module].add(item.name)
            elif isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                self.py_tests.add(node.name)
                self.py_modules[module].add(node.name)

    def missing(self, cited):
        """Why `cited` names no test, or None if it does (or is not a test name)."""
        m = _PY_IN_MODULE.fullmatch(cited)
        if m:
            module, name = m.groups()
            if module not in self.py_modules:
                return f"no Python test file {module}.py"
            if name not in self.py_modules[module]:
                return f"no test or test class {name} in {module}.py"
            return None
        m = _PY_METHOD.fullmatch(cited)
        if m:
            cls, name = m.groups()
            return None if name in self.py_classes.get(cls, ()) else f"no method {name} in a class {cls}"
        m = _CPP_NAME.fullmatch(cited)
        if m:
            suite, name = m.groups()
            if suite not in self.cpp:
                return f"no C++ test suite {suite}"
            if name != "*" and name not in self.cpp[suite]:
                return f"no C++ test {name} in suite {suite}"
            return None
        if _PY_TEST.fullmatch(cited):
            return None if cited in self.py_tests else "no Python test of that name"
        if _TEST_CLASS.fullmatch(cited):
            if cited in self.py_classes or cited in self.cpp:
                return None
            return "no Python test class or C++ suite of that name"
        return None


def citations(path):
    """(line number, name) for every backticked name outside code fences."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    fenced = False
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            for span in _SPAN.findall(line):
                yield number, span.strip()


def files(args):
    if args:
        return [a for a in args if a.endswith(".md")], [a for a in args if not a.endswith(".md")]
    # Under `bazel test` the working directory is the runfiles root of this
    # repository; otherwise run from the checkout this file is in.
    if "TEST_SRCDIR" not in os.environ:
        os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    docs = ["README.md"] + sorted(glob.glob(os.path.join("docs", "*.md")))
    sources = sorted(
        p for ext in ("cc", "h", "py")
        for p in glob.glob(os.path.join("tests", "**", "*." + ext), recursive=True))
    return [d for d in docs if os.path.exists(d)], sources


def problems(docs, sources):
    """One line per cited name that names no test, and the definitions read."""
    defs = Definitions(sources)
    found = []
    for doc in docs:
        for number, name in citations(doc):
            why = defs.missing(name)
            if why:
                found.append(f"{doc}:{number}: `{name}`: {why}")
    return found, defs


_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")


def slug(heading):
    """The anchor GitHub gives a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def broken_links(docs):
    """Relative links between the docs whose file or heading is missing."""
    anchors = {}
    for doc in docs:
        with open(doc, encoding="utf-8") as f:
            anchors[os.path.normpath(doc)] = {
                slug(line.lstrip("#")) for line in f.read().splitlines() if line.startswith("#")}
    found = []
    for doc in docs:
        with open(doc, encoding="utf-8") as f:
            lines = f.read().splitlines()
        for number, line in enumerate(lines, 1):
            for link in _LINK.findall(line):
                if re.match(r"[a-z]+:", link):
                    continue  # a URL
                path, _, anchor = link.partition("#")
                target = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else os.path.normpath(doc)
                if target in anchors:
                    if anchor and anchor not in anchors[target]:
                        found.append(f"{doc}:{number}: link {link}: no heading #{anchor} in {target}")
                elif "TEST_SRCDIR" not in os.environ and not os.path.exists(target):
                    # Under Bazel only the docs themselves are at hand.
                    found.append(f"{doc}:{number}: link {link}: no file {target}")
    return found


ARGS = sys.argv[1:]
sys.argv[1:] = []


class CitedTestsTest(unittest.TestCase):
    def test_every_cited_test_exists(self):
        docs, sources = files(ARGS)
        self.assertTrue(docs, "no docs found")
        self.assertTrue(sources, "no test sources found")
        found, defs = problems(docs, sources)
        self.assertTrue(defs.cpp and defs.py_tests, "found no C++ or no Python tests: wrong sources?")
        if found:
            self.fail("the docs cite tests that do not exist (rename them in the docs, or "
                      "restore the test):\n" + "\n".join(found))

    def test_links_between_the_docs_resolve(self):
        docs, _ = files(ARGS)
        found = broken_links(docs)
        if found:
            self.fail("broken links in the docs:\n" + "\n".join(found))

    def test_a_bogus_name_is_caught(self):
        defs = Definitions([])
        defs.cpp["Suite"].add("Name")
        defs.py_classes["SomeTest"].add("test_x")
        defs.py_modules["api_test"].update({"SomeTest", "test_x"})
        defs.py_tests.add("test_x")
        for ok in ("Suite.Name", "Suite.*", "Suite.Name/*", "SomeTest.test_x",
                   "api_test: test_x", "api_test: SomeTest", "test_x", "SomeTest",
                   "tls.get", "Data::Value<T>()", "MODULE.bazel", "Thread._context"):
            self.assertIsNone(defs.missing(ok), ok)
        for bad in ("Suite.Other", "Other.*", "Other.Name/*", "SomeTest.test_y",
                    "api_test: test_y", "exit_test: test_x", "test_y", "OtherTest"):
            self.assertIsNotNone(defs.missing(bad), bad)


if __name__ == "__main__":
    unittest.main()
