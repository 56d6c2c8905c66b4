"""Gated retention: a gate per token instead of a fixed decay, and the gates' gradient.

Step by step: every form with a gate per token (GR.1)-(GR.5), forward and backward, with the
gates' gradient (GR.7) written out.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..gated import gated_retention_forms, segment_decay
from .printing import Step, difference, flat, fmt, reference_form, tiny, whole

FORMS = ("recurrent", "parallel", "chunkwise")


def walk(T: int, d: int, seed: int, backward: bool, form: str = "recurrent",
         chunk_size: int = 2) -> Iterator[Step]:
    """One head with readable gates (1, 1/2 or 1/4), checked against another form."""
    rng = np.random.default_rng(seed)
    q, k = tiny(rng, 1, 1, T, d), tiny(rng, 1, 1, T, d)
    v = tiny(rng, 1, 1, T, 2)
    alpha = rng.choice([1.0, 0.5, 0.25], size=(1, 1, T))            # readable gates
    log_decay = np.log(alpha)
    yield Step(f"Setup: one head, T = {T}, d = {d}, dv = 2, normalised; each token has a gate "
               f"alpha_t = exp(g_t); q' = q / sqrt(d)   (GR.1), (R.5)",
               [fmt("Q", q[0, 0]), fmt("K", k[0, 0]), fmt("V", v[0, 0]),
                fmt("alpha", alpha[0, 0]), fmt("log_decay = log alpha", log_decay[0, 0])])
    forms = gated_retention_forms(chunk_size)
    out, state, cache = forms[form][0](q, k, v, log_decay)
    yield from _FORWARD[form](out, state, cache, alpha)
    other = reference_form(form)
    ref, _, ref_cache = forms[other][0](q, k, v, log_decay)
    yield Step(f"Check: the {form} form against the {other} form",
               [difference(f"{form} vs {other}", out, ref)])
    if backward:
        yield from _backward(forms, form, out, cache, other, ref_cache, q, k, log_decay)


def _parallel(out, state, cache, alpha):
    log_decay = cache.log_decay[0, 0]
    yield Step("The segment decay Gamma^g[n, m] = exp(b_n - b_m) for m <= n, b = cumsum(g): "
               "the product of the gates after m up to n   (GR.1)",
               [fmt("b", np.cumsum(log_decay)), fmt("Gamma^g", cache.Gamma[0, 0]),
                difference("segment_decay(g) vs the cache's mask", segment_decay(log_decay),
                           cache.Gamma[0, 0])])
    yield Step("Scores R = (Q' K^T) * Gamma^g / sqrt(s_n), s_n = sum_m Gamma^g[n, m]; "
               "O = (R V) / c   (GR.3)", [fmt("s", cache.s[0, 0]), fmt("R", cache.R[0, 0]),
                                         fmt("O", out[0, 0])])


def _recurrent(out, state, cache, alpha):
    for n in range(out.shape[2]):
        yield Step(f"n = {n}: S_n = alpha_n S_(n-1) + k_n^T v_n with alpha_n = "
                   f"{alpha[0, 0, n]:g}; z_n, s_n = alpha_n s_(n-1) + 1 alike   (GR.2)",
                   [fmt("S_n", cache.S[0, 0, n]), fmt("z_n", cache.z[0, 0, n]),
                    f"s_n = {cache.s[0, 0, n]:.4f}   kappa_n = {cache.kappa[0, 0, n]:.4f}",
                    fmt("o_n = kappa_n q'_n S_n / c_n", out[0, 0, n])])


def _chunkwise(out, state, cache, alpha):
    handed_on = [*(chunk.state for chunk in cache.chunks[1:]), state]
    for i, ((start, stop), chunk) in enumerate(zip(cache.bounds, cache.chunks)):
        c = chunk
        inner = c.R[0, 0] @ c.v[0, 0]                          # R holds kappa already
        cross = (c.kappa * c.xi)[0, 0][:, None] * (c.q[0, 0] @ c.state.S[0, 0])
        yield Step(f"chunk {i}: rows {start}..{stop - 1}. Factors from the chunk's own "
                   f"cumulative gates: xi_j = e^(b_j), zeta_j = e^(b_(L-1) - b_j); inner "
                   f"part (Q' K^T * Gamma) V, cross part xi Q' S_prev, then the state is "
                   f"handed on   (GR.4), (GR.5)",
                   [fmt("Gamma", c.Gamma[0, 0]), fmt("xi", c.xi[0, 0]),
                    fmt("zeta", c.zeta[0, 0]), fmt("S_prev", c.state.S[0, 0]),
                    fmt("inner part", inner), fmt("cross part", cross),
                    fmt("O of the chunk: (inner + cross) / c", c.out[0, 0]),
                    difference("(inner + cross) / c vs the chunk's O",
                               (inner + cross) / c.c[0, 0][:, None], c.out[0, 0]),
                    fmt("S handed on: xi_(L-1) S_prev + (zeta K)^T V   (GR.5)",
                        handed_on[i].S[0, 0])])


_FORWARD = {"parallel": _parallel, "recurrent": _recurrent, "chunkwise": _chunkwise}


def _backward(forms, form, out, cache, other, ref_cache, q, k, log_decay):
    dout = np.ones_like(out)
    dq, dk, dv, dg, _ = forms[form][1](dout, cache)
    yield Step(f"Backward with dO = 1 ({form} form): with the gates fixed it is retention's, "
               f"alpha in place of gamma   (GR.6)",
               [fmt("dQ", dq[0, 0]), fmt("dK", dk[0, 0]), fmt("dV", dv[0, 0])])
    qdq, kdk = np.sum(q * dq, -1)[0, 0], np.sum(k * dk, -1)[0, 0]
    yield Step("The gates' gradient starts as row minus column: q_n . dq_n - k_n . dk_n   "
               "(GR.7)", [fmt("q . dq", qdq), fmt("k . dk", kdk)])
    s = whole(cache, "s")[0, 0]
    ds = -qdq / (2 * s)
    rho = np.zeros_like(s)
    for n in reversed(range(len(s) - 1)):
        rho[n] = np.exp(log_decay[0, 0, n + 1]) * (ds[n + 1] + rho[n + 1])
    db = qdq - kdk + ds * (s - 1) - rho
    yield Step("The count: ds_n = -(q_n . dq_n) / (2 s_n), rho_n = alpha_(n+1) (ds_(n+1) + "
               "rho_(n+1)); db_n = q.dq - k.dk + ds_n (s_n - 1) - rho_n   (GR.7)",
               [fmt("ds", ds), fmt("rho", rho), fmt("db", db)])
    dg_written = np.cumsum(db[::-1])[::-1]
    yield Step("g_t moves every b_n with n >= t: dg = reverse cumulative sum of db   (GR.7)",
               [fmt("dg", dg_written), fmt("dg from the library", dg[0, 0]),
                difference("dg written out vs the library's", dg_written, dg[0, 0])])
    ref = forms[other][1](dout, ref_cache)[:4]
    yield Step(f"Check: the {form} backward against the {other} backward",
               [difference(f"dQ, dK, dV, dg, {form} vs {other}", flat(dq, dk, dv, dg),
                           flat(*ref))])
