"""The delta rule: DeltaNet and gated DeltaNet in three forms, forward and backward.

Retention only ever *adds* to its state and lets it fade. The delta rule first reads what the
state already returns for the new key and writes only the *difference* to the new value: one
step of online gradient descent on ``||k S - v||^2`` with step size ``beta``. Equations as on
``derivations/delta-rule.md``::

    u_t = beta_t (v_t - alpha_t k_t S_{t-1})            the correction to write       (DR.1)
    S_t = alpha_t S_{t-1} + k_t^T u_t
        = alpha_t (I - beta_t k_t^T k_t) S_{t-1} + beta_t k_t^T v_t,   o_t = scale q_t S_t
    alpha_t = exp(g_t) <= 1 (gated DeltaNet; plain DeltaNet: alpha_t = 1)
    parallel (one block, continuing the carried S_{-1}; Gamma^g, xi, zeta as for gated retention):
        M U = diag(beta) (V - diag(xi) K S_{-1}),  M = I + tril(diag(beta) (K K^T * Gamma^g), -1)
        O = scale (diag(xi) Q S_{-1} + (Q K^T * Gamma^g) U),
        S_{T-1} = xi_{T-1} S_{-1} + K^T diag(zeta) U                                          (DR.4)
    chunk transform (UT / WY): T_c = M^{-1} diag(beta),  W = T_c diag(xi) K,  U = T_c V   (DR.6)
    chunkwise: U' = U - W S_prev, then (DR.4)'s output and state with U' per chunk       (DR.7)
    backward: recurrent (DR.8), parallel through a transposed solve (DR.9), chunkwise
              through the transform (DR.10)

Every form takes the state of earlier tokens (``None``: an empty memory) and returns
``(out, state, cache)``; every backward takes the gradient of the returned state and returns
``(dq, dk, dv, dbeta, dlog_decay, dstate_prev)``, with ``dlog_decay`` ``None`` for plain DeltaNet.
The core does not normalise the keys (the layer does): see the page for what ``beta`` and the
key's norm do to the eigenvalues of the transition ``I - beta k^T k``.

Shapes: ``q``, ``k`` (B, h, T, d); ``v`` (B, h, T, dv); ``beta`` and ``log_decay`` (B, h, T); the
state ([`DeltaState`][minirnn.states.DeltaState]) holds ``S`` (B, h, d, dv) and the position.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import delta as check
from .gated import gated_chunk_decays
from .states import DeltaState, DeltaStateGrad

__all__ = [
    "DeltaChunkwiseCache",
    "DeltaOutputGrads",
    "DeltaParallelCache",
    "DeltaRecurrentCache",
    "DeltaTransform",
    "delta_chunk_transform",
    "delta_decays",
    "delta_output_backward",
    "delta_rule_chunkwise",
    "delta_rule_chunkwise_backward",
    "delta_rule_forms",
    "delta_rule_parallel",
    "delta_rule_parallel_backward",
    "delta_rule_recurrent",
    "delta_rule_recurrent_backward",
    "log_decay_gradient",
    "solve_unit_lower",
]


class DeltaRecurrentCache(NamedTuple):
    """What [`delta_rule_recurrent_backward`][minirnn.delta.delta_rule_recurrent_backward]
    needs."""

    q: np.ndarray            # (B, h, T, d)
    k: np.ndarray            # (B, h, T, d)
    v: np.ndarray            # (B, h, T, dv)
    beta: np.ndarray         # (B, h, T) writing strengths
    log_decay: np.ndarray | None   # (B, h, T) log-gates g_t (None: plain DeltaNet)
    S: np.ndarray            # (B, h, T + 1, d, dv) the state before token 0, then after each
    u: np.ndarray            # (B, h, T, dv) the corrections u_t that were written
    final: DeltaState        # the returned state
    scale: float


class DeltaParallelCache(NamedTuple):
    """What [`delta_rule_parallel_backward`][minirnn.delta.delta_rule_parallel_backward] needs."""

    q: np.ndarray            # (B, h, T, d)
    k: np.ndarray            # (B, h, T, d)
    v: np.ndarray            # (B, h, T, dv)
    beta: np.ndarray         # (B, h, T)
    log_decay: np.ndarray | None
    Gamma: np.ndarray        # (B, h, T, T) the segment decay (all ones below the diagonal: plain)
    xi: np.ndarray           # (B, h, T) e^(b_n): the carried state's decay at row n
    zeta: np.ndarray         # (B, h, T) e^(b_{T-1} - b_m): token m's decay by the returned state
    M: np.ndarray            # (B, h, T, T) the unit lower triangular matrix of (DR.4)
    R: np.ndarray            # (B, h, T, T) the decayed scores (Q K^T) * Gamma^g
    U: np.ndarray            # (B, h, T, dv) the corrections, M^{-1} diag(beta) (V - xi K S_{-1})
    state: DeltaState        # the incoming state
    final: DeltaState        # the returned state
    scale: float


class DeltaTransform(NamedTuple):
    """The UT (WY) transform of one chunk, eq. (DR.6); see
    [`delta_chunk_transform`][minirnn.delta.delta_chunk_transform]."""

    T_c: np.ndarray          # (B, h, L, L) M^{-1} diag(beta)
    W: np.ndarray            # (B, h, L, d) T_c diag(xi) K: how the carried state is corrected
    U: np.ndarray            # (B, h, L, dv) T_c V: the corrections if the state were empty
    M: np.ndarray            # (B, h, L, L) the unit lower triangular matrix
    Gamma: np.ndarray        # (B, h, L, L) the chunk's segment decay
    xi: np.ndarray           # (B, h, L)
    zeta: np.ndarray         # (B, h, L)


class DeltaChunkwiseCache(NamedTuple):
    """What [`delta_rule_chunkwise_backward`][minirnn.delta.delta_rule_chunkwise_backward]
    needs: for every chunk its transform and the parallel form's cache of the chunk (with the
    corrections ``U' = U - W S_prev`` as its ``U``)."""

    bounds: list             # [(start, stop), ...] of every chunk
    transforms: list         # the DeltaTransform of every chunk
    chunks: list             # the DeltaParallelCache of every chunk


