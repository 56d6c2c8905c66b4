"""xLSTM's mLSTM (Beck et al. 2024): the LSTM with a matrix memory, in two forms that agree.

The cell ``c`` becomes a matrix ``C`` written with a key and a value, the input gate becomes an
exponential, and the output is read with a query and divided by a normaliser: gated retention
(GR.2) with an input gate that scales each key, and RetNet's ``max(|r|, 1)``. Equations, as on
``derivations/min-rnn.md`` (unstabilised)::

    i_t = exp(i~_t),  f_t = sigmoid(f~_t),  k'_t = k_t / sqrt(d)                       (ML.1)
    C_t = f_t C_{t-1} + i_t k'_t^T v_t,   n_t = f_t n_{t-1} + i_t k'_t                 (ML.2)
    r_t = q_t . n_t,   out_t = q_t C_t / max(|r_t|, 1)                                  (ML.3)

Computed with the stabiliser ``m_t = max(log f_t + m_{t-1}, i~_t)``: the states are stored
times ``exp(-m_t)``, the gates become ``f'_t = exp(log f_t + m_{t-1} - m_t) <= 1`` and
``i'_t = exp(i~_t - m_t) <= 1``, and the floor 1 becomes ``exp(-m_t)``::

    C~_t = f'_t C~_{t-1} + i'_t k'^T v_t,  n~_t likewise,
    out_t = q_t C~_t / max(|q_t . n~_t|, exp(-m_t))                                    (ML.4)

Parallel form, with ``F_t = sum_{j<=t} log f_j`` and the incoming state (C~_0, n~_0, m_0)::

    log W[t, s] = F_t - F_s + i~_s (s <= t),   log w_t = F_t + m_0,
    m_t = max(max_s log W[t, s], log w_t)      (the same m_t as the recurrence)        (ML.5)
    R = (Q K'^T) * exp(log W - m),  r = rowsum(R) + e^(log w - m) Q n~_0,
    out = (R V + e^(log w - m) Q C~_0) / max(|r|, exp(-m))                              (ML.6)

Every ``m_t`` is a constant to the backward pass: for *any* fixed values the stabilised
functions equal the unstabilised ones (ML.1)-(ML.3), so the outputs do not depend on ``m`` and
its gradient is exactly zero (the page proves it). Backward (ML.7): the normaliser's (R.9) with
the floor ``exp(-m_t)``, then retention's backward with ``f'`` for ``gamma``, and the gates from
``d log W``.

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
    a: np.ndarray       # (B, h, T) stabilised forget gates f'
    b: np.ndarray       # (B, h, T) stabilised input gates i'
    m: np.ndarray       # (B, h, T) float64 stabilisers
    C: np.ndarray       # (B, h, T, d, dv) C~ after every token
    n: np.ndarray       # (B, h, T, d)
    r: np.ndarray       # (B, h, T)
    c: np.ndarray       # (B, h, T) max(|r|, exp(-m))
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
    W: np.ndarray       # (B, h, T, T) exp(log W - m): the stabilised decay-and-input weights
    w: np.ndarray       # (B, h, T) exp(log w - m): the incoming state's weight at each row
    m: np.ndarray       # (B, h, T) float64
    R: np.ndarray       # (B, h, T, T) scores
    r: np.ndarray       # (B, h, T)
    c: np.ndarray       # (B, h, T)
    out: np.ndarray     # (B, h, T, dv)
    state: MLSTMState
    final: MLSTMState
    scale: float


def mlstm_normaliser_backward(dout: np.ndarray, out: np.ndarray, r: np.ndarray,
                              m: np.ndarray):
    """Backward of ``out = Omega / c`` with ``c = max(|r|, exp(-m))``.

    Retention's (R.9) with the floor ``exp(-m)`` in place of 1: ``dOmega = dout / c``, and
    ``dr = -(dout . out) / c * sign(r)`` where ``|r|`` is above the floor, else 0.

    Parameters
    ----------
    dout, out : ndarray, shape (B, h, T, dv)
    r : ndarray, shape (B, h, T)
    m : ndarray, shape (B, h, T)
        The stabilisers.

    Returns
    -------
    dOmega : ndarray, shape (B, h, T, dv)
    dr : ndarray, shape (B, h, T)
    """
    dout, out, r, m = check.mlstm_normaliser_backward(dout, out, r, m)
    floor = np.exp(-m).astype(r.dtype)
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
        Input- and forget-gate pre-activations ``i~`` and ``f~``.
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
    C, n, m = state.C, state.n, state.m
    C_all = np.empty((B, h, T, d, v.shape[-1]), dtype=q.dtype)
    n_all = np.empty((B, h, T, d), dtype=q.dtype)
    a, b, m_all = (np.empty((B, h, T)) for _ in range(3))
    for t in range(T):                                                # (ML.4)
        m_new = np.maximum(log_f[..., t] + m, i64[..., t])
        a[..., t] = np.exp(log_f[..., t] + m - m_new)                 # f' <= 1
        b[..., t] = np.exp(i64[..., t] - m_new)                       # i' <= 1
        at, bt = a[..., t].astype(q.dtype), b[..., t].astype(q.dtype)
        C = at[..., None, None] * C + bt[..., None, None] * k[:, :, t, :, None] * v[:, :, t, None]
        n = at[..., None] * n + bt[..., None] * k[:, :, t]
        m = m_new
        C_all[:, :, t], n_all[:, :, t], m_all[..., t] = C, n, m
    Omega = np.einsum("bhtd,bhtde->bhte", q, C_all, optimize=True)
    r = np.einsum("bhtd,bhtd->bht", q, n_all)
    c = np.maximum(np.abs(r), np.exp(-m_all).astype(q.dtype))         # (ML.3) scaled
    out = Omega / c[..., None]
    final = MLSTMState(C=C, n=n, m=m, position=state.position + T)
    return out, final, MLSTMRecurrentCache(
        q=q, k=k, v=v, f_pre=f_pre, a=a.astype(q.dtype), b=b.astype(q.dtype), m=m_all,
        C=C_all, n=n_all, r=r, c=c, out=out, state=state, final=final, scale=scale)


def mlstm_recurrent_backward(dout: np.ndarray, cache: MLSTMRecurrentCache,
                             dstate: MLSTMStateGrad | None = None):
    """Backpropagation through time for [`mlstm_recurrent`][minirnn.mlstm.mlstm_recurrent].

    Eq. (ML.7): walking back, the gradient reaching ``C~_{t-1}`` is ``f'_t`` times what reaches
    ``C~_t`` (the carousel again, now a matrix); the gates get ``d i' = k' dC v^T + dn . k'``
    and ``d f' = <dC, C~_{t-1}> + dn . n~_{t-1}``, then ``di~ = d i' i'`` and
    ``df~ = d f' f' (1 - f)`` (the stabilisers held constant).

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
    dOmega, dr = mlstm_normaliser_backward(dout, c.out, c.r, c.m)
    dC = np.zeros_like(c.final.C) if dstate is None else dstate.C
    dn = np.zeros_like(c.final.n) if dstate is None else dstate.n
    dq, dk, dv = np.empty_like(c.q), np.empty_like(c.k), np.empty_like(c.v)
    da, db = np.empty_like(c.a), np.empty_like(c.b)
    for t in reversed(range(c.q.shape[2])):
        qt, kt, vt = c.q[:, :, t], c.k[:, :, t], c.v[:, :, t]
        dC = dC + qt[..., :, None] * dOmega[:, :, t, None, :]        # all that reaches C~_t
        dn = dn + dr[:, :, t, None] * qt
        dq[:, :, t] = np.einsum("bhe,bhde->bhd", dOmega[:, :, t], c.C[:, :, t]) \
            + dr[:, :, t, None] * c.n[:, :, t]
        dCv = np.einsum("bhde,bhe->bhd", dC, vt)                     # dC v_t^T
        bt = c.b[:, :, t, None]
        dk[:, :, t] = bt * (dCv + dn)
        dv[:, :, t] = bt * np.einsum("bhd,bhde->bhe", kt, dC)
        db[:, :, t] = np.sum(kt * (dCv + dn), axis=-1)
        C_prev = c.C[:, :, t - 1] if t > 0 else c.state.C
        n_prev = c.n[:, :, t - 1] if t > 0 else c.state.n
        da[:, :, t] = np.sum(dC * C_prev, axis=(-2, -1)) + np.sum(dn * n_prev, axis=-1)
        dC = c.a[:, :, t, None, None] * dC                           # on to C~_{t-1}
        dn = c.a[:, :, t, None] * dn
    di_pre = db * c.b                                                # i' = exp(i~ - m)
    df_pre = da * c.a * (1.0 - np.exp(log_sigmoid(c.f_pre))).astype(c.a.dtype)
    return dq, dk * c.scale, dv, di_pre, df_pre, MLSTMStateGrad(C=dC, n=dn)


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
    F = np.cumsum(log_sigmoid(f_pre), axis=-1)                        # F_t, float64
    causal = np.tril(np.ones((T, T), dtype=bool))
    log_W = np.where(causal, F[..., :, None] - F[..., None, :]
                     + i_pre.astype(np.float64)[..., None, :], -np.inf)          # (ML.5)
    log_w = F + state.m[..., None]
    m = np.maximum(log_W.max(axis=-1), log_w)
    W = np.exp(log_W - m[..., None]).astype(q.dtype)                  # 0 above the diagonal
    w = np.exp(log_w - m).astype(q.dtype)
    R = (q @ np.swapaxes(k, -1, -2)) * W                              # (ML.6)
    r = R.sum(axis=-1) + w * np.einsum("bhtd,bhd->bht", q, state.n)
    Omega = R @ v + w[..., None] * (q @ state.C)
    c = np.maximum(np.abs(r), np.exp(-m).astype(q.dtype))
    out = Omega / c[..., None]
    W_last, w_last = W[..., -1, :], w[..., -1]                        # the returned state's row
    final = MLSTMState(
        C=np.swapaxes(k * W_last[..., None], -1, -2) @ v + w_last[..., None, None] * state.C,
        n=np.einsum("bhs,bhsd->bhd", W_last, k) + w_last[..., None] * state.n,
        m=m[..., -1], position=state.position + T)
    return out, final, MLSTMParallelCache(q=q, k=k, v=v, f_pre=f_pre, W=W, w=w, m=m, R=R, r=r,
                                          c=c, out=out, state=state, final=final, scale=scale)


