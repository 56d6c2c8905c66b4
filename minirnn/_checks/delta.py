"""Checks for [`minirnn.delta`][minirnn.delta]: one function per public function, same name."""

from __future__ import annotations

import numpy as np

from ..states import DeltaState, DeltaStateGrad
from .core import Shapes, active, check_bool, check_cache, check_int, lead, same_dtype
from .gated import log_gates


def _beta(s: Shapes, beta) -> np.ndarray:
    """Writing strengths in [0, 2]: the transition I - beta k^T k of a unit key then has the
    eigenvalue 1 - beta in [-1, 1] (no direction of the memory is amplified)."""
    beta = s.array("beta", beta, "B h T")
    if np.any((beta < 0) | (beta > 2)):
        where = tuple(int(i) for i in np.argwhere((beta < 0) | (beta > 2))[0])
        s.fail(f"beta must lie in [0, 2] everywhere (the writing strength; 1 overwrites, 2 "
               f"reflects), got {beta[where]} at index {where}; use beta = sigmoid(x W_beta) "
               "(or 2 sigmoid(...) to allow negative eigenvalues)")
    return beta


def _scale(func: str, scale):
    if scale is None:
        return None
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating)) \
            or not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"{func}: scale must be a number > 0 (or None for 1/sqrt(d)), "
                         f"got {scale!r}")
    return float(scale)


def state_of(s: Shapes, state, dtype):
    """The incoming memory, checked against the bound sizes; ``None`` stays ``None``."""
    if state is None:
        return None
    if not isinstance(state, DeltaState):
        s.fail(f"state must be a DeltaState or None, got {type(state).__name__}", TypeError)
    S = s.array("state.S", state.S, "B h d dv")
    position = check_int(s.func, "state.position", state.position, 0)
    return DeltaState(S=S.astype(dtype, copy=False), position=position)


def _inputs(func, q, k, v, beta, log_decay, state, scale):
    s = Shapes(func)
    q = s.array("q", q, "B h T d")
    k = s.array("k", k, "B h T d")
    v = s.array("v", v, "B h T dv")
    beta = _beta(s, beta)
    gates = None if log_decay is None else log_gates(s, log_decay)
    scale = _scale(func, scale)
    q, k, v, beta = same_dtype(q, k, v, beta)
    return q, k, v, beta, gates, state_of(s, state, q.dtype), scale


def delta_rule_recurrent(q, k, v, beta, log_decay, state, scale):
    """``(q, k, v, beta, log_decay, state, scale)``: (B, h, T, d), (B, h, T, d), (B, h, T, dv),
    beta (B, h, T) in [0, 2], log-gates (B, h, T) <= 0 or None, a DeltaState or None, a scale
    > 0 or None."""
    if not active():
        return q, k, v, beta, log_decay, state, scale
    return _inputs("delta_rule_recurrent", q, k, v, beta, log_decay, state, scale)


def delta_rule_parallel(q, k, v, beta, log_decay, state, scale):
    """As ``delta_rule_recurrent``."""
    if not active():
        return q, k, v, beta, log_decay, state, scale
    return _inputs("delta_rule_parallel", q, k, v, beta, log_decay, state, scale)


def delta_rule_chunkwise(q, k, v, beta, chunk_size, log_decay, state, scale):
    """As ``delta_rule_recurrent``; ``chunk_size`` an integer >= 1."""
    if not active():
        return q, k, v, beta, log_decay, state, scale
    check_int("delta_rule_chunkwise", "chunk_size", chunk_size, 1)
    return _inputs("delta_rule_chunkwise", q, k, v, beta, log_decay, state, scale)


def delta_chunk_transform(k, v, beta, log_decay):
    """``(k, v, beta, log_decay)``: (B, h, L, d), (B, h, L, dv), (B, h, L) in [0, 2], log-gates
    or None."""
    if not active():
        return k, v, beta, log_decay
    s = Shapes("delta_chunk_transform")
    k = s.array("k", k, "B h T d")
    v = s.array("v", v, "B h T dv")
    beta = _beta(s, beta)
    gates = None if log_decay is None else log_gates(s, log_decay)
    k, v, beta = same_dtype(k, v, beta)
    return k, v, beta, gates


def solve_unit_lower(lower, rhs, transpose):
    """``(lower, rhs)``: lower (..., T, T), rhs (..., T, n) with the same leading axes."""
    if not active():
        return lower, rhs
    s = Shapes("solve_unit_lower")
    if np.ndim(lower) < 2 or np.ndim(rhs) < 2:
        s.fail(f"lower must be (..., T, T) and rhs (..., T, n), got shapes "
               f"{np.shape(lower)} and {np.shape(rhs)}")
    lower = s.array("lower", lower, lead(np.ndim(lower), "T T2"))
    rhs = s.array("rhs", rhs, lead(np.ndim(rhs), "T n"))
    if lower.shape[-1] != lower.shape[-2] or lower.shape[:-2] != rhs.shape[:-2]:
        s.fail(f"lower must be square (..., T, T) with the leading axes of rhs, got lower "
               f"{lower.shape} and rhs {rhs.shape}")
    check_bool(s.func, "transpose", transpose)
    return same_dtype(lower, rhs)


