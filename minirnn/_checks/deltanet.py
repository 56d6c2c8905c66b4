"""Checks for [`minirnn.deltanet`][minirnn.deltanet]: one function per public function, same
name."""

from __future__ import annotations

import numpy as np

from .attention import head_width
from .core import (
    Shapes,
    active,
    check_bool,
    check_cache,
    check_eps,
    check_int,
    common_dtype,
    gradient,
    lead,
)
from .delta import dstate_of, state_of
from .gated_msr import gate_temperature
from .msr import FORMS

DELTANET_PARAMS = {"Wq": "D D", "Wk": "D D", "Wv": "D hdv", "Wg": "D hdv", "Wo": "hdv D",
                   "gn_w": "h dv", "gn_b": "h dv", "Wb": "D h", "bb": "h", "Wa": "D h",
                   "ba": "h"}
GATE = ("Wa", "ba")                       # present in gated DeltaNet only


def l2_normalize(x, eps):
    """``x`` (..., d) and ``eps >= 0``."""
    if not active():
        return x, eps
    s = Shapes("l2_normalize")
    if np.ndim(x) < 1:
        s.fail(f"x must have at least one axis (..., d), got a {type(x).__name__}")
    return s.array("x", x, lead(np.ndim(x), "d")), check_eps("l2_normalize", eps)


def l2_normalize_backward(dy, cache):
    if not active():
        return dy
    func = "l2_normalize_backward"
    check_cache(func, cache, "L2NormCache", "l2_normalize")
    return gradient(func, "dy", dy, cache, "L2NormCache", "l2_normalize", "y",
                    lead(cache.y.ndim, "d"))


def init_deltanet_params(D, n_heads, dv, gated, tau):
    func = "init_deltanet_params"
    D = check_int(func, "D", D, 1)
    dv = check_int(func, "dv", dv, 1)
    head_width(func, D, n_heads)
    check_bool(func, "gated", gated)
    gate_temperature(func, tau)
    return D, dv


def _layer(func, x, params, n_heads, axes, state, eps, tau):
    s = Shapes(func)
    p = s.params(params, "params", DELTANET_PARAMS, optional=GATE)   # binds D, h, hdv first
    x = s.array("x", x, axes)
    head_width(func, s.sizes["D"], n_heads)
    if ("Wa" in p) != ("ba" in p):
        s.fail("params must hold both gate parameters 'Wa' and 'ba' (gated DeltaNet) or neither")
    if p["gn_w"].shape[0] != n_heads or p["gn_w"].shape[0] * p["gn_w"].shape[1] != s.sizes["hdv"]:
        s.fail(f"params['gn_w'] has shape {p['gn_w'].shape}, expected (h, dv) = "
               f"({n_heads}, {s.sizes['hdv'] // n_heads}) for n_heads = {n_heads}")
    if s.sizes["h"] != n_heads:
        s.fail(f"params['Wb'] has {s.sizes['h']} columns, one per head expected "
               f"(n_heads = {n_heads})")
    check_eps(func, eps)
    gate_temperature(func, tau)
    x, p = common_dtype(x, p)
    if state is not None:
        st = Shapes(func)
        st.bind_all("B h d dv", (x.shape[0], n_heads, x.shape[-1] // n_heads,
                                 p["gn_w"].shape[1]), f"x and params (n_heads = {n_heads})")
        state = state_of(st, state, x.dtype)
    return x, p, state


def deltanet_forward(x, params, n_heads, form, chunk_size, state, eps, tau):
    """``(x, params, state)`` checked: x (B, T, D), the parameters, the form, the state."""
    if not active():
        return x, params, state
    func = "deltanet_forward"
    if form not in FORMS:
        raise ValueError(f"{func}: form must be one of {FORMS}, got {form!r}")
    if form == "chunkwise":
        if chunk_size is None:
            raise ValueError(f"{func}: the chunkwise form needs chunk_size (an integer >= 1)")
        check_int(func, "chunk_size", chunk_size, 1)
    return _layer(func, x, params, n_heads, "B T D", state, eps, tau)


def deltanet_backward(dy, cache, dstate):
    """``dy`` (B, T, D) and the gradient of the returned state, against the cache."""
    if not active():
        return dy, dstate
    func = "deltanet_backward"
    dy = gradient(func, "dy", dy, cache, "DeltaNetCache", "deltanet_forward", "x", "B T D")
    return dy, dstate_of(func, dstate, cache.final)


def deltanet_step(x, params, n_heads, state, eps, tau):
    """One token x (B, D), the parameters and the state (or None)."""
    if not active():
        return x, params, state
    return _layer("deltanet_step", x, params, n_heads, "B D", state, eps, tau)
