"""Small helpers shared by the tests."""

import numpy as np

# A correct float64 backward agrees with central differences (eps = 1e-6) to about 1e-9 or
# better on these small, well-scaled examples; any real mistake gives errors above 1e-3.
GRAD_TOL = 1e-7


def randn(rng, *shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def assert_gradcheck(report, tol=GRAD_TOL):
    bad = {name: err for name, err in report.items() if not err < tol}
    assert not bad, f"gradient check failed (tol {tol:g}): {bad}"


def frozen_copies(*arrays):
    """Copies of ``arrays`` to compare against after a call (inputs must not be mutated)."""
    return [np.array(a, copy=True) for a in arrays]


def assume_gradients_not_tiny(*grads, floor=1e-2):
    """Skip examples where some gradient array is almost zero everywhere.

    Relative error compares the finite-difference noise (about 1e-10 in absolute terms for
    these O(1) examples) with the size of the gradient; for a gradient of size 1e-4 that ratio
    is 1e-6 however right the backward is. Such examples test nothing, so they are filtered out
    (rarely: the random upstream gradient makes most gradients O(1)).
    """
    from hypothesis import assume

    arrays = [g for x in grads for g in (x.values() if isinstance(x, dict) else [x])]
    assume(all(np.max(np.abs(g)) > floor for g in arrays))
