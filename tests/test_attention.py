import numpy as np
import pytest
from helpers import GRAD_FLOOR, assert_gradcheck, frozen_copies, randn
from hypothesis import given
from hypothesis import strategies as st

from minirnn import (
    KVCache,
    attention_backward,
    attention_forward,
    causal_mask,
    check_gradients,
    init_kv_cache,
    init_mha_params,
    mha_backward,
    mha_forward,
    mha_step,
    softmax_backward,
    softmax_forward,
)

seeds = st.integers(0, 2**16)


@st.composite
def attention_sizes(draw, causal=None):
    Tk = draw(st.integers(1, 7))
    return {
        "B": draw(st.integers(1, 2)), "h": draw(st.integers(1, 3)),
        "Tq": draw(st.integers(1, Tk)), "Tk": Tk, "d": draw(st.integers(1, 4)),
        "dv": draw(st.integers(1, 4)), "seed": draw(seeds),
        "causal": draw(st.booleans()) if causal is None else causal,
    }


def qkv(B, h, Tq, Tk, d, dv, seed, dtype=np.float64, **_):
    rng = np.random.default_rng(seed)
    return (randn(rng, B, h, Tq, d, dtype=dtype), randn(rng, B, h, Tk, d, dtype=dtype),
            randn(rng, B, h, Tk, dv, dtype=dtype))


@st.composite
def layer_sizes(draw):
    n_heads = draw(st.integers(1, 3))
    return {"B": draw(st.integers(1, 2)), "T": draw(st.integers(1, 7)),
            "D": n_heads * draw(st.integers(1, 3)), "n_heads": n_heads,
            "seed": draw(seeds), "bias": draw(st.booleans())}


def layer(B, T, D, n_heads, seed, bias, dtype=np.float64):
    params = init_mha_params(D, n_heads, seed=seed, bias=bias, dtype=dtype)
    rng = np.random.default_rng([seed, 7])
    if bias:   # nonzero biases, so their gradients are exercised
        params.update({k: 0.3 * randn(rng, D, dtype=dtype) for k in ("bq", "bv", "bo")})
    return randn(rng, B, T, D, dtype=dtype), params


# --- softmax ------------------------------------------------------------------------------

@given(st.integers(1, 3), st.integers(1, 6), seeds, st.sampled_from([-1, 0, 1]))
def test_softmax_gradcheck(B, n, seed, axis):
    x = randn(np.random.default_rng(seed), B, n)
    report = check_gradients(lambda x: softmax_forward(x, axis=axis), softmax_backward, {"x": x},
                             seed=seed, floor=GRAD_FLOOR)
    assert_gradcheck(report)


@given(st.integers(1, 4), st.integers(1, 8), seeds, st.floats(-1e4, 1e4))
def test_softmax_rows_sum_to_one_and_shift_invariance(B, n, seed, shift):
    x = 10 * randn(np.random.default_rng(seed), B, n)
    y, _ = softmax_forward(x)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-12)
    assert np.all(y >= 0)
    row_shift = shift * np.linspace(0, 1, B)[:, None]        # a different constant per row
    y2, _ = softmax_forward(x + row_shift)
    # the shift changes rounding of x itself by up to ulp(1e4) ~ 2e-12, so exp() by ~1e-11
    np.testing.assert_allclose(y2, y, rtol=1e-9, atol=1e-12)


@given(st.integers(1, 4), st.integers(1, 8), seeds)
def test_softmax_huge_logits_stay_finite(B, n, seed):
    x = 1e4 * np.sign(randn(np.random.default_rng(seed), B, n))
    y, cache = softmax_forward(x)
    dx = softmax_backward(np.ones_like(y), cache)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))


def test_softmax_backward_is_not_the_naive_gradient():
    """Missing the subtraction term (dx = y * dy) is the classic bug; make sure it differs."""
    x = np.array([[1.0, 2.0, 3.0]])
    y, cache = softmax_forward(x)
    dy = np.array([[0.3, -1.0, 2.0]])
    assert not np.allclose(softmax_backward(dy, cache), y * dy)
    jac = np.diag(y[0]) - np.outer(y[0], y[0])      # the full Jacobian, for this tiny case only
    np.testing.assert_allclose(softmax_backward(dy, cache)[0], jac @ dy[0], rtol=1e-14)


# --- attention ----------------------------------------------------------------------------

@given(attention_sizes())
def test_attention_gradcheck(n):
    q, k, v = qkv(**n)

    def forward(q, k, v):
        return attention_forward(q, k, v, causal=n["causal"])

    assert_gradcheck(check_gradients(forward, attention_backward, {"q": q, "k": k, "v": v},
                                     seed=n["seed"], floor=GRAD_FLOOR))


