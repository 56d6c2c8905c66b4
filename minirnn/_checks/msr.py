"""Checks for [`minirnn.msr`][minirnn.msr]: one function per public function, same name."""

from __future__ import annotations

import numpy as np

from ..states import RetentionState
from .core import (
    FLOAT_DTYPES,
    Shapes,
    active,
    check_bool,
    check_cache,
    check_eps,
    check_int,
    common_dtype,
    gradient,
    lead,
    same_dtype,
)
from .layers import constant_row
from .retention import dstate_of
from .retention import state as retention_state

FORMS = ("parallel", "recurrent", "chunkwise")
MSR_PARAMS = {"Wq": "D D", "Wk": "D D", "Wv": "D hdv", "Wg": "D hdv", "Wo": "hdv D",
              "gn_w": "h dv", "gn_b": "h dv", "decay_logit": "h"}
OPTIONAL = ("decay_logit",)            # present when the layer learns its decays (M.6)


def msr_gammas(n_heads, params):
    """``n_heads >= 1``; ``params`` None or a dict whose ``decay_logit`` (if any) is (h,)."""
    n_heads = check_int("msr_gammas", "n_heads", n_heads, 1)
    if params is None or not active():
        return n_heads, params
    s = Shapes("msr_gammas")
    s.bind("h", n_heads, "n_heads")
    other_params(s, params, ("decay_logit",))
    if "decay_logit" in params:
        s.array("params['decay_logit']", params["decay_logit"], "h")
    return n_heads, params


def rotation_angles(d):
    d = check_int("rotation_angles", "d", d, 2)
    if d % 2:
        raise ValueError(f"rotation_angles: the rotation acts on pairs of features, so the key "
                         f"width d must be even, got d = {d}")
    return d


def rotation_table(start, T, d, dtype, func="rotation_table"):
    """Also checks ``rotation_phases``, which takes the same arguments."""
    if not active():
        return start, T, d, dtype
    start = check_int(func, "start", start, 0)
    T = check_int(func, "T", T, 1)
    d = rotation_angles(d)
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        dtype = None
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{func}: dtype must be float32 or float64, got {dtype!r}")
    return start, T, d, dtype


def rotate(x, start, inverse):
    if not active():
        return x, start
    s = Shapes("rotate")
    if np.ndim(x) < 2:
        s.fail(f"x must have at least 2 dimensions (..., T, d), got shape {np.shape(x)}")
    x = s.array("x", x, lead(np.ndim(x), "T d"))
    if x.shape[-1] % 2:
        s.fail(f"x has d = {x.shape[-1]} features; the rotation needs an even d")
    return x, check_int("rotate", "start", start, 0)


def group_norm_forward(x, w, b, eps):
    if active():
        s = Shapes("group_norm_forward")
        if np.ndim(x) < 2:
            s.fail(f"x must have at least 2 dimensions (..., h, dv), got shape {np.shape(x)}")
        x = s.array("x", x, lead(np.ndim(x), "h dv"))
        w = s.array("w", w, "h dv")
        b = s.array("b", b, "h dv")
        eps = check_eps("group_norm_forward", eps)
    constant_row("group_norm_forward", x, eps, "a (token, head) group is constant")
    return x, w, b, eps


def group_norm_backward(dy, cache):
    if not active():
        return dy
    check_cache("group_norm_backward", cache, "GroupNormCache", "group_norm_forward")
    return gradient("group_norm_backward", "dy", dy, cache, "GroupNormCache",
                    "group_norm_forward", "xhat", lead(cache.xhat.ndim, ""))


def key_width(func, D, n_heads, source="D"):
    """``d = D / n_heads``, checked: whole and even; ``source`` says where D came from."""
    n_heads = check_int(func, "n_heads", n_heads, 1)
    if D % n_heads:
        raise ValueError(f"{func}: n_heads = {n_heads} must divide the model width "
                         f"{source} = {D}")
    d = D // n_heads
    if d % 2:
        raise ValueError(f"{func}: the key width per head d = D / n_heads = {d} must be even "
                         f"for the rotation ({source} = {D}, n_heads = {n_heads})")
    return d


def init_msr_params(D, n_heads, dv, learn_decay=False):
    check_bool("init_msr_params", "learn_decay", learn_decay)
    D = check_int("init_msr_params", "D", D, 1)
    dv = check_int("init_msr_params", "dv", dv, 1)
    key_width("init_msr_params", D, n_heads)
    return D, dv


def layer_inputs(func, x, params, n_heads, axes, spec=None, optional=OPTIONAL):
    s = Shapes(func)
    x = s.array("x", x, axes)
    D = s.sizes["D"]
    key_width(func, D, n_heads, f"D (the last axis of x, shape {x.shape})")
    p = s.params(params, "params", spec or MSR_PARAMS, optional)
    if p["gn_w"].shape[0] != n_heads or p["gn_w"].shape[0] * p["gn_w"].shape[1] != s.sizes["hdv"]:
        s.fail(f"params['gn_w'] has shape {p['gn_w'].shape}, expected (h, dv) = "
               f"({n_heads}, {s.sizes['hdv'] // n_heads}) for n_heads = {n_heads} and value "
               f"width h*dv = {s.sizes['hdv']}")
    return x, p


def _options(func, state, eps):
    """The group-norm epsilon and the type of the incoming state."""
    eps = check_eps(func, eps)
    if state is not None and not isinstance(state, RetentionState):
        raise TypeError(f"{func}: state must be a RetentionState or None, "
                        f"got {type(state).__name__}")
    return eps


