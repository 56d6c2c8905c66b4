"""Shared test set-up: Hypothesis profiles.

``dev`` (default) is quick for local runs; ``ci`` tries more examples and has no deadline
(shared CI machines are noisy). Select with ``MINIRNN_HYPOTHESIS_PROFILE=ci``.
"""

import os
from collections import Counter

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("MINIRNN_HYPOTHESIS_PROFILE", "dev"))


_BAD_INPUT_CASES: Counter = Counter()


@pytest.fixture(scope="session")
def bad_input_cases() -> Counter:
    """Counts the wrong-input cases tried by ``test_bad_inputs_generated.py`` (and how each
    ended); the total is reported at the end of the run."""
    return _BAD_INPUT_CASES


def pytest_terminal_summary(terminalreporter):
    if _BAD_INPUT_CASES:
        total = sum(_BAD_INPUT_CASES.values())
        terminalreporter.write_line(
            f"bad-input cases tried by Hypothesis: {total} "
            f"({_BAD_INPUT_CASES['raised']} raised a clear error, "
            f"{_BAD_INPUT_CASES['worked']} worked with finite output)")
