"""The DeltaNet layer (plain and gated): every form gives the same outputs, state and
gradients, the layer is gradchecked (writing strengths and gate included), decoding token by token
equals the sequence, a sequence split in two calls equals one call, and the normalisation's
backward is right. Tolerances as in tests/test_delta.py: forms agree to a relative 1e-10 in
float64; gradients match central differences to 1e-7 (G.4)."""

import numpy as np
import pytest
from helpers import GRAD_FLOOR, assert_gradcheck, forms_error
from hypothesis import assume, given
from hypothesis import strategies as st

from minirnn import (
    DeltaState,
    check_gradients,
    deltanet_backward,
    deltanet_forward,
    deltanet_step,
    init_deltanet_params,
    l2_normalize,
    l2_normalize_backward,
    numerical_gradient,
    rel_error,
)

FORMS_TOL = 1e-10


@st.composite
def layers(draw, max_T=16, small=False):
    n_heads = draw(st.integers(1, 2 if small else 3))
    T = draw(st.integers(1, max_T))
    return {"B": draw(st.integers(1, 2)), "T": T, "h": n_heads,
            "D": n_heads * draw(st.sampled_from([2] if small else [2, 4])),
            "dv": draw(st.integers(1, 3)), "chunk": draw(st.integers(1, T + 2)),
            "gated": draw(st.booleans()), "tau": draw(st.sampled_from([1.0, 4.0])),
            "scale": draw(st.sampled_from([0.0, 2.0])),     # strengths and gates that vary
            "seed": draw(st.integers(0, 2**16))}


def make(n):
    rng = np.random.default_rng(n["seed"])
    params = init_deltanet_params(n["D"], n["h"], n["dv"], gated=n["gated"], seed=n["seed"],
                                  tau=n["tau"])
    for name in ("Wb", "Wa"):
        if name in params:
            params[name] = params[name] + n["scale"] * rng.standard_normal(params[name].shape)
    x = rng.standard_normal((n["B"], n["T"], n["D"]))
    return x, params


def run(n, x, params, form, state=None):
    return deltanet_forward(x, params, n["h"], form, chunk_size=n["chunk"], state=state,
                            tau=n["tau"])


@given(layers())
def test_forms_agree_and_decoding_token_by_token_equals_the_sequence(n):
    x, params = make(n)
    dy = np.random.default_rng(n["seed"] + 1).standard_normal(x.shape)
    y_ref, s_ref, c_ref = run(n, x, params, "recurrent")
    dx_ref, g_ref, ds_ref = deltanet_backward(dy, c_ref)
    scale = max(np.abs(dx_ref).max(), *(np.abs(g).max() for g in g_ref.values()))
    for form in ("parallel", "chunkwise"):
        y, state, cache = run(n, x, params, form)
        assert rel_error(y, y_ref) <= FORMS_TOL
        assert rel_error(state.S, s_ref.S) <= FORMS_TOL and state.position == n["T"]
        dx, grads, dstate_prev = deltanet_backward(dy, cache)
        assert forms_error(dx, dx_ref, scale) <= FORMS_TOL
        assert forms_error(dstate_prev.S, ds_ref.S, scale) <= FORMS_TOL
        assert grads.keys() == params.keys()
        for key in params:
            assert forms_error(grads[key], g_ref[key], scale) <= FORMS_TOL, key
    ys, state = [], None
    for t in range(n["T"]):
        y, state = deltanet_step(x[:, t], params, n["h"], state, tau=n["tau"])
        ys.append(y)
    assert rel_error(np.stack(ys, axis=1), y_ref) <= FORMS_TOL
    assert rel_error(state.S, s_ref.S) <= FORMS_TOL


@pytest.mark.no_cover   # finite differences, slow under line tracing; other tests cover the lines
@given(layers(max_T=5, small=True))
def test_gradcheck_every_form_including_strengths_and_gate(n):
    """Step 1e-7, not the default 1e-6: the normalisation curves like 1/||q||^2, so a short
    query (Hypothesis finds ||q|| = 0.008) puts the central difference's truncation error,
    which grows as step^2, above the tolerance (2.5e-7 at step 1e-6, 9e-10 at 1e-7). Even at
    1e-7 a key of length 0.0026 left 2.2e-7 (CI's profile found it): there the
    normalisation is close to singular and finite differences say nothing, so such draws are
    skipped here (the forms-agree property above still covers them)."""
    x, params = make(n)
    for W in ("Wq", "Wk"):
        heads = (x @ params[W]).reshape(*x.shape[:2], n["h"], -1)
        assume(np.linalg.norm(heads, axis=-1).min() > 0.01)
    for form in ("parallel", "recurrent", "chunkwise"):
        report = check_gradients(lambda x, params, form=form: run(n, x, params, form),
                                 deltanet_backward, {"x": x}, params, seed=n["seed"],
                                 eps=1e-7, floor=GRAD_FLOOR)
        assert_gradcheck(report)


