"""Small helpers shared by the tests."""

import numpy as np

# A correct float64 backward agrees with central differences (eps = 1e-6) to about 1e-9 or
# better on these small, well-scaled examples; any real mistake gives errors above 1e-3.
GRAD_TOL = 1e-7
# Gradients that are zero in exact arithmetic (a key bias, Wq when T = 1, ...) come out of
# finite differences as noise of about 1e-10, a relative error of 1 against an analytic 0.
# check_gradients(..., floor=GRAD_FLOOR) judges arrays below 1% of the largest gradient of the
# same check in absolute terms instead (eq. (G.3) on the gradient-checking page).
GRAD_FLOOR = 1e-2


def randn(rng, *shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def assert_gradcheck(report, tol=GRAD_TOL):
    bad = {name: err for name, err in report.items() if not err < tol}
    assert not bad, f"gradient check failed (tol {tol:g}): {bad}"


def frozen_copies(*arrays):
    """Copies of ``arrays`` to compare against after a call (inputs must not be mutated)."""
    return [np.array(a, copy=True) for a in arrays]

