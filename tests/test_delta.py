"""The delta rule: the three forms agree (outputs, returned state and every gradient, the gates'
and the incoming state's included), a split sequence equals one call, the memory overwrites,
the WY identity holds, every gradient matches finite differences, long sequences stay finite.
Tolerances: forms agree to a relative 1e-10 in float64 (they differ in summation order and in
how the triangular system is solved; observed about 1e-15); gradients match central differences
to 1e-7 (G.4, floored at 10% of the largest gradient as in the other gradient checks)."""

import numpy as np
import pytest
from helpers import GRAD_FLOOR, assert_gradcheck, biggest, forms_error, frozen_copies
from hypothesis import assume, given
from hypothesis import strategies as st

from minirnn import (
    DeltaState,
    DeltaStateGrad,
    check_gradients,
    delta_chunk_transform,
    delta_rule_chunkwise,
    delta_rule_forms,
    delta_rule_parallel,
    delta_rule_recurrent,
    numerical_gradient,
    rel_error,
    solve_unit_lower,
)

FORMS_TOL = 1e-10
log_gates = st.one_of(st.just(0.0), st.floats(-3.0, 0.0, allow_subnormal=False), st.just(-30.0),
                      st.floats(-1e-4, 0.0, allow_subnormal=False))
# no subnormal strengths: 5e-324 is not a writing strength anyone trains, and the forms then
# differ only in how each rounds a denormal
betas = st.one_of(st.floats(0.0, 1.0, allow_subnormal=False), st.just(1.0), st.floats(1.0, 2.0),
                  st.just(0.0))


@st.composite
def problems(draw, max_T=40, small=False):
    T = draw(st.integers(1, max_T))
    return {"B": draw(st.integers(1, 2)), "h": draw(st.integers(1, 2 if small else 3)), "T": T,
            "d": draw(st.sampled_from([2, 3] if small else [2, 4, 8])),
            "dv": draw(st.integers(1, 3 if small else 5)),
            "gates": draw(st.one_of(st.none(), st.lists(log_gates, min_size=1, max_size=6))),
            "betas": draw(st.lists(betas, min_size=1, max_size=6)),
            "chunk": draw(st.integers(1, T + 3)), "seed": draw(st.integers(0, 2**16))}


def arrays(p, dtype=np.float64):
    """q, k (unit keys), v, beta, log_decay (None for plain DeltaNet), dout."""
    rng = np.random.default_rng(p["seed"])
    shape = (p["B"], p["h"], p["T"])
    q = rng.standard_normal((*shape, p["d"]))
    k = rng.standard_normal((*shape, p["d"]))
    k /= np.linalg.norm(k, axis=-1, keepdims=True)                   # as the layer gives them
    v = rng.standard_normal((*shape, p["dv"]))
    beta = rng.choice(np.array(p["betas"]), size=shape)
    g = None if p["gates"] is None else rng.choice(np.array(p["gates"]), size=shape)
    dout = rng.standard_normal(v.shape)
    return (q.astype(dtype), k.astype(dtype), v.astype(dtype), beta.astype(dtype), g,
            dout.astype(dtype))


def random_state(p, rng, position=3):
    return DeltaState(S=rng.standard_normal((p["B"], p["h"], p["d"], p["dv"])),
                      position=position)


def flat(grads):
    """(dq, dk, dv, dbeta, dlog_decay or None, dstate_prev) as a tuple of arrays."""
    return tuple(a for a in (*grads[:5], grads[5].S) if a is not None)


@given(problems(), st.booleans())
def test_three_forms_agree_outputs_state_and_every_gradient(p, carried):
    q, k, v, beta, g, dout = arrays(p)
    rng = np.random.default_rng(p["seed"] + 1)
    state = random_state(p, rng) if carried else None
    dstate = DeltaStateGrad(S=rng.standard_normal((p["B"], p["h"], p["d"], p["dv"]))) \
        if carried else None
    results = {}
    for form, (forward, backward) in delta_rule_forms(p["chunk"]).items():
        out, final, cache = forward(q, k, v, beta, log_decay=g, state=state)
        results[form] = (out, final, flat(backward(dout, cache, dstate)))
    ref_out, ref_state, ref_grads = results["recurrent"]
    assert ref_state.position == p["T"] + (3 if carried else 0)
    for form in ("parallel", "chunkwise"):
        out, final, grads = results[form]
        assert rel_error(out, ref_out) <= FORMS_TOL, form
        assert rel_error(final.S, ref_state.S) <= FORMS_TOL, form
        assert final.position == ref_state.position
        assert len(grads) == len(ref_grads) == (6 if g is not None else 5)
        for i, (a, b) in enumerate(zip(grads, ref_grads, strict=True)):
            # arrays far below the largest gradient (e.g. dq behind a closed gate) are compared
            # absolutely, at 1e-4 of it, as for gated retention
            assert forms_error(a, b, biggest(*ref_grads), floor=1e-4) <= FORMS_TOL, (form, i)


