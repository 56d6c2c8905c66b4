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
                S_next = e^(b_{L-1}) S_prev + (zeta * K)^T V                             (GR.5)
    backward:   (R.9)-(R.12) with gamma replaced by alpha_n                              (GR.6)
    decay gradient: db_n = q_n . dq_n - k_n . dk_n + ds_n (s_n - 1) - rho_n,
                    ds_n = -(q_n . dq_n) / (2 s_n),  dg_t = sum_{n >= t} db_n             (GR.7)
    retention's learnable decay (g_t = ln gamma for every t):
                    d gamma = (sum_t dg_t) / gamma                                        (GR.8)

With ``log_decay`` constant at ``ln(gamma)`` every function equals the retention function of
the same form (outputs and gradients).

Shapes: ``q``, ``k`` (B, h, T, d); ``v`` (B, h, T, dv); ``log_decay`` (B, h, T), every entry
``<= 0``. The carried state holds ``S`` (B, h, d, dv), ``z`` (B, h, d), the count ``s`` (B, h)
and the position.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _checks as check
from .retention import RetentionState, RetentionStateGrad, score_normaliser_backward

__all__ = [
    "GatedChunkDecays",
    "GatedChunkwiseCache",
    "GatedParallelCache",
    "GatedRecurrentCache",
    "GatedState",
    "GatedStateGrad",
    "gated_chunk_decays",
    "gated_decay_gradient",
    "gated_retention_chunkwise",
    "gated_retention_chunkwise_backward",
    "gated_retention_final_state",
    "gated_retention_parallel",
    "gated_retention_parallel_backward",
    "gated_retention_recurrent",
    "gated_retention_recurrent_backward",
    "retention_decay_gradient",
    "segment_decay",
]


class GatedState(NamedTuple):
    """What gated retention carries from one token (or chunk, or call) to the next."""

    S: np.ndarray   # (B, h, d, dv)  gated sum of k_m^T v_m                           (GR.2)
    z: np.ndarray   # (B, h, d)      gated sum of k_m, for the score normaliser
    s: np.ndarray   # (B, h) float64 gated count s_n = sum_m Gamma^g[n, m], for kappa_n
    position: int   # tokens seen so far


class GatedStateGrad(NamedTuple):
    """Gradient of the loss with respect to a [`GatedState`][minirnn.gated.GatedState]. The
    count ``s`` has one too: it depends on the gates, so a gradient flows through it."""

    S: np.ndarray   # (B, h, d, dv)
    z: np.ndarray   # (B, h, d)
    s: np.ndarray   # (B, h)


class GatedParallelCache(NamedTuple):
    q: np.ndarray          # (B, h, T, d) queries times scale
    k: np.ndarray          # (B, h, T, d)
    v: np.ndarray          # (B, h, T, dv)
    log_decay: np.ndarray  # (B, h, T) float64
    decay: np.ndarray      # (B, h, T, T) Gamma^g * kappa
    R: np.ndarray          # (B, h, T, T) scores
    r: np.ndarray          # (B, h, T)
    c: np.ndarray          # (B, h, T)
    s: np.ndarray          # (B, h, T) float64 count of every row
    out: np.ndarray        # (B, h, T, dv)
    scale: float
    normalize: bool


class GatedRecurrentCache(NamedTuple):
    q: np.ndarray          # (B, h, T, d) queries times scale
    k: np.ndarray
    v: np.ndarray
    log_decay: np.ndarray  # (B, h, T) float64
    S: np.ndarray          # (B, h, T, d, dv) state after every token
    z: np.ndarray          # (B, h, T, d)
    s: np.ndarray          # (B, h, T) float64
    kappa: np.ndarray      # (B, h, T)
    r: np.ndarray
    c: np.ndarray
    out: np.ndarray
    scale: float
    normalize: bool
    final: GatedState      # the returned state


class GatedChunkwiseCache(NamedTuple):
    q: np.ndarray          # (B, h, T, d) queries times scale
    k: np.ndarray
    v: np.ndarray
    log_decay: np.ndarray  # (B, h, T) float64
    bounds: list           # [(start, stop), ...] of every chunk
    states: list           # the GatedState before each chunk
    s: np.ndarray          # (B, h, T) float64
    r: np.ndarray
    c: np.ndarray
    out: np.ndarray
    scale: float
    normalize: bool
    final: GatedState


