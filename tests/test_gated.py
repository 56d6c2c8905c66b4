"""Gated retention: the three forms agree (outputs, states and every gradient, including the
gates'), the constant gate is retention, the decay gradient is proven three ways (the identity
of (GR.7), the mask formula and finite differences), and long sequences stay finite.
Tolerances: forms agree to a relative 1e-10 in float64 (the observed gap is about 1e-15)."""

import numpy as np
import pytest
from helpers import GRAD_FLOOR, biggest, forms_error, frozen_copies
from hypothesis import assume, given
from hypothesis import strategies as st

from minirnn import (
    GatedState,
    GatedStateGrad,
    RetentionState,
    gated_retention_chunkwise,
    gated_retention_chunkwise_backward,
    gated_retention_final_state,
    gated_retention_forms,
    gated_retention_parallel,
    gated_retention_parallel_backward,
    gated_retention_recurrent,
    gated_retention_recurrent_backward,
    numerical_gradient,
    rel_error,
    retention_chunkwise,
    retention_chunkwise_backward,
    retention_decay_gradient,
    retention_forms,
    retention_parallel,
    retention_recurrent,
    retention_recurrent_backward,
    segment_decay,
)

FORMS_TOL = 1e-10
# log-gates from 0 (no decay) to very closed (-30: alpha = 1e-13)
log_gates = st.one_of(st.just(0.0), st.floats(-3.0, 0.0), st.just(-30.0), st.floats(-1e-4, 0.0))


@st.composite
def problems(draw, max_T=64, small=False):
    B, h = draw(st.integers(1, 2 if small else 3)), draw(st.integers(1, 2 if small else 3))
    T = draw(st.integers(1, max_T))
    return {"B": B, "h": h, "T": T, "d": draw(st.sampled_from([2, 4] if small else [2, 4, 6])),
            "dv": draw(st.integers(1, 3 if small else 5)),
            "gates": draw(st.lists(log_gates, min_size=1, max_size=8)),
            "chunk": draw(st.integers(1, T + 3)), "normalize": draw(st.booleans()),
            "scale": draw(st.sampled_from([0.3, 1.0, 3.0])), "seed": draw(st.integers(0, 2**16))}


def arrays(p, dtype=np.float64):
    """q, k, v, log_decay and dout; the gates are drawn from the problem's list."""
    rng = np.random.default_rng(p["seed"])
    shape = (p["B"], p["h"], p["T"])
    q = p["scale"] * rng.standard_normal((*shape, p["d"]))
    k = p["scale"] * rng.standard_normal((*shape, p["d"]))
    v = rng.standard_normal((*shape, p["dv"]))
    g = rng.choice(np.array(p["gates"]), size=shape)
    dout = rng.standard_normal(v.shape)
    return q.astype(dtype), k.astype(dtype), v.astype(dtype), g, dout.astype(dtype)


def random_state(p, rng, position=3):
    return GatedState(rng.standard_normal((p["B"], p["h"], p["d"], p["dv"])),
                      rng.standard_normal((p["B"], p["h"], p["d"])),
                      1.0 + 2.0 * rng.random((p["B"], p["h"])), position)


def random_dstate(p, rng):
    return GatedStateGrad(rng.standard_normal((p["B"], p["h"], p["d"], p["dv"])),
                          rng.standard_normal((p["B"], p["h"], p["d"])),
                          rng.standard_normal((p["B"], p["h"])))


def assert_close_all(got, ref, what):
    """Every pair within FORMS_TOL (see ``forms_error``), arrays far below the largest gradient
    ``scale`` of the problem compared in absolute terms. dq, dk, dv are floored at 1e-4 of
    ``scale`` (1e-14 scale absolute: with T = 1 and the clamp active dq is zero in exact
    arithmetic and each form returns its own 1e-15 of rounding). The gates' gradient (entry 3)
    is a reverse cumulative sum of T terms q.dq - k.dk of the size of the other gradients,
    which cancel where the gates are closed (dlog_decay ~ 1e-12 at g = -30); its rounding is
    about T 1e-16 times that size, so it is floored at 1e-3."""
    scale = biggest(*ref)
    for i, (a, b) in enumerate(zip(got, ref)):
        err = forms_error(a, b, scale, floor=1e-3 if i == 3 else 1e-4)
        assert err <= FORMS_TOL, (what, i, err)


