"""Checks for [`minirnn.gated_msr`][minirnn.gated_msr]: one function per public function, same
name."""

from __future__ import annotations

import numpy as np

from .core import Shapes, active, check_eps, check_int, common_dtype, gradient, same_dtype
from .gated import dstate_of
from .gated import state as gated_state
from .msr import FORMS, MSR_PARAMS, key_width, layer_inputs, other_params

GATED_PARAMS = {**{k: v for k, v in MSR_PARAMS.items() if k != "decay_logit"},
                "Wa": "D h", "ba": "h"}


def gate_temperature(func, tau) -> float:
    if isinstance(tau, bool) or not isinstance(tau, (int, float, np.floating)) \
            or not np.isfinite(tau) or tau <= 0:
        raise ValueError(f"{func}: tau (the gate temperature) must be a number > 0, got {tau!r}")
    return float(tau)


def init_gated_msr_params(D, n_heads, dv, tau):
    func = "init_gated_msr_params"
    D = check_int(func, "D", D, 1)
    dv = check_int(func, "dv", dv, 1)
    key_width(func, D, n_heads)
    return D, dv, gate_temperature(func, tau)


def gated_msr_gates(x, params, tau):
    func = "gated_msr_gates"
    if not active():
        return x, params, tau
    s = Shapes(func)
    x = s.array("x", x, "B T D")
    other_params(s, params, ("Wa", "ba"))
    p = {key: s.array(f"params[{key!r}]", params.get(key), axes)
         for key, axes in (("Wa", "D h"), ("ba", "h"))}
    x, *arrays = same_dtype(x, *p.values())
    return x, dict(zip(p, arrays)), gate_temperature(func, tau)


def gated_msr_gates_backward(dlog_decay, x, a, params, tau):
    """``dlog_decay`` (B, h, T), ``x`` (B, T, D), ``a`` (B, T, h), ``params['Wa']`` (D, h)."""
    func = "gated_msr_gates_backward"
    if not active():
        return dlog_decay, x, a, params, tau
    s = Shapes(func)
    x = s.array("x", x, "B T D")
    a = s.array("a", a, "B T h")
    dlog_decay = s.array("dlog_decay", dlog_decay, "B h T")
    other_params(s, params, ("Wa", "ba"))
    Wa = s.array("params['Wa']", params.get("Wa"), "D h")
    dlog_decay, x, a = same_dtype(dlog_decay, x, a, Wa)[:3]
    return dlog_decay, x, a, {**params, "Wa": Wa}, gate_temperature(func, tau)


def _state(func, x, params, n_heads, state, eps, tau):
    """The options of a layer call and the incoming state (which must fit the heads)."""
    check_eps(func, eps)
    gate_temperature(func, tau)
    if state is None:
        return None
    s = Shapes(func)
    B, D = x.shape[0], x.shape[-1]
    s.bind_all("B h d dv", (B, n_heads, D // n_heads, params["gn_w"].shape[1]),
               f"x and params (n_heads = {n_heads})")
    return gated_state(s, state, x.dtype)


def gated_msr_forward(x, params, n_heads, form, chunk_size, state, eps, tau):
    """``(x, params, state)``: x (B, T, D) and every parameter in their common dtype (the gates
    are float64 when one parameter is), the form, the incoming state (it must fit)."""
    if not active():
        return x, params, state
    func = "gated_msr_forward"
    x, params = layer_inputs(func, x, params, n_heads, "B T D", GATED_PARAMS, ())
    if form not in FORMS:
        raise ValueError(f"{func}: form must be one of {FORMS}, got {form!r}")
    if form == "chunkwise":
        if chunk_size is None:
            raise ValueError(f"{func}: the chunkwise form needs chunk_size (an integer >= 1)")
        check_int(func, "chunk_size", chunk_size, 1)
    x, params = common_dtype(x, params)
    return x, params, _state(func, x, params, n_heads, state, eps, tau)


def gated_msr_backward(dy, cache, dstate):
    """``dy`` (B, T, D) and the gradient of the returned state, checked against the cache."""
    if not active():
        return dy, dstate
    func = "gated_msr_backward"
    dy = gradient(func, "dy", dy, cache, "GatedMSRCache", "gated_msr_forward", "x", "B T D")
    return dy, dstate_of(func, dstate, cache.final)


def gated_msr_step(x, params, n_heads, state, eps, tau):
    """One token x (B, D), the parameters in one dtype, and the state (or None)."""
    if not active():
        return x, params, state
    func = "gated_msr_step"
    x, params = layer_inputs(func, x, params, n_heads, "B D", GATED_PARAMS, ())
    x, params = common_dtype(x, params)
    return x, params, _state(func, x, params, n_heads, state, eps, tau)
