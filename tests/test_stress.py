"""Numerics under stress: 16384 steps, decays from 0 to 1, inputs scaled by 1e3 and 1e-3; an RNN's
gradient through 4096 steps."""

import numpy as np
import pytest

from minirnn import (
    init_rnn_params,
    rel_error,
    retention_chunkwise,
    retention_chunkwise_backward,
    retention_parallel,
    retention_parallel_backward,
    retention_recurrent,
    retention_recurrent_backward,
    rnn_backward,
    rnn_forward,
)

# The Python loops of 16384 steps are slow under coverage's line tracing, and every line they
# run is covered by the smaller tests: measure these without it (pytest-cov's marker).
pytestmark = pytest.mark.no_cover

T = 16384
GAMMAS = np.array([0.0, 1 - 2**-5, 1 - 2**-12, 1.0])       # one head each


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1e3, 1e-3])
def test_long_retention_stays_finite_and_forms_agree(dtype, scale):
    rng = np.random.default_rng(0)
    q, k = (scale * rng.standard_normal((2, 1, 4, T, 2))).astype(dtype)
    v = rng.standard_normal((1, 4, T, 2)).astype(dtype)
    dout = rng.standard_normal(v.shape).astype(dtype)
    rec, s_rec, rc = retention_recurrent(q, k, v, GAMMAS)
    chk, s_chk, cc = retention_chunkwise(q, k, v, GAMMAS, 1024)
    grads_rec = retention_recurrent_backward(dout, rc)[:3]
    grads_chk = retention_chunkwise_backward(dout, cc)[:3]
    for a in (rec, chk, s_rec.S, s_chk.S, *grads_rec, *grads_chk):
        assert np.all(np.isfinite(a))
    # float64: the forms agree to rounding. float32: with gamma = 1 the state sums 16384 terms
    # of size up to 1e6 (inputs x 1e3) in different orders, then the normaliser divides out a
    # large row sum, so the forms differ by up to ~5e-3 relative; 1e-2 is the documented bound
    tol = 1e-9 if dtype == np.float64 else 1e-2
    assert rel_error(chk, rec) <= tol
    assert all(rel_error(a, b) <= tol for a, b in zip(grads_chk, grads_rec))


def test_long_parallel_retention_stays_finite_and_agrees():
    """The parallel form builds (T, T) arrays: at T = 16384 about 4 GB and 10-20 s per head,
    so it runs once, on the hardest case (the longest memory, float32, inputs x 1e3), against
    the float64 recurrent form as the reference; the other decays meet the parallel form at
    T = 8192 in test_retention.py."""
    rng = np.random.default_rng(2)
    gamma = GAMMAS[2:3]
    q, k = (1e3 * rng.standard_normal((2, 1, 1, T, 2))).astype(np.float32)
    v = rng.standard_normal((1, 1, T, 2)).astype(np.float32)
    dout = rng.standard_normal(v.shape).astype(np.float32)
    par, _, pc = retention_parallel(q, k, v, gamma)
    grads_par = retention_parallel_backward(dout, pc)[:3]
    del pc
    wide = [a.astype(np.float64) for a in (q, k, v, dout)]
    ref, _, rc = retention_recurrent(*wide[:3], gamma)
    grads_ref = retention_recurrent_backward(wide[3], rc)[:3]
    for a in (par, *grads_par):
        assert np.all(np.isfinite(a)) and a.dtype == np.float32
    # measured: 1.5e-3 (output) and at most 2.9e-3 (gradients); 1e-2 as documented above
    assert rel_error(par, ref) <= 1e-2
    assert all(rel_error(a, b) <= 1e-2 for a, b in zip(grads_par, grads_ref))


def test_long_rnn_gradient_reaches_the_first_step_and_is_exact():
    """A loss on the last of 4096 states only; Wh orthogonal and small inputs keep tanh near its
    linear range, so the gradient still reaches x[0] and h0 (a few percent of the last step's).
    BPTT must agree there with central finite differences of the float64 forward, and the
    float32 BPTT with the float64 one: a truncated BPTT, or one that loses precision over the
    4096 steps, fails here although every short test passes."""
    T, D, H = 4096, 4, 8
    rng = np.random.default_rng(0)
    params = init_rnn_params(D, H, seed=0)
    params["Wh"] = np.linalg.qr(rng.standard_normal((H, H)))[0]            # orthogonal
    x, h0 = 1e-3 * rng.standard_normal((1, T, D)), 0.1 * rng.standard_normal((1, H))
    dh = np.zeros((1, T, H))
    dh[0, -1] = rng.standard_normal(H)                    # L = dh[0, -1] . h[0, -1]
    _, cache = rnn_forward(x, h0, params)
    dx, dh0, grads = rnn_backward(dh, cache)
    assert np.linalg.norm(dh0) > 1e-3 * np.linalg.norm(dh[0, -1])   # it has not vanished

    def numerical(array, index, eps=1e-6):
        old = array[index]
        losses = []
        for value in (old + eps, old - eps):
            array[index] = value
            losses.append(float(np.sum(rnn_forward(x, h0, params)[0] * dh)))
        array[index] = old
        return (losses[0] - losses[1]) / (2 * eps)

    for array, index, analytic in ((h0, (0, 3), dh0[0, 3]), (x, (0, 0, 1), dx[0, 0, 1]),
                                   (params["Wh"], (2, 5), grads["Wh"][2, 5]),
                                   (params["Wx"], (1, 6), grads["Wx"][1, 6])):
        assert analytic == pytest.approx(numerical(array, index), rel=1e-5)   # measured <1e-7
    narrow = rnn_backward(dh.astype(np.float32), rnn_forward(
        x.astype(np.float32), h0.astype(np.float32),
        {k: v.astype(np.float32) for k, v in params.items()})[1])
    wide = (dx, dh0, grads)
    for a, b in zip([*narrow[:2], *narrow[2].values()], [*wide[:2], *wide[2].values()],
                    strict=True):
        assert a.dtype == np.float32
        assert rel_error(a, b) <= 3e-4                     # measured: at most 3.4e-5
