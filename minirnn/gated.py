"""Gated retention: retention whose decay is a per-token gate, in three forms, forward and backward.

Retention's fixed decay ``gamma`` becomes a data-dependent gate ``alpha_t = exp(g_t)``, one per
token and head. This one change gives the core of fla's "simple GLA", YOCO's gated RetNet, the
mLSTM of xLSTM and Mamba-2's state-space duality (SSD). Equations are numbered as on
``derivations/gated-retention.md``::

    b_n = g_0 + g_1 + ... + g_n            (inclusive cumulative sum, every g_t <= 0)   (GR.1)
    Gamma^g[n, m] = exp(b_n - b_m) if n >= m else 0       (segment decay; built as
                exp(min(b_n - b_m, 0)) under the causal mask, never exp(b_n) exp(-b_m))  (GR.1)
    recurrent:  S_n = alpha_n S_{n-1} + k_n^T v_n,  z_n = alpha_n z_{n-1} + k_n,
                s_n = alpha_n s_{n-1} + 1,  kappa_n = 1 / sqrt(s_n),
                o_n = kappa_n q'_n S_n / c_n,  r_n = kappa_n q'_n . z_n                   (GR.2)
    parallel:   R = (Q' K^T) * Gamma^g * kappa,  r = rowsum(R),  O = (R V) / c           (GR.3)
    chunk factors: Gamma = Gamma^g inside the chunk, xi_j = e^(b_j), zeta_j = e^(b_{L-1} - b_j),
                   s_j = xi_j s_prev + rowsum(Gamma)_j  (b local to the chunk)           (GR.4)
    chunkwise:  O = kappa ((Q K^T * Gamma) V + xi * Q S_prev) / c,
                S_next = xi_{L-1} S_prev + (zeta * K)^T V                                (GR.5)
    backward:   (R.9)-(R.12) with gamma replaced by alpha_n                              (GR.6)
    decay gradient: db_n = q_n . dq_n - k_n . dk_n + ds_n (s_n - 1) - rho_n,
                    ds_n = -(q_n . dq_n) / (2 s_n),  dg_t = sum_{n >= t} db_n             (GR.7)
    retention's learnable decay (g_t = ln gamma for every t):
                    d gamma = (sum_t dg_t) / gamma                                        (GR.8)

With ``log_decay`` constant at ``ln(gamma)`` every function equals the retention function of
the same form (outputs and gradients). As in ``minirnn.retention``, every form takes and returns
the state, the parallel form continuing a state is one chunk, and the chunkwise form calls it
chunk after chunk; every backward returns ``(dq, dk, dv, dlog_decay, dstate_prev)``.

Shapes: ``q``, ``k`` (B, h, T, d); ``v`` (B, h, T, dv); ``log_decay`` (B, h, T), every entry
``<= 0``. The carried state ([`GatedState`][minirnn.states.GatedState]) holds ``S``
(B, h, d, dv), ``z`` (B, h, d), the count ``s`` (B, h) and the position.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import numpy as np

from ._checks import gated as check
from .retention import score_normaliser_backward
from .states import GatedState, GatedStateGrad, RetentionState, RetentionStateGrad

__all__ = [
    "GatedChunkDecays",
    "GatedChunkwiseCache",
    "GatedParallelCache",
    "GatedRecurrentCache",
    "gated_chunk_decays",
    "gated_decay_gradient",
    "gated_retention_chunkwise",
    "gated_retention_chunkwise_backward",
    "gated_retention_final_state",
    "gated_retention_forms",
    "gated_retention_parallel",
    "gated_retention_parallel_backward",
    "gated_retention_recurrent",
    "gated_retention_recurrent_backward",
    "retention_decay_gradient",
    "segment_decay",
]


class GatedParallelCache(NamedTuple):
    """What [`gated_retention_parallel_backward`][minirnn.gated.gated_retention_parallel_backward]
    needs."""

    q: np.ndarray          # (B, h, T, d) queries times scale: q'
    k: np.ndarray          # (B, h, T, d)
    v: np.ndarray          # (B, h, T, dv)
    log_decay: np.ndarray  # (B, h, T) the log-gates g_t
    Gamma: np.ndarray      # (B, h, T, T) the segment decay Gamma^g (GR.1)
    kappa: np.ndarray      # (B, h, T) row factors 1 / sqrt(s_n)
    xi: np.ndarray         # (B, h, T) e^(b_n): the carried state's decay at row n
    zeta: np.ndarray       # (B, h, T) e^(b_{T-1} - b_m): token m's decay by the returned state
    s: np.ndarray          # (B, h, T) float64 global count s_n of every row
    state: GatedState      # the incoming state
    R: np.ndarray          # (B, h, T, T) scores
    r: np.ndarray          # (B, h, T)
    c: np.ndarray          # (B, h, T)
    out: np.ndarray        # (B, h, T, dv)
    final: GatedState      # the returned state
    scale: float
    normalize: bool


class GatedRecurrentCache(NamedTuple):
    """What [`gated_retention_recurrent_backward`][minirnn.gated.gated_retention_recurrent_backward]
    needs."""

    q: np.ndarray          # (B, h, T, d) queries times scale: q'
    k: np.ndarray          # (B, h, T, d)
    v: np.ndarray          # (B, h, T, dv)
    log_decay: np.ndarray  # (B, h, T)
    S: np.ndarray          # (B, h, T, d, dv) state after every token
    z: np.ndarray          # (B, h, T, d)
    s: np.ndarray          # (B, h, T) float64
    kappa: np.ndarray      # (B, h, T)
    r: np.ndarray          # (B, h, T)
    c: np.ndarray          # (B, h, T)
    out: np.ndarray        # (B, h, T, dv)
    final: GatedState      # the returned state
    scale: float
    normalize: bool


class GatedChunkwiseCache(NamedTuple):
    """What [`gated_retention_chunkwise_backward`][minirnn.gated.gated_retention_chunkwise_backward]
    needs: the parallel form's cache of every chunk."""

    bounds: list           # [(start, stop), ...] of every chunk
    chunks: list           # the GatedParallelCache of every chunk


