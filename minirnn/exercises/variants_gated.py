"""Known mistakes of the gated retention exercises, as numbers: independent gated retention and
an independent gates' gradient, each with switches."""

from __future__ import annotations

from functools import partial

import numpy as np

from ..gated import (
    GatedState,
    GatedStateGrad,
    gated_retention_recurrent,
    gated_retention_recurrent_backward,
)
from .mistake import Mistake


def recurrent(c, gate="exp", decay_first=True, decay_z=True, count="gated", gate_index=0,
              batch_gate=True):
    """gated_retention_recurrent's outputs (normalised, fresh state) with the switches set as a
    mistake would."""
    q, k, v, log_decay = c["q"] / np.sqrt(c["q"].shape[-1]), c["k"], c["v"], c["log_decay"]
    B, h, T, d = q.shape
    alpha = {"exp": np.exp(log_decay), "log": log_decay, "one minus": 1.0 - np.exp(log_decay)}[gate]
    if not batch_gate:
        alpha = np.broadcast_to(alpha[:1], alpha.shape)            # sequence 0's gates for all
    S, z, s = np.zeros((B, h, d, v.shape[-1])), np.zeros((B, h, d)), np.zeros((B, h))
    Omega, r = np.zeros(v.shape), np.zeros((B, h, T))
    for n in range(T):
        a = alpha[:, :, n - gate_index]              # n - 1 at n = 0 is the last token's gate
        az = a if decay_z else np.ones((B, h))
        kv = k[:, :, n, :, None] * v[:, :, n, None, :]
        if decay_first:
            S, z = a[..., None, None] * S + kv, az[..., None] * z + k[:, :, n]
        else:
            S, z = a[..., None, None] * (S + kv), az[..., None] * (z + k[:, :, n])
        s = {"gated": a * s + 1.0, "ungated": s + 1.0}[count]
        with np.errstate(invalid="ignore"):                  # g as the decay: s < 0, NaN
            kappa = 1 / np.sqrt(s)
        Omega[:, :, n] = kappa[..., None] * np.einsum("bhd,bhde->bhe", q[:, :, n], S)
        r[:, :, n] = kappa * (q[:, :, n] * z).sum(-1)
    out = Omega / np.maximum(np.abs(r), 1.0)[..., None]
    return {"out": out, "state.S": S, "state.z": z, "state.s": s}


def decay_gradient(c, sign=1.0, reverse=True, inclusive=True, count_terms=True, rho=True,
                   final_term=True, half=True):
    """gated_decay_gradient's outputs on the case's problem, with the switches set as a mistake
    would: built from the library's forward and backward (which are right) and an independent
    (GR.7)."""
    q, k, v, log_decay = c["q"], c["k"], c["v"], c["log_decay"]
    _, final, cache = gated_retention_recurrent(q, k, v, log_decay, c["state"])
    dq, dk, _, _, _ = gated_retention_recurrent_backward(c["dout"], cache, c["dfinal"])
    qdq, kdk = np.sum(q * dq, -1), np.sum(k * dk, -1)
    db = sign * (qdq - kdk)
    if final_term:
        db[..., -1] += np.sum(c["dfinal"].S * final.S, axis=(-2, -1)) +\
            np.sum(c["dfinal"].z * final.z, axis=-1)
    s = cache.s
    ds = -qdq / ((2.0 if half else 1.0) * s)
    ds[..., -1] += c["dfinal"].s
    T = s.shape[-1]
    later = np.zeros_like(s)
    for n in reversed(range(T - 1)):
        later[..., n] = np.exp(log_decay[..., n + 1]) * (ds[..., n + 1] + later[..., n + 1])
    if count_terms:
        db = db + ds * (s - 1.0) - (later if rho else 0.0)
    if reverse:
        dg = np.cumsum(db[..., ::-1], axis=-1)[..., ::-1]
        if not inclusive:
            dg = dg - db
    else:
        dg = np.cumsum(db, axis=-1)
    ds_prev = np.exp(log_decay[..., 0]) * (ds[..., 0] + later[..., 0])
    return {"dlog_decay": dg, "ds_prev": ds_prev}


