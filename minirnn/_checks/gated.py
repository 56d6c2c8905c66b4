"""Checks for [`minirnn.gated`][minirnn.gated]: one function per public function, same name."""

from __future__ import annotations

import numpy as np

from .core import Shapes, active, check_bool, check_int, gradient, lead, same_dtype


def _log_decay(s: Shapes, log_decay, axes: str = "B h T") -> np.ndarray:
    """Log-gates: finite, every entry <= 0 (alpha = exp(g) in (0, 1]), returned as float64."""
    g = s.array("log_decay", log_decay, axes)
    if np.any(g > 0):
        where = tuple(int(i) for i in np.argwhere(g > 0)[0])
        s.fail(f"log_decay must be <= 0 everywhere (the gate alpha = exp(log_decay) must lie in "
               f"(0, 1]); got {g[where]} at index {where}. A gate above 1 makes the state grow "
               "without bound; use log_decay = log(sigmoid(u)) or -softplus(u)")
    return g.astype(np.float64)


def segment_decay(log_decay):
    """``log_decay`` (..., T) as float64, every entry <= 0."""
    if not active():
        return np.asarray(log_decay, dtype=np.float64)
    s = Shapes("segment_decay")
    return _log_decay(s, log_decay, lead(np.ndim(log_decay), "T"))


def gated_chunk_decays(log_decay, s_prev, normalize):
    """``log_decay`` (B, h, L) <= 0 and the count ``s_prev`` (B, h) >= 0, both as float64,
    and the dtype ``log_decay`` came in (the default dtype of the factors)."""
    if not active():
        return (np.asarray(log_decay, dtype=np.float64), np.asarray(s_prev, dtype=np.float64),
                np.asarray(log_decay).dtype)
    s = Shapes("gated_chunk_decays")
    dtype = s.array("log_decay", log_decay, "B h L").dtype
    g = _log_decay(s, log_decay, "B h L")
    count = s.array("s_prev", s_prev, "B h")
    if np.any(count < 0):
        s.fail("s_prev must be the count state.s, >= 0 everywhere")
    check_bool(s.func, "normalize", normalize)
    return g, count.astype(np.float64), dtype


def _state(s: Shapes, state, dtype):
    from ..gated import GatedState

    B, h, d, dv = (s.sizes[x] for x in ("B", "h", "d", "dv"))
    if state is None:
        return GatedState(np.zeros((B, h, d, dv), dtype=dtype), np.zeros((B, h, d), dtype=dtype),
                          np.zeros((B, h)), 0)
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
    return GatedState(S.astype(dtype, copy=False), z.astype(dtype, copy=False),
                      count.astype(np.float64), position)


def _trusted_state(k, v, state, dtype):
    from ..gated import GatedState

    B, h, _, d = k.shape
    if state is None:
        return GatedState(np.zeros((B, h, d, v.shape[-1]), dtype=dtype),
                          np.zeros((B, h, d), dtype=dtype), np.zeros((B, h)), 0)
    return GatedState(state.S.astype(dtype, copy=False), state.z.astype(dtype, copy=False),
                      np.asarray(state.s, dtype=np.float64), state.position)


def _inputs(func, q, k, v, log_decay, state, normalize, checking):
    """The shared part of the three forms: arrays, gates, state, flag."""
    if not checking:
        q, k, v = same_dtype(q, k, v)
        return (q, k, v, np.asarray(log_decay, dtype=np.float64),
                _trusted_state(k, v, state, q.dtype))
    s = Shapes(func)
    q = s.array("q", q, "B h T d")
    k = s.array("k", k, "B h T d")
    v = s.array("v", v, "B h T dv")
    g = _log_decay(s, log_decay)
    check_bool(func, "normalize", normalize)
    q, k, v = same_dtype(q, k, v)
    return q, k, v, g, _state(s, state, q.dtype)


def gated_retention_parallel(q, k, v, log_decay, normalize):
    """``(q, k, v, log_decay)``: (B, h, T, d), (B, h, T, d), (B, h, T, dv), (B, h, T) <= 0."""
    return _inputs("gated_retention_parallel", q, k, v, log_decay, None, normalize, active())[:4]


def gated_retention_recurrent(q, k, v, log_decay, state, normalize):
    """As ``gated_retention_parallel``, plus the incoming state (zeros when None)."""
    return _inputs("gated_retention_recurrent", q, k, v, log_decay, state, normalize, active())


def gated_retention_chunkwise(q, k, v, log_decay, chunk_size, state, normalize):
    """As ``gated_retention_recurrent``; ``chunk_size`` an integer >= 1."""
    check_int("gated_retention_chunkwise", "chunk_size", chunk_size, 1)
    return _inputs("gated_retention_chunkwise", q, k, v, log_decay, state, normalize, active())


def gated_retention_final_state(k, v, log_decay, state):
    """``(k, v, log_decay, state)``, the state zeros when None."""
    if not active():
        k, v = same_dtype(k, v)
        return k, v, np.asarray(log_decay, dtype=np.float64), _trusted_state(k, v, state, k.dtype)
    s = Shapes("gated_retention_final_state")
    k = s.array("k", k, "B h T d")
    v = s.array("v", v, "B h T dv")
    g = _log_decay(s, log_decay)
    k, v = same_dtype(k, v)
    return k, v, g, _state(s, state, k.dtype)