def mlstm_parallel_backward(dout: np.ndarray, cache: MLSTMParallelCache,
                            dstate: MLSTMStateGrad | None = None):
    """Backward of [`mlstm_parallel`][minirnn.mlstm.mlstm_parallel] (ML.7).

    Retention's parallel backward with ``W`` as the mask, plus the weights' own gradient
    ``d log W = dR * R``: its column sums are ``di~``, and ``dF_t`` (row sums minus column sums,
    plus the state's share) summed from ``t`` to the end is ``d log f_t``.

    Parameters, returns: as for
    [`mlstm_recurrent_backward`][minirnn.mlstm.mlstm_recurrent_backward].
    """
    dout, dstate = check.mlstm_parallel_backward(dout, cache, dstate)
    c = cache
    dOmega, dr = mlstm_normaliser_backward(dout, c.out, c.r, c.m)
    dR = dOmega @ np.swapaxes(c.v, -1, -2) + dr[..., None]            # (B, h, T, T)
    dv = np.swapaxes(c.R, -1, -2) @ dOmega
    dS = dR * c.W
    dq = dS @ c.k + c.w[..., None] * (dOmega @ np.swapaxes(c.state.C, -1, -2)
                                      + dr[..., None] * c.state.n[:, :, None])
    dk = np.swapaxes(dS, -1, -2) @ c.q
    dlog_W = dR * c.R
    dlog_w = c.w * (np.einsum("bhte,bhte->bht", dOmega, c.q @ c.state.C)
                    + dr * np.einsum("bhtd,bhd->bht", c.q, c.state.n))
    dC0 = np.swapaxes(c.q, -1, -2) @ (c.w[..., None] * dOmega)
    dn0 = np.einsum("bht,bhtd->bhd", c.w * dr, c.q)
    if dstate is not None:                                            # the returned state
        W_last, w_last = c.W[..., -1, :], c.w[..., -1]
        dCv = c.v @ np.swapaxes(dstate.C, -1, -2)                     # (B, h, T, d): dC v_s^T
        dk = dk + W_last[..., None] * (dCv + dstate.n[:, :, None])
        dv = dv + W_last[..., None] * (c.k @ dstate.C)
        dlog_W = dlog_W.copy()
        dlog_W[..., -1, :] += W_last * np.sum(c.k * (dCv + dstate.n[:, :, None]), axis=-1)
        dlog_w = dlog_w.copy()
        dlog_w[..., -1] += w_last * (np.sum(dstate.C * c.state.C, axis=(-2, -1))
                                     + np.sum(dstate.n * c.state.n, axis=-1))
        dC0 = dC0 + w_last[..., None, None] * dstate.C
        dn0 = dn0 + w_last[..., None] * dstate.n
    di_pre = dlog_W.sum(axis=-2)                                      # i~_s: column sums
    dF = dlog_W.sum(axis=-1) - di_pre + dlog_w                        # F_t rows, minus F_s columns
    dlog_f = np.flip(np.cumsum(np.flip(dF, -1), axis=-1), -1)         # sum over t >= j
    df_pre = dlog_f * (1.0 - np.exp(log_sigmoid(c.f_pre))).astype(dlog_f.dtype)
    return dq, dk * c.scale, dv, di_pre, df_pre, MLSTMStateGrad(C=dC0, n=dn0)
