"""Classroom exercises: stubs made from the library's source and an offline autograder.

``python -m minirnn exercise list`` shows them, ``python -m minirnn exercise start NAME``
writes a stub, ``python -m minirnn grade FILE`` grades it. The solutions are the library.
"""

from .catalog import BY_NAME, EXERCISES, Exercise, Mistake
from .grader import Check, Report, grade
from .property_exercise import GOAL as PROPERTY_GOAL
from .property_exercise import NAME as PROPERTY_NAME
from .property_exercise import stub_source as property_stub
from .stubs import exercise_source, load_source

__all__ = ["BY_NAME", "EXERCISES", "Check", "Exercise", "Mistake", "Report", "exercise_list",
           "exercise_source", "grade", "load_source", "start_exercise"]


def exercise_list() -> list[tuple[str, str, str]]:
    """``(name, difficulty, goal)`` of every exercise, in the suggested order."""
    rows = [(e.name, e.difficulty, e.goal) for e in EXERCISES]
    return [*rows, (PROPERTY_NAME, "3", PROPERTY_GOAL)]


def start_exercise(name: str, directory=".") -> "Path":  # noqa: F821
    """Write the stub of exercise ``name`` to ``directory/NAME.py``; never overwrites."""
    from pathlib import Path

    if name != PROPERTY_NAME and name not in BY_NAME:
        raise ValueError(f"unknown exercise {name!r}; see `python -m minirnn exercise list`")
    path = Path(directory) / f"{name}.py"
    if path.exists():
        raise FileExistsError(f"{path} already exists; not overwriting your work")
    text = property_stub() if name == PROPERTY_NAME else exercise_source(BY_NAME[name])
    with open(path, "x", encoding="utf-8") as f:
        f.write(text)
    return path
