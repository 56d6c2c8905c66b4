"""Checks for [`minirnn.retention`][minirnn.retention]: one function per public function, same
name."""

from __future__ import annotations

import numpy as np

from ..states import RetentionState, RetentionStateGrad
from .core import (
    Shapes,
    active,
    check_bool,
    check_cache,
    check_int,
    gradient,
    same_dtype,
)


def gamma_per_head(func: str, gamma, h: int | None) -> np.ndarray:
    """``gamma`` as a float64 array of shape (h,), each in [0, 1] (a float: the same for all)."""
    raw = np.asarray(gamma)
    if raw.dtype.kind not in "fiu":
        raise TypeError(f"{func}: gamma must be a float or an array of real numbers of shape "
                        f"(h,), got {type(gamma).__name__} of dtype {raw.dtype}")
    gammas = raw.astype(np.float64)
    if gammas.ndim == 0:
        gammas = np.full(1 if h is None else h, float(gammas))
    elif gammas.ndim != 1 or gammas.shape[0] == 0 or (h is not None and gammas.shape[0] != h):
        want = "(h,)" if h is None else f"(h,) = ({h},)"
        raise ValueError(f"{func}: gamma must be a float or have shape {want}, "
                         f"one decay per head, got shape {gammas.shape}")
    if not np.all((gammas >= 0) & (gammas <= 1)):   # also rejects NaN
        raise ValueError(f"{func}: every gamma must lie in [0, 1], got {gammas.tolist()}")
    return gammas


def decay_mask(gamma, T):
    """``gamma`` per head (float64, (h,)) and ``T >= 1``."""
    if not active():
        return gamma, T
    return gamma_per_head("decay_mask", gamma, None), check_int("decay_mask", "T", T, 1)


def state(s: Shapes, state, dtype):
    """An incoming state checked against the sizes bound so far and converted to ``dtype``;
    ``None`` (a new sequence) stays ``None``."""
    if state is None:
        return None
    if not isinstance(state, RetentionState):
        s.fail(f"state must be a RetentionState or None, got {type(state).__name__}"
               + (" (gated retention's state has one count per sequence; retention needs one "
                  "per head)" if type(state).__name__ == "GatedState" else ""), TypeError)
    h = s.sizes["h"]
    S = s.array("state.S", state.S, "B h d dv")
    z = s.array("state.z", state.z, "B h d")
    count = s.array("state.s", state.s, "h").astype(np.float64)
    if np.any(count < 0):
        s.fail(f"state.s must be a count >= 0 for each of the h = {h} heads")
    position = check_int(s.func, "state.position", state.position, 0)
    return RetentionState(S=S.astype(dtype, copy=False), z=z.astype(dtype, copy=False),
                          s=count, position=position)


def _qkv(func, q, k, v, gamma, state_in, normalize):
    """The shared part of the three forms: arrays, decays, state, flag."""
    s = Shapes(func)
    q = s.array("q", q, "B h T d")
    k = s.array("k", k, "B h T d")
    v = s.array("v", v, "B h T dv")
    gamma = gamma_per_head(func, gamma, s.sizes["h"])
    check_bool(func, "normalize", normalize)
    q, k, v = same_dtype(q, k, v)
    return q, k, v, gamma, state(s, state_in, q.dtype)


def retention_parallel(q, k, v, gamma, state, normalize):
    """``(q, k, v, gamma, state)`` checked: (B, h, T, d), (B, h, T, d), (B, h, T, dv); gamma
    (h,); the incoming state (or None)."""
    if not active():
        return q, k, v, gamma, state
    return _qkv("retention_parallel", q, k, v, gamma, state, normalize)


def retention_recurrent(q, k, v, gamma, state, normalize):
    """As ``retention_parallel``."""
    if not active():
        return q, k, v, gamma, state
    return _qkv("retention_recurrent", q, k, v, gamma, state, normalize)


def retention_chunkwise(q, k, v, gamma, chunk_size, state, normalize):
    """As ``retention_parallel``; ``chunk_size`` must be an integer >= 1."""
    if not active():
        return q, k, v, gamma, state
    check_int("retention_chunkwise", "chunk_size", chunk_size, 1)
    return _qkv("retention_chunkwise", q, k, v, gamma, state, normalize)