class GatedChunkDecays(NamedTuple):
    """The gate factors of one chunk, eq. (GR.4); see
    [`gated_chunk_decays`][minirnn.gated.gated_chunk_decays]."""

    Gamma: np.ndarray    # (B, h, L, L) segment decay inside the chunk (GR.1)
    xi: np.ndarray       # (B, h, L) e^(b_j): decay of the carried state at row j
                         #           (xi[..., -1] = e^(b_{L-1}): across the whole chunk)
    zeta: np.ndarray     # (B, h, L) e^(b_{L-1} - b_j): decay of token j by the chunk's end
    kappa: np.ndarray    # (B, h, L) row factors 1 / sqrt(s_n) (ones without normalisation)
    s: np.ndarray        # (B, h, L) float64 global count s_n of each row


# --- the segment decay and the chunk factors (float64, rounded once) ----------------------------

def segment_decay(log_decay: np.ndarray) -> np.ndarray:
    """The segment decay ``Gamma^g[n, m] = exp(b_n - b_m)`` for ``n >= m``, else 0.

    Implements eq. (GR.1) with ``b`` the inclusive cumulative sum of ``log_decay``:
    ``Gamma^g[n, m] = alpha_{m+1} ... alpha_n``, the product of the gates *after* token ``m`` up to
    and including token ``n`` (``Gamma^g[n, n] = 1``). Built as ``exp(min(b_n - b_m, 0))`` under
    the causal mask: every exponent is ``<= 0``, so nothing overflows however long the sequence
    or closed the gates. Writing it as ``exp(b_n) * exp(-b_m)`` would overflow: ``exp(-b_m)`` is
    ``inf`` once ``b_m < -709.8`` (float64) or ``-88.7`` (float32), and the product is ``inf``, or
    ``NaN`` where ``exp(b_n)`` underflows to 0 or a mask multiplies it by 0. The clamp at 0 also
    keeps a difference that rounding left slightly positive (Mamba-2's bug, state-spaces/mamba#713)
    from growing the decay above 1.

    Parameters
    ----------
    log_decay : ndarray, shape (..., T)
        Log-gates ``g_t <= 0``.

    Returns
    -------
    ndarray, float64, shape (..., T, T)
    """
    log_decay = check.segment_decay(log_decay)
    b = np.cumsum(log_decay, axis=-1, dtype=np.float64)              # b_n          (GR.1)
    diff = b[..., :, None] - b[..., None, :]                         # b_n - b_m
    return np.tril(np.exp(np.minimum(diff, 0.0)))                    # n >= m only


