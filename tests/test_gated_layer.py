"""The multi-scale gated retention layer and its model: every form gives the same outputs and
gradients, the layer is gradchecked (the gate's parameters included), decoding one token at a
time equals the whole sequence, an untrained layer starts at RetNet's decays, and the gate is
what the model reads from the tokens."""

import numpy as np
import pytest
from helpers import GRAD_FLOOR, assert_gradcheck
from hypothesis import given
from hypothesis import strategies as st

from minirnn import (
    GatedConfig,
    GatedLM,
    check_gradients,
    gated_msr_backward,
    gated_msr_forward,
    gated_msr_gates,
    gated_msr_step,
    init_gated_msr_params,
    msr_forward,
    msr_gammas,
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
            "tau": draw(st.sampled_from([1.0, 4.0])),
            "gate_scale": draw(st.sampled_from([0.0, 3.0])),    # gates that vary a lot
            "seed": draw(st.integers(0, 2**16))}


def make(n):
    rng = np.random.default_rng(n["seed"])
    params = init_gated_msr_params(n["D"], n["h"], n["dv"], seed=n["seed"], tau=n["tau"])
    params["Wa"] = params["Wa"] + n["gate_scale"] * rng.standard_normal(params["Wa"].shape)
    x = rng.standard_normal((n["B"], n["T"], n["D"]))
    return x, params


def run(n, x, params, form, state=None):
    return gated_msr_forward(x, params, n["h"], form, chunk_size=n["chunk"], state=state,
                             tau=n["tau"])


@given(layers())
def test_forms_agree_and_decoding_token_by_token_equals_the_sequence(n):
    x, params = make(n)
    dy = np.random.default_rng(n["seed"] + 1).standard_normal(x.shape)
    y_ref, s_ref, c_ref = run(n, x, params, "parallel")
    dx_ref, g_ref, _ = gated_msr_backward(dy, c_ref)
    scale = max(np.abs(dx_ref).max(), *(np.abs(g).max() for g in g_ref.values()))
    for form in ("recurrent", "chunkwise"):
        y, state, cache = run(n, x, params, form)
        assert rel_error(y, y_ref) <= FORMS_TOL
        assert rel_error(state.S, s_ref.S) <= FORMS_TOL
        dx, grads, _ = gated_msr_backward(dy, cache)
        for a, b in [(dx, dx_ref)] + [(grads[k], g_ref[k]) for k in params]:
            err = np.max(np.abs(a - b)) / max(np.max(np.abs(a) + np.abs(b)), 1e-5 * scale)
            assert err <= FORMS_TOL
    ys, state = [], None
    for t in range(n["T"]):
        y, state = gated_msr_step(x[:, t], params, n["h"], state, tau=n["tau"])
        ys.append(y)
    assert rel_error(np.stack(ys, axis=1), y_ref) <= FORMS_TOL


@pytest.mark.no_cover   # finite differences, slow under line tracing; other tests cover the lines
@given(layers(max_T=5, small=True))
def test_gradcheck_every_form_including_the_gate(n):
    x, params = make(n)
    for form in ("parallel", "recurrent", "chunkwise"):
        report = check_gradients(lambda x, params, form=form: run(n, x, params, form),
                                 gated_msr_backward, {"x": x}, params, seed=n["seed"],
                                 floor=GRAD_FLOOR)
        assert_gradcheck(report)


@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_an_untrained_layer_is_retnets_layer(tau):
    """Wa starts at zero, so every gate starts at RetNet's decay (M.1) whatever the token, and
    the untrained gated layer gives the outputs of MSR with the same parameters; Wa still gets
    a gradient."""
    params = init_gated_msr_params(8, 4, 2, tau=tau)
    x = np.random.default_rng(0).standard_normal((2, 5, 8))
    g, _ = gated_msr_gates(x, params, tau=tau)
    np.testing.assert_allclose(np.exp(g), np.broadcast_to(msr_gammas(4)[:, None], (2, 4, 5)),
                               rtol=1e-12)
    msr_params = {k: v for k, v in params.items() if k not in ("Wa", "ba")}
    y_gated, _, cache = gated_msr_forward(x, params, 4, tau=tau)
    y_msr, _, _ = msr_forward(x, msr_params, 4)
    assert rel_error(y_gated, y_msr) <= 1e-12
    _, grads, _ = gated_msr_backward(np.ones_like(y_gated), cache)
    assert np.abs(grads["Wa"]).max() > 1e-6


def test_the_gate_is_finite_for_extreme_pre_activations():
    params = init_gated_msr_params(2, 1, 1)
    params["ba"] = np.array([-1e4])
    g, _ = gated_msr_gates(np.zeros((1, 2, 2)), params)
    assert np.all(np.isfinite(g)) and np.all(g <= 0) and g[0, 0, 0] == -1e4


def test_model_gates_and_errors():
    model = GatedLM(GatedConfig(6, d_model=4, n_heads=2, n_layers=2, dv=2, d_ff=8))
    params = model.init(0, dtype=np.float64)
    alpha = model.gates(params, np.array([[0, 1, 2, 3]]))
    assert alpha.shape == (2, 1, 2, 4) and np.all((alpha > 0) & (alpha <= 1))
    x, p = np.zeros((1, 3, 4)), init_gated_msr_params(4, 2, 2)
    with pytest.raises(ValueError, match="tau"):
        gated_msr_forward(x, p, 2, tau=0.0)
    with pytest.raises(ValueError, match="chunk_size"):
        gated_msr_forward(x, p, 2, form="chunkwise")
    with pytest.raises(ValueError, match="params is missing key"):
        gated_msr_forward(x, {k: v for k, v in p.items() if k != "Wa"}, 2)
    with pytest.raises(TypeError, match="GatedState"):
        gated_msr_step(x[:, 0], p, 2, state=(1, 2))
