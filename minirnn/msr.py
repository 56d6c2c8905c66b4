"""Multi-scale retention (MSR): the RetNet layer around the retention core.

Equations (numbered as on ``derivations/multiscale-retention.md``)::

    gamma_i = 1 - 2^(-5 - i),  i = 0 .. h-1                                   (M.1)
    rotation at absolute position n, feature pairs (2i, 2i+1), angle n theta_i,
    theta_i = 10000^(-i / (d/2 - 1)):                                          (M.2)
        x'_{2i}   = x_{2i} cos(n theta_i) - x_{2i+1} sin(n theta_i)
        x'_{2i+1} = x_{2i+1} cos(n theta_i) + x_{2i} sin(n theta_i)
    Q = rot(X Wq), K = rot(X Wk), V = X Wv, head_i = Retention(Q_i, K_i, V_i, gamma_i)
    GroupNorm per (token, head) over dv: y = (o - mean) / sqrt(var + eps) * w + b   (M.3)
    MSR(X) = (swish(X Wg) * GroupNorm(heads)) Wo,   swish(u) = u sigmoid(u)  (M.4)

Shapes: ``x`` (B, T, D); per head key width ``d = D / h`` (even) and value width ``dv``.
Parameters: ``Wq``, ``Wk`` (D, D); ``Wv``, ``Wg`` (D, h*dv); ``Wo`` (h*dv, D); group-norm
``gn_w``, ``gn_b`` (h, dv).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import Shapes, check_cache, check_int
from .retention import (
    RetentionState,
    retention_chunkwise,
    retention_chunkwise_backward,
    retention_final_state,
    retention_parallel,
    retention_parallel_backward,
    retention_recurrent,
    retention_recurrent_backward,
)

__all__ = [
    "GroupNormCache",
    "MSRCache",
    "group_norm_backward",
    "group_norm_forward",
    "init_msr_params",
    "msr_backward",
    "msr_forward",
    "msr_gammas",
    "msr_step",
    "rotate",
    "rotation_angles",
]

FORMS = ("parallel", "recurrent", "chunkwise")


def msr_gammas(n_heads: int) -> np.ndarray:
    """The paper's per-head decays ``gamma_i = 1 - 2^(-5-i)``, eq. (M.1), in float64.

    Head ``i`` remembers roughly ``1 / (1 - gamma_i) = 32 * 2^i`` tokens: 32, 64, 128, ...

    Parameters
    ----------
    n_heads : int

    Returns
    -------
    ndarray, shape (h,)
    """
    n_heads = check_int("msr_gammas", "n_heads", n_heads, 1)
    return 1.0 - 2.0 ** (-5.0 - np.arange(n_heads))


# --- rotation ---------------------------------------------------------------------------------

def rotation_angles(d: int) -> np.ndarray:
    """Angles ``theta_i = 10000^(-i/(d/2 - 1))`` of eq. (M.2), shape (d/2,), float64.

    This is RetNet's choice (``linspace`` of the exponent from 0 to 1); standard RoPE uses
    ``10000^(-2i/d)``, almost the same. For ``d = 2`` the single angle is 1.
    """
    d = check_int("rotation_angles", "d", d, 2)
    if d % 2:
        raise ValueError(f"rotation_angles: the rotation acts on pairs of features, so the key "
                         f"width d must be even, got d = {d}")
    return 10000.0 ** -np.linspace(0.0, 1.0, d // 2)


def _rotate(x, positions, sign=1.0):
    """Rotate feature pairs (2i, 2i+1) of x (..., T, d) by sign * n * theta_i."""
    angles = sign * np.outer(positions, rotation_angles(x.shape[-1]))   # (T, d/2)
    cos, sin = np.cos(angles).astype(x.dtype), np.sin(angles).astype(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = even * cos - odd * sin
    out[..., 1::2] = odd * cos + even * sin
    return out


def rotate(x: np.ndarray, start: int = 0, inverse: bool = False) -> np.ndarray:
    """Rotate queries or keys at absolute positions ``start, start+1, ...``, eq. (M.2).

    Each feature pair ``(2i, 2i+1)`` of position ``n`` is rotated by the angle ``n theta_i``.
    Rotating both queries and keys this way makes ``q'_n . k'_m`` depend on ``n - m`` only.
    The rotation is orthogonal, so its backward is the rotation by the opposite angle
    (``inverse=True``).

    Parameters
    ----------
    x : ndarray, shape (..., T, d)
        ``d`` must be even.
    start : int, optional
        Absolute position of the first of the ``T`` rows.
    inverse : bool, optional
        Rotate by ``-n theta_i`` instead.

    Returns
    -------
    ndarray, shape of ``x``
    """
    s = Shapes("rotate")
    if np.ndim(x) < 2:
        s.fail(f"x must have at least 2 dimensions (..., T, d), got shape {np.shape(x)}")
    x = s.array("x", x, " ".join(f"n{i}" for i in range(np.ndim(x) - 2)) + " T d")
    if x.shape[-1] % 2:
        s.fail(f"x has d = {x.shape[-1]} features; the rotation needs an even d")
    start = check_int("rotate", "start", start, 0)
    return _rotate(x, np.arange(start, start + x.shape[-2]), -1.0 if inverse else 1.0)


# --- group norm per (token, head) -------------------------------------------------------------

class GroupNormCache(NamedTuple):
    xhat: np.ndarray    # (..., h, dv) normalised input
    sigma: np.ndarray   # (..., h, 1) sqrt(var + eps)
    w: np.ndarray       # (h, dv)


def group_norm_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-5):
    """Normalise each head of each token over its ``dv`` features, then scale and shift.

    Implements eq. (M.3): ``y = (x - mean) / sqrt(var + eps) * w + b`` with mean and variance
    over the last axis only. One group is one (token, head) pair: it never mixes time steps,
    so it keeps causality. With ``eps = 0`` it is scale invariant, ``GN(a x) = GN(x)`` for
    ``a > 0``.

    Parameters
    ----------
    x : ndarray, shape (..., h, dv)
    w, b : ndarray, shape (h, dv)
        Affine weight and bias per channel.
    eps : float, optional
        Added to the variance; must be ``>= 0``.

    Returns
    -------
    y : ndarray, shape of ``x``
    cache : GroupNormCache
    """
    s = Shapes("group_norm_forward")
    if np.ndim(x) < 2:
        s.fail(f"x must have at least 2 dimensions (..., h, dv), got shape {np.shape(x)}")
    x = s.array("x", x, " ".join(f"n{i}" for i in range(np.ndim(x) - 2)) + " h dv")
    w = s.array("w", w, "h dv")
    b = s.array("b", b, "h dv")
    if not (isinstance(eps, (int, float)) and eps >= 0):
        s.fail(f"eps must be a number >= 0, got {eps!r}")
    return _group_norm(x, w, b, eps)


def _group_norm(x, w, b, eps):
    mu = x.mean(axis=-1, keepdims=True)
    sigma = np.sqrt(((x - mu) ** 2).mean(axis=-1, keepdims=True) + eps)
    if eps == 0 and np.any(sigma == 0):
        raise ValueError("group norm: a (token, head) group is constant and eps = 0, so its "
                         "normalisation is 0/0; use eps > 0 (or dv > 1 with varying inputs)")
    xhat = (x - mu) / sigma
    return xhat * w + b, GroupNormCache(xhat, sigma, w)


def group_norm_backward(dy: np.ndarray, cache: GroupNormCache):
    """Backward of :func:`group_norm_forward`, eq. (M.5).

    With ``g = dy * w``: ``dx = (g - mean(g) - xhat * mean(g * xhat)) / sigma``, means over
    ``dv``; ``dw`` and ``db`` sum ``dy * xhat`` and ``dy`` over every axis but the last two.

    Parameters
    ----------
    dy : ndarray, shape (..., h, dv)
    cache : GroupNormCache

    Returns
    -------
    dx : ndarray, shape of ``dy``
    dw, db : ndarray, shape (h, dv)
    """
    check_cache("group_norm_backward", cache, GroupNormCache, "group_norm_forward")
    s = Shapes("group_norm_backward")
    letters = " ".join(f"n{i}" for i in range(cache.xhat.ndim))
    for i, size in enumerate(cache.xhat.shape):
        s.bind(f"n{i}", size, "cache.xhat")
    dy = s.array("dy", dy, letters)
    return _group_norm_backward(dy, cache)


def _group_norm_backward(dy, cache):
    # --- exercise: group_norm_backward ---
    axes = tuple(range(dy.ndim - 2))
    g = dy * cache.w
    dx = (g - g.mean(axis=-1, keepdims=True)
          - cache.xhat * (g * cache.xhat).mean(axis=-1, keepdims=True)) / cache.sigma
    return dx, (dy * cache.xhat).sum(axis=axes), dy.sum(axis=axes)
    # --- end ---


# --- the layer --------------------------------------------------------------------------------

class MSRCache(NamedTuple):
    """What :func:`msr_backward` needs."""

    x: np.ndarray          # (B, T, D)
    params: dict
    n_heads: int
    start: int             # absolute position of x[:, 0]
    form: str
    core: tuple            # cache of the retention core of that form
    norm: GroupNormCache   # group norm of the heads
    y: np.ndarray          # (B, T, h, dv) normalised heads
    u: np.ndarray          # (B, T, h*dv) gate pre-activation X Wg
    gate: np.ndarray       # (B, T, h*dv) swish(u)
    m: np.ndarray          # (B, T, h*dv) gate * heads, the input of Wo


def init_msr_params(D: int, n_heads: int, dv: int, seed: int = 0,
                    dtype=np.float64) -> dict[str, np.ndarray]:
    """Initial parameters of a multi-scale retention layer.

    Projections are normal with the Xavier standard deviation ``sqrt(2 / (fan_in + fan_out))``
    times a gain: ``2^-2.5`` for ``Wq``, ``Wk``, ``Wv``, ``Wg`` and ``2^-1`` for ``Wo`` (the
    official RetNet gains). The group norm starts as the identity affine map (``w = 1``,
    ``b = 0``).

    Parameters
    ----------
    D : int
        Model width; ``n_heads`` must divide it and ``D / n_heads`` must be even (rotation).
    n_heads : int
    dv : int
        Value width of one head.
    seed : int, optional
    dtype : numpy dtype, optional

    Returns
    -------
    dict
        ``Wq``, ``Wk`` (D, D); ``Wv``, ``Wg`` (D, h*dv); ``Wo`` (h*dv, D); ``gn_w``, ``gn_b``
        (h, dv).
    """
    D = check_int("init_msr_params", "D", D, 1)
    dv = check_int("init_msr_params", "dv", dv, 1)
    _key_width("init_msr_params", D, n_heads)
    rng = np.random.default_rng(seed)
    E = n_heads * dv

    def xavier(fan_in, fan_out, gain):
        std = gain * np.sqrt(2.0 / (fan_in + fan_out))
        return (std * rng.standard_normal((fan_in, fan_out))).astype(dtype)

    return {"Wq": xavier(D, D, 2 ** -2.5), "Wk": xavier(D, D, 2 ** -2.5),
            "Wv": xavier(D, E, 2 ** -2.5), "Wg": xavier(D, E, 2 ** -2.5),
            "Wo": xavier(E, D, 2 ** -1), "gn_w": np.ones((n_heads, dv), dtype=dtype),
            "gn_b": np.zeros((n_heads, dv), dtype=dtype)}


def _key_width(func, D, n_heads, source="D"):
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


def _sigmoid(u):
    return 0.5 * (1.0 + np.tanh(0.5 * u))      # equal to 1 / (1 + e^-u), without overflow


def msr_forward(x: np.ndarray, params: dict[str, np.ndarray], n_heads: int,
                form: str = "parallel", chunk_size: int | None = None,
                state: RetentionState | None = None, eps: float = 1e-5):
    """Multi-scale retention layer in any of the three forms.

    Implements eqs. (M.1)-(M.4): project, rotate queries and keys at their absolute positions
    (continuing from ``state.position``), run retention with the per-head decays of (M.1) and
    all normalisations, group-norm each head, gate with swish and project out. Because the
    retention core gives the same numbers in every form, so does the whole layer (also with
    ``eps > 0``).

    Parameters
    ----------
    x : ndarray, shape (B, T, D)
    params : dict
        From :func:`init_msr_params`.
    n_heads : int
    form : {"parallel", "recurrent", "chunkwise"}, optional
    chunk_size : int, optional
        Required for the chunkwise form.
    state : RetentionState, optional
        Continue a sequence (recurrent and chunkwise forms; the parallel form always starts
        one).
    eps : float, optional
        Group-norm epsilon.

    Returns
    -------
    y : ndarray, shape (B, T, D)
    state : RetentionState
        State after the last token, to continue with :func:`msr_step` or another call.
    cache : MSRCache
    """
    return _msr_forward("msr_forward", x, params, n_heads, form, chunk_size, state, eps)


def _msr_forward(func, x, params, n_heads, form, chunk_size, state, eps):
    """The body of :func:`msr_forward`; ``func`` names the public caller in errors."""
    x, p, d, dv = _check_msr(func, x, params, n_heads, "B T D")
    if form not in FORMS:
        raise ValueError(f"{func}: form must be one of {FORMS}, got {form!r}")
    if form == "chunkwise" and chunk_size is None:
        raise ValueError(f"{func}: the chunkwise form needs chunk_size (an integer >= 1)")
    if form == "parallel" and state is not None:
        raise ValueError(f"{func}: the parallel form starts a new sequence; continue one "
                         "with form='recurrent' or 'chunkwise'")
    if isinstance(eps, bool) or not (isinstance(eps, (int, float)) and eps >= 0):
        raise ValueError(f"{func}: eps must be a number >= 0, got {eps!r}")
    if state is not None and not isinstance(state, RetentionState):
        raise TypeError(f"{func}: state must be a RetentionState or None, "
                        f"got {type(state).__name__}")
    B, T, _ = x.shape
    start = 0 if state is None else check_int(func, "state.position",
                                              state.position, 0)
    gammas = msr_gammas(n_heads)

    def heads(w, width):                                   # (B, T, h*w) -> (B, h, T, w)
        return (x @ w).reshape(B, T, n_heads, width).transpose(0, 2, 1, 3)

    positions = np.arange(start, start + T)
    q = _rotate(heads(p["Wq"], d), positions)              # (M.2)
    k = _rotate(heads(p["Wk"], d), positions)
    v = heads(p["Wv"], dv)
    if form == "parallel":
        o, core = retention_parallel(q, k, v, gammas)
        new_state = retention_final_state(k, v, gammas)
    elif form == "recurrent":
        o, new_state, core = retention_recurrent(q, k, v, gammas, state)
    else:
        o, new_state, core = retention_chunkwise(q, k, v, gammas, chunk_size, state)
    y, norm = _group_norm(o.transpose(0, 2, 1, 3), p["gn_w"], p["gn_b"], eps)   # (M.3)
    u = x @ p["Wg"]
    gate = u * _sigmoid(u)                                                      # (M.4)
    m = gate * y.reshape(B, T, n_heads * dv)
    cache = MSRCache(x, p, n_heads, start, form, core, norm, y, u, gate, m)
    return m @ p["Wo"], new_state, cache


def msr_backward(dy: np.ndarray, cache: MSRCache):
    """Backward of :func:`msr_forward` for any form.

    In reverse order: ``Wo``; the gate product, with ``swish'(u) = s(u) (1 + u (1 - s(u)))``
    for the sigmoid ``s``; the group norm (M.5); the retention core of the form used (R.10),
    (R.11) or (R.12); the rotation (its transpose is the rotation back); the projections.

    Parameters
    ----------
    dy : ndarray, shape (B, T, D)
    cache : MSRCache

    Returns
    -------
    dx : ndarray, shape (B, T, D)
    grads : dict
        Same keys as ``params``.
    """
    check_cache("msr_backward", cache, MSRCache, "msr_forward")
    c, p = cache, cache.params
    s = Shapes("msr_backward")
    for letter, size in zip("BTD", c.x.shape):
        s.bind(letter, size, "cache.x")
    dy = s.array("dy", dy, "B T D")
    B, T, _ = c.x.shape
    h, dv = c.y.shape[-2:]
    grads = {"Wo": np.einsum("bte,btd->ed", c.m, dy, optimize=True)}
    dm = dy @ p["Wo"].T
    sig = _sigmoid(c.u)
    du = dm * c.y.reshape(B, T, h * dv) * sig * (1.0 + c.u * (1.0 - sig))
    dyn, grads["gn_w"], grads["gn_b"] = _group_norm_backward(
        (dm * c.gate).reshape(B, T, h, dv), c.norm)
    do = dyn.transpose(0, 2, 1, 3)                                     # (B, h, T, dv)
    if c.form == "parallel":
        dq, dk, dvv = retention_parallel_backward(do, c.core)
    elif c.form == "recurrent":
        dq, dk, dvv = retention_recurrent_backward(do, c.core)[:3]
    else:
        dq, dk, dvv = retention_chunkwise_backward(do, c.core)[:3]
    positions = np.arange(c.start, c.start + T)
    dq, dk = _rotate(dq, positions, -1.0), _rotate(dk, positions, -1.0)

    def merge(g):                                                      # (B, h, T, w) -> (B, T, h*w)
        return g.transpose(0, 2, 1, 3).reshape(B, T, -1)

    dx = du @ p["Wg"].T
    grads["Wg"] = np.einsum("btd,bte->de", c.x, du, optimize=True)
    for name, g in (("Wq", dq), ("Wk", dk), ("Wv", dvv)):
        g = merge(g)
        grads[name] = np.einsum("btd,bte->de", c.x, g, optimize=True)
        dx += g @ p[name].T
    return dx, {key: grads[key] for key in p}


def msr_step(x: np.ndarray, params: dict[str, np.ndarray], n_heads: int,
             state: RetentionState | None = None, eps: float = 1e-5):
    """Decode one token with the recurrent state: O(1) time and memory per token.

    Equal to the matching row of :func:`msr_forward` on the whole sequence (any form).

    Parameters
    ----------
    x : ndarray, shape (B, D)
        The new token.
    params : dict
    n_heads : int
    state : RetentionState, optional
        State after the earlier tokens (from :func:`msr_forward` or an earlier step).
    eps : float, optional

    Returns
    -------
    y : ndarray, shape (B, D)
    state : RetentionState
    """
    x = Shapes("msr_step").array("x", x, "B D")    # one token per sequence
    y, state, _ = _msr_forward("msr_step", x[:, None], params, n_heads, "recurrent", None,
                               state, eps)
    return y[:, 0], state


def _check_msr(func, x, params, n_heads, axes):
    s = Shapes(func)
    x = s.array("x", x, axes)
    D = s.sizes["D"]
    d = _key_width(func, D, n_heads, f"D (the last axis of x, shape {x.shape})")
    p = s.params(params, "params", {"Wq": "D D", "Wk": "D D", "Wv": "D E", "Wg": "D E",
                                    "Wo": "E D", "gn_w": "h dv", "gn_b": "h dv"})
    if p["gn_w"].shape[0] != n_heads or p["gn_w"].shape[0] * p["gn_w"].shape[1] != s.sizes["E"]:
        s.fail(f"params['gn_w'] has shape {p['gn_w'].shape}, expected (h, dv) = "
               f"({n_heads}, {s.sizes['E'] // n_heads}) for n_heads = {n_heads} and value "
               f"width h*dv = {s.sizes['E']}")
    return x, p, d, p["gn_w"].shape[1]