# --- the pieces ----------------------------------------------------------------------------------

def solve_unit_lower(lower: np.ndarray, rhs: np.ndarray, transpose: bool = False) -> np.ndarray:
    """Solve ``(I + lower) X = rhs`` by forward substitution (``transpose=True``:
    ``(I + lower)^T X = rhs`` by back substitution), for a strictly lower triangular ``lower``.

    Row ``t`` of ``X`` needs only the rows before it, ``X_t = rhs_t - sum_{i<t} lower_{ti} X_i``.
    The matrix is unit lower triangular, so it is always invertible and no division happens; no
    inverse is ever formed. Cost: O(T^2 n).

    Parameters
    ----------
    lower : ndarray, shape (..., T, T)
        Strictly lower triangular (its diagonal and upper part are ignored).
    rhs : ndarray, shape (..., T, n)
    transpose : bool, optional

    Returns
    -------
    X : ndarray, shape (..., T, n)
    """
    lower, rhs = check.solve_unit_lower(lower, rhs, transpose)
    X = np.array(rhs, dtype=np.result_type(lower, rhs))
    T = rhs.shape[-2]
    if not transpose:
        for t in range(1, T):                                        # forward substitution
            X[..., t, :] -= (lower[..., t, None, :t] @ X[..., :t, :])[..., 0, :]
    else:
        for t in reversed(range(T - 1)):                             # back substitution
            X[..., t, :] -= (np.swapaxes(lower[..., t + 1:, t, None], -1, -2)
                             @ X[..., t + 1:, :])[..., 0, :]
    return X


def delta_decays(log_decay: np.ndarray | None, beta: np.ndarray, dtype=None):
    """The decay factors of a block of tokens: ``Gamma^g``, ``xi_n = e^(b_n)`` and
    ``zeta_m = e^(b_{T-1} - b_m)``, as for gated retention (GR.4); plain DeltaNet is gated
    DeltaNet with every log-gate 0 (all factors 1, ``Gamma^g`` the causal mask).

    Parameters
    ----------
    log_decay : ndarray, shape (B, h, T), or None
    beta : ndarray, shape (B, h, T)
        Gives the shape when ``log_decay`` is None.
    dtype : numpy dtype, optional
        Of the returned factors (default: that of ``beta``); computed in float64, rounded once.

    Returns
    -------
    Gamma : ndarray, shape (B, h, T, T)
    xi, zeta : ndarray, shape (B, h, T)
    """
    log_decay, beta = check.delta_decays(log_decay, beta)
    dtype = beta.dtype if dtype is None else dtype
    if log_decay is None:                           # plain: every g_t = 0, so every factor is 1
        T = beta.shape[-1]
        return (np.broadcast_to(np.tril(np.ones((T, T), dtype)), (*beta.shape, T)),
                np.ones(beta.shape, dtype), np.ones(beta.shape, dtype))
    f = gated_chunk_decays(log_decay, np.zeros(beta.shape[:-1]), normalize=False, dtype=dtype)
    return f.Gamma, f.xi, f.zeta


def delta_chunk_transform(k: np.ndarray, v: np.ndarray, beta: np.ndarray,
                          log_decay: np.ndarray | None = None) -> DeltaTransform:
    """The UT transform of one chunk: everything the chunk's tokens decide among themselves.

    Implements eq. (DR.6). The corrections a chunk writes satisfy
    ``M U' = diag(beta) (V - diag(xi) K S_prev)`` with the unit lower triangular
    ``M = I + tril(diag(beta) (K K^T * Gamma^g), -1)`` (DR.4). ``T_c = M^{-1} diag(beta)`` is
    built once by forward substitution on ``diag(beta)``; then ``U = T_c V`` and
    ``W = T_c diag(xi) K`` do not depend on the carried state, and ``U' = U - W S_prev``. Without
    gates, ``I - K^T W`` is the product of the chunk's transitions ``I - beta_i k_i^T k_i``
    (the WY identity, (DR.5)).

    Parameters
    ----------
    k : ndarray, shape (B, h, L, d)
    v : ndarray, shape (B, h, L, dv)
    beta : ndarray, shape (B, h, L)
    log_decay : ndarray, shape (B, h, L), optional
        The chunk's log-gates (``None``: plain DeltaNet).

    Returns
    -------
    DeltaTransform
    """
    k, v, beta, log_decay = check.delta_chunk_transform(k, v, beta, log_decay)
    Gamma, xi, zeta = delta_decays(log_decay, beta, k.dtype)         # (GR.4)
    # --- exercise: delta_chunk_transform ---
    KK = (k @ np.swapaxes(k, -1, -2)) * Gamma                        # K K^T * Gamma^g
    lower = np.tril(beta[..., None] * KK, -1)                        # strictly lower part of M
    T_c = solve_unit_lower(lower, beta[..., None] * np.eye(k.shape[-2], dtype=k.dtype))   # (DR.6)
    W = T_c @ (xi[..., None] * k)
    U = T_c @ v
    # --- end ---
    M = lower + np.eye(k.shape[-2], dtype=k.dtype)
    return DeltaTransform(T_c=T_c, W=W, U=U, M=M, Gamma=Gamma, xi=xi, zeta=zeta)