def gated_chunk_decays(log_decay: np.ndarray, s_prev: np.ndarray, normalize: bool = True,
                       dtype=None) -> GatedChunkDecays:
    """The gate factors of one chunk of ``L`` tokens after a state with count ``s_prev``.

    Implements eq. (GR.4), retention's (R.8) factors with ``gamma^(j+1) -> e^(b_j)`` and
    ``gamma^(L-1-j) -> e^(b_{L-1} - b_j)``, where ``b`` is the cumulative sum of the chunk's own
    log-gates. The row factors use the **global** count
    ``s_n = e^(b_j) s_prev + sum_{i<=j} Gamma^g[j, i]`` of row ``n = start + j``.

    Parameters
    ----------
    log_decay : ndarray, shape (B, h, L)
        The chunk's log-gates.
    s_prev : ndarray, shape (B, h)
        The count ``state.s`` before the chunk.
    normalize : bool, optional
        Without normalisation ``kappa`` is all ones.
    dtype : numpy dtype, optional
        Dtype of ``Gamma``, ``xi``, ``zeta`` and ``kappa`` (default: that of ``log_decay``);
        they are computed in float64 and rounded once. ``s`` stays float64.

    Returns
    -------
    GatedChunkDecays
    """
    log_decay, s_prev = check.gated_chunk_decays(log_decay, s_prev, normalize)
    dtype = log_decay.dtype if dtype is None else dtype
    b = np.cumsum(log_decay, axis=-1, dtype=np.float64)             # local b_j    (GR.4)
    Gamma = segment_decay(log_decay)                                 # (B, h, L, L)
    xi = np.exp(b)                                                   # e^(b_j)
    zeta = np.exp(np.minimum(b[..., -1:] - b, 0.0))                  # e^(b_{L-1} - b_j)
    s = xi * s_prev[..., None] + Gamma.sum(axis=-1)                  # global s_n
    kappa = 1.0 / np.sqrt(s) if normalize else np.ones_like(s)
    return GatedChunkDecays(Gamma=Gamma.astype(dtype), xi=xi.astype(dtype),
                            zeta=zeta.astype(dtype), kappa=kappa.astype(dtype), s=s)


# --- parallel form -------------------------------------------------------------------------------

def gated_retention_parallel(q: np.ndarray, k: np.ndarray, v: np.ndarray, log_decay: np.ndarray,
                             state: GatedState | None = None, normalize: bool = True):
    """Gated retention in parallel form: every output at once.

    With ``normalize=False``: ``O = (Q K^T * Gamma^g) V``, retention's (R.2) with the segment decay
    (GR.1) as the mask. With ``normalize=True`` (default) eq. (GR.3): queries scaled by
    ``1/sqrt(d)``, row ``n`` of ``Gamma^g`` divided by ``sqrt(s_n)`` with
    ``s_n = sum_m Gamma^g[n, m]``, each output row divided by ``c_n = max(|r_n|, 1)``.
    Continuing from a ``state`` adds its share ``xi_n kappa_n q'_n S_prev`` (GR.5): the call is
    then one chunk of the chunkwise form.

    Cost: O(T^2 (d + dv)) time and O(T^2) memory per head.

    Parameters
    ----------
    q, k : ndarray, shape (B, h, T, d)
    v : ndarray, shape (B, h, T, dv)
    log_decay : ndarray, shape (B, h, T)
        Log-gates ``g_t <= 0`` (``alpha_t = exp(g_t)``).
    state : GatedState, optional
        State after earlier tokens; ``None`` starts a new sequence.
    normalize : bool, optional

    Returns
    -------
    out : ndarray, shape (B, h, T, dv)
    state : GatedState
        State after the last token.
    cache : GatedParallelCache
    """
    q, k, v, log_decay, state = check.gated_retention_parallel(q, k, v, log_decay, state,
                                                               normalize)
    B, h, _, d = q.shape
    if state is None:
        state = GatedState.zeros(B, h, d, v.shape[-1], q.dtype)      # a new sequence
    scale = float(1.0 / np.sqrt(d)) if normalize else 1.0
    q = q * scale                                                    # q' = q / sqrt(d)  (R.5)
    f = gated_chunk_decays(log_decay, state.s, normalize, q.dtype)   # Gamma^g, kappa    (GR.4)
    R = (q @ np.swapaxes(k, -1, -2)) * (f.Gamma * f.kappa[..., None])    # (GR.3)
    Omega = R @ v
    r = R.sum(axis=-1)
    carried = (f.kappa * f.xi)[..., None]                            # kappa_n e^(b_n)   (GR.5)
    Omega = Omega + carried * (q @ state.S)                          # the carried state's share
    r = r + carried[..., 0] * np.einsum("bhnd,bhd->bhn", q, state.z)
    c = np.maximum(np.abs(r), 1.0) if normalize else np.ones_like(r)
    out = Omega / c[..., None]
    final = gated_retention_final_state(k, v, log_decay, state)
    return out, final, GatedParallelCache(
        q=q, k=k, v=v, log_decay=log_decay, Gamma=f.Gamma, kappa=f.kappa, xi=f.xi, zeta=f.zeta,
        s=f.s, state=state, R=R, r=r, c=c, out=out, final=final, scale=scale,
        normalize=bool(normalize))