@given(attention_sizes(causal=True), st.data())
def test_causality(n, data):
    q, k, v = qkv(**{**n, "Tq": n["Tk"]})
    t = data.draw(st.integers(0, n["Tk"] - 1))
    out, _ = attention_forward(q, k, v)
    k2, v2, q2 = k.copy(), v.copy(), q.copy()
    k2[:, :, t] += 1.0
    v2[:, :, t] -= 2.0
    q2[:, :, t] *= 3.0
    out2, _ = attention_forward(q2, k2, v2)
    np.testing.assert_array_equal(out[:, :, :t], out2[:, :, :t])   # exactly unchanged


@given(attention_sizes(causal=False), st.randoms(use_true_random=False))
def test_non_causal_is_permutation_invariant_in_keys(n, random):
    q, k, v = qkv(**n)
    perm = list(range(n["Tk"]))
    random.shuffle(perm)
    out, _ = attention_forward(q, k, v, causal=False)
    out_p, _ = attention_forward(q, k[:, :, perm], v[:, :, perm], causal=False)
    np.testing.assert_allclose(out_p, out, rtol=1e-12, atol=1e-13)


@given(attention_sizes())
def test_attention_rows_are_convex_combinations(n):
    q, k, v = qkv(**n)
    _, cache = attention_forward(q, k, v, causal=n["causal"])
    np.testing.assert_allclose(cache.P.sum(-1), 1.0, rtol=1e-12)
    if n["causal"]:
        assert np.all(cache.P[..., ~causal_mask(n["Tq"], n["Tk"])] == 0.0)


@given(attention_sizes(), st.sampled_from([1e2, 1e4]))
def test_attention_huge_logits_finite(n, scale):
    q, k, v = qkv(**n)
    out, cache = attention_forward(scale * q, scale * k, v, causal=n["causal"])
    grads = attention_backward(np.ones_like(out), cache)
    assert np.all(np.isfinite(out)) and all(np.all(np.isfinite(g)) for g in grads)


@given(attention_sizes(), st.floats(-5, 5))
def test_a_key_bias_cannot_change_attention(n, shift):
    """Why the layer has no key bias: q . (k + b) shifts a whole score row, softmax ignores it."""
    q, k, v = qkv(**n)
    b = shift * np.random.default_rng(n["seed"]).standard_normal(n["d"])
    out, _ = attention_forward(q, k, v, causal=n["causal"])
    out_b, _ = attention_forward(q, k + b, v, causal=n["causal"])
    np.testing.assert_allclose(out_b, out, rtol=1e-9, atol=1e-11)


def test_causal_mask_alignment():
    np.testing.assert_array_equal(causal_mask(2, 4), [[1, 1, 1, 0], [1, 1, 1, 1]])
    np.testing.assert_array_equal(causal_mask(3, 3), np.tril(np.ones((3, 3), bool)))
    with pytest.raises(ValueError, match="Tq <= Tk"):
        causal_mask(4, 2)


# --- multi-head layer ---------------------------------------------------------------------

@given(layer_sizes(), st.booleans())
def test_mha_gradcheck(n, causal):
    x, params = layer(**n)

    def forward(x, params):
        return mha_forward(x, params, n["n_heads"], causal=causal)

    assert_gradcheck(check_gradients(forward, mha_backward, {"x": x}, params, seed=n["seed"],
                                     floor=GRAD_FLOOR))


@given(layer_sizes(), st.data())
def test_mha_causality(n, data):
    x, params = layer(**n)
    t = data.draw(st.integers(0, n["T"] - 1))
    y, _ = mha_forward(x, params, n["n_heads"])
    x2 = x.copy()
    x2[:, t] += 1.0
    y2, _ = mha_forward(x2, params, n["n_heads"])
    np.testing.assert_array_equal(y[:, :t], y2[:, :t])


@given(layer_sizes(), st.data())
def test_kv_cache_decoding_equals_full_forward(n, data):
    x, params = layer(**n)
    full, _ = mha_forward(x, params, n["n_heads"], causal=True)
    # token by token, starting from a deliberately tiny capacity so the cache must grow
    cache = init_kv_cache(n["B"], n["D"], n["n_heads"], capacity=1)
    steps = [mha_step(x[:, t], params, n["n_heads"], cache)[0] for t in range(n["T"])]
    # float64, same operations up to summation order: agreement to rounding (rel <= 1e-12)
    np.testing.assert_allclose(np.stack(steps, axis=1), full, rtol=1e-12, atol=1e-12)
    assert cache.length == n["T"]
    # a prompt of several tokens at once, then single tokens
    split = data.draw(st.integers(1, n["T"]))
    y_prompt, cache2 = mha_step(x[:, :split], params, n["n_heads"])
    rest = [mha_step(x[:, t], params, n["n_heads"], cache2)[0] for t in range(split, n["T"])]
    got = np.concatenate([y_prompt] + [r[:, None] for r in rest], axis=1)
    np.testing.assert_allclose(got, full, rtol=1e-12, atol=1e-12)


