"""Softmax self-attention: softmax, scaled dot-product attention, multi-head layer, KV cache.

Equations (numbered as on the docs page ``derivations/attention.md``)::

    y = softmax(x):  y_i = exp(x_i - max x) / sum_j exp(x_j - max x)        (A.1)
    dx = y * (dy - sum_j dy_j y_j)                                          (A.2)

    E = Q K^T / sqrt(d)                                                     (A.3)
    E~_ij = E_ij if j <= i + (Tk - Tq) else -inf      (causal mask)         (A.4)
    P = softmax(E~) row by row,   O = P V                                  (A.5)

    dV = P^T dO,   dP = dO V^T                                              (A.6)
    dE = P * (dP - rowsum(dP * P))                                          (A.7)
    dQ = dE K / sqrt(d),   dK = dE^T Q / sqrt(d)                            (A.8)

    multi-head: Q = X Wq + bq, K = X Wk, V = X Wv + bv, split D into h heads of d = D / h,
    Y = concat_heads(O) Wo + bo                                             (A.9)

Shapes: ``q`` (B, h, Tq, d), ``k`` (B, h, Tk, d), ``v`` (B, h, Tk, dv); layer input (B, T, D).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import attention as check
from .layers import merge_heads, split_heads, weight_gradient
from .states import KVCache

__all__ = [
    "AttentionCache",
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

MHA_BIASES = ("bq", "bv", "bo")   # optional; there is no key bias (see init_mha_params)


# --- softmax ----------------------------------------------------------------------------------

class SoftmaxCache(NamedTuple):
    """What [`softmax_backward`][minirnn.attention.softmax_backward] needs: the output and the
    axis."""

    y: np.ndarray
    axis: int


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
        For [`softmax_backward`][minirnn.attention.softmax_backward].
    """
    x = check.softmax_forward(x, axis)
    # the largest logit of each row, x.max(axis, keepdims=True), read off where argmax points:
    # NumPy's max over a short axis (a row of 16 scores) is several times slower than argmax
    top = np.take_along_axis(x, x.argmax(axis=axis, keepdims=True), axis=axis)
    y = x - top                                          # largest logit becomes 0: no overflow
    np.exp(y, out=y)                                     # in place: in attention y holds T x T
    y /= y.sum(axis=axis, keepdims=True)                 # numbers per head             (A.1)
    return y, SoftmaxCache(y=y, axis=axis)


def softmax_backward(dy: np.ndarray, cache: SoftmaxCache) -> np.ndarray:
    """Backward of softmax: the Jacobian-vector product, never the Jacobian itself.

    Implements eq. (A.2). The Jacobian of softmax is ``diag(y) - y y^T`` per row; multiplying it
    by ``dy`` gives ``y * (dy - sum(dy * y))``, which costs O(n) per row instead of O(n^2).

    Parameters
    ----------
    dy : ndarray, shape of the forward output
        Upstream gradient.
    cache : SoftmaxCache
        From [`softmax_forward`][minirnn.attention.softmax_forward].

    Returns
    -------
    dx : ndarray, shape of ``dy``
    """
    dy = check.softmax_backward(dy, cache)
    # --- exercise: softmax_backward ---
    y = cache.y
    return y * (dy - np.sum(dy * y, axis=cache.axis, keepdims=True))
    # --- end ---


# --- scaled dot-product attention ------------------------------------------------------------