# --- recurrent form ------------------------------------------------------------------------------

def delta_rule_recurrent(q: np.ndarray, k: np.ndarray, v: np.ndarray, beta: np.ndarray,
                         log_decay: np.ndarray | None = None, state: DeltaState | None = None,
                         scale: float | None = None):
    """The delta rule one token at a time: read, correct, write.

    Implements eq. (DR.1): ``u_t = beta_t (v_t - alpha_t k_t S_{t-1})``, the difference between
    the new value and what the (decayed) memory returns for the key, is written with
    ``S_t = alpha_t S_{t-1} + k_t^T u_t``; ``o_t = scale q_t S_t``. With a unit key and
    ``beta_t = 1`` the memory then returns exactly ``v_t`` for ``k_t``: an overwrite.

    Cost: O(T d dv) time; the state is O(d dv) per head whatever T is.

    Parameters
    ----------
    q, k : ndarray, shape (B, h, T, d)
    v : ndarray, shape (B, h, T, dv)
    beta : ndarray, shape (B, h, T)
        Writing strength, in ``[0, 2]``.
    log_decay : ndarray, shape (B, h, T), optional
        Log-gates ``g_t <= 0`` of gated DeltaNet (``None``: plain DeltaNet, ``alpha_t = 1``).
    state : DeltaState, optional
        The memory after earlier tokens; ``None`` starts empty.
    scale : float, optional
        Output scale (default ``1/sqrt(d)``).

    Returns
    -------
    out : ndarray, shape (B, h, T, dv)
    state : DeltaState
    cache : DeltaRecurrentCache
    """
    q, k, v, beta, log_decay, state, scale = check.delta_rule_recurrent(
        q, k, v, beta, log_decay, state, scale)
    B, h, T, d = q.shape
    if state is None:
        state = DeltaState.zeros(B, h, d, v.shape[-1], q.dtype)     # an empty memory
    scale = float(1.0 / np.sqrt(d)) if scale is None else scale
    alpha = np.ones(beta.shape, q.dtype) if log_decay is None else \
        np.exp(log_decay.astype(np.float64)).astype(q.dtype)         # the gates alpha_t
    S_all = np.empty((B, h, T + 1, d, v.shape[-1]), dtype=q.dtype)
    u = np.empty(v.shape, dtype=q.dtype)
    out = np.empty(v.shape, dtype=q.dtype)
    S = S_all[:, :, 0] = state.S
    # --- exercise: delta_rule_recurrent ---
    for t in range(T):                                               # (DR.1)
        S = alpha[:, :, t, None, None] * S                           # decay the memory
        read = np.einsum("bhd,bhde->bhe", k[:, :, t], S)             # what it returns for k_t
        u[:, :, t] = beta[:, :, t, None] * (v[:, :, t] - read)       # the correction
        S = S + k[:, :, t, :, None] * u[:, :, t, None, :]            # write it
        out[:, :, t] = scale * np.einsum("bhd,bhde->bhe", q[:, :, t], S)
        S_all[:, :, t + 1] = S
    # --- end ---
    final = DeltaState(S=S, position=state.position + T)
    return out, final, DeltaRecurrentCache(q=q, k=k, v=v, beta=beta, log_decay=log_decay,
                                           S=S_all, u=u, final=final, scale=scale)


