"""Multi-scale gated retention: the MSR layer whose decays are gates computed from the tokens.

The layer of [`minirnn.msr`][minirnn.msr] with one change: instead of a fixed decay per head,
every token chooses how much of each head's state to keep. Equations (numbered as on
``derivations/gated-retention.md``)::

    u = X Wa + ba                 (B, T, h): one gate pre-activation per token and head   (GR.9)
    g = log sigmoid(u) / tau      the log-gates, <= 0;  alpha = sigmoid(u)^(1/tau)        (GR.9)
    Q, K, V = rot(X Wq), rot(X Wk), X Wv                                                 (M.2)
    heads = gated retention(Q, K, V, g)                                          (GR.2)-(GR.5)
    out = (swish(X Wg) * GroupNorm(heads)) Wo                                     (M.3)-(M.5)
    backward of the gate: du = dg (1 - sigmoid(u)) / tau                                 (GR.10)

``log sigmoid(u) = -softplus(-u)``, so this is Mamba-2's gate ``-softplus(.) * A`` with ``A``
fixed at ``1/tau`` (fla's GLA uses ``tau = 16``). ``ba`` starts where every head's gate equals
the paper's fixed decay (M.1), so an untrained layer behaves like RetNet's MSR.

Shapes: ``x`` (B, T, D); per head key width ``d = D / h`` (even) and value width ``dv``.
Parameters: those of MSR (``Wq``, ``Wk``, ``Wv``, ``Wg``, ``Wo``, ``gn_w``, ``gn_b``) and the gate
``Wa`` (D, h), ``ba`` (h,).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _checks as check
from .gated import (
    GatedState,
    gated_retention_chunkwise,
    gated_retention_chunkwise_backward,
    gated_retention_final_state,
    gated_retention_parallel,
    gated_retention_parallel_backward,
    gated_retention_recurrent,
    gated_retention_recurrent_backward,
)
from .msr import (
    MSROutputCache,
    init_msr_params,
    msr_gammas,
    msr_output,
    msr_output_backward,
    msr_project,
    msr_project_backward,
)

__all__ = [
    "GatedMSRCache",
    "gated_msr_backward",
    "gated_msr_forward",
    "gated_msr_gates",
    "gated_msr_step",
    "init_gated_msr_params",
]


class GatedMSRCache(NamedTuple):
    """What [`gated_msr_backward`][minirnn.gated_msr.gated_msr_backward] needs."""

    x: np.ndarray          # (B, T, D)
    params: dict
    n_heads: int
    start: int             # absolute position of x[:, 0]
    form: str
    core: tuple            # cache of the gated retention core of that form
    output: MSROutputCache
    u: np.ndarray          # (B, T, h) gate pre-activations
    tau: float


def init_gated_msr_params(D: int, n_heads: int, dv: int, seed: int = 0, dtype=np.float64,
                          tau: float = 1.0) -> dict[str, np.ndarray]:
    """Initial parameters of a multi-scale gated retention layer.

    Those of [`init_msr_params`][minirnn.msr.init_msr_params], plus the gate: ``Wa`` (D, h)
    normal with standard deviation ``0.1 / sqrt(D)`` (small, so the gates start close to
    their biases) and ``ba`` (h,) chosen so that ``sigmoid(ba)^(1/tau) = 1 - 2^(-5-i)``, the
    paper's decay of head ``i`` (M.1).

    Parameters
    ----------
    D : int
    n_heads : int
    dv : int
    seed : int, optional
    dtype : numpy dtype, optional
    tau : float, optional
        The gate's temperature (GR.9), > 0.

    Returns
    -------
    dict
        ``Wq``, ``Wk``, ``Wv``, ``Wg``, ``Wo``, ``gn_w``, ``gn_b``, ``Wa`` (D, h), ``ba`` (h,).
    """
    D, dv, tau = check.init_gated_msr_params(D, n_heads, dv, tau)
    params = init_msr_params(D, n_heads, dv, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed + 7919)
    target = msr_gammas(n_heads) ** tau                              # sigmoid(ba) = gamma^tau
    params["Wa"] = (0.1 / np.sqrt(D) * rng.standard_normal((D, n_heads))).astype(dtype)
    params["ba"] = np.log(target / (1.0 - target)).astype(dtype)     # logit
    return params


def gated_msr_gates(x: np.ndarray, params: dict[str, np.ndarray], tau: float = 1.0):
    """The log-gates of every token and head, eq. (GR.9): ``g = log sigmoid(X Wa + ba) / tau``.

    ``log sigmoid(u)`` is computed as ``min(u, 0) - log(1 + exp(-|u|))``, finite for every
    ``u`` (the direct ``log(1 / (1 + exp(-u)))`` overflows for ``u < -710``).

    Parameters
    ----------
    x : ndarray, shape (B, T, D)
    params : dict
        ``Wa`` (D, h) and ``ba`` (h,) (other keys are ignored).
    tau : float, optional

    Returns
    -------
    log_decay : ndarray, shape (B, h, T)
        Every entry ``<= 0``.
    u : ndarray, shape (B, T, h)
        The pre-activations, for the backward.
    """
    x, p, tau = check.gated_msr_gates(x, params, tau)
    u = x @ p["Wa"] + p["ba"]                                        # (B, T, h)    (GR.9)
    log_sigmoid = np.minimum(u, 0.0) - np.log1p(np.exp(-np.abs(u)))
    return np.swapaxes(log_sigmoid / tau, 1, 2), u


def gated_msr_forward(x: np.ndarray, params: dict[str, np.ndarray], n_heads: int,
                      form: str = "parallel", chunk_size: int | None = None,
                      state: GatedState | None = None, eps: float = 1e-5, tau: float = 1.0):
    """Multi-scale gated retention layer in any of the three forms.

    Implements eqs. (GR.9), (M.2), (GR.2)-(GR.5) and (M.3)-(M.5): the gates from the tokens,
    the rotated projections (continuing from ``state.position``), gated retention with all
    normalisations, group norm, the swish gate and the output projection. Every form gives
    the same numbers.

    Parameters
    ----------
    x : ndarray, shape (B, T, D)
    params : dict
        From [`init_gated_msr_params`][minirnn.gated_msr.init_gated_msr_params].
    n_heads : int
    form : {"parallel", "recurrent", "chunkwise"}, optional
    chunk_size : int, optional
        Required for the chunkwise form.
    state : GatedState, optional
        Continue a sequence (recurrent and chunkwise forms).
    eps : float, optional
        Group-norm epsilon.
    tau : float, optional
        Gate temperature (GR.9).

    Returns
    -------
    y : ndarray, shape (B, T, D)
    state : GatedState
    cache : GatedMSRCache
    """
    x, p = check.gated_msr_forward(x, params, n_heads, form, chunk_size, state, eps, tau)
    start = 0 if state is None else state.position
    g, u = gated_msr_gates(x, p, tau)                                # (GR.9)
    q, k, v = msr_project(x, p, n_heads, start)                      # (M.2)
    if form == "parallel":
        o, core = gated_retention_parallel(q, k, v, g)               # (GR.3)
        new_state = gated_retention_final_state(k, v, g)
    elif form == "recurrent":
        o, new_state, core = gated_retention_recurrent(q, k, v, g, state)              # (GR.2)
    else:
        o, new_state, core = gated_retention_chunkwise(q, k, v, g, chunk_size, state)  # (GR.5)
    out, output = msr_output(o, x, p, eps)                           # (M.3)-(M.5)
    return out, new_state, GatedMSRCache(x, p, n_heads, start, form, core, output, u, tau)


def gated_msr_backward(dy: np.ndarray, cache: GatedMSRCache):
    """Backward of [`gated_msr_forward`][minirnn.gated_msr.gated_msr_forward] for any form.

    In reverse order: the output part (M.3)-(M.5); the gated retention core of the form used
    (GR.6), which also returns the gates' gradient (GR.7); the gate (GR.10); the rotation and
    projections (M.2).

    Parameters
    ----------
    dy : ndarray, shape (B, T, D)
    cache : GatedMSRCache

    Returns
    -------
    dx : ndarray, shape (B, T, D)
    grads : dict
        Same keys as ``params``.
    """
    dy = check.gated_msr_backward(dy, cache)
    p = cache.params
    do, dx, grads = msr_output_backward(dy, cache.output)            # (M.3)-(M.5)
    if cache.form == "parallel":
        dq, dk, dv, dg = gated_retention_parallel_backward(do, cache.core)
    elif cache.form == "recurrent":
        dq, dk, dv, dg, _ = gated_retention_recurrent_backward(do, cache.core)
    else:
        dq, dk, dv, dg, _ = gated_retention_chunkwise_backward(do, cache.core)
    sig = 0.5 + 0.5 * np.tanh(0.5 * cache.u)                         # sigmoid(u)
    du = np.swapaxes(dg, 1, 2) * (1.0 - sig) / cache.tau             # (GR.10), (B, T, h)
    grads["Wa"] = np.einsum("btd,bth->dh", cache.x, du, optimize=True)
    grads["ba"] = du.sum(axis=(0, 1))
    dx = dx + du @ p["Wa"].T
    dx_in, g = msr_project_backward(dq, dk, dv, cache.x, p, cache.start)   # (M.2)
    grads.update(g)
    return dx + dx_in, {key: grads[key] for key in p}


def gated_msr_step(x: np.ndarray, params: dict[str, np.ndarray], n_heads: int,
                   state: GatedState | None = None, eps: float = 1e-5, tau: float = 1.0):
    """Decode one token with the recurrent state: O(1) time and memory per token.

    The new token's gate (GR.9) and projections at position ``n = state.position`` (M.2), one
    step of the recurrence (GR.2) for every head, then the output part (M.3)-(M.5). Equal to
    the matching row of [`gated_msr_forward`][minirnn.gated_msr.gated_msr_forward].

    Parameters
    ----------
    x : ndarray, shape (B, D)
    params : dict
    n_heads : int
    state : GatedState, optional
    eps : float, optional
    tau : float, optional

    Returns
    -------
    y : ndarray, shape (B, D)
    state : GatedState
    """
    x, p, state = check.gated_msr_step(x, params, n_heads, state, eps, tau)
    xt = x[:, None]                                                  # a sequence of one token
    g, _ = gated_msr_gates(xt, p, tau)                               # (GR.9)
    q, k, v = msr_project(xt, p, n_heads, state.position)            # (M.2) at n
    o, state, _ = gated_retention_recurrent(q, k, v, g, state)       # (GR.2), one step
    out, _ = msr_output(o, xt, p, eps)                               # (M.3)-(M.5)
    return out[:, 0], state