def _dstate(func, dstate, final, checking):
    """The gradient of the returned state; zeros when None."""
    from ..gated import GatedStateGrad

    if dstate is None:
        return GatedStateGrad(np.zeros_like(final.S), np.zeros_like(final.z),
                              np.zeros_like(final.s))
    if not checking:
        return dstate
    if not isinstance(dstate, GatedStateGrad):
        raise TypeError(f"{func}: dstate must be a GatedStateGrad or None, "
                        f"got {type(dstate).__name__}")
    s = Shapes(func)
    s.bind_all("B h d dv", final.S.shape, "the returned state")
    return GatedStateGrad(s.array("dstate.S", dstate.S, "B h d dv"),
                          s.array("dstate.z", dstate.z, "B h d"),
                          s.array("dstate.s", dstate.s, "B h").astype(np.float64))


def _upstream(func, forward, dout, cache, cls):
    return gradient(func, "dout", dout, cache, cls, forward, "out", "B h T dv")


def gated_retention_parallel_backward(dout, cache):
    if not active():
        return dout
    from ..gated import GatedParallelCache

    return _upstream("gated_retention_parallel_backward", "gated_retention_parallel", dout,
                     cache, GatedParallelCache)


def gated_retention_recurrent_backward(dout, cache, dstate):
    """``dout`` and ``dstate`` (zeros when None) checked against the cache."""
    from ..gated import GatedRecurrentCache

    func, checking = "gated_retention_recurrent_backward", active()
    if checking:
        dout = _upstream(func, "gated_retention_recurrent", dout, cache, GatedRecurrentCache)
    return dout, _dstate(func, dstate, cache.final, checking)


def gated_retention_chunkwise_backward(dout, cache, dstate):
    from ..gated import GatedChunkwiseCache

    func, checking = "gated_retention_chunkwise_backward", active()
    if checking:
        dout = _upstream(func, "gated_retention_chunkwise", dout, cache, GatedChunkwiseCache)
    return dout, _dstate(func, dstate, cache.final, checking)


def gated_decay_gradient(q, dq, k, dk, log_decay, s, final, dfinal, normalize):
    """Arrays of the decay gradient; ``final`` and ``dfinal`` zeros when None."""
    from ..gated import GatedState, GatedStateGrad

    checking = active()
    if checking:
        sh = Shapes("gated_decay_gradient")
        q, dq = sh.array("q", q, "B h T d"), sh.array("dq", dq, "B h T d")
        k, dk = sh.array("k", k, "B h T d"), sh.array("dk", dk, "B h T d")
        log_decay = _log_decay(sh, log_decay)
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
            dfinal = _dstate(sh.func, dfinal, final, True)
    if final is None:
        B, h, _, d = q.shape
        final = GatedState(np.zeros((B, h, d, 1)), np.zeros((B, h, d)), np.zeros((B, h)), 0)
        dfinal = GatedStateGrad(final.S, final.z, final.s)
    return (*same_dtype(q, dq, k, dk), np.asarray(log_decay, dtype=np.float64),
            np.asarray(s, dtype=np.float64), final, dfinal)


def retention_decay_gradient(q, dq, k, dk, gamma, state, final, dfinal, normalize):
    """The arrays, ``gamma`` in (0, 1] per head, the incoming count (zeros when no state),
    ``final`` and ``dfinal`` (zeros when None, also ``dfinal.s``)."""
    from ..retention import RetentionState, RetentionStateGrad
    from .retention import gamma_per_head

    func = "retention_decay_gradient"
    checking = active()
    if checking:
        sh = Shapes(func)
        q, dq = sh.array("q", q, "B h T d"), sh.array("dq", dq, "B h T d")
        k, dk = sh.array("k", k, "B h T d"), sh.array("dk", dk, "B h T d")
        check_bool(func, "normalize", normalize)
    B, h, _, d = np.shape(q)
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
    s_prev = np.zeros(h) if state is None else np.asarray(state.s, dtype=np.float64)
    if final is None:
        final = RetentionState(np.zeros((B, h, d, 1)), np.zeros((B, h, d)), np.zeros(h), 0)
        dfinal = RetentionStateGrad(final.S, final.z, final.s)
    elif checking:
        sh.bind_all("B h d", (B, h, d), "q")
        sh.array("final.S", final.S, "B h d dv")
        sh.array("final.z", final.z, "B h d")
        sh.array("dfinal.S", dfinal.S, "B h d dv")
        sh.array("dfinal.z", dfinal.z, "B h d")
        if dfinal.s is not None:
            sh.array("dfinal.s", dfinal.s, "h")
    ds = np.zeros(h) if dfinal.s is None else np.asarray(dfinal.s, dtype=np.float64)
    dfinal = RetentionStateGrad(dfinal.S, dfinal.z, ds)
    return (*same_dtype(q, dq, k, dk), gamma, s_prev, final, dfinal)
