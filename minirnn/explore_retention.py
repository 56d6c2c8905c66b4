"""The explorer's retention and multi-scale retention walks (see ``minirnn.explore``)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .explore import Step, difference, fmt, tiny
from .msr import (
    group_norm_backward,
    init_msr_params,
    msr_backward,
    msr_forward,
    rotate,
)
from .retention import (
    chunk_decays,
    decay_mask,
    retention_chunkwise,
    retention_chunkwise_backward,
    retention_parallel,
    retention_parallel_backward,
    retention_recurrent,
    retention_recurrent_backward,
    score_normaliser_backward,
)

GAMMA = 0.5


def _run(form, q, k, v, chunk_size):
    """(out, cache) of retention in ``form``."""
    if form == "parallel":
        return retention_parallel(q, k, v, GAMMA)
    if form == "recurrent":
        out, _, cache = retention_recurrent(q, k, v, GAMMA)
        return out, cache
    out, _, cache = retention_chunkwise(q, k, v, GAMMA, chunk_size)
    return out, cache


def _backward(form, dout, cache):
    if form == "parallel":
        return retention_parallel_backward(dout, cache)
    if form == "recurrent":
        return retention_recurrent_backward(dout, cache)[:3]
    return retention_chunkwise_backward(dout, cache)[:3]


def _other(form: str) -> str:
    """The form each form is checked against."""
    return "recurrent" if form == "parallel" else "parallel"


def retention_steps(T, d, seed, backward, form="recurrent", chunk_size=2,
                    **_) -> Iterator[Step]:
    rng = np.random.default_rng(seed)
    q, k = tiny(rng, 1, 1, T, d), tiny(rng, 1, 1, T, d)
    v = tiny(rng, 1, 1, T, 2)
    yield Step(f"Setup: one head, gamma = {GAMMA}, T = {T}, d = {d}, dv = 2, normalised; "
               f"q' = q / sqrt(d)   (R.5)",
               [fmt("Q", q[0, 0]), fmt("K", k[0, 0]), fmt("V", v[0, 0])])
    out, cache = _run(form, q, k, v, chunk_size)
    yield from {"parallel": _parallel, "recurrent": _recurrent,
                "chunkwise": _chunkwise}[form](out, cache)
    other = _other(form)
    ref, ref_cache = _run(other, q, k, v, chunk_size)
    yield Step(f"Check: the {form} form against the {other} form",
               [fmt(form, out[0, 0]), fmt(other, ref[0, 0]),
                difference(f"{form} vs {other}", out, ref)])
    if backward:
        yield from _retention_backward(form, out, cache, other, ref_cache)


def _parallel(out, cache):
    T = out.shape[2]
    yield Step("The decay mask Gamma[n, m] = gamma^(n - m) for m <= n   (R.1)",
               [fmt("Gamma", decay_mask(GAMMA, T))])
    yield Step("Scores R = (Q' K^T) * Gamma / sqrt(s_n), s_n = sum_m Gamma[n, m]; r = row "
               "sums; c = max(|r|, 1)   (R.5)-(R.6)",
               [fmt("R", cache.R[0, 0]), fmt("r", cache.r[0, 0]), fmt("c", cache.c[0, 0])])
    yield Step("O = (R V) / c   (R.6)", [fmt("O", out[0, 0])])


def _recurrent(out, cache):
    for n in range(out.shape[2]):
        yield Step(f"n = {n}: S_n = gamma S_(n-1) + k_n^T v_n, z_n = gamma z_(n-1) + k_n, "
                   f"s_n = gamma s_(n-1) + 1   (R.7)",
                   [fmt("S_n", cache.S[0, 0, n]), fmt("z_n", cache.z[0, 0, n]),
                    f"s_n = {1 / cache.kappa[0, n] ** 2:.4f}   "
                    f"kappa_n = 1/sqrt(s_n) = {cache.kappa[0, n]:.4f}",
                    f"r_n = kappa_n q'_n . z_n = {cache.r[0, 0, n]:.4f}   c_n = max(|r_n|, 1) = "
                    f"{cache.c[0, 0, n]:.4f}",
                    fmt("o_n = kappa_n q'_n S_n / c_n", out[0, 0, n])])


def _chunkwise(out, cache):
    q, k, v = cache.q[0, 0], cache.k[0, 0], cache.v[0, 0]
    for i, ((start, stop), state) in enumerate(zip(cache.bounds, cache.states)):
        f = chunk_decays(GAMMA, stop - start, state.s[:1])
        kappa = f.kappa[0][:, None]
        inner = (q[start:stop] @ k[start:stop].T) * f.Gamma[0]
        cross = f.xi[0][:, None] * (q[start:stop] @ state.S[0, 0])
        handed_on = ([fmt("S handed on: gamma^L S_prev + (zeta K)^T V   (R.4)",
                          cache.states[i + 1].S[0, 0])] if i + 1 < len(cache.states) else [])
        yield Step(f"chunk {i}: rows {start}..{stop - 1}. Inner part kappa (Q' K^T * Gamma) "
                   f"V, cross part kappa xi (Q' S_prev) with xi_j = gamma^(j+1); kappa uses "
                   f"the global s_n   (R.4), (R.8)",
                   [fmt("S_prev", state.S[0, 0]), f"s_prev = {state.s[0]:.4f}",
                    fmt("inner part", kappa * (inner @ v[start:stop])),
                    fmt("cross part", kappa * cross),
                    fmt("O of the chunk: (inner + cross) / c", out[0, 0, start:stop]),
                    *handed_on])


def _retention_backward(form, out, cache, other, ref_cache):
    dout = np.ones_like(out)
    grads = _backward(form, dout, cache)
    dOmega, dr = score_normaliser_backward(dout, cache.out, cache.r, cache.c)
    yield Step("Backward with dO = 1. Through the normaliser first: dOmega = dO / c, and "
               "dr = -(dO . O) / c sign(r) where |r| > 1   (R.9)",
               [fmt("dOmega", dOmega[0, 0]), fmt("dr", dr[0, 0])])
    yield from {"parallel": _parallel_backward, "recurrent": _recurrent_backward,
                "chunkwise": _chunkwise_backward}[form](dout, cache, grads)
    ref = _backward(other, dout, ref_cache)
    yield Step(f"Check: the {form} backward against the {other} backward",
               [difference(f"dQ, dK, dV, {form} vs {other}",
                           np.concatenate([g.ravel() for g in grads]),
                           np.concatenate([g.ravel() for g in ref]))])


def _parallel_backward(dout, cache, grads):
    dOmega, dr = score_normaliser_backward(dout, cache.out, cache.r, cache.c)
    dR = dOmega @ np.swapaxes(cache.v, -1, -2) + dr[..., None]
    yield Step("dV = R^T dOmega   (R.10)", [fmt("dV", grads[2][0, 0])])
    yield Step("dR = dOmega V^T + dr 1^T, then dA = dR * Gamma / sqrt(s_n)   (R.10)",
               [fmt("dR", dR[0, 0]), fmt("dA", (dR * cache.decay)[0, 0])])
    yield Step("dQ = dA K / sqrt(d), dK = dA^T Q'   (R.10)",
               [fmt("dQ", grads[0][0, 0]), fmt("dK", grads[1][0, 0])])


def _state_grad(cache, dOmega, start: int) -> np.ndarray:
    """Closed form of the gradient reaching the state just before token ``start`` (of a fresh
    sequence): sum over m >= start of gamma^(m - start + 1) a_m q'_m^T dP_m."""
    T = cache.q.shape[2]
    if start >= T:
        return np.zeros((cache.q.shape[-1], dOmega.shape[-1]))
    m = np.arange(start, T)
    s_before = np.array([np.sum(GAMMA ** np.arange(start))])   # s of the state before start
    kappa = chunk_decays(GAMMA, T - start, s_before).kappa[0]           # a_m with the global counts
    weights = (GAMMA ** (m - start + 1) * kappa)[:, None]
    return cache.q[0, 0, start:].T @ (weights * dOmega[0, 0, start:])


