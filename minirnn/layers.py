"""The pieces a language model needs around its memory mechanism, forward and backward.

Equations (numbered as on ``derivations/language-models.md``)::

    linear:       y = x W + b                                                   (L.1)
    embedding:    y[b, t] = W[tokens[b, t]];  dW[v] = sum of dy where tokens == v  (L.2)
    layer norm:   y = (x - mean) / sqrt(var + eps) * g + beta                   (L.3)
                  dx = (dxhat - mean(dxhat) - xhat mean(dxhat * xhat)) / sigma  (L.4)
    GELU (tanh):  gelu(x) = x/2 (1 + tanh(c (x + 0.044715 x^3))), c = sqrt(2/pi)  (L.5)
    feed-forward: FFN(x) = gelu(x W1 + b1) W2 + b2                              (L.6)
    cross-entropy: L = -mean_{n kept} log softmax(z_n)[y_n],
                   dz_n = (softmax(z_n) - onehot(y_n)) / N_kept                 (L.7)

Shapes: activations (..., D); tokens and targets (B, T) integers; logits (B, T, V).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import Shapes, check_cache

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
]

IGNORE_INDEX = -100   # targets equal to this are not scored (padding, prompt positions)
GELU_C = float(np.sqrt(2.0 / np.pi))


def _lead(ndim: int) -> str:
    """Axis letters for the leading axes of an activation of ``ndim`` dimensions."""
    return " ".join(f"n{i}" for i in range(ndim - 1))


def _upstream(func: str, dy, shape: tuple) -> np.ndarray:
    """Check that ``dy`` is a float array shaped like the forward output (None: any size)."""
    s = Shapes(func)
    dy = s.array("dy", dy, " ".join(f"n{i}" for i in range(np.ndim(dy))))
    if dy.ndim != len(shape) or any(w is not None and w != g for g, w in zip(dy.shape, shape)):
        shown = tuple("any" if w is None else w for w in shape)
        s.fail(f"dy must have the shape of the forward output {shown}, got {dy.shape}")
    return dy


def _activation(s: Shapes, name: str, x, last: str = "D"):
    if np.ndim(x) < 1:
        s.fail(f"{name} must have at least one axis (..., {last}), got a scalar")
    return s.array(name, x, f"{_lead(np.ndim(x))} {last}".strip())


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
    s = Shapes("linear_forward")
    x = _activation(s, "x", x, "Din")
    p = s.params(params, "params", {"W": "Din Dout", "b": "Dout"}, optional=("b",))
    y = x @ p["W"]
    return (y + p["b"] if "b" in p else y), LinearCache(x, p["W"])


def linear_backward(dy: np.ndarray, cache: LinearCache, bias: bool = True):
    """Backward of :func:`linear_forward`: ``dx = dy W^T``, ``dW = x^T dy``, ``db = sum dy``.

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
    check_cache("linear_backward", cache, LinearCache, "linear_forward")
    dy = _upstream("linear_backward", dy, cache.x.shape[:-1] + cache.W.shape[1:])
    x2 = cache.x.reshape(-1, cache.x.shape[-1])
    dy2 = dy.reshape(-1, dy.shape[-1])
    grads = {"W": x2.T @ dy2}
    if bias:
        grads["b"] = dy2.sum(axis=0)
    return dy @ cache.W.T, grads


# --- embedding ----------------------------------------------------------------------------------

class EmbeddingCache(NamedTuple):
    tokens: np.ndarray   # (B, T) ints
    V: int               # vocabulary size


def _check_tokens(s: Shapes, name: str, tokens, V: int | None, axes: str = "B T",
                  allow: tuple = ()):
    t = np.asarray(tokens)
    if t.dtype.kind not in "iu":
        s.fail(f"{name} must be an integer array of token ids, got dtype {t.dtype}", TypeError)
    letters = axes.split()
    if t.ndim != len(letters):
        s.fail(f"{name} must have {len(letters)} dimensions ({', '.join(letters)}), "
               f"got shape {t.shape}")
    for axis, (letter, size) in enumerate(zip(letters, t.shape)):
        if size == 0:
            s.fail(f"{name} has an empty axis {letter} (shape {t.shape})")
        s.bind(letter, size, f"{name} (axis {axis} of shape {t.shape})")
    if V is not None:
        bad = ((t < 0) | (t >= V)) & ~np.isin(t, allow)
        if np.any(bad):
            s.fail(f"{name} has ids outside [0, {V}) (vocabulary size V = {V}): "
                   f"{np.unique(t[bad])[:5].tolist()}")
    return t


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
    s = Shapes("embedding_forward")
    W = s.array("W", W, "V D")
    tokens = _check_tokens(s, "tokens", tokens, W.shape[0])
    return W[tokens], EmbeddingCache(tokens, W.shape[0])


def embedding_backward(dy: np.ndarray, cache: EmbeddingCache) -> np.ndarray:
    """Backward of :func:`embedding_forward`: scatter-add ``dy`` into the used rows, eq. (L.2).

    A token that occurs several times receives the *sum* of its gradients. ``np.add.at`` does
    that; ``dW[tokens] += dy`` would keep only one of the repeated updates.

    Parameters
    ----------
    dy : ndarray, shape (B, T, D)
    cache : EmbeddingCache

    Returns
    -------
    dW : ndarray, shape (V, D)
    """
    check_cache("embedding_backward", cache, EmbeddingCache, "embedding_forward")
    dy = _upstream("embedding_backward", dy, (*cache.tokens.shape, None))
    dW = np.zeros((cache.V, dy.shape[-1]), dtype=dy.dtype)
    np.add.at(dW, cache.tokens, dy)
    return dW


