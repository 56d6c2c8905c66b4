import numpy as np
import pytest
from helpers import GRAD_FLOOR, assert_gradcheck
from hypothesis import given
from hypothesis import strategies as st

from minirnn import check_gradients, layers
from minirnn.layers import (
    IGNORE_INDEX,
    cross_entropy,
    embedding_backward,
    embedding_forward,
    ffn_backward,
    ffn_forward,
    gelu_backward,
    gelu_forward,
    layer_norm_backward,
    layer_norm_forward,
    linear_backward,
    linear_forward,
    matmul_few_rows,
    weight_gradient,
)

seeds = st.integers(0, 2**16)


@given(seeds, st.integers(1, 3), st.integers(1, 4), st.integers(1, 5), st.booleans())
def test_linear_gradcheck(seed, B, Din, Dout, bias):
    rng = np.random.default_rng(seed)
    params = {"W": rng.standard_normal((Din, Dout))}
    if bias:
        params["b"] = rng.standard_normal(Dout)
    report = check_gradients(linear_forward, lambda d, c: linear_backward(d, c, bias=bias),
                             {"x": rng.standard_normal((B, 2, Din))}, params, seed=seed,
                             floor=GRAD_FLOOR)
    assert_gradcheck(report)


@given(seeds, st.lists(st.integers(1, 4), min_size=0, max_size=3), st.integers(1, 5),
       st.integers(1, 5))
