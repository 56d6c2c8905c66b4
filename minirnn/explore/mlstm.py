"""xLSTM's mLSTM: a matrix memory, an exponential input gate and the stabiliser m.

Step by step: the stabiliser mu_t = max(log f_t + mu_{t-1}, a^i_t) and the stabilised gates,
the scaled memory, the normaliser with its floor exp(-mu_t) (ML.4); the check runs the parallel form
(ML.5)-(ML.6). With ``--backward``: every gradient of both forms.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..mlstm import (
    mlstm_parallel,
    mlstm_parallel_backward,
    mlstm_recurrent,
    mlstm_recurrent_backward,
)
from .printing import Step, difference, flat, fmt, tiny

FORMS = ("recurrent", "parallel")


def walk(T: int, d: int, seed: int, backward: bool, form: str = "recurrent",
         chunk_size: int = 2) -> Iterator[Step]:
    """One head with input gates up to 6 (e^6 = 403: the stabiliser at work)."""
    rng = np.random.default_rng(seed)
    q, k, v = tiny(rng, 1, 1, T, d), tiny(rng, 1, 1, T, d), tiny(rng, 1, 1, T, 2)
    i_pre = 3.0 * tiny(rng, 1, 1, T) + 3.0
    f_pre = 2.0 * tiny(rng, 1, 1, T) + 1.0
    yield Step("Setup: one head; i_pre = the input gate's pre-activations a^i (i = e^a^i), "
               "f_pre = the forget gate's", [fmt("i_pre", i_pre[0, 0]),
                                            fmt("f_pre", f_pre[0, 0]), fmt("q", q[0, 0])])
    forms = {"recurrent": (mlstm_recurrent, mlstm_recurrent_backward),
             "parallel": (mlstm_parallel, mlstm_parallel_backward)}
    out, _, cache = forms[form][0](q, k, v, i_pre, f_pre)
    out_r, _, rec = mlstm_recurrent(q, k, v, i_pre, f_pre)
    for t in range(T):
        yield Step(f"t = {t}: mu = max(log f + mu_prev, a^i); f_mu = e^(log f + mu_prev - mu), "
                   "i_mu = e^(a^i - mu); S = f_mu S + i_mu k'^T v; "
                   "out = q S / max(|q z|, e^-mu)   (ML.4)",
                   [fmt("mu", rec.mu[0, 0, t]), fmt("f_mu", rec.f_mu[0, 0, t]),
                    fmt("i_mu", rec.i_mu[0, 0, t]), fmt("S (scaled)", rec.S[0, 0, t]),
                    fmt("floor e^-mu", np.exp(-rec.mu[0, 0, t])), fmt("out", out_r[0, 0, t])])
    other = "parallel" if form == "recurrent" else "recurrent"
    out2, _, cache2 = forms[other][0](q, k, v, i_pre, f_pre)
    yield Step(f"Check: the {form} form against the {other} form (ML.5)-(ML.6)",
               [difference("outputs", out, out2)])
    if backward:
        dout = np.ones_like(out)
        g1, g2 = forms[form][1](dout, cache)[:5], forms[other][1](dout, cache2)[:5]
        yield Step("Backward: dq, dk, dv, di_pre, df_pre with every mu held constant (ML.7)",
                   [fmt("di_pre", g1[3][0, 0]), fmt("df_pre", g1[4][0, 0]),
                    difference("all gradients, both forms", flat(*g1), flat(*g2))])
