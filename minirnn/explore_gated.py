"""The explorer's gated retention walk (see ``minirnn.explore``): every form, forward and
backward, with the gates' gradient (GR.7) written out step by step."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .explore import Step, difference, fmt, tiny
from .gated import (
    gated_chunk_decays,
    gated_retention_chunkwise,
    gated_retention_chunkwise_backward,
    gated_retention_parallel,
    gated_retention_parallel_backward,
    gated_retention_recurrent,
    gated_retention_recurrent_backward,
    segment_decay,
)


def _run(form, q, k, v, g, chunk_size):
    """(out, cache) of gated retention in ``form``."""
    if form == "parallel":
        return gated_retention_parallel(q, k, v, g)
    if form == "recurrent":
        out, _, cache = gated_retention_recurrent(q, k, v, g)
        return out, cache
    out, _, cache = gated_retention_chunkwise(q, k, v, g, chunk_size)
    return out, cache


def _backward(form, dout, cache):
    """dq, dk, dv, dlog_decay of ``form``."""
    if form == "parallel":
        return gated_retention_parallel_backward(dout, cache)
    if form == "recurrent":
        return gated_retention_recurrent_backward(dout, cache)[:4]
    return gated_retention_chunkwise_backward(dout, cache)[:4]


def gated_steps(T, d, seed, backward, form="recurrent", chunk_size=2, **_) -> Iterator[Step]:
    rng = np.random.default_rng(seed)
    q, k = tiny(rng, 1, 1, T, d), tiny(rng, 1, 1, T, d)
    v = tiny(rng, 1, 1, T, 2)
    alpha = rng.choice([1.0, 0.5, 0.25], size=(1, 1, T))            # readable gates
    g = np.log(alpha)
    yield Step(f"Setup: one head, T = {T}, d = {d}, dv = 2, normalised; each token has a gate "
               f"alpha_t = exp(g_t); q' = q / sqrt(d)   (GR.1), (R.5)",
               [fmt("Q", q[0, 0]), fmt("K", k[0, 0]), fmt("V", v[0, 0]),
                fmt("alpha", alpha[0, 0]), fmt("g = log alpha", g[0, 0])])
    out, cache = _run(form, q, k, v, g, chunk_size)
    if form == "parallel":
        yield Step("The segment decay Gamma^g[n, m] = exp(b_n - b_m) for m <= n, b = cumsum(g): "
                   "the product of the gates after m up to n   (GR.1)",
                   [fmt("b", np.cumsum(g[0, 0])), fmt("Gamma^g", segment_decay(g[0, 0]))])
        yield Step("Scores R = (Q' K^T) * Gamma^g / sqrt(s_n), s_n = sum_m Gamma^g[n, m]; "
                   "O = (R V) / c   (GR.3)", [fmt("s", cache.s[0, 0]), fmt("R", cache.R[0, 0]),
                                 fmt("O", out[0, 0])])
    elif form == "recurrent":
        for n in range(T):
            yield Step(f"n = {n}: S_n = alpha_n S_(n-1) + k_n^T v_n with alpha_n = "
                       f"{alpha[0, 0, n]:g}; z_n, s_n = alpha_n s_(n-1) + 1 alike   (GR.2)",
                       [fmt("S_n", cache.S[0, 0, n]), fmt("z_n", cache.z[0, 0, n]),
                        f"s_n = {cache.s[0, 0, n]:.4f}   kappa_n = {cache.kappa[0, 0, n]:.4f}",
                        fmt("o_n = kappa_n q'_n S_n / c_n", out[0, 0, n])])
    else:
        for i, ((start, stop), state) in enumerate(zip(cache.bounds, cache.states)):
            f = gated_chunk_decays(g[:, :, start:stop], state.s)
            yield Step(f"chunk {i}: rows {start}..{stop - 1}. Factors from the chunk's own "
                       f"cumulative gates: xi_j = e^(b_j), zeta_j = e^(b_(L-1) - b_j); inner "
                       f"part (Q' K^T * Gamma) V, cross part xi Q' S_prev, then the state is "
                       f"handed on   (GR.4), (GR.5)",
                       [fmt("Gamma", f.Gamma[0, 0]), fmt("xi", f.xi[0, 0]),
                        fmt("zeta", f.zeta[0, 0]), fmt("S_prev", state.S[0, 0]),
                        fmt("O of the chunk", out[0, 0, start:stop])])
    other = "recurrent" if form == "parallel" else "parallel"
    ref, ref_cache = _run(other, q, k, v, g, chunk_size)
    yield Step(f"Check: the {form} form against the {other} form",
               [difference(f"{form} vs {other}", out, ref)])
    if backward:
        yield from _gated_backward(form, out, cache, other, ref_cache, q, k, g)


def _gated_backward(form, out, cache, other, ref_cache, q, k, g):
    dout = np.ones_like(out)
    dq, dk, dv, dg = _backward(form, dout, cache)
    yield Step(f"Backward with dO = 1 ({form} form): with the gates fixed it is retention's, "
               f"alpha in place of gamma   (GR.6)",
               [fmt("dQ", dq[0, 0]), fmt("dK", dk[0, 0]), fmt("dV", dv[0, 0])])
    qdq, kdk = np.sum(q * dq, -1)[0, 0], np.sum(k * dk, -1)[0, 0]
    yield Step("The gates' gradient starts as row minus column: q_n . dq_n - k_n . dk_n   "
               "(GR.7)", [fmt("q . dq", qdq), fmt("k . dk", kdk)])
    s = cache.s[0, 0]
    ds = -qdq / (2 * s)
    rho = np.zeros_like(s)
    for n in reversed(range(len(s) - 1)):
        rho[n] = np.exp(g[0, 0, n + 1]) * (ds[n + 1] + rho[n + 1])
    db = qdq - kdk + ds * (s - 1) - rho
    yield Step("The count: ds_n = -(q_n . dq_n) / (2 s_n), rho_n = alpha_(n+1) (ds_(n+1) + "
               "rho_(n+1)); db_n = q.dq - k.dk + ds_n (s_n - 1) - rho_n   (GR.7)",
               [fmt("ds", ds), fmt("rho", rho), fmt("db", db)])
    yield Step("g_t moves every b_n with n >= t: dg = reverse cumulative sum of db   (GR.7)",
               [fmt("dg", np.cumsum(db[::-1])[::-1]), fmt("dg from the library", dg[0, 0])])
    ref = _backward(other, dout, ref_cache)
    yield Step(f"Check: the {form} backward against the {other} backward",
               [difference(f"dQ, dK, dV, dg, {form} vs {other}",
                           np.concatenate([a.ravel() for a in (dq, dk, dv, dg)]),
                           np.concatenate([a.ravel() for a in ref]))])
