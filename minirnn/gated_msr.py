"""Multi-scale gated retention: the MSR layer whose decays are gates computed from the tokens.

The layer of [`minirnn.msr`][minirnn.msr] with one change: instead of a fixed decay per head,
every token chooses how much of each head's state to keep. Equations (numbered as on
``derivations/gated-retention.md``)::

    a = X Wa + ba                 (B, T, h): one gate pre-activation per token and head   (GR.9)
    g = log sigmoid(a) / tau      the log-gates, <= 0;  alpha = sigmoid(a)^(1/tau)        (GR.9)
    Q, K, V = rot(X Wq), rot(X Wk), X Wv                                                 (M.2)
    heads = gated retention(Q, K, V, g)                                          (GR.2)-(GR.5)
    out = (swish(X Wg) * GroupNorm(heads)) Wo                                     (M.3)-(M.5)
    backward of the gate: da = dg (1 - sigmoid(a)) / tau                                 (GR.10)

``log sigmoid(a) = -softplus(-a)``, so the gate has the shape of Mamba-2's log-gate
``Delta A = -softplus(.) |A|`` with ``A = -1/tau`` fixed (Mamba-2 learns ``A`` per head and also
scales what is written by ``Delta``; fla's GLA uses ``tau = 16`` with a gate per key channel).
``Wa`` starts at zero and ``ba`` where every head's gate equals the paper's fixed decay (M.1),
so an untrained layer *is* RetNet's MSR (same outputs); ``Wa`` still learns, since its gradient
``X^T da`` is not zero.

Shapes: ``x`` (B, T, D); per head key width ``d = D / h`` (even) and value width ``dv``.
Parameters: those of MSR (``Wq``, ``Wk``, ``Wv``, ``Wg``, ``Wo``, ``gn_w``, ``gn_b``) and the gate
``Wa`` (D, h), ``ba`` (h,).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import gated_msr as check
from .gated import gated_retention_forms
from .layers import weight_gradient
from .msr import (
    MSROutputCache,
    init_msr_params,
    msr_gammas,
    msr_output,
    msr_output_backward,
    msr_project,
    msr_project_backward,
)
from .states import GatedState, GatedStateGrad

__all__ = [
    "GatedMSRCache",
    "gated_msr_backward",
    "gated_msr_forward",
    "gated_msr_gates",
    "gated_msr_gates_backward",
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
    a: np.ndarray          # (B, T, h) gate pre-activations
    log_decay: np.ndarray  # (B, h, T) the log-gates (GR.9)
    tau: float
    final: GatedState      # the returned state


def init_gated_msr_params(D: int, n_heads: int, dv: int, seed: int = 0, dtype=np.float64,
                          tau: float = 1.0) -> dict[str, np.ndarray]:
    """Initial parameters of a multi-scale gated retention layer.

    Those of [`init_msr_params`][minirnn.msr.init_msr_params], plus the gate: ``Wa`` (D, h)
    zero, so that every gate starts at its bias, and ``ba`` (h,) chosen so that
    ``sigmoid(ba)^(1/tau) = 1 - 2^(-5-i)``, the paper's decay of head ``i`` (M.1): the untrained
    layer equals [`msr_forward`][minirnn.msr.msr_forward] with the same parameters. ``Wa``
    learns all the same (its gradient ``X^T da`` is not zero).

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
    target = msr_gammas(n_heads) ** tau                              # sigmoid(ba) = gamma^tau
    params["Wa"] = np.zeros((D, n_heads), dtype=dtype)               # every gate at its bias
    params["ba"] = np.log(target / (1.0 - target)).astype(dtype)     # logit
    return params


def gated_msr_gates(x: np.ndarray, params: dict[str, np.ndarray], tau: float = 1.0):
    """The log-gates of every token and head, eq. (GR.9): ``g = log sigmoid(X Wa + ba) / tau``.

    ``log sigmoid(a)`` is computed as ``min(a, 0) - log(1 + exp(-|a|))``, finite for every
    ``a`` (the direct ``log(1 / (1 + exp(-a)))`` overflows for ``a < -710``).

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
    a : ndarray, shape (B, T, h)
        The pre-activations, for the backward.
    """
    x, params, tau = check.gated_msr_gates(x, params, tau)
    a = x @ params["Wa"] + params["ba"]                              # (B, T, h)    (GR.9)
    log_sigmoid = np.minimum(a, 0.0) - np.log1p(np.exp(-np.abs(a)))
    return np.swapaxes(log_sigmoid / tau, 1, 2), a