@given(problems(), st.data())
def test_a_split_sequence_equals_one_call_forward_and_backward(p, data):
    assume(p["T"] >= 2)
    t = data.draw(st.integers(1, p["T"] - 1))
    q, k, v, beta, g, dout = arrays(p)
    forms = delta_rule_forms(p["chunk"])
    whole, _, cache = forms["parallel"][0](q, k, v, beta, log_decay=g)
    ref = flat(forms["parallel"][1](dout, cache))[:-1]
    first, second = slice(0, t), slice(t, None)

    def part(x, rows):
        return None if x is None else x[:, :, rows]

    for forward, backward in forms.values():
        o1, s1, c1 = forward(*(x[:, :, first] for x in (q, k, v, beta)), log_decay=part(g, first))
        o2, _, c2 = forward(*(x[:, :, second] for x in (q, k, v, beta)), log_decay=part(g, second),
                            state=s1)
        assert rel_error(np.concatenate([o1, o2], axis=2), whole) <= FORMS_TOL
        *g2, ds = backward(dout[:, :, second], c2)
        *g1, _ = backward(dout[:, :, first], c1, ds)       # the later call's gradient flows back
        joined = [np.concatenate([a, b], axis=2) for a, b in zip(g1, g2, strict=True)
                  if a is not None]
        for a, b in zip(joined, ref, strict=True):
            assert forms_error(a, b, biggest(*ref), floor=1e-4) <= FORMS_TOL


@given(problems(max_T=12))
def test_beta_zero_leaves_the_memory_untouched(p):
    """Nothing is written: plain DeltaNet keeps the state, gated DeltaNet only decays it."""
    q, k, v, beta, g, _ = arrays(p)
    state = random_state(p, np.random.default_rng(p["seed"]))
    decay = 1.0 if g is None else np.exp(g.sum(axis=-1))[..., None, None]
    for forward, _ in delta_rule_forms(p["chunk"]).values():
        _, final, _ = forward(q, k, v, np.zeros_like(beta), log_decay=g, state=state)
        np.testing.assert_allclose(final.S, decay * state.S, rtol=1e-13, atol=1e-14)


def test_a_unit_key_with_beta_one_overwrites():
    """Write v1 for a key, then v2 for the same key: the memory returns v2 exactly (additive
    memory would return v1 + v2), and other orthogonal keys are left alone."""
    rng = np.random.default_rng(0)
    d, dv = 4, 3
    keys = np.eye(d)[None, None, [0, 1, 0]]                          # key 0, key 1, key 0 again
    v = rng.standard_normal((1, 1, 3, dv))
    for forward, _ in delta_rule_forms(2).values():
        _, final, _ = forward(np.zeros_like(keys), keys, v, np.ones((1, 1, 3)))
        np.testing.assert_allclose(np.eye(d)[0] @ final.S[0, 0], v[0, 0, 2], atol=1e-15)
        np.testing.assert_allclose(np.eye(d)[1] @ final.S[0, 0], v[0, 0, 1], atol=1e-15)
    rotated = rng.standard_normal((1, 1, 1, d))
    rotated /= np.linalg.norm(rotated)
    state = DeltaState(S=rng.standard_normal((1, 1, d, dv)), position=0)
    _, final, _ = delta_rule_recurrent(rotated, rotated, v[:, :, :1], np.ones((1, 1, 1)),
                                       state=state)
    np.testing.assert_allclose(rotated[0, 0, 0] @ final.S[0, 0], v[0, 0, 0], atol=1e-13)


@given(problems(max_T=16))
def test_log_decay_zero_is_plain_deltanet(p):
    q, k, v, beta, _, dout = arrays(p)
    for forward, backward in delta_rule_forms(p["chunk"]).values():
        o1, s1, c1 = forward(q, k, v, beta)
        o2, s2, c2 = forward(q, k, v, beta, log_decay=np.zeros_like(beta))
        assert rel_error(o1, o2) <= 1e-14 and rel_error(s1.S, s2.S) <= 1e-14
        g1, g2 = backward(dout, c1), backward(dout, c2)
        assert g1[4] is None and g2[4] is not None
        for a, b in zip(flat(g1), flat(g2)[:4] + flat(g2)[5:], strict=True):
            assert rel_error(a, b) <= 1e-13


