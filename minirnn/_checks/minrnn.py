"""Checks for [`minirnn.minrnn`][minirnn.minrnn]: one function per public function, same name."""

from __future__ import annotations

import numpy as np

from .core import Shapes, active, check_cache, common_dtype, gradient, lead, same_dtype

MINGRU_PARAMS = {"Wz": "D H", "bz": "H", "Wh": "D H", "bh": "H"}
MINLSTM_PARAMS = {"Wf": "D H", "bf": "H", "Wi": "D H", "bi": "H", "Wh": "D H", "bh": "H"}
FORMS = ("sequential", "parallel")


def log_sigmoid(a):
    """``a``: a finite float array of any shape."""
    if not active():
        return a
    return Shapes("log_sigmoid").array("a", a, lead(np.ndim(a), ""))


def _scan(func, log_decay, u, h0):
    s = Shapes(func)
    log_decay = s.array("log_decay", log_decay, "B T H")
    if np.any(log_decay > 0):
        s.fail("log_decay must be <= 0 everywhere (alpha = exp(log_decay) in (0, 1])")
    u = s.array("u", u, "B T H")
    h0 = s.array("h0", h0, "B H")
    return same_dtype(log_decay, u, h0)    # one float64 argument promotes the result


def linear_scan_sequential(log_decay, u, h0):
    """log_decay (B, T, H) <= 0 (as float64), u (B, T, H), h0 (B, H)."""
    if not active():
        return log_decay, u, h0
    return _scan("linear_scan_sequential", log_decay, u, h0)


def linear_scan_parallel(log_decay, u, h0):
    """As for the sequential form."""
    if not active():
        return log_decay, u, h0
    return _scan("linear_scan_parallel", log_decay, u, h0)


def _scan_backward(func, dh, cache):
    check_cache(func, cache, "ScanCache", "linear_scan_sequential or linear_scan_parallel")
    return gradient(func, "dh", dh, cache, "ScanCache", "linear_scan_*", "h", "B T H")


def linear_scan_sequential_backward(dh, cache):
    """``dh`` (B, T, H) against the scan's cache."""
    if not active():
        return dh
    return _scan_backward("linear_scan_sequential_backward", dh, cache)


def linear_scan_parallel_backward(dh, cache):
    """``dh`` (B, T, H) against the scan's cache."""
    if not active():
        return dh
    return _scan_backward("linear_scan_parallel_backward", dh, cache)


def _model(func, x, h0, params, form, spec):
    s = Shapes(func)
    if not isinstance(form, str) or form not in FORMS:
        s.fail(f"form must be one of {FORMS}, got {form!r}",
               ValueError if isinstance(form, str) else TypeError)
    x = s.array("x", x, "B T D")
    h0 = s.array("h0", h0, "B H")
    params = s.params(params, "params", spec)
    x, params = common_dtype(x, params)
    return x, h0, params, form


def mingru_forward(x, h0, params, form):
    """x (B, T, D), h0 (B, H), Wz and Wh (D, H), bz and bh (H,), a form."""
    if not active():
        return x, h0, params, form
    return _model("mingru_forward", x, h0, params, form, MINGRU_PARAMS)


def minlstm_forward(x, h0, params, form):
    """x (B, T, D), h0 (B, H), Wf, Wi, Wh (D, H), bf, bi, bh (H,), a form."""
    if not active():
        return x, h0, params, form
    return _model("minlstm_forward", x, h0, params, form, MINLSTM_PARAMS)


def mingru_backward(dh, cache):
    """``dh`` (B, T, H) against the cache of ``mingru_forward``."""
    if not active():
        return dh
    check_cache("mingru_backward", cache, "MinRNNCache", "mingru_forward")
    if "z" not in cache.gates:
        raise TypeError("mingru_backward: cache comes from minlstm_forward; use minlstm_backward")
    return gradient("mingru_backward", "dh", dh, cache.scan, "ScanCache", "mingru_forward", "h",
                    "B T H")


def minlstm_backward(dh, cache):
    """``dh`` (B, T, H) against the cache of ``minlstm_forward``."""
    if not active():
        return dh
    check_cache("minlstm_backward", cache, "MinRNNCache", "minlstm_forward")
    if "f" not in cache.gates:
        raise TypeError("minlstm_backward: cache comes from mingru_forward; use mingru_backward")
    return gradient("minlstm_backward", "dh", dh, cache.scan, "ScanCache", "minlstm_forward",
                    "h", "B T H")
