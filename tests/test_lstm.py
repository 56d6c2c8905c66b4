"""The LSTM (minirnn/lstm.py, derivations/lstm-gru.md): gradchecks, properties, torch."""

import numpy as np
import pytest
from helpers import GRAD_FLOOR, assert_gradcheck, frozen_copies, randn
from hypothesis import given
from hypothesis import strategies as st

from minirnn import (
    check_gradients,
    init_lstm_params,
    lstm_backward,
    lstm_forward,
    lstm_step_backward,
    lstm_step_forward,
    sigmoid,
)

sizes = st.fixed_dictionaries({
    "B": st.integers(1, 3), "T": st.integers(1, 6), "D": st.integers(1, 4),
    "H": st.integers(1, 5), "seed": st.integers(0, 2**16),
})
GRAD_SCALE = 0.5   # unsaturated gates: relative errors are meaningful (see test_rnn.py)


def example(B, T, D, H, seed, dtype=np.float64, scale=1.0):
    rng = np.random.default_rng(seed)
    params = init_lstm_params(D, H, seed=seed, dtype=dtype)
    params["b"] = params["b"] + (scale * randn(rng, 4 * H)).astype(dtype)
    return (scale * randn(rng, B, T, D, dtype=dtype), scale * randn(rng, B, H, dtype=dtype),
            scale * randn(rng, B, H, dtype=dtype), params)


# --- gradient checks (float64 central differences, max relative error < 1e-7) -----------------

@given(sizes)
def test_step_gradcheck_through_h_and_c(n):
    """Both outputs of a step get an upstream gradient: (h, c) side by side."""
    x, h0, c0, params = example(**n, scale=GRAD_SCALE)
    H = n["H"]

    def forward(x, h_prev, c_prev, params):
        h, c, cache = lstm_step_forward(x, h_prev, c_prev, params)
        return np.concatenate([h, c], axis=1), cache

    def backward(dout, cache):
        return lstm_step_backward(dout[:, :H], dout[:, H:], cache)

    report = check_gradients(forward, backward, {"x": x[:, 0], "h_prev": h0, "c_prev": c0},
                             params, seed=n["seed"], floor=GRAD_FLOOR)
    assert_gradcheck(report)


@given(sizes)
def test_sequence_gradcheck(n):
    x, h0, c0, params = example(**n, scale=GRAD_SCALE)
    report = check_gradients(lambda x, h0, c0, params: lstm_forward(x, h0, params, c0),
                             lstm_backward, {"x": x, "h0": h0, "c0": c0}, params,
                             seed=n["seed"], floor=GRAD_FLOOR)
    assert_gradcheck(report)


# --- properties -----------------------------------------------------------------------------