def scalar_fd(f, x):
    """Central differences of a scalar function."""
    return numerical_gradient(lambda y: np.asarray(f(y)), x, np.array(1.0))


# --- the three forms agree ------------------------------------------------------------------

def flat(grads):
    """(dq, dk, dv, dlog_decay, dstate_prev) as one tuple of arrays."""
    return (*grads[:4], *grads[4])


@given(problems(), st.booleans())
def test_three_forms_agree_outputs_states_and_every_gradient(p, carried):
    """With and without a carried state and a gradient of the returned state: the same
    outputs, returned state and every gradient (the gates' and the incoming state's)."""
    q, k, v, g, dout = arrays(p)
    rng = np.random.default_rng(p["seed"] + 1)
    state, dstate = (random_state(p, rng), random_dstate(p, rng)) if carried else (None, None)
    results = {}
    for form, (forward, backward) in gated_retention_forms(p["chunk"]).items():
        out, final, cache = forward(q, k, v, g, state=state, normalize=p["normalize"])
        results[form] = (out, final, flat(backward(dout, cache, dstate)))
    op, sp, ref = results["parallel"]
    s_closed = gated_retention_final_state(k, v, g, state)
    assert_close_all(s_closed[:3], sp[:3], "closed-form state")
    for form in ("recurrent", "chunkwise"):
        out, final, grads = results[form]
        assert rel_error(out, op) <= FORMS_TOL, form
        assert_close_all(final[:3], sp[:3], "state")
        assert final.position == sp.position == p["T"] + (3 if carried else 0)
        assert_close_all(grads, ref, form)


@given(problems(), st.data())
def test_splitting_and_carrying_the_state_equals_one_call(p, data):
    assume(p["T"] >= 2)
    t = data.draw(st.integers(1, p["T"] - 1))
    q, k, v, g, dout = arrays(p)
    norm = p["normalize"]
    whole, _, cache = gated_retention_parallel(q, k, v, g, normalize=norm)
    ref = gated_retention_parallel_backward(dout, cache)[:4]
    for forward, backward in gated_retention_forms(p["chunk"]).values():
        first, second = slice(0, t), slice(t, None)
        o1, s1, c1 = forward(*(x[:, :, first] for x in (q, k, v, g)), normalize=norm)
        o2, _, c2 = forward(*(x[:, :, second] for x in (q, k, v, g)), state=s1, normalize=norm)
        assert rel_error(np.concatenate([o1, o2], axis=2), whole) <= FORMS_TOL
        *g2, ds = backward(dout[:, :, second], c2)
        *g1, _ = backward(dout[:, :, first], c1, ds)  # the count's gradient flows back too
        joined = [np.concatenate([a, b], axis=2) for a, b in zip(g1, g2, strict=True)]
        assert_close_all(joined, ref, "split")


# --- the constant gate is retention -----------------------------------------------------------

@given(problems(max_T=32), st.lists(st.floats(1e-3, 1.0), min_size=3, max_size=3))
def test_constant_log_decay_is_retention_in_every_form(p, gammas):
    q, k, v, _, dout = arrays(p)
    gamma = np.array(gammas[:p["h"]])
    g = np.broadcast_to(np.log(gamma)[None, :, None], (p["B"], p["h"], p["T"]))
    norm, C = p["normalize"], p["chunk"]
    gated, plain = gated_retention_forms(C), retention_forms(C)
    for form in ("parallel", "recurrent", "chunkwise"):
        og, _, cg = gated[form][0](q, k, v, g, normalize=norm)
        oret, _, cret = plain[form][0](q, k, v, gamma, normalize=norm)
        assert rel_error(og, oret) <= FORMS_TOL
        assert_close_all(gated[form][1](dout, cg)[:3], plain[form][1](dout, cret)[:3],
                         "dq dk dv")


