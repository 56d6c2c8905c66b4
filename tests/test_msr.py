"""Multi-scale retention: the layer gives the same outputs and gradients in every form (also
with group-norm eps > 0), is gradchecked, continues across calls, and decodes in O(1)."""

import numpy as np
import pytest
from helpers import GRAD_FLOOR, assert_gradcheck, frozen_copies
from hypothesis import given, settings
from hypothesis import strategies as st

from minirnn import (
    RetentionState,
    check_gradients,
    group_norm_backward,
    group_norm_forward,
    init_msr_params,
    msr_backward,
    msr_forward,
    msr_gammas,
    msr_step,
    rel_error,
    rotate,
    rotation_angles,
    rotation_phases,
    rotation_table,
)

FORMS_TOL = 1e-10   # float64, same function up to summation order (observed ~1e-16)


@st.composite
def layers(draw, max_T=24, small=False):
    """Sizes of one layer; small ones for finite differences (2 forwards per parameter)."""
    n_heads = draw(st.integers(1, 2 if small else 3))
    T = draw(st.integers(1, max_T))
    return {"B": draw(st.integers(1, 2)), "T": T, "n_heads": n_heads,
            "D": n_heads * draw(st.sampled_from([2] if small else [2, 4])),
            "dv": draw(st.integers(1, 3 if small else 4)),
            "chunk": draw(st.integers(1, T + 3)), "eps": draw(st.sampled_from([1e-5, 1e-2])),
            "learn": draw(st.booleans()),         # learned decays (M.6), moved off the paper's
            "seed": draw(st.integers(0, 2**16))}


def make(n, dtype=np.float64):
    rng = np.random.default_rng(n["seed"])
    params = init_msr_params(n["D"], n["n_heads"], n["dv"], seed=n["seed"], dtype=dtype,
                             learn_decay=n.get("learn", False))
    if "decay_logit" in params:
        params["decay_logit"] += rng.normal(0.0, 2.0, n["n_heads"]).astype(dtype)
    params["gn_w"] = (1 + 0.2 * rng.standard_normal(params["gn_w"].shape)).astype(dtype)
    params["gn_b"] = (0.2 * rng.standard_normal(params["gn_b"].shape)).astype(dtype)
    x = rng.standard_normal((n["B"], n["T"], n["D"])).astype(dtype)
    return x, params


def run(n, x, params, form, state=None):
    return msr_forward(x, params, n["n_heads"], form, chunk_size=n["chunk"], state=state,
                       eps=n["eps"])


@given(layers())
def test_forms_agree_for_the_whole_layer(n):
    x, params = make(n)
    dy = np.random.default_rng(n["seed"] + 1).standard_normal(x.shape)
    y_ref, s_ref, c_ref = run(n, x, params, "parallel")
    dx_ref, g_ref, _ = msr_backward(dy, c_ref)
    scale = max(np.abs(dx_ref).max(), *(np.abs(g).max() for g in g_ref.values()))
    for form in ("recurrent", "chunkwise"):
        y, state, cache = run(n, x, params, form)
        assert rel_error(y, y_ref) <= FORMS_TOL
        assert rel_error(state.S, s_ref.S) <= FORMS_TOL and state.position == n["T"]
        dx, grads, _ = msr_backward(dy, cache)
        for a, b in [(dx, dx_ref)] + [(grads[k], g_ref[k]) for k in params]:
            # arrays far below the largest gradient are compared absolutely (see retention)
            err = np.max(np.abs(a - b)) / max(np.max(np.abs(a) + np.abs(b)), 1e-5 * scale)
            assert err <= FORMS_TOL


@pytest.mark.no_cover   # finite differences, slow under line tracing; other tests cover the lines
@given(layers(max_T=5, small=True))
def test_gradcheck_every_form(n):
    x, params = make(n)
    for form in ("parallel", "recurrent", "chunkwise"):
        report = check_gradients(lambda x, params, form=form: run(n, x, params, form),
                                 msr_backward, {"x": x}, params, seed=n["seed"],
                                 floor=GRAD_FLOOR)
        assert_gradcheck(report)


