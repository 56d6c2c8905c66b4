"""Checks for [`minirnn.gated`][minirnn.gated]: one function per public function, same name."""

from __future__ import annotations

import numpy as np

from ..states import GatedState, GatedStateGrad, RetentionState, RetentionStateGrad
from .core import (
    Shapes,
    active,
    check_bool,
    check_cache,
    check_int,
    gradient,
    lead,
    same_dtype,
)
from .retention import gamma_per_head


def log_gates(s: Shapes, log_decay, axes: str = "B h T") -> np.ndarray:
    """Log-gates: finite, every entry <= 0 (alpha = exp(g) in (0, 1])."""
    gates = s.array("log_decay", log_decay, axes)
    if np.any(gates > 0):
        where = tuple(int(i) for i in np.argwhere(gates > 0)[0])
        s.fail(f"log_decay must be <= 0 everywhere (the gate alpha = exp(log_decay) must lie in "
               f"(0, 1]); got {gates[where]} at index {where}. A gate above 1 makes the state grow "
               "without bound; use log_decay = log(sigmoid(u)) or -softplus(u)")
    return gates


def segment_decay(log_decay):
    """``log_decay`` (..., T), every entry <= 0."""
    if not active():
        return log_decay
    s = Shapes("segment_decay")
    return log_gates(s, log_decay, lead(np.ndim(log_decay), "T"))


def gated_chunk_decays(log_decay, s_prev, normalize):
    """``log_decay`` (B, h, L) <= 0 and the count ``s_prev`` (B, h) >= 0 (as float64)."""
    if not active():
        return log_decay, s_prev
    s = Shapes("gated_chunk_decays")
    gates = log_gates(s, log_decay, "B h L")
    count = s.array("s_prev", s_prev, "B h")
    if np.any(count < 0):
        s.fail("s_prev must be the count state.s, >= 0 everywhere")
    check_bool(s.func, "normalize", normalize)
    return gates, count.astype(np.float64)


def state(s: Shapes, state, dtype):
    """An incoming state checked against the sizes bound so far and converted to ``dtype``;
    ``None`` (a new sequence) stays ``None``."""
    if state is None:
        return None
    if not isinstance(state, GatedState):
        s.fail(f"state must be a GatedState or None, got {type(state).__name__}"
               + (" (retention's state has one count per head; gated retention needs one per "
                  "sequence and head)" if type(state).__name__ == "RetentionState" else ""),
               TypeError)
    S = s.array("state.S", state.S, "B h d dv")
    z = s.array("state.z", state.z, "B h d")
    count = s.array("state.s", state.s, "B h")
    if np.any(count < 0):
        s.fail("state.s must be a count >= 0")
    position = check_int(s.func, "state.position", state.position, 0)
    return GatedState(S=S.astype(dtype, copy=False), z=z.astype(dtype, copy=False),
                      s=count.astype(np.float64), position=position)


def _inputs(func, q, k, v, log_decay, state_in, normalize):
    """The shared part of the three forms: arrays, gates, state, flag."""
    s = Shapes(func)
    q = s.array("q", q, "B h T d")
    k = s.array("k", k, "B h T d")
    v = s.array("v", v, "B h T dv")
    gates = log_gates(s, log_decay)
    check_bool(func, "normalize", normalize)
    q, k, v = same_dtype(q, k, v)
    return q, k, v, gates, state(s, state_in, q.dtype)


def gated_retention_parallel(q, k, v, log_decay, state, normalize):
    """``(q, k, v, log_decay, state)``: (B, h, T, d), (B, h, T, d), (B, h, T, dv), (B, h, T)
    <= 0, a GatedState or None."""
    if not active():
        return q, k, v, log_decay, state
    return _inputs("gated_retention_parallel", q, k, v, log_decay, state, normalize)


def gated_retention_recurrent(q, k, v, log_decay, state, normalize):
    """As ``gated_retention_parallel``."""
    if not active():
        return q, k, v, log_decay, state
    return _inputs("gated_retention_recurrent", q, k, v, log_decay, state, normalize)


def gated_retention_chunkwise(q, k, v, log_decay, chunk_size, state, normalize):
    """As ``gated_retention_parallel``; ``chunk_size`` an integer >= 1."""
    if not active():
        return q, k, v, log_decay, state
    check_int("gated_retention_chunkwise", "chunk_size", chunk_size, 1)
    return _inputs("gated_retention_chunkwise", q, k, v, log_decay, state, normalize)


def gated_retention_final_state(k, v, log_decay, state_in):
    """``(k, v, log_decay, state)``."""
    if not active():
        return k, v, log_decay, state_in
    s = Shapes("gated_retention_final_state")
    k = s.array("k", k, "B h T d")
    v = s.array("v", v, "B h T dv")
    gates = log_gates(s, log_decay)
    k, v = same_dtype(k, v)
    return k, v, gates, state(s, state_in, k.dtype)


def dstate_of(func, dstate, final):
    """The gradient of the returned state, checked; ``None`` stays ``None``."""
    if dstate is None:
        return None
    if not isinstance(dstate, GatedStateGrad):
        raise TypeError(f"{func}: dstate must be a GatedStateGrad or None, "
                        f"got {type(dstate).__name__}")
    s = Shapes(func)
    s.bind_all("B h d dv", final.S.shape, "the returned state")
    return GatedStateGrad(S=s.array("dstate.S", dstate.S, "B h d dv"),
                          z=s.array("dstate.z", dstate.z, "B h d"),
                          s=s.array("dstate.s", dstate.s, "B h").astype(np.float64))


