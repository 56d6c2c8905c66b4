import numpy as np
import pytest
from helpers import GRAD_FLOOR, assert_gradcheck, frozen_copies, randn
from hypothesis import assume, given
from hypothesis import strategies as st

from minirnn import (
    check_gradients,
    init_rnn_params,
    rnn_backward,
    rnn_forward,
    rnn_step_backward,
    rnn_step_forward,
)

sizes = st.fixed_dictionaries({
    "B": st.integers(1, 3), "T": st.integers(1, 6), "D": st.integers(1, 4),
    "H": st.integers(1, 5), "seed": st.integers(0, 2**16),
})


def example(B, T, D, H, seed, dtype=np.float64, scale=1.0):
    rng = np.random.default_rng(seed)
    return scale * randn(rng, B, T, D, dtype=dtype), scale * randn(rng, B, H, dtype=dtype), \
        init_rnn_params(D, H, seed=seed, dtype=dtype)


# Gradchecks use inputs of standard deviation 0.5: relative error is only meaningful where the
# gradient is not tiny, and a saturated tanh (|a| > 4) makes every gradient almost zero.
GRAD_SCALE = 0.5


# --- gradient checks (float64, max relative error < 1e-7) -----------------------------------

@given(sizes)
def test_step_gradcheck(n):
    x, h0, params = example(**n, scale=GRAD_SCALE)
    h, _ = rnn_step_forward(x[:, 0], h0, params)
    assume(np.max(np.abs(h)) < 0.999)
    report = check_gradients(rnn_step_forward, rnn_step_backward,
                             {"x": x[:, 0], "h_prev": h0}, params, seed=n["seed"],
                             floor=GRAD_FLOOR)
    assert_gradcheck(report)


@given(sizes)
def test_sequence_gradcheck(n):
    x, h0, params = example(**n, scale=GRAD_SCALE)
    params["b"] = GRAD_SCALE * np.random.default_rng([n["seed"], 1]).standard_normal(n["H"])
    h, _ = rnn_forward(x, h0, params)
    assume(np.max(np.abs(h)) < 0.999)  # not saturated, see above
    report = check_gradients(rnn_forward, rnn_backward, {"x": x, "h0": h0}, params, seed=n["seed"],
                             floor=GRAD_FLOOR)
    assert_gradcheck(report)


# --- properties ---------------------------------------------------------------------------

@given(sizes)
def test_sequence_equals_looped_steps_and_backward_agrees(n):
    x, h0, params = example(**n)
    h, cache = rnn_forward(x, h0, params)
    dh = np.random.default_rng(n["seed"] + 1).standard_normal(h.shape)
    dx, dh0, grads = rnn_backward(dh, cache)

    h_prev, caches = h0, []
    for t in range(n["T"]):
        h_prev, c = rnn_step_forward(x[:, t], h_prev, params)
        caches.append(c)
        # same terms, summed in another order: equal to rounding
        np.testing.assert_allclose(h[:, t], h_prev, rtol=1e-14, atol=1e-15)
    # BPTT by hand from the step backward: the gradient into h_t is its own plus the carried one
    carried, step_grads = np.zeros_like(h0), []
    for t in reversed(range(n["T"])):
        dxt, carried, g = rnn_step_backward(dh[:, t] + carried, caches[t])
        np.testing.assert_allclose(dx[:, t], dxt, rtol=1e-12, atol=1e-13)
        step_grads.append(g)
    np.testing.assert_allclose(dh0, carried, rtol=1e-12, atol=1e-13)
    for key in grads:
        np.testing.assert_allclose(grads[key], sum(g[key] for g in step_grads),
                                   rtol=1e-12, atol=1e-12)


@given(sizes, st.floats(1e-3, 1e6))
def test_hidden_states_stay_in_open_interval(n, scale):
    x, h0, params = example(**n)
    h, _ = rnn_forward(x * scale, np.tanh(h0), params)
    # tanh maps into (-1, 1); in floating point |a| > 19 rounds to exactly +-1, never beyond
    assert np.all(np.isfinite(h)) and np.all(np.abs(h) <= 1.0)
    h_small, _ = rnn_forward(0.1 * x, 0.1 * np.tanh(h0), params)
    assert np.all(np.abs(h_small) < 1.0)


