"""xLSTM's mLSTM (minirnn/mlstm.py, derivations/min-rnn.md): the forms agree (outputs, state,
every gradient, split calls), the stabiliser changes nothing, gradchecks, float32 with large
input gates, and the mLSTM as gated retention with an input gate and RetNet's normaliser."""

import numpy as np
from helpers import assert_gradcheck, biggest, forms_error, frozen_copies, randn
from hypothesis import given
from hypothesis import strategies as st

from minirnn import (
    check_gradients,
    gated_retention_parallel,
    log_sigmoid,
    mlstm_parallel,
    mlstm_parallel_backward,
    mlstm_recurrent,
    mlstm_recurrent_backward,
)
from minirnn.states import MLSTMState, MLSTMStateGrad

FORMS = {"recurrent": (mlstm_recurrent, mlstm_recurrent_backward),
         "parallel": (mlstm_parallel, mlstm_parallel_backward)}
sizes = st.fixed_dictionaries({
    "B": st.integers(1, 2), "h": st.integers(1, 2), "T": st.integers(1, 8),
    "d": st.integers(1, 4), "dv": st.integers(1, 3), "seed": st.integers(0, 2**16),
    "gate_scale": st.sampled_from([0.5, 2.0, 8.0]),
})


def example(B, h, T, d, dv, seed, gate_scale=1.0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (randn(rng, B, h, T, d, dtype=dtype), randn(rng, B, h, T, d, dtype=dtype),
            randn(rng, B, h, T, dv, dtype=dtype), (gate_scale * randn(rng, B, h, T)).astype(dtype),
            (gate_scale * randn(rng, B, h, T) + 1.0).astype(dtype))


def unstabilised(q, k, v, i_pre, f_pre):
    """(ML.1)-(ML.3) as written, float64: a reference for moderate gates."""
    B, h, T, d = q.shape
    S, n, outs = np.zeros((B, h, d, v.shape[-1])), np.zeros((B, h, d)), []
    for t in range(T):
        f, i = np.exp(log_sigmoid(f_pre[..., t])), np.exp(i_pre[..., t])
        kt = k[:, :, t] / np.sqrt(d)
        S = f[..., None, None] * S + i[..., None, None] * kt[..., :, None] * v[:, :, t, None]
        n = f[..., None] * n + i[..., None] * kt
        r = np.sum(q[:, :, t] * n, axis=-1)
        read = np.einsum("bhd,bhde->bhe", q[:, :, t], S)
        outs.append(read / np.maximum(np.abs(r), 1)[..., None])
    return np.stack(outs, axis=2)


@given(sizes)
def test_the_forms_agree_with_each_other_and_with_the_unstabilised_math(n):
    q, k, v, i_pre, f_pre = example(**n)
    out_r, st_r, _ = mlstm_recurrent(q, k, v, i_pre, f_pre)
    out_p, st_p, _ = mlstm_parallel(q, k, v, i_pre, f_pre)
    scale = biggest(out_r)
    assert forms_error(out_r, out_p, scale) < 1e-12
    np.testing.assert_allclose(st_r.mu, st_p.mu, rtol=1e-13, atol=1e-13)  # the same stabilisers
    assert forms_error(st_r.S, st_p.S, biggest(st_r.S)) < 1e-12
    assert forms_error(st_r.z, st_p.z, biggest(st_r.z)) < 1e-12
    assert forms_error(out_r, unstabilised(q, k, v, i_pre, f_pre), scale) < 1e-11


@given(sizes, st.data())
def test_every_gradient_agrees_including_split_calls(n, data):
    q, k, v, i_pre, f_pre = example(**n)
    T1 = data.draw(st.integers(0, n["T"]))
    dout = np.random.default_rng(n["seed"] + 1).standard_normal(v.shape)
    results = {}
    for name, (forward, backward) in FORMS.items():
        out, _, cache = forward(q, k, v, i_pre, f_pre)
        results[name] = backward(dout, cache)[:5]
        if 0 < T1 < n["T"]:                                          # two calls, state carried
            a = [x[:, :, :T1] for x in (q, k, v, i_pre, f_pre)]
            b = [x[:, :, T1:] for x in (q, k, v, i_pre, f_pre)]
            out_a, state, cache_a = forward(*a)
            out_b, _, cache_b = forward(*b, state)
            assert forms_error(np.concatenate([out_a, out_b], 2), out, biggest(out)) < 1e-12
            grads_b = backward(dout[:, :, T1:], cache_b)
            grads_a = backward(dout[:, :, :T1], cache_a, grads_b[5])
            results[name + " split"] = [np.concatenate([ga, gb], axis=2)
                                        for ga, gb in zip(grads_a[:5], grads_b[:5])]
    ref = results["recurrent"]
    scale = max(biggest(g) for g in ref)
    for name, grads in results.items():
        for g, r in zip(grads, ref):
            # compared absolutely, at 1e-9 of the largest gradient of the problem: input gates
            # up to e^8 make the two forms round differently (CI's profile found entries of
            # 8e-4 that differ by 5e-11 when the largest gradient is 1.8, and a gradient that is
            # zero in exact arithmetic holding 5e-14 of rounding); a wrong term in any array
            # larger than 1e-9 of the largest still fails
            assert forms_error(g, r, scale, floor=1.0) < 1e-9, name


@given(sizes, st.sampled_from(sorted(FORMS)))
def test_gradcheck(n, form):
    q, k, v, i_pre, f_pre = example(**{**n, "gate_scale": 0.5})
    forward, backward = FORMS[form]
    report = check_gradients(forward, backward, {"q": q, "k": k, "v": v, "i_pre": i_pre,
                                                 "f_pre": f_pre}, seed=n["seed"], floor=0.1)
    assert_gradcheck(report)


@given(sizes, st.sampled_from(sorted(FORMS)), st.floats(-30, 30))
def test_the_stabiliser_changes_nothing(n, form, shift):
    """The same memory stored with another stabiliser (C e^s, n e^s, m - s) gives the same
    outputs and the same memory after the call: the output does not depend on m."""
    q, k, v, i_pre, f_pre = example(**n)
    forward, _ = FORMS[form]
    _, state, _ = forward(q, k, v, i_pre, f_pre)
    moved = MLSTMState(S=state.S * np.exp(shift), z=state.z * np.exp(shift),
                       mu=state.mu - shift,
                       position=state.position)
    out_a, end_a, _ = forward(q, k, v, i_pre, f_pre, state)
    out_b, end_b, _ = forward(q, k, v, i_pre, f_pre, moved)
    assert forms_error(out_a, out_b, biggest(out_a)) < 1e-12
    true_a = end_a.S * np.exp(end_a.mu)[..., None, None]
    true_b = end_b.S * np.exp(end_b.mu)[..., None, None]
    assert forms_error(true_a, true_b, biggest(true_a)) < 1e-12


@given(sizes, st.sampled_from(sorted(FORMS)))
def test_large_input_gates_stay_finite_in_float32(n, form):
    q, k, v, i_pre, f_pre = example(**n, dtype=np.float32)
    i_pre = np.full_like(i_pre, 80.0)                                # e^80 ~ 5.5e34: near the edge
    out, state, cache = FORMS[form][0](q, k, v, i_pre, f_pre)
    grads = FORMS[form][1](np.ones_like(out), cache, MLSTMStateGrad.zeros_like(state))
    assert out.dtype == np.float32 and np.all(np.isfinite(out))
    assert all(np.all(np.isfinite(g)) for g in grads[:5])
    inputs = [x.astype(np.float64) for x in (q, k, v, i_pre, f_pre)]
    ref, _, _ = FORMS[form][0](*inputs)
    # Where q n_t nearly cancels, the output is ill-conditioned: no float32 computation can do
    # better than the output's response to rounding the inputs to float32 (relative 6e-8). That
    # response, measured in float64, widens the tolerance of those entries only.
    rng = np.random.default_rng(n["seed"])
    nudged = [x * (1 + 6e-8 * rng.choice([-1.0, 1.0], x.shape)) for x in inputs]
    conditioning = np.abs(FORMS[form][0](*nudged)[0] - ref)
    tolerance = 1e-3 * max(1.0, biggest(ref)) + 1e-3 * np.abs(ref) + 100 * conditioning
    assert np.all(np.abs(out - ref) <= tolerance)


@given(sizes)
def test_mlstm_is_gated_retention_with_an_input_gate_and_retnets_normaliser(n):
    """Omega = (Q K^T * Gamma^g * i) V with log-gates log f: gated retention (GR.3,
    normalize=False) with keys i_s k_s / sqrt(d); the output divides it by max(|r|, 1)."""
    q, k, v, i_pre, f_pre = example(**{**n, "gate_scale": 0.5})
    out, _, cache = mlstm_parallel(q, k, v, i_pre, f_pre)
    keys = k * np.exp(i_pre)[..., None] / np.sqrt(n["d"])
    omega, _, _ = gated_retention_parallel(q, keys, v, log_sigmoid(f_pre), normalize=False)
    c_true = cache.c * np.exp(cache.mu)                               # max(|r|, 1), unscaled
    np.testing.assert_allclose(c_true, np.maximum(np.abs(cache.r * np.exp(cache.mu)), 1.0),
                               rtol=1e-12)
    assert forms_error(out * c_true[..., None], omega, biggest(omega)) < 1e-12


@given(sizes)
def test_nothing_is_mutated(n):
    arrays = example(**n)
    before = frozen_copies(*arrays)
    for forward, backward in FORMS.values():
        out, _, cache = forward(*arrays)
        dout = np.ones_like(out)
        backward(dout, cache)
        assert np.all(dout == 1)
    for a, b in zip(arrays, before):
        np.testing.assert_array_equal(a, b)