def _recurrent_backward(dout, cache, grads):
    dOmega = score_normaliser_backward(dout, cache.out, cache.r, cache.c)[0]
    for n in reversed(range(cache.q.shape[2])):
        dS = cache.kappa[0, n] * np.outer(cache.q[0, 0, n], dOmega[0, 0, n]) \
            + _state_grad(cache, dOmega, n + 1)
        yield Step(f"n = {n}: dS_n = q'_n^T kappa_n dOmega_n + gamma dS_(n+1) (all that "
                   f"reaches S_n); dq_n = kappa_n dOmega_n S_n^T + kappa_n dr_n z_n, "
                   f"dk_n = dS_n v_n + dz_n, "
                   f"dv_n = k_n dS_n   (R.11)",
                   [fmt("dS_n", dS), fmt("dq_n", grads[0][0, 0, n]),
                    fmt("dk_n", grads[1][0, 0, n]), fmt("dv_n", grads[2][0, 0, n])])


def _chunkwise_backward(dout, cache, grads):
    dOmega = score_normaliser_backward(dout, cache.out, cache.r, cache.c)[0]
    for i in reversed(range(len(cache.bounds))):
        start, stop = cache.bounds[i]
        yield Step(f"chunk {i}: rows {start}..{stop - 1}. G = gradient reaching the state "
                   f"after the chunk; the chunk's inner part backward like (R.10), its cross "
                   f"part and G give dQ, dK, dV; then G = gamma^L G + Q'^T (xi kappa "
                   f"dOmega)   (R.12)",
                   [fmt("G in", _state_grad(cache, dOmega, stop)),
                    fmt("dQ of the chunk", grads[0][0, 0, start:stop]),
                    fmt("dK of the chunk", grads[1][0, 0, start:stop]),
                    fmt("dV of the chunk", grads[2][0, 0, start:stop]),
                    fmt("G out (before the chunk)", _state_grad(cache, dOmega, start))])


