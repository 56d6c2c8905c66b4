"""The offline autograder: run a student's file, check it, and say what is probably wrong.

Checks, in order, for every exercise:

1. the file imports and the functions run on random inputs without raising;
2. every returned array has the expected shape and is finite;
3. backward exercises: the gradient matches central differences of the library's forward
   (``check_gradients``, float64);
4. every output matches the solution (for forward exercises this is the property that matters:
   the recurrent or chunkwise result equals the parallel form; decoding equals the full forward).

When 4 fails, the student's numbers are compared with those of each known mistake, then with
the correct ones negated, transposed or scaled, and the closest explanation is printed.
"""

from __future__ import annotations

import importlib.util
import textwrap
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..gradcheck import rel_error
from .catalog import BY_NAME
from .stubs import exercise_source, load_source

MATCH_TOL = 1e-8      # float64: a correct implementation agrees to about 1e-15
GRAD_TOL = 1e-7       # as in the test suite
N_CASES = 3


@dataclass
class Check:
    name: str
    passed: bool
    message: str = ""


@dataclass
class Report:
    exercise: str
    checks: list

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def score(self) -> str:
        return f"{sum(c.passed for c in self.checks)}/{len(self.checks)}"

    def text(self) -> str:
        lines = [f"Exercise {self.exercise}"]
        for c in self.checks:
            lines.append(f"  [{'pass' if c.passed else 'FAIL'}] {c.name}")
            for line in c.message.splitlines():
                lines += textwrap.wrap(line, 78, initial_indent=" " * 9,
                                       subsequent_indent=" " * 11)
        lines.append(f"Score: {self.score}" + ("  - well done!" if self.passed else ""))
        return "\n".join(lines)


class StudentError(Exception):
    """The student's code raised; the message says where, in their file."""


def _describe(err: BaseException, path: str) -> str:
    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == path]
    where = f" (line {frames[-1].lineno}: {frames[-1].line})" if frames else ""
    if isinstance(err, NotImplementedError):
        return f"not implemented yet{where}"
    return f"{type(err).__name__}: {err}{where}"


def _run(func, path, *args):
    try:
        return func(*args)
    except Exception as err:
        raise StudentError(_describe(err, path)) from None


def load_student(path: str | Path):
    """Import the student's file as a module; returns (module, exercise name)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(f"student_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        raise StudentError(f"the file does not import: {_describe(err, str(path))}") from None
    name = getattr(module, "EXERCISE", None)
    if name not in BY_NAME and name != "write_a_property":
        raise StudentError(f"the file has no known EXERCISE = '...' line (found {name!r}); "
                           f"start from `python -m minirnn exercise start NAME`")
    return module, name


def _explain(got: np.ndarray, want: np.ndarray) -> str:
    """Generic diagnosis of an array that does not match."""
    err = rel_error(got, want)
    if rel_error(got, -want) < 1e-6:
        return "has the wrong sign (it equals minus the correct result)"
    if got.ndim == 2 and got.shape[0] == got.shape[1] and rel_error(got, want.T) < 1e-6:
        return "is transposed"
    denom = float(np.sum(want * want))
    if denom > 0:
        factor = float(np.sum(got * want)) / denom
        if factor != 0 and rel_error(got, factor * want) < 1e-6:
            return f"is off by a constant factor of {factor:.4g}"
    return f"differs from the correct result (relative error {err:.2e})"


def _compare(student: dict, solution: dict, mistakes: list) -> Check:
    bad = [k for k in solution if rel_error(student[k], solution[k]) > MATCH_TOL]
    if not bad:
        worst = max(rel_error(student[k], solution[k]) for k in solution)
        return Check("matches the correct result", True, f"largest relative error {worst:.1e}")
    for message, outputs in mistakes:
        if all(rel_error(student[k], outputs[k]) <= 1e-6 for k in solution):
            return Check("matches the correct result", False, f"Likely mistake: {message}")
    first = [k for k in bad if k.endswith("(case 0)")] or bad[:1]
    lines = [f"{k.replace(' (case 0)', '')} "
             f"{_explain(np.asarray(student[k]), np.asarray(solution[k]))}" for k in first]
    return Check("matches the correct result", False, "\n".join(lines))


def _shapes(student: dict, solution: dict) -> Check:
    problems = []
    for key, want in solution.items():
        got = student.get(key)
        if not isinstance(got, np.ndarray):
            problems.append(f"{key}: expected an array of shape {want.shape}, got "
                            f"{type(got).__name__}")
        elif got.shape != want.shape:
            problems.append(f"{key}: shape {got.shape}, expected {want.shape}")
        elif not np.all(np.isfinite(got)):
            problems.append(f"{key}: contains NaN or inf")
    return Check("returns finite arrays of the right shapes", not problems, "\n".join(problems))


def grade(path: str | Path, seed: int = 0) -> Report:
    """Grade the student's file at ``path``; never raises for problems in the student's code."""
    path = Path(path)
    try:
        module, name = load_student(path)
    except StudentError as err:
        return Report(path.stem, [Check("the file imports", False, str(err))])
    if name == "write_a_property":
        from .property_exercise import grade_property

        return grade_property(module, str(path))
    ex = BY_NAME[name]
    checks = [Check("the file imports", True)]
    solution = load_source(exercise_source(ex, solution=True), f"solution_{name}")
    mistakes = [(m.message, load_source(exercise_source(ex, True, m.replacements)))
                for m in ex.mistakes]
    rng = np.random.default_rng(seed)
    cases = [ex.make(rng) for _ in range(N_CASES)]
    try:
        student = [_run(ex.outputs, str(path), module, c) for c in cases]
    except StudentError as err:
        checks.append(Check("runs without errors", False, str(err)))
        return Report(name, checks)
    checks.append(Check("runs without errors", True))
    wanted = [ex.outputs(solution, c) for c in cases]
    shape_check = _shapes(student[0], wanted[0])
    checks.append(shape_check)
    if not shape_check.passed:
        return Report(name, checks)
    if ex.gradcheck is not None:
        try:
            report = _run(ex.gradcheck, str(path), module, cases[0])
            worst = max(report, key=report.get)
            ok = report[worst] < GRAD_TOL
            checks.append(Check("gradient matches finite differences", ok,
                                f"largest relative error {report[worst]:.1e} ({worst})"
                                + ("" if ok else f", should be below {GRAD_TOL:g}")))
        except StudentError as err:
            checks.append(Check("gradient matches finite differences", False, str(err)))
    merged = {f"{k} (case {i})": v for i, out in enumerate(student) for k, v in out.items()}
    right = {f"{k} (case {i})": v for i, out in enumerate(wanted) for k, v in out.items()}
    mistake_outputs = [(msg, {f"{k} (case {i})": v for i, c in enumerate(cases)
                              for k, v in ex.outputs(mod, c).items()}) for msg, mod in mistakes]
    checks.append(_compare(merged, right, mistake_outputs))
    return Report(name, checks)
