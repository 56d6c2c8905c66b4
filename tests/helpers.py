"""Small helpers shared by the tests."""

import numpy as np

# A correct float64 backward agrees with central differences (eps = 1e-6) to about 1e-9 or
# better on these small, well-scaled examples; any real mistake gives errors above 1e-3.
GRAD_TOL = 1e-7
# Finite-difference noise is absolute (about 1e-10 for these O(1) examples), so an array whose
# true gradient is small (zero in exact arithmetic, like Wq of attention over one token, or just
# small, like dWh = h_prev * da with a tiny h_prev) has a large *relative* error however right
# the backward is. check_gradients(..., floor=GRAD_FLOOR) judges arrays below 10% of the largest
# gradient of the same check in absolute terms (eq. (G.4) on the gradient-checking page). A real
# mistake in such an array (a missing factor, a wrong sign) still reads as 1e-3 or more.
GRAD_FLOOR = 0.1


def randn(rng, *shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def assert_gradcheck(report, tol=GRAD_TOL):
    bad = {name: err for name, err in report.items() if not err < tol}
    assert not bad, f"gradient check failed (tol {tol:g}): {bad}"


def frozen_copies(*arrays):
    """Copies of ``arrays`` to compare against after a call (inputs must not be mutated)."""
    return [np.array(a, copy=True) for a in arrays]


def forms_error(a, b, scale, floor=1e-5):
    """rel_error, except that arrays tiny against ``scale`` are compared in absolute terms.

    Some gradients are exactly zero in exact arithmetic (T = 1 with the clamp active makes the
    output independent of q); one form then returns 0 and another 1e-18 of rounding, a
    relative error of 1. Flooring the denominator at 1e-5 * scale, where scale is the largest
    gradient of the same problem, compares such arrays to 1e-15 * scale in absolute terms and
    leaves the test unchanged for every array of a sensible size.
    """
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a) + np.abs(b)), floor * scale))


def biggest(*arrays):
    return max(float(np.max(np.abs(x))) for x in arrays)
