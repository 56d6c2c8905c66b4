"""Exercise "write_a_property": the student writes the test, the grader supplies the code.

The student's file defines ``check_chunkwise(retention_chunkwise)``, which must raise (an
``AssertionError``, usually from a Hypothesis property) when the given implementation is wrong
and return quietly when it is right. The grader calls it with the library's correct function and
with one buggy implementation for every record of this exercise in the catalogue
(``mistakes.CATALOGUE["write_a_property"]``: the ``retention_chunkwise`` mistakes, some visible
only at chunk sizes that do not divide T, and one visible only in the returned state), one point
each. A buggy implementation is the solution with the record's edits made, like everywhere.
Every implementation is tried with three fixed Hypothesis seeds (``SEEDS``), so a file gets the
same score every time it is graded.
"""

from __future__ import annotations

from contextlib import contextmanager

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
    """Did the property catch a bug? It did when it raised: an AssertionError, or any other
    exception (a wrong implementation may return something the property cannot even read, such
    as a state of None). That the property passes the correct code is checked separately, so a
    property that crashes on everything earns nothing here."""
    return isinstance(err, Exception)


# A property draws its examples at random. Graded once, a sound property that misses a bug on one
# unlucky draw would lose a point that a re-run gives back. So each implementation is tried with
# the fixed seeds below (the same score every time a file is graded): the correct one must pass
# every attempt, a buggy one is caught when any attempt raises.
SEEDS = (0, 1, 2)


@contextmanager
def _seeded(seed: int):
    """Run Hypothesis with a fixed seed (unless the property fixes its own with ``@seed`` or
    ``derandomize``, which take precedence), no example database and no shrinking: the grader
    needs to know whether a property fails, not its smallest failing example. A property's own
    ``@settings`` override these defaults only where it sets them."""
    import hypothesis.core
    from hypothesis import Phase, settings

    before, profile = hypothesis.core.global_force_seed, settings.get_current_profile_name()
    settings.register_profile("minirnn-grader", parent=settings.get_profile(profile),
                              database=None,
                              phases=(Phase.explicit, Phase.reuse, Phase.generate))
    settings.load_profile("minirnn-grader")
    hypothesis.core.global_force_seed = seed
    try:
        yield
    finally:
        hypothesis.core.global_force_seed = before
        settings.load_profile(profile)


def _attempts(func, impl) -> None:
    """Call the property on ``impl`` once per seed; re-raise the first failure, if any."""
    for seed in SEEDS:
        with _seeded(seed):
            func(impl)


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
        _attempts(func, retention_chunkwise)    # every attempt must pass the correct code
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
            _attempts(func, buggy(mistake))
            check.message = f"check_chunkwise returned without raising, so this bug would go " \
                            f"unnoticed. Hint: {mistake.hint}"
        except (Exception, SystemExit) as err:
            check.passed = _caught(err)
            if not _assertions_only(err):
                check.message = f"caught, by a crash rather than an assert " \
                                f"({type(err).__name__}): {describe(err, report.file)}"
        check.ran = True
    if not report.passed:
        try:
            spots = blind_spots(module, func)
        except (Exception, SystemExit):   # pragma: no cover - a property that cannot be probed
            spots = []
        if spots:
            report.mistake = "; ".join(text for _, text in spots)
            report.mistake_ids = [key for key, _ in spots]
            report.location = spots[0][1]
            correct.message = "\n".join(filter(None, [correct.message] + [
                f"Blind spot [{key}]: {text}" for key, text in spots]))
    return report


# --- naming the blind spot of a property ---------------------------------------------------------

class _Recorder:
    """Calls ``impl`` and records, per call, T, the chunk size, gamma, normalize and whether a
    state was passed: what the student's property exercises."""

    def __init__(self, impl, reference):
        import inspect

        self.impl, self.calls = impl, []
        self.signature = inspect.signature(reference)

    def __call__(self, *args, **kwargs):
        import numpy as np

        try:
            bound = self.signature.bind(*args, **kwargs)
            bound.apply_defaults()
            a = bound.arguments
            q = np.asarray(a["q"])
            self.calls.append({"T": int(q.shape[2]), "C": a.get("chunk_size"),
                               "q": hash(q.tobytes()),
                               "gamma": np.asarray(a["gamma"], dtype=float),
                               "normalize": bool(a.get("normalize", True)),
                               "state": a.get("state") is not None})
        except Exception:                 # a call the function will refuse anyway
            pass
        return self.impl(*args, **kwargs)


def _probe(func, impl) -> bool:
    """Does the student's property raise on ``impl``?"""
    return _raised(func, impl)[0]


def _raised(func, impl):
    """(did the property raise on ``impl``, the exception if it was not an assertion)."""
    try:
        _attempts(func, impl)
    except (Exception, SystemExit) as err:
        return _caught(err), (None if _assertions_only(err) else err)
    return False, None


def _altered(correct, change):
    def impl(*args, **kwargs):
        out, state, cache = correct(*args, **kwargs)
        return change(out, state, cache)
    return impl


