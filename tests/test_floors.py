"""The plan of the house: every import of the package, read from the source, goes to the same
floor or a lower one (minirnn/_floors.py), and the package has no import cycle.

Every import counts: at the top of a module or inside a function, ``import minirnn.x``,
``from . import x``, ``from .x import y``, ``from .. import y`` in a subpackage.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import minirnn
from minirnn._floors import FLOORS, floor_of

ROOT = Path(minirnn.__file__).parent
ORDER = {name: i for i, (name, _, _) in enumerate(FLOORS)}


def modules() -> dict[str, Path]:
    """Every module of the package, named relative to it (``"gated"``, ``"explore.rnn"``)."""
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1] or ("__init__",)
        found[".".join(parts)] = path
    return found


MODULES = modules()


def resolve(target: str) -> str | None:
    """The module a dotted name inside the package refers to (a package's __init__ for a
    package, the module for ``package.name`` when it is one); None outside the package."""
    while target:
        if target in MODULES:
            return target
        target = target.rpartition(".")[0]
    return None


def imports_of(name: str, source: str | None = None) -> set[str]:
    """Every module of the package that module ``name`` imports, anywhere in its source (or in
    ``source``, read as if it were that module's)."""
    path = MODULES[name]
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("minirnn."):
                    found.add(resolve(alias.name[len("minirnn."):]))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if not (node.module or "").startswith("minirnn"):
                    continue
                base = (node.module or "")[len("minirnn."):]
            else:
                up = package.split(".") if package and package != "__init__" else []
                up = up[:len(up) - (node.level - 1)] if node.level > 1 else up
                base = ".".join(up + ([node.module] if node.module else []))
            for alias in node.names:                 # `from . import x` imports module x
                sub = f"{base}.{alias.name}" if base else alias.name
                found.add(resolve(sub) if sub in MODULES else resolve(base or "__init__"))
    found.discard(None)
    found.discard(name)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def test_every_module_is_on_a_floor_and_every_floor_module_exists():
    for name in MODULES:
        floor_of(name if name != "__init__" else "__init__")      # raises when missing
    listed = {m for _, _, mods in FLOORS for m in mods}
    tops = {name.split(".")[0] for name in MODULES}
    assert listed <= tops, f"floors list modules that do not exist: {sorted(listed - tops)}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_import_goes_up_a_floor(name):
    mine = ORDER[floor_of(name)]
    upward = {other for other in GRAPH[name] if ORDER[floor_of(other)] > mine}
    assert not upward, (f"minirnn.{name} (floor {floor_of(name)}) imports from higher floors: "
                        + ", ".join(f"{o} ({floor_of(o)})" for o in sorted(upward)))


def test_the_package_has_no_import_cycle():
    """Tarjan's strongly connected components over the whole graph: every one is a single
    module."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_graph_reader_sees_every_kind_of_import():
    """The reader itself: imports inside functions, `from . import x`, relative imports from a
    subpackage and `import minirnn.x` all count (a reader that missed one could pass a cycle)."""
    source = "\n".join([
        "import minirnn.retention",
        "from . import gated",
        "from ..states import GatedState",
        "def f():",
        "    from .msr import msr_forward",
        "    from .. import attention",
    ])
    found = imports_of("explore.rnn", source)
    assert found == {"retention", "explore.gated", "states", "explore.msr", "attention"}


def test_the_contributing_guide_draws_the_same_floors():
    """CONTRIBUTING.md's table of floors, row by row, is minirnn/_floors.py's FLOORS."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "CONTRIBUTING.md").read_text()
    table = text.split("## The plan of the house: floors", 1)[1].split("\n\n", 2)[2]
    rows = [line for line in table.splitlines() if line.startswith("| ")][1:]
    drawn = [(cells[0], tuple(m.rstrip("/") for m in re.findall(r"`([^`]+)`", cells[1])))
             for cells in ([c.strip() for c in row.strip("|").split("|")] for row in rows)]
    assert drawn == [(name, modules) for name, _, modules in FLOORS]
