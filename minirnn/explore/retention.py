"""Retention (RetNet) in its recurrent, parallel and chunkwise forms.

Step by step: the decay mask and scores of the parallel form (R.1), (R.5)-(R.6), the state of
the recurrent form token by token (R.7), and every chunk's inner part, cross part and handed-on
state (R.4), (R.8); the backward of each form (R.9)-(R.12) with the gradient reaching the state
written out in closed form.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..retention import retention_forms, score_normaliser_backward
from .printing import Step, difference, flat, fmt, reference_form, tiny, whole

FORMS = ("recurrent", "parallel", "chunkwise")
GAMMA = 0.5


def walk(T: int, d: int, seed: int, backward: bool, form: str = "recurrent",
         chunk_size: int = 2) -> Iterator[Step]:
    """One head of retention in ``form``, checked against another form, forward and backward."""
    rng = np.random.default_rng(seed)
    q, k = tiny(rng, 1, 1, T, d), tiny(rng, 1, 1, T, d)
    v = tiny(rng, 1, 1, T, 2)
    yield Step(f"Setup: one head, gamma = {GAMMA}, T = {T}, d = {d}, dv = 2, normalised; "
               f"q' = q / sqrt(d)   (R.5)",
               [fmt("Q", q[0, 0]), fmt("K", k[0, 0]), fmt("V", v[0, 0])])
    forms = retention_forms(chunk_size)
    forward, _ = forms[form]
    out, state, cache = forward(q, k, v, GAMMA)
    yield from _FORWARD[form](out, state, cache)
    other = reference_form(form)
    ref, _, ref_cache = forms[other][0](q, k, v, GAMMA)
    yield Step(f"Check: the {form} form against the {other} form",
               [fmt(form, out[0, 0]), fmt(other, ref[0, 0]),
                difference(f"{form} vs {other}", out, ref)])
    if backward:
        yield from _backward(forms, form, cache, other, ref_cache)


# --- forward ---------------------------------------------------------------------------------

def _parallel(out, state, cache):
    yield Step("The decay mask Gamma[n, m] = gamma^(n - m) for m <= n   (R.1)",
               [fmt("Gamma", cache.Gamma[0])])
    yield Step("Scores R = (Q' K^T) * Gamma * kappa with kappa_n = 1 / sqrt(s_n), s_n = "
               "sum_m Gamma[n, m]; r = row sums; c = max(|r|, 1)   (R.5)-(R.6)",
               [fmt("kappa", cache.kappa[0]), fmt("R", cache.R[0, 0]), fmt("r", cache.r[0, 0]),
                fmt("c", cache.c[0, 0])])
    yield Step("O = (R V) / c   (R.6)", [fmt("O", out[0, 0])])


def _recurrent(out, state, cache):
    for n in range(out.shape[2]):
        yield Step(f"n = {n}: S_n = gamma S_(n-1) + k_n^T v_n, z_n = gamma z_(n-1) + k_n, "
                   f"s_n = gamma s_(n-1) + 1   (R.7)",
                   [fmt("S_n", cache.S[0, 0, n]), fmt("z_n", cache.z[0, 0, n]),
                    f"s_n = {1 / cache.kappa[0, n] ** 2:.4f}   "
                    f"kappa_n = 1/sqrt(s_n) = {cache.kappa[0, n]:.4f}",
                    f"r_n = kappa_n q'_n . z_n = {cache.r[0, 0, n]:.4f}   c_n = max(|r_n|, 1) = "
                    f"{cache.c[0, 0, n]:.4f}",
                    fmt("o_n = kappa_n q'_n S_n / c_n", out[0, 0, n])])


def _chunkwise(out, state, cache):
    handed_on = [*(chunk.state for chunk in cache.chunks[1:]), state]
    for i, ((start, stop), chunk) in enumerate(zip(cache.bounds, cache.chunks)):
        c = chunk
        inner = c.R[0, 0] @ c.v[0, 0]                          # R holds kappa already
        cross = (c.kappa * c.xi)[0][:, None] * (c.q[0, 0] @ c.state.S[0, 0])
        S_next = c.xi[0, -1] * c.state.S[0, 0] + (c.zeta[0][:, None] * c.k[0, 0]).T @ c.v[0, 0]
        yield Step(f"chunk {i}: rows {start}..{stop - 1}. Inner part kappa (Q' K^T * Gamma) "
                   f"V, cross part kappa xi (Q' S_prev) with xi_j = gamma^(j+1); kappa uses "
                   f"the global s_n   (R.4), (R.8)",
                   [fmt("S_prev", c.state.S[0, 0]), f"s_prev = {c.state.s[0]:.4f}",
                    fmt("xi", c.xi[0]), fmt("kappa (global s_n)", c.kappa[0]),
                    fmt("inner part", inner), fmt("cross part", cross),
                    fmt("O of the chunk: (inner + cross) / c", c.out[0, 0]),
                    difference("(inner + cross) / c vs the chunk's O",
                               (inner + cross) / c.c[0, 0][:, None], c.out[0, 0]),
                    fmt("S handed on: gamma^L S_prev + (zeta K)^T V   (R.4)",
                        handed_on[i].S[0, 0]),
                    difference("S handed on written out vs the library's",
                               S_next, handed_on[i].S[0, 0])])


_FORWARD = {"parallel": _parallel, "recurrent": _recurrent, "chunkwise": _chunkwise}


# --- backward --------------------------------------------------------------------------------

def _kappa(cache) -> np.ndarray:
    """The row factors kappa_n of every token of the one head, shape (T,)."""
    if hasattr(cache, "chunks"):
        return np.concatenate([chunk.kappa[0] for chunk in cache.chunks])
    return cache.kappa[0]


def _state_grad(q, kappa, dOmega, start: int) -> np.ndarray:
    """Closed form of the gradient reaching the state just before token ``start``: sum over
    m >= start of gamma^(m - start + 1) kappa_m q'_m^T dOmega_m (one head, ``q`` scaled)."""
    m = np.arange(start, q.shape[0])
    weights = (GAMMA ** (m - start + 1) * kappa[start:])[:, None]
    return q[start:].T @ (weights * dOmega[start:])