@given(problems(max_T=12), st.data())
def test_the_wy_identity_and_the_transform_solve_the_system(p, data):
    """The product of a chunk's transitions alpha_i (I - beta_i k_i^T k_i) (applied in order)
    is xi_{L-1} I - K^T diag(zeta) W, which is I - K^T W without gates (DR.5); and
    T_c = M^{-1} diag(beta) (DR.6)."""
    _, k, v, beta, g, _ = arrays(p)
    f = delta_chunk_transform(k, v, beta, g)
    d = p["d"]
    alpha = np.ones(beta.shape) if g is None else np.exp(g)
    product = np.broadcast_to(np.eye(d), (p["B"], p["h"], d, d)).copy()
    for t in range(p["T"]):
        kt = k[:, :, t]
        product = alpha[:, :, t, None, None] * (
            np.eye(d) - beta[:, :, t, None, None] * kt[..., :, None] * kt[..., None, :]) @ product
    wy = f.xi[..., -1, None, None] * np.eye(d) - np.swapaxes(k, -1, -2) @ (f.zeta[..., None] * f.W)
    np.testing.assert_allclose(product, wy, atol=1e-12)
    if g is None:
        np.testing.assert_allclose(product, np.eye(d) - np.swapaxes(k, -1, -2) @ f.W, atol=1e-12)
    diag_beta = beta[..., None] * np.eye(p["T"])
    np.testing.assert_allclose(f.M @ f.T_c, diag_beta, atol=1e-12)


@given(st.integers(1, 9), st.integers(1, 3), st.booleans(), st.integers(0, 2**16))
def test_solve_unit_lower_forward_and_back_substitution(T, n, transpose, seed):
    rng = np.random.default_rng(seed)
    lower = np.tril(rng.standard_normal((2, T, T)), -1)
    rhs = rng.standard_normal((2, T, n))
    X = solve_unit_lower(lower, rhs, transpose)
    M = lower + np.eye(T)
    np.testing.assert_allclose((np.swapaxes(M, -1, -2) if transpose else M) @ X, rhs, atol=1e-10)
    before = frozen_copies(lower, rhs)
    solve_unit_lower(lower, rhs)
    for a, b in zip((lower, rhs), before, strict=True):
        np.testing.assert_array_equal(a, b)


# --- gradients against finite differences --------------------------------------------------------

@pytest.mark.no_cover   # finite differences, slow under line tracing; other tests cover the lines
@given(problems(max_T=7, small=True), st.booleans())
def test_gradcheck_every_input_of_every_form(p, carried):
    """q, k (not normalised: the core takes any keys), v, beta, the log-gates and the incoming
    state; beta kept away from 0 and 2 and gates at or below -1e-3 so the differences stay in
    the domain."""
    q, k, v, beta, g, _ = arrays(p)
    beta = np.clip(beta, 1e-3, 2 - 1e-3)
    g = None if g is None else np.minimum(g, -1e-3)
    rng = np.random.default_rng(p["seed"] + 7)
    S0 = rng.standard_normal((p["B"], p["h"], p["d"], p["dv"])) if carried else \
        np.zeros((p["B"], p["h"], p["d"], p["dv"]))
    inputs = {"q": q, "k": k, "v": v, "beta": beta, **({} if g is None else {"g": g}),
              "S": S0}
    for forward, backward in delta_rule_forms(p["chunk"]).values():
        def run(q, k, v, beta, S, g=None, forward=forward):
            out, _, cache = forward(q, k, v, beta, log_decay=g,
                                    state=DeltaState(S=S, position=0))
            return out, cache

        def grads(dout, cache, backward=backward):
            dq, dk, dv, dbeta, dg, dstate = backward(dout, cache)
            return tuple(a for a in (dq, dk, dv, dbeta, dg, dstate.S) if a is not None)

        assert_gradcheck(check_gradients(run, grads, inputs, seed=p["seed"], floor=GRAD_FLOOR))


def test_the_gradient_of_the_returned_state_against_finite_differences():
    """A loss that reads the returned state too: dstate reaches every input."""
    rng = np.random.default_rng(5)
    q, k, v = rng.standard_normal((3, 1, 2, 5, 3))
    beta, g = rng.uniform(0.2, 1.8, (1, 2, 5)), -rng.uniform(0.01, 1.0, (1, 2, 5))
    dS = rng.standard_normal((1, 2, 3, 3))
    for forward, backward in delta_rule_forms(2).values():
        def loss(k=k, beta=beta, g=g, forward=forward):
            out, final, _ = forward(q, k, v, beta, log_decay=g)
            return np.asarray(np.sum(out) + np.sum(final.S * dS))

        out, _, cache = forward(q, k, v, beta, log_decay=g)
        _, dk, _, dbeta, dg, _ = backward(np.ones_like(out), cache, DeltaStateGrad(S=dS))
        for name, x, analytic in (("k", k, dk), ("beta", beta, dbeta), ("g", g, dg)):
            num = numerical_gradient(lambda y, name=name: loss(**{name: y}), x, np.array(1.0))
            assert rel_error(analytic, num) < 1e-7, name