class GatedChunkDecays(NamedTuple):
    """The gate factors of one chunk, eq. (GR.4); see
    [`gated_chunk_decays`][minirnn.gated.gated_chunk_decays]."""

    Gamma: np.ndarray    # (B, h, L, L) segment decay inside the chunk (GR.1)
    xi: np.ndarray       # (B, h, L) e^(b_j): decay of the state before the chunk at row j
    zeta: np.ndarray     # (B, h, L) e^(b_{L-1} - b_j): decay of token j by the chunk's end
    decay_L: np.ndarray  # (B, h) e^(b_{L-1}): decay of the state across the whole chunk
    kappa: np.ndarray    # (B, h, L) row factors 1 / sqrt(s_n) (ones without normalisation)
    s: np.ndarray        # (B, h, L) float64 global count s_n of each row


# --- the segment decay and the chunk factors (float64, rounded once) ----------------------------

def segment_decay(log_decay: np.ndarray) -> np.ndarray:
    """The segment decay ``Gamma^g[n, m] = exp(b_n - b_m)`` for ``n >= m``, else 0.

    Implements eq. (GR.1) with ``b`` the inclusive cumulative sum of ``log_decay``:
    ``Gamma^g[n, m] = alpha_{m+1} ... alpha_n``, the product of the gates *after* token ``m`` up to
    and including token ``n`` (``Gamma^g[n, n] = 1``). Built as ``exp(min(b_n - b_m, 0))`` under
    the causal mask: every exponent is ``<= 0``, so nothing overflows however long the sequence
    or closed the gates. Writing it as ``exp(b_n) * exp(-b_m)`` would overflow to ``inf * 0``.

    Parameters
    ----------
    log_decay : ndarray, shape (..., T)
        Log-gates ``g_t <= 0``.

    Returns
    -------
    ndarray, float64, shape (..., T, T)
    """
    g = check.segment_decay(log_decay)
    b = np.cumsum(g, axis=-1)                                        # b_n          (GR.1)
    diff = b[..., :, None] - b[..., None, :]                         # b_n - b_m
    return np.tril(np.exp(np.minimum(diff, 0.0)))                    # n >= m only


def gated_chunk_decays(log_decay: np.ndarray, s_prev: np.ndarray, normalize: bool = True,
                       dtype=None) -> GatedChunkDecays:
    """The gate factors of one chunk of ``L`` tokens after a state with count ``s_prev``.

    Implements eq. (GR.4), retention's (R.4) factors with ``gamma^(j+1) -> e^(b_j)`` and
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
        Dtype of ``Gamma``, ``xi``, ``zeta``, ``decay_L`` and ``kappa`` (default: that of
        ``log_decay``); they are computed in float64 and rounded once. ``s`` stays float64.

    Returns
    -------
    GatedChunkDecays
    """
    g, s_prev, given = check.gated_chunk_decays(log_decay, s_prev, normalize)
    dtype = given if dtype is None else dtype
    b = np.cumsum(g, axis=-1)                                        # local b_j    (GR.4)
    Gamma = segment_decay(g)                                         # (B, h, L, L)
    xi = np.exp(b)                                                   # e^(b_j)
    zeta = np.exp(np.minimum(b[..., -1:] - b, 0.0))                  # e^(b_{L-1} - b_j)
    s = xi * s_prev[..., None] + Gamma.sum(axis=-1)                  # global s_n
    kappa = 1.0 / np.sqrt(s) if normalize else np.ones_like(s)
    return GatedChunkDecays(*(f.astype(dtype) for f in (Gamma, xi, zeta, xi[..., -1], kappa)),
                            s)


# --- parallel form -------------------------------------------------------------------------------

