"""The GRU in both reset conventions (minirnn/gru.py, derivations/lstm-gru.md)."""

import numpy as np
import pytest
from helpers import GRAD_FLOOR, assert_gradcheck, frozen_copies, randn
from hypothesis import given
from hypothesis import strategies as st

from minirnn import (
    check_gradients,
    gru_backward,
    gru_forward,
    gru_step_backward,
    gru_step_forward,
    init_gru_params,
)

sizes = st.fixed_dictionaries({
    "B": st.integers(1, 3), "T": st.integers(1, 6), "D": st.integers(1, 4),
    "H": st.integers(1, 5), "seed": st.integers(0, 2**16),
    "reset": st.sampled_from(["after", "before"]),
})
GRAD_SCALE = 0.5


def example(B, T, D, H, seed, reset=None, dtype=np.float64, scale=1.0):
    rng = np.random.default_rng(seed)
    params = init_gru_params(D, H, seed=seed, dtype=dtype)
    params["bx"] = (scale * randn(rng, 3 * H)).astype(dtype)
    params["bh"] = (scale * randn(rng, 3 * H)).astype(dtype)
    return scale * randn(rng, B, T, D, dtype=dtype), scale * randn(rng, B, H, dtype=dtype), params


# --- gradient checks ----------------------------------------------------------------------------

@given(sizes)
def test_step_gradcheck(n):
    x, h0, params = example(**n, scale=GRAD_SCALE)
    report = check_gradients(
        lambda x, h_prev, params: gru_step_forward(x, h_prev, params, n["reset"]),
        gru_step_backward, {"x": x[:, 0], "h_prev": h0}, params, seed=n["seed"],
        floor=GRAD_FLOOR)
    assert_gradcheck(report)


@given(sizes)
def test_sequence_gradcheck(n):
    x, h0, params = example(**n, scale=GRAD_SCALE)
    report = check_gradients(lambda x, h0, params: gru_forward(x, h0, params, n["reset"]),
                             gru_backward, {"x": x, "h0": h0}, params, seed=n["seed"],
                             floor=GRAD_FLOOR)
    assert_gradcheck(report)


# --- properties -----------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["x", "h0", "Wx", "Wh", "bx", "bh"])
def test_one_float64_array_makes_the_sequence_float64(which):
    # the sequence functions fill preallocated arrays: their dtype must come from every input
    x, h0, params = example(2, 3, 2, 3, seed=0, dtype=np.float32)
    inputs = {"x": x, "h0": h0, **params}
    inputs[which] = inputs[which].astype(np.float64)
    for reset in ("after", "before"):
        h, cache = gru_forward(inputs["x"], inputs["h0"], {k: inputs[k] for k in params}, reset)
        assert h.dtype == np.float64, (which, reset)
        dx, dh0, grads = gru_backward(np.ones_like(h), cache)
        assert dx.dtype == dh0.dtype == np.float64 and grads["bh"].dtype == np.float64


@given(sizes)
def test_the_sequence_is_the_step_in_a_loop_forward_and_backward(n):
    # gru_forward / gru_backward take the input products before the loop and the weight
    # gradients after it; the results are those of chaining the one-step functions
    x, h0, params = example(**n)
    h, cache = gru_forward(x, h0, params, n["reset"])
    dh = randn(np.random.default_rng(n["seed"] + 1), *h.shape)
    h_t, steps = h0, []
    for t in range(x.shape[1]):
        h_t, step = gru_step_forward(x[:, t], h_t, params, n["reset"])
        np.testing.assert_allclose(h[:, t], h_t, rtol=1e-12, atol=1e-12)
        for field in ("r", "z", "h_bar", "a_hh", "h_prev"):
            np.testing.assert_allclose(getattr(cache.step(t), field), getattr(step, field),
                                       rtol=1e-12, atol=1e-12)
        steps.append(step)
    dx, dh0, grads = gru_backward(dh, cache)
    carry, summed = np.zeros_like(h0), {k: 0.0 for k in grads}
    for t in reversed(range(x.shape[1])):
        dx_t, carry, g = gru_step_backward(dh[:, t] + carry, steps[t])
        np.testing.assert_allclose(dx[:, t], dx_t, rtol=1e-10, atol=1e-12)
        summed = {k: summed[k] + g[k] for k in g}
    np.testing.assert_allclose(dh0, carry, rtol=1e-10, atol=1e-12)
    for k in grads:
        np.testing.assert_allclose(grads[k], summed[k], rtol=1e-10, atol=1e-12)


@given(sizes)
def test_nothing_is_mutated_and_dtype_follows(n):
    x, h0, params = example(**n)
    before = frozen_copies(x, h0, *params.values())
    h, cache = gru_forward(x, h0, params, n["reset"])
    dh = np.ones_like(h)
    gru_backward(dh, cache)
    for a, b in zip([x, h0, *params.values()], before):
        np.testing.assert_array_equal(a, b)
    assert np.all(dh == 1.0)
    x, h0, params = example(**n, dtype=np.float32)
    h, cache = gru_forward(x, h0, params, n["reset"])
    dx, dh0, grads = gru_backward(np.ones_like(h), cache)
    assert h.dtype == dx.dtype == dh0.dtype == np.float32
    assert grads.keys() == params.keys() and all(g.dtype == np.float32 for g in grads.values())