def _backward(func, forward, cls, dout, cache, dstate, final):
    dout = gradient(func, "dout", dout, cache, cls, forward, "out", "B h T dv")
    return dout, dstate_of(func, dstate, final(cache))


def gated_retention_parallel_backward(dout, cache, dstate):
    """``dout`` and ``dstate`` checked against the cache."""
    if not active():
        return dout, dstate
    return _backward("gated_retention_parallel_backward", "gated_retention_parallel",
                     "GatedParallelCache", dout, cache, dstate, lambda c: c.final)


def gated_retention_recurrent_backward(dout, cache, dstate):
    """``dout`` and ``dstate`` checked against the cache."""
    if not active():
        return dout, dstate
    return _backward("gated_retention_recurrent_backward", "gated_retention_recurrent",
                     "GatedRecurrentCache", dout, cache, dstate, lambda c: c.final)


def gated_retention_chunkwise_backward(dout, cache, dstate):
    """``dout`` and ``dstate`` checked against the cache."""
    if not active():
        return dout, dstate
    func = "gated_retention_chunkwise_backward"
    check_cache(func, cache, "GatedChunkwiseCache", "gated_retention_chunkwise")
    first = cache.chunks[0]
    s = Shapes(func)
    s.bind_all("B h", first.out.shape[:2], "the forward's output")
    s.bind("T", cache.bounds[-1][1], "the forward's output")
    s.bind("dv", first.out.shape[-1], "the forward's output")
    return s.array("dout", dout, "B h T dv"), dstate_of(func, dstate, cache.chunks[-1].final)


def gated_decay_gradient(q, dq, k, dk, log_decay, s, final, dfinal, normalize):
    """The arrays of the decay gradient; ``final`` and ``dfinal`` both given or both None."""
    if not active():
        return q, dq, k, dk, log_decay, s, final, dfinal
    sh = Shapes("gated_decay_gradient")
    q, dq = sh.array("q", q, "B h T d"), sh.array("dq", dq, "B h T d")
    k, dk = sh.array("k", k, "B h T d"), sh.array("dk", dk, "B h T d")
    log_decay = log_gates(sh, log_decay)
    s = sh.array("s", s, "B h T")
    if np.any(s < 1):
        sh.fail("s must hold the count s_n >= 1 of every row (from the forward's cache)")
    check_bool(sh.func, "normalize", normalize)
    if (final is None) != (dfinal is None):
        sh.fail("give both final (the returned state) and dfinal (its gradient), or neither")
    if final is not None:
        if not isinstance(final, GatedState):
            sh.fail(f"final must be a GatedState, got {type(final).__name__}", TypeError)
        sh.array("final.S", final.S, "B h d dv")
        sh.array("final.z", final.z, "B h d")
        dfinal = dstate_of(sh.func, dfinal, final)
    return (*same_dtype(q, dq, k, dk), log_decay, s.astype(np.float64), final, dfinal)


def retention_decay_gradient(q, dq, k, dk, gamma, state, final, dfinal, normalize):
    """The arrays, ``gamma`` in (0, 1] per head, the incoming state, ``final`` and ``dfinal``
    (both given or both None)."""
    func = "retention_decay_gradient"
    if not active():
        return q, dq, k, dk, gamma, state, final, dfinal
    sh = Shapes(func)
    q, dq = sh.array("q", q, "B h T d"), sh.array("dq", dq, "B h T d")
    k, dk = sh.array("k", k, "B h T d"), sh.array("dk", dk, "B h T d")
    check_bool(func, "normalize", normalize)
    h = sh.sizes["h"]
    gamma = gamma_per_head(func, gamma, h)
    if np.any(gamma <= 0):
        raise ValueError(f"{func}: every gamma must be > 0 for its gradient (d ln gamma has no "
                         f"value at 0); got {gamma.tolist()}")
    for name, value, cls in (("state", state, RetentionState), ("final", final, RetentionState),
                             ("dfinal", dfinal, RetentionStateGrad)):
        if value is not None and not isinstance(value, cls):
            raise TypeError(f"{func}: {name} must be a {cls.__name__} or None, "
                            f"got {type(value).__name__}")
    if (final is None) != (dfinal is None):
        raise ValueError(f"{func}: give both final (the returned state) and dfinal (its "
                         "gradient), or neither")
    if state is not None:
        count = sh.array("state.s", state.s, "h").astype(np.float64)
        state = RetentionState(S=state.S, z=state.z, s=count, position=state.position)
    if final is not None:
        sh.array("final.S", final.S, "B h d dv")
        sh.array("final.z", final.z, "B h d")
        sh.array("dfinal.S", dfinal.S, "B h d dv")
        sh.array("dfinal.z", dfinal.z, "B h d")
        if dfinal.s is not None:
            sh.array("dfinal.s", dfinal.s, "h")
    return (*same_dtype(q, dq, k, dk), gamma, state, final, dfinal)