def gated_retention_parallel(q: np.ndarray, k: np.ndarray, v: np.ndarray, log_decay: np.ndarray,
                             normalize: bool = True):
    """Gated retention in parallel form: every output at once.

    With ``normalize=False``: ``O = (Q K^T * Gamma^g) V``, retention's (R.2) with the segment decay
    (GR.1) as the mask. With ``normalize=True`` (default) eq. (GR.3): queries scaled by
    ``1/sqrt(d)``, row ``n`` of ``Gamma^g`` divided by ``sqrt(s_n)`` with
    ``s_n = sum_m Gamma^g[n, m]``, each output row divided by ``c_n = max(|r_n|, 1)``.

    Cost: O(T^2 (d + dv)) time and O(T^2) memory per head.

    Parameters
    ----------
    q, k : ndarray, shape (B, h, T, d)
    v : ndarray, shape (B, h, T, dv)
    log_decay : ndarray, shape (B, h, T)
        Log-gates ``g_t <= 0`` (``alpha_t = exp(g_t)``).
    normalize : bool, optional

    Returns
    -------
    out : ndarray, shape (B, h, T, dv)
    cache : GatedParallelCache
    """
    q, k, v, g = check.gated_retention_parallel(q, k, v, log_decay, normalize)
    scale = float(1.0 / np.sqrt(q.shape[-1])) if normalize else 1.0
    q = q * scale                                                    # q' = q / sqrt(d)  (R.5)
    Dg = segment_decay(g)                                            # (B, h, T, T)      (GR.1)
    s = Dg.sum(axis=-1)                                              # s_n
    if normalize:
        Dg = Dg / np.sqrt(s)[..., None]                              # kappa_n Gamma^g[n, m]
    Dg = Dg.astype(q.dtype)
    R = (q @ np.swapaxes(k, -1, -2)) * Dg                            # (GR.3)
    r = R.sum(axis=-1)
    c = np.maximum(np.abs(r), 1.0) if normalize else np.ones_like(r)
    out = (R @ v) / c[..., None]
    return out, GatedParallelCache(q, k, v, g, Dg, R, r, c, s, out, scale, bool(normalize))


