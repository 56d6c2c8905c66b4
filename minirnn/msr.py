"""Multi-scale retention (MSR): the RetNet layer around the retention core.

Equations (numbered as on ``derivations/multiscale-retention.md``)::

    gamma_i = 1 - 2^(-5 - i),  i = 0 .. h-1                                   (M.1)
    rotation at absolute position n, feature pairs (2i, 2i+1), angle n theta_i,
    theta_i = 10000^(-i / (d/2 - 1)):                                          (M.2)
        x'_{2i}   = x_{2i} cos(n theta_i) - x_{2i+1} sin(n theta_i)
        x'_{2i+1} = x_{2i+1} cos(n theta_i) + x_{2i} sin(n theta_i)
    Q = rot(X Wq), K = rot(X Wk), V = X Wv, head_i = Retention(Q_i, K_i, V_i, gamma_i)
    GroupNorm per (token, head) over dv: y = (o - mean) / sqrt(var + eps) * w + b   (M.3)
    MSR(X) = (swish(X Wg) * GroupNorm(heads)) Wo,   swish(a) = a sigmoid(a)  (M.5)
    group-norm backward: (L.4) with dxhat = dy * w, per (token, head)          (M.4)
    learned decays: gamma_i = sigmoid(phi_i), d phi = d gamma gamma (1 - gamma)      (M.6)

Shapes: ``x`` (B, T, D); per head key width ``d = D / h`` (even) and value width ``dv``.
Parameters: ``Wq``, ``Wk`` (D, D); ``Wv``, ``Wg`` (D, h*dv); ``Wo`` (h*dv, D); group-norm
``gn_w``, ``gn_b`` (h, dv); optionally ``decay_logit`` (h,) to learn the decays.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import msr as check
from .gated import retention_decay_gradient
from .layers import (
    merge_heads,
    split_heads,
    standardize,
    standardize_backward,
    weight_gradient,
)
from .retention import retention_forms
from .states import RetentionState, RetentionStateGrad

__all__ = [
    "GroupNormCache",
    "MSRCache",
    "MSROutputCache",
    "group_norm_backward",
    "group_norm_forward",
    "init_msr_params",
    "msr_backward",
    "msr_forward",
    "msr_gammas",
    "msr_output",
    "msr_output_backward",
    "msr_project",
    "msr_project_backward",
    "msr_step",
    "rotate",
    "rotation_angles",
    "rotation_phases",
    "rotation_table",
]

def msr_gammas(n_heads: int, params: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The per-head decays of a multi-scale retention layer, in float64.

    RetNet's fixed choice ``gamma_i = 1 - 2^(-5-i)``, eq. (M.1): head ``i`` remembers roughly
    ``1 / (1 - gamma_i) = 32 * 2^i`` tokens (32, 64, 128, ...). When ``params`` holds
    ``decay_logit`` (a layer that learns its decays), ``gamma = sigmoid(decay_logit)`` instead,
    which stays in (0, 1) whatever the optimiser does, eq. (M.6).

    Parameters
    ----------
    n_heads : int
    params : dict, optional
        The layer's parameters (only ``decay_logit`` is read).

    Returns
    -------
    ndarray, shape (h,)
    """
    n_heads, params = check.msr_gammas(n_heads, params)
    if params is None or "decay_logit" not in params:
        return 1.0 - 2.0 ** (-5.0 - np.arange(n_heads))              # (M.1)
    phi = params["decay_logit"].astype(np.float64)
    return 0.5 + 0.5 * np.tanh(0.5 * phi)                            # sigmoid(phi) (M.6)


# --- rotation ---------------------------------------------------------------------------------

