"""Exercise "write_a_property": the student writes the test, the grader supplies the code.

The student's file defines ``check_chunkwise(retention_chunkwise)``, which must raise (an
``AssertionError``, usually from a Hypothesis property) when the given implementation is wrong
and return quietly when it is right. The grader calls it with the library's correct function and
with one buggy implementation for every catalogued mistake of the ``retention_chunkwise``
exercise (``variants_retention.CHUNKWISE_BUGS``), one point each.
"""

from __future__ import annotations

from functools import partial

from .report import Check, Report, describe
from .variants_retention import CHUNKWISE_BUGS, chunkwise

GOAL = "write a Hypothesis property that catches a wrong chunkwise retention"

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


def property_rubric() -> list[Check]:
    """The fixed checks of this exercise: 4 points, plus 1 per buggy implementation caught."""
    return [Check("the file imports", 1),
            Check("defines check_chunkwise(retention_chunkwise)", 1),
            Check("passes the correct implementation", 2)] + \
        [Check(f"catches a bug: {message}", 1) for message, *_ in CHUNKWISE_BUGS]


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
    for check, (_, _, hint, switches) in zip(bugs, CHUNKWISE_BUGS):
        progress(report)
        try:
            func(partial(chunkwise, **switches))
            check.message = f"check_chunkwise returned without raising, so this bug would go " \
                            f"unnoticed. Hint: {hint}"
        except (Exception, SystemExit) as err:
            check.passed = _assertions_only(err)
            if not check.passed:
                check.message = f"raised something other than AssertionError: " \
                                f"{describe(err, report.file)}"
        check.ran = True
    return report