# --- numerics ------------------------------------------------------------------------------------

@pytest.mark.no_cover        # 8192-step loops; the same lines run in the small tests
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gated", [False, True])
def test_long_sequences_stay_finite(dtype, gated):
    """T = 8192 with unit keys and beta in [0, 1]: the transition never expands, every form
    stays finite, and chunkwise agrees with recurrent (float32 within 1e-3)."""
    rng = np.random.default_rng(0)
    T = 8192
    q, k = rng.standard_normal((2, 1, 1, T, 8))
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    v = rng.standard_normal((1, 1, T, 4))
    beta = rng.uniform(0, 1, (1, 1, T))
    g = -rng.uniform(0, 1e-3, (1, 1, T)) if gated else None
    q, k, v, beta = (a.astype(dtype) for a in (q, k, v, beta))
    rec, s_rec, _ = delta_rule_recurrent(q, k, v, beta, log_decay=g)
    chk, s_chk, c_chk = delta_rule_chunkwise(q, k, v, beta, 64, log_decay=g)
    for a in (rec, chk, s_rec.S, s_chk.S):
        assert np.all(np.isfinite(a)) and a.dtype == dtype
    tol = 1e-3 if dtype == np.float32 else 1e-10
    assert rel_error(chk, rec) <= tol and rel_error(s_chk.S, s_rec.S) <= tol
    dout = np.ones_like(rec)
    for x in delta_rule_forms(64)["chunkwise"][1](dout, c_chk)[:4]:
        assert np.all(np.isfinite(x))


def test_unnormalised_keys_can_expand_the_memory():
    """The page's warning, measured: a key of norm 2 with beta = 1 has the eigenvalue
    1 - beta |k|^2 = -3 along k, and the memory grows without bound; the unit key does not."""
    d = 2
    k = np.zeros((1, 1, 40, d))
    k[..., 0] = 2.0
    v = np.zeros((1, 1, 40, 1))
    state = DeltaState(S=np.ones((1, 1, d, 1)), position=0)
    _, grown, _ = delta_rule_recurrent(k, k, v, np.ones((1, 1, 40)), state=state)
    _, kept, _ = delta_rule_recurrent(k / 2, k / 2, v, np.ones((1, 1, 40)), state=state)
    assert np.abs(grown.S).max() > 1e18 and np.abs(kept.S).max() <= 1.0


@given(problems(max_T=12), st.data())
def test_causality_and_inputs_not_mutated(p, data):
    t = data.draw(st.integers(0, p["T"] - 1))
    q, k, v, beta, g, _ = arrays(p)
    before = frozen_copies(q, k, v, beta)
    q2, v2 = q.copy(), v.copy()
    q2[:, :, t] += 1.0
    v2[:, :, t] -= 1.0
    for forward, _ in delta_rule_forms(p["chunk"]).values():
        np.testing.assert_array_equal(forward(q, k, v, beta, log_decay=g)[0][:, :, :t],
                                      forward(q2, k, v2, beta, log_decay=g)[0][:, :, :t])
    for a, b in zip((q, k, v, beta), before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_bad_inputs_are_named():
    rng = np.random.default_rng(0)
    q, k, v = rng.standard_normal((3, 1, 2, 5, 4))
    beta = rng.uniform(0, 1, (1, 2, 5))
    with pytest.raises(ValueError, match=r"beta must lie in \[0, 2\]"):
        delta_rule_parallel(q, k, v, beta + 2.5)
    with pytest.raises(ValueError, match="log_decay must be <= 0"):
        delta_rule_recurrent(q, k, v, beta, log_decay=np.full((1, 2, 5), 0.1))
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        delta_rule_chunkwise(q, k, v, beta, 0)
    with pytest.raises(ValueError, match=r"beta .* T = 4, but q .* T = 5"):
        delta_rule_parallel(q, k, v, beta[..., :4])
    with pytest.raises(TypeError, match="state must be a DeltaState"):
        delta_rule_recurrent(q, k, v, beta, state=np.zeros((1, 2, 4, 4)))
    with pytest.raises(ValueError, match="scale must be a number > 0"):
        delta_rule_recurrent(q, k, v, beta, scale=-1.0)
    _, _, cache = delta_rule_parallel(q, k, v, beta)
    with pytest.raises(ValueError, match="dout"):
        delta_rule_forms()["parallel"][1](v[..., :2], cache)
    with pytest.raises(TypeError, match="DeltaParallelCache"):
        delta_rule_forms()["recurrent"][1](v, cache)
