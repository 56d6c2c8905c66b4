"""The pieces a language model needs around its memory mechanism, forward and backward.

Equations (numbered as on ``derivations/language-models.md``)::

    linear:       y = x W + b                                                   (L.1)
    embedding:    y[b, t] = W[tokens[b, t]];  dW[v] = sum of dy where tokens == v  (L.2)
    layer norm:   y = (x - mean) / sqrt(var + eps) * w + b                      (L.3)
                  dx = (dxhat - mean(dxhat) - xhat mean(dxhat * xhat)) / sigma  (L.4)
    GELU (tanh):  gelu(x) = x/2 (1 + tanh(c (x + 0.044715 x^3))), c = sqrt(2/pi)  (L.5)
    feed-forward: FFN(x) = gelu(x W1 + b1) W2 + b2                              (L.6)
    heads:        split (B, T, h*w) -> (B, h, T, w) and merge back: reshapes     (L.8)
    cross-entropy: L = -mean_{n kept} log softmax(z_n)[y_n],
                   dz_n = (softmax(z_n) - onehot(y_n)) / N_kept                 (L.7)

Shapes: activations (..., D); tokens and targets (B, T) integers; logits (B, T, V).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np

from ._checks import layers as check

__all__ = [
    "IGNORE_INDEX",
    "cross_entropy",
    "embedding_backward",
    "embedding_forward",
    "ffn_backward",
    "ffn_forward",
    "gelu_backward",
    "gelu_forward",
    "layer_norm_backward",
    "layer_norm_forward",
    "linear_backward",
    "linear_forward",
    "matmul_few_rows",
    "mean_last",
    "merge_heads",
    "split_heads",
    "standardize",
    "standardize_backward",
    "weight_gradient",
]

IGNORE_INDEX = -100   # targets equal to this are not scored (padding, prompt positions)
GELU_C = float(np.sqrt(2.0 / np.pi))
ONE_HOT_LIMIT = 2 ** 22   # numbers in the embedding backward's one-hot matrix (16 MiB in float32)


# --- linear -------------------------------------------------------------------------------------

class LinearCache(NamedTuple):
    x: np.ndarray      # (..., Din)
    W: np.ndarray      # (Din, Dout)


def linear_forward(x: np.ndarray, params: dict[str, np.ndarray]):
    """Affine map ``y = x W + b`` over the last axis, eq. (L.1).

    Parameters
    ----------
    x : ndarray, shape (..., Din)
    params : dict
        ``W`` (Din, Dout) and optionally ``b`` (Dout,).

    Returns
    -------
    y : ndarray, shape (..., Dout)
    cache : LinearCache
    """
    x, params = check.linear_forward(x, params)
    y = x @ params["W"] + params.get("b", 0.0)                     # (L.1)
    return y, LinearCache(x, params["W"])


def linear_backward(dy: np.ndarray, cache: LinearCache, bias: bool = True):
    """Backward of [`linear_forward`][minirnn.layers.linear_forward]: ``dx = dy W^T``, ``dW = x^T
    dy``, ``db = sum dy``.

    Parameters
    ----------
    dy : ndarray, shape (..., Dout)
    cache : LinearCache
    bias : bool, optional
        Whether the forward used ``b`` (then ``grads`` has ``b``).

    Returns
    -------
    dx : ndarray, shape (..., Din)
    grads : dict
    """
    dy = check.linear_backward(dy, cache)
    grads = {"W": weight_gradient(cache.x, dy)}
    if bias:
        grads["b"] = dy.reshape(-1, dy.shape[-1]).sum(axis=0)
    return dy @ cache.W.T, grads


def weight_gradient(x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """The gradient of a weight used at every position, ``y_n = x_n W``: ``dW = sum_n x_n^T dy_n``.

    The matrix rule (MR.5): every use of ``W`` (each token of each sequence, each patch of each
    image) adds its own ``x_n^T dy_n``. Stacked as the rows of one matrix, the positions make the
    whole sum a single product ``X^T dY``, which BLAS computes at once.

    Parameters
    ----------
    x : ndarray, shape (..., Din)
        The input at every position.
    dy : ndarray, shape (..., Dout)
        The gradient of the output at the same positions.

    Returns
    -------
    dW : ndarray, shape (Din, Dout)
    """
    x, dy = check.weight_gradient(x, dy)
    return x.reshape(-1, x.shape[-1]).T @ dy.reshape(-1, dy.shape[-1])    # (MR.5)


# --- embedding ----------------------------------------------------------------------------------

class EmbeddingCache(NamedTuple):
    tokens: np.ndarray   # (B, T) ints
    V: int               # vocabulary size


def embedding_forward(tokens: np.ndarray, W: np.ndarray):
    """Look up one row of ``W`` per token, eq. (L.2).

    Parameters
    ----------
    tokens : ndarray of int, shape (B, T)
        Token ids in ``[0, V)``.
    W : ndarray, shape (V, D)
        The embedding table.

    Returns
    -------
    y : ndarray, shape (B, T, D)
    cache : EmbeddingCache
    """
    tokens, W = check.embedding_forward(tokens, W)
    y = W[tokens]                                                  # (L.2): one row per token
    return y, EmbeddingCache(tokens, W.shape[0])


def embedding_backward(dy: np.ndarray, cache: EmbeddingCache) -> np.ndarray:
    """Backward of [`embedding_forward`][minirnn.layers.embedding_forward]: scatter-add ``dy`` into
    the used rows, eq. (L.2).

    A token that occurs several times receives the *sum* of its gradients: ``dW[tokens] += dy``
    would keep only one of the repeated updates. The lookup is the product ``y = E W`` with
    ``E`` the one-hot matrix of the tokens (one row per position, a 1 in the token's column), so
    ``dW = E^T dy``, one matrix product that adds up the repeats. ``np.add.at(dW, tokens, dy)``
    gives the same sums element by element, several times slower, but needs no ``E``: it is
    used when ``E`` would hold more than ``ONE_HOT_LIMIT`` numbers (B T V; a large word
    vocabulary), so the memory stays that of ``dW``.

    Parameters
    ----------
    dy : ndarray, shape (B, T, D)
    cache : EmbeddingCache

    Returns
    -------
    dW : ndarray, shape (V, D)
    """
    dy = check.embedding_backward(dy, cache)
    flat = cache.tokens.reshape(-1)
    dy = dy.reshape(len(flat), -1)
    if len(flat) * cache.V > ONE_HOT_LIMIT:                        # E would be too large
        dW = np.zeros((cache.V, dy.shape[-1]), dtype=dy.dtype)
        np.add.at(dW, flat, dy)
        return dW
    E = (flat[:, None] == np.arange(cache.V)).astype(dy.dtype)     # one-hot, (B T, V)
    return E.T @ dy                                                # dW = E^T dy


# --- a product with few rows, as a recurrent loop makes ---------------------------------------

SMALL_PRODUCT = 1_000_000   # multiply-adds of one product in BLAS's small-matrix kernel, at most
_BLOCKS_WIN: dict[tuple, bool] = {}   # per shape, dtype and layout: were the blocks faster?


def matmul_few_rows(a: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``a @ W`` for an ``a`` of few rows (the batch of one time step), the faster of two ways.

    The value is ``a @ W`` (to rounding: BLAS's kernels add in different orders); only the way
    BLAS is called differs. For a large product OpenBLAS first copies ("packs") all of ``W``
    into its own layout, which pays off over many rows of ``a``; a recurrent loop multiplies
    only ``B`` rows per step, and the copy can then cost more than the arithmetic. Some
    OpenBLAS builds have kernels for small matrices that skip the copy: with the SkylakeX
    (AVX-512) kernels of OpenBLAS 0.3.31 they take every product of at most ``SMALL_PRODUCT``
    = 10^6 multiply-adds, and taking the columns of ``W`` in blocks under that size made an LSTM
    step's ``h @ W_h`` (``B = 8``, ``H = 256``) faster; with the Haswell (AVX2) kernels the same
    blocks made it *slower*. Which way wins depends on the CPU and the BLAS
    build, so the first product of each shape (and dtype and memory layout) that is large
    enough to split is timed both ways, a few calls each, and the faster way is remembered for
    the rest of the process. The benchmarks page prints both times and the choice.

    Parameters
    ----------
    a : ndarray, shape (m, k)
    W : ndarray, shape (k, n)

    Returns
    -------
    ndarray, shape (m, n)
    """
    a, W = check.matmul_few_rows(a, W)
    width, key = _split_plan(a, W)
    if width is None:
        return a @ W
    if key not in _BLOCKS_WIN:
        _BLOCKS_WIN[key] = _blocks_are_faster(a, W, width)
    return _in_column_blocks(a, W, width) if _BLOCKS_WIN[key] else a @ W


def _split_plan(a: np.ndarray, W: np.ndarray) -> tuple[int | None, tuple | None]:
    """How [`matmul_few_rows`][minirnn.layers.matmul_few_rows] would split ``a @ W``.

    Parameters
    ----------
    a : ndarray, shape (m, k)
    W : ndarray, shape (k, n)

    Returns
    -------
    width : int or None
        Columns of ``W`` per block, so that each block's product has at most
        ``SMALL_PRODUCT`` multiply-adds; None when the whole product already has.
    key : tuple or None
        What the timed choice is remembered under: the shapes, dtypes and strides of ``a`` and
        ``W`` (``_BLOCKS_WIN[key]`` is True when the blocks were faster); None with ``width``.
    """
    (m, k), n = a.shape, W.shape[1]
    blocks = -(-m * k * n // SMALL_PRODUCT)                        # ceil: products per call
    if blocks <= 1:
        return None, None                                          # one call, nothing to time
    return -(-n // blocks), (a.shape, W.shape, a.dtype.str, W.dtype.str, a.strides, W.strides)


def _in_column_blocks(a: np.ndarray, W: np.ndarray, width: int) -> np.ndarray:
    """``a @ W`` computed ``width`` columns of ``W`` at a time (the last block may be narrower).

    Parameters
    ----------
    a : ndarray, shape (m, k)
    W : ndarray, shape (k, n)
    width : int
        Columns per block, at least 1.

    Returns
    -------
    ndarray, shape (m, n), dtype ``result_type(a, W)``
    """
    out = np.empty((a.shape[0], W.shape[1]), dtype=np.result_type(a, W))
    for j in range(0, W.shape[1], width):
        np.matmul(a, W[:, j:j + width], out=out[:, j:j + width])
    return out


def _blocks_are_faster(a: np.ndarray, W: np.ndarray, width: int, rounds: int = 5) -> bool:
    """Time ``a @ W`` in one call and in column blocks, alternately; True if the blocks win.

    Each way's time is its best of ``rounds`` rounds of three calls (the best is the least
    disturbed by whatever else the machine does); about 30 products, a few milliseconds.
    """
    best = {"one": np.inf, "blocks": np.inf}
    ways = {"one": lambda: a @ W, "blocks": lambda: _in_column_blocks(a, W, width)}
    for _ in range(rounds):
        for name, way in ways.items():
            start = time.perf_counter()
            for _ in range(3):
                way()
            best[name] = min(best[name], time.perf_counter() - start)
    return best["blocks"] < best["one"]


# --- standardisation, layer norm -----------------------------------------------------------------

def mean_last(x: np.ndarray) -> np.ndarray:
    """Mean over the last axis, kept as an axis of length 1: ``x.mean(axis=-1, keepdims=True)``.

    Computed as one matrix-vector product with the vector (1/n, ..., 1/n), which NumPy hands
    to BLAS: its own reduction over a short last axis (layer norm's 32 features in the
    tutorials) takes several times longer, and layer norm runs twice per block.

    Parameters
    ----------
    x : ndarray, shape (..., n)

    Returns
    -------
    ndarray, shape (..., 1)
    """
    x = check.mean_last(x)
    n = x.shape[-1]
    return (x @ np.full(n, 1.0 / n, dtype=x.dtype))[..., None]


def standardize(x: np.ndarray, eps: float = 1e-5):
    """Standardise over the last axis: ``xhat = (x - mean) / sigma``, ``sigma = sqrt(var + eps)``.

    The statistics shared by layer norm (L.3) and the group norm of multi-scale retention
    (M.3): both are this, then a per-channel scale and shift.

    Parameters
    ----------
    x : ndarray, shape (..., n)
    eps : float, optional
        Added to the variance; ``>= 0`` (with ``eps = 0`` no row may be constant).

    Returns
    -------
    xhat : ndarray, shape of ``x``
        Every row with mean 0 and (for ``eps = 0``) variance 1.
    sigma : ndarray, shape (..., 1)
    """
    x, eps = check.standardize(x, eps)
    xc = x - mean_last(x)
    sigma = np.sqrt(mean_last(xc * xc) + eps)
    return xc / sigma, sigma


def standardize_backward(dxhat: np.ndarray, xhat: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Backward of [`standardize`][minirnn.layers.standardize], eq. (L.4).

    ``dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / sigma``, means over the last
    axis: the direct path, minus what flows back through the mean, minus what flows back
    through the variance.

    Parameters
    ----------
    dxhat : ndarray, shape (..., n)
        Gradient with respect to ``xhat``.
    xhat : ndarray, shape (..., n)
    sigma : ndarray, shape (..., 1)
        Both as returned by [`standardize`][minirnn.layers.standardize].

    Returns
    -------
    dx : ndarray, shape (..., n)
    """
    dxhat, xhat, sigma = check.standardize_backward(dxhat, xhat, sigma)
    # --- exercise: group_norm_backward ---
    dx = (dxhat - mean_last(dxhat)
          - xhat * mean_last(dxhat * xhat)) / sigma
    # --- end ---
    return dx


class LayerNormCache(NamedTuple):
    xhat: np.ndarray    # (..., D)
    sigma: np.ndarray   # (..., 1)
    w: np.ndarray       # (D,) the weight w of (L.3)


def layer_norm_forward(x: np.ndarray, params: dict[str, np.ndarray], eps: float = 1e-5):
    """Layer normalisation over the last axis, eq. (L.3).

    Parameters
    ----------
    x : ndarray, shape (..., D)
    params : dict
        ``w`` (D,) scale and ``b`` (D,) shift.
    eps : float, optional

    Returns
    -------
    y : ndarray, shape (..., D)
    cache : LayerNormCache
    """
    x, params, eps = check.layer_norm_forward(x, params, eps)
    xhat, sigma = standardize(x, eps)
    y = xhat * params["w"] + params["b"]                          # (L.3)
    return y, LayerNormCache(xhat=xhat, sigma=sigma, w=params["w"])


def layer_norm_backward(dy: np.ndarray, cache: LayerNormCache):
    """Backward of [`layer_norm_forward`][minirnn.layers.layer_norm_forward], eq. (L.4).

    Parameters
    ----------
    dy : ndarray, shape (..., D)
    cache : LayerNormCache

    Returns
    -------
    dx : ndarray, shape (..., D)
    grads : dict
        ``w`` and ``b``, shape (D,).
    """
    dy = check.layer_norm_backward(dy, cache)
    D = dy.shape[-1]
    dx = standardize_backward(dy * cache.w, cache.xhat, cache.sigma)   # (L.4)
    flat_dy = dy.reshape(-1, D)                          # sums over every position
    return dx, {"w": np.einsum("nd,nd->d", flat_dy, cache.xhat.reshape(-1, D)),
                "b": np.einsum("nd->d", flat_dy)}


# --- GELU and the feed-forward block ------------------------------------------------------------

class GELUCache(NamedTuple):
    x: np.ndarray        # the input
    t: np.ndarray        # tanh(c (x + 0.044715 x^3))


def gelu_forward(x: np.ndarray):
    """GELU, tanh approximation, eq. (L.5): ``x/2 (1 + tanh(c (x + 0.044715 x^3)))``.

    The exact GELU is ``x Phi(x)`` with the normal CDF ``Phi``; the tanh form (Hendrycks and
    Gimpel 2016) is within about 1e-3 of it and is what GPT-2 used.

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    y : ndarray, shape of ``x``
    cache : GELUCache
        The input and the tanh term.
    """
    x = check.gelu_forward(x)
    # t = tanh(c (x + 0.044715 x^3)), y = x/2 (1 + t): built in place on two arrays, as in the
    # backward (one-line expressions make a new array per operation; x can be large)
    t = x * x
    t *= x                                           # x^3 (x ** 3 is slow in float32)
    t *= 0.044715
    t += x
    t *= GELU_C
    np.tanh(t, out=t)
    y = t + 1.0
    y *= x
    y *= 0.5                                         # (L.5)
    return y, GELUCache(x, t)


def gelu_backward(dy: np.ndarray, cache: GELUCache) -> np.ndarray:
    """Backward of [`gelu_forward`][minirnn.layers.gelu_forward].

    ``d/dx = (1 + t)/2 + x/2 (1 - t^2) c (1 + 3 * 0.044715 x^2)`` with ``t`` the tanh term; with
    ``1 - t^2 = (1 + t)(1 - t)`` it factors as ``(1 + t)/2 (1 + p (1 - t))``, where
    ``p = c x (1 + 3 * 0.044715 x^2)``, which is what is computed here.

    Built one factor at a time in place, on two arrays: in a model the hidden layer is large (2
    million entries at the benchmarks' compute size), and the one-line expression, which makes
    a new array for almost every operation, is several times slower there (the benchmarks page
    times both).
    """
    dy = check.gelu_backward(dy, cache)
    x, t = cache
    dtype = np.result_type(t, dy)                  # (float64 dy: all in float64)
    p = np.multiply(x, x, dtype=dtype)             # p = c x (1 + 3a x^2): x times the derivative
    p *= 3 * 0.044715 * GELU_C                     #   of the tanh's argument c (x + a x^3)
    p += GELU_C
    p *= x
    dx = np.subtract(1.0, t, dtype=dtype)          # 1 - t
    dx *= p
    dx += 1.0                                      # 1 + p (1 - t)
    np.add(1.0, t, out=p)                          # (p is used up: its array now holds 1 + t)
    dx *= p
    dx *= dy
    dx *= 0.5                                      # dx = dy (1 + t)/2 (1 + p (1 - t))
    return dx


class FFNCache(NamedTuple):
    first: LinearCache
    gelu: GELUCache
    second: LinearCache


def ffn_forward(x: np.ndarray, params: dict[str, np.ndarray]):
    """Position-wise feed-forward block ``gelu(x W1 + b1) W2 + b2``, eq. (L.6).

    Parameters
    ----------
    x : ndarray, shape (..., D)
    params : dict
        ``W1`` (D, F), ``b1`` (F,), ``W2`` (F, D), ``b2`` (D,).

    Returns
    -------
    y : ndarray, shape (..., D)
    cache : FFNCache
    """
    x, p = check.ffn_forward(x, params)
    a = np.matmul(x, p["W1"], dtype=np.result_type(x, p["W1"], p["b1"]))   # (L.6)
    a += p["b1"]                                        # in place: a is d_ff wide (4 D)
    hidden, gelu = gelu_forward(a)                                # (L.5)
    y = hidden @ p["W2"] + p["b2"]
    return y, FFNCache(LinearCache(x, p["W1"]), gelu, LinearCache(hidden, p["W2"]))


def ffn_backward(dy: np.ndarray, cache: FFNCache):
    """Backward of [`ffn_forward`][minirnn.layers.ffn_forward]: the two linear maps and the GELU in
    reverse.

    Returns
    -------
    dx : ndarray, shape (..., D)
    grads : dict
        ``W1``, ``b1``, ``W2``, ``b2``.
    """
    dy = check.ffn_backward(dy, cache)
    dhidden, g2 = linear_backward(dy, cache.second)
    dx, g1 = linear_backward(gelu_backward(dhidden, cache.gelu), cache.first)
    return dx, {"W1": g1["W"], "b1": g1["b"], "W2": g2["W"], "b2": g2["b"]}


# --- softmax cross-entropy ----------------------------------------------------------------------

def cross_entropy(logits: np.ndarray, targets: np.ndarray, ignore_index: int = IGNORE_INDEX):
    """Mean softmax cross-entropy over the targets that are not ``ignore_index``, eq. (L.7).

    Loss and gradient are computed together: the gradient of ``-log softmax(z)[y]`` with
    respect to the logits ``z`` is simply ``softmax(z) - onehot(y)``. The log-softmax is
    computed stably as ``z - max z - log sum exp(z - max z)``.

    Parameters
    ----------
    logits : ndarray, shape (B, T, V)
    targets : ndarray of int, shape (B, T)
        Class ids in ``[0, V)``, or ``ignore_index`` for positions that are not scored.
    ignore_index : int, optional

    Returns
    -------
    loss : float
        Mean over scored positions (0.0 if none is scored).
    dlogits : ndarray, shape (B, T, V)
        Gradient of the loss.
    """
    logits, targets = check.cross_entropy(logits, targets, ignore_index)
    V = logits.shape[-1]
    z = logits.reshape(-1, V)                              # one row per position
    y = targets.reshape(-1)
    scored = y != ignore_index
    rows = np.flatnonzero(scored)                          # the scored positions
    n = max(rows.size, 1)
    # each row's largest logit, z.max(axis=1), read off where argmax points (several times
    # faster over rows as short as a tiny vocabulary's)
    top = np.take_along_axis(z, z.argmax(axis=1)[:, None], axis=1)
    shifted = z - top                                      # stable: every exponent <= 0
    e = np.exp(shifted)
    total = np.einsum("nv->n", e)[:, None]                 # sum over the vocabulary
    # -log softmax(z)[y] = log sum exp(shifted) - shifted[y]
    loss = float(np.sum(np.log(total[rows, 0]) - shifted[rows, y[rows]])) / n
    dz = e / (total * n)                                   # softmax(z), over the mean's n
    dz[rows, y[rows]] -= 1.0 / n                           # ... minus onehot(y)
    dz[~scored] = 0.0                                      # unscored positions: no gradient
    return loss, dz.reshape(logits.shape)


# --- heads --------------------------------------------------------------------------------------

def split_heads(x: np.ndarray, n_heads: int) -> np.ndarray:
    """View the last axis of ``x`` as ``n_heads`` heads, eq. (L.8): (B, T, h*w) -> (B, h, T, w).

    A reshape and a transpose, no arithmetic: head ``i`` is features ``i*w .. (i+1)*w - 1``.
    Its backward is [`merge_heads`][minirnn.layers.merge_heads].

    Parameters
    ----------
    x : ndarray, shape (B, T, h*w)
    n_heads : int
        ``h``; must divide the last axis.

    Returns
    -------
    ndarray, shape (B, h, T, w)
    """
    x = check.split_heads(x, n_heads)
    B, T, width = x.shape
    return x.reshape(B, T, n_heads, width // n_heads).transpose(0, 2, 1, 3)


def merge_heads(x: np.ndarray) -> np.ndarray:
    """Concatenate the heads again, eq. (L.8): (B, h, T, w) -> (B, T, h*w).

    The inverse of [`split_heads`][minirnn.layers.split_heads], and so also its backward.

    Parameters
    ----------
    x : ndarray, shape (B, h, T, w)

    Returns
    -------
    ndarray, shape (B, T, h*w)
    """
    x = check.merge_heads(x)
    B, h, T, w = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, h * w)