# --- multi-scale retention ---------------------------------------------------------------------

def msr_steps(T, d, seed, backward, form="recurrent", chunk_size=2, **_) -> Iterator[Step]:
    rng = np.random.default_rng(seed)
    D = 2 * d
    params = init_msr_params(D, 2, 2, seed=seed)
    x = tiny(rng, 1, T, D)
    yield Step(f"Setup: D = {D}, 2 heads (gamma = 1 - 2^-5, 1 - 2^-6), dv = 2, T = {T}",
               [fmt("x", x[0])])
    y, state, cache = msr_forward(x, params, 2, form, chunk_size=chunk_size)
    core = cache.core
    yield Step("Q = rot(X Wq) / sqrt(d), K = rot(X Wk), V = X Wv: rotation by n theta_i at "
               "position n   (M.2), (R.5)",
               [fmt("Q' head 0", core.q[0, 0]), fmt("K head 0", core.k[0, 0]),
                fmt("V head 0", core.v[0, 0])])
    yield Step(f"Retention per head ({form} form), then group norm per (token, head)   "
               f"(R.6)-(R.8), (M.3)",
               [fmt("retention output head 0", core.out[0, 0]),
                fmt("normalised heads Y[token, head]", cache.output.y[0])])
    yield Step("Gate swish(X Wg) times the heads, then Wo   (M.5)",
               [fmt("swish gate", cache.output.gate[0]), fmt("MSR(X)", y[0])])
    other = _other(form)
    ref, _, ref_cache = msr_forward(x, params, 2, other, chunk_size=chunk_size)
    yield Step(f"Check: the {form} form against the {other} form",
               [difference(f"{form} vs {other}", y, ref),
                f"state after the sequence: position {state.position}"])
    if backward:
        yield from _msr_backward(y, cache, ref_cache, other)


def _msr_backward(y, cache, ref_cache, other):
    dy = np.ones_like(y)
    p = cache.params
    dm = dy @ p["Wo"].T
    yield Step("Backward with dY = 1. dWo = M^T dY, dM = dY Wo^T   (M.5)",
               [fmt("dM", dm[0])])
    sig = 0.5 + 0.5 * np.tanh(0.5 * cache.output.u)
    du = dm * cache.output.y.reshape(dm.shape) * sig * (1.0 + cache.output.u * (1.0 - sig))
    yield Step("Gate: dU = dM * Y * swish'(u), swish'(u) = s(u) (1 + u (1 - s(u))); "
               "d(heads) = dM * gate   (M.5)", [fmt("dU", du[0])])
    dheads, dw, _ = group_norm_backward((dm * cache.output.gate).reshape(cache.output.y.shape),
                                        cache.output.norm)
    yield Step("Group norm backward per (token, head)   (M.4), (L.4)",
               [fmt("d(retention output)", dheads[0]), fmt("d gn_w", dw)])
    dq, _, dv = _backward(cache.form, dheads.transpose(0, 2, 1, 3), cache.core)
    yield Step(f"Retention backward ({cache.form} form), then rotate dQ, dK back by -n theta_i   "
               f"(R.10)-(R.12), (M.2)",
               [fmt("dQ head 0 (rotated back)", rotate(dq, cache.start, inverse=True)[0, 0]),
                fmt("dV head 0", dv[0, 0])])
    dx, _ = msr_backward(dy, cache)
    ref, _ = msr_backward(dy, ref_cache)
    yield Step(f"dX = dU Wg^T + dQ Wq^T + dK Wk^T + dV Wv^T; checked against the {other} form",
               [fmt("dX", dx[0]), difference(f"dX, {cache.form} vs {other}", dx, ref)])