# --- the decay gradient, proven three ways ---------------------------------------------------

def loss_of_mask(q, k, v, Dg, dout, normalize):
    """The parallel form written from an explicit mask: what (GR.3) computes, for the test."""
    scale = 1 / np.sqrt(q.shape[-1]) if normalize else 1.0
    kappa = 1 / np.sqrt(Dg.sum(-1, keepdims=True)) if normalize else 1.0
    R = (q * scale) @ np.swapaxes(k, -1, -2) * Dg * kappa
    r = R.sum(-1)
    c = np.maximum(np.abs(r), 1.0) if normalize else np.ones_like(r)
    return np.sum((R @ v) / c[..., None] * dout)


@given(problems(max_T=7, small=True))
def test_decay_gradient_equals_the_mask_formula_and_finite_differences(p):
    """(D.1): dg_t = sum over n >= t > m of Gamma^g[n, m] dGamma^g[n, m], with dGamma^g from finite
    differences of the loss in each mask entry, an independent route to the same number."""
    q, k, v, g, dout = arrays(p)
    g = np.maximum(g, -3.0)                      # keep every mask entry visible to the FD
    norm = p["normalize"]
    _, _, cache = gated_retention_parallel(q, k, v, g, normalize=norm)
    assume(np.all(np.abs(np.abs(cache.r) - 1.0) > 1e-3))          # away from the c kink
    dg = gated_retention_parallel_backward(dout, cache)[3]
    Dg = segment_decay(g)
    dDg = scalar_fd(lambda D: loss_of_mask(q, k, v, D, dout, norm), Dg)
    n, m = np.indices(Dg.shape[-2:])
    T = p["T"]
    mask_formula = np.stack([np.sum(Dg * dDg * ((n >= t) & (m < t)), axis=(-2, -1))
                             for t in range(T)], axis=-1)
    scale = max(1.0, float(np.abs(dg).max()))
    assert np.max(np.abs(dg - mask_formula)) / scale < 1e-7
    g = np.minimum(g, -1e-3)                     # central differences stay in g <= 0
    dg = gated_retention_parallel_backward(
        dout, gated_retention_parallel(q, k, v, g, normalize=norm)[2])[3]
    fd = scalar_fd(lambda x: loss_of_mask(q, k, v, segment_decay(x), dout, norm), g)
    assert np.max(np.abs(dg - fd)) / scale < 1e-6


# --- gradient checks --------------------------------------------------------------------------

def away_from_kink(r, delta=1e-4):
    assume(np.all(np.abs(np.abs(r) - 1.0) > delta))


@pytest.mark.no_cover   # finite differences, slow under line tracing; other tests cover the lines
@given(problems(max_T=8, small=True))
def test_gradcheck_every_form_with_state_in_and_out(p):
    """Every input, the incoming state (S, z and the count s) and the gates, against central
    differences. Gates are kept at or below -1e-3 so the differences stay in the domain g <= 0."""
    q, k, v, g, _ = arrays(p)
    g = np.minimum(g, -1e-3)
    norm, C = p["normalize"], p["chunk"]
    rng = np.random.default_rng(p["seed"] + 5)
    state, dstate = random_state(p, rng), random_dstate(p, rng)
    _, _, cp = gated_retention_parallel(q, k, v, g, state, norm)
    away_from_kink(cp.r)
    _, _, cr = gated_retention_recurrent(q, k, v, g, state, norm)
    away_from_kink(cr.r)
    for forward, backward in gated_retention_forms(C).values():
        def run(q, k, v, g, s, forward=forward):
            return forward(q, k, v, g, state=s, normalize=norm)

        inputs = {"q": q, "k": k, "v": v, "g": g, "S": state.S, "z": state.z, "s": state.s}
        loss = loss_with_state(run, dstate, inputs)
        analytic = flat(backward(loss.dout, loss.cache, dstate))
        largest = biggest(*analytic)
        for (name, x), a in zip(inputs.items(), analytic, strict=True):
            num = scalar_fd(lambda y, name=name, f=loss, at=inputs: f(**{**at, name: y}), x)
            err = np.max(np.abs(num - a)) / max(np.max(np.abs(num) + np.abs(a)),
                                                GRAD_FLOOR * largest)      # as check_gradients
            assert err < 1e-7, (name, err)


