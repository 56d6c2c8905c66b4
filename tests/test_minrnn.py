"""minGRU and minLSTM (minirnn/minrnn.py, derivations/min-rnn.md): the two forms of the scan
agree forward and backward, gradchecks, and minGRU is gated retention with d = dv = 1."""

import numpy as np
from helpers import GRAD_FLOOR, assert_gradcheck, forms_error, frozen_copies, randn
from hypothesis import given
from hypothesis import strategies as st

from minirnn import (
    check_gradients,
    gated_retention_recurrent,
    init_mingru_params,
    init_minlstm_params,
    log_sigmoid,
    mingru_backward,
    mingru_forward,
    minlstm_backward,
    minlstm_forward,
)
from minirnn.states import GatedState

MODELS = {"mingru": (mingru_forward, mingru_backward, init_mingru_params),
          "minlstm": (minlstm_forward, minlstm_backward, init_minlstm_params)}
sizes = st.fixed_dictionaries({
    "B": st.integers(1, 3), "T": st.integers(1, 8), "D": st.integers(1, 4),
    "H": st.integers(1, 4), "seed": st.integers(0, 2**16),
    "model": st.sampled_from(sorted(MODELS)), "bias": st.sampled_from([0.5, 3.0, 30.0]),
})


def example(B, T, D, H, seed, model, bias=0.5, dtype=np.float64):
    """Biases of size ``bias``: 30 pins gates at 0 or 1 to within 1e-13."""
    rng = np.random.default_rng(seed)
    params = MODELS[model][2](D, H, seed=seed, dtype=dtype)
    for key in params:
        if key.startswith("b"):
            params[key] = (bias * randn(rng, H)).astype(dtype)
    return randn(rng, B, T, D, dtype=dtype), randn(rng, B, H, dtype=dtype), params


@given(sizes)
def test_the_two_forms_agree_forward_and_backward(n):
    forward, backward, _ = MODELS[n["model"]]
    x, h0, params = example(**n)
    h_seq, c_seq = forward(x, h0, params, "sequential")
    h_par, c_par = forward(x, h0, params, "parallel")
    assert np.all(np.isfinite(h_par))
    assert forms_error(h_seq, h_par, np.max(np.abs(h_seq))) < 1e-12
    dh = np.random.default_rng(n["seed"] + 1).standard_normal(h_seq.shape)
    a, b = backward(dh, c_seq), backward(dh, c_par)
    scale = max(np.max(np.abs(g)) for g in [a[0], a[1], *a[2].values()])
    for ga, gb in [(a[0], b[0]), (a[1], b[1]), *((a[2][k], b[2][k]) for k in params)]:
        assert forms_error(ga, gb, scale) < 1e-11


@given(sizes, st.sampled_from(["sequential", "parallel"]))
def test_gradcheck(n, form):
    forward, backward, _ = MODELS[n["model"]]
    x, h0, params = example(**{**n, "bias": 0.5})
    report = check_gradients(lambda x, h0, params: forward(x, h0, params, form), backward,
                             {"x": x, "h0": h0}, params, seed=n["seed"], floor=GRAD_FLOOR)
    assert_gradcheck(report)


@given(sizes)
def test_mingru_is_gated_retention_with_one_by_one_states(n):
    """Per channel: q = 1, k = z_t, v = h~_t, alpha_t = 1 - z_t, S_0 = h_0 (GR.2 with d = dv = 1,
    no normalisation); the channels are gated retention's heads."""
    x, h0, params = example(**{**n, "model": "mingru"})
    h, cache = mingru_forward(x, h0, params)
    z, h_bar = cache.gates["z"], cache.h_bar
    heads = lambda a: np.swapaxes(a, 1, 2)[..., None]                  # noqa: E731 (B, H, T, 1)
    B, H = h0.shape
    state = GatedState(S=h0[:, :, None, None], z=np.zeros((B, H, 1)), s=np.zeros((B, H)),
                       position=0)
    out, _, _ = gated_retention_recurrent(np.ones_like(heads(z)), heads(z), heads(h_bar),
                                          np.swapaxes(cache.scan.log_decay, 1, 2), state,
                                          normalize=False)
    np.testing.assert_allclose(np.swapaxes(out[..., 0], 1, 2), h, rtol=1e-12, atol=1e-13)


@given(sizes)
def test_minlstm_gates_are_normalised_and_h_stays_a_mix(n):
    x, h0, params = example(**{**n, "model": "minlstm"})
    h, cache = minlstm_forward(x, h0, params)
    np.testing.assert_allclose(cache.gates["f_norm"] + cache.gates["i_norm"], 1.0, rtol=1e-14)
    # h_t is a convex mix of h_{t-1} and h~_t, so it stays within their running range
    bound = np.maximum(np.abs(h0)[:, None], np.maximum.accumulate(np.abs(cache.h_bar), axis=1))
    assert np.all(np.abs(h) <= bound + 1e-12)


@given(sizes)
def test_nothing_is_mutated_and_float32_stays(n):
    forward, backward, _ = MODELS[n["model"]]
    x, h0, params = example(**n)
    before = frozen_copies(x, h0, *params.values())
    h, cache = forward(x, h0, params, "parallel")
    dh = np.ones_like(h)
    backward(dh, cache)
    for a, b in zip([x, h0, *params.values()], before):
        np.testing.assert_array_equal(a, b)
    assert np.all(dh == 1)
    x, h0, params = example(**n, dtype=np.float32)
    for form in ("sequential", "parallel"):
        h, cache = forward(x, h0, params, form)
        dx, dh0, grads = backward(np.ones_like(h), cache)
        assert h.dtype == dx.dtype == dh0.dtype == np.float32
        assert all(g.dtype == np.float32 for g in grads.values())


def test_log_sigmoid_is_exact_far_out():
    a = np.array([-800.0, -40.0, 0.0, 40.0, 800.0])
    out = log_sigmoid(a)
    np.testing.assert_allclose(out, [-800.0, -40.0, -np.log(2.0), -np.exp(-40.0), 0.0],
                               rtol=1e-14)
