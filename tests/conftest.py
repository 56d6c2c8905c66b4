"""Shared test set-up: Hypothesis profiles.

``dev`` (default) is quick for local runs; ``ci`` tries more examples and has no deadline
(shared CI machines are noisy); ``mutation`` is small and repeatable, for the thousands of runs
of mutation testing. Select with ``MINIRNN_HYPOTHESIS_PROFILE=ci``.
"""

import os

# One BLAS thread unless the caller chose (set before NumPy is first imported): the library's
# matrices are tiny, and OpenBLAS's worker threads only spin on them, badly on a busy machine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from collections import Counter

import pytest
from hypothesis import HealthCheck, Phase, settings

settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
# mutation testing (CONTRIBUTING.md): few examples, the same ones every run, no database, and
# no shrinking (a mutant only needs one failing example, and shrinking it costs seconds)
settings.register_profile("mutation", max_examples=10, deadline=None, derandomize=True,
                          database=None, phases=[Phase.explicit, Phase.generate],
                          report_multiple_bugs=False)
settings.load_profile(os.environ.get("MINIRNN_HYPOTHESIS_PROFILE", "dev"))


_BAD_INPUT_CASES: Counter = Counter()


@pytest.fixture(scope="session")
def bad_input_cases() -> Counter:
    """Counts the wrong-input cases tried by ``test_bad_inputs_generated.py`` (and how each
    ended); the total is reported at the end of the run."""
    return _BAD_INPUT_CASES


def pytest_sessionfinish(session):
    """Under pytest-xdist each worker counts its own cases: hand them to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["bad_input_cases"] = dict(_BAD_INPUT_CASES)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """On the controller: add up what each worker counted (a pytest-xdist hook)."""
    _BAD_INPUT_CASES.update(getattr(node, "workeroutput", {}).get("bad_input_cases", {}))


def pytest_terminal_summary(terminalreporter):
    if _BAD_INPUT_CASES:
        total = sum(_BAD_INPUT_CASES.values())
        terminalreporter.write_line(
            f"bad-input cases tried by Hypothesis: {total} "
            f"({_BAD_INPUT_CASES['raised']} raised a clear error, "
            f"{_BAD_INPUT_CASES['worked']} worked with finite output, "
            f"{_BAD_INPUT_CASES['reported']} were NaN gradients reported by clip_grad_norm)")