@given(layer_sizes())
def test_inputs_not_mutated_and_float32(n):
    x, params = layer(**n, dtype=np.float32)
    before = frozen_copies(x, *params.values())
    y, cache = mha_forward(x, params, n["n_heads"])
    dx, grads = mha_backward(np.ones_like(y), cache)
    for a, b in zip([x, *params.values()], before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert grads.keys() == params.keys()                     # every gradient is checked
    assert y.dtype == dx.dtype == np.float32 and all(g.dtype == np.float32 for g in grads.values())
    y64, _ = mha_forward(x.astype(np.float64), {k: v.astype(np.float64) for k, v in params.items()},
                         n["n_heads"])
    np.testing.assert_allclose(y, y64, rtol=1e-4, atol=1e-5)


# --- bad input ----------------------------------------------------------------------------

def test_bad_inputs():
    q, k, v = qkv(2, 2, 3, 3, 4, 5, seed=0)
    with pytest.raises(ValueError, match=r"q must have 4 dimensions \(B, h, Tq, d\)"):
        attention_forward(q[0], k, v)
    with pytest.raises(ValueError, match=r"k .* d = 3, but q .* d = 4"):
        attention_forward(q, k[..., :3], v)
    with pytest.raises(ValueError, match=r"v .* Tk = 2, but k .* Tk = 3"):
        attention_forward(q, k, v[:, :, :2])
    with pytest.raises(ValueError, match="causal attention needs Tq <= Tk"):
        attention_forward(np.concatenate([q, q], axis=2), k, v)
    with pytest.raises(TypeError, match="float32 or float64"):
        attention_forward(q.astype(np.int32), k, v)
    x, params = layer(2, 3, 6, 2, seed=0, bias=True)
    with pytest.raises(ValueError, match="n_heads = 4 must divide the model width D = 6"):
        mha_forward(x, params, 4)
    with pytest.raises(ValueError, match=r"n_heads must be >= 1"):
        mha_forward(x, params, 0)
    with pytest.raises(TypeError, match=r"n_heads must be an integer"):
        mha_forward(x, params, 2.0)
    with pytest.raises(ValueError, match=r"missing key\(s\) \['Wo'\]"):
        mha_forward(x, {k: v for k, v in params.items() if k != "Wo"}, 2)
    with pytest.raises(ValueError, match=r"state holds keys .* does not fit"):
        mha_step(x[:, 0], params, 2, init_kv_cache(3, 6, 2))
    with pytest.raises(TypeError, match="state must be a KVCache"):
        mha_step(x[:, 0], params, 2, {"k": 1})
    with pytest.raises(ValueError, match="-inf everywhere"):
        softmax_forward(np.array([[0.0, 1.0], [-np.inf, -np.inf]]))
    with pytest.raises(ValueError, match="axis must be an integer"):
        softmax_forward(np.zeros((2, 3)), axis=2)
    assert isinstance(mha_step(x[:, 0], params, 2)[1], KVCache)


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 6), st.integers(1, 6),
       st.integers(1, 5), st.booleans(), st.integers(0, 2**16))
def test_attention_equals_the_textbook_formula(B, h, Tq, extra, d, causal, seed):
    """softmax(q k^T / sqrt(d) + mask) v, written out with loops: an independent reference for
    the scaling and the end-aligned causal mask (gradient checks cannot see a wrong scale)."""
    rng = np.random.default_rng(seed)
    Tk = Tq + extra - 1
    q, k, v = (rng.standard_normal((B, h, T, d)) for T in (Tq, Tk, Tk))
    out, _ = attention_forward(q, k, v, causal=causal)
    for b in range(B):
        for head in range(h):
            for i in range(Tq):
                visible = [j for j in range(Tk) if not causal or j <= i + Tk - Tq]
                scores = np.array([q[b, head, i] @ k[b, head, j] / np.sqrt(d) for j in visible])
                w = np.exp(scores - scores.max())
                expected = (w / w.sum()) @ v[b, head, visible]
                np.testing.assert_allclose(out[b, head, i], expected, rtol=1e-12, atol=1e-12)


def test_softmax_accepts_any_axis_and_one_dimension():
    x = np.random.default_rng(0).standard_normal((2, 3))
    np.testing.assert_allclose(softmax_forward(x[0])[0].sum(), 1.0)
    np.testing.assert_array_equal(softmax_forward(x, axis=-2)[0], softmax_forward(x, axis=0)[0])
    masked = softmax_forward(np.array([0.0, -np.inf, 1.0]))[0]       # -inf: masked out
    assert masked[1] == 0 and np.isclose(masked.sum(), 1.0)
