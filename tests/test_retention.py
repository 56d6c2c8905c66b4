"""Retention: the three forms agree (outputs, states, gradients), each is gradchecked, and the
numerics survive long sequences. Tolerances: forms agree to a relative 1e-10 in float64 (they
differ only in summation order, so the observed gap is about 1e-15) and 1e-4 in float32."""

import warnings

import numpy as np
import pytest
from helpers import GRAD_FLOOR, assert_gradcheck, biggest, forms_error, frozen_copies
from hypothesis import assume, given
from hypothesis import strategies as st

from minirnn import (
    RetentionState,
    RetentionStateGrad,
    check_gradients,
    decay_mask,
    rel_error,
    retention_chunkwise,
    retention_chunkwise_backward,
    retention_final_state,
    retention_forms,
    retention_parallel,
    retention_parallel_backward,
    retention_recurrent,
    retention_recurrent_backward,
)

FORMS_TOL = 1e-10


gammas = st.one_of(st.just(0.0), st.floats(0.0, 1.0), st.just(1.0))


@st.composite
def problems(draw, max_T=64, small=False):
    """Sizes, decays, chunk size, normalisation and input scale of one retention problem."""
    h = draw(st.integers(1, 2 if small else 3))
    T = draw(st.integers(1, max_T))
    return {
        "B": draw(st.integers(1, 2 if small else 3)), "h": h, "T": T,
        "d": draw(st.sampled_from([2, 4] if small else [2, 4, 6, 8])),
        "dv": draw(st.integers(1, 4 if small else 8)),
        "gamma": np.array(draw(st.lists(gammas, min_size=h, max_size=h))),
        "chunk": draw(st.integers(1, T + 3)),
        "normalize": draw(st.booleans()),
        "scale": draw(st.sampled_from([0.1, 1.0, 3.0])),
        "seed": draw(st.integers(0, 2**16)),
    }


def arrays(p, dtype=np.float64):
    rng = np.random.default_rng(p["seed"])
    shape = (p["B"], p["h"], p["T"])
    q = p["scale"] * rng.standard_normal((*shape, p["d"]))
    k = p["scale"] * rng.standard_normal((*shape, p["d"]))
    v = rng.standard_normal((*shape, p["dv"]))
    return q.astype(dtype), k.astype(dtype), v.astype(dtype)


def random_state(p, rng, position=3):
    S = rng.standard_normal((p["B"], p["h"], p["d"], p["dv"]))
    z = rng.standard_normal((p["B"], p["h"], p["d"]))
    return RetentionState(S, z, np.full(p["h"], 1.5), position)


def run_all(p, q, k, v, dout, state=None, dstate=None):
    """Outputs, returned states and gradients (dq, dk, dv, dstate_prev) of the three forms."""
    results = {}
    for form, (forward, backward) in retention_forms(p["chunk"]).items():
        out, final, cache = forward(q, k, v, p["gamma"], state=state, normalize=p["normalize"])
        results[form] = (out, final, backward(dout, cache, dstate))
    return results


# --- the centrepiece: the three forms agree --------------------------------------------------

@given(problems(), st.booleans())
def test_three_forms_agree_outputs_states_and_gradients(p, carried):
    """With and without a carried state (and a gradient of the returned state): the same
    outputs, returned state and every gradient, the incoming state's included."""
    q, k, v = arrays(p)
    rng = np.random.default_rng(p["seed"] + 1)
    dout = rng.standard_normal(v.shape)
    state = random_state(p, rng) if carried else None
    dstate = RetentionStateGrad(rng.standard_normal((p["B"], p["h"], p["d"], p["dv"])),
                                rng.standard_normal((p["B"], p["h"], p["d"]))) \
        if carried else None
    res = run_all(p, q, k, v, dout, state, dstate)
    ref_out, ref_state, ref_grads = res["parallel"]
    ref_flat = (*ref_grads[:3], ref_grads[3].S, ref_grads[3].z)
    np.testing.assert_allclose(ref_state.s, retention_final_state(k, v, p["gamma"], state).s,
                               rtol=1e-12)
    for form in ("recurrent", "chunkwise"):
        out, state_out, grads = res[form]
        assert rel_error(out, ref_out) <= FORMS_TOL, form
        assert rel_error(state_out.S, ref_state.S) <= FORMS_TOL, form
        assert rel_error(state_out.z, ref_state.z) <= FORMS_TOL, form
        np.testing.assert_allclose(state_out.s, ref_state.s, rtol=1e-12)
        assert state_out.position == ref_state.position == p["T"] + (3 if carried else 0)
        flat = (*grads[:3], grads[3].S, grads[3].z)
        for name, a, b in zip(("dq", "dk", "dv", "dS_prev", "dz_prev"), flat, ref_flat,
                              strict=True):
            # floored at 1e-4 of the largest gradient, as in test_gated.py: with gamma = 0 and
            # the clamp active, dq is zero in exact arithmetic and each form returns its own
            # rounding of terms larger than the gradients (seen: 1.2e-15 of the largest)
            err = forms_error(a, b, biggest(*ref_flat), floor=1e-4)
            assert err <= FORMS_TOL, (form, name, err)