def dstate_of(func, dstate, final):
    if dstate is None:
        return None
    if not isinstance(dstate, DeltaStateGrad):
        raise TypeError(f"{func}: dstate must be a DeltaStateGrad or None, "
                        f"got {type(dstate).__name__}")
    s = Shapes(func)
    s.bind_all("B h d dv", final.S.shape, "the returned state")
    return DeltaStateGrad(S=s.array("dstate.S", dstate.S, "B h d dv"))


def _backward(func, forward, cls, dout, cache, dstate):
    check_cache(func, cache, cls, forward)
    s = Shapes(func)
    if cls == "DeltaChunkwiseCache":
        first, final = cache.chunks[0], cache.chunks[-1].final
        s.bind_all("B h", first.beta.shape[:2], "the forward's output")
        s.bind("T", cache.bounds[-1][1], "the forward's output")
        s.bind("dv", first.v.shape[-1], "the forward's output")
    else:
        final = cache.final
        s.bind_all("B h T", cache.beta.shape, "the forward's output")
        s.bind("dv", cache.v.shape[-1], "the forward's output")
    dout = s.array("dout", dout, "B h T dv")
    return dout, dstate_of(func, dstate, final)


def delta_rule_recurrent_backward(dout, cache, dstate):
    """``dout`` (B, h, T, dv) and the gradient of the returned state, against the cache."""
    if not active():
        return dout, dstate
    return _backward("delta_rule_recurrent_backward", "delta_rule_recurrent",
                     "DeltaRecurrentCache", dout, cache, dstate)


def delta_rule_parallel_backward(dout, cache, dstate):
    """As ``delta_rule_recurrent_backward``."""
    if not active():
        return dout, dstate
    return _backward("delta_rule_parallel_backward", "delta_rule_parallel",
                     "DeltaParallelCache", dout, cache, dstate)


def delta_rule_chunkwise_backward(dout, cache, dstate):
    """As ``delta_rule_recurrent_backward``."""
    if not active():
        return dout, dstate
    return _backward("delta_rule_chunkwise_backward", "delta_rule_chunkwise",
                     "DeltaChunkwiseCache", dout, cache, dstate)


def delta_decays(log_decay, beta):
    """``(log_decay, beta)``: log-gates (B, h, T) <= 0 or None, and beta (B, h, T) (its shape)."""
    if not active():
        return log_decay, beta
    s = Shapes("delta_decays")
    beta = s.array("beta", beta, "B h T")
    return (None if log_decay is None else log_gates(s, log_decay)), beta


def delta_output_backward(dout, cache, dstate):
    """``dout`` (B, h, T, dv) and the gradient of the block's returned state."""
    if not active():
        return dout, dstate
    return _backward("delta_output_backward", "delta_rule_parallel", "DeltaParallelCache", dout,
                     cache, dstate)


def log_decay_gradient(Gamma, xi, zeta, dGamma, dxi, dzeta, dxi_last):
    """Gamma and dGamma (B, h, T, T), xi, zeta, dxi and dzeta (B, h, T), dxi_last (B, h); the
    factors finite, in [0, 1]."""
    if not active():
        return Gamma, xi, zeta, dGamma, dxi, dzeta, dxi_last
    s = Shapes("log_decay_gradient")
    Gamma = s.array("Gamma", Gamma, "B h T T2")
    if Gamma.shape[-1] != Gamma.shape[-2]:
        s.fail(f"Gamma must be (B, h, T, T), got shape {Gamma.shape}")
    xi = s.array("xi", xi, "B h T")
    zeta = s.array("zeta", zeta, "B h T")
    for name, factor in (("Gamma", Gamma), ("xi", xi), ("zeta", zeta)):
        if np.any(factor < 0) or np.any(factor > 1):
            s.fail(f"{name} must lie in [0, 1] (a decay factor e^x with x <= 0, as delta_decays "
                   f"returns it); got values from {factor.min()} to {factor.max()}")
    dGamma = s.array("dGamma", dGamma, "B h T T2")
    dxi = s.array("dxi", dxi, "B h T")
    dzeta = s.array("dzeta", dzeta, "B h T")
    dxi_last = s.array("dxi_last", dxi_last, "B h")
    return same_dtype(Gamma, xi, zeta, dGamma, dxi, dzeta, dxi_last)
