"""The host package's layers: every top-level package of ``suture`` (and the root modules) sits
in one layer of :data:`LAYERS`, imports only from layers below it (imports inside functions and
type-only ones count too), the packages import no cycle, and no module imports itself back
through the imports that run when it is imported.

The order reads from the bottom: errors and keys; COSE, images, bundles and the device link;
the format descriptions (the trust store's signed update uses COSE); SUIT; the simulator and the
vendor's services; board definitions; QEMU; the firmware build; device control (a running
board's REPL, status protocol, ports, HIL targets); board operations (flash, provision, deploy,
SWD); the HIL pytest plugin and the scheduler; the ward simulator; the CLI on top.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

HOST = Path(__file__).resolve().parents[1] / "host"

# Bottom to top. A unit may import units of lower layers only: the units of one layer do not
# import each other. "suture" is the root package's __init__ (its __version__).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("suture", "errors"),
    ("keys", "bounded_body"),
    ("cose", "image", "bundle", "gateway"),
    ("formats",),
    ("suit",),
    ("delta",),
    ("sim", "vendor_services"),
    ("boards",),
    ("qemu",),
    ("firmware",),
    ("devicectl",),
    ("boardops",),
    ("hil", "scheduler"),
    ("ward",),
    ("cli",),
)


def module_name(path: Path, root: Path) -> str:
    """``host/suture/boards/load.py`` -> ``suture.boards.load`` (``__init__`` is its package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _is_type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


_DEFERRED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _imports(tree: ast.AST, *, at_import: bool) -> Iterable[ast.Import | ast.ImportFrom]:
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif not at_import or not (isinstance(node, _DEFERRED) or _is_type_checking(node)):
            todo.extend(ast.iter_child_nodes(node))


def import_graph(
    root: Path, top: str = "suture", *, at_import: bool = False
) -> dict[str, set[str]]:
    """Module -> the ``top`` modules it imports, anywhere in its source (``from top import x``
    is module ``top.x`` when that module exists, else the package ``top`` itself); with
    ``at_import``, only the imports that run when the module is imported (none inside a
    function, none under ``if TYPE_CHECKING:``)."""
    paths = {module_name(p, root): p for p in sorted((root / top).rglob("*.py"))
             if "board_side" not in p.parts}  # MicroPython sent to boards, never imported
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(), str(path)), at_import=at_import):
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            else:
                module = _resolve(name, path.name == "__init__.py", node)
                found = [f"{module}.{a.name}" if f"{module}.{a.name}" in paths else module
                         for a in node.names]
            for target in found:
                while target and target not in paths:  # a name inside a module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def unit(module: str) -> str:
    """The top-level package or root module a module belongs to (``suture`` for the root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def unit_graph(graph: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    units: dict[str, set[str]] = {}
    for importer, targets in graph.items():
        edges = units.setdefault(unit(importer), set())
        edges.update(unit(t) for t in targets if unit(t) != unit(importer))
    return units


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def layer_violations(units: Mapping[str, Iterable[str]],
                     layers: tuple[tuple[str, ...], ...] = LAYERS) -> list[str]:
    """Each import of a unit at the importer's layer or above, and each unit with no layer."""
    level = {name: i for i, layer in enumerate(layers) for name in layer}
    problems = [f"{name} has no layer: add it to LAYERS in {Path(__file__).name}"
                for name in sorted(units) if name not in level]
    for importer in sorted(units):
        for target in sorted(units[importer]):
            if importer in level and target in level and level[target] >= level[importer]:
                where = "the same layer" if level[target] == level[importer] else "a higher layer"
                problems.append(f"{importer} imports {target}, which is in {where}")
    return problems


@pytest.fixture(scope="module")
def host_graph() -> dict[str, set[str]]:
    return import_graph(HOST)


def test_every_import_goes_down_the_layers(host_graph: dict[str, set[str]]) -> None:
    assert layer_violations(unit_graph(host_graph)) == []


def test_the_host_packages_import_no_cycle(host_graph: dict[str, set[str]]) -> None:
    assert cycles(unit_graph(host_graph)) == []


def test_no_module_imports_itself_back() -> None:
    assert cycles(import_graph(HOST, at_import=True)) == []


def test_each_layered_unit_exists(host_graph: dict[str, set[str]]) -> None:
    present = set(unit_graph(host_graph))
    assert {name for layer in LAYERS for name in layer} == present


# The checks themselves, on a made-up package: they must see what they are there to catch.
def _write(root: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_graph_sees_every_form_of_import(tmp_path: Path) -> None:
    _write(tmp_path, {
        "suture/__init__.py": "__version__ = '1'\n",
        "suture/keys.py": "",
        "suture/boards/__init__.py": "from .schema import Board\nfrom . import load\n",
        "suture/boards/schema.py": "from suture import __version__, keys\n",
        "suture/boards/load.py": "import suture.boards.schema as s\n",
        "suture/hil/__init__.py": "",
        "suture/hil/plugin.py": "def f():\n    from ..boards.load import parse\n",
        "suture/hil/dut.py": "import typing\nif typing.TYPE_CHECKING:\n    import suture.keys\n",
    })
    assert import_graph(tmp_path) == {
        "suture": set(),
        "suture.keys": set(),
        "suture.boards": {"suture.boards.schema", "suture.boards.load"},
        "suture.boards.schema": {"suture", "suture.keys"},
        "suture.boards.load": {"suture.boards.schema"},
        "suture.hil": set(),
        "suture.hil.plugin": {"suture.boards.load"},
        "suture.hil.dut": {"suture.keys"},
    }
    at_import = import_graph(tmp_path, at_import=True)
    assert at_import["suture.hil.dut"] == at_import["suture.hil.plugin"] == set()
    assert at_import["suture.boards.schema"] == {"suture", "suture.keys"}


def test_an_upward_import_and_a_cycle_are_caught(tmp_path: Path) -> None:
    _write(tmp_path, {
        "suture/__init__.py": "",
        "suture/boards/__init__.py": "",
        "suture/boards/deploy.py": "from suture.hil.link import Progress\n",
        "suture/hil/__init__.py": "",
        "suture/hil/link.py": "from suture.boards.deploy import x\n",
        "suture/extra.py": "",
    })
    graph = import_graph(tmp_path)
    units = unit_graph(graph)
    assert cycles(units) == [["boards", "hil"]]
    assert cycles(graph) == [["suture.boards.deploy", "suture.hil.link"]]
    assert cycles(import_graph(tmp_path, at_import=True)) == cycles(graph)
    layers = (("suture",), ("boards",), ("hil",))
    assert layer_violations(units, layers) == [
        f"extra has no layer: add it to LAYERS in {Path(__file__).name}",
        "boards imports hil, which is in a higher layer",
    ]
    assert layer_violations({"a": {"b"}, "b": set()}, (("a", "b"),)) == [
        "a imports b, which is in the same layer"]
