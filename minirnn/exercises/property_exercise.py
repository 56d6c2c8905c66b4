"""Exercise "write_a_property": the student writes the test, the grader supplies the code.

The student's file defines ``check_chunkwise(retention_chunkwise)``, which must raise (an
``AssertionError``, usually from a Hypothesis property) when the given implementation is wrong
and return quietly when it is right. The grader calls it with the library's correct function and
with one buggy implementation for every record of this exercise in the catalogue
(``mistakes.CATALOGUE["write_a_property"]``: the ``retention_chunkwise`` mistakes, some visible
only at chunk sizes that do not divide T, and one visible only in the returned state), one point
each. A buggy implementation is the solution with the record's edits made, like everywhere.
"""

from __future__ import annotations

from .catalog import BY_NAME, PROPERTY_EXERCISE
from .report import Check, Report, describe
from .stubs import exercise_source, load_source

GOAL = BY_NAME[PROPERTY_EXERCISE].goal

STUB = '''"""Exercise write_a_property: {goal}

Write check_chunkwise(retention_chunkwise): it receives an implementation of chunkwise
retention (same signature as minirnn.retention_chunkwise) and must raise AssertionError if the
implementation is wrong, and return quietly if it is right. The grader calls it with the correct
function and with buggy ones. Think about what must always hold (docs: derivations/retention.md,
"Tests that check it"). Check your work with:  python -m minirnn grade write_a_property.py
"""

EXERCISE = "write_a_property"

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from minirnn import rel_error, retention_parallel


def check_chunkwise(retention_chunkwise):
    """Raise AssertionError when ``retention_chunkwise`` is not correct."""

    @settings(max_examples=40, deadline=None, database=None)
    @given(seed=st.integers(0, 2**16), T=st.integers(1, 12))
    def prop(seed, T):
        rng = np.random.default_rng(seed)
        # TODO: draw q, k, v and gamma, pick a chunk size, run both functions,
        # and assert what must always hold
        raise NotImplementedError("write the property")

    prop()
'''


def stub_source() -> str:
    return STUB.format(goal=GOAL)


def _assertions_only(err: BaseException) -> bool:
    """An AssertionError, or a group of them (Hypothesis reports several distinct failures
    of one property as an exception group)."""
    if isinstance(err, AssertionError):
        return True
    inner = getattr(err, "exceptions", None)
    return bool(inner) and all(_assertions_only(e) for e in inner)


def _caught(err: BaseException) -> bool:
    """Did the property's own assertion catch a bug? An AssertionError, or an exception group in
    which at least one failure is one (Hypothesis reports the distinct failures it found
    together, and a wrong implementation may also make a later line of the property crash)."""
    if isinstance(err, AssertionError):
        return True
    return any(_caught(e) for e in getattr(err, "exceptions", None) or ())


def property_rubric() -> list[Check]:
    """The fixed checks of this exercise: 4 points, plus 1 per buggy implementation caught."""
    return [Check("the file imports", 1),
            Check("defines check_chunkwise(retention_chunkwise)", 1),
            Check("passes the correct implementation", 2)] + \
        [Check(f"catches a bug: {m.message}", 1) for m in BY_NAME[PROPERTY_EXERCISE].mistakes]


def buggy(mistake):
    """The chunkwise retention of the solution with ``mistake``'s edits made."""
    text = exercise_source(BY_NAME["retention_chunkwise"], solution=True, edits=mistake.edits)
    return load_source(text, f"bug_{mistake.id}").retention_chunkwise


def grade_property(module, report: Report, progress=lambda report: None) -> Report:
    """Fill in ``report`` (whose first check, the import, has passed) for the student's
    ``module``."""
    from ..retention import retention_chunkwise

    defines, correct, *bugs = report.checks[1:]
    func = getattr(module, "check_chunkwise", None)
    defines.ran = True
    if not callable(func):
        defines.message = "no function check_chunkwise found in the file"
        report.not_run("there is no check_chunkwise to run")
        return report
    defines.passed = True
    progress(report)
    try:
        func(retention_chunkwise)
        correct.passed = True
    except (Exception, SystemExit) as err:
        message = describe(err, report.file)
        if _assertions_only(err):
            message = f"your property fails on the correct code: {message}"
        correct.message = message
    correct.ran = True
    for check, mistake in zip(bugs, BY_NAME[PROPERTY_EXERCISE].mistakes):
        progress(report)
        try:
            func(buggy(mistake))
            check.message = f"check_chunkwise returned without raising, so this bug would go " \
                            f"unnoticed. Hint: {mistake.hint}"
        except (Exception, SystemExit) as err:
            check.passed = _caught(err)
            if not check.passed:
                check.message = f"raised something other than AssertionError: " \
                                f"{describe(err, report.file)}"
        check.ran = True
    return report