def delta_rule_recurrent_backward(dout: np.ndarray, cache: DeltaRecurrentCache,
                                  dstate: DeltaStateGrad | None = None):
    """Backpropagation through time for
    [`delta_rule_recurrent`][minirnn.delta.delta_rule_recurrent].

    Implements eq. (DR.8), walking backwards with ``Sbar_t``, all the gradient reaching ``S_t``
    (what output ``t`` sends, plus what comes back from ``S_{t+1}``): ``ubar_t = k_t Sbar_t``,
    ``dv_t = beta_t ubar_t``, ``dbeta_t = ubar_t . (v_t - alpha_t k_t S_{t-1})``,
    ``dk_t = u_t Sbar_t^T - beta_t alpha_t ubar_t S_{t-1}^T``,
    ``dalpha_t = <Sbar_t, S_{t-1}> - beta_t ubar_t . (k_t S_{t-1})`` and
    ``Sbar_{t-1} = alpha_t (Sbar_t - beta_t k_t^T ubar_t)``; ``dg_t = alpha_t dalpha_t``.

    Parameters
    ----------
    dout : ndarray, shape (B, h, T, dv)
    cache : DeltaRecurrentCache
    dstate : DeltaStateGrad, optional
        Gradient with respect to the returned state (when a later call used it).

    Returns
    -------
    dq, dk : ndarray, shape (B, h, T, d)
    dv : ndarray, shape (B, h, T, dv)
    dbeta : ndarray, shape (B, h, T)
    dlog_decay : ndarray, shape (B, h, T), or None for plain DeltaNet
    dstate_prev : DeltaStateGrad
    """
    dout, dstate = check.delta_rule_recurrent_backward(dout, cache, dstate)
    c = cache
    alpha = np.ones(c.beta.shape, c.q.dtype) if c.log_decay is None else \
        np.exp(c.log_decay.astype(np.float64)).astype(c.q.dtype)
    Sbar = np.zeros_like(c.final.S) if dstate is None else dstate.S  # reaching S_{T-1}
    dq, dk, dv = np.empty_like(c.q), np.empty_like(c.k), np.empty_like(c.v)
    dbeta, dalpha = np.empty_like(c.beta), np.empty_like(c.beta)
    for t in reversed(range(c.q.shape[2])):                          # (DR.8)
        S_prev, S_t = c.S[:, :, t], c.S[:, :, t + 1]
        a_t, b_t, k_t = alpha[:, :, t], c.beta[:, :, t], c.k[:, :, t]
        Sbar = Sbar + c.scale * c.q[:, :, t, :, None] * dout[:, :, t, None, :]   # output t
        dq[:, :, t] = c.scale * np.einsum("bhe,bhde->bhd", dout[:, :, t], S_t)
        ubar = np.einsum("bhd,bhde->bhe", k_t, Sbar)                 # gradient of u_t
        kS = np.einsum("bhd,bhde->bhe", k_t, S_prev)                 # k_t S_{t-1}
        dv[:, :, t] = b_t[..., None] * ubar
        dbeta[:, :, t] = np.sum(ubar * (c.v[:, :, t] - a_t[..., None] * kS), axis=-1)
        dk[:, :, t] = np.einsum("bhe,bhde->bhd", c.u[:, :, t], Sbar) \
            - (b_t * a_t)[..., None] * np.einsum("bhe,bhde->bhd", ubar, S_prev)
        dalpha[:, :, t] = np.sum(Sbar * S_prev, axis=(-2, -1)) - b_t * np.sum(ubar * kS, axis=-1)
        Sbar = a_t[..., None, None] * (Sbar - b_t[..., None, None]
                                       * k_t[..., :, None] * ubar[..., None, :])
    dlog_decay = None if c.log_decay is None else (alpha * dalpha).astype(c.q.dtype)
    return dq, dk, dv, dbeta, dlog_decay, DeltaStateGrad(S=Sbar)


# --- parallel form -------------------------------------------------------------------------------

def delta_rule_parallel(q: np.ndarray, k: np.ndarray, v: np.ndarray, beta: np.ndarray,
                        log_decay: np.ndarray | None = None, state: DeltaState | None = None,
                        scale: float | None = None):
    """The delta rule for every token at once: a triangular system, then a masked product.

    Implements eq. (DR.4). Unrolling (DR.1) shows that each correction depends on the earlier
    ones,
    ``u_t + beta_t sum_{i<t} e^(b_t - b_i) (k_t . k_i) u_i = beta_t (v_t - e^(b_t) k_t S_{-1})``:
    a unit lower triangular system ``M U = diag(beta) (V - diag(xi) K S_{-1})``, solved by forward
    substitution ([`solve_unit_lower`][minirnn.delta.solve_unit_lower], never an inverse). Then
    ``O = scale (diag(xi) Q S_{-1} + R U)`` with the decayed scores ``R = (Q K^T) * Gamma^g``, like
    gated retention with the corrections ``U`` in place of the values.

    Cost: O(T^2 (d + dv)) time and O(T^2) memory per head.

    Parameters
    ----------
    q, k : ndarray, shape (B, h, T, d)
    v : ndarray, shape (B, h, T, dv)
    beta : ndarray, shape (B, h, T)
    log_decay : ndarray, shape (B, h, T), optional
    state : DeltaState, optional
    scale : float, optional

    Returns
    -------
    out : ndarray, shape (B, h, T, dv)
    state : DeltaState
    cache : DeltaParallelCache
    """
    q, k, v, beta, log_decay, state, scale = check.delta_rule_parallel(
        q, k, v, beta, log_decay, state, scale)
    B, h, T, d = q.shape
    if state is None:
        state = DeltaState.zeros(B, h, d, v.shape[-1], q.dtype)     # an empty memory
    scale = float(1.0 / np.sqrt(d)) if scale is None else scale
    Gamma, xi, zeta = delta_decays(log_decay, beta, q.dtype)         # (GR.4)
    KK = (k @ np.swapaxes(k, -1, -2)) * Gamma                        # K K^T * Gamma^g
    lower = np.tril(beta[..., None] * KK, -1)                        # M = I + lower   (DR.4)
    rhs = beta[..., None] * (v - xi[..., None] * (k @ state.S))      # diag(beta)(V - xi K S_{-1})
    U = solve_unit_lower(lower, rhs)                                     # the corrections
    R = np.tril(q @ np.swapaxes(k, -1, -2)) * Gamma                  # (Q K^T) * Gamma^g
    out = scale * (xi[..., None] * (q @ state.S) + R @ U)            # (DR.4)
    S = xi[..., -1, None, None] * state.S + np.swapaxes(k, -1, -2) @ (zeta[..., None] * U)
    final = DeltaState(S=S, position=state.position + T)
    M = lower + np.eye(T, dtype=q.dtype)
    return out, final, DeltaParallelCache(q=q, k=k, v=v, beta=beta, log_decay=log_decay,
                                          Gamma=Gamma, xi=xi, zeta=zeta, M=M, R=R, U=U,
                                          state=state, final=final, scale=scale)


