"""Retention (RetNet) in its three forms: parallel, recurrent and chunkwise, forward and backward.

One function, computed three ways with identical results (to rounding), also with the paper's
normalisations switched on. Equations are numbered as on ``derivations/retention.md``::

    Gamma[n, m] = gamma^(n - m) if n >= m else 0     (the decay mask)         (R.1)
    parallel, plain:    O = (Q K^T * Gamma) V                                 (R.2)
    recurrent, plain:   S_n = gamma S_{n-1} + k_n^T v_n,   o_n = q_n S_n      (R.3)
    chunkwise, plain:   O_[i] = (Q_[i] K_[i]^T * Gamma) V_[i] + xi * (Q_[i] S_prev)
                        S = gamma^L S_prev + (zeta * K_[i])^T V_[i]           (R.4)
    normalisations:     q' = q / sqrt(d),  s_n = sum_{m<=n} Gamma[n, m],
                        kappa_n = 1 / sqrt(s_n),  c_n = max(|r_n|, 1)         (R.5)
    parallel:   R = (Q' K^T) * Gamma * kappa,  r = rowsum(R),  O = (R V) / c  (R.6)
    recurrent:  S_n, z_n = gamma z_{n-1} + k_n, s_n = gamma s_{n-1} + 1,
                o_n = kappa_n q'_n S_n / c_n,  r_n = kappa_n q'_n . z_n        (R.7)
    chunkwise:  (R.4) for S, z and s, with the global s_n of every row         (R.8)
    backward:   score normaliser (R.9), parallel (R.10), recurrent (R.11),
                chunkwise (R.12)

Shapes: ``q``, ``k`` (B, h, T, d); ``v`` (B, h, T, dv); ``gamma`` (h,), one decay per head.
The carried state holds ``S`` (B, h, d, dv), ``z`` (B, h, d), ``s`` (h,) and the position.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _checks as check

__all__ = [
    "ChunkDecays",
    "ChunkwiseCache",
    "ParallelCache",
    "RecurrentCache",
    "RetentionState",
    "RetentionStateGrad",
    "chunk_decays",
    "decay_mask",
    "retention_chunkwise",
    "retention_chunkwise_backward",
    "retention_final_state",
    "retention_parallel",
    "retention_parallel_backward",
    "retention_recurrent",
    "retention_recurrent_backward",
    "score_normaliser_backward",
]


class RetentionState(NamedTuple):
    """What retention carries from one token (or chunk, or call) to the next."""

    S: np.ndarray   # (B, h, d, dv)  decayed sum of k_m^T v_m                     (R.3)
    z: np.ndarray   # (B, h, d)      decayed sum of k_m, for the score normaliser  (R.7)
    s: np.ndarray   # (h,) float64   decayed count s_n = sum_m gamma^(n-m), for kappa_n
    position: int   # tokens seen so far (the absolute position of the next token)


class RetentionStateGrad(NamedTuple):
    """Gradient of the loss with respect to a [`RetentionState`][minirnn.retention.RetentionState].

    The count ``s`` depends only on the decays, so its gradient matters only when they are
    learned ([`retention_decay_gradient`][minirnn.gated.retention_decay_gradient]); the
    backward passes leave it ``None``."""

    S: np.ndarray   # (B, h, d, dv)
    z: np.ndarray   # (B, h, d)
    s: np.ndarray | None = None   # (h,)


class ParallelCache(NamedTuple):
    q: np.ndarray        # (B, h, T, d) queries, already multiplied by scale
    k: np.ndarray        # (B, h, T, d)
    v: np.ndarray        # (B, h, T, dv)
    decay: np.ndarray    # (h, T, T) Gamma * kappa: the decay mask times the row factors
    R: np.ndarray        # (B, h, T, T) retention scores
    r: np.ndarray        # (B, h, T) row sums of R
    c: np.ndarray        # (B, h, T) score normaliser max(|r|, 1) (ones when not normalising)
    out: np.ndarray      # (B, h, T, dv)
    scale: float
    normalize: bool


class RecurrentCache(NamedTuple):
    q: np.ndarray        # (B, h, T, d) scaled queries
    k: np.ndarray        # (B, h, T, d)
    v: np.ndarray        # (B, h, T, dv)
    gamma: np.ndarray    # (h,) float64
    S: np.ndarray        # (B, h, T, d, dv) state after every token
    z: np.ndarray        # (B, h, T, d)
    kappa: np.ndarray        # (h, T) row factors 1 / sqrt(s_n)
    r: np.ndarray        # (B, h, T)
    c: np.ndarray        # (B, h, T)
    out: np.ndarray      # (B, h, T, dv)
    scale: float
    normalize: bool


class ChunkwiseCache(NamedTuple):
    q: np.ndarray        # (B, h, T, d) scaled queries
    k: np.ndarray        # (B, h, T, d)
    v: np.ndarray        # (B, h, T, dv)
    gamma: np.ndarray    # (h,)
    bounds: list         # [(start, stop), ...] of every chunk
    states: list         # the RetentionState before each chunk
    r: np.ndarray        # (B, h, T)
    c: np.ndarray        # (B, h, T)
    out: np.ndarray      # (B, h, T, dv)
    scale: float
    normalize: bool


class ChunkDecays(NamedTuple):
    """The decay factors of one chunk of ``L`` tokens, eq. (R.8); see
    [`chunk_decays`][minirnn.retention.chunk_decays]."""

    Gamma: np.ndarray    # (h, L, L) decay mask inside the chunk (R.1)
    xi: np.ndarray       # (h, L) gamma^(j+1): decay of the state before the chunk at row j
    zeta: np.ndarray     # (h, L) gamma^(L-1-j): decay of token j by the end of the chunk
    gamma_L: np.ndarray  # (h,) gamma^L: decay of the state across the whole chunk
    kappa: np.ndarray        # (h, L) row factors 1 / sqrt(s_n) with the global count s_n


# --- decay factors (built in float64 and rounded once to the dtype of the computation) ---------

def decay_mask(gamma, T: int) -> np.ndarray:
    """The decay mask ``Gamma[n, m] = gamma^(n - m)`` for ``n >= m``, else 0.

    Implements eq. (R.1). Only the ``T`` powers ``gamma^0 .. gamma^(T-1)`` are computed:
    ``Gamma`` is constant along its diagonals (a lower-triangular Toeplitz matrix), so row ``n``
    is the reversed powers ``gamma^n .. gamma^0`` followed by zeros. No negative power of gamma
    is ever formed (``0^-1`` is infinite) and masking never relies on ``gamma^inf == 0`` (false
    for ``gamma == 1``); the zeros are written, not computed.

    Parameters
    ----------
    gamma : float or ndarray of shape (h,)
        Decay per head, each in ``[0, 1]``.
    T : int
        Sequence length.

    Returns
    -------
    ndarray, float64, shape (T, T) for a scalar gamma or (h, T, T)
        A read-only view of ``O(h T)`` numbers (every row is a window of the same vector);
        ``np.array(Gamma)`` makes a writable copy.
    """
    gammas, T = check.decay_mask(gamma, T)
    powers = gammas[:, None] ** np.arange(T)                         # (h, T), 0^0 = 1
    # [gamma^(T-1) .. gamma^1, gamma^0, 0 .. 0]: the window starting at T-1-n is row n
    padded = np.concatenate([powers[:, ::-1], np.zeros((gammas.size, T - 1))], axis=1)
    Gamma = np.lib.stride_tricks.sliding_window_view(padded, T, axis=1)[:, ::-1]
    return Gamma[0] if np.ndim(gamma) == 0 else Gamma


def chunk_decays(gamma, L: int, s_prev, normalize: bool = True, dtype=None) -> ChunkDecays:
    """The decay factors of a chunk of ``L`` tokens after a state with count ``s_prev``.

    Implements the factors of eqs. (R.4) and (R.8): the chunk's own decay mask ``Gamma``,
    ``xi_j = gamma^(j+1)`` (how much the state carried into the chunk has decayed when row
    ``j`` reads it), ``zeta_j = gamma^(L-1-j)`` (how much token ``j`` has decayed when the
    chunk hands its state on), ``gamma^L``, and the row factors ``kappa_j = 1 / sqrt(s_n)``
    with
    the **global** count of row ``n = start + j``,
    ``s_n = gamma^(j+1) s_prev + sum_{i<=j} gamma^i`` (not a count local to the chunk).
    The forward and the backward of the chunkwise form both use it.

    Parameters
    ----------
    gamma : float or ndarray of shape (h,)
    L : int
        Tokens in the chunk.
    s_prev : ndarray, shape (h,)
        The count ``state.s`` before the chunk (0 at the start of a sequence).
    normalize : bool, optional
        Without normalisation ``kappa`` is all ones.
    dtype : numpy dtype, optional
        Dtype of the returned factors (default: that of ``s_prev``); they are computed in
        float64 and rounded once.

    Returns
    -------
    ChunkDecays
        ``Gamma`` (h, L, L), ``xi``, ``zeta``, ``kappa`` (h, L), ``gamma_L`` (h,).
    """
    gamma, L, s_prev = check.chunk_decays(gamma, L, s_prev, normalize)
    dtype = s_prev.dtype if dtype is None else dtype
    # --- exercise: retention_chunkwise ---
    p = gamma[:, None] ** np.arange(L + 1)                           # gamma^0 .. gamma^L
    xi = p[:, 1:]                                                    # gamma^(j+1), (h, L)
    zeta = p[:, L - 1::-1]                                           # gamma^(L-1-j), (h, L)
    s = xi * s_prev[:, None] + np.cumsum(p[:, :L], axis=1)           # global s_n of each row
    kappa = 1.0 / np.sqrt(s) if normalize else np.ones_like(s)
    # --- end ---
    Gamma = decay_mask(gamma, L)
    return ChunkDecays(*(f.astype(dtype) for f in (Gamma, xi, zeta, p[:, L], kappa)))


# --- the score normaliser, shared by the three backward passes --------------------------------

def score_normaliser_backward(dout: np.ndarray, out: np.ndarray, r: np.ndarray,
                              c: np.ndarray):
    """Backward of the score normaliser: from ``dO`` to ``(dOmega, dr)`` for ``O = Omega / c``.

    Implements eq. (R.9) for ``c = max(|r|, 1)`` (R.5), where ``Omega`` is the output before
    the division and ``r`` the row sum of the scores. ``dOmega = dO / c``. Where ``|r| > 1``,
    ``c = |r|`` depends on ``r``: ``dc = -(dO . O) / c`` and ``dr = dc sign(r)``. Where
    ``|r| < 1``, ``c = 1`` is constant and ``dr = 0``. At ``|r| = 1`` exactly, ``c`` has a
    kink (slope 0 from inside, 1 from outside); this takes the inside value ``dr = 0``, one
    valid subgradient.

    Parameters
    ----------
    dout, out : ndarray, shape (B, h, T, dv)
        Upstream gradient and the forward output ``O``.
    r, c : ndarray, shape (B, h, T)
        Row sums of the scores and ``c = max(|r|, 1)``, from the forward's cache.

    Returns
    -------
    dOmega : ndarray, shape (B, h, T, dv)
    dr : ndarray, shape (B, h, T)
    """
    dout, out, r, c = check.score_normaliser_backward(dout, out, r, c)
    dOmega = dout / c[..., None]
    dc = -np.sum(dout * out, axis=-1) / c                        # O = Omega / c: dO/dc = -O / c
    dr = np.where(np.abs(r) > 1.0, dc * np.sign(r), 0.0)             # c = |r| only where |r| > 1
    return dOmega, dr


# --- parallel form ----------------------------------------------------------------------------

def retention_parallel(q: np.ndarray, k: np.ndarray, v: np.ndarray, gamma,
                       normalize: bool = True) -> tuple[np.ndarray, ParallelCache]:
    """Retention in parallel form: every output at once, like masked attention.

    With ``normalize=False`` implements eq. (R.2), ``O = (Q K^T * Gamma) V``. With
    ``normalize=True`` (default) implements eq. (R.6): queries scaled by ``1/sqrt(d)``, row
    ``n`` of the decay mask divided by ``sqrt(s_n)``, and each output row divided by
    ``c_n = max(|r_n|, 1)`` where ``r_n`` is the row sum of the scores.

    Cost: O(T^2 (d + dv)) time and O(T^2) memory per head.

    Parameters
    ----------
    q, k : ndarray, shape (B, h, T, d)
    v : ndarray, shape (B, h, T, dv)
    gamma : float or ndarray of shape (h,)
        Decay per head, in ``[0, 1]``.
    normalize : bool, optional

    Returns
    -------
    out : ndarray, shape (B, h, T, dv)
    cache : ParallelCache
    """
    q, k, v, gamma = check.retention_parallel(q, k, v, gamma, normalize)
    scale = float(1.0 / np.sqrt(q.shape[-1])) if normalize else 1.0
    q = q * scale                                                    # q' = q / sqrt(d)  (R.5)
    Gamma = decay_mask(gamma, q.shape[2])                            # (h, T, T)         (R.1)
    if normalize:
        s = Gamma.sum(axis=-1, keepdims=True)                        # s_n               (R.5)
        Gamma = Gamma / np.sqrt(s)                                   # a_n Gamma[n, m]
    Gamma = Gamma.astype(q.dtype)
    R = (q @ np.swapaxes(k, -1, -2)) * Gamma                         # (R.6)
    r = R.sum(axis=-1)
    c = np.maximum(np.abs(r), 1.0) if normalize else np.ones_like(r)   # c_n (R.5)
    out = (R @ v) / c[..., None]                                     # (R.6)
    return out, ParallelCache(q, k, v, Gamma, R, r, c, out, scale, bool(normalize))


def retention_parallel_backward(dout: np.ndarray, cache: ParallelCache):
    """Backward of [`retention_parallel`][minirnn.retention.retention_parallel].

    Implements eq. (R.10): through the score normaliser (R.9), then ``Omega = R V`` and
    ``R = (Q' K^T) * Gamma kappa`` like attention without the softmax.

    Parameters
    ----------
    dout : ndarray, shape (B, h, T, dv)
    cache : ParallelCache

    Returns
    -------
    dq, dk : ndarray, shape (B, h, T, d)
    dv : ndarray, shape (B, h, T, dv)
    """
    dout = check.retention_parallel_backward(dout, cache)
    # --- exercise: retention_parallel_backward ---
    if cache.normalize:
        dOmega, dr = score_normaliser_backward(dout, cache.out, cache.r, cache.c)   # (R.9)
    else:
        dOmega, dr = dout, np.zeros_like(cache.r)
    dv = np.swapaxes(cache.R, -1, -2) @ dOmega
    dR = dOmega @ np.swapaxes(cache.v, -1, -2) + dr[..., None]
    dA = dR * cache.decay                                            # gradient of Q' K^T
    dq = (dA @ cache.k) * cache.scale
    dk = np.swapaxes(dA, -1, -2) @ cache.q
    return dq, dk, dv
    # --- end ---


# --- recurrent form ---------------------------------------------------------------------------

def retention_recurrent(q: np.ndarray, k: np.ndarray, v: np.ndarray, gamma,
                        state: RetentionState | None = None, normalize: bool = True):
    """Retention in recurrent form: one token at a time with a constant-size state.

    With ``normalize=False`` implements eq. (R.3). With ``normalize=True`` implements eq.
    (R.7), carrying ``z`` and ``s`` beside ``S`` so that the normalisers are exactly those of
    the parallel form. Passing the returned state to the next call continues the sequence.

    Cost: O(T d dv) time; the state is O(d dv) per head whatever T is (this implementation
    keeps every state for the backward: O(T d dv) memory when training).

    Parameters
    ----------
    q, k : ndarray, shape (B, h, T, d)
    v : ndarray, shape (B, h, T, dv)
    gamma : float or ndarray of shape (h,)
    state : RetentionState, optional
        State after earlier tokens; zeros (a fresh sequence) when omitted.
    normalize : bool, optional

    Returns
    -------
    out : ndarray, shape (B, h, T, dv)
    state : RetentionState
        State after the last token.
    cache : RecurrentCache
    """
    q, k, v, gamma, state = check.retention_recurrent(q, k, v, gamma, state, normalize)
    scale = float(1.0 / np.sqrt(q.shape[-1])) if normalize else 1.0
    q = q * scale                                                    # q' = q / sqrt(d)  (R.5)
    B, h, T, d = q.shape
    S, z, s = state.S, state.z, state.s                              # (B,h,d,dv), (B,h,d), (h,)
    decay = gamma.astype(q.dtype)                                    # gamma in the dtype of S
    S_all = np.empty((B, h, T, d, v.shape[-1]), dtype=q.dtype)
    z_all = np.empty((B, h, T, d), dtype=q.dtype)
    kappa = np.ones((h, T), dtype=q.dtype)
    r = np.empty((B, h, T), dtype=q.dtype)
    Omega = np.empty((B, h, T, v.shape[-1]), dtype=q.dtype)
    # --- exercise: retention_recurrent ---
    for n in range(T):                                               # the recurrence (R.7)
        S = decay[:, None, None] * S + k[:, :, n, :, None] * v[:, :, n, None, :]
        z = decay[:, None] * z + k[:, :, n]
        s = gamma * s + 1.0
        if normalize:
            kappa[:, n] = 1.0 / np.sqrt(s)
        qn = q[:, :, n]
        Omega[:, :, n] = kappa[:, n, None] * np.einsum("bhd,bhde->bhe", qn, S)
        r[:, :, n] = kappa[:, n] * np.sum(qn * z, axis=-1)
        S_all[:, :, n], z_all[:, :, n] = S, z
    # --- end ---
    c = np.maximum(np.abs(r), 1.0) if normalize else np.ones_like(r)   # c_n (R.5)
    out = Omega / c[..., None]
    final = RetentionState(S, z, s, state.position + T)
    return out, final, RecurrentCache(q, k, v, gamma, S_all, z_all, kappa, r, c, out, scale,
                                      bool(normalize))


def retention_recurrent_backward(dout: np.ndarray, cache: RecurrentCache,
                                 dstate: RetentionStateGrad | None = None):
    """Backpropagation through time for
    [`retention_recurrent`][minirnn.retention.retention_recurrent].

    Implements eq. (R.11), walking backwards: the gradient reaching ``S_n`` is what output
    ``n`` sends plus ``gamma`` times what reaches ``S_{n+1}`` (the same for ``z``).

    Parameters
    ----------
    dout : ndarray, shape (B, h, T, dv)
    cache : RecurrentCache
    dstate : RetentionStateGrad, optional
        Gradient with respect to the returned final state (when a later call used it).

    Returns
    -------
    dq, dk : ndarray, shape (B, h, T, d)
    dv : ndarray, shape (B, h, T, dv)
    dstate_in : RetentionStateGrad
        Gradient with respect to the incoming ``state``.
    """
    dout, dstate = check.retention_recurrent_backward(dout, cache, dstate)
    if cache.normalize:
        dOmega, dr = score_normaliser_backward(dout, cache.out, cache.r, cache.c)   # (R.9)
    else:
        dOmega, dr = dout, np.zeros_like(cache.r)
    q, k, v, kappa = cache.q, cache.k, cache.v, cache.kappa
    decay = cache.gamma.astype(q.dtype)                              # gamma in the dtype of S
    dS, dz = dstate.S, dstate.z                                      # reaching S_T and z_T
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    for n in reversed(range(q.shape[2])):
        dOmega_n = kappa[:, n, None] * dOmega[:, :, n]                            # (B, h, dv)
        dr_n = kappa[:, n] * dr[:, :, n]                                  # (B, h)
        qn = q[:, :, n]
        dS = dS + qn[..., :, None] * dOmega_n[..., None, :]               # total gradient on S_n
        dz = dz + dr_n[..., None] * qn                                # total gradient on z_n
        dq[:, :, n] = np.einsum("bhe,bhde->bhd", dOmega_n, cache.S[:, :, n]) \
            + dr_n[..., None] * cache.z[:, :, n]
        dk[:, :, n] = np.einsum("bhde,bhe->bhd", dS, v[:, :, n]) + dz
        dv[:, :, n] = np.einsum("bhd,bhde->bhe", k[:, :, n], dS)
        dS = decay[:, None, None] * dS                               # on to S_{n-1}
        dz = decay[:, None] * dz
    return dq * cache.scale, dk, dv, RetentionStateGrad(dS, dz)


# --- chunkwise form ---------------------------------------------------------------------------

def retention_final_state(k: np.ndarray, v: np.ndarray, gamma,
                          state: RetentionState | None = None) -> RetentionState:
    """The state after a whole sequence (or chunk), in one closed-form step.

    Implements the state update of eq. (R.4) with the sequence as one chunk of ``L`` tokens:
    ``S = gamma^L S_0 + sum_m gamma^(L-1-m) k_m^T v_m``, the same for ``z`` (with ``k_m``
    alone) and ``s = gamma^L s_0 + sum_m gamma^m``. The chunkwise form carries its state from
    chunk to chunk with it; after a whole sequence it is what the parallel form hands to a
    recurrent continuation, and it equals the final state of
    [`retention_recurrent`][minirnn.retention.retention_recurrent].

    Parameters
    ----------
    k : ndarray, shape (B, h, L, d)
    v : ndarray, shape (B, h, L, dv)
    gamma : float or ndarray of shape (h,)
    state : RetentionState, optional
        State before the sequence (zeros when omitted).

    Returns
    -------
    RetentionState
    """
    k, v, gamma, state = check.retention_final_state(k, v, gamma, state)
    L = k.shape[2]
    f = chunk_decays(gamma, L, state.s, dtype=k.dtype)
    # --- exercise: retention_chunkwise ---
    kz = k * f.zeta[..., None]                                       # gamma^(L-1-m) k_m
    S = f.gamma_L[:, None, None] * state.S + np.swapaxes(kz, -1, -2) @ v    # (R.4)
    z = f.gamma_L[:, None] * state.z + kz.sum(axis=2)
    s = gamma ** L * state.s + np.sum(gamma[:, None] ** np.arange(L), axis=1)
    # --- end ---
    return RetentionState(S, z, s, state.position + L)


def retention_chunkwise(q: np.ndarray, k: np.ndarray, v: np.ndarray, gamma, chunk_size: int,
                        state: RetentionState | None = None, normalize: bool = True):
    """Retention in chunkwise form: parallel inside each chunk, recurrent across chunks.

    With ``normalize=False`` implements eq. (R.4); with ``normalize=True`` eq. (R.8), where
    every row uses its *global* count ``s_n`` (not one local to the chunk), so the result
    equals the parallel and recurrent forms exactly. ``chunk_size`` need not divide ``T``: the
    last chunk is simply shorter (no padding, which would wrongly decay the state).

    Cost: O(T C (d + dv) + T d dv) time for chunk size C, O(C^2) memory per head for scores.

    Parameters
    ----------
    q, k : ndarray, shape (B, h, T, d)
    v : ndarray, shape (B, h, T, dv)
    gamma : float or ndarray of shape (h,)
    chunk_size : int
        Tokens per chunk, at least 1 (1 behaves like the recurrent form, >= T like the
        parallel form).
    state : RetentionState, optional
    normalize : bool, optional

    Returns
    -------
    out : ndarray, shape (B, h, T, dv)
    state : RetentionState
    cache : ChunkwiseCache
    """
    q, k, v, gamma, state = check.retention_chunkwise(q, k, v, gamma, chunk_size, state, normalize)
    scale = float(1.0 / np.sqrt(q.shape[-1])) if normalize else 1.0
    q = q * scale                                                    # q' = q / sqrt(d)  (R.5)
    T = q.shape[2]
    Omega = np.empty(q.shape[:3] + v.shape[-1:], dtype=q.dtype)          # (B, h, T, dv)
    r = np.empty(q.shape[:3], dtype=q.dtype)                         # (B, h, T)
    bounds, states = [], []
    for start in range(0, T, chunk_size):                            # recurrence over chunks
        stop = min(start + chunk_size, T)
        bounds.append((start, stop))
        states.append(state)
        qc, kc, vc = q[:, :, start:stop], k[:, :, start:stop], v[:, :, start:stop]
        # --- exercise: retention_chunkwise ---
        f = chunk_decays(gamma, stop - start, state.s, normalize, q.dtype)        # (R.8)
        inner = (qc @ np.swapaxes(kc, -1, -2)) * f.Gamma             # inside the chunk
        cross = f.xi[..., None] * (qc @ state.S)                     # from the state before it
        Omega[:, :, start:stop] = f.kappa[..., None] * (inner @ vc + cross)
        r[:, :, start:stop] = f.kappa * (inner.sum(axis=-1)
                                     + f.xi * np.einsum("bhjd,bhd->bhj", qc, state.z))
        state = retention_final_state(kc, vc, gamma, state)          # carried on (R.4)
        # --- end ---
    c = np.maximum(np.abs(r), 1.0) if normalize else np.ones_like(r)   # c_n (R.5)
    out = Omega / c[..., None]
    return out, state, ChunkwiseCache(q, k, v, gamma, bounds, states, r, c, out, scale,
                                      bool(normalize))


def retention_chunkwise_backward(dout: np.ndarray, cache: ChunkwiseCache,
                                 dstate: RetentionStateGrad | None = None):
    """Backward of [`retention_chunkwise`][minirnn.retention.retention_chunkwise], chunk by chunk in
    reverse.

    Implements eq. (R.12): inside a chunk, the parallel backward (R.10) for the inner part and
    the cross term; across chunks, the gradients ``G`` and ``g_z`` of the carried state are
    decayed by ``gamma^L`` and collect each chunk's contribution.

    Parameters
    ----------
    dout : ndarray, shape (B, h, T, dv)
    cache : ChunkwiseCache
    dstate : RetentionStateGrad, optional
        Gradient with respect to the returned final state.

    Returns
    -------
    dq, dk : ndarray, shape (B, h, T, d)
    dv : ndarray, shape (B, h, T, dv)
    dstate_in : RetentionStateGrad
    """
    dout, dstate = check.retention_chunkwise_backward(dout, cache, dstate)
    if cache.normalize:
        dOmega, dr = score_normaliser_backward(dout, cache.out, cache.r, cache.c)   # (R.9)
    else:
        dOmega, dr = dout, np.zeros_like(cache.r)
    q, k, v = cache.q, cache.k, cache.v
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    G, g_z = dstate.S, dstate.z                          # gradient reaching the carried state
    for (start, stop), state in reversed(list(zip(cache.bounds, cache.states))):
        qc, kc, vc = q[:, :, start:stop], k[:, :, start:stop], v[:, :, start:stop]
        f = chunk_decays(cache.gamma, stop - start, state.s, cache.normalize, q.dtype)
        inner = (qc @ np.swapaxes(kc, -1, -2)) * f.Gamma
        dOmega_k = f.kappa[..., None] * dOmega[:, :, start:stop]     # through the row factors
        dr_k = f.kappa * dr[:, :, start:stop]
        dA = (dOmega_k @ np.swapaxes(vc, -1, -2) + dr_k[..., None]) * f.Gamma  # of Q' K^T
        xdOmega, xdr = f.xi[..., None] * dOmega_k, f.xi * dr_k       # the cross term's share
        dq[:, :, start:stop] = dA @ kc + xdOmega @ np.swapaxes(state.S, -1, -2) \
            + xdr[..., None] * state.z[:, :, None, :]
        dk[:, :, start:stop] = np.swapaxes(dA, -1, -2) @ qc \
            + f.zeta[..., None] * (vc @ np.swapaxes(G, -1, -2) + g_z[:, :, None, :])
        dv[:, :, start:stop] = np.swapaxes(inner, -1, -2) @ dOmega_k + f.zeta[..., None] * (kc @ G)
        G = f.gamma_L[:, None, None] * G + np.swapaxes(qc, -1, -2) @ xdOmega   # on to the chunk
        g_z = f.gamma_L[:, None] * g_z + np.einsum("bhjd,bhj->bhd", qc, xdr)   # before
    return dq * cache.scale, dk, dv, RetentionStateGrad(G, g_z)