def test_weight_gradient_sums_every_position(seed, lead, Din, Dout):
    """(MR.5): one term x_n^T dy_n per position, whatever the leading axes (none: one row)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*lead, Din))
    dy = rng.standard_normal((*lead, Dout))
    terms = sum(np.outer(xn, dyn) for xn, dyn in zip(x.reshape(-1, Din), dy.reshape(-1, Dout)))
    np.testing.assert_allclose(weight_gradient(x, dy), terms, rtol=1e-12, atol=1e-12)
    assert weight_gradient(x.astype(np.float32), dy).dtype == np.float64   # promotes


# D >= 3: with two features layer norm maps every input to about (+1, -1), and its gradient is
# ~0 except where the two nearly coincide, where it is huge and finite differences unreliable
@given(seeds, st.integers(3, 6))
def test_layer_norm_and_ffn_gradcheck(seed, D):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, D))
    ln = {"w": 1 + 0.3 * rng.standard_normal(D), "b": 0.3 * rng.standard_normal(D)}
    assert_gradcheck(check_gradients(layer_norm_forward, layer_norm_backward, {"x": x}, ln,
                                     seed=seed, floor=GRAD_FLOOR))
    ffn = {"W1": rng.standard_normal((D, 5)) / np.sqrt(D), "b1": 0.1 * rng.standard_normal(5),
           "W2": rng.standard_normal((5, D)) / np.sqrt(5), "b2": 0.1 * rng.standard_normal(D)}
    assert_gradcheck(check_gradients(ffn_forward, ffn_backward, {"x": x}, ffn, seed=seed,
                                     floor=GRAD_FLOOR))


def test_gelu_values_and_gradient():
    x = np.linspace(-5, 5, 41)
    y, _cache = gelu_forward(x)
    from math import erf
    exact = np.array([0.5 * v * (1 + erf(v / np.sqrt(2))) for v in x])
    assert np.max(np.abs(y - exact)) < 1e-3              # the tanh form is close to x Phi(x)
    report = check_gradients(gelu_forward, gelu_backward, {"x": x.reshape(1, -1)})
    assert report["x"] < 1e-9


@given(seeds, st.integers(2, 5), st.integers(1, 4))
def test_embedding_scatter_adds_repeated_tokens(seed, V, D):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((V, D))
    tokens = rng.integers(0, V, (3, 6))
    tokens[0, :3] = 1                                   # make sure some ids repeat
    y, cache = embedding_forward(tokens, W)
    np.testing.assert_array_equal(y, W[tokens])
    dy = rng.standard_normal(y.shape)
    dW = embedding_backward(dy, cache)
    expected = np.zeros_like(W)
    for b in range(3):
        for t in range(6):
            expected[tokens[b, t]] += dy[b, t]
    np.testing.assert_allclose(dW, expected, rtol=1e-12, atol=1e-12)


def test_embedding_backward_without_one_hot_gives_the_same_sums(monkeypatch):
    """Past ONE_HOT_LIMIT (a large vocabulary) the scatter-add runs without the one-hot matrix."""
    from minirnn import layers

    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 9, (4, 7))
    _, cache = embedding_forward(tokens, rng.standard_normal((9, 3)))
    dy = rng.standard_normal((4, 7, 3))
    one_hot = embedding_backward(dy, cache)
    monkeypatch.setattr(layers, "ONE_HOT_LIMIT", 0)
    np.testing.assert_allclose(embedding_backward(dy, cache), one_hot, rtol=0, atol=1e-12)


@given(seeds, st.integers(2, 7))
def test_cross_entropy_matches_definition_and_gradcheck(seed, V):
    rng = np.random.default_rng(seed)
    logits = 3 * rng.standard_normal((2, 4, V))
    targets = rng.integers(0, V, (2, 4))
    targets[1, 2] = IGNORE_INDEX
    loss, dlogits = cross_entropy(logits, targets)
    keep = targets != IGNORE_INDEX
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    manual = -np.mean(np.log(p[keep, targets[keep]]))
    assert abs(loss - manual) < 1e-12
    assert np.all(dlogits[1, 2] == 0)                   # ignored position gets no gradient
    num = np.zeros_like(logits)
    for idx in np.ndindex(logits.shape):
        old = logits[idx]
        logits[idx] = old + 1e-6
        plus = cross_entropy(logits, targets)[0]
        logits[idx] = old - 1e-6
        minus = cross_entropy(logits, targets)[0]
        logits[idx] = old
        num[idx] = (plus - minus) / 2e-6
    np.testing.assert_allclose(dlogits, num, atol=1e-8)


def test_cross_entropy_extremes_and_errors():
    loss, d = cross_entropy(np.array([[[1e4, -1e4, 0.0]]]), np.array([[0]]))
    assert np.isfinite(loss) and np.all(np.isfinite(d))
    assert cross_entropy(np.zeros((1, 2, 3)), np.full((1, 2), IGNORE_INDEX))[0] == 0.0
    with pytest.raises(ValueError, match=r"targets has ids outside \[0, 3\)"):
        cross_entropy(np.zeros((1, 2, 3)), np.array([[0, 3]]))
    with pytest.raises(TypeError, match="targets must be an integer array"):
        cross_entropy(np.zeros((1, 2, 3)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"tokens has ids outside \[0, 4\)"):
        embedding_forward(np.array([[5]]), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"params\['W'\] .* Din = 3, but x .* Din = 2"):
        linear_forward(np.zeros((1, 2)), {"W": np.zeros((3, 4))})


def test_cross_entropy_edge_cases():
    """One scored target: the mean is over 1 position. Rows of very different size: each row
    is shifted by its own maximum, so a small row does not underflow next to a large one."""
    logits = np.log(np.array([[[0.2, 0.8], [0.5, 0.5]]]))
    loss, d = cross_entropy(logits, np.array([[1, IGNORE_INDEX]]))
    assert np.isclose(loss, -np.log(0.8))
    np.testing.assert_allclose(d[0, 0], [0.2, -0.2])
    np.testing.assert_array_equal(d[0, 1], 0.0)
    wide = np.array([[[0.0, 1.0], [1000.0, 1001.0]]])
    loss, d = cross_entropy(wide, np.array([[0, 0]]))
    expected = -np.log(np.exp(0) / (np.exp(0) + np.exp(1)))      # the same for both rows
    assert np.isclose(loss, expected) and np.all(np.isfinite(d))
    with pytest.raises(TypeError, match="ignore_index must be an integer"):
        cross_entropy(wide, np.array([[0, 0]]), ignore_index=0.5)


def test_layer_norm_eps_and_single_vectors():
    x = np.array([[1.0, 2.0, 4.0], [3.0, 3.0, 3.0]])
    p = {"w": np.ones(3), "b": np.zeros(3)}
    y, _ = layer_norm_forward(x[:1], p, eps=0.0)             # eps = 0 is fine off constants
    np.testing.assert_allclose(y.std(axis=-1), 1.0)
    with pytest.raises(ValueError, match="constant row and eps = 0"):
        layer_norm_forward(x, p, eps=0.0)
    assert np.all(np.isfinite(layer_norm_forward(x, p)[0]))  # eps > 0: a constant row is 0
    one = linear_forward(np.ones(2), {"W": np.ones((2, 3)), "b": np.zeros(3)})[0]
    np.testing.assert_array_equal(one, [2.0, 2.0, 2.0])      # a single vector, shape (D,)


@given(seeds, st.integers(1, 9), st.integers(1, 40), st.integers(1, 70), st.booleans(),
       st.booleans(), st.booleans())
def test_matmul_few_rows_is_the_product(seed, m, k, n, mixed, strided, blocks_win):
    """Blocks or not, the value is a @ W (to rounding: BLAS's kernels add in other orders), in
    the promoted dtype, for a strided ``a`` (a time step sliced out of a sequence) too."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, 3, k) if strided else (m, k)).astype(np.float32)
    a = a[:, 1] if strided else a
    W = rng.standard_normal((k, n)).astype(np.float64 if mixed else np.float32)
    limit = layers.SMALL_PRODUCT
    try:
        layers.SMALL_PRODUCT = int(rng.integers(1, m * k * n + 1))     # force 1 .. m*k*n blocks
        key = layers._split_plan(a, W)[1]                             # None: one block
        layers._BLOCKS_WIN[key] = blocks_win                          # either way, timed or not
        out = matmul_few_rows(a, W)
    finally:
        layers.SMALL_PRODUCT = limit
        layers._BLOCKS_WIN.pop(key, None)
    assert out.shape == (m, n) and out.dtype == np.result_type(a, W)
    np.testing.assert_allclose(out, a.astype(np.float64) @ W.astype(np.float64),
                               rtol=1e-5, atol=1e-5 * np.sqrt(k))


def test_matmul_few_rows_times_both_ways_once_per_shape_and_keeps_the_faster(monkeypatch):
    timed = []

    def fake_timing(a, W, width):
        timed.append((a.shape, W.shape, width))
        return True                                                # as if the blocks won

    monkeypatch.setattr(layers, "_blocks_are_faster", fake_timing)
    monkeypatch.setattr(layers, "_BLOCKS_WIN", {})
    calls = []
    matmul = np.matmul

    def counting(a, b, **kwargs):
        calls.append(b.shape)
        return matmul(a, b, **kwargs)

    monkeypatch.setattr(layers.np, "matmul", counting)
    a, W = np.ones((8, 256), np.float32), np.ones((256, 1024), np.float32)
    for _ in range(2):
        np.testing.assert_array_equal(matmul_few_rows(a, W), np.full((8, 1024), 256.0))
    assert timed == [((8, 256), (256, 1024), 342)]                # 2.1e6 multiply-adds: 3 blocks
    assert calls == [(256, 342), (256, 342), (256, 340)] * 2       # equal blocks, then the rest
    matmul_few_rows(np.ones((2, 4), np.float32), np.ones((4, 4), np.float32))
    assert len(timed) == 1                                         # a small product: one call


def test_matmul_few_rows_timing_picks_a_way_and_both_ways_agree():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((8, 256)).astype(np.float32)
    W = rng.standard_normal((256, 1024)).astype(np.float32)
    assert layers._blocks_are_faster(a, W, 342, rounds=1) in (True, False)
    np.testing.assert_allclose(layers._in_column_blocks(a, W, 342), a @ W, rtol=1e-5, atol=1e-4)
