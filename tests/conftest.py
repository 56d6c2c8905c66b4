"""Shared test set-up: Hypothesis profiles.

``dev`` (default) is quick for local runs; ``ci`` tries more examples and has no deadline
(shared CI machines are noisy). Select with ``MINIRNN_HYPOTHESIS_PROFILE=ci``.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("MINIRNN_HYPOTHESIS_PROFILE", "dev"))
