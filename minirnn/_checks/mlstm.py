"""Checks for [`minirnn.mlstm`][minirnn.mlstm]: one function per public function, same name."""

from __future__ import annotations

import numpy as np

from ..states import MLSTMState, MLSTMStateGrad
from .core import Shapes, active, check_int, gradient, same_dtype


def _state(s: Shapes, state, dtype):
    if state is None:
        return None
    if not isinstance(state, MLSTMState):
        s.fail(f"state must be an MLSTMState or None, got {type(state).__name__}", TypeError)
    S = s.array("state.S", state.S, "B h d dv")
    z = s.array("state.z", state.z, "B h d")
    mu = s.array("state.mu", state.mu, "B h")
    position = check_int(s.func, "state.position", state.position, 0)
    return MLSTMState(S=S.astype(dtype, copy=False), z=z.astype(dtype, copy=False),
                      mu=mu.astype(np.float64), position=position)


def _inputs(func, q, k, v, i_pre, f_pre, state):
    s = Shapes(func)
    q = s.array("q", q, "B h T d")
    k = s.array("k", k, "B h T d")
    v = s.array("v", v, "B h T dv")
    i_pre = s.array("i_pre", i_pre, "B h T")
    f_pre = s.array("f_pre", f_pre, "B h T")
    q, k, v, i_pre, f_pre = same_dtype(q, k, v, i_pre, f_pre)
    return q, k, v, i_pre, f_pre, _state(s, state, q.dtype)


def mlstm_recurrent(q, k, v, i_pre, f_pre, state):
    """q, k (B, h, T, d), v (B, h, T, dv), i_pre and f_pre (B, h, T), an MLSTMState or None."""
    if not active():
        return q, k, v, i_pre, f_pre, state
    return _inputs("mlstm_recurrent", q, k, v, i_pre, f_pre, state)


def mlstm_parallel(q, k, v, i_pre, f_pre, state):
    """As for the recurrent form."""
    if not active():
        return q, k, v, i_pre, f_pre, state
    return _inputs("mlstm_parallel", q, k, v, i_pre, f_pre, state)


def mlstm_normaliser_backward(dout, out, r, mu):
    """dout and out (B, h, T, dv), r and m (B, h, T)."""
    if not active():
        return dout, out, r, mu
    s = Shapes("mlstm_normaliser_backward")
    dout = s.array("dout", dout, "B h T dv")
    out = s.array("out", out, "B h T dv")
    return same_dtype(dout, out, s.array("r", r, "B h T"), s.array("mu", mu, "B h T"))


def _backward(func, dout, cache, cls, forward, dstate):
    dout = gradient(func, "dout", dout, cache, cls, forward, "out", "B h T dv")
    if dstate is None:
        return dout, None
    if not isinstance(dstate, MLSTMStateGrad):
        raise TypeError(f"{func}: dstate must be an MLSTMStateGrad or None, "
                        f"got {type(dstate).__name__}")
    s = Shapes(func)
    s.bind_all("B h d dv", cache.final.S.shape, "cache.final.S")
    return dout, MLSTMStateGrad(S=s.array("dstate.S", dstate.S, "B h d dv"),
                                z=s.array("dstate.z", dstate.z, "B h d"))


def mlstm_recurrent_backward(dout, cache, dstate):
    """``dout`` (B, h, T, dv) and the optional ``dstate`` against the recurrent cache."""
    if not active():
        return dout, dstate
    return _backward("mlstm_recurrent_backward", dout, cache, "MLSTMRecurrentCache",
                     "mlstm_recurrent", dstate)


def mlstm_parallel_backward(dout, cache, dstate):
    """``dout`` (B, h, T, dv) and the optional ``dstate`` against the parallel cache."""
    if not active():
        return dout, dstate
    return _backward("mlstm_parallel_backward", dout, cache, "MLSTMParallelCache",
                     "mlstm_parallel", dstate)