@given(problems(), st.data())
def test_splitting_and_carrying_the_state_equals_one_call(p, data):
    assume(p["T"] >= 2)
    t = data.draw(st.integers(1, p["T"] - 1))
    q, k, v = arrays(p)
    g, norm, C = p["gamma"], p["normalize"], p["chunk"]
    dout = np.random.default_rng(p["seed"] + 3).standard_normal(v.shape)
    whole, _, cache = retention_parallel(q, k, v, g, normalize=norm)
    dwhole = retention_parallel_backward(dout, cache)[:3]
    for forward, backward in retention_forms(C).values():
        o1, s1, c1 = forward(q[:, :, :t], k[:, :, :t], v[:, :, :t], g, normalize=norm)
        o2, s2, c2 = forward(q[:, :, t:], k[:, :, t:], v[:, :, t:], g, state=s1, normalize=norm)
        assert s1.position == t and s2.position == p["T"]
        assert rel_error(np.concatenate([o1, o2], axis=2), whole) <= FORMS_TOL
        *g2, ds = backward(dout[:, :, t:], c2)
        *g1, _ = backward(dout[:, :, :t], c1, ds)     # the later piece's gradient flows back
        for a, b in zip([np.concatenate([x, y], axis=2) for x, y in zip(g1, g2)], dwhole,
                        strict=True):
            assert forms_error(a, b, biggest(*dwhole)) <= FORMS_TOL