class loss_with_state:
    """sum(out * dout) + <dS, S_final> + <dz, z_final> + <ds, s_final>, for checking a backward
    that also receives the gradient of the returned state."""

    def __init__(self, run, dstate, inputs):
        self.run, self.dstate = run, dstate
        rng = np.random.default_rng(0)
        out, _, self.cache = self._call(**inputs)
        self.dout = rng.standard_normal(out.shape)

    def _call(self, q, k, v, g, S, z, s):
        return self.run(q, k, v, g, GatedState(S, z, s, 3))

    def __call__(self, **inputs):
        out, final, _ = self._call(**inputs)
        d = self.dstate
        return (np.sum(out * self.dout) + np.sum(final.S * d.S) + np.sum(final.z * d.z)
                + np.sum(final.s * d.s))


# --- retention's learnable decay (GR.8) --------------------------------------------------------

@given(problems(max_T=10, small=True), st.lists(st.floats(0.05, 1.0), min_size=2, max_size=2),
       st.data())
def test_retention_decay_gradient_matches_finite_differences_and_split_calls(p, gammas, data):
    """d gamma from any form's dq, dk equals central differences of the loss in gamma, also
    when the sequence is split over two calls and the count s carries gamma from the first
    into the second (D.7'): the later call's ds_prev goes into dfinal.s of the earlier one."""
    q, k, v, _, dout = arrays(p)
    gamma = np.minimum(np.array(gammas[:p["h"]]), 1.0 - 1e-6)       # FD steps stay in (0, 1]
    norm, C = p["normalize"], p["chunk"]
    state0 = random_state(p, np.random.default_rng(p["seed"]))
    state0 = RetentionState(state0.S, state0.z, np.full(p["h"], 2.5), 4)

    def loss(gam):
        return np.sum(retention_chunkwise(q, k, v, gam, C, state0, norm)[0] * dout)

    _, _, cache = retention_parallel(q, k, v, gamma, state0, norm)
    away_from_kink(cache.r)
    fd = scalar_fd(loss, gamma)
    _, _, cc = retention_chunkwise(q, k, v, gamma, C, state0, norm)
    dq, dk, _, _ = retention_chunkwise_backward(dout, cc)
    dgamma, _ = retention_decay_gradient(q, dq, k, dk, gamma, state0, normalize=norm)
    scale = max(1.0, float(np.abs(fd).max()))
    assert np.max(np.abs(dgamma - fd)) / scale < 1e-6
    if p["T"] >= 2:                                          # the same sequence in two calls
        t = data.draw(st.integers(1, p["T"] - 1))
        a, b = slice(0, t), slice(t, None)
        _, s1, c1 = retention_recurrent(q[:, :, a], k[:, :, a], v[:, :, a], gamma, state0, norm)
        _, _, c2 = retention_chunkwise(q[:, :, b], k[:, :, b], v[:, :, b], gamma, C, s1, norm)
        dq2, dk2, _, ds1 = retention_chunkwise_backward(dout[:, :, b], c2)
        g2, ds_prev = retention_decay_gradient(q[:, :, b], dq2, k[:, :, b], dk2, gamma, s1,
                                               normalize=norm)
        dq1, dk1, _, _ = retention_recurrent_backward(dout[:, :, a], c1, ds1)
        g1, _ = retention_decay_gradient(q[:, :, a], dq1, k[:, :, a], dk1, gamma, state0, s1,
                                         ds1._replace(s=ds_prev), norm)
        assert np.max(np.abs(g1 + g2 - dgamma)) / scale < 1e-10