def gated_retention_parallel_backward(dout: np.ndarray, cache: GatedParallelCache,
                                      dstate: GatedStateGrad | None = None):
    """Backward of [`gated_retention_parallel`][minirnn.gated.gated_retention_parallel].

    Eq. (GR.6): retention's parallel backward (R.10) with ``Gamma^g`` as the mask and the
    carried state's share as in (R.12), then the decay gradient (GR.7) from ``dq`` and ``dk``.

    Parameters
    ----------
    dout : ndarray, shape (B, h, T, dv)
    cache : GatedParallelCache
    dstate : GatedStateGrad, optional
        Gradient with respect to the returned state (when a later call used it).

    Returns
    -------
    dq, dk : ndarray, shape (B, h, T, d)
    dv : ndarray, shape (B, h, T, dv)
    dlog_decay : ndarray, shape (B, h, T)
    dstate_prev : GatedStateGrad
        Gradient with respect to the incoming state.
    """
    dout, dstate = check.gated_retention_parallel_backward(dout, cache, dstate)
    c = cache
    if c.normalize:
        dOmega, dr = score_normaliser_backward(dout, c.out, c.r, c.c)    # (R.9)
    else:
        dOmega, dr = dout, np.zeros_like(c.r)
    dv = np.swapaxes(c.R, -1, -2) @ dOmega
    dA = (dOmega @ np.swapaxes(c.v, -1, -2) + dr[..., None]) * (c.Gamma * c.kappa[..., None])
    dq = dA @ c.k                                                    # gradient of q'
    dk = np.swapaxes(dA, -1, -2) @ c.q
    dOmega_x = (c.kappa * c.xi)[..., None] * dOmega                  # the carried state's share
    dr_x = c.kappa * c.xi * dr
    dq = dq + dOmega_x @ np.swapaxes(c.state.S, -1, -2) + dr_x[..., None] * c.state.z[:, :, None]
    dS_prev = np.swapaxes(c.q, -1, -2) @ dOmega_x
    dz_prev = np.einsum("bhnd,bhn->bhd", c.q, dr_x)
    if dstate is not None:                                           # the returned state
        dk = dk + c.zeta[..., None] * (c.v @ np.swapaxes(dstate.S, -1, -2)
                                       + dstate.z[:, :, None])
        dv = dv + c.zeta[..., None] * (c.k @ dstate.S)
        xi_L = c.xi[..., -1]                                         # e^(b_{T-1})
        dS_prev = dS_prev + xi_L[..., None, None] * dstate.S
        dz_prev = dz_prev + xi_L[..., None] * dstate.z
    dlog_decay, ds_prev = gated_decay_gradient(c.q, dq, c.k, dk, c.log_decay, c.s, c.final,
                                               dstate, c.normalize)   # (GR.7)
    return dq * c.scale, dk, dv, dlog_decay, GatedStateGrad(S=dS_prev, z=dz_prev, s=ds_prev)


# --- recurrent form ------------------------------------------------------------------------------

