"""Checks for [`minirnn.attention`][minirnn.attention]: one function per public function, same
name."""

from __future__ import annotations

import numpy as np

from ..states import KVCache
from .core import (
    Shapes,
    active,
    check_cache,
    check_int,
    gradient,
    lead,
)

# No key bias: adding b to every key adds the same q . b to a whole row of scores, which the
# softmax ignores (A.1), so a key bias could never change the output or receive a gradient.
MHA_PARAMS = {"Wq": "D D", "Wk": "D D", "Wv": "D D", "Wo": "D D", "bq": "D", "bv": "D", "bo": "D"}
MHA_BIASES = ("bq", "bv", "bo")


def softmax_forward(x, axis):
    """``x`` checked: a float array with at least one axis, finite or ``-inf``; a valid axis."""
    if not active():
        return x
    s = Shapes("softmax_forward")
    if np.ndim(x) == 0:
        s.fail("x must have at least one axis to normalise over, got a scalar")
    x = s.array("x", x, lead(np.ndim(x), ""), neg_inf_ok=True)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) \
            or not -x.ndim <= axis < x.ndim:
        s.fail(f"axis must be an integer in [{-x.ndim}, {x.ndim - 1}] for x of shape "
               f"{x.shape}, got {axis!r}")
    if np.any(np.all(x == -np.inf, axis=axis)):
        s.fail("x has a row that is -inf everywhere along axis; its softmax is undefined "
               "(every position masked)")
    return x


def softmax_backward(dy, cache):
    if not active():
        return dy
    check_cache("softmax_backward", cache, "SoftmaxCache", "softmax_forward")   # before cache.y
    return gradient("softmax_backward", "dy", dy, cache, "SoftmaxCache", "softmax_forward", "y",
                    lead(cache.y.ndim, ""))


def causal_mask(Tq, Tk):
    Tq = check_int("causal_mask", "Tq", Tq, 1)
    Tk = check_int("causal_mask", "Tk", Tk, 1)
    if Tq > Tk:
        raise ValueError(f"causal_mask: Tq = {Tq} queries cannot be the last tokens of "
                         f"Tk = {Tk} keys; a causal mask needs Tq <= Tk")
    return Tq, Tk


def attention_forward(q, k, v, causal):
    """``(q, k, v, causal)`` checked: (B, h, Tq, d), (B, h, Tk, d), (B, h, Tk, dv)."""
    if not active():
        return q, k, v, bool(causal)
    s = Shapes("attention_forward")
    q = s.array("q", q, "B h Tq d")
    k = s.array("k", k, "B h Tk d")
    v = s.array("v", v, "B h Tk dv")
    if causal and q.shape[2] > k.shape[2]:
        s.fail(f"causal attention needs Tq <= Tk (queries are the last Tq of the Tk tokens), "
               f"got Tq = {q.shape[2]} from q and Tk = {k.shape[2]} from k")
    return q, k, v, bool(causal)


def attention_backward(dout, cache):
    if not active():
        return dout
    check_cache("attention_backward", cache, "AttentionCache", "attention_forward")
    s = Shapes("attention_backward")
    s.bind_all("B h Tq", cache.P.shape, "cache.P")
    s.bind("dv", cache.v.shape[-1], "cache.v")
    return s.array("dout", dout, "B h Tq dv")


def head_width(func: str, D: int, n_heads) -> int:
    """``d = D / n_heads``, checked to be whole."""
    n_heads = check_int(func, "n_heads", n_heads, 1)
    if D % n_heads:
        raise ValueError(f"{func}: n_heads = {n_heads} must divide the model width D = {D}")
    return D // n_heads


def init_mha_params(D, n_heads):
    D = check_int("init_mha_params", "D", D, 1)
    head_width("init_mha_params", D, n_heads)
    return D


def layer_inputs(func, x, params, n_heads, axes="B T D"):
    s = Shapes(func)
    x = s.array("x", x, axes)
    params = s.params(params, "params", MHA_PARAMS, optional=MHA_BIASES)
    head_width(func, s.sizes["D"], n_heads)
    return x, params


def mha_forward(x, params, n_heads, causal):
    """``(x, params)`` checked: x (B, T, D), the parameters of ``MHA_PARAMS``, h | D."""
    if not active():
        return x, params
    x, params = layer_inputs("mha_forward", x, params, n_heads)
    return x, params


def mha_backward(dy, cache):
    if not active():
        return dy
    return gradient("mha_backward", "dy", dy, cache, "MHACache", "mha_forward", "x", "B T D")


def init_kv_cache(B, D, n_heads, capacity):
    B = check_int("init_kv_cache", "B", B, 1)
    D = check_int("init_kv_cache", "D", D, 1)
    capacity = check_int("init_kv_cache", "capacity", capacity, 1)
    head_width("init_kv_cache", D, n_heads)
    return B, D, capacity


def mha_step(x, params, n_heads, state):
    """``(x, params, state)`` checked: x (B, D) or (B, T_new, D); ``state`` a fitting KVCache
    or None."""
    if not active():
        return x, params, state
    one_token = np.ndim(x) == 2
    x3, params = layer_inputs("mha_step", np.asarray(x)[:, None] if one_token else x, params,
                              n_heads)
    B, _, D = x3.shape
    if state is not None and not isinstance(state, KVCache):
        raise TypeError(f"mha_step: state must be a KVCache or None, got {type(state).__name__}")
    if state is not None and (state.k.shape[:2] != (B, n_heads)
                              or state.k.shape[3] * n_heads != D):
        raise ValueError(f"mha_step: state holds keys of shape (B, h, T, d) = {state.keys.shape},"
                         f" which does not fit x with B = {B}, D = {D} and n_heads = {n_heads}")
    return (x3[:, 0] if one_token else x3), params, state
