"""The checked-in stubs (tls/__init__.pyi) and py.typed match the module."""

import ast
import dataclasses
import inspect
import os
import re
import unittest

import tls


# Public, documented as tls.set/tls.id, but not in __all__: `from tls import *`
# would shadow the builtins.
SHADOWING_BUILTINS = {"set", "id"}
# Paths for building C++ against the wheel's engine (tls/_cpp.py): public, but
# not what `from tls import *` is for.
BUILD_HELPERS = {"get_include", "get_library", "get_cmake_dir", "get_pkgconfig_dir"}


def stub_path():
    return os.path.join(os.path.dirname(tls.__file__), "__init__.pyi")


def stub_tree():
    with open(stub_path()) as f:
        return ast.parse(f.read())


def stub_params(fn):
    """[(name, kind)] of a stub function, kind as inspect.Parameter kinds."""
    a = fn.args
    params = [(p.arg, inspect.Parameter.POSITIONAL_ONLY) for p in a.posonlyargs]
    params += [(p.arg, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in a.args]
    if a.vararg:
        params.append((a.vararg.arg, inspect.Parameter.VAR_POSITIONAL))
    params += [(p.arg, inspect.Parameter.KEYWORD_ONLY) for p in a.kwonlyargs]
    if a.kwarg:
        params.append((a.kwarg.arg, inspect.Parameter.VAR_KEYWORD))
    return [(n, k) for n, k in params if n != "self"]


def runtime_params(obj):
    """The same for the runtime object; pybind11 functions have no
    __text_signature__, so their signature line ('name(a: T, /) -> R') is read."""
    try:
        sig = inspect.signature(obj)
    except ValueError:
        first = obj.__doc__.splitlines()[0]
        inner = re.match(r"\w+\((.*)\)", first).group(1)
        parts = [p.strip() for p in inner.split(",") if p.strip()]
        kind = (inspect.Parameter.POSITIONAL_ONLY if "/" in parts
                else inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return [(p.split(":")[0].strip(), kind) for p in parts if p != "/"]
    return [(p.name, p.kind) for p in sig.parameters.values() if p.name != "self"]


class StubsTest(unittest.TestCase):
    def test_py_typed_marker_ships_with_the_package(self):
        self.assertTrue(os.path.exists(os.path.join(os.path.dirname(tls.__file__), "py.typed")))

    def test_all_matches_between_stub_and_module(self):
        tree = stub_tree()
        declared = None
        for node in tree.body:
            if isinstance(node, ast.Assign) and node.targets[0].id == "__all__":
                declared = ast.literal_eval(node.value)
        self.assertEqual(sorted(declared), sorted(tls.__all__))
        names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        self.assertEqual(names, set(tls.__all__) | SHADOWING_BUILTINS | BUILD_HELPERS)

    def test_names_that_shadow_builtins_are_public_but_not_starred(self):
        for name in SHADOWING_BUILTINS:
            with self.subTest(name=name):
                self.assertTrue(hasattr(tls, name))
                self.assertNotIn(name, tls.__all__)
        starred = {}
        exec("from tls import *", starred)
        self.assertIs(starred.get("set", set), set)
        self.assertIs(starred.get("id", id), id)

    def test_functions_are_named_as_called(self):
        for name in ("at_exit", "capture", "delete", "get", "id", "reset", "set", "unload"):
            with self.subTest(name=name):
                self.assertEqual(getattr(tls, name).__module__, "tls")
        # 3.10+ prefix the module ("tls.reset() takes..."), 3.9 the name alone.
        with self.assertRaisesRegex(TypeError, r"^(tls\.)?reset\(\) takes no arguments"):
            tls.reset(1)
        with self.assertRaises(TypeError) as caught:
            tls.capture(k=1)
        self.assertNotIn("_tls", str(caught.exception))

    def test_every_function_signature_matches(self):
        for node in stub_tree().body:
            if isinstance(node, ast.FunctionDef):
                with self.subTest(function=node.name):
                    self.assertEqual(stub_params(node), runtime_params(getattr(tls, node.name)))

    def test_every_class_member_matches(self):
        # Each class declares exactly its own public members (plus __init__ when
        # it has a signature of its own), with the runtime's signatures; a
        # dataclass's fields are its annotated names, in the runtime's order.
        for cls in (n for n in stub_tree().body if isinstance(n, ast.ClassDef)):
            runtime_cls = getattr(tls, cls.name)
            fields = [n.target.id for n in cls.body if isinstance(n, ast.AnnAssign)]
            is_dataclass = any("dataclass" in ast.dump(d) for d in cls.decorator_list)
            with self.subTest(cls=cls.name, fields=fields):
                self.assertEqual(is_dataclass, dataclasses.is_dataclass(runtime_cls))
                if is_dataclass:
                    self.assertEqual(fields, [f.name for f in dataclasses.fields(runtime_cls)])
                    self.assertTrue(runtime_cls.__dataclass_params__.frozen)
            for node in (n for n in cls.body if not isinstance(n, (ast.AnnAssign, ast.Expr))):
                with self.subTest(cls=cls.name, member=node.name):
                    if node.name == "__init__":
                        self.assertEqual(stub_params(node), runtime_params(runtime_cls))
                        continue
                    runtime = getattr(runtime_cls, node.name)
                    is_property = any(getattr(d, "id", None) == "property"
                                      for d in node.decorator_list)
                    self.assertEqual(is_property, isinstance(runtime, property))
                    if not is_property:
                        self.assertEqual(stub_params(node), runtime_params(runtime))
            with self.subTest(cls=cls.name):
                public = {n for n in vars(runtime_cls) if not n.startswith("_")}
                declared = {n.name for n in cls.body if not isinstance(n, (ast.AnnAssign, ast.Expr))}
                self.assertEqual(public, declared - {"__init__"})


if __name__ == "__main__":
    unittest.main()