@given(layers(), st.data())
def test_split_calls_and_token_by_token_decoding_continue_positions(n, data):
    x, params = make(n)
    whole, _, _ = run(n, x, params, "parallel")
    if n["T"] >= 2:
        t = data.draw(st.integers(1, n["T"] - 1))
        first_form = data.draw(st.sampled_from(["parallel", "recurrent", "chunkwise"]))
        y1, s1, _ = run(n, x[:, :t], params, first_form)
        y2, s2, _ = run(n, x[:, t:], params, data.draw(st.sampled_from(["parallel", "recurrent",
                                                                          "chunkwise"])), s1)
        assert s2.position == n["T"]
        assert rel_error(np.concatenate([y1, y2], axis=1), whole) <= FORMS_TOL
    ys, state = [], None
    for t in range(n["T"]):
        y, state = msr_step(x[:, t], params, n["n_heads"], state, eps=n["eps"])
        ys.append(y)
    assert rel_error(np.stack(ys, axis=1), whole) <= FORMS_TOL


@given(layers(max_T=12), st.data())
def test_causality(n, data):
    x, params = make(n)
    t = data.draw(st.integers(0, n["T"] - 1))
    x2 = x.copy()
    x2[:, t] += 1.0
    for form in ("parallel", "recurrent", "chunkwise"):
        np.testing.assert_array_equal(run(n, x, params, form)[0][:, :t],
                                      run(n, x2, params, form)[0][:, :t])


@given(layers(max_T=12))
def test_inputs_not_mutated_and_float32(n):
    x, params = make(n, np.float32)
    before = frozen_copies(x, *params.values())
    for form in ("parallel", "recurrent", "chunkwise"):
        y, state, cache = run(n, x, params, form)
        dx, grads, _ = msr_backward(np.ones_like(y), cache)
        assert y.dtype == dx.dtype == state.S.dtype == np.float32, form
        assert grads.keys() == params.keys(), form           # every gradient is checked
        assert all(g.dtype == np.float32 for g in grads.values()), form
    for a, b in zip([x, *params.values()], before, strict=True):
        np.testing.assert_array_equal(a, b)
    x64, p64 = x.astype(np.float64), {k: v.astype(np.float64) for k, v in params.items()}
    np.testing.assert_allclose(run(n, x, params, "chunkwise")[0],
                               run(n, x64, p64, "parallel")[0], rtol=1e-3, atol=1e-4)


# --- pieces -----------------------------------------------------------------------------------

def test_learned_decays_start_at_the_papers_and_stay_in_0_1():
    params = init_msr_params(8, 4, 2, learn_decay=True)
    np.testing.assert_allclose(msr_gammas(4, params), msr_gammas(4), rtol=1e-12)
    params["decay_logit"] = np.array([-800.0, -3.0, 3.0, 800.0])
    gamma = msr_gammas(4, params)
    assert np.all((gamma >= 0) & (gamma <= 1)) and gamma[0] < 1e-300 and gamma[-1] == 1.0


def test_paper_decays():
    np.testing.assert_array_equal(msr_gammas(3), [1 - 1 / 32, 1 - 1 / 64, 1 - 1 / 128])


@given(st.integers(1, 4), st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 2**16))
def test_rotation_is_relative_orthogonal_and_invertible(half_d, n, m, seed):
    rng = np.random.default_rng(seed)
    q, k = rng.standard_normal((2, 1, 2 * half_d))
    score = rotate(q, n)[0] @ rotate(k, m)[0]
    shifted = rotate(q, n + 37)[0] @ rotate(k, m + 37)[0]
    np.testing.assert_allclose(score, shifted, rtol=1e-9, atol=1e-9)   # depends on n - m only
    np.testing.assert_allclose(np.linalg.norm(rotate(q, n)), np.linalg.norm(q), rtol=1e-12)
    np.testing.assert_allclose(rotate(rotate(q, n), n, inverse=True), q, atol=1e-12)