def _core_state(func, x, params, n_heads, state):
    """The incoming state must fit the heads: S (B, h, d, dv), z (B, h, d), s (h,)."""
    if state is None:
        return None
    s = Shapes(func)
    B, D = x.shape[0], x.shape[-1]
    s.bind_all("B h d dv", (B, n_heads, D // n_heads, params["gn_w"].shape[1]),
               f"x and params (n_heads = {n_heads})")
    return retention_state(s, state, x.dtype)


def msr_forward(x, params, n_heads, form, chunk_size, state, eps):
    """``(x, params)`` checked: x (B, T, D), the parameters of ``MSR_PARAMS``, the form, the
    incoming state (it must fit the heads)."""
    if not active():
        return x, params, state
    func = "msr_forward"
    x, params = layer_inputs(func, x, params, n_heads, "B T D")
    if form not in FORMS:
        raise ValueError(f"{func}: form must be one of {FORMS}, got {form!r}")
    if form == "chunkwise" and chunk_size is None:
        raise ValueError(f"{func}: the chunkwise form needs chunk_size (an integer >= 1)")
    if form == "chunkwise":
        check_int(func, "chunk_size", chunk_size, 1)
    _options(func, state, eps)
    x, params = common_dtype(x, params)
    return x, params, _core_state(func, x, params, n_heads, state)


def msr_backward(dy, cache, dstate):
    """``dy`` (B, T, D) and the gradient of the returned state, checked against the cache."""
    if not active():
        return dy, dstate
    func = "msr_backward"
    dy = gradient(func, "dy", dy, cache, "MSRCache", "msr_forward", "x", "B T D")
    return dy, dstate_of(func, dstate, cache.final.S, cache.final.z)


def msr_step(x, params, n_heads, state, eps):
    """``(x, params, state, eps)`` checked: one token x (B, D); the state fits (or None)."""
    if not active():
        return x, params, state, eps
    func = "msr_step"
    x, params = layer_inputs(func, x, params, n_heads, "B D")
    eps = _options(func, state, eps)
    x, params = common_dtype(x, params)
    return x, params, _core_state(func, x, params, n_heads, state), eps


def other_params(s: Shapes, params, used):
    """A function that reads only ``used`` of a layer's parameter dict still refuses a dict
    whose other entries are not float arrays (a sign of a mixed-up dict)."""
    if not isinstance(params, dict):
        s.fail(f"params must be a dict of arrays, got {type(params).__name__}", TypeError)
    for key, value in params.items():
        if key not in used:                    # any shape, but a finite float array
            Shapes(s.func).array(f"params[{key!r}]", value, lead(np.ndim(value), ""))


def msr_project(x, params, n_heads, start):
    if not active():
        return x, params, start
    spec = {key: MSR_PARAMS[key] for key in ("Wq", "Wk", "Wv")}
    s = Shapes("msr_project")
    x = s.array("x", x, "B T D")
    key_width("msr_project", s.sizes["D"], n_heads, f"D (the last axis of x, shape {x.shape})")
    other_params(s, params, spec)
    p = {key: s.array(f"params[{key!r}]", params.get(key), axes) for key, axes in spec.items()}
    if s.sizes["hdv"] % n_heads:
        s.fail(f"params['Wv'] has {s.sizes['hdv']} columns, not a multiple of n_heads = {n_heads}")
    x, *arrays = same_dtype(x, *p.values())                 # q, k, v in one dtype
    return x, dict(zip(p, arrays)), check_int("msr_project", "start", start, 0)


def msr_project_backward(dq, dk, dv, x, params, start):
    if not active():
        return dq, dk, dv, x, params, start
    s = Shapes("msr_project_backward")
    x = s.array("x", x, "B T D")
    dq = s.array("dq", dq, "B h T d")
    dk = s.array("dk", dk, "B h T d")
    dv = s.array("dv", dv, "B h T dv")
    spec = {"Wq": "D Dq", "Wk": "D Dk", "Wv": "D hdv"}
    other_params(s, params, spec)
    p = {key: s.array(f"params[{key!r}]", params.get(key), axes) for key, axes in spec.items()}
    for name, size in (("Dq", "d"), ("Dk", "d"), ("hdv", "dv")):
        if s.sizes[name] != s.sizes["h"] * s.sizes[size]:
            s.fail(f"the head gradients (h = {s.sizes['h']}, {size} = {s.sizes[size]}) do not "
                   f"fit params (width {s.sizes[name]})")
    return dq, dk, dv, x, p, check_int(s.func, "start", start, 0)


def msr_output(o, x, params, eps):
    if not active():
        return o, x, params, eps
    s = Shapes("msr_output")
    o = s.array("o", o, "B h T dv")
    x = s.array("x", x, "B T D")
    spec = {"Wg": "D hdv", "Wo": "hdv D", "gn_w": "h dv", "gn_b": "h dv"}
    other_params(s, params, spec)
    p = {key: s.array(f"params[{key!r}]", params.get(key), axes) for key, axes in spec.items()}
    if s.sizes["hdv"] != s.sizes["h"] * s.sizes["dv"]:
        s.fail(f"params['Wg'] has {s.sizes['hdv']} columns, expected h*dv = "
               f"{s.sizes['h'] * s.sizes['dv']}")
    o, x, *arrays = same_dtype(o, x, *p.values())
    return o, x, dict(zip(p, arrays)), check_eps("msr_output", eps)


def msr_output_backward(dout, cache):
    if not active():
        return dout
    return gradient("msr_output_backward", "dout", dout, cache, "MSROutputCache", "msr_output",
                    "x", "B T D")
