"""The offline autograder: run a student's file, check it, and say what is probably wrong.

Every exercise has the same rubric (``rubric``), so scores compare across students:

1. the file imports (1 point);
2. the functions run on three random cases without raising (1);
3. every returned array has the expected shape (1);
4. a gradient check against central differences of the library's forward, reporting every
   array (backward exercises), or a property every correct answer has (forward exercises) (2);
5. every output matches the correct result (3).

A check that cannot run (the file crashed before it) scores 0 and says why. When 5 fails, the
report says which outputs are wrong and which are right, *where* the first one goes wrong (the
time step, chunk, row and head, or decoded position), and which catalogued mistake produces
exactly the student's numbers; failing that, whether the result is negated, transposed or off
by a constant factor, named in the example's sizes (``0.1667 = 1/T``).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import numpy as np

from ..gradcheck import rel_error
from .catalog import BY_NAME, PROPERTY_EXERCISE
from .report import Check, Report, describe

MATCH_TOL = 1e-8      # float64: a correct implementation agrees to about 1e-15
N_CASES = 3
EXERCISE_LINE = re.compile(r"""^EXERCISE\s*=\s*["'](\w+)["']""", re.M)


def rubric(name: str) -> list[Check]:
    """The checks of exercise ``name``, in order, with their points (none run yet)."""
    if name == PROPERTY_EXERCISE:
        from .property_exercise import property_rubric

        return property_rubric()
    ex = BY_NAME[name]
    return [Check("the file imports", 1), Check("runs without errors", 1),
            Check("returns arrays of the right shapes", 1), Check(ex.second[0], 2),
            Check("matches the correct result", 3)]


class StudentError(Exception):
    """The student's code raised; the message says where, in their file."""


def _run(func, path, *args):
    try:
        return func(*args)
    except (Exception, SystemExit) as err:       # a student's sys.exit must not end grading
        raise StudentError(describe(err, path)) from None


def exercise_of(path: Path) -> str | None:
    """The ``EXERCISE = "..."`` line of a file, read without running it."""
    try:
        match = EXERCISE_LINE.search(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    return match[1] if match else None


def load_student(path: str | Path):
    """Import the student's file as a module; returns (module, exercise name)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(f"student_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as err:
        raise StudentError(f"the file does not import: {describe(err, str(path))}") from None
    name = getattr(module, "EXERCISE", None)
    if name not in BY_NAME and name != PROPERTY_EXERCISE:
        raise StudentError(f"the file has no known EXERCISE = '...' line (found {name!r}); "
                           f"start from `python -m minirnn exercise start NAME`")
    return module, name


# --- naming the mistake from the numbers ---------------------------------------------------------

def same_numbers(got, want, tol=1e-6) -> bool:
    """Equal to ``tol`` relative to the largest entry; NaN and inf exactly where ``want`` has
    them (a mistake that divides by zero is recognised by its NaNs)."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if got.shape != want.shape:
        return False
    finite = np.isfinite(want)
    if not np.array_equal(np.isfinite(got), finite) or \
            not np.array_equal(got[~finite], want[~finite], equal_nan=True):
        return False
    if not finite.any():
        return True
    scale = float(np.max(np.abs(want[finite])))
    return bool(np.all(np.abs(got[finite] - want[finite]) <= tol * scale + 1e-12))


def size_names(sizes: dict) -> dict[str, float]:
    """Factors a mistake could introduce, named in the example's sizes: 1/T, sqrt(d), ..."""
    names = {"-1": -1.0, "2": 2.0, "1/2": 0.5}
    for key, value in sizes.items():
        if isinstance(value, (int, np.integer)) and value > 1:
            names.update({f"{key}": float(value), f"1/{key}": 1.0 / value,
                          f"sqrt({key})": float(np.sqrt(value)),
                          f"1/sqrt({key})": 1.0 / np.sqrt(value)})
    return names


def explain(got, want, sizes: dict) -> str:
    """Generic diagnosis of an array that does not match (sign, transpose, named factor)."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if not np.all(np.isfinite(got)):
        return f"contains {int(np.sum(~np.isfinite(got)))} NaN or inf value(s)"
    if same_numbers(got, -want):
        return "has the wrong sign (it equals minus the correct result)"
    if got.ndim >= 2 and got.shape[-1] == got.shape[-2] and \
            same_numbers(got, np.swapaxes(want, -1, -2)):
        return "is transposed"
    denom = float(np.sum(want * want))
    if denom > 0:
        factor = float(np.sum(got * want)) / denom
        if factor != 0 and same_numbers(got, factor * want):
            named = [n for n, v in size_names(sizes).items() if abs(factor - v) <= 1e-6 * abs(v)]
            shown = ", ".join(f"{n} ({', '.join(f'{k} = {v}' for k, v in sizes.items() if k in n)})"
                              if any(k in n for k in sizes) else n for n in named[:2])
            return f"is off by a constant factor of {factor:.4g}" + \
                (f" = {shown}" if named else "")
    return f"differs from the correct result (relative error {rel_error(got, want):.2e})"


def _matches(ex, student: list, wanted: list, cases: list, sizes: dict):
    """The rubric's last check: which outputs are wrong, where, and the likely mistake."""
    wrong = [k for k in wanted[0] if not all(same_numbers(s[k], w[k], MATCH_TOL)
                                             for s, w in zip(student, wanted))]
    if not wrong:
        worst = max(rel_error(s[k], w[k]) for s, w in zip(student, wanted) for k in w)
        return True, f"largest relative error {worst:.1e}", ""
    right = [k for k in wanted[0] if k not in wrong]
    lines = [f"wrong: {', '.join(wrong)}; right: {', '.join(right) or 'none'}"]
    where = ex.locate(student[0], wanted[0], cases[0])
    if where:
        lines.append(where)
    for mistake in ex.mistakes:
        try:
            theirs = [mistake.outputs(c) for c in cases]
        except Exception:                 # pragma: no cover - a variant that cannot run here
            continue
        if all(same_numbers(s[k], t[k]) for s, t in zip(student, theirs) for k in t):
            lines.append(f"Likely mistake: {mistake.describe()}")
            return False, "\n".join(lines), mistake.message
    lines += [f"{k} {explain(student[0][k], wanted[0][k], sizes)}" for k in wrong[:3]]
    return False, "\n".join(lines), ""


def _without_checks(ex, module, cases):
    """The student's outputs with minirnn's own input checks off (so a NaN the student's code
    makes flows through, and its pattern can name the mistake), or None if that fails too."""
    from .._checks.core import trusted

    try:
        with trusted(), np.errstate(all="ignore"):
            return [ex.outputs(module, c) for c in cases]
    except (Exception, SystemExit):
        return None


def _shapes(student: dict, wanted: dict) -> tuple[bool, str]:
    problems = []
    for key, want in wanted.items():
        got = student.get(key)
        if not isinstance(got, np.ndarray):
            problems.append(f"{key}: expected an array of shape {want.shape}, got "
                            f"{type(got).__name__}")
        elif got.shape != want.shape:
            problems.append(f"{key}: shape {got.shape}, expected {want.shape}")
    return not problems, "\n".join(problems)


def grade(path: str | Path, seed: int = 0, progress=None) -> Report:
    """Grade the student's file at ``path`` in this process; never raises for problems in the
    student's code (``python -m minirnn grade`` runs each file in its own process).
    ``progress(report)`` is called after every check, so a grader that is stopped (a file that
    never returns) still knows which checks passed."""
    progress = progress or (lambda report: None)
    path = Path(path)
    name = exercise_of(path) if path.is_file() else None
    known = name in BY_NAME or name == PROPERTY_EXERCISE
    report = Report(name if known else path.stem,
                    rubric(name) if known else [Check("the file imports", 1)], file=str(path))
    first = report.checks[0]
    try:
        module, name = load_student(path)
    except (StudentError, FileNotFoundError) as err:
        first.ran, first.message = True, str(err)
        report.not_run("the file does not import")
        return report
    first.ran = first.passed = True
    progress(report)
    if name == PROPERTY_EXERCISE:
        from .property_exercise import grade_property

        return grade_property(module, report, progress)
    return _grade_exercise(BY_NAME[name], module, report, seed, progress)


def _grade_exercise(ex, module, report: Report, seed: int, progress) -> Report:
    runs, shapes, second, matches = report.checks[1:]
    rng = np.random.default_rng(seed)
    cases = [ex.make(rng) for _ in range(N_CASES)]
    report.sizes = ex.sizes(cases[0])
    library = importlib.import_module(ex.module)
    wanted = [ex.outputs(library, c) for c in cases]
    try:
        with np.errstate(all="ignore"):
            student = [_run(ex.outputs, report.file, module, c) for c in cases]
        runs.passed = True
    except StudentError as err:
        runs.message = str(err)
        student = _without_checks(ex, module, cases) if "non-finite" in str(err) else None
        if student is None:
            runs.ran = True
            report.not_run("the code raised an error")
            return report
        runs.message += "\n(minirnn refused a NaN or inf your code made; the checks below " \
                        "ran with minirnn's input checks off, to find where it comes from)"
    runs.ran = True
    progress(report)
    shapes.passed, shapes.message = _shapes(student[0], wanted[0])
    shapes.ran = True
    if not shapes.passed:
        report.not_run("the outputs have the wrong shapes")
        return report
    progress(report)
    try:
        with np.errstate(all="ignore"):
            second.passed, second.message = _run(ex.second[1], report.file, module, cases[0])
    except StudentError as err:
        second.message = str(err)
    second.ran = True
    progress(report)
    matches.passed, matches.message, report.mistake = _matches(ex, student, wanted, cases,
                                                               report.sizes)
    matches.ran = True
    return report