def gated_retention_recurrent(q: np.ndarray, k: np.ndarray, v: np.ndarray, log_decay: np.ndarray,
                              state: GatedState | None = None, normalize: bool = True):
    """Gated retention in recurrent form: one token at a time with a constant-size state.

    Implements eq. (GR.2): ``S_n = alpha_n S_{n-1} + k_n^T v_n`` with ``alpha_n = exp(g_n)``,
    and with ``normalize=True`` the carried ``z`` and ``s`` that make the normalisers those of
    the parallel form. Passing the returned state to the next call continues the sequence.

    Parameters
    ----------
    q, k : ndarray, shape (B, h, T, d)
    v : ndarray, shape (B, h, T, dv)
    log_decay : ndarray, shape (B, h, T)
    state : GatedState, optional
        State after earlier tokens; ``None`` starts a new sequence.
    normalize : bool, optional

    Returns
    -------
    out : ndarray, shape (B, h, T, dv)
    state : GatedState
    cache : GatedRecurrentCache
    """
    q, k, v, log_decay, state = check.gated_retention_recurrent(q, k, v, log_decay, state,
                                                                normalize)
    B, h, T, d = q.shape
    if state is None:
        state = GatedState.zeros(B, h, d, v.shape[-1], q.dtype)      # a new sequence
    scale = float(1.0 / np.sqrt(d)) if normalize else 1.0
    q = q * scale                                                    # q' = q / sqrt(d)  (R.5)
    S, z, s = state.S, state.z, state.s
    alpha = np.exp(log_decay.astype(np.float64))                     # (B, h, T) float64
    alpha_S = alpha.astype(q.dtype)                                  # alpha in the dtype of S
    S_all = np.empty((B, h, T, d, v.shape[-1]), dtype=q.dtype)
    z_all = np.empty((B, h, T, d), dtype=q.dtype)
    s_all = np.empty((B, h, T))
    kappa = np.ones((B, h, T), dtype=q.dtype)
    r = np.empty((B, h, T), dtype=q.dtype)
    Omega = np.empty((B, h, T, v.shape[-1]), dtype=q.dtype)
    # --- exercise: gated_retention_recurrent ---
    for n in range(T):                                               # the recurrence (GR.2)
        S = alpha_S[:, :, n, None, None] * S + k[:, :, n, :, None] * v[:, :, n, None, :]
        z = alpha_S[:, :, n, None] * z + k[:, :, n]
        s = alpha[:, :, n] * s + 1.0
        if normalize:
            kappa[:, :, n] = 1.0 / np.sqrt(s)
        qn = q[:, :, n]
        Omega[:, :, n] = kappa[:, :, n, None] * np.einsum("bhd,bhde->bhe", qn, S)
        r[:, :, n] = kappa[:, :, n] * np.sum(qn * z, axis=-1)
        S_all[:, :, n], z_all[:, :, n], s_all[:, :, n] = S, z, s
    # --- end ---
    c = np.maximum(np.abs(r), 1.0) if normalize else np.ones_like(r)
    out = Omega / c[..., None]
    final = GatedState(S=S, z=z, s=s, position=state.position + T)
    return out, final, GatedRecurrentCache(
        q=q, k=k, v=v, log_decay=log_decay, S=S_all, z=z_all, s=s_all, kappa=kappa, r=r, c=c,
        out=out, final=final, scale=scale, normalize=bool(normalize))


def gated_retention_recurrent_backward(dout: np.ndarray, cache: GatedRecurrentCache,
                                       dstate: GatedStateGrad | None = None):
    """Backpropagation through time for
    [`gated_retention_recurrent`][minirnn.gated.gated_retention_recurrent].

    Eq. (GR.6): retention's (R.11) walking backwards, where the gradient reaching ``S_{n-1}`` is
    ``alpha_n`` (not ``gamma``) times what reaches ``S_n``; then the decay gradient (GR.7).

    Parameters
    ----------
    dout : ndarray, shape (B, h, T, dv)
    cache : GatedRecurrentCache
    dstate : GatedStateGrad, optional
        Gradient with respect to the returned state (when a later call used it).

    Returns
    -------
    dq, dk : ndarray, shape (B, h, T, d)
    dv : ndarray, shape (B, h, T, dv)
    dlog_decay : ndarray, shape (B, h, T)
    dstate_prev : GatedStateGrad
        Gradient with respect to the incoming state.
    """
    dout, dstate = check.gated_retention_recurrent_backward(dout, cache, dstate)
    if cache.normalize:
        dOmega, dr = score_normaliser_backward(dout, cache.out, cache.r, cache.c)   # (R.9)
    else:
        dOmega, dr = dout, np.zeros_like(cache.r)
    q, k, v, kappa = cache.q, cache.k, cache.v, cache.kappa
    alpha_S = np.exp(cache.log_decay.astype(np.float64)).astype(q.dtype)   # alpha_n
    dS, dz = (dstate.S, dstate.z) if dstate is not None else \
        (np.zeros_like(cache.final.S), np.zeros_like(cache.final.z))     # reaching S_T, z_T
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    for n in reversed(range(q.shape[2])):
        dOmega_n = kappa[:, :, n, None] * dOmega[:, :, n]            # (B, h, dv)
        dr_n = kappa[:, :, n] * dr[:, :, n]                          # (B, h)
        qn = q[:, :, n]
        dS = dS + qn[..., :, None] * dOmega_n[..., None, :]          # total gradient on S_n
        dz = dz + dr_n[..., None] * qn                               # total gradient on z_n
        dq[:, :, n] = np.einsum("bhe,bhde->bhd", dOmega_n, cache.S[:, :, n]) \
            + dr_n[..., None] * cache.z[:, :, n]
        dk[:, :, n] = np.einsum("bhde,bhe->bhd", dS, v[:, :, n]) + dz
        dv[:, :, n] = np.einsum("bhd,bhde->bhe", k[:, :, n], dS)
        dS = alpha_S[:, :, n, None, None] * dS                       # on to S_{n-1}
        dz = alpha_S[:, :, n, None] * dz
    dlog_decay, ds_prev = gated_decay_gradient(q, dq, k, dk, cache.log_decay, cache.s,
                                               cache.final, dstate, cache.normalize)   # (GR.7)
    return dq * cache.scale, dk, dv, dlog_decay, GatedStateGrad(S=dS, z=dz, s=ds_prev)


