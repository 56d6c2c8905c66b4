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
    chunkwise:  (R.6) on each chunk, plus the carried state's share
                xi * kappa * Q' S_prev, with the global s_n of every row       (R.8)
    backward:   score normaliser (R.9), parallel (R.10), recurrent (R.11),
                chunkwise (R.12)

Every form takes the state of earlier tokens (``None``: a new sequence) and returns
``(out, state, cache)``; every backward takes the gradient of the returned state (``None``: no
later call used it) and returns ``(dq, dk, dv, dstate_prev)``. The parallel form continuing a
state *is* one chunk of the chunkwise form, which is why the chunkwise form is a loop that calls
it, chunk after chunk, handing the state on.

Shapes: ``q``, ``k`` (B, h, T, d); ``v`` (B, h, T, dv); ``gamma`` (h,), one decay per head.
The carried state ([`RetentionState`][minirnn.states.RetentionState]) holds ``S`` (B, h, d, dv),
``z`` (B, h, d), ``s`` (h,) and the position.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import numpy as np

from ._checks import retention as check
from .states import RetentionState, RetentionStateGrad

__all__ = [
    "RetentionChunkDecays",
    "RetentionChunkwiseCache",
    "RetentionParallelCache",
    "RetentionRecurrentCache",
    "chunk_decays",
    "decay_mask",
    "retention_chunkwise",
    "retention_chunkwise_backward",
    "retention_final_state",
    "retention_forms",
    "retention_parallel",
    "retention_parallel_backward",
    "retention_recurrent",
    "retention_recurrent_backward",
    "score_normaliser_backward",
]


class RetentionParallelCache(NamedTuple):
    """What [`retention_parallel_backward`][minirnn.retention.retention_parallel_backward] needs."""

    q: np.ndarray        # (B, h, T, d) queries, already multiplied by scale: q'
    k: np.ndarray        # (B, h, T, d)
    v: np.ndarray        # (B, h, T, dv)
    Gamma: np.ndarray    # (h, T, T) the decay mask (R.1)
    kappa: np.ndarray    # (h, T) row factors 1 / sqrt(s_n) (ones without normalisation)
    xi: np.ndarray       # (h, T) gamma^(n+1): the carried state's decay at row n
    zeta: np.ndarray     # (h, T) gamma^(T-1-m): token m's decay by the returned state
    state: RetentionState    # the incoming state
    R: np.ndarray        # (B, h, T, T) retention scores
    r: np.ndarray        # (B, h, T) row sums of the scores (the carried state's share included)
    c: np.ndarray        # (B, h, T) score normaliser max(|r|, 1) (ones when not normalising)
    out: np.ndarray      # (B, h, T, dv)
    scale: float
    normalize: bool


class RetentionRecurrentCache(NamedTuple):
    """What [`retention_recurrent_backward`][minirnn.retention.retention_recurrent_backward]
    needs."""

    q: np.ndarray        # (B, h, T, d) scaled queries q'
    k: np.ndarray        # (B, h, T, d)
    v: np.ndarray        # (B, h, T, dv)
    gamma: np.ndarray    # (h,) float64
    S: np.ndarray        # (B, h, T, d, dv) state after every token
    z: np.ndarray        # (B, h, T, d)
    kappa: np.ndarray    # (h, T) row factors 1 / sqrt(s_n)
    r: np.ndarray        # (B, h, T)
    c: np.ndarray        # (B, h, T)
    out: np.ndarray      # (B, h, T, dv)
    final: RetentionState    # the returned state
    scale: float
    normalize: bool


class RetentionChunkwiseCache(NamedTuple):
    """What [`retention_chunkwise_backward`][minirnn.retention.retention_chunkwise_backward]
    needs: the parallel form's cache of every chunk."""

    bounds: list         # [(start, stop), ...] of every chunk
    chunks: list         # the RetentionParallelCache of every chunk