def rotation_angles(d: int) -> np.ndarray:
    """Angles ``theta_i = 10000^(-i/(d/2 - 1))`` of eq. (M.2), shape (d/2,), float64.

    This is RetNet's choice (``linspace`` of the exponent from 0 to 1); standard RoPE uses
    ``10000^(-2i/d)``. Both start at 1; the slowest angles differ by ``10000^(2/d)`` (10 at
    ``d = 8``, 1.33 at ``d = 64``), so the two are close only for wide heads. For ``d = 2`` the
    single angle is 1.
    """
    d = check.rotation_angles(d)
    exponent = np.arange(d // 2) / max(d // 2 - 1, 1)               # 0 .. 1 in d/2 steps
    return 10000.0 ** -exponent


def rotate(x: np.ndarray, start: int = 0, inverse: bool = False) -> np.ndarray:
    """Rotate queries or keys at absolute positions ``start, start+1, ...``, eq. (M.2).

    Each feature pair ``(2i, 2i+1)`` of position ``n`` is rotated by the angle ``n theta_i``.
    Rotating both queries and keys this way makes ``q'_n . k'_m`` depend on ``n - m`` only.
    The code takes the derivation page's complex view: the pair is the complex number
    ``x_2i + i x_2i+1`` (NumPy reads two neighbouring floats as one complex number without a
    copy), and the rotation multiplies it by ``e^(i n theta_i)``, one multiplication instead of
    four products and two sums of strided halves. The rotation is orthogonal, so its backward
    is the rotation by the opposite angle (``inverse=True``), a multiplication by the conjugate.

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
    ndarray, shape and dtype of ``x``
    """
    x, start = check.rotate(x, start, inverse)
    phase = rotation_phases(start, x.shape[-2], x.shape[-1], x.dtype)   # e^(i n theta_i)
    if inverse:
        phase = phase.conj()                                         # the angles -n theta_i
    if x.strides[-1] != x.itemsize:                                  # the pairs must lie side
        x = x.copy()                                                 # by side to be read as one
    pairs = x.view(phase.dtype)                                  # x_2i + i x_2i+1: (..., T, d/2)
    return (pairs * phase).view(x.dtype)                             # (M.2)


# (d, dtype) -> (cos, sin, e^(i n theta)) of the positions 0 .. P-1; P grows to the next power of 2
_ROTATION_TABLES: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
_ROTATION_ROWS_KEPT = 1 << 15   # positions kept per (d, dtype), at most; later ones are not kept


def rotation_table(start: int, T: int, d: int, dtype=np.float64):
    """``cos(n theta_i)`` and ``sin(n theta_i)`` of eq. (M.2) for the positions
    ``n = start .. start+T-1``.

    Kept for the next calls: one table of the positions ``0 .. P-1`` per key width and dtype,
    and every call returns rows of it. The queries and keys of a call are rotated at the same
    positions, a model sees the positions ``0 .. T-1`` at every training step, and a decoding
    loop asks for one new position per token: none of them computes a cosine again, except when
    a call reaches past the table, which is then recomputed up to the next power of two (so a
    decoding loop of ``N`` tokens computes it about ``log2 N`` times). A call that reaches past
    position 32,767 computes its own rows and keeps nothing. The arrays are read-only, since
    every later call shares them.

    Parameters
    ----------
    start : int
        The first absolute position, ``>= 0``.
    T : int
        How many positions, ``>= 1``.
    d : int
        The key width (even); the tables have ``d / 2`` columns, one per feature pair.
    dtype : float32 or float64, optional

    Returns
    -------
    cos, sin : ndarray, shape (T, d/2), read-only
    """
    start, T, d, dtype = check.rotation_table(start, T, d, dtype)
    return _rotation_rows(start, T, d, dtype)[:2]


def rotation_phases(start: int, T: int, d: int, dtype=np.float64) -> np.ndarray:
    """The same angles as complex numbers: ``e^(i n theta_i) = cos(n theta_i) + i sin(n theta_i)``
    for ``n = start .. start+T-1``, what [`rotate`][minirnn.msr.rotate] multiplies by.

    Computed and kept with the tables of [`rotation_table`][minirnn.msr.rotation_table],
    read-only.

    Parameters
    ----------
    start : int
        The first absolute position, ``>= 0``.
    T : int
        How many positions, ``>= 1``.
    d : int
        The key width (even).
    dtype : float32 or float64, optional
        The real dtype; the phases are complex64 for float32 and complex128 for float64.

    Returns
    -------
    ndarray, shape (T, d/2), complex, read-only
    """
    start, T, d, dtype = check.rotation_table(start, T, d, dtype, "rotation_phases")
    return _rotation_rows(start, T, d, dtype)[2]


def _rotation_rows(start: int, T: int, d: int, dtype) -> tuple[np.ndarray, ...]:
    """Rows ``start .. start+T-1`` of the kept tables (cos, sin, phase) of ``(d, dtype)``: the
    plumbing of [`rotation_table`][minirnn.msr.rotation_table], which documents the tables."""
    end, dtype = int(start + T), np.dtype(dtype)
    tables = _ROTATION_TABLES.get((d, dtype))
    if tables is not None and len(tables[0]) >= end:
        return tuple(table[start:end] for table in tables)           # kept: no cosine computed
    keep = end <= _ROTATION_ROWS_KEPT
    n = np.arange(max(64, 1 << (end - 1).bit_length())) if keep else np.arange(start, end)
    angles = n[:, None] * rotation_angles(d)                         # n theta_i, float64
    cos, sin = np.cos(angles).astype(dtype), np.sin(angles).astype(dtype)
    phase = (cos + 1j * sin).astype(np.result_type(dtype, np.complex64))   # for rotate
    for table in (cos, sin, phase):
        table.flags.writeable = False
    if not keep:
        return cos, sin, phase                                       # too far out to keep
    _ROTATION_TABLES[(d, dtype)] = (cos, sin, phase)                 # positions 0 .. 2^k - 1
    return cos[start:end], sin[start:end], phase[start:end]


# --- group norm per (token, head) -------------------------------------------------------------

class GroupNormCache(NamedTuple):
    xhat: np.ndarray    # (..., h, dv) normalised input
    sigma: np.ndarray   # (..., h, 1) sqrt(var + eps)
    w: np.ndarray       # (h, dv)


def group_norm_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-5):
    """Normalise each head of each token over its ``dv`` features, then scale and shift.

    Implements eq. (M.3): ``y = (x - mean) / sqrt(var + eps) * w + b`` with mean and variance
    over the last axis only ([`standardize`][minirnn.layers.standardize], as in layer norm). One
    group is one (token, head) pair: it never mixes time steps, so it keeps causality. With
    ``eps = 0`` it is scale invariant, ``GN(a x) = GN(x)`` for ``a > 0``.

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
    x, w, b, eps = check.group_norm_forward(x, w, b, eps)
    xhat, sigma = standardize(x, eps)                                # over dv
    y = xhat * w + b                                                 # (M.3)
    return y, GroupNormCache(xhat, sigma, w)


def group_norm_backward(dy: np.ndarray, cache: GroupNormCache):
    """Backward of [`group_norm_forward`][minirnn.msr.group_norm_forward], eq. (M.4).

    The affine part first (``dw``, ``db`` and the gradient reaching ``xhat``), then the
    backward of the standardisation, eq. (L.4), per (token, head) group.

    Parameters
    ----------
    dy : ndarray, shape (..., h, dv)
    cache : GroupNormCache

    Returns
    -------
    dx : ndarray, shape of ``dy``
    dw, db : ndarray, shape (h, dv)
    """
    dy = check.group_norm_backward(dy, cache)
    # --- exercise: group_norm_backward ---
    every_group = tuple(range(dy.ndim - 2))                          # all axes but (h, dv)
    dw = (dy * cache.xhat).sum(axis=every_group)
    db = dy.sum(axis=every_group)
    dxhat = dy * cache.w
    dx = standardize_backward(dxhat, cache.xhat, cache.sigma)        # (L.4) per group
    # --- end ---
    return dx, dw, db


# --- the parts every multi-scale layer shares: projections in, group norm and gate out ---------

class MSROutputCache(NamedTuple):
    """What [`msr_output_backward`][minirnn.msr.msr_output_backward] needs."""

    x: np.ndarray          # (B, T, D) the layer's input (the gate reads it)
    Wg: np.ndarray         # (D, h*dv)
    Wo: np.ndarray         # (h*dv, D)
    norm: GroupNormCache   # group norm of the heads
    y: np.ndarray          # (B, T, h, dv) normalised heads
    a: np.ndarray          # (B, T, h*dv) gate pre-activation X Wg
    gate: np.ndarray       # (B, T, h*dv) swish(a)
    G: np.ndarray          # (B, T, h*dv) the gated heads gate * Y, the input of Wo


def msr_project(x: np.ndarray, params: dict[str, np.ndarray], n_heads: int, start: int = 0):
    """Queries, keys and values of every head, eq. (M.2): ``Q = rot(X Wq)``, ``K = rot(X Wk)``,
    ``V = X Wv``, rotated at the absolute positions ``start, start + 1, ...``.

    Parameters
    ----------
    x : ndarray, shape (B, T, D)
    params : dict
        ``Wq``, ``Wk`` (D, D) and ``Wv`` (D, h*dv) (other keys are ignored).
    n_heads : int
    start : int, optional
        Absolute position of ``x[:, 0]``.

    Returns
    -------
    q, k : ndarray, shape (B, h, T, d)
    v : ndarray, shape (B, h, T, dv)
    """
    x, p, start = check.msr_project(x, params, n_heads, start)
    q = rotate(split_heads(x @ p["Wq"], n_heads), start)             # (M.2): (B, h, T, d)
    k = rotate(split_heads(x @ p["Wk"], n_heads), start)
    v = split_heads(x @ p["Wv"], n_heads)                            # (B, h, T, dv)
    return q, k, v


def msr_project_backward(dq: np.ndarray, dk: np.ndarray, dv: np.ndarray, x: np.ndarray,
                         params: dict[str, np.ndarray], start: int = 0):
    """Backward of [`msr_project`][minirnn.msr.msr_project]: rotate ``dq`` and ``dk`` back (the
    rotation is orthogonal, its transpose is the rotation by ``-n theta_i``), then the three
    projections.

    Parameters
    ----------
    dq, dk : ndarray, shape (B, h, T, d)
    dv : ndarray, shape (B, h, T, dv)
    x : ndarray, shape (B, T, D)
        The input of the forward.
    params : dict
    start : int, optional

    Returns
    -------
    dx : ndarray, shape (B, T, D)
    grads : dict
        ``Wq``, ``Wk``, ``Wv``.
    """
    dq, dk, dv, x, p, start = check.msr_project_backward(dq, dk, dv, x, params, start)
    dq = rotate(dq, start, inverse=True)                             # rotation back (M.2)
    dk = rotate(dk, start, inverse=True)
    dx, grads = np.zeros_like(x), {}
    for name, dhead in (("Wq", dq), ("Wk", dk), ("Wv", dv)):
        dproj = merge_heads(dhead)                                   # (B, T, h*w)
        grads[name] = weight_gradient(x, dproj)
        dx = dx + dproj @ p[name].T
    return dx, grads


def msr_output(o: np.ndarray, x: np.ndarray, params: dict[str, np.ndarray], eps: float = 1e-5):
    """From the heads to the layer's output, eqs. (M.3)-(M.5): group-norm each head, multiply
    by the gate ``swish(X Wg)`` and project with ``Wo``.

    Parameters
    ----------
    o : ndarray, shape (B, h, T, dv)
        The retention heads.
    x : ndarray, shape (B, T, D)
        The layer's input, which the gate reads.
    params : dict
        ``Wg`` (D, h*dv), ``Wo`` (h*dv, D), ``gn_w``, ``gn_b`` (h, dv).
    eps : float, optional
        Group-norm epsilon.

    Returns
    -------
    out : ndarray, shape (B, T, D)
    cache : MSROutputCache
    """
    o, x, p, eps = check.msr_output(o, x, params, eps)
    B, T = x.shape[:2]
    heads = o.transpose(0, 2, 1, 3)                                  # (B, T, h, dv)
    y, norm = group_norm_forward(heads, p["gn_w"], p["gn_b"], eps)   # (M.3)
    a = x @ p["Wg"]                                                 # the pre-activation
    gate = a * (0.5 + 0.5 * np.tanh(0.5 * a))                        # swish: a sigmoid(a) (M.5)
    G = gate * y.reshape(B, T, -1)                                   # gated heads (B, T, h*dv)
    out = G @ p["Wo"]                                                # (M.5)
    return out, MSROutputCache(x, p["Wg"], p["Wo"], norm, y, a, gate, G)


def msr_output_backward(dout: np.ndarray, cache: MSROutputCache):
    """Backward of [`msr_output`][minirnn.msr.msr_output]: ``Wo``; the gate product, with
    ``swish'(a) = s(a) (1 + a (1 - s(a)))`` for the sigmoid ``s``; the group norm (M.4).

    Parameters
    ----------
    dout : ndarray, shape (B, T, D)
    cache : MSROutputCache

    Returns
    -------
    do : ndarray, shape (B, h, T, dv)
        Gradient of the heads.
    dx : ndarray, shape (B, T, D)
        Gradient of the input through the gate.
    grads : dict
        ``Wg``, ``Wo``, ``gn_w``, ``gn_b``.
    """
    dout = check.msr_output_backward(dout, cache)
    c = cache
    B, T, _ = c.x.shape
    grads = {"Wo": weight_gradient(c.G, dout)}
    dG = dout @ c.Wo.T
    sig = 0.5 + 0.5 * np.tanh(0.5 * c.a)                             # sigmoid(a)
    da = dG * c.y.reshape(B, T, -1) * sig * (1.0 + c.a * (1.0 - sig))    # swish'(a)
    dheads, grads["gn_w"], grads["gn_b"] = group_norm_backward(
        (dG * c.gate).reshape(c.y.shape), c.norm)                   # (M.4)
    grads["Wg"] = weight_gradient(c.x, da)
    return dheads.transpose(0, 2, 1, 3), da @ c.Wg.T, grads


# --- the layer --------------------------------------------------------------------------------

class MSRCache(NamedTuple):
    """What [`msr_backward`][minirnn.msr.msr_backward] needs."""

    x: np.ndarray          # (B, T, D)
    params: dict
    n_heads: int
    start: int             # absolute position of x[:, 0]
    form: str
    core: tuple            # cache of the retention core of that form
    output: MSROutputCache
    gamma: np.ndarray      # (h,) the decays used
    q: np.ndarray          # (B, h, T, d) rotated queries, as given to the core
    k: np.ndarray          # (B, h, T, d) rotated keys
    state: RetentionState  # the incoming state
    final: RetentionState  # the returned state


def init_msr_params(D: int, n_heads: int, dv: int, seed: int = 0, dtype=np.float64,
                    learn_decay: bool = False) -> dict[str, np.ndarray]:
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
    learn_decay : bool, optional
        Add ``decay_logit`` (h,), the logit of each head's decay, initialised at the paper's
        decays (M.1): the layer then learns its decays (M.6).

    Returns
    -------
    dict
        ``Wq``, ``Wk`` (D, D); ``Wv``, ``Wg`` (D, h*dv); ``Wo`` (h*dv, D); ``gn_w``, ``gn_b``
        (h, dv); with ``learn_decay`` also ``decay_logit`` (h,).
    """
    D, dv = check.init_msr_params(D, n_heads, dv, learn_decay)
    rng = np.random.default_rng(seed)
    hdv = n_heads * dv                                               # the heads' value width

    def xavier(fan_in, fan_out, gain):
        std = gain * np.sqrt(2.0 / (fan_in + fan_out))
        return (std * rng.standard_normal((fan_in, fan_out))).astype(dtype)

    params = {"Wq": xavier(D, D, 2 ** -2.5), "Wk": xavier(D, D, 2 ** -2.5),
              "Wv": xavier(D, hdv, 2 ** -2.5), "Wg": xavier(D, hdv, 2 ** -2.5),
              "Wo": xavier(hdv, D, 2 ** -1), "gn_w": np.ones((n_heads, dv), dtype=dtype),
              "gn_b": np.zeros((n_heads, dv), dtype=dtype)}
    if learn_decay:
        gamma = msr_gammas(n_heads)
        params["decay_logit"] = np.log(gamma / (1.0 - gamma)).astype(dtype)   # logit
    return params