def delta_rule_parallel_backward(dout: np.ndarray, cache: DeltaParallelCache,
                                 dstate: DeltaStateGrad | None = None):
    """Backward of [`delta_rule_parallel`][minirnn.delta.delta_rule_parallel], through the
    triangular system with a transposed solve.

    Implements eq. (DR.9): first everything downstream of the corrections
    ([`delta_output_backward`][minirnn.delta.delta_output_backward]), which gives ``dU``; then
    ``drhs = M^{-T} dU`` by back substitution (no inverse), ``dM = -tril(drhs U^T, -1)`` and
    ``drhs``, the gradient of the right-hand side ``diag(beta) (V - diag(xi) K S_{-1})``; from there
    to ``v``, ``beta``, ``k``, the incoming state and, for gated DeltaNet, the log-gates
    ([`log_decay_gradient`][minirnn.delta.log_decay_gradient]).

    Parameters
    ----------
    dout : ndarray, shape (B, h, T, dv)
    cache : DeltaParallelCache
    dstate : DeltaStateGrad, optional
        Gradient with respect to the returned state (when a later call used it).

    Returns
    -------
    dq, dk : ndarray, shape (B, h, T, d)
    dv : ndarray, shape (B, h, T, dv)
    dbeta : ndarray, shape (B, h, T)
    dlog_decay : ndarray, shape (B, h, T), or None for plain DeltaNet
    dstate_prev : DeltaStateGrad
    """
    dout, dstate = check.delta_rule_parallel_backward(dout, cache, dstate)
    c = cache
    o = delta_output_backward(dout, c, dstate)                       # (DR.9), downstream of U
    T = c.M.shape[-1]
    drhs = solve_unit_lower(c.M - np.eye(T, dtype=c.M.dtype), o.dU, transpose=True)  # M^{-T} dU
    dM = -np.tril(drhs @ np.swapaxes(c.U, -1, -2), -1)
    KK = c.k @ np.swapaxes(c.k, -1, -2)
    KS = c.k @ c.state.S
    dv = c.beta[..., None] * drhs                                     # rhs = beta (V - xi K S_{-1})
    dbeta = np.sum(drhs * (c.v - c.xi[..., None] * KS), axis=-1) \
        + np.sum(dM * KK * c.Gamma, axis=-1)                         # and M = I + tril(beta ..)
    dxiKS = -c.beta[..., None] * drhs                                # of diag(xi) K S_{-1}
    E = dM * c.beta[..., None] * c.Gamma                             # gradient of K K^T
    dk = o.dk + c.xi[..., None] * (dxiKS @ np.swapaxes(c.state.S, -1, -2)) \
        + (E + np.swapaxes(E, -1, -2)) @ c.k
    dS_prev = o.dS_prev + np.swapaxes(c.k, -1, -2) @ (c.xi[..., None] * dxiKS)
    dlog_decay = None if c.log_decay is None else log_decay_gradient(
        c.Gamma, c.xi, c.zeta, o.dGamma + dM * c.beta[..., None] * KK,
        o.dxi + np.sum(dxiKS * KS, axis=-1), o.dzeta, o.dxi_last, c.q.dtype)
    return o.dq, dk, dv, dbeta, dlog_decay, DeltaStateGrad(S=dS_prev)


class DeltaOutputGrads(NamedTuple):
    """What [`delta_output_backward`][minirnn.delta.delta_output_backward] returns."""

    dq: np.ndarray           # (B, h, T, d)
    dk: np.ndarray           # (B, h, T, d) through the scores and the returned state
    dU: np.ndarray           # (B, h, T, dv) gradient of the corrections
    dS_prev: np.ndarray      # (B, h, d, dv) through the output and the returned state
    # the decay factors' gradients, for gated DeltaNet only (None for plain DeltaNet: no gate)
    dxi: np.ndarray | None        # (B, h, T)
    dzeta: np.ndarray | None      # (B, h, T)
    dGamma: np.ndarray | None     # (B, h, T, T)
    dxi_last: np.ndarray | None   # (B, h) of xi_{T-1} as it decays the state carried through


