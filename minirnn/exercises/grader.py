"""The offline autograder: run a student's file, check it, and say what is probably wrong.

Every exercise has the same rubric (``rubric``), so scores compare across students:

1. the file imports (1 point);
2. the functions run on three cases without raising (1); the cases vary every input the stub
   accepts (axes, ``normalize``, chunk sizes that do and do not divide T, a carried state);
3. every returned array has the expected shape (1);
4. a gradient check against central differences of the library's forward, reporting every
   array (backward exercises), or a property every correct answer has (forward exercises) (2);
5. every output matches the correct result (3): every returned array, every field of a
   returned state, the helpers on their own, and the gradients the library's backward computes
   from the cache the student's forward stored.

A check that cannot run (the file crashed before it) scores 0 and says why. When 5 fails, the
report says which outputs are wrong and which are right, which function is wrong, *where* the
first one goes wrong, and which catalogued mistake produces the student's numbers: matched
output by output (an output may be right where the mistake's is wrong) and term by term (the
slip may be only some of a mistake's edits). Failing that, whether the result is negated,
transposed or off by a constant factor, named in the example's sizes (``0.1667 = 1/T``).

A file that hands back minirnn's own implementation (a re-export, an import inside the
function, ``getattr`` on the module, a call of the library's function) is caught while it runs
(``Reexport``) and scores 0 on every check that ran its code.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import itertools
import re
import sys
from pathlib import Path

import numpy as np

from ..gradcheck import rel_error
from .catalog import BY_NAME, N_CASES
from .report import Check, Report, describe

MATCH_TOL = 1e-8      # float64: a correct implementation agrees to about 1e-15
EXERCISE_LINE = re.compile(r"""^EXERCISE\s*=\s*["'](\w+)["']""", re.M)

# Library functions that compute an exercise's answer besides the exercise's own functions:
# calling them from the student's code is handing back the library's implementation.
EQUIVALENTS = {
    "rnn_backward": ("minirnn.rnn.rnn_step_backward",),
    "retention_recurrent": ("minirnn.retention.retention_parallel",
                            "minirnn.retention.retention_chunkwise"),
    "retention_chunkwise": ("minirnn.retention.retention_recurrent",),
    "gated_retention_recurrent": ("minirnn.gated.gated_retention_parallel",
                                  "minirnn.gated.gated_retention_chunkwise"),
    "attention_backward": ("minirnn.attention.mha_backward",),
}


def rubric(name: str) -> list[Check]:
    """The checks of exercise ``name``, in order, with their points (none run yet)."""
    ex = BY_NAME[name]
    if ex.kind == "property":
        from .property_exercise import property_rubric

        return property_rubric()
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
    try:        # compiled from the text itself: a stale __pycache__ entry is never run
        source = path.read_bytes()
        exec(compile(source, str(path), "exec", dont_inherit=True), module.__dict__)
    except (Exception, SystemExit) as err:
        raise StudentError(f"the file does not import: {describe(err, str(path))}") from None
    name = getattr(module, "EXERCISE", None)
    if name not in BY_NAME:
        raise StudentError(f"the file has no known EXERCISE = '...' line (found {name!r}); "
                           f"start from `python -m minirnn exercise start NAME`")
    return module, name


# --- handing back the library's own implementation -----------------------------------------------

def _library_function(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


class Reexport:
    """Watches the student's functions while they run: if the library's own code of the
    exercise (or an equivalent, ``EQUIVALENTS``) runs inside them, however it was reached, the
    file hands back minirnn's implementation. ``hits`` names what ran."""

    def __init__(self, ex):
        library = [f"{ex.module}.{f}" for f in ex.functions] + list(EQUIVALENTS.get(ex.name, ()))
        self.codes = {}
        for dotted in library:
            code = getattr(_library_function(dotted), "__code__", None)
            if code is not None:
                self.codes[code] = dotted
        self.hits: list[str] = []
        self._depth = 0
        self._saved = None

    def _profile(self, frame, event, arg):
        if event == "call" and frame.f_code in self.codes:
            dotted = self.codes[frame.f_code]
            if dotted not in self.hits:
                self.hits.append(dotted)

    def wrap(self, func):
        if not callable(func):
            return func

        @functools.wraps(func)
        def watched(*args, **kwargs):
            if self._depth == 0:
                self._saved = sys.getprofile()
                sys.setprofile(self._profile)
            self._depth += 1
            try:
                return func(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    sys.setprofile(self._saved)
        return watched

    def watch(self, module, names) -> None:
        """Replace the module's functions ``names`` by watched ones (their calls to each other
        go through the module's globals, so they are watched too)."""
        for name in names:
            if hasattr(module, name):
                setattr(module, name, self.wrap(getattr(module, name)))

    def message(self) -> str:
        return ("your file hands back minirnn's own implementation: " + ", ".join(self.hits) +
                " ran inside your code (a re-export, an import inside the function, or a call "
                "of the library's function). Write the exercise yourself; every check that ran "
                "your code scores 0.")


# --- naming the mistake from the numbers ---------------------------------------------------------

def same_numbers(got, want, tol=1e-6) -> bool:
    """Equal to ``tol`` relative to the largest entry; NaN and inf exactly where ``want`` has
    them (a mistake that divides by zero is recognised by its NaNs)."""
    try:
        got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    except (TypeError, ValueError):
        return False
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
        if abs(factor - 1.0) < 1e-6:
            return f"differs only slightly from the correct result (relative error " \
                   f"{rel_error(got, want):.1e}): a small term is missing or wrong (the carried " \
                   "state's or a later call's share, a count, a clamp that rarely acts?)"
        if factor != 0 and same_numbers(got, factor * want):
            named = [n for n, v in size_names(sizes).items() if abs(factor - v) <= 1e-6 * abs(v)]
            shown = ", ".join(f"{n} ({', '.join(f'{k} = {v}' for k, v in sizes.items() if k in n)})"
                              if any(k in n for k in sizes) else n for n in named[:2])
            return f"is off by a constant factor of {factor:.4g}" + \
                (f" = {shown}" if named else "")
    return f"differs from the correct result (relative error {rel_error(got, want):.2e})"


def _outputs(ex, module, case) -> dict:
    """Every output of ``module`` on ``case``: the exercise's and its helpers' on their own."""
    out = dict(ex.outputs(module, case))
    for helper in ex.helpers.values():
        out.update(helper(module, case))
    return out


@functools.lru_cache(maxsize=4096)
def _mistake_numbers(name: str, seed: int, edits: tuple):
    """The outputs of the solution with ``edits`` made, on the grader's cases (cached: every
    student of a class meets the same cases), or None where it cannot run."""
    from .._checks.core import trusted
    from .stubs import exercise_source, load_source

    ex = BY_NAME[name]
    try:
        module = load_source(exercise_source(ex, solution=True, edits=edits), f"mistake_{name}")
        with trusted(), np.errstate(all="ignore"):
            return tuple(_outputs(ex, module, c) for c in _cases(name, seed))
    except Exception:                     # pragma: no cover - a slip that cannot run here
        return None


@functools.lru_cache(maxsize=64)
def _cases(name: str, seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    ex = BY_NAME[name]
    return tuple(ex.make(rng, i) for i in range(N_CASES))


def _candidates(ex, seed):
    """(mistake, terms, numbers) for every mistake, then for every proper subset of its edits
    (a slip that makes only some of the mistake's terms), smallest first (the fewest terms
    that give the student's numbers)."""
    for full in (True, False):
        for mistake in ex.mistakes:
            n = len(mistake.edits)
            sizes = [n] if full else range(1, n)
            for size in sizes:
                for terms in itertools.combinations(range(n), size):
                    numbers = _mistake_numbers(ex.name, seed,
                                               tuple(mistake.edits[i] for i in terms))
                    if numbers is not None:
                        yield mistake, (terms if not full else None), numbers


def _explained(student, wanted, numbers, wrong):
    """(the wrong outputs whose numbers ``numbers`` reproduces in every case, how many right
    outputs the mistake would have broken: the student got those right)."""
    explained, spared = set(), 0
    for key in wanted[0]:
        same = all(key in t for t in numbers) and \
            all(same_numbers(s[key], t[key]) for s, t in zip(student, numbers))
        if same and key in wrong:
            explained.add(key)
        elif not same and key not in wrong:
            spared += 1
    return explained, spared


def name_mistakes(ex, student, wanted, wrong, seed=0):
    """The catalogued mistakes that produce the student's numbers: [(mistake, terms, keys)].

    One mistake (or some of its terms) that reproduces every wrong output and leaves every
    right output right, whole mistakes before parts of them; failing that, two such mistakes
    that between them reproduce every wrong output; failing that, nothing: a mistake is named
    only when the student's numbers are exactly its numbers, output by output. A mistake that
    would also break an output the student got right is a different slip, never named."""
    wrong = set(wrong)
    scored = []
    for mistake, terms, numbers in _candidates(ex, seed):
        keys, spared = _explained(student, wanted, numbers, wrong)
        if keys and not spared:        # a name only when the right outputs stay right too
            scored.append((mistake, terms, keys, spared))
    whole = [s for s in scored if s[2] == wrong]
    if whole:
        best = min(whole, key=lambda s: s[3])          # min keeps the first of equals
        return [best[:3]]
    pairs = [(a, b) for i, a in enumerate(scored) for b in scored[i + 1:]
             if a[0] is not b[0] and a[2] | b[2] == wrong and not a[2] <= b[2]
             and not b[2] <= a[2]]
    if pairs:
        a, b = min(pairs, key=lambda p: p[0][3] + p[1][3])
        return [a[:3], b[:3]]
    return []


def _function_line(ex, wrong) -> str:
    """Which of the exercise's functions are wrong, each graded on its own."""
    if not ex.helpers:
        return ""
    main = next(f for f in ex.functions if f not in ex.helpers)
    verdict = []
    for name in [*ex.helpers, main]:
        own = [k for k in wrong if k.startswith((name + " ", name + "."))] if name != main else \
            [k for k in wrong if not any(k.startswith((h + " ", h + ".")) for h in ex.helpers)]
        verdict.append(f"{name} {'WRONG' if own else 'right'}")
    return "functions on their own: " + "; ".join(verdict)


def _explain_first(key, student, wanted, sizes) -> str:
    """``explain`` on the first test case where ``key`` is wrong (the example's sizes are the
    first case's; a later case says so)."""
    i = next((i for i, (s, w) in enumerate(zip(student, wanted))
              if not same_numbers(s[key], w[key], MATCH_TOL)), 0)
    text = explain(student[i][key], wanted[i][key], sizes if i == 0 else {})
    return text if i == 0 else f"{text} (right in test case 0; wrong from test case {i}, " \
        "which varies the inputs: another axis, chunk size, a carried state, normalize=False)"


def _matches(ex, student: list, wanted: list, cases: list, sizes: dict, seed: int = 0):
    """The rubric's last check: which outputs are wrong, where, and the likely mistake."""
    wrong = [k for k in wanted[0] if not all(same_numbers(s[k], w[k], MATCH_TOL)
                                             for s, w in zip(student, wanted))]
    if not wrong:
        worst = max(rel_error(s[k], w[k]) for s, w in zip(student, wanted) for k in w)
        return True, f"largest relative error {worst:.1e}", "", [], ""
    right = [k for k in wanted[0] if k not in wrong]
    lines = [f"wrong: {', '.join(wrong)}; right: {', '.join(right) or 'none'}"]
    functions = _function_line(ex, wrong)
    if functions:
        lines.append(functions)
    where = ex.locate(student[0], wanted[0], cases[0])
    if where:
        lines.append(where)
    else:                    # no position to point at: say which outputs, and how they differ
        where = f"{wrong[0]} {_explain_first(wrong[0], student, wanted, sizes)}" + \
            (f" (right: {', '.join(right)})" if right else "")
    found = name_mistakes(ex, student, wanted, wrong, seed)
    parts = []               # the same qualifier in the report and in the CSV/JSON column
    for mistake, terms, keys in found:
        part = "" if terms is None and set(keys) == set(wrong) else \
            f" (in {', '.join(k for k in wrong if k in keys)}" + \
            (f"; only part of it: {len(terms)} of its {len(mistake.edits)} terms, the rest is "
             "right" if terms else "") + ")"
        parts.append(part)
        lines.append(f"Likely mistake [{mistake.id}]: {mistake.describe()}{part}")
    covered = set().union(*(keys for *_, keys in found)) if found else set()
    lines += [f"{k} {_explain_first(k, student, wanted, sizes)}"
              for k in wrong if k not in covered][:3]
    messages = "; ".join(m.message + part for (m, *_), part in zip(found, parts))
    return False, "\n".join(lines), messages, [m.id for m, *_ in found], where


def _without_checks(ex, module, cases):
    """The student's outputs with minirnn's own input checks off (so a NaN the student's code
    makes flows through, and its pattern can name the mistake), or None if that fails too."""
    from .._checks.core import trusted

    try:
        with trusted(), np.errstate(all="ignore"):
            return [_outputs(ex, module, c) for c in cases]
    except (Exception, SystemExit):
        return None


def _dim(n: int, sizes: dict) -> str:
    """A length named in the example's sizes when one size has it: ``7 (T)``."""
    names = [k for k, v in sizes.items() if isinstance(v, (int, np.integer)) and v == n]
    return f"{n} ({names[0]})" if len(names) == 1 else str(n)


def shape_diagnosis(got: tuple, want: tuple, sizes: dict | None = None) -> str:
    """What a wrong shape probably means: transposed, axes in another order, an axis summed
    away or one too many, one axis too short or too long (a dropped last chunk, a token
    missing)."""
    sizes = sizes or {}
    got, want = tuple(got), tuple(want)
    if len(got) == len(want):
        if got == want[::-1] and len(got) == 2:
            return "transposed? (the two axes are swapped)"
        if sorted(got) == sorted(want):
            return "the axes are in another order: heads or time on the wrong axis, or a " \
                   "reshape where a transpose belongs?"
        diff = [i for i, (a, b) in enumerate(zip(got, want)) if a != b]
        if len(diff) == 1:
            i = diff[0]
            a, b = got[i], want[i]
            why = ("the short last chunk, or the last tokens, dropped?" if a < b else
                   "rows or tokens counted twice (appended twice, chunks overlapping)?")
            return f"axis {i} has {a} entries, expected {_dim(b, sizes)}: {why}"
        if np.prod(got) == np.prod(want):
            return "the same number of entries in another arrangement: a reshape where a " \
                   "transpose (or merge_heads/split_heads) belongs?"
        return f"axes {', '.join(map(str, diff))} differ"
    if len(got) == len(want) - 1:
        for i in range(len(want)):
            if want[:i] + want[i + 1:] == got:
                return f"axis {i} (of length {_dim(want[i], sizes)}) is missing: a sum or " \
                       "mean over it, keepdims=False, or an index that drops it?"
    if len(got) == len(want) + 1:
        for i in range(len(got)):
            if got[:i] + got[i + 1:] == want:
                return f"one axis too many (axis {i}, of length {_dim(got[i], sizes)}): a sum " \
                       "over it is missing, or a scalar input was not squeezed?"
    if np.prod(got) == np.prod(want):
        return "the same number of entries in another arrangement: a reshape where a " \
               "transpose belongs?"
    return f"{len(got)} axes, expected {len(want)}"


def _shapes(student: dict, wanted: dict, sizes: dict | None = None) -> tuple[bool, str]:
    problems = []
    for key, want in wanted.items():
        got = student.get(key)
        if not isinstance(got, np.ndarray):
            problems.append(f"{key}: expected an array of shape {want.shape}, got "
                            f"{type(got).__name__}")
        elif got.shape != want.shape:
            problems.append(f"{key}: shape {got.shape}, expected {want.shape}: "
                            f"{shape_diagnosis(got.shape, want.shape, sizes)}")
    return not problems, "\n".join(problems)


def grade(path: str | Path, seed: int = 0, progress=None) -> Report:
    """Grade the student's file at ``path`` in this process; never raises for problems in the
    student's code (``python -m minirnn grade`` runs each file in its own process).
    ``progress(report)`` is called after every check, so a grader that is stopped (a file that
    never returns) still knows which checks passed."""
    progress = progress or (lambda report: None)
    path = Path(path)
    name = exercise_of(path) if path.is_file() else None
    known = name in BY_NAME
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
    ex = BY_NAME[name]
    if ex.kind == "property":
        from .property_exercise import grade_property

        return grade_property(module, report, progress)
    watch = Reexport(ex)
    watch.watch(module, ex.functions)
    report = _grade_exercise(ex, module, report, seed, progress)
    if watch.hits:
        report.mistake = "hands back minirnn's own implementation"
        report.location, report.mistake_ids = "", ["reexport"]
        for check in report.checks[1:]:
            if check.passed:
                check.message = "scored 0: it passed with minirnn's own implementation" + \
                    ("\n" + check.message if check.message else "")
            check.passed = False
        report.checks[1].message = watch.message() + (
            "\n" + report.checks[1].message if report.checks[1].message else "")
    return report


def _grade_exercise(ex, module, report: Report, seed: int, progress) -> Report:
    runs, shapes, second, matches = report.checks[1:]
    cases = list(_cases(ex.name, seed))
    report.sizes = ex.sizes(cases[0])
    library = importlib.import_module(ex.module)
    wanted = [_outputs(ex, library, c) for c in cases]
    try:
        with np.errstate(all="ignore"):
            student = [_run(_outputs, report.file, ex, module, c) for c in cases]
        runs.passed = True
    except StudentError as err:
        runs.message = str(err)
        student = _without_checks(ex, module, cases) if "non-finite" in str(err) else None
        if student is None:
            report.location = f"your code raised: {runs.message.splitlines()[0]}"
            runs.ran = True
            report.not_run("the code raised an error")
            return report
        runs.message += "\n(minirnn refused a NaN or inf your code made; the checks below " \
                        "ran with minirnn's input checks off, to find where it comes from)"
    runs.ran = True
    progress(report)
    shapes.passed, shapes.message = _shapes(student[0], wanted[0], report.sizes)
    shapes.ran = True
    if not shapes.passed:
        report.location = shapes.message.splitlines()[0]
        report.not_run("fix the shapes first")
        return report
    progress(report)
    try:
        with np.errstate(all="ignore"):
            second.passed, second.message = _run(ex.second[1], report.file, module, cases[0])
    except StudentError as err:
        second.message = str(err)
    second.ran = True
    progress(report)
    (matches.passed, matches.message, report.mistake, report.mistake_ids,
     report.location) = _matches(
        ex, student, wanted, cases, report.sizes, seed)
    report.wrong = [line for line in matches.message.splitlines()
                    if line.startswith("wrong: ")][:1]
    report.wrong = report.wrong[0][7:].split("; right:")[0] if report.wrong else ""
    matches.ran = True
    return report