@pytest.mark.parametrize("gated", [False, True])
def test_two_calls_equal_one_and_the_state_gradient_flows_back(gated):
    """The second call continues the first call's memory; its backward hands the first call the
    state's gradient, and the two calls' gradients add up to the one call's."""
    n = {"B": 2, "T": 9, "h": 2, "D": 4, "dv": 3, "chunk": 4, "gated": gated, "tau": 1.0,
         "scale": 2.0, "seed": 5}
    x, params = make(n)
    dy = np.random.default_rng(1).standard_normal(x.shape)
    y, state, cache = run(n, x, params, "chunkwise")
    dx, grads, _ = deltanet_backward(dy, cache)
    y1, s1, c1 = run(n, x[:, :4], params, "parallel")
    y2, s2, c2 = run(n, x[:, 4:], params, "recurrent", state=s1)
    assert rel_error(np.concatenate([y1, y2], axis=1), y) <= FORMS_TOL
    assert rel_error(s2.S, state.S) <= FORMS_TOL
    dx2, grads2, dstate1 = deltanet_backward(dy[:, 4:], c2)
    dx1, grads1, _ = deltanet_backward(dy[:, :4], c1, dstate1)
    assert rel_error(np.concatenate([dx1, dx2], axis=1), dx) <= FORMS_TOL
    for key in params:
        assert rel_error(grads1[key] + grads2[key], grads[key]) <= FORMS_TOL, key


def test_l2_normalize_makes_unit_vectors_and_its_backward_matches_finite_differences():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5)) * np.array([1e-3, 1.0, 1e3])[None, :, None]
    y, cache = l2_normalize(x)
    length = np.linalg.norm(x, axis=-1)
    np.testing.assert_allclose(np.linalg.norm(y, axis=-1), length / np.sqrt(length**2 + 1e-6),
                               rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(y[:, 2], axis=-1), 1.0, rtol=1e-9)   # long x
    dy = rng.standard_normal(y.shape)
    dx = l2_normalize_backward(dy, cache)
    for row in range(3):                        # one scale at a time: 1e-3, 1, 1e3
        fd = numerical_gradient(lambda a: l2_normalize(a)[0], x[:, row], dy[:, row],
                                eps=1e-6 * 10.0 ** (3 * row - 3))
        assert rel_error(dx[:, row], fd) <= 1e-6
    assert np.all(l2_normalize(np.zeros((1, 4)))[0] == 0.0)          # eps keeps it finite


def test_initial_layer_writes_with_half_strength_and_gated_starts_at_retnets_decays():
    params = init_deltanet_params(8, 4, 2, gated=True)
    assert np.all(params["Wb"] == 0) and np.all(params["bb"] == 0)      # beta = 1/2
    gammas = 1.0 / (1.0 + np.exp(-params["ba"]))
    np.testing.assert_allclose(gammas, 1.0 - 2.0 ** (-5.0 - np.arange(4)), rtol=1e-12)
    assert "Wa" not in init_deltanet_params(8, 4, 2)


def test_errors_name_the_argument():
    x, p = np.zeros((1, 3, 4)), init_deltanet_params(4, 2, 2)
    with pytest.raises(ValueError, match="chunk_size"):
        deltanet_forward(x, p, 2, form="chunkwise", chunk_size=None)
    with pytest.raises(ValueError, match="params is missing key"):
        deltanet_forward(x, {k: v for k, v in p.items() if k != "Wb"}, 2)
    with pytest.raises(ValueError, match="n_heads"):
        deltanet_forward(x, p, 3)
    with pytest.raises(TypeError, match="DeltaState"):
        deltanet_step(x[:, 0], p, 2, state=(1, 2))
    with pytest.raises(ValueError, match="state"):
        deltanet_step(x[:, 0], p, 2, state=DeltaState(S=np.zeros((1, 2, 3, 2)), position=0))


def test_the_models_memories_are_the_states_decoding_carries():
    from minirnn import DeltaNetConfig, DeltaNetLM
    model = DeltaNetLM(DeltaNetConfig(7, d_model=4, n_heads=2, n_layers=2, dv=2, d_ff=8,
                                      chunk_size=3))
    params = model.init(0, dtype=np.float64)
    tokens = np.array([[1, 2, 3, 4, 5], [0, 6, 6, 1, 2]])
    memories = model.memories(params, tokens)
    assert len(memories) == 5 and memories[0].shape == (2, 2, 2, 2, 2)
    for t in (0, 4):
        _, states = model.start(params, tokens[:, :t + 1])
        np.testing.assert_allclose(memories[t], np.stack([s.S for s in states]), rtol=1e-10,
                                   atol=1e-14)
