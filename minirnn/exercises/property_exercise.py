"""Exercise "write_a_property": the student writes the test, the grader supplies the code.

The student's file defines ``check_chunkwise(retention_chunkwise)``, which must raise (an
``AssertionError``, usually from a Hypothesis property) when the given implementation is wrong
and return quietly when it is right. The grader calls it with the library's correct function and
with two buggy ones (the known mistakes of the ``retention_chunkwise`` exercise).
"""

from __future__ import annotations

from .catalog import BY_NAME
from .stubs import exercise_source, load_source

NAME = "write_a_property"
GOAL = "write a Hypothesis property that catches a wrong chunkwise retention"

STUB = '''"""Exercise write_a_property: {goal}

Write check_chunkwise(retention_chunkwise): it receives an implementation of chunkwise
retention (same signature as minirnn.retention_chunkwise) and must raise AssertionError if the
implementation is wrong, and return quietly if it is right. The grader calls it with the correct
function and with buggy ones. Think about what must always hold (docs: derivations/retention.md,
"Tests that prove it"). Check your work with:  python -m minirnn grade write_a_property.py
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


def grade_property(module, path: str):
    from .grader import Check, Report, _describe

    checks = [Check("the file imports", True)]
    func = getattr(module, "check_chunkwise", None)
    if not callable(func):
        checks.append(Check("defines check_chunkwise(retention_chunkwise)", False,
                            "no function check_chunkwise found in the file"))
        return Report(NAME, checks)
    from ..retention import retention_chunkwise

    try:
        func(retention_chunkwise)
        checks.append(Check("passes the correct implementation", True))
    except Exception as err:
        message = _describe(err, path)
        if isinstance(err, AssertionError):
            message = f"your property fails on the correct code: {message}"
        checks.append(Check("passes the correct implementation", False, message))
    exercise = BY_NAME["retention_chunkwise"]
    for mistake in exercise.mistakes[:2]:
        buggy = load_source(exercise_source(exercise, True, mistake.replacements))
        buggy = buggy.retention_chunkwise
        label = "catches a buggy implementation (" + mistake.message.split(":")[0] + ")"
        try:
            func(buggy)
            checks.append(Check(label, False, "check_chunkwise returned without raising, so "
                                              "this bug would go unnoticed"))
        except AssertionError:
            checks.append(Check(label, True))
        except Exception as err:
            checks.append(Check(label, False, f"raised something other than AssertionError: "
                                              f"{_describe(err, path)}"))
    return Report(NAME, checks)
