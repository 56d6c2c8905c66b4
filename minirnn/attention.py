"""Softmax self-attention: softmax, scaled dot-product attention, multi-head layer, KV cache.

Equations (numbered as on the docs page ``derivations/attention.md``)::

    y = softmax(x):  y_i = exp(x_i - max x) / sum_j exp(x_j - max x)        (A.1)
    dx = y * (dy - sum_j dy_j y_j)                                          (A.2)

    S = Q K^T / sqrt(d)                                                     (A.3)
    S~_ij = S_ij if j <= i + (Tk - Tq) else -inf      (causal mask)         (A.4)
    P = softmax(S~) row by row,   O = P V                                  (A.5)

    dV = P^T dO,   dP = dO V^T                                              (A.6)
    dS = P * (dP - rowsum(dP * P))                                          (A.7)
    dQ = dS K / sqrt(d),   dK = dS^T Q / sqrt(d)                            (A.8)

    multi-head: Q = X Wq + bq, K = X Wk, V = X Wv + bv, split D into h heads of d = D / h,
    Y = concat_heads(O) Wo + bo                                             (A.9)

Shapes: ``q`` (B, h, Tq, d), ``k`` (B, h, Tk, d), ``v`` (B, h, Tk, dv); layer input (B, T, D).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._checks import Shapes, check_cache, check_int

__all__ = [
    "AttentionCache",
    "KVCache",
    "MHACache",
    "SoftmaxCache",
    "attention_backward",
    "attention_forward",
    "causal_mask",
    "init_kv_cache",
    "init_mha_params",
    "mha_backward",
    "mha_forward",
    "mha_step",
    "softmax_backward",
    "softmax_forward",
]

# No key bias: adding b to every key adds the same q . b to a whole row of scores, which the
# softmax ignores (A.1), so a key bias could never change the output or receive a gradient.
MHA_PARAMS = {"Wq": "D D", "Wk": "D D", "Wv": "D D", "Wo": "D D", "bq": "D", "bv": "D", "bo": "D"}
MHA_BIASES = ("bq", "bv", "bo")


# --- softmax ----------------------------------------------------------------------------------

class SoftmaxCache(NamedTuple):
    """What :func:`softmax_backward` needs: the output and the axis."""

    y: np.ndarray
    axis: int


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - np.max(x, axis=axis, keepdims=True)    # largest logit becomes 0: no overflow
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


def softmax_forward(x: np.ndarray, axis: int = -1) -> tuple[np.ndarray, SoftmaxCache]:
    """Numerically stable softmax along ``axis``.

    Implements eq. (A.1). Subtracting the maximum before ``exp`` changes nothing mathematically
    (it cancels between numerator and denominator) but keeps every exponent ``<= 0``, so logits
    of any size give finite results. ``-inf`` entries (masked positions) get probability 0.

    Parameters
    ----------
    x : ndarray, any shape
        Logits; float32 or float64.
    axis : int, optional
        Axis along which the probabilities sum to one (default: last).

    Returns
    -------
    y : ndarray, shape of ``x``
        Probabilities.
    cache : SoftmaxCache
        For :func:`softmax_backward`.
    """
    s = Shapes("softmax_forward")
    if np.ndim(x) == 0:
        s.fail("x must have at least one axis to normalise over, got a scalar")
    x = s.array("x", x, " ".join(f"n{i}" for i in range(np.ndim(x))), neg_inf_ok=True)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) \
            or not -x.ndim <= axis < x.ndim:
        s.fail(f"axis must be an integer in [{-x.ndim}, {x.ndim - 1}] for x of shape "
               f"{x.shape}, got {axis!r}")
    if np.any(np.all(x == -np.inf, axis=axis)):
        s.fail("x has a row that is -inf everywhere along axis; its softmax is undefined "
               "(every position masked)")
    y = _softmax(x, axis)
    return y, SoftmaxCache(y, axis)


def softmax_backward(dy: np.ndarray, cache: SoftmaxCache) -> np.ndarray:
    """Backward of softmax: the Jacobian-vector product, never the Jacobian itself.

    Implements eq. (A.2). The Jacobian of softmax is ``diag(y) - y y^T`` per row; multiplying it
    by ``dy`` gives ``y * (dy - sum(dy * y))``, which costs O(n) per row instead of O(n^2).

    Parameters
    ----------
    dy : ndarray, shape of the forward output
        Upstream gradient.
    cache : SoftmaxCache
        From :func:`softmax_forward`.

    Returns
    -------
    dx : ndarray, shape of ``dy``
    """
    check_cache("softmax_backward", cache, SoftmaxCache, "softmax_forward")
    s = Shapes("softmax_backward")
    for i, size in enumerate(cache.y.shape):
        s.bind(f"n{i}", size, "cache.y")
    dy = s.array("dy", dy, " ".join(f"n{i}" for i in range(cache.y.ndim)))
    # --- exercise: softmax_backward ---
    y = cache.y
    return y * (dy - np.sum(dy * y, axis=cache.axis, keepdims=True))
    # --- end ---


# --- scaled dot-product attention ------------------------------------------------------------

class AttentionCache(NamedTuple):
    """What :func:`attention_backward` needs."""

    q: np.ndarray       # (B, h, Tq, d)
    k: np.ndarray       # (B, h, Tk, d)
    v: np.ndarray       # (B, h, Tk, dv)
    probs: np.ndarray   # (B, h, Tq, Tk) attention weights P
    scale: float        # 1 / sqrt(d)


def causal_mask(Tq: int, Tk: int) -> np.ndarray:
    """Boolean mask of allowed (query, key) pairs, aligned to the end.

    Implements the condition of eq. (A.4): query ``i`` sits at absolute position
    ``Tk - Tq + i`` and may look at keys ``j <= Tk - Tq + i``. With ``Tq == Tk`` this is the
    usual lower triangle; with ``Tq < Tk`` the queries are the last ``Tq`` tokens (decoding with
    a cache of earlier keys).

    Parameters
    ----------
    Tq, Tk : int
        Number of queries and keys, ``1 <= Tq <= Tk``.

    Returns
    -------
    ndarray of bool, shape (Tq, Tk)
    """
    Tq = check_int("causal_mask", "Tq", Tq, 1)
    Tk = check_int("causal_mask", "Tk", Tk, 1)
    if Tq > Tk:
        raise ValueError(f"causal_mask: Tq = {Tq} queries cannot be the last tokens of "
                         f"Tk = {Tk} keys; a causal mask needs Tq <= Tk")
    return np.arange(Tk)[None, :] <= np.arange(Tk - Tq, Tk)[:, None]


def _attention(q, k, v, causal: bool):
    """Eqs. (A.3)-(A.5) on checked arrays; returns (out, cache)."""
    scale = float(1.0 / np.sqrt(q.shape[-1]))   # a Python float keeps float32 as float32
    scores = (q @ np.swapaxes(k, -1, -2)) * scale                 # (A.3): (B, h, Tq, Tk)
    if causal:
        scores = np.where(causal_mask(q.shape[-2], k.shape[-2]), scores, -np.inf)  # (A.4)
    probs = _softmax(scores, axis=-1)                              # (A.5)
    return probs @ v, AttentionCache(q, k, v, probs, scale)


def _attention_backward(dout, cache: AttentionCache):
    """Eqs. (A.6)-(A.8); masked entries have P = 0, so they get no gradient."""
    # --- exercise: attention_backward ---
    dv = np.swapaxes(cache.probs, -1, -2) @ dout                   # (A.6)
    dprobs = dout @ np.swapaxes(cache.v, -1, -2)                   # (A.6)
    dscores = cache.probs * (dprobs - np.sum(dprobs * cache.probs, axis=-1, keepdims=True))
    dq = (dscores @ cache.k) * cache.scale                         # (A.8)
    dk = (np.swapaxes(dscores, -1, -2) @ cache.q) * cache.scale    # (A.8)
    return dq, dk, dv
    # --- end ---


def attention_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray,
                      causal: bool = True) -> tuple[np.ndarray, AttentionCache]:
    """Scaled dot-product attention, batched over batch and heads.

    Implements eqs. (A.3) to (A.5). Masked scores are set to ``-inf`` *before* the softmax, so
    they get exactly zero weight; every row keeps at least its own position, so no row is all
    ``-inf`` and no NaN can appear, however large the logits.

    Parameters
    ----------
    q : ndarray, shape (B, h, Tq, d)
        Queries.
    k : ndarray, shape (B, h, Tk, d)
        Keys.
    v : ndarray, shape (B, h, Tk, dv)
        Values.
    causal : bool, optional
        Apply the causal mask of :func:`causal_mask` (default True). Requires ``Tq <= Tk``.

    Returns
    -------
    out : ndarray, shape (B, h, Tq, dv)
    cache : AttentionCache
    """
    s = Shapes("attention_forward")
    q = s.array("q", q, "B h Tq d")
    k = s.array("k", k, "B h Tk d")
    v = s.array("v", v, "B h Tk dv")
    if causal and q.shape[2] > k.shape[2]:
        s.fail(f"causal attention needs Tq <= Tk (queries are the last Tq of the Tk tokens), "
               f"got Tq = {q.shape[2]} from q and Tk = {k.shape[2]} from k")
    return _attention(q, k, v, bool(causal))


def attention_backward(dout: np.ndarray, cache: AttentionCache):
    """Backward of :func:`attention_forward`.

    Implements eqs. (A.6) to (A.8): the product ``O = P V``, then the softmax Jacobian-vector
    product (A.2) row by row, then the scaled product ``S = Q K^T / sqrt(d)``.

    Parameters
    ----------
    dout : ndarray, shape (B, h, Tq, dv)
        Upstream gradient of the output.
    cache : AttentionCache
        From :func:`attention_forward`.

    Returns
    -------
    dq : ndarray, shape (B, h, Tq, d)
    dk : ndarray, shape (B, h, Tk, d)
    dv : ndarray, shape (B, h, Tk, dv)
    """
    check_cache("attention_backward", cache, AttentionCache, "attention_forward")
    s = Shapes("attention_backward")
    for letter, size in zip(("B", "h", "Tq"), cache.probs.shape):
        s.bind(letter, size, "cache.probs")
    s.bind("dv", cache.v.shape[-1], "cache.v")
    dout = s.array("dout", dout, "B h Tq dv")
    return _attention_backward(dout, cache)


# --- multi-head self-attention layer ---------------------------------------------------------

class MHACache(NamedTuple):
    """What :func:`mha_backward` needs."""

    x: np.ndarray             # (B, T, D) layer input
    attn: AttentionCache      # per-head queries, keys, values and weights
    merged: np.ndarray        # (B, T, D) concatenated head outputs (input of Wo)
    params: dict              # the parameters used
    n_heads: int


def init_mha_params(D: int, n_heads: int, seed: int = 0, bias: bool = True,
                    dtype=np.float64) -> dict[str, np.ndarray]:
    """Initial parameters of a multi-head self-attention layer.

    ``Wq``, ``Wk``, ``Wv``, ``Wo`` have independent normal entries with standard deviation
    ``1/sqrt(D)`` (so projections keep roughly unit variance); biases start at zero. There is
    no key bias: it would add the same number to a whole row of scores, which the softmax
    ignores, so it could never change the output.

    Parameters
    ----------
    D : int
        Model width; must be divisible by ``n_heads``.
    n_heads : int
        Number of heads ``h``; each has width ``d = D / h``.
    seed : int, optional
        Seed of the ``np.random.Generator`` used.
    bias : bool, optional
        Include ``bq``, ``bv``, ``bo`` (default True).
    dtype : numpy dtype, optional
        float64 (default) or float32.

    Returns
    -------
    dict
        ``Wq``, ``Wk``, ``Wv``, ``Wo`` of shape (D, D) and, with ``bias``, the (D,) biases.
    """
    D = check_int("init_mha_params", "D", D, 1)
    _head_width("init_mha_params", D, n_heads)
    rng = np.random.default_rng(seed)
    params = {name: (rng.standard_normal((D, D)) / np.sqrt(D)).astype(dtype)
              for name in ("Wq", "Wk", "Wv", "Wo")}
    if bias:
        params.update({name: np.zeros(D, dtype=dtype) for name in MHA_BIASES})
    return params


def _head_width(func: str, D: int, n_heads) -> int:
    n_heads = check_int(func, "n_heads", n_heads, 1)
    if D % n_heads:
        raise ValueError(f"{func}: n_heads = {n_heads} must divide the model width D = {D}")
    return D // n_heads


def _check_mha(func: str, x, params, n_heads, x_axes: str):
    s = Shapes(func)
    x = s.array("x", x, x_axes)
    p = s.params(params, "params", MHA_PARAMS, optional=MHA_BIASES)
    _head_width(func, s.sizes["D"], n_heads)
    return x, p


def _project(x, p, name):
    """x W + b for one of q, k, v, o (bias optional)."""
    y = x @ p["W" + name]
    return y + p["b" + name] if "b" + name in p else y


def _split_heads(x, n_heads):
    """(B, T, D) -> (B, h, T, d)."""
    B, T, D = x.shape
    return x.reshape(B, T, n_heads, D // n_heads).transpose(0, 2, 1, 3)


def _merge_heads(x):
    """(B, h, T, d) -> (B, T, h * d)."""
    B, h, T, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, h * d)


def mha_forward(x: np.ndarray, params: dict[str, np.ndarray], n_heads: int,
                causal: bool = True) -> tuple[np.ndarray, MHACache]:
    """Multi-head self-attention layer.

    Implements eq. (A.9) around the attention core (A.3)-(A.5): project ``x`` to queries, keys
    and values, view the width ``D`` as ``h`` heads of width ``d = D / h`` (a reshape, no copy
    of the math), attend in every head at once with batched matmuls, merge the heads back and
    project with ``Wo``.

    Parameters
    ----------
    x : ndarray, shape (B, T, D)
        Input sequence.
    params : dict
        ``Wq``, ``Wk``, ``Wv``, ``Wo`` (D, D); optional biases ``bq``, ``bv``, ``bo`` (D,).
    n_heads : int
        Number of heads; must divide ``D``.
    causal : bool, optional
        Each position attends only to itself and earlier positions (default True).

    Returns
    -------
    y : ndarray, shape (B, T, D)
    cache : MHACache
    """
    x, p = _check_mha("mha_forward", x, params, n_heads, "B T D")
    q, k, v = (_split_heads(_project(x, p, name), n_heads) for name in "qkv")
    out, attn = _attention(q, k, v, bool(causal))
    merged = _merge_heads(out)
    return _project(merged, p, "o"), MHACache(x, attn, merged, p, n_heads)


def mha_backward(dy: np.ndarray, cache: MHACache):
    """Backward of :func:`mha_forward`.

    The output projection, then the merge and split of heads (reshapes, so their backward is
    the inverse reshape), then (A.6)-(A.8), then the three input projections, whose gradients
    with respect to ``x`` add up because ``x`` feeds all three.

    Parameters
    ----------
    dy : ndarray, shape (B, T, D)
        Upstream gradient of the layer output.
    cache : MHACache
        From :func:`mha_forward`.

    Returns
    -------
    dx : ndarray, shape (B, T, D)
    grads : dict
        Same keys as the ``params`` used in the forward.
    """
    check_cache("mha_backward", cache, MHACache, "mha_forward")
    s = Shapes("mha_backward")
    for letter, size in zip("BTD", cache.x.shape):
        s.bind(letter, size, "cache.x")
    dy = s.array("dy", dy, "B T D")
    p = cache.params
    grads = {"Wo": np.einsum("btd,bte->de", cache.merged, dy, optimize=True)}
    if "bo" in p:
        grads["bo"] = dy.sum(axis=(0, 1))
    dmerged = dy @ p["Wo"].T
    dq, dk, dv = _attention_backward(_split_heads(dmerged, cache.n_heads), cache.attn)
    dx = np.zeros_like(dy)
    for name, dhead in zip("qkv", (dq, dk, dv)):
        dproj = _merge_heads(dhead)                                   # (B, T, D)
        grads["W" + name] = np.einsum("btd,bte->de", cache.x, dproj, optimize=True)
        if "b" + name in p:
            grads["b" + name] = dproj.sum(axis=(0, 1))
        dx += dproj @ p["W" + name].T
    return dx, {key: grads[key] for key in p}


# --- incremental decoding with a KV cache ----------------------------------------------------

@dataclass
class KVCache:
    """Keys and values of every token decoded so far, for :func:`mha_step`.

    The buffers are preallocated with room for ``capacity`` tokens and doubled when full, so
    appending a token costs O(1) amortised. Only the first ``length`` positions are valid.
    :func:`mha_step` updates the cache **in place** (and also returns it).

    Memory: ``2 * B * T * D`` numbers after ``T`` tokens; it grows with the context.
    """

    k: np.ndarray   # (B, h, capacity, d)
    v: np.ndarray   # (B, h, capacity, d)
    length: int = 0

    @property
    def keys(self) -> np.ndarray:
        """Valid keys, shape (B, h, length, d) (a view, not a copy)."""
        return self.k[:, :, :self.length]

    @property
    def values(self) -> np.ndarray:
        """Valid values, shape (B, h, length, d) (a view, not a copy)."""
        return self.v[:, :, :self.length]

    def append(self, k_new: np.ndarray, v_new: np.ndarray) -> None:
        """Store ``T_new`` more keys and values, each (B, h, T_new, d), growing if needed."""
        end = self.length + k_new.shape[2]
        if end > self.k.shape[2]:
            capacity = max(end, 2 * self.k.shape[2])
            grow = [(0, 0), (0, 0), (0, capacity - self.k.shape[2]), (0, 0)]
            self.k, self.v = np.pad(self.k, grow), np.pad(self.v, grow)
        self.k[:, :, self.length:end] = k_new
        self.v[:, :, self.length:end] = v_new
        self.length = end


def init_kv_cache(B: int, D: int, n_heads: int, capacity: int = 64,
                  dtype=np.float64) -> KVCache:
    """An empty :class:`KVCache` for a batch of ``B`` sequences.

    Parameters
    ----------
    B, D : int
        Batch size and model width.
    n_heads : int
        Number of heads; must divide ``D``.
    capacity : int, optional
        Tokens to preallocate room for; the cache grows beyond it by doubling.
    dtype : numpy dtype, optional

    Returns
    -------
    KVCache
    """
    B = check_int("init_kv_cache", "B", B, 1)
    D = check_int("init_kv_cache", "D", D, 1)
    capacity = check_int("init_kv_cache", "capacity", capacity, 1)
    d = _head_width("init_kv_cache", D, n_heads)
    shape = (B, n_heads, capacity, d)
    return KVCache(np.zeros(shape, dtype=dtype), np.zeros(shape, dtype=dtype), 0)


def mha_step(x: np.ndarray, params: dict[str, np.ndarray], n_heads: int,
             cache: KVCache | None = None) -> tuple[np.ndarray, KVCache]:
    """Causal multi-head attention for new tokens only, reusing cached keys and values.

    The new tokens' keys and values are appended to ``cache``; their queries attend to every
    cached token and to themselves with the end-aligned causal mask of eq. (A.4). The result
    equals the corresponding rows of ``mha_forward(all_tokens, causal=True)``.

    Cost at position ``t``: O(t * D) time (one query against ``t`` keys per head) and a cache
    of ``2 * t * D`` numbers per sequence, both growing with the context.

    Parameters
    ----------
    x : ndarray, shape (B, D) or (B, T_new, D)
        One new token, or several (a prompt) at once.
    params : dict
        As for :func:`mha_forward`.
    n_heads : int
        Number of heads; must divide ``D``.
    cache : KVCache, optional
        Keys and values of the earlier tokens; ``None`` starts a new sequence.

    Returns
    -------
    y : ndarray, shape of ``x``
        Layer output for the new tokens.
    cache : KVCache
        The same cache object, now holding the new tokens too.
    """
    one_token = np.ndim(x) == 2
    x, p = _check_mha("mha_step", np.asarray(x)[:, None] if one_token else x,
                      params, n_heads, "B T D")
    B, _, D = x.shape
    if cache is None:
        cache = init_kv_cache(B, D, n_heads, dtype=np.result_type(x, *p.values()))
    elif not isinstance(cache, KVCache):
        raise TypeError(f"mha_step: cache must be a KVCache or None, got {type(cache).__name__}")
    elif cache.k.shape[:2] != (B, n_heads) or cache.k.shape[3] * n_heads != D:
        raise ValueError(f"mha_step: cache holds keys of shape (B, h, T, d) = {cache.keys.shape},"
                         f" which does not fit x with B = {B}, D = {D} and n_heads = {n_heads}")
    # --- exercise: kv_cache_step ---
    q, k, v = (_split_heads(_project(x, p, name), n_heads) for name in "qkv")
    cache.append(k, v)
    out, _ = _attention(q, cache.keys, cache.values, causal=True)
    y = _project(_merge_heads(out), p, "o")
    return (y[:, 0] if one_token else y), cache
    # --- end ---