def _backward(forms, form, cache, other, ref_cache):
    out = whole(cache, "out")
    dout = np.ones_like(out)
    *grads, dstate_prev = forms[form][1](dout, cache)
    dOmega, dr = score_normaliser_backward(dout, out, whole(cache, "r"), whole(cache, "c"))
    yield Step("Backward with dO = 1. Through the normaliser first: dOmega = dO / c, and "
               "dr = -(dO . O) / c sign(r) where |r| > 1   (R.9)",
               [fmt("dOmega", dOmega[0, 0]), fmt("dr", dr[0, 0])])
    yield from _BACKWARD[form](forms, dout, cache, grads, dOmega, dr, dstate_prev)
    ref = forms[other][1](dout, ref_cache)[:3]
    yield Step(f"Check: the {form} backward against the {other} backward",
               [difference(f"dQ, dK, dV, {form} vs {other}", flat(*grads), flat(*ref))])


def _parallel_backward(forms, dout, cache, grads, dOmega, dr, dstate_prev):
    c = cache
    dv = np.swapaxes(c.R, -1, -2) @ dOmega
    dR = dOmega @ np.swapaxes(c.v, -1, -2) + dr[..., None]
    dA = dR * (c.Gamma * c.kappa[..., None])
    dq, dk = (dA @ c.k) * c.scale, np.swapaxes(dA, -1, -2) @ c.q
    yield Step("dV = R^T dOmega   (R.10)", [fmt("dV", dv[0, 0])])
    yield Step("dR = dOmega V^T + dr 1^T, then dA = dR * Gamma * kappa   (R.10)",
               [fmt("dR", dR[0, 0]), fmt("dA", dA[0, 0])])
    yield Step("dQ = dA K / sqrt(d), dK = dA^T Q'   (R.10)",
               [fmt("dQ", dq[0, 0]), fmt("dK", dk[0, 0]),
                difference("dQ, dK, dV written out vs the library",
                           flat(dq, dk, dv), flat(*grads))])


def _recurrent_backward(forms, dout, cache, grads, dOmega, dr, dstate_prev):
    q, kappa = cache.q[0, 0], _kappa(cache)
    for n in reversed(range(q.shape[0])):
        dS = kappa[n] * np.outer(q[n], dOmega[0, 0, n]) + _state_grad(q, kappa, dOmega[0, 0],
                                                                       n + 1)
        yield Step(f"n = {n}: dS_n = q'_n^T kappa_n dOmega_n + gamma dS_(n+1) (all that "
                   f"reaches S_n); dq_n = kappa_n dOmega_n S_n^T + kappa_n dr_n z_n, "
                   f"dk_n = dS_n v_n + dz_n, dv_n = k_n dS_n   (R.11)",
                   [fmt("dS_n", dS), fmt("dq_n", grads[0][0, 0, n]),
                    fmt("dk_n", grads[1][0, 0, n]), fmt("dv_n", grads[2][0, 0, n]),
                    difference("k_n dS_n vs the library's dv_n", cache.k[0, 0, n] @ dS,
                               grads[2][0, 0, n])])
    yield Step("What reaches the state before token 0: gamma dS_0, the incoming state's "
               "gradient (R.11)",
               [fmt("gamma dS_0", _state_grad(q, kappa, dOmega[0, 0], 0)),
                difference("written out vs dstate_prev.S",
                           _state_grad(q, kappa, dOmega[0, 0], 0), dstate_prev.S[0, 0])])


def _chunkwise_backward(forms, dout, cache, grads, dOmega, dr, dstate_prev):
    q, kappa = whole(cache, "q")[0, 0], _kappa(cache)
    parallel_backward = forms["parallel"][1]
    dstate, parts = None, []                                  # nothing after the last chunk
    for i in reversed(range(len(cache.bounds))):
        start, stop = cache.bounds[i]
        dq, dk, dv, dstate_in = parallel_backward(dout[:, :, start:stop], cache.chunks[i],
                                                  dstate)
        G_out = _state_grad(q, kappa, dOmega[0, 0], start)
        yield Step(f"chunk {i}: rows {start}..{stop - 1}. G = gradient reaching the state "
                   f"after the chunk; the chunk's inner part backward like (R.10), its cross "
                   f"part and G give dQ, dK, dV; then G = gamma^L G + Q'^T (xi kappa "
                   f"dOmega)   (R.12)",
                   [fmt("G in", _state_grad(q, kappa, dOmega[0, 0], stop)),
                    fmt("dQ of the chunk", dq[0, 0]), fmt("dK of the chunk", dk[0, 0]),
                    fmt("dV of the chunk", dv[0, 0]), fmt("G out (before the chunk)", G_out),
                    difference("G out vs the chunk's dstate_prev.S",
                               G_out, dstate_in.S[0, 0])])
        dstate = dstate_in
        parts.insert(0, (dq, dk, dv))
    joined = (np.concatenate(part, axis=2) for part in zip(*parts))
    yield Step("The chunks' gradients, joined, are retention_chunkwise_backward's",
               [difference("chunk by chunk vs the chunkwise backward",
                           flat(*joined, dstate.S), flat(*grads, dstate_prev.S))])


_BACKWARD = {"parallel": _parallel_backward, "recurrent": _recurrent_backward,
             "chunkwise": _chunkwise_backward}