def retention_final_state(k, v, gamma, state_in):
    """``(k, v, gamma, state)`` checked."""
    if not active():
        return k, v, gamma, state_in
    s = Shapes("retention_final_state")
    k = s.array("k", k, "B h T d")
    v = s.array("v", v, "B h T dv")
    gamma = gamma_per_head(s.func, gamma, s.sizes["h"])
    k, v = same_dtype(k, v)
    return k, v, gamma, state(s, state_in, k.dtype)


def chunk_decays(gamma, L, s_prev, normalize):
    """``gamma`` per head (h,), ``L >= 1``, the count ``s_prev`` (h,) >= 0 (its dtype kept)."""
    if not active():
        return gamma, L, s_prev
    s = Shapes("chunk_decays")
    L = check_int("chunk_decays", "L", L, 1)
    per_head = np.ndim(gamma) == 1
    gamma = gamma_per_head("chunk_decays", gamma, None)
    if per_head:
        s.bind("h", gamma.size, f"gamma (shape {gamma.shape})")
    s_prev = s.array("s_prev", s_prev, "h")
    if np.any(s_prev < 0):
        s.fail(f"s_prev must be the count state.s, >= 0 for every head, got {s_prev.tolist()}")
    check_bool("chunk_decays", "normalize", normalize)
    return np.broadcast_to(gamma, s_prev.shape).copy(), L, s_prev


def score_normaliser_backward(dout, out, r, c):
    if not active():
        return dout, out, r, c
    s = Shapes("score_normaliser_backward")
    dout = s.array("dout", dout, "B h T dv")
    out = s.array("out", out, "B h T dv")
    r = s.array("r", r, "B h T")
    c = s.array("c", c, "B h T")
    if np.any(c < 1):
        s.fail("c must be the score normaliser max(|r|, 1) >= 1 of the forward")
    return same_dtype(dout, out, r, c)


def dstate_of(func: str, dstate, S, z):
    """The gradient of a returned state (S, z), checked; ``None`` stays ``None``."""
    if dstate is None:
        return None
    if not isinstance(dstate, RetentionStateGrad):
        raise TypeError(f"{func}: dstate must be a RetentionStateGrad or None, "
                        f"got {type(dstate).__name__}")
    s = Shapes(func)
    s.bind_all("B h d dv", S.shape, "the returned state")
    return RetentionStateGrad(S=s.array("dstate.S", dstate.S, "B h d dv"),
                              z=s.array("dstate.z", dstate.z, "B h d"), s=dstate.s)


def _backward(func, forward, cls, dout, cache, dstate, final):
    dout = gradient(func, "dout", dout, cache, cls, forward, "out", "B h T dv")
    return dout, dstate_of(func, dstate, *final(cache))


def retention_parallel_backward(dout, cache, dstate):
    """``dout`` and ``dstate`` checked against the cache of ``retention_parallel``."""
    if not active():
        return dout, dstate
    return _backward("retention_parallel_backward", "retention_parallel",
                     "RetentionParallelCache", dout, cache, dstate,
                     lambda c: (c.state.S, c.state.z))


def retention_recurrent_backward(dout, cache, dstate):
    """``dout`` and ``dstate`` checked against the cache of ``retention_recurrent``."""
    if not active():
        return dout, dstate
    return _backward("retention_recurrent_backward", "retention_recurrent",
                     "RetentionRecurrentCache", dout, cache, dstate,
                     lambda c: (c.final.S, c.final.z))


def retention_chunkwise_backward(dout, cache, dstate):
    """``dout`` and ``dstate`` checked against the cache of ``retention_chunkwise``."""
    if not active():
        return dout, dstate
    func = "retention_chunkwise_backward"
    check_cache(func, cache, "RetentionChunkwiseCache", "retention_chunkwise")
    first, last = cache.chunks[0], cache.chunks[-1]
    s = Shapes(func)
    s.bind_all("B h", first.out.shape[:2], "the forward's output")
    s.bind("T", cache.bounds[-1][1], "the forward's output")
    s.bind("dv", first.out.shape[-1], "the forward's output")
    dout = s.array("dout", dout, "B h T dv")
    return dout, dstate_of(func, dstate, last.state.S, last.state.z)
