"""Known mistakes of the retention exercises, as numbers: independent retention with switches.

The chunkwise variants have the signature of ``retention_chunkwise``, so the property exercise
uses them as the buggy implementations a student's test must catch.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..retention import RetentionState, retention_parallel
from .mistake import Mistake


def _scale(q, how):
    d = q.shape[-1]
    return q / {"sqrt(d)": np.sqrt(d), "d": d, "none": 1.0}[how]


def recurrent(c, decay_first=True, decay_S=True, decay_z=True, row_factor=True,
              count_decay=True, r_row_factor=True, q_scale="sqrt(d)"):
    """retention_recurrent's outputs (normalised), with the switches set as a mistake would."""
    q, k, v, gamma = _scale(c["q"], q_scale), c["k"], c["v"], c["gamma"]
    B, h, T, d = q.shape
    S, z, s = np.zeros((B, h, d, v.shape[-1])), np.zeros((B, h, d)), np.zeros(h)
    gS = (gamma if decay_S else np.ones(h))[:, None, None]
    gz = (gamma if decay_z else np.ones(h))[:, None]
    P, r = np.zeros(v.shape), np.zeros((B, h, T))
    for n in range(T):
        kv = k[:, :, n, :, None] * v[:, :, n, None, :]
        S = gS * S + kv if decay_first else gS * (S + kv)
        z = gz * z + k[:, :, n] if decay_first else gz * (z + k[:, :, n])
        s = (gamma if count_decay else 1.0) * s + 1.0
        a = 1 / np.sqrt(s) if row_factor else np.ones(h)
        P[:, :, n] = a[:, None] * np.einsum("bhd,bhde->bhe", q[:, :, n], S)
        r[:, :, n] = (a if r_row_factor else 1.0) * (q[:, :, n] * z).sum(-1)
    out = P / np.maximum(np.abs(r), 1.0)[..., None]
    return {"out": out, "state.S": S, "state.z": z}


def parallel_backward(c, dr="masked", scale_dq=True, scale_dk=False, mask=True, divide=True):
    """retention_parallel_backward's outputs, with the switches set as a mistake would."""
    out, _, cache = retention_parallel(c["q"], c["k"], c["v"], c["gamma"])
    dout = c["dout"]
    dP = dout / cache.c[..., None] if divide else dout
    dc = -np.sum(dout * out, axis=-1) / cache.c
    dr_value = {"masked": np.where(np.abs(cache.r) > 1, dc * np.sign(cache.r), 0.0),
                "none": 0.0 * dc,
                "sign": np.where(np.abs(cache.r) > 1, -dc * np.sign(cache.r), 0.0),
                "unmasked": dc * np.sign(cache.r)}[dr]
    dv = np.swapaxes(cache.R, -1, -2) @ dP
    dR = dP @ np.swapaxes(cache.v, -1, -2) + dr_value[..., None]
    dA = dR * (cache.Gamma * cache.kappa[..., None]) if mask else dR
    s = cache.scale
    return {"dq": (dA @ cache.k) * (s if scale_dq else 1.0),
            "dk": (np.swapaxes(dA, -1, -2) @ cache.q) * (s if scale_dk else 1.0), "dv": dv}


def chunkwise(q, k, v, gamma, chunk_size, state=None, normalize=True, xi="gamma^(j+1)",
              cross=True, carry_decay=True, zeta_shift=0, counts="global", q_scale="sqrt(d)"):
    """Chunkwise retention (normalised, from a fresh state) with the switches set as a mistake
    would; same signature and return value as ``retention_chunkwise``."""
    q = _scale(np.asarray(q, dtype=float), q_scale)
    gamma = np.broadcast_to(np.asarray(gamma, dtype=float), (q.shape[1],))
    B, h, T, d = q.shape
    S, z, s = np.zeros((B, h, d, v.shape[-1])), np.zeros((B, h, d)), np.zeros(h)
    P, r = np.zeros(v.shape), np.zeros((B, h, T))
    for start in range(0, T, chunk_size):
        stop = min(start + chunk_size, T)
        L, j = stop - start, np.arange(stop - start)
        qc, kc, vc = q[:, :, start:stop], k[:, :, start:stop], v[:, :, start:stop]
        gamma_h = gamma[:, None]
        Gamma = np.where(j[:, None] >= j[None, :],
                         gamma_h[..., None] ** np.maximum(j[:, None] - j[None, :], 0), 0.0)
        xi_value = {"gamma^(j+1)": gamma_h ** (j + 1), "gamma^j": gamma_h ** j,
                    "1": gamma_h ** 0 * (j >= 0)}[xi]
        xi_value = xi_value if cross else 0.0 * xi_value
        count_before = s if counts == "global" else np.zeros(h)
        carried = gamma_h ** j if xi == "gamma^j" else gamma_h ** (j + 1)   # wrong xi: s_n too
        rows = carried * count_before[:, None] + np.cumsum(gamma_h ** j, axis=1)
        a = 1 / np.sqrt(rows)
        inner = (qc @ np.swapaxes(kc, -1, -2)) * Gamma
        P[:, :, start:stop] = a[..., None] * (inner @ vc + xi_value[..., None] * (qc @ S))
        r[:, :, start:stop] = a * (inner.sum(-1) + xi_value * np.einsum("bhjd,bhd->bhj", qc, z))
        zeta = gamma_h ** (L - 1 - j + zeta_shift)
        gL = gamma ** L if carry_decay else np.ones(h)
        S = gL[:, None, None] * S + np.swapaxes(kc * zeta[..., None], -1, -2) @ vc
        z = gL[:, None] * z + (kc * zeta[..., None]).sum(axis=2)
        s = gamma ** L * s + np.sum(gamma_h ** j, axis=1)
    out = P / np.maximum(np.abs(r), 1.0)[..., None]
    return out, RetentionState(S, z, s, T), None