# --- chunkwise form ------------------------------------------------------------------------------

def gated_retention_final_state(k: np.ndarray, v: np.ndarray, log_decay: np.ndarray,
                                state: GatedState | None = None) -> GatedState:
    """The state after a whole sequence (or chunk) in one closed-form step.

    Implements the state update of eq. (GR.5) with the sequence as one chunk of ``L`` tokens:
    ``S = e^(b_{L-1}) S_0 + sum_m e^(b_{L-1} - b_m) k_m^T v_m``, the same for ``z`` (with
    ``k_m``) and for the count ``s`` (with 1). Equal to the final state of
    [`gated_retention_recurrent`][minirnn.gated.gated_retention_recurrent].

    Parameters
    ----------
    k : ndarray, shape (B, h, L, d)
    v : ndarray, shape (B, h, L, dv)
    log_decay : ndarray, shape (B, h, L)
    state : GatedState, optional
        State before the sequence; ``None`` starts a new one.

    Returns
    -------
    GatedState
    """
    k, v, log_decay, state = check.gated_retention_final_state(k, v, log_decay, state)
    B, h, L, d = k.shape
    if state is None:
        state = GatedState.zeros(B, h, d, v.shape[-1], k.dtype)      # a new sequence
    b = np.cumsum(log_decay, axis=-1, dtype=np.float64)              # (GR.1)
    zeta = np.exp(np.minimum(b[..., -1:] - b, 0.0))                  # e^(b_{L-1} - b_m)
    xi_L = np.exp(b[..., -1])                                        # e^(b_{L-1}), (B, h)
    kz = k * zeta[..., None].astype(k.dtype)
    S = xi_L[..., None, None].astype(k.dtype) * state.S + np.swapaxes(kz, -1, -2) @ v
    z = xi_L[..., None].astype(k.dtype) * state.z + kz.sum(axis=2)
    s = xi_L * state.s + zeta.sum(axis=-1)                           # (GR.5)
    return GatedState(S=S, z=z, s=s, position=state.position + L)


def gated_retention_chunkwise(q: np.ndarray, k: np.ndarray, v: np.ndarray, log_decay: np.ndarray,
                              chunk_size: int, state: GatedState | None = None,
                              normalize: bool = True):
    """Gated retention in chunkwise form: parallel inside each chunk, recurrent across chunks.

    Implements eq. (GR.5), in SSD's four steps: each chunk is the parallel form (GR.3)
    continuing the carried state, which computes (1) the quadratic form inside the chunk, (4)
    the state's contribution to the chunk's outputs, ``xi * Q S_prev``, and (2) the chunk's
    contribution to the state; (3) the loop below carries the state from chunk to chunk,
    decayed by ``e^(b_{L-1})``. Every row uses its global count ``s_n``, so the result equals
    the other forms exactly. Any ``chunk_size``: the last chunk is simply shorter.

    Cost: O(T C (d + dv) + T d dv) time for chunk size C.

    Parameters
    ----------
    q, k : ndarray, shape (B, h, T, d)
    v : ndarray, shape (B, h, T, dv)
    log_decay : ndarray, shape (B, h, T)
    chunk_size : int
        Tokens per chunk, at least 1.
    state : GatedState, optional
        State after earlier tokens; ``None`` starts a new sequence.
    normalize : bool, optional

    Returns
    -------
    out : ndarray, shape (B, h, T, dv)
    state : GatedState
    cache : GatedChunkwiseCache
    """
    q, k, v, log_decay, state = check.gated_retention_chunkwise(q, k, v, log_decay, chunk_size,
                                                                state, normalize)
    outs, bounds, chunks = [], [], []
    for start in range(0, q.shape[2], chunk_size):                   # step 3: the scan
        stop = min(start + chunk_size, q.shape[2])
        out, state, chunk = gated_retention_parallel(
            q[:, :, start:stop], k[:, :, start:stop], v[:, :, start:stop],
            log_decay[:, :, start:stop], state, normalize)            # steps 1, 2 and 4
        outs.append(out)
        bounds.append((start, stop))
        chunks.append(chunk)
    return np.concatenate(outs, axis=2), state, GatedChunkwiseCache(bounds=bounds, chunks=chunks)


