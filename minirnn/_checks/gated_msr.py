"""Checks for [`minirnn.gated_msr`][minirnn.gated_msr]: one function per public function, same
name."""

from __future__ import annotations

import numpy as np

from .core import Shapes, active, check_cache, check_eps, check_int, gradient, same_dtype
from .msr import FORMS, MSR_PARAMS, _layer, _rest, key_width

GATED_PARAMS = {**{k: v for k, v in MSR_PARAMS.items() if k != "decay_logit"},
                "Wa": "D h", "ba": "h"}


def _tau(func, tau) -> float:
    if isinstance(tau, bool) or not isinstance(tau, (int, float, np.floating)) \
            or not np.isfinite(tau) or tau <= 0:
        raise ValueError(f"{func}: tau (the gate temperature) must be a number > 0, got {tau!r}")
    return float(tau)


def init_gated_msr_params(D, n_heads, dv, tau):
    func = "init_gated_msr_params"
    D = check_int(func, "D", D, 1)
    dv = check_int(func, "dv", dv, 1)
    key_width(func, D, n_heads)
    return D, dv, _tau(func, tau)


def gated_msr_gates(x, params, tau):
    func = "gated_msr_gates"
    if not active():
        return x, params, tau
    s = Shapes(func)
    x = s.array("x", x, "B T D")
    _rest(s, params, ("Wa", "ba"))
    p = {key: s.array(f"params[{key!r}]", params.get(key), axes)
         for key, axes in (("Wa", "D h"), ("ba", "h"))}
    x, *arrays = same_dtype(x, *p.values())
    return x, dict(zip(p, arrays)), _tau(func, tau)


def _state(func, x, params, n_heads, state, eps, tau):
    """The options of a layer call and the incoming state (which must fit the heads)."""
    from ..gated import GatedState

    check_eps(func, eps)
    _tau(func, tau)
    if state is None:
        return
    if not isinstance(state, GatedState):
        raise TypeError(f"{func}: state must be a GatedState or None, got {type(state).__name__}")
    s = Shapes(func)
    B, D = x.shape[0], x.shape[-1]
    s.bind_all("B h d dv", (B, n_heads, D // n_heads, params["gn_w"].shape[1]),
               f"x and params (n_heads = {n_heads})")
    s.array("state.S", state.S, "B h d dv")
    s.array("state.z", state.z, "B h d")
    s.array("state.s", state.s, "B h")
    check_int(func, "state.position", state.position, 0)


def gated_msr_forward(x, params, n_heads, form, chunk_size, state, eps, tau):
    if not active():
        return _common(x, params)           # the gates are float64: promote by the params
    func = "gated_msr_forward"
    x, params = _layer(func, x, params, n_heads, "B T D", GATED_PARAMS, ())
    if form not in FORMS:
        raise ValueError(f"{func}: form must be one of {FORMS}, got {form!r}")
    if form == "chunkwise":
        if chunk_size is None:
            raise ValueError(f"{func}: the chunkwise form needs chunk_size (an integer >= 1)")
        check_int(func, "chunk_size", chunk_size, 1)
    if form == "parallel" and state is not None:
        raise ValueError(f"{func}: the parallel form starts a new sequence; continue one "
                         "with form='recurrent' or 'chunkwise'")
    _state(func, x, params, n_heads, state, eps, tau)
    return _common(x, params)


def _common(x, params):
    """x and every parameter in their common dtype (one float64 array promotes the layer)."""
    x, *arrays = same_dtype(x, *params.values())
    return x, dict(zip(params, arrays))


def gated_msr_backward(dy, cache):
    if not active():
        return dy
    from ..gated_msr import GatedMSRCache

    check_cache("gated_msr_backward", cache, GatedMSRCache, "gated_msr_forward")
    return gradient("gated_msr_backward", "dy", dy, cache, GatedMSRCache, "gated_msr_forward",
                    "x", "B T D")


def gated_msr_step(x, params, n_heads, state, eps, tau):
    """One token x (B, D) and the state (zeros when None)."""
    from ..gated import GatedState

    if active():
        func = "gated_msr_step"
        x, params = _layer(func, x, params, n_heads, "B D", GATED_PARAMS, ())
        _state(func, x, params, n_heads, state, eps, tau)
    x, params = _common(x, params)
    if state is None:
        B, D = x.shape
        h, dv = params["gn_w"].shape
        dtype = np.result_type(x, params["Wq"], params["Wk"], params["Wv"])
        state = GatedState(np.zeros((B, h, D // h, dv), dtype=dtype),
                           np.zeros((B, h, D // h), dtype=dtype), np.zeros((B, h)), 0)
    return x, params, state