def test_rotation_is_m2_written_out_call_after_call_in_either_dtype():
    # the cos and sin tables are kept between calls (per start, T, d and dtype): the same
    # positions again, another dtype, or an inverse rotation in between must not change them
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 8))
    theta = 10000.0 ** -(np.arange(4) / 3)                          # (M.2), d = 8
    angle = (7 + np.arange(5))[:, None] * theta                      # positions 7 .. 11
    expected = np.empty_like(x)
    expected[..., 0::2] = x[..., 0::2] * np.cos(angle) - x[..., 1::2] * np.sin(angle)
    expected[..., 1::2] = x[..., 1::2] * np.cos(angle) + x[..., 0::2] * np.sin(angle)
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5), (np.float64, 1e-12)):
        for _ in range(2):
            out = rotate(x.astype(dtype), 7)
            assert out.dtype == dtype
            np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)
            np.testing.assert_allclose(rotate(out, 7, inverse=True), x, rtol=tol, atol=tol)


def test_rotation_table_is_kept_read_only_and_checks_its_arguments():
    cos, sin = rotation_table(3, 4, 8, np.float32)
    assert cos.shape == sin.shape == (4, 4) and cos.dtype == np.float32
    assert rotation_table(3, 4, 8, np.float32)[0].base is cos.base  # kept, not recomputed
    with pytest.raises(ValueError, match="read-only"):
        cos[0, 0] = 2.0                                              # shared by later calls
    np.testing.assert_allclose(sin, np.sin((3 + np.arange(4))[:, None] * rotation_angles(8)),
                               rtol=1e-6)
    for args, error, words in (((-1, 4, 8), ValueError, "start must be >= 0"),
                               ((0, 0, 8), ValueError, "T must be >= 1"),
                               ((0, 4, 7), ValueError, "d must be even"),
                               ((0, 2.0, 8), TypeError, "T must be an integer"),
                               ((0, 4, 8, np.int64), TypeError, "dtype must be float32"),
                               ((0, 4, 8, "half"), TypeError, "dtype must be float32")):
        with pytest.raises(error, match=words):
            rotation_table(*args)



def test_rotation_tables_serve_a_decoding_loop_without_recomputing():
    # one new position per token reads rows of the kept table, grown to the next power of two;
    # positions past the kept range are computed per call; every row is eq. (M.2)'s formula
    from minirnn import msr
    from minirnn._checks import core
    tables = []                                    # held, so that no two tables share an id
    for n in range(100, 400):
        cos, sin = rotation_table(n, 1, 6, np.float64)
        if not any(cos.base is table for table in tables):
            tables.append(cos.base)
        angles = n * rotation_angles(6)
        np.testing.assert_array_equal(cos[0], np.cos(angles))
        np.testing.assert_array_equal(sin[0], np.sin(angles))
    assert len(tables) <= 3                                         # 128, 256, 512 rows
    far = msr._ROTATION_ROWS_KEPT + 5
    cos, _ = rotation_table(far, 2, 6, np.float64)
    np.testing.assert_array_equal(cos, np.cos((far + np.arange(2))[:, None] * rotation_angles(6)))
    assert len(msr._ROTATION_TABLES[(6, np.dtype(np.float64))][0]) <= msr._ROTATION_ROWS_KEPT
    with core.trusted():                           # unchecked, a position may be a NumPy integer
        np.testing.assert_array_equal(rotation_table(np.int64(900), 1, 6, np.float32)[1],
                                      np.sin(900 * rotation_angles(6)).astype(np.float32)[None])


def test_rotation_reads_pairs_from_any_layout():
    # rotate reads each pair as one complex number, which needs the pairs side by side in
    # memory: the heads of split_heads (a transposed view), a reversed or strided last axis,
    # and a float32 view must all give eq. (M.2) as written out on a fresh copy
    rng = np.random.default_rng(1)
    base = rng.standard_normal((2, 6, 3, 16))
    for x in (base.transpose(0, 2, 1, 3), base[..., ::-1], base[..., ::2], base[:, ::2],
              base.astype(np.float32).transpose(0, 2, 1, 3)):
        expected = rotate(np.array(x), 4)
        np.testing.assert_array_equal(rotate(x, 4), expected)
        assert rotate(x, 4).shape == x.shape and rotate(x, 4).dtype == x.dtype