class RetentionChunkDecays(NamedTuple):
    """The decay factors of a chunk of ``L`` tokens after a carried state, eq. (R.8); see
    [`chunk_decays`][minirnn.retention.chunk_decays]."""

    Gamma: np.ndarray    # (h, L, L) decay mask inside the chunk (R.1)
    xi: np.ndarray       # (h, L) gamma^(j+1): decay of the carried state at row j
                         #        (xi[:, -1] = gamma^L: its decay across the whole chunk)
    zeta: np.ndarray     # (h, L) gamma^(L-1-j): decay of token j by the end of the chunk
    kappa: np.ndarray    # (h, L) row factors 1 / sqrt(s_n) with the global count s_n
    s: np.ndarray        # (h, L) float64 global count s_n of every row


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


def chunk_decays(gamma, L: int, s_prev, normalize: bool = True,
                 dtype=None) -> RetentionChunkDecays:
    """The decay factors of a chunk of ``L`` tokens after a state with count ``s_prev``.

    Implements the factors of eqs. (R.4) and (R.8): the chunk's own decay mask ``Gamma``,
    ``xi_j = gamma^(j+1)`` (how much the state carried into the chunk has decayed when row
    ``j`` reads it; ``xi_(L-1) = gamma^L`` is its decay across the whole chunk),
    ``zeta_j = gamma^(L-1-j)`` (how much token ``j`` has decayed when the chunk hands its state
    on), and the row factors ``kappa_j = 1 / sqrt(s_n)`` with the **global** count of row
    ``n = start + j``, ``s_n = gamma^(j+1) s_prev + sum_{i<=j} gamma^i`` (not a count local
    to the chunk). The parallel form, which is one chunk, uses them forward and backward.

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
        Dtype of ``Gamma``, ``xi``, ``zeta`` and ``kappa`` (default: that of ``s_prev``); they
        are computed in float64 and rounded once. ``s`` stays float64.

    Returns
    -------
    RetentionChunkDecays
        ``Gamma`` (h, L, L); ``xi``, ``zeta``, ``kappa``, ``s`` (h, L).
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
    return RetentionChunkDecays(Gamma=Gamma.astype(dtype), xi=xi.astype(dtype),
                                zeta=zeta.astype(dtype), kappa=kappa.astype(dtype), s=s)


# --- the score normaliser, shared by the three backward passes --------------------------------

def score_normaliser_backward(dout: np.ndarray, out: np.ndarray, r: np.ndarray,
                              c: np.ndarray):
    """Backward of the score normaliser: from ``dO`` to ``(dOmega, dr)`` for ``O = Omega / c``.

    Implements eq. (R.9) for ``c = max(|r|, 1)`` (R.5), where ``Omega`` is the output before
    the division and ``r`` the row sum of the scores. ``dOmega = dO / c``. Where ``|r| > 1``,
    ``c = |r|`` depends on ``r``: ``dc = -(dO . O) / c`` and ``dr = dc sign(r)``. Where
    ``|r| < 1``, ``c = 1`` is constant and ``dr = 0``. At ``|r| = 1`` exactly, ``c`` has a
    kink (slope 0 from inside, ``sign(r)`` from outside: +1 at ``r = 1``, -1 at ``r = -1``);
    this takes the inside value ``dr = 0``, one valid subgradient.

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
                       state: RetentionState | None = None, normalize: bool = True):
    """Retention in parallel form: every output at once, like masked attention.

    With ``normalize=False`` implements eq. (R.2), ``O = (Q K^T * Gamma) V``. With
    ``normalize=True`` (default) implements eq. (R.6): queries scaled by ``1/sqrt(d)``, row
    ``n`` of the decay mask multiplied by ``kappa_n = 1/sqrt(s_n)``, and each output row divided
    by ``c_n = max(|r_n|, 1)`` where ``r_n`` is the row sum of the scores. Continuing from a
    ``state`` adds its share ``xi_n kappa_n q'_n S_prev`` to every row (eq. (R.8): the sequence
    is then one chunk of the chunkwise form).

    Cost: O(T^2 (d + dv)) time and O(T^2) memory per head.

    Parameters
    ----------
    q, k : ndarray, shape (B, h, T, d)
    v : ndarray, shape (B, h, T, dv)
    gamma : float or ndarray of shape (h,)
        Decay per head, in ``[0, 1]``.
    state : RetentionState, optional
        State after earlier tokens; ``None`` starts a new sequence.
    normalize : bool, optional

    Returns
    -------
    out : ndarray, shape (B, h, T, dv)
    state : RetentionState
        State after the last token.
    cache : RetentionParallelCache
    """
    q, k, v, gamma, state = check.retention_parallel(q, k, v, gamma, state, normalize)
    B, h, T, d = q.shape
    if state is None:
        state = RetentionState.zeros(B, h, d, v.shape[-1], q.dtype)  # a new sequence
    scale = float(1.0 / np.sqrt(d)) if normalize else 1.0
    q = q * scale                                                    # q' = q / sqrt(d)  (R.5)
    f = chunk_decays(gamma, T, state.s, normalize, q.dtype)          # Gamma (R.1), kappa (R.5)
    R = (q @ np.swapaxes(k, -1, -2)) * (f.Gamma * f.kappa[..., None])    # (R.6)
    Omega = R @ v
    r = R.sum(axis=-1)
    # --- exercise: retention_chunkwise ---
    carried = (f.kappa * f.xi)[..., None]                            # kappa_n gamma^(n+1) (R.8)
    Omega = Omega + carried * (q @ state.S)                          # the carried state's share
    r = r + carried[..., 0] * np.einsum("bhnd,bhd->bhn", q, state.z)
    # --- end ---
    c = np.maximum(np.abs(r), 1.0) if normalize else np.ones_like(r)   # c_n (R.5)
    out = Omega / c[..., None]                                       # (R.6)
    final = retention_final_state(k, v, gamma, state)
    return out, final, RetentionParallelCache(
        q=q, k=k, v=v, Gamma=f.Gamma, kappa=f.kappa, xi=f.xi, zeta=f.zeta, state=state, R=R,
        r=r, c=c, out=out, scale=scale, normalize=bool(normalize))


