"""Exercise files made from the library's own source, so stubs never drift from solutions.

A solution region in the library is marked with one comment line before and one after::

    # --- exercise: rnn_step_backward ---
    da = dh * (1.0 - cache.h ** 2)
    ...
    # --- end ---

``exercise_source`` copies the functions that hold an exercise's regions into a standalone
module (with the imports they need) and either keeps the regions (the solution) or replaces
each by ``raise NotImplementedError(...)`` (the stub). Mistakes for the grader's diagnostics are
made the same way, by replacing a few characters inside the solution.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import re
import textwrap
import types

START = re.compile(r"^(?P<indent>\s*)# --- exercise: (?P<name>\w+) ---\s*$")
END = re.compile(r"^\s*# --- end ---\s*$")


def _functions(exercise):
    module = importlib.import_module(exercise.module)
    return module, [getattr(module, name) for name in exercise.functions]


def _region_text(source: str, name: str) -> list[str]:
    """The lines of every region called ``name`` in ``source``."""
    out, inside = [], False
    for line in source.splitlines():
        match = START.match(line)
        if match and match["name"] == name:
            inside = True
        elif inside and END.match(line):
            inside = False
        elif inside:
            out.append(line)
    return out


def _rewrite(source: str, name: str, stub_message: str | None) -> str:
    """Drop the markers; with ``stub_message`` replace each region's body by a raise."""
    lines, inside = [], False
    for line in source.splitlines():
        match = START.match(line)
        if match and match["name"] == name:
            inside = True
            if stub_message is not None:
                lines.append(f"{match['indent']}# TODO: your code here")
                lines.append(f"{match['indent']}raise NotImplementedError({stub_message!r})")
            continue
        if inside and END.match(line):
            inside = False
            continue
        if START.match(line) or END.match(line):
            continue                                  # markers of other exercises
        if not inside or stub_message is None:
            lines.append(line)
    return "\n".join(lines) + "\n"


def _imports(modules, sources: list[str], defined: set[str]) -> list[str]:
    """``from module import name`` for every global the functions use and do not define: from
    the exercise's module, else from the first other module of its functions that has it."""
    used = set()
    for src in sources:
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Name):
                used.add(node.id)
    lines = ["import numpy as np", ""]
    for module in modules:
        names = sorted(n for n in used if n not in defined and hasattr(module, n)
                       and not hasattr(builtins, n) and n != "np")
        if names:
            lines.append(f"from {module.__name__} import (  # noqa: F401")
            lines += [f"    {n}," for n in names]
            lines.append(")")
        defined = defined | set(names)
    return lines


def _without_answers(source: str) -> str:
    """The function's source with its docstring cut to the summary line and the Parameters /
    Returns sections: the paragraphs in between explain the math, i.e. the answer."""
    func = ast.parse(source).body[0]
    doc = ast.get_docstring(func, clean=False)
    if not doc:
        return source
    node = func.body[0]
    lines = source.splitlines()
    indent = " " * node.col_offset
    summary = doc.strip().splitlines()[0]
    sections = doc[doc.find("Parameters\n"):] if "Parameters\n" in doc else ""
    kept = [summary.strip(), "", indent + "See the derivation page for the equations.", ""]
    kept = [f'{indent}"""{kept[0]}', "", *kept[2:]]
    body = [line[len(indent):] if line.startswith(indent) else line
            for line in sections.splitlines()]
    kept += [indent + line if line else "" for line in body]
    new_doc = "\n".join(kept).rstrip() + "\n" + indent + '"""'
    return "\n".join([*lines[:node.lineno - 1], new_doc, *lines[node.end_lineno:]]) + "\n"


def apply_edits(text: str, edits, where: str = "") -> str:
    """``text`` with every ``(old, new)`` of ``edits`` made once, in its code (the module
    docstring is left alone); ValueError naming the edit when ``old`` is not there."""
    start = text.find("\ndef ")
    head, code = text[:start], text[start:]
    for old, new in edits:
        if old not in code:
            raise ValueError(f"edit {old!r} is not in the solution{where}")
        code = code.replace(old, new, 1)
    return head + code


def exercise_source(exercise, solution: bool = False, edits=()) -> str:
    """Text of the exercise module: the stub, or the solution (optionally with a mistake).

    Parameters
    ----------
    exercise : Exercise
    solution : bool
        Keep the solution regions instead of replacing them.
    edits : sequence of (old, new)
        A catalogued mistake's slip, made in the solution's code (``solution`` must be True).

    Returns
    -------
    str
        Python source of a standalone module with an ``EXERCISE = "..."`` line.
    """
    module, functions = _functions(exercise)
    sources = [textwrap.dedent(inspect.getsource(f)) for f in functions]
    foreign = []                        # a function of another module checks with its own twin
    for i, f in enumerate(functions):
        if f.__module__ != module.__name__:
            alias = "check_" + f.__module__.rsplit(".", 1)[-1]
            sources[i] = re.sub(r"\bcheck\.", alias + ".", sources[i])
            foreign.append(f"from {f.__module__} import check as {alias}  # noqa: F401")
    if edits and not solution:
        raise ValueError("edits are made in the solution: pass solution=True")
    message = None if solution else (f"implement eq. {exercise.equations} "
                                     f"(docs: {exercise.page})")
    if not solution:
        sources = [_without_answers(src) for src in sources]
    bodies = [_rewrite(s, exercise.name, message) for s in sources]
    given = textwrap.wrap(f"Already done for you: {exercise.given}", 88)
    header = [
        f'"""Exercise {exercise.name}: {exercise.goal}',
        "",
        f"Implement the parts marked TODO: eq. {exercise.equations} on the docs page",
        f"{exercise.page}. Do not change the function signatures.",
        "",
        *given,
        "",
        f"Check your work with:  python -m minirnn grade {exercise.name}.py",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        f"EXERCISE = {exercise.name!r}",
        "",
    ]
    defined = {f.__name__ for f in functions}
    modules = [module] + [importlib.import_module(name) for name in
                          dict.fromkeys(f.__module__ for f in functions) if name != module.__name__]
    text = "\n".join(header + _imports(modules, sources, defined) + foreign) + "\n\n\n" + \
        "\n\n".join(bodies)
    return apply_edits(text, edits, f" of {exercise.name}") if edits else text


def load_source(text: str, name: str = "student") -> types.ModuleType:
    """Execute module text into a fresh module object (used for solutions and mistakes)."""
    module = types.ModuleType(name)
    exec(compile(text, f"<{name}>", "exec"), module.__dict__)
    return module