@given(sizes)
def test_sequence_equals_looped_steps_and_backward_agrees(n):
    x, h0, c0, params = example(**n)
    h, cache = lstm_forward(x, h0, params, c0)
    dh = np.random.default_rng(n["seed"] + 1).standard_normal(h.shape)
    dx, dh0, dc0, grads = lstm_backward(dh, cache)
    h_t, c_t, caches = h0, c0, []
    for t in range(n["T"]):
        h_t, c_t, step = lstm_step_forward(x[:, t], h_t, c_t, params)
        caches.append(step)
        np.testing.assert_allclose(h[:, t], h_t, rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(cache.c[:, t], c_t, rtol=1e-13, atol=1e-14)
    dh_next, dc_next, total = np.zeros_like(h0), np.zeros_like(c0), None
    for t in reversed(range(n["T"])):                  # the carry of both gradients
        dxt, dh_next, dc_next, g = lstm_step_backward(dh[:, t] + dh_next, dc_next, caches[t])
        np.testing.assert_allclose(dx[:, t], dxt, rtol=1e-11, atol=1e-12)
        total = g if total is None else {k: total[k] + g[k] for k in g}
    np.testing.assert_allclose(dh0, dh_next, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(dc0, dc_next, rtol=1e-11, atol=1e-12)
    for key in grads:
        np.testing.assert_allclose(grads[key], total[key], rtol=1e-11, atol=1e-11)


@given(sizes)
def test_c0_none_is_zeros(n):
    x, h0, _, params = example(**n)
    h, _ = lstm_forward(x, h0, params)
    h2, _ = lstm_forward(x, h0, params, np.zeros_like(h0))
    np.testing.assert_array_equal(h, h2)


@given(sizes)
def test_nothing_is_mutated(n):
    """The widely copied solution does ``dnext_c += ...``: the caller's array changes."""
    x, h0, c0, params = example(**n)
    before = frozen_copies(x, h0, c0, *params.values())
    h, c, cache = lstm_step_forward(x[:, 0], h0, c0, params)
    dh, dc = np.ones_like(h), np.full_like(c, 0.5)
    lstm_step_backward(dh, dc, cache)
    hs, seq = lstm_forward(x, h0, params, c0)
    dhs = np.ones_like(hs)
    lstm_backward(dhs, seq)
    for a, b in zip([x, h0, c0, *params.values()], before):
        np.testing.assert_array_equal(a, b)
    assert np.all(dh == 1.0) and np.all(dc == 0.5) and np.all(dhs == 1.0)


@given(sizes)
def test_float32_in_float32_out(n):
    x, h0, c0, params = example(**n, dtype=np.float32)
    h, cache = lstm_forward(x, h0, params, c0)
    dx, dh0, dc0, grads = lstm_backward(np.ones_like(h), cache)
    assert h.dtype == dx.dtype == dh0.dtype == dc0.dtype == np.float32
    assert grads.keys() == params.keys() and all(g.dtype == np.float32 for g in grads.values())


@given(sizes, st.data())
def test_causality(n, data):
    x, h0, c0, params = example(**n)
    t = data.draw(st.integers(0, n["T"] - 1))
    h, _ = lstm_forward(x, h0, params, c0)
    x2 = x.copy()
    x2[:, t] += 1.0
    h2, _ = lstm_forward(x2, h0, params, c0)
    np.testing.assert_array_equal(h[:, :t], h2[:, :t])


def test_forget_bias_starts_at_one():
    params = init_lstm_params(3, 4)
    np.testing.assert_array_equal(params["b"][4:8], 1.0)
    assert np.all(params["b"][:4] == 0) and np.all(params["b"][8:] == 0)


def test_sigmoid_is_stable_and_right():
    a = np.array([-800.0, -30.0, 0.0, 2.0, 800.0])
    s = sigmoid(a)
    assert np.all(np.isfinite(s)) and s[0] == 0.0 and s[-1] == 1.0
    np.testing.assert_allclose(s[1:4], 1 / (1 + np.exp(-a[1:4])), rtol=1e-15)


def test_the_carousel_keeps_the_gradient():
    """With the gates pinned (i = 0, f = 1), dc_{t-1} = dc_t exactly: the direct path has no
    matrix and no tanh' (the constant-error carousel)."""
    x, h0, c0, params = example(1, 40, 2, 3, seed=1)
    H = 3
    params["b"][:H] = -40.0                  # input gate closed
    params["b"][H:2 * H] = 40.0              # forget gate open
    params["b"][2 * H:3 * H] = -40.0         # output gate closed: dh reaches c only directly
    h, cache = lstm_forward(x, h0, params, c0)
    np.testing.assert_allclose(cache.c[:, -1], c0, rtol=1e-12)
    _, _, dc0, _ = lstm_backward(np.ones_like(h), cache)
    assert np.all(np.abs(dc0) < 1e-12)       # nothing enters through h (o = 0) ...
    step = lstm_step_forward(x[:, 0], h0, c0, params)[2]
    dc = np.array([[1.0, -2.0, 3.0]])
    _, _, dc_prev, _ = lstm_step_backward(np.zeros((1, H)), dc, step)
    np.testing.assert_allclose(dc_prev, dc, rtol=1e-15)   # ... and dc passes unchanged


# --- against PyTorch (skipped where torch is not installed; CI has none) ----------------------

PERM = lambda H: np.r_[0:H, H:2 * H, 3 * H:4 * H, 2 * H:3 * H]  # noqa: E731  i f o g -> i f g o


@given(sizes)
def test_equals_torch_lstm_forward_and_backward(n):
    torch = pytest.importorskip("torch")
    x, h0, c0, params = example(**n)
    H, perm = n["H"], PERM(n["H"])
    lstm = torch.nn.LSTM(n["D"], H, batch_first=True).double()
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.tensor(params["Wx"][:, perm].T))
        lstm.weight_hh_l0.copy_(torch.tensor(params["Wh"][:, perm].T))
        lstm.bias_ih_l0.copy_(torch.tensor(params["b"][perm]))
        lstm.bias_hh_l0.zero_()                      # torch has two biases; ours is their sum
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    c0t = torch.tensor(c0[None], requires_grad=True)
    out, _ = lstm(xt, (h0t, c0t))
    h, cache = lstm_forward(x, h0, params, c0)
    assert np.max(np.abs(out.detach().numpy() - h)) < 1e-13
    dh = np.random.default_rng(n["seed"]).standard_normal(h.shape)
    out.backward(torch.tensor(dh))
    dx, dh0, dc0, grads = lstm_backward(dh, cache)
    for ours, theirs in [(dx, xt.grad[...]), (dh0, h0t.grad[0]), (dc0, c0t.grad[0]),
                         (grads["Wx"][:, perm], lstm.weight_ih_l0.grad.T),
                         (grads["Wh"][:, perm], lstm.weight_hh_l0.grad.T),
                         (grads["b"][perm], lstm.bias_ih_l0.grad)]:
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-10, atol=1e-12)