def msr_forward(x: np.ndarray, params: dict[str, np.ndarray], n_heads: int,
                form: str = "parallel", chunk_size: int | None = None,
                state: RetentionState | None = None, eps: float = 1e-5):
    """Multi-scale retention layer in any of the three forms.

    Implements eqs. (M.1)-(M.5): project, rotate queries and keys at their absolute positions
    (continuing from ``state.position``), run retention with the per-head decays of (M.1) (or
    the learned ones of (M.6)) and all normalisations, group-norm each head, gate with swish
    and project out. Because the retention core gives the same numbers in every form, so does
    the whole layer (also with ``eps > 0``).

    Parameters
    ----------
    x : ndarray, shape (B, T, D)
    params : dict
        From [`init_msr_params`][minirnn.msr.init_msr_params].
    n_heads : int
    form : {"parallel", "recurrent", "chunkwise"}, optional
    chunk_size : int, optional
        Required for the chunkwise form.
    state : RetentionState, optional
        Continue a sequence (any form); ``None`` starts a new one.
    eps : float, optional
        Group-norm epsilon.

    Returns
    -------
    y : ndarray, shape (B, T, D)
    state : RetentionState
        State after the last token, to continue with [`msr_step`][minirnn.msr.msr_step] or another
        call.
    cache : MSRCache
    """
    x, params, state = check.msr_forward(x, params, n_heads, form, chunk_size, state, eps)
    B, _, D = x.shape
    if state is None:
        state = RetentionState.zeros(B, n_heads, D // n_heads, params["gn_w"].shape[1],
                                     x.dtype)                       # a new sequence
    gamma = msr_gammas(n_heads, params)                              # (M.1) or (M.6)
    q, k, v = msr_project(x, params, n_heads, state.position)       # (M.2)
    retention, _ = retention_forms(chunk_size)[form]
    o, final, core = retention(q, k, v, gamma, state=state)          # (R.6), (R.7) or (R.8)
    out, output = msr_output(o, x, params, eps)                      # (M.3)-(M.5)
    return out, final, MSRCache(x=x, params=params, n_heads=n_heads, start=state.position,
                                form=form, core=core, output=output, gamma=gamma, q=q, k=k,
                                state=state, final=final)