def delta_output_backward(dout: np.ndarray, cache: DeltaParallelCache,
                          dstate: DeltaStateGrad | None = None) -> DeltaOutputGrads:
    """The backward of a block's output and returned state, given its corrections ``U``: the
    part that the parallel and the chunkwise backward share.

    Implements the first lines of eq. (DR.9), for ``O = scale (diag(xi) Q S_{-1} + R U)`` with
    ``R = (Q K^T) * Gamma^g`` and ``S_{T-1} = xi_{T-1} S_{-1} + K^T diag(zeta) U``: with
    ``dO' = scale dO``, ``dR = tril(dO' U^T)``, ``dU = R^T dO' + zeta (K dS_{T-1})``,
    ``dq = (dR * Gamma) K + xi dO' S_{-1}^T``, ``dk = (dR * Gamma)^T Q + zeta U dS_{T-1}^T``,
    ``dS_{-1} = Q^T diag(xi) dO' + xi_{T-1} dS_{T-1}``, and, for gated DeltaNet, the decay
    factors' gradients (plain DeltaNet has no gate to send them to: they are None).

    Parameters
    ----------
    dout : ndarray, shape (B, h, T, dv)
    cache : DeltaParallelCache
        The block's cache (the parallel form's, or one chunk's).
    dstate : DeltaStateGrad, optional
        Gradient with respect to the block's returned state.

    Returns
    -------
    DeltaOutputGrads
    """
    dout, dstate = check.delta_output_backward(dout, cache, dstate)
    c = cache
    dS_T = np.zeros_like(c.final.S) if dstate is None else dstate.S
    dO = c.scale * dout
    dR = np.tril(dO @ np.swapaxes(c.U, -1, -2))                      # R is lower triangular
    dRG = dR * c.Gamma
    KdS = c.k @ dS_T
    grads = DeltaOutputGrads(
        dq=dRG @ c.k + c.xi[..., None] * (dO @ np.swapaxes(c.state.S, -1, -2)),
        dk=np.swapaxes(dRG, -1, -2) @ c.q + c.zeta[..., None] * (c.U @ np.swapaxes(dS_T, -1, -2)),
        dU=np.swapaxes(c.R, -1, -2) @ dO + c.zeta[..., None] * KdS,
        dS_prev=np.swapaxes(c.q, -1, -2) @ (c.xi[..., None] * dO)
        + c.xi[..., -1, None, None] * dS_T,
        dxi=None, dzeta=None, dGamma=None, dxi_last=None)
    if c.log_decay is None:                    # plain DeltaNet: no gate, so no decay gradients
        return grads
    return grads._replace(
        dxi=np.sum(dO * (c.q @ c.state.S), axis=-1),
        dzeta=np.sum(KdS * c.U, axis=-1),
        dGamma=dR * (c.q @ np.swapaxes(c.k, -1, -2)),
        dxi_last=np.sum(dS_T * c.state.S, axis=(-2, -1)))


def log_decay_gradient(Gamma: np.ndarray, xi: np.ndarray, zeta: np.ndarray, dGamma: np.ndarray,
                       dxi: np.ndarray, dzeta: np.ndarray, dxi_last: np.ndarray,
                       dtype=None) -> np.ndarray:
    """From a block's decay factors and their gradients to its log-gates (last line of (DR.9)).

    ``Gamma^g[n, m] = e^(b_n - b_m)`` moves with ``b_n`` and against ``b_m``, ``xi_n = e^(b_n)``
    with ``b_n``, ``zeta_m = e^(b_{T-1} - b_m)`` with ``b_{T-1}`` and against ``b_m``:
    ``db_n = sum_m (dGamma * Gamma)_{nm} - sum_m (dGamma * Gamma)_{mn} + dxi_n xi_n
    - dzeta_n zeta_n``, plus ``sum_m dzeta_m zeta_m + dxi_last xi_{T-1}`` at ``n = T - 1``;
    then ``dg_t = sum_{n >= t} db_n``, since ``g_t`` is in every ``b_n`` with ``n >= t``.

    The factors are the forward's own ([`delta_decays`][minirnn.delta.delta_decays]): each
    derivative ``d e^x / dx = e^x`` is the factor itself, so nothing is computed again.

    Parameters
    ----------
    Gamma : ndarray, shape (B, h, T, T)
        The block's segment decay ``Gamma^g``.
    xi, zeta : ndarray, shape (B, h, T)
        Its factors ``xi_n = e^(b_n)`` and ``zeta_m = e^(b_{T-1} - b_m)``.
    dGamma : ndarray, shape (B, h, T, T)
    dxi, dzeta : ndarray, shape (B, h, T)
    dxi_last : ndarray, shape (B, h)
        Gradient of ``xi_{T-1}`` where it decays the carried state into the returned one.
    dtype : numpy dtype, optional
        Of the result (default: that of ``dGamma``).

    Returns
    -------
    dlog_decay : ndarray, shape (B, h, T)
    """
    Gamma, xi, zeta, dGamma, dxi, dzeta, dxi_last = check.log_decay_gradient(
        Gamma, xi, zeta, dGamma, dxi, dzeta, dxi_last)
    dGG = dGamma.astype(np.float64) * Gamma                          # sums in float64
    db = dGG.sum(axis=-1) - dGG.sum(axis=-2) + dxi * xi - dzeta * zeta
    db[..., -1] += np.sum(dzeta * zeta, axis=-1) + dxi_last * xi[..., -1]
    dg = np.cumsum(db[..., ::-1], axis=-1)[..., ::-1]                # g_t moves b_n, n >= t
    return dg.astype(dGamma.dtype if dtype is None else dtype)