# --- long sequences -----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gate", [0.0, -1e-4])
def test_long_sequences_stay_finite_and_forms_agree(dtype, gate):
    """T = 8192, gates at 0 (no decay at all) and at -1e-4: every form finite, and in float32
    the forms agree within 1e-3."""
    rng = np.random.default_rng(0)
    T = 8192
    q, k = rng.standard_normal((2, 1, 1, T, 4)).astype(dtype)
    v = rng.standard_normal((1, 1, T, 2)).astype(dtype)
    g = np.full((1, 1, T), gate) + rng.uniform(-1e-5, 0, (1, 1, T)) * (gate != 0)
    dout = rng.standard_normal(v.shape).astype(dtype)
    op, _, cp = gated_retention_parallel(q, k, v, g)
    oc, _, cc = gated_retention_chunkwise(q, k, v, g, 512)
    orr, _, cr = gated_retention_recurrent(q[:, :, -256:], k[:, :, -256:], v[:, :, -256:],
                                          g[:, :, -256:],
                                          gated_retention_final_state(k[:, :, :-256],
                                                                      v[:, :, :-256],
                                                                      g[:, :, :-256]))
    grads = [gated_retention_parallel_backward(dout, cp)[:4],
             gated_retention_chunkwise_backward(dout, cc)[:4],
             gated_retention_recurrent_backward(dout[:, :, -256:], cr)[:4]]
    for x in (op, oc, orr, *grads[0], *grads[1], *grads[2]):
        assert np.all(np.isfinite(x))
    tol = 1e-3 if dtype == np.float32 else 1e-10
    assert rel_error(oc, op) <= tol and rel_error(orr, op[:, :, -256:]) <= tol
    assert rel_error(grads[1][3], grads[0][3]) <= tol


# --- other properties -----------------------------------------------------------------------------

@given(problems(max_T=16), st.data())
def test_causality_and_inputs_not_mutated(p, data):
    t = data.draw(st.integers(0, p["T"] - 1))
    q, k, v, g, _ = arrays(p)
    before = frozen_copies(q, k, v, g)
    q2, k2, v2, g2 = q.copy(), k.copy(), v.copy(), g.copy()
    q2[:, :, t] += 1.0
    k2[:, :, t] -= 1.0
    g2[:, :, t] -= 0.5
    for run in (lambda *a: gated_retention_parallel(*a, normalize=p["normalize"])[0],
                lambda *a: gated_retention_recurrent(*a, normalize=p["normalize"])[0],
                lambda *a: gated_retention_chunkwise(*a, p["chunk"], normalize=p["normalize"])[0]):
        np.testing.assert_array_equal(run(q, k, v, g)[:, :, :t], run(q2, k2, v2, g2)[:, :, :t])
    for a, b in zip((q, k, v, g), before):
        np.testing.assert_array_equal(a, b)


def test_a_closed_gate_forgets_everything_before_it():
    """alpha_t = e^-30: the outputs from t on do not depend on anything before t."""
    rng = np.random.default_rng(3)
    q, k, v = rng.standard_normal((3, 1, 1, 10, 4))
    g = np.full((1, 1, 10), -0.1)
    g[..., 5] = -800.0                             # e^-800 is 0 in float64: an exact reset
    out, _, _ = gated_retention_parallel(q, k, v, g)
    v2 = v.copy()
    v2[..., :5, :] += 10.0
    out2, _, _ = gated_retention_parallel(q, k, v2, g)
    np.testing.assert_array_equal(out[..., 5:, :], out2[..., 5:, :])


@pytest.mark.parametrize("bad, message", [
    (lambda g: g + 0.5, "log_decay must be <= 0"),
    (lambda g: np.where(g == g.min(), np.nan, g), "non-finite"),
    (lambda g: g[..., :-1], "log_decay"),
])
def test_bad_log_decay_is_named(bad, message):
    rng = np.random.default_rng(0)
    q, k, v = rng.standard_normal((3, 1, 2, 5, 4))
    g = -rng.random((1, 2, 5))
    for call in (lambda g: gated_retention_parallel(q, k, v, g),
                 lambda g: gated_retention_recurrent(q, k, v, g),
                 lambda g: gated_retention_chunkwise(q, k, v, g, 2)):
        with pytest.raises(ValueError, match=message):
            call(bad(g))
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        gated_retention_chunkwise(q, k, v, g, 0)