def _tenfold(state):
    """A wrong returned state: S, z and the count ten times too large."""
    return state._replace(S=10.0 * state.S, z=10.0 * state.z, s=10.0 * state.s + 1.0)


def blind_spots(module, func) -> list[tuple[str, str]]:
    """``(id, sentence)`` for every blind spot of the student's property: what it never
    exercises (seen from the calls it makes) and what it never compares (seen from three
    probes: outputs all zero, the returned state ten times too large, outputs off by 0.1%).
    A property that crashes on the correct code is said to, and nothing else."""
    import numpy as np

    from ..retention import retention_chunkwise, retention_parallel

    chunk = _Recorder(retention_chunkwise, retention_chunkwise)
    saved = getattr(module, "retention_parallel", None)
    parallel = _Recorder(retention_parallel, retention_parallel)
    if saved is not None:
        module.retention_parallel = parallel
    try:
        rejects, crash = _raised(func, chunk)
        spots = []
        if saved is not None:
            module.retention_parallel = saved
        zeros = _probe(func, _altered(retention_chunkwise,
                                      lambda o, s, c: (np.zeros_like(o), s, c)))
        state_off = _probe(func, _altered(retention_chunkwise,
                                          lambda o, s, c: (o, _tenfold(s), c)))
        slightly = _probe(func, _altered(retention_chunkwise,
                                         lambda o, s, c: (o * (1 + 1e-3), s, c)))
        reference_used = True       # does a wrong parallel form make the property fail?
        if saved is not None and parallel.calls:
            module.retention_parallel = _altered(
                retention_parallel, lambda o, s, c: (np.zeros_like(o), _tenfold(s), c))
            reference_used = _probe(func, retention_chunkwise)
    finally:
        if saved is not None:
            module.retention_parallel = saved
    calls = chunk.calls
    if crash is not None:
        inner = crash
        while getattr(inner, "exceptions", None):
            inner = next((e for e in inner.exceptions if not isinstance(e, AssertionError)),
                         inner.exceptions[0])
        return [("crashes", f"your property crashes on the correct code ({type(inner).__name__}: "
                 f"{inner}), so nothing after that line is ever checked")]
    # the chunkwise form called twice per example and the parallel form never (or called and
    # never compared): it is compared with itself, at the same or at another chunk size
    pairs = list(zip(calls[::2], calls[1::2]))
    itself = bool(pairs) and (not parallel.calls or not reference_used) and \
        len(calls) % 2 == 0 and all(a["q"] == b["q"] for a, b in pairs)
    if itself:
        spots.append(("compares-with-itself", "it compares the chunkwise form with itself (the "
                      "same inputs twice; retention_parallel's result is never compared) rather "
                      "than with the parallel "
                      "form: a wrong implementation agrees with itself, at any chunk size"))
    elif not zeros and not state_off:
        spots.append(("nothing-asserted", "nothing is asserted about the numbers: outputs that "
                      "are all zero, and a wrong returned state, both pass (only shapes, or "
                      "nothing, are compared)"))
    else:
        if not zeros:
            spots.append(("outputs-never-compared", "your property never compares the outputs "
                          "(outputs that are all zero pass)"))
        if not state_off:
            spots.append(("state-never-compared", "your property never compares the returned "
                          "state (it misses the bugs that show only in the final state)"))
        if zeros and not slightly:
            spots.append(("tolerance-too-loose", "the tolerance is too loose: outputs off by "
                          "0.1% pass"))
    if len(calls) >= 5:          # what a property exercises is judged from several examples
        sizes = [(c["T"], c["C"]) for c in calls if isinstance(c["C"], (int, np.integer))]
        if sizes and all(C >= T for T, C in sizes):
            spots.append(("single-chunk", "there is only ever a single chunk (chunk_size >= T): "
                          "the loop between chunks is never exercised"))
        elif sizes and all(T % C == 0 for T, C in sizes):
            spots.append(("chunks-divide-T", "your chunk sizes always divide T: the short last "
                          "chunk is never exercised"))
        if all(np.all(c["gamma"] >= 1.0) for c in calls):
            spots.append(("gamma-not-below-1", "gamma is never below 1, so bugs in the decay "
                          "exponents cannot show"))
    if calls:                    # a mismatch between the two sides shows in one example
        flags = {c["normalize"] for c in calls}
        other = {c["normalize"] for c in parallel.calls}
        if other and flags != other:
            spots.append(("different-flags", "it calls the two forms with different flags "
                          f"(retention_chunkwise normalize={sorted(flags)}, retention_parallel "
                          f"normalize={sorted(other)}), so it rejects the correct code"))
        states = {c["state"] for c in calls}
        pstates = {c["state"] for c in parallel.calls}
        if pstates and states != pstates:
            spots.append(("different-states", "it passes a state to one form and not to the "
                          "other, so the two cannot agree"))
    if rejects and not spots:
        spots.append(("rejects-correct", "it rejects the correct code: is the tolerance too "
                      "tight (use rel_error < 1e-8), or are the two sides given different "
                      "inputs?"))
    return spots