def gated_retention_parallel_backward(dout: np.ndarray, cache: GatedParallelCache):
    """Backward of [`gated_retention_parallel`][minirnn.gated.gated_retention_parallel].

    Eq. (GR.6): retention's parallel backward (R.10) with ``Gamma^g`` as the mask, then the decay
    gradient (GR.7) from ``dq`` and ``dk``.

    Parameters
    ----------
    dout : ndarray, shape (B, h, T, dv)
    cache : GatedParallelCache

    Returns
    -------
    dq, dk : ndarray, shape (B, h, T, d)
    dv : ndarray, shape (B, h, T, dv)
    dlog_decay : ndarray, shape (B, h, T)
    """
    dout = check.gated_retention_parallel_backward(dout, cache)
    if cache.normalize:
        dOmega, dr = score_normaliser_backward(dout, cache.out, cache.r, cache.c)   # (R.9)
    else:
        dOmega, dr = dout, np.zeros_like(cache.r)
    dv = np.swapaxes(cache.R, -1, -2) @ dOmega
    dA = (dOmega @ np.swapaxes(cache.v, -1, -2) + dr[..., None]) * cache.decay   # of Q' K^T
    dq = dA @ cache.k                                                # gradient of q' = q scale
    dk = np.swapaxes(dA, -1, -2) @ cache.q
    dlog_decay, _ = gated_decay_gradient(cache.q, dq, cache.k, dk, cache.log_decay, cache.s,
                                         normalize=cache.normalize)  # (GR.7)
    return dq * cache.scale, dk, dv, dlog_decay


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
        State after earlier tokens; zeros when omitted.
    normalize : bool, optional

    Returns
    -------
    out : ndarray, shape (B, h, T, dv)
    state : GatedState
    cache : GatedRecurrentCache
    """
    q, k, v, g, state = check.gated_retention_recurrent(q, k, v, log_decay, state, normalize)
    scale = float(1.0 / np.sqrt(q.shape[-1])) if normalize else 1.0
    q = q * scale                                                    # q' = q / sqrt(d)  (R.5)
    B, h, T, d = q.shape
    S, z, s = state.S, state.z, state.s
    alpha = np.exp(g)                                                # (B, h, T) float64
    decay = alpha.astype(q.dtype)                                    # alpha in the dtype of S
    S_all = np.empty((B, h, T, d, v.shape[-1]), dtype=q.dtype)
    z_all = np.empty((B, h, T, d), dtype=q.dtype)
    s_all = np.empty((B, h, T))
    kappa = np.ones((B, h, T), dtype=q.dtype)
    r = np.empty((B, h, T), dtype=q.dtype)
    Omega = np.empty((B, h, T, v.shape[-1]), dtype=q.dtype)
    # --- exercise: gated_retention_recurrent ---
    for n in range(T):                                               # the recurrence (GR.2)
        S = decay[:, :, n, None, None] * S + k[:, :, n, :, None] * v[:, :, n, None, :]
        z = decay[:, :, n, None] * z + k[:, :, n]
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
    final = GatedState(S, z, s, state.position + T)
    return out, final, GatedRecurrentCache(q, k, v, g, S_all, z_all, s_all, kappa, r, c, out,
                                           scale, bool(normalize), final)


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
        Gradient with respect to the returned state.

    Returns
    -------
    dq, dk : ndarray, shape (B, h, T, d)
    dv : ndarray, shape (B, h, T, dv)
    dlog_decay : ndarray, shape (B, h, T)
    dstate_in : GatedStateGrad
        Gradient with respect to the incoming state.
    """
    dout, dstate = check.gated_retention_recurrent_backward(dout, cache, dstate)
    if cache.normalize:
        dOmega, dr = score_normaliser_backward(dout, cache.out, cache.r, cache.c)   # (R.9)
    else:
        dOmega, dr = dout, np.zeros_like(cache.r)
    q, k, v, kappa = cache.q, cache.k, cache.v, cache.kappa
    decay = np.exp(cache.log_decay).astype(q.dtype)                  # alpha_n
    dS, dz = dstate.S, dstate.z                                      # reaching S_T and z_T
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
        dS = decay[:, :, n, None, None] * dS                         # on to S_{n-1}
        dz = decay[:, :, n, None] * dz
    dlog_decay, ds = gated_decay_gradient(q, dq, k, dk, cache.log_decay, cache.s, cache.final,
                                          dstate, cache.normalize)   # (GR.7)
    return dq * cache.scale, dk, dv, dlog_decay, GatedStateGrad(dS, dz, ds)


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
        State before the sequence (zeros when omitted).

    Returns
    -------
    GatedState
    """
    k, v, g, state = check.gated_retention_final_state(k, v, log_decay, state)
    b = np.cumsum(g, axis=-1)                                        # (GR.1)
    zeta = np.exp(np.minimum(b[..., -1:] - b, 0.0))                  # e^(b_{L-1} - b_m)
    decay_L = np.exp(b[..., -1])                                     # e^(b_{L-1}), (B, h)
    kz = k * zeta[..., None].astype(k.dtype)
    S = decay_L[..., None, None].astype(k.dtype) * state.S + np.swapaxes(kz, -1, -2) @ v
    z = decay_L[..., None].astype(k.dtype) * state.z + kz.sum(axis=2)
    s = decay_L * state.s + zeta.sum(axis=-1)                        # (GR.5)
    return GatedState(S, z, s, state.position + k.shape[2])


def gated_retention_chunkwise(q: np.ndarray, k: np.ndarray, v: np.ndarray, log_decay: np.ndarray,
                              chunk_size: int, state: GatedState | None = None,
                              normalize: bool = True):
    """Gated retention in chunkwise form: parallel inside each chunk, recurrent across chunks.

    Implements eq. (GR.5), in SSD's four steps: (1) the quadratic form inside each chunk, (2)
    each chunk's contribution to the state, (3) the scan that carries the state from chunk to
    chunk, decayed by ``e^(b_{L-1})``, (4) the state's contribution to the chunk's outputs,
    ``xi * Q S_prev``. Every row uses its global count ``s_n``, so the result equals the other
    forms exactly. Any ``chunk_size``: the last chunk is simply shorter.

    Cost: O(T C (d + dv) + T d dv) time for chunk size C.

    Parameters
    ----------
    q, k : ndarray, shape (B, h, T, d)
    v : ndarray, shape (B, h, T, dv)
    log_decay : ndarray, shape (B, h, T)
    chunk_size : int
        Tokens per chunk, at least 1.
    state : GatedState, optional
    normalize : bool, optional

    Returns
    -------
    out : ndarray, shape (B, h, T, dv)
    state : GatedState
    cache : GatedChunkwiseCache
    """
    q, k, v, g, state = check.gated_retention_chunkwise(q, k, v, log_decay, chunk_size, state,
                                                        normalize)
    scale = float(1.0 / np.sqrt(q.shape[-1])) if normalize else 1.0
    q = q * scale                                                    # q' = q / sqrt(d)  (R.5)
    T = q.shape[2]
    Omega = np.empty(q.shape[:3] + v.shape[-1:], dtype=q.dtype)      # (B, h, T, dv)
    r = np.empty(q.shape[:3], dtype=q.dtype)
    s_all = np.empty(q.shape[:3])
    bounds, states = [], []
    for start in range(0, T, chunk_size):                            # step 3: the scan
        stop = min(start + chunk_size, T)
        bounds.append((start, stop))
        states.append(state)
        qc, kc, vc, gc = (x[:, :, start:stop] for x in (q, k, v, g))
        f = gated_chunk_decays(gc, state.s, normalize, q.dtype)     # (GR.4)
        inner = (qc @ np.swapaxes(kc, -1, -2)) * f.Gamma             # step 1: inside
        cross = f.xi[..., None] * (qc @ state.S)                     # step 4: from the state
        Omega[:, :, start:stop] = f.kappa[..., None] * (inner @ vc + cross)
        r[:, :, start:stop] = f.kappa * (inner.sum(axis=-1)
                                         + f.xi * np.einsum("bhjd,bhd->bhj", qc, state.z))
        s_all[:, :, start:stop] = f.s
        state = gated_retention_final_state(kc, vc, gc, state)       # step 2, carried on
    c = np.maximum(np.abs(r), 1.0) if normalize else np.ones_like(r)
    out = Omega / c[..., None]
    return out, state, GatedChunkwiseCache(q, k, v, g, bounds, states, s_all, r, c, out, scale,
                                           bool(normalize), state)


def gated_retention_chunkwise_backward(dout: np.ndarray, cache: GatedChunkwiseCache,
                                       dstate: GatedStateGrad | None = None):
    """Backward of [`gated_retention_chunkwise`][minirnn.gated.gated_retention_chunkwise], chunk
    by chunk in reverse.

    Eq. (GR.6): retention's (R.12) with the chunk factors of (GR.4); the gradients ``G`` and
    ``g_z`` of the carried state decay by ``e^(b_{L-1})`` from chunk to chunk. Then the decay
    gradient (GR.7).

    Parameters
    ----------
    dout : ndarray, shape (B, h, T, dv)
    cache : GatedChunkwiseCache
    dstate : GatedStateGrad, optional

    Returns
    -------
    dq, dk : ndarray, shape (B, h, T, d)
    dv : ndarray, shape (B, h, T, dv)
    dlog_decay : ndarray, shape (B, h, T)
    dstate_in : GatedStateGrad
    """
    dout, dstate = check.gated_retention_chunkwise_backward(dout, cache, dstate)
    if cache.normalize:
        dOmega, dr = score_normaliser_backward(dout, cache.out, cache.r, cache.c)   # (R.9)
    else:
        dOmega, dr = dout, np.zeros_like(cache.r)
    q, k, v = cache.q, cache.k, cache.v
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    G, g_z = dstate.S, dstate.z                          # gradient reaching the carried state
    for (start, stop), state in reversed(list(zip(cache.bounds, cache.states))):
        qc, kc, vc = q[:, :, start:stop], k[:, :, start:stop], v[:, :, start:stop]
        f = gated_chunk_decays(cache.log_decay[:, :, start:stop], state.s, cache.normalize,
                               q.dtype)
        inner = (qc @ np.swapaxes(kc, -1, -2)) * f.Gamma
        dOmega_k = f.kappa[..., None] * dOmega[:, :, start:stop]     # through the row factors
        dr_k = f.kappa * dr[:, :, start:stop]
        dA = (dOmega_k @ np.swapaxes(vc, -1, -2) + dr_k[..., None]) * f.Gamma   # of Q' K^T
        xdOmega, xdr = f.xi[..., None] * dOmega_k, f.xi * dr_k       # the cross term's share
        dq[:, :, start:stop] = dA @ kc + xdOmega @ np.swapaxes(state.S, -1, -2) \
            + xdr[..., None] * state.z[:, :, None, :]
        dk[:, :, start:stop] = np.swapaxes(dA, -1, -2) @ qc \
            + f.zeta[..., None] * (vc @ np.swapaxes(G, -1, -2) + g_z[:, :, None, :])
        dv[:, :, start:stop] = np.swapaxes(inner, -1, -2) @ dOmega_k + f.zeta[..., None] * (kc @ G)
        G = f.decay_L[..., None, None] * G + np.swapaxes(qc, -1, -2) @ xdOmega   # on to the
        g_z = f.decay_L[..., None] * g_z + np.einsum("bhjd,bhj->bhd", qc, xdr)   # chunk before
    dlog_decay, ds = gated_decay_gradient(q, dq, k, dk, cache.log_decay, cache.s, cache.final,
                                          dstate, cache.normalize)   # (GR.7)
    return dq * cache.scale, dk, dv, dlog_decay, GatedStateGrad(G, g_z, ds)


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
        The returned state, when the call returned one.
    dfinal : GatedStateGrad, optional
        Its gradient.
    normalize : bool, optional
        Whether the forward divided by ``sqrt(s_n)``.

    Returns
    -------
    dlog_decay : ndarray, shape (B, h, T)
    ds_prev : ndarray, shape (B, h)
        Gradient with respect to the incoming count ``state.s`` (in the dtype of ``q``).
    """
    q, dq, k, dk, g, s, final, dfinal = check.gated_decay_gradient(
        q, dq, k, dk, log_decay, s, final, dfinal, normalize)
    # --- exercise: gated_decay_gradient ---
    qdq = np.sum(q * dq, axis=-1, dtype=np.float64)                  # row n of dR * R
    db = qdq - np.sum(k * dk, axis=-1, dtype=np.float64)             # minus column n  (GR.7)
    db[..., -1] += (np.sum(dfinal.S * final.S, axis=(-2, -1))       # the returned state:
                    + np.sum(dfinal.z * final.z, axis=-1))          # one more row
    ds = -qdq / (2.0 * s) if normalize else np.zeros_like(s)         # kappa_n = s_n^(-1/2)
    ds[..., -1] += dfinal.s
    rho = np.zeros_like(s)                                           # sum_{j>n} ds_j Gamma^g[j, n]
    for n in reversed(range(s.shape[-1] - 1)):
        rho[..., n] = np.exp(g[..., n + 1]) * (ds[..., n + 1] + rho[..., n + 1])
    db += ds * (s - 1.0) - rho                                       # the count's share
    dlog_decay = np.cumsum(db[..., ::-1], axis=-1)[..., ::-1]        # g_t moves b_n, n >= t
    ds_prev = np.exp(g[..., 0]) * (ds[..., 0] + rho[..., 0])
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
    q, dq, k, dk, gamma, s_prev, final, dfinal = check.retention_decay_gradient(
        q, dq, k, dk, gamma, state, final, dfinal, normalize)
    B, h, T, _ = q.shape
    g = np.broadcast_to(np.log(gamma)[None, :, None], (B, h, T))    # g_t = ln(gamma)   (GR.8)
    powers = gamma[:, None] ** np.arange(T + 1)                      # gamma^0 .. gamma^T
    s = powers[:, 1:] * s_prev[:, None] + np.cumsum(powers[:, :T], axis=1)   # s_n, (h, T)
    shared = GatedStateGrad(dfinal.S, dfinal.z, np.broadcast_to(dfinal.s / B, (B, h)))
    dg, ds_prev = gated_decay_gradient(
        q, dq, k, dk, g, np.broadcast_to(s, (B, h, T)),
        GatedState(final.S, final.z, np.broadcast_to(final.s, (B, h)), final.position), shared,
        normalize)                                                   # (GR.7)
    dlog_gamma = dg.sum(axis=(0, 2), dtype=np.float64)               # every token's gate
    return dlog_gamma / gamma, ds_prev.sum(axis=0, dtype=np.float64)
