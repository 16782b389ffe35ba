"""Only the accel packages reach into libraries' private internals.

The private names are derived from what `coelho_pipelines/accel` and `coelho_serving/accel`
read (attributes and `getattr` names starting with one underscore, on anything but `self` or
`cls`, and names imported from a library's private module); no other module of
`coelho_pipelines` or `coelho_serving` may read them or import from a library's private
module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("coelho_pipelines", "coelho_serving")
ACCEL = [ROOT / package / "accel" for package in PACKAGES]
OWN = ("coelho_pipelines", "coelho_serving", "coelho")
# What the issue names; the derived set must hold them (so the derivation cannot go empty).
NAMED = {"_root", "_mapping", "_metrics", "_init_pool", "_base_predict", "_labels_inertia",
         "_var", "_att_dist_per_class"}  # fmt: skip


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _library_private_module(module: str | None) -> bool:
    if not module or module.split(".")[0] in OWN:
        return False
    return any(_private(part) for part in module.split("."))


def _reads(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, private name) read on something other than self/cls, or imported from a
    library's private module (and "from <module>" for that import)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            receiver = node.value
            if not (isinstance(receiver, ast.Name) and receiver.id in ("self", "cls")):
                yield node.lineno, node.attr
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in (
            "getattr",
            "hasattr",
        ):
            if len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                name = node.args[1].value
                if isinstance(name, str) and _private(name):
                    yield node.lineno, name
        elif isinstance(node, ast.ImportFrom) and _library_private_module(node.module):
            yield node.lineno, f"from {node.module}"
            for alias in node.names:
                yield node.lineno, alias.name


def _modules(inside_accel: bool) -> Iterator[Path]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            in_accel = any(accel in path.parents for accel in ACCEL)
            if in_accel == inside_accel:
                yield path


def _accel_private_names() -> set[str]:
    names: set[str] = set()
    for path in _modules(inside_accel=True):
        names |= {name for _, name in _reads(ast.parse(path.read_text()))}
    return names


def test_the_accel_packages_hold_the_private_reads_the_issue_names() -> None:
    names = _accel_private_names()
    assert names >= NAMED, sorted(NAMED - names)


def test_no_module_outside_accel_reads_a_library_private_name() -> None:
    private = _accel_private_names()
    found = []
    for path in _modules(inside_accel=False):
        for line, name in _reads(ast.parse(path.read_text())):
            if name in private or name.startswith("from "):
                found.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert not found, "\n".join(found)


def test_the_scan_finds_a_private_read() -> None:
    """The scan itself sees an attribute read, a getattr and a private-module import."""
    code = (
        "from sklearn.cluster._kmeans import _labels_inertia\n"
        "root = tree._root\nmetrics = getattr(forest, '_metrics')\nself._root = None\n"
    )
    names = {name for _, name in _reads(ast.parse(code))}
    assert names == {"from sklearn.cluster._kmeans", "_labels_inertia", "_root", "_metrics"}