def chunkwise_outputs(c, **switches):
    out, state, _ = chunkwise(c["q"], c["k"], c["v"], c["gamma"], c["chunk_size"], **switches)
    return {"out": out, "state.S": state.S, "state.z": state.z}


RECURRENT_MISTAKES = (
    Mistake("decay off by one: the new token is decayed together with the old state", "(R.3)",
            "how old is token n when output n reads it?", partial(recurrent, decay_first=False)),
    Mistake("the state is never decayed (that is linear attention, gamma = 1)", "(R.3)",
            "what makes the past fade?",
            partial(recurrent, decay_S=False, decay_z=False)),
    Mistake("z is not decayed (S is)", "(R.7)",
            "z_n must hold the same decayed sum of keys that S_n holds with values",
            partial(recurrent, decay_z=False)),
    Mistake("the row factor kappa_n = 1 / sqrt(s_n) is missing", "(R.5)",
            "the parallel form divides row n of the decay mask by something",
            partial(recurrent, row_factor=False, r_row_factor=False)),
    Mistake("the count s_n is not decayed: s_n = n + 1", "(R.7)",
            "s_n is the row sum of the decay mask, not of a causal mask",
            partial(recurrent, count_decay=False)),
    Mistake("r_n is computed without the row factor kappa_n", "(R.7)",
            "r_n is the row sum of the same scores whose row the output uses",
            partial(recurrent, r_row_factor=False)),
    Mistake("the queries are scaled twice (by 1/d instead of 1/sqrt(d))", "(R.5)",
            "q is already divided by sqrt(d) above the loop", partial(recurrent, q_scale="d")),
)

PARALLEL_BACKWARD_MISTAKES = (
    Mistake("the score normaliser's gradient dr is missing", "(R.9)",
            "where |r_n| > 1, c_n = |r_n| depends on the scores", partial(parallel_backward,
                                                                           dr="none")),
    Mistake("dr has the wrong sign", "(R.9)", "O = P / c: does O grow or shrink as c grows?",
            partial(parallel_backward, dr="sign")),
    Mistake("dr is applied where |r_n| < 1 too", "(R.9)",
            "where |r_n| < 1, is c_n a function of r_n?",
            partial(parallel_backward, dr="unmasked")),
    Mistake("dO is not divided by c", "(R.9)", "O = P / c", partial(parallel_backward,
                                                                     divide=False)),
    Mistake("dk is scaled by 1/sqrt(d) too", "(R.10)",
            "cache.q is already scaled, so dK = dA^T Q' needs nothing more",
            partial(parallel_backward, scale_dk=True)),
    Mistake("the decay mask is not applied to dR", "(R.10)",
            "R = A * (decay mask): what does the elementwise factor do to dA?",
            partial(parallel_backward, mask=False)),
)

# (what the student did, equation, hint, switches of ``chunkwise``)
CHUNKWISE_BUGS = (
    ("xi off by one: the state before the chunk is decayed by gamma^j, not gamma^(j+1)",
     "(R.4)", "how many steps old is the carried state for the chunk's first row?",
     {"xi": "gamma^j"}),
    ("the decay on the cross-chunk term is missing (xi = 1)", "(R.4)",
     "the carried state is older than every token of the chunk", {"xi": "1"}),
    ("the cross-chunk term is missing: each chunk ignores the state before it", "(R.4)",
     "what do the tokens of earlier chunks contribute?", {"cross": False}),
    ("the state is not decayed across chunks (no gamma^L)", "(R.4)",
     "by how much does the old state fade while L tokens pass?", {"carry_decay": False}),
    ("zeta off by one: the chunk's last token is decayed once too often", "(R.4)",
     "how old is the chunk's last token when the chunk hands its state on?",
     {"zeta_shift": 1}),
    ("the row factors use a count that restarts in every chunk", "(R.8)",
     "s_n counts every earlier token of the sequence, not only those of the chunk",
     {"counts": "local"}),
    ("the queries are scaled twice (by 1/d instead of 1/sqrt(d))", "(R.5)",
     "q is already divided by sqrt(d) above the loop", {"q_scale": "d"}),
)

CHUNKWISE_MISTAKES = tuple(Mistake(message, equation, hint, partial(chunkwise_outputs, **switches))
                           for message, equation, hint, switches in CHUNKWISE_BUGS)