@given(sizes)
def test_inputs_are_not_mutated(n):
    x, h0, params = example(**n)
    before = frozen_copies(x, h0, *params.values())
    h, cache = rnn_forward(x, h0, params)
    dh = np.ones_like(h)
    dh_before = dh.copy()
    rnn_backward(dh, cache)
    for a, b in zip([x, h0, *params.values(), dh], [*before, dh_before]):
        np.testing.assert_array_equal(a, b)


@given(sizes)
def test_float32_in_float32_out(n):
    x, h0, params = example(**n, dtype=np.float32)
    h, cache = rnn_forward(x, h0, params)
    dx, dh0, grads = rnn_backward(np.ones_like(h), cache)
    assert h.dtype == dx.dtype == dh0.dtype == np.float32
    assert grads.keys() == params.keys()                     # every gradient is checked
    assert all(g.dtype == np.float32 for g in grads.values())
    h64, _ = rnn_forward(x.astype(np.float64), h0.astype(np.float64),
                         {k: v.astype(np.float64) for k, v in params.items()})
    np.testing.assert_allclose(h, h64, rtol=1e-4, atol=1e-5)  # float32 keeps about 6 digits


@given(sizes, st.data())
def test_causality(n, data):
    x, h0, params = example(**n)
    t = data.draw(st.integers(0, n["T"] - 1))
    h, _ = rnn_forward(x, h0, params)
    x2 = x.copy()
    x2[:, t] += 1.0
    h2, _ = rnn_forward(x2, h0, params)
    np.testing.assert_array_equal(h[:, :t], h2[:, :t])   # the past is exactly unchanged
    assert not np.array_equal(h[:, t], h2[:, t]) or n["D"] == 0


def test_vanishing_gradient_with_small_recurrent_weights():
    """A contraction (spectral radius 0.3) makes the gradient from the last step decay fast."""
    x, h0, params = example(1, 30, 3, 4, seed=0)
    params["Wh"] = 0.3 * params["Wh"]               # Wh is orthogonal, so all singular values 0.3
    h, cache = rnn_forward(x, h0, params)
    dh = np.zeros_like(h)
    dh[:, -1] = 1.0
    _, dh0, _ = rnn_backward(dh, cache)
    # (RNN.7) from h_30 back to h_0: 30 factors, each at most 0.3 in norm
    assert np.linalg.norm(dh0) <= 0.3 ** 30 * np.linalg.norm(dh[:, -1]) * (1 + 1e-12)


# --- bad input ----------------------------------------------------------------------------

def test_bad_inputs_name_the_argument():
    x, h0, params = example(2, 3, 4, 5, seed=0)
    with pytest.raises(ValueError, match=r"x must have 3 dimensions \(B, T, D\), got shape \(2, 4"):
        rnn_forward(x[:, 0], h0, params)
    with pytest.raises(ValueError, match=r"h0 \(axis 0.*B = 3, but x .* B = 2"):
        rnn_forward(x, np.zeros((3, 5)), params)
    with pytest.raises(ValueError, match=r"params\['Wh'\].*H = 6.*H = 5|H = 5.*H = 6"):
        rnn_forward(x, h0, {**params, "Wh": np.zeros((6, 6))})
    with pytest.raises(ValueError, match=r"params\['Wx'\].*D = 7.*x .*D = 4"):
        rnn_forward(x, h0, {**params, "Wx": np.zeros((7, 5))})
    with pytest.raises(TypeError, match=r"x must be a float32 or float64 array.*int64"):
        rnn_forward(x.astype(np.int64), h0, params)
    with pytest.raises(ValueError, match=r"params is missing key\(s\) \['b'\]"):
        rnn_forward(x, h0, {"Wx": params["Wx"], "Wh": params["Wh"]})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['W'\]"):
        rnn_forward(x, h0, {**params, "W": params["Wh"]})
    with pytest.raises(TypeError, match="params must be a dict"):
        rnn_forward(x, h0, [params["Wx"], params["Wh"], params["b"]])
    with pytest.raises(ValueError, match="empty axis T"):
        rnn_forward(x[:, :0], h0, params)
    with pytest.raises(ValueError, match=r"h_prev must have 2 dimensions"):
        rnn_step_forward(x[:, 0], h0[0], params)
    h, cache = rnn_forward(x, h0, params)
    with pytest.raises(ValueError, match=r"dh .*T = 2, but cache.h gives T = 3"):
        rnn_backward(h[:, :2], cache)