def gated_retention_chunkwise_backward(dout: np.ndarray, cache: GatedChunkwiseCache,
                                       dstate: GatedStateGrad | None = None):
    """Backward of [`gated_retention_chunkwise`][minirnn.gated.gated_retention_chunkwise], chunk
    by chunk in reverse.

    Eq. (GR.6): the parallel backward of each chunk, last chunk first, each handing the gradient
    of the state it received (including its count) to the chunk before.

    Parameters
    ----------
    dout : ndarray, shape (B, h, T, dv)
    cache : GatedChunkwiseCache
    dstate : GatedStateGrad, optional
        Gradient with respect to the returned state.

    Returns
    -------
    dq, dk : ndarray, shape (B, h, T, d)
    dv : ndarray, shape (B, h, T, dv)
    dlog_decay : ndarray, shape (B, h, T)
    dstate_prev : GatedStateGrad
    """
    dout, dstate = check.gated_retention_chunkwise_backward(dout, cache, dstate)
    parts = []
    for (start, stop), chunk in reversed(list(zip(cache.bounds, cache.chunks))):
        *grads, dstate = gated_retention_parallel_backward(dout[:, :, start:stop], chunk, dstate)
        parts.append(grads)
    dq, dk, dv, dlog_decay = (np.concatenate(pieces[::-1], axis=2) for pieces in zip(*parts))
    return dq, dk, dv, dlog_decay, dstate


def gated_retention_forms(chunk_size: int | None = None) -> dict:
    """The three forms as a table ``{name: (forward, backward)}``, as
    [`retention_forms`][minirnn.retention.retention_forms]: every
    ``forward(q, k, v, log_decay, state=...)`` returns ``(out, state, cache)``, every
    ``backward(dout, cache, dstate)`` returns ``(dq, dk, dv, dlog_decay, dstate_prev)``."""
    return {"parallel": (gated_retention_parallel, gated_retention_parallel_backward),
            "recurrent": (gated_retention_recurrent, gated_retention_recurrent_backward),
            "chunkwise": (partial(gated_retention_chunkwise, chunk_size=chunk_size),
                          gated_retention_chunkwise_backward)}


# --- the decay gradient, the same for every form -----------------------------------------------

def gated_decay_gradient(q: np.ndarray, dq: np.ndarray, k: np.ndarray, dk: np.ndarray,
                         log_decay: np.ndarray, s: np.ndarray, final: GatedState | None = None,
                         dfinal: GatedStateGrad | None = None, normalize: bool = True):
    """The gradient of the log-gates from the gradients of the queries and keys.

    Implements eq. (GR.7). Every score carries the factor ``e^(b_n - b_m)``, so moving ``b_n``
    scales row ``n`` of the scores up and column ``n`` down: ``dL/db_n = q_n . dq_n -
    k_n . dk_n``. A returned state is one more row (``<dS, S> + <dz, z>`` at the last token).
    With normalisation the count ``s_n`` inside ``kappa_n`` also depends on the gates:
    ``ds_n = -(q_n . dq_n) / (2 s_n)`` (plus ``dfinal.s`` at the last token), which adds
    ``ds_n (s_n - 1) - rho_n`` with ``rho_n = alpha_{n+1} (ds_{n+1} + rho_{n+1})`` (one reverse
    scan). Finally ``g_t`` moves every ``b_n`` with ``n >= t``: ``dg = reverse cumsum(db)``.
    Nothing here depends on the form: ``q . dq`` and ``k . dk`` are the same in all three.

    Parameters
    ----------
    q, dq : ndarray, shape (B, h, T, d)
        Queries as they multiply the scores (with or without the ``1/sqrt(d)`` scale; ``q . dq``
        is the same) and their gradient.
    k, dk : ndarray, shape (B, h, T, d)
    log_decay : ndarray, shape (B, h, T)
    s : ndarray, shape (B, h, T)
        The global count ``s_n`` of every row (including the carried count).
    final : GatedState, optional
        The returned state.
    dfinal : GatedStateGrad, optional
        Its gradient, when a later call used it (``None``: it adds nothing).
    normalize : bool, optional
        Whether the forward divided by ``sqrt(s_n)``.

    Returns
    -------
    dlog_decay : ndarray, shape (B, h, T)
    ds_prev : ndarray, shape (B, h)
        Gradient with respect to the incoming count ``state.s`` (in the dtype of ``q``).
    """
    q, dq, k, dk, log_decay, s, final, dfinal = check.gated_decay_gradient(
        q, dq, k, dk, log_decay, s, final, dfinal, normalize)
    # --- exercise: gated_decay_gradient ---
    qdq = np.sum(q * dq, axis=-1, dtype=np.float64)                  # row n of dR * R
    db = qdq - np.sum(k * dk, axis=-1, dtype=np.float64)             # minus column n  (GR.7)
    ds = -qdq / (2.0 * s) if normalize else np.zeros_like(s)         # kappa_n = s_n^(-1/2)
    if dfinal is not None:                                           # the returned state:
        db[..., -1] += (np.sum(dfinal.S * final.S, axis=(-2, -1))   # one more row
                        + np.sum(dfinal.z * final.z, axis=-1))
        ds[..., -1] += dfinal.s
    alpha = np.exp(log_decay.astype(np.float64))
    rho = np.zeros_like(s)                                           # sum_{j>n} ds_j Gamma^g[j, n]
    for n in reversed(range(s.shape[-1] - 1)):
        rho[..., n] = alpha[..., n + 1] * (ds[..., n + 1] + rho[..., n + 1])
    db += ds * (s - 1.0) - rho                                       # the count's share
    dlog_decay = np.cumsum(db[..., ::-1], axis=-1)[..., ::-1]        # g_t moves b_n, n >= t
    ds_prev = alpha[..., 0] * (ds[..., 0] + rho[..., 0])
    # --- end ---
    return dlog_decay.astype(q.dtype), ds_prev.astype(q.dtype)