class AttentionCache(NamedTuple):
    """What [`attention_backward`][minirnn.attention.attention_backward] needs."""

    q: np.ndarray       # (B, h, Tq, d)
    k: np.ndarray       # (B, h, Tk, d)
    v: np.ndarray       # (B, h, Tk, dv)
    P: np.ndarray       # (B, h, Tq, Tk) attention weights
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
    Tq, Tk = check.causal_mask(Tq, Tk)
    return np.arange(Tk)[None, :] <= np.arange(Tk - Tq, Tk)[:, None]


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
        Apply the causal mask of [`causal_mask`][minirnn.attention.causal_mask] (default True).
        Requires ``Tq <= Tk``.

    Returns
    -------
    out : ndarray, shape (B, h, Tq, dv)
    cache : AttentionCache
    """
    q, k, v, causal = check.attention_forward(q, k, v, causal)
    scale = q.shape[-1] ** -0.5                  # a Python float keeps float32 as float32
    # (A.3), the scale applied to q (T d numbers) rather than to E (T^2): (B, h, Tq, Tk)
    E = (q * scale) @ np.swapaxes(k, -1, -2)
    if causal and q.shape[-2] > 1:               # one query, the last token, sees every key
        future = ~causal_mask(q.shape[-2], k.shape[-2])
        np.copyto(E, -np.inf, where=future)                        # (A.4), in place
    P, _ = softmax_forward(E, axis=-1)                             # (A.5)
    out = P @ v                                                    # (A.5)
    return out, AttentionCache(q=q, k=k, v=v, P=P, scale=scale)


def attention_backward(dout: np.ndarray, cache: AttentionCache):
    """Backward of [`attention_forward`][minirnn.attention.attention_forward].

    Implements eqs. (A.6) to (A.8): the product ``O = P V``, then the softmax Jacobian-vector
    product (A.2) row by row, then the scaled product ``E = Q K^T / sqrt(d)``.

    Parameters
    ----------
    dout : ndarray, shape (B, h, Tq, dv)
        Upstream gradient of the output.
    cache : AttentionCache
        From [`attention_forward`][minirnn.attention.attention_forward].

    Returns
    -------
    dq : ndarray, shape (B, h, Tq, d)
    dk : ndarray, shape (B, h, Tk, d)
    dv : ndarray, shape (B, h, Tk, dv)
    """
    dout = check.attention_backward(dout, cache)
    # --- exercise: attention_backward ---
    P = cache.P
    dv = np.swapaxes(P, -1, -2) @ dout                             # (A.6)
    dP = dout @ np.swapaxes(cache.v, -1, -2)                       # (A.6)
    dE = P * (dP - np.sum(dP * P, axis=-1, keepdims=True))         # (A.7); masked: P = 0
    dq = (dE @ cache.k) * cache.scale                              # (A.8)
    dk = (np.swapaxes(dE, -1, -2) @ cache.q) * cache.scale         # (A.8)
    return dq, dk, dv
    # --- end ---


# --- multi-head self-attention layer ---------------------------------------------------------

class MHACache(NamedTuple):
    """What [`mha_backward`][minirnn.attention.mha_backward] needs."""

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
    D = check.init_mha_params(D, n_heads)
    rng = np.random.default_rng(seed)
    params = {name: (rng.standard_normal((D, D)) / np.sqrt(D)).astype(dtype)
              for name in ("Wq", "Wk", "Wv", "Wo")}
    if bias:
        params.update({name: np.zeros(D, dtype=dtype) for name in MHA_BIASES})
    return params


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
    x, params = check.mha_forward(x, params, n_heads, causal)
    p, b = params, _biases(params)
    q = split_heads(x @ p["Wq"] + b["bq"], n_heads)                # (A.9): (B, h, T, d)
    k = split_heads(x @ p["Wk"], n_heads)
    v = split_heads(x @ p["Wv"] + b["bv"], n_heads)
    out, attn = attention_forward(q, k, v, causal)                 # (A.3)-(A.5), every head
    merged = merge_heads(out)                                      # (B, T, D)
    y = merged @ p["Wo"] + b["bo"]                                 # (A.9)
    return y, MHACache(x=x, attn=attn, merged=merged, params=params, n_heads=n_heads)


def mha_backward(dy: np.ndarray, cache: MHACache):
    """Backward of [`mha_forward`][minirnn.attention.mha_forward].

    The output projection, then the merge and split of heads (reshapes, so their backward is
    the inverse reshape), then (A.6)-(A.8), then the three input projections, whose gradients
    with respect to ``x`` add up because ``x`` feeds all three.

    Parameters
    ----------
    dy : ndarray, shape (B, T, D)
        Upstream gradient of the layer output.
    cache : MHACache
        From [`mha_forward`][minirnn.attention.mha_forward].

    Returns
    -------
    dx : ndarray, shape (B, T, D)
    grads : dict
        Same keys as the ``params`` used in the forward.
    """
    dy = check.mha_backward(dy, cache)
    p, x = cache.params, cache.x
    grads = {"Wo": weight_gradient(cache.merged, dy),
             "bo": dy.sum(axis=(0, 1))}
    dmerged = dy @ p["Wo"].T
    dq, dk, dv = attention_backward(split_heads(dmerged, cache.n_heads), cache.attn)
    dx = 0.0
    for name, dhead in zip("qkv", (dq, dk, dv)):                    # x feeds all three
        dproj = merge_heads(dhead)                                    # (B, T, D)
        grads["W" + name] = weight_gradient(x, dproj)
        grads["b" + name] = dproj.sum(axis=(0, 1))
        dx = dx + dproj @ p["W" + name].T
    return dx, {key: grads[key] for key in p}                       # the keys of params


def _biases(params: dict) -> dict:
    """The biases of ``params``, 0.0 for those left out (``bias=False``)."""
    return {name: params.get(name, 0.0) for name in MHA_BIASES}


# --- incremental decoding with a KV cache ----------------------------------------------------

def init_kv_cache(B: int, D: int, n_heads: int, capacity: int = 64,
                  dtype=np.float64) -> KVCache:
    """An empty [`KVCache`][minirnn.states.KVCache] for a batch of ``B`` sequences.

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
    B, D, capacity = check.init_kv_cache(B, D, n_heads, capacity)
    return KVCache.empty(B, n_heads, D // n_heads, capacity, dtype)


def mha_step(x: np.ndarray, params: dict[str, np.ndarray], n_heads: int,
             state: KVCache | None = None) -> tuple[np.ndarray, KVCache]:
    """Causal multi-head attention for new tokens only, reusing cached keys and values.

    The new tokens' keys and values are appended to the KV cache ``state``; their queries
    attend to every cached token and to themselves with the end-aligned causal mask of eq.
    (A.4). The result equals the corresponding rows of ``mha_forward(all_tokens, causal=True)``.

    Cost at position ``t``: O(t * D) time (one query against ``t`` keys per head) and a cache
    of ``2 * t * D`` numbers per sequence, both growing with the context.

    Parameters
    ----------
    x : ndarray, shape (B, D) or (B, T_new, D)
        One new token, or several (a prompt) at once.
    params : dict
        As for [`mha_forward`][minirnn.attention.mha_forward].
    n_heads : int
        Number of heads; must divide ``D``.
    state : KVCache, optional
        Keys and values of the earlier tokens; ``None`` starts a new sequence.

    Returns
    -------
    y : ndarray, shape of ``x``
        Layer output for the new tokens.
    state : KVCache
        The same cache object, now holding the new tokens too.
    """
    x, params, state = check.mha_step(x, params, n_heads, state)
    if state is None:                                              # a new sequence
        state = KVCache.empty(x.shape[0], n_heads, x.shape[-1] // n_heads,
                              dtype=np.result_type(x, *params.values()))
    p, b = params, _biases(params)
    xs = x[:, None] if x.ndim == 2 else x                          # (B, T_new, D)
    # --- exercise: kv_cache_step ---
    q = split_heads(xs @ p["Wq"] + b["bq"], n_heads)               # (A.9), new tokens only
    k = split_heads(xs @ p["Wk"], n_heads)
    v = split_heads(xs @ p["Wv"] + b["bv"], n_heads)
    state.append(k, v)                                             # keep them for later tokens
    out, _ = attention_forward(q, state.keys, state.values, causal=True)   # (A.4): end-aligned
    y = merge_heads(out) @ p["Wo"] + b["bo"]
    # --- end ---
    return (y[:, 0] if x.ndim == 2 else y), state
