"""Checks for [`minirnn.retention`][minirnn.retention]: one function per public function, same
name."""

from __future__ import annotations

import numpy as np

from .core import (
    Shapes,
    active,
    check_bool,
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
    g = raw.astype(np.float64)
    if g.ndim == 0:
        g = np.full(1 if h is None else h, float(g))
    elif g.ndim != 1 or g.shape[0] == 0 or (h is not None and g.shape[0] != h):
        want = "(h,)" if h is None else f"(h,) = ({h},)"
        raise ValueError(f"{func}: gamma must be a float or have shape {want}, "
                         f"one decay per head, got shape {g.shape}")
    if not np.all((g >= 0) & (g <= 1)):   # also rejects NaN
        raise ValueError(f"{func}: every gamma must lie in [0, 1], got {g.tolist()}")
    return g


def _gamma(func, gamma, h):
    """The fast path of ``gamma_per_head`` for trusted callers: only the conversion."""
    if isinstance(gamma, np.ndarray) and gamma.dtype == np.float64 and gamma.shape == (h,):
        return gamma
    return np.broadcast_to(np.asarray(gamma, dtype=np.float64), (h,)).copy()


def decay_mask(gamma, T):
    T = check_int("decay_mask", "T", T, 1)
    if not active():
        return _gamma("decay_mask", gamma, np.size(gamma)), T
    return gamma_per_head("decay_mask", gamma, None), T


def _state(s: Shapes, state, dtype):
    """An incoming state checked against the bound sizes; zeros (a new sequence) when None."""
    from ..retention import RetentionState

    B, h, d, dv = (s.sizes[x] for x in ("B", "h", "d", "dv"))
    if state is None:
        return RetentionState(np.zeros((B, h, d, dv), dtype=dtype),
                              np.zeros((B, h, d), dtype=dtype), np.zeros(h), 0)
    if not isinstance(state, RetentionState):
        s.fail(f"state must be a RetentionState or None, got {type(state).__name__}", TypeError)
    S = s.array("state.S", state.S, "B h d dv")
    z = s.array("state.z", state.z, "B h d")
    count = np.asarray(state.s, dtype=np.float64)
    if count.shape != (h,):
        s.fail(f"state.s must have shape (h,) = ({h},), got {count.shape}")
    position = check_int(s.func, "state.position", state.position, 0)
    return RetentionState(S.astype(dtype, copy=False), z.astype(dtype, copy=False), count,
                          position)


def _trusted_state(q, v, state, dtype):
    from ..retention import RetentionState

    B, h, _, d = q.shape
    if state is None:
        return RetentionState(np.zeros((B, h, d, v.shape[-1]), dtype=dtype),
                              np.zeros((B, h, d), dtype=dtype), np.zeros(h), 0)
    return RetentionState(state.S.astype(dtype, copy=False), state.z.astype(dtype, copy=False),
                          np.asarray(state.s, dtype=np.float64), state.position)


def _qkv(func, q, k, v, gamma, state, normalize, checking, with_state=True):
    """The shared part of the three forms: arrays, decays, state, flag."""
    if not checking:
        q, k, v = same_dtype(q, k, v)
        return q, k, v, _gamma(func, gamma, q.shape[1]), _trusted_state(q, v, state, q.dtype)
    s = Shapes(func)
    q = s.array("q", q, "B h T d")
    k = s.array("k", k, "B h T d")
    v = s.array("v", v, "B h T dv")
    gamma = gamma_per_head(func, gamma, s.sizes["h"])
    check_bool(func, "normalize", normalize)
    q, k, v = same_dtype(q, k, v)
    return q, k, v, gamma, (_state(s, state, q.dtype) if with_state else None)


def retention_parallel(q, k, v, gamma, normalize):
    """``(q, k, v, gamma)`` checked: (B, h, T, d), (B, h, T, d), (B, h, T, dv); gamma (h,)."""
    q, k, v, gamma, _ = _qkv("retention_parallel", q, k, v, gamma, None, normalize, active(),
                             with_state=False)
    return q, k, v, gamma


def retention_recurrent(q, k, v, gamma, state, normalize):
    """As ``retention_parallel``, plus the incoming state (zeros when None)."""
    return _qkv("retention_recurrent", q, k, v, gamma, state, normalize, active())


def retention_chunkwise(q, k, v, gamma, chunk_size, state, normalize):
    """As ``retention_recurrent``; ``chunk_size`` must be an integer >= 1."""
    check_int("retention_chunkwise", "chunk_size", chunk_size, 1)
    return _qkv("retention_chunkwise", q, k, v, gamma, state, normalize, active())


def retention_final_state(k, v, gamma, state):
    """``(k, v, gamma, state)`` checked, the state zeros when None."""
    if not active():
        k, v = same_dtype(k, v)
        return k, v, _gamma("retention_final_state", gamma, k.shape[1]), \
            _trusted_state(k, v, state, k.dtype)
    s = Shapes("retention_final_state")
    k = s.array("k", k, "B h T d")
    v = s.array("v", v, "B h T dv")
    gamma = gamma_per_head(s.func, gamma, s.sizes["h"])
    k, v = same_dtype(k, v)
    return k, v, gamma, _state(s, state, k.dtype)


def chunk_decays(gamma, L, s_prev, normalize):
    """``gamma`` per head (h,), ``L >= 1``, the count ``s_prev`` (h,) >= 0 (its dtype kept)."""
    if not active():
        return _gamma("chunk_decays", gamma, np.size(s_prev)), L, s_prev
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


def _upstream(func, forward, dout, cache, cls):
    return gradient(func, "dout", dout, cache, cls, forward, "out", "B h T dv")


def _dstate(func, dstate, S, z, checking):
    """The gradient of the final state; zeros when None."""
    from ..retention import RetentionStateGrad

    if dstate is None:
        return RetentionStateGrad(np.zeros_like(S), np.zeros_like(z))
    if not checking:
        return dstate
    if not isinstance(dstate, RetentionStateGrad):
        raise TypeError(f"{func}: dstate must be a RetentionStateGrad or None, "
                        f"got {type(dstate).__name__}")
    s = Shapes(func)
    s.bind_all("B h d dv", S.shape, "the final state")
    return RetentionStateGrad(s.array("dstate.S", dstate.S, "B h d dv"),
                              s.array("dstate.z", dstate.z, "B h d"))


def retention_parallel_backward(dout, cache):
    if not active():
        return dout
    from ..retention import ParallelCache

    dout = _upstream("retention_parallel_backward", "retention_parallel", dout, cache,
                     ParallelCache)
    return dout


def retention_recurrent_backward(dout, cache, dstate):
    """``dout`` and ``dstate`` (zeros when None) checked against the cache."""
    from ..retention import RecurrentCache

    func, checking = "retention_recurrent_backward", active()
    if checking:
        dout = _upstream(func, "retention_recurrent", dout, cache, RecurrentCache)
    dstate = _dstate(func, dstate, cache.S[:, :, -1], cache.z[:, :, -1], checking)
    return dout, dstate


def retention_chunkwise_backward(dout, cache, dstate):
    from ..retention import ChunkwiseCache

    func, checking = "retention_chunkwise_backward", active()
    if checking:
        dout = _upstream(func, "retention_chunkwise", dout, cache, ChunkwiseCache)
    dstate = _dstate(func, dstate, cache.states[0].S, cache.states[0].z, checking)
    return dout, dstate