def msr_backward(dy: np.ndarray, cache: MSRCache, dstate: RetentionStateGrad | None = None):
    """Backward of [`msr_forward`][minirnn.msr.msr_forward] for any form.

    In reverse order: the output part ([`msr_output_backward`][minirnn.msr.msr_output_backward]:
    ``Wo``, gate, group norm (M.4)); the retention core of the form used, (R.10), (R.11) or
    (R.12); with learned decays the gradient of ``decay_logit`` (M.6) through (GR.8); the
    rotation and the projections ([`msr_project_backward`][minirnn.msr.msr_project_backward]).

    Parameters
    ----------
    dy : ndarray, shape (B, T, D)
    cache : MSRCache
    dstate : RetentionStateGrad, optional
        Gradient with respect to the returned state (when a later call used it); its ``s``, the
        count's gradient, matters only for learned decays.

    Returns
    -------
    dx : ndarray, shape (B, T, D)
    grads : dict
        Same keys as ``params``.
    dstate_prev : RetentionStateGrad
        Gradient with respect to the incoming state (with ``s`` when the decays are learned).
    """
    dy, dstate = check.msr_backward(dy, cache, dstate)
    c = cache
    do, dx, grads = msr_output_backward(dy, c.output)                # (M.3)-(M.5)
    _, retention_backward = retention_forms()[c.form]
    dq, dk, dv, dstate_prev = retention_backward(do, c.core, dstate)   # (R.10)-(R.12)
    if "decay_logit" in c.params:                                    # learned decays (M.6)
        dgamma, ds_prev = retention_decay_gradient(
            c.q, dq, c.k, dk, c.gamma, c.state, None if dstate is None else c.final, dstate)
        grads["decay_logit"] = (dgamma * c.gamma * (1.0 - c.gamma)).astype(dy.dtype)
        dstate_prev = dstate_prev._replace(s=ds_prev)
    dx_in, layer_grads = msr_project_backward(dq, dk, dv, c.x, c.params, c.start)   # (M.2)
    grads.update(layer_grads)
    return dx + dx_in, {key: grads[key] for key in c.params}, dstate_prev