# --- layer norm ---------------------------------------------------------------------------------

class LayerNormCache(NamedTuple):
    xhat: np.ndarray    # (..., D)
    sigma: np.ndarray   # (..., 1)
    g: np.ndarray       # (D,)


def layer_norm_forward(x: np.ndarray, params: dict[str, np.ndarray], eps: float = 1e-5):
    """Layer normalisation over the last axis, eq. (L.3).

    Parameters
    ----------
    x : ndarray, shape (..., D)
    params : dict
        ``g`` (D,) scale and ``b`` (D,) shift.
    eps : float, optional

    Returns
    -------
    y : ndarray, shape (..., D)
    cache : LayerNormCache
    """
    s = Shapes("layer_norm_forward")
    x = _activation(s, "x", x)
    p = s.params(params, "params", {"g": "D", "b": "D"})
    if isinstance(eps, bool) or not (isinstance(eps, (int, float)) and eps >= 0):
        s.fail(f"eps must be a number >= 0, got {eps!r}")
    xc = x - x.mean(axis=-1, keepdims=True)
    sigma = np.sqrt(np.mean(xc * xc, axis=-1, keepdims=True) + eps)
    if eps == 0 and np.any(sigma == 0):
        s.fail("x has a constant row and eps = 0, so its standard deviation is 0 and x-hat "
               "would divide by zero; use eps > 0")
    xhat = xc / sigma
    return xhat * p["g"] + p["b"], LayerNormCache(xhat, sigma, p["g"])


def layer_norm_backward(dy: np.ndarray, cache: LayerNormCache):
    """Backward of :func:`layer_norm_forward`, eq. (L.4).

    Parameters
    ----------
    dy : ndarray, shape (..., D)
    cache : LayerNormCache

    Returns
    -------
    dx : ndarray, shape (..., D)
    grads : dict
        ``g`` and ``b``, shape (D,).
    """
    check_cache("layer_norm_backward", cache, LayerNormCache, "layer_norm_forward")
    dy = _upstream("layer_norm_backward", dy, cache.xhat.shape)
    D = dy.shape[-1]
    dxhat = dy * cache.g
    dx = (dxhat - dxhat.mean(axis=-1, keepdims=True)
          - cache.xhat * (dxhat * cache.xhat).mean(axis=-1, keepdims=True)) / cache.sigma
    flat_dy = dy.reshape(-1, D)                          # sums over every position
    return dx, {"g": np.einsum("nd,nd->d", flat_dy, cache.xhat.reshape(-1, D)),
                "b": flat_dy.sum(axis=0)}


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
    s = Shapes("gelu_forward")
    x = s.array("x", x, " ".join(f"n{i}" for i in range(np.ndim(x))))
    t = np.tanh(GELU_C * (x + 0.044715 * (x * x * x)))   # x * x * x: x ** 3 is slow in float32
    return 0.5 * x * (1.0 + t), GELUCache(x, t)


def gelu_backward(dy: np.ndarray, cache: GELUCache) -> np.ndarray:
    """Backward of :func:`gelu_forward`.

    ``d/dx = (1 + t)/2 + x/2 (1 - t^2) c (1 + 3 * 0.044715 x^2)`` with ``t`` the tanh term.
    """
    check_cache("gelu_backward", cache, GELUCache, "gelu_forward")
    x, t = cache
    dy = _upstream("gelu_backward", dy, x.shape)
    return dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_C * (1.0 + 0.134145 * x * x))


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
    s = Shapes("ffn_forward")
    x = _activation(s, "x", x)
    p = s.params(params, "params", {"W1": "D F", "b1": "F", "W2": "F D", "b2": "D"})
    a = x @ p["W1"] + p["b1"]
    hidden, gcache = gelu_forward(a)
    return hidden @ p["W2"] + p["b2"], FFNCache(LinearCache(x, p["W1"]), gcache,
                                                LinearCache(hidden, p["W2"]))


def ffn_backward(dy: np.ndarray, cache: FFNCache):
    """Backward of :func:`ffn_forward`: the two linear maps and the GELU in reverse.

    Returns
    -------
    dx : ndarray, shape (..., D)
    grads : dict
        ``W1``, ``b1``, ``W2``, ``b2``.
    """
    check_cache("ffn_backward", cache, FFNCache, "ffn_forward")
    dy = _upstream("ffn_backward", dy, cache.first.x.shape)
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
    s = Shapes("cross_entropy")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        s.fail(f"ignore_index must be an integer, got {ignore_index!r}", TypeError)
    logits = s.array("logits", logits, "B T V")
    targets = _check_tokens(s, "targets", targets, logits.shape[-1], allow=(ignore_index,))
    V = logits.shape[-1]
    z = logits.reshape(-1, V)                              # one row per position
    y = targets.reshape(-1)
    rows = np.flatnonzero(y != ignore_index)               # the scored positions
    n = max(rows.size, 1)
    shifted = z - z.max(axis=1, keepdims=True)             # stable: every exponent <= 0
    e = np.exp(shifted)
    total = e.sum(axis=1, keepdims=True)
    # -log softmax(z)[y] = log sum exp(shifted) - shifted[y]
    loss = float(np.sum(np.log(total[rows, 0]) - shifted[rows, y[rows]])) / n
    dz = e / total                                         # softmax(z)
    dz[rows, y[rows]] -= 1.0                               # ... minus onehot(y)
    dz *= np.where(y != ignore_index, 1.0 / n, 0.0).astype(dz.dtype)[:, None]
    return loss, dz.reshape(logits.shape)
