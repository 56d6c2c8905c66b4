"""xLSTM's mLSTM: a matrix memory, an exponential input gate and the stabiliser m.

Step by step: the stabiliser m_t = max(log f_t + m_{t-1}, i~_t) and the stabilised gates, the
scaled memory, the normaliser with its floor exp(-m_t) (ML.4); the check runs the parallel form
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
    yield Step("Setup: one head; i~ = input-gate pre-activations (i = e^i~), f~ = forget",
               [fmt("i~", i_pre[0, 0]), fmt("f~", f_pre[0, 0]), fmt("q", q[0, 0])])
    forms = {"recurrent": (mlstm_recurrent, mlstm_recurrent_backward),
             "parallel": (mlstm_parallel, mlstm_parallel_backward)}
    out, _, cache = forms[form][0](q, k, v, i_pre, f_pre)
    out_r, _, rec = mlstm_recurrent(q, k, v, i_pre, f_pre)
    for t in range(T):
        yield Step(f"t = {t}: m = max(log f + m_prev, i~); f' = e^(log f + m_prev - m), "
                   "i' = e^(i~ - m); C~ = f' C~ + i' k'^T v; out = q C~ / max(|q n~|, e^-m) "
                   "(ML.4)",
                   [fmt("m", rec.m[0, 0, t]), fmt("f'", rec.a[0, 0, t]),
                    fmt("i'", rec.b[0, 0, t]), fmt("C~", rec.C[0, 0, t]),
                    fmt("floor e^-m", np.exp(-rec.m[0, 0, t])), fmt("out", out_r[0, 0, t])])
    other = "parallel" if form == "recurrent" else "recurrent"
    out2, _, cache2 = forms[other][0](q, k, v, i_pre, f_pre)
    yield Step(f"Check: the {form} form against the {other} form (ML.5)-(ML.6)",
               [difference("outputs", out, out2)])
    if backward:
        dout = np.ones_like(out)
        g1, g2 = forms[form][1](dout, cache)[:5], forms[other][1](dout, cache2)[:5]
        yield Step("Backward: dq, dk, dv, di~, df~ with every m held constant (ML.7)",
                   [fmt("di~", g1[3][0, 0]), fmt("df~", g1[4][0, 0]),
                    difference("all gradients, both forms", flat(*g1), flat(*g2))])
