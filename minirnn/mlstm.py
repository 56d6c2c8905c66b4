"""xLSTM's mLSTM (Beck et al. 2024): the LSTM with a matrix memory, in two forms that agree.

The cell becomes a matrix written with a key and a value, the input gate becomes an exponential,
and the output is read with a query and divided by a normaliser: gated retention (GR.2) with an
input gate that scales each key, and RetNet's ``max(|r|, 1)``. The paper's memory ``C_t`` and
normaliser state ``n_t`` are retention's ``S_t`` and ``z_t`` here; the gates' pre-activations
are ``i_pre`` and ``f_pre`` (a^i and a^f on the page). Equations, as on
``derivations/min-rnn.md`` (unstabilised)::

    i_t = exp(a^i_t),  f_t = sigmoid(a^f_t),  k'_t = k_t / sqrt(d)                    (ML.1)
    S_t = f_t S_{t-1} + i_t k'_t^T v_t,   z_t = f_t z_{t-1} + i_t k'_t                (ML.2)
    r_t = q_t . z_t,   out_t = q_t S_t / max(|r_t|, 1)                                 (ML.3)

Computed with the stabiliser ``mu_t = max(log f_t + mu_{t-1}, a^i_t)``: the states are stored
times ``exp(-mu_t)``, the gates become ``f_mu = exp(log f_t + mu_{t-1} - mu_t) <= 1`` and
``i_mu = exp(a^i_t - mu_t) <= 1``, and the floor 1 becomes ``exp(-mu_t)``::

    S_t = f_mu S_{t-1} + i_mu k'^T v_t,  z_t likewise (both scaled),
    out_t = q_t S_t / max(|q_t . z_t|, exp(-mu_t))                                    (ML.4)

Parallel form, with ``b_t = sum_{j<=t} log f_j`` and the incoming state (S_0, z_0, mu_0)::

    log Gamma[t, s] = b_t - b_s + a^i_s (s <= t),   log xi_t = b_t + mu_0,
    mu_t = max(max_s log Gamma[t, s], log xi_t)   (the same mu_t as the recurrence)   (ML.5)
    R = (Q K'^T) * exp(log Gamma - mu),  r = rowsum(R) + e^(log xi - mu) Q z_0,
    out = (R V + e^(log xi - mu) Q S_0) / max(|r|, exp(-mu))                           (ML.6)

Every ``mu_t`` is a constant to the backward pass: for *any* fixed values the stabilised
functions equal the unstabilised ones (ML.1)-(ML.3), so the outputs do not depend on ``mu``
and its gradient is exactly zero (the page proves it). Backward (ML.7): the normaliser's (R.9)
with the floor ``exp(-mu_t)``, then retention's backward with ``f_mu`` for ``gamma``, and the
gates from ``d log Gamma``.

Shapes: ``q``, ``k`` (B, h, T, d); ``v`` (B, h, T, dv); ``i_pre``, ``f_pre`` (B, h, T).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import mlstm as check
from .minrnn import log_sigmoid
from .states import MLSTMState, MLSTMStateGrad

__all__ = [
    "MLSTMParallelCache",
    "MLSTMRecurrentCache",
    "mlstm_normaliser_backward",
    "mlstm_parallel",
    "mlstm_parallel_backward",
    "mlstm_recurrent",
    "mlstm_recurrent_backward",
]


class MLSTMRecurrentCache(NamedTuple):
    """What [`mlstm_recurrent_backward`][minirnn.mlstm.mlstm_recurrent_backward] needs."""

    q: np.ndarray       # (B, h, T, d)
    k: np.ndarray       # (B, h, T, d) scaled keys k'
    v: np.ndarray       # (B, h, T, dv)
    f_pre: np.ndarray   # (B, h, T)
    f_mu: np.ndarray    # (B, h, T) stabilised forget gates
    i_mu: np.ndarray    # (B, h, T) stabilised input gates
    mu: np.ndarray      # (B, h, T) float64 stabilisers
    S: np.ndarray       # (B, h, T, d, dv) the (scaled) memory after every token
    z: np.ndarray       # (B, h, T, d)
    r: np.ndarray       # (B, h, T)
    c: np.ndarray       # (B, h, T) max(|r|, exp(-mu))
    out: np.ndarray     # (B, h, T, dv)
    state: MLSTMState   # the incoming state
    final: MLSTMState   # the returned state
    scale: float        # 1 / sqrt(d)


class MLSTMParallelCache(NamedTuple):
    """What [`mlstm_parallel_backward`][minirnn.mlstm.mlstm_parallel_backward] needs."""

    q: np.ndarray       # (B, h, T, d)
    k: np.ndarray       # (B, h, T, d) scaled keys k'
    v: np.ndarray       # (B, h, T, dv)
    f_pre: np.ndarray   # (B, h, T)
    Gamma: np.ndarray   # (B, h, T, T) exp(log Gamma - mu): decay times input gate, stabilised
    xi: np.ndarray      # (B, h, T) exp(log xi - mu): the incoming state's weight at each row
    mu: np.ndarray      # (B, h, T) float64
    R: np.ndarray       # (B, h, T, T) scores
    r: np.ndarray       # (B, h, T)
    c: np.ndarray       # (B, h, T)
    out: np.ndarray     # (B, h, T, dv)
    state: MLSTMState
    final: MLSTMState
    scale: float


def mlstm_normaliser_backward(dout: np.ndarray, out: np.ndarray, r: np.ndarray,
                              mu: np.ndarray):
    """Backward of ``out = Omega / c`` with ``c = max(|r|, exp(-mu))``.

    Retention's (R.9) with the floor ``exp(-mu)`` in place of 1: ``dOmega = dout / c``, and
    ``dr = -(dout . out) / c * sign(r)`` where ``|r|`` is above the floor, else 0.

    Parameters
    ----------
    dout, out : ndarray, shape (B, h, T, dv)
    r : ndarray, shape (B, h, T)
    mu : ndarray, shape (B, h, T)
        The stabilisers.

    Returns
    -------
    dOmega : ndarray, shape (B, h, T, dv)
    dr : ndarray, shape (B, h, T)
    """
    dout, out, r, mu = check.mlstm_normaliser_backward(dout, out, r, mu)
    floor = np.exp(-mu).astype(r.dtype)
    c = np.maximum(np.abs(r), floor)
    dc = -np.sum(dout * out, axis=-1) / c
    return dout / c[..., None], np.where(np.abs(r) > floor, dc * np.sign(r), 0.0)


# --- recurrent form -------------------------------------------------------------------------------

def mlstm_recurrent(q: np.ndarray, k: np.ndarray, v: np.ndarray, i_pre: np.ndarray,
                    f_pre: np.ndarray, state: MLSTMState | None = None):
    """The mLSTM one token at a time, stabilised (ML.4).

    Parameters
    ----------
    q, k : ndarray, shape (B, h, T, d)
    v : ndarray, shape (B, h, T, dv)
    i_pre, f_pre : ndarray, shape (B, h, T)
        Input- and forget-gate pre-activations ``a^i`` and ``a^f``.
    state : MLSTMState, optional
        ``None`` starts a new sequence.

    Returns
    -------
    out : ndarray, shape (B, h, T, dv)
    state : MLSTMState
    cache : MLSTMRecurrentCache
    """
    q, k, v, i_pre, f_pre, state = check.mlstm_recurrent(q, k, v, i_pre, f_pre, state)
    B, h, T, d = q.shape
    if state is None:
        state = MLSTMState.zeros(B, h, d, v.shape[-1], q.dtype)
    scale = float(1.0 / np.sqrt(d))
    k = k * scale                                                     # k'          (ML.1)
    log_f = log_sigmoid(f_pre)                                        # float64
    i64 = i_pre.astype(np.float64)
    S, z, mu = state.S, state.z, state.mu
    S_all = np.empty((B, h, T, d, v.shape[-1]), dtype=q.dtype)
    z_all = np.empty((B, h, T, d), dtype=q.dtype)
    f_mu, i_mu, mu_all = (np.empty((B, h, T)) for _ in range(3))
    for t in range(T):                                                # (ML.4)
        mu_new = np.maximum(log_f[..., t] + mu, i64[..., t])
        f_mu[..., t] = np.exp(log_f[..., t] + mu - mu_new)            # <= 1
        i_mu[..., t] = np.exp(i64[..., t] - mu_new)                   # <= 1
        f_t, i_t = f_mu[..., t].astype(q.dtype), i_mu[..., t].astype(q.dtype)
        S = f_t[..., None, None] * S + i_t[..., None, None] * (k[:, :, t, :, None]
                                                               * v[:, :, t, None])
        z = f_t[..., None] * z + i_t[..., None] * k[:, :, t]
        mu = mu_new
        S_all[:, :, t], z_all[:, :, t], mu_all[..., t] = S, z, mu
    Omega = np.einsum("bhtd,bhtde->bhte", q, S_all, optimize=True)
    r = np.einsum("bhtd,bhtd->bht", q, z_all)
    c = np.maximum(np.abs(r), np.exp(-mu_all).astype(q.dtype))       # (ML.4)
    out = Omega / c[..., None]
    final = MLSTMState(S=S, z=z, mu=mu, position=state.position + T)
    return out, final, MLSTMRecurrentCache(
        q=q, k=k, v=v, f_pre=f_pre, f_mu=f_mu.astype(q.dtype), i_mu=i_mu.astype(q.dtype),
        mu=mu_all, S=S_all, z=z_all, r=r, c=c, out=out, state=state, final=final, scale=scale)


def mlstm_recurrent_backward(dout: np.ndarray, cache: MLSTMRecurrentCache,
                             dstate: MLSTMStateGrad | None = None):
    """Backpropagation through time for [`mlstm_recurrent`][minirnn.mlstm.mlstm_recurrent].

    Eq. (ML.7): walking back, the gradient reaching ``S_{t-1}`` is ``f_mu`` times what reaches
    ``S_t`` (the carousel again, now a matrix); the gates get ``d i_mu = k' dS v^T + dz . k'``
    and ``d f_mu = <dS, S_{t-1}> + dz . z_{t-1}``, then ``d a^i = d i_mu i_mu`` and
    ``d a^f = d f_mu f_mu (1 - f)`` (the stabilisers held constant).

    Parameters
    ----------
    dout : ndarray, shape (B, h, T, dv)
    cache : MLSTMRecurrentCache
    dstate : MLSTMStateGrad, optional
        Gradient with respect to the returned state.

    Returns
    -------
    dq, dk : ndarray, shape (B, h, T, d)
    dv : ndarray, shape (B, h, T, dv)
    di_pre, df_pre : ndarray, shape (B, h, T)
    dstate_prev : MLSTMStateGrad
    """
    dout, dstate = check.mlstm_recurrent_backward(dout, cache, dstate)
    c = cache
    dOmega, dr = mlstm_normaliser_backward(dout, c.out, c.r, c.mu)
    dS = np.zeros_like(c.final.S) if dstate is None else dstate.S
    dz = np.zeros_like(c.final.z) if dstate is None else dstate.z
    dq, dk, dv = np.empty_like(c.q), np.empty_like(c.k), np.empty_like(c.v)
    df_mu, di_mu = np.empty_like(c.f_mu), np.empty_like(c.i_mu)
    for t in reversed(range(c.q.shape[2])):
        qt, kt, vt = c.q[:, :, t], c.k[:, :, t], c.v[:, :, t]
        dS = dS + qt[..., :, None] * dOmega[:, :, t, None, :]        # all that reaches S_t
        dz = dz + dr[:, :, t, None] * qt
        dq[:, :, t] = np.einsum("bhe,bhde->bhd", dOmega[:, :, t], c.S[:, :, t]) \
            + dr[:, :, t, None] * c.z[:, :, t]
        dSv = np.einsum("bhde,bhe->bhd", dS, vt)                     # dS v_t^T
        i_t = c.i_mu[:, :, t, None]
        dk[:, :, t] = i_t * (dSv + dz)
        dv[:, :, t] = i_t * np.einsum("bhd,bhde->bhe", kt, dS)
        di_mu[:, :, t] = np.sum(kt * (dSv + dz), axis=-1)
        S_prev = c.S[:, :, t - 1] if t > 0 else c.state.S
        z_prev = c.z[:, :, t - 1] if t > 0 else c.state.z
        df_mu[:, :, t] = np.sum(dS * S_prev, axis=(-2, -1)) + np.sum(dz * z_prev, axis=-1)
        dS = c.f_mu[:, :, t, None, None] * dS                        # on to S_{t-1}
        dz = c.f_mu[:, :, t, None] * dz
    di_pre = di_mu * c.i_mu                                          # i_mu = exp(a^i - mu)
    df_pre = df_mu * c.f_mu * (1.0 - np.exp(log_sigmoid(c.f_pre))).astype(c.f_mu.dtype)
    return dq, dk * c.scale, dv, di_pre, df_pre, MLSTMStateGrad(S=dS, z=dz)


# --- parallel form --------------------------------------------------------------------------------

def mlstm_parallel(q: np.ndarray, k: np.ndarray, v: np.ndarray, i_pre: np.ndarray,
                   f_pre: np.ndarray, state: MLSTMState | None = None):
    """The mLSTM for every token at once (ML.5)-(ML.6), continuing ``state``.

    Parameters, returns: as for [`mlstm_recurrent`][minirnn.mlstm.mlstm_recurrent] (the cache
    is an ``MLSTMParallelCache``). Memory ``B h T^2``.
    """
    q, k, v, i_pre, f_pre, state = check.mlstm_parallel(q, k, v, i_pre, f_pre, state)
    B, h, T, d = q.shape
    if state is None:
        state = MLSTMState.zeros(B, h, d, v.shape[-1], q.dtype)
    scale = float(1.0 / np.sqrt(d))
    k = k * scale
    b = np.cumsum(log_sigmoid(f_pre), axis=-1)                        # b_t, float64
    causal = np.tril(np.ones((T, T), dtype=bool))
    log_Gamma = np.where(causal, b[..., :, None] - b[..., None, :]
                         + i_pre.astype(np.float64)[..., None, :], -np.inf)   # (ML.5)
    log_xi = b + state.mu[..., None]
    mu = np.maximum(log_Gamma.max(axis=-1), log_xi)
    Gamma = np.exp(log_Gamma - mu[..., None]).astype(q.dtype)  # 0 above the diagonal
    xi = np.exp(log_xi - mu).astype(q.dtype)
    R = (q @ np.swapaxes(k, -1, -2)) * Gamma                          # (ML.6)
    r = R.sum(axis=-1) + xi * np.einsum("bhtd,bhd->bht", q, state.z)
    Omega = R @ v + xi[..., None] * (q @ state.S)
    c = np.maximum(np.abs(r), np.exp(-mu).astype(q.dtype))
    out = Omega / c[..., None]
    Gamma_last, xi_last = Gamma[..., -1, :], xi[..., -1]  # the returned state's row
    final = MLSTMState(
        S=np.swapaxes(k * Gamma_last[..., None], -1, -2) @ v + xi_last[..., None, None] * state.S,
        z=np.einsum("bhs,bhsd->bhd", Gamma_last, k) + xi_last[..., None] * state.z,
        mu=mu[..., -1], position=state.position + T)
    return out, final, MLSTMParallelCache(q=q, k=k, v=v, f_pre=f_pre, Gamma=Gamma, xi=xi, mu=mu,
                                          R=R, r=r, c=c, out=out, state=state, final=final,
                                          scale=scale)


def mlstm_parallel_backward(dout: np.ndarray, cache: MLSTMParallelCache,
                            dstate: MLSTMStateGrad | None = None):
    """Backward of [`mlstm_parallel`][minirnn.mlstm.mlstm_parallel] (ML.7).

    Retention's parallel backward with ``Gamma`` as the mask, plus the weights' own gradient
    ``d log Gamma = dR * R``: its column sums are ``d a^i``, and ``db_t`` (row sums minus column
    sums, plus the state's share) summed from ``t`` to the end is ``d log f_t``.

    Parameters, returns: as for
    [`mlstm_recurrent_backward`][minirnn.mlstm.mlstm_recurrent_backward].
    """
    dout, dstate = check.mlstm_parallel_backward(dout, cache, dstate)
    c = cache
    dOmega, dr = mlstm_normaliser_backward(dout, c.out, c.r, c.mu)
    dR = dOmega @ np.swapaxes(c.v, -1, -2) + dr[..., None]            # (B, h, T, T)
    dv = np.swapaxes(c.R, -1, -2) @ dOmega
    dS = dR * c.Gamma
    dq = dS @ c.k + c.xi[..., None] * (dOmega @ np.swapaxes(c.state.S, -1, -2)
                                      + dr[..., None] * c.state.z[:, :, None])
    dk = np.swapaxes(dS, -1, -2) @ c.q
    dlog_Gamma = dR * c.R
    dlog_xi = c.xi * (np.einsum("bhte,bhte->bht", dOmega, c.q @ c.state.S)
                    + dr * np.einsum("bhtd,bhd->bht", c.q, c.state.z))
    dS0 = np.swapaxes(c.q, -1, -2) @ (c.xi[..., None] * dOmega)
    dz0 = np.einsum("bht,bhtd->bhd", c.xi * dr, c.q)
    if dstate is not None:                                            # the returned state
        Gamma_last, xi_last = c.Gamma[..., -1, :], c.xi[..., -1]
        dSv = c.v @ np.swapaxes(dstate.S, -1, -2)                     # (B, h, T, d): dC v_s^T
        dk = dk + Gamma_last[..., None] * (dSv + dstate.z[:, :, None])
        dv = dv + Gamma_last[..., None] * (c.k @ dstate.S)
        dlog_Gamma = dlog_Gamma.copy()
        dlog_Gamma[..., -1, :] += Gamma_last * np.sum(c.k * (dSv + dstate.z[:, :, None]), axis=-1)
        dlog_xi = dlog_xi.copy()
        dlog_xi[..., -1] += xi_last * (np.sum(dstate.S * c.state.S, axis=(-2, -1))
                                     + np.sum(dstate.z * c.state.z, axis=-1))
        dS0 = dS0 + xi_last[..., None, None] * dstate.S
        dz0 = dz0 + xi_last[..., None] * dstate.z
    di_pre = dlog_Gamma.sum(axis=-2)                                      # a^i_s: column sums
    db = dlog_Gamma.sum(axis=-1) - di_pre + dlog_xi  # b_t rows, minus b_s columns
    dlog_f = np.flip(np.cumsum(np.flip(db, -1), axis=-1), -1)         # sum over t >= j
    df_pre = dlog_f * (1.0 - np.exp(log_sigmoid(c.f_pre))).astype(dlog_f.dtype)
    return dq, dk * c.scale, dv, di_pre, df_pre, MLSTMStateGrad(S=dS0, z=dz0)