def gated_msr_gates_backward(dlog_decay: np.ndarray, x: np.ndarray, a: np.ndarray,
                             params: dict[str, np.ndarray], tau: float = 1.0):
    """Backward of [`gated_msr_gates`][minirnn.gated_msr.gated_msr_gates], eq. (GR.10):
    ``d log sigmoid(a) / da = 1 - sigmoid(a)``, so ``da = dg (1 - sigmoid(a)) / tau``, then
    ``dWa = X^T da``, ``dba = sum da`` and ``dx = da Wa^T``.

    Parameters
    ----------
    dlog_decay : ndarray, shape (B, h, T)
    x : ndarray, shape (B, T, D)
    a : ndarray, shape (B, T, h)
        The pre-activations the forward returned.
    params : dict
        ``Wa`` (D, h) (other keys are ignored).
    tau : float, optional

    Returns
    -------
    dx : ndarray, shape (B, T, D)
    grads : dict
        ``Wa``, ``ba``.
    """
    dlog_decay, x, a, params, tau = check.gated_msr_gates_backward(dlog_decay, x, a, params, tau)
    sig = 0.5 + 0.5 * np.tanh(0.5 * a)                               # sigmoid(a)
    da = np.swapaxes(dlog_decay, 1, 2) * (1.0 - sig) / tau           # (GR.10), (B, T, h)
    return da @ params["Wa"].T, {"Wa": weight_gradient(x, da),
                                 "ba": da.sum(axis=(0, 1))}


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
        Continue a sequence (any form); ``None`` starts a new one.
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
    x, params, state = check.gated_msr_forward(x, params, n_heads, form, chunk_size, state,
                                               eps, tau)
    B, _, D = x.shape
    if state is None:
        state = GatedState.zeros(B, n_heads, D // n_heads, params["gn_w"].shape[1],
                                 x.dtype)                           # a new sequence
    log_decay, a = gated_msr_gates(x, params, tau)                   # (GR.9)
    q, k, v = msr_project(x, params, n_heads, state.position)       # (M.2)
    retention, _ = gated_retention_forms(chunk_size)[form]
    o, final, core = retention(q, k, v, log_decay, state=state)      # (GR.2)-(GR.5)
    out, output = msr_output(o, x, params, eps)                      # (M.3)-(M.5)
    return out, final, GatedMSRCache(x=x, params=params, n_heads=n_heads, start=state.position,
                                     form=form, core=core, output=output, a=a,
                                     log_decay=log_decay, tau=tau, final=final)


def gated_msr_backward(dy: np.ndarray, cache: GatedMSRCache,
                       dstate: GatedStateGrad | None = None):
    """Backward of [`gated_msr_forward`][minirnn.gated_msr.gated_msr_forward] for any form.

    In reverse order: the output part (M.3)-(M.5); the gated retention core of the form used
    (GR.6), which also returns the gates' gradient (GR.7); the gate (GR.10); the rotation and
    projections (M.2).

    Parameters
    ----------
    dy : ndarray, shape (B, T, D)
    cache : GatedMSRCache
    dstate : GatedStateGrad, optional
        Gradient with respect to the returned state (when a later call used it).

    Returns
    -------
    dx : ndarray, shape (B, T, D)
    grads : dict
        Same keys as ``params``.
    dstate_prev : GatedStateGrad
        Gradient with respect to the incoming state.
    """
    dy, dstate = check.gated_msr_backward(dy, cache, dstate)
    c, p = cache, cache.params
    do, dx, grads = msr_output_backward(dy, c.output)                # (M.3)-(M.5)
    _, retention_backward = gated_retention_forms()[c.form]
    dq, dk, dv, dlog_decay, dstate_prev = retention_backward(do, c.core, dstate)   # (GR.6)
    dx_gates, gate_grads = gated_msr_gates_backward(dlog_decay, c.x, c.a, p, c.tau)   # (GR.10)
    dx = dx + dx_gates
    grads.update(gate_grads)
    dx_in, layer_grads = msr_project_backward(dq, dk, dv, c.x, p, c.start)     # (M.2)
    grads.update(layer_grads)
    return dx + dx_in, {key: grads[key] for key in p}, dstate_prev


def gated_msr_step(x: np.ndarray, params: dict[str, np.ndarray], n_heads: int,
                   state: GatedState | None = None, eps: float = 1e-5, tau: float = 1.0):
    """Decode one token with the recurrent state: O(1) time and memory per token.

    The new token's gate (GR.9) and projections at position ``n = state.position`` (M.2), one
    step of the recurrence (GR.2) for every head, written out for the one token (as in
    [`msr_step`][minirnn.msr.msr_step], with the token's own ``alpha_n`` in place of
    ``gamma``), then the output part (M.3)-(M.5). Equal to the matching row of
    [`gated_msr_forward`][minirnn.gated_msr.gated_msr_forward].

    Parameters
    ----------
    x : ndarray, shape (B, D)
    params : dict
    n_heads : int
    state : GatedState, optional
        State after the earlier tokens; ``None`` starts a new sequence.
    eps : float, optional
    tau : float, optional

    Returns
    -------
    y : ndarray, shape (B, D)
    state : GatedState
    """
    x, params, state = check.gated_msr_step(x, params, n_heads, state, eps, tau)
    B, D = x.shape
    if state is None:
        state = GatedState.zeros(B, n_heads, D // n_heads, params["gn_w"].shape[1], x.dtype)
    xt = x[:, None]                                                  # a sequence of one token
    log_decay, _ = gated_msr_gates(xt, params, tau)                  # (GR.9), (B, h, 1)
    alpha = np.exp(log_decay[..., 0].astype(np.float64))             # alpha_n, (B, h)
    q, k, v = (a[:, :, 0] for a in msr_project(xt, params, n_heads, state.position))  # (M.2)
    q = q * float(1.0 / np.sqrt(q.shape[-1]))                        # q' = q / sqrt(d)  (R.5)
    alpha_S = alpha.astype(state.S.dtype)                            # alpha in the dtype of S
    S = alpha_S[..., None, None] * state.S + np.einsum("bhd,bhe->bhde", k, v)   # (GR.2)
    z = alpha_S[..., None] * state.z + k
    s = alpha * state.s + 1.0
    kappa = (1.0 / np.sqrt(s)).astype(q.dtype)                       # (B, h)
    Omega = kappa[..., None] * (q[..., None, :] @ S)[..., 0, :]      # q'_n S_n, (B, h, dv)
    r = kappa * (q * z).sum(axis=-1)                                 # q'_n . z_n
    o = Omega / np.maximum(np.abs(r), 1.0)[..., None]                # c_n (R.5)
    out, _ = msr_output(o[:, :, None], xt, params, eps)              # (M.3)-(M.5)
    return out[:, 0], GatedState(S=S, z=z, s=s, position=state.position + 1)
