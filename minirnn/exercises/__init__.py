"""Classroom exercises: stubs made from the library's source and an offline autograder.

``python -m minirnn exercise list`` shows them, ``python -m minirnn exercise start NAME``
writes a stub, ``python -m minirnn grade FILE...`` grades one file or a whole class. The
solutions are the library.
"""

from pathlib import Path

from .batch import grade_files, write_csv
from .catalog import BY_NAME, EXERCISES, PROPERTY_EXERCISE, Exercise, mistake_count
from .grader import grade, rubric
from .mistake import Mistake
from .property_exercise import stub_source as property_stub
from .report import Check, Report
from .stubs import exercise_source, load_source

__all__ = ["BY_NAME", "EXERCISES", "PROPERTY_EXERCISE", "Check", "Exercise", "Mistake",
           "Report", "exercise_list", "exercise_source", "grade", "grade_files", "load_source",
           "mistake_count", "rubric", "start_exercise", "write_csv"]


def exercise_list() -> list[tuple[str, str, str]]:
    """``(name, difficulty, goal)`` of every exercise, in the suggested order."""
    return [(e.name, e.difficulty, e.goal) for e in EXERCISES]


def start_exercise(name: str, directory=".") -> Path:
    """Write the stub of exercise ``name`` to ``directory/NAME.py`` (creating the folder);
    never overwrites."""
    if name not in BY_NAME:
        raise ValueError(f"unknown exercise {name!r}; see `python -m minirnn exercise list`")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    if path.exists():
        raise FileExistsError(f"{path} already exists; not overwriting your work")
    text = property_stub() if name == PROPERTY_EXERCISE else exercise_source(BY_NAME[name])
    with open(path, "x", encoding="utf-8") as f:
        f.write(text)
    return path
