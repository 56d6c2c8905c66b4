"""minGRU and minLSTM (Feng et al. 2024): the GRU and LSTM with gates that do not read ``h``.

Drop ``h_{t-1}`` from a GRU's gates and candidate and what is left is a linear recurrence with a
scalar state per channel, ``h_t = alpha_t h_{t-1} + u_t``: gated retention (GR.2) with
``d = dv = 1``, ``q = 1``, ``k = z_t``, ``v = h_bar_t`` and ``alpha_t = 1 - z_t``. It has an
exact parallel form with the same segment decay (GR.1). Equations, as on
``derivations/min-rnn.md`` (``g_t`` is a log-gate, ``log_decay`` in the code, as on the
gated-retention page)::

    scan:      h_t = alpha_t h_{t-1} + u_t,   alpha_t = exp(g_t), g_t <= 0            (MIN.1)
    parallel:  b_t = g_1 + ... + g_t,  h_t = sum_{s<=t} e^(b_t - b_s) u_s + e^(b_t) h_0  (MIN.2)
    backward:  delta_t = dh_t + alpha_{t+1} delta_{t+1}  (= sum_{t'>=t} e^(b_t' - b_t) dh_t')
               du_t = delta_t,  dh_0 = alpha_1 delta_1,  dg_t = delta_t alpha_t h_{t-1}  (MIN.3)
    minGRU:    z = sigmoid(x Wz + bz),  h_bar = x Wh + bh,  g = log(1 - z) = -softplus(a_z),
               u = z h_bar   (so h_t = (1 - z_t) h_{t-1} + z_t h_bar_t)                (MIN.4)
    minLSTM:   f = sigmoid(x Wf + bf),  i = sigmoid(x Wi + bi),  f_norm = f / (f + i),
               i_norm = i / (f + i),  g = log f_norm,  u = i_norm h_bar                (MIN.5)

The log-gates are computed from the pre-activations in float64 (``log sigmoid`` and
``log(f + i)`` with ``logaddexp``), so gates near 0 and 1 are exact in the parallel form too.

Shapes: ``x`` (B, T, D), ``h`` (B, T, H), ``h0`` (B, H), weights (D, H), biases (H,).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import minrnn as check
from .gated import segment_decay
from .layers import weight_gradient

__all__ = [
    "MinRNNCache",
    "ScanCache",
    "init_mingru_params",
    "init_minlstm_params",
    "linear_scan_parallel",
    "linear_scan_parallel_backward",
    "linear_scan_sequential",
    "linear_scan_sequential_backward",
    "log_sigmoid",
    "mingru_backward",
    "mingru_forward",
    "minlstm_backward",
    "minlstm_forward",
]


class ScanCache(NamedTuple):
    """What the backward of a linear scan needs (both forms save the same)."""

    log_decay: np.ndarray  # (B, T, H) log-gates g_t (exponentiated in float64)
    h0: np.ndarray         # (B, H)
    h: np.ndarray          # (B, T, H) every state h_1 .. h_T
    form: str              # "sequential" or "parallel"


class MinRNNCache(NamedTuple):
    """What [`mingru_backward`][minirnn.minrnn.mingru_backward] or
    [`minlstm_backward`][minirnn.minrnn.minlstm_backward] needs."""

    x: np.ndarray          # (B, T, D)
    gates: dict            # minGRU: {"z"}; minLSTM: {"f", "i", "f_norm", "i_norm"}, each (B, T, H)
    h_bar: np.ndarray    # (B, T, H) the candidate x Wh + bh
    scan: ScanCache        # the scan's cache
    params: dict           # the weights (for dx)


def log_sigmoid(a: np.ndarray) -> np.ndarray:
    """``log(sigmoid(a)) = -softplus(-a)``, exact for large ``|a|`` (float64 out).

    Parameters
    ----------
    a : ndarray, any shape

    Returns
    -------
    ndarray, float64, same shape
    """
    a = check.log_sigmoid(a)
    a = a.astype(np.float64)
    return np.minimum(a, 0.0) - np.log1p(np.exp(-np.abs(a)))


# --- the scan: two forms of one recurrence --------------------------------------------------------

def linear_scan_sequential(log_decay: np.ndarray, u: np.ndarray, h0: np.ndarray):
    """``h_t = alpha_t h_{t-1} + u_t``, one step at a time (MIN.1).

    Parameters
    ----------
    log_decay : ndarray, shape (B, T, H)
        Log-gates ``g_t <= 0``.
    u : ndarray, shape (B, T, H)
        What is written at each step.
    h0 : ndarray, shape (B, H)

    Returns
    -------
    h : ndarray, shape (B, T, H)
    cache : ScanCache
    """
    log_decay, u, h0 = check.linear_scan_sequential(log_decay, u, h0)
    alpha = np.exp(log_decay.astype(np.float64)).astype(u.dtype)
    h = np.empty(u.shape, dtype=np.result_type(u, h0))
    h_t = h0
    for t in range(u.shape[1]):                                       # (MIN.1)
        h_t = alpha[:, t] * h_t + u[:, t]
        h[:, t] = h_t
    return h, ScanCache(log_decay=log_decay, h0=h0, h=h, form="sequential")


def linear_scan_parallel(log_decay: np.ndarray, u: np.ndarray, h0: np.ndarray):
    """Every ``h_t`` at once from the segment decay (MIN.2), as in gated retention.

    ``Gamma[t, s] = exp(b_t - b_s)`` for ``s <= t`` is built here as
    [`segment_decay`][minirnn.gated.segment_decay] builds it, for each channel's log-gates; then
    ``h = Gamma u + e^(b) h0``, one matrix-vector product per channel. Equal to
    [`linear_scan_sequential`][minirnn.minrnn.linear_scan_sequential] up to rounding.
    Memory ``B H T^2``: a teaching form (a real parallel scan needs ``O(log T)`` depth and
    ``O(T)`` memory).

    Parameters and returns as for ``linear_scan_sequential``.
    """
    log_decay, u, h0 = check.linear_scan_parallel(log_decay, u, h0)
    log_decay_ch = np.swapaxes(log_decay, 1, 2)                        # (B, H, T)
    u_ch = np.swapaxes(u, 1, 2)[..., None]                             # (B, H, T, 1)
    # --- exercise: linear_scan_parallel ---
    b = np.cumsum(log_decay_ch, axis=-1, dtype=np.float64)             # b_t = g_1 + ... + g_t
    diff = b[..., :, None] - b[..., None, :]                           # b_t - b_s  (B, H, T, T)
    Gamma = np.tril(np.exp(np.minimum(diff, 0.0))).astype(u.dtype)     # s <= t only  (GR.1)
    h_ch = (Gamma @ u_ch)[..., 0] + np.exp(b).astype(u.dtype) * h0[..., None]   # (MIN.2)
    # --- end ---
    h = np.swapaxes(h_ch, 1, 2).astype(np.result_type(u, h0))
    return h, ScanCache(log_decay=log_decay, h0=h0, h=h, form="parallel")


def linear_scan_sequential_backward(dh: np.ndarray, cache: ScanCache):
    """Backward of the scan, walking ``t = T .. 1`` (MIN.3).

    Parameters
    ----------
    dh : ndarray, shape (B, T, H)
    cache : ScanCache

    Returns
    -------
    dlog_decay, du : ndarray, shape (B, T, H)
    dh0 : ndarray, shape (B, H)
    """
    dh = check.linear_scan_sequential_backward(dh, cache)
    alpha = np.exp(cache.log_decay.astype(np.float64)).astype(cache.h.dtype)
    h_prev = np.concatenate([cache.h0[:, None], cache.h[:, :-1]], axis=1)
    du = np.empty(cache.h.shape, dtype=np.result_type(cache.h, dh))
    carry = np.zeros_like(du[:, 0])                                    # alpha_{t+1} delta_{t+1}
    for t in reversed(range(du.shape[1])):
        du[:, t] = dh[:, t] + carry                                    # delta_t     (MIN.3)
        carry = alpha[:, t] * du[:, t]
    return du * alpha * h_prev, du, carry


def linear_scan_parallel_backward(dh: np.ndarray, cache: ScanCache):
    """Backward of the scan in parallel form: ``delta = Gamma^T dh`` per channel (MIN.3).

    Parameters and returns as for ``linear_scan_sequential_backward``.
    """
    dh = check.linear_scan_parallel_backward(dh, cache)
    log_decay_ch = np.swapaxes(cache.log_decay, 1, 2)
    Gamma = segment_decay(log_decay_ch).astype(cache.h.dtype)                  # (B, H, T, T)
    delta = (np.swapaxes(Gamma, -1, -2) @ np.swapaxes(dh, 1, 2)[..., None])[..., 0]
    delta = np.swapaxes(delta, 1, 2)                                   # (B, T, H)
    alpha = np.exp(cache.log_decay.astype(np.float64)).astype(cache.h.dtype)
    h_prev = np.concatenate([cache.h0[:, None], cache.h[:, :-1]], axis=1)
    return delta * alpha * h_prev, delta, alpha[:, 0] * delta[:, 0]


SCANS = {"sequential": (linear_scan_sequential, linear_scan_sequential_backward),
         "parallel": (linear_scan_parallel, linear_scan_parallel_backward)}


# --- minGRU ---------------------------------------------------------------------------------------

def init_mingru_params(D: int, H: int, seed: int = 0, dtype=np.float64) -> dict[str, np.ndarray]:
    """``Wz``, ``Wh`` (D, H) normal with standard deviation ``1/sqrt(D)``; ``bz``, ``bh`` zero.

    Returns
    -------
    dict
        ``{"Wz": (D, H), "bz": (H,), "Wh": (D, H), "bh": (H,)}``.
    """
    rng = np.random.default_rng(seed)
    return {"Wz": (rng.standard_normal((D, H)) / np.sqrt(D)).astype(dtype),
            "bz": np.zeros(H, dtype=dtype),
            "Wh": (rng.standard_normal((D, H)) / np.sqrt(D)).astype(dtype),
            "bh": np.zeros(H, dtype=dtype)}


def mingru_forward(x: np.ndarray, h0: np.ndarray, params: dict[str, np.ndarray],
                   form: str = "sequential"):
    """minGRU: ``h_t = (1 - z_t) h_{t-1} + z_t h_bar_t``, ``z`` and ``h_bar`` from ``x`` alone.

    Implements eq. (MIN.4) and the scan (MIN.1) or (MIN.2).

    Parameters
    ----------
    x : ndarray, shape (B, T, D)
    h0 : ndarray, shape (B, H)
    params : dict
        ``Wz`` (D, H), ``bz`` (H,), ``Wh`` (D, H), ``bh`` (H,).
    form : {"sequential", "parallel"}

    Returns
    -------
    h : ndarray, shape (B, T, H)
    cache : MinRNNCache
    """
    x, h0, params, form = check.mingru_forward(x, h0, params, form)
    a_z = x @ params["Wz"] + params["bz"]
    z = np.exp(log_sigmoid(a_z)).astype(a_z.dtype)                    # (MIN.4)
    h_bar = x @ params["Wh"] + params["bh"]
    log_decay = log_sigmoid(-a_z)                                      # log(1 - z), float64
    h, scan = SCANS[form][0](log_decay, z * h_bar, h0)
    return h, MinRNNCache(x=x, gates={"z": z}, h_bar=h_bar, scan=scan, params=params)


def mingru_backward(dh: np.ndarray, cache: MinRNNCache):
    """Backward of [`mingru_forward`][minirnn.minrnn.mingru_forward] (either form).

    From the scan's ``(dg, du)``: ``dh_bar = du z``, ``dz = du h_bar``, and through
    ``g = log(1 - z)`` the pre-activation gets ``da_z = dz z (1 - z) - dg z``.

    Parameters
    ----------
    dh : ndarray, shape (B, T, H)
    cache : MinRNNCache

    Returns
    -------
    dx : ndarray, shape (B, T, D)
    dh0 : ndarray, shape (B, H)
    grads : dict
        ``Wz``, ``bz``, ``Wh``, ``bh``.
    """
    dh = check.mingru_backward(dh, cache)
    z, h_bar = cache.gates["z"], cache.h_bar
    dlog_decay, du, dh0 = SCANS[cache.scan.form][1](dh, cache.scan)
    da_z = du * h_bar * z * (1.0 - z) - dlog_decay * z                       # dl/da_z = -z
    da_h = du * z
    W = cache.params
    grads = {"Wz": weight_gradient(cache.x, da_z),
             "bz": da_z.sum(axis=(0, 1)),
             "Wh": weight_gradient(cache.x, da_h),
             "bh": da_h.sum(axis=(0, 1))}
    return da_z @ W["Wz"].T + da_h @ W["Wh"].T, dh0, grads


# --- minLSTM --------------------------------------------------------------------------------------

def init_minlstm_params(D: int, H: int, seed: int = 0, dtype=np.float64) -> dict[str, np.ndarray]:
    """``Wf``, ``Wi``, ``Wh`` (D, H) normal with standard deviation ``1/sqrt(D)``; biases zero.

    Returns
    -------
    dict
        ``{"Wf", "bf", "Wi", "bi", "Wh", "bh"}``, weights (D, H), biases (H,).
    """
    rng = np.random.default_rng(seed)
    params = {}
    for gate in "fih":
        params[f"W{gate}"] = (rng.standard_normal((D, H)) / np.sqrt(D)).astype(dtype)
        params[f"b{gate}"] = np.zeros(H, dtype=dtype)
    return params


def minlstm_forward(x: np.ndarray, h0: np.ndarray, params: dict[str, np.ndarray],
                    form: str = "sequential"):
    """minLSTM: ``h_t = f_norm h_{t-1} + i_norm h_bar_t`` with ``f_norm + i_norm = 1``.

    Implements eq. (MIN.5) and the scan (MIN.1) or (MIN.2).

    Parameters
    ----------
    x : ndarray, shape (B, T, D)
    h0 : ndarray, shape (B, H)
    params : dict
        ``Wf``, ``Wi``, ``Wh`` (D, H); ``bf``, ``bi``, ``bh`` (H,).
    form : {"sequential", "parallel"}

    Returns
    -------
    h : ndarray, shape (B, T, H)
    cache : MinRNNCache
    """
    x, h0, params, form = check.minlstm_forward(x, h0, params, form)
    log_f = log_sigmoid(x @ params["Wf"] + params["bf"])               # float64
    log_i = log_sigmoid(x @ params["Wi"] + params["bi"])
    log_sum = np.logaddexp(log_f, log_i)                               # log(f + i)
    f_norm, i_norm = np.exp(log_f - log_sum), np.exp(log_i - log_sum)        # (MIN.5)
    h_bar = x @ params["Wh"] + params["bh"]
    dtype = h_bar.dtype
    h, scan = SCANS[form][0](log_f - log_sum, i_norm.astype(dtype) * h_bar, h0)
    gates = {"f": np.exp(log_f).astype(dtype), "i": np.exp(log_i).astype(dtype),
             "f_norm": f_norm.astype(dtype), "i_norm": i_norm.astype(dtype)}
    return h, MinRNNCache(x=x, gates=gates, h_bar=h_bar, scan=scan, params=params)


def minlstm_backward(dh: np.ndarray, cache: MinRNNCache):
    """Backward of [`minlstm_forward`][minirnn.minrnn.minlstm_forward] (either form).

    With ``L = log(f + i)``: ``log f_norm = log f - L`` and ``i_norm = exp(log i - L)``, so
    ``dlog_f = dg (1 - f_norm) - dq i_norm f_norm`` and
    ``dlog_i = -dg i_norm + dq i_norm (1 - i_norm)`` with ``dq = du h_bar``; then
    ``da_f = dlog_f (1 - f)`` and ``da_i = dlog_i (1 - i)`` (``d log sigmoid(a) / da =
    1 - sigmoid(a)``).

    Parameters
    ----------
    dh : ndarray, shape (B, T, H)
    cache : MinRNNCache

    Returns
    -------
    dx : ndarray, shape (B, T, D)
    dh0 : ndarray, shape (B, H)
    grads : dict
        ``Wf``, ``bf``, ``Wi``, ``bi``, ``Wh``, ``bh``.
    """
    dh = check.minlstm_backward(dh, cache)
    gates = cache.gates
    dlog_decay, du, dh0 = SCANS[cache.scan.form][1](dh, cache.scan)
    f_norm, i_norm = gates["f_norm"], gates["i_norm"]
    dq = du * cache.h_bar                                            # gradient of i_norm
    dlog_f = dlog_decay * (1.0 - f_norm) - dq * i_norm * f_norm
    dlog_i = -dlog_decay * i_norm + dq * i_norm * (1.0 - i_norm)
    da = {"f": dlog_f * (1.0 - gates["f"]), "i": dlog_i * (1.0 - gates["i"]), "h": du * i_norm}
    grads, dx = {}, 0.0
    for gate, d in da.items():
        grads[f"W{gate}"] = weight_gradient(cache.x, d)
        grads[f"b{gate}"] = d.sum(axis=(0, 1))
        dx = dx + d @ cache.params[f"W{gate}"].T
    return dx, dh0, grads