@given(problems(max_T=12))
def test_chunk_of_one_is_recurrent_and_whole_chunk_is_parallel(p):
    q, k, v = arrays(p)
    g, norm = p["gamma"], p["normalize"]
    rec, _, _ = retention_recurrent(q, k, v, g, normalize=norm)
    par, _, _ = retention_parallel(q, k, v, g, normalize=norm)
    one, _, _ = retention_chunkwise(q, k, v, g, 1, normalize=norm)
    big, _, cache = retention_chunkwise(q, k, v, g, p["T"] + p["chunk"], normalize=norm)
    assert len(cache.bounds) == 1
    np.testing.assert_allclose(one, rec, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(big, par, rtol=1e-13, atol=1e-14)


# --- gradients against finite differences ---------------------------------------------------

def away_from_kink(r, delta=1e-4):
    """max(|r|, 1) has a kink at |r| = 1, where finite differences straddle two slopes."""
    assume(np.all(np.abs(np.abs(r) - 1.0) > delta))


@pytest.mark.no_cover   # finite differences, slow under line tracing; other tests cover the lines
@given(problems(max_T=8, small=True))   # small: finite differences cost 2 forwards per number
def test_gradcheck_every_form_and_the_incoming_state(p):
    q, k, v = arrays(p)
    g, norm, C = p["gamma"], p["normalize"], p["chunk"]
    state = random_state(p, np.random.default_rng(p["seed"] + 4))
    _, _, cache = retention_parallel(q, k, v, g, state, norm)
    away_from_kink(cache.r)
    _, _, rc = retention_recurrent(q, k, v, g, state, norm)
    away_from_kink(rc.r)
    inputs = {"q": q, "k": k, "v": v, "S": state.S, "z": state.z}
    # Some of these gradients are zero in exact arithmetic (T = 1 with the clamp active gives
    # o = sign(r) v, so dq = 0; a tiny gamma makes dS_0 tiny): see GRAD_FLOOR in helpers.
    for forward, backward in retention_forms(C).values():
        def run(q, k, v, S, z, forward=forward):
            out, _, c = forward(q, k, v, g, state=state._replace(S=S, z=z), normalize=norm)
            return out, c

        def flat(d, c, backward=backward):
            *grads, dstate = backward(d, c)
            return (*grads, dstate.S, dstate.z)

        assert_gradcheck(check_gradients(run, flat, inputs, seed=p["seed"], floor=GRAD_FLOOR))


def test_gradcheck_exercises_both_sides_of_the_score_clamp():
    """A fixed example where some rows have |r| > 1 (clamp active) and some |r| < 1."""
    p = {"B": 1, "h": 2, "T": 6, "d": 2, "dv": 3, "gamma": np.array([0.5, 0.9]),
         "chunk": 4, "normalize": True, "scale": 1.0, "seed": 11}
    q, k, v = arrays(p)
    q[:, :, 3:] *= 4.0
    _, _, cache = retention_parallel(q, k, v, p["gamma"])
    assert np.any(np.abs(cache.r) > 1.1) and np.any(np.abs(cache.r) < 0.9)
    for forward, backward in retention_forms(4).values():
        assert_gradcheck(check_gradients(lambda q, k, v, forward=forward: forward(
            q, k, v, p["gamma"]), backward, {"q": q, "k": k, "v": v}))


# --- other properties -----------------------------------------------------------------------

@given(problems(max_T=16), st.data())
def test_causality_in_every_form(p, data):
    t = data.draw(st.integers(0, p["T"] - 1))
    q, k, v = arrays(p)
    q2, k2, v2 = q.copy(), k.copy(), v.copy()
    q2[:, :, t] += 1.0
    k2[:, :, t] -= 1.0
    v2[:, :, t] *= 2.0
    for run in (lambda q, k, v: retention_parallel(q, k, v, p["gamma"],
                                                   normalize=p["normalize"])[0],
                lambda q, k, v: retention_recurrent(q, k, v, p["gamma"],
                                                    normalize=p["normalize"])[0],
                lambda q, k, v: retention_chunkwise(q, k, v, p["gamma"], p["chunk"],
                                                    normalize=p["normalize"])[0]):
        np.testing.assert_array_equal(run(q, k, v)[:, :, :t], run(q2, k2, v2)[:, :, :t])


@given(problems(max_T=16))
def test_inputs_are_not_mutated(p):
    q, k, v = arrays(p)
    state = random_state(p, np.random.default_rng(p["seed"]))
    before = frozen_copies(q, k, v, state.S, state.z, state.s)
    dout = np.ones_like(v)
    run_all(p, q, k, v, dout)
    _, _, c = retention_chunkwise(q, k, v, p["gamma"], p["chunk"], state, p["normalize"])
    retention_chunkwise_backward(dout, c)
    _, _, c = retention_recurrent(q, k, v, p["gamma"], state, p["normalize"])
    retention_recurrent_backward(dout, c)
    for a, b in zip([q, k, v, state.S, state.z, state.s], before):
        np.testing.assert_array_equal(a, b)


@given(problems(max_T=32))
def test_float32_forms_agree_and_stay_float32(p):
    q, k, v = arrays(p, np.float32)
    dout = np.random.default_rng(p["seed"]).standard_normal(v.shape).astype(np.float32)
    res = run_all(p, q, k, v, dout)
    ref_out, _, ref_grads = res["parallel"]
    ref_grads = (*ref_grads[:3], *ref_grads[3][:2])                 # dq, dk, dv, dS, dz
    for form in ("parallel", "recurrent", "chunkwise"):
        out, state, grads = res[form]
        grads = (*grads[:3], *grads[3][:2])
        assert out.dtype == state.S.dtype == np.float32, form
        assert len(grads) == 5 and all(g.dtype == np.float32 for g in grads), form
    for form in ("recurrent", "chunkwise"):
        out, _, grads = res[form]
        grads = (*grads[:3], *grads[3][:2])
        # float32 keeps ~7 digits; sums over up to 32 terms lose about one more. Gradients that
        # are zero in exact arithmetic come out as rounding (~1e-6 of the largest gradient),
        # so arrays below 10% of the largest are judged in absolute terms (floor = 0.1).
        assert rel_error(out, ref_out) <= 1e-4
        assert all(forms_error(a, b, biggest(*ref_grads), floor=0.1) <= 1e-4
                   for a, b in zip(grads, ref_grads, strict=True))


@given(problems(max_T=16))
def test_gamma_zero_keeps_only_the_current_token(p):
    q, k, v = arrays(p)
    g = np.zeros(p["h"])
    out, _, _ = retention_parallel(q, k, v, g, normalize=False)
    expected = np.sum(q * k, axis=-1, keepdims=True) * v             # (q_n . k_n) v_n
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    out_n, _, _ = retention_parallel(q, k, v, g, normalize=True)
    r = np.sum(q * k, axis=-1, keepdims=True) / np.sqrt(p["d"])     # s_n = 1: a_n = 1
    np.testing.assert_allclose(out_n, r * v / np.maximum(np.abs(r), 1), rtol=1e-12, atol=1e-12)


@given(problems(max_T=16))
def test_gamma_one_without_normalisation_is_causal_linear_attention(p):
    q, k, v = arrays(p)
    linear = np.tril(q @ np.swapaxes(k, -1, -2)) @ v
    for out in (retention_parallel(q, k, v, 1.0, normalize=False)[0],
                retention_recurrent(q, k, v, 1.0, normalize=False)[0],
                retention_chunkwise(q, k, v, 1.0, p["chunk"], normalize=False)[0]):
        np.testing.assert_allclose(out, linear, rtol=1e-12, atol=1e-11)


def test_decay_mask_values_and_traps():
    np.testing.assert_array_equal(decay_mask(0.5, 3), [[1, 0, 0], [0.5, 1, 0], [0.25, 0.5, 1]])
    np.testing.assert_array_equal(decay_mask(0.0, 3), np.eye(3))            # 0^0 = 1
    np.testing.assert_array_equal(decay_mask(1.0, 3), np.tril(np.ones((3, 3))))  # no leak
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no overflow, no 0 * inf, no divide by zero
        D = decay_mask(np.array([0.0, 1 - 2**-5, 1.0]), 3000)
    assert D.shape == (3, 3000, 3000) and np.all(np.isfinite(D))
    assert np.all(np.triu(D[1], 1) == 0) and np.all(np.triu(D[2], 1) == 0)


@pytest.mark.no_cover        # 8192-step Python loops; the same lines run in the small tests
@pytest.mark.parametrize("gamma", [1 - 2**-12, 1 - 2**-5])
def test_long_sequences_stay_finite_and_forms_agree(gamma):
    """T = 8192: every form finite; chunkwise agrees with recurrent (parallel too)."""
    rng = np.random.default_rng(0)
    T = 8192
    q, k = rng.standard_normal((2, 1, 1, T, 2))
    v = rng.standard_normal((1, 1, T, 1))
    rec, s_rec, _ = retention_recurrent(q, k, v, gamma)
    chunk, s_chunk, _ = retention_chunkwise(q, k, v, gamma, 512)
    par, _, _ = retention_parallel(q, k, v, gamma)
    for out in (rec, chunk, par):
        assert np.all(np.isfinite(out))
    assert rel_error(chunk, rec) <= FORMS_TOL and rel_error(par, rec) <= FORMS_TOL
    assert rel_error(s_chunk.S, s_rec.S) <= FORMS_TOL
    np.testing.assert_allclose(s_rec.s, (1 - gamma**T) / (1 - gamma), rtol=1e-9)


# --- bad input ------------------------------------------------------------------------------

def test_bad_inputs_give_clear_errors():
    p = {"B": 1, "h": 2, "T": 5, "d": 2, "dv": 3, "scale": 1.0, "seed": 0}
    q, k, v = arrays(p)
    g = np.array([0.5, 0.9])
    with pytest.raises(ValueError, match=r"every gamma must lie in \[0, 1\]"):
        retention_parallel(q, k, v, np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match=r"every gamma must lie in \[0, 1\]"):
        retention_recurrent(q, k, v, np.array([0.5, np.nan]))
    with pytest.raises(ValueError, match=r"gamma must be a float or have shape \(h,\) = \(2,\)"):
        retention_parallel(q, k, v, np.array([0.5, 0.9, 0.1]))
    with pytest.raises(TypeError, match="gamma must be"):
        retention_parallel(q, k, v, "0.9")
    with pytest.raises(ValueError, match="chunk_size must be >= 1, got 0"):
        retention_chunkwise(q, k, v, g, 0)
    with pytest.raises(TypeError, match="chunk_size must be an integer"):
        retention_chunkwise(q, k, v, g, 2.5)
    with pytest.raises(ValueError, match=r"v .* T = 4, but q .* T = 5"):
        retention_parallel(q, k, v[:, :, :4], g)
    with pytest.raises(ValueError, match=r"k .* d = 3, but q .* d = 2"):
        retention_parallel(q, np.zeros((1, 2, 5, 3)), v, g)
    bad_state = RetentionState(np.zeros((1, 2, 2, 4)), np.zeros((1, 2, 2)), np.zeros(2), 0)
    with pytest.raises(ValueError, match=r"state.S .* dv = 4, but v .* dv = 3"):
        retention_recurrent(q, k, v, g, bad_state)
    with pytest.raises(TypeError, match="state must be a RetentionState"):
        retention_chunkwise(q, k, v, g, 2, state=(1, 2))
    with pytest.raises(TypeError, match="normalize must be True or False"):
        retention_parallel(q, k, v, g, normalize="yes")
    _, _, cache = retention_recurrent(q, k, v, g)
    with pytest.raises(ValueError, match=r"dout .* T = 4, but cache.out gives T = 5"):
        retention_recurrent_backward(v[:, :, :4], cache)
    with pytest.raises(TypeError, match="dstate must be a RetentionStateGrad"):
        retention_recurrent_backward(v, cache, dstate=(1, 2))
    with pytest.raises(ValueError, match="T must be >= 1"):
        decay_mask(0.5, 0)