def msr_step(x: np.ndarray, params: dict[str, np.ndarray], n_heads: int,
             state: RetentionState | None = None, eps: float = 1e-5):
    """Decode one token with the recurrent state: O(1) time and memory per token.

    Only the work of the new token at position ``n = state.position``: its projections, the
    rotation at ``n``, one step of the recurrence (R.7) for every head, the group norm and the
    gate. Equal to the matching row of [`msr_forward`][minirnn.msr.msr_forward] on the whole
    sequence (any form).

    Parameters
    ----------
    x : ndarray, shape (B, D)
        The new token.
    params : dict
    n_heads : int
    state : RetentionState, optional
        State after the earlier tokens (from [`msr_forward`][minirnn.msr.msr_forward] or an earlier
        step).
    eps : float, optional

    Returns
    -------
    y : ndarray, shape (B, D)
    state : RetentionState
    """
    x, params, state, eps = check.msr_step(x, params, n_heads, state, eps)
    B, D = x.shape
    d = D // n_heads
    if state is None:
        state = RetentionState.zeros(B, n_heads, d, params["gn_w"].shape[1], x.dtype)
    n = state.position
    gamma = msr_gammas(n_heads, params)                              # (M.1) or (M.6)
    q, k, v = (a[:, :, 0] for a in msr_project(x[:, None], params, n_heads, n))   # (M.2) at n
    q = q / np.sqrt(d).astype(q.dtype)                               # q' = q / sqrt(d)  (R.5)
    gamma_S = gamma.astype(state.S.dtype)                            # gamma in the dtype of S
    S = gamma_S[:, None, None] * state.S + np.einsum("bhd,bhe->bhde", k, v)   # (R.7), one step
    z = gamma_S[:, None] * state.z + k
    s = gamma * state.s + 1.0
    kappa = (1.0 / np.sqrt(s)).astype(q.dtype)                       # (h,)
    Omega = kappa[:, None] * (q[..., None, :] @ S)[..., 0, :]        # q'_n S_n, (B, h, dv)
    r = kappa * (q * z).sum(axis=-1)                                 # q'_n . z_n
    o = Omega / np.maximum(np.abs(r), 1.0)[..., None]                # c_n (R.5)
    out, _ = msr_output(o[:, :, None], x[:, None], params, eps)      # (M.3)-(M.5)
    return out[:, 0], RetentionState(S=S, z=z, s=s, position=n + 1)
