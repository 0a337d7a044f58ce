"""The hand-written stubs (tse/_C.pyi) name everything tse._C and tse._C.Tensor define, and the
package ships them with py.typed."""

import ast
import pathlib

import tse

PACKAGE = pathlib.Path(tse.__file__).parent


def _class_members(cls):
    names = set()
    for item in cls.body:
        if isinstance(item, ast.FunctionDef):
            names.add(item.name)
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            names.add(item.target.id)
    for base in cls.bases:  # members stubbed on a stubbed base class count
        base_name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", None)
        if base_name in _NESTED_BASES:
            names |= _NESTED_BASES[base_name]
    _NESTED_BASES[cls.name] = names
    return names


_NESTED_BASES: dict = {}


def _stub_names():
    tree = ast.parse((PACKAGE / "_C.pyi").read_text())
    top, members = set(), {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            top.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            top.add(node.target.id)
        if isinstance(node, ast.ClassDef):
            names = set()
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    names.add(item.name)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    names.add(item.target.id)
                elif isinstance(item, ast.ClassDef):  # a class inside a submodule stub
                    names.add(item.name)
                    members[node.name + "." + item.name] = _class_members(item)
            members[node.name] = names
    return top, members


def _runtime_names(obj):
    return {n for n in dir(obj) if not (n.startswith("__") and n.endswith("__")) and not n.startswith("_pybind11")}


def test_every_module_name_has_a_stub():
    top, _ = _stub_names()
    missing = _runtime_names(tse._C) - top
    assert not missing, f"add these to python/tse/_C.pyi: {sorted(missing)}"


def test_every_class_member_has_a_stub():
    _, members = _stub_names()
    for cls in ("Tensor", "device", "dtype", "GeneratorState", "Node"):
        missing = _runtime_names(getattr(tse._C, cls)) - members[cls]
        assert not missing, f"add these to class {cls} in python/tse/_C.pyi: {sorted(missing)}"
    dunder = {n for n in dir(tse._C.Tensor) if n.startswith("__") and n not in dir(object) and n != "__module__"}
    assert not dunder - members["Tensor"], sorted(dunder - members["Tensor"])
    for sub in ("_nn", "return_types", "audio", "metrics", "io", "nn", "models", "optim", "train"):
        missing = _runtime_names(getattr(tse._C, sub)) - members[sub]
        assert not missing, f"add these to class {sub} in python/tse/_C.pyi: {sorted(missing)}"
    for sub in ("nn", "models", "optim", "train"):  # the classes inside the submodules, member by member
        for name in members[sub]:
            cls = getattr(getattr(tse._C, sub), name)
            if isinstance(cls, type):
                missing = _runtime_names(cls) - members[sub + "." + name]
                assert not missing, f"add these to class {sub}.{name} in python/tse/_C.pyi: {sorted(missing)}"


def test_stubs_and_marker_are_installed():
    assert (PACKAGE / "py.typed").is_file()


def test_subpackages_load_with_the_package():
    for mod in ("nn", "autograd", "cuda", "return_types", "audio", "metrics", "io", "models", "optim", "train"):
        assert hasattr(tse, mod)
    assert tse.nn.functional.pad is tse._C._nn.pad
    assert tse.audio.stft is tse._C.audio.stft
    assert tse.io.load_safetensors.__module__ == "tse.io"
    assert tse.autograd.grad is not None and tse.cuda.device_count() >= 0