GATED_RECURRENT_MISTAKES = (
    Mistake("the log-gate g is used as the decay instead of the gate alpha = exp(g)", "(GR.2)",
            "log_decay holds g <= 0; what multiplies the state must lie in (0, 1]",
            partial(recurrent, gate="log")),
    Mistake("the decay is 1 - alpha (the gate read as a forget probability)", "(GR.2)",
            "alpha_n = exp(g_n) is how much of the state is kept",
            partial(recurrent, gate="one minus")),
    Mistake("token n is decayed together with the old state (decay after adding)", "(GR.2)",
            "Gamma^g[n, n] = 1: the newest token is not decayed when output n reads it",
            partial(recurrent, decay_first=False)),
    Mistake("the gate of the previous token is used at step n (alpha_{n-1})", "(GR.1)",
            "Gamma^g[n, m] multiplies the gates after m up to and including n",
            partial(recurrent, gate_index=1)),
    Mistake("z is not gated (S is)", "(GR.2)",
            "z_n must hold the same gated sum of keys that S_n holds with values",
            partial(recurrent, decay_z=False)),
    Mistake("the count s is not gated: s_n = n + 1", "(GR.2)",
            "s_n is the row sum of the segment decay Gamma^g, not of a causal mask",
            partial(recurrent, count="ungated")),
    Mistake("the gates of the first sequence are used for the whole batch", "(GR.2)",
            "log_decay is (B, h, T): every sequence has its own gates",
            partial(recurrent, batch_gate=False)),
)

DECAY_GRADIENT_MISTAKES = (
    Mistake("row and column are swapped: k . dk - q . dq", "(GR.7)",
            "moving b_n up scales row n (the query's) up and column n down",
            partial(decay_gradient, sign=-1.0)),
    Mistake("g_t is summed forward (sum over n <= t) instead of backward", "(GR.7)",
            "which b_n does g_t appear in?", partial(decay_gradient, reverse=False)),
    Mistake("the reverse sum leaves out n = t (sum over n > t)", "(GR.7)",
            "b_t = g_0 + ... + g_t includes g_t itself", partial(decay_gradient, inclusive=False)),
    Mistake("the count terms ds_n (s_n - 1) - rho_n are missing", "(GR.7)",
            "kappa_n = s_n^(-1/2) depends on the gates too",
            partial(decay_gradient, count_terms=False)),
    Mistake("rho is missing: moving b_n also changes every later count s_j", "(GR.7)",
            "s_j = sum_m e^(b_j - b_m) holds -b_n for every j > n",
            partial(decay_gradient, rho=False)),
    Mistake("ds_n = -(q_n . dq_n) / s_n: the 1/2 of d(s^(-1/2)) is missing", "(GR.7)",
            "differentiate kappa = s^(-1/2)", partial(decay_gradient, half=False)),
    Mistake("the returned state's term <dS, S> + <dz, z> is missing", "(GR.7)",
            "the returned state is one more row of scores, at the last token",
            partial(decay_gradient, final_term=False)),
)


def decay_gradient_case(rng):
    """A problem with a carried state in and a returned state's gradient out."""
    B, h, T, d, dv = 2, 2, 7, 4, 3
    log_decay = -rng.exponential(0.4, (B, h, T))
    log_decay[0, 0, 2], log_decay[1, 1, 4] = 0.0, -6.0        # open and nearly closed
    return {"q": rng.standard_normal((B, h, T, d)), "k": rng.standard_normal((B, h, T, d)),
            "v": rng.standard_normal((B, h, T, dv)), "log_decay": log_decay,
            "dout": rng.standard_normal((B, h, T, dv)),
            "state": GatedState(rng.standard_normal((B, h, d, dv)),
                                rng.standard_normal((B, h, d)), 1.0 + rng.random((B, h)), 5),
            "dfinal": GatedStateGrad(rng.standard_normal((B, h, d, dv)),
                                     rng.standard_normal((B, h, d)), rng.standard_normal((B, h))),
            "chunk_size": 3}