# --- chunkwise form ------------------------------------------------------------------------------

def delta_rule_chunkwise(q: np.ndarray, k: np.ndarray, v: np.ndarray, beta: np.ndarray,
                         chunk_size: int, log_decay: np.ndarray | None = None,
                         state: DeltaState | None = None, scale: float | None = None):
    """The delta rule chunk by chunk: a UT transform inside each chunk, the state across.

    Implements eq. (DR.7). For every chunk,
    [`delta_chunk_transform`][minirnn.delta.delta_chunk_transform] gives ``T_c``, ``W`` and
    ``U`` from the chunk's own tokens; the corrections are ``U' = U - W S_prev`` (what the
    carried memory already returns is subtracted), the outputs
    ``O = scale (diag(xi) Q S_prev + (Q K^T * Gamma) U')`` and the state handed on
    ``S_next = xi_{L-1} S_prev + K^T diag(zeta) U'``, exactly the parallel form (DR.4) of the
    chunk with the system already solved. The transforms do not depend on the carried state, so
    they are made first, for all chunks together; only the state walks from chunk to chunk. Any
    ``chunk_size``: the last chunk is simply shorter.

    Cost: O(T C (d + dv) + T d dv) time for chunk size C (plus O(T C^2) for the transforms).

    Parameters
    ----------
    q, k : ndarray, shape (B, h, T, d)
    v : ndarray, shape (B, h, T, dv)
    beta : ndarray, shape (B, h, T)
    chunk_size : int
        Tokens per chunk, at least 1.
    log_decay : ndarray, shape (B, h, T), optional
    state : DeltaState, optional
    scale : float, optional

    Returns
    -------
    out : ndarray, shape (B, h, T, dv)
    state : DeltaState
    cache : DeltaChunkwiseCache
    """
    q, k, v, beta, log_decay, state, scale = check.delta_rule_chunkwise(
        q, k, v, beta, chunk_size, log_decay, state, scale)
    B, h, T, d = q.shape
    if state is None:
        state = DeltaState.zeros(B, h, d, v.shape[-1], q.dtype)     # an empty memory
    scale = float(1.0 / np.sqrt(d)) if scale is None else scale
    bounds = [(start, min(start + chunk_size, T)) for start in range(0, T, chunk_size)]
    transforms = _per_chunk(delta_chunk_transform, [                 # inside the chunks (DR.6)
        (k[:, :, a:b], v[:, :, a:b], beta[:, :, a:b],
         None if log_decay is None else log_decay[:, :, a:b]) for a, b in bounds])
    outs, chunks = [], []
    for (start, stop), f in zip(bounds, transforms):                 # across chunks
        rows = slice(start, stop)
        qc, kc, vc, bc = q[:, :, rows], k[:, :, rows], v[:, :, rows], beta[:, :, rows]
        gc = None if log_decay is None else log_decay[:, :, rows]
        U = f.U - f.W @ state.S                                      # U' = U - W S_prev
        R = np.tril(qc @ np.swapaxes(kc, -1, -2)) * f.Gamma
        outs.append(scale * (f.xi[..., None] * (qc @ state.S) + R @ U))            # (DR.7)
        S = f.xi[..., -1, None, None] * state.S + np.swapaxes(kc, -1, -2) @ (f.zeta[..., None] * U)
        final = DeltaState(S=S, position=state.position + qc.shape[2])
        chunks.append(DeltaParallelCache(q=qc, k=kc, v=vc, beta=bc, log_decay=gc, Gamma=f.Gamma,
                                         xi=f.xi, zeta=f.zeta, M=f.M, R=R, U=U, state=state,
                                         final=final, scale=scale))
        state = final                                                # handed on
    return np.concatenate(outs, axis=2), state, DeltaChunkwiseCache(
        bounds=bounds, transforms=transforms, chunks=chunks)