@given(sizes, st.data())
def test_causality(n, data):
    x, h0, params = example(**n)
    t = data.draw(st.integers(0, n["T"] - 1))
    h, _ = gru_forward(x, h0, params, n["reset"])
    x2 = x.copy()
    x2[:, t] += 1.0
    h2, _ = gru_forward(x2, h0, params, n["reset"])
    np.testing.assert_array_equal(h[:, :t], h2[:, :t])


@given(sizes)
def test_the_state_is_a_convex_mix(n):
    """h_t = (1 - z) n + z h_{t-1} with z in (0, 1) and |n| < 1: |h_t| <= max(1, |h_{t-1}|)."""
    x, h0, params = example(**n)
    h, _ = gru_forward(x, h0, params, n["reset"])
    assert np.max(np.abs(h)) <= max(1.0, np.max(np.abs(h0))) + 1e-12


# --- the two conventions ----------------------------------------------------------------------

def count_sign_changes(y):
    s = np.sign(y[np.abs(y) > 1e-12])
    return int(np.sum(s[1:] != s[:-1]))


def one_channel(Wx, bx, bh):
    return {"Wx": np.array([Wx], dtype=float), "Wh": np.zeros((1, 3)),
            "bx": np.array(bx, dtype=float), "bh": np.array(bh, dtype=float)}


GRID = np.linspace(-12.0, 12.0, 2401)[:, None]        # 2401 inputs x, one channel, h_prev = 0


def test_reset_after_can_do_what_no_reset_before_gru_can():
    """From h_prev = 0, reset-before gives n = tanh(x Wx_n + bx_n + bh_n): a monotone function
    of x, one sign change at most, whatever the weights (the next test draws them); h = (1-z) n
    has the sign of n. Reset-after gives n = tanh(x Wx_n + bx_n + r(x) bh_n), and this one GRU
    changes sign three times. So no weights make a reset-before GRU equal it."""
    params = one_channel([5.0, 0.0, 1.0], [0.0, 0.0, 5.0], [0.0, 0.0, -10.0])
    h, _ = gru_step_forward(GRID, np.zeros((len(GRID), 1)), params, "after")
    assert count_sign_changes(h[:, 0]) == 3


@given(st.lists(st.floats(-20, 20), min_size=9, max_size=9))
def test_reset_before_from_zero_changes_sign_at_most_once(w):
    params = one_channel(w[:3], w[3:6], w[6:])
    h, _ = gru_step_forward(GRID, np.zeros((len(GRID), 1)), params, "before")
    assert count_sign_changes(h[:, 0]) <= 1


@given(sizes)
def test_with_one_channel_reset_before_is_reset_after_with_the_bias_moved(n):
    """For H = 1 the reset acts on a scalar, (r h) w = r (h w), so only bh_n's place differs:
    reset-before equals reset-after with bh_n added to bx_n and set to 0 (the inclusion goes
    one way only, by the test above)."""
    n = {**n, "H": 1}
    x, h0, params = example(**n)
    moved = {k: v.copy() for k, v in params.items()}
    moved["bx"][2] += moved["bh"][2]
    moved["bh"][2] = 0.0
    h_before, _ = gru_forward(x, h0, params, "before")
    h_after, _ = gru_forward(x, h0, moved, "after")
    np.testing.assert_allclose(h_before, h_after, rtol=1e-13, atol=1e-14)


@given(sizes)
def test_the_conventions_differ_on_random_weights(n):
    n = {**n, "H": max(n["H"], 2)}
    x, h0, params = example(**n)
    h_after, _ = gru_forward(x, h0, params, "after")
    h_before, _ = gru_forward(x, h0, params, "before")
    assert np.max(np.abs(h_after - h_before)) > 1e-6


# --- against PyTorch (skipped without torch) ----------------------------------------------------

@given(sizes)
def test_reset_after_equals_torch_gru_forward_and_backward(n):
    torch = pytest.importorskip("torch")
    x, h0, params = example(**n)
    gru = torch.nn.GRU(n["D"], n["H"], batch_first=True).double()
    with torch.no_grad():
        gru.weight_ih_l0.copy_(torch.tensor(params["Wx"].T))
        gru.weight_hh_l0.copy_(torch.tensor(params["Wh"].T))
        gru.bias_ih_l0.copy_(torch.tensor(params["bx"]))
        gru.bias_hh_l0.copy_(torch.tensor(params["bh"]))
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    out, _ = gru(xt, h0t)
    h, cache = gru_forward(x, h0, params, "after")
    assert np.max(np.abs(out.detach().numpy() - h)) < 1e-13
    h_before, _ = gru_forward(x, h0, params, "before")       # the other convention is not torch's
    if n["H"] >= 2:
        assert np.max(np.abs(out.detach().numpy() - h_before)) > 1e-6
    dh = np.random.default_rng(n["seed"]).standard_normal(h.shape)
    out.backward(torch.tensor(dh))
    dx, dh0, grads = gru_backward(dh, cache)
    for ours, theirs in [(dx, xt.grad), (dh0, h0t.grad[0]), (grads["Wx"], gru.weight_ih_l0.grad.T),
                         (grads["Wh"], gru.weight_hh_l0.grad.T), (grads["bx"], gru.bias_ih_l0.grad),
                         (grads["bh"], gru.bias_hh_l0.grad)]:
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-10, atol=1e-12)