def retention_decay_gradient(q: np.ndarray, dq: np.ndarray, k: np.ndarray, dk: np.ndarray, gamma,
                             state: RetentionState | None = None,
                             final: RetentionState | None = None,
                             dfinal: RetentionStateGrad | None = None, normalize: bool = True):
    """The gradient of retention's per-head decays: what makes ``gamma`` learnable.

    Implements eq. (GR.8). Retention is gated retention with every log-gate equal to
    ``ln(gamma)``, so ``d ln(gamma)`` is the sum over all tokens (and sequences) of the gates'
    gradient (GR.7), and ``d gamma = d ln(gamma) / gamma``. It needs only what any form's
    backward returns: ``dq`` and ``dk`` are the same in all three.

    The count ``s`` that a state carries depends on ``gamma`` too. For a sequence split over
    calls, call this for the **later** piece first; it returns ``ds_prev``, the gradient of the
    incoming count, which goes into ``dfinal.s`` of the earlier piece (with the ``S`` and ``z``
    gradients its backward returned). The sum of the pieces' ``dgamma`` is then the gradient
    of one call on the whole sequence.

    Parameters
    ----------
    q, k : ndarray, shape (B, h, T, d)
        The queries and keys given to the retention function.
    dq, dk : ndarray, shape (B, h, T, d)
        Their gradients, from its backward.
    gamma : float or ndarray of shape (h,)
        Every decay in ``(0, 1]`` (``ln 0`` has no gradient; with ``gamma = sigmoid(theta)`` it
        never reaches 0).
    state : RetentionState, optional
        The incoming state (its count ``s``), when the call continued a sequence.
    final : RetentionState, optional
        The returned state, when a later call used it.
    dfinal : RetentionStateGrad, optional
        Its gradient, including ``s`` (the later piece's ``ds_prev``; zeros when ``None``).
    normalize : bool, optional
        As given to the retention function.

    Returns
    -------
    dgamma : ndarray, float64, shape (h,)
    ds_prev : ndarray, float64, shape (h,)
        Gradient with respect to ``state.s``.
    """
    q, dq, k, dk, gamma, state, final, dfinal = check.retention_decay_gradient(
        q, dq, k, dk, gamma, state, final, dfinal, normalize)
    B, h, T, _ = q.shape
    s_prev = np.zeros(h) if state is None else state.s               # the incoming count
    log_gamma = np.broadcast_to(np.log(gamma)[None, :, None], (B, h, T))   # g_t = ln gamma (GR.8)
    powers = gamma[:, None] ** np.arange(T + 1)                      # gamma^0 .. gamma^T
    s = powers[:, 1:] * s_prev[:, None] + np.cumsum(powers[:, :T], axis=1)   # s_n, (h, T)
    gated_final = gated_dfinal = None
    if dfinal is not None:                                           # the count is shared by
        ds_final = np.zeros(h) if dfinal.s is None else dfinal.s     # the B sequences
        gated_final = GatedState(S=final.S, z=final.z, s=np.broadcast_to(final.s, (B, h)),
                                 position=final.position)
        gated_dfinal = GatedStateGrad(S=dfinal.S, z=dfinal.z,
                                      s=np.broadcast_to(ds_final / B, (B, h)))
    dg, ds_prev = gated_decay_gradient(q, dq, k, dk, log_gamma, np.broadcast_to(s, (B, h, T)),
                                       gated_final, gated_dfinal, normalize)    # (GR.7)
    dlog_gamma = dg.sum(axis=(0, 2), dtype=np.float64)               # every token's gate
    return dlog_gamma / gamma, ds_prev.sum(axis=0, dtype=np.float64)
