"""One name per idea: the notation page's table is the single source, and the code is held to it.

Every identifier in the table's code column is used by the library, and the names the page
retires (each once meant two things) are bound nowhere in it: not as a variable, an argument, a
function, a class or a field.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import minirnn

ROOT = Path(minirnn.__file__).parent
PAGE = (ROOT.parent / "docs" / "notation.md").read_text()
IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")


def table_names() -> set[str]:
    rows = [line for line in PAGE.splitlines() if line.startswith("| $")]
    assert len(rows) >= 15, "the notation table was not found"
    names = set()
    for row in rows:
        code = row.rstrip(" |").rsplit("|", 1)[-1]
        names |= {n for n in re.findall(r"`([^`]+)`", code) if IDENTIFIER.match(n)}
    return names


def retired_names() -> set[str]:
    paragraph = PAGE.split("**Retired names.**", 1)[1].split("\n\n", 1)[0]
    outside_parentheses = re.sub(r"\([^)]*\)", "", paragraph)
    names = set(re.findall(r"`(\w+)`", outside_parentheses))
    assert {"g", "decay", "probs"} <= names, names
    return names


def bindings(tree: ast.AST) -> set[str]:
    """Every name a module binds: assignments, loop and with targets, arguments, functions,
    classes, and the fields of its classes."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.add(node.id)
        elif isinstance(node, ast.arg):
            found.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            found.add(node.target.id)
    return found


LIBRARY = {path: bindings(ast.parse(path.read_text())) for path in ROOT.rglob("*.py")}
USED = set().union(*LIBRARY.values())


def test_every_name_of_the_table_is_the_librarys():
    missing = sorted(table_names() - USED)
    assert not missing, f"the notation table names code the library does not have: {missing}"


def test_retired_names_are_bound_nowhere():
    retired = retired_names()
    offenders = {f"{path.relative_to(ROOT)}: {sorted(names & retired)}"
                 for path, names in LIBRARY.items() if names & retired}
    assert not offenders, f"retired names are back: {sorted(offenders)}"


def test_the_table_gives_each_code_name_one_row():
    rows = [line for line in PAGE.splitlines() if line.startswith("| $")]
    seen: dict[str, int] = {}
    for i, row in enumerate(rows):
        code = row.rstrip(" |").rsplit("|", 1)[-1]
        for name in re.findall(r"`(\w+)`", code):
            assert name not in seen, f"`{name}` is in two rows of the notation table"
            seen[name] = i