def delta_rule_chunkwise_backward(dout: np.ndarray, cache: DeltaChunkwiseCache,
                                  dstate: DeltaStateGrad | None = None):
    """Backward of [`delta_rule_chunkwise`][minirnn.delta.delta_rule_chunkwise], chunk by chunk in
    reverse, through each chunk's transform.

    Implements eq. (DR.10). Inside a chunk,
    [`delta_output_backward`][minirnn.delta.delta_output_backward] gives ``dU'`` and the
    gradients downstream of it; ``U' = U - W S_prev`` sends ``dU'`` to
    ``U`` and ``dW = -dU' S_prev^T`` to ``W``; ``U = T_c V`` and ``W = T_c diag(xi) K`` are matrix
    products, and ``T_c = M^{-1} diag(beta)`` gives, with ``drhs = M^{-T} dT_c`` (back
    substitution), ``dbeta = diag(drhs)`` and ``dM = -tril(drhs T_c^T, -1)``. Across chunks the
    gradient of the carried state walks back, each chunk handing the chunk before it the
    gradient of the state it received; the transposed solves do not feed that walk, so they run
    after it, for all chunks together.

    Parameters
    ----------
    dout : ndarray, shape (B, h, T, dv)
    cache : DeltaChunkwiseCache
    dstate : DeltaStateGrad, optional

    Returns
    -------
    dq, dk : ndarray, shape (B, h, T, d)
    dv : ndarray, shape (B, h, T, dv)
    dbeta : ndarray, shape (B, h, T)
    dlog_decay : ndarray, shape (B, h, T), or None for plain DeltaNet
    dstate_prev : DeltaStateGrad
    """
    dout, dstate = check.delta_rule_chunkwise_backward(dout, cache, dstate)
    walk = list(zip(cache.bounds, cache.transforms, cache.chunks))
    back = [None] * len(walk)
    for i, ((start, stop), f, c) in reversed(list(enumerate(walk))):   # the state, walking back
        o = delta_output_backward(dout[:, :, start:stop], c, dstate)   # downstream of U'
        dW = -o.dU @ np.swapaxes(c.state.S, -1, -2)                  # U' = U - W S_prev
        dT = o.dU @ np.swapaxes(c.v, -1, -2) + dW @ np.swapaxes(f.xi[..., None] * c.k, -1, -2)
        back[i] = (o, dW, dT)                                        # U = T V, W = T xi K
        dstate = DeltaStateGrad(S=o.dS_prev - np.swapaxes(f.W, -1, -2) @ o.dU)
    drhs_all = _per_chunk(lambda M, dT: solve_unit_lower(M - np.eye(M.shape[-1], dtype=M.dtype),
                                                          dT, transpose=True),
                          [(f.M, dT) for (_, f, _), (_, _, dT) in zip(walk, back)])  # M^{-T} dT
    parts = []
    for (_, f, c), (o, dW, _), drhs in zip(walk, back, drhs_all):   # each chunk's transform
        dxk = np.swapaxes(f.T_c, -1, -2) @ dW                        # (DR.10)
        dM = -np.tril(drhs @ np.swapaxes(f.T_c, -1, -2), -1)
        KK = c.k @ np.swapaxes(c.k, -1, -2)
        E = dM * c.beta[..., None] * f.Gamma                         # gradient of K K^T
        dk = o.dk + f.xi[..., None] * dxk + (E + np.swapaxes(E, -1, -2)) @ c.k
        dbeta = np.diagonal(drhs, axis1=-2, axis2=-1) + np.sum(dM * KK * f.Gamma, axis=-1)
        dlog = None if c.log_decay is None else log_decay_gradient(
            f.Gamma, f.xi, f.zeta, o.dGamma + dM * c.beta[..., None] * KK,
            o.dxi + np.sum(dxk * c.k, axis=-1), o.dzeta, o.dxi_last, c.q.dtype)
        parts.append((o.dq, dk, np.swapaxes(f.T_c, -1, -2) @ o.dU, dbeta, dlog))
    dq, dk, dv, dbeta, dlog_decay = (
        None if pieces[0] is None else np.concatenate(pieces, axis=2)
        for pieces in zip(*parts))
    return dq, dk, dv, dbeta, dlog_decay, dstate


def _per_chunk(fn, chunk_args: list) -> list:
    """``fn(*args)`` for every chunk's ``args``, with one call for all the chunks of one length.

    The chunks' own work (the UT transform and the transposed solve of its backward) does not
    depend on the carried state, so the chunks of equal length are stacked along the batch axis
    (B -> n B) and go through one forward substitution together: its row loop runs once for
    all of them instead of once per chunk. The math of every chunk is unchanged. ``fn`` returns
    an array or a NamedTuple of arrays with the batch axis first; ``None`` arguments stay None.
    """
    results = [None] * len(chunk_args)
    lengths = [args[0].shape[2] for args in chunk_args]
    for L in dict.fromkeys(lengths):
        idx = [i for i, n in enumerate(lengths) if n == L]
        out = fn(*(None if chunk_args[idx[0]][j] is None else
                   np.concatenate([chunk_args[i][j] for i in idx])
                   for j in range(len(chunk_args[idx[0]]))))
        B = chunk_args[idx[0]][0].shape[0]
        for n, i in enumerate(idx):
            part = slice(n * B, (n + 1) * B)
            results[i] = out[part] if isinstance(out, np.ndarray) else \
                out._make(a[part] for a in out)
    return results


def delta_rule_forms(chunk_size: int | None = None) -> dict:
    """The three forms as a table ``{name: (forward, backward)}``, as
    [`retention_forms`][minirnn.retention.retention_forms]: every
    ``forward(q, k, v, beta, log_decay=..., state=...)`` returns ``(out, state, cache)``, every
    ``backward(dout, cache, dstate)`` returns ``(dq, dk, dv, dbeta, dlog_decay, dstate_prev)``.

    Parameters
    ----------
    chunk_size : int, optional
        Tokens per chunk of the chunkwise form.

    Returns
    -------
    dict
    """
    def chunkwise(q, k, v, beta, log_decay=None, state=None, scale=None):
        # chunk_size comes before log_decay in delta_rule_chunkwise's signature, so a partial
        # would not take the other forms' positional arguments
        return delta_rule_chunkwise(q, k, v, beta, chunk_size, log_decay, state, scale)

    return {"parallel": (delta_rule_parallel, delta_rule_parallel_backward),
            "recurrent": (delta_rule_recurrent, delta_rule_recurrent_backward),
            "chunkwise": (chunkwise, delta_rule_chunkwise_backward)}