def retention_parallel_backward(dout: np.ndarray, cache: RetentionParallelCache,
                                dstate: RetentionStateGrad | None = None):
    """Backward of [`retention_parallel`][minirnn.retention.retention_parallel].

    Implements eq. (R.10): through the score normaliser (R.9), then ``Omega = R V`` and
    ``R = (Q' K^T) * Gamma kappa`` like attention without the softmax; then, as in (R.12), the
    carried state's share and the returned state.

    Parameters
    ----------
    dout : ndarray, shape (B, h, T, dv)
    cache : RetentionParallelCache
    dstate : RetentionStateGrad, optional
        Gradient with respect to the returned state (when a later call used it).

    Returns
    -------
    dq, dk : ndarray, shape (B, h, T, d)
    dv : ndarray, shape (B, h, T, dv)
    dstate_prev : RetentionStateGrad
        Gradient with respect to the incoming ``state``.
    """
    dout, dstate = check.retention_parallel_backward(dout, cache, dstate)
    c = cache
    if dstate is None:
        dstate = RetentionStateGrad.zeros_like(c.state)             # no later call used it
    # --- exercise: retention_parallel_backward ---
    if c.normalize:
        dOmega, dr = score_normaliser_backward(dout, c.out, c.r, c.c)   # (R.9)
    else:
        dOmega, dr = dout, np.zeros_like(c.r)
    dv = np.swapaxes(c.R, -1, -2) @ dOmega                           # (R.10)
    dR = dOmega @ np.swapaxes(c.v, -1, -2) + dr[..., None]
    dA = dR * (c.Gamma * c.kappa[..., None])                         # gradient of Q' K^T
    dq = dA @ c.k                                                    # gradient of q'
    dk = np.swapaxes(dA, -1, -2) @ c.q
    # --- end ---
    # the carried state's share of the outputs, and the returned state (R.12)
    dOmega_x = (c.kappa * c.xi)[..., None] * dOmega                  # reaching q'_n S_prev
    dr_x = c.kappa * c.xi * dr                                       # reaching q'_n . z_prev
    dq = dq + dOmega_x @ np.swapaxes(c.state.S, -1, -2) + dr_x[..., None] * c.state.z[:, :, None]
    dk = dk + c.zeta[..., None] * (c.v @ np.swapaxes(dstate.S, -1, -2) + dstate.z[:, :, None])
    dv = dv + c.zeta[..., None] * (c.k @ dstate.S)
    xi_L = c.xi[:, -1]                                               # gamma^T
    dS_prev = xi_L[:, None, None] * dstate.S + np.swapaxes(c.q, -1, -2) @ dOmega_x
    dz_prev = xi_L[:, None] * dstate.z + np.einsum("bhnd,bhn->bhd", c.q, dr_x)
    return dq * c.scale, dk, dv, RetentionStateGrad(S=dS_prev, z=dz_prev)


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
        State after earlier tokens; ``None`` starts a new sequence.
    normalize : bool, optional

    Returns
    -------
    out : ndarray, shape (B, h, T, dv)
    state : RetentionState
        State after the last token.
    cache : RetentionRecurrentCache
    """
    q, k, v, gamma, state = check.retention_recurrent(q, k, v, gamma, state, normalize)
    B, h, T, d = q.shape
    if state is None:
        state = RetentionState.zeros(B, h, d, v.shape[-1], q.dtype)  # a new sequence
    scale = float(1.0 / np.sqrt(d)) if normalize else 1.0
    q = q * scale                                                    # q' = q / sqrt(d)  (R.5)
    S, z, s = state.S, state.z, state.s                              # (B,h,d,dv), (B,h,d), (h,)
    gamma_S = gamma.astype(q.dtype)                                  # gamma in the dtype of S
    S_all = np.empty((B, h, T, d, v.shape[-1]), dtype=q.dtype)
    z_all = np.empty((B, h, T, d), dtype=q.dtype)
    kappa = np.ones((h, T), dtype=q.dtype)
    r = np.empty((B, h, T), dtype=q.dtype)
    Omega = np.empty((B, h, T, v.shape[-1]), dtype=q.dtype)
    # --- exercise: retention_recurrent ---
    for n in range(T):                                               # the recurrence (R.7)
        S = gamma_S[:, None, None] * S + k[:, :, n, :, None] * v[:, :, n, None, :]
        z = gamma_S[:, None] * z + k[:, :, n]
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
    final = RetentionState(S=S, z=z, s=s, position=state.position + T)
    return out, final, RetentionRecurrentCache(
        q=q, k=k, v=v, gamma=gamma, S=S_all, z=z_all, kappa=kappa, r=r, c=c, out=out,
        final=final, scale=scale, normalize=bool(normalize))


def retention_recurrent_backward(dout: np.ndarray, cache: RetentionRecurrentCache,
                                 dstate: RetentionStateGrad | None = None):
    """Backpropagation through time for
    [`retention_recurrent`][minirnn.retention.retention_recurrent].

    Implements eq. (R.11), walking backwards: the gradient reaching ``S_n`` is what output
    ``n`` sends plus ``gamma`` times what reaches ``S_{n+1}`` (the same for ``z``).

    Parameters
    ----------
    dout : ndarray, shape (B, h, T, dv)
    cache : RetentionRecurrentCache
    dstate : RetentionStateGrad, optional
        Gradient with respect to the returned state (when a later call used it).

    Returns
    -------
    dq, dk : ndarray, shape (B, h, T, d)
    dv : ndarray, shape (B, h, T, dv)
    dstate_prev : RetentionStateGrad
        Gradient with respect to the incoming ``state``.
    """
    dout, dstate = check.retention_recurrent_backward(dout, cache, dstate)
    if dstate is None:
        dstate = RetentionStateGrad.zeros_like(cache.final)         # no later call used it
    if cache.normalize:
        dOmega, dr = score_normaliser_backward(dout, cache.out, cache.r, cache.c)   # (R.9)
    else:
        dOmega, dr = dout, np.zeros_like(cache.r)
    q, k, v, kappa = cache.q, cache.k, cache.v, cache.kappa
    gamma_S = cache.gamma.astype(q.dtype)                            # gamma in the dtype of S
    dS, dz = dstate.S, dstate.z                                      # reaching S_T and z_T
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    for n in reversed(range(q.shape[2])):
        dOmega_n = kappa[:, n, None] * dOmega[:, :, n]                   # (B, h, dv)
        dr_n = kappa[:, n] * dr[:, :, n]                                 # (B, h)
        qn = q[:, :, n]
        dS = dS + qn[..., :, None] * dOmega_n[..., None, :]              # total gradient on S_n
        dz = dz + dr_n[..., None] * qn                                   # total gradient on z_n
        dq[:, :, n] = np.einsum("bhe,bhde->bhd", dOmega_n, cache.S[:, :, n]) \
            + dr_n[..., None] * cache.z[:, :, n]
        dk[:, :, n] = np.einsum("bhde,bhe->bhd", dS, v[:, :, n]) + dz
        dv[:, :, n] = np.einsum("bhd,bhde->bhe", k[:, :, n], dS)
        dS = gamma_S[:, None, None] * dS                                 # on to S_{n-1}
        dz = gamma_S[:, None] * dz
    return dq * cache.scale, dk, dv, RetentionStateGrad(S=dS, z=dz)


# --- chunkwise form ---------------------------------------------------------------------------

def retention_final_state(k: np.ndarray, v: np.ndarray, gamma,
                          state: RetentionState | None = None) -> RetentionState:
    """The state after a whole sequence (or chunk), in one closed-form step.

    Implements the state update of eq. (R.4) with the sequence as one chunk of ``L`` tokens:
    ``S = gamma^L S_0 + sum_m gamma^(L-1-m) k_m^T v_m``, the same for ``z`` (with ``k_m``
    alone) and ``s = gamma^L s_0 + sum_m gamma^m``. The parallel form hands it on, so the
    chunkwise form carries its state from chunk to chunk with it; it equals the final state of
    [`retention_recurrent`][minirnn.retention.retention_recurrent].

    Parameters
    ----------
    k : ndarray, shape (B, h, L, d)
    v : ndarray, shape (B, h, L, dv)
    gamma : float or ndarray of shape (h,)
    state : RetentionState, optional
        State before the sequence; ``None`` starts a new one.

    Returns
    -------
    RetentionState
    """
    k, v, gamma, state = check.retention_final_state(k, v, gamma, state)
    B, h, L, d = k.shape
    if state is None:
        state = RetentionState.zeros(B, h, d, v.shape[-1], k.dtype)  # a new sequence
    f = chunk_decays(gamma, L, state.s, dtype=k.dtype)
    # --- exercise: retention_chunkwise ---
    kz = k * f.zeta[..., None]                                       # gamma^(L-1-m) k_m
    gamma_L = (gamma ** L).astype(k.dtype)                           # the old state's decay
    S = gamma_L[:, None, None] * state.S + np.swapaxes(kz, -1, -2) @ v   # (R.4)
    z = gamma_L[:, None] * state.z + kz.sum(axis=2)
    s = gamma ** L * state.s + np.sum(gamma[:, None] ** np.arange(L), axis=1)
    # --- end ---
    return RetentionState(S=S, z=z, s=s, position=state.position + L)


def retention_chunkwise(q: np.ndarray, k: np.ndarray, v: np.ndarray, gamma, chunk_size: int,
                        state: RetentionState | None = None, normalize: bool = True):
    """Retention in chunkwise form: parallel inside each chunk, recurrent across chunks.

    With ``normalize=False`` implements eq. (R.4); with ``normalize=True`` eq. (R.8). Each chunk
    is the parallel form continuing the state the chunk before handed on; every row uses its
    *global* count ``s_n`` (not one local to the chunk), so the result equals the parallel and
    recurrent forms exactly. ``chunk_size`` need not divide ``T``: the last chunk is simply
    shorter (no padding, which would wrongly decay the state).

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
        State after earlier tokens; ``None`` starts a new sequence.
    normalize : bool, optional

    Returns
    -------
    out : ndarray, shape (B, h, T, dv)
    state : RetentionState
    cache : RetentionChunkwiseCache
    """
    q, k, v, gamma, state = check.retention_chunkwise(q, k, v, gamma, chunk_size, state, normalize)
    outs, bounds, chunks = [], [], []
    # --- exercise: retention_chunkwise ---
    for start in range(0, q.shape[2], chunk_size):                   # recurrent across chunks
        stop = min(start + chunk_size, q.shape[2])
        out, state, chunk = retention_parallel(q[:, :, start:stop], k[:, :, start:stop],
                                               v[:, :, start:stop], gamma, state, normalize)
        outs.append(out)                                             # parallel inside  (R.8)
        bounds.append((start, stop))
        chunks.append(chunk)
    # --- end ---
    return np.concatenate(outs, axis=2), state, RetentionChunkwiseCache(bounds=bounds,
                                                                        chunks=chunks)


def retention_chunkwise_backward(dout: np.ndarray, cache: RetentionChunkwiseCache,
                                 dstate: RetentionStateGrad | None = None):
    """Backward of [`retention_chunkwise`][minirnn.retention.retention_chunkwise], chunk by chunk in
    reverse.

    Implements eq. (R.12): the parallel backward (R.10) of each chunk, last chunk first; the
    gradient of the state a chunk received is the gradient of the state the chunk before it
    returned.

    Parameters
    ----------
    dout : ndarray, shape (B, h, T, dv)
    cache : RetentionChunkwiseCache
    dstate : RetentionStateGrad, optional
        Gradient with respect to the returned state.

    Returns
    -------
    dq, dk : ndarray, shape (B, h, T, d)
    dv : ndarray, shape (B, h, T, dv)
    dstate_prev : RetentionStateGrad
    """
    dout, dstate = check.retention_chunkwise_backward(dout, cache, dstate)
    dqs, dks, dvs = [], [], []
    for (start, stop), chunk in reversed(list(zip(cache.bounds, cache.chunks))):
        dq, dk, dv, dstate = retention_parallel_backward(dout[:, :, start:stop], chunk, dstate)
        dqs.append(dq)
        dks.append(dk)
        dvs.append(dv)
    return (np.concatenate(dqs[::-1], axis=2), np.concatenate(dks[::-1], axis=2),
            np.concatenate(dvs[::-1], axis=2), dstate)


def retention_forms(chunk_size: int | None = None) -> dict:
    """The three forms as a table ``{name: (forward, backward)}``, for layers that let the caller
    choose one. Every ``forward(q, k, v, gamma, state=...)`` returns ``(out, state, cache)``;
    every ``backward(dout, cache, dstate)`` returns ``(dq, dk, dv, dstate_prev)``.

    Parameters
    ----------
    chunk_size : int, optional
        Tokens per chunk of the chunkwise form.

    Returns
    -------
    dict
    """
    return {"parallel": (retention_parallel, retention_parallel_backward),
            "recurrent": (retention_recurrent, retention_recurrent_backward),
            "chunkwise": (partial(retention_chunkwise, chunk_size=chunk_size),
                          retention_chunkwise_backward)}