def test_rotation_phases_are_cos_plus_i_sin_kept_read_only():
    for dtype, complex_dtype in ((np.float32, np.complex64), (np.float64, np.complex128)):
        phase = rotation_phases(3, 4, 8, dtype)
        cos, sin = rotation_table(3, 4, 8, dtype)
        assert phase.dtype == complex_dtype and phase.shape == (4, 4)
        np.testing.assert_array_equal(phase.real, cos)
        np.testing.assert_array_equal(phase.imag, sin)
        assert rotation_phases(3, 4, 8, dtype).base is phase.base    # kept, not recomputed
        with pytest.raises(ValueError, match="read-only"):
            phase[0, 0] = 1.0
    with pytest.raises(ValueError, match="rotation_phases: T must be >= 1"):
        rotation_phases(0, 0, 8)
    with pytest.raises(TypeError, match="rotation_phases: dtype must be float32"):
        rotation_phases(0, 4, 8, np.int32)

# dv >= 3 for the same reason as layer norm's D >= 3 (test_layers.py)
@given(st.integers(1, 3), st.integers(1, 5), st.integers(3, 5), st.integers(0, 2**16))
def test_group_norm_gradcheck_and_scale_invariance(T, h, dv, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, T, h, dv))
    w, b = 1 + 0.3 * rng.standard_normal((2, h, dv))
    report = check_gradients(lambda x, params: group_norm_forward(x, params["w"], params["b"]),
                             lambda d, c: (lambda dx, dw, db: (dx, {"w": dw, "b": db}))(
                                 *group_norm_backward(d, c)),
                             {"x": x}, {"w": w, "b": b}, seed=seed, floor=GRAD_FLOOR)
    assert_gradcheck(report)
    y, cache = group_norm_forward(x, w, b, eps=0.0)
    y2, _ = group_norm_forward(3.7 * x, w, b, eps=0.0)
    np.testing.assert_allclose(y2, y, rtol=1e-12, atol=1e-12)      # scale invariant at eps = 0
    dy = rng.standard_normal(y.shape)
    dx, _, _ = group_norm_backward(dy, cache)
    # <dL/dx, x> = 0 per (token, head): the norm cannot feel a rescaling of its group. Judged
    # against the size of the terms that cancel, |dy * w| / sigma * |x| (sigma can be tiny).
    inner = np.abs(np.sum(dx * x, axis=-1))
    terms = np.linalg.norm(dy * w, axis=-1) / cache.sigma[..., 0] * np.linalg.norm(x, axis=-1)
    assert np.all(inner <= 1e-12 * terms)


def test_bad_inputs():
    n = {"B": 1, "T": 4, "n_heads": 2, "D": 8, "dv": 3, "chunk": 2, "eps": 1e-5, "seed": 0}
    x, params = make(n)
    with pytest.raises(ValueError, match=r"key width per head d = D / n_heads = 3 must be even"):
        init_msr_params(6, 2, 3)
    with pytest.raises(ValueError, match=r"d = D / n_heads = 1 must be even"):
        msr_forward(x, params, 8)
    with pytest.raises(ValueError, match="form must be one of"):
        msr_forward(x, params, 2, form="sideways")
    with pytest.raises(ValueError, match="chunkwise form needs chunk_size"):
        msr_forward(x, params, 2, form="chunkwise")
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        msr_forward(x, params, 2, form="chunkwise", chunk_size=0)
    _, state, _ = msr_forward(x, params, 2)
    bad = RetentionState(state.S[:, :1], state.z[:, :1], state.s[:1], 4)
    with pytest.raises(ValueError, match=r"state.S .* h = 1, but"):
        msr_forward(x, params, 2, form="recurrent", state=bad)
    with pytest.raises(ValueError, match=r"params\['gn_w'\] has shape \(3, 2\)"):
        msr_forward(x, {**params, "gn_w": np.ones((3, 2)), "gn_b": np.zeros((3, 2))}, 2)
    with pytest.raises(ValueError, match="eps must be a number >= 0"):
        msr_forward(x, params, 2, eps=-1.0)
    with pytest.raises(ValueError, match="x must have 2 dimensions"):
        msr_step(x, params, 2)
    with pytest.raises(ValueError, match="needs an even d"):
        rotate(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="constant and eps = 0"):
        group_norm_forward(np.ones((2, 1, 3)), np.ones((1, 3)), np.zeros((1, 3)), eps=0.0)


@given(layers(max_T=4, small=True), st.integers(1, 50))
@settings(max_examples=min(settings.default.max_examples, 20))
def test_gradcheck_continuing_from_a_state(n, position):
    """Gradients of a call that continues a sequence: rotations at positions >= 1."""
    x, params = make(n)
    rng = np.random.default_rng(n["seed"] + 2)
    h, d = n["n_heads"], n["D"] // n["n_heads"]
    state = RetentionState(rng.standard_normal((n["B"], h, d, n["dv"])),
                           rng.standard_normal((n["B"], h, d)), np.full(h, 3.0), position)
    for form in ("parallel", "recurrent", "chunkwise"):
        report = check_gradients(
            lambda x, params, form=form: run(n, x, params, form, state),
            msr_backward, {"x": x}, params, seed=n["seed"], floor=GRAD_FLOOR)
        assert_gradcheck(report)


def test_msr_defaults_and_edges():
    n = {"B": 1, "T": 3, "n_heads": 2, "D": 4, "dv": 2, "chunk": 2, "eps": 1e-5, "seed": 3}
    x, params = make(n)
    default = msr_forward(x, params, 2)[0]
    assert np.array_equal(default, msr_forward(x, params, 2, eps=1e-5)[0])
    assert np.array_equal(msr_step(x[:, 0], params, 2)[0],
                          msr_step(x[:, 0], params, 2, eps=1e-5)[0])
    assert np.all(np.isfinite(msr_forward(x, params, 2, eps=0.0)[0]))     # eps = 0 allowed
    fresh = RetentionState(np.zeros((1, 2, 2, 2)), np.zeros((1, 2, 2)), np.zeros(2), 0)
    assert np.allclose(msr_forward(x, params, 2, "recurrent", state=fresh)[0], default)
    # group norm on a single group of shape (h, dv): no leading axes at all
    xg = np.random.default_rng(0).standard_normal((2, 3))
    y, _ = group_norm_forward(xg, np.ones((2, 3)), np.zeros((2, 3)))
    np.testing.assert_allclose(y.mean(axis=-1), 0, atol=1e-12)


@given(layers(max_T=10), st.data())
@settings(max_examples=min(settings.default.max_examples, 25))
def test_split_calls_give_one_calls_gradients_with_learned_decays(n, data):
    """A sequence split over two calls, the second's state gradient handed to the first's
    backward, gives the gradients of one call: also d(decay_logit), through the count (GR.8)."""
    n = {**n, "learn": True}
    x, params = make(n)
    if n["T"] < 2:
        return
    t = data.draw(st.integers(1, n["T"] - 1))
    forms = [data.draw(st.sampled_from(["parallel", "recurrent", "chunkwise"])) for _ in "ab"]
    dy = np.random.default_rng(n["seed"] + 5).standard_normal(x.shape)
    _, _, whole = run(n, x, params, "parallel")
    dx_ref, g_ref, _ = msr_backward(dy, whole)
    _, s1, c1 = run(n, x[:, :t], params, forms[0])
    _, _, c2 = run(n, x[:, t:], params, forms[1], s1)
    dx2, g2, dstate = msr_backward(dy[:, t:], c2)
    assert dstate.s is not None                      # the count's gradient is handed back
    dx1, g1, _ = msr_backward(dy[:, :t], c1, dstate)
    assert rel_error(np.concatenate([dx1, dx2], axis=1), dx_ref) <= FORMS_TOL
    scale = max(np.abs(g).max() for g in g_ref.values())
    for key in params:
        a, b = g1[key] + g2[key], g_ref[key]
        assert np.max(np.abs(a - b)) <= FORMS_TOL * max(np.max(np.abs(b)), 1e-3 * scale), key
